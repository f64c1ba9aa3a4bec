"""Load labelled text into a :class:`LabelledDataset` and tokenise it into a :class:`TokenBatch`.

Sources: the sae-probes benchmark datasets (read from the installed package's files, never by
importing it, because its dependencies pull in xgboost), CoNLL-U treebanks (token-level POS tags),
local tables or ``datasets`` sources, and in-memory lists. Every labelled loader ends in
:func:`validate_labelled` and fills a content :func:`fingerprint` used in cache keys.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import importlib.util
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from jaxtyping import Bool

from auditkit.duplicates import (
    DuplicateReport,
    check_policy,
    merge_identical_rows,
    merge_texts,
    repeat_counts,
    resolve_items,
)
from auditkit.errors import ConfigError, DataError, HubUnreachableError, shorten
from auditkit.seeding import derive_seed, numpy_rng
from auditkit.splits import split_examples
from auditkit.types import LabelledDataset, TokenBatch

logger = logging.getLogger(__name__)

_TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
_MAX_CLASSES = 50
"""More distinct targets than this in an unlisted sae-probes file means it is a regression target."""
_KINDS = {"Binary Classification": "binary", "Multiclass Classification": "multiclass", "Continuous Data": "continuous"}
_WANTED = {
    "binary": {"binary"},
    "multiclass": {"multiclass"},
    "classification": {"binary", "multiclass"},
    "all": {"binary", "multiclass", "continuous"},
}


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


def _finish(*, labelled: bool = True, **fields: Any) -> LabelledDataset:
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


def _encode_labels(
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
        for same in by_case.values() if len(same) > 1
    )  # fmt: skip
    return labels, class_names, notes


def _stratified_subsample(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
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


def _sae_probes_dir() -> Path:
    # find_spec on a top-level package locates it without executing its __init__ (checked), which
    # matters because importing sae_probes would import xgboost.
    spec = importlib.util.find_spec("sae_probes")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("package 'sae-probes' is not installed; run `pip install --no-deps sae-probes`")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@functools.cache
def _sae_probes_table() -> pd.DataFrame:
    """Master-listed datasets (kind from the master sheet) plus unlisted files (kind inferred)."""
    data = _sae_probes_dir()
    master = pd.read_csv(data / "probing_datasets_MASTER.csv.zst", compression="zstd")
    master = master.dropna(subset=["Dataset save name", "Data type"])
    rows: dict[str, dict[str, str]] = {}
    for save, kind in zip(master["Dataset save name"], master["Data type"]):
        file = data / "cleaned_data" / (Path(save).name + ".zst")
        if file.is_file() and kind in _KINDS:  # the sheet names a few files that were never shipped
            rows[file.name] = {"kind": _KINDS[kind], "file": str(file)}
    for file in sorted((data / "cleaned_data").glob("*.csv.zst")):
        if file.name not in rows:  # unlisted: read its targets once (cached) to tell the kind
            n = pd.read_csv(file, compression="zstd", usecols=["target"])["target"].nunique()
            kind = "continuous" if n > _MAX_CLASSES else ("binary" if n == 2 else "multiclass")
            rows[file.name] = {"kind": kind, "file": str(file)}
    tags = [name.removesuffix(".csv.zst") for name in rows]
    table = pd.DataFrame([{"tag": t, "name": re.sub(r"^\d+_", "", t), **r} for t, r in zip(tags, rows.values())])
    order = table["tag"].str.extract(r"^(\d+)", expand=False).astype(float).fillna(np.inf)
    return table.assign(_o=order).sort_values(["_o", "tag"]).drop(columns="_o").reset_index(drop=True)


def list_sae_probes(kind: Literal["binary", "multiclass", "classification", "all"] = "classification") -> pd.DataFrame:
    """The shipped sae-probes datasets: columns tag ('92_glue_sst2'), name, kind, file."""
    if kind not in _WANTED:
        raise ConfigError(f"kind must be one of {sorted(_WANTED)}, got {kind!r}")
    table = _sae_probes_table()
    return table[table["kind"].isin(_WANTED[kind])].reset_index(drop=True)


def _resolve_sae_probes(tag: str) -> pd.Series:
    table = _sae_probes_table()
    hits = table[(table["tag"] == tag) | (table["name"] == tag)]
    if hits.empty:
        close = difflib.get_close_matches(tag, [*table["tag"], *table["name"]], n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise DataError(f"unknown sae-probes dataset {tag!r}{hint} Run `auditkit datasets` to list them.")
    return hits.iloc[0]


def load_sae_probes(
    tag: str, *, max_examples: int | None = None, seed: int = 0, duplicates: str = "group"
) -> LabelledDataset:
    """A sentence-level sae-probes classification dataset, by tag ('92_glue_sst2') or name."""
    row = _resolve_sae_probes(tag)
    if row["kind"] == "continuous":
        raise DataError(
            f"sae-probes dataset {row['tag']!r} has a continuous target; probes here need classes. "
            "Pick one from `auditkit datasets`."
        )
    frame = _read_frame(Path(row["file"]))
    texts, values = _texts_and_labels(frame, "prompt", "target", row["file"])
    sub_seed = derive_seed(seed, "sae-probes-subsample", row["tag"])
    name = f"sae-probes:{row['tag']}"
    return _labelled(
        name,
        texts,
        values,
        source=_package_source(Path(row["file"])),
        max_examples=max_examples,
        seed=sub_seed,
        duplicates=duplicates,
    )


def _package_source(file: Path) -> str:
    """A shipped file named inside its package, never by the machine's install path (reports are committed)."""
    return f"sae-probes package: {file.relative_to(_sae_probes_dir().parent.parent).as_posix()}"


def _read_frame(path: Path) -> pd.DataFrame:
    """A local table by suffix (``.zst`` compressed CSVs included); DataError when unreadable."""
    suffixes = [s.lower() for s in path.suffixes]
    try:
        if suffixes[-2:] == [".csv", ".zst"]:
            return pd.read_csv(path, compression="zstd")
        suffix = suffixes[-1] if suffixes else ""
        if suffix in (".csv", ".tsv"):
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
        if suffix in (".jsonl", ".json"):
            return pd.read_json(path, lines=suffix == ".jsonl")
        return pd.read_parquet(path)
    except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read table {str(path)!r}: {exc}") from exc


def _texts_and_labels(frame: pd.DataFrame, text_col: str, label_col: str, source: str) -> tuple[tuple[str, ...], list]:
    """Texts and raw labels, dropping rows whose text is empty or whose label is missing."""
    missing = [c for c in (text_col, label_col) if c not in frame.columns]
    if missing:
        shown = ", ".join(shorten(str(c), 40) for c in frame.columns[:8])  # a header can be megabytes long
        more = f" and {len(frame.columns) - 8} more" if len(frame.columns) > 8 else ""
        raise DataError(f"{source!r} has no column {shorten(missing[0], 40)}; available columns: {shown}{more}")
    text = frame[text_col]
    has_text = text.notna() & text.astype(str).str.strip().ne("")
    unlabelled = int((has_text & frame[label_col].isna()).sum())
    if unlabelled:
        # A text without a label is a label count mismatch, not something to drop silently.
        raise DataError(
            f"{source!r}: {unlabelled} of {int(has_text.sum())} texts have no {label_col!r} label: "
            "fill in those labels or remove those rows"
        )
    keep = has_text
    if (dropped := int((~keep).sum())) > 0:
        logger.info("%s: dropped %d rows with an empty text", source, dropped)
    return tuple(text[keep].astype(str)), list(frame.loc[keep, label_col])


def _labelled(
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
    labels, class_names, notes = encoded if encoded is not None else _encode_labels(values, names)
    unique, example_B, _ = merge_texts(texts)
    keep, conflicts = resolve_items(example_B, labels, duplicates)
    repeated, repeated_rows = repeat_counts(example_B)
    example_M, labels = example_B[keep], labels[keep]
    if max_examples is not None:
        if max_examples < 1:
            raise ConfigError(f"max_examples must be >= 1, got {max_examples}")
        present, first = np.unique(example_M, return_index=True)
        chosen = present[_stratified_subsample(labels[first], max_examples, seed)]
        in_sample = np.isin(example_M, chosen)
        example_M, labels = example_M[in_sample], labels[in_sample]
    used, example_M = np.unique(example_M, return_inverse=True)  # examples renumbered in source order
    report = DuplicateReport(
        policy=duplicates, source_texts=len(texts), repeated_texts=repeated, repeated_rows=repeated_rows,
        label_conflicts=conflicts, dropped_items=int((~keep).sum()),
    )  # fmt: skip
    return _finish(
        name=name, texts=tuple(unique[e] for e in used), labels_M=labels, item_example_M=example_M.astype(np.int64),
        class_names=class_names, source=source, duplicates=report.to_dict(), label_notes=notes,
    )  # fmt: skip


def _load_hf(source: str, split: str) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """A ``datasets`` split as a frame, plus ClassLabel names per column so labels keep their names."""
    import datasets  # slow import, only needed for non-file sources
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    try:
        hf = datasets.load_dataset(source, split=split)
    except (ConnectionError, TimeoutError, LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        raise HubUnreachableError(
            f"dataset {source!r} is not a local file and the Hugging Face hub can't be reached "
            f"({type(exc).__name__}); pass a local .csv/.tsv/.jsonl/.json/.parquet file instead"
        ) from exc
    except (FileNotFoundError, ValueError, datasets.exceptions.DatasetNotFoundError) as exc:
        raise DataError(f"cannot load dataset {source!r} split {split!r}: {exc}") from exc
    names = {k: f.names for k, f in hf.features.items() if isinstance(f, datasets.ClassLabel)}
    return hf.to_pandas(), names


def load_table(
    source: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    split: str = "train",
    max_examples: int | None = None,
    seed: int = 0,
    duplicates: str = "group",
) -> LabelledDataset:
    """A sentence-level dataset from a local table file, or any ``datasets.load_dataset`` source."""
    path = Path(source)
    names: dict[str, list[str]] = {}
    if path.suffix.lower() in _TABLE_SUFFIXES:
        frame = _read_frame(path)
    else:
        frame, names = _load_hf(str(source), split)
    texts, values = _texts_and_labels(frame, text_column, label_column, str(source))
    name, sub_seed = f"table:{path.stem if path.suffix else source}", derive_seed(seed, "table-subsample", str(source))
    return _labelled(
        name, texts, values, source=str(source), max_examples=max_examples, seed=sub_seed,
        names=names.get(label_column), duplicates=duplicates,
    )  # fmt: skip


def from_lists(
    name: str,
    texts: Sequence[str],
    labels: Sequence[Any] | np.ndarray,
    *,
    class_names: Sequence[str] | None = None,
    duplicates: str = "group",
) -> LabelledDataset:
    """An in-memory sentence-level dataset. With ``class_names``, labels must already be indices."""
    if len(texts) != len(labels):
        raise DataError(f"dataset {name!r}: got {len(texts)} texts but {len(labels)} labels")
    encoded = None
    if class_names is not None:
        encoded = (np.asarray(labels, dtype=np.int64), tuple(class_names), ())
    return _labelled(
        name, tuple(map(str, texts)), list(labels), source="memory", duplicates=duplicates, encoded=encoded
    )


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
    labels, class_names, notes = _encode_labels(tags)
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
        policy=duplicates, source_texts=len(texts), repeated_texts=repeated, repeated_rows=repeated_rows,
        label_conflicts=conflicts, dropped_items=int((~keep).sum()),
    )  # fmt: skip
    return _finish(
        name=f"conllu:{path.stem}", texts=tuple(unique[e] for e in used), labels_M=labels[keep],
        item_example_M=example_M.astype(np.int64), class_names=class_names,
        level="token", item_span_M2=spans_M2[keep], groups_M=tuple(f for f, k in zip(forms, keep) if k),
        source=str(path), duplicates=report.to_dict(), label_notes=notes,
    )  # fmt: skip


def split_items(
    ds: LabelledDataset, *, seed: int, test_fraction: float = 0.25, example_M: np.ndarray | None = None
) -> Bool[np.ndarray, " M"]:
    """bool [M] test membership: whole examples go to one side, so no text leaks across the split.

    Sentence-level data is stratified by label; token-level items of one text have many labels, so
    their texts are split unstratified. Same rule and sub-seed as the audit's own split of activations.
    ``example_M`` overrides the items' examples (texts merged after tokenising).
    """
    strata = ds.labels_M if ds.level == "sentence" else np.zeros(ds.n_items, dtype=np.int64)
    example_M = ds.item_example_M if example_M is None else example_M
    return split_examples(example_M, strata, seed=derive_seed(seed, "split"), test_fraction=test_fraction)


def _align_items(offsets_BT, ds: LabelledDataset, keep: int, shift: int, align: str) -> np.ndarray:
    """int64 [M] token position of each item's first/last overlapping sub-token, -1 if truncated away.

    A token overlaps a word span [s, e) when tok_start < e and tok_end > s, which also catches BPE
    tokens carrying a leading space (' cat' at 3..7 overlaps 'cat' at 4..7); empty tokens never do.
    """
    positions = np.full(ds.n_items, -1, dtype=np.int64)
    for b in np.unique(ds.item_example_M):
        idx = np.flatnonzero(ds.item_example_M == b)
        tok = np.asarray(offsets_BT[b], dtype=np.int64).reshape(-1, 2)
        if tok.shape[0] == 0:
            continue
        span = ds.item_span_M2[idx]
        hit = (tok[None, :, 0] < span[:, 1:2]) & (tok[None, :, 1] > span[:, 0:1])
        hit &= (tok[:, 1] > tok[:, 0])[None, :]
        pos = hit.argmax(1) if align == "first" else tok.shape[0] - 1 - hit[:, ::-1].argmax(1)
        # one token past the limit was tokenised, so a word cut mid-way lands at >= keep here too
        ok = hit.any(1) & (pos < keep)
        positions[idx[ok]] = pos[ok] + shift
    return positions


def tokenize(
    ds: LabelledDataset,
    tokenizer: Any,
    *,
    prepend_bos: bool,
    bos_token_id: int | None,
    max_length: int = 256,
    align: Literal["first", "last"] = "first",
    split_seed: int = 0,
    test_fraction: float = 0.25,
) -> TokenBatch:
    """Tokenise ``ds`` with a Hugging Face fast tokenizer, right-padded, BOS added by hand.

    Texts longer than ``max_length`` tokens keep their first tokens; ``n_truncated`` of the batch counts them.
    """
    shift = int(prepend_bos)
    keep = max_length - shift
    for bad, why in [
        (align not in ("first", "last"), f"align must be 'first' or 'last', got {align!r}"),
        (prepend_bos and bos_token_id is None, "prepend_bos=True needs a bos_token_id; pass one or prepend_bos=False"),
        (keep < 1, f"max_length={max_length} leaves no room for text tokens"),
        (not getattr(tokenizer, "is_fast", False), "tokenize needs a fast tokenizer (it reads character offsets)"),
    ]:
        if bad:
            raise ConfigError(why)
    # one token beyond the limit, so _align_items can tell a word cut mid-way from one that fits
    encode = functools.partial(
        tokenizer, add_special_tokens=False, return_offsets_mapping=True, truncation=True, max_length=keep + 1
    )
    # The tokenizer reads a whole text before truncating it (a 20 MB row took 56 s and 5.5 GB), so each text
    # is first cut to a character budget. No token spans more characters than the longest vocabulary entry
    # (a byte-level entry spells one character per byte: 128 for GPT-2, 81 for SmolLM2), so keep + 2 such
    # entries hold the keep + 1 tokens read here with one token to spare. (Only a single word longer than the
    # spare token, cut mid-way, may be split by BPE differently from the whole word: a truncation either way.)
    budget = (keep + 2) * max(map(len, tokenizer.get_vocab()), default=1)
    enc = encode([text[:budget] for text in ds.texts])
    # A cut text that gives no more than keep tokens lost characters the tokenizer would have used (one whose
    # normaliser drops characters): tokenise it whole, so that the cut never changes the tokens kept.
    if redo := [i for i, text in enumerate(ds.texts) if len(text) > budget and len(enc["input_ids"][i]) <= keep]:
        whole = encode([ds.texts[i] for i in redo])
        for j, i in enumerate(redo):
            enc["input_ids"][i], enc["offset_mapping"][i] = whole["input_ids"][j], whole["offset_mapping"][j]
    ids = [row[:keep] for row in enc["input_ids"]]
    if not prepend_bos and (empty := [i for i, row in enumerate(ids) if not row]):
        raise DataError(
            f"dataset {ds.name!r}: text {empty[0]} ({ds.texts[empty[0]]!r}) tokenises to zero "
            f"tokens ({len(empty)} such texts) and no BOS is prepended; remove them or set prepend_bos"
        )
    if n_cut := sum(len(row) > keep for row in enc["input_ids"]):  # exact: a cut text was re-read if it came short
        logger.info("%s: %d of %d texts truncated to %d tokens", ds.name, n_cut, len(ids), max_length)
    # Texts that tokenise to the same ids (equal once cut to max_length, say) are one model input:
    # one example for every split (see auditkit.duplicates).
    kept_rows, row_example = merge_identical_rows(ids)
    example_M = row_example[ds.item_example_M]
    if n_merged := len(ids) - len(kept_rows):
        logger.info("%s: %d texts have the same token ids as another and join its example", ds.name, n_merged)
    is_test = split_items(ds, seed=split_seed, test_fraction=test_fraction, example_M=example_M)
    if ds.level == "token":
        positions = _align_items(enc["offset_mapping"], ds, keep, shift, align)
        kept = positions >= 0
        if n_lost := int((~kept).sum()):
            logger.info("%s: dropped %d of %d items truncated away", ds.name, n_lost, ds.n_items)
        if not kept.any() or is_test[kept].all() or not is_test[kept].any():
            raise DataError(f"dataset {ds.name!r}: too few items survive max_length={max_length}")
    else:
        positions, kept = np.full(ds.n_items, -1, dtype=np.int64), np.ones(ds.n_items, bool)
    bos = bos_token_id if prepend_bos else None
    ids = [ids[b] for b in kept_rows]
    batch = _batch(ds, tokenizer, ids, bos, positions, kept, is_test, example_M, f"{max_length}|{align}")
    return dataclasses.replace(batch, n_truncated=n_cut)


def _batch(
    ds: LabelledDataset,
    tokenizer: Any,
    ids: list[list[int]],
    bos: int | None,
    positions: np.ndarray,
    kept: np.ndarray,
    is_test: np.ndarray,
    example_M: np.ndarray,
    settings: str,
) -> TokenBatch:
    """Pad the rows on the right, keep the surviving items, and key the batch for caches."""
    pad = next((p for p in (tokenizer.pad_token_id, tokenizer.eos_token_id) if p is not None), 0)
    rows = [([bos] if bos is not None else []) + list(row) for row in ids]
    width = max(map(len, rows))
    tokens_BL = torch.full((len(rows), width), int(pad), dtype=torch.int64)
    mask_BL = torch.zeros((len(rows), width), dtype=torch.bool)
    for b, row in enumerate(rows):
        tokens_BL[b, : len(row)] = torch.tensor(row, dtype=torch.int64)
        mask_BL[b, : len(row)] = True
    special = set(tokenizer.all_special_ids) | ({bos} if bos is not None else set())
    tok_id = f"{tokenizer.name_or_path}|{len(tokenizer)}|{settings}|{bos is not None}|{bos}"
    return TokenBatch(
        tokens_BL=tokens_BL,
        mask_BL=mask_BL,
        labels_M=ds.labels_M[kept],
        item_example_M=example_M[kept],
        item_position_M=positions[kept],
        merged_examples=len(ds.texts) - len(rows),
        is_test_M=is_test[kept],
        class_names=ds.class_names,
        level=ds.level,
        pad_token_id=int(pad),
        has_bos=bos is not None,
        special_token_ids=tuple(sorted(int(s) for s in special)),
        groups_M=None if ds.groups_M is None else tuple(np.asarray(ds.groups_M, dtype=object)[kept]),
        dataset_fingerprint=hashlib.sha256(f"{ds.fingerprint}|{tok_id}".encode()).hexdigest(),
        dataset_name=ds.name,
    )
