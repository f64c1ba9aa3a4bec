"""``auditkit compare``: a short markdown diff of two audits read from their output folders: what differs in
configuration and provenance, the verdicts that changed, and the selectivity deltas with both intervals.
Nothing is recomputed: both selectivity tables are read as written."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from auditkit.report.plots import MARKS

KEY = ["method", "control", "metric"]


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: data}


SETTINGS = ("config", "provenance", "extraction", "versions")
"""run.json entries compared setting by setting (the dataset is compared by name, fingerprint and size)."""
_DATASET_KEYS = ("name", "fingerprint", "level", "n_texts", "n_items", "class_counts")


def setting_changes(run_a: dict[str, Any], run_b: dict[str, Any]) -> pd.DataFrame:
    """Every configuration, provenance, dataset and library-version setting whose value differs."""
    rows = []
    for section in SETTINGS:
        a, b = _flat(run_a.get(section, {})), _flat(run_b.get(section, {}))
        for key in dict.fromkeys([*a, *b]):
            if a.get(key) != b.get(key):
                rows.append({"setting": f"{section}.{key}", "A": a.get(key, "absent"), "B": b.get(key, "absent")})
    for key in _DATASET_KEYS:
        va, vb = run_a.get("dataset", {}).get(key), run_b.get("dataset", {}).get(key)
        if va != vb:
            rows.append({"setting": f"dataset.{key}", "A": va, "B": vb})
    return pd.DataFrame(rows, columns=["setting", "A", "B"])


def selectivity_changes(sel_a: pd.DataFrame, sel_b: pd.DataFrame) -> pd.DataFrame:
    """Rows present in both runs: both selectivities with intervals, the delta (B - A) and both verdicts."""
    cols = ["selectivity", "ci_low", "ci_high", "verdict"]
    both = sel_a[KEY + cols].merge(sel_b[KEY + cols], on=KEY, suffixes=("_a", "_b"))
    both["delta"] = both["selectivity_b"] - both["selectivity_a"]
    both["changed"] = both["verdict_a"] != both["verdict_b"]
    return both


def _interval(r: Any, side: str) -> str:
    s, lo, hi = (getattr(r, f"{c}_{side}") for c in ("selectivity", "ci_low", "ci_high"))
    if math.isnan(s):
        return "n/a"
    return f"{s:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def _verdict(v: str) -> str:
    return f"{MARKS.get(v, '?')} {v}"


def _table(head: list[str], body: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
        *("| " + " | ".join(map(str, r)) + " |" for r in body),
    ]


def render_compare(
    name_a: str,
    run_a: dict[str, Any],
    sel_a: pd.DataFrame,
    name_b: str,
    run_b: dict[str, Any],
    sel_b: pd.DataFrame,
    top: int = 10,
) -> str:
    """The markdown diff of run A (``name_a``) and run B: settings, changed verdicts, largest deltas."""
    settings = setting_changes(run_a, run_b)
    both = selectivity_changes(sel_a, sel_b)
    only_a = len(sel_a.merge(sel_b[KEY], on=KEY, how="left", indicator=True).query("_merge == 'left_only'"))
    only_b = len(sel_b.merge(sel_a[KEY], on=KEY, how="left", indicator=True).query("_merge == 'left_only'"))
    lines = [
        "# auditkit compare",
        "",
        (
            f"A: `{name_a}`; B: `{name_b}`. {len(both)} (method, control, metric) rows in both runs; {only_a} only "
            f"in A, {only_b} only in B. Selectivity is read from each run's selectivity.csv, not recomputed; the "
            "intervals are each run's own 95% intervals (the runs are not paired, so a delta has no interval of its own)."
        ),
        "",
        "## What differs in configuration and provenance",
        "",
    ]
    shown = settings[~settings["setting"].isin(["config.progress"])]
    if shown.empty:
        lines += ["Nothing: same configuration, model, dataset and library versions.", ""]
    else:
        lines += [
            *_table(
                ["setting", "A", "B"],
                [[f"`{r.setting}`", f"`{r.A}`", f"`{r.B}`"] for r in shown.itertuples(index=False)],
            ),
            "",
        ]
    changed = both[both["changed"]]
    lines += ["## Verdicts that changed", ""]
    if changed.empty:
        lines += ["None: every row in both runs has the same verdict.", ""]
    else:
        lines += [
            *_table(
                ["method", "metric", "control", "A", "B", "A selectivity [95% CI]", "B selectivity [95% CI]"],
                [
                    [
                        r.method,
                        r.metric,
                        r.control,
                        _verdict(r.verdict_a),
                        _verdict(r.verdict_b),
                        _interval(r, "a"),
                        _interval(r, "b"),
                    ]
                    for r in changed.itertuples(index=False)
                ],
            ),
            "",
        ]
    moved = both.assign(size=both["delta"].abs()).sort_values("size", ascending=False, kind="stable").head(top)
    lines += [f"## Largest selectivity deltas (B - A; top {min(top, len(both))} of {len(both)})", ""]
    if moved.empty:
        lines += ["No row is in both runs.", ""]
    else:
        lines += [
            *_table(
                [
                    "method",
                    "metric",
                    "control",
                    "delta",
                    "A selectivity [95% CI]",
                    "B selectivity [95% CI]",
                    "verdict A -> B",
                ],
                [
                    [
                        r.method,
                        r.metric,
                        r.control,
                        f"{r.delta:+.3f}",
                        _interval(r, "a"),
                        _interval(r, "b"),
                        f"{MARKS.get(r.verdict_a, '?')} -> {MARKS.get(r.verdict_b, '?')}",
                    ]
                    for r in moved.itertuples(index=False)
                ],
            ),
            "",
        ]
    return "\n".join(lines)
