"""What every audit method is: a typed registry entry, the context its runner gets, what it returns.

A method (``probe``, ``sae``, ``pursuit``) is one :class:`Method` in :data:`auditkit.audit.registry.METHODS`:
its name, the controls it can run against and runs by default, its runner, and its report section and
figures. Adding a method touches its own files and that one registry line (``docs/development.md``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from auditkit.audit.arms import Arm, ArmPlan, build_arms
from auditkit.audit.config import AuditConfig
from auditkit.models import LoadedModel
from auditkit.types import LabelledDataset, TokenBatch

if TYPE_CHECKING:
    from auditkit.audit.result import AuditResult


@dataclass(frozen=True)
class MethodOutput:
    """What a method's runner returns."""

    rows: pd.DataFrame
    """Tidy rows: method, control, seed, metric, value (and optional outcome, degenerate)."""
    info: dict[str, Any]
    """Hyper-parameters, complexity and anything its report section shows (JSON-able)."""
    headline: tuple[str, ...] = ("accuracy",)
    """Metrics whose verdicts open the report."""
    directions: Mapping[str, int] = field(default_factory=dict)
    """Metrics where higher is not better: -1 lower is better, 0 descriptive (every other metric is +1);
    see :data:`auditkit.metrics.selectivity.Direction`."""
    ceilings: Mapping[str, float] = field(default_factory=dict)
    """Best attainable value of metrics beyond the classification ones, for the normalised selectivity."""
    targets: Mapping[str, float] = field(default_factory=dict)
    """Metrics scored by their distance to an ideal value that an arm can overshoot (a splice that lowers
    the loss below the clean model's is no more faithful than one that matches it): see
    :func:`auditkit.metrics.selectivity.selectivity_table`."""
    descriptive: tuple[tuple[str, str], ...] = ()
    """(metric, control) pairs whose control value is fixed by how that control is built, so a difference says
    nothing about the method: shown without a verdict (``descriptive``)."""


@dataclass
class MethodContext:
    """What every method runner gets: the loaded model and data, the arm plan, shared timings."""

    cfg: AuditConfig
    loaded: LoadedModel
    dataset: LabelledDataset
    batch: TokenBatch
    plan: ArmPlan
    """The labelled-position arm plan (its ``controls`` are every control of the audit)."""
    timings: dict[str, float]
    _arms: list[Arm] | None = None

    def arms(self) -> list[Arm]:
        """The labelled-position arms of every control (extracted on first call, then shared)."""
        if self._arms is None:
            t = time.perf_counter()
            self._arms = build_arms(self.plan, self.timings)
            self.timings["extract_s"] = self.timings.get("extract_s", 0.0) + time.perf_counter() - t
        return self._arms

    def controls_for(self, applicable: tuple[str, ...]) -> tuple[str, ...]:
        """The audit's controls that a method applies to (its :attr:`Method.controls`)."""
        return tuple(c for c in self.plan.controls if c in applicable)


@dataclass(frozen=True)
class Method:
    """One audit method, registered once in :data:`auditkit.audit.registry.METHODS`."""

    name: str
    """Its ``--methods`` name, and the prefix of its rows' ``method`` column."""
    controls: Callable[[], tuple[str, ...]]
    """Controls it can run against, read from the control registry when called (so a control registered later is
    seen); a control asked for but not listed is skipped for it (and the report says so)."""
    default_controls: Callable[[], tuple[str, ...]]
    """Controls it runs when none are asked for (read like :attr:`controls`)."""
    runner: Callable[[MethodContext], MethodOutput]
    """Runs it on every arm: ``runner(ctx) -> MethodOutput``."""
    section: Callable[[AuditResult], list[str]] | None = None
    """Its report section (markdown lines); None gives the generic one (selectivity tables by control)."""
    figures: Callable[[AuditResult, Path], None] | None = None
    """Writes its own figures into the report folder (its section links them)."""
    figure_files: tuple[str, ...] = ()
    """The names of the files ``figures`` may write (figures, and tables derived from the saved ones, rewritten by
    a re-render): an earlier report's copies are auditkit's, replaced by a new audit, while any other file found
    in that folder is the user's and carried over."""
