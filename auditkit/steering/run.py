"""Probe versus steering vectors: reading and writing directions compared by what they do to the forward pass.

Orchestration only (the maths lives in :mod:`auditkit.steering.directions` and
:mod:`auditkit.steering.effects`, the hooked passes in :mod:`auditkit.steering.hooks`, the rendering in
:mod:`auditkit.report.steering`). For every arm (the real model, then each weight control) the same
code runs: read activations at the steering hook and at a later hook, fit readers for every
(seed, concept) at both, build the directions (logistic, mass-mean, LDA, the dual basis of the
logistic readers, random), then add each direction at every dose to held-out texts and measure what
moved. Every result row carries its arm, direction, concept, seed and dose.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from auditkit.controls import registry
from auditkit.controls.weights import reinit_loaded
from auditkit.data import load_sae_probes
from auditkit.errors import ConfigError
from auditkit.models import LoadedModel, ModelSpec, default_hook, load_model
from auditkit.seeding import derive_seed, numpy_rng
from auditkit.steering.data import Concepts, label_token_ids, load_concepts, tokenize_texts
from auditkit.steering.directions import (
    DIRECTION_KINDS,
    READERS,
    class_gaps,
    dual_basis,
    fit_readers,
    random_directions,
    reader_geometry,
    reading_auroc,
    unit,
)
from auditkit.steering.effects import effect_values, label_logodds, later_shifts, step_vectors
from auditkit.steering.hooks import Site, SteeredRows, prefix_residual, read_last, residual_site, steered_rows
from auditkit.steering.summary import summarise, verdicts
from auditkit.types import REAL

logger = logging.getLogger(__name__)


def weight_controls() -> tuple[str, ...]:
    """The controls a steering run applies: the registered weight controls that rebuild the model (``apply``;
    step0 loads a checkpoint instead)."""
    return registry.names("weight", where=lambda c: c.apply is not None)


WEIGHT_CONTROLS = weight_controls()
"""The built-in ones, at import."""


@dataclass(frozen=True, kw_only=True)
class SteeringConfig:
    """One steering comparison: model, concepts, hooks, doses, controls, seeds."""

    model: ModelSpec = field(default_factory=ModelSpec)
    """The model to steer."""
    datasets: tuple[str, ...] = ("17_world_country",)
    """sae-probes tags: a K-class task gives K concepts (one-vs-rest), a binary task one; give two or
    more binary tasks, or a multiclass one, so the dual basis has something to be dual to."""
    template: str = "{text}"
    """Format of every text; ``{text}`` is replaced by the dataset's text."""
    max_examples: int | None = 300
    """Texts per dataset (a stratified, seeded subsample); None for all."""
    max_length: int = 64
    """Tokens per text, BOS included."""
    hook: str | None = None
    """Residual hook written at (and read at); default: the residual stream entering the middle block."""
    later_hook: str | None = None
    """Residual hook after ``hook`` where the downstream readout is measured; default: a quarter of the
    model's depth later (``blocks.{min(l + n/4, n) - 1}.hook_resid_post``)."""
    positions: str = "all"
    """Add the vector at every non-BOS token, or at the last (labelled) token only."""
    scale: str = "norm"
    """Dose unit: the mean activation norm, or the target readout's class-mean gap (see steering_effects)."""
    alphas: tuple[float, ...] = (0.0, 0.03125, 0.0625, 0.125, 0.25)
    """Doses, in ``scale`` units (0 is the clean run). In ``norm`` units on SmolLM2-135M's middle layer,
    0.125 already moves the later readout by most of a class gap at a next-token KL near 0.2 nats, and
    0.25 costs about a nat of held-out cross-entropy."""
    reference_alpha: float | None = None
    """Dose at which the writing verdicts are taken; default the median of the doses above 0 (the
    upper one of the middle two), a dose that moves the readouts without wrecking the model."""
    controls: tuple[str, ...] = ("spectral-reinit",)
    """Weight controls run through the same computation (``()`` for none)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds: each gives its own train/test split and held-out texts to steer."""
    test_fraction: float = 0.25
    """Share of texts held out from probe training."""
    n_eval: int = 16
    """Held-out texts steered per seed."""
    heldout: str = "97_news_class"
    """sae-probes tag whose texts serve as held-out prose for the cross-entropy cost."""
    n_heldout: int = 2
    """Held-out prose texts."""
    heldout_max_length: int = 32
    """Tokens per held-out prose text, BOS included."""
    probe_C: float = 1.0
    """Inverse L2 strength of the logistic readers."""
    batch_size: int = 32
    """Rows per forward pass."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        checks = [
            (not self.datasets, f"datasets is empty: name at least one sae-probes tag, got {self.datasets!r}"),
            ("{text}" not in self.template, f"template {self.template!r} has no {{text}} field"),
            (not self.seeds or len(set(self.seeds)) != len(self.seeds), f"seeds {self.seeds} must be distinct, >= 1"),
            (
                not self.alphas or any(a < 0 or not math.isfinite(a) for a in self.alphas),
                f"alphas {self.alphas} must be non-empty, finite and >= 0",
            ),
            (len(set(self.alphas)) != len(self.alphas), f"alphas {self.alphas} repeat a value"),
            (
                self.reference_alpha is not None and self.reference_alpha not in self.alphas,
                f"reference_alpha {self.reference_alpha} is not one of alphas {self.alphas}",
            ),
            (not max(self.alphas, default=0) > 0, f"alphas {self.alphas} need at least one dose > 0"),
            (self.positions not in ("all", "last"), f"positions {self.positions!r} unknown: use all or last"),
            (self.scale not in ("norm", "gap"), f"scale {self.scale!r} unknown: use norm or gap"),
            (
                any(c not in weight_controls() for c in self.controls),
                f"controls {self.controls}: use {weight_controls()}",
            ),
            (not 0 < self.test_fraction < 1, f"test_fraction must be in (0, 1), got {self.test_fraction}"),
            (self.n_eval < 2 or self.n_heldout < 1, f"n_eval ({self.n_eval}) >= 2 and n_heldout >= 1 needed"),
            (self.max_examples is not None and self.max_examples < 8, f"max_examples {self.max_examples} < 8"),
            (
                not (math.isfinite(self.probe_C) and self.probe_C > 0) or self.batch_size < 1,
                f"probe_C ({self.probe_C}) finite and > 0, batch_size >= 1 needed",
            ),
        ]
        for bad, why in checks:
            if bad:
                raise ConfigError(why)

    @property
    def dose_for_verdict(self) -> float:
        if self.reference_alpha is not None:
            return self.reference_alpha
        doses = sorted(a for a in self.alphas if a > 0)
        return doses[len(doses) // 2]


@dataclass(frozen=True, kw_only=True)
class SteeringResult:
    """Everything the steering report needs."""

    config: SteeringConfig
    rows: pd.DataFrame
    """Tidy rows: arm, direction, concept, seed, alpha (NaN for dose-free metrics), metric, value."""
    summary: pd.DataFrame
    """Per (arm, direction, alpha, metric): mean over seeds (of the mean over concepts), 95% interval."""
    verdicts: dict[str, dict[str, Any]]
    """Per arm: reads_best, writes_best, most_surgical (see :func:`auditkit.steering.summary.verdicts`)."""
    concepts: tuple[str, ...]
    """Concept names."""
    site: dict[str, Any]
    """Hooks, positions, dose unit, mean activation norm per arm."""
    provenance: dict[str, Any]
    """Model provenance per arm."""
    data: dict[str, Any]
    """Datasets, template, label words, sizes."""
    timings: dict[str, float]
    """Seconds per stage."""


class _Inputs(NamedTuple):
    tokens_TL: torch.Tensor
    lengths_T: np.ndarray
    held_TL: torch.Tensor
    held_len: np.ndarray
    label_ids: tuple[int | None, ...]
    eval_SE: np.ndarray
    """int64 [S, n_eval] held-out texts steered under every seed."""


class _Fitted(NamedTuple):
    dirs: dict[str, torch.Tensor]
    P_SCD: torch.Tensor
    gaps_SC: torch.Tensor
    later_W_SCD: torch.Tensor
    later_gaps_SC: torch.Tensor
    mean_norm: float


def resolve_site(cfg: SteeringConfig, model: Any, has_bos: bool) -> Site:
    """The steering and later hooks (defaults filled in, both validated)."""
    hook = cfg.hook or default_hook(model.cfg.n_layers)
    layer, n = residual_site(model, hook)[0], model.cfg.n_layers
    later = cfg.later_hook or f"blocks.{min(layer + max(1, n // 4), n) - 1}.hook_resid_post"
    site = Site(hook=hook, later_hook=later, positions=cfg.positions, has_bos=has_bos)
    site.validate(model)
    return site


def run_steering(cfg: SteeringConfig, *, loaded: LoadedModel | None = None) -> SteeringResult:
    """Run the comparison described by ``cfg`` (``loaded`` reuses an already loaded model)."""
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    concepts = load_concepts(
        cfg.datasets,
        template=cfg.template,
        max_examples=cfg.max_examples,
        seeds=cfg.seeds,
        test_fraction=cfg.test_fraction,
    )
    # A stratified subsample needs one text per class at least; the prose is the first n_heldout of it.
    held = load_sae_probes(cfg.heldout.removeprefix("sae-probes:"), max_examples=max(cfg.n_heldout, 16), seed=0)
    loaded = loaded or load_model(cfg.model)
    timings["load_s"] = time.perf_counter() - t0
    model, has_bos = loaded.model, loaded.provenance.prepend_bos
    site = resolve_site(cfg, model, has_bos)
    inputs = _inputs(cfg, concepts, held.texts[: cfg.n_heldout], model.tokenizer, has_bos)
    frames, norms, provenance = [], {}, {}
    with tqdm(total=(1 + len(cfg.controls)) * (1 + len(cfg.seeds)), desc="steer", disable=not cfg.progress) as bar:
        for arm, arm_loaded in _arms(loaded, cfg):
            t = time.perf_counter()
            rows, norms[arm] = _arm_rows(arm_loaded.model, site, concepts, inputs, cfg, bar)
            frames.append(pd.DataFrame(rows).assign(arm=arm))
            provenance[arm] = arm_loaded.provenance.to_dict()
            timings[f"arm_{arm}_s"] = time.perf_counter() - t
    columns = ["arm", "direction", "concept", "seed", "alpha", "metric", "value"]
    table = pd.concat(frames, ignore_index=True)[columns]
    timings["total_s"] = time.perf_counter() - t0
    used = {c for c, i in zip(concepts.names, inputs.label_ids) if i is not None}
    return SteeringResult(
        config=cfg,
        rows=table,
        summary=summarise(table),
        verdicts={arm: verdicts(table, reference_alpha=cfg.dose_for_verdict, arm=arm) for arm in provenance},
        concepts=concepts.names,
        provenance=provenance,
        timings=timings,
        site=dict(
            hook=site.hook, later_hook=site.later_hook, positions=site.positions, scale=cfg.scale, mean_norm=norms
        ),
        data=dict(
            datasets=list(concepts.sources),
            template=cfg.template,
            texts=len(concepts.texts),
            heldout=held.name,
            n_eval=cfg.n_eval,
            label_words={c: w for c, w in zip(concepts.names, concepts.label_words) if c in used},
        ),
    )


def _arms(loaded: LoadedModel, cfg: SteeringConfig):
    """The real model, then each weight control (one draw each, seeded by the control's name)."""
    yield REAL, loaded
    for control in cfg.controls:
        yield control, reinit_loaded(loaded, control, derive_seed(0, "steering", control))


def _inputs(cfg: SteeringConfig, concepts: Concepts, held_texts: tuple[str, ...], tokenizer: Any, bos: bool) -> _Inputs:
    bos_id = tokenizer.bos_token_id if bos else None
    tokens_TL, lengths_T = tokenize_texts(concepts.texts, tokenizer, bos_token_id=bos_id, max_length=cfg.max_length)
    held_TL, held_len = tokenize_texts(held_texts, tokenizer, bos_token_id=bos_id, max_length=cfg.heldout_max_length)
    eval_SE = []
    for s, seed in enumerate(cfg.seeds):
        test = np.flatnonzero(concepts.is_test_ST[s])
        eval_SE.append(np.sort(numpy_rng(derive_seed(seed, "steering-eval")).permutation(test)[: cfg.n_eval]))
    ids = label_token_ids(concepts.label_words, tokenizer)
    if sum(i is not None for i in ids) < 2:  # log-odds between label words need two words
        ids = tuple(None for _ in ids)
    return _Inputs(tokens_TL, lengths_T, held_TL, held_len, ids, np.stack(eval_SE))


def _fit(model: Any, site: Site, concepts: Concepts, inp: _Inputs, cfg: SteeringConfig) -> tuple[_Fitted, torch.Tensor]:
    """Readers at both hooks, every direction, the readouts' class-mean gaps (on training rows)."""
    read = read_last(model, inp.tokens_TL, inp.lengths_T, site, cfg.batch_size)
    X_ND, X_later = read.last_TD[site.hook], read.last_TD[site.later_hook]
    labels, is_test = concepts.labels_TC, concepts.is_test_ST
    readers = fit_readers(X_ND, labels, is_test, probe_C=cfg.probe_C)
    later_W = fit_readers(X_later, labels, is_test, probe_C=cfg.probe_C, kinds=("logistic",))["logistic"]
    S, C, D = readers["logistic"].shape
    dirs = {
        **readers,
        "dual": dual_basis(readers["logistic"]),
        "random": random_directions(S, C, D, derive_seed(0, "steering-random")),
    }
    P = readers["logistic"]
    fitted = _Fitted(
        dirs,
        P,
        class_gaps(X_ND, P, labels, ~is_test),
        later_W,
        class_gaps(X_later, later_W, labels, ~is_test),
        read.mean_norm,
    )
    return fitted, X_ND


def _static_rows(X_ND: torch.Tensor, fit: _Fitted, concepts: Concepts, seeds: tuple[int, ...]) -> list[dict]:
    """Dose-free rows: reading AUROC, norms, cosines between directions, reader-matrix orthogonality."""
    rows = []
    auc = {k: reading_auroc(X_ND, V, concepts.labels_TC, concepts.is_test_ST) for k, V in fit.dirs.items()}
    units = {k: unit(V.double()) for k, V in fit.dirs.items()}
    for s, seed in enumerate(seeds):
        for c, name in enumerate(concepts.names):
            for kind in DIRECTION_KINDS:
                base = dict(direction=kind, concept=name, seed=seed, alpha=math.nan)
                rows.append({**base, "metric": "read_auroc", "value": float(auc[kind][s, c])})
                rows.append({**base, "metric": "norm", "value": float(fit.dirs[kind][s, c].norm())})
                for other in DIRECTION_KINDS:
                    if other != kind:
                        cos = float(units[kind][s, c] @ units[other][s, c])
                        rows.append({**base, "metric": f"cos:{other}", "value": cos})
        for kind in READERS:
            geo = reader_geometry(fit.dirs[kind][s : s + 1])
            base = dict(direction=kind, concept="all", seed=seed, alpha=math.nan)
            for metric, v in (
                ("max_offdiag_cos", geo.max_offdiag_S),
                ("mean_offdiag_cos", geo.mean_offdiag_S),
                ("condition_number", geo.condition_S),
            ):
                rows.append({**base, "metric": metric, "value": float(v[0])})
    return rows


def _arm_rows(model: Any, site: Site, concepts: Concepts, inp: _Inputs, cfg: SteeringConfig, bar: Any):
    """Every row of one arm, and its mean activation norm at the hook."""
    t0 = time.perf_counter()
    fit, X_ND = _fit(model, site, concepts, inp, cfg)
    rows = _static_rows(X_ND, fit, concepts, cfg.seeds)
    logger.info("read %d texts and fitted readers in %.1fs", len(inp.lengths_T), time.perf_counter() - t0)
    bar.update(1)
    layer = site.layer(model)
    union = np.unique(inp.eval_SE)
    tok_U, len_U = inp.tokens_TL[torch.as_tensor(union)], inp.lengths_T[union]
    resid_U = prefix_residual(model, tok_U, len_U, layer, cfg.batch_size)
    resid_H = prefix_residual(model, inp.held_TL, inp.held_len, layer, cfg.batch_size)
    present = tuple(i for i in inp.label_ids if i is not None)
    D = model.cfg.d_model
    clean = steered_rows(
        model,
        site,
        resid_U,
        tok_U,
        len_U,
        np.arange(len(union)),
        torch.zeros(len(union), D),
        label_ids=present,
        keep_logprobs=True,
        batch_size=cfg.batch_size,
    )
    clean_H = steered_rows(
        model,
        site,
        resid_H,
        inp.held_TL,
        inp.held_len,
        np.arange(len(inp.held_len)),
        torch.zeros(len(inp.held_len), D),
        text_ce=True,
        batch_size=cfg.batch_size,
    )
    steps = step_vectors(fit.dirs, fit.P_SCD, fit.gaps_SC, cfg.alphas, cfg.scale, fit.mean_norm)
    passes = _Passes(model, site, resid_U, tok_U, len_U, resid_H, inp.held_TL, inp.held_len, clean, clean_H, present)
    for s, seed in enumerate(cfg.seeds):
        local = np.searchsorted(union, inp.eval_SE[s])
        rows += _seed_rows(passes, fit, steps, s, seed, local, concepts, inp.label_ids, cfg)
        logger.info("seed %d steered (%.1fs into the arm)", seed, time.perf_counter() - t0)
        bar.update(1)
    return rows, fit.mean_norm


class _Passes(NamedTuple):
    model: Any
    site: Site
    resid_U: torch.Tensor
    tok_U: torch.Tensor
    len_U: np.ndarray
    resid_H: torch.Tensor
    tok_H: torch.Tensor
    len_H: np.ndarray
    clean: SteeredRows
    clean_H: SteeredRows
    present: tuple[int, ...]


def _seed_rows(
    ps: _Passes,
    fit: _Fitted,
    steps: dict[str, torch.Tensor],
    s: int,
    seed: int,
    local: np.ndarray,
    concepts: Concepts,
    label_ids: tuple[int | None, ...],
    cfg: SteeringConfig,
) -> list[dict]:
    """Steer seed s's held-out texts (and the held-out prose) with every (direction, concept, dose > 0)."""
    variants = [
        (kind, c, a)
        for kind in DIRECTION_KINDS
        for c in range(len(concepts.names))
        for a, alpha in enumerate(cfg.alphas)
        if alpha > 0 and bool(torch.isfinite(steps[kind][s, c, a]).all())
    ]
    delta_VD = torch.stack([steps[k][s, c, a] for k, c, a in variants]).float()
    n, H = len(local), len(ps.len_H)
    out = steered_rows(
        ps.model,
        ps.site,
        ps.resid_U,
        ps.tok_U,
        ps.len_U,
        np.tile(local, len(variants)),
        delta_VD.repeat_interleave(n, 0),
        clean_lp_TV=ps.clean.logprob_last_RV,
        label_ids=ps.present,
        batch_size=cfg.batch_size,
    )
    held = steered_rows(
        ps.model,
        ps.site,
        ps.resid_H,
        ps.tok_H,
        ps.len_H,
        np.tile(np.arange(H), len(variants)),
        delta_VD.repeat_interleave(H, 0),
        text_ce=True,
        batch_size=cfg.batch_size,
    )
    slots = [i for i in label_ids if i is not None]
    rows = _zero_dose_rows(concepts, label_ids, seed, cfg)
    for v, (kind, c, a) in enumerate(variants):
        sl = slice(v * n, (v + 1) * n)
        logodds = None
        if label_ids[c] is not None:
            k = slots.index(label_ids[c])
            shift = label_logodds(out.label_lp_RK[sl], k) - label_logodds(ps.clean.label_lp_RK[local], k)
            logodds = float(shift.mean())
        later_C = later_shifts(out.later_RD[sl], ps.clean.later_RD[local], fit.later_W_SCD[s], fit.later_gaps_SC[s])
        values = effect_values(
            target=c,
            delta_D=steps[kind][s, c, a],
            P_CD=fit.P_SCD[s],
            gaps_C=fit.gaps_SC[s],
            later_shift_C=later_C,
            kl=float(out.kl_R[sl].mean()),
            dce=float((held.ce_R[v * H : (v + 1) * H] - ps.clean_H.ce_R).mean()),
            logodds=logodds,
        )
        base = dict(direction=kind, concept=concepts.names[c], seed=seed, alpha=cfg.alphas[a])
        rows += [{**base, "metric": m, "value": x} for m, x in values.items()]
    return rows


def _zero_dose_rows(
    concepts: Concepts, label_ids: tuple[int | None, ...], seed: int, cfg: SteeringConfig
) -> list[dict]:
    """The clean run as the dose-0 point of every curve (every shift is zero by definition)."""
    if 0.0 not in cfg.alphas:
        return []
    metrics = ("step_norm", "same_on", "same_off", "later_on", "later_off", "later_selective", "kl", "heldout_dce")
    return [
        dict(direction=kind, concept=name, seed=seed, alpha=0.0, metric=m, value=0.0)
        for kind in DIRECTION_KINDS
        for name, token in zip(concepts.names, label_ids)
        for m in metrics + (("label_logodds",) if token is not None else ())
    ]
