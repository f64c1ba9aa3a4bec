"""The command lines that rerun a result, derived from the flags' one declaration (:mod:`auditkit.cli.flags`).

Every report prints one (``## Reproduce``); it must parse back to the same configuration
(``tests/integration/test_outputs.py`` round-trips it through the CLI).
"""

from __future__ import annotations

from pathlib import Path

from auditkit.cli.declare import reproduce_options
from auditkit.cli.flags import audit_flags, sweep_flags

from auditkit.audit.config import AuditConfig
from auditkit.shell import command_line
from auditkit.sweep.config import SweepConfig


def reproduce_command(cfg: AuditConfig, out: Path | str) -> str:
    """The ``auditkit audit`` command line that reruns ``cfg`` (quoted by :func:`auditkit.shell.command_line`)."""
    return command_line(["auditkit", "audit"], reproduce_options(audit_flags(), cfg, cfg, {"out": Path(out)}))


def sweep_command(cfg: SweepConfig, out: Path | str) -> str:
    """The ``auditkit sweep`` command line that reruns ``cfg``."""
    return command_line(["auditkit", "sweep"], reproduce_options(sweep_flags(), cfg, cfg.audit, {"out": Path(out)}))
