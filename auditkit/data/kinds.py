"""The dataset-kind registry: one :class:`DatasetKind` per kind of ``--dataset`` spec, ``KIND:VALUE``.

A dataset kind is declared once, by :func:`register`: its name (the ``KIND`` of a spec), how ``auditkit datasets``
shows it, the level of its data (known from the spec alone, before loading), whether its value is a path the user
gave (checked against the output folder, shown relative in a reproduce command, named by its stem in a sweep's
figures), its loader, and, for the shipped tasks, how a sweep expands a group or a glob of them and whether they
have a row of the trust table. Every consumer reads the registry (the audit's loader and level, the config's
input paths and vocabulary check, the sweep's dataset list, the reports' short names, the command line's listing,
reproduce command and output checks); none re-parses a spec's kind.

What a loaded dataset is, and its content fingerprint (the cache keys' and the sweep's data key), is the loader's:
every loader ends in :func:`auditkit.data.labelled.labelled_dataset`, which fingerprints texts, labels and
placement, so a kind declares no fingerprint of its own.

The built-in kinds are registered below, in one literal. :func:`register` is the extension point (a test
registers a toy kind and :func:`unregister` s it); nothing else changes the registry at run time.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath

from auditkit.data.conllu import load_conllu
from auditkit.data.sae_probes import list_sae_probes, load_sae_probes
from auditkit.data.tables import load_table
from auditkit.errors import ConfigError
from auditkit.types import LabelledDataset

LEVELS = ("sentence", "token")
"""Levels of labelled data: one label per text, or one per word (token-level part-of-speech tags)."""


@dataclass(frozen=True, kw_only=True)
class LoadOptions:
    """What an audit asks of every loader (the fields of :class:`auditkit.audit.config.AuditConfig` a kind may read)."""

    max_examples: int | None = None
    """Texts (sentences, for a treebank) kept at most; None keeps every one."""
    duplicates: str = "group"
    """Policy for repeated texts (:mod:`auditkit.duplicates`)."""
    text_column: str = "text"
    """A table's text column."""
    label_column: str = "label"
    """A table's label column."""


@dataclass(frozen=True, kw_only=True)
class DatasetKind:
    """One kind of dataset spec, registered once (:func:`register`)."""

    name: str
    """The ``KIND`` of a ``KIND:VALUE`` spec."""
    usage: str
    """The spec's form in ``auditkit datasets`` (``conllu:PATH``)."""
    summary: str
    """What it reads, in a few words (the listing's second column)."""
    level: str = "sentence"
    """The level of its data (:data:`LEVELS`), known from the spec before loading."""
    path: bool = False
    """Its value is a path the user gave (a file or folder; a table's may also be a hub id)."""
    load: Callable[[str, LoadOptions], LabelledDataset] | None = None
    """``load(value, options)``: the labelled dataset of a spec's value. None for a kind whose rows an audit builds
    itself (``token-properties``: vocabulary rows, :mod:`auditkit.audit.matrix`)."""
    expand: Callable[[str], list[str] | None] | None = None
    """``expand(spec)``: the specs a sweep's ``--datasets`` item stands for (a group or a glob of shipped tasks), or
    None when the item is one dataset."""
    shipped: bool = False
    """Its tasks are shipped offline, listed one by one by ``auditkit datasets``, and each has a row of the trust
    table (:func:`auditkit.trust.run.sae_probes_trust`). The kind of a bare spec (a tag without ``KIND:``)."""
    columns: bool = False
    """Its loader reads a text and a label column (:attr:`LoadOptions.text_column`, ``label_column``; the options
    ``--text-column`` and ``--label-column`` of a reproduce command)."""
    vocabulary: bool = False
    """It labels vocabulary tokens, not text: read by a ``--matrix`` audit only."""

    def __post_init__(self) -> None:
        if not self.name or ":" in self.name:
            raise ValueError(f"dataset kind {self.name!r}: a name without ':'")
        if self.level not in LEVELS:
            raise ValueError(f"dataset kind {self.name!r}: level {self.level!r} unknown, use one of {LEVELS}")
        if not self.usage.startswith(f"{self.name}:") or not self.summary:
            raise ValueError(f"dataset kind {self.name!r}: give a usage {self.name}:VALUE and a summary")
        if (self.load is None) != self.vocabulary:
            raise ValueError(f"dataset kind {self.name!r}: a loader for text, none for vocabulary rows")


REGISTRY: dict[str, DatasetKind] = {}
"""Every dataset kind by name, in registration order (the order of listings and messages)."""


def register(kind: DatasetKind) -> DatasetKind:
    """Add ``kind`` to the registry (a name already taken raises ``ValueError``); returns it."""
    if kind.name in REGISTRY:
        raise ValueError(f"dataset kind {kind.name!r} is registered already")
    REGISTRY[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Remove a kind registered by :func:`register` (tests that register a toy kind)."""
    del REGISTRY[name]


def kinds(where: Callable[[DatasetKind], bool] | None = None) -> tuple[DatasetKind, ...]:
    """The registered kinds for which ``where`` holds (all when None), in registration order."""
    return tuple(k for k in REGISTRY.values() if where is None or where(k))


def kind_of(spec: str) -> DatasetKind | None:
    """The registered kind a ``KIND:VALUE`` spec names (None for any other, and for a bare tag)."""
    kind, sep, _ = spec.partition(":")
    return REGISTRY.get(kind) if sep else None


def resolve(spec: str) -> tuple[str, str]:
    """``(kind, value)`` of a spec; a bare tag (no ``:VALUE``) is a task of the shipped kind."""
    kind, _, value = spec.partition(":")
    if not value:
        shipped = kinds(lambda k: k.shipped)
        kind, value = (shipped[0].name if shipped else kind), kind
    return kind, value


def level(spec: str) -> str:
    """The level of the data ``spec`` names, from its kind alone (before loading): its kind's; ``sentence`` for a
    name no kind holds (it is refused when loaded)."""
    kind = REGISTRY.get(spec.partition(":")[0])
    return kind.level if kind is not None else "sentence"


def local_path(spec: str) -> str | None:
    """The path a spec's value names (a kind with :attr:`DatasetKind.path`), None for any other spec."""
    kind, _, value = spec.partition(":")
    return value if kind in REGISTRY and REGISTRY[kind].path and value else None


def load(spec: str, options: LoadOptions) -> LabelledDataset:
    """The labelled dataset ``spec`` names (``KIND:VALUE``, or a bare tag of the shipped kind)."""
    kind, value = resolve(spec)
    if kind not in REGISTRY or REGISTRY[kind].load is None:
        loadable = [f"{k.name}:" for k in kinds(lambda k: k.load is not None)]
        choices = f"{', '.join(loadable[:-1])} or {loadable[-1]}" if len(loadable) > 1 else "".join(loadable)
        raise ConfigError(f"dataset kind {kind!r} unknown in {spec!r}: use {choices}")
    return REGISTRY[kind].load(value, options)


def expand(spec: str) -> list[str]:
    """The specs one ``--datasets`` item stands for: its kind's expansion (a group or glob), else the item."""
    kind = kind_of(spec)
    found = kind.expand(spec) if kind is not None and kind.expand is not None else None
    return [spec] if found is None else found


def short_name(spec: str) -> str:
    """A dataset's short name: a path's file name without its folder and suffix, else the value (a shipped tag)."""
    kind, _, value = spec.partition(":")
    if kind in REGISTRY and REGISTRY[kind].path:
        return PurePath(value).stem
    return (value or kind).replace("/", "_")


GROUPS = ("binary", "multiclass", "classification", "all")
"""``sae-probes:GROUP`` names: the shipped classification datasets by kind (see ``auditkit datasets``)."""


def _expand_sae_probes(spec: str) -> list[str] | None:
    """A group (:data:`GROUPS`) or a shell glob of shipped tags; None for one tag."""
    value = spec.partition(":")[2]
    if value in GROUPS:
        tags = list(list_sae_probes(value)["tag"])
        if not tags:
            raise ConfigError(f"dataset group {spec!r} is empty")
        return [f"sae-probes:{t}" for t in tags]
    if any(c in value for c in "*?["):
        tags = [t for t in list_sae_probes("classification")["tag"] if fnmatch.fnmatch(t, value)]
        if not tags:
            raise ConfigError(
                f"dataset glob {spec!r} matches no sae-probes classification tag: `auditkit datasets` lists them"
            )
        return [f"sae-probes:{t}" for t in tags]
    return None


def _load_sae_probes(tag: str, options: LoadOptions) -> LabelledDataset:
    return load_sae_probes(tag, max_examples=options.max_examples, seed=0, duplicates=options.duplicates)


def _load_conllu(path: str, options: LoadOptions) -> LabelledDataset:
    return load_conllu(path, max_sentences=options.max_examples, duplicates=options.duplicates)


def _load_table(source: str, options: LoadOptions) -> LabelledDataset:
    return load_table(
        source,
        text_column=options.text_column,
        label_column=options.label_column,
        max_examples=options.max_examples,
        duplicates=options.duplicates,
    )


for _kind in (
    DatasetKind(
        name="sae-probes",
        usage="sae-probes:TAG",
        summary="a task shipped offline (listed by tag)",
        load=_load_sae_probes,
        expand=_expand_sae_probes,
        shipped=True,
    ),
    DatasetKind(
        name="conllu",
        usage="conllu:PATH",
        summary="token-level UPOS from a CoNLL-U file",
        level="token",
        path=True,
        load=_load_conllu,
    ),
    DatasetKind(
        name="table",
        usage="table:PATH_OR_HUB_ID",
        summary="CSV/JSONL/parquet file, or a datasets id (hub)",
        path=True,
        columns=True,
        load=_load_table,
    ),
    DatasetKind(
        name="token-properties",
        usage="token-properties:PROP|all",
        summary="token-string labels of vocabulary rows (--matrix)",
        vocabulary=True,
    ),
):
    register(_kind)
