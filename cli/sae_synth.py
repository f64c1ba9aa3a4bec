"""``auditkit sae-synth``: auditkit's SAEs, pursuit and SAE baselines scored against known features."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from auditkit.cli.app import one_line_errors
from auditkit.cli.audit import print_table
from auditkit.cli.options import csv_items, seeds_list

DEFAULT_OUT = Path("reports/sae-evals/synthetic")


@one_line_errors
def sae_synth(
    archs: Annotated[str, typer.Option(help="Comma-separated SAE architectures: topk, standard, jumprelu.")] = (
        "topk,standard,jumprelu"
    ),
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds (each draws its own rows and SAEs).")] = "0,1,2,3,4",
    features: Annotated[int, typer.Option(help="True features G of the synthetic model.")] = 256,
    dim: Annotated[int, typer.Option(help="Activation width D of the synthetic model.")] = 64,
    tokens: Annotated[int, typer.Option(help="Rows seen per SAE training.")] = 400_000,
    out: Annotated[Path, typer.Option(help="Output folder.")] = DEFAULT_OUT,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the report's path.")] = False,
) -> None:
    """Ground truth for the SAE audit: MCC, F1 and uniqueness (sae-lens's SynthSAEBench) of trained SAEs, of pursuit
    on the true and learned dictionaries, and of every SAE baseline, with seeds and verdicts."""
    from auditkit.calibration.synth_model import SynthModelOptions
    from auditkit.calibration.synth_sae import SynthSAEConfig, run_synth_sae
    from auditkit.report.outputs import check_output
    from auditkit.report.synth_sae import KIND, terminal_table, write_synth
    from auditkit.shell import command_line

    cfg = SynthSAEConfig(
        model=SynthModelOptions(n_features=features, hidden_dim=dim),
        architectures=csv_items(archs),
        seeds=seeds_list(seeds, "--seeds"),
        training_tokens=tokens,
        progress=not quiet,
    )
    check_output(out, kind=KIND)  # before the minutes of training
    result = run_synth_sae(cfg)
    options = [
        ("--archs", archs),
        ("--seeds", seeds),
        ("--features", features),
        ("--dim", dim),
        ("--tokens", tokens),
        ("--out", out),
    ]
    path = write_synth(result, out, command_line(["auditkit", "sae-synth"], options))
    print_table(lambda: terminal_table(result), Path(path) / "summary.md", quiet)
