"""CoNLL-U treebanks: one token-level label (the part-of-speech tag) per word."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np

from auditkit.data.labelled import encode_labels, finish
from auditkit.duplicates import (
    DuplicateReport,
    check_policy,
    merge_texts,
    repeat_counts,
    resolve_items,
)
from auditkit.errors import ConfigError, DataError, shorten
from auditkit.types import LabelledDataset


def _sentence_text(words: list[tuple[str, bool]], comment: str | None) -> tuple[str, list[tuple[int, int]]]:
    """The text and each word's span: the '# text' comment when the forms align with it, else rebuilt."""
    if comment is not None:
        spans, pos = [], 0
        for form, _ in words:
            while pos < len(comment) and comment[pos].isspace():
                pos += 1
            if not comment.startswith(form, pos):
                break
            spans.append((pos, pos + len(form)))
            pos += len(form)
        else:
            if not comment[pos:].strip():
                return comment, spans
    parts, spans, pos = [], [], 0
    for form, space_after in words:
        spans.append((pos, pos + len(form)))
        parts.append(form + (" " if space_after else ""))
        pos += len(parts[-1])
    return "".join(parts).rstrip(" "), spans


_CONLLU_ID = re.compile(r"[0-9]+(?:-(?P<end>[0-9]+)|\.(?P<node>[0-9]+))?")
"""Column 1 of a CoNLL-U word line: a word (3), a multiword token's range (3-4) or an empty node (3.1)."""


def _conllu_sentences(path: Path) -> Iterable[tuple[str | None, list[list[str]]]]:
    """(text comment, word rows) per sentence; a multiword range's SpaceAfter moves to its last word."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read CoNLL-U file {str(path)!r}: {exc}") from exc
    comment, rows, range_end, range_misc = None, [], -1, ""
    for lineno, line in enumerate([*lines, ""], start=1):
        if not line.strip():
            if rows:
                yield comment, rows
            comment, rows = None, []
        elif line.startswith("#"):
            if line.startswith("# text ="):
                comment = line.split("=", 1)[1].strip()
        else:
            cols = line.split("\t")
            if len(cols) != 10:
                raise DataError(f"{str(path)!r} line {lineno}: expected 10 tab-separated columns")
            word = _CONLLU_ID.fullmatch(cols[0])
            if word is None:
                raise DataError(
                    f"{str(path)!r} line {lineno}: word id {shorten(cols[0], 40)} in column 1 is not a number "
                    "(3), a multiword range (3-4) or an empty node (3.1): fix that line"
                )
            if word["end"]:  # multiword token: its words follow; only its SpaceAfter matters
                range_end, range_misc = int(word["end"]), cols[9]
            elif not word["node"]:  # empty nodes ('8.1') are not in the surface text
                word_id = int(cols[0])
                if word_id < range_end:
                    cols[9] = "SpaceAfter=No"
                elif word_id == range_end:
                    cols[9] = range_misc
                rows.append(cols)


def load_conllu(
    path: str | Path,
    *,
    max_sentences: int | None = None,
    tagset: Literal["upos", "xpos"] = "upos",
    duplicates: str = "group",
) -> LabelledDataset:
    """A token-level dataset: one item per word of a CoNLL-U file, labelled by its POS tag.

    Identical sentences are one example; a word's copies are one item key ``(sentence, span)`` for the
    duplicates policy (see :mod:`auditkit.duplicates`).
    """
    path = Path(path)
    column = {"upos": 3, "xpos": 4}.get(tagset)
    if column is None:
        raise ConfigError(f"tagset must be 'upos' or 'xpos', got {tagset!r}")
    check_policy(duplicates)
    texts, tags, examples, spans, forms = [], [], [], [], []
    for comment, rows in _conllu_sentences(path):
        if max_sentences is not None and len(texts) >= max_sentences:
            break
        words = [(r[1], "SpaceAfter=No" not in r[9].split("|")) for r in rows]
        text, word_spans = _sentence_text(words, comment)
        for row, span in zip(rows, word_spans):
            if row[column] != "_":
                tags.append(row[column])
                examples.append(len(texts))
                spans.append(span)
                forms.append(row[1])
        texts.append(text)
    if not texts:
        raise DataError(f"CoNLL-U file {str(path)!r} has no sentences")
    labels, class_names, notes = encode_labels(tags)
    unique, example_B, shift_B = merge_texts(texts)
    sentence_M = np.asarray(examples, dtype=np.int64)
    example_M = example_B[sentence_M]
    spans_M2 = np.asarray(spans, dtype=np.int64).reshape(-1, 2) + shift_B[sentence_M][:, None]
    keep, conflicts = resolve_items(
        [(int(e), int(a), int(b)) for e, (a, b) in zip(example_M, spans_M2)], labels, duplicates
    )
    repeated, repeated_rows = repeat_counts(example_B)
    used, example_M = np.unique(example_M[keep], return_inverse=True)
    report = DuplicateReport(
        policy=duplicates,
        source_texts=len(texts),
        repeated_texts=repeated,
        repeated_rows=repeated_rows,
        label_conflicts=conflicts,
        dropped_items=int((~keep).sum()),
    )
    return finish(
        name=f"conllu:{path.stem}",
        texts=tuple(unique[e] for e in used),
        labels_M=labels[keep],
        item_example_M=example_M.astype(np.int64),
        class_names=class_names,
        level="token",
        item_span_M2=spans_M2[keep],
        groups_M=tuple(f for f, k in zip(forms, keep) if k),
        source=str(path),
        duplicates=report.to_dict(),
        label_notes=notes,
    )
