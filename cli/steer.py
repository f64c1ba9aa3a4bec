"""``auditkit steer``: reading against writing directions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from auditkit.cli.app import one_line_errors
from auditkit.cli.audit import print_table
from auditkit.cli.options import csv_items, seeds_list

from auditkit.errors import AuditkitError


@one_line_errors
def steer(
    model: Annotated[str, typer.Option(help="Model spec, as for audit.")] = "smollm2-135m",
    datasets: Annotated[
        str, typer.Option(help="Comma-separated sae-probes tags (one multiclass or several binary).")
    ] = "17_world_country",
    hook: Annotated[str | None, typer.Option(help="Hook to write at; default the middle resid_pre.")] = None,
    later_hook: Annotated[str | None, typer.Option(help="Later hook to read effects at.")] = None,
    max_examples: Annotated[int, typer.Option(help="Texts used (0 = all).")] = 300,
    alphas: Annotated[str, typer.Option(help="Comma-separated doses.")] = "0,0.03125,0.0625,0.125,0.25",
    scale: Annotated[str, typer.Option(help="Dose unit: norm or gap.")] = "norm",
    positions: Annotated[str, typer.Option(help="Steer all positions or the last.")] = "all",
    controls: Annotated[str, typer.Option(help="spectral-reinit, gaussian-reinit, or none.")] = "spectral-reinit",
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "0,1,2",
    cache_dir: Annotated[Path | None, typer.Option(help="Cache root.")] = None,
    no_cache: Annotated[bool, typer.Option(help="Convert the embedded model without caching it.")] = False,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("reports/steering"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the report's path.")] = False,
) -> None:
    """Compare probe, mass-mean, LDA and dual-basis directions by what they do when written."""
    from auditkit.models import ModelSpec
    from auditkit.report.outputs import check_output
    from auditkit.report.steering import write_steering
    from auditkit.steering.run import SteeringConfig, run_steering

    try:
        alpha_values = tuple(float(a) for a in csv_items(alphas))
    except ValueError:
        raise AuditkitError(f"--alphas {alphas!r} is not a comma-separated list of numbers") from None
    if not csv_items(controls):
        raise AuditkitError(f"--controls {controls!r} names no control: pass spectral-reinit, gaussian-reinit or none")
    cfg = SteeringConfig(
        model=ModelSpec(name=model, cache_dir=cache_dir, use_cache=not no_cache),
        datasets=csv_items(datasets),
        hook=hook,
        later_hook=later_hook,
        max_examples=max_examples or None,
        alphas=alpha_values,
        scale=scale,
        positions=positions,
        controls=() if controls == "none" else csv_items(controls),
        seeds=seeds_list(seeds, "--seeds"),
    )
    check_output(out, inputs=(model,), cache_dir=cache_dir, kind="steer")  # before anything is loaded or computed
    result = run_steering(cfg)
    path = write_steering(result, out)
    print_steering(result, path, quiet)


def print_steering(result: object, path: Path, quiet: bool) -> None:
    from auditkit.report.steering import terminal_table

    print_table(lambda: terminal_table(result), Path(path) / "steering.md", quiet)
