"""The audit: wire the stages, run every arm through the same code on the same budget.

Orchestration only: the maths lives in ``methods/``, ``controls/`` and ``metrics/``, the rendering in
``report/``. An arm (``none`` for the real one, else the control's name) is a column of every
result row, never a separate code path.
"""

from __future__ import annotations

import importlib
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from auditkit import data as data_mod
from auditkit import preflight
from auditkit.arms import Arm, ArmPlan, build_arms
from auditkit.controls import ALL_CONTROLS, WEIGHT_CONTROLS
from auditkit.errors import ConfigError, DataError
from auditkit.cache import check_root, request_key
from auditkit.duplicates import check_policy
from auditkit.extract import ExtractConfig, cache_request
from auditkit.methods.probe import PROBES, make_probe
from auditkit.methods.sparse_probe import SPARSE_KIND, parse_sparse_spec, sparse_probe
from auditkit.metrics import selectivity_table
from auditkit.metrics.classification import classification_records
from auditkit.models import LoadedModel, ModelSpec, default_cache_dir, load_model
from auditkit.pursuit_options import PursuitAuditOptions
from auditkit.sae_options import SAE_CONTROLS, SAE_DEFAULT_CONTROLS, SAE_RUNNER, SAEAuditOptions
from auditkit.shell import Option, command_line, display_path
from auditkit.types import ActivationSet, LabelledDataset, TokenBatch

logger = logging.getLogger(__name__)

DEFAULT_DATASET = "sae-probes:92_glue_sst2"
METHODS = ("probe", "pursuit", "sae")
DEFAULT_CONTROLS = {"probe": tuple(c for c in ALL_CONTROLS if c != "step0")}
"""Controls that apply to each method and run by default (step0 needs the hub: opt in)."""
APPLICABLE_CONTROLS = {"probe": ALL_CONTROLS}
"""Controls each method can run against; a control asked for but not applicable to a method is skipped
for that method (and said so in the report)."""
RUNNERS = {"probe": "auditkit.audit:run_probe_method"}
"""``module:function`` of each method's runner, imported on first use: ``f(ctx) -> MethodOutput``."""
# pursuit: every data and weight control (the label controls speak only to its code probe); its own
# dictionary controls (gaussian-dict, spectral-dict) are set in PursuitAuditOptions.
DEFAULT_CONTROLS["pursuit"] = DEFAULT_CONTROLS["probe"]
APPLICABLE_CONTROLS["pursuit"] = tuple(c for c in ALL_CONTROLS if c != "step0")
RUNNERS["pursuit"] = "auditkit.audit_pursuit:run_pursuit_method"
DEFAULT_CONTROLS["sae"], APPLICABLE_CONTROLS["sae"], RUNNERS["sae"] = SAE_DEFAULT_CONTROLS, SAE_CONTROLS, SAE_RUNNER


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
    max_examples: int | None = 1000
    """Distinct texts used (a stratified, seeded subsample; a repeated text counts once); None for all."""
    duplicates: str = "group"
    """What to do with a text's copies whose labels disagree: ``group`` keeps them (one example),
    ``drop-conflicts`` removes them, ``dedupe`` keeps one item per text (see :mod:`auditkit.duplicates`)."""
    hook: str | None = None
    """TransformerLens hook; default: the residual stream entering the middle block."""
    positions: str = "auto"
    """Position rule for extraction (see :class:`ExtractConfig`)."""
    max_length: int = 128
    """Tokens per text, BOS included; longer texts are truncated."""
    align: str = "first"
    """Sub-token a token-level label sits on: ``first`` or ``last``."""
    methods: tuple[str, ...] = ("probe",)
    """Feature-finding methods to audit."""
    controls: tuple[str, ...] | None = None
    """Controls to run every method against; None runs every control that applies to the methods."""
    gaussian_keep_embeddings: bool = False
    """gaussian-reinit keeps the trained W_E, W_pos and W_U."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds: each gives its own train/test split and control draw."""
    test_fraction: float = 0.25
    """Share of examples held out for scoring."""
    probe_C: float = 1.0
    """Inverse L2 strength of the logistic and low-rank probes (scikit-learn's C)."""
    probes: tuple[str, ...] = ("logistic",)
    """Probe kinds fitted by the ``probe`` method: logistic, mass-mean, lda, low-rank, mlp, and ``k-sparse``
    (or ``k-sparse:k=1,5,20``: logistic probes on the top-k raw dimensions, one method per k)."""
    matrix: str | None = None
    """``W_E`` or ``W_U``: probe rows of the token embedding (columns of the unembedding) for the
    ``token-properties:PROP`` dataset instead of activations (see :mod:`auditkit.matrix_audit`)."""
    vocab_sample: int = 20000
    """Vocabulary tokens sampled (seeded) as the rows of a ``matrix`` audit."""
    pursuit: PursuitAuditOptions = field(default_factory=PursuitAuditOptions)
    """Dictionary, solver and L0 sweep of the ``pursuit`` method."""
    sae: SAEAuditOptions = field(default_factory=SAEAuditOptions)
    """Options of the ``sae`` method."""
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
        for option, names in (("methods", self.methods), ("controls", self.controls or ()), ("probes", self.probes)):
            if repeated := sorted({n for n in names if names.count(n) > 1}):
                # A repeated name would count its rows once per copy: more "seeds", a narrower interval.
                raise ConfigError(f"--{option} names {', '.join(repeated)} more than once: give each once")
        check_policy(self.duplicates)
        if not self.methods or not self.probes:  # an empty --methods '' or --probes '' is a mistake, never "all"
            empty = "methods" if not self.methods else "probes"
            raise ConfigError(f"{empty} is empty: name at least one (--help lists them)")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise ConfigError(f"unknown method(s) {unknown or self.methods}: use one of {list(METHODS)}")
        bad = [c for c in self.controls or () if c not in ALL_CONTROLS]
        if bad:
            raise ConfigError(f"unknown control(s) {bad}: use one of {list(ALL_CONTROLS)}")
        if self.controls is not None and not self.controls:
            raise ConfigError("controls is empty: name at least one control, or leave it out to run all that apply")
        if self.max_examples is not None and self.max_examples < 4:
            raise ConfigError(f"max_examples must be >= 4, got {self.max_examples}")
        if self.align not in ("first", "last"):
            raise ConfigError(f"align {self.align!r} unknown: use first or last")
        bad_probes = [p for p in self.probes if p not in PROBES and parse_sparse_spec(p) is None]
        if bad_probes or not self.probes:
            raise ConfigError(f"unknown probe kind(s) {bad_probes or self.probes}: use some of {[*PROBES, SPARSE_KIND]}")
        if not 0 < self.test_fraction < 1:
            raise ConfigError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        if not (math.isfinite(self.probe_C) and self.probe_C > 0):
            raise ConfigError(f"probe_C (--probe-c) must be a finite number > 0, got {self.probe_C}: e.g. --probe-c 1")
        if self.matrix is None and self.dataset.startswith("token-properties:"):
            raise ConfigError(f"{self.dataset} labels vocabulary tokens: add --matrix W_E or --matrix W_U")
        if self.vocab_sample < 40:
            raise ConfigError(f"vocab_sample must be >= 40, got {self.vocab_sample}")


def resolve_controls(cfg: AuditConfig) -> tuple[str, ...]:
    """The controls to run: the ones asked for, or every one that applies to the methods.

    Weight controls need unprocessed weights; by default they are left out for a processed model.
    """
    if cfg.matrix is not None:
        from auditkit.matrix_audit import matrix_controls

        return matrix_controls(cfg)
    if cfg.controls is not None:
        return cfg.controls
    chosen = dict.fromkeys(c for m in cfg.methods for c in DEFAULT_CONTROLS[m])
    if cfg.model.processed:
        chosen = {c: None for c in chosen if c not in WEIGHT_CONTROLS}
    return tuple(chosen)


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
    method_info: dict[str, dict[str, Any]]
    """Per method: hyper-parameters, complexity, and what its report section needs."""
    controls: tuple[str, ...]
    """The controls that ran."""
    timings: dict[str, float]
    """Seconds per stage."""


@dataclass(frozen=True)
class MethodOutput:
    """What a method's runner returns."""

    rows: pd.DataFrame
    """Tidy rows: method, control, seed, metric, value."""
    info: dict[str, Any]
    """Hyper-parameters, complexity and anything its report section shows (JSON-able)."""
    headline: tuple[str, ...] = ("accuracy",)
    """Metrics whose verdicts open the report."""


@dataclass
class MethodContext:
    """What every method runner gets: the loaded model and data, the arm plan, shared timings."""

    cfg: "AuditConfig"
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

    def controls_for(self, method: str) -> tuple[str, ...]:
        """The audit's controls that apply to ``method``."""
        return tuple(c for c in self.plan.controls if c in APPLICABLE_CONTROLS[method])


def runner(method: str) -> Callable[[MethodContext], MethodOutput]:
    """The runner of ``method`` (see :data:`RUNNERS`)."""
    module, _, name = RUNNERS[method].partition(":")
    return getattr(importlib.import_module(module), name)


def load_dataset_spec(cfg: AuditConfig) -> LabelledDataset:
    """Resolve ``cfg.dataset`` (``kind:value``) into a labelled dataset."""
    kind, _, value = cfg.dataset.partition(":")
    if not value:
        kind, value = "sae-probes", kind
    if kind == "sae-probes":
        return data_mod.load_sae_probes(value, max_examples=cfg.max_examples, seed=0, duplicates=cfg.duplicates)
    if kind == "conllu":
        return data_mod.load_conllu(value, max_sentences=cfg.max_examples, duplicates=cfg.duplicates)
    if kind == "table":
        return data_mod.load_table(
            value, text_column=cfg.text_column, label_column=cfg.label_column, max_examples=cfg.max_examples,
            duplicates=cfg.duplicates,
        )  # fmt: skip
    raise ConfigError(f"dataset kind {kind!r} unknown in {cfg.dataset!r}: use sae-probes:, conllu: or table:")


def default_hook(n_layers: int) -> str:
    """The residual stream entering the middle block."""
    return f"blocks.{n_layers // 2}.hook_resid_pre"


def run_audit(cfg: AuditConfig, *, loaded: LoadedModel | None = None) -> AuditResult:
    """Run the audit described by ``cfg`` (``loaded`` reuses an already loaded model)."""
    if cfg.use_cache:  # before any compute: an unusable cache folder is one clear error, not a late traceback
        check_root(cfg.model.cache_dir or default_cache_dir())
    if cfg.matrix is not None:
        from auditkit.matrix_audit import run_matrix_audit

        return run_matrix_audit(cfg, loaded=loaded)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    dataset = load_dataset_spec(cfg)
    timings["load_data_s"] = time.perf_counter() - t0
    t = time.perf_counter()
    loaded = loaded or load_model(cfg.model)
    timings["load_model_s"] = time.perf_counter() - t
    model = loaded.model
    hook = cfg.hook or default_hook(model.cfg.n_layers)
    controls = resolve_controls(cfg)
    preflight.check_model(cfg, loaded, hook, controls)
    t = time.perf_counter()
    # Sentence-level data declares no grouping key: the control task then keys its labels by example,
    # and an example is one distinct model input (copies and texts with equal token ids merged).
    batch = data_mod.tokenize(
        dataset, model.tokenizer, prepend_bos=loaded.provenance.prepend_bos,
        bos_token_id=model.tokenizer.bos_token_id, max_length=cfg.max_length, align=cfg.align,
    )  # fmt: skip
    preflight.check_splits(batch, cfg.seeds, cfg.test_fraction)
    ecfg = ExtractConfig(hook=hook, positions=cfg.positions, batch_size=cfg.batch_size, progress=cfg.progress)
    plan = ArmPlan(
        loaded=loaded, batch=batch, extract_cfg=ecfg, seeds=cfg.seeds, controls=controls,
        test_fraction=cfg.test_fraction, gaussian_keep_embeddings=cfg.gaussian_keep_embeddings,
        cache_root=(cfg.model.cache_dir or default_cache_dir()) if cfg.use_cache else None,
    )  # fmt: skip
    timings["tokenize_s"] = time.perf_counter() - t
    ctx = MethodContext(cfg=cfg, loaded=loaded, dataset=dataset, batch=batch, plan=plan, timings=timings)
    outputs: dict[str, MethodOutput] = {}
    for method in cfg.methods:
        t = time.perf_counter()
        outputs[method] = runner(method)(ctx)
        timings[f"method[{method}]_s"] = time.perf_counter() - t
    rows = pd.concat([o.rows for o in outputs.values()], ignore_index=True)
    timings["total_s"] = time.perf_counter() - t0
    real = ctx._arms[0].acts if ctx._arms else None  # methods that need no labelled-position arms skip them
    rows, selectivity = score_rows(rows, cfg.selectivity_threshold)
    return AuditResult(
        config=cfg,
        rows=rows,
        selectivity=selectivity,
        provenance=loaded.provenance.to_dict(),
        dataset=dict(
            name=dataset.name, source=dataset.source, fingerprint=dataset.fingerprint, level=dataset.level,
            n_texts=len(dataset.texts), n_items=dataset.n_items, class_names=list(dataset.class_names),
            class_counts=np.bincount(dataset.labels_M, minlength=dataset.n_classes).tolist(),
            n_tokens=batch.n_tokens, duplicates={**dataset.duplicates, "merged_after_tokenising": batch.merged_examples},
            label_notes=list(dataset.label_notes),
            n_truncated=batch.n_truncated,
        ),  # fmt: skip
        extraction=dict(
            hook=hook, positions=real.positions if real else cfg.positions, rows=real.n if real else None,
            d=real.d if real else model.cfg.d_model,
            cache_key=request_key(cache_request(loaded.provenance, batch, ecfg)) if cfg.use_cache else None,
        ),  # fmt: skip
        method_info={m: {**o.info, "headline": list(o.headline)} for m, o in outputs.items()},
        controls=controls,
        timings=timings,
    )


def score_rows(rows: pd.DataFrame, threshold: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The selectivity table of tidy ``rows``, and the rows to publish (per-example outcomes dropped:
    they serve the interval, :data:`auditkit.metrics.selectivity.INTERVAL_RULE`)."""
    selectivity = selectivity_table(rows, threshold=threshold)
    return rows.drop(columns=["outcome"], errors="ignore"), selectivity


def _labelled_rows(acts: ActivationSet) -> ActivationSet:
    keep = acts.labels_N >= 0
    if not keep.any():
        raise DataError("no extracted row carries a label: check the dataset's label positions")
    if keep.all():
        return acts
    idx = np.flatnonzero(keep)
    groups = tuple(acts.groups_N[i] for i in idx) if acts.groups_N is not None else None
    return acts.replace(
        acts_ND=acts.acts_ND[torch.as_tensor(idx)], labels_N=acts.labels_N[idx], token_ids_N=acts.token_ids_N[idx],
        example_ids_N=acts.example_ids_N[idx], positions_N=acts.positions_N[idx], is_test_N=acts.is_test_N[idx],
        groups_N=groups,
    )  # fmt: skip


def run_probe_method(ctx: MethodContext) -> MethodOutput:
    """The ``probe`` method: every probe kind on every labelled-position arm."""
    arms = [a for a in ctx.arms() if a.control == "none" or a.control in ctx.controls_for("probe")]
    rows, info = probe_rows(arms, ctx.cfg)
    return MethodOutput(rows=rows, info=info, headline=("accuracy",))


def probe_rows(arms: list[Arm], cfg: AuditConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Fit stacked logistic probes, one stack per distinct activation matrix (the real arm and its
    label controls share one), and score each on its own seed's test rows."""
    groups: dict[int, list[tuple[Arm, ActivationSet]]] = {}
    for arm in arms:
        groups.setdefault(id(arm.acts.acts_ND), []).append((arm, _labelled_rows(arm.acts)))
    n_classes = len(arms[0].acts.class_names) or int(arms[0].acts.labels_N.max()) + 1
    if np.unique(arms[0].acts.labels_N[arms[0].acts.labels_N >= 0]).size < 2:
        raise DataError("the extracted rows carry one class only: a probe needs at least two")
    rows, info = [], {"C": cfg.probe_C, "n_problems": len(arms), "n_classes": n_classes, "kinds": {}}
    for kind in cfg.probes:
        ks = parse_sparse_spec(kind)
        if ks is not None:
            sparse_rows, info["kinds"][SPARSE_KIND] = _sparse_rows(list(groups.values()), n_classes, ks, cfg.probe_C)
            rows += sparse_rows
            continue
        hp = {"C": cfg.probe_C} if kind in ("logistic", "low-rank") else {}
        for members in groups.values():
            X_ND = members[0][1].acts_ND
            y_SN = torch.as_tensor(np.stack([a.labels_N for _, a in members]))
            test_SN = torch.as_tensor(np.stack([a.is_test_N for _, a in members]))
            probe = make_probe(kind, **hp)
            if kind == "mlp":  # per-problem init seeds, so adding an arm never moves another arm's numbers
                probe.fit(X_ND, y_SN, ~test_SN, n_classes, problem_keys=[f"{a.control}/{a.seed}" for a, _ in members])
            else:
                probe.fit(X_ND, y_SN, ~test_SN, n_classes)
            proba_SNK = probe.predict_proba(X_ND)
            for s_, (arm, acts) in enumerate(members):
                test = test_SN[s_]
                records = classification_records(
                    y_SN[s_][test], proba_SNK[s_][test], acts.example_ids_N[test.numpy()],
                    degenerate=_one_class(acts.labels_N[~acts.is_test_N]),
                )  # fmt: skip
                rows += [dict(method=f"probe-{kind}", control=arm.control, seed=arm.seed, **r) for r in records]
        info["kinds"][kind] = {k: (v if isinstance(v, (int, float, str)) else str(v)) for k, v in probe.complexity_.items()}
    return pd.DataFrame(rows), info


def _one_class(train_labels_N: np.ndarray) -> bool:
    """Whether an arm's labelled training rows hold one class (its probe can only learn the prior)."""
    return np.unique(train_labels_N[train_labels_N >= 0]).size < 2


def _sparse_rows(
    groups: list[list[tuple[Arm, ActivationSet]]], n_classes: int, ks: tuple[int, ...], C: float
) -> tuple[list[dict], dict[str, Any]]:
    """k-sparse probes (:func:`auditkit.methods.sparse_probe.sparse_probe`) on the raw dimensions of every
    activation matrix (each problem ranks dimensions on its own training rows), method ``probe-k-sparse-k{k}``;
    and their complexity for the method info (k, and the parameters of each k's probe)."""
    rows = []
    for members in groups:
        y_SN = torch.as_tensor(np.stack([a.labels_N for _, a in members]))
        test_SN = torch.as_tensor(np.stack([a.is_test_N for _, a in members]))
        clusters_SN = np.stack([a.example_ids_N for _, a in members])
        res = sparse_probe(
            members[0][1].acts_ND, y_SN, ~test_SN, n_classes, test_SN=test_SN, ks=ks, C=C, clusters_SN=clusters_SN
        )
        for r in res.rows:
            arm, acts = members[r.pop("problem")]
            r["degenerate"] = _one_class(acts.labels_N[~acts.is_test_N])
            rows.append(dict(method=f"probe-{SPARSE_KIND}-k{r.pop('k')}", control=arm.control, seed=arm.seed, **r))
    out = 1 if n_classes == 2 else n_classes
    d = int(groups[0][0][1].acts_ND.shape[1])
    info = dict(ks=",".join(map(str, ks)), complexity="k input dimensions", rank_by="standardized class-mean difference",
                n_params=",".join(str((min(k, d) + 1) * out) for k in ks))  # fmt: skip
    return rows, info


def input_paths(cfg: AuditConfig) -> tuple[str, ...]:
    """What the audit reads that may be a local path (model folder, dataset file or folder, SAE folders), for
    :func:`auditkit.report.outputs.check_output`; names that are not paths are harmless there."""
    kind, _, value = cfg.dataset.partition(":")
    paths = [cfg.model.name, cfg.pursuit.sae_path, cfg.sae.load, value if kind in ("conllu", "table") else None]
    return tuple(p for p in paths if p)


def reproduce_command(cfg: AuditConfig, out: Path | str) -> str:
    """The ``auditkit audit`` command line that reruns ``cfg`` (quoted by :func:`auditkit.shell.command_line`)."""
    kind, _, value = cfg.dataset.partition(":")
    dataset = f"{kind}:{display_path(value)}" if kind in ("conllu", "table") and value else cfg.dataset
    options: list[Option] = [
        ("--model", display_path(cfg.model.name)), ("--dataset", dataset), ("--revision", cfg.model.revision or None),
        ("--processed", cfg.model.processed), ("--gaussian-keep-embeddings", cfg.gaussian_keep_embeddings),
        ("--align", cfg.align if cfg.align != "first" else None),
    ]  # fmt: skip
    if cfg.matrix is not None:
        options += [("--matrix", cfg.matrix), ("--vocab-sample", cfg.vocab_sample)]
    if cfg.dataset.startswith("table:"):
        options += [("--text-column", cfg.text_column), ("--label-column", cfg.label_column)]
    options += [("--duplicates", cfg.duplicates if cfg.duplicates != "group" else None)]
    options += [
        ("--hook", cfg.hook or None), ("--positions", cfg.positions),
        ("--max-examples", cfg.max_examples if cfg.max_examples is not None else 0), ("--max-length", cfg.max_length),
        ("--methods", cfg.methods), ("--controls", resolve_controls(cfg)), ("--seeds", cfg.seeds),
        ("--test-fraction", float(cfg.test_fraction)), ("--probe-c", float(cfg.probe_C)), ("--probes", cfg.probes),
        *(cfg.sae.cli_args() if "sae" in cfg.methods else []),
        *(cfg.pursuit.cli_args() if "pursuit" in cfg.methods else []),
        ("--out", Path(out)),
    ]  # fmt: skip
    return command_line(["auditkit", "audit"], options)
