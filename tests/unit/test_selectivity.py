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


def test_an_arm_that_overshoots_the_clean_model_never_reads_as_more_faithful():
    """CE recovered above 1 (or a negative CE increase): the splice undercut the clean model's loss. Scored
    by distance to the clean model, it is not better than an arm that stays near it; on arms that stay
    below the ideal the score equals the plain difference."""
    from auditkit.audit.sae import CEILINGS, DIRECTIONS, TARGETS

    overshoot = _rows("ce_loss_recovered", [1.50, 1.52, 1.48], [0.90, 0.91, 0.89])
    assert selectivity_table(overshoot).iloc[0]["verdict"] == "selective"  # the signed rule's false positive
    scored = selectivity_table(overshoot, directions=DIRECTIONS, ceilings=CEILINGS, targets=TARGETS).iloc[0]
    assert scored["verdict"] == "control better" and scored["selectivity"] == pytest.approx(0.1 - 0.5)
    below = _rows("ce_loss_recovered", [0.95, 0.96, 0.94], [0.60, 0.62, 0.58])
    plain, folded = (
        selectivity_table(below, ceilings=CEILINGS).iloc[0],
        selectivity_table(below, directions=DIRECTIONS, ceilings=CEILINGS, targets=TARGETS).iloc[0],
    )
    for column in ("selectivity", "ci_low", "ci_high", "normalised"):
        assert folded[column] == pytest.approx(plain[column]), column
    undercut = _rows("ce_loss_increase", [-0.60, -0.62, -0.58], [0.10, 0.11, 0.09])
    assert selectivity_table(undercut, directions=DIRECTIONS).iloc[0]["verdict"] == "selective"
    assert selectivity_table(undercut, directions=DIRECTIONS, targets=TARGETS).iloc[0]["verdict"] == "control better"
