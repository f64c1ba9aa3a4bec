"""Extraction: exact activations at any hook and position, early stop, hooks removed, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from auditkit import data
from auditkit.errors import DataError, HookError
from auditkit.extract import ExtractConfig, embedding_matrices, extract, hook_stop_layer
from auditkit.models import ModelSpec, load_model

TEXTS = ["a cat", "the dog sat on a mat today", "hello", "bright stars and quiet seas", "x y z", "end"]


@pytest.fixture(scope="module")
def tiny():
    return load_model(ModelSpec(name="tiny-gpt2", seed=3))


@pytest.fixture(scope="module")
def batch(tiny):
    ds = data.from_lists("toy", TEXTS, [0, 1, 0, 1, 0, 1])
    tok = tiny.model.tokenizer
    return data.tokenize(ds, tok, prepend_bos=True, bos_token_id=tok.bos_token_id, max_length=64)


def _reference(model, batch, hook):
    """Per-example activations from TransformerLens's own run_with_cache, one unpadded text at a time."""
    out = []
    for b in range(batch.n_examples):
        n = int(batch.lengths_B[b])
        _, cache = model.run_with_cache(batch.tokens_BL[b : b + 1, :n])
        out.append(cache[hook][0].reshape(n, -1))
    return out


@pytest.mark.parametrize("hook", ["blocks.1.hook_resid_pre", "blocks.0.attn.hook_z", "blocks.1.mlp.hook_post"])
def test_all_positions_match_run_with_cache(tiny, batch, hook):
    # Chunks of 4 texts, forward batches of 3 grouped by length: rows must still come back in plan order.
    cfg = ExtractConfig(hook=hook, positions="all", include_bos=True, batch_size=3, chunk_size=4, progress=False)
    acts = extract(tiny.model, batch, cfg)
    ref = torch.cat(_reference(tiny.model, batch, hook))
    assert acts.n == batch.n_tokens
    torch.testing.assert_close(acts.acts_ND, ref, atol=1e-5, rtol=1e-5)
    assert set(acts.labels_N.tolist()) <= {0, 1}


def test_last_and_mean_positions_with_padding(tiny, batch):
    hook = "blocks.1.hook_resid_post"
    ref = _reference(tiny.model, batch, hook)
    last = extract(tiny.model, batch, ExtractConfig(hook=hook, positions="last", batch_size=3, progress=False))
    mean = extract(tiny.model, batch, ExtractConfig(hook=hook, positions="mean", batch_size=3, progress=False))
    order = last.example_ids_N
    torch.testing.assert_close(last.acts_ND, torch.stack([ref[b][-1] for b in order]), atol=1e-5, rtol=1e-5)
    # The mean skips BOS by default.
    torch.testing.assert_close(mean.acts_ND, torch.stack([ref[b][1:].mean(0) for b in order]), atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(last.token_ids_N, batch.tokens_BL[order, batch.lengths_B[order] - 1].numpy())


@pytest.mark.parametrize("cached", [False, True])
def test_rows_of_repeated_texts_keep_their_place_across_chunks(tiny, tmp_path, cached):
    """A repeated text's copies sit where the source had them, so an example's rows are not adjacent in the
    plan: every row must still carry its own example's activations, chunk by chunk and from the cache."""
    from auditkit.cache import CacheEntry

    texts = TEXTS + ["a cat", "hello", "end"]  # copies of examples 0, 2 and 5, after the others
    ds = data.from_lists("toy", texts, [0, 1, 0, 1, 0, 1, 0, 0, 1])
    assert (np.diff(ds.item_example_M) < 0).any()
    tok = tiny.model.tokenizer
    rep = data.tokenize(ds, tok, prepend_bos=True, bos_token_id=tok.bos_token_id, max_length=64)
    hook = "blocks.1.hook_resid_post"
    ref = _reference(tiny.model, rep, hook)
    cfg = ExtractConfig(hook=hook, positions="last", batch_size=2, chunk_size=2, progress=False)
    entry = (lambda: CacheEntry(tmp_path, {"test": "repeated"})) if cached else (lambda: None)
    acts = extract(tiny.model, rep, cfg, cache=entry())
    if cached:  # the finished entry, read back, is in the same order
        acts = extract(tiny.model, rep, cfg, cache=entry())
    expected = torch.stack([ref[b][-1] for b in acts.example_ids_N])
    torch.testing.assert_close(acts.acts_ND, expected, atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(acts.example_ids_N, rep.item_example_M)


def test_forward_pass_stops_after_the_last_needed_block(tiny, batch):
    calls = []
    handle = tiny.model.blocks[1].register_forward_hook(lambda *a: calls.append(1))
    try:
        extract(tiny.model, batch, ExtractConfig(hook="blocks.0.hook_resid_post", positions="last", progress=False))
    finally:
        handle.remove()
    assert calls == []
    assert hook_stop_layer(tiny.model, "blocks.0.hook_resid_post") == 1
    assert hook_stop_layer(tiny.model, "hook_embed") == 0
    assert hook_stop_layer(tiny.model, "ln_final.hook_normalized") is None


def test_resid_pre_is_read_before_its_block_runs(tiny, batch):
    """blocks.1.hook_resid_pre is blocks.0.hook_resid_post: block 1 itself never runs."""
    calls = []
    handle = tiny.model.blocks[1].register_forward_hook(lambda *a: calls.append(1))
    try:
        acts = extract(
            tiny.model, batch, ExtractConfig(hook="blocks.1.hook_resid_pre", positions="all", progress=False)
        )
    finally:
        handle.remove()
    assert calls == []
    ref = torch.cat([r[1:] for r in _reference(tiny.model, batch, "blocks.1.hook_resid_pre")])
    torch.testing.assert_close(acts.acts_ND, ref, atol=1e-5, rtol=1e-5)


def test_hooks_are_removed_even_when_extraction_fails(tiny, batch):
    with pytest.raises(HookError):
        extract(tiny.model, batch, ExtractConfig(hook="blocks.0.attn.hook_pattern", progress=False))
    assert all(not hp._forward_hooks for hp in tiny.model.hook_dict.values())


def test_hook_typo_suggests_close_names(tiny, batch):
    with pytest.raises(HookError, match="did you mean blocks.1.hook_resid_pre"):
        extract(tiny.model, batch, ExtractConfig(hook="blocks.1.hook_resid_pr", progress=False))


def test_layer_out_of_range_names_the_range(tiny, batch):
    with pytest.raises(HookError, match=r"out of range.*0\.\.1"):
        extract(tiny.model, batch, ExtractConfig(hook="blocks.7.hook_resid_pre", progress=False))


def test_nan_activations_are_rejected():
    loaded = load_model(ModelSpec(name="tiny-gpt2", seed=0))
    with torch.no_grad():
        loaded.model.W_E[100] = float("nan")
    tok = loaded.model.tokenizer
    ds = data.from_lists("nan", ["ddd", "e e", "fff", "g g"], [0, 1, 0, 1])
    batch = data.tokenize(ds, tok, prepend_bos=True, bos_token_id=tok.bos_token_id, max_length=16)
    batch.tokens_BL[0, 1] = 100
    with pytest.raises(DataError, match="NaN"):
        extract(loaded.model, batch, ExtractConfig(hook="blocks.0.hook_resid_post", positions="all", progress=False))


def test_embedding_matrices(tiny):
    mats = embedding_matrices(tiny.model)
    cfg = tiny.model.cfg
    assert mats.W_E_VD.shape == (cfg.d_vocab, cfg.d_model)
    assert mats.W_U_DV.shape == (cfg.d_model, cfg.d_vocab_out)
    assert mats.W_pos_LD is not None and mats.W_pos_LD.shape == (cfg.n_ctx, cfg.d_model)
    mats.W_E_VD.zero_()  # a copy: the model is untouched
    assert tiny.model.W_E.abs().sum() > 0
    assert embedding_matrices(load_model(ModelSpec(name="tiny-pythia")).model).W_pos_LD is None
