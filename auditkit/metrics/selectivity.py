"""Selectivity: the score on the real arm minus the score on a control, paired by seed.

For each (method, control, metric): the per-seed differences d_s = real_s - control_s (sign-flipped
for a metric where lower is better, see :data:`Direction`; a control drawn several times per seed enters as
the mean of its draws), their mean with a two-sided 95% Student-t interval whose variance is floored at the
test-sampling variance of one seed's paired difference and whose degrees of freedom follow the variance that
binds (:data:`INTERVAL_RULE`, :func:`interval_df`), and the normalised selectivity
(real - control) / (ceiling - control), the share of the headroom above the control that the real
arm reaches, where the metric has a ceiling. Each row also carries its standard error, two-sided p-value and
minimum detectable effect (:mod:`auditkit.metrics.evidence`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from auditkit.metrics.classification import CEILINGS
from auditkit.metrics.evidence import DESCRIPTIVE, evidence_columns
from auditkit.types import REAL

Direction = int
"""Which way is better for a metric: +1 higher (the default for any metric a method does not declare),
-1 lower (the sign is flipped, so selectivity is always "how much better the real arm is"), 0 neither (a
descriptive metric such as L0: selectivity is real - control and the verdict says only whether the arms
differ). Each method declares its metrics' directions with its rows (``MethodOutput.directions``)."""

TWO_SIDED_RULE = (
    "for a metric with no better direction: differs when the 95% interval of (real - control) excludes "
    "zero, similar when it covers zero"
)


INTERVAL_RULE_BEFORE_DF = (
    "the 95% interval of the mean per-seed difference uses the larger of two variances: the spread of the "
    "differences between seeds, and the test-sampling variance of one seed's difference (paired over the "
    "same held-out examples, rows of one text clustered), so two seeds that happen to agree never give a "
    "zero-width interval; a verdict whose interval has zero width, or whose arm could only learn the prior "
    "(training labels of one class: degenerate), is never selective"
)
"""The interval rule of a table saved before the ``df`` column (Student's t on n - 1 degrees of freedom, one
draw per control): what a report re-rendered from such a table states, since its numbers were made with it."""


def interval_rule(selectivity: pd.DataFrame) -> str:
    """The interval rule a selectivity table was made with: :data:`INTERVAL_RULE` (with :data:`PREDICTION_RULE`
    when a row carries the draw spread of a random-model control), or :data:`INTERVAL_RULE_BEFORE_DF` for a
    table saved before the ``df`` column."""
    if "df" not in selectivity.columns:
        return INTERVAL_RULE_BEFORE_DF
    notes = selectivity["note"].fillna("").astype(str) if "note" in selectivity.columns else pd.Series([], dtype=str)
    return f"{INTERVAL_RULE}; {PREDICTION_RULE}" if notes.str.contains(PREDICTION_NOTE).any() else INTERVAL_RULE


def check_directions(directions: Mapping[str, int]) -> None:
    """Every declared direction is -1, 0 or +1."""
    for name, d in directions.items():
        if d not in (-1, 0, 1):
            raise ValueError(f"direction of {name} must be -1, 0 or +1, got {d}")


VERDICT_RULE = (
    "selective when the 95% interval of (real - control) lies entirely above zero and the mean "
    "difference is at least {threshold:g}; not selective when the interval covers zero; control better "
    "when it lies entirely below zero (the control arm scores higher than the real one); inconclusive "
    "otherwise (a positive but small effect)"
)


MIN_SEEDS = 3
"""Fewer seeds than this and a verdict says so (the interval then rests mostly on one split's sampling)."""

INTERVAL_RULE = (
    "the 95% interval of the mean per-seed difference (a control drawn several times per seed enters as the "
    "mean of its draws) uses the larger of two variances: the spread of the differences between seeds, and "
    "the test-sampling variance of one seed's difference (paired over the same held-out examples, rows of "
    "one text clustered; a jackknife over texts for AUROC and macro-F1); its Student-t degrees of freedom "
    "are Satterthwaite's, (seeds - 1) x (interval variance / between-seed variance)^2, capped at the test "
    "texts' own: n - 1 when the spread between seeds binds, many when the sampling floor does; a verdict "
    "whose interval has zero width, or whose arm could only learn the prior (training labels of one class: "
    "degenerate), is never selective"
)


PREDICTION_RULE = (
    "against a control whose arms are draws of a random model (reinitialised weights) the interval is a "
    "prediction interval: its variance adds the spread between the control's draws (the variance of the "
    "control's scores over seeds and draws, their own noise included), so a model that is itself "
    "one such draw and happens to read the label well is not called selective; the added variance does not "
    "shrink with more seeds or draws (more draws estimate it on more degrees of freedom)"
)
"""How :func:`selectivity_table` widens the interval of a ``draw_spread`` control (docs/controls.md)."""

PREDICTION_NOTE = "prediction interval"
"""Start of the note of every row whose interval carries a control's draw spread (:data:`PREDICTION_RULE`)."""


def paired_sampling_se(real: Any, control: Any) -> float:
    """Standard error of (real - control) from test sampling alone, for one seed, or NaN.

    ``real`` and ``control`` are :class:`~auditkit.metrics.classification.ExampleScores` over the same
    held-out rows (same rows, same order): d_i = real_i - control_i, clustered by example, with the
    cluster-robust variance G / (G - 1) * sum_g (sum_{i in g} (d_i - mean d))^2 / N^2.
    """
    if real is None or control is None or not isinstance(real, tuple) or not isinstance(control, tuple):
        return math.nan
    if len(real.values_N) != len(control.values_N) or not np.array_equal(real.clusters_N, control.clusters_N):
        return math.nan
    d = np.asarray(real.values_N, dtype=np.float64) - np.asarray(control.values_N, dtype=np.float64)
    return _clustered_se(d, real.clusters_N)


def _clustered_se(d: np.ndarray, clusters: np.ndarray) -> float:
    n = len(d)
    _, inverse = np.unique(clusters, return_inverse=True)
    g = int(inverse.max()) + 1 if n else 0
    if g < 2:
        return math.nan
    sums = np.bincount(inverse, weights=d - d.mean(), minlength=g)
    return math.sqrt(g / (g - 1) * float((sums**2).sum())) / n


def mean_over_draws(rows: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """``rows`` with a control's repeated draws of one seed (a ``draw`` column) replaced by one row: the mean
    value, the mean per-row outcome (the draws score the same held-out rows) and degenerate if any draw was.
    ``by`` names further key columns (a calibration's ``dataset``). Rows without a ``draw`` column are
    returned as they are."""
    if "draw" not in rows.columns:
        return rows
    keys = [*by, "method", "control", "seed", "metric"]
    if not rows.duplicated(keys).any():
        return rows.drop(columns=["draw"])
    out = []
    for _, g in rows.groupby(keys, sort=False):
        row = g.iloc[0].to_dict()
        row.pop("draw")
        row["value"] = float(g["value"].mean())
        if "outcome" in g.columns:
            row["outcome"] = _mean_outcome(list(g["outcome"]))
        if "degenerate" in g.columns:
            row["degenerate"] = bool(g["degenerate"].fillna(False).any())
        out.append(row)
    return pd.DataFrame(out)


def _mean_outcome(outcomes: list[Any]) -> Any:
    """The mean of per-row outcomes over the same rows, or None if any is missing or they differ in rows."""
    first = outcomes[0]
    if not all(isinstance(o, tuple) for o in outcomes):
        return None
    if any(
        len(o.values_N) != len(first.values_N) or not np.array_equal(o.clusters_N, first.clusters_N) for o in outcomes
    ):
        return None
    return type(first)(np.mean([o.values_N for o in outcomes], axis=0), first.clusters_N)


def _check_pairing(rows: pd.DataFrame) -> None:
    """Every (method, control, metric) must pair with the real arm exactly once per seed."""
    counts = rows.groupby(["method", "control", "seed", "metric"]).size()
    if (counts > 1).any():
        first = counts[counts > 1].index[0]
        raise ValueError(
            f"selectivity pairs each (method, control, metric) once per seed, but {first} has "
            f"{int(counts[first])} rows: a repeated method, control or probe name would count as extra seeds"
        )


def selectivity_table(
    rows: pd.DataFrame,
    *,
    confidence: float = 0.95,
    threshold: float = 0.05,
    directions: Mapping[str, int] | None = None,
    ceilings: Mapping[str, float] | None = None,
    targets: Mapping[str, float] | None = None,
    descriptive: Collection[tuple[str, str]] = (),
    draw_spread: Collection[str] = (),
) -> pd.DataFrame:
    """One row per (method, control, metric) from tidy result rows (method, control, seed, metric, value;
    optional ``outcome``: per-row :class:`ExampleScores` of the held-out rows, and ``degenerate``).

    ``directions`` maps a metric to -1, 0 or +1 (see :data:`Direction`; unlisted metrics are +1);
    ``ceilings`` maps a metric to its best value for the normalised selectivity (default
    :data:`~auditkit.metrics.classification.CEILINGS`, the classification metrics).

    ``targets`` maps a metric to an ideal value that arms can overshoot (the CE of the clean model, which a
    splice can undercut by chance): such a metric is scored by each arm's distance to it, so the
    selectivity is ``|control - target| - |real - target|`` per seed (positive: the real arm is closer).
    An arm that overshoots the ideal then never looks better than one that meets it; on arms that all stay
    on one side of it the score equals the plain signed difference.

    ``descriptive``: (metric, control) pairs whose control value is fixed by how the control is built (a fixed
    basis's dead fraction): scored and shown like any pair, with the verdict :data:`DESCRIPTIVE`, never ✓ or ✗.

    ``draw_spread``: controls whose arms are draws of a random model (reinitialised weights); their interval is
    a prediction interval (:data:`PREDICTION_RULE`, :func:`draw_variance`)."""
    directions = directions or {}
    targets = targets or {}
    check_directions(directions)
    ceilings = CEILINGS if ceilings is None else ceilings
    all_draws = rows
    rows = mean_over_draws(rows)
    _check_pairing(rows)
    has_outcome, has_degenerate = "outcome" in rows.columns, "degenerate" in rows.columns
    real = rows[rows["control"] == REAL]
    out = []
    for (method, control, metric), ctrl in rows[rows["control"] != REAL].groupby(["method", "control", "metric"]):
        ref = real[(real["method"] == method) & (real["metric"] == metric)].set_index("seed")
        paired = ctrl.set_index("seed").join(ref, how="inner", lsuffix="_control", rsuffix="_real")
        sign = directions.get(metric, 1)
        target = targets.get(metric)
        if target is not None:
            sign = -1  # a distance: lower is better
            diff = (paired["value_control"] - target).abs() - (paired["value_real"] - target).abs()
        else:
            diff = (paired["value_real"] - paired["value_control"]) * (sign or 1)
        n = len(diff)
        mean = float(diff.mean()) if n else math.nan
        se_sampling, df_floor = math.nan, math.inf
        if has_outcome and n:
            per_seed = [paired_sampling_se(r, c) for r, c in zip(paired["outcome_real"], paired["outcome_control"])]
            if not any(math.isnan(v) for v in per_seed):
                se_sampling = math.sqrt(float(np.mean(np.square(per_seed))) / n)
                df_floor = float(sum(_clusters(r) - 1 for r in paired["outcome_real"]))
        half, df = _half_width(diff, se_sampling, confidence, df_floor)
        spread = math.nan
        if control in draw_spread:
            drawn = all_draws[
                (all_draws["method"] == method)
                & (all_draws["control"] == control)
                & (all_draws["metric"] == metric)
                & all_draws["seed"].isin(paired.index)
            ]
            ctrl_values = drawn["value"] if target is None else (drawn["value"] - target).abs()
            spread = draw_variance(ctrl_values)
            half, df = _with_draw_spread(half, df, spread, len(drawn) - 1, confidence)
        ceiling = ceilings.get(metric)
        ctrl_mean, real_mean = float(paired["value_control"].mean()), float(paired["value_real"].mean())
        norm = math.nan
        if target is not None and ceiling is not None:
            ctrl_distance = float((paired["value_control"] - target).abs().mean())
            norm = mean / ctrl_distance if ctrl_distance > 1e-12 else math.nan  # share of the control's distance closed
        elif sign == 1 and ceiling is not None and ceiling - ctrl_mean > 1e-12:
            norm = (real_mean - ctrl_mean) / (ceiling - ctrl_mean)
        degenerate = has_degenerate and bool(
            paired["degenerate_control"].fillna(False).any() or paired["degenerate_real"].fillna(False).any()
        )
        row = dict(
            method=method,
            control=control,
            metric=metric,
            n_seeds=n,
            real=real_mean,
            control_score=ctrl_mean,
            selectivity=mean,
            ci_low=mean - half,
            ci_high=mean + half,
            df=df,
            sampling_se=se_sampling,
            normalised=norm,
        )
        if (metric, control) in descriptive:
            row["verdict"] = DESCRIPTIVE
        elif degenerate:
            row["verdict"] = "degenerate"
        elif not half > 0:  # zero width (or NaN): never evidence of a difference
            identical = n > 0 and bool((diff == 0).all())  # the arms scored exactly alike on every seed
            row["verdict"] = ("not selective" if sign else "similar") if identical else "inconclusive"
        elif sign:
            row["verdict"] = verdict(row["ci_low"], row["ci_high"], mean, threshold)
        else:
            row["verdict"] = two_sided_verdict(row["ci_low"], row["ci_high"])
        row["note"] = _note(n, degenerate, half, se_sampling, spread)
        out.append(row)
    return evidence_columns(pd.DataFrame(out, columns=list(COLUMNS)), threshold=threshold, confidence=confidence)


COLUMNS = (
    "method",
    "control",
    "metric",
    "n_seeds",
    "real",
    "control_score",
    "selectivity",
    "ci_low",
    "ci_high",
    "df",
    "sampling_se",
    "normalised",
    "verdict",
    "note",
)
"""The scored columns of a selectivity table; :func:`selectivity_table` adds
:data:`auditkit.metrics.evidence.EVIDENCE_COLUMNS` after them."""


_DRAW_SD = "control sd over seeds and draws"


def draw_sd_from_note(note: Any) -> float:
    """The control sd a prediction-interval row's note states (what :func:`_note` wrote), or 0 for any other
    row: the part of its standard error that more texts or seeds do not shrink (:mod:`auditkit.metrics.planning`)."""
    text = note if isinstance(note, str) else ""
    match = re.search(rf"{PREDICTION_NOTE} \({_DRAW_SD} ([0-9.eE+-]+)\)", text)
    return float(match.group(1)) if match else 0.0


def _note(n: int, degenerate: bool, half: float, se_sampling: float, spread: float = math.nan) -> str:
    notes = []
    if not math.isnan(spread):  # a draw_spread control (NaN otherwise)
        notes.append(f"{PREDICTION_NOTE} ({_DRAW_SD} {math.sqrt(spread):.3g})")
    if degenerate:
        notes.append("an arm's training labels hold one class (its probe can only learn the prior)")
    if not half > 0:
        notes.append("zero-width interval")
    if n < MIN_SEEDS:
        notes.append(f"{n} seed{'s' if n != 1 else ''} (fewer than {MIN_SEEDS})")
    if math.isnan(se_sampling) and n:
        notes.append("between-seed spread only")
    return "; ".join(notes)


def _clusters(outcome: Any) -> int:
    """Number of held-out examples (clusters) of one arm's outcome."""
    return int(np.unique(outcome.clusters_N).size)


def interval_df(se_seeds: float, se: float, n_seeds: int, df_floor: float = math.inf) -> float:
    """Degrees of freedom of the interval whose standard error is ``se = max(se_seeds, se_floor)``.

    Satterthwaite's approximation with the floor known (it is estimated from the test texts, ``df_floor``
    degrees of freedom) and the between-seed variance estimated on ``n_seeds - 1``: the interval's variance
    V = max(s^2, floor^2) is uncertain only through s^2, Var(s^2) ~ 2 s^4 / (n - 1), so
    df = 2 V^2 / Var(s^2) = (n - 1) (V / s^2)^2, capped at ``df_floor``. When the spread between seeds binds,
    df = n - 1 (Student's t as before); when the floor binds by far, df is the floor's (nearly normal); in
    between it shrinks smoothly, which keeps coverage at its level when seed variance and sampling variance
    are of the same size (docs/controls.md, "The interval")."""
    if n_seeds <= 1 or not se_seeds > 0:
        return df_floor
    return min((n_seeds - 1) * (se / se_seeds) ** 4, df_floor)


def _half_width(diff: pd.Series, se_sampling: float, confidence: float, df_floor: float) -> tuple[float, float]:
    """Half-width and degrees of freedom of the interval of the mean difference (see :data:`INTERVAL_RULE`)."""
    n = len(diff)
    se_seeds = float(diff.std(ddof=1)) / math.sqrt(n) if n > 1 else math.nan
    if math.isnan(se_sampling):
        se, df = se_seeds, float(n - 1)
    elif math.isnan(se_seeds):
        se, df = se_sampling, df_floor
    else:
        se = max(se_seeds, se_sampling)
        df = interval_df(se_seeds, se, n, df_floor)
    if math.isnan(se):
        return math.nan, math.nan
    level = 0.5 + confidence / 2
    q = stats.norm.ppf(level) if math.isinf(df) else stats.t.ppf(level, df)
    return float(q) * se, df


def draw_variance(control_values: pd.Series) -> float:
    """The variance of a random-model control's scores over every (seed, draw): the spread between its draws
    together with each score's own noise (test sampling, training on another split), 0 with a single score.

    Subtracting the noise (the real arm's variance over seeds, or the test-sampling variance) would target the
    draw-to-draw spread alone, but with three seeds the difference of two noisy variances is often zero while
    the spread is not: in simulation (3 seeds, 250 test texts, draws 0.06 apart) that rule called the null
    selective in 5-6% of audits, this one in 2.7%, and it loses less power where draws agree
    (tests/unit/test_interval.py)."""
    return float(control_values.var(ddof=1)) if len(control_values) > 1 else 0.0


def _with_draw_spread(half: float, df: float, spread: float, spread_df: int, confidence: float) -> tuple[float, float]:
    """Half-width and degrees of freedom of the prediction interval: the mean difference's variance plus the
    control's ``spread`` (estimated on ``spread_df`` degrees of freedom), with Satterthwaite's df for the sum, and
    never narrower than the interval of the mean difference alone (``half``): both variances are read off the
    same control scores, so they are not the independent estimates Satterthwaite's formula assumes, and two parts
    of 2 df each would otherwise give the sum 4 (t falling from 4.30 to 2.78) and narrow the interval."""
    if not spread > 0 or not half > 0 or math.isnan(df):
        return half, df
    level = 0.5 + confidence / 2
    q = stats.norm.ppf(level) if math.isinf(df) else stats.t.ppf(level, df)
    var_mean = (half / float(q)) ** 2
    total = var_mean + spread
    denominator = (0.0 if math.isinf(df) else var_mean**2 / df) + spread**2 / max(spread_df, 1)
    df_total = total**2 / denominator
    wide = float(stats.t.ppf(level, df_total)) * math.sqrt(total)
    if wide >= half:
        return wide, float(df_total)
    return half, float(df)  # the interval of the mean difference is the wider: it stands, with its own df


def two_sided_verdict(ci_low: float, ci_high: float) -> str:
    """Apply :data:`TWO_SIDED_RULE`."""
    if math.isnan(ci_low) or math.isnan(ci_high):
        return "inconclusive"
    return "similar" if ci_low <= 0 <= ci_high else "differs"


def verdict(ci_low: float, ci_high: float, mean: float, threshold: float) -> str:
    """Apply :data:`VERDICT_RULE` (the table adds ``degenerate`` and zero-width checks, :data:`INTERVAL_RULE`)."""
    if any(math.isnan(x) for x in (ci_low, ci_high, mean)):
        return "inconclusive"
    if ci_low > 0 and mean >= threshold:
        return "selective"
    if ci_low <= 0 <= ci_high:
        return "not selective"
    if ci_high < 0:
        return "control better"
    return "inconclusive"
