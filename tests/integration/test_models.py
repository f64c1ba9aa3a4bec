"""Model loading offline: local Hugging Face folders, a pre-populated HF cache, tiny models.

Activations must equal the Hugging Face model's hidden states at the matching hook
(unprocessed weights: hidden_states[i] == blocks.{i}.hook_resid_pre) to 1e-4.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from auditkit.errors import HubUnreachableError, ModelNotFoundError
from auditkit.models import ModelSpec, load_model

TEXT = ["The quick brown fox jumps over the lazy dog.", "Interpretability needs controls."]


def _save_tiny_hf(kind: str, folder: Path, gpt2_tokenizer) -> Path:
    from transformers import GPT2Config, GPT2LMHeadModel, GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(0)  # test-local: makes the saved random weights reproducible
    if kind == "gpt2":
        cfg = GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=128, n_ctx=128, vocab_size=len(gpt2_tokenizer))
        model = GPT2LMHeadModel(cfg)
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
