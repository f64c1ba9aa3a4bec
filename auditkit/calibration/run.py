"""Calibrate the auditor: how often its verdicts are wrong on datasets whose answer is known.

For every method x control pair that produces a verdict, :func:`calibrate` measures

- the **false-positive rate** of "selective" on null datasets (labels drawn independently of the
  tokens, so no arm can read them), with an exact binomial interval, against the nominal level;
- the **power**: the rate of "selective" on planted datasets, whose labels are read from the real
  arm's activations along a random direction at a chosen signal-to-noise (see
  :func:`auditkit.calibration.synthetic.planted_labels`), as a curve over the strength.

The activations of every arm do not depend on the labels, so the arms are built once
(:func:`auditkit.audit.arms.build_arms` on a tiny model trained on a synthetic language) and only the labels
are redrawn per dataset: each dataset relabels every arm exactly as ``build_arms`` would have labelled
it (the seed's stratified split recomputed from the new labels, label controls applied to the relabelled
real arm with ``derive_seed(seed, control)``), and many datasets are scored in one stacked probe fit
through the audit's own :func:`auditkit.audit.probe.probe_rows` and :func:`auditkit.metrics.selectivity_table`.
Orchestration only: the statistics live in :mod:`auditkit.calibration.stats`, the generators in
:mod:`auditkit.calibration.synthetic`, the recovery checks in :mod:`auditkit.calibration.recovery`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from auditkit.audit.arms import Arm, ArmPlan, build_arms, label_control, split_for_seed
from auditkit.audit.config import known_controls
from auditkit.audit.options import PursuitAuditOptions, SAEAuditOptions
from auditkit.audit.probe import MDL_DIRECTIONS, MDL_METRICS, probe_rows
from auditkit.audit.registry import METHODS
from auditkit.calibration.features import FEATURE_METHODS, FeatureCache, baselines_of, score_features
from auditkit.calibration.stats import fpr_table, power_table, seed_differences
from auditkit.calibration.synthetic import (
    null_labels,
    planted_labels,
    set_language,
    set_membership_batch,
    train_set_language_model,
)
from auditkit.controls import registry
from auditkit.errors import ConfigError
from auditkit.extract import ExtractConfig
from auditkit.methods.probes import registry as probe_kinds
from auditkit.methods.probes.mdl import DEFAULT_SCHEDULE, check_schedule
from auditkit.metrics import selectivity_table
from auditkit.metrics.evidence import EVIDENCE_COLUMNS
from auditkit.metrics.selectivity import VERDICT_RULE
from auditkit.models import LoadedModel
from auditkit.seeding import derive_seed
from auditkit.types import REAL, ModelProvenance

logger = logging.getLogger(__name__)

CALIBRATED_METHODS = ("probe", "sae", "pursuit")
"""Methods whose label verdicts :func:`calibrate` measures: every probe kind (methods ``probe-<kind>``),
the SAE's k-sparse probing of latents (``sae-k1``, ``sae-k5``, ``sae-k20``) and the pursuit code probe
(``pursuit-code``), see :mod:`auditkit.calibration.features`. SAE and pursuit verdicts on reconstruction
metrics compare arms whose activations differ by construction, so a label null does not apply to them."""

NULL = "null-labels"
"""``kind`` of a null dataset (not plain "null", which CSV readers turn into a missing value)."""
NULL_REPEATED_TEXT = "null-repeated-text"
"""A null whose label belongs to the text: every row of an example, and of every copy of a repeated
sequence, carries that example's label (a sentence-level null over repeated texts)."""
NULL_REPEATED_TOKEN = "null-repeated-token"
"""A null whose label belongs to a word of a text: copies of a repeated sequence carry the same label at
the same position (a token-level null over repeated texts)."""
NULL_KINDS = (NULL, NULL_REPEATED_TEXT, NULL_REPEATED_TOKEN)


@dataclass(frozen=True, kw_only=True)
class CalibrationConfig:
    """One calibration run: the audit settings under test, the datasets drawn, the synthetic model."""

    methods: tuple[str, ...] = ("probe",)
    """Methods whose label verdicts are calibrated: ``probe``, ``sae``, ``pursuit`` (see ``CALIBRATED_METHODS``)."""
    controls: tuple[str, ...] | None = None
    """Controls to calibrate; None for every default control of the methods (as ``auditkit audit``)."""
    n_null: int = 100
    """Null datasets (labels independent of the tokens, drawn per row)."""
    n_null_repeated: int = 0
    """Null datasets of each repeated-text family (:data:`NULL_REPEATED_TEXT`, :data:`NULL_REPEATED_TOKEN`):
    labels independent of the tokens but shared by a text's copies, so a split that let copies straddle
    train and test would show up as false positives."""
    repeated_sequences: int = 16
    """Sequences of the batch that appear three times (copies merged into one example, as every
    tokenised dataset's are); the other sequences appear once."""
    strengths: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5, 1.0)
    """Signal-to-noise ratios of the planted datasets (the power curve's x axis)."""
    n_planted: int = 40
    """Planted datasets per strength."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Audit seeds of every dataset (the audit's default)."""
    n_seed_sets: int = 1
    """Seed sets the datasets cycle through: set k uses ``seeds`` shifted by ``k * (max(seeds) + 1)``.
    All datasets share one batch of tokens, so with one set every dataset sees the *same* control
    draws (token-control tokens, reinit weights, control-task labels, which hash (seed, token type)):
    the FPR is then conditional on those draws. Audited datasets in the wild differ in their tokens, so
    their control draws differ too; several sets average over them (the marginal FPR)."""
    test_fraction: float = 0.25
    """Share of examples held out for scoring (the audit's default)."""
    selectivity_threshold: float = 0.05
    """Minimum mean (real - control) for a 'selective' verdict (the audit's default)."""
    probe_C: float = 1.0
    """Inverse L2 strength of the logistic probe (the audit's default)."""
    sae: SAEAuditOptions = field(default_factory=SAEAuditOptions)
    """How the ``sae`` method trains its SAEs (the audit's defaults)."""
    pursuit: PursuitAuditOptions = field(default_factory=PursuitAuditOptions)
    """How the ``pursuit`` method codes (the audit's defaults: OMP against each arm's own W_E)."""
    probes: tuple[str, ...] = ("logistic", "mass-mean", "lda")
    """Probe kinds whose verdicts are calibrated (each is its own method, ``probe-<kind>``). The default
    is the closed-form and convex kinds, fast enough for ``auditkit validate``; the iterative low-rank and
    MLP probes cost 25-50x more per dataset and are calibrated by ``bench/bench_calibration.py``."""
    metric: str = "accuracy"
    """Metric the verdict is read on (the audit's verdict rule uses held-out accuracy)."""
    mdl_probes: tuple[str, ...] = ()
    """Probe kinds whose online-codelength verdicts (``auditkit audit --mdl``) are calibrated too: each
    metric of :data:`auditkit.audit.probe.MDL_METRICS` becomes its own method, ``probe-<kind>:<metric>``."""
    mdl_schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    """Block ends of the online code (the audit's default)."""
    nominal: float = 0.05
    """False-positive rate the report states as the rule's level."""
    vocab_size: int = 1024
    """Token types of the synthetic set language (many more than d_model: no memorising types)."""
    n_sequences: int = 64
    """Sequences (examples) per dataset; rows = n_sequences * seq_length."""
    seq_length: int = 16
    """Labelled tokens per sequence."""
    d_model: int = 64
    """Width of the tiny model."""
    train_steps: int = 200
    """Training steps of the tiny model."""
    hook: str = "blocks.0.hook_resid_post"
    """Hook the arms are read at."""
    chunk: int = 25
    """Datasets scored per stacked probe fit (memory grows with it, overhead shrinks)."""
    seed: int = 0
    """Root seed of the model, the batch and every label draw."""
    recovery: bool = False
    """Also run the dictionary recovery checks (:mod:`auditkit.calibration.recovery`)."""
    progress: bool = False
    """Show a progress bar over dataset chunks."""

    def __post_init__(self) -> None:
        dense = probe_kinds.dense_names()
        for bad, why in [
            (
                not self.methods or any(m not in CALIBRATED_METHODS for m in self.methods),
                f"methods {self.methods}: verdicts of {list(CALIBRATED_METHODS)} are calibrated",
            ),
            (self.controls is not None and not self.controls, "controls is empty: name one, or leave it out"),
            (
                any(c not in known_controls() for c in self.controls or ()),
                f"controls {self.controls}: unknown; use {list(known_controls())}",
            ),
            (not self.probes or any(p not in dense for p in self.probes), f"probes {self.probes}: use {list(dense)}"),
            (any(p not in dense for p in self.mdl_probes), f"mdl_probes {self.mdl_probes}: use {list(dense)}"),
            (bool(self.mdl_probes) and "probe" not in self.methods, "mdl_probes needs the probe method"),
            (
                min(self.n_null, self.n_planted, self.n_null_repeated) < 0,
                f"n_null={self.n_null}, n_null_repeated={self.n_null_repeated}, n_planted={self.n_planted} must be >= 0",
            ),
            (
                self.n_null + self.n_null_repeated + self.n_planted * len(self.strengths) == 0,
                "no datasets: set n_null, n_null_repeated or n_planted > 0",
            ),
            (
                not 0 <= self.repeated_sequences <= self.n_sequences,
                f"repeated_sequences={self.repeated_sequences} must be in [0, n_sequences={self.n_sequences}]",
            ),
            (any(s < 0 for s in self.strengths), f"strengths {self.strengths} must be >= 0"),
            (len(self.seeds) < 2 or len(set(self.seeds)) != len(self.seeds), f"seeds {self.seeds}: need >= 2 distinct"),
            (min(self.seeds) < 0, f"seeds {self.seeds} must be >= 0"),
            (self.n_seed_sets < 1, f"n_seed_sets must be >= 1, got {self.n_seed_sets}"),
            (not 0 < self.test_fraction < 1, f"test_fraction must be in (0, 1), got {self.test_fraction}"),
            (not 0 < self.nominal < 1, f"nominal must be in (0, 1), got {self.nominal}"),
            (self.n_sequences < 8 or self.seq_length < 1, "need n_sequences >= 8 and seq_length >= 1"),
            (self.chunk < 1 or self.train_steps < 0, f"chunk={self.chunk} must be >= 1, train_steps >= 0"),
        ]:
            if bad:
                raise ConfigError(f"calibration config: {why}")
        check_schedule(self.mdl_schedule)
        for method in self.methods:
            own = method == "pursuit" and bool(self.pursuit.dictionary_controls)
            if not self.controls_for(method) and not own:
                raise ConfigError(
                    f"calibration config: none of the controls {list(self.controls or ())} applies to {method}: "
                    f"add one of {list(METHODS[method].controls())}"
                )

    def resolved_controls(self) -> tuple[str, ...]:
        if self.controls is not None:
            return self.controls
        return tuple(dict.fromkeys(c for m in self.methods for c in METHODS[m].default_controls()))

    def controls_for(self, method: str) -> tuple[str, ...]:
        """The controls ``method`` is calibrated against: its audit defaults, or the asked-for ones it applies to."""
        if self.controls is None:
            return METHODS[method].default_controls()
        return tuple(c for c in self.controls if c in METHODS[method].controls())

    def seed_sets(self) -> list[tuple[int, ...]]:
        shift = max(self.seeds) + 1
        return [tuple(s + k * shift for s in self.seeds) for k in range(self.n_seed_sets)]


@dataclass(frozen=True, kw_only=True)
class CalibrationResult:
    """Everything the calibration report needs."""

    config: CalibrationConfig
    fpr: pd.DataFrame
    """method, control, n_null, n_selective, fpr, ci_low, ci_high, nominal, interval_rate, ... ."""
    power: pd.DataFrame
    """method, control, strength, power, n, ci_low, ci_high, mean_selectivity, mean_real, ideal_accuracy."""
    verdicts: pd.DataFrame
    """One row per (dataset, method, control): kind (``null-labels`` or ``planted``), strength, selectivity,
    interval and verdict."""
    recovery: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Dictionary recovery checks (empty unless ``config.recovery``)."""
    info: dict[str, Any] = field(default_factory=dict)
    """Synthetic model and data sizes, the verdict rule, timings."""


@dataclass(frozen=True)
class _Dataset:
    index: int
    kind: str
    strength: float
    labels_N: np.ndarray
    seeds: tuple[int, ...]
    ideal_accuracy: float


def calibration_arms(cfg: CalibrationConfig, timings: dict[str, float]) -> tuple[list[Arm], dict[str, Any]]:
    """Every arm of every seed set, built once from the trained set-language model."""
    t = time.perf_counter()
    lang = set_language(cfg.vocab_size, seed=cfg.seed)
    model = train_set_language_model(lang, seed=cfg.seed, steps=cfg.train_steps, d_model=cfg.d_model)
    timings["train_model_s"] = time.perf_counter() - t
    prov = ModelProvenance(
        name="set-language-lm",
        source="random-init",
        architecture="GPT2LMHeadModel",
        n_layers=1,
        d_model=cfg.d_model,
        d_vocab=lang.vocab_size,
        seed=cfg.seed,
    )
    batch = set_membership_batch(
        lang, cfg.n_sequences, cfg.seq_length, seed=derive_seed(cfg.seed, "batch"), repeated=cfg.repeated_sequences
    )
    plan = ArmPlan(
        loaded=LoadedModel(model, prov),
        batch=batch,
        cache_root=None,
        test_fraction=cfg.test_fraction,
        extract_cfg=ExtractConfig(hook=cfg.hook, progress=False),
        controls=cfg.resolved_controls(),
        seeds=tuple(s for group in cfg.seed_sets() for s in group),
    )
    t = time.perf_counter()
    arms = build_arms(plan, {})
    timings["build_arms_s"] = time.perf_counter() - t
    real = arms[0].acts
    info = dict(
        model=f"1-layer GPT-2 (d_model={cfg.d_model}) trained {cfg.train_steps} steps on a two-set Markov "
        f"language of {cfg.vocab_size} token types",
        hook=cfg.hook,
        n_rows=real.n,
        d=real.d,
        n_examples=batch.n_examples,
        n_test_rows_approx=int(round(real.n * cfg.test_fraction)),
        repeated_sequences=cfg.repeated_sequences,
        merged_copies=batch.merged_examples,
    )
    return arms, info


def relabel(arms: list[Arm], labels_N: np.ndarray, *, test_fraction: float) -> list[Arm]:
    """The arms as :func:`build_arms` would have built them had the batch carried ``labels_N``.

    Each seed's split is redrawn from the new labels (it is stratified by label); token and weight
    control arms carry the same labels as the real arm (their rows are the same items); label controls
    are applied to the relabelled real arm with their seed and draw (:func:`auditkit.audit.arms.draw_seed`). Activations are shared,
    not copied, so arms that shared a tensor still do (one stacked fit in ``probe_rows``).
    """
    real = {
        a.seed: split_for_seed(a.acts.replace(labels_N=labels_N), a.seed, test_fraction)
        for a in arms
        if a.control == REAL
    }
    out = []
    for arm in arms:
        if registry.stage_of(arm.control) == "label":
            acts = label_control(real[arm.seed], arm.control, arm.seed, arm.draw)
        else:
            acts = arm.acts.replace(labels_N=labels_N, is_test_N=real[arm.seed].is_test_N)
        out.append(dataclasses.replace(arm, acts=acts))
    return out


def _datasets(cfg: CalibrationConfig, real: Any) -> Iterator[_Dataset]:
    sets, acts_ND = cfg.seed_sets(), real.acts_ND
    plan = [(NULL, 0.0)] * cfg.n_null + [(k, 0.0) for k in NULL_KINDS[1:] for _ in range(cfg.n_null_repeated)]
    plan += [("planted", s) for s in cfg.strengths for _ in range(cfg.n_planted)]
    # What a repeated-text null's label belongs to: the example, or the (example, position) word.
    owner = {
        NULL_REPEATED_TEXT: np.unique(real.example_ids_N, return_inverse=True)[1],
        NULL_REPEATED_TOKEN: np.unique(np.stack([real.example_ids_N, real.positions_N]), axis=1, return_inverse=True)[
            1
        ],
    }
    for j, (kind, strength) in enumerate(plan):
        if kind == NULL:
            labels, ideal = null_labels(acts_ND.shape[0], seed=derive_seed(cfg.seed, "calibration", "null", j)), 0.5
        elif kind in owner:
            inverse = np.asarray(owner[kind]).ravel()
            per_owner = null_labels(int(inverse.max()) + 1, seed=derive_seed(cfg.seed, "calibration", kind, j))
            labels, ideal = per_owner[inverse], 0.5
        else:
            seed = derive_seed(cfg.seed, "calibration", "planted", j)
            planted = planted_labels(acts_ND, strength=strength, seed=seed)
            labels, ideal = planted.labels_N, planted.ideal_accuracy
        yield _Dataset(j, kind, strength, labels, sets[j % len(sets)], ideal)


def _score_chunk(
    arms: list[Arm], chunk: list[_Dataset], cfg: CalibrationConfig, features: dict[str, FeatureCache]
) -> pd.DataFrame:
    """Tidy rows with a ``dataset`` column for a chunk of datasets, each method fitted in stacked calls.

    The audit's row functions name rows by arm seed; each (dataset, seed) gets its own key while
    fitting and the real seed back afterwards.
    """
    keys: dict[tuple[int, int], int] = {}
    probe_arms: list[Arm] = []
    batches: dict[str, list] = {m: [] for m in features}
    for ds in chunk:
        relabelled = relabel([a for a in arms if a.seed in ds.seeds], ds.labels_N, test_fraction=cfg.test_fraction)
        ds_keys = {a.seed: keys.setdefault((ds.index, a.seed), len(keys)) for a in relabelled}
        if "probe" in cfg.methods:
            probe_arms += [dataclasses.replace(a, seed=ds_keys[a.seed]) for a in _arms_for("probe", relabelled, cfg)]
        for method in features:
            batches[method].append((_arms_for(method, relabelled, cfg), ds_keys))
    parts = [score_features(features[m], batches[m]) for m in features]
    if probe_arms:
        rows, _ = probe_rows(probe_arms, cfg.probes, C=cfg.probe_C)
        parts.append(rows[rows["metric"] == cfg.metric])
    if probe_arms and cfg.mdl_probes:
        rows, _ = probe_rows(probe_arms, cfg.mdl_probes, C=cfg.probe_C, mdl=cfg.mdl_schedule)
        rows = rows[rows["metric"].isin(MDL_METRICS)]
        parts.append(rows.assign(method=rows["method"] + ":" + rows["metric"]))
    rows = pd.concat(parts, ignore_index=True)
    inverse = {key: pair for pair, key in keys.items()}
    rows["dataset"] = rows["seed"].map(lambda k: inverse[k][0])
    rows["seed"] = rows["seed"].map(lambda k: inverse[k][1])
    return rows


def _arms_for(method: str, arms: list[Arm], cfg: CalibrationConfig) -> list[Arm]:
    controls = set(cfg.controls_for(method))
    return [a for a in arms if a.control == REAL or a.control in controls]


def _verdicts(rows: pd.DataFrame, datasets: dict[int, Any], threshold: float) -> pd.DataFrame:
    """The audit's verdict per (dataset, method, control); a dataset is anything with ``kind``, ``strength`` and
    ``ideal_accuracy`` (the synthetic and the embedded calibration's datasets)."""
    parts = []
    for j, sub in rows.groupby("dataset", sort=True):
        sel = selectivity_table(
            sub.drop(columns="dataset"),
            threshold=threshold,
            directions=MDL_DIRECTIONS,
            draw_spread=registry.names(where=lambda c: c.random_model),
        )
        sel = sel.drop(columns=list(EVIDENCE_COLUMNS))  # the calibration counts verdicts; its tables keep their columns
        ds = datasets[j]
        parts.append(sel.assign(dataset=j, kind=ds.kind, strength=ds.strength, ideal_accuracy=ds.ideal_accuracy))
    return pd.concat(parts, ignore_index=True)


class _CountUnconverged(logging.Filter):
    """Counts (and drops) the probe's 'above gradient tolerance' warnings.

    On null labels L-BFGS routinely ends a hair above tol (gradients ~1e-5 against 1e-6) after
    max_iter; the audit's default fit is what is being calibrated, so the count is reported instead.
    """

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if "above gradient tolerance" in record.getMessage():
            self.count += 1
            return False
        return True


@contextlib.contextmanager
def _quiet_probe() -> Iterator[_CountUnconverged]:
    flt = _CountUnconverged()
    target = logging.getLogger("auditkit.methods.probes.base")
    target.addFilter(flt)
    try:
        yield flt
    finally:
        target.removeFilter(flt)


def calibrate(cfg: CalibrationConfig) -> CalibrationResult:
    """Run the calibration described by ``cfg`` (see the module docstring)."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    arms, info = calibration_arms(cfg, timings)
    datasets = {ds.index: ds for ds in _datasets(cfg, arms[0].acts)}
    # Datasets of one seed set share their control arms' tensors: chunk them together so they stack.
    order = sorted(datasets.values(), key=lambda ds: (ds.seeds, ds.index))
    parts, t = [], time.perf_counter()
    features = {
        m: FeatureCache(m, sae=cfg.sae, pursuit=cfg.pursuit, baselines=baselines_of(cfg.controls_for(m)))
        for m in cfg.methods
        if m in FEATURE_METHODS
    }
    with _quiet_probe() as unconverged:
        chunks = [order[i : i + cfg.chunk] for i in range(0, len(order), cfg.chunk)]
        for chunk in tqdm(chunks, desc="calibration", unit="chunk", disable=not cfg.progress):
            parts.append(_score_chunk(arms, chunk, cfg, features))
    rows = pd.concat(parts, ignore_index=True)
    timings["fit_s"] = time.perf_counter() - t
    for method, cache in features.items():
        timings[f"{method}_features_s"] = cache.seconds
    verdicts = _verdicts(rows, datasets, cfg.selectivity_threshold)
    diffs = seed_differences(rows)
    fprs = []
    for kind in NULL_KINDS:
        ids = [j for j, ds in datasets.items() if ds.kind == kind]
        if ids:
            sub = fpr_table(verdicts[verdicts["kind"] == kind], diffs[diffs["dataset"].isin(ids)], nominal=cfg.nominal)
            fprs.append(sub.assign(null=kind))
    fpr = pd.concat(fprs, ignore_index=True) if fprs else pd.DataFrame()
    power = power_table(verdicts[verdicts["kind"] == "planted"])
    recovery = pd.DataFrame()
    if cfg.recovery:
        from auditkit.calibration.recovery import recovery_checks

        t = time.perf_counter()
        recovery = recovery_checks(seed=cfg.seed)
        timings["recovery_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0
    info.update(
        verdict_rule=VERDICT_RULE.format(threshold=cfg.selectivity_threshold),
        controls=list(cfg.resolved_controls()),
        seed_sets=[list(s) for s in cfg.seed_sets()],
        n_datasets=len(datasets),
        unconverged_fit_warnings=unconverged.count,
        timings=timings,
    )
    logger.info("calibration: %d datasets in %.0f s", len(datasets), timings["total_s"])
    return CalibrationResult(config=cfg, fpr=fpr, power=power, verdicts=verdicts, recovery=recovery, info=info)


VALIDATE_SAE = SAEAuditOptions(training_tokens=8192)
"""SAE settings of ``auditkit validate`` (fast): the audit's defaults on a sixth of the token budget, since
validate trains one SAE per arm and seed of every seed set (150 at the fast size); ``--full`` and the
benchmark train with the audit's defaults."""


def validate_config(fast: bool = True, seed: int = 0) -> CalibrationConfig:
    """The configuration ``auditkit validate`` runs: ``fast`` is a few minutes on a 2-core CPU."""
    methods = ("probe", "sae", "pursuit")
    if fast:
        return CalibrationConfig(
            methods=methods,
            n_null=100,
            n_null_repeated=50,
            n_planted=20,
            strengths=(0.1, 0.2, 0.3, 0.5, 1.0),
            n_seed_sets=10,
            seed=seed,
            recovery=True,
            sae=VALIDATE_SAE,
            mdl_probes=("logistic",),
        )
    return CalibrationConfig(
        methods=methods,
        n_null=400,
        n_null_repeated=200,
        n_planted=50,
        strengths=(0.1, 0.2, 0.3, 0.5, 1.0, 2.0),
        n_seed_sets=20,
        seed=seed,
        recovery=True,
        mdl_probes=("logistic",),
    )


def run_validate(fast: bool = True, seed: int = 0, *, progress: bool = False) -> CalibrationResult:
    """Calibrate every default method x control pair at the audit's default settings."""
    return calibrate(dataclasses.replace(validate_config(fast, seed), progress=progress))
