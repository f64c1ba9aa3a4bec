"""``auditkit sae-evals``: the SAE metrics on the embedded model at two budgets, each against every SAE baseline, and
sparse probing across the shipped binary tasks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from auditkit.cli.app import one_line_errors
from auditkit.cli.audit import print_table
from auditkit.cli.options import csv_items, parse_list, seeds_list

DEFAULT_OUT = Path("reports/sae-evals/embedded")


@one_line_errors
def sae_evals(
    model: Annotated[str, typer.Option(help="Model name (`auditkit models`).")] = "smollm2-135m",
    hook: Annotated[str, typer.Option(help="Hook; empty: the residual stream entering the middle block.")] = "",
    tasks: Annotated[
        str, typer.Option(help="Comma-separated binary sae-probes tasks probed; empty: every shipped one.")
    ] = "",
    budgets: Annotated[str, typer.Option(help="Comma-separated training budgets in tokens.")] = "49152,983040",
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds (SAE init and order, task splits).")] = "0,1,2",
    max_examples: Annotated[int, typer.Option(help="Texts per task (the breadth sweep's).")] = 500,
    max_length: Annotated[int, typer.Option(help="Tokens per text, BOS included.")] = 64,
    eval_tokens: Annotated[int, typer.Option(help="Held-out corpus tokens the reconstruction is scored on.")] = 32_768,
    splice_texts: Annotated[int, typer.Option(help="Held-out corpus texts the CE/KL splice runs on.")] = 8,
    out: Annotated[Path, typer.Option(help="Output folder.")] = DEFAULT_OUT,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the report's path.")] = False,
) -> None:
    """SAE evaluation with controls on a real model: reconstruction, splice and k-sparse-probing metrics of TopK SAEs
    at each budget against the six SAE baselines, and sparse probing of every binary task against neuron, PCA and
    dense probes, with seeds, intervals and q-values."""
    from auditkit.calibration.sae_breadth import SAEBreadthConfig, probe_tasks, run_sae_breadth
    from auditkit.report.outputs import check_output
    from auditkit.report.sae_breadth import KIND, terminal_table, write_sae_breadth
    from auditkit.shell import command_line

    cfg = SAEBreadthConfig(
        model=model,
        hook=hook or None,
        tasks=tuple(csv_items(tasks)) if tasks else None,
        budgets=parse_list(budgets, int, "--budgets"),
        seeds=seeds_list(seeds, "--seeds"),
        max_examples=max_examples,
        max_length=max_length,
        eval_tokens=eval_tokens,
        splice_texts=splice_texts,
        progress=not quiet,
    )
    probe_tasks(cfg)  # an unknown task is one line, before the model loads
    check_output(out, kind=KIND)  # before the hours of training
    result = run_sae_breadth(cfg)
    options = [
        ("--model", model),
        ("--hook", hook or None),
        ("--tasks", tasks or None),
        ("--budgets", budgets),
        ("--seeds", seeds),
        ("--max-examples", max_examples),
        ("--max-length", max_length),
        ("--eval-tokens", eval_tokens),
        ("--splice-texts", splice_texts),
        ("--out", out),
    ]
    path = write_sae_breadth(result, out, command_line(["auditkit", "sae-evals"], options))
    print_table(lambda: terminal_table(result), Path(path) / "summary.md", quiet)
