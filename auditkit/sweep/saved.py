"""A sweep read back from its output folder (run.json, results.csv, selectivity.csv), for re-rendering its
summary without recomputing: the selectivity tables and their verdicts are read as written, never rescored (a
table written before the evidence columns gets them from its own intervals)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.audit.saved import config_from_json, read_tables
from auditkit.metrics.evidence import with_evidence
from auditkit.sweep.config import SweepConfig
from auditkit.sweep.run import SweepResult

SWEEP_COLUMNS = ("dataset", "hook", "layer")
"""The columns a sweep's tables add to an audit's: the cell each row belongs to."""


def load_sweep(folder: Path) -> tuple[SweepResult, dict[str, Any]]:
    """The :class:`SweepResult` a sweep output folder was written from, and its run.json.

    Raises :class:`OutputError` naming what is missing when ``folder`` does not hold a sweep's outputs."""

    def build(run: dict[str, Any], rows: pd.DataFrame, selectivity: pd.DataFrame) -> SweepResult:
        saved = run["config"]
        cfg = SweepConfig(audit=config_from_json(saved["audit"]), datasets=saved["datasets"], hooks=saved["hooks"])
        selectivity = with_evidence(selectivity, threshold=cfg.audit.selectivity_threshold, family=True)
        return SweepResult(
            config=cfg,
            datasets=list(run["datasets"]),
            hooks=list(run["hooks"]),
            rows=rows,
            selectivity=selectivity,
            cells=run["cells"],
            controls=tuple(run["controls"]),
            provenance=run["provenance"],
            timings=run.get("timings", {}),
            failures=list(run.get("failures", [])),
            execution=run.get("execution", {}),
        )

    return read_tables(folder, "sweep", build, extra_columns=SWEEP_COLUMNS)
