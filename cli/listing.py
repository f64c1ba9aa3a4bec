"""``auditkit models``, ``datasets``, ``hooks`` and ``controls``: what can be audited, and against what."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from auditkit.cli.app import one_line_errors
from auditkit.cli.options import DatasetKind

from auditkit.errors import AuditkitError

TRUST_OUT = "reports/datasets"
"""Where ``auditkit datasets --audit`` writes by default."""


@one_line_errors
def models() -> None:
    """List loadable models and mark what is available offline."""
    from auditkit.models import list_models

    for info in list_models():
        mark = "offline" if info.available_offline else "hub"
        typer.echo(f"{info.name:45s} {info.source:14s} {mark:8s} {info.note}")


@one_line_errors
def datasets(
    kind: Annotated[DatasetKind, typer.Option(help="Which sae-probes datasets to list.")] = DatasetKind.classification,
    audit: Annotated[
        bool,
        typer.Option(
            "--audit",
            help="Write the trust table of every shipped classification task instead of listing them.",
            rich_help_panel="Trust table",
        ),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(help=f"With --audit: the output folder [default: {TRUST_OUT}].", rich_help_panel="Trust table"),
    ] = None,
    tasks: Annotated[
        str | None,
        typer.Option(
            help="With --audit: only these comma-separated sae-probes tags [default: every classification task].",
            rich_help_panel="Trust table",
        ),
    ] = None,
    max_texts: Annotated[
        int | None,
        typer.Option(
            help="With --audit: distinct texts per task the baselines fit on at most [default: 5000].",
            rich_help_panel="Trust table",
        ),
    ] = None,
    progress: Annotated[
        bool, typer.Option(help="With --audit: show a progress bar.", rich_help_panel="Trust table")
    ] = True,
) -> None:
    """List the labelled datasets shipped offline, and the other dataset sources; with --audit, write the trust
    table of the shipped tasks (repeats, label conflicts, balance, text-only baselines, a flag)."""
    if audit:
        if kind is not DatasetKind.classification:
            raise AuditkitError(
                f"--kind {kind.value} lists datasets; --audit covers every classification task: "
                "pick some with --tasks TAG,... instead"
            )
        return _trust_table(out, tasks, max_texts, progress)
    given = [name for name, value in (("--out", out), ("--tasks", tasks), ("--max-texts", max_texts)) if value]
    if given:
        raise AuditkitError(f"{', '.join(given)} applies only with --audit: add --audit to write the trust table")
    from auditkit.data import kinds as dataset_kinds
    from auditkit.data import list_sae_probes

    table = list_sae_probes(kind.value)
    for row in table.itertuples(index=False):
        typer.echo(f"sae-probes:{row.tag:45s} {row.kind:11s} offline")
    for other in dataset_kinds.kinds(lambda k: not k.shipped):  # the registered kinds a user points at
        typer.echo(f"{other.usage:52s} {other.summary}")


@one_line_errors
def controls() -> None:
    """List the controls an audit can run (every registered one), with the stage each perturbs, when it runs by
    default, and what it destroys: the arms, the lexical baselines, then the methods' own (the SAE baselines, the
    pursuit's random dictionaries)."""
    from auditkit.controls import registry

    for c in registry.controls():
        own = registry.OWN_STAGES.get(c.stage)
        levels = "" if c.levels is None else f" on {'/'.join(c.levels)}"
        when = "opt-in" if c.opt_in else f"default ({own})" if own else f"default{levels}"
        typer.echo(f"{c.name:24s} {c.stage:10s} {when:20s} {c.description}")


@one_line_errors
def hooks(
    model: Annotated[str, typer.Argument(help="Model spec, as for audit.")] = "smollm2-135m",
    contains: Annotated[str, typer.Option(help="Only hooks whose name contains this.")] = "",
    no_cache: Annotated[bool, typer.Option(help="Convert the embedded model without caching it.")] = False,
) -> None:
    """List the TransformerLens hook names of a model."""
    from auditkit.models import ModelSpec, load_model

    loaded = load_model(ModelSpec(name=model, use_cache=not no_cache))
    for name in loaded.model.hook_dict:
        if contains in name:
            typer.echo(name)


def _trust_table(out: Path | None, tasks: str | None, max_texts: int | None, progress: bool) -> None:
    """``auditkit datasets --audit``: check the output and the config, then compute and write the folder."""
    from auditkit.report.outputs import check_output
    from auditkit.report.trust import KIND, write_trust
    from auditkit.shell import command_line, display_path
    from auditkit.trust.flags import FLAGS
    from auditkit.trust.run import TrustConfig, resolve_tasks, run_trust

    picked = tuple(t.strip() for t in tasks.split(",") if t.strip()) if tasks is not None else ()
    if tasks is not None and not picked:
        raise AuditkitError("--tasks is empty: give comma-separated sae-probes tags, e.g. --tasks 92_glue_sst2")
    fields = {"tasks": picked, "progress": progress}
    if max_texts is not None:
        fields["max_texts"] = max_texts
    cfg = TrustConfig(**fields)
    target = out if out is not None else Path(TRUST_OUT)
    resolved = check_output(target, kind=KIND)
    resolve_tasks(cfg)  # an unknown tag fails here, before any dataset is read
    command = command_line(
        ["auditkit", "datasets", "--audit"],
        [("--out", out), ("--tasks", picked or None), ("--max-texts", max_texts), ("--no-progress", not progress)],
    )
    result = run_trust(cfg)
    write_trust(result, resolved, command=command)
    found = result.table["flag"].value_counts()
    counts = ", ".join(f"{found.get(f, 0)} {f}" for f in FLAGS)
    typer.echo(f"{len(result.table)} datasets: {counts}; wrote {display_path(target)}/summary.md")
