"""Calibration where audits run: the embedded model at the default hook, on real texts.

:mod:`auditkit.calibration.run` calibrates on a tiny synthetic model. This module measures the same verdict
rule on the audit's own setting (the default model and hook, last position, about 1,000 texts of a real
dataset, seeds 0-2 of the audit) with three families of datasets:

- ``null-labels``: labels drawn at random per text (balanced), independent of the text: every arm is noise;
- ``planted``: labels read from the real arm's activations along a random direction at a chosen
  signal-to-noise (:func:`auditkit.calibration.synthetic.planted_labels`, one latent score per text);
- ``null-weight``: the **null of the weight controls**. A model that is itself one draw of a weight
  control's distribution (a spectral or Gaussian reinitialisation of the trained model) is audited as if it
  were the trained model, against three other draws of the same control, on labels every such model can
  read (:func:`lexical_labels`: a frequent word's presence, a length cue). The audited model and its control
  draws are exchangeable, so "selective against spectral-reinit / gaussian-reinit" is a false positive.

Every arm's activations are extracted once (through the activation cache): the real arm, a pool of
``n_draws`` draws of each weight control (draw ``d`` is the arm ``build_arms`` makes for audit seed ``d``)
and ``n_token_draws`` random-token draws. A dataset then picks its arms: its audit seeds set the splits and
the label-control draws (exactly as :func:`auditkit.calibration.run.relabel` rebuilds them), and each seed's
token and weight arm is a pool draw, so the rates average over control draws rather than condition on three.
Scoring goes through the audit's own :func:`~auditkit.audit.probe.probe_rows` and
:func:`~auditkit.metrics.selectivity_table`, many datasets per stacked fit.

**True selectivity** of a planted dataset (for the interval's coverage): the expected per-seed difference
real - control over the audit's own randomness (the seed's split of these texts, its label-control draw, its
control model) with the texts and labels held fixed, which each seed's difference estimates without bias.
It is estimated on ``n_truth_seeds`` fresh seeds whose weight and token arms are pool draws the audit of
that dataset did not use.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from auditkit.audit.arms import Arm, ArmPlan, build_arms, prefetch_hooks
from auditkit.audit.config import DEFAULT_DATASET, AuditConfig
from auditkit.audit.probe import probe_rows
from auditkit.calibration.run import NULL, _quiet_probe, _verdicts, relabel
from auditkit.calibration.stats import (
    coverage_table,
    fpr_table,
    fresh_draw_coverage,
    fresh_draw_targets,
    power_table,
    seed_differences,
)
from auditkit.calibration.synthetic import planted_labels
from auditkit.controls import LABEL_CONTROLS, RANDOM_MODEL_CONTROLS, TOKEN_CONTROLS, registry
from auditkit.errors import ConfigError
from auditkit.metrics.selectivity import INTERVAL_RULE, PREDICTION_RULE, VERDICT_RULE
from auditkit.models import DEFAULT_MODEL, ModelSpec
from auditkit.seeding import derive_seed, numpy_rng
from auditkit.types import REAL, ActivationSet

PLANTED = "planted"
NULL_WEIGHT = "null-weight"
"""``kind`` of a weight-control null dataset: a reinitialised draw audited against other draws of its control."""
TRUTH = "truth"
"""``kind`` of the fresh-seed companion of a planted dataset, scored only to estimate its true selectivity."""


@dataclass(frozen=True, kw_only=True)
class EmbeddedCalibrationConfig:
    """One calibration run on the embedded model: the audit settings and the datasets drawn."""

    model: str = DEFAULT_MODEL
    """Model audited (the audit's default: the embedded model)."""
    dataset: str = DEFAULT_DATASET
    """Texts the label sets are drawn on (their own labels are not used)."""
    max_examples: int | None = 1000
    """Texts read from the dataset (the audit's default)."""
    hook: str | None = None
    """Hook read; None for the audit's default (the residual stream entering the middle block)."""
    label_controls: tuple[str, ...] = ("shuffled-labels", "control-task")
    """Label controls calibrated on the label nulls and planted sets."""
    token_controls: tuple[str, ...] = ("random-tokens-uniform",)
    """Token controls calibrated on the label nulls and planted sets (pool of ``n_token_draws``)."""
    weight_controls: tuple[str, ...] = RANDOM_MODEL_CONTROLS
    """Weight controls: calibrated on the label nulls and planted sets, and by their own null (``null-weight``)."""
    n_draws: int = 8
    """Draws of each weight control in the pool (draw d is audit seed d's control model)."""
    n_token_draws: int = 5
    """Draws of each token control in the pool."""
    n_null: int = 100
    """Label-null datasets."""
    strengths: tuple[float, ...] = (0.5, 1.0)
    """Signal-to-noise of the planted datasets."""
    n_planted: int = 40
    """Planted datasets per strength."""
    n_truth_seeds: int = 12
    """Fresh seeds per planted dataset that estimate its true selectivity."""
    n_rotations: int = 16
    """Weight-control null datasets per label and weight control (each a new audited draw and control draws)."""
    df_range: tuple[float, float] = (0.1, 0.5)
    """Document-frequency range of the words whose presence makes a lexical label."""
    probes: tuple[str, ...] = ("logistic", "mass-mean")
    """Probe kinds calibrated (each its own method, ``probe-<kind>``)."""
    metrics: tuple[str, ...] = ("accuracy", "auroc")
    """Metrics calibrated (each verdict table gets a ``metric`` column)."""
    label_draws: int = 10
    """Draws of each label control per seed (the audit's default)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Audit seeds per dataset (their number; each dataset gets its own seed values)."""
    test_fraction: float = 0.25
    """Share of texts held out for scoring (the audit's default)."""
    selectivity_threshold: float = 0.05
    """Minimum mean (real - control) for a 'selective' verdict (the audit's default)."""
    probe_C: float = 1.0
    """Inverse L2 strength of the logistic probe (the audit's default)."""
    probe_c_grid: tuple[float, ...] = ()
    """The audit's ``--probe-c-grid``: empty, every probe at :attr:`probe_C`; else each arm and seed chooses its C."""
    nominal: float = 0.05
    """False-positive rate the report states as the rule's level."""
    chunk: int = 20
    """Datasets scored per stacked probe fit."""
    seed: int = 0
    """Root seed of every label set and draw assignment."""
    cache_dir: Path | None = None
    """Root of auditkit's cache (the activation cache makes a rerun cheap); None for the default."""

    def __post_init__(self) -> None:
        for bad, why in [
            (any(c not in LABEL_CONTROLS for c in self.label_controls), f"label_controls {self.label_controls}"),
            (any(c not in TOKEN_CONTROLS for c in self.token_controls), f"token_controls {self.token_controls}"),
            (
                any(c not in RANDOM_MODEL_CONTROLS for c in self.weight_controls),
                f"weight_controls {self.weight_controls}",
            ),
            (self.n_draws < len(self.seeds) + 1, f"n_draws={self.n_draws} must exceed the {len(self.seeds)} seeds"),
            (bool(self.token_controls) and self.n_token_draws < len(self.seeds), "n_token_draws < number of seeds"),
            (len(self.seeds) < 2, "need >= 2 seeds"),
            (self.label_draws < 1, f"label_draws={self.label_draws} must be >= 1"),
            (not self.metrics, "metrics is empty"),
            (min(self.n_null, self.n_planted, self.n_rotations, self.n_truth_seeds) < 0, "counts must be >= 0"),
            (not 0 < self.df_range[0] < self.df_range[1] < 1, f"df_range {self.df_range}"),
        ]:
            if bad:
                raise ConfigError(f"embedded calibration config: {why}")

    @property
    def controls(self) -> tuple[str, ...]:
        return (*self.label_controls, *self.token_controls, *self.weight_controls)


@dataclass(frozen=True)
class Pool:
    """The real arm's activations and every control draw's, extracted once."""

    real: ActivationSet
    draws: dict[str, list[ActivationSet]]
    """Token and weight control name -> activations of draw 0, 1, ...; draw d is audit seed d's arm."""
    texts_N: tuple[str, ...]
    """The text of every row."""
    n_tokens_N: np.ndarray
    """Tokens of every row's text (without BOS)."""
    batch: Any
    loaded: Any


@dataclass(frozen=True)
class EmbeddedDataset:
    """One labelling of the texts, its audit seeds and the pool draws each seed's arms read."""

    index: int
    kind: str
    strength: float
    labels_N: np.ndarray
    seeds: tuple[int, ...]
    draws: dict[str, tuple[int, ...]]
    """Control -> pool draw of every seed (token and weight controls)."""
    controls: tuple[str, ...]
    real_draw: tuple[str, int] | None = None
    """A weight-control null's audited model: (control, pool draw); None for the trained model."""
    label: str = ""
    """What the labels are (a lexical label's name; empty for random and planted labels)."""
    ideal_accuracy: float = 0.5
    companion: int | None = None
    """A truth dataset's planted dataset."""


def audit_setup(cfg: EmbeddedCalibrationConfig, timings: dict[str, float]) -> Any:
    """The audit's own preparation (data, model, tokens, arm plan) at ``cfg``'s model, dataset and hook."""
    from auditkit.audit.run import prepare_audit

    acfg = AuditConfig(
        model=ModelSpec(name=cfg.model, cache_dir=cfg.cache_dir),
        dataset=cfg.dataset,
        max_examples=cfg.max_examples,
        hook=cfg.hook,
        controls=cfg.controls,
        progress=False,
    )
    return prepare_audit(acfg, None, timings)


def build_pool(
    plan: ArmPlan, cfg: EmbeddedCalibrationConfig, timings: dict[str, float]
) -> dict[str, list[ActivationSet]]:
    """Every token and weight control draw of the pool: the arms :func:`build_arms` makes for audit seeds
    0..n-1, extracted into the cache one model at a time, then read back."""
    pool: dict[str, list[ActivationSet]] = {}
    for controls, n in ((cfg.weight_controls, cfg.n_draws), (cfg.token_controls, cfg.n_token_draws)):
        if not controls:
            continue
        sub = dataclasses.replace(plan, seeds=tuple(range(n)), controls=controls)
        if sub.cache_root is not None:
            prefetch_hooks(sub, [plan.extract_cfg.hook], timings, controls=(REAL, *controls), release=True)
        for arm in build_arms(sub, timings):
            if arm.control != REAL:
                pool.setdefault(arm.control, []).append(arm.acts)
    return pool


def lexical_labels(
    texts_N: Sequence[str], n_tokens_N: np.ndarray, example_ids_N: np.ndarray, df_range: tuple[float, float]
) -> dict[str, np.ndarray]:
    """Labels any model of the architecture can read off its input: ``has:<word>`` for every word whose
    document frequency (share of texts containing it, lower-cased ``[a-z']+`` runs) lies in ``df_range``,
    and ``longer-than-median`` (more tokens than the median text). Rows of one text share its label."""
    first = np.unique(example_ids_N, return_index=True)[1]
    docs = [set(re.findall(r"[a-z']+", texts_N[i].lower())) for i in first]
    df = Counter(w for d in docs for w in d)
    lo, hi = df_range
    words = sorted((w for w, c in df.items() if lo <= c / len(docs) <= hi), key=lambda w: (-df[w], w))
    inverse = np.unique(example_ids_N, return_inverse=True)[1].ravel()
    out = {f"has:{w}": np.array([w in d for d in docs], dtype=np.int64)[inverse] for w in words}
    n_tok = n_tokens_N[first]
    out["longer-than-median"] = (n_tok > np.median(n_tok)).astype(np.int64)[inverse]
    return out


def dataset_arms(pool: Pool, ds: EmbeddedDataset, test_fraction: float, label_draws: int = 1) -> list[Arm]:
    """The arms of a dataset: the real arm (the trained model, or for a weight-control null the pool draw
    ``ds.real_draw``), and each seed's control arms (label controls drawn on the real arm, token and weight
    controls from their pool draws), relabelled with ``ds.labels_N`` as ``build_arms`` would have built them."""
    real = pool.real if ds.real_draw is None else pool.draws[ds.real_draw[0]][ds.real_draw[1]]
    if ds.real_draw is not None and ds.real_draw[1] in ds.draws.get(ds.real_draw[0], ()):
        raise ConfigError(f"dataset {ds.index}: the audited draw {ds.real_draw} is also one of its control draws")
    arms = []
    model = lambda: pool.loaded  # never called: the calibration scores activations only
    for i, seed in enumerate(ds.seeds):
        arms.append(Arm(REAL, seed, real, pool.batch, model))
        for control in ds.controls:
            if registry.stage_of(control) == "label":  # relabel draws each one from the seed's relabelled real arm
                arms += [Arm(control, seed, real, pool.batch, model, d) for d in range(label_draws)]
            else:
                arms.append(Arm(control, seed, pool.draws[control][ds.draws[control][i]], pool.batch, model))
    return relabel(arms, ds.labels_N, test_fraction=test_fraction)


def _draw_orders(cfg: EmbeddedCalibrationConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A random order of every token and weight control's pool draws: the first ones go to the audit's seeds."""
    sizes = {**{c: cfg.n_draws for c in cfg.weight_controls}, **{c: cfg.n_token_draws for c in cfg.token_controls}}
    return {c: rng.permutation(n) for c, n in sizes.items()}


def label_datasets(cfg: EmbeddedCalibrationConfig, real: ActivationSet) -> list[EmbeddedDataset]:
    """The label nulls and planted datasets on the trained model's arms, each planted dataset followed by its
    truth companion (fresh seeds, pool draws its audit did not use)."""
    uniq, first, inverse = np.unique(real.example_ids_N, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    s = len(cfg.seeds)
    plan = [(NULL, 0.0)] * cfg.n_null + [(PLANTED, x) for x in cfg.strengths for _ in range(cfg.n_planted)]
    out = []
    for j, (kind, strength) in enumerate(plan):
        rng = numpy_rng(derive_seed(cfg.seed, "embedded", kind, j))
        if kind == NULL:  # balanced, one label per text, independent of everything
            per_text, ideal = rng.permutation(np.arange(len(uniq)) % 2).astype(np.int64), 0.5
        else:  # one latent score per text: copies of a text carry one label
            seed = derive_seed(cfg.seed, "embedded", j)
            planted = planted_labels(real.acts_ND[torch.as_tensor(first)], strength=strength, seed=seed)
            per_text, ideal = planted.labels_N, planted.ideal_accuracy
        labels, orders = per_text[inverse], _draw_orders(cfg, rng)
        draws = {c: tuple(int(d) for d in o[:s]) for c, o in orders.items()}
        seeds = tuple(s * j + k for k in range(s))
        out.append(EmbeddedDataset(j, kind, strength, labels, seeds, draws, cfg.controls, ideal_accuracy=ideal))
        if kind == PLANTED and cfg.n_truth_seeds:
            m = cfg.n_truth_seeds
            held = {c: (o[s:] if len(o) > s else o) for c, o in orders.items()}
            out.append(
                EmbeddedDataset(
                    TRUTH_OFFSET + j,
                    TRUTH,
                    strength,
                    labels,
                    tuple(TRUTH_OFFSET + m * j + k for k in range(m)),
                    {c: tuple(int(h[k % len(h)]) for k in range(m)) for c, h in held.items()},
                    cfg.controls,
                    ideal_accuracy=ideal,
                    companion=j,
                )
            )
    return out


TRUTH_OFFSET = 1_000_000
"""Dataset indices and seeds of truth companions start here (audit seeds stay below)."""
WEIGHT_NULL_OFFSET = 2_000_000
"""Dataset indices and seeds of weight-control nulls start here."""


def weight_null_datasets(cfg: EmbeddedCalibrationConfig, pool: Pool) -> list[EmbeddedDataset]:
    """The weight-control nulls: for every weight control, lexical label and rotation, one pool draw audited
    as the model against ``len(seeds)`` other draws of the same control (one per seed)."""
    labels = lexical_labels(pool.texts_N, pool.n_tokens_N, pool.real.example_ids_N, cfg.df_range)
    s, out = len(cfg.seeds), []
    for control in cfg.weight_controls:
        for name, y in labels.items():
            for q in range(cfg.n_rotations):
                j = WEIGHT_NULL_OFFSET + len(out)
                rng = numpy_rng(derive_seed(cfg.seed, "embedded", NULL_WEIGHT, control, name, q))
                order = rng.permutation(cfg.n_draws)
                out.append(
                    EmbeddedDataset(
                        j,
                        NULL_WEIGHT,
                        0.0,
                        y,
                        tuple(s * j + k for k in range(s)),
                        {control: tuple(int(d) for d in order[1 : s + 1])},
                        (control,),
                        real_draw=(control, int(order[0])),
                        label=name,
                    )
                )
    return out


def score_datasets(pool: Pool, chunk: Sequence[EmbeddedDataset], cfg: EmbeddedCalibrationConfig) -> pd.DataFrame:
    """Tidy rows of ``cfg.metrics`` (with ``dataset``) of a chunk of datasets, fitted in stacked calls of the
    audit's :func:`probe_rows`: each (dataset, seed) gets its own key while fitting and its seed back afterwards."""
    keys: dict[tuple[int, int], int] = {}
    arms = []
    for ds in chunk:
        for arm in dataset_arms(pool, ds, cfg.test_fraction, cfg.label_draws):
            arms.append(dataclasses.replace(arm, seed=keys.setdefault((ds.index, arm.seed), len(keys))))
    rows, _ = probe_rows(arms, cfg.probes, C=cfg.probe_C, C_grid=cfg.probe_c_grid)
    rows = rows[rows["metric"].isin(cfg.metrics)].copy()
    inverse = {key: pair for pair, key in keys.items()}
    rows["dataset"] = rows["seed"].map(lambda k: inverse[k][0])
    rows["seed"] = rows["seed"].map(lambda k: inverse[k][1])
    return rows


@dataclass(frozen=True, kw_only=True)
class EmbeddedCalibrationResult:
    """Everything the embedded calibration's report needs."""

    config: EmbeddedCalibrationConfig
    fpr: pd.DataFrame
    """null (``null-labels`` / ``null-weight``), label family, method, control, n_null, n_selective, fpr, CI, ... ."""
    power: pd.DataFrame
    coverage: pd.DataFrame
    """method, control, strength (0: the nulls, whose truth is 0), n, covered, coverage, CI, misses, ... ."""
    verdicts: pd.DataFrame
    truth: pd.DataFrame
    """dataset, method, control, truth, truth_se, n_truth_seeds: the planted datasets' true selectivity."""
    info: dict[str, Any] = field(default_factory=dict)


def _truth(rows: pd.DataFrame, datasets: dict[int, EmbeddedDataset]) -> pd.DataFrame:
    d = seed_differences(rows).groupby(["dataset", "method", "control"])["diff"]
    out = pd.DataFrame({"truth": d.mean(), "truth_se": d.std(ddof=1) / np.sqrt(d.count()), "n_truth_seeds": d.count()})
    out = out.reset_index()
    out["dataset"] = out["dataset"].map(lambda j: datasets[j].companion)
    return out


def _family(label: str) -> str:
    return "lexical" if label.startswith("has:") else label or "random"


def _fprs(verdicts: pd.DataFrame, rows: pd.DataFrame, nominal: float) -> pd.DataFrame:
    diffs, parts = seed_differences(rows), []
    groups = [(NULL, "random", verdicts["kind"] == NULL)]
    for fam in ("lexical", "longer-than-median"):
        groups.append((NULL_WEIGHT, fam, (verdicts["kind"] == NULL_WEIGHT) & (verdicts["family"] == fam)))
    groups.append((NULL_WEIGHT, "all", verdicts["kind"] == NULL_WEIGHT))
    for kind, fam, mask in groups:
        sub = verdicts[mask]
        if not sub.empty:
            ids = set(sub["dataset"])
            table = fpr_table(sub, diffs[diffs["dataset"].isin(ids)], nominal=nominal)
            parts.append(table.assign(null=kind, labels=fam))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _metric_tables(
    rows: pd.DataFrame, datasets: dict[int, EmbeddedDataset], cfg: EmbeddedCalibrationConfig
) -> tuple[pd.DataFrame, ...]:
    """fpr, power, coverage, verdicts and truth tables of one metric's rows."""
    is_truth = rows["dataset"].map(lambda j: datasets[j].kind == TRUTH)
    truth = _truth(rows[is_truth], datasets) if is_truth.any() else pd.DataFrame()
    audit_rows = rows[~is_truth]
    audited = {j: ds for j, ds in datasets.items() if ds.kind != TRUTH}
    verdicts = _verdicts(audit_rows, audited, cfg.selectivity_threshold)
    verdicts["label"] = verdicts["dataset"].map(lambda j: audited[j].label)
    verdicts["family"] = verdicts["label"].map(_family)
    fpr = _fprs(verdicts, audit_rows, cfg.nominal)
    planted = verdicts[verdicts["kind"] == PLANTED]
    power = power_table(planted) if not planted.empty else pd.DataFrame()
    nulls = verdicts[verdicts["kind"] == NULL]
    zero = nulls[["dataset", "method", "control"]].assign(truth=0.0, truth_se=0.0)
    coverage = pd.concat(
        [coverage_table(nulls, zero), coverage_table(planted, truth) if not truth.empty else pd.DataFrame()],
        ignore_index=True,
    )
    drawn = [c for c in (*cfg.weight_controls, *cfg.token_controls) if registry.get(c).random_model]
    if is_truth.any() and drawn and not planted.empty and not coverage.empty:
        targets = fresh_draw_targets(rows[is_truth], drawn)
        targets["dataset"] = targets["dataset"].map(lambda j: datasets[j].companion)
        fresh = fresh_draw_coverage(planted, targets)
        coverage = coverage.merge(fresh, on=["method", "control", "strength"], how="left")
    return fpr, power, coverage, verdicts, truth


def calibrate_embedded(cfg: EmbeddedCalibrationConfig, *, log: Any = None) -> EmbeddedCalibrationResult:
    """Run the calibration described by ``cfg`` (see the module docstring); ``log`` gets progress lines."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    prep = audit_setup(cfg, timings)
    draws = build_pool(prep.plan, cfg, timings)
    timings["pool_s"] = time.perf_counter() - t0
    real = build_arms(dataclasses.replace(prep.plan, seeds=(0,), controls=()), timings)[0].acts
    ds_texts = prep.dataset.item_example_M  # rows are the items, in order (sentence level, last position)
    if real.n != len(ds_texts):
        raise ConfigError(
            f"{cfg.dataset}: {real.n} rows for {len(ds_texts)} items; the calibration needs one row per item"
        )
    n_tok = prep.batch.mask_BL.sum(1).numpy() - int(prep.loaded.provenance.prepend_bos)
    pool = Pool(
        real, draws, tuple(prep.dataset.texts[i] for i in ds_texts), n_tok[real.example_ids_N], prep.batch, prep.loaded
    )
    datasets = {ds.index: ds for ds in [*label_datasets(cfg, real), *weight_null_datasets(cfg, pool)]}
    t, parts = time.perf_counter(), []
    order = list(datasets.values())
    chunks = [order[i : i + cfg.chunk] for i in range(0, len(order), cfg.chunk)]
    with _quiet_probe() as unconverged:
        for i, chunk in enumerate(chunks):
            parts.append(score_datasets(pool, chunk, cfg))
            if log is not None:
                log(f"chunk {i + 1}/{len(chunks)} ({time.perf_counter() - t:.0f} s)")
    rows = pd.concat(parts, ignore_index=True)
    timings["fit_s"] = time.perf_counter() - t
    tables = [_metric_tables(rows[rows["metric"] == m], datasets, cfg) for m in cfg.metrics]
    fpr, power, coverage, verdicts, truth = (
        pd.concat([t[k].assign(metric=m) for t, m in zip(tables, cfg.metrics) if not t[k].empty], ignore_index=True)
        for k in range(5)
    )
    timings["total_s"] = time.perf_counter() - t0
    counts = Counter(ds.kind for ds in datasets.values())
    info = dict(
        model=prep.loaded.provenance.name,
        hook=prep.hook,
        positions=real.positions,
        dataset=cfg.dataset,
        n_rows=real.n,
        d=real.d,
        n_texts=int(len(np.unique(real.example_ids_N))),
        n_test_texts_approx=int(round(len(np.unique(real.example_ids_N)) * cfg.test_fraction)),
        n_datasets={k: int(v) for k, v in counts.items()},
        lexical_labels=sorted({ds.label for ds in datasets.values() if ds.label}),
        verdict_rule=VERDICT_RULE.format(threshold=cfg.selectivity_threshold),
        interval_rule=f"{INTERVAL_RULE}; {PREDICTION_RULE}",
        controls=list(cfg.controls),
        label_draws=cfg.label_draws,
        metrics=list(cfg.metrics),
        pool_draws={c: len(v) for c, v in draws.items()},
        unconverged_fit_warnings=unconverged.count,
        timings=timings,
    )
    return EmbeddedCalibrationResult(
        config=cfg, fpr=fpr, power=power, coverage=coverage, verdicts=verdicts, truth=truth, info=info
    )
