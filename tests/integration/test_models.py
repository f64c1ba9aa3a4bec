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
            num_hidden_layers=2,
            hidden_size=64,
            num_attention_heads=4,
            num_key_value_heads=4,
            intermediate_size=128,
            max_position_embeddings=128,
            vocab_size=len(gpt2_tokenizer),
            tie_word_embeddings=False,
        )
        model = LlamaForCausalLM(cfg)
    else:
        cfg = GPTNeoXConfig(
            num_hidden_layers=2,
            hidden_size=64,
            num_attention_heads=4,
            intermediate_size=256,
            max_position_embeddings=128,
            vocab_size=len(gpt2_tokenizer),
            rotary_pct=0.25,
            use_parallel_residual=True,
            tie_word_embeddings=False,
        )
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
    torch.testing.assert_close(raw(tokens).log_softmax(-1), proc.model(tokens).log_softmax(-1), atol=1e-4, rtol=0)
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


def _cached_acts(folder: Path, root: Path):
    """Last-token activations of TEXT through the activation cache at ``root``, and the cache key."""
    from auditkit import data
    from auditkit.cache import CacheEntry
    from auditkit.extract import ExtractConfig, cache_request, extract

    loaded = load_model(ModelSpec(name=str(folder)))
    tok = loaded.model.tokenizer
    ds = data.from_lists("two", [f"{t} {i}" for i, t in enumerate(TEXT * 4)], [0, 1] * 4)  # distinct texts
    batch = data.tokenize(
        ds, tok, prepend_bos=loaded.provenance.prepend_bos, bos_token_id=tok.bos_token_id, max_length=32
    )
    cfg = ExtractConfig(hook="blocks.1.hook_resid_pre", positions="last", progress=False)
    entry = CacheEntry(root, cache_request(loaded.provenance, batch, cfg))
    return extract(loaded.model, batch, cfg, cache=entry).acts_ND, entry.key


def test_overwritten_local_weights_are_recomputed_not_reused(tmp_path, gpt2_tokenizer):
    import os

    from transformers import AutoModelForCausalLM

    folder = _save_tiny_hf("gpt2", tmp_path / "gpt2", gpt2_tokenizer)
    before, key_before = _cached_acts(folder, tmp_path / "cache")
    # Overwrite the weights in place with ones of the same size, then put the old mtime back: only
    # the bytes tell the two apart.
    weights = folder / "model.safetensors"
    stat = weights.stat()
    hf = AutoModelForCausalLM.from_pretrained(folder)
    with torch.no_grad():
        for p in hf.parameters():
            p.mul_(1.5)
    hf.save_pretrained(folder)
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert weights.stat().st_size == stat.st_size
    after, key_after = _cached_acts(folder, tmp_path / "cache")
    assert key_after != key_before
    assert not torch.allclose(after, before)
    fresh, _ = _cached_acts(folder, tmp_path / "fresh-cache")
    torch.testing.assert_close(after, fresh, rtol=0, atol=0)


def test_moved_local_folder_keeps_its_cache_key(tmp_path, gpt2_tokenizer):
    folder = _save_tiny_hf("gpt2", tmp_path / "a" / "gpt2", gpt2_tokenizer)
    acts, key = _cached_acts(folder, tmp_path / "cache")
    moved = shutil.copytree(folder, tmp_path / "b" / "elsewhere")
    acts_moved, key_moved = _cached_acts(moved, tmp_path / "cache")
    assert key_moved == key and str(tmp_path) not in key
    torch.testing.assert_close(acts_moved, acts)


def _fake_conversion(folder: Path) -> Path:
    """A converted-model folder as ``convert_gguf`` leaves it (small files), with its marker."""
    from safetensors.torch import save_file

    from auditkit.models.embedded import write_marker

    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    save_file({"w": torch.arange(64.0).reshape(8, 8)}, str(folder / "model.safetensors"))
    write_marker(folder, source="model.gguf")
    return folder


def _replace_bytes(path: Path, change) -> None:
    """Rewrite ``path`` as a new file (new inode), as a copy or a restore would."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(change(bytearray(path.read_bytes())))
    tmp.replace(path)


def _flipped(blob: bytearray) -> bytes:
    blob[-3] ^= 0xFF
    return bytes(blob)


@pytest.mark.parametrize(
    "damage, tag, reason",
    [
        (lambda f: _replace_bytes(f / "model.safetensors", _flipped), "corrupt", "checksum"),
        (lambda f: _replace_bytes(f / "model.safetensors", lambda b: bytes(b[:-8])), "corrupt", "checksum"),
        (lambda f: (f / "complete").unlink(), "corrupt", "half-written"),
        (lambda f: (f / "complete").write_text('{"source": "model.gguf"}'), "stale", "older auditkit"),
    ],
    ids=["flipped-byte", "truncated", "no-marker", "old-format"],
)
def test_damaged_converted_model_is_moved_aside(tmp_path, caplog, damage, tag, reason):
    from auditkit.models.embedded import conversion_is_intact

    folder = _fake_conversion(tmp_path / "models" / "smollm2-135m-0123")
    assert conversion_is_intact(folder)
    damage(folder)
    with caplog.at_level("WARNING", logger="auditkit.cache"):
        assert not conversion_is_intact(folder)
    assert not folder.exists() and len(list(folder.parent.glob(f"{folder.name}.{tag}-*"))) == 1
    assert len(caplog.records) == 1 and str(folder) in caplog.records[0].getMessage()
    assert reason in caplog.records[0].getMessage()
