"""An audit read back from its output folder (run.json, results.csv, selectivity.csv), for re-rendering and
comparing without recomputing: the selectivity table and its verdicts are read as written, never rescored."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.audit.config import AuditConfig
from auditkit.audit.options import PursuitAuditOptions, SAEAuditOptions
from auditkit.audit.records import DatasetInfo, ExtractionInfo, MethodInfo, ProvenanceInfo
from auditkit.audit.result import AuditResult
from auditkit.audit.run import resolve_controls
from auditkit.controls import registry
from auditkit.errors import AuditkitError, OutputError
from auditkit.metrics.evidence import with_evidence
from auditkit.models import ModelSpec
from auditkit.token_properties import PROPERTIES
from auditkit.types import REAL

FILES = ("run.json", "results.csv", "selectivity.csv")
"""What an audit output holds that a re-render reads."""

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "results.csv": ("method", "control", "seed", "metric", "value"),
    "selectivity.csv": ("method", "control", "metric", "selectivity", "ci_low", "ci_high", "normalised", "verdict"),
}
"""The columns of each table that rendering and comparing read (a sweep's tables add ``dataset, hook, layer``)."""

REPORT_FILE = {"audit": "report.md", "sweep": "summary.md"}
"""Where each kind of output writes the command that reproduces it."""


def table_record(path: Path, rows: int) -> dict[str, Any]:
    """What run.json records of a table just written at ``path`` with ``rows`` rows: its row count and the
    SHA-256 of its bytes, so that a re-render or a comparison can tell a table changed after the run."""
    return {"rows": int(rows), "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest()}


def _changed(path: Path, kind: str, detail: str) -> OutputError:
    return OutputError(
        f"{str(path)!r} was changed after the run ({detail}): rerun the command in its "
        f"{REPORT_FILE.get(kind, 'report')} to write it again"
    )


def _check_table(path: Path, kind: str, recorded: Any) -> None:
    """Raise unless the table at ``path`` is the one the run wrote: its SHA-256 as run.json records it (``recorded``,
    from ``table_record``), or, for a run written before tables were recorded (``recorded`` None), at least
    whole: what pandas writes ends with a newline, so a table cut mid-line is refused (one cut exactly at the
    end of a line cannot be told from a shorter run)."""
    data = path.read_bytes()
    if isinstance(recorded, dict) and "sha256" in recorded:
        digest = hashlib.sha256(data).hexdigest()
        if digest != recorded["sha256"]:
            raise _changed(
                path,
                kind,
                f"run.json records SHA-256 {str(recorded['sha256'])[:12]}... and "
                f"{recorded.get('rows', '?')} rows; the file's SHA-256 is {digest[:12]}...",
            )
        return
    if not data.endswith(b"\n"):
        raise _changed(path, kind, "its last line is cut: no final newline")


def _check_columns(path: Path, kind: str, frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise _changed(path, kind, f"it has no column(s) {', '.join(missing)}, which `auditkit {kind}` writes")


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _build(cls: type, data: dict[str, Any], **nested: Any) -> Any:
    """``cls`` from its JSON fields (lists back to tuples); unknown keys are ignored (an older run.json)."""
    fields = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    kwargs = {
        k: Path(v) if isinstance(v, str) and "Path" in fields[k] else _tuples(v)  # run.json writes paths as text
        for k, v in data.items()
        if k in fields and k not in nested
    }
    return cls(**kwargs, **nested)


def config_from_json(data: dict[str, Any]) -> AuditConfig:
    """The :class:`AuditConfig` that run.json's ``config`` was written from (a run saved before control
    draws existed drew each control once; one saved before ``probe_c_grid`` existed fitted every probe at its
    fixed C, not at today's default grid)."""
    data = {"label_draws": 1, "weight_draws": 1, "probe_c_grid": [], **data}
    return _build(
        AuditConfig,
        data,
        model=_build(ModelSpec, data["model"]),
        pursuit=_build(PursuitAuditOptions, data["pursuit"]),
        sae=_build(SAEAuditOptions, data["sae"]),
    )


def read_tables(
    folder: Path,
    kind: str,
    build: Callable[[dict[str, Any], pd.DataFrame, pd.DataFrame], Any],
    extra_columns: tuple[str, ...] = (),
) -> tuple[Any, dict[str, Any]]:
    """``build(run, rows, selectivity)`` from the run.json, results.csv and selectivity.csv that
    ``auditkit <kind>`` wrote into ``folder``, and the run.json.

    Each table is checked before it is read: against the row count and SHA-256 run.json records for it (runs
    written since these were recorded), or for an older run only for being whole (see :func:`_check_table`);
    then for the columns rendering reads (:data:`TABLE_COLUMNS` and ``extra_columns``).
    Raises :class:`OutputError` naming what is missing, changed or could not be read (``build`` included),
    when ``folder`` does not hold such an output."""
    folder = Path(folder)
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise OutputError(
            f"{str(folder)!r} is not an auditkit {kind} output: it has no {', '.join(missing)}; give the "
            f"folder an `auditkit {kind} --out` wrote"
        )
    try:
        run = json.loads((folder / "run.json").read_text())
        if not isinstance(run, dict):
            raise ValueError("run.json is not a JSON object")  # noqa: TRY004 (reported like every unreadable run.json)
        recorded = run.get("tables") if isinstance(run.get("tables"), dict) else {}
        for name in TABLE_COLUMNS:
            _check_table(folder / name, kind, recorded.get(name))
        rows = pd.read_csv(folder / "results.csv")
        selectivity = pd.read_csv(folder / "selectivity.csv", keep_default_na=False, na_values=[""])
        for name, frame in (("results.csv", rows), ("selectivity.csv", selectivity)):
            _check_columns(folder / name, kind, frame, (*TABLE_COLUMNS[name], *extra_columns))
        if "note" in selectivity.columns:
            selectivity["note"] = selectivity["note"].fillna("")
        return build(run, rows, selectivity), run
    except OutputError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AuditkitError) as exc:
        raise OutputError(
            f"cannot read the {kind} in {str(folder)!r} ({type(exc).__name__}: {exc}): its run.json "
            f"or tables are not what `auditkit {kind}` writes"
        ) from None


def _controls(cfg: AuditConfig, rows: pd.DataFrame) -> tuple[str, ...]:
    """The controls in the order the audit ran them (:func:`auditkit.audit.run.resolve_controls`, which the
    report's columns follow), not in the order the methods wrote their rows: a re-render then equals the
    first render."""
    present = [c for c in dict.fromkeys(rows["control"]) if c != REAL]
    ordered = [c for c in resolve_controls(cfg) if c in present]
    # A method's own random dictionaries (pursuit's gaussian-dict, spectral-dict) are rows, never arms the audit
    # was asked for: the first render does not list them among its controls, so neither does a re-render.
    extra = (c for c in present if c not in ordered and registry.stage_of(c) != "dictionary")
    return (*ordered, *extra)


def load_run(folder: Path) -> tuple[AuditResult, dict[str, Any]]:
    """The :class:`AuditResult` an audit output folder was written from, and its run.json.

    run.json's ``provenance``, ``dataset``, ``extraction`` and each of its ``methods`` are read into their typed
    records (:mod:`auditkit.audit.records`): a key a record does not declare is kept in its ``extras``.
    Raises :class:`OutputError` naming what is missing when ``folder`` does not hold an audit's outputs (for an
    absent required key of those blocks: the key and the file)."""

    where = str(Path(folder) / "run.json")

    def build(run: dict[str, Any], rows: pd.DataFrame, selectivity: pd.DataFrame) -> AuditResult:
        cfg = config_from_json(run["config"])
        return AuditResult(
            config=cfg,
            rows=rows,
            selectivity=with_evidence(selectivity, threshold=cfg.selectivity_threshold),
            provenance=ProvenanceInfo.from_dict(run.get("provenance"), where),
            dataset=DatasetInfo.from_dict(run.get("dataset"), where),
            extraction=ExtractionInfo.from_dict(run.get("extraction"), where),
            method_info={m: MethodInfo.from_dict(info, where) for m, info in run["methods"].items()},
            controls=_controls(cfg, rows),
            timings=run.get("timings", {}),
        )

    return read_tables(folder, "audit", build)


def is_matrix_output(folder: Path) -> bool:
    """Whether ``folder`` is the output of ``--matrix ... --dataset token-properties:all``: summary.md and one
    audit folder per property, no run.json of its own."""
    folder = Path(folder)
    return (folder / "summary.md").is_file() and not (folder / "run.json").exists() and bool(_property_folders(folder))


def _property_folders(folder: Path) -> list[Path]:
    order = [name.replace("_", "-") for name in PROPERTIES]
    subs = [p for p in Path(folder).iterdir() if p.is_dir() and not p.is_symlink() and (p / "run.json").is_file()]
    return sorted(subs, key=lambda p: (order.index(p.name) if p.name in order else len(order), p.name))


def load_matrix(folder: Path) -> dict[str, tuple[AuditResult, dict[str, Any]]]:
    """Every property's audit of a ``token-properties:all`` output, in the order the audit runs them."""
    return {sub.name: load_run(sub) for sub in _property_folders(folder)}
