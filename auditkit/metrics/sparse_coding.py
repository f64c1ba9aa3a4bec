"""Sparse-coding metrics, pure functions of codes and reconstructions: FVU and support statistics.

The curves and the amortisation gap, which run solvers, are in :mod:`auditkit.methods.pursuit.curves`.

- **FVU** (fraction of variance unexplained) about the dataset mean:
  ``sum_n ||x_n - x_hat_n||^2 / sum_n ||x_n - mean(x)||^2``; 0 is perfect, 1 is no better than the
  mean. Selectivity wants higher-is-better numbers, so audits should report ``1 - FVU``.
- **Support**: mean L0 (non-zeros per row), the fraction of atoms used by at least one row, and the
  entropy (nats) of atom usage, the distribution of non-zeros over atoms; ``log F`` when usage is
  uniform, 0 when one atom does everything.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float

from auditkit.errors import DataError


def fvu(X_ND: Float[torch.Tensor, "N D"], X_hat_ND: Float[torch.Tensor, "N D"]) -> float:
    """Fraction of variance unexplained about the dataset mean (see the module docstring)."""
    X, Xh = X_ND.to(torch.float64), X_hat_ND.to(torch.float64)
    total = float(((X - X.mean(0)) ** 2).sum())
    if total <= 0:
        raise DataError(f"FVU is undefined: the {X.shape[0]} rows have zero variance")
    return float(((X - Xh) ** 2).sum()) / total


@dataclass(frozen=True)
class SupportStats:
    mean_l0: float
    """Mean number of non-zero codes per row."""
    frac_atoms_used: float
    """Share of atoms that are non-zero on at least one row."""
    usage_entropy: float
    """Entropy (nats) of the share of all non-zeros that each atom takes; at most log F."""


def support_stats(codes_NF: Float[torch.Tensor, "N F"]) -> SupportStats:
    """L0, atom coverage and usage entropy of a code matrix."""
    nz = codes_NF != 0
    count_F = nz.sum(0).to(torch.float64)
    total = float(count_F.sum())
    p = count_F[count_F > 0] / max(total, 1.0)
    return SupportStats(
        mean_l0=float(nz.sum(1).to(torch.float64).mean()) if nz.shape[0] else 0.0,
        frac_atoms_used=float((count_F > 0).to(torch.float64).mean()),
        usage_entropy=float(-(p * p.log()).sum()) if total else 0.0,
    )
