"""``auditkit sweep``: many hooks and datasets in one run."""

from __future__ import annotations

import typer
from auditkit.cli.app import MAX_ERROR_CHARS, setup_logging
from auditkit.cli.declare import Parsed, typer_command
from auditkit.cli.flags import sweep_flags
from auditkit.cli.options import csv_items

from auditkit.sweep.config import SweepConfig
from auditkit.sweep.executors import ExecutorOptions


def run_sweep_command(options: Parsed) -> None:
    """Build the sweep's config from the parsed options, check the output folder, run every cell, write the
    summary report; a failed cell is one ``error:`` line and exit code 1."""
    from auditkit.cli.reproduce import sweep_command

    from auditkit.audit.config import input_paths
    from auditkit.data import kinds as dataset_kinds
    from auditkit.report.outputs import check_output
    from auditkit.report.sweep import write_sweep
    from auditkit.sweep.run import run_sweep

    out = options.plain["out"]
    setup_logging(options.plain["verbose"])
    executor = options.build(ExecutorOptions, "executor")
    cfg = options.build(SweepConfig)
    datasets = [p for p in map(dataset_kinds.local_path, csv_items(cfg.datasets)) if p]
    inputs = [*input_paths(cfg.audit), *datasets]
    check_output(out, inputs=inputs, cache_dir=cfg.audit.model.cache_dir, kind="sweep")  # before any compute
    result = run_sweep(cfg, executor=executor)
    path = write_sweep(result, out, sweep_command(cfg, out))
    typer.echo(
        f"wrote {path}/summary.md, results.csv, selectivity.csv, run.json ({result.timings['total_s']:.0f} s, "
        f"{len(result.datasets)} datasets x {len(result.hooks)} hooks)"
    )
    for line in result.failures:  # one line per failed cell; the report holds every other cell
        typer.echo(" ".join(f"error: cell {line}".split())[:MAX_ERROR_CHARS], err=True)
    if result.failures:
        raise typer.Exit(1)


sweep = typer_command(
    "sweep",
    "Audit every hook of a list or range, on one or many datasets, in one run; write a summary report.",
    sweep_flags(),
    {"": SweepConfig, "executor": ExecutorOptions},
    run_sweep_command,
)
