"""``auditkit validate``: calibrate the verdict rule on planted data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from auditkit.cli.app import one_line_errors
from auditkit.cli.audit import print_table


@one_line_errors
def validate(
    full: Annotated[bool, typer.Option(help="Run the full calibration (slower) instead of the fast one.")] = False,
    seed: Annotated[int, typer.Option(help="Root seed of the calibration.")] = 0,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("reports/validate"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the report's path.")] = False,
) -> None:
    """Calibrate the auditor offline: false-positive rate and power of its label verdicts (probe kinds, SAE k-sparse probing, pursuit code probe) on planted data."""
    from auditkit.calibration.run import run_validate
    from auditkit.report.calibration import write_calibration
    from auditkit.report.outputs import check_output
    from auditkit.shell import command_line

    check_output(out, kind="validate")  # before the calibration's minutes of compute
    result = run_validate(fast=not full, seed=seed, progress=True)
    command = command_line(["auditkit", "validate"], [("--full", full), ("--seed", seed), ("--out", out)])
    path = write_calibration(result, out, command=command)
    print_calibration(result, path, quiet)


def print_calibration(result: object, path: Path, quiet: bool) -> None:
    from auditkit.report.calibration_matrix import TERMINAL_LEGEND, terminal_table

    print_table(lambda: terminal_table(result), Path(path) / "report.md", quiet, legend=TERMINAL_LEGEND)
