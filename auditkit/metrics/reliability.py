"""Which metrics can tell a trained model from its controls at an audit's budget (issue 29, "metric reliability").

Per (metric, control): the metric's reseed spread on the real arm (standard deviation over the audit's seeds,
each of which redraws the split, the initialisation and the data order), the smallest difference the audit
could detect against that control (the selectivity table's minimum detectable effect at 80% power for a
directional metric, :mod:`auditkit.metrics.evidence`; the half-width of the 95% interval for a two-sided one),
and the verdict. Everything is read from the tidy rows and the selectivity table as written, so a saved run
gives the same table as a fresh one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from auditkit.metrics.evidence import DESCRIPTIVE, TWO_SIDED
from auditkit.types import REAL

SEPARATES = ("selective", "differs")
"""Verdicts that tell the real arm from the control (directional: selective; two-sided: differs)."""

COLUMNS = (
    "metric",
    "control",
    "n_seeds",
    "reseed_sd",
    "selectivity",
    "detectable",
    "detectable_kind",
    "verdict",
    "separates",
)
"""Columns of :func:`reliability_table`."""


def reseed_spread(rows: pd.DataFrame, method: str) -> pd.Series:
    """Standard deviation over seeds (ddof 1) of each metric of ``method`` on the real arm, in the metric's
    unit (NaN with one seed)."""
    real = rows[(rows["method"] == method) & (rows["control"] == REAL)]
    per_seed = real.groupby(["metric", "seed"], sort=False)["value"].mean()
    return per_seed.groupby(level="metric", sort=False).std(ddof=1)


def detectable(verdict: str, mde: float, ci_low: float, ci_high: float) -> tuple[float, str]:
    """The smallest difference a cell could show, and what it is: ``mde`` (directional), ``half-width`` (two-sided:
    the interval's half-width, any larger difference would read *differs*) or ``none`` (a descriptive pair)."""
    if verdict == DESCRIPTIVE:
        return math.nan, "none"
    if verdict in TWO_SIDED:
        return (ci_high - ci_low) / 2, "half-width"
    return mde, "mde"


def reliability_table(
    rows: pd.DataFrame, selectivity: pd.DataFrame, *, method: str, metrics: Sequence[str], controls: Sequence[str]
) -> pd.DataFrame:
    """One row per (metric, control) of ``method`` that the selectivity table holds, metrics and controls in the
    given order (see the module). ``separates``: the verdict tells the real arm from the control (True/False),
    empty for a descriptive pair."""
    spread = reseed_spread(rows, method)
    sel = selectivity[(selectivity["method"] == method) & selectivity["control"].isin(list(controls))]
    cells = sel.set_index(["metric", "control"])
    out = [
        _row(metric, control, cells.loc[(metric, control)], float(spread.get(metric, math.nan)))
        for metric in metrics
        for control in controls
        if (metric, control) in cells.index
    ]
    return pd.DataFrame(out, columns=list(COLUMNS))


def _row(metric: str, control: str, cell: pd.Series, reseed_sd: float) -> dict[str, object]:
    """One row of :func:`reliability_table` from the selectivity table's ``cell``."""
    verdict = cell["verdict"]
    mde = float(cell["mde"]) if "mde" in cell.index else math.nan
    value, kind = detectable(verdict, mde, float(cell["ci_low"]), float(cell["ci_high"]))
    return dict(
        metric=metric,
        control=control,
        n_seeds=int(cell["n_seeds"]),
        reseed_sd=reseed_sd,
        selectivity=float(cell["selectivity"]),
        detectable=value,
        detectable_kind=kind,
        verdict=verdict,
        separates=None if verdict == DESCRIPTIVE else verdict in SEPARATES,
    )
