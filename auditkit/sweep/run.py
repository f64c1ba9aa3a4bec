"""Run a sweep: extract every arm at every hook in one pass per arm, then audit each (dataset, hook) cell.

Two phases, so that each model variant is resident once and never twice:

1. **Extraction**, variant by variant: the trained model reads every dataset's real arm and token-control
   arms; then each weight-control model (one per control and seed) is built once, reads every dataset,
   and is dropped before the next is built. Each arm reads all the hooks in one forward pass that stops
   after the deepest (:func:`auditkit.audit.arms.prefetch_hooks`), and each hook is its own cache entry.
2. **Cells**: each (dataset, hook) is an ordinary audit (:func:`auditkit.audit.run.run_audit`) whose arms
   all come from the cache, so its rows, intervals and verdicts are exactly the single audit's. A
   finished cell is saved under the cache folder, so a killed sweep reruns only unfinished cells.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from auditkit.audit.arms import prefetch_hooks
from auditkit.audit.config import AuditConfig
from auditkit.audit.registry import check_methods
from auditkit.audit.run import Prepared, prepare_audit, run_audit
from auditkit.cache import check_root
from auditkit.controls import TOKEN_CONTROLS, WEIGHT_CONTROLS
from auditkit.extract import validate_hook
from auditkit.models import LoadedModel, default_cache_dir, load_model
from auditkit.sweep.config import SweepConfig
from auditkit.sweep.plan import layer_of, parse_hooks, resolve_datasets
from auditkit.types import REAL

logger = logging.getLogger(__name__)

CELL_FORMAT = 2
"""Version of a saved cell's files; a saved cell of another version is recomputed."""


@dataclass(frozen=True)
class SweepResult:
    """Everything the sweep report needs."""

    config: SweepConfig
    datasets: list[str]
    hooks: list[str]
    rows: pd.DataFrame
    """Tidy rows of every cell: dataset, hook, layer, method, control, seed, metric, value."""
    selectivity: pd.DataFrame
    """Each cell's selectivity table with dataset, hook and layer columns."""
    cells: dict[str, dict[str, Any]]
    """Per dataset: what its audits report about it (name, sizes, classes, repeated texts)."""
    controls: tuple[str, ...]
    provenance: dict[str, Any]
    timings: dict[str, float]


def cell_config(cfg: SweepConfig, dataset: str, hook: str) -> AuditConfig:
    """The audit of one cell."""
    return dataclasses.replace(cfg.audit, dataset=dataset, hook=hook, progress=False)  # the sweep shows its own bars


def run_sweep(cfg: SweepConfig, *, loaded: LoadedModel | None = None) -> SweepResult:
    """Run every cell of ``cfg`` (see the module docstring)."""
    check_methods(cfg.audit.methods)
    cache_root = cfg.audit.model.cache_dir or default_cache_dir()
    check_root(cache_root)
    datasets = resolve_datasets(cfg.datasets)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    loaded = loaded or load_model(cfg.audit.model)
    timings["load_model_s"] = time.perf_counter() - t0
    hooks = parse_hooks(cfg.hooks, loaded.model.cfg.n_layers)
    for hook in hooks:  # every name, before any forward pass
        validate_hook(loaded.model, hook)
    prepared = {d: prepare_audit(cell_config(cfg, d, hooks[0]), loaded, timings) for d in datasets}
    controls = next(iter(prepared.values())).controls
    cells_dir = Path(cache_root) / "sweep-cells"
    todo = [(d, h) for d in datasets for h in hooks if _load_cell(cells_dir, cfg, d, h) is None]
    logger.info("sweep: %d datasets x %d hooks, %d cells to compute", len(datasets), len(hooks), len(todo))
    if todo:
        _extract_all(prepared, sorted({h for _, h in todo}, key=hooks.index), sorted({d for d, _ in todo}, key=datasets.index),
                     timings, cfg.audit.progress)  # fmt: skip
    rows, sel, cells = [], [], {}
    t = time.perf_counter()
    with tqdm(total=len(datasets) * len(hooks), desc="sweep cells", unit="cell", disable=not cfg.audit.progress) as bar:
        for dataset in datasets:
            for hook in hooks:
                saved = _load_cell(cells_dir, cfg, dataset, hook)
                if saved is None:
                    result = run_audit(cell_config(cfg, dataset, hook), loaded=loaded)
                    _save_cell(cells_dir, cfg, dataset, hook, result.rows, result.selectivity, result.dataset)
                    saved = _load_cell(cells_dir, cfg, dataset, hook)  # as a resumed sweep would read it
                cell_rows, cell_sel, info = saved
                for frame, out in ((cell_rows, rows), (cell_sel, sel)):
                    out.append(frame.assign(dataset=dataset, hook=hook, layer=layer_of(hook)))
                cells[dataset] = info
                bar.update()
    timings["cells_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0
    front = ["dataset", "hook", "layer"]
    all_rows = pd.concat(rows, ignore_index=True)
    all_sel = pd.concat(sel, ignore_index=True)
    return SweepResult(
        config=cfg, datasets=datasets, hooks=hooks,
        rows=all_rows[front + [c for c in all_rows.columns if c not in front]],
        selectivity=all_sel[front + [c for c in all_sel.columns if c not in front]],
        cells=cells, controls=controls, provenance=loaded.provenance.to_dict(), timings=timings,
    )  # fmt: skip


def _extract_all(
    prepared: dict[str, Prepared], hooks: list[str], datasets: list[str], timings: dict[str, float], progress: bool
) -> None:
    """Phase 1: every arm of every dataset at every hook, one model variant at a time."""
    plans = {d: prepared[d].plan for d in datasets}
    shared: dict[tuple[str, int], Any] = {}
    plans = {d: dataclasses.replace(p, models=shared) for d, p in plans.items()}
    controls = next(iter(prepared.values())).controls
    t = time.perf_counter()
    trained = (REAL, *(c for c in controls if c in TOKEN_CONTROLS))
    for d in tqdm(datasets, desc="extract: trained model", disable=not progress or len(datasets) < 2):
        prefetch_hooks(plans[d], hooks, timings, controls=trained)
    weight = [c for c in controls if c in WEIGHT_CONTROLS]  # label controls and SAE baselines extract nothing
    seeds = next(iter(plans.values())).seeds
    for control in weight:
        for seed in seeds:
            for d in datasets:
                prefetch_hooks(dataclasses.replace(plans[d], seeds=(seed,)), hooks, timings, controls=(control,))
            shared.clear()  # this control's model of this seed is no longer needed: at most one resident
    timings["extract_s"] = time.perf_counter() - t


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


def _load_cell(cells_dir: Path, cfg: SweepConfig, dataset: str, hook: str) -> tuple | None:
    path = _cell_dir(cells_dir, cfg, dataset, hook)
    try:
        info = json.loads((path / "dataset.json").read_text())
        return pd.read_csv(path / "rows.csv"), pd.read_csv(path / "selectivity.csv", keep_default_na=False,
                                                           na_values=[""]), info  # fmt: skip
    except (OSError, ValueError):
        return None


def _save_cell(cells_dir: Path, cfg: SweepConfig, dataset: str, hook: str, rows, selectivity, info) -> None:
    """Write a finished cell atomically (a temporary sibling renamed into place): a killed sweep leaves
    whole cells or none."""
    path = _cell_dir(cells_dir, cfg, dataset, hook)
    cells_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".cell-", dir=cells_dir))
    try:
        rows.to_csv(tmp / "rows.csv", index=False)
        selectivity.to_csv(tmp / "selectivity.csv", index=False)
        (tmp / "dataset.json").write_text(json.dumps(info, default=str))
        if not path.exists():
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            for f in tmp.iterdir():
                f.unlink()
            tmp.rmdir()
