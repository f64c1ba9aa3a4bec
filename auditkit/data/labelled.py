"""What every loader ends in: labels encoded to classes, a subsample that keeps every class, the
content :func:`fingerprint` used in cache keys, and the checks of :func:`validate_labelled`."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from auditkit.duplicates import (
    DuplicateReport,
    check_policy,
    merge_texts,
    repeat_counts,
    resolve_items,
)
from auditkit.errors import ConfigError, DataError
from auditkit.seeding import numpy_rng
from auditkit.types import LabelledDataset


def fingerprint(
    texts: Sequence[str], labels: Iterable[int] | np.ndarray, spans: np.ndarray | None = None, extra: str = ""
) -> str:
    """sha256 hex of a length-prefixed encoding, so no two different inputs share a byte stream."""
    h = hashlib.sha256()
    h.update(len(texts).to_bytes(8, "little"))
    for text in texts:
        raw = text.encode("utf-8")
        h.update(len(raw).to_bytes(8, "little") + raw)
    labels_arr = np.ascontiguousarray(np.asarray(list(labels), dtype="<i8"))
    h.update(b"L" + len(labels_arr).to_bytes(8, "little") + labels_arr.tobytes())
    if spans is not None:
        spans_arr = np.ascontiguousarray(np.asarray(spans, dtype="<i8"))
        h.update(b"S" + spans_arr.size.to_bytes(8, "little") + spans_arr.tobytes())
    h.update(b"E" + extra.encode("utf-8"))
    return h.hexdigest()


def finish(*, labelled: bool = True, **fields: Any) -> LabelledDataset:
    """Build, fingerprint and validate a dataset; the fingerprint also covers item placement."""
    ds = LabelledDataset(**fields)
    parts = [ds.level, "\x1f".join(ds.class_names), fingerprint((), ds.item_example_M)]
    if ds.groups_M is not None:
        parts.append(fingerprint(ds.groups_M, ()))
    fp = fingerprint(ds.texts, ds.labels_M, ds.item_span_M2, "|".join(parts))
    ds = LabelledDataset(**{**fields, "fingerprint": fp})
    if labelled:
        validate_labelled(ds)
    return ds


def validate_labelled(ds: LabelledDataset) -> None:
    """Raise DataError unless ``ds`` can train a probe: items present, two classes, labels in range."""
    if ds.n_items == 0 or not ds.texts:
        raise DataError(f"dataset {ds.name!r} is empty; check the source {ds.source!r} and filters")
    labels = np.asarray(ds.labels_M)
    if labels.min() < 0 or labels.max() >= ds.n_classes:
        raise DataError(
            f"dataset {ds.name!r} has labels outside 0..{ds.n_classes - 1} "
            f"(min {labels.min()}, max {labels.max()}); labels must index class_names"
        )
    present = np.unique(labels)
    if present.size < 2:
        only = ds.class_names[int(present[0])]
        raise DataError(f"dataset {ds.name!r}: labels have one class ({only!r}); a probe needs at least two")
    if ds.item_example_M.shape != labels.shape or ds.item_example_M.max() >= len(ds.texts):
        raise DataError(f"dataset {ds.name!r}: item_example_M does not match labels or texts")


def encode_labels(
    values: Sequence[Any], names: Sequence[str] | None = None
) -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...]]:
    """Sorted unique values -> class index, the class names, and notes for the report.

    Integral floats become ints so names read '1' not '1.0'. Text labels that differ only by
    surrounding whitespace are one class ('pos' and 'pos ' are the same label typed twice); labels that
    differ only by case stay separate classes but are named in a note, since they are more likely one
    class spelt two ways than two classes.
    """
    arr = pd.Series(list(values))
    if arr.dtype.kind == "O":
        arr = arr.map(lambda v: v.strip() if isinstance(v, str) else v)
    if arr.dtype.kind == "f" and np.all(np.mod(arr.to_numpy(), 1) == 0):
        arr = arr.astype(np.int64)
    try:
        uniq = sorted(arr.unique())
    except TypeError:  # mixed types: order by their text instead
        uniq = sorted(arr.unique(), key=str)
    index = {v: i for i, v in enumerate(uniq)}
    labels = np.array([index[v] for v in arr], dtype=np.int64)
    class_names = tuple(names[int(v)] if names is not None else str(v) for v in uniq)
    by_case: dict[str, list[str]] = {}
    for name in class_names:
        by_case.setdefault(name.casefold(), []).append(name)
    notes = tuple(
        f"labels {' and '.join(map(repr, same))} differ only by case and are kept as {len(same)} classes: "
        "fix the labels if they are one class"
        for same in by_case.values()
        if len(same) > 1
    )
    return labels, class_names, notes


def stratified_subsample(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted indices of ``n`` items, classes in proportion (largest remainder), at least one each."""
    if n >= len(labels):
        return np.arange(len(labels))
    rng = numpy_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    exact = n * counts / counts.sum()
    quota = np.floor(exact).astype(int)
    quota[np.argsort(-(exact - quota), kind="stable")[: n - quota.sum()]] += 1
    if n >= len(classes):  # keep every class so a small sample can still train a probe
        while (quota == 0).any():
            quota[np.argmax(quota)] -= 1
            quota[np.argmin(quota)] += 1
    picked = [rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(picked))


def labelled_dataset(
    name: str,
    texts: Sequence[str],
    values: Sequence[Any],
    *,
    source: str,
    max_examples: int | None = None,
    seed: int = 0,
    names: Sequence[str] | None = None,
    duplicates: str = "group",
    encoded: tuple[np.ndarray, tuple[str, ...], tuple[str, ...]] | None = None,
) -> LabelledDataset:
    """Encode labels, merge identical texts into one example (:mod:`auditkit.duplicates`), subsample
    ``max_examples`` distinct texts stratified by class, and build a sentence-level dataset."""
    check_policy(duplicates)
    labels, class_names, notes = encoded if encoded is not None else encode_labels(values, names)
    unique, example_B, _ = merge_texts(texts)
    keep, conflicts = resolve_items(example_B, labels, duplicates)
    repeated, repeated_rows = repeat_counts(example_B)
    example_M, labels = example_B[keep], labels[keep]
    if max_examples is not None:
        if max_examples < 1:
            raise ConfigError(f"max_examples must be >= 1, got {max_examples}")
        present, first = np.unique(example_M, return_index=True)
        chosen = present[stratified_subsample(labels[first], max_examples, seed)]
        in_sample = np.isin(example_M, chosen)
        example_M, labels = example_M[in_sample], labels[in_sample]
    used, example_M = np.unique(example_M, return_inverse=True)  # examples renumbered in source order
    report = DuplicateReport(
        policy=duplicates,
        source_texts=len(texts),
        repeated_texts=repeated,
        repeated_rows=repeated_rows,
        label_conflicts=conflicts,
        dropped_items=int((~keep).sum()),
    )
    return finish(
        name=name,
        texts=tuple(unique[e] for e in used),
        labels_M=labels,
        item_example_M=example_M.astype(np.int64),
        class_names=class_names,
        source=source,
        duplicates=report.to_dict(),
        label_notes=notes,
    )
