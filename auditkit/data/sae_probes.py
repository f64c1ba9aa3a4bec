"""The sae-probes benchmark datasets, read from the installed package's files, never by importing it
(its dependencies pull in xgboost)."""

from __future__ import annotations

import difflib
import functools
import importlib.util
import re
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from auditkit.data.labelled import labelled_dataset
from auditkit.data.tables import read_frame, texts_and_labels
from auditkit.errors import ConfigError, DataError
from auditkit.seeding import derive_seed
from auditkit.types import LabelledDataset

_MAX_CLASSES = 50
"""More distinct targets than this in an unlisted sae-probes file means it is a regression target."""
_KINDS = {"Binary Classification": "binary", "Multiclass Classification": "multiclass", "Continuous Data": "continuous"}
_WANTED = {
    "binary": {"binary"},
    "multiclass": {"multiclass"},
    "classification": {"binary", "multiclass"},
    "all": {"binary", "multiclass", "continuous"},
}


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


def resolve_sae_probes(tag: str) -> pd.Series:
    """The listing row (tag, name, kind, file) of a dataset given by tag or name; an unknown one raises with
    close matches."""
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
    row = resolve_sae_probes(tag)
    if row["kind"] == "continuous":
        raise DataError(
            f"sae-probes dataset {row['tag']!r} has a continuous target; probes here need classes. "
            "Pick one from `auditkit datasets`."
        )
    frame = read_frame(Path(row["file"]))
    texts, values = texts_and_labels(frame, "prompt", "target", row["file"])
    sub_seed = derive_seed(seed, "sae-probes-subsample", row["tag"])
    name = f"sae-probes:{row['tag']}"
    return labelled_dataset(
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
