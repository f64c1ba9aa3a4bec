"""What an audit returns: its rows, the selectivity table scored from them, and what produced them."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import pandas as pd

from auditkit.audit.config import AuditConfig
from auditkit.audit.records import DatasetInfo, ExtractionInfo, MethodInfo, ProvenanceInfo
from auditkit.controls import registry
from auditkit.metrics.classification import CEILINGS
from auditkit.metrics.selectivity import selectivity_table


@dataclass(frozen=True, kw_only=True)
class AuditResult:
    """Everything a report needs."""

    config: AuditConfig
    rows: pd.DataFrame
    """Tidy rows: method, control, seed, metric, value."""
    selectivity: pd.DataFrame
    """One row per (method, control, metric); see :func:`auditkit.metrics.selectivity_table`."""
    provenance: ProvenanceInfo
    """Model provenance."""
    dataset: DatasetInfo
    """Dataset name, source, fingerprint, sizes."""
    extraction: ExtractionInfo
    """Hook, positions, rows, cache key."""
    method_info: dict[str, MethodInfo]
    """Per method: its headline metrics, and hyper-parameters, complexity and what its report section needs."""
    controls: tuple[str, ...]
    """The controls that ran."""
    timings: dict[str, float]
    """Seconds per stage."""


def score_rows(
    rows: pd.DataFrame,
    threshold: float,
    *,
    directions: Mapping[str, int] | None = None,
    ceilings: Mapping[str, float] | None = None,
    targets: Mapping[str, float] | None = None,
    descriptive: Collection[tuple[str, str]] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The selectivity table of tidy ``rows``, and the rows to publish (per-example outcomes dropped:
    they serve the interval, :data:`auditkit.metrics.selectivity.INTERVAL_RULE`); ``descriptive`` pairs get no
    verdict (:func:`auditkit.metrics.selectivity.selectivity_table`); the random-model controls
    (:attr:`auditkit.controls.registry.Control.random_model`) get a prediction interval."""
    all_ceilings = {**CEILINGS, **(ceilings or {})}
    selectivity = selectivity_table(
        rows,
        threshold=threshold,
        directions=directions,
        ceilings=all_ceilings,
        targets=targets,
        descriptive=descriptive,
        draw_spread=registry.names(where=lambda c: c.random_model),
    )
    return rows.drop(columns=["outcome"], errors="ignore"), selectivity
