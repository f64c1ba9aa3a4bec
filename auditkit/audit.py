"""The audit: wire the stages, run every arm through the same code on the same budget.

Orchestration only: the maths lives in ``methods/``, ``controls/`` and ``metrics/``, the rendering in
``report/``. An arm (``none`` for the real one, else the control's name) is a column of every
result row, never a separate code path.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from auditkit import data as data_mod
from auditkit.cache import CacheEntry
from auditkit.controls import LABEL_CONTROLS
from auditkit.errors import ConfigError, DataError
from auditkit.extract import ExtractConfig, cache_request, extract, validate_hook
from auditkit.methods.probe import LogisticProbe
from auditkit.metrics import classification_metrics, selectivity_table
from auditkit.metrics.selectivity import REAL
from auditkit.models import LoadedModel, ModelSpec, default_cache_dir, load_model
from auditkit.seeding import derive_seed
from auditkit.splits import split_examples
from auditkit.types import ActivationSet, LabelledDataset

logger = logging.getLogger(__name__)

DEFAULT_DATASET = "sae-probes:92_glue_sst2"
METHODS = ("probe",)


@dataclass(frozen=True, kw_only=True)
class AuditConfig:
    """One audit: model, data, hook, methods, controls, seeds."""

    model: ModelSpec = field(default_factory=ModelSpec)
    """The model to audit."""
    dataset: str = DEFAULT_DATASET
    """``sae-probes:TAG``, ``conllu:PATH``, or ``table:PATH_OR_HUB_ID`` (see ``auditkit datasets``)."""
    text_column: str = "text"
    """Text column of a ``table:`` dataset."""
    label_column: str = "label"
    """Label column of a ``table:`` dataset."""
    max_examples: int | None = 2000
    """Texts used (a stratified, seeded subsample); None for all."""
    hook: str | None = None
    """TransformerLens hook; default: the residual stream entering the middle block."""
    positions: str = "auto"
    """Position rule for extraction (see :class:`ExtractConfig`)."""
    max_length: int = 128
    """Tokens per text, BOS included; longer texts are truncated."""
    methods: tuple[str, ...] = ("probe",)
    """Feature-finding methods to audit."""
    controls: tuple[str, ...] = ("shuffled-labels",)
    """Controls to run every method against."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds: each gives its own train/test split and control draw."""
    test_fraction: float = 0.25
    """Share of examples held out for scoring."""
    probe_C: float = 1.0
    """Inverse L2 strength of the logistic probe (scikit-learn's C)."""
    selectivity_threshold: float = 0.05
    """Minimum mean (real - control) accuracy for a 'selective' verdict."""
    batch_size: int = 16
    """Texts per forward pass."""
    use_cache: bool = True
    """Read and write the activation cache."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ConfigError("seeds is empty: give at least one seed (three or more for intervals)")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds {self.seeds} repeat a value: give distinct seeds")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise ConfigError(f"unknown method(s) {unknown or self.methods}: use one of {list(METHODS)}")
        bad = [c for c in self.controls if c not in LABEL_CONTROLS]
        if bad:
            raise ConfigError(f"unknown control(s) {bad}: use one of {sorted(LABEL_CONTROLS)}")
        if self.max_examples is not None and self.max_examples < 4:
            raise ConfigError(f"max_examples must be >= 4, got {self.max_examples}")
        if not 0 < self.test_fraction < 1:
            raise ConfigError(f"test_fraction must be in (0, 1), got {self.test_fraction}")


@dataclass(frozen=True, kw_only=True)
class AuditResult:
    """Everything a report needs."""

    config: AuditConfig
    rows: pd.DataFrame
    """Tidy rows: method, control, seed, metric, value."""
    selectivity: pd.DataFrame
    """One row per (method, control, metric); see :func:`auditkit.metrics.selectivity_table`."""
    provenance: dict[str, Any]
    """Model provenance."""
    dataset: dict[str, Any]
    """Dataset name, source, fingerprint, sizes."""
    extraction: dict[str, Any]
    """Hook, positions, rows, cache key."""
    probe_info: dict[str, Any]
    """Probe hyper-parameters and complexity."""
    timings: dict[str, float]
    """Seconds per stage."""


def load_dataset_spec(cfg: AuditConfig) -> LabelledDataset:
    """Resolve ``cfg.dataset`` (``kind:value``) into a labelled dataset."""
    kind, _, value = cfg.dataset.partition(":")
    if not value:
        kind, value = "sae-probes", kind
    if kind == "sae-probes":
        return data_mod.load_sae_probes(value, max_examples=cfg.max_examples, seed=0)
    if kind == "conllu":
        return data_mod.load_conllu(value, max_sentences=cfg.max_examples)
    if kind == "table":
        return data_mod.load_table(
            value, text_column=cfg.text_column, label_column=cfg.label_column, max_examples=cfg.max_examples
        )
    raise ConfigError(f"dataset kind {kind!r} unknown in {cfg.dataset!r}: use sae-probes:, conllu: or table:")


def default_hook(n_layers: int) -> str:
    """The residual stream entering the middle block."""
    return f"blocks.{n_layers // 2}.hook_resid_pre"


def run_audit(cfg: AuditConfig, *, loaded: LoadedModel | None = None) -> AuditResult:
    """Run the audit described by ``cfg`` (``loaded`` reuses an already loaded model)."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    dataset = load_dataset_spec(cfg)
    timings["load_data_s"] = time.perf_counter() - t0
    t = time.perf_counter()
    loaded = loaded or load_model(cfg.model)
    timings["load_model_s"] = time.perf_counter() - t
    model = loaded.model
    hook = cfg.hook or default_hook(model.cfg.n_layers)
    validate_hook(model, hook)
    t = time.perf_counter()
    batch = data_mod.tokenize(
        dataset, model.tokenizer, prepend_bos=loaded.provenance.prepend_bos,
        bos_token_id=model.tokenizer.bos_token_id, max_length=cfg.max_length,
    )  # fmt: skip
    ecfg = ExtractConfig(hook=hook, positions=cfg.positions, batch_size=cfg.batch_size, progress=cfg.progress)
    cache = None
    if cfg.use_cache:
        cache = CacheEntry(cfg.model.cache_dir or default_cache_dir(), cache_request(loaded.provenance, batch, ecfg))
    acts = extract(model, batch, ecfg, provenance=loaded.provenance.to_dict(), cache=cache)
    timings["extract_s"] = time.perf_counter() - t
    acts = _labelled_rows(acts)
    t = time.perf_counter()
    rows, probe_info = _probe_rows(acts, cfg)
    timings["fit_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0
    return AuditResult(
        config=cfg,
        rows=rows,
        selectivity=selectivity_table(rows, threshold=cfg.selectivity_threshold),
        provenance=loaded.provenance.to_dict(),
        dataset=dict(
            name=dataset.name, source=dataset.source, fingerprint=dataset.fingerprint, level=dataset.level,
            n_texts=len(dataset.texts), n_items=dataset.n_items, class_names=list(dataset.class_names),
            class_counts=np.bincount(dataset.labels_M, minlength=dataset.n_classes).tolist(),
            n_tokens=batch.n_tokens,
        ),  # fmt: skip
        extraction=dict(
            hook=hook, positions=acts.positions, rows=acts.n, d=acts.d, cache_key=cache.key if cache else None
        ),
        probe_info=probe_info,
        timings=timings,
    )


def _labelled_rows(acts: ActivationSet) -> ActivationSet:
    keep = acts.labels_N >= 0
    if not keep.any():
        raise DataError("no extracted row carries a label: check the dataset's label positions")
    if np.unique(acts.labels_N[keep]).size < 2:
        raise DataError("the extracted rows carry one class only: a probe needs at least two")
    idx = np.flatnonzero(keep)
    groups = tuple(acts.groups_N[i] for i in idx) if acts.groups_N is not None else None
    return acts.replace(
        acts_ND=acts.acts_ND[torch.as_tensor(idx)], labels_N=acts.labels_N[idx], token_ids_N=acts.token_ids_N[idx],
        example_ids_N=acts.example_ids_N[idx], positions_N=acts.positions_N[idx], is_test_N=acts.is_test_N[idx],
        groups_N=groups,
    )  # fmt: skip


def build_arms(acts: ActivationSet, cfg: AuditConfig) -> list[tuple[str, int, ActivationSet]]:
    """(control, seed, activations) for every arm and seed; the real arm's control is ``none``."""
    arms = []
    for seed in cfg.seeds:
        split_seed = derive_seed(seed, "split")
        is_test = split_examples(acts.example_ids_N, acts.labels_N, seed=split_seed, test_fraction=cfg.test_fraction)
        real = acts.replace(is_test_N=is_test)
        arms.append((REAL, seed, real))
        for name in cfg.controls:
            arms.append((name, seed, LABEL_CONTROLS[name](real, derive_seed(seed, name))))
    return arms


def _probe_rows(acts: ActivationSet, cfg: AuditConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Fit one stacked logistic probe over every arm and seed; score each on its own test rows."""
    arms = build_arms(acts, cfg)
    n_classes = len(acts.class_names) or int(acts.labels_N.max()) + 1
    y_SN = torch.as_tensor(np.stack([a.labels_N for _, _, a in arms]))
    test_SN = torch.as_tensor(np.stack([a.is_test_N for _, _, a in arms]))
    probe = LogisticProbe(C=cfg.probe_C).fit(acts.acts_ND, y_SN, ~test_SN, n_classes)
    proba_SNK = probe.predict_proba(acts.acts_ND)
    rows = []
    for s, (control, seed, _) in enumerate(arms):
        test = test_SN[s]
        for metric, value in classification_metrics(y_SN[s][test], proba_SNK[s][test]).items():
            rows.append(dict(method="probe", control=control, seed=seed, metric=metric, value=value))
    info = dict(kind="logistic", C=cfg.probe_C, n_params=probe.n_params_, n_problems=len(arms), n_classes=n_classes)
    return pd.DataFrame(rows), info


def reproduce_command(cfg: AuditConfig, out: Path | str) -> str:
    """The ``auditkit audit`` command line that reruns ``cfg``."""
    parts = ["auditkit audit", f"--model {cfg.model.name}", f"--dataset {cfg.dataset}"]
    if cfg.model.revision:
        parts.append(f"--revision {cfg.model.revision}")
    if cfg.model.processed:
        parts.append("--processed")
    if cfg.dataset.startswith("table:"):
        parts += [f"--text-column {cfg.text_column}", f"--label-column {cfg.label_column}"]
    if cfg.hook:
        parts.append(f"--hook {cfg.hook}")
    parts += [
        f"--positions {cfg.positions}",
        f"--max-examples {cfg.max_examples if cfg.max_examples is not None else 0}",
        f"--max-length {cfg.max_length}",
        f"--methods {','.join(cfg.methods)}",
        f"--controls {','.join(cfg.controls)}",
        f"--seeds {','.join(map(str, cfg.seeds))}",
        f"--test-fraction {cfg.test_fraction:g}",
        f"--probe-c {cfg.probe_C:g}",
        f"--out {out}",
    ]
    return " ".join(parts)
