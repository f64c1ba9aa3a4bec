"""Local tables (csv, tsv, jsonl, json, parquet), ``datasets`` sources and in-memory lists."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from auditkit.errors import DataError, HubUnreachableError, shorten
from auditkit.seeding import derive_seed
from auditkit.types import LabelledDataset

logger = logging.getLogger(__name__)

from auditkit.data.labelled import labelled_dataset

_TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")


def read_frame(path: Path) -> pd.DataFrame:
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


def texts_and_labels(frame: pd.DataFrame, text_col: str, label_col: str, source: str) -> tuple[tuple[str, ...], list]:
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
        frame = read_frame(path)
    else:
        frame, names = _load_hf(str(source), split)
    texts, values = texts_and_labels(frame, text_column, label_column, str(source))
    name, sub_seed = f"table:{path.stem if path.suffix else source}", derive_seed(seed, "table-subsample", str(source))
    return labelled_dataset(
        name,
        texts,
        values,
        source=str(source),
        max_examples=max_examples,
        seed=sub_seed,
        names=names.get(label_column),
        duplicates=duplicates,
    )


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
    return labelled_dataset(
        name, tuple(map(str, texts)), list(labels), source="memory", duplicates=duplicates, encoded=encoded
    )
