"""Controls on their own: what each keeps and what it destroys."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from auditkit import data
from auditkit.controls import control_task, gaussian_reinit, random_tokens, shuffled_labels, spectral_reinit
from auditkit.errors import ConfigError
from auditkit.models import ModelSpec, load_model
from auditkit.types import ActivationSet


def _acts(labels, groups=None, is_test=None):
    n = len(labels)
    return ActivationSet(
        acts_ND=torch.zeros(n, 2),
        labels_N=np.asarray(labels, dtype=np.int64),
        token_ids_N=np.zeros(n, np.int64),
        example_ids_N=np.arange(n),
        positions_N=np.zeros(n, np.int64),
        is_test_N=np.asarray(is_test if is_test is not None else np.arange(n) % 4 == 0),
        hook="h",
        positions="all",
        class_names=("a", "b", "c"),
        groups_N=groups,
    )


def test_shuffled_labels_keep_marginals_per_split_and_change_assignment():
    rng = np.random.default_rng(0)
    acts = _acts(rng.integers(0, 3, 400))
    out = shuffled_labels(acts, seed=1)
    for side in (False, True):
        m = acts.is_test_N == side
        np.testing.assert_array_equal(
            np.bincount(out.labels_N[m], minlength=3), np.bincount(acts.labels_N[m], minlength=3)
        )
    assert (out.labels_N != acts.labels_N).mean() > 0.4
    np.testing.assert_array_equal(shuffled_labels(acts, seed=1).labels_N, out.labels_N)


def test_control_task_is_one_label_per_type_independent_of_order():
    words = [f"w{i % 50}" for i in range(1000)]
    labels = np.array([i % 3 for i in range(1000)])
    acts = _acts(labels, groups=tuple(words))
    out = control_task(acts, seed=4)
    by_type = {}
    for w, y in zip(words, out.labels_N):
        assert by_type.setdefault(w, y) == y  # identical for every occurrence, train and test alike
    # Independent of the order rows are seen.
    perm = np.random.default_rng(0).permutation(1000)
    shuffled = _acts(labels[perm], groups=tuple(words[i] for i in perm))
    np.testing.assert_array_equal(control_task(shuffled, seed=4).labels_N, out.labels_N[perm])
    # Drawn from the empirical distribution: with 2,000 types each class appears about a third of the time.
    many = _acts(np.arange(6000) % 3, groups=tuple(f"t{i % 2000}" for i in range(6000)))
    freq = np.bincount(control_task(many, seed=0).labels_N, minlength=3) / 6000
    assert np.all(np.abs(freq - 1 / 3) < 0.05)
    assert not np.array_equal(control_task(acts, seed=5).labels_N, out.labels_N)


def test_control_task_keeps_unlabelled_rows_unlabelled():
    out = control_task(_acts([0, -1, 1, 2, -1]), seed=0)
    assert list(out.labels_N[[1, 4]]) == [-1, -1] and (out.labels_N[[0, 2, 3]] >= 0).all()


@pytest.mark.parametrize("variant", ["uniform", "unigram"])
def test_random_tokens_keep_lengths_bos_specials_and_labels(variant):
    loaded = load_model(ModelSpec(name="tiny-gpt2"))
    tok = loaded.model.tokenizer
    ds = data.from_lists("t", ["hello there world", "ab", "the quick brown fox"] * 4, [0, 1, 0] * 4)
    batch = data.tokenize(ds, tok, prepend_bos=True, bos_token_id=tok.bos_token_id)
    out = random_tokens(batch, 3, vocab_size=loaded.model.cfg.d_vocab, variant=variant)
    assert torch.equal(out.mask_BL, batch.mask_BL) and torch.equal(out.tokens_BL[:, 0], batch.tokens_BL[:, 0])
    assert torch.equal(out.tokens_BL[~batch.mask_BL], batch.tokens_BL[~batch.mask_BL])
    real = batch.mask_BL.clone()
    real[:, 0] = False
    assert (out.tokens_BL[real] != batch.tokens_BL[real]).float().mean() > 0.5
    assert not set(out.tokens_BL[real].tolist()) & set(batch.special_token_ids)
    np.testing.assert_array_equal(out.labels_M, batch.labels_M)
    assert out.dataset_fingerprint != batch.dataset_fingerprint and out.variant.startswith("random-tokens")
    if variant == "unigram":
        assert set(out.tokens_BL[real].tolist()) <= set(batch.tokens_BL[real].tolist())


def _matrices(model):
    from auditkit.controls.weights import _is_bias

    return {n: p for n, p in model.named_parameters() if p.ndim >= 2 and not _is_bias(n)}


def test_spectral_reinit_keeps_singular_values_and_randomises_vectors():
    model = load_model(ModelSpec(name="tiny-pythia", seed=0)).model
    with torch.no_grad():  # random init leaves biases and gains at 0 and 1: give them something to keep
        for n, p in model.named_parameters():
            if p.ndim == 1 or n.split(".")[-1].startswith("b_"):
                p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(0)))
    before = {n: p.clone() for n, p in model.named_parameters()}
    new = spectral_reinit(model, seed=0)
    for n, p in model.named_parameters():  # the input is untouched
        assert torch.equal(p, before[n])
    for name, W in _matrices(model).items():
        W2 = dict(new.named_parameters())[name]
        s1 = torch.linalg.svdvals(W.double())
        s2 = torch.linalg.svdvals(W2.double())
        assert ((s1 - s2).abs() / s1.max(dim=-1, keepdim=True).values).max() < 1e-5, name
        if W.ndim == 2 and min(W.shape) >= 16:
            # Largest |cosine| between the top-5 singular vectors, old vs new, against random unit vectors.
            for side, dim in ((0, W.shape[0]), (1, W.shape[1])):
                u1 = (
                    torch.linalg.svd(W.double())[side * 2][:, :5]
                    if side == 0
                    else torch.linalg.svd(W.double())[2][:5].T
                )
                u2 = (
                    torch.linalg.svd(W2.double())[side * 2][:, :5]
                    if side == 0
                    else torch.linalg.svd(W2.double())[2][:5].T
                )
                assert (u1.T @ u2).abs().max() < 5 / dim**0.5, (name, side)
    for name in ("blocks.0.ln1.w", "blocks.0.ln1.b"):
        assert torch.equal(dict(new.named_parameters())[name], dict(model.named_parameters())[name])
    b_old, b_new = model.blocks[0].mlp.b_in, new.blocks[0].mlp.b_in
    torch.testing.assert_close(b_old.norm(), b_new.norm())
    assert abs(float(b_old @ b_new) / float(b_old.norm() ** 2)) < 0.5
    torch.testing.assert_close(model.blocks[0].attn.b_Q.norm(dim=-1), new.blocks[0].attn.b_Q.norm(dim=-1))


def test_spectral_reinit_keeps_tied_embeddings_tied():
    model = load_model(ModelSpec(name="tiny-gpt2", seed=0)).model
    with torch.no_grad():
        model.unembed.W_U.copy_(model.embed.W_E.T)
    new = spectral_reinit(model, seed=1)
    assert torch.equal(new.unembed.W_U, new.embed.W_E.T)
    assert not torch.allclose(new.embed.W_E, model.embed.W_E)


def test_gaussian_reinit_matches_each_tensors_moments():
    model = load_model(ModelSpec(name="tiny-gpt2", seed=0)).model
    new = gaussian_reinit(model, seed=0)
    for (name, p), (_, q) in zip(model.named_parameters(), new.named_parameters()):
        if p.numel() >= 4096:
            assert abs(float(q.mean() - p.mean())) < 0.05 * float(p.std()) + 1e-6, name
            assert abs(float(q.std() / p.std()) - 1) < 0.05, name
            assert not torch.allclose(p, q)
    kept = gaussian_reinit(model, seed=0, keep_embeddings=True)
    assert torch.equal(kept.embed.W_E, model.embed.W_E) and torch.equal(kept.unembed.W_U, model.unembed.W_U)
    assert not torch.equal(kept.blocks[0].attn.W_Q, model.blocks[0].attn.W_Q)


@pytest.mark.parametrize("tied", [False, True])
def test_reinit_matrix_is_the_weight_control_models_matrix(tied):
    from auditkit.controls.weights import reinit_matrix

    model = load_model(ModelSpec(name="tiny-gpt2", seed=0)).model
    if tied:
        with torch.no_grad():
            model.unembed.W_U.copy_(model.embed.W_E.T)
    for control, build in (("spectral-reinit", spectral_reinit), ("gaussian-reinit", gaussian_reinit)):
        new = build(model, 11)
        for matrix, W in (("W_E", new.embed.W_E), ("W_U", new.unembed.W_U)):
            alone = reinit_matrix(model, matrix, control, 11)
            assert torch.equal(alone, W), (control, matrix)
            assert not torch.allclose(alone, dict(W_E=model.embed.W_E, W_U=model.unembed.W_U)[matrix])
    with pytest.raises(ConfigError, match="W_X"):
        reinit_matrix(model, "W_X", "spectral-reinit", 0)


def test_every_control_has_a_description_a_colour_and_a_short_name():
    """A control is declared with everything the reports need: a sentence on what it destroys, its colour in
    every figure and its short tick name (a new control missing one would fall back to a hashed colour and
    its raw name, and its report section would have no description)."""
    from auditkit.audit.config import KNOWN_CONTROLS
    from auditkit.audit.options import SAE_BASELINE_DESCRIPTIONS
    from auditkit.controls import DESCRIPTIONS
    from auditkit.report.plots import PALETTE, SHORT_NAMES

    described = {**DESCRIPTIONS, **SAE_BASELINE_DESCRIPTIONS}
    for name in KNOWN_CONTROLS:
        assert described.get(name), name
        assert name in PALETTE and name in SHORT_NAMES, name
    colours = [PALETTE[n] for n in KNOWN_CONTROLS if n in PALETTE]
    assert len(colours) == len(KNOWN_CONTROLS)


def test_the_per_purpose_tables_are_filters_over_the_registry_in_its_order():
    """The registry is the one declaration: every older table is derived from it, in registration order (the
    order of columns and of the arms' seeds), and the built-in set and order are the ones every committed report
    was run with."""
    from auditkit import controls as c
    from auditkit.audit.matrix import MATRIX_CONTROLS
    from auditkit.controls import registry
    from auditkit.steering.run import WEIGHT_CONTROLS as STEERING

    stages = {n: k.stage for n, k in registry.REGISTRY.items()}
    assert (
        c.ALL_CONTROLS
        == tuple(n for n, s in stages.items() if s in registry.ARM_STAGES)
        == (
            "shuffled-labels",
            "control-task",
            "random-tokens-uniform",
            "random-tokens-unigram",
            "spectral-reinit",
            "gaussian-reinit",
            "step0",
        )
    )
    assert list(c.LEXICAL_CONTROLS) == ["lexical-bow", "lexical-length", "lexical-last-token"]
    assert c.LABEL_CONTROLS == {n: registry.get(n).apply for n, s in stages.items() if s == "label"}
    assert c.TOKEN_CONTROLS == {"random-tokens-uniform": "uniform", "random-tokens-unigram": "unigram"}
    assert c.RANDOM_MODEL_CONTROLS == STEERING == ("spectral-reinit", "gaussian-reinit")
    assert MATRIX_CONTROLS == ("shuffled-labels", "spectral-reinit", "gaussian-reinit")
    sentence = ("sentence",)
    assert c.DEFAULT_LEVELS == {"control-task": ("token",), "lexical-bow": sentence, "lexical-length": sentence}
    assert c.DESCRIPTIONS == {n: k.description for n, k in registry.REGISTRY.items()}


def test_a_control_declaration_is_checked_when_registered():
    from auditkit.controls.registry import Control, register

    ok = dict(name="x", stage="label", apply=shuffled_labels, colour="#000001", short_name="x", description="d")
    for bad, match in (
        (dict(stage="activations"), "stage"),
        (dict(colour="blue"), "colour"),
        (dict(description=""), "description"),
        (dict(apply=None), "apply"),
    ):
        with pytest.raises(ValueError, match=match):
            Control(**{**ok, **bad})
    with pytest.raises(ValueError, match="registered already"):
        register(Control(**{**ok, "name": "shuffled-labels"}))
