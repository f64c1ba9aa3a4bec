"""Outputs of ``--matrix ... --dataset token-properties:all``: one report folder per property and a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.report.outputs import atomic_folder
from auditkit.report.tables import markdown_table
from auditkit.report.write import write_outputs
from auditkit.types import REAL


def matrix_summary(
    results: dict[str, Any], method: str = "probe-logistic", metric: str = "balanced_accuracy"
) -> pd.DataFrame:
    """One row per property: positives in the sample, the real arm's accuracy against the majority share,
    ``method``'s mean ``metric`` on every arm (and the 1-sparse probe's on the real arm, when it ran) and its
    verdict against every control on ``metric``."""
    rows = []
    for prop, r in results.items():
        mean = r.rows.groupby(["metric", "method", "control"])["value"].mean()
        sel = r.selectivity.query("metric == @metric and method == @method").set_index("control")
        counts = r.dataset["class_counts"]
        row = {"property": prop, "positives": f"{counts[1]}/{sum(counts)}", "majority": max(counts) / sum(counts),
               "accuracy": mean.get(("accuracy", method, REAL), float("nan")),
               "real": mean.get((metric, method, REAL), float("nan"))}  # fmt: skip
        for control in r.controls:
            row[control] = mean.get((metric, method, control), float("nan"))
        if (metric, "probe-k-sparse-k1", REAL) in mean.index:
            row["1-sparse real"] = mean[(metric, "probe-k-sparse-k1", REAL)]
        for control in r.controls:
            if control in sel.index:
                row[f"vs {control}"] = f"{sel.loc[control, 'verdict']} ({sel.loc[control, 'selectivity']:+.3f})"
        rows.append(row)
    return pd.DataFrame(rows)


def write_matrix_summary(results: dict[str, Any], out: Path, commands: dict[str, str], command: str) -> Path:
    """``out/<property>/`` (the normal audit outputs) for every property, and ``out/summary.md``, atomically."""
    out = Path(out)
    first = next(iter(results.values()), None)
    with atomic_folder(out, "audit") as tmp:
        for prop, result in results.items():
            write_outputs(result, tmp / prop, commands[prop])
        lines = [f"# Embedding-matrix audit: token properties on {first.provenance['name'] if first else '?'}", ""]
        if first is not None:
            cfg = first.config
            lines += [
                f"Logistic probes on {first.extraction['rows']} sampled vocabulary rows of `{cfg.matrix}` "
                f"(d = {first.extraction['d']}), one audit per property, mean over seeds {list(cfg.seeds)}. "
                "`accuracy` is the real arm's held-out accuracy (compare `majority`, the larger class's share); "
                "the arm columns and verdicts are held-out balanced accuracy (mean recall over the two classes, "
                "0.5 at chance whatever the imbalance), because most properties are rare. `1-sparse real`: the "
                "best single dimension's probe on the real matrix. Arms: the real matrix, shuffled labels, and the "
                "spectral-reinit and gaussian-reinit models' matrix. Each property's full report (all probes, "
                "intervals, accuracy verdicts) is in its folder.",
                "",
                markdown_table(matrix_summary(results)),
                "",
            ]
        lines += ["Reproduce:", "", "```", command, "```", ""]
        (tmp / "summary.md").write_text("\n".join(lines))
    return out
