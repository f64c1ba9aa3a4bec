"""A sweep read back from its output folder (run.json, results.csv, selectivity.csv), for re-rendering its
summary without recomputing: the selectivity tables and their verdicts are read as written, never rescored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.audit.saved import config_from_json
from auditkit.errors import AuditkitError, OutputError
from auditkit.sweep.config import SweepConfig
from auditkit.sweep.run import SweepResult

FILES = ("run.json", "results.csv", "selectivity.csv")
"""What a sweep output holds that a re-render reads."""


def load_sweep(folder: Path) -> tuple[SweepResult, dict[str, Any]]:
    """The :class:`SweepResult` a sweep output folder was written from, and its run.json.

    Raises :class:`OutputError` naming what is missing when ``folder`` does not hold a sweep's outputs."""
    folder = Path(folder)
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise OutputError(f"{str(folder)!r} is not an auditkit sweep output: it has no {', '.join(missing)}; give the "
                          "folder an `auditkit sweep --out` wrote")  # fmt: skip
    try:
        run = json.loads((folder / "run.json").read_text())
        rows = pd.read_csv(folder / "results.csv")
        selectivity = pd.read_csv(folder / "selectivity.csv", keep_default_na=False, na_values=[""])
        if "note" in selectivity.columns:
            selectivity["note"] = selectivity["note"].fillna("")
        saved = run["config"]
        cfg = SweepConfig(audit=config_from_json(saved["audit"]), datasets=saved["datasets"], hooks=saved["hooks"])
        result = SweepResult(
            config=cfg, datasets=list(run["datasets"]), hooks=list(run["hooks"]), rows=rows, selectivity=selectivity,
            cells=run["cells"], controls=tuple(run["controls"]), provenance=run["provenance"],
            timings=run.get("timings", {}), failures=list(run.get("failures", [])),
            execution=run.get("execution", {}),
        )  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError, AuditkitError) as exc:
        raise OutputError(f"cannot read the sweep in {str(folder)!r} ({type(exc).__name__}: {exc}): its run.json "
                          "or tables are not what `auditkit sweep` writes") from None  # fmt: skip
    return result, run
