"""Tiny randomly initialised models with a byte-level tokenizer, built offline (for tests)."""

from __future__ import annotations

from typing import Any

from auditkit.errors import ConfigError
from auditkit.models.building import make_provenance
from auditkit.models.spec import TINY_MODELS, TORCH_DTYPES, LoadedModel, ModelSpec


def tiny_config(kind: str, *, d_vocab: int, seed: int = 0, n_layers: int = 2) -> Any:
    """A small GPT-2-like or Pythia-like HookedTransformerConfig (random init, ``seed``)."""
    from transformer_lens import HookedTransformerConfig

    common: dict[str, Any] = dict(
        n_layers=n_layers,
        d_model=64,
        n_heads=4,
        d_head=16,
        d_mlp=256,
        n_ctx=256,
        d_vocab=d_vocab,
        act_fn="gelu_new",
        normalization_type="LN",
        seed=seed,
        default_prepend_bos=True,
        device="cpu",
    )
    if kind == "tiny-gpt2":
        return HookedTransformerConfig(
            **common, positional_embedding_type="standard", original_architecture="GPT2LMHeadModel"
        )
    if kind == "tiny-pythia":
        return HookedTransformerConfig(
            **common,
            positional_embedding_type="rotary",
            rotary_dim=4,
            parallel_attn_mlp=True,
            original_architecture="GPTNeoXForCausalLM",
        )
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


def load_tiny(spec: ModelSpec) -> LoadedModel:
    from transformer_lens import HookedTransformer

    tokenizer = byte_tokenizer()
    cfg = tiny_config(spec.name, d_vocab=len(tokenizer), seed=spec.seed)
    cfg.dtype, cfg.device = TORCH_DTYPES[spec.dtype], spec.device
    model = HookedTransformer(cfg, tokenizer, move_to_device=spec.device != "cpu")
    if spec.processed:
        model.process_weights_()
    prov = make_provenance(
        model,
        spec,
        source="random-init",
        architecture=str(cfg.original_architecture),
        weights_variant="random-init",
        seed=spec.seed,
    )
    return LoadedModel(model, prov)
