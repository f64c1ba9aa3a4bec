"""How much evidence a verdict holds: its standard error, p-value, power, minimum detectable effect, and
false-discovery q-values across the many tests of a sweep.

Everything here reads a selectivity table's own columns (``selectivity``, ``ci_low``, ``ci_high``,
``n_seeds``, ``df``, ``sampling_se``, ``verdict``), so it is the same whether the table was just scored or read
back from a saved ``selectivity.csv``. The interval itself is :data:`auditkit.metrics.selectivity.INTERVAL_RULE`:
``q * max(se_seeds, se_sampling)`` with ``q`` Student's t on the interval's ``df`` (Satterthwaite's,
:func:`auditkit.metrics.selectivity.interval_df`; a table saved before that column used ``n_seeds - 1``).

**Power of the verdict rule.** A cell is selective when ``mean - q * se_hat > 0`` and ``mean >= threshold``,
where ``se_hat = max(s, se_floor)``, ``s`` is the between-seed standard error and ``se_floor`` the test-sampling
floor. With per-seed differences normal with standard error ``se_true`` of their mean, the mean and ``s`` are
independent and ``s ~ se_true * sqrt(chi2(n - 1) / (n - 1))``, so

    power(delta) = E_s[ Phi((delta - max(q(df(s)) * max(s, se_floor), threshold)) / se_true) ],

integrated over the chi-square law of ``s`` (:func:`power`), with the interval's multiplier at the
degrees of freedom that ``s`` itself gives (:func:`auditkit.metrics.selectivity.interval_df`, the floor's
own degrees of freedom taken as infinite). A report or a planner does not know
``se_true``; it uses the observed ``se_hat`` (the interval's own standard error), which is the
method-of-moments estimate of the between-seed standard error floored at the sampling one
(``max(se_seeds, se_floor)``, as in a random-effects model with the sampling variance known). The
**minimum detectable effect** (MDE) is the smallest ``delta`` with ``power(delta) >= 0.8``: an effect this
large would have been called selective four times in five by an audit of this size and spread. A ✗ whose
MDE is large says "not shown at this size", not "absent".

**q-values** (Benjamini and Hochberg 1995) over the two-sided p-values of a family of tests (a sweep's cells of
one metric): a cell with q <= 0.05 belongs to a set of discoveries whose expected share of false ones is at
most 5%, whatever the number of tests. The two-sided p-value is the t-test's with the interval's standard
error and degrees of freedom, so ``p < 0.05`` exactly when the 95% interval excludes zero.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
from scipy import special, stats

POWER = 0.8
"""The power at which a minimum detectable effect is stated."""

TWO_SIDED = ("differs", "similar")
"""Verdicts of a metric with no better direction (an interval that excludes zero either way)."""

DESCRIPTIVE = "descriptive"
"""The verdict of a (metric, control) pair whose control value is fixed by how the control is built (the dead
fraction of a fixed basis with a top-k rule): its difference is shown, never judged, and is no test."""

UNDIRECTED = (*TWO_SIDED, DESCRIPTIVE)
"""Verdicts with no minimum detectable effect (nothing directional to detect)."""

EVIDENCE_COLUMNS = ("se", "p_value", "mde")
"""Columns :func:`evidence_columns` adds to a selectivity table."""

_GRID = 400
"""Quantile points of the chi-square law of the between-seed standard error in :func:`power`."""


def _quantile_at(df: float, confidence: float) -> float:
    level = 0.5 + confidence / 2
    return float(stats.norm.ppf(level) if math.isinf(df) else stats.t.ppf(level, df))


def power(
    effect: float, se: float, se_floor: float, n_seeds: int, *, threshold: float = 0.05, confidence: float = 0.95
) -> float:
    """Probability that a cell whose true selectivity is ``effect`` is called selective (see the module).

    ``se``: standard error of the mean difference over seeds (true, or the observed ``max(se_seeds,
    se_floor)``); ``se_floor``: the test-sampling floor (0 or NaN for none). Units: the metric's."""
    if not se > 0:
        return math.nan
    floor = 0.0 if math.isnan(se_floor) else se_floor  # NaN: no floor
    s = se * _chi_grid(n_seeds)
    hat = np.maximum(s, floor)
    bar = np.maximum(_multiplier(s, hat, n_seeds, confidence) * hat, threshold)
    return float(np.mean(special.ndtr((effect - bar) / se)))


def _multiplier(s: np.ndarray, hat: np.ndarray, n_seeds: int, confidence: float) -> np.ndarray:
    """The interval's quantile at each between-seed standard error ``s`` of the grid (its interval standard
    error ``hat``): Student's t on Satterthwaite's degrees of freedom, (n - 1) (hat / s)^4."""
    level = 0.5 + confidence / 2
    if n_seeds <= 1:
        return np.full_like(s, stats.norm.ppf(level))
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(s > 0, (n_seeds - 1) * (hat / np.where(s > 0, s, 1.0)) ** 4, np.inf)
    return np.where(np.isfinite(df), stats.t.ppf(level, np.minimum(df, 1e12)), stats.norm.ppf(level))


@functools.lru_cache(maxsize=64)
def _chi_grid(n_seeds: int) -> np.ndarray:
    """Quantiles of ``sqrt(chi2(n - 1) / (n - 1))``, the between-seed standard error over its true value
    (one point at 0 for one seed: there is no between-seed estimate)."""
    if n_seeds <= 1:
        return np.zeros(1)
    k = n_seeds - 1
    return np.sqrt(stats.chi2.ppf((np.arange(_GRID) + 0.5) / _GRID, k) / k)


def min_detectable_effect(
    se: float,
    se_floor: float,
    n_seeds: int,
    *,
    threshold: float = 0.05,
    confidence: float = 0.95,
    target: float = POWER,
) -> float:
    """Smallest effect with ``power(effect) >= target`` (bisection; the power rises with the effect)."""
    if not se > 0:
        return math.nan
    lo, hi = 0.0, threshold + 50 * se
    for _ in range(40):  # the bracket shrinks to 2^-40 of its width
        mid = (lo + hi) / 2
        if power(mid, se, se_floor, n_seeds, threshold=threshold, confidence=confidence) >= target:
            hi = mid
        else:
            lo = mid
    return hi


def evidence_columns(table: pd.DataFrame, *, threshold: float = 0.05, confidence: float = 0.95) -> pd.DataFrame:
    """``table`` with :data:`EVIDENCE_COLUMNS`: the interval's standard error, the two-sided p-value of
    "selectivity = 0", and the minimum detectable effect at :data:`POWER` (NaN for a metric with no better
    direction, whose verdicts are :data:`TWO_SIDED`, and for a zero-width or missing interval). A
    :data:`DESCRIPTIVE` pair is no test: no p-value and no MDE."""
    out = table.copy()
    se, p, mde = [], [], []
    has_df = "df" in table.columns
    for r in table.itertuples(index=False):
        n = int(r.n_seeds)
        df = float(r.df) if has_df else (float(n - 1) if n > 1 else math.inf)  # saved before: t on n - 1
        half = (float(r.ci_high) - float(r.ci_low)) / 2
        s = half / _quantile_at(df, confidence) if n > 0 and half > 0 and not math.isnan(df) else math.nan
        se.append(s)
        if s > 0 and r.verdict != DESCRIPTIVE:
            p.append(float(2 * stats.t.sf(abs(float(r.selectivity)) / s, df)))
        else:
            p.append(math.nan)
        floor = float(r.sampling_se) if "sampling_se" in table.columns else math.nan
        directional = r.verdict not in UNDIRECTED
        mde.append(
            min_detectable_effect(s, floor, n, threshold=threshold, confidence=confidence)
            if directional and s > 0
            else math.nan
        )
    out["se"], out["p_value"], out["mde"] = se, p, mde
    return out


def q_values(p_values: pd.Series) -> pd.Series:
    """Benjamini-Hochberg q-values of one family of tests (NaN p-values stay NaN and are not counted)."""
    out = pd.Series(np.nan, index=p_values.index, dtype=float)
    ok = p_values.notna()
    if ok.any():
        out[ok] = stats.false_discovery_control(p_values[ok].to_numpy(dtype=float), method="bh")
    return out


def add_q_values(table: pd.DataFrame, by: str = "metric") -> pd.DataFrame:
    """``table`` with ``q_value``: Benjamini-Hochberg over every row of the same ``by`` (one family per
    metric: a sweep's (dataset, hook, method, control) cells of that metric)."""
    out = table.copy()
    out["q_value"] = np.nan
    for idx in out.groupby(by, sort=False).groups.values():
        out.loc[idx, "q_value"] = q_values(out.loc[idx, "p_value"])
    return out


def with_evidence(table: pd.DataFrame, *, threshold: float, family: bool = False) -> pd.DataFrame:
    """``table`` as written today, from a table saved before the evidence columns: :func:`evidence_columns`
    computed from its intervals where it lacks them, and (``family``: a sweep's tables) :func:`add_q_values`
    where it lacks ``q_value``. A table that has them is returned as it is."""
    if "p_value" not in table.columns:
        table = evidence_columns(table, threshold=threshold)
    if family and "q_value" not in table.columns:
        table = add_q_values(table)
    return table


def absence(selectivity: float, ci_high: float, mde: float, effect: float) -> str:
    """What a not-selective cell says about an effect of size ``effect``: ``absent`` when the interval rules
    it out (its upper end is below ``effect``), ``not shown at this size`` when the audit could not have
    detected it (MDE above ``effect``), ``undecided`` otherwise (detectable, yet not ruled out)."""
    if ci_high < effect:
        return "absent"
    if not mde <= effect:
        return "not shown at this size"
    return "undecided"
