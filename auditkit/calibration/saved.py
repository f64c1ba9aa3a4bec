"""A calibration read back from its output folder (run.json, fpr.csv, power.csv, verdicts.csv, recovery.csv),
for re-rendering without recomputing: every rate and interval is read as written, never recounted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.audit.options import PursuitAuditOptions, SAEAuditOptions
from auditkit.audit.saved import _build
from auditkit.calibration.run import CalibrationConfig, CalibrationResult
from auditkit.errors import AuditkitError, OutputError

FILES = ("run.json", "fpr.csv", "power.csv", "verdicts.csv", "recovery.csv")
"""What a calibration output holds that a re-render reads."""


def _table(path: Path) -> pd.DataFrame:
    """A table as written; an empty frame for the empty file pandas writes for a table with no columns."""
    if path.stat().st_size <= 1:
        return pd.DataFrame()
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def load_calibration(folder: Path) -> tuple[CalibrationResult, dict[str, Any]]:
    """The :class:`CalibrationResult` a calibration output folder was written from, and its run.json.

    Raises :class:`OutputError` naming what is missing when ``folder`` does not hold a calibration's outputs."""
    folder = Path(folder)
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise OutputError(
            f"{str(folder)!r} is not an auditkit validate output: it has no {', '.join(missing)}; give "
            "the folder `auditkit validate --out` wrote"
        )
    try:
        run = json.loads((folder / "run.json").read_text())
        data = run["config"]
        cfg = _build(
            CalibrationConfig,
            data,
            sae=_build(SAEAuditOptions, data["sae"]),
            pursuit=_build(PursuitAuditOptions, data["pursuit"]),
        )
        tables = {name: _table(folder / f"{name}.csv") for name in ("fpr", "power", "verdicts", "recovery")}
    except (OSError, ValueError, KeyError, TypeError, AuditkitError) as exc:
        raise OutputError(
            f"cannot read the calibration in {str(folder)!r} ({type(exc).__name__}: {exc}): its "
            "run.json or tables are not what `auditkit validate` writes"
        ) from None
    return CalibrationResult(config=cfg, info=run.get("info", {}), **tables), run
