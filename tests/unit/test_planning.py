"""The planner (auditkit.metrics.planning): a pilot's standard errors scaled to another number of texts predict
the rate at which audits of that size, scored by ``selectivity_table``, call a cell selective; the texts
needed is the smallest size reaching the power."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from auditkit.errors import ConfigError
from auditkit.metrics.classification import ExampleScores
from auditkit.metrics.evidence import min_detectable_effect
from auditkit.metrics.planning import Pilot, power_at, scaled, stated_design, texts_needed
from auditkit.metrics.selectivity import selectivity_table

P_REAL, P_CONTROL, SEEDS, FRACTION = 0.70, 0.60, 3, 0.25


def _audits(rng: np.random.Generator, texts: int, replicates: int, seeds: int = SEEDS) -> pd.DataFrame:
    """``replicates`` simulated audits of ``texts`` texts, one selectivity row each (one ``selectivity_table``
    call: each replicate is a method): per seed, a fresh split's test texts, each scored 1 or 0 by the real arm
    and the control (Bernoulli, independent errors), paired over the same texts."""
    n_test = int(round(texts * FRACTION))
    clusters = np.arange(n_test)
    rows = []
    for replicate in range(replicates):
        for seed in range(seeds):
            for control, p in (("none", P_REAL), ("spectral-reinit", P_CONTROL)):
                correct = (rng.random(n_test) < p).astype(float)
                rows.append(
                    dict(
                        method=f"r{replicate}",
                        control=control,
                        seed=seed,
                        metric="accuracy",
                        value=correct.mean(),
                        outcome=ExampleScores(correct, clusters),
                    )
                )
    return selectivity_table(pd.DataFrame(rows))


def _pilot(row: pd.Series, test_texts: int) -> Pilot:
    return Pilot(se=float(row.se), sampling_se=float(row.sampling_se), n_seeds=int(row.n_seeds), test_texts=test_texts)


@pytest.fixture(scope="module")
def pilots() -> tuple[Pilot, list[Pilot]]:
    """A large pilot at 200 texts (1000 seeds, so that its standard errors are those of the design, to 2%), and
    40 ordinary pilots at 200 texts and 3 seeds (each one's ``se`` rests on two degrees of freedom)."""
    rng = np.random.default_rng(0)
    large = _audits(rng, 200, 1, seeds=1000).iloc[0]
    small = _audits(rng, 200, 40)
    return _pilot(large, 50), [_pilot(r, 50) for _, r in small.iterrows()]


@pytest.mark.parametrize("texts", [1000, 2000])
def test_predicted_power_matches_simulated_audits(pilots, texts):
    """A pilot at 200 texts predicts the share of 300 simulated audits at 5 and 10 times its size that call a
    true +0.10 selective, within 0.1; so does the stated design (exact variance here: independent errors). An
    ordinary 3-seed pilot's ``se`` (the interval's ``max(se_seeds, se_sampling)``) overstates the true standard
    error on average, so its plans lean conservative: their mean predicted power is not above the simulated one."""
    large, small = pilots
    simulated = float((_audits(np.random.default_rng(texts), texts, 300).verdict == "selective").mean())
    effect = P_REAL - P_CONTROL
    predicted = power_at(large, texts, SEEDS, effect, test_fraction=FRACTION)
    stated = power_at(stated_design(P_REAL, P_CONTROL), texts, SEEDS, effect, test_fraction=FRACTION)
    assert 0.2 < simulated < 0.9  # a size where the comparison says something
    assert abs(predicted - simulated) <= 0.1, (predicted, simulated)
    assert abs(stated - simulated) <= 0.1, (stated, simulated)
    ordinary = float(np.mean([power_at(p, texts, SEEDS, effect, test_fraction=FRACTION) for p in small]))
    assert simulated - 0.15 <= ordinary <= simulated, (ordinary, simulated)


def test_the_pilot_size_gives_back_the_pilots_own_mde():
    row = Pilot(se=0.03, sampling_se=0.025, n_seeds=3, test_texts=250)
    se, floor = scaled(row, 1000, 3, test_fraction=0.25)
    assert (se, floor) == (0.03, 0.025)
    mde = min_detectable_effect(0.03, 0.025, 3)
    assert power_at(row, 1000, 3, mde, test_fraction=0.25) == pytest.approx(0.8, abs=1e-6)
    # four times the test texts halves the standard errors; so do four times the seeds
    assert scaled(row, 4000, 3, test_fraction=0.25) == pytest.approx((0.015, 0.0125))
    assert scaled(row, 1000, 12, test_fraction=0.25) == pytest.approx((0.015, 0.0125))


@pytest.mark.parametrize(
    "pilot_row, seeds",
    [
        (Pilot(0.045, 0.04, 3, 75), 3),
        (Pilot(0.02, math.nan, 5, 250), 5),
        (stated_design(0.75, 0.65), 3),
        (stated_design(0.75, 0.65), 10),
    ],
)
@pytest.mark.parametrize("target", [0.5, 0.8, 0.95])
def test_texts_needed_is_the_smallest_size_reaching_the_power(pilot_row, seeds, target):
    n = texts_needed(pilot_row, 0.10, target, seeds=seeds, test_fraction=0.25)
    assert n is not None
    assert power_at(pilot_row, n, seeds, 0.10, test_fraction=0.25) >= target
    assert power_at(pilot_row, n - 1, seeds, 0.10, test_fraction=0.25) < target
    sizes = range(max(1, n - 200), n + 200, 7)
    powers = [power_at(pilot_row, t, seeds, 0.10, test_fraction=0.25) for t in sizes]
    assert all(a <= b for a, b in itertools.pairwise(powers))  # monotone
    # more power, a larger effect or more seeds never ask for more texts
    assert texts_needed(pilot_row, 0.10, min(target + 0.04, 0.99), seeds=seeds, test_fraction=0.25) >= n
    assert texts_needed(pilot_row, 0.15, target, seeds=seeds, test_fraction=0.25) <= n
    assert texts_needed(pilot_row, 0.10, target, seeds=seeds + 2, test_fraction=0.25) <= n


def test_texts_needed_beyond_the_limit_is_none():
    assert texts_needed(Pilot(0.05, 0.05, 3, 50), 0.06, 0.8, seeds=3, test_fraction=0.25, max_texts=500) is None
    assert texts_needed(Pilot(math.nan, math.nan, 3, 50), 0.1, 0.8, seeds=3, test_fraction=0.25) is None


def test_the_stated_design_is_the_sampling_floor():
    pilot_row = stated_design(0.75, 0.65)
    se, floor = scaled(pilot_row, 1000, 3, test_fraction=0.25)
    assert se == floor == pytest.approx(math.sqrt((0.75 * 0.25 + 0.65 * 0.35) / (250 * 3)))


@pytest.mark.parametrize(
    "call",
    [
        lambda: stated_design(1.2, 0.6),
        lambda: stated_design(0.7, 0.0),
        lambda: texts_needed(Pilot(0.03, 0.03, 3, 250), 0.04, 0.8, seeds=3, test_fraction=0.25),  # below the threshold
        lambda: texts_needed(Pilot(0.03, 0.03, 3, 250), 0.10, 1.0, seeds=3, test_fraction=0.25),
        lambda: power_at(Pilot(0.03, 0.03, 3, 250), 1000, 0, 0.10, test_fraction=0.25),
    ],
)
def test_bad_plans_raise(call):
    with pytest.raises(ConfigError):
        call()


def test_a_prediction_rows_draw_spread_does_not_shrink_with_more_texts():
    """Against a random-model control the interval carries the control's spread between draws, which no number
    of texts or seeds removes: the planner keeps it whole (it used to scale it away like sampling error), so an
    effect within that spread is never promised."""
    from auditkit.metrics.planning import plan_table
    from auditkit.metrics.selectivity import draw_sd_from_note

    row = dict(
        method="probe-logistic",
        control="gaussian-reinit",
        metric="accuracy",
        n_seeds=3,
        real=0.8,
        control_score=0.7,
        selectivity=0.1,
        ci_low=-0.2,
        ci_high=0.4,
        df=3.0,
        sampling_se=0.02,
        normalised=0.3,
        verdict="not selective",
        se=0.094,
        p_value=0.3,
        mde=0.5,
        note="prediction interval (control sd over seeds and draws 0.09)",
    )
    assert draw_sd_from_note(row["note"]) == 0.09 and draw_sd_from_note("between-seed spread only") == 0.0
    pilot = Pilot(se=0.094, sampling_se=0.02, n_seeds=3, test_texts=250, draw_sd=0.09)
    se, _ = scaled(pilot, 100_000, 3, test_fraction=0.25)
    assert 0.09 <= se < 0.0905
    plan = plan_table(pd.DataFrame([row]), metric="accuracy", texts=1000, test_fraction=0.25, effect=0.10)
    assert plan.iloc[0]["texts_needed"] is None or pd.isna(plan.iloc[0]["texts_needed"])
