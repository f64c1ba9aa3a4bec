"""Sparse-coding metrics: FVU, support statistics, FVU-vs-L0 curves, the amortisation gap."""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import pytest
import torch

from auditkit.methods.pursuit.curves import amortisation_gap, fvu_l0_curve
from auditkit.methods.pursuit.dictionaries import from_matrix
from auditkit.methods.pursuit.greedy import omp
from auditkit.metrics.sparse_coding import fvu, support_stats
from auditkit.seeding import torch_generator

pytestmark = pytest.mark.usefixtures("one_thread")


def _planted_nonneg(N: int, W: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    g = torch_generator(seed)
    support = torch.rand(N, W.shape[0], generator=g).argsort(1)[:, :k]
    codes = torch.zeros(N, W.shape[0]).scatter_(1, support, 1 + torch.rand(N, k, generator=g))
    return codes @ W + 0.01 * torch.randn(N, W.shape[1], generator=g)


def test_fvu_is_zero_for_a_perfect_and_one_for_the_mean_reconstruction() -> None:
    X = torch.randn(50, 8, generator=torch_generator(0))
    assert fvu(X, X) == 0.0
    assert fvu(X, X.mean(0).expand_as(X)) == pytest.approx(1.0)


def test_support_stats() -> None:
    codes = torch.tensor([[1.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 3.0, 0, 0], [1.0, 1.0, 0, 0]])
    s = support_stats(codes)
    assert s.mean_l0 == 1.25 and s.frac_atoms_used == 0.5
    p = torch.tensor([2 / 5, 3 / 5])
    assert s.usage_entropy == pytest.approx(float(-(p * p.log()).sum()))
    assert support_stats(torch.eye(6)).usage_entropy == pytest.approx(math.log(6))


def test_fvu_falls_as_l0_grows_along_both_sweeps() -> None:
    W = from_matrix(torch.randn(128, 32, generator=torch_generator(1))).W_FD
    X = _planted_nonneg(80, W, 6, 2)
    greedy = fvu_l0_curve(X, W, method="omp", ks=[1, 2, 4, 6])
    assert [p.mean_l0 for p in greedy] == [1, 2, 4, 6]
    assert all(a.fvu > b.fvu for a, b in itertools.pairwise(greedy))
    path = fvu_l0_curve(X, W, method="fista", alphas=[3.0, 1.0, 0.3, 0.1])
    assert all(a.fvu > b.fvu and a.mean_l0 < b.mean_l0 for a, b in itertools.pairwise(path))


def test_pursuit_on_a_relu_saes_decoder_beats_its_encoder_at_matched_l0() -> None:
    """A ReLU SAE with a tied, untrained encoder leaves reconstruction on the table: OMP on the same
    decoder, at each row's own L0, reconstructs better (a positive amortisation gap)."""
    W = from_matrix(torch.randn(96, 24, generator=torch_generator(3))).W_FD
    X = _planted_nonneg(100, W, 3, 4)
    sae = SimpleNamespace(W_enc=W.T.clone(), b_enc=torch.full((96,), -0.9), W_dec=W.clone(), b_dec=torch.zeros(24))
    gap = amortisation_gap(sae, X)
    assert gap.l0_pursuit <= gap.l0_sae  # per-row match (OMP may stop early on a degenerate row)
    assert gap.l0_pursuit == pytest.approx(gap.l0_sae, rel=0.02)
    assert gap.gap > 0.1 and gap.fvu_pursuit < gap.fvu_sae


def test_omp_beats_sae_lens_matching_pursuit_at_the_same_l0() -> None:
    """sae_lens's MatchingPursuitSAE encodes by plain (non-orthogonal, non-negative) matching pursuit.
    On planted non-negative signals, OMP with its decoder at each row's L0 reconstructs better, and
    plain MP's codes are not the least-squares codes on their own support."""
    import sae_lens

    W = from_matrix(torch.randn(256, 64, generator=torch_generator(5))).W_FD
    X = _planted_nonneg(200, W, 4, 6)
    mp = sae_lens.MatchingPursuitSAE(
        sae_lens.MatchingPursuitSAEConfig(d_in=64, d_sae=256, max_iterations=4, residual_threshold=0.0)
    )
    with torch.no_grad():
        mp.W_dec.copy_(W)
    gap = amortisation_gap(mp, X)
    assert gap.l0_sae <= 4
    assert gap.fvu_pursuit < 0.5 * gap.fvu_sae
    res = omp(X, W, 4)
    assert fvu(X, res.codes_NF @ W) < 0.01
