"""Finished audit cells of sweeps, on disk, keyed by everything that made them and verified on every read.

Layout under ``<cache>/sweep-cells/``::

    <key>/                    a finished cell: rows.csv, selectivity.csv, dataset.json, and meta.json (the
                              request it answers and the SHA-256 of each of those three files)
    .cell-*/                  a cell being written (renamed into place in one step)
    <key>.corrupt-<time>      a cell that failed its check, moved aside for inspection

``<key>`` is the SHA-256 of the request: the cell format, the cell's audit config (with the prediction rule of the
random-model controls when the cell runs one: a cell scored before that rule is recomputed), the fingerprint of the data
its dataset spec loaded to (:func:`auditkit.data.labelled.fingerprint`: texts, labels, placement) and the
identity of the weights (:meth:`auditkit.types.ModelProvenance.cache_token`, as the activation cache keys them:
a local folder by the SHA-256 of its files). No name read from a file or the command line becomes part of a
path here: a folder is named by its hash alone. So a table whose labels were edited, or a folder whose weights
were overwritten, is a new request, and its cells are recomputed, while every other cell is still read.

A cell is read only after its meta.json names this very request and each file matches its checksum: a cell
edited by hand, truncated, or copied under another cell's name is moved aside (renamed ``*.corrupt-<time>``,
never deleted, one warning naming it, as :mod:`auditkit.cache` does for activations) and recomputed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.audit.config import AuditConfig
from auditkit.audit.probe import C_CHOICE_RULE
from auditkit.cache import move_aside
from auditkit.controls import registry
from auditkit.errors import CacheError
from auditkit.metrics.selectivity import PREDICTION_RULE
from auditkit.types import ModelProvenance

CELL_FORMAT = 3
"""Version of a saved cell's files, part of every key: a saved cell of another version is never read (2: keyed by
the config alone, no checksums; 3: keyed by the data and weights too, every file checksummed in meta.json)."""
FOLDER = "sweep-cells"
ROWS, SELECTIVITY, INFO, META = "rows.csv", "selectivity.csv", "dataset.json", "meta.json"
FILES = (ROWS, SELECTIVITY, INFO)
"""The files of a saved cell whose checksums its meta.json records."""
Inputs = tuple[tuple[str, str], ...]
"""What a cell read besides its config (:func:`cell_inputs`): pairs, so that a cell carrying them stays hashable."""


@dataclass(frozen=True)
class SavedCell:
    """An audit cell's result as saved: its rows, its selectivity table, and what it reports about its dataset."""

    rows: pd.DataFrame
    selectivity: pd.DataFrame
    info: dict[str, Any]


def cell_inputs(dataset_fingerprint: str, provenance: ModelProvenance) -> Inputs:
    """What a cell read besides its config: the data (its fingerprint) and the weights (their cache token)."""
    return (("data", dataset_fingerprint), ("model", provenance.cache_token()))


class _Invalid(Exception):
    """A saved cell failed its check (internal: always turned into a move-aside and a recompute)."""


class CellStore:
    """The saved cells under one cache root."""

    def __init__(self, cache_root: Path) -> None:
        self.root = Path(cache_root) / FOLDER

    def request(self, audit: AuditConfig, inputs: Inputs) -> dict[str, Any]:
        """Everything a cell's result depends on, as canonical JSON values (what meta.json records)."""
        audit = dataclasses.replace(audit, progress=True)  # how progress is shown changes no number
        request = {"format": CELL_FORMAT, "audit": _jsonable(audit), "inputs": dict(inputs)}
        if audit.controls is None or any(registry.is_random_model(c) for c in audit.controls):
            request["prediction_rule"] = PREDICTION_RULE  # scored with it: a cell scored before is not read back
        if audit.probe_c_grid:
            request["c_choice_rule"] = C_CHOICE_RULE  # fitted with it: a cell whose Cs were chosen otherwise is not
        return json.loads(json.dumps(request, sort_keys=True, default=str))

    def path(self, request: dict[str, Any]) -> Path:
        """The folder of the cell answering ``request``: named by a hash, never by a name it holds."""
        canonical = json.dumps(request, sort_keys=True, separators=(",", ":"))
        return self.root / hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def load(self, audit: AuditConfig, inputs: Inputs) -> SavedCell | None:
        """The verified saved cell of ``audit`` on ``inputs``, or None (then it is computed).

        A cell that fails its check is moved aside (one warning) and None is returned."""
        request = self.request(audit, inputs)
        path = self.path(request)
        if not (path.exists() or path.is_symlink()):
            return None
        try:
            return _read_verified(path, request)
        except _Invalid as exc:
            move_aside(path, str(exc), what="saved sweep cell")
            return None

    def save(
        self,
        audit: AuditConfig,
        inputs: Inputs,
        rows: pd.DataFrame,
        selectivity: pd.DataFrame,
        info: dict[str, Any],
    ) -> None:
        """Write a finished cell atomically (a temporary sibling renamed into place): a killed sweep leaves whole
        cells or none, and two workers finishing the same cell leave one."""
        request = self.request(audit, inputs)
        path = self.path(request)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".cell-", dir=self.root))
        try:
            blobs = {
                ROWS: rows.to_csv(index=False).encode("utf-8"),
                SELECTIVITY: selectivity.to_csv(index=False).encode("utf-8"),
                INFO: json.dumps(info, default=str).encode("utf-8"),
            }
            for name, blob in blobs.items():
                (tmp / name).write_bytes(blob)
            meta = {
                "format": CELL_FORMAT,
                "request": request,
                "sha256": {name: hashlib.sha256(blob).hexdigest() for name, blob in blobs.items()},
            }
            (tmp / META).write_text(json.dumps(meta, indent=1, sort_keys=True))
            _place(tmp, path, request)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _place(tmp: Path, path: Path, request: dict[str, Any]) -> None:
    """Rename ``tmp`` to ``path``; whatever is there already is either an equal cell another worker placed first
    (kept) or something that fails the check (moved aside, then replaced)."""
    for _ in range(2):
        if not (path.exists() or path.is_symlink()):
            try:
                os.replace(tmp, path)
                return
            except OSError:
                if not (path.exists() or path.is_symlink()):
                    raise
        try:
            _read_verified(path, request)
            return
        except _Invalid as exc:
            move_aside(path, str(exc), what="saved sweep cell")
    raise CacheError(f"cannot write the saved sweep cell {path}: something keeps recreating it; delete it")


def _read_verified(path: Path, request: dict[str, Any]) -> SavedCell:
    """The cell at ``path``, once its meta.json names ``request`` and every file matches its checksum."""
    if not path.is_dir():
        raise _Invalid("not a folder")
    try:
        meta = json.loads((path / META).read_text())
        blobs = {name: (path / name).read_bytes() for name in FILES}
    except FileNotFoundError as exc:
        raise _Invalid(f"{Path(exc.filename).name} is missing") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _Invalid(f"unreadable: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != CELL_FORMAT or not isinstance(meta.get("sha256"), dict):
        raise _Invalid(f"{META} is not sweep cell format {CELL_FORMAT}")
    if meta.get("request") != request:
        raise _Invalid(f"{META} names another request (other data, weights or config)")
    for name, blob in blobs.items():  # what is checked is exactly what is parsed below
        if hashlib.sha256(blob).hexdigest() != meta["sha256"].get(name):
            raise _Invalid(f"{name} does not match the checksum in {META}")
    try:
        rows = pd.read_csv(io.BytesIO(blobs[ROWS]))
        selectivity = pd.read_csv(io.BytesIO(blobs[SELECTIVITY]), keep_default_na=False, na_values=[""])
        info = json.loads(blobs[INFO])
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Invalid(f"unreadable: {exc}") from exc
    if request["inputs"].get("data") != info.get("fingerprint"):
        raise _Invalid(f"{INFO} reports data of another fingerprint")
    return SavedCell(rows, selectivity, info)


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj
