"""A dataset kind is one registered object: a toy kind registered here, in this module alone, is loaded by the
audit, given its level before loading, expanded by a sweep's ``--datasets``, listed by ``auditkit datasets`` and
named by the unknown-kind message, and its path (if it declares one) is checked and shown like a table's; the
built-in kinds keep their messages; unregistered, it is gone again."""

from __future__ import annotations

import pytest
from auditkit.cli.main import app
from typer.testing import CliRunner

from auditkit.audit.config import AuditConfig, input_paths
from auditkit.audit.run import load_dataset_spec, spec_level
from auditkit.data import from_lists
from auditkit.data import kinds as dataset_kinds
from auditkit.data.kinds import DatasetKind, LoadOptions
from auditkit.errors import ConfigError
from auditkit.models import ModelSpec
from auditkit.report.sweep import _tag
from auditkit.sweep.plan import resolve_datasets

TOY = "toy-words"


def load_toy(value: str, options: LoadOptions):
    """``toy-words:N``: N distinct two-word texts whose second word names the class, at most ``max_examples``."""
    n = min(int(value), options.max_examples or int(value))
    return from_lists(
        f"{TOY}:{value}", [f"word{i} {'yes' if i % 2 else 'no'}" for i in range(n)], [i % 2 for i in range(n)]
    )


def expand_toy(spec: str) -> list[str] | None:
    """``toy-words:small,large`` style groups: ``toy-words:pair`` stands for two sizes."""
    return [f"{TOY}:8", f"{TOY}:12"] if spec == f"{TOY}:pair" else None


@pytest.fixture
def toy():
    dataset_kinds.register(
        DatasetKind(
            name=TOY,
            usage=f"{TOY}:N",
            summary="N two-word texts (a toy for the registry test)",
            level="token",
            load=load_toy,
            expand=expand_toy,
        )
    )
    yield TOY
    dataset_kinds.unregister(TOY)


def test_a_registered_kind_is_loaded_levelled_and_expanded(toy):
    ds = load_dataset_spec(AuditConfig(dataset=f"{toy}:20", max_examples=10))
    assert ds.name == f"{toy}:20" and len(ds.texts) == 10  # its loader, with the audit's options
    assert spec_level(f"{toy}:20") == "token"  # its declared level, before loading
    assert resolve_datasets(f"sae-probes:92_glue_sst2,{toy}:pair") == [
        "sae-probes:92_glue_sst2",
        f"{toy}:8",
        f"{toy}:12",
    ]
    with pytest.raises(ConfigError, match=f"{toy}:"):  # named among the loadable kinds
        load_dataset_spec(AuditConfig(dataset="nope:1"))


def test_the_builtin_kinds_keep_their_messages_and_paths():
    with pytest.raises(
        ConfigError, match=r"dataset kind 'nope' unknown in 'nope:1': use sae-probes:, conllu: or table:$"
    ):
        load_dataset_spec(AuditConfig(dataset="nope:1"))
    with pytest.raises(ConfigError, match="labels vocabulary tokens: add --matrix"):
        AuditConfig(dataset="token-properties:capitalised")
    assert input_paths(AuditConfig(model=ModelSpec(name="m"), dataset="table:data/t.csv"))[-1] == "data/t.csv"
    assert input_paths(AuditConfig(model=ModelSpec(name="m"), dataset="sae-probes:92_glue_sst2")) == ("m",)
    assert (_tag("conllu:ud/en_ewt-test.conllu"), _tag("sae-probes:92_glue_sst2")) == ("en_ewt-test", "92_glue_sst2")
    assert dataset_kinds.resolve("92_glue_sst2") == ("sae-probes", "92_glue_sst2")


def test_a_registered_kind_is_listed_by_the_cli(toy):
    listed = CliRunner().invoke(app, ["datasets"])
    assert listed.exit_code == 0, listed.output
    line = next(line for line in listed.output.splitlines() if line.startswith(f"{toy}:N"))
    assert line.endswith("N two-word texts (a toy for the registry test)")


def test_an_unregistered_kind_is_unknown():
    with pytest.raises(ConfigError, match="unknown"):
        load_dataset_spec(AuditConfig(dataset=f"{TOY}:8"))
