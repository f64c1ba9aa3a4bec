"""A sweep as a plan of cells with explicit dependencies, and the one code path that runs a cell.

Two kinds of cell:

- **extract** (model variant, dataset): every arm of the dataset that this model variant reads, at every
  hook, into the activation cache (:func:`auditkit.audit.arms.prefetch_hooks`). The variant is the trained
  model (its real arm and token-control arms) or one weight-control model (one control, one seed).
- **audit** (dataset, hook): the ordinary audit of that cell (:func:`auditkit.audit.run.run_audit`), all of
  whose arms come from the cache; it depends on every extract cell of its dataset. Its rows are saved
  under ``<cache>/sweep-cells/`` (written atomically) and read back, so a resumed sweep and a fresh one
  read the same bytes.

:func:`plan_cells` lists them in the order a single process runs them (each model variant resident once);
:class:`CellRunner` runs any one of them, in this process or in a worker of another machine
(:mod:`auditkit.sweep.executors`). Nothing here depends on where a cell runs, so the results do not either.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from auditkit.audit import run as audit_run
from auditkit.audit.arms import prefetch_hooks
from auditkit.audit.config import AuditConfig
from auditkit.audit.run import Prepared, prepare_audit
from auditkit.controls import TOKEN_CONTROLS, WEIGHT_CONTROLS
from auditkit.models import LoadedModel, default_cache_dir, load_model
from auditkit.sweep.config import SweepConfig
from auditkit.types import REAL

CELL_FORMAT = 2
"""Version of a saved cell's files; a saved cell of another version is recomputed."""
TRAINED = "trained"
"""The variant name of the trained model (a weight-control variant is ``control@seed``)."""
FAULT_ENV = "AUDITKIT_TEST_FAULT"
"""Test hook: JSON ``{"cell": NAME, "mode": "raise"|"exit", "marker": PATH}`` makes the worker that starts
cell NAME raise, or (``exit``) end its process abruptly the first time (PATH records that it did), so the
tests can fail one cell or kill one worker at a chosen point. Unset in normal use."""


@dataclass(frozen=True)
class Cell:
    """One unit of work of a sweep."""

    kind: Literal["extract", "audit"]
    dataset: str
    variant: str = TRAINED
    """Model variant an extract cell reads with: ``trained`` or ``control@seed``."""
    hooks: tuple[str, ...] = ()
    """An extract cell's hooks (all it reads in one pass); an audit cell's one hook."""
    deps: tuple[str, ...] = field(default=(), compare=False)
    """Names of the cells that must finish first."""

    @property
    def name(self) -> str:
        """One line naming the cell: ``extract trained x DATASET`` or ``DATASET x HOOK``."""
        if self.kind == "extract":
            return f"extract {self.variant} x {self.dataset}"
        return f"{self.dataset} x {self.hooks[0]}"


def variant_name(control: str, seed: int) -> str:
    return f"{control}@{seed}"


def plan_cells(
    todo: list[tuple[str, str]],
    datasets: list[str],
    hooks: list[str],
    controls: tuple[str, ...],
    seeds: tuple[int, ...],
) -> list[Cell]:
    """The cells that compute the (dataset, hook) pairs of ``todo``, dependencies first, in the order one process
    runs them: the trained model reads every dataset, then each weight-control model (one per control and seed)
    reads every dataset, then the audit cells in dataset-major order. ``datasets`` and ``hooks`` give the order."""
    if not todo:
        return []
    todo_d = sorted({d for d, _ in todo}, key=datasets.index)
    todo_h = tuple(sorted({h for _, h in todo}, key=hooks.index))
    weight = [c for c in controls if c in WEIGHT_CONTROLS]  # label controls and SAE baselines extract nothing
    variants = [TRAINED, *(variant_name(c, s) for c in weight for s in seeds)]
    extract = [Cell("extract", d, v, todo_h) for v in variants for d in todo_d]
    audit = [
        Cell("audit", d, hooks=(h,), deps=tuple(c.name for c in extract if c.dataset == d))
        for d, h in sorted(todo, key=lambda dh: (datasets.index(dh[0]), hooks.index(dh[1])))
    ]
    return extract + audit


def cell_config(cfg: SweepConfig, dataset: str, hook: str) -> AuditConfig:
    """The audit of one cell."""
    return dataclasses.replace(cfg.audit, dataset=dataset, hook=hook, progress=False)  # the sweep shows its own bars


@dataclass(frozen=True)
class SavedCell:
    """An audit cell's result as saved: its rows, its selectivity table, and what it reports about its dataset."""

    rows: pd.DataFrame
    selectivity: pd.DataFrame
    info: dict[str, Any]


class CellRunner:
    """Runs cells of one sweep in one process, keeping the trained model and at most one weight-control model.

    ``loaded`` (the trained model) and ``prepared`` (each dataset's audit inputs) are reused when given, as
    the local executor does; a remote worker builds its own from ``cfg`` on first use.
    """

    def __init__(
        self, cfg: SweepConfig, *, loaded: LoadedModel | None = None, prepared: dict[str, Prepared] | None = None
    ) -> None:
        self.cfg = cfg
        self._loaded = loaded
        self._prepared = dict(prepared or {})
        self._models: dict[tuple[str, int], Any] = {}
        self._variant: str | None = None

    @property
    def loaded(self) -> LoadedModel:
        if self._loaded is None:
            self._loaded = load_model(self.cfg.audit.model)
        return self._loaded

    def run(self, cell: Cell) -> tuple[dict[str, float], SavedCell | None]:
        """Run ``cell``: its timings, and an audit cell's saved result."""
        _injected_fault(cell)
        timings: dict[str, float] = {}
        t = time.perf_counter()
        if cell.kind == "extract":
            self._extract(cell, timings)
            return timings, None
        self._models.clear()  # no weight-control model is needed past extraction
        self._variant = None
        saved = run_audit_cell(self.cfg, cell.dataset, cell.hooks[0], self.loaded)
        timings["cells_s"] = time.perf_counter() - t
        return timings, saved

    def _extract(self, cell: Cell, timings: dict[str, float]) -> None:
        if cell.variant != self._variant:
            self._models.clear()  # the previous variant is done: at most one reinitialised model resident
            self._variant = cell.variant
        if cell.dataset not in self._prepared:
            cfg = cell_config(self.cfg, cell.dataset, cell.hooks[0])
            self._prepared[cell.dataset] = prepare_audit(cfg, self.loaded, {})
        prep = self._prepared[cell.dataset]
        plan = dataclasses.replace(prep.plan, models=self._models)
        t = time.perf_counter()
        if cell.variant == TRAINED:
            prefetch_hooks(plan, list(cell.hooks), timings, controls=(REAL, *(c for c in prep.controls if c in TOKEN_CONTROLS)))  # fmt: skip
        else:
            control, _, seed = cell.variant.rpartition("@")
            prefetch_hooks(
                dataclasses.replace(plan, seeds=(int(seed),)), list(cell.hooks), timings, controls=(control,)
            )
        timings["extract_s"] = time.perf_counter() - t


def run_audit_cell(cfg: SweepConfig, dataset: str, hook: str, loaded: LoadedModel) -> SavedCell:
    """The audit of one (dataset, hook) cell, saved under the cache folder and read back as a resumed sweep reads it."""
    cells_dir = cells_folder(cfg)
    # Looked up on its module at call time, not bound at import: whoever replaces run_audit (a test) replaces it here.
    result = audit_run.run_audit(cell_config(cfg, dataset, hook), loaded=loaded)
    save_cell(cells_dir, cfg, dataset, hook, result.rows, result.selectivity, result.dataset)
    saved = load_cell(cells_dir, cfg, dataset, hook)
    if saved is None:
        raise OSError(f"the saved cell {dataset} x {hook} cannot be read back from {cells_dir}")
    return saved


def cells_folder(cfg: SweepConfig) -> Path:
    return Path(cfg.audit.model.cache_dir or default_cache_dir()) / "sweep-cells"


def _injected_fault(cell: Cell) -> None:
    """The test hook of :data:`FAULT_ENV` (does nothing when it is unset or names another cell)."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    fault = json.loads(spec)
    if fault.get("cell") != cell.name:
        return
    if fault.get("mode") == "exit":
        marker = Path(fault["marker"])
        if not marker.exists():
            marker.write_text(f"killed {cell.name}\n")
            os._exit(1)  # the worker process dies mid-cell, as on a lost machine
        return
    raise RuntimeError(f"injected fault ({FAULT_ENV})")


# ----------------------------------------------------------------------------- saved cells


def _cell_dir(cells_dir: Path, cfg: SweepConfig, dataset: str, hook: str) -> Path:
    audit = dataclasses.replace(cell_config(cfg, dataset, hook), progress=True)
    key = json.dumps({"format": CELL_FORMAT, "audit": _jsonable(audit)}, sort_keys=True, default=str)
    return cells_dir / hashlib.sha256(key.encode()).hexdigest()[:24]


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def load_cell(cells_dir: Path, cfg: SweepConfig, dataset: str, hook: str) -> SavedCell | None:
    """A finished cell saved by this or an earlier run, or None."""
    path = _cell_dir(cells_dir, cfg, dataset, hook)
    try:
        info = json.loads((path / "dataset.json").read_text())
        return SavedCell(pd.read_csv(path / "rows.csv"), pd.read_csv(path / "selectivity.csv", keep_default_na=False,
                                                                     na_values=[""]), info)  # fmt: skip
    except (OSError, ValueError):
        return None


def save_cell(cells_dir: Path, cfg: SweepConfig, dataset: str, hook: str, rows, selectivity, info) -> None:
    """Write a finished cell atomically (a temporary sibling renamed into place): a killed sweep leaves whole
    cells or none, and two workers finishing the same cell leave one."""
    path = _cell_dir(cells_dir, cfg, dataset, hook)
    cells_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".cell-", dir=cells_dir))
    try:
        rows.to_csv(tmp / "rows.csv", index=False)
        selectivity.to_csv(tmp / "selectivity.csv", index=False)
        (tmp / "dataset.json").write_text(json.dumps(info, default=str))
        if not path.exists():
            try:
                os.replace(tmp, path)
            except OSError:  # another worker placed the same cell first (a retried task): keep theirs
                if not path.exists():
                    raise
    finally:
        if tmp.exists():
            for f in tmp.iterdir():
                f.unlink()
            tmp.rmdir()
