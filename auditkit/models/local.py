"""A local folder in Hugging Face format, keyed by the checksums of what it holds."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from auditkit.errors import ModelNotFoundError
from auditkit.models.building import (
    build_model,
    file_sha256,
    first_line,
    hf_config,
    make_provenance,
    path_free_tokenizer_name,
    tl_config,
)
from auditkit.models.spec import TORCH_DTYPES, LoadedModel, ModelSpec

_CONTENT_FILES = (
    "config.json",
    "*.safetensors",
    "*.bin",
    "*.index.json",
    "tokenizer*.json",
    "vocab.*",
    "merges.txt",
    "special_tokens_map.json",
    "added_tokens.json",
    "*.model",
)
"""The files of a local folder that decide its activations: config, weights, tokenizer."""


def folder_sha256(folder: Path) -> str:
    """SHA-256 over the names and bytes of a local folder's config, weight and tokenizer files.

    A local folder is keyed by what it holds, not where it lies: overwritten weights get a new key
    (size and mtime may survive an overwrite, so the bytes are hashed, once per run), a moved folder
    keeps its key.
    """
    names = sorted({p.name for pattern in _CONTENT_FILES for p in folder.glob(pattern) if p.is_file()})
    listing = [(name, file_sha256(folder / name)) for name in names]
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()


def load_local_folder(spec: ModelSpec, folder: Path) -> LoadedModel:
    from transformer_lens.loading_from_pretrained import get_pretrained_state_dict
    from transformers import AutoModelForCausalLM, AutoTokenizer

    architecture = hf_config(folder)["architectures"][0]
    try:  # the config first: it is cheap, and an unsupported architecture needs no weights read
        cfg = tl_config(folder, spec)
    except (NotImplementedError, KeyError, ValueError) as exc:
        raise ModelNotFoundError(
            f"architecture {architecture} in {folder} is not supported by TransformerLens ({first_line(exc, 100)}): "
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
    hf_model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=TORCH_DTYPES[spec.dtype])
    state_dict = get_pretrained_state_dict(str(folder), cfg, hf_model, dtype=TORCH_DTYPES[spec.dtype])
    model = build_model(cfg, tokenizer, state_dict, spec.processed)
    path_free_tokenizer_name(model, f"local-folder-{contents[:16]}")
    prov = make_provenance(model, spec, source="local-folder", architecture=architecture, file_sha256=contents)
    return LoadedModel(model, prov)
