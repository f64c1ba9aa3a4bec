"""Outputs of ``--matrix ... --dataset token-properties:all``: one report folder per property and a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.report.markdown import _table
from auditkit.report.write import atomic_folder, write_outputs


def matrix_summary(results: dict[str, Any], method: str = "probe-logistic") -> pd.DataFrame:
    """One row per property: positives in the sample, ``method``'s mean accuracy on every arm, and its
    verdict against every control."""
    rows = []
    for prop, r in results.items():
        acc = r.rows.query("metric == 'accuracy' and method == @method").groupby("control")["value"].mean()
        sel = r.selectivity.query("metric == 'accuracy' and method == @method").set_index("control")
        counts = r.dataset["class_counts"]
        row = {"property": prop, "positives": f"{counts[1]}/{sum(counts)}", "majority": max(counts) / sum(counts),
               "real": acc.get("none", float("nan"))}  # fmt: skip
        for control in r.controls:
            row[control] = acc.get(control, float("nan"))
        for control in r.controls:
            if control in sel.index:
                row[f"vs {control}"] = f"{sel.loc[control, 'verdict']} ({sel.loc[control, 'selectivity']:+.3f})"
        rows.append(row)
    return pd.DataFrame(rows)


def write_matrix_summary(results: dict[str, Any], out: Path, commands: dict[str, str], command: str) -> Path:
    """``out/<property>/`` (the normal audit outputs) for every property, and ``out/summary.md``, atomically."""
    out = Path(out)
    first = next(iter(results.values()), None)
    with atomic_folder(out) as tmp:
        for prop, result in results.items():
            write_outputs(result, tmp / prop, commands[prop])
        lines = [f"# Embedding-matrix audit: token properties on {first.provenance['name'] if first else '?'}", ""]
        if first is not None:
            cfg = first.config
            lines += [
                f"Logistic probes on {first.extraction['rows']} sampled vocabulary rows of `{cfg.matrix}` "
                f"(d = {first.extraction['d']}), one audit per property; held-out accuracy, mean over seeds "
                f"{list(cfg.seeds)}. Arms: the real matrix, shuffled labels, and the spectral-reinit and "
                "gaussian-reinit models' matrix. Each property's full report (all probes, intervals) is in its folder.",
                "",
                _table(matrix_summary(results)),
                "",
            ]
        lines += ["Reproduce:", "", "```", command, "```", ""]
        (tmp / "summary.md").write_text("\n".join(lines))
    return out
