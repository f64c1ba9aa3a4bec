"""From tidy steering rows to seed-level summaries and the two verdicts (reads best, writes best).

Rows are ``arm, direction, concept, seed, alpha, metric, value``. Concepts are averaged within a seed
first (the seed, i.e. the train/test split, is the unit of replication), then a two-sided 95% Student-t
interval is taken over seeds; comparisons between directions are paired by seed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from auditkit.metrics.selectivity import verdict
from auditkit.types import REAL

WRITE_METRIC = "later_selective"
"""Writing score: on-target minus mean |off-target| readout shift at the later hook (class-gap units)."""
READ_METRIC = "read_auroc"
"""Reading score: held-out AUROC of the direction as a reader of its concept."""


def t_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided Student-t interval (n - 1 degrees of freedom); NaN bounds for one value."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    mean = float(v.mean())
    if len(v) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, len(v) - 1)) * float(v.std(ddof=1)) / math.sqrt(len(v))
    return mean, mean - half, mean + half


def per_seed(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean over concepts within every (arm, direction, seed, alpha, metric)."""
    keys = ["arm", "direction", "seed", "alpha", "metric"]
    return rows.assign(alpha=rows["alpha"].fillna(-1.0)).groupby(keys, as_index=False)["value"].mean()


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (arm, direction, alpha, metric): mean over seeds, 95% interval, number of seeds."""
    out = []
    for (arm, direction, alpha, metric), g in per_seed(rows).groupby(["arm", "direction", "alpha", "metric"]):
        mean, lo, hi = t_interval(g["value"].to_numpy())
        out.append(
            dict(
                arm=arm,
                direction=direction,
                alpha=np.nan if alpha == -1.0 else alpha,
                metric=metric,
                mean=mean,
                ci_low=lo,
                ci_high=hi,
                n_seeds=int(g["value"].notna().sum()),
            )
        )
    return pd.DataFrame(out)


def _ranking(
    seeded: pd.DataFrame, metric: str, alpha: float | None, exclude: tuple[str, ...], *, higher: bool = True
) -> dict[str, Any]:
    """Best and runner-up direction on ``metric`` (``higher`` is better, else lower), with their
    seed-paired difference (best minus runner-up)."""
    sub = seeded[(seeded["metric"] == metric) & ~seeded["direction"].isin(exclude)]
    if alpha is not None:
        sub = sub[np.isclose(sub["alpha"], alpha)]
    wide = sub.pivot_table(index="seed", columns="direction", values="value")
    if wide.shape[1] < 2:
        return {}
    order = wide.mean().sort_values(ascending=not higher).index.tolist()
    best, second = order[0], order[1]
    diff, lo, hi = t_interval((wide[best] - wide[second]).to_numpy())
    return dict(
        metric=metric,
        alpha=alpha,
        best=best,
        runner_up=second,
        best_value=t_interval(wide[best].to_numpy()),
        runner_up_value=t_interval(wide[second].to_numpy()),
        difference=(diff, lo, hi),
        ranking=[(d, float(wide[d].mean())) for d in order],
        n_seeds=int(len(wide)),
    )


def verdicts(rows: pd.DataFrame, *, reference_alpha: float, arm: str = REAL) -> dict[str, Any]:
    """Which direction reads best (held-out AUROC), which writes best (later-hook selective shift at
    ``reference_alpha``), which is most surgical there (lowest off/on ratio) and which moves the label
    words' log-odds most (empty where the task has no label words), each against the runner-up with a
    seed-paired 95% interval; random directions are the control and never compete."""
    seeded = per_seed(rows[rows["arm"] == arm])
    return dict(
        reads_best=_ranking(seeded, READ_METRIC, None, ("random",)),
        writes_best=_ranking(seeded, WRITE_METRIC, reference_alpha, ("random",)),
        most_surgical=_ranking(seeded, "later_ratio", reference_alpha, ("random",), higher=False),
        moves_label_words_most=_ranking(seeded, "label_logodds", reference_alpha, ("random",)),
    )


RANDOM = "random direction"
"""Column of the comparison matrix that sets each direction against the matched-norm random one."""
COMPARED = ((READ_METRIC, "reads (held-out AUROC)", 1.0), (WRITE_METRIC, "writes (on - off, later hook)", math.nan))
"""Metrics of the comparison matrix: name, row label, ceiling (NaN: none, the row is scaled)."""


def comparison_matrix(
    rows: pd.DataFrame, *, reference_alpha: float, directions: tuple[str, ...], threshold: float = 0.05
) -> pd.DataFrame:
    """Each direction of the real arm against its comparisons, on reading (held-out AUROC) and writing (the
    later-hook on - off shift at ``reference_alpha``): the random direction of the same arm and seed, and the
    same direction in every control arm (seed-paired: the seed fixes the split and the steered texts).

    One row per (direction, metric, comparison): mean real and comparison values, the mean seed-paired
    difference with its 95% Student-t interval over seeds, the normalised difference (real - comparison) /
    (ceiling - comparison) where the metric has a ceiling, and the audit's verdict on the difference
    (:func:`auditkit.metrics.selectivity.verdict` with ``threshold``)."""
    seeded = per_seed(rows)
    controls = [a for a in dict.fromkeys(seeded["arm"]) if a != REAL]
    out = []
    for metric, label, ceiling in COMPARED:
        sub = seeded[seeded["metric"] == metric]
        if metric != READ_METRIC:
            sub = sub[np.isclose(sub["alpha"], reference_alpha)]
        wide = sub.pivot_table(index="seed", columns=["arm", "direction"], values="value")
        for direction in (d for d in directions if (REAL, d) in wide.columns):
            real = wide[(REAL, direction)]
            against = [(RANDOM, (REAL, "random"))] + [(c, (c, direction)) for c in controls]
            for name, key in against:
                if key not in wide.columns:
                    continue
                diff = (real - wide[key]).dropna()
                mean, lo, hi = t_interval(diff.to_numpy())
                other = float(wide[key].mean())
                norm = (float(real.mean()) - other) / (ceiling - other) if ceiling > other else math.nan
                out.append(
                    {
                        "direction": direction,
                        "metric": metric,
                        "label": label,
                        "comparison": name,
                        "alpha": math.nan if metric == READ_METRIC else reference_alpha,
                        "real": float(real.mean()),
                        "compared": other,
                        "difference": mean,
                        "ci_low": lo,
                        "ci_high": hi,
                        "n_seeds": len(diff),
                        "normalised": norm,
                        "verdict": verdict(lo, hi, mean, threshold),
                    }
                )
    return pd.DataFrame(out)
