"""Calibrate the label verdicts of the feature methods: k-sparse probing of SAE latents, the pursuit code probe.

Both methods turn every arm's activations into features that never see a label (an SAE's latents, the
sparse codes against a dictionary), then fit a probe on the features with the labels. So the features
are computed once per arm, exactly as the audit computes them, and every calibration dataset only
re-runs the label-dependent part (the seed's stratified split, the latent ranking and the probe) through
the audit's own functions:

- ``sae``: one SAE per arm and seed with the audit's options (:class:`auditkit.audit.options.SAEAuditOptions`,
  the defaults unless the config says otherwise: same hyper-parameters, budget and initialisation seed
  for every arm of a seed), latents scored by :func:`auditkit.audit.sae.probe_records_of`
  (:func:`auditkit.methods.sae.metrics.sparse_probe_records`). One deviation, stated in the report:
  each SAE trains on *all* of its arm's rows rather than on one dataset's training split (the split
  moves with every dataset's labels; retraining per dataset would cost an SAE per dataset). The SAE
  never sees a label, so this cannot create label signal on a null dataset. Rows are the methods
  ``sae-k{k}`` (k = 1, 5, 20, the latent budgets of the audit), metric ``accuracy``. The SAE baselines
  (:data:`auditkit.audit.options.SAE_BASELINES`: untrained, frozen-decoder, soft-frozen-decoder and frozen-encoder
  SAEs, PCA, identity) are built per seed from the real arm's rows and its SAE, as the audit builds them (:func:`auditkit.methods.sae.baselines.baseline_sae`), and their
  latents are scored with the real arm's labels and split under the baseline's name.
- ``pursuit``: the audit's pursuit options (by default OMP against the arm's own W_E, both dictionary
  controls), codings planned by :func:`auditkit.audit.pursuit.plan_codings` and scored by
  :func:`auditkit.audit.pursuit.code_probe_rows` (one stacked fit per coding). Method ``pursuit-code``,
  metric ``accuracy``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch

from auditkit.audit.arms import Arm
from auditkit.audit.options import SAE_BASELINES, PursuitAuditOptions, SAEAuditOptions
from auditkit.controls import registry
from auditkit.seeding import derive_seed
from auditkit.types import REAL

FEATURE_METHODS = ("sae", "pursuit")
"""Methods whose label verdicts are calibrated on features computed once per arm."""


@dataclass
class FeatureCache:
    """Features of every arm of one method, computed on first use and kept for every dataset."""

    method: str
    sae: SAEAuditOptions = field(default_factory=SAEAuditOptions)
    """How SAEs are trained (the audit's defaults unless a test shrinks them)."""
    pursuit: PursuitAuditOptions = field(default_factory=PursuitAuditOptions)
    """How arms are coded."""
    baselines: tuple[str, ...] = ()
    """sae: the SAE baselines (names of :data:`auditkit.audit.options.SAE_BASELINES`) to score beside the arms."""
    latents: dict[tuple[str, int], torch.Tensor] = field(default_factory=dict)
    """sae: (control, seed) -> latents [N, F] of the arm's SAE (or the baseline's) on the arm's rows."""
    saes: dict[int, Any] = field(default_factory=dict)
    """sae: seed -> the real arm's SAE (the frozen-decoder baseline takes its spectrum)."""
    codings: Any = None
    """pursuit: (dictionaries, codings) shared across datasets."""
    seconds: float = 0.0
    """Time spent computing features (SAE training and encoding, or coding)."""


def baselines_of(controls: tuple[str, ...]) -> tuple[str, ...]:
    """The SAE baselines among ``controls``."""
    return tuple(c for c in controls if c in SAE_BASELINES)


def score_features(cache: FeatureCache, batches: list[tuple[list[Arm], dict[int, int]]]) -> pd.DataFrame:
    """Tidy rows (method, control, seed, metric ``accuracy``, value) for a chunk of datasets.

    Each entry of ``batches`` is one dataset's relabelled arms (its labels and split) and a map from
    each arm's seed to the key the caller uses for that (dataset, seed) pair; rows come back with the
    key as ``seed``.
    """
    if cache.method == "sae":
        return pd.concat([_score_sae(cache, arms, keys) for arms, keys in batches], ignore_index=True)
    return _score_pursuit(cache, batches)


def _score_sae(cache: FeatureCache, arms: list[Arm], keys: dict[int, int]) -> pd.DataFrame:
    from auditkit.audit.sae import probe_records_of

    rows = []
    for arm in arms:
        source = REAL if registry.stage_of(arm.control) == "label" else arm.control
        scored = [(arm.control, _latents(cache, arm, source, arms))]
        if arm.control == REAL:
            scored += [(b, _baseline_latents(cache, arm, b, arms)) for b in cache.baselines]
        for control, z_NF in scored:
            for record in probe_records_of(arm.acts.replace(acts_ND=z_NF)):
                k = record.pop("metric").removeprefix("probe_acc_k")
                rows.append(dict(method=f"sae-k{k}", control=control, seed=keys[arm.seed], metric="accuracy", **record))
    return pd.DataFrame(rows)


def _baseline_latents(cache: FeatureCache, arm: Arm, baseline: str, arms: list[Arm]) -> torch.Tensor:
    """Latents of the SAE baseline ``baseline`` of the real arm of ``arm.seed``, on the real rows."""
    key = (baseline, arm.seed)
    if key not in cache.latents:
        from auditkit.methods.sae.baselines import baseline_sae
        from auditkit.methods.sae.metrics import encode_decode

        _latents(cache, arm, REAL, arms)  # trains the real arm's SAE first
        t = time.perf_counter()
        X = next(a for a in arms if a.control == REAL and a.seed == arm.seed).acts.acts_ND
        base = baseline_sae(
            SAE_BASELINES[baseline],
            X,
            cache.sae.sae_config(),
            seed=derive_seed(arm.seed, "sae"),
            trained=cache.saes[arm.seed],
        )
        cache.latents[key] = encode_decode(base, X)[1]
        cache.seconds += time.perf_counter() - t
    return cache.latents[key]


def _latents(cache: FeatureCache, arm: Arm, source: str, arms: list[Arm]) -> torch.Tensor:
    """Latents of the SAE of arm (``source``, seed): trained on that arm's rows on first use."""
    key = (source, arm.seed)
    if key not in cache.latents:
        from auditkit.methods.sae.metrics import encode_decode
        from auditkit.methods.sae.train import train_sae

        t = time.perf_counter()
        src = next(a for a in arms if a.control == source and a.seed == arm.seed)
        X = src.acts.acts_ND
        # The audit's seed for every arm of a seed (audit_sae._train), on all rows (see module docstring).
        sae = train_sae(X, cache.sae.sae_config(), seed=derive_seed(arm.seed, "sae"))
        if source == REAL:
            cache.saes[arm.seed] = sae
        cache.latents[key] = encode_decode(sae, X)[1]
        cache.seconds += time.perf_counter() - t
    return cache.latents[key]


def _score_pursuit(cache: FeatureCache, batches: list[tuple[list[Arm], dict[int, int]]]) -> pd.DataFrame:
    """Codes computed once per coding; one stacked code-probe fit per coding over the whole chunk."""
    from auditkit.audit.pursuit import _Dictionaries, code, code_probe_rows, plan_codings

    opts = cache.pursuit
    if cache.codings is None:
        cache.codings = (_Dictionaries(opts, n_classes=2, progress=False), {})
    dicts, coded = cache.codings
    keyed = []
    for arms, keys in batches:
        sources, problems = plan_codings(arms, opts, dicts)
        t = time.perf_counter()
        for key, (X, src) in sources.items():
            if key not in coded:
                coded[key] = code(X, src, opts)
        cache.seconds += time.perf_counter() - t
        keyed += [dataclasses.replace(p, seed=keys[p.seed]) for p in problems]
    rows = pd.DataFrame(code_probe_rows(keyed, coded, 2, opts.code_probe_C))
    return rows[rows["metric"] == "accuracy"].assign(method="pursuit-code")
