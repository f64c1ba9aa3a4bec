"""Known-answer recovery checks for the dictionary methods, and that their controls fail them.

Sparse features in superposition with known directions (:func:`auditkit.calibration.synthetic.sparse_superposition`)
are the answer key:

- **basis pursuit** (OMP and the non-negative lasso by FISTA) coding the activations against the
  planted directions must recover every row's support (recall >= 0.95 at the true L0), and the same
  solvers against the Gaussian and spectrum-matched controls of that dictionary
  (:mod:`auditkit.methods.pursuit.dictionaries`) must not: their atoms are unrelated to the planted indices;
- an **SAE** (:func:`auditkit.methods.sae.train_sae`) trained on the activations must find the planted
  directions (mean over planted directions of the best |cosine| with a decoder row >= 0.9), and the
  Gaussian and spectrum-matched controls of its decoder must not.

Each row says what was expected (``recovers`` for the real dictionary, ``fails`` for a control) and
whether it happened.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd
import torch
from jaxtyping import Bool, Float

from auditkit.calibration.synthetic import SparseSuperposition, sparse_superposition
from auditkit.errors import ConfigError
from auditkit.methods.pursuit.dictionaries import CONTROLS as DICTIONARY_CONTROLS
from auditkit.methods.pursuit.dictionaries import Dictionary, from_matrix, from_sae
from auditkit.methods.pursuit.greedy import omp
from auditkit.methods.pursuit.lasso import fista
from auditkit.methods.sae.train import SAEConfig, train_sae
from auditkit.metrics.sparse_coding import fvu
from auditkit.seeding import derive_seed
from auditkit.types import REAL

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class RecoveryConfig:
    """Sizes and pass marks of the recovery checks."""

    pursuit_rows: int = 500
    """Rows coded by pursuit."""
    pursuit_d: int = 64
    """Activation width for the pursuit check."""
    pursuit_features: int = 256
    """Planted features (4x overcomplete by default)."""
    pursuit_firing: tuple[float, float] = (0.2, 0.02)
    """Most and least frequent features' firing probabilities (Zipfian between; mean L0 ~6 at 256)."""
    pursuit_alpha: float = 0.05
    """Lasso penalty for FISTA (features fire at magnitude ~1)."""
    support_target: float = 0.95
    """Support recall the real dictionary must reach."""
    sae_rows: int = 12_000
    """Rows the SAE trains on."""
    sae_d: int = 32
    """Activation width for the SAE check."""
    sae_features: int = 64
    """Planted features (2x overcomplete)."""
    sae_width: int = 128
    """SAE dictionary size."""
    sae_k: int = 4
    """TopK active latents."""
    sae_tokens: int = 300_000
    """SAE training budget in rows."""
    cosine_target: float = 0.9
    """Mean max |cosine| the real SAE decoder must reach."""
    run_sae: bool = True
    """Run the SAE check (needs :mod:`auditkit.methods.sae`)."""

    def __post_init__(self) -> None:
        if min(self.pursuit_rows, self.pursuit_d, self.pursuit_features, self.sae_rows, self.sae_d) < 2:
            raise ConfigError("recovery config: rows, widths and feature counts must be >= 2")
        if not (0 < self.support_target <= 1 and 0 < self.cosine_target <= 1):
            raise ConfigError(f"recovery targets must be in (0, 1]: {self.support_target}, {self.cosine_target}")


def _row(check: str, method: str, dictionary: Dictionary, metric: str, value: float, target: float) -> dict:
    expect = "recovers" if dictionary.control == REAL else "fails"
    passed = value >= target if expect == "recovers" else value < target
    name = "real" if dictionary.control == REAL else dictionary.control
    return dict(
        check=check,
        method=method,
        dictionary=name,
        metric=metric,
        value=value,
        target=target,
        expect=expect,
        passed=bool(passed),
    )


def _with_controls(real: Dictionary, seed: int) -> list[Dictionary]:
    controls = [make(real, derive_seed(seed, "recovery", name)) for name, make in DICTIONARY_CONTROLS.items()]
    return [real, *controls]


def support_recall(codes_NF: Float[torch.Tensor, "N F"], true_NF: Bool[torch.Tensor, "N F"]) -> float:
    """Share of the true (row, feature) non-zeros among each row's |S_n| largest codes.

    Taking exactly as many atoms as the row truly has makes recall equal precision; a dictionary
    whose atom indices mean nothing scores about L0 / F.
    """
    k_N = true_NF.sum(1)
    kmax = int(k_N.max()) if k_N.numel() else 0
    if kmax == 0:
        return float("nan")
    top = codes_NF.abs().topk(kmax, dim=1).indices
    keep = torch.arange(kmax)[None, :] < k_N[:, None]
    picked = torch.zeros_like(true_NF).scatter_(1, top, keep)
    return float((picked & true_NF).sum() / true_NF.sum())


def pursuit_recovery(data: SparseSuperposition, cfg: RecoveryConfig, seed: int) -> list[dict]:
    """OMP at the true per-row L0 and the non-negative lasso, on the planted dictionary and its controls."""
    true_NF = data.codes_NF > 0
    rows = []
    for dictionary in _with_controls(from_matrix(data.directions_FD, "planted"), seed):
        codes = omp(data.acts_ND, dictionary.W_FD, true_NF.sum(1)).codes_NF
        recall = support_recall(codes, true_NF)
        rows.append(_row("pursuit-support", "omp", dictionary, "support_recall", recall, cfg.support_target))
        # Index-free evidence too: at the true L0 only the planted atoms reconstruct the rows.
        explained = 1 - fvu(data.acts_ND, codes @ dictionary.W_FD.to(codes.dtype))
        rows.append(_row("pursuit-support", "omp", dictionary, "explained_variance", explained, cfg.support_target))
        # A control dictionary never meets FISTA's tolerance (no sparse solution exists); a bounded
        # run is enough to show its support is unrelated to the planted one.
        lasso = fista(data.acts_ND, dictionary.W_FD, cfg.pursuit_alpha, positive=True, max_iter=300)
        rows.append(
            _row(
                "pursuit-support",
                "fista",
                dictionary,
                "support_recall",
                support_recall(lasso.codes_NF, true_NF),
                cfg.support_target,
            )
        )
    return rows


def mean_max_cosine(true_KD: Float[torch.Tensor, "K D"], W_FD: Float[torch.Tensor, "F D"]) -> float:
    """For every planted direction, the best |cosine| with any atom; averaged (1 is perfect recovery)."""
    t = true_KD / true_KD.norm(dim=1, keepdim=True)
    w = W_FD.to(t.dtype) / W_FD.norm(dim=1, keepdim=True).clamp_min(1e-12).to(t.dtype)
    return float((t @ w.T).abs().amax(1).mean())


def sae_recovery(data: SparseSuperposition, cfg: RecoveryConfig, seed: int) -> list[dict]:
    """Train a TopK SAE on ``data`` and score its decoder and the decoder's controls."""
    sae_cfg = SAEConfig(
        architecture="topk",
        k=cfg.sae_k,
        width=cfg.sae_width,
        training_tokens=cfg.sae_tokens,
        batch_size=1024,
        progress=False,
    )
    sae = train_sae(data.acts_ND, sae_cfg, seed=derive_seed(seed, "recovery", "sae") % 2**31)
    return [
        _row(
            "sae-directions",
            "sae-topk",
            d,
            "mean_max_cosine",
            mean_max_cosine(data.directions_FD, d.W_FD),
            cfg.cosine_target,
        )
        for d in _with_controls(from_sae(sae), seed)
    ]


def recovery_checks(cfg: RecoveryConfig | None = None, *, seed: int = 0) -> pd.DataFrame:
    """Rows: check, method, dictionary, metric, value, target, expect, passed."""
    cfg = cfg or RecoveryConfig()
    pursuit_data = sparse_superposition(
        cfg.pursuit_rows,
        d=cfg.pursuit_d,
        n_features=cfg.pursuit_features,
        seed=derive_seed(seed, "pursuit-data"),
        max_firing=cfg.pursuit_firing[0],
        min_firing=cfg.pursuit_firing[1],
    )
    rows = pursuit_recovery(pursuit_data, cfg, seed)
    if cfg.run_sae:
        sae_data = sparse_superposition(
            cfg.sae_rows,
            d=cfg.sae_d,
            n_features=cfg.sae_features,
            seed=derive_seed(seed, "sae-data"),
            max_firing=0.08,
            min_firing=0.02,
        )
        rows += sae_recovery(sae_data, cfg, seed)
    return pd.DataFrame(rows)
