"""The audit: wire the stages, run every arm through the same code on the same budget.

Orchestration only: the maths lives in ``methods/``, ``controls/`` and ``metrics/``, each method's runner
in its own module of this package (registered in :mod:`auditkit.audit.registry`), the rendering in
``report/``. An arm (:data:`auditkit.types.REAL` for the real one, else the control's name) is a column of
every result row, never a separate code path.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from auditkit import data as data_mod
from auditkit import preflight
from auditkit.audit.arms import ArmPlan
from auditkit.audit.config import AuditConfig
from auditkit.audit.matrix import matrix_controls, run_matrix_audit
from auditkit.audit.method import MethodContext, MethodOutput
from auditkit.audit.records import DatasetInfo, ExtractionInfo, MethodInfo, ProvenanceInfo
from auditkit.audit.registry import METHODS, check_methods
from auditkit.audit.result import AuditResult, score_rows
from auditkit.cache import check_root, request_key
from auditkit.controls import registry
from auditkit.data import kinds as dataset_kinds
from auditkit.extract import ExtractConfig, cache_request, resolve_positions
from auditkit.models import LoadedModel, default_cache_dir, default_hook, load_model, resolve_device
from auditkit.trust.run import sae_probes_trust
from auditkit.types import LabelledDataset, TokenBatch

logger = logging.getLogger(__name__)


def resolve_controls(cfg: AuditConfig, level: str | None = None) -> tuple[str, ...]:
    """The controls to run: the ones asked for, or every one that applies to the methods.

    Weight controls need unprocessed weights; by default they are left out for a processed model. On data of
    ``level`` (``sentence`` or ``token``; None: any) the default leaves out the controls that do not apply there
    (:attr:`auditkit.controls.registry.Control.levels`: ``control-task`` on sentence-level data, where its type is the
    text and it is a second shuffled-labels arm; the bag-of-words and length baselines on token-level data).
    """
    if cfg.matrix is not None:
        return matrix_controls(cfg)
    if cfg.controls is not None:
        return cfg.controls
    defaults = (c for m in cfg.methods for c in METHODS[m].default_controls())
    chosen = dict.fromkeys(c for c in defaults if level is None or registry.default_for_level(c, level))
    if cfg.model.processed:
        chosen = {c: None for c in chosen if registry.stage_of(c) != "weight"}
    return tuple(chosen)


def spec_level(dataset: str) -> str:
    """The level of the data a dataset spec names, from its kind alone (before loading): its registered kind's
    (:attr:`auditkit.data.kinds.DatasetKind.level`; ``conllu:`` is token-level, every other kind an audit reads
    sentence-level)."""
    return dataset_kinds.level(dataset)


def level_left_out(cfg: AuditConfig, controls: tuple[str, ...]) -> tuple[str, ...]:
    """The default controls that the dataset's level left out of ``controls`` (none when they were named)."""
    if cfg.controls is not None or cfg.matrix is not None:
        return ()
    return tuple(c for c in resolve_controls(cfg) if c not in controls)


def dataset_trust(cfg: AuditConfig) -> dict[str, Any] | None:
    """The trust table's row of a shipped sae-probes task (:func:`auditkit.trust.run.sae_probes_trust`: its flag
    and reasons, on the whole task as ``auditkit datasets --audit`` reads it); None for any other dataset."""
    kind, value = dataset_kinds.resolve(cfg.dataset)
    if kind not in dataset_kinds.REGISTRY or not dataset_kinds.REGISTRY[kind].shipped:
        return None
    return sae_probes_trust(value, cache_root=(cfg.model.cache_dir or default_cache_dir()) if cfg.use_cache else None)


def load_dataset_spec(cfg: AuditConfig) -> LabelledDataset:
    """Resolve ``cfg.dataset`` (``kind:value``) into a labelled dataset, by its registered kind's loader
    (:mod:`auditkit.data.kinds`)."""
    options = dataset_kinds.LoadOptions(
        max_examples=cfg.max_examples,
        duplicates=cfg.duplicates,
        text_column=cfg.text_column,
        label_column=cfg.label_column,
    )
    return dataset_kinds.load(cfg.dataset, options)


@dataclass(frozen=True)
class Prepared:
    """An audit's inputs, ready for the methods: data, model, tokens, and the arm plan."""

    dataset: LabelledDataset
    loaded: LoadedModel
    hook: str
    controls: tuple[str, ...]
    batch: TokenBatch
    plan: ArmPlan


def prepare_audit(cfg: AuditConfig, loaded: LoadedModel | None, timings: dict[str, float]) -> Prepared:
    """Load the data and the model, check them against the config (before any forward pass), tokenize, and
    plan the arms. Shared by :func:`run_audit` and the sweep, so both read the same arms from the cache."""
    t = time.perf_counter()
    dataset = load_dataset_spec(cfg)
    timings["load_data_s"] = timings.get("load_data_s", 0.0) + time.perf_counter() - t
    t = time.perf_counter()
    loaded = loaded or load_model(cfg.model)
    timings["load_model_s"] = timings.get("load_model_s", 0.0) + time.perf_counter() - t
    model = loaded.model
    hook = cfg.hook or default_hook(model.cfg.n_layers)
    controls = resolve_controls(cfg, dataset.level)
    preflight.check_model(cfg, loaded, hook, controls)
    t = time.perf_counter()
    # Sentence-level data declares no grouping key: the control task then keys its labels by example,
    # and an example is one distinct model input (copies and texts with equal token ids merged).
    batch = data_mod.tokenize(
        dataset,
        model.tokenizer,
        prepend_bos=loaded.provenance.prepend_bos,
        bos_token_id=model.tokenizer.bos_token_id,
        max_length=cfg.max_length,
        align=cfg.align,
    )
    preflight.check_splits(batch, cfg.seeds, cfg.test_fraction)
    ecfg = ExtractConfig(hook=hook, positions=cfg.positions, batch_size=cfg.batch_size, progress=cfg.progress)
    resolve_positions(ecfg, batch)  # before any forward pass: a sweep prepares every dataset first
    plan = ArmPlan(
        loaded=loaded,
        batch=batch,
        extract_cfg=ecfg,
        seeds=cfg.seeds,
        controls=controls,
        test_fraction=cfg.test_fraction,
        gaussian_keep_embeddings=cfg.gaussian_keep_embeddings,
        label_draws=cfg.label_draws,
        weight_draws=cfg.weight_draws,
        cache_root=(cfg.model.cache_dir or default_cache_dir()) if cfg.use_cache else None,
    )
    timings["tokenize_s"] = timings.get("tokenize_s", 0.0) + time.perf_counter() - t
    return Prepared(dataset, loaded, hook, controls, batch, plan)


def run_audit(cfg: AuditConfig, *, loaded: LoadedModel | None = None) -> AuditResult:
    """Run the audit described by ``cfg`` (``loaded`` reuses an already loaded model)."""
    check_methods(cfg.methods)
    resolve_device(cfg.model.device)  # an absent GPU is one error line before anything is loaded
    if cfg.use_cache:  # before any compute: an unusable cache folder is one clear error, not a late traceback
        check_root(cfg.model.cache_dir or default_cache_dir())
    if cfg.matrix is not None:
        return run_matrix_audit(cfg, loaded=loaded)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    prep = prepare_audit(cfg, loaded, timings)
    dataset, loaded, hook, controls, batch, plan = (
        prep.dataset,
        prep.loaded,
        prep.hook,
        prep.controls,
        prep.batch,
        prep.plan,
    )
    model, ecfg = loaded.model, plan.extract_cfg
    t = time.perf_counter()
    trust = dataset_trust(cfg)
    timings["trust_s"] = time.perf_counter() - t
    ctx = MethodContext(cfg=cfg, loaded=loaded, dataset=dataset, batch=batch, plan=plan, timings=timings)
    outputs: dict[str, MethodOutput] = {}
    for method in cfg.methods:
        t = time.perf_counter()
        outputs[method] = METHODS[method].runner(ctx)
        timings[f"method[{method}]_s"] = time.perf_counter() - t
    rows = pd.concat([o.rows for o in outputs.values()], ignore_index=True)
    timings["total_s"] = time.perf_counter() - t0
    real = ctx._arms[0].acts if ctx._arms else None  # methods that need no labelled-position arms skip them
    directions = {m: d for o in outputs.values() for m, d in o.directions.items()}
    ceilings = {m: c for o in outputs.values() for m, c in o.ceilings.items()}
    targets = {m: t for o in outputs.values() for m, t in o.targets.items()}
    descriptive = {pair for o in outputs.values() for pair in o.descriptive}
    rows, selectivity = score_rows(
        rows,
        cfg.selectivity_threshold,
        directions=directions,
        ceilings=ceilings,
        targets=targets,
        descriptive=descriptive,
    )
    return AuditResult(
        config=cfg,
        rows=rows,
        selectivity=selectivity,
        provenance=ProvenanceInfo.of(loaded.provenance),
        dataset=DatasetInfo(
            name=dataset.name,
            source=dataset.source,
            fingerprint=dataset.fingerprint,
            level=dataset.level,
            n_texts=len(dataset.texts),
            n_items=dataset.n_items,
            class_names=tuple(dataset.class_names),
            class_counts=tuple(np.bincount(dataset.labels_M, minlength=dataset.n_classes).tolist()),
            n_tokens=batch.n_tokens,
            duplicates={**dataset.duplicates, "merged_after_tokenising": batch.merged_examples},
            label_notes=tuple(dataset.label_notes),
            n_truncated=batch.n_truncated,
            trust=trust,
            # the default controls this dataset's level left out (Control.levels), for the report
            left_out_controls=level_left_out(cfg, controls) or None,
        ),
        extraction=ExtractionInfo(
            hook=hook,
            positions=real.positions if real else cfg.positions,
            rows=real.n if real else None,
            d=real.d if real else model.cfg.d_model,
            cache_key=request_key(cache_request(loaded.provenance, batch, ecfg)) if cfg.use_cache else None,
        ),
        method_info={m: MethodInfo(headline=tuple(o.headline), extras=dict(o.info)) for m, o in outputs.items()},
        controls=controls,
        timings=timings,
    )
