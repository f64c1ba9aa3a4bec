"""Selectivity: the score on the real arm minus the score on a control, paired by seed.

For each (method, control, metric): the per-seed differences d_s = real_s - control_s (sign-flipped
for a metric where lower is better, see :data:`METRIC_DIRECTIONS`), their mean
with a two-sided 95% Student-t interval (n - 1 degrees of freedom), and the normalised selectivity
(real - control) / (ceiling - control), the share of the headroom above the control that the real
arm reaches, where the metric has a ceiling.
"""

from __future__ import annotations

import math

import pandas as pd
from scipy import stats

from auditkit.metrics.classification import CEILINGS

REAL = "none"
"""The ``control`` value of real-arm rows."""

METRIC_DIRECTIONS: dict[str, int] = {}
"""Which way is better for a metric: +1 higher (the default for any metric not listed), -1 lower (the
sign is flipped, so selectivity is always "how much better the real arm is"), 0 neither (a descriptive
metric such as L0: selectivity is real - control and the verdict says only whether the arms differ).
Methods register their metrics here (see :func:`register_directions`)."""

TWO_SIDED_RULE = (
    "for a metric with no better direction: differs when the 95% interval of (real - control) excludes "
    "zero, similar when it covers zero"
)


def register_directions(**directions: int) -> None:
    """Declare metric directions (+1 higher is better, -1 lower is better, 0 neither)."""
    for name, d in directions.items():
        if d not in (-1, 0, 1):
            raise ValueError(f"direction of {name} must be -1, 0 or +1, got {d}")
        METRIC_DIRECTIONS[name] = d


def direction(metric: str) -> int:
    """+1, -1 or 0: see :data:`METRIC_DIRECTIONS`."""
    return METRIC_DIRECTIONS.get(metric, 1)

VERDICT_RULE = (
    "selective when the 95% interval of (real - control) lies entirely above zero and the mean "
    "difference is at least {threshold:g}; not selective when the interval covers zero; control better "
    "when it lies entirely below zero (the control arm scores higher than the real one); inconclusive "
    "otherwise (a positive but small effect)"
)


def selectivity_table(rows: pd.DataFrame, *, confidence: float = 0.95, threshold: float = 0.05) -> pd.DataFrame:
    """One row per (method, control, metric) from tidy result rows (method, control, seed, metric, value)."""
    real = rows[rows["control"] == REAL]
    out = []
    for (method, control, metric), ctrl in rows[rows["control"] != REAL].groupby(["method", "control", "metric"]):
        ref = real[(real["method"] == method) & (real["metric"] == metric)].set_index("seed")["value"]
        paired = ctrl.set_index("seed")["value"].to_frame("control").join(ref.rename("real"), how="inner")
        sign = direction(metric)
        diff = (paired["real"] - paired["control"]) * (sign or 1)
        n = len(diff)
        mean = float(diff.mean()) if n else math.nan
        half = _t_half_width(diff, confidence) if n > 1 else math.nan
        ceiling = CEILINGS.get(metric)
        ctrl_mean, real_mean = float(paired["control"].mean()), float(paired["real"].mean())
        norm = math.nan
        if sign == 1 and ceiling is not None and ceiling - ctrl_mean > 1e-12:
            norm = (real_mean - ctrl_mean) / (ceiling - ctrl_mean)
        row = dict(
            method=method, control=control, metric=metric, n_seeds=n, real=real_mean, control_score=ctrl_mean,
            selectivity=mean, ci_low=mean - half, ci_high=mean + half, normalised=norm,
        )  # fmt: skip
        row["verdict"] = verdict(row["ci_low"], row["ci_high"], mean, threshold) if sign else two_sided_verdict(
            row["ci_low"], row["ci_high"]
        )
        out.append(row)
    return pd.DataFrame(out)


def two_sided_verdict(ci_low: float, ci_high: float) -> str:
    """Apply :data:`TWO_SIDED_RULE`."""
    if math.isnan(ci_low) or math.isnan(ci_high):
        return "inconclusive"
    return "similar" if ci_low <= 0 <= ci_high else "differs"


def _t_half_width(diff: pd.Series, confidence: float) -> float:
    n = len(diff)
    sem = float(diff.std(ddof=1)) / math.sqrt(n)
    return float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sem


def verdict(ci_low: float, ci_high: float, mean: float, threshold: float) -> str:
    """Apply :data:`VERDICT_RULE`."""
    if any(math.isnan(x) for x in (ci_low, ci_high, mean)):
        return "inconclusive"
    if ci_low > 0 and mean >= threshold:
        return "selective"
    if ci_low <= 0 <= ci_high:
        return "not selective"
    if ci_high < 0:
        return "control better"
    return "inconclusive"
