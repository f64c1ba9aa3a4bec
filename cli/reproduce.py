"""The command lines that rerun a result: the only place besides :mod:`auditkit.cli.main` that spells flags.

Every report prints one (``## Reproduce``); it must parse back to the same configuration
(``tests/integration/test_outputs.py`` round-trips it through the CLI).
"""

from __future__ import annotations

from pathlib import Path

from auditkit.audit.config import AuditConfig
from auditkit.audit.options import PursuitAuditOptions, SAEAuditOptions
from auditkit.audit.run import resolve_controls, spec_level
from auditkit.data import kinds as dataset_kinds
from auditkit.methods.probes.mdl import DEFAULT_SCHEDULE
from auditkit.shell import Option, command_line, display_path
from auditkit.sweep.config import SweepConfig
from auditkit.sweep.plan import resolve_datasets


def sae_options(opts: SAEAuditOptions) -> list[Option]:
    """The ``auditkit audit`` and ``auditkit sweep`` options that reproduce the ``sae`` method's settings."""
    width = str(opts.width) if opts.width is not None else f"{float(opts.expansion_factor)!r}x"
    return [
        ("--sae-arch", opts.architecture),
        ("--sae-width", width),
        ("--sae-k", opts.k),
        ("--sae-l1", float(opts.l1_coefficient)),
        ("--sae-lr", float(opts.lr)),
        ("--sae-tokens", opts.training_tokens),
        ("--sae-batch-size", opts.batch_size),
        ("--sae-splice-texts", opts.splice_texts),
        ("--sae-load", display_path(opts.load) if opts.load else None),
    ]


def pursuit_options(opts: PursuitAuditOptions) -> list[Option]:
    """The ``auditkit audit`` options that reproduce the ``pursuit`` method's settings."""
    sweep = ("--pursuit-k", opts.ks) if opts.solver in ("omp", "gradient") else ("--pursuit-alphas", opts.alphas)
    return [
        ("--dictionary", opts.dictionary),
        ("--pursuit-solver", opts.solver),
        sweep,
        ("--pursuit-sae", display_path(opts.sae_path) if opts.sae_path else None),
        ("--pursuit-no-center", not opts.center),
    ]


def mdl_options(cfg: AuditConfig) -> list[Option]:
    """``--mdl`` and, when it is not the default, ``--mdl-schedule``."""
    custom = cfg.mdl and cfg.mdl_schedule != DEFAULT_SCHEDULE
    return [("--mdl", cfg.mdl), ("--mdl-schedule", cfg.mdl_schedule if custom else None)]


def device_options(cfg: AuditConfig) -> list[Option]:
    """``--device`` and ``--dtype`` when they are not the defaults (cpu, float32)."""
    m = cfg.model
    return [
        ("--device", m.device if m.device != "cpu" else None),
        ("--dtype", m.dtype if m.dtype != "float32" else None),
    ]


def reproduce_command(cfg: AuditConfig, out: Path | str) -> str:
    """The ``auditkit audit`` command line that reruns ``cfg`` (quoted by :func:`auditkit.shell.command_line`)."""
    path = dataset_kinds.local_path(cfg.dataset)
    dataset = f"{cfg.dataset.partition(':')[0]}:{display_path(path)}" if path else cfg.dataset
    options: list[Option] = [
        ("--model", display_path(cfg.model.name)),
        ("--dataset", dataset),
        ("--revision", cfg.model.revision or None),
        ("--processed", cfg.model.processed),
        ("--gaussian-keep-embeddings", cfg.gaussian_keep_embeddings),
        ("--align", cfg.align if cfg.align != "first" else None),
        *device_options(cfg),
    ]
    if cfg.matrix is not None:
        options += [("--matrix", cfg.matrix), ("--vocab-sample", cfg.vocab_sample)]
    if (kind := dataset_kinds.kind_of(cfg.dataset)) is not None and kind.columns:
        options += [("--text-column", cfg.text_column), ("--label-column", cfg.label_column)]
    options += [("--duplicates", cfg.duplicates if cfg.duplicates != "group" else None)]
    options += [
        ("--hook", cfg.hook or None),
        ("--positions", cfg.positions),
        ("--max-examples", cfg.max_examples if cfg.max_examples is not None else 0),
        ("--max-length", cfg.max_length),
        ("--methods", cfg.methods),
        ("--controls", resolve_controls(cfg, spec_level(cfg.dataset))),
        ("--seeds", cfg.seeds),
        ("--test-fraction", float(cfg.test_fraction)),
        ("--label-draws", cfg.label_draws),
        ("--weight-draws", cfg.weight_draws),
        ("--probe-c", float(cfg.probe_C)),
        ("--probes", cfg.probes),
        *mdl_options(cfg),
        *(sae_options(cfg.sae) if "sae" in cfg.methods else []),
        *(pursuit_options(cfg.pursuit) if "pursuit" in cfg.methods else []),
        ("--out", Path(out)),
    ]
    return command_line(["auditkit", "audit"], options)


def _sweep_controls(cfg: SweepConfig) -> tuple[str, ...] | None:
    """The sweep's controls for its command line: the named ones, else its datasets' level's defaults; None (left
    to the defaults) when its datasets are of both levels, whose defaults differ."""
    levels = {spec_level(d) for d in resolve_datasets(cfg.datasets)}
    if cfg.audit.controls is None and len(levels) > 1:
        return None
    return resolve_controls(cfg.audit, levels.pop() if levels else None)


def sweep_command(cfg: SweepConfig, out: Path | str) -> str:
    """The ``auditkit sweep`` command line that reruns ``cfg``."""
    a = cfg.audit
    options: list[Option] = [
        ("--model", display_path(a.model.name)),
        ("--datasets", cfg.datasets),
        ("--hooks", cfg.hooks),
        ("--revision", a.model.revision or None),
        ("--processed", a.model.processed),
        *device_options(a),
        ("--gaussian-keep-embeddings", a.gaussian_keep_embeddings),
        ("--duplicates", a.duplicates if a.duplicates != "group" else None),
        ("--positions", a.positions),
        ("--max-examples", a.max_examples if a.max_examples is not None else 0),
        ("--max-length", a.max_length),
        ("--methods", a.methods),
        ("--controls", _sweep_controls(cfg)),
        ("--seeds", a.seeds),
        ("--test-fraction", float(a.test_fraction)),
        ("--label-draws", a.label_draws),
        ("--weight-draws", a.weight_draws),
        ("--probe-c", float(a.probe_C)),
        ("--probes", a.probes),
        *mdl_options(a),
        *(sae_options(a.sae) if "sae" in a.methods else []),
        ("--out", Path(out)),
    ]
    return command_line(["auditkit", "sweep"], options)
