"""Arms: the real arm and every control arm, each an ActivationSet with its seed's split.

Every arm goes through the same extraction (same hook, positions, batch and cache) as the real
one; only the stage its control perturbs differs: tokens (``random-tokens-*``), weights
(``spectral-reinit``, ``gaussian-reinit``, ``step0``) or labels (``shuffled-labels``,
``control-task``). Each extraction is cached under a key that includes the control and its seed,
so rerunning an audit with one more control computes only that control.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from auditkit.cache import CacheEntry
from auditkit.controls import registry
from auditkit.controls.weights import reinit_loaded, weight_control_provenance
from auditkit.errors import ConfigError
from auditkit.extract import ExtractConfig, cache_request, extract, extract_hooks
from auditkit.models import LoadedModel, ModelSpec, has_step0_checkpoint, load_model
from auditkit.seeding import derive_seed
from auditkit.splits import split_examples
from auditkit.types import REAL, ActivationSet, TokenBatch

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Arm:
    """One arm of one seed: its activations (with the seed's train/test split) and its model."""

    control: str
    """``none`` for the real arm, else the control's name."""
    seed: int
    """The audit seed this arm belongs to."""
    acts: ActivationSet
    """Activations with the seed's split; label controls carry their control labels."""
    batch: TokenBatch
    """The tokens the activations were read from."""
    model: Callable[[], LoadedModel]
    """The arm's model, built on first call (weight-control models are only built when needed)."""
    draw: int = 0
    """Which draw of its control this arm is, for a control drawn several times per seed (label controls:
    ``label_draws``, weight controls: ``weight_draws``); the selectivity averages a seed's draws."""


@dataclass(frozen=True, kw_only=True)
class ArmPlan:
    """What to extract for every arm, shared by all methods."""

    loaded: LoadedModel
    batch: TokenBatch
    extract_cfg: ExtractConfig
    cache_root: Path | None
    seeds: tuple[int, ...]
    controls: tuple[str, ...]
    test_fraction: float
    gaussian_keep_embeddings: bool = False
    label_draws: int = 1
    """Draws of each label control per seed (one more stacked fit each, no forward pass)."""
    weight_draws: int = 1
    """Draws of each weight control per seed (one reinitialised model and forward pass each)."""
    models: dict[tuple[str, int], Any] = field(default_factory=dict, compare=False)
    """Weight-control models by (control, arm seed), built lazily; a plan derived with
    ``dataclasses.replace`` (another method's positions) shares this dict, so no model is built twice."""


class _Lazy:
    """A model built on first use and kept."""

    def __init__(self, build: Callable[[], LoadedModel]) -> None:
        self._build, self._value = build, None

    def __call__(self) -> LoadedModel:
        if self._value is None:
            self._value = self._build()
        return self._value


def _extract(
    plan: ArmPlan, prov: Any, batch: TokenBatch, model: _Lazy, timings: dict[str, float], label: str
) -> ActivationSet:
    t = time.perf_counter()
    entry = CacheEntry(plan.cache_root, cache_request(prov, batch, plan.extract_cfg)) if plan.cache_root else None
    # A cached entry needs no forward pass, so a weight-control model is not even built: the real model
    # only validates the hook name (same architecture). Only a verified entry counts: a damaged one is
    # moved aside by ``load`` and recomputed, with the arm's own model.
    cached = entry is not None and entry.load() is not None
    runner = plan.loaded if cached else model()
    acts = extract(runner.model, batch, plan.extract_cfg, provenance=prov.to_dict(), cache=entry)
    timings[f"extract[{label}]_s"] = timings.get(f"extract[{label}]_s", 0.0) + time.perf_counter() - t
    return acts


def _weight_model(plan: ArmPlan, control: str, seed: int) -> _Lazy:
    if (control, seed) not in plan.models:
        if control == "step0":
            prov = plan.loaded.provenance
            spec = ModelSpec(
                name=prov.name, revision="step0", cache_dir=plan.cache_root, dtype=prov.dtype, device=prov.device
            )
            plan.models[control, seed] = _Lazy(lambda: load_model(spec))
        else:
            keep = plan.gaussian_keep_embeddings
            plan.models[control, seed] = _Lazy(lambda: reinit_loaded(plan.loaded, control, seed, keep_embeddings=keep))
    return plan.models[control, seed]


def draw_seed(seed: int, control: str, draw: int = 0) -> int:
    """The seed of draw ``draw`` of ``control`` in audit seed ``seed``: ``derive_seed(seed, control)`` for the
    first draw (as before draws existed, so a one-draw audit's numbers do not move), a seed of its own after."""
    return derive_seed(seed, control) if draw == 0 else derive_seed(seed, control, "draw", draw)


def _variant(plan: ArmPlan, control: str, seed: int, real_model: _Lazy, draw: int = 0) -> tuple[Any, TokenBatch, _Lazy]:
    """What a token or weight control's arm of ``seed`` (its draw ``draw``) is extracted from: its model's
    provenance (the cache key), its tokens and its (lazily built) model."""
    arm_seed = draw_seed(seed, control, draw)
    prov = plan.loaded.provenance
    ctl = registry.get(control)
    if ctl.stage == "token":
        batch = ctl.apply(plan.batch, arm_seed, vocab_size=plan.loaded.model.cfg.d_vocab)
        return prov, batch, real_model
    if control == "step0":
        if not has_step0_checkpoint(prov):  # also checked before any forward pass (auditkit.preflight)
            raise ConfigError(f"control step0 needs a Pythia model from the hub, not {prov.name!r}")
        arm_seed = 0  # one checkpoint, shared by every seed
        prov = dataclasses.replace(prov, revision="step0")
    else:
        prov = weight_control_provenance(prov, control, arm_seed, plan.gaussian_keep_embeddings)
    return prov, plan.batch, _weight_model(plan, control, arm_seed)


def draws(plan: ArmPlan, control: str) -> range:
    """The draws of ``control`` per seed: ``label_draws`` for a label control, ``weight_draws`` for a
    reinitialised model (step0 is one checkpoint: one draw), one for the token controls."""
    if registry.stage_of(control) == "label":
        return range(plan.label_draws)
    if registry.is_random_model(control):
        return range(plan.weight_draws)
    return range(1)


def _control_acts(
    plan: ArmPlan, control: str, seed: int, real_model: _Lazy, timings: dict[str, float], draw: int = 0
) -> tuple[ActivationSet, TokenBatch, _Lazy]:
    """Activations of a token or weight control for one seed (and draw)."""
    prov, batch, model = _variant(plan, control, seed, real_model, draw)
    return _extract(plan, prov, batch, model, timings, control), batch, model


def prefetch_hooks(
    plan: ArmPlan,
    hooks: list[str],
    timings: dict[str, float],
    *,
    controls: tuple[str, ...] | None = None,
    release: bool = False,
) -> None:
    """Extract every arm of ``plan`` at every hook of ``hooks`` into the cache: one forward pass per arm
    reads all the hooks (:func:`auditkit.extract.extract_hooks`); hooks already cached cost nothing.

    ``controls`` limits it to those controls' arms (plus the real arm when ``none`` is listed: pass
    ``(REAL, ...)``); ``release`` drops each weight-control model once its arm is cached, so at most one
    reinitialised model is resident besides the trained one. :func:`build_arms` with any of the hooks then
    reads every arm from the cache.
    """
    if plan.cache_root is None:
        raise ConfigError("prefetching arms needs the activation cache: leave use_cache on")
    wanted = plan.controls if controls is None else tuple(c for c in controls if c != REAL)
    real_model = _Lazy(lambda: plan.loaded)
    jobs = (
        [(REAL, None, plan.loaded.provenance, plan.batch, real_model)] if controls is None or REAL in controls else []
    )
    for seed in plan.seeds:
        for control in wanted:
            if registry.stage_of(control) in ("token", "weight"):
                # only these extract activations (label controls relabel, lexical ones and SAE baselines extract none)
                jobs += [
                    (control, (seed, d), *_variant(plan, control, seed, real_model, d)) for d in draws(plan, control)
                ]
    for control, seed_draw, prov, batch, model in jobs:
        entries = {h: CacheEntry(plan.cache_root, cache_request(prov, batch, _with_hook(plan, h))) for h in hooks}
        missing = [h for h in hooks if entries[h].load() is None]
        if missing:
            t = time.perf_counter()
            extract_hooks(
                model().model,
                batch,
                plan.extract_cfg,
                missing,
                provenance=prov.to_dict(),
                caches={h: entries[h] for h in missing},
            )
            timings[f"extract[{control}]_s"] = timings.get(f"extract[{control}]_s", 0.0) + time.perf_counter() - t
        if release and seed_draw is not None and registry.stage_of(control) == "weight":
            plan.models.pop(
                (control, 0 if control == "step0" else draw_seed(seed_draw[0], control, seed_draw[1])), None
            )


def _with_hook(plan: ArmPlan, hook: str) -> ExtractConfig:
    return dataclasses.replace(plan.extract_cfg, hook=hook)


def split_for_seed(real: ActivationSet, seed: int, test_fraction: float) -> ActivationSet:
    """The real arm of ``seed``: its rows split by example, stratified by label, with ``derive_seed(seed, "split")``.

    Every arm of the seed (each control) takes this split, so each pair of arms is scored on the same rows."""
    is_test = split_examples(
        real.example_ids_N, real.labels_N, seed=derive_seed(seed, "split"), test_fraction=test_fraction
    )
    return real.replace(is_test_N=is_test)


def label_control(real_s: ActivationSet, control: str, seed: int, draw: int = 0) -> ActivationSet:
    """The arm of label control ``control`` for ``seed`` (its draw ``draw``): the seed's real arm relabelled,
    drawn with :func:`draw_seed` (``derive_seed(seed, control)`` for the first draw)."""
    return registry.get(control).apply(real_s, draw_seed(seed, control, draw))


def build_arms(plan: ArmPlan, timings: dict[str, float]) -> list[Arm]:
    """Every (control, seed) arm; the real arm's control is ``none``."""
    real_model = _Lazy(lambda: plan.loaded)
    real = _extract(plan, plan.loaded.provenance, plan.batch, real_model, timings, REAL)
    arms = []
    for seed in plan.seeds:
        real_s = split_for_seed(real, seed, plan.test_fraction)
        arms.append(Arm(REAL, seed, real_s, plan.batch, real_model))
        for control in plan.controls:
            if registry.stage_of(control) not in registry.ARM_STAGES:
                continue  # the sae method's own controls (built from the real arm), the texts alone (probe method)
            for draw in draws(plan, control):
                if registry.stage_of(control) == "label":
                    acts = label_control(real_s, control, seed, draw)
                    arms.append(Arm(control, seed, acts, plan.batch, real_model, draw))
                    continue
                acts, batch, model = _control_acts(plan, control, seed, real_model, timings, draw)
                if not np.array_equal(acts.example_ids_N, real.example_ids_N):
                    raise RuntimeError(f"control {control} produced rows that do not align with the real arm")
                arms.append(Arm(control, seed, acts.replace(is_test_N=real_s.is_test_N), batch, model, draw))
    return arms
