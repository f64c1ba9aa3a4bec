"""Markdown building blocks every report section shares: number formatting, tables, selectivity by control."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from auditkit.audit.result import AuditResult
from auditkit.controls import registry
from auditkit.metrics.selectivity import mean_over_draws
from auditkit.types import REAL


def fmt(x: Any, digits: int = 3) -> str:
    if isinstance(x, float):
        return "n/a" if math.isnan(x) else f"{x:.{digits}f}"
    return str(x)


def markdown_table(df: pd.DataFrame) -> str:
    head = "| " + " | ".join(df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def results_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds of every (method, arm, metric); a control drawn several times per
    seed enters as the mean of its draws, as in the selectivity."""
    rows = mean_over_draws(rows[[c for c in rows.columns if c not in ("outcome",)]])
    g = rows.groupby(["method", "control", "metric"])["value"]
    out = pd.concat([g.mean().rename("mean"), g.std(ddof=1).rename("sd"), g.size().rename("seeds")], axis=1)
    out = out.reset_index().rename(columns={"control": "arm"})
    out["arm"] = out["arm"].replace({REAL: "real"})
    return out


def control_sections(sel: pd.DataFrame, level: str = "###", descriptions: Mapping[str, str] | None = None) -> list[str]:
    """One subsection per control: what it destroys (``descriptions``, and the registered controls' own
    :attr:`~auditkit.controls.registry.Control.description`) and its selectivity rows."""
    descriptions = {**control_descriptions(), **(descriptions or {})}
    lines = []
    for control in dict.fromkeys(sel["control"]):
        sub = sel[sel["control"] == control].drop(columns=["control", "n_seeds"])
        summary = ", ".join(f"{v} {n}" for v, n in sub["verdict"].value_counts(sort=False).items())
        lines += [
            f"{level} {control}",
            "",
            descriptions.get(control, ""),
            "",
            *collapsed(f"{len(sub)} rows: {summary}", markdown_table(sub)),
        ]
    return lines


def control_descriptions() -> dict[str, str]:
    """Every registered control's sentence on what it destroys, by name."""
    return {c.name: c.description for c in registry.controls()}


def collapsed(summary: str, body: str) -> list[str]:
    """``body`` (markdown) folded under ``summary`` (a ``<details>`` block; blank lines keep tables rendering)."""
    return ["<details>", f"<summary>{summary}</summary>", "", body, "", "</details>", ""]


def method_selectivity(result: AuditResult, method_prefix: str) -> pd.DataFrame:
    """Selectivity rows of one method (``probe`` matches ``probe-logistic``, ``probe-mlp``, ...)."""
    sel = result.selectivity
    if sel.empty:
        return sel
    m = sel["method"]
    return sel[(m == method_prefix) | m.str.startswith(method_prefix + "-")]


def duplicates_line(dup: dict[str, Any]) -> str:
    """One bullet saying what the source held in repeats and what the policy did."""
    return (
        f"- Repeated texts: {dup['repeated_texts']} distinct texts occur more than once in the source, covering "
        f"{dup['repeated_rows']} of its {dup['source_texts']} texts; {dup['label_conflicts']} with copies whose "
        f"labels disagree; policy `{dup['policy']}` ({dup['dropped_items']} items dropped); "
        f"{dup.get('merged_after_tokenising', 0)} texts merged for identical token ids. Copies are one example: "
        "never on both sides of a split."
    )
