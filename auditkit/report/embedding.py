"""Outputs of ``--matrix ... --dataset token-properties:all``: one report folder per property and a summary.

summary.md opens with its answer, like every audit report: one sentence on what was audited, the verdict
matrix (rows: properties; columns: controls; cells: the logistic probe's balanced-accuracy selectivity with
its 95% interval and the verdict's mark) with its legend, and the heatmap ``verdicts.png``; the per-property
table follows. :func:`rerender_matrix_summary` re-renders it and every property's report from their tables.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.audit.result import AuditResult
from auditkit.report.outputs import atomic_folder, copy_except, rendering_errors, safe_name
from auditkit.report.plots import verdict_heatmap
from auditkit.report.summary import (
    HEATMAP_LEGEND,
    LEGEND,
    MATRIX_COLUMNS,
    MDE_LEGEND,
    markdown_matrix,
    matrix_row,
    matrix_table,
)
from auditkit.report.tables import markdown_table
from auditkit.report.write import OWNED, render_report, write_outputs
from auditkit.types import REAL

FIGURE = "verdicts.png"
METHOD, METRIC = "probe-logistic", "balanced_accuracy"
"""The matrix's probe and metric: most properties are rare, so balanced accuracy (0.5 at chance whatever the
imbalance) rather than accuracy."""


def matrix_summary(results: dict[str, AuditResult], method: str = METHOD, metric: str = METRIC) -> pd.DataFrame:
    """One row per property: positives in the sample, the real arm's accuracy against the majority share,
    ``method``'s mean ``metric`` on every arm (and the 1-sparse probe's on the real arm, when it ran) and its
    verdict against every control on ``metric``."""
    rows = []
    for prop, r in results.items():
        mean = r.rows.groupby(["metric", "method", "control"])["value"].mean()
        sel = r.selectivity.query("metric == @metric and method == @method").set_index("control")
        counts = r.dataset.class_counts
        row = {
            "property": prop,
            "positives": f"{counts[1]}/{sum(counts)}",
            "majority": max(counts) / sum(counts),
            "accuracy": mean.get(("accuracy", method, REAL), float("nan")),
            "real": mean.get((metric, method, REAL), float("nan")),
        }
        for control in r.controls:
            row[control] = mean.get((metric, method, control), float("nan"))
        if (metric, "probe-k-sparse-k1", REAL) in mean.index:
            row["1-sparse real"] = mean[(metric, "probe-k-sparse-k1", REAL)]
        for control in r.controls:
            if control in sel.index:
                row[f"vs {control}"] = f"{sel.loc[control, 'verdict']} ({sel.loc[control, 'selectivity']:+.3f})"
        rows.append(row)
    return pd.DataFrame(rows)


def embedding_matrix(results: dict[str, AuditResult], method: str = METHOD, metric: str = METRIC) -> pd.DataFrame:
    """The verdict matrix (:data:`auditkit.report.summary.MATRIX_COLUMNS`): one row per property, one column
    per control, ``method``'s selectivity on ``metric`` as each property's own audit scored it."""
    parts = []
    for prop, r in results.items():
        sel = r.selectivity
        cells = sel[(sel["method"] == method) & (sel["metric"] == metric)]
        if not cells.empty:
            order = {c: i for i, c in enumerate(r.controls)}
            cells = cells.sort_values("control", key=lambda s: s.map(order), kind="stable")
            parts.append(matrix_row(cells, prop, method=method, metric=metric))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=MATRIX_COLUMNS)


def terminal_table(results: dict[str, AuditResult]) -> Any:
    """The properties' verdict matrix as a compact ``rich`` table."""
    return matrix_table(embedding_matrix(results), corner="property")


def _sentence(first: AuditResult, results: dict[str, AuditResult]) -> str:
    cfg = first.config
    seeds = list(cfg.seeds)
    return (
        f"Audited the rows of `{cfg.matrix}` of `{first.provenance.name}` ({first.extraction.rows} sampled "
        f"vocabulary tokens, d = {first.extraction.d}) for {len(results)} token properties with probes "
        f"({', '.join(cfg.probes)}), one audit per property: the real matrix against {len(first.controls)} control "
        f"arms ({', '.join(first.controls)}), {len(seeds)} seeds {seeds}. The matrix shows {METHOD}'s held-out "
        "balanced accuracy (mean recall over the two classes, 0.5 at chance whatever the imbalance: most "
        "properties are rare)."
    )


def summary_text(results: dict[str, AuditResult], command: str, figure: str | None) -> str:
    """summary.md: the first screen (sentence, matrix, legend, heatmap), then the per-property table."""
    first = next(iter(results.values()), None)
    lines = [f"# Embedding-matrix audit: token properties on {first.provenance.name if first else '?'}", ""]
    if first is not None:
        matrix = embedding_matrix(results)
        lines += [_sentence(first, results), "", "## Verdicts", ""]
        if not matrix.empty:
            lines += [
                *markdown_matrix(matrix, "property"),
                "",
                LEGEND + " " + MDE_LEGEND + " Rows are properties, each its own audit. " + HEATMAP_LEGEND,
                "",
            ]
        if figure:
            lines += [f"![Verdict matrix: selectivity and verdict per property and control]({figure})", ""]
        lines += [
            "## Per property",
            "",
            (
                "`accuracy` is the real arm's held-out accuracy (compare `majority`, the larger class's share); the arm "
                "columns and verdicts are held-out balanced accuracy. `1-sparse real`: the best single dimension's probe "
                "on the real matrix. Each property's full report (all probes, intervals, accuracy verdicts) is in its "
                "folder."
            ),
            "",
            markdown_table(matrix_summary(results)),
            "",
        ]
    lines += ["Reproduce:", "", "```", command, "```", ""]
    return "\n".join(lines)


def _render_summary(results: dict[str, AuditResult], folder: Path, command: str) -> None:
    figure = None
    matrix = embedding_matrix(results)
    if not matrix.empty:
        verdict_heatmap(
            matrix,
            folder / FIGURE,
            f"{METHOD}: selectivity of held-out balanced accuracy\n"
            "(real vs control, mean over seeds; a row = one property's audit)",
        )
        figure = FIGURE
    (folder / "summary.md").write_text(summary_text(results, command, figure))


def write_matrix_summary(results: dict[str, AuditResult], out: Path, commands: dict[str, str], command: str) -> Path:
    """``out/<property>/`` (the normal audit outputs) for every property, and ``out/summary.md``, atomically."""
    out = Path(out)
    with atomic_folder(out, "audit", owned=OWNED) as tmp:
        for prop, result in results.items():
            write_outputs(result, tmp / prop, commands[prop])
        _render_summary(results, tmp, command)
    return out


def matrix_command(prop: str, command: str) -> str:
    """The ``token-properties:all`` command, from the command of its property ``prop``'s audit (the same
    options, the dataset ``all`` and the parent output folder)."""
    words = shlex.split(command)
    for i, word in enumerate(words):
        if word == f"token-properties:{prop}":
            words[i] = "token-properties:all"
        elif i and words[i - 1] == "--out" and word.rstrip("/").endswith("/" + prop):
            words[i] = word.rstrip("/")[: -len(prop) - 1]
    return shlex.join(words)


RENDERED = ("summary.md", FIGURE)


def rerender_matrix_summary(loaded: dict[str, tuple[AuditResult, dict[str, Any]]], out: Path) -> Path:
    """Re-render summary.md, its heatmap and every property's report.md and figures of a ``token-properties:all``
    output ``out`` in place, atomically, from the properties' own tables (``loaded``: property -> (result,
    run.json), :func:`auditkit.audit.saved.load_matrix`); every table is carried over byte for byte."""
    out = Path(out)
    results = {prop: result for prop, (result, _) in loaded.items()}
    prop, (_, run) = next(iter(loaded.items()))
    with atomic_folder(out, "audit") as tmp:
        copy_except(out, tmp, RENDERED)
        with rendering_errors(out, "audit"):
            for name, (result, run_json) in loaded.items():
                render_report(result, tmp / safe_name(name, "property folder"), run_json["command"])
            _render_summary(results, tmp, matrix_command(prop, run["command"]))
    return out
