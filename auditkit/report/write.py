"""Write an audit's outputs atomically: all of report.md, results.csv, run.json and plots, or none."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from auditkit.audit.registry import METHODS
from auditkit.audit.result import AuditResult
from auditkit.audit.saved import table_record
from auditkit.report.markdown import render
from auditkit.report.outputs import atomic_folder, copy_except, rendering_errors
from auditkit.report.plots import arms_plot
from auditkit.report.summary import summary_figure
from auditkit.shell import display_path

LIBRARIES = (
    "auditkit",
    "torch",
    "transformer-lens",
    "transformers",
    "sae-lens",
    "numpy",
    "pandas",
    "scipy",
    "safetensors",
    "tokenizers",
    "gguf",
    "scikit-learn",
)
"""Recorded in run.json's ``versions``: every library constraints.txt pins (tests/unit/test_constraints.py)."""


def library_versions() -> dict[str, Any]:
    """Python's and each library's version, and torch's thread count: the order of floating-point sums in
    SAE training and L-BFGS fits depends on it, so a rerun at another count moves numbers in the 3rd-6th
    decimal (more where a TopK selection flips)."""
    out: dict[str, Any] = {"python": platform.python_version(), "torch_threads": torch.get_num_threads()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


VERSIONS_COMPARED = ("python", *LIBRARIES)
"""run.json's ``versions`` entries a re-render or comparison checks against the installed ones (the thread count
is not a version)."""


def version_differences(recorded: Any) -> list[str]:
    """``name recorded -> installed`` for every library (and Python) whose installed version differs from the
    one a run recorded (run.json's ``versions``): the report reads the run's tables as written, but a rerun of
    its command here may give other numbers. Empty for a run that recorded no versions."""
    if not isinstance(recorded, dict):
        return []
    installed = library_versions()
    return [
        f"{name} {recorded[name]} -> {installed[name]}"
        for name in VERSIONS_COMPARED
        if name in recorded and str(recorded[name]) != str(installed[name])
    ]


def write_run_json(folder: Path, command: str, config: Any, info: dict[str, Any]) -> None:
    """``run.json`` of a command whose result is a config dataclass and an info dict (validate, sae-synth,
    sae-evals, the embedded calibration): the command, the argv as typed (no machine paths), the config, the info
    and the library versions."""
    run = dict(
        command=command,
        argv=recorded_argv(sys.argv),
        config=dataclasses.asdict(config),
        info=info,
        versions=library_versions(),
    )
    (Path(folder) / "run.json").write_text(json.dumps(run, indent=2, default=str))


def recorded_argv(argv: list[str]) -> list[str]:
    """The command line as typed, without machine paths: the program by its name, paths inside the working
    folder relative to it (:func:`auditkit.shell.display_path`)."""
    return [os.path.basename(argv[0]) if argv else "", *(display_path(a) for a in argv[1:])]


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def render_report(result: AuditResult, folder: Path, command: str) -> None:
    """report.md and every figure of ``result`` into ``folder`` (no tables, no run.json)."""
    plot = "arms.png" if (result.rows["metric"] == "accuracy").any() else None
    if plot:
        arms_plot(result.rows, folder / plot)
    summary = summary_figure(result, folder)
    for method in result.method_info:
        if method in METHODS and METHODS[method].figures is not None:
            METHODS[method].figures(result, folder)
    (folder / "report.md").write_text(render(result, command, plot, summary))


RENDERED = ("report.md", "arms.png", "verdicts.png")
"""Files :func:`render_report` writes besides the methods' figures."""

TABLES = ("results.csv", "selectivity.csv")
OWNED = (*RENDERED, *TABLES, "run.json", "summary.md", *(f for m in METHODS.values() for f in m.figure_files))
"""Every name an audit output may hold that auditkit wrote (``summary.md``: a ``token-properties:all`` output's;
its property folders carry their own marker): a new audit at the same ``--out`` replaces these and carries
every other file over."""


def table_records(folder: Path, frames: dict[str, Any]) -> dict[str, Any]:
    """run.json's ``tables``: each table written into ``folder`` (name -> DataFrame) with its row count and SHA-256."""
    return {name: table_record(folder / name, len(frame)) for name, frame in frames.items()}


def rerender_outputs(
    result: Any,
    out: Path,
    command: str,
    *,
    kind: str = "audit",
    render: Callable[[Any, Path, str], Any] = render_report,
    rendered: tuple[str, ...] = RENDERED,
) -> Path:
    """Re-render the report and figures of an output folder ``out`` of ``auditkit <kind>`` in place,
    atomically, from ``result`` (rebuilt from its own tables): every file of ``out`` that ``rendered`` (names
    or shell patterns) does not match (results.csv, selectivity.csv, run.json, ...) is carried over byte for
    byte; ``render(result, folder, command)`` then writes the report and the figures."""
    out = Path(out)
    with atomic_folder(out, kind) as tmp:
        copy_except(out, tmp, rendered)
        with rendering_errors(out, kind):
            render(result, tmp, command)
    return out


def write_outputs(result: AuditResult, out: Path, command: str) -> Path:
    """Write ``out/`` in a temporary sibling folder, then swap it into place in one rename.

    An interrupted write leaves the previous ``out/`` (or nothing), never a half-written report; only an
    earlier auditkit audit output (or an empty folder) at ``out`` is replaced (see :func:`atomic_folder`), and
    any file in it that auditkit did not write (not in :data:`OWNED`) is carried over. run.json records each
    table's row count and SHA-256 (``tables``), checked when the folder is read back.
    """
    out = Path(out)
    with atomic_folder(out, "audit", owned=OWNED) as tmp:
        render_report(result, tmp, command)
        result.rows.to_csv(tmp / "results.csv", index=False)
        result.selectivity.to_csv(tmp / "selectivity.csv", index=False)
        run = dict(
            command=command,
            argv=recorded_argv(sys.argv),
            config=_jsonable(result.config),
            provenance=result.provenance.to_dict(),
            dataset=result.dataset.to_dict(),
            extraction=result.extraction.to_dict(),
            methods={m: info.to_dict() for m, info in result.method_info.items()},
            timings=result.timings,
            versions=library_versions(),
            tables=table_records(tmp, {"results.csv": result.rows, "selectivity.csv": result.selectivity}),
        )
        (tmp / "run.json").write_text(json.dumps(run, indent=2, default=str))
    return out
