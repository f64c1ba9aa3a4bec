"""The planner's terminal table (:func:`auditkit.metrics.planning.plan_table`), compact like the verdict
matrix: one row per (method, control), the pilot's selectivity and mark, its MDE, the power at the asked
effect at the pilot's size, and the texts needed for the asked power."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from auditkit.metrics.planning import n_test_texts
from auditkit.report.plots import MARKS


def _texts(n: Any, max_texts: int) -> str:
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return f"more than {max_texts:,}"
    return f"{int(n):,}"


def plan_terminal_table(plan: pd.DataFrame, *, effect: float, power: float, seeds: str, max_texts: int) -> Any:
    """``plan`` (:data:`~auditkit.metrics.planning.PLAN_COLUMNS`) as a ``rich`` table; ``seeds`` says at how many
    seeds the texts needed are planned. A row that cannot be planned (no better direction, no standard error)
    shows ``-``."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    for name in (
        "method",
        "control",
        "selectivity",
        "MDE",
        f"power at +{effect:g}",
        f"texts for {power:.0%} power ({seeds})",
    ):
        table.add_column(name, no_wrap=True, justify="left" if name in ("method", "control") else "right")
    for r in plan.itertuples(index=False):
        plannable = not math.isnan(r.mde)
        table.add_row(
            r.method,
            r.control,
            f"{r.selectivity:+.3f} {MARKS.get(r.verdict, '?')}",
            f"{r.mde:.3f}" if plannable else "-",
            f"{r.power:.2f}" if plannable else "-",
            _texts(r.texts_needed, max_texts) if plannable else "-",
        )
    return table


def design_terminal_table(
    p_real: float,
    p_control: float,
    *,
    seeds: int,
    test_fraction: float,
    needed: int | None,
    max_texts: int,
    power: float,
    effect: float,
) -> Any:
    """A stated design's one-row ``rich`` table: the accuracies, seeds, and the texts needed (with their test
    texts per seed)."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    for name in ("real", "control", "seeds", f"texts for {power:.0%} power at +{effect:g}", "test texts per seed"):
        table.add_column(name, no_wrap=True, justify="right")
    test = "-" if needed is None else f"{n_test_texts(needed, test_fraction):,}"
    table.add_row(f"{p_real:g}", f"{p_control:g}", str(seeds), _texts(needed, max_texts), test)
    return table
