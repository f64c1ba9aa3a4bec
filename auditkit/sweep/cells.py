"""A sweep as a plan of cells with explicit dependencies, and the one code path that runs a cell.

Two kinds of cell:

- **extract** (model variant, dataset): every arm of the dataset that this model variant reads, at every
  hook, into the activation cache (:func:`auditkit.audit.arms.prefetch_hooks`). The variant is the trained
  model (its real arm and token-control arms) or one weight-control model (one control, one seed).
- **audit** (dataset, hook): the ordinary audit of that cell (:func:`auditkit.audit.run.run_audit`), all of
  whose arms come from the cache; it depends on every extract cell of its dataset. Its rows are saved
  under ``<cache>/sweep-cells/`` (:mod:`auditkit.sweep.store`: keyed by the config, the data and the weights,
  written atomically, checksummed) and read back, so a resumed sweep and a fresh one read the same bytes.

:func:`plan_cells` lists them in the order a single process runs them (each model variant resident once);
:class:`CellRunner` runs any one of them, in this process or in a worker of another machine
(:mod:`auditkit.sweep.executors`). Nothing here depends on where a cell runs, so the results do not either.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from auditkit.audit import run as audit_run
from auditkit.audit.arms import prefetch_hooks
from auditkit.audit.config import AuditConfig
from auditkit.audit.run import Prepared, prepare_audit
from auditkit.controls import registry
from auditkit.errors import CacheError
from auditkit.models import LoadedModel, default_cache_dir, load_model
from auditkit.sweep.config import SweepConfig
from auditkit.sweep.store import CellStore, Inputs, SavedCell, cell_inputs
from auditkit.types import REAL

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
    inputs: Inputs = field(default=(), compare=False)
    """An audit cell's data fingerprint and weights identity as the driver found them
    (:func:`auditkit.sweep.store.cell_inputs`): a result computed from other data or weights is refused, not saved."""

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
    inputs: dict[str, Inputs] | None = None,
) -> list[Cell]:
    """The cells that compute the (dataset, hook) pairs of ``todo``, dependencies first, in the order one process
    runs them: the trained model reads every dataset, then each weight-control model (one per control and seed)
    reads every dataset, then the audit cells in dataset-major order. ``datasets`` and ``hooks`` give the order;
    ``inputs`` (per dataset, :func:`auditkit.sweep.store.cell_inputs`) travels with each audit cell."""
    if not todo:
        return []
    inputs = inputs or {}
    todo_d = sorted({d for d, _ in todo}, key=datasets.index)
    todo_h = tuple(sorted({h for _, h in todo}, key=hooks.index))
    # label controls, lexical ones and SAE baselines extract nothing
    weight = [c for c in controls if registry.stage_of(c) == "weight"]
    variants = [TRAINED, *(variant_name(c, s) for c in weight for s in seeds)]
    extract = [Cell("extract", d, v, todo_h) for v in variants for d in todo_d]
    audit = [
        Cell("audit", d, hooks=(h,), deps=tuple(c.name for c in extract if c.dataset == d), inputs=inputs.get(d, ()))
        for d, h in sorted(todo, key=lambda dh: (datasets.index(dh[0]), hooks.index(dh[1])))
    ]
    return extract + audit


def cell_config(cfg: SweepConfig, dataset: str, hook: str) -> AuditConfig:
    """The audit of one cell."""
    return dataclasses.replace(cfg.audit, dataset=dataset, hook=hook, progress=False)  # the sweep shows its own bars


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
        self.release()  # no weight-control model is needed past extraction
        saved = run_audit_cell(self.cfg, cell.dataset, cell.hooks[0], self.loaded, planned=cell.inputs or None)
        timings["cells_s"] = time.perf_counter() - t
        return timings, saved

    def release(self) -> None:
        """Drop the weight-control model it holds (the trained model and the prepared data stay)."""
        self._models.clear()
        self._variant = None

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
            tokens = (c for c in prep.controls if registry.stage_of(c) == "token")
            prefetch_hooks(plan, list(cell.hooks), timings, controls=(REAL, *tokens))
        else:
            control, _, seed = cell.variant.rpartition("@")
            prefetch_hooks(
                dataclasses.replace(plan, seeds=(int(seed),)), list(cell.hooks), timings, controls=(control,)
            )
        timings["extract_s"] = time.perf_counter() - t


def run_audit_cell(
    cfg: SweepConfig, dataset: str, hook: str, loaded: LoadedModel, *, planned: Inputs | None = None
) -> SavedCell:
    """The audit of one (dataset, hook) cell, saved under the cache folder and read back as a resumed sweep reads it.

    It is saved under the data and weights it was computed from; when they are not those ``planned`` (the data or
    the weights changed on disk while the sweep ran), :class:`CacheError` is raised and nothing is saved."""
    store = cell_store(cfg)
    audit = cell_config(cfg, dataset, hook)
    # Looked up on its module at call time, not bound at import: whoever replaces run_audit (a test) replaces it here.
    result = audit_run.run_audit(audit, loaded=loaded)
    inputs = cell_inputs(result.dataset.fingerprint, loaded.provenance)
    if planned is not None and inputs != planned:
        changed = " and ".join(k for (k, v), (_, w) in zip(inputs, planned) if v != w) or "inputs"
        raise CacheError(
            f"the {changed} of cell {dataset} x {hook} changed on disk while the sweep ran: rerun the sweep"
        )
    store.save(audit, inputs, result.rows, result.selectivity, result.dataset.to_dict())
    saved = store.load(audit, inputs)
    if saved is None:
        raise CacheError(f"the saved cell {dataset} x {hook} cannot be read back from {store.root}")
    return saved


def cell_store(cfg: SweepConfig) -> CellStore:
    return CellStore(Path(cfg.audit.model.cache_dir or default_cache_dir()))


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
