"""The calibration's coverage targets: a random-model control's prediction interval is read against one fresh
draw's difference (the target it states), label controls against the mean difference."""

from __future__ import annotations

import pandas as pd
import pytest

from auditkit.calibration.stats import fresh_draw_coverage, fresh_draw_targets


def _rows() -> pd.DataFrame:
    rows = []
    for seed, (real, spectral, shuffled) in enumerate([(0.80, 0.60, 0.50), (0.70, 0.70, 0.52), (0.75, 0.50, 0.48)]):
        for control, value in (("none", real), ("spectral-reinit", spectral), ("shuffled-labels", shuffled)):
            rows.append(dict(dataset=7, method="probe-logistic", control=control, seed=seed, value=value))
    return pd.DataFrame(rows)


def test_fresh_draw_target_is_the_real_mean_minus_each_seeds_draw():
    targets = fresh_draw_targets(_rows(), ["spectral-reinit"])
    assert set(targets["control"]) == {"spectral-reinit"}  # label controls keep the mean-difference target
    assert targets.sort_values("seed")["target"].tolist() == pytest.approx([0.15, 0.05, 0.25])


def test_fresh_draw_coverage_counts_interval_and_draw_pairs():
    targets = fresh_draw_targets(_rows(), ["spectral-reinit"])
    verdicts = pd.DataFrame(
        [dict(dataset=7, method="probe-logistic", control="spectral-reinit", strength=1.0, ci_low=0.0, ci_high=0.2)]
    )
    out = fresh_draw_coverage(verdicts, targets)
    assert out[["fresh_n", "fresh_covered"]].iloc[0].tolist() == [3, 2]  # 0.25 lies above the interval
    assert out["fresh_coverage"].iloc[0] == pytest.approx(2 / 3)
