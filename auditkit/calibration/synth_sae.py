"""Ground truth for the SAE audit: auditkit's SAEs, pursuit and SAE baselines scored against known features.

On a synthetic model with known features (:mod:`auditkit.calibration.synth_model`, sae-lens's SynthSAEBench
model), every seed draws its own training and held-out rows, and on them

- ``sae-<arch>``: auditkit's SAE training (:func:`auditkit.methods.sae.train.train_sae`, each architecture),
  against each SAE baseline of the audit (:data:`auditkit.audit.options.SAE_BASELINES`, built by
  :func:`auditkit.methods.sae.baselines.baseline_sae` exactly as the audit builds them);
- ``pursuit-<arch>``: OMP on that SAE's decoder (centred on its decoder bias, k = the baselines' k),
  against OMP on each baseline's decoder and on the audit's random dictionaries
  (:data:`auditkit.audit.options.DICTIONARY_CONTROLS`) of the learned one;
- ``pursuit-true``: OMP on the true dictionary (centred on the true bias, k = the true mean L0), against the
  random dictionaries of the true one: the ceiling the metrics reach when the dictionary is right.

Every dictionary is scored on the seed's held-out rows by :func:`auditkit.metrics.ground_truth.ground_truth_scores`
(SynthSAEBench's MCC, F1 and uniqueness), as tidy rows (method, control, seed, metric, value) that
:func:`auditkit.metrics.selectivity_table` turns into one interval and verdict per (method, control, metric).
Orchestration only: the maths is in ``methods/`` and ``metrics/``, the rendering in ``report/synth_sae.py``.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from auditkit.audit.options import DICTIONARY_CONTROLS, SAE_ARCHITECTURES, SAE_BASELINES
from auditkit.calibration.synth_model import (
    SynthModelOptions,
    SynthRows,
    build_synthetic_model,
    sample_rows,
    true_dictionary,
)
from auditkit.errors import ConfigError
from auditkit.methods.pursuit.dictionaries import CONTROLS, Dictionary, from_matrix
from auditkit.methods.pursuit.greedy import omp
from auditkit.methods.sae.baselines import baseline_sae, sparsity_k
from auditkit.methods.sae.metrics import encode_decode
from auditkit.methods.sae.train import SAEConfig, train_sae
from auditkit.metrics import selectivity_table
from auditkit.metrics.ground_truth import CEILINGS, DIRECTIONS, ground_truth_scores
from auditkit.seeding import derive_seed
from auditkit.types import REAL

logger = logging.getLogger(__name__)

TRUE = "pursuit-true"
"""The method row of pursuit on the true dictionary."""


@dataclass(frozen=True, kw_only=True)
class SynthSAEConfig:
    """What the ground-truth evaluation trains and scores (defaults: about 4 minutes on a 2-core CPU)."""

    model: SynthModelOptions = field(default_factory=SynthModelOptions)
    """The synthetic model (its features are the truth every dictionary is scored against)."""
    architectures: tuple[str, ...] = SAE_ARCHITECTURES
    """SAE architectures trained (each its own ``sae-<arch>`` and ``pursuit-<arch>`` rows)."""
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    """Seeds: each draws its own rows, SAE initialisations, batch orders and baseline draws."""
    train_rows: int = 20_000
    """Rows each seed's SAEs train on (repeated in fresh orders up to ``training_tokens``)."""
    test_rows: int = 10_000
    """Held-out rows each seed's dictionaries are scored on."""
    training_tokens: int = 400_000
    """Rows seen per SAE training."""
    batch_size: int = 256
    """Rows per optimiser step."""
    lr: float = 3e-3
    """Adam learning rate."""
    l1_coefficient: float = 4.0
    """L1 weight of the ``standard`` SAE (gave L0 ~7 against a true L0 of ~8.6 on the default model)."""
    jumprelu_init_threshold: float = 0.1
    """Initial threshold of the ``jumprelu`` SAE (the audit's 0.5 leaves it dead on these small inputs)."""
    width: int | None = None
    """Dictionary size F; None: the number of true features G."""
    k: int | None = None
    """Active latents of a TopK SAE; None: the true mean L0, rounded (measured on a separate draw)."""
    baselines: tuple[str, ...] = tuple(SAE_BASELINES)
    """SAE baselines scored as controls (names of :data:`auditkit.audit.options.SAE_BASELINES`)."""
    dictionary_controls: tuple[str, ...] = tuple(DICTIONARY_CONTROLS)
    """Random dictionaries scored as controls of the pursuit rows."""
    pursuit: bool = True
    """Score OMP on the true and the learned dictionaries."""
    threshold: float = 0.05
    """Smallest mean difference a *selective* verdict needs."""
    progress: bool = False
    """Show a progress bar."""

    def __post_init__(self) -> None:
        for bad, why in [
            (
                not self.architectures or any(a not in SAE_ARCHITECTURES for a in self.architectures),
                f"architectures {self.architectures}: use some of {', '.join(SAE_ARCHITECTURES)}",
            ),
            (len(set(self.architectures)) != len(self.architectures), f"architectures {self.architectures} repeat"),
            (not self.seeds or len(set(self.seeds)) != len(self.seeds), f"seeds {self.seeds}: give distinct seeds"),
            (
                any(b not in SAE_BASELINES for b in self.baselines),
                f"baselines {self.baselines}: use some of {', '.join(SAE_BASELINES)}",
            ),
            (
                any(c not in DICTIONARY_CONTROLS for c in self.dictionary_controls),
                f"dictionary controls {self.dictionary_controls}: use some of {', '.join(DICTIONARY_CONTROLS)}",
            ),
            (self.train_rows < 2 or self.test_rows < 2, "train_rows and test_rows must be >= 2"),
            (self.width is not None and self.width < 2, f"width must be >= 2, got {self.width}"),
            (self.k is not None and self.k < 1, f"k must be >= 1, got {self.k}"),
        ]:
            if bad:
                raise ConfigError(f"sae-synth: {why}")
        self.sae_config("topk", k=self.k or 1)  # validates the SAE fields (ConfigError naming the bad value)

    def sae_config(self, architecture: str, *, k: int) -> SAEConfig:
        """The :class:`SAEConfig` of one architecture (F = ``width`` or G)."""
        return SAEConfig(
            architecture=architecture,
            width=self.width or self.model.n_features,
            k=k,
            lr=self.lr,
            l1_coefficient=self.l1_coefficient,
            jumprelu_init_threshold=self.jumprelu_init_threshold,
            training_tokens=self.training_tokens,
            batch_size=self.batch_size,
            progress=False,
        )


@dataclass
class SynthSAEResult:
    """Tidy rows, their selectivity table, and what the run measured about itself."""

    config: SynthSAEConfig
    rows: pd.DataFrame
    """method, control, seed, metric, value (control ``none``: the method itself)."""
    selectivity: pd.DataFrame
    """:func:`auditkit.metrics.selectivity_table` of ``rows``."""
    info: dict[str, Any]
    """true_l0, k, width, seconds (per stage, summed over seeds), controls."""


@dataclass
class _Truth:
    features_GD: torch.Tensor
    bias_D: torch.Tensor
    test: SynthRows


def _score(truth: _Truth, codes_NF: torch.Tensor, W_FD: torch.Tensor, x_hat_ND: torch.Tensor) -> dict[str, float]:
    return ground_truth_scores(codes_NF, W_FD, truth.test.acts_NG, truth.features_GD, truth.test.x_ND, x_hat_ND)


def _sae_scores(sae: Any, truth: _Truth) -> dict[str, float]:
    x_hat_ND, z_NF = encode_decode(sae, truth.test.x_ND)
    return _score(truth, z_NF, sae.W_dec.detach(), x_hat_ND)


def _pursuit_scores(dic: Dictionary, center_D: torch.Tensor, k: int, truth: _Truth) -> dict[str, float]:
    """OMP codes of the held-out rows (centred on ``center_D``) on ``dic``, scored against the truth."""
    W = dic.W_FD.to(torch.float32)
    k = min(k, *W.shape)
    res = omp(truth.test.x_ND - center_D, W, k)
    return _score(truth, res.codes_NF, W, res.codes_NF @ W + center_D)


def _rows(method: str, control: str, seed: int, scores: dict[str, float]) -> list[dict[str, Any]]:
    return [dict(method=method, control=control, seed=seed, metric=m, value=v) for m, v in scores.items()]


def _dictionary_rows(
    method: str, dic: Dictionary, center_D: torch.Tensor, k: int, truth: _Truth, cfg: SynthSAEConfig, seed: int
) -> list[dict[str, Any]]:
    """Pursuit on ``dic`` (the real arm) and on each random dictionary of it (its controls)."""
    out = _rows(method, REAL, seed, _pursuit_scores(dic, center_D, k, truth))
    for name in cfg.dictionary_controls:
        control = CONTROLS[DICTIONARY_CONTROLS[name]](dic, derive_seed(seed, "sae-synth", method))
        out += _rows(method, name, seed, _pursuit_scores(control, center_D, k, truth))
    return out


def _architecture_rows(
    arch: str, train: SynthRows, truth: _Truth, cfg: SynthSAEConfig, k: int, seed: int, seconds: dict[str, float]
) -> list[dict[str, Any]]:
    """One architecture on one seed: the trained SAE and its baselines, and pursuit on each of their decoders."""
    sae_cfg = cfg.sae_config(arch, k=k)
    start = time.perf_counter()
    trained = train_sae(train.x_ND, sae_cfg, seed=seed)
    seconds[f"train {arch}"] += time.perf_counter() - start
    saes = {REAL: trained}
    for name in cfg.baselines:
        start = time.perf_counter()
        saes[name] = baseline_sae(SAE_BASELINES[name], train.x_ND, sae_cfg, seed=seed, trained=trained)
        seconds[f"baseline {name}"] += time.perf_counter() - start
    start = time.perf_counter()
    out = [row for name, sae in saes.items() for row in _rows(f"sae-{arch}", name, seed, _sae_scores(sae, truth))]
    seconds["score SAEs"] += time.perf_counter() - start
    if cfg.pursuit:
        start = time.perf_counter()
        k_pursuit, method = sparsity_k(trained, train.x_ND, sae_cfg), f"pursuit-{arch}"
        learned = from_matrix(trained.W_dec, "sae")
        out += _dictionary_rows(method, learned, trained.b_dec.detach(), k_pursuit, truth, cfg, seed)
        for name in cfg.baselines:
            dic = from_matrix(saes[name].W_dec, "sae")
            out += _rows(method, name, seed, _pursuit_scores(dic, saes[name].b_dec.detach(), k_pursuit, truth))
        seconds["pursuit"] += time.perf_counter() - start
    return out


def true_l0(model: Any, rows: int) -> float:
    """Mean number of true features firing per row, on a draw of its own (model seed, ``rows`` rows)."""
    draw = sample_rows(model, rows, seed=derive_seed(model.cfg.seed or 0, "sae-synth-true-l0"))
    return float((draw.acts_NG > 0).double().sum(1).mean())


def run_synth_sae(cfg: SynthSAEConfig) -> SynthSAEResult:
    """Every method and control of the module docstring on every seed, and their selectivity table."""
    t0 = time.perf_counter()
    model = build_synthetic_model(cfg.model)
    features_GD, bias_D = true_dictionary(model)
    l0 = true_l0(model, cfg.train_rows)
    k = cfg.k or max(1, round(l0))
    seconds: dict[str, float] = defaultdict(float)
    rows: list[dict[str, Any]] = []
    bar = tqdm(total=len(cfg.seeds) * len(cfg.architectures), desc="sae-synth", disable=not cfg.progress)
    for seed in cfg.seeds:
        start = time.perf_counter()
        train = sample_rows(model, cfg.train_rows, seed=derive_seed(seed, "sae-synth-train"))
        truth = _Truth(features_GD, bias_D, sample_rows(model, cfg.test_rows, seed=derive_seed(seed, "sae-synth-test")))
        seconds["sample rows"] += time.perf_counter() - start
        if cfg.pursuit:
            start = time.perf_counter()
            rows += _dictionary_rows(TRUE, from_matrix(features_GD, "true"), bias_D, k, truth, cfg, seed)
            seconds["pursuit"] += time.perf_counter() - start
        for arch in cfg.architectures:
            rows += _architecture_rows(arch, train, truth, cfg, k, seed, seconds)
            bar.update()
    bar.close()
    table = pd.DataFrame(rows, columns=["method", "control", "seed", "metric", "value"])
    sel = selectivity_table(table, threshold=cfg.threshold, directions=DIRECTIONS, ceilings=CEILINGS)
    seconds["total"] = time.perf_counter() - t0
    info = dict(
        true_l0=l0,
        k=k,
        width=cfg.width or cfg.model.n_features,
        seconds=dict(seconds),
        torch_threads=torch.get_num_threads(),
        controls=[*cfg.baselines, *cfg.dictionary_controls],
    )
    return SynthSAEResult(config=cfg, rows=table, selectivity=sel, info=info)
