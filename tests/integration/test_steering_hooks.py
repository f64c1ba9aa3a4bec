"""Steering through real TransformerLens hooks on a tiny model, end to end to the written report."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import planted_features  # known-answer features, shared by the steering tests

from auditkit.errors import HookError
from auditkit.models import ModelSpec
from auditkit.report.steering import write_steering
from auditkit.steering.data import tokenize_texts
from auditkit.steering.directions import dual_basis, off_on, unit
from auditkit.steering.effects import later_shifts
from auditkit.steering.hooks import Site, prefix_residual, read_last, steered_rows
from auditkit.steering.run import SteeringConfig, run_steering

TEXTS = ("Plumstead railway station", "Sappada", "a", "Toms River (CDP), New Jersey", "Glenshaw is here")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tokens(tiny_gpt2):
    tok = tiny_gpt2.model.tokenizer
    return tokenize_texts(TEXTS, tok, bos_token_id=tok.bos_token_id, max_length=24)


@torch.inference_mode()
def test_restarting_from_the_cached_prefix_equals_the_full_forward_pass(tiny_gpt2, tokens):
    model, (tokens_TL, lengths) = tiny_gpt2.model, tokens
    site = Site(hook="blocks.1.hook_resid_pre", later_hook="blocks.1.hook_resid_post", positions="all", has_bos=True)
    resid = prefix_residual(model, tokens_TL, lengths, 1, batch_size=2)
    zero = steered_rows(
        model,
        site,
        resid,
        tokens_TL,
        lengths,
        np.arange(len(TEXTS)),
        torch.zeros(len(TEXTS), 64),
        keep_logprobs=True,
        text_ce=True,
        batch_size=2,
    )
    last = torch.as_tensor(lengths - 1)
    full = torch.log_softmax(model(tokens_TL), -1)[torch.arange(len(TEXTS)), last]
    assert torch.allclose(zero.logprob_last_RV, full, atol=1e-5)
    nll_BL = model(tokens_TL, return_type="loss", loss_per_token=True)
    valid_BL = torch.arange(nll_BL.shape[1])[None] < torch.as_tensor(lengths - 1)[:, None]
    assert torch.allclose(zero.ce_R.float(), (nll_BL * valid_BL).sum(1) / valid_BL.sum(1), atol=1e-5)
    read = read_last(model, tokens_TL, lengths, site, batch_size=3)
    assert torch.allclose(read.last_TD[site.later_hook], zero.later_RD, atol=1e-5)
    # A vector written at the last position changes the next-token distribution there and leaves every
    # earlier position's prediction (all the text's own cross-entropy) alone.
    bump = 3.0 * torch.randn(64, generator=torch.Generator().manual_seed(0)).expand(len(TEXTS), 64)
    last_only = steered_rows(
        model,
        Site(**{**site.__dict__, "positions": "last"}),
        resid,
        tokens_TL,
        lengths,
        np.arange(len(TEXTS)),
        bump,
        clean_lp_TV=zero.logprob_last_RV,
        text_ce=True,
    )
    assert bool((last_only.kl_R > 1e-4).all())
    assert torch.allclose(last_only.ce_R, zero.ce_R, atol=1e-6)
    with pytest.raises(HookError, match="must come after"):
        Site(
            hook="blocks.1.hook_resid_post", later_hook="blocks.1.hook_resid_pre", positions="all", has_bos=True
        ).validate(model)
    with pytest.raises(HookError, match="residual-stream"):
        Site(hook="blocks.0.attn.hook_z", later_hook="blocks.1.hook_resid_pre", positions="all", has_bos=True).validate(
            model
        )


@torch.inference_mode()
@pytest.mark.parametrize("cosine, surgical_probe", [(0.6, False), (0.0, True)])
def test_planted_readers_through_real_hooks(tiny_gpt2, tokens, cosine, surgical_probe):
    """Write at blocks.1.hook_resid_pre, read at blocks.1.hook_resid_post of a model whose block 1
    writes nothing (W_O, W_out, biases zeroed): the readout there sees exactly what the hook wrote."""
    model = copy.deepcopy(tiny_gpt2.model)
    for name in ("attn.W_O", "attn.b_O", "mlp.W_out", "mlp.b_out"):
        model.get_parameter(f"blocks.1.{name}").zero_()
    _, _, F = planted_features(4, 64, 3, cosine=cosine, seed=3)
    P = torch.linalg.pinv(F).T[None]  # readers of a planted basis: its dual rows, non-orthogonal if F is
    U = dual_basis(P)
    (tokens_TL, lengths), gaps = tokens, torch.ones(3, dtype=torch.float64)
    site = Site(hook="blocks.1.hook_resid_pre", later_hook="blocks.1.hook_resid_post", positions="all", has_bos=True)
    resid = prefix_residual(model, tokens_TL, lengths, 1, batch_size=8)
    T = len(TEXTS)
    clean = steered_rows(model, site, resid, tokens_TL, lengths, np.arange(T), torch.zeros(T, 64))
    for k in range(3):
        ratios = []
        for V in (U, P):
            delta = 5 * unit(V[0, k]).float().expand(T, 64)
            out = steered_rows(model, site, resid, tokens_TL, lengths, np.arange(T), delta)
            ratios.append(off_on(later_shifts(out.later_RD, clean.later_RD, P[0], gaps), k)[2])
        assert ratios[0] < 1e-3  # the dual vector moves only its own readout
        assert (ratios[1] < 0.05) if surgical_probe else (ratios[1] > 0.3)


def test_run_steering_end_to_end_and_write_the_report(tiny_gpt2, tmp_path):
    cfg = SteeringConfig(
        model=ModelSpec(name="tiny-gpt2"),
        datasets=("108_athlete_sport",),
        max_examples=48,
        n_eval=4,
        alphas=(0.0, 0.5, 1.0),
        seeds=(0, 1, 2),
        n_heldout=2,
        heldout_max_length=16,
        progress=False,
    )
    result = run_steering(cfg, loaded=tiny_gpt2)
    rows = result.rows
    assert set(rows["arm"]) == {"none", "spectral-reinit"}
    assert set(rows["direction"]) == {"logistic", "mass-mean", "lda", "dual", "random"}
    # byte tokens: every " word" starts with the same space byte, so no word is specific and none is scored
    assert len(result.concepts) == 3 and result.data["label_words"] == {}
    same = rows[(rows["metric"] == "same_ratio") & (rows["arm"] == "none")].groupby("direction")["value"].mean()
    assert same["dual"] < 1e-6 < same["logistic"]  # surgical at the hook by construction; the probe is not
    kl = result.summary[(result.summary["metric"] == "kl") & (result.summary["arm"] == "none")]
    kl = kl.groupby("alpha")["mean"].mean()
    assert kl[0.0] == 0 < kl[0.5] < kl[1.0]  # more dose, more change
    assert result.verdicts["none"]["reads_best"]["best"] in ("logistic", "mass-mean", "lda", "dual")
    out = write_steering(result, tmp_path / "steer")
    csv = pd.read_csv(out / "steering.csv")
    assert list(csv.columns[:6]) == ["direction", "concept", "seed", "alpha", "metric", "value"]
    md = (out / "steering.md").read_text()
    assert "reads best" in md and "writes best" in md and "dose_response.png" in md
    head = md[: md.index("## Rankings")]  # the first screen: the sentence, the comparison matrix, the figure
    assert "Steered `tiny-gpt2`" in head and "| direction | random direction | spectral-reinit |" in head
    assert "| logistic: reads |" in head and "| dual: writes |" in head and "![Dose-response" in head
    assert (out / "dose_response.png").stat().st_size > 1000
    write_steering(result, out)  # a rewrite replaces the folder and leaves no temporary sibling behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["steer"]


def test_several_binary_tasks_make_one_concept_each_and_train_only_on_their_own_texts(tiny_gpt2):
    from auditkit.steering.data import load_concepts
    from auditkit.steering.directions import concept_problems

    concepts = load_concepts(
        ("5_hist_fig_ismale", "6_hist_fig_isamerican"),
        template="{text} was",
        max_examples=20,
        seeds=(0, 1),
        test_fraction=0.25,
    )
    assert concepts.names == ("5_hist_fig_ismale:1", "6_hist_fig_isamerican:1")
    assert concepts.label_words == (None, None) and concepts.texts[0].endswith(" was")
    labels = concepts.labels_TC
    assert (labels[:20, 1] == -1).all() and (labels[20:, 0] == -1).all() and (labels[:20, 0] >= 0).all()
    _, train = concept_problems(labels, concepts.is_test_ST)  # problems (seed, concept), seed-major
    assert not bool(train[0, 20:].any()) and not bool(train[1, :20].any())
    cfg = SteeringConfig(
        model=ModelSpec(name="tiny-gpt2"),
        datasets=("5_hist_fig_ismale", "6_hist_fig_isamerican"),
        max_examples=24,
        n_eval=4,
        alphas=(0.0, 1.0),
        seeds=(0, 1),
        controls=(),
        positions="last",
        scale="gap",
        n_heldout=1,
        heldout_max_length=12,
        progress=False,
    )
    rows = run_steering(cfg, loaded=tiny_gpt2).rows
    on = rows[(rows["metric"] == "same_on") & (rows["alpha"] == 1.0) & (rows["direction"] != "random")]
    assert np.allclose(on["value"], 1.0)  # gap units: every direction moves its own readout by one class gap
