"""Typed records of the blocks of an audit's run.json: the model (:class:`ProvenanceInfo`), the dataset
(:class:`DatasetInfo`), the activations (:class:`ExtractionInfo`) and each method's entry (:class:`MethodInfo`).

Each record has typed core fields and one fenced place for anything else, ``extras``: a key a record does not
declare (one written by a newer or an older auditkit, or a method's free-form note) is kept there, in its
order, never lost and never an error. ``to_dict`` gives back the block run.json writes, key for key and in the
same order (core fields in declaration order, a field declared with :data:`OPTIONAL` left out where it is
None, then the extras; for a method, its own keys before its headline): writing an audit through the records
leaves run.json byte-identical. ``from_dict`` reads a block back; a required key that is absent is one error
naming the key and the file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from auditkit.errors import OutputError
from auditkit.types import ModelProvenance

EXTRAS = "extras"
"""The field of every record that holds the keys it does not declare."""


OPTIONAL = {"optional": True}
"""Metadata of a core field that run.json holds only for some audits: None there, and then left out of
``to_dict`` (``field(default=None, metadata=OPTIONAL)``)."""


def _from_json(value: Any) -> Any:
    """A JSON value as a record holds it: lists become tuples (records are frozen); objects stay as read."""
    return tuple(_from_json(v) for v in value) if isinstance(value, list) else value


def _to_json(value: Any) -> Any:
    """Inverse of :func:`_from_json`: tuples back to lists."""
    return [_to_json(v) for v in value] if isinstance(value, tuple) else value


class Record:
    """What every run.json record shares: ``from_dict`` / ``to_dict`` and the ``extras`` fence.

    A subclass is a frozen dataclass whose last field is ``extras: dict[str, Any]``; ``BLOCK`` names its key in
    run.json (for error messages)."""

    BLOCK: ClassVar[str] = ""

    @classmethod
    def from_dict(cls, data: Any, where: str = "run.json") -> Any:
        """The record of a run.json block ``data`` read from the file ``where``: every declared key to its
        field (lists as tuples), every other key into ``extras``. Raises :class:`OutputError` naming the key
        and the file when a required key is absent, or when the block is not a JSON object."""
        if not isinstance(data, Mapping):
            raise OutputError(
                f"{where}: its {cls.BLOCK!r} is not a JSON object; give an output folder `auditkit audit` wrote"
            )
        declared = {f.name: f for f in dataclasses.fields(cls) if f.name != EXTRAS}  # type: ignore[arg-type]
        for name, f in declared.items():
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if required and name not in data:
                raise OutputError(
                    f"{where}: its {cls.BLOCK!r} has no {name!r}, which `auditkit audit` writes; rerun the "
                    "command in its report.md to write it again"
                )
        core = {k: _from_json(v) for k, v in data.items() if k in declared}
        extras = {k: v for k, v in data.items() if k not in declared}
        return cls(**core, extras=extras)

    def core(self) -> dict[str, Any]:
        """The declared fields as run.json writes them: in declaration order, lists for tuples, an
        :data:`OPTIONAL` field left out where it is None."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.name == EXTRAS or (value is None and f.metadata.get("optional")):
                continue
            out[f.name] = _to_json(value)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The run.json block this record was read from or written as, in the same key order: the declared
        fields, then the extras."""
        return {**self.core(), **getattr(self, EXTRAS)}


@dataclass(frozen=True, kw_only=True)
class ProvenanceInfo(Record, ModelProvenance):
    """run.json's ``provenance``: the model's :class:`auditkit.types.ModelProvenance` (its fields with a default
    may be absent from an older run.json), and any other key in ``extras``."""

    BLOCK: ClassVar[str] = "provenance"

    extras: dict[str, Any] = field(default_factory=dict)
    """Keys of the block that :class:`auditkit.types.ModelProvenance` does not declare."""

    @classmethod
    def of(cls, provenance: ModelProvenance) -> ProvenanceInfo:
        """The record of a loaded model's provenance."""
        return cls.from_dict(provenance.to_dict())


@dataclass(frozen=True, kw_only=True)
class DatasetInfo(Record):
    """run.json's ``dataset``: what was audited, its sizes and what was done to it."""

    BLOCK: ClassVar[str] = "dataset"

    name: str
    """The dataset spec's name (``92_glue_sst2``, a table's file name, ``token-properties:capitalised``)."""
    source: str
    """Where its texts and labels came from."""
    fingerprint: str
    """Content hash of texts and labels (hex)."""
    level: str
    """``sentence`` or ``token`` (labels inside a text), or ``vocabulary`` (rows of an embedding matrix)."""
    n_texts: int
    """Distinct texts (vocabulary tokens for a matrix audit)."""
    n_items: int
    """Labelled items."""
    class_names: tuple[str, ...]
    """The label of each class index."""
    class_counts: tuple[int, ...]
    """Items per class, by class index."""
    n_tokens: int
    """Tokens the model read."""
    duplicates: dict[str, Any] | None = field(default=None, metadata=OPTIONAL)
    """Repeated texts in the source and what the policy did (:mod:`auditkit.duplicates`); None for a matrix audit."""
    label_notes: tuple[str, ...] | None = field(default=None, metadata=OPTIONAL)
    """Notes on how the labels were read."""
    n_truncated: int | None = field(default=None, metadata=OPTIONAL)
    """Texts cut to ``--max-length``."""
    trust: dict[str, Any] | None = field(default=None, metadata=OPTIONAL)
    """A shipped dataset's trust flag and its reasons (``auditkit datasets --audit``); None for any other."""
    left_out_controls: tuple[str, ...] | None = field(default=None, metadata=OPTIONAL)
    """The default controls the data's level left out (:attr:`auditkit.controls.registry.Control.levels`)."""
    vocab_size: int | None = field(default=None, metadata=OPTIONAL)
    """A matrix audit's vocabulary size."""
    usable_tokens: int | None = field(default=None, metadata=OPTIONAL)
    """A matrix audit's tokens whose property is defined."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Keys of the block not declared above."""


@dataclass(frozen=True, kw_only=True)
class ExtractionInfo(Record):
    """run.json's ``extraction``: where the activations were read."""

    BLOCK: ClassVar[str] = "extraction"

    hook: str
    """The hook read (``blocks.5.hook_resid_post``), or the matrix of a matrix audit (``W_E``)."""
    positions: str
    """The positions read (``last``, ``mean``, ``labelled``, ``vocabulary-rows``)."""
    rows: int | None = None
    """Rows of the real arm's activations; None where no method read labelled positions."""
    d: int | None = None
    """Width of each row."""
    cache_key: str | None = None
    """The activation cache's key of the real arm; None without the cache."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Keys of the block not declared above."""


@dataclass(frozen=True, kw_only=True)
class MethodInfo(Record):
    """One method's entry in run.json's ``methods``: its headline metrics, and in ``extras`` what its runner
    reported (hyper-parameters, complexity, what its report section reads), free-form by method."""

    BLOCK: ClassVar[str] = "methods"

    headline: tuple[str, ...] | None = field(default=None, metadata=OPTIONAL)
    """The metrics of its rows in the verdict matrix; None in a run.json written before they were recorded
    (the report then shows accuracy)."""
    extras: dict[str, Any] = field(default_factory=dict)
    """What the method's runner reported (:attr:`auditkit.audit.method.MethodOutput.info`)."""

    def to_dict(self) -> dict[str, Any]:
        """The entry as run.json writes it: the runner's keys, then the headline."""
        return {**self.extras, **self.core()}
