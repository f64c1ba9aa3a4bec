"""What every loader shares: building a HookedTransformer from a state dict, reading a Hugging Face
folder's config, provenance, and file checksums."""

from __future__ import annotations

import functools
import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

import torch

from auditkit.errors import ModelError, ModelNotFoundError
from auditkit.models.spec import TORCH_DTYPES, ModelSpec
from auditkit.types import ModelProvenance


def build_model(cfg: Any, tokenizer: Any, state_dict: dict[str, torch.Tensor], processed: bool) -> Any:
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


def first_line(exc: BaseException, limit: int = 200) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:limit] if lines else "(no message)"


def hf_config(folder: Path) -> dict[str, Any]:
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
            f"{config_path} is unreadable or names no architecture ({type(exc).__name__}: {first_line(exc, 100)}): "
            "save the model again with save_pretrained()"
        ) from exc
    return config


def tl_config(folder: Path, spec: ModelSpec) -> Any:
    """The HookedTransformerConfig of a Hugging Face folder, resolved from its config.json alone.

    TransformerLens picks a local folder's architecture from words in its path (:data:`_TL_PATH_WORDS`)
    and reads GPT-2's context length from ``n_ctx``, which transformers' own ``save_pretrained`` no longer
    writes (only ``n_positions``). So TransformerLens is handed a copy of config.json, with ``n_ctx``
    filled in from ``n_positions``, in a fresh temporary folder whose path names nothing; the tokenizer
    and weights are still read from ``folder`` itself.
    """
    from transformer_lens.loading_from_pretrained import get_pretrained_model_config

    config = hf_config(folder)
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
            str(staged), fold_ln=spec.processed, device=spec.device, dtype=TORCH_DTYPES[spec.dtype]
        )
    cfg.model_name, cfg.tokenizer_name = folder.name, str(folder)
    return cfg


def make_provenance(model: Any, spec: ModelSpec, **fields: Any) -> ModelProvenance:
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


def file_sha256(path: Path) -> str:
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


def path_free_tokenizer_name(model: Any, name: str) -> None:
    """Name the built model's tokenizer by ``name`` instead of the folder it was read from.

    A batch's cache key names its tokenizer by ``name_or_path`` (``data.tokenize``); a path there
    would tie activation keys to where a folder lies, so a moved cache or model folder would never be
    hit. Set after the model is built: TransformerLens reloads the tokenizer from ``init_kwargs``.
    """
    model.tokenizer.name_or_path = name
