"""Selectivity: the score on the real arm minus the score on a control, paired by seed.

For each (method, control, metric): the per-seed differences d_s = real_s - control_s, their mean
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

VERDICT_RULE = (
    "selective when the 95% interval of (real - control) lies entirely above zero and the mean "
    "difference is at least {threshold:g}; not selective when the interval covers zero; "
    "inconclusive otherwise (a positive but small effect)"
)


def selectivity_table(rows: pd.DataFrame, *, confidence: float = 0.95, threshold: float = 0.05) -> pd.DataFrame:
    """One row per (method, control, metric) from tidy result rows (method, control, seed, metric, value)."""
    real = rows[rows["control"] == REAL]
    out = []
    for (method, control, metric), ctrl in rows[rows["control"] != REAL].groupby(["method", "control", "metric"]):
        ref = real[(real["method"] == method) & (real["metric"] == metric)].set_index("seed")["value"]
        paired = ctrl.set_index("seed")["value"].to_frame("control").join(ref.rename("real"), how="inner")
        diff = paired["real"] - paired["control"]
        n = len(diff)
        mean = float(diff.mean()) if n else math.nan
        half = _t_half_width(diff, confidence) if n > 1 else math.nan
        ceiling = CEILINGS.get(metric)
        ctrl_mean, real_mean = float(paired["control"].mean()), float(paired["real"].mean())
        norm = math.nan
        if ceiling is not None and ceiling - ctrl_mean > 1e-12:
            norm = (real_mean - ctrl_mean) / (ceiling - ctrl_mean)
        row = dict(
            method=method, control=control, metric=metric, n_seeds=n, real=real_mean, control_score=ctrl_mean,
            selectivity=mean, ci_low=mean - half, ci_high=mean + half, normalised=norm,
        )  # fmt: skip
        row["verdict"] = verdict(row["ci_low"], row["ci_high"], mean, threshold)
        out.append(row)
    return pd.DataFrame(out)


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
    return "inconclusive"
