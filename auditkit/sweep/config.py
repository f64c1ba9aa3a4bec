"""A sweep's configuration: the audit every cell runs, and the datasets and hooks it runs over."""

from __future__ import annotations

from dataclasses import dataclass, field

from auditkit.audit.config import AuditConfig
from auditkit.errors import ConfigError
from auditkit.extract import check_vector_hook


@dataclass(frozen=True, kw_only=True)
class SweepConfig:
    """Every (dataset, hook) cell is the audit ``audit`` with its ``dataset`` and ``hook`` replaced."""

    audit: AuditConfig = field(default_factory=AuditConfig)
    """The audit of every cell (methods, controls, seeds, probes, sizes); its dataset and hook are ignored."""
    datasets: str = "sae-probes:92_glue_sst2"
    """Datasets: a list, a group or a glob (:func:`auditkit.sweep.plan.resolve_datasets`)."""
    hooks: str = "middle"
    """Hooks: a list, a range or ``all`` (:func:`auditkit.sweep.plan.parse_hooks`)."""

    def __post_init__(self) -> None:
        if not self.audit.use_cache:
            raise ConfigError("a sweep reads every arm from the activation cache: drop --no-cache")
        if self.audit.matrix is not None:
            raise ConfigError("a sweep runs activation audits; audit embedding matrices with `auditkit audit --matrix`")
        for hook in self.hooks.split(","):  # by name, before anything is loaded (as an audit's extraction refuses it)
            check_vector_hook(hook.strip())
