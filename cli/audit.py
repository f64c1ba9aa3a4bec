"""``auditkit audit``: one audit, or a matrix of token properties x controls."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer
from auditkit.cli.app import setup_logging
from auditkit.cli.declare import Parsed, typer_command
from auditkit.cli.flags import audit_flags

from auditkit.audit.config import AuditConfig
from auditkit.sweep.executors import ExecutorOptions


def run_audit_command(options: Parsed) -> None:
    """Build the audit's config from the parsed options, check the output folder, run it, write the report."""
    from auditkit.cli.reproduce import reproduce_command

    from auditkit.audit.config import input_paths
    from auditkit.report.outputs import check_output
    from auditkit.report.write import write_outputs
    from auditkit.sweep.run import run_audit

    out, quiet = options.plain["out"], options.plain["quiet"]
    setup_logging(options.plain["verbose"])
    executor = options.build(ExecutorOptions, "executor")
    cfg = options.build(AuditConfig)
    check_output(
        out, inputs=input_paths(cfg), cache_dir=cfg.model.cache_dir, kind="audit"
    )  # before anything is loaded or computed
    if cfg.matrix is not None and cfg.dataset.endswith(":all"):
        return matrix_all(cfg, out, quiet)
    result = run_audit(cfg, executor=executor)  # a plan of one cell, as a sweep runs: one model variant at a time
    path = write_outputs(result, out, reproduce_command(cfg, out))
    print_verdicts(result, path, quiet, f"{result.timings['total_s']:.0f} s")


audit = typer_command(
    "audit",
    "Audit a feature-finding method against its controls and write a report.",
    audit_flags(),
    {"": AuditConfig, "executor": ExecutorOptions},
    run_audit_command,
)


def print_verdicts(result: object, path: Path, quiet: bool, note: str = "") -> None:
    """The verdict matrix as a compact table, then the report's path; ``quiet``: the path only."""
    from auditkit.report.summary import terminal_table

    print_table(lambda: terminal_table(result), Path(path) / "report.md", quiet, note)


def print_table(
    table: Callable[[], object], report: Path, quiet: bool, note: str = "", legend: str | None = None
) -> None:
    """A compact ``rich`` matrix (built by ``table``), its legend (the verdict marks by default), then the
    report's path; ``quiet``: the path only (no matrix is built)."""
    from auditkit.report.summary import TERMINAL_LEGEND
    from auditkit.shell import display_path

    shown = display_path(report)
    if quiet:
        typer.echo(shown)
        return
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=False, width=200)
    console.print(table())
    typer.echo(TERMINAL_LEGEND if legend is None else legend)
    typer.echo(f"report: {shown}" + (f" ({note})" if note else ""))


def matrix_all(cfg: object, out: Path, quiet: bool = False) -> None:
    """``--matrix ... --dataset token-properties:all``: one audit per property into ``out/<property>/``, plus
    ``out/summary.md``; prints the properties' verdict matrix and the summary's path."""
    from auditkit.cli.reproduce import reproduce_command

    from auditkit.audit.matrix import run_matrix_audits
    from auditkit.report.embedding import terminal_table, write_matrix_summary

    results = run_matrix_audits(cfg)
    commands = {p: reproduce_command(r.config, out / p) for p, r in results.items()}
    path = write_matrix_summary(results, out, commands, reproduce_command(cfg, out))
    print_table(lambda: terminal_table(results), path / "summary.md", quiet, f"and {len(results)} property reports")
