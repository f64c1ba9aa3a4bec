"""The interval of a selectivity (docs/controls.md, "The interval"): coverage near its nominal 95% on audits
simulated in the regime where audits run, degrees of freedom that follow the variance that binds, control
draws averaged per seed, and a jackknife sampling floor for AUROC and macro-F1."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from auditkit.metrics.classification import (
    ExampleScores,
    _auroc_leave_out,
    classification_metrics,
    example_scores,
    jackknife_pseudo_values,
)
from auditkit.metrics.selectivity import interval_df, interval_rule, mean_over_draws, selectivity_table


def _audit(
    rng: np.random.Generator, delta: float, seed_sd: float, n_test: int = 250, n_seeds: int = 3, base: float = 0.6
) -> pd.DataFrame:
    """Rows of one simulated audit: each seed scores ``n_test`` test texts (right / wrong per text) for the
    real arm and one control; the real arm's accuracy on a seed is ``base + delta`` plus a seed effect of
    standard deviation ``seed_sd`` (training on another split), the control's is ``base``."""
    rows = []
    for seed in range(n_seeds):
        clusters = np.arange(n_test) + 10_000 * seed
        p_real = np.clip(base + delta + rng.normal(0, seed_sd), 0.01, 0.99)
        for control, p in (("none", p_real), ("c", base)):
            right = (rng.random(n_test) < p).astype(np.float64)
            rows.append(
                dict(
                    method="m",
                    control=control,
                    seed=seed,
                    metric="accuracy",
                    value=right.mean(),
                    outcome=ExampleScores(right, clusters),
                )
            )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed_sd", [0.0, 0.03])
def test_the_interval_covers_the_true_difference_near_its_nominal_rate(seed_sd: float) -> None:
    """Where audits run (3 seeds, 250 test texts a seed) the interval contains the true difference in about
    95% of audits, with or without a seed effect as large as the sampling error. The old interval (Student's t
    on 2 degrees of freedom times the floor) covered in more than 99.5%: a test that fails on it."""
    rng = np.random.default_rng(0)
    delta, n = 0.05, 600
    covered = 0
    for _ in range(n):
        row = selectivity_table(_audit(rng, delta, seed_sd)).iloc[0]
        covered += row["ci_low"] <= delta <= row["ci_high"]
    rate = covered / n
    assert 0.92 <= rate <= 0.985, rate


def test_degrees_of_freedom_follow_the_variance_that_binds() -> None:
    assert interval_df(se_seeds=0.04, se=0.04, n_seeds=3, df_floor=700.0) == pytest.approx(2.0)  # seeds bind
    assert interval_df(se_seeds=0.01, se=0.03, n_seeds=3, df_floor=700.0) == pytest.approx(162.0)  # floor binds
    assert interval_df(se_seeds=0.001, se=0.03, n_seeds=3, df_floor=700.0) == 700  # capped at the floor's
    assert interval_df(se_seeds=0.0, se=0.03, n_seeds=3, df_floor=700.0) == 700  # seeds agree exactly
    # between: the multiplier shrinks smoothly from t(2) to the normal's
    qs = [stats.t.ppf(0.975, interval_df(s, 0.03, 3, 700.0)) for s in (0.03, 0.025, 0.02, 0.01)]
    assert qs == sorted(qs, reverse=True) and qs[0] == pytest.approx(4.303, abs=1e-3) and qs[-1] < 2.0


def test_a_table_reports_its_degrees_of_freedom_and_a_floor_binding_gives_a_narrower_interval() -> None:
    sel = selectivity_table(_audit(np.random.default_rng(1), 0.1, 0.0)).iloc[0]
    assert sel["df"] > 50  # the seeds agree within sampling error: the floor binds
    half = (sel["ci_high"] - sel["ci_low"]) / 2
    assert half == pytest.approx(stats.t.ppf(0.975, sel["df"]) * sel["sampling_se"], rel=1e-9)


def test_draws_of_a_control_enter_as_their_mean_per_seed() -> None:
    rng = np.random.default_rng(2)
    one = _audit(rng, 0.1, 0.0)
    draws = []
    for d in range(4):
        ctrl = one[one["control"] == "c"].copy()
        ctrl["value"] = ctrl["value"] + 0.01 * d
        ctrl["outcome"] = [ExampleScores(o.values_N + 0.01 * d, o.clusters_N) for o in ctrl["outcome"]]
        draws.append(ctrl.assign(draw=d))
    rows = pd.concat([one[one["control"] == "none"].assign(draw=0), *draws], ignore_index=True)
    mean = mean_over_draws(rows)
    assert len(mean) == 6 and "draw" not in mean.columns
    ctrl = mean[mean["control"] == "c"].set_index("seed")["value"]
    expected = one[one["control"] == "c"].set_index("seed")["value"] + 0.015
    assert np.allclose(ctrl.sort_index(), expected.sort_index())
    sel = selectivity_table(rows).iloc[0]  # one row per seed after averaging: no pairing error
    assert sel["n_seeds"] == 3


def test_auroc_and_macro_f1_get_a_jackknife_floor_that_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    y = torch.as_tensor(rng.integers(0, 2, 90))
    proba = torch.as_tensor(rng.dirichlet([1.0, 1.0], 90))
    clusters = np.repeat(np.arange(30), 3)
    scores = example_scores(y, proba, clusters)
    assert set(scores) == {"accuracy", "balanced_accuracy", "macro_f1", "auroc"}
    full = classification_metrics(y, proba)
    for metric in ("auroc", "macro_f1"):
        loo = np.array([classification_metrics(y[clusters != g], proba[clusters != g])[metric] for g in range(30)])
        expected = jackknife_pseudo_values(full[metric], loo)
        assert np.allclose(scores[metric].values_N, expected)
        # the clustered spread of the pseudo-values is the delete-one jackknife standard error
        jack = math.sqrt(29 / 30 * ((loo - loo.mean()) ** 2).sum())
        pv = scores[metric].values_N
        assert math.sqrt(pv.var(ddof=1) / 30) == pytest.approx(jack, rel=1e-9)


def test_the_auroc_jackknife_agrees_with_delong_on_independent_rows() -> None:
    """For one row per text the jackknife variance of AUROC is close to DeLong's (1988)."""
    rng = np.random.default_rng(4)
    n = 400
    y = rng.integers(0, 2, n)
    score = rng.normal(0, 1, n) + 0.8 * y
    loo = _auroc_leave_out(y, score, np.arange(n))
    jack = math.sqrt((n - 1) / n * ((loo - loo.mean()) ** 2).sum())
    pos, neg = score[y == 1], score[y == 0]
    v10 = (pos[:, None] > neg[None, :]).mean(1)
    v01 = (pos[:, None] > neg[None, :]).mean(0)
    delong = math.sqrt(v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg))
    assert jack == pytest.approx(delong, rel=0.05)


def test_auroc_rows_of_an_audit_get_a_sampling_floor() -> None:
    rng = np.random.default_rng(5)
    rows = []
    for seed in range(3):
        y = torch.as_tensor(rng.integers(0, 2, 120))
        for control, shift in (("none", 1.0), ("c", 0.0)):
            logit = torch.as_tensor(rng.normal(0, 1, 120)) + shift * (2 * y - 1)
            proba = torch.stack([1 - torch.sigmoid(logit), torch.sigmoid(logit)], 1)
            out = example_scores(y, proba, np.arange(120))
            rows.append(
                dict(
                    method="m",
                    control=control,
                    seed=seed,
                    metric="auroc",
                    value=classification_metrics(y, proba)["auroc"],
                    outcome=out["auroc"],
                )
            )
    sel = selectivity_table(pd.DataFrame(rows)).iloc[0]
    assert sel["sampling_se"] > 0 and "between-seed spread only" not in sel["note"]


def _weight_null(
    rng: np.random.Generator,
    draw_sd: float,
    advantage: float = 0.0,
    n_test: int = 250,
    n_seeds: int = 3,
    base: float = 0.7,
) -> pd.DataFrame:
    """Rows of an audit whose "trained" model is itself one draw of a random-model control (the weight-control
    null, ``advantage`` 0): every model draw reads the label at ``base`` plus a draw effect of standard
    deviation ``draw_sd``; the audited draw is fixed across seeds and reads ``advantage`` better, each seed's
    control arm is a fresh draw."""
    audited = base + advantage + rng.normal(0, draw_sd)
    rows = []
    for seed in range(n_seeds):
        clusters = np.arange(n_test) + 10_000 * seed
        for control, p in (("none", audited), ("gaussian-reinit", base + rng.normal(0, draw_sd))):
            right = (rng.random(n_test) < np.clip(p, 0.01, 0.99)).astype(np.float64)
            rows.append(
                dict(
                    method="m",
                    control=control,
                    seed=seed,
                    metric="accuracy",
                    value=right.mean(),
                    outcome=ExampleScores(right, clusters),
                )
            )
    return pd.DataFrame(rows)


def test_a_random_model_control_gets_a_prediction_interval_that_holds_the_weight_null() -> None:
    """On the weight-control null (the audited model is one draw of the control, draws differ by 0.06 in how
    well they read the label) the interval of the mean difference lies above zero far more often than 2.5%:
    a draw that reads the label well has a real advantage over the mean draw. The prediction interval, which
    adds the spread of the control's scores, keeps the upper-side rate near its level."""
    rng = np.random.default_rng(1)
    n, plain, predicted = 400, 0, 0
    for _ in range(n):
        rows = _weight_null(rng, draw_sd=0.06)
        plain += selectivity_table(rows, threshold=0.0).iloc[0]["ci_low"] > 0
        predicted += selectivity_table(rows, threshold=0.0, draw_spread=("gaussian-reinit",)).iloc[0]["ci_low"] > 0
    assert plain / n > 0.08, plain / n  # the interval of the mean difference: not a test of this null
    assert predicted / n <= 0.045, predicted / n  # 2.5% nominal; 400 audits
    row = selectivity_table(_weight_null(rng, draw_sd=0.06), draw_spread=("gaussian-reinit",)).iloc[0]
    assert row["note"].startswith("prediction interval")
    assert "prediction interval" in interval_rule(selectivity_table(rows, draw_spread=("gaussian-reinit",)))
    assert "prediction interval" not in interval_rule(selectivity_table(rows))


def test_the_prediction_interval_keeps_a_clear_advantage_selective() -> None:
    """A model 0.25 above draws that read the label alike stays selective under the prediction interval (at 0.15
    about two times in three: the price of counting each control score's own noise as spread, measured in
    docs/controls.md)."""
    rng = np.random.default_rng(2)
    hits = sum(
        selectivity_table(_weight_null(rng, draw_sd=0.0, advantage=0.25), draw_spread=("gaussian-reinit",)).iloc[0][
            "verdict"
        ]
        == "selective"
        for _ in range(100)
    )
    assert hits >= 90, hits


def test_the_prediction_interval_is_never_narrower_than_the_interval_it_widens() -> None:
    """Adding a variance with its own degrees of freedom can raise Satterthwaite's df above the mean difference's
    (two components of 2 df each give 4: t falls from 4.30 to 2.78) and so narrow the interval; the two variances
    come from the same control scores, so the prediction interval is never narrower than the one it widens."""
    rng = np.random.default_rng(3)
    for _ in range(50):
        rows = _weight_null(rng, draw_sd=0.03)
        plain = selectivity_table(rows).iloc[0]
        predicted = selectivity_table(rows, draw_spread=("gaussian-reinit",)).iloc[0]
        assert predicted["ci_low"] <= plain["ci_low"] + 1e-12 and predicted["ci_high"] >= plain["ci_high"] - 1e-12
