"""Run a sweep: extract every arm at every hook in one pass per arm, then audit each (dataset, hook) cell.

Two phases, so that each model variant is resident once and never twice:

1. **Extraction**, variant by variant: the trained model reads every dataset's real arm and token-control
   arms; then each weight-control model (one per control and seed) is built once, reads every dataset,
   and is dropped before the next is built. Each arm reads all the hooks in one forward pass that stops
   after the deepest (:func:`auditkit.audit.arms.prefetch_hooks`), and each hook is its own cache entry.
2. **Cells**: each (dataset, hook) is an ordinary audit (:func:`auditkit.audit.run.run_audit`) whose arms
   all come from the cache, so its rows, intervals and verdicts are exactly the single audit's. A
   finished cell is saved under the cache folder, so a killed sweep reruns only unfinished cells.

Both phases are cells of one plan (:mod:`auditkit.sweep.cells`) with explicit dependencies, run by an
executor (:mod:`auditkit.sweep.executors`): this process in plan order by default, or the actors of a Ray
cluster. The rows are merged in the plan's order, so the executor never changes ``results.csv``.

A single audit (``auditkit audit``) is a plan of one cell (:func:`run_audit`): its extract cells run through the
same executor, so it too holds one model variant at a time.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from auditkit.audit import run as audit_run
from auditkit.audit.config import AuditConfig
from auditkit.audit.registry import check_methods
from auditkit.audit.result import AuditResult
from auditkit.audit.run import prepare_audit
from auditkit.cache import check_root
from auditkit.errors import AuditkitError, ConfigError
from auditkit.extract import validate_hook
from auditkit.metrics.evidence import add_q_values
from auditkit.models import LoadedModel, default_cache_dir, default_hook, load_model, resolve_device
from auditkit.sweep.cells import CellRunner, cell_config, cell_store, plan_cells
from auditkit.sweep.config import SweepConfig
from auditkit.sweep.executors import Executor, ExecutorOptions, LocalExecutor, Outcome, merge_timings
from auditkit.sweep.plan import layer_of, parse_hooks, resolve_datasets
from auditkit.sweep.store import cell_inputs

logger = logging.getLogger(__name__)


class SweepCellsFailed(AuditkitError):
    """No cell of the sweep finished: there is nothing to report."""


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
    failures: list[str] = field(default_factory=list)
    """One line per cell that failed (``DATASET x HOOK: Error: message``); their rows are missing, the others kept."""
    execution: dict[str, Any] = field(default_factory=dict)
    """Where the cells ran (executor and its options): recorded in run.json, never part of a result."""


def run_sweep(
    cfg: SweepConfig, *, loaded: LoadedModel | None = None, executor: ExecutorOptions | None = None
) -> SweepResult:
    """Run every cell of ``cfg`` (see the module docstring) with ``executor`` (default: local and serial)."""
    options = executor or ExecutorOptions()
    check_methods(cfg.audit.methods)
    resolve_device(cfg.audit.model.device)  # an absent GPU is one error line before anything is loaded
    cache_root = cfg.audit.model.cache_dir or default_cache_dir()
    check_root(cache_root)
    datasets = resolve_datasets(cfg.datasets)
    runner_exec = _executor(cfg, options)  # before any compute: a missing Ray is one error line
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    loaded = loaded or load_model(cfg.audit.model)
    timings["load_model_s"] = time.perf_counter() - t0
    hooks = parse_hooks(cfg.hooks, loaded.model.cfg.n_layers)
    for hook in hooks:  # every name, before any forward pass
        validate_hook(loaded.model, hook)
    prepared = {d: prepare_audit(cell_config(cfg, d, hooks[0]), loaded, timings) for d in datasets}
    # Each dataset's controls are its level's (a sentence-level dataset runs no control task by default): the
    # sweep's are all of them, in the order they first appear.
    controls = tuple(dict.fromkeys(c for p in prepared.values() for c in p.controls))
    # A saved cell is read only for the data and weights found now: an edited table or overwritten weights
    # recompute the cells they feed, and only those.
    store = cell_store(cfg)
    inputs = {d: cell_inputs(p.dataset.fingerprint, loaded.provenance) for d, p in prepared.items()}
    todo = [(d, h) for d in datasets for h in hooks if store.load(cell_config(cfg, d, h), inputs[d]) is None]
    logger.info("sweep: %d datasets x %d hooks, %d cells to compute", len(datasets), len(hooks), len(todo))
    plan = plan_cells(todo, datasets, hooks, controls, cfg.audit.seeds, inputs)
    runner = runner_exec or LocalExecutor(CellRunner(cfg, loaded=loaded, prepared=prepared))
    t = time.perf_counter()
    with tqdm(total=len(plan), desc="sweep cells", unit="cell", disable=not cfg.audit.progress or not plan) as bar:

        def on_done(outcome: Outcome) -> None:
            bar.update()
            if outcome.error is not None:
                logger.warning("cell %s failed: %s", outcome.cell.name, outcome.error)

        outcomes = runner.run(plan, on_done)  # an empty plan too: an executor releases what it holds
    timings["executor_s"] = time.perf_counter() - t
    for outcome in outcomes.values():
        merge_timings(timings, outcome.timings)
    failures = [f"{o.cell.name}: {o.error}" for o in outcomes.values() if o.error is not None]
    rows, sel, cells = [], [], {}
    for dataset in datasets:  # the plan's order, whatever order the cells finished in
        for hook in hooks:
            saved = store.load(cell_config(cfg, dataset, hook), inputs[dataset])
            if saved is None:
                if not any(f.startswith(f"{dataset} x {hook}: ") for f in failures):
                    failures.append(f"{dataset} x {hook}: its saved result was lost or damaged after it ran: rerun")
                continue  # a failed cell: named in failures
            for frame, out in ((saved.rows, rows), (saved.selectivity, sel)):
                out.append(frame.assign(dataset=dataset, hook=hook, layer=layer_of(hook)))
            cells[dataset] = saved.info
    if not rows:
        raise SweepCellsFailed(f"no cell of the sweep finished; {len(failures)} failed, first: {failures[0]}")
    timings["total_s"] = time.perf_counter() - t0
    front = ["dataset", "hook", "layer"]
    all_rows = pd.concat(rows, ignore_index=True)
    all_sel = add_q_values(pd.concat(sel, ignore_index=True))  # one family per metric over the whole sweep
    return SweepResult(
        config=cfg,
        datasets=datasets,
        hooks=hooks,
        rows=all_rows[front + [c for c in all_rows.columns if c not in front]],
        selectivity=all_sel[front + [c for c in all_sel.columns if c not in front]],
        cells=cells,
        controls=controls,
        provenance=loaded.provenance.to_dict(),
        timings=timings,
        failures=failures,
        execution={
            "executor": options.executor,
            "cells_run": len(plan),
            **(
                {"ray_address": options.ray_address, "num_cpus": options.num_cpus, "num_gpus": options.num_gpus}
                if options.executor == "ray"
                else {}
            ),
        },
    )


def run_audit(
    cfg: AuditConfig, *, executor: ExecutorOptions | None = None, loaded: LoadedModel | None = None
) -> AuditResult:
    """One audit as a plan of one cell, the way ``auditkit audit`` runs it: each model variant's arms are an
    extract cell (:func:`auditkit.sweep.cells.plan_cells`: the trained model's, then one per weight control and
    seed), run by ``executor`` (default: this process, serial) into the activation cache, one model variant
    resident at a time, as in a sweep; the audit (:func:`auditkit.audit.run.run_audit`) then reads every arm
    from the cache, so its result is the direct audit's. An audit without the cache (``--no-cache``) or a
    ``--matrix`` audit has no cache to pass arms through: it runs the direct audit (local executor only)."""
    options = executor or ExecutorOptions()
    if not cfg.use_cache or cfg.matrix is not None:
        if options.executor == "local":
            return audit_run.run_audit(cfg, loaded=loaded)
        flag = "--no-cache" if not cfg.use_cache else "--matrix"
        raise ConfigError(
            f"--executor {options.executor} passes activations through the shared cache, which "
            f"{flag} audits do not use: drop {flag} or use --executor local"
        )
    check_methods(cfg.methods)
    resolve_device(cfg.model.device)
    check_root(cfg.model.cache_dir or default_cache_dir())
    sweep_cfg = SweepConfig(audit=cfg, datasets=cfg.dataset, hooks=cfg.hook or "middle")
    remote = _executor(sweep_cfg, options)  # connects to the cluster before anything is loaded
    t0 = time.perf_counter()
    loaded = loaded or load_model(cfg.model)
    load_s = time.perf_counter() - t0
    timings = _extract_cells(cfg, loaded, sweep_cfg, remote)
    result = audit_run.run_audit(cfg, loaded=loaded)
    merge_timings(result.timings, {"load_model_s": load_s, **timings})
    result.timings["total_s"] = time.perf_counter() - t0  # the extract cells included
    return result


def _extract_cells(cfg: AuditConfig, loaded: LoadedModel, sweep_cfg: SweepConfig, remote: Executor | None) -> dict:
    """Run the extract cells of the one-cell plan of ``cfg``; their timings. The local runner (and with it the
    last weight-control model it holds) is dropped on return, before the audit builds its arms."""
    hook = cfg.hook or default_hook(loaded.model.cfg.n_layers)
    validate_hook(loaded.model, hook)
    timings: dict[str, float] = {}
    prep = prepare_audit(dataclasses.replace(cfg, hook=hook), loaded, timings)
    plan = plan_cells([(cfg.dataset, hook)], [cfg.dataset], [hook], prep.controls, cfg.seeds)
    extract = [c for c in plan if c.kind == "extract"]
    # Locally, a failing cell's own error is the audit's (one line, as the direct audit gave it), and each arm's
    # extraction shows its own bar; on a cluster, the cells' bar.
    runner = remote or LocalExecutor(CellRunner(sweep_cfg, loaded=loaded, prepared={cfg.dataset: prep}), fail_fast=True)
    with tqdm(total=len(extract), desc="extract arms", unit="cell", disable=not cfg.progress or not remote) as bar:
        outcomes = runner.run(extract, lambda _: bar.update())
    failed = [f"{o.cell.name}: {o.error}" for o in outcomes.values() if o.error is not None]
    if failed:
        raise SweepCellsFailed(f"{len(failed)} of {len(extract)} extraction cells failed, first: {failed[0]}")
    for outcome in outcomes.values():
        merge_timings(timings, {k: v for k, v in outcome.timings.items() if k.startswith("extract")})
    return {k: v for k, v in timings.items() if k.startswith("extract")}


def _executor(cfg: SweepConfig, options: ExecutorOptions) -> Executor | None:
    """The executor ``options`` names; None for the local one (built once the model is loaded)."""
    if options.executor == "local":
        return None
    from auditkit.sweep.ray_executor import RayExecutor

    return RayExecutor(cfg, options)
