"""The first screen of an audit report: one sentence on what was audited, the verdict matrix (rows: each
method's headline metrics; columns: controls; cells: selectivity, its 95% interval and the verdict's mark),
its legend, and the heatmap that says the same. The terminal prints the same matrix, compactly."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from auditkit.audit.records import MethodInfo
from auditkit.audit.result import AuditResult
from auditkit.controls import registry
from auditkit.report.plots import MARKS, effect_colour, short_name, verdict_heatmap
from auditkit.report.tables import collapsed, method_selectivity
from auditkit.trust.flags import MEANINGS

FIGURE = "verdicts.png"

LEGEND = (
    "Each cell: selectivity (real minus control, sign-flipped where lower is better) [95% CI] and the verdict: "
    + ", ".join(f"{mark} {name}" for name, mark in MARKS.items() if name not in ("differs", "similar", "descriptive"))
    + f"; for a metric with no better direction (two-sided): {MARKS['differs']} differs, {MARKS['similar']} similar. "
    "An empty cell: that control does not apply to that row."
)
MDE_LEGEND = (
    "(MDE x) after a ✗: the minimum detectable effect, the smallest selectivity this audit would call ✓ with "
    "80% power at its observed spread; a ✗ whose MDE is larger than the effect you care about means "
    '"not shown at this size", not "absent".'
)
CONTROL_TASK_SENTENCES = (
    "On sentence-level data the control task's type is the text itself, and no text recurs across the split "
    "(copies are one example), so `control-task` is a second draw of random labels (from the label "
    "distribution), not Hewitt and Liang's per-type control: read it as a second shuffled-labels arm, not as "
    "separate evidence."
)
"""Where it ran on sentence-level data anyway (named in ``--controls``, or a report saved before it was left
out by default)."""
CONTROL_TASK_SKIPPED = (
    "`control-task` did not run: on sentence-level data its type would be the text itself, which never recurs "
    "across the split, so it would be a second shuffled-labels arm counted as a separate control (name it in "
    "`--controls` to run it anyway). On token-level data it runs: there the type is the word."
)
LEXICAL_SENTENCES = (
    "The `lexical-*` columns are baselines with no model (bag-of-words, length, the read position's token), fitted "
    "on the same training rows and scored on the same held-out rows: a ✓ there reads **selective over lexical**, "
    "the probe reads more than the words give; a ✗ means this audit cannot tell the probe from the words (read it "
    "with its MDE), a ▼ that the words read the label better."
)


def control_task_note(controls: Any, levels: Any, left_out: Any = ()) -> list[str]:
    """Report lines on the control task and sentence-level data: what its types are where it ran there
    (:data:`CONTROL_TASK_SENTENCES`), why it did not where the data's level left it out of the default controls
    (:data:`CONTROL_TASK_SKIPPED`; ``left_out``: the controls the audit left out that way)."""
    if "sentence" not in set(levels):
        return []
    if "control-task" in controls:
        return [CONTROL_TASK_SENTENCES, ""]
    return [CONTROL_TASK_SKIPPED, ""] if "control-task" in left_out else []


def lexical_note(controls: Any) -> list[str]:
    """:data:`LEXICAL_SENTENCES` as report lines, where a lexical baseline ran."""
    return [LEXICAL_SENTENCES, ""] if any(registry.stage_of(c) == "lexical" for c in controls) else []


def trust_line(trust: dict[str, Any] | None, name: str = "") -> str:
    """One line: a shipped dataset's trust flag (``auditkit datasets --audit``) and its reasons."""
    if not trust:
        return ""
    why = f" ({trust['reasons']})" if trust.get("reasons") else ""
    who = f" `{name}`" if name else ""
    return (
        f"**Dataset{who} flag: {trust['flag']}**{why}: {MEANINGS.get(trust['flag'], '')}, by the trust table "
        "of the shipped datasets (`auditkit datasets --audit`, `reports/datasets`)."
    )


HEATMAP_LEGEND = (
    "The heatmap writes each cell's selectivity in its metric's unit and colours only findings (✓, ▼, ≠) by "
    "their effect, |selectivity| / (ceiling - chance) for classification metrics (direction only for others); "
    "every other cell is grey."
)


def _headline(info: MethodInfo) -> list[str]:
    return list(info.headline or ("accuracy",))


MATRIX_COLUMNS = [
    "row",
    "method",
    "metric",
    "control",
    "value",
    "ci_low",
    "ci_high",
    "verdict",
    "normalised",
    "colour",
    "shown",
    "mde",
]
"""Columns of the long verdict-matrix table that :func:`wide`, :func:`matrix_table` and the heatmap read."""


def matrix_row(cells: pd.DataFrame, label: str, **extra: Any) -> pd.DataFrame:
    """One row of the verdict matrix from selectivity rows (one per control: ``control``, ``selectivity``,
    ``ci_low``, ``ci_high``, ``verdict``, ``normalised``, and ``mde`` where scored), in :data:`MATRIX_COLUMNS`.
    ``shown`` is the selectivity (the heatmap writes it); ``colour`` the effect the heatmap paints
    (:func:`auditkit.report.plots.effect_colour`: findings only, anchored at chance, never rescaled per row).
    ``extra``: ``method``, ``metric`` (the cells' metric, for the colour scale) and ``n_classes``."""
    metric = extra.get("metric", "")
    n_classes = int(extra.get("n_classes", 2))
    value = cells["selectivity"].astype(float)
    mde = cells["mde"].astype(float) if "mde" in cells.columns else pd.Series(math.nan, index=cells.index)
    colour = [effect_colour(v, verdict, metric, n_classes) for v, verdict in zip(value, cells["verdict"])]
    return pd.DataFrame(
        {
            "row": label,
            "method": extra.get("method", label),
            "metric": metric,
            "control": cells["control"].to_numpy(),
            "value": value.to_numpy(),
            "ci_low": cells["ci_low"].astype(float).to_numpy(),
            "ci_high": cells["ci_high"].astype(float).to_numpy(),
            "verdict": cells["verdict"].to_numpy(),
            "normalised": cells["normalised"].astype(float).to_numpy(),
            "colour": np.asarray(colour, dtype=float),
            "shown": value.to_numpy(),
            "mde": mde.to_numpy(),
        }
    )


def _n_classes(result: AuditResult) -> int:
    return max(len(result.dataset.class_names), 2)


def verdict_matrix(result: AuditResult) -> pd.DataFrame:
    """Long table of the matrix (:data:`MATRIX_COLUMNS`): row label, method, metric, control, selectivity,
    interval, verdict, normalised selectivity, minimum detectable effect, and the heatmap's number and colour
    (:func:`matrix_row`)."""
    order = list(dict.fromkeys(result.rows["method"]))
    parts = []
    for method, info in result.method_info.items():
        metrics = _headline(info)
        sel = method_selectivity(result, method)
        if sel.empty:
            continue
        sel = sel[sel["metric"].isin(metrics)]
        for sub in sorted(dict.fromkeys(sel["method"]), key=lambda m: order.index(m) if m in order else len(order)):
            for metric in metrics:
                cells = sel[(sel["method"] == sub) & (sel["metric"] == metric)]
                if cells.empty:
                    continue
                label = sub if len(metrics) == 1 else f"{sub}: {metric}"
                parts.append(matrix_row(cells, label, method=sub, metric=metric, n_classes=_n_classes(result)))
    if not parts:
        return pd.DataFrame(columns=MATRIX_COLUMNS)
    out = pd.concat(parts, ignore_index=True)
    controls = [c for c in result.controls if c in set(out["control"])]
    rest = [c for c in dict.fromkeys(out["control"]) if c not in controls]
    out["control"] = pd.Categorical(out["control"], categories=controls + rest, ordered=True)
    rows = list(dict.fromkeys(out["row"]))
    out["_r"] = out["row"].map(rows.index)
    out = out.sort_values(["_r", "control"], kind="stable").drop(columns="_r").reset_index(drop=True)
    out["control"] = out["control"].astype(str)
    return out


def _signed(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:+.3f}"


IDENTICAL = "identical on every seed: no MDE"
"""What a ✗ shows instead of its minimum detectable effect when the two arms scored alike on every seed (a
zero-width interval, e.g. both at ceiling): no difference could have been seen."""


def cell_text(r: Any, interval: bool = True) -> str:
    """A matrix cell: selectivity [95% CI] and mark, and after a ✗ its minimum detectable effect."""
    mark = MARKS.get(r.verdict, "?")
    if not interval:
        return f"{r.value:+.2f} {mark}" if not math.isnan(r.value) else f"n/a {mark}"
    mde = getattr(r, "mde", math.nan)
    tail = ""
    if r.verdict == "not selective":
        tail = f" (MDE {mde:.3g})" if not math.isnan(mde) else f" ({IDENTICAL})" if r.ci_low == r.ci_high else ""
    return f"{_signed(r.value)} [{_signed(r.ci_low)}, {_signed(r.ci_high)}] {mark}{tail}"


def wide(matrix: pd.DataFrame, interval: bool = True) -> tuple[list[str], list[list[str]]]:
    """Header (``""`` then controls) and one list of cells per matrix row."""
    controls = list(dict.fromkeys(matrix["control"]))
    body = []
    for row, g in matrix.groupby("row", sort=False):
        cells = {r.control: cell_text(r, interval) for r in g.itertuples(index=False)}
        body.append([row, *(cells.get(c, "") for c in controls)])
    return ["", *controls], body


def markdown_matrix(matrix: pd.DataFrame, corner: str = "") -> list[str]:
    """The verdict matrix as markdown table lines (cells: value [95% CI] mark)."""
    head, body = wide(matrix)
    head[0] = corner
    return [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + [":---:"] * (len(head) - 1)) + "|",
        *("| " + " | ".join(cells) + " |" for cells in body),
    ]


def audited_sentence(result: AuditResult) -> str:
    """One sentence: model, hook, dataset, arms, seeds."""
    prov, ds, ex, cfg = result.provenance, result.dataset, result.extraction, result.config
    if ds.level == "vocabulary":
        data = f"{ds.n_items} vocabulary tokens labelled by `{ds.name}`"
    else:
        data = f"`{ds.name}` ({ds.n_texts} texts, {len(ds.class_names)} classes)"
    seeds = list(cfg.seeds)
    return (
        f"Audited `{prov.name}` at hook `{ex.hook}` ({ex.positions} positions) on {data} with "
        f"{', '.join(result.method_info)}: the real arm against {len(result.controls)} control arm"
        f"{'s' if len(result.controls) != 1 else ''} ({', '.join(result.controls)}), {len(seeds)} seed"
        f"{'s' if len(seeds) != 1 else ''} {seeds}."
    )


def summary_lines(result: AuditResult, rule: str, figure: str | None) -> list[str]:
    """The first screen: the sentence, the verdict matrix with its legend and rule, and the heatmap."""
    matrix = verdict_matrix(result)
    flag = trust_line(result.dataset.trust)
    lines = [audited_sentence(result), "", *([flag, ""] if flag else []), "## Verdicts", ""]
    if matrix.empty:
        return lines + ["No control ran: there is nothing to compare the real arm with.", ""]
    lines += [
        *markdown_matrix(matrix),
        "",
        LEGEND + " " + MDE_LEGEND + " " + HEATMAP_LEGEND,
        "",
        *lexical_note(result.controls),
        *control_task_note(result.controls, [result.dataset.level], result.dataset.left_out_controls or ()),
        *collapsed("Verdict rule", rule),
    ]
    if figure:
        lines += [f"![Verdict matrix: selectivity and verdict per method and control]({figure})", ""]
    return lines


def summary_figure(result: AuditResult, folder: Path) -> str | None:
    """Write the heatmap; its file name, or None when no control ran."""
    matrix = verdict_matrix(result)
    if matrix.empty:
        return None
    verdict_heatmap(matrix, folder / FIGURE, "Selectivity and verdict\n(real vs control, mean over seeds)")
    return FIGURE


TERMINAL_LEGEND = "  ".join(f"{m} {n}" for n, m in MARKS.items())


def terminal_table(result: AuditResult) -> Any:
    """The verdict matrix as a compact ``rich`` table (selectivity and mark; the report has the intervals)."""
    return matrix_table(verdict_matrix(result))


def matrix_table(matrix: pd.DataFrame, corner: str = "selectivity") -> Any:
    """A long verdict-matrix table (:data:`MATRIX_COLUMNS`) as a compact ``rich`` table: value and mark."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    if matrix.empty:
        return table
    head, body = wide(matrix, interval=False)
    table.add_column(corner, no_wrap=True)
    for control in head[1:]:
        table.add_column(short_name(control), justify="right", no_wrap=True)
    for cells in body:
        table.add_row(*cells)
    return table
