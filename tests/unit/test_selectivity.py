"""The verdict rule on hand-made seed rows: direction, threshold and the four verdicts."""

from __future__ import annotations

import pandas as pd
import pytest

from auditkit.metrics.selectivity import selectivity_table


def _rows(metric: str, real: list[float], control: list[float]) -> pd.DataFrame:
    rows = [dict(method="m", control="none", seed=s, metric=metric, value=v) for s, v in enumerate(real)]
    rows += [dict(method="m", control="c", seed=s, metric=metric, value=v) for s, v in enumerate(control)]
    return pd.DataFrame(rows)


def _verdict(metric: str, real: list[float], control: list[float]) -> str:
    return selectivity_table(_rows(metric, real, control), threshold=0.05).iloc[0]["verdict"]


def test_verdicts_cover_selective_small_not_selective_and_control_better():
    assert _verdict("accuracy", [0.90, 0.91, 0.92], [0.50, 0.52, 0.49]) == "selective"
    assert _verdict("accuracy", [0.53, 0.54, 0.53], [0.50, 0.51, 0.50]) == "inconclusive"  # real, but under 0.05
    assert _verdict("accuracy", [0.50, 0.55, 0.45], [0.52, 0.47, 0.50]) == "not selective"
    assert _verdict("accuracy", [0.50, 0.51, 0.50], [0.80, 0.82, 0.81]) == "control better"


def test_lower_is_better_metric_flips_the_sign():
    lower = {"test_loss_lower": -1}
    sel = selectivity_table(_rows("test_loss_lower", [0.2, 0.21, 0.19], [0.8, 0.82, 0.79]), directions=lower)
    assert sel.iloc[0]["selectivity"] > 0.5 and sel.iloc[0]["verdict"] == "selective"
    worse = selectivity_table(_rows("test_loss_lower", [0.8, 0.82, 0.79], [0.2, 0.21, 0.19]), directions=lower)
    assert worse.iloc[0]["verdict"] == "control better"


def test_a_direction_declared_once_never_leaks_into_a_later_table():
    """A metric's direction comes with the rows being scored, not from what ran earlier in the process:
    the same rows scored without a declaration are higher-is-better."""
    rows = _rows("loss", [0.2, 0.21, 0.19], [0.8, 0.82, 0.79])
    assert selectivity_table(rows, directions={"loss": -1}).iloc[0]["verdict"] == "selective"
    assert selectivity_table(rows).iloc[0]["verdict"] == "control better"


def test_a_direction_other_than_minus_one_zero_or_one_is_refused():
    with pytest.raises(ValueError, match="must be -1, 0 or \\+1"):
        selectivity_table(_rows("loss", [0.2, 0.21, 0.19], [0.8, 0.82, 0.79]), directions={"loss": 2})
