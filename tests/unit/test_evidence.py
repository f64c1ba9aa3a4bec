"""What a verdict can tell: power of the verdict rule, minimum detectable effects, p-values consistent with the
interval, q-values, and heatmap colours that cannot contradict the marks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from auditkit.metrics.classification import ExampleScores
from auditkit.metrics.evidence import (
    absence,
    add_q_values,
    evidence_columns,
    min_detectable_effect,
    power,
    q_values,
)
from auditkit.metrics.selectivity import selectivity_table
from auditkit.report.plots import FINDINGS, MARKS, cell_rgba, effect_colour, luminance, verdict_heatmap
from auditkit.report.summary import matrix_row


def _audit(rng: np.random.Generator, n_test: int, p_real: float, p_control: float, seeds: int = 3) -> pd.DataFrame:
    """One simulated audit: per seed, paired held-out outcomes of the real and the control arm."""
    rows = []
    for seed in range(seeds):
        real = (rng.random(n_test) < p_real).astype(float)
        control = (rng.random(n_test) < p_control).astype(float)
        clusters = np.arange(n_test)
        for arm, values in (("none", real), ("c", control)):
            rows.append(
                dict(
                    method="m",
                    control=arm,
                    seed=seed,
                    metric="accuracy",
                    value=values.mean(),
                    outcome=ExampleScores(values, clusters),
                )
            )
    return selectivity_table(pd.DataFrame(rows))


@pytest.mark.parametrize(("n_test", "effect"), [(250, 0.12), (60, 0.25)])
def test_power_of_the_verdict_rule_matches_simulated_audits(n_test: int, effect: float) -> None:
    rng = np.random.default_rng(0)
    p_real, p_control = 0.6 + effect, 0.6
    replicates = 300
    hits = sum(_audit(rng, n_test, p_real, p_control)["verdict"].iloc[0] == "selective" for _ in range(replicates))
    se_true = math.sqrt((p_real * (1 - p_real) + p_control * (1 - p_control)) / (n_test * 3))
    predicted = power(effect, se_true, se_true, 3)
    assert 0.2 < predicted < 0.95  # a regime where the check has teeth
    assert abs(hits / replicates - predicted) < 0.07


def test_the_minimum_detectable_effect_is_where_power_reaches_80_percent() -> None:
    se, floor = 0.03, 0.025
    mde = min_detectable_effect(se, floor, 3)
    assert power(mde, se, floor, 3) == pytest.approx(0.8, abs=1e-6)
    assert power(0.95 * mde, se, floor, 3) < 0.8
    # more spread, larger MDE; a larger threshold binds when the spread is tiny
    assert min_detectable_effect(2 * se, floor, 3) > mde
    assert min_detectable_effect(1e-4, 0.0, 3, threshold=0.05) == pytest.approx(0.05, abs=1e-3)
    assert math.isnan(min_detectable_effect(0.0, 0.0, 3))


def test_p_values_agree_with_the_interval_and_mde_rises_with_spread() -> None:
    rng = np.random.default_rng(1)
    tables = [_audit(rng, n, 0.6 + d, 0.6) for n in (40, 200) for d in (0.0, 0.1, 0.3)]
    table = pd.concat(tables, ignore_index=True)
    excludes_zero = (table["ci_low"] > 0) | (table["ci_high"] < 0)
    assert ((table["p_value"] < 0.05) == excludes_zero).all()
    small, large = table.iloc[:3], table.iloc[3:]
    assert small["mde"].min() > large["mde"].max()  # 40 test texts cannot detect what 200 can
    again = evidence_columns(table.drop(columns=["se", "p_value", "mde"]))  # from a saved table's columns alone
    pd.testing.assert_frame_equal(again, table)


def test_two_sided_metrics_get_no_mde() -> None:
    table = pd.DataFrame(
        [
            dict(
                method="m",
                control="c",
                metric="l0",
                n_seeds=3,
                selectivity=0.2,
                ci_low=-0.1,
                ci_high=0.5,
                sampling_se=math.nan,
                verdict="similar",
            )
        ]
    )
    out = evidence_columns(table)
    assert math.isnan(out["mde"].iloc[0]) and out["p_value"].iloc[0] > 0.05


def test_q_values_are_benjamini_hochberg_within_each_metric() -> None:
    p = pd.Series([0.001, 0.01, 0.02, 0.04, 0.5])
    by_hand = np.minimum.accumulate((p * 5 / np.arange(1, 6))[::-1])[::-1]
    assert np.allclose(q_values(p), by_hand)
    table = pd.DataFrame({"metric": ["a"] * 5 + ["b"], "p_value": [*p, 0.001]})
    out = add_q_values(table)
    assert out["q_value"].iloc[-1] == pytest.approx(0.001)  # its own family of one
    assert np.allclose(out["q_value"].iloc[:5], by_hand)
    assert math.isnan(q_values(pd.Series([math.nan, 0.01])).iloc[0])


def test_q_values_hold_the_false_discovery_rate_on_nulls_mixed_with_effects() -> None:
    rng = np.random.default_rng(2)
    false_shares = []
    for _ in range(200):
        null = rng.random(400)
        real = stats.norm.sf(rng.normal(4, 1, 40)) * 2
        q = q_values(pd.Series(np.concatenate([null, real])))
        found = q <= 0.05
        false_shares.append(found[:400].sum() / max(found.sum(), 1))
    assert np.mean(false_shares) <= 0.05


def test_absent_versus_not_shown_at_this_size() -> None:
    assert absence(0.01, 0.08, 0.05, 0.10) == "absent"
    assert absence(0.05, 0.40, 0.35, 0.10) == "not shown at this size"
    assert absence(0.05, 0.12, 0.09, 0.10) == "undecided"


def test_no_cell_that_is_not_a_finding_is_darker_than_a_finding() -> None:
    """Today's heatmaps painted a ✗ at normalised +1.00 darkest blue (a length cue both reinitialised models
    read at ceiling): colour must follow the mark."""
    effects = np.linspace(-1, 1, 41)
    metrics = ("accuracy", "auroc", "kl", "explained_variance")
    found = [luminance(cell_rgba(effect_colour(e, v, m))) for e in effects for m in metrics for v in FINDINGS]
    other = [
        luminance(cell_rgba(effect_colour(e, v, m)))
        for e in effects
        for m in metrics
        for v in MARKS
        if v not in FINDINGS
    ]
    assert max(found) < min(other)
    assert math.isnan(effect_colour(0.476, "not selective", "accuracy"))
    # anchored at chance and bounded: a finding 0.05 above chance is pale, never saturated by a near-ceiling control
    assert effect_colour(0.05, "selective", "accuracy") == pytest.approx(0.1)
    assert effect_colour(3.0, "selective", "accuracy") == 1.0
    assert effect_colour(9.8, "selective", "kl") == effect_colour(0.01, "selective", "kl")  # direction only


def test_verdict_heatmap_paints_what_the_marks_say(tmp_path) -> None:
    cells = pd.DataFrame(
        {
            "control": ["a", "b", "c"],
            "selectivity": [0.9, 0.02, -0.3],
            "ci_low": [-0.1, 0.01, -0.5],
            "ci_high": [1.9, 0.03, -0.1],
            "verdict": ["not selective", "selective", "control better"],
            "normalised": [1.0, 0.04, -0.5],
            "mde": [1.2, math.nan, math.nan],
        }
    )
    matrix = matrix_row(cells, "probe", metric="accuracy")
    fig = verdict_heatmap(matrix, tmp_path / "v.png", "t")
    image = fig.axes[0].images[0].get_array()
    cross, tick = luminance(tuple(image[0, 0])), luminance(tuple(image[0, 1]))
    assert cross > tick  # the ✗ of +0.9 is lighter than the ✓ of +0.02
    assert image[0, 2][0] > image[0, 2][2]  # control better: red side


def _sweep(verdicts_by_layer: dict[int, str], q: float = 0.001) -> object:
    from types import SimpleNamespace

    rows = []
    for layer, verdict in verdicts_by_layer.items():
        for control in ("shuffled-labels", "spectral-reinit"):
            rows.append(
                dict(
                    dataset="d",
                    hook=f"blocks.{layer}.hook_resid_pre",
                    layer=float(layer),
                    method="probe-logistic",
                    control=control,
                    metric="accuracy",
                    n_seeds=3,
                    selectivity=0.3,
                    ci_low=0.1,
                    ci_high=0.5,
                    sampling_se=0.02,
                    verdict=verdict,
                    p_value=0.01,
                    q_value=q,
                    se=0.05,
                    mde=0.2,
                )
            )
    config = SimpleNamespace(audit=SimpleNamespace(selectivity_threshold=0.05))
    return SimpleNamespace(selectivity=pd.DataFrame(rows), config=config)


def test_a_one_layer_spike_is_no_onset_over_depth() -> None:
    """The depth sweep's headline was a minimum over 31 hooks that landed on a one-layer spike (block 11, with
    blocks 12-13 ✗); the onset is the first hook from which every deeper hook holds."""
    from auditkit.report.sweep import first_selective

    layers = {0: "not selective", 1: "selective", 2: "not selective", 3: "selective", 4: "selective"}
    row = first_selective(_sweep(layers)).iloc[0]
    assert row["first_selective_hook"] == "blocks.1.hook_resid_pre"
    assert row["onset"] == "blocks.3.hook_resid_pre"
    assert row["selective_hooks"] == "3/5"
    # ✓ cells that do not survive the false-discovery control are no discoveries
    row = first_selective(_sweep(layers, q=0.2)).iloc[0]
    assert row["onset"] == "none" and row["per_test_selective_hooks"] == "3/5"


def test_the_control_task_on_sentences_is_named_for_what_it_is() -> None:
    """On sentence-level data the control task is i.i.d. random labels; matrices showed it as separate evidence
    without a word (issue 27)."""
    from auditkit.report.summary import control_task_note

    assert "second draw of random labels" in " ".join(control_task_note(("control-task",), ["sentence"]))
    assert control_task_note(("control-task",), ["token"]) == []
    assert control_task_note(("shuffled-labels",), ["sentence"]) == []  # named controls: nothing left out
    skipped = " ".join(control_task_note(("shuffled-labels",), ["sentence"], left_out=("control-task",)))
    assert "did not run" in skipped and "second shuffled-labels arm" in skipped


def test_a_table_saved_before_the_evidence_columns_gets_them_once_when_read() -> None:
    from auditkit.metrics.evidence import with_evidence

    rng = np.random.default_rng(3)
    table = pd.concat([_audit(rng, 100, 0.7, 0.6), _audit(rng, 100, 0.6, 0.6)], ignore_index=True)
    old = table.drop(columns=["se", "p_value", "mde"])
    pd.testing.assert_frame_equal(with_evidence(old, threshold=0.05), table)
    assert with_evidence(table, threshold=0.05) is table  # written today: read as it is
    assert "q_value" in with_evidence(old, threshold=0.05, family=True).columns


def test_every_not_selective_cell_says_its_mde_or_why_it_has_none():
    from types import SimpleNamespace

    from auditkit.report.summary import IDENTICAL, cell_text
    from auditkit.report.sweep import _cell

    # a zero-width interval: what selectivity_table gives two arms that score alike on every seed (both at ceiling)
    tied = dict(verdict="not selective", selectivity=0.0, value=0.0, ci_low=0.0, ci_high=0.0, mde=math.nan, q_value=1.0)
    spread = {**tied, "ci_low": -0.02, "ci_high": 0.03, "mde": 0.06}
    for fmt in (lambda r: cell_text(r), _cell):
        assert IDENTICAL in fmt(SimpleNamespace(**tied))
        assert "MDE 0.06" in fmt(SimpleNamespace(**spread)) and IDENTICAL not in fmt(SimpleNamespace(**spread))
