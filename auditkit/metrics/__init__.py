"""Metrics: pure functions from predictions (or result rows) to numbers."""

from auditkit.metrics.classification import classification_metrics
from auditkit.metrics.selectivity import selectivity_table, verdict

__all__ = ["classification_metrics", "selectivity_table", "verdict"]
