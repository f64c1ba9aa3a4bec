"""Model loading offline: local Hugging Face folders, a pre-populated HF cache, tiny models.

Activations must equal the Hugging Face model's hidden states at the matching hook
(unprocessed weights: hidden_states[i] == blocks.{i}.hook_resid_pre) to 1e-4.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from auditkit import errors
from auditkit.errors import HubUnreachableError, ModelNotFoundError
from auditkit.models import ModelSpec, load_model

TEXT = ["The quick brown fox jumps over the lazy dog.", "Interpretability needs controls."]


def _save_tiny_hf(kind: str, folder: Path, gpt2_tokenizer) -> Path:
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        GPTNeoXConfig,
        GPTNeoXForCausalLM,
        LlamaConfig,
        LlamaForCausalLM,
    )

    torch.manual_seed(0)  # test-local: makes the saved random weights reproducible
    if kind == "gpt2":
        cfg = GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=128, n_ctx=128, vocab_size=len(gpt2_tokenizer))
        model = GPT2LMHeadModel(cfg)
    elif kind == "gpt2-plain":  # as transformers' own save_pretrained writes it: n_positions, no n_ctx
        cfg = GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=96, vocab_size=len(gpt2_tokenizer))
        model = GPT2LMHeadModel(cfg)
    elif kind == "llama":
        cfg = LlamaConfig(
            num_hidden_layers=2, hidden_size=64, num_attention_heads=4, num_key_value_heads=4, intermediate_size=128,
            max_position_embeddings=128, vocab_size=len(gpt2_tokenizer), tie_word_embeddings=False,
        )  # fmt: skip
        model = LlamaForCausalLM(cfg)
    else:
        cfg = GPTNeoXConfig(
            num_hidden_layers=2, hidden_size=64, num_attention_heads=4, intermediate_size=256,
            max_position_embeddings=128, vocab_size=len(gpt2_tokenizer), rotary_pct=0.25,
            use_parallel_residual=True, tie_word_embeddings=False,
        )  # fmt: skip
        model = GPTNeoXForCausalLM(cfg)
    model.save_pretrained(folder)
    gpt2_tokenizer.save_pretrained(folder)
    return folder


def _hf_hidden_states(folder: Path, tokens: torch.Tensor) -> tuple[torch.Tensor, ...]:
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(folder).eval()
    with torch.inference_mode():
        return hf(tokens, output_hidden_states=True).hidden_states


@pytest.mark.parametrize("kind", ["gpt2", "neox"])
def test_local_folder_matches_hf_hidden_states(kind, tmp_path, gpt2_tokenizer):
    folder = _save_tiny_hf(kind, tmp_path / kind, gpt2_tokenizer)
    loaded = load_model(ModelSpec(name=str(folder)))
    assert loaded.provenance.source == "local-folder"
    assert loaded.provenance.processed is False
    model = loaded.model
    tokens = model.to_tokens(TEXT[0])
    hidden = _hf_hidden_states(folder, tokens)
    _, cache = model.run_with_cache(tokens)
    for i in range(model.cfg.n_layers):
        torch.testing.assert_close(cache[f"blocks.{i}.hook_resid_pre"], hidden[i], atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    ("kind", "folder_name", "architecture", "n_ctx"),
    [
        ("gpt2-plain", "gpt2-plain", "GPT2LMHeadModel", 96),  # config.json without n_ctx
        ("gpt2", "my-llama-finetune", "GPT2LMHeadModel", 128),  # 'llama' in the path, GPT-2 in config.json
        ("llama", "tiny-llama", "LlamaForCausalLM", 128),
    ],
)
def test_local_folder_architecture_comes_from_config_json(
    kind, folder_name, architecture, n_ctx, tmp_path, gpt2_tokenizer
):
    """Not from words in the folder's path, and not from a field transformers no longer saves."""
    folder = _save_tiny_hf(kind, tmp_path / folder_name, gpt2_tokenizer)
    loaded = load_model(ModelSpec(name=str(folder)))
    assert loaded.provenance.architecture == architecture and loaded.model.cfg.n_ctx == n_ctx
    tokens = loaded.model.to_tokens(TEXT[0])
    hidden = _hf_hidden_states(folder, tokens)
    _, cache = loaded.model.run_with_cache(tokens)
    torch.testing.assert_close(cache["blocks.1.hook_resid_pre"], hidden[1], atol=1e-4, rtol=0)


def test_unreadable_weights_are_one_model_error(tmp_path, gpt2_tokenizer):
    folder = _save_tiny_hf("gpt2", tmp_path / "broken", gpt2_tokenizer)
    (folder / "model.safetensors").write_bytes(b"\x00garbage, not safetensors")
    with pytest.raises(errors.ModelError, match="cannot load model") as info:
        load_model(ModelSpec(name=str(folder)))
    assert str(folder) in str(info.value) and "\n" not in str(info.value)


def test_folder_without_tokenizer_files_is_rejected_at_load(tmp_path, gpt2_tokenizer):
    folder = _save_tiny_hf("gpt2", tmp_path / "no-tokenizer", gpt2_tokenizer)
    for name in ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)
    with pytest.raises(ModelNotFoundError, match="tokenizer"):
        load_model(ModelSpec(name=str(folder)))


def test_processed_weights_change_the_residual_but_not_the_logits(tmp_path, gpt2_tokenizer):
    folder = _save_tiny_hf("gpt2", tmp_path / "gpt2", gpt2_tokenizer)
    raw = load_model(ModelSpec(name=str(folder))).model
    proc = load_model(ModelSpec(name=str(folder), processed=True))
    assert proc.provenance.processed is True
    tokens = raw.to_tokens(TEXT[1])
    # Centring the unembedding shifts every logit of a position by the same amount: compare log-probs.
    torch.testing.assert_close(
        raw(tokens).log_softmax(-1), proc.model(tokens).log_softmax(-1), atol=1e-4, rtol=0
    )
    assert proc.model.cfg.normalization_type == "LNPre"


def test_hub_name_loads_from_a_prepopulated_hf_cache(tmp_path, gpt2_tokenizer, monkeypatch):
    """The real hub code path (TransformerLens's loader for 'gpt2'), served by a local HF cache."""
    folder = _save_tiny_hf("gpt2", tmp_path / "src", gpt2_tokenizer)
    snapshot = tmp_path / "hub" / "models--gpt2" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for f in folder.iterdir():
        shutil.copy(f, snapshot / f.name)
    (tmp_path / "hub" / "models--gpt2" / "refs").mkdir()
    (tmp_path / "hub" / "models--gpt2" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hub"))
    try:
        loaded = load_model(ModelSpec(name="gpt2"))
    except HubUnreachableError as exc:  # the cache layout is what transformers reads offline
        pytest.fail(f"gpt2 did not load from the pre-populated cache: {exc}")
    assert loaded.provenance.source == "hub"
    tokens = loaded.model.to_tokens(TEXT[0])
    hidden = _hf_hidden_states(folder, tokens)
    _, cache = loaded.model.run_with_cache(tokens)
    torch.testing.assert_close(cache["blocks.1.hook_resid_pre"], hidden[1], atol=1e-4, rtol=0)


def test_hub_unreachable_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(HubUnreachableError, match="hub") as info:
        load_model(ModelSpec(name="pythia-70m", revision="step0"))
    assert "\n" not in str(info.value)


def test_unknown_model_suggests_close_names():
    with pytest.raises(ModelNotFoundError, match="did you mean.*gpt2"):
        load_model(ModelSpec(name="gtp2"))


def test_folder_without_config_is_rejected(tmp_path):
    with pytest.raises(ModelNotFoundError, match="config.json"):
        load_model(ModelSpec(name=str(tmp_path)))


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-pythia"])
def test_tiny_models_are_seeded_and_run(name):
    a = load_model(ModelSpec(name=name, seed=1)).model
    b = load_model(ModelSpec(name=name, seed=1)).model
    c = load_model(ModelSpec(name=name, seed=2)).model
    tokens = a.to_tokens(TEXT[0])
    torch.testing.assert_close(a(tokens), b(tokens))
    assert not torch.allclose(a(tokens), c(tokens))
    # The byte tokenizer round-trips text exactly.
    assert a.tokenizer.decode(tokens[0, 1:]) == TEXT[0]
