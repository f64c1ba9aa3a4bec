"""``auditkit steer``: reading against writing directions."""

from __future__ import annotations

from pathlib import Path

from auditkit.cli.audit import print_table
from auditkit.cli.declare import Parsed, typer_command
from auditkit.cli.flags import steer_flags

from auditkit.steering.run import SteeringConfig


def run_steer_command(options: Parsed) -> None:
    """Build the steering config from the parsed options, check the output folder, run it, write the report."""
    from auditkit.report.outputs import check_output
    from auditkit.report.steering import write_steering
    from auditkit.steering.run import run_steering

    out = options.plain["out"]
    cfg = options.build(SteeringConfig)
    inputs = (cfg.model.name,)
    check_output(out, inputs=inputs, cache_dir=cfg.model.cache_dir, kind="steer")  # before anything is computed
    result = run_steering(cfg)
    path = write_steering(result, out)
    print_steering(result, path, options.plain["quiet"])


steer = typer_command(
    "steer",
    "Compare probe, mass-mean, LDA and dual-basis directions by what they do when written.",
    steer_flags(),
    {"": SteeringConfig},
    run_steer_command,
)


def print_steering(result: object, path: Path, quiet: bool) -> None:
    from auditkit.report.steering import terminal_table

    print_table(lambda: terminal_table(result), Path(path) / "steering.md", quiet)
