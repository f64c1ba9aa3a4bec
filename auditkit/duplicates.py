"""Repeated texts: identical inputs are one example for every split, whatever the source.

A dataset that holds the same text more than once puts copies on both sides of a split when rows are
numbered one by one; a probe then memorises each text's label on its training copy and scores it on
the test copy. Shuffled labels and random tokens break that link between copies, so the real arm
"wins" on a null. The rule here: texts equal after trimming surrounding whitespace are **one
example** (one forward pass, one side of every split), and inputs that tokenise to the same token ids
(texts cut to ``max_length`` included) are merged again at the token level. Every copy's label stays
an item of that example unless the policy says otherwise:

- ``group`` (default): every copy keeps its label; copies whose labels disagree stay too (they are
  noise no reader can remove, and both sides of a split see none of them twice).
- ``drop-conflicts``: as ``group``, but items whose copies disagree are removed.
- ``dedupe``: one item per text (per word for token-level data); disagreeing ones are removed.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from auditkit.errors import ConfigError

DuplicatePolicy = Literal["group", "drop-conflicts", "dedupe"]
DUPLICATE_POLICIES: tuple[str, ...] = ("group", "drop-conflicts", "dedupe")


def check_policy(policy: str) -> None:
    if policy not in DUPLICATE_POLICIES:
        raise ConfigError(f"duplicates policy {policy!r} unknown: use one of {', '.join(DUPLICATE_POLICIES)}")


@dataclass(frozen=True, kw_only=True)
class DuplicateReport:
    """What the source held in repeats and what the policy did; stated in every report and run.json."""

    policy: str
    """The policy applied (see the module docstring)."""
    source_texts: int = 0
    """Texts read from the source (rows for sentence-level data, sentences for token-level)."""
    repeated_texts: int = 0
    """Distinct texts that occur more than once in the source."""
    repeated_rows: int = 0
    """Source texts that are copies of such a text (every occurrence counted)."""
    label_conflicts: int = 0
    """Items (texts, or words of a text) whose copies carry different labels."""
    dropped_items: int = 0
    """Labelled items the policy removed."""
    merged_after_tokenising: int = 0
    """Distinct texts merged because their token ids are identical (e.g. equal once cut to max_length)."""

    def to_dict(self) -> dict[str, int | str]:
        return asdict(self)


def merge_texts(texts: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Distinct texts (first occurrence kept as written), each text's example index, and each text's
    character shift onto its example's text (leading whitespace differs between copies)."""
    first: dict[str, int] = {}
    unique: list[str] = []
    example_B = np.empty(len(texts), dtype=np.int64)
    shift_B = np.zeros(len(texts), dtype=np.int64)
    for b, text in enumerate(texts):
        key = text.strip()
        e = first.setdefault(key, len(unique))
        if e == len(unique):
            unique.append(text)
        example_B[b] = e
        shift_B[b] = _lead(unique[e]) - _lead(text)
    return unique, example_B, shift_B


def _lead(text: str) -> int:
    return len(text) - len(text.lstrip())


def resolve_items(
    item_key_M: Sequence[Hashable] | np.ndarray, labels_M: np.ndarray, policy: str
) -> tuple[np.ndarray, int]:
    """bool [M] items to keep under ``policy``, and the number of keys whose copies' labels disagree.

    ``item_key_M`` identifies an item up to copies: the example for sentence-level data, (example,
    span) for token-level data.
    """
    check_policy(policy)
    first_label: dict[Hashable, int] = {}
    conflicting: set[Hashable] = set()
    for key, label in zip(item_key_M, labels_M.tolist()):
        if first_label.setdefault(key, label) != label:
            conflicting.add(key)
    keep = np.ones(len(labels_M), dtype=bool)
    if policy != "group":
        keep = np.array([k not in conflicting for k in item_key_M], dtype=bool)
    if policy == "dedupe":
        seen: set[Hashable] = set()
        for m, key in enumerate(item_key_M):
            keep[m] &= key not in seen
            seen.add(key)
    return keep, len(conflicting)


def repeat_counts(example_B: np.ndarray) -> tuple[int, int]:
    """(distinct texts seen more than once, texts that belong to them) of a text -> example map."""
    counts = np.bincount(example_B) if len(example_B) else np.zeros(0, dtype=np.int64)
    return int((counts > 1).sum()), int(counts[counts > 1].sum())


def merge_identical_rows(rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Rows with identical token ids are one example: (index of each kept row, kept example of every row)."""
    first: dict[tuple[int, ...], int] = {}
    keep: list[int] = []
    example = np.empty(len(rows), dtype=np.int64)
    for b, row in enumerate(rows):
        e = first.setdefault(tuple(row), len(keep))
        if e == len(keep):
            keep.append(b)
        example[b] = e
    return np.asarray(keep, dtype=np.int64), example
