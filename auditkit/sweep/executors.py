"""Executors: what runs a sweep's cells, and where. The default is local and serial.

An executor takes the plan (:func:`auditkit.sweep.cells.plan_cells`: cells with explicit dependencies) and
returns one :class:`Outcome` per cell, named by the cell. Every executor runs a cell through the same
:class:`auditkit.sweep.cells.CellRunner`, so where a cell ran never changes its rows; the driver merges
them in the plan's order, never in the order they finished.

- :class:`LocalExecutor`: this process, in plan order (today's sweep: each model variant resident once).
- :class:`auditkit.sweep.ray_executor.RayExecutor`: actors on a Ray cluster (``pip install 'auditkit[ray]'``).

A cell that fails is one :class:`Outcome` with a one-line error naming it; cells that depend on it are
skipped with a line naming the cell they waited for; every other cell still runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from auditkit.errors import ConfigError
from auditkit.sweep.cells import Cell, CellRunner, SavedCell

EXECUTORS = ("local", "ray")
"""``--executor`` choices."""


@dataclass(frozen=True, kw_only=True)
class ExecutorOptions:
    """Where and how the cells run (never what they compute: no option here changes a result)."""

    executor: str = "local"
    """``local`` (this process, serial) or ``ray`` (actors on a Ray cluster)."""
    ray_address: str | None = None
    """``auto`` (the cluster this machine belongs to) or ``HOST:PORT``; None starts a Ray instance on this machine."""
    num_cpus: float = 1.0
    """CPUs each Ray actor reserves; its torch thread count is this, rounded down (at least 1)."""
    num_gpus: float = 0.0
    """GPUs each Ray actor reserves (use with ``--device cuda``)."""
    workers: int | None = None
    """Ray actors; None: as many as the cluster's CPUs (and GPUs, when asked for) allow."""
    max_restarts: int = 3
    """Times Ray restarts an actor whose process died (its model is loaded again from the shared cache)."""
    max_task_retries: int = 3
    """Times Ray resubmits a cell whose actor died while running it."""

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise ConfigError(f"executor {self.executor!r} is unknown: use one of {', '.join(EXECUTORS)}")
        if self.executor != "ray":
            for flag, value in (("--ray-address", self.ray_address), ("--ray-workers", self.workers)):
                if value is not None:
                    raise ConfigError(f"{flag} applies to the Ray executor: add --executor ray, or drop {flag}")
        if not (math.isfinite(self.num_cpus) and self.num_cpus > 0) or not (
            math.isfinite(self.num_gpus) and self.num_gpus >= 0
        ):
            raise ConfigError(
                f"--ray-cpus must be > 0 and --ray-gpus >= 0, got {self.num_cpus} and {self.num_gpus}: e.g. --ray-cpus 1"
            )
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"--ray-workers must be >= 1, got {self.workers}")
        if self.max_restarts < 0 or self.max_task_retries < 0:
            raise ConfigError("max_restarts and max_task_retries must be >= 0")


@dataclass(frozen=True)
class Outcome:
    """What became of one cell: its timings and (audit cells) its saved result, or a one-line error."""

    cell: Cell
    timings: dict[str, float]
    saved: SavedCell | None = None
    error: str | None = None


OnDone = Callable[[Outcome], None]
"""Called once per cell, in this process, as it finishes (progress bars, logs)."""


@runtime_checkable
class Executor(Protocol):
    """Runs every cell of a plan; returns their outcomes by cell name."""

    def run(self, cells: list[Cell], on_done: OnDone) -> dict[str, Outcome]: ...


def error_line(exc: BaseException) -> str:
    """``Type: first line of the message``: one line, whatever the exception."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else '(no message)'}"


def blocked_by(cell: Cell, outcomes: dict[str, Outcome]) -> str | None:
    """The first dependency of ``cell`` that failed, or None."""
    return next((d for d in cell.deps if d in outcomes and outcomes[d].error is not None), None)


def skipped(cell: Cell, dep: str) -> Outcome:
    return Outcome(cell, {}, error=f"skipped: it needs {dep}, which failed")


class LocalExecutor:
    """Every cell in this process, in plan order, through one :class:`CellRunner`."""

    def __init__(self, runner: CellRunner, *, fail_fast: bool = False) -> None:
        self.runner = runner
        self.fail_fast = fail_fast  # raise a failing cell's own error at once (a single audit: nothing can go on)

    def run(self, cells: list[Cell], on_done: OnDone) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        for cell in cells:
            if dep := blocked_by(cell, outcomes):
                outcome = skipped(cell, dep)
            else:
                try:
                    timings, saved = self.runner.run(cell)
                    outcome = Outcome(cell, timings, saved)
                except Exception as exc:  # any cell's failure is reported as its one line; the others go on
                    if self.fail_fast:
                        self.runner.release()
                        raise
                    outcome = Outcome(cell, {}, error=error_line(exc))
            outcomes[cell.name] = outcome
            on_done(outcome)
        self.runner.release()
        return outcomes


def merge_timings(into: dict[str, float], more: dict[str, Any]) -> None:
    """Add per-cell timings (seconds) into the sweep's."""
    for key, value in more.items():
        into[key] = into.get(key, 0.0) + float(value)
