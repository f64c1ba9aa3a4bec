"""``auditkit report`` and ``auditkit compare``: re-render saved outputs, compare two audits."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from auditkit.cli.app import one_line_errors
from auditkit.cli.audit import print_table, print_verdicts
from auditkit.cli.steer import print_steering
from auditkit.cli.validate import print_calibration

from auditkit.errors import AuditkitError


def warn_versions(folder: Path, runs: list[dict]) -> None:
    """One ``warning:`` line on stderr when the libraries installed here differ from those a run recorded
    (run.json's ``versions``): the tables are read as written, but rerunning the command here may not give
    them back exactly."""
    from auditkit.report.write import version_differences
    from auditkit.shell import display_path

    differences = list(dict.fromkeys(d for run in runs for d in version_differences(run.get("versions"))))
    if differences:
        typer.echo(
            f"warning: {display_path(folder)} was run with other library versions than installed here "
            f"({'; '.join(differences)}): its tables are read as written, but rerunning its command here "
            "may not reproduce them exactly",
            err=True,
        )


@one_line_errors
def report(
    run_dir: Annotated[Path, typer.Argument(help="An `auditkit audit`, `sweep`, `validate` or `steer` output folder.")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the report's path.")] = False,
) -> None:
    """Re-render the report and figures of an audit (results.csv, selectivity.csv, run.json), a token-properties:all
    matrix audit (its summary and every property), a sweep (summary.md from its tables and run.json), a
    calibration (fpr.csv, power.csv, run.json) or a steering comparison (steering.csv, steering.json).

    Nothing is recomputed: verdicts and rates are read as written. Writes in place, atomically, and only in a
    folder auditkit wrote."""
    from auditkit.report.outputs import output_kind

    folder, kind = output_kind(run_dir)
    if kind == "validate":
        from auditkit.calibration.saved import load_calibration
        from auditkit.report.calibration import rerender_calibration

        calibration, run = load_calibration(folder)
        warn_versions(folder, [run])
        return print_calibration(calibration, rerender_calibration(calibration, folder, run["command"]), quiet)
    if kind == "steer":
        from auditkit.report.steering import rerender_steering
        from auditkit.steering.saved import load_steering

        steering = load_steering(folder)
        warn_versions(folder, [_steering_json(folder)])
        return print_steering(steering, rerender_steering(steering, folder), quiet)
    if kind == "sweep":
        from auditkit.report.sweep import rerender_sweep
        from auditkit.shell import display_path
        from auditkit.sweep.saved import load_sweep

        swept, run = load_sweep(folder)
        warn_versions(folder, [run])
        rerender_sweep(swept, folder, run["command"])
        typer.echo(f"{'' if quiet else 'summary: '}{display_path(folder / 'summary.md')}")
        return None
    from auditkit.audit.saved import is_matrix_output, load_matrix, load_run
    from auditkit.report.write import rerender_outputs

    if is_matrix_output(folder):
        from auditkit.report.embedding import rerender_matrix_summary, terminal_table

        loaded = load_matrix(folder)
        warn_versions(folder, [run for _, run in loaded.values()])
        path = rerender_matrix_summary(loaded, folder)
        results = {p: r for p, (r, _) in loaded.items()}
        return print_table(lambda: terminal_table(results), path / "summary.md", quiet)
    result, run = load_run(folder)
    warn_versions(folder, [run])
    print_verdicts(result, rerender_outputs(result, folder, run["command"]), quiet)


def _steering_json(folder: Path) -> dict:
    """steering.json, which records the steering run's library versions (already read by ``load_steering``)."""
    import json

    data = json.loads((folder / "steering.json").read_text())
    return data if isinstance(data, dict) else {}


@one_line_errors
def compare(
    run_a: Annotated[Path, typer.Argument(help="An `auditkit audit` output folder (A).")],
    run_b: Annotated[Path, typer.Argument(help="Another one (B).")],
    out: Annotated[
        Path | None, typer.Option(help="Write the markdown here (a new file) instead of printing it.")
    ] = None,
    top: Annotated[int, typer.Option(help="Largest selectivity deltas listed.")] = 10,
) -> None:
    """A short markdown diff of two audits: settings that differ, verdicts that changed, selectivity deltas."""
    from auditkit.audit.saved import load_run
    from auditkit.report.compare import render_compare
    from auditkit.report.outputs import check_audit_output
    from auditkit.shell import display_path

    if top < 1:
        raise AuditkitError(f"--top must be a whole number >= 1, got {top}: e.g. --top 10")
    (a, run_1), (b, run_2) = (load_run(check_audit_output(p, "compare")) for p in (run_a, run_b))
    warn_versions(run_a, [run_1])
    warn_versions(run_b, [run_2])
    text = render_compare(display_path(run_a), run_1, a.selectivity, display_path(run_b), run_2, b.selectivity, top)
    if out is None:
        typer.echo(text)
        return
    if out.exists() or out.is_symlink():
        raise AuditkitError(f"--out {str(out)!r} exists: give a new file name (auditkit never overwrites a file)")
    if not out.parent.is_dir():
        raise AuditkitError(f"--out {str(out)!r}: its folder does not exist")
    out.write_text(text)
    typer.echo(display_path(out))
