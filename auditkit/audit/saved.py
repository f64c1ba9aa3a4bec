"""An audit read back from its output folder (run.json, results.csv, selectivity.csv), for re-rendering and
comparing without recomputing: the selectivity table and its verdicts are read as written, never rescored."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.audit.config import AuditConfig
from auditkit.audit.options import PursuitAuditOptions, SAEAuditOptions
from auditkit.audit.result import AuditResult
from auditkit.audit.run import resolve_controls
from auditkit.errors import AuditkitError, OutputError
from auditkit.models import ModelSpec
from auditkit.token_properties import PROPERTIES
from auditkit.types import REAL

FILES = ("run.json", "results.csv", "selectivity.csv")
"""What an audit output holds that a re-render reads."""


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _build(cls: type, data: dict[str, Any], **nested: Any) -> Any:
    """``cls`` from its JSON fields (lists back to tuples); unknown keys are ignored (an older run.json)."""
    fields = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    kwargs = {
        k: Path(v) if isinstance(v, str) and "Path" in fields[k] else _tuples(v)  # run.json writes paths as text
        for k, v in data.items() if k in fields and k not in nested
    }  # fmt: skip
    return cls(**kwargs, **nested)


def config_from_json(data: dict[str, Any]) -> AuditConfig:
    """The :class:`AuditConfig` that run.json's ``config`` was written from."""
    return _build(
        AuditConfig, data, model=_build(ModelSpec, data["model"]),
        pursuit=_build(PursuitAuditOptions, data["pursuit"]), sae=_build(SAEAuditOptions, data["sae"]),
    )  # fmt: skip


def read_tables(
    folder: Path, kind: str, build: Callable[[dict[str, Any], pd.DataFrame, pd.DataFrame], Any]
) -> tuple[Any, dict[str, Any]]:
    """``build(run, rows, selectivity)`` from the run.json, results.csv and selectivity.csv that
    ``auditkit <kind>`` wrote into ``folder``, and the run.json.

    Raises :class:`OutputError` naming what is missing, or what could not be read (``build`` included),
    when ``folder`` does not hold such an output."""
    folder = Path(folder)
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise OutputError(f"{str(folder)!r} is not an auditkit {kind} output: it has no {', '.join(missing)}; give the "
                          f"folder an `auditkit {kind} --out` wrote")  # fmt: skip
    try:
        run = json.loads((folder / "run.json").read_text())
        rows = pd.read_csv(folder / "results.csv")
        selectivity = pd.read_csv(folder / "selectivity.csv", keep_default_na=False, na_values=[""])
        if "note" in selectivity.columns:
            selectivity["note"] = selectivity["note"].fillna("")
        return build(run, rows, selectivity), run
    except (OSError, ValueError, KeyError, TypeError, AuditkitError) as exc:
        raise OutputError(f"cannot read the {kind} in {str(folder)!r} ({type(exc).__name__}: {exc}): its run.json "
                          f"or tables are not what `auditkit {kind}` writes") from None  # fmt: skip


def _controls(cfg: AuditConfig, rows: pd.DataFrame) -> tuple[str, ...]:
    """The controls in the order the audit ran them (:func:`auditkit.audit.run.resolve_controls`, which the
    report's columns follow), not in the order the methods wrote their rows: a re-render then equals the
    first render."""
    present = [c for c in dict.fromkeys(rows["control"]) if c != REAL]
    ordered = [c for c in resolve_controls(cfg) if c in present]
    return (*ordered, *(c for c in present if c not in ordered))


def load_run(folder: Path) -> tuple[AuditResult, dict[str, Any]]:
    """The :class:`AuditResult` an audit output folder was written from, and its run.json.

    Raises :class:`OutputError` naming what is missing when ``folder`` does not hold an audit's outputs."""

    def build(run: dict[str, Any], rows: pd.DataFrame, selectivity: pd.DataFrame) -> AuditResult:
        return AuditResult(
            config=config_from_json(run["config"]), rows=rows, selectivity=selectivity,
            provenance=run["provenance"], dataset=run["dataset"], extraction=run["extraction"],
            method_info=run["methods"], controls=_controls(config_from_json(run["config"]), rows),
            timings=run.get("timings", {}),
        )  # fmt: skip

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
