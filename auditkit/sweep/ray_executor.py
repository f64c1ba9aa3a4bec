"""The Ray executor: a sweep's cells on the actors of a Ray cluster (``pip install 'auditkit[ray]'``).

Each actor is one process holding the trained model, loaded once, and at most one weight-control model at a
time. A weight-control variant (one control, one seed) is claimed by one actor, which builds that model
once and receives every extract cell that needs it (an actor that would otherwise wait joins a variant with
cells left, building it once more); the trained model's extract cells and the audit cells go to whichever
actor is free, an audit cell once every extract cell of its dataset has finished.
Activations go to the activation cache on a filesystem every worker shares (keyed and written atomically,
so two writers of one entry leave one), rows come back to the driver, which merges them in plan order.

A worker lost mid-cell is Ray's to handle: the actor is restarted (``max_restarts``: its constructor loads
the model again) and the cell resubmitted (``max_task_retries``); a cell rerun from the start writes the same
cache entries and the same rows. An actor that is gone for good is replaced, and its cell reported failed.

Ray is imported here only, so ``import auditkit`` and the local executor never need it.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from auditkit.errors import ConfigError
from auditkit.models import default_cache_dir
from auditkit.sweep.cells import FAULT_ENV, TRAINED, Cell, CellRunner
from auditkit.sweep.config import SweepConfig
from auditkit.sweep.executors import ExecutorOptions, OnDone, Outcome, blocked_by, error_line, skipped

try:
    import ray
    from ray.exceptions import RayActorError, RayTaskError
except ImportError:  # the optional extra is not installed: RayExecutor says how to install it
    ray = None

logger = logging.getLogger(__name__)

FORWARDED_ENV = ("AUDITKIT_CACHE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", FAULT_ENV)
"""Environment variables the driver passes on to its actors (the cache root is always set, resolved)."""

CONNECT_TIMEOUT_S = 5.0
"""How long the driver waits for a TCP connection to ``--ray-address HOST:PORT`` before refusing it. Ray itself
retries an address where nothing listens for minutes, logging each retry, and never says it gave up."""


def host_port(address: str) -> tuple[str, int] | None:
    """The host and port of an explicit address (``HOST:PORT``, ``ray://HOST:PORT``, ``[::1]:PORT``); None for
    the names Ray resolves itself (``auto``, ``local``)."""
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rpartition(":")
    if not sep:
        return None
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--ray-address {address!r} is not HOST:PORT (e.g. 127.0.0.1:6379), auto or local")
    return host.removeprefix("[").removesuffix("]"), int(port)


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raise :class:`ConfigError` unless something accepts a TCP connection at ``address`` within ``timeout``
    seconds: ``ray.init`` would wait for minutes on an address where nothing listens."""
    target = host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout):
            pass
    except OSError as exc:  # refused, timed out, unknown host, unreachable network
        raise unreachable(address, exc) from exc


def unreachable(address: str | None, exc: BaseException) -> ConfigError:
    """The one-line error for a cluster that cannot be reached at ``address``."""
    return ConfigError(
        f"cannot reach the Ray cluster at {address!r} ({error_line(exc)}): start one with `ray start --head`,"
        " or leave out --ray-address to run one on this machine"
    )


def check_ray() -> None:
    """Raise :class:`ConfigError` naming the install command when Ray is missing."""
    if ray is None:
        raise ConfigError("--executor ray needs Ray: pip install 'auditkit[ray]' (or use --executor local)")


class _CellActor:
    """The body of one Ray actor: a :class:`CellRunner` in a process of its own."""

    def __init__(self, cfg: SweepConfig, threads: int) -> None:
        torch.set_num_threads(threads)  # the CPUs Ray reserved for this actor, not every core of the node
        self.runner = CellRunner(cfg)
        self.runner.loaded  # noqa: B018 - load the model now, once per actor (and again on a restart)

    def run(self, cell: Cell) -> tuple[dict[str, float], Any]:
        return self.runner.run(cell)


class RayExecutor:
    """Runs cells on Ray actors (see the module docstring)."""

    def __init__(self, cfg: SweepConfig, options: ExecutorOptions) -> None:
        """Connect to the cluster now, before the driver loads anything: an unreachable one is one error line.
        A Ray instance this process already holds (``ray.init`` called by the caller) is used as it is."""
        check_ray()
        self.cfg, self.options = cfg, options
        self._started = not ray.is_initialized()
        if self._started:
            address = options.ray_address
            if address is not None:
                check_reachable(address)
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise unreachable(address, exc) from exc
        # The actors start now: their processes import torch and load the model while the driver loads its own
        # and prepares the datasets, instead of after.
        self._actor_cls = self._actor_class()
        self._threads = max(1, int(options.num_cpus))
        self._actors = [self._actor_cls.remote(cfg, self._threads) for _ in range(self._n_workers())]

    def run(self, cells: list[Cell], on_done: OnDone) -> dict[str, Outcome]:
        try:
            return self._run(cells, on_done)
        finally:
            for actor in self._actors:
                ray.kill(actor)
            if self._started:  # the instance this executor started ends with it
                ray.shutdown()

    def _actor_class(self) -> Any:
        o = self.options
        root = Path(self.cfg.audit.model.cache_dir or default_cache_dir()).expanduser().resolve()
        env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ} | {"AUDITKIT_CACHE": str(root)}
        return ray.remote(_CellActor).options(
            num_cpus=o.num_cpus,
            num_gpus=o.num_gpus,
            max_restarts=o.max_restarts,
            max_task_retries=o.max_task_retries,
            runtime_env={"env_vars": env},
        )

    def _n_workers(self) -> int:
        """The actors to start: ``--ray-workers``, or as many as the cluster holds. More than it holds would leave
        some never scheduled, and the cells sent to them waiting for ever: refused in one line instead."""
        res = ray.cluster_resources()
        n = int(res.get("CPU", 0) // self.options.num_cpus)
        if self.options.num_gpus > 0:
            n = min(n, int(res.get("GPU", 0) // self.options.num_gpus))
        if n < 1 or (self.options.workers or 0) > n:
            asked = f"{self.options.workers or 1} actor(s)"
            raise ConfigError(
                f"the Ray cluster has {res.get('CPU', 0):g} CPUs and {res.get('GPU', 0):g} GPUs, too few for {asked} "
                f"of --ray-cpus {self.options.num_cpus:g} --ray-gpus {self.options.num_gpus:g}: ask for fewer or less"
            )
        return self.options.workers or n

    def _run(self, cells: list[Cell], on_done: OnDone) -> dict[str, Outcome]:
        if not cells:
            return {}
        actor_cls, threads, actors = self._actor_cls, self._threads, self._actors
        pending = list(cells)  # not yet submitted, in plan order
        holds: dict[int, str | None] = {i: None for i in range(len(actors))}  # the weight variant an actor claimed
        claimed: dict[str, set[int]] = {}  # the actors that built each weight variant
        running: dict[Any, tuple[int, Cell]] = {}
        outcomes: dict[str, Outcome] = {}

        def finish(outcome: Outcome) -> None:
            outcomes[outcome.cell.name] = outcome
            on_done(outcome)

        def ready(cell: Cell) -> bool:
            return all(d in outcomes for d in cell.deps)

        def pick(i: int) -> Cell | None:
            """The next cell for actor ``i``: its own variant's cells first, then trained-model extraction, then
            a new weight variant (claimed), then audit cells whose extraction is done; an actor that would
            otherwise wait joins a claimed variant with cells left (building that model once more), so one
            variant's datasets are not a serial tail when actors outnumber variants."""
            extract = [c for c in pending if c.kind == "extract"]
            own = [c for c in extract if c.variant == holds[i]]
            trained = [c for c in extract if c.variant == TRAINED]
            free = [c for c in extract if c.variant != TRAINED and c.variant not in claimed]
            audits = [c for c in pending if c.kind == "audit" and ready(c)]
            left = Counter(c.variant for c in extract)
            join = [c for c in extract if c.variant in claimed and i not in claimed[c.variant] and left[c.variant] > 1]
            for group in (own, trained, free, audits, join):
                if group:
                    cell = group[0]
                    if cell.kind == "extract" and cell.variant != TRAINED:
                        claimed.setdefault(cell.variant, set()).add(i)
                        holds[i] = cell.variant
                    return cell
            return None

        while pending or running:
            for cell in [c for c in pending if ready(c) and blocked_by(c, outcomes)]:
                pending.remove(cell)
                finish(skipped(cell, blocked_by(cell, outcomes)))
            busy = {i for i, _ in running.values()}
            for i in range(len(actors)):
                if i not in busy and (cell := pick(i)) is not None:
                    pending.remove(cell)
                    running[actors[i].run.remote(cell)] = (i, cell)
            if not running:
                if pending:  # nothing can start: a bug in the plan's dependencies, never a silent hang
                    raise RuntimeError(f"no cell can start; waiting: {[c.name for c in pending]}")
                break
            done, _ = ray.wait(list(running), num_returns=1)
            i, cell = running.pop(done[0])
            try:
                timings, saved = ray.get(done[0])
                finish(Outcome(cell, timings, saved))
            except RayTaskError as exc:  # the cell raised: its own error, one line
                finish(Outcome(cell, {}, error=error_line(exc.cause if exc.cause is not None else exc)))
            except RayActorError as exc:  # the actor is gone past its restarts: replace it, report the cell
                finish(Outcome(cell, {}, error=f"its worker died and was not recovered ({error_line(exc)})"))
                actors[i] = actor_cls.remote(self.cfg, threads)
                holds[i] = None
                for owners in claimed.values():
                    owners.discard(i)  # the new actor holds no variant yet
        return outcomes
