"""Statistics of a calibration: false-positive rates, power, and how correlated the seeds are.

Pure functions on tidy frames (no I/O, no models). The input is one row per (dataset, method, control)
with the audit's own verdict for that dataset (:func:`auditkit.metrics.selectivity_table`), plus the
per-seed differences real - control, so that the FPR can be read against the nominal level and the
reason for any excess (seeds that share data are not independent) can be measured.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from auditkit.metrics.selectivity import mean_over_draws
from auditkit.types import REAL

SELECTIVE = "selective"


def binomial_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson (exact) interval for a binomial proportion k / n.

    Exact rather than Wald because the rates of interest sit near 0 and 1, where the Wald interval
    collapses to a point (Clopper and Pearson, 1934, Biometrika 26(4)).
    """
    if n <= 0:
        return math.nan, math.nan
    a = 1 - confidence
    low = 0.0 if k == 0 else float(stats.beta.ppf(a / 2, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(1 - a / 2, k + 1, n - k))
    return low, high


def seed_icc(diffs: pd.DataFrame) -> float:
    """Intraclass correlation ICC(1) of the per-seed differences within a dataset.

    ``diffs`` has one row per (dataset, seed) with a ``diff`` column. One-way random-effects ANOVA
    estimator (Shrout and Fleiss, 1979, Psychol. Bull. 86(2), ICC(1,1)):
    (MSB - MSW) / (MSB + (S - 1) MSW). The t-interval over S seeds assumes the differences are
    independent; with correlation rho the interval's standard error is too small by the factor
    sqrt((1 - rho) / (1 + (S - 1) rho)), so a positive ICC makes the interval anti-conservative.
    """
    # Seeds differ between seed sets: align them by their rank within the dataset.
    ranked = diffs.sort_values(["dataset", "seed"]).assign(rank=lambda d: d.groupby("dataset").cumcount())
    wide = ranked.pivot_table(index="dataset", columns="rank", values="diff").dropna()
    n, s = wide.shape
    if n < 2 or s < 2:
        return math.nan
    values = wide.to_numpy(dtype=np.float64)
    msb = s * values.mean(1).var(ddof=1)
    msw = values.var(1, ddof=1).mean()
    denom = msb + (s - 1) * msw
    return float((msb - msw) / denom) if denom > 0 else math.nan


def fpr_table(verdicts: pd.DataFrame, diffs: pd.DataFrame, *, nominal: float, confidence: float = 0.95) -> pd.DataFrame:
    """One row per (method, control): the share of null datasets called selective, with its interval.

    ``verdicts`` (null datasets only) has columns dataset, method, control, selectivity, ci_low,
    verdict; ``diffs`` has dataset, method, control, seed, diff. Besides the verdict's FPR
    (``fpr``), ``interval_rate`` is the share whose interval alone excludes zero from above (the rule
    without its threshold), to be read against ``interval_nominal`` = (1 - confidence) / 2, the
    one-sided error of a two-sided interval if the seeds were independent (2.5% at 95%); ``seed_icc``
    is the within-dataset correlation of the per-seed differences.
    """
    out = []
    for (method, control), sub in verdicts.groupby(["method", "control"], sort=False):
        n = len(sub)
        k = int((sub["verdict"] == SELECTIVE).sum())
        low, high = binomial_interval(k, n, confidence)
        k_int = int((sub["ci_low"] > 0).sum())
        d = diffs[(diffs["method"] == method) & (diffs["control"] == control)]
        out.append(
            dict(
                method=method,
                control=control,
                n_null=n,
                n_selective=k,
                fpr=k / n if n else math.nan,
                ci_low=low,
                ci_high=high,
                nominal=nominal,
                interval_rate=k_int / n if n else math.nan,
                interval_nominal=(1 - confidence) / 2,
                mean_selectivity=float(sub["selectivity"].mean()),
                sd_selectivity=float(sub["selectivity"].std(ddof=1)),
                seed_icc=seed_icc(d),
            )
        )
    return pd.DataFrame(out)


def power_table(verdicts: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """One row per (method, control, strength): the share of planted datasets called selective."""
    out = []
    for (method, control, strength), sub in verdicts.groupby(["method", "control", "strength"], sort=True):
        n = len(sub)
        k = int((sub["verdict"] == SELECTIVE).sum())
        low, high = binomial_interval(k, n, confidence)
        out.append(
            dict(
                method=method,
                control=control,
                strength=float(strength),
                power=k / n,
                n=n,
                ci_low=low,
                ci_high=high,
                mean_selectivity=float(sub["selectivity"].mean()),
                mean_real=float(sub["real"].mean()),
                ideal_accuracy=float(sub["ideal_accuracy"].mean()),
            )
        )
    return pd.DataFrame(out)


def seed_differences(rows: pd.DataFrame) -> pd.DataFrame:
    """Per-seed differences real - control: one row per (dataset, method, control, seed) with ``diff``.

    ``rows`` are tidy result rows of one metric with a ``dataset`` column (control ``none`` is real); a
    control drawn several times per seed enters as the mean of its draws, as in the audit's selectivity.
    """
    rows = mean_over_draws(rows, by=("dataset",)) if "metric" in rows.columns else rows
    real = rows[rows["control"] == REAL][["dataset", "method", "seed", "value"]].rename(columns={"value": "real"})
    ctrl = rows[rows["control"] != REAL]
    out = ctrl.merge(real, on=["dataset", "method", "seed"], how="inner")
    out["diff"] = out["real"] - out["value"]
    return out[["dataset", "method", "control", "seed", "diff"]]


def fresh_draw_targets(rows: pd.DataFrame, controls: Sequence[str]) -> pd.DataFrame:
    """Per seed of fresh (truth) rows: the real arm's mean score over every seed minus that seed's score of a
    random-model control: the difference between the audited model and *one* fresh draw of the control, what a
    prediction interval (:data:`~auditkit.metrics.selectivity.PREDICTION_RULE`) claims to cover.

    ``rows`` are tidy rows of one metric with a ``dataset`` column; one row per (dataset, method, control,
    seed) with ``target``. The real arm's mean over the seeds stands for its expected score (its own test
    noise averaged out); each control score keeps its noise and its draw, as the prediction interval's added
    variance does."""
    rows = mean_over_draws(rows, by=("dataset",)) if "metric" in rows.columns else rows
    real = rows[rows["control"] == REAL].groupby(["dataset", "method"])["value"].mean().rename("real_mean")
    ctrl = rows[rows["control"].isin(list(controls))].join(real, on=["dataset", "method"])
    ctrl = ctrl.assign(target=ctrl["real_mean"] - ctrl["value"])
    return ctrl[["dataset", "method", "control", "seed", "target"]].reset_index(drop=True)


def fresh_draw_coverage(verdicts: pd.DataFrame, targets: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, control, strength): ``fresh_n`` (intervals x fresh draws) and ``fresh_covered`` /
    ``fresh_coverage``, the share of (interval, fresh draw) pairs whose :func:`fresh_draw_targets` target lies in
    the interval. For a prediction interval this is its coverage of its own estimand; :func:`coverage_table`'s
    truth (the advantage over the *mean* draw) is a narrower target that such an interval over-covers."""
    merged = verdicts.merge(targets, on=["dataset", "method", "control"], how="inner")
    out = []
    for (method, control, strength), sub in merged.groupby(["method", "control", "strength"], sort=True):
        inside = (sub["ci_low"] <= sub["target"]) & (sub["target"] <= sub["ci_high"])
        out.append(
            dict(
                method=method,
                control=control,
                strength=float(strength),
                fresh_n=len(sub),
                fresh_covered=int(inside.sum()),
                fresh_coverage=float(inside.mean()),
            )
        )
    return pd.DataFrame(out, columns=["method", "control", "strength", "fresh_n", "fresh_covered", "fresh_coverage"])


def coverage_table(verdicts: pd.DataFrame, truth: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """One row per (method, control, strength): the share of intervals that contain the true selectivity.

    ``verdicts`` has dataset, method, control, strength, selectivity, ci_low, ci_high; ``truth`` has
    dataset, method, control, truth (and optionally truth_se, the standard error of a truth estimated on
    fresh seeds). ``coverage`` is read against the interval's confidence; ``miss_low`` / ``miss_high`` are the
    shares of intervals wholly below / above the truth (each 2.5% for a calibrated two-sided 95% interval).
    """
    merged = verdicts.merge(truth, on=["dataset", "method", "control"], how="inner")
    out = []
    for (method, control, strength), sub in merged.groupby(["method", "control", "strength"], sort=True):
        n = len(sub)
        inside = (sub["ci_low"] <= sub["truth"]) & (sub["truth"] <= sub["ci_high"])
        k = int(inside.sum())
        low, high = binomial_interval(k, n, confidence)
        out.append(
            dict(
                method=method,
                control=control,
                strength=float(strength),
                n=n,
                covered=k,
                coverage=k / n,
                ci_low=low,
                ci_high=high,
                miss_low=float((sub["ci_high"] < sub["truth"]).mean()),
                miss_high=float((sub["ci_low"] > sub["truth"]).mean()),
                mean_truth=float(sub["truth"].mean()),
                mean_selectivity=float(sub["selectivity"].mean()),
                mean_half_width=float(((sub["ci_high"] - sub["ci_low"]) / 2).mean()),
                rmse=float(np.sqrt(((sub["selectivity"] - sub["truth"]) ** 2).mean())),
                mean_truth_se=float(sub["truth_se"].mean()) if "truth_se" in sub else math.nan,
            )
        )
    return pd.DataFrame(out)
