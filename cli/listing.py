"""``auditkit models``, ``datasets`` and ``hooks``: what can be audited."""

from __future__ import annotations

from typing import Annotated

import typer
from auditkit.cli.app import one_line_errors
from auditkit.cli.options import DatasetKind


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
) -> None:
    """List the labelled datasets shipped offline, and the other dataset sources."""
    from auditkit.data import list_sae_probes

    table = list_sae_probes(kind.value)
    for row in table.itertuples(index=False):
        typer.echo(f"sae-probes:{row.tag:45s} {row.kind:11s} offline")
    typer.echo("conllu:PATH                                          token-level UPOS from a CoNLL-U file")
    typer.echo("table:PATH_OR_HUB_ID                                 CSV/JSONL/parquet file, or a datasets id (hub)")
    typer.echo("token-properties:PROP|all                            token-string labels of vocabulary rows (--matrix)")


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
