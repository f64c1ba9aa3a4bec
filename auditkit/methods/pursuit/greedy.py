"""Sparse coding of activations against a fixed dictionary, batched over tokens.

Every activation row x [D] is coded against a dictionary W [F, D] with unit-norm rows (atoms):

- **lasso** (``fista`` in :mod:`auditkit.methods.pursuit.lasso`): ``min_c 1/2 ||x - c W||^2 + alpha ||c||_1``.
- **omp**: orthogonal matching pursuit to a target L0 (k atoms per row, or a per-row k).
- **gradient pursuit**: OMP's greedy selection with one gradient step on the support instead of an
  exact least-squares solve (Blumensath & Davies 2008, "Gradient Pursuits", IEEE TSP 56(6)).

All of them run in the *correlation domain* (Rubinstein, Zibulevsky & Elad 2008, "Efficient
implementation of the K-SVD algorithm using Batch-OMP"): with the Gram matrix G = W W^T [F, F] and
the initial correlations X W^T [N, F], every iteration needs only ``c @ G`` for a *sparse* c, which
torch does as one CSR x dense product for the whole batch, much cheaper than two dense [N, D] x [D, F]
products. When G would not fit in ``gram_max_bytes`` (e.g. a 49k-token embedding dictionary) the
same products go through W instead (``(c @ W) @ W^T``). This module also holds what the lasso
solvers share: :class:`PursuitResult`, the Gram operator and the input checks.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float, Int

from auditkit.errors import ConfigError, DataError

_UNIT_NORM_TOL = 1e-3
_DENSE_ABOVE = 0.25  # nnz fraction above which a dense matmul beats CSR x dense


@dataclass(frozen=True)
class PursuitResult:
    """Codes of one batch of rows, with per-row diagnostics."""

    codes_NF: Float[torch.Tensor, "N F"]
    """Sparse codes: ``x_hat = codes_NF @ W_FD``."""
    objective_N: Float[torch.Tensor, " N"]
    """``1/2 ||x - c W||^2 (+ alpha ||c||_1 for the lasso)`` per row, float64."""
    n_iter_N: Int[torch.Tensor, " N"]
    """Iterations (FISTA), coordinate-descent epochs summed over working sets (working-set lasso),
    or atoms selected (greedy methods)."""
    converged_N: Bool[torch.Tensor, " N"]
    """Whether the row met the tolerance (lasso) or reached its k without degeneracy (greedy)."""
    objective_path_NK: Float[torch.Tensor, "N K"] | None = None
    """OMP only: column s is the objective with the first s + 1 atoms, float64 (a row that stopped
    keeps its last value). OMP is greedy, so this is the whole FVU-vs-L0 curve up to max k in one run."""


class _Gram:
    """``c -> c @ W W^T`` and Gram look-ups, from a materialised G when it fits, else through W."""

    def __init__(self, W_FD: torch.Tensor, max_bytes: int):
        F = W_FD.shape[0]
        self.W_FD = W_FD
        self.G_FF = W_FD @ W_FD.T if F * F * W_FD.element_size() <= max_bytes else None
        self.diag_F = (W_FD * W_FD).sum(1)

    def apply_nz(self, r: torch.Tensor, col: torch.Tensor, vals: torch.Tensor, n: int) -> torch.Tensor:
        """``c @ G`` for the [n, F] matrix c whose non-zeros are (r, col, vals), r sorted (row-major)."""
        F = self.W_FD.shape[0]
        if vals.numel() > _DENSE_ABOVE * n * F:
            c = torch.zeros(n, F, dtype=vals.dtype)
            c[r, col] = vals
        else:
            crow = torch.zeros(n + 1, dtype=torch.int64)
            crow[1:] = torch.bincount(r, minlength=n).cumsum(0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
                c = torch.sparse_csr_tensor(crow, col, vals, (n, F))
        if self.G_FF is not None:
            return c @ self.G_FF
        return (c @ self.W_FD) @ self.W_FD.T

    def apply_sparse(self, cols_NS: torch.Tensor, vals_NS: torch.Tensor) -> torch.Tensor:
        """``c @ G`` for rows with S non-zeros each (distinct columns per row), built as CSR directly."""
        n, s = cols_NS.shape
        cols, order = cols_NS.sort(1)  # CSR wants sorted column indices within a row
        crow = torch.arange(0, n * s + 1, s, dtype=torch.int64) if s else torch.zeros(n + 1, dtype=torch.int64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
            vals = vals_NS.gather(1, order).reshape(-1)
            c = torch.sparse_csr_tensor(crow, cols.reshape(-1), vals, (n, self.W_FD.shape[0]))
        if self.G_FF is not None:
            return c @ self.G_FF
        return (c @ self.W_FD) @ self.W_FD.T

    def block(self, idx_NS: torch.Tensor) -> torch.Tensor:
        """The per-row Gram blocks G[idx_NS[n], idx_NS[n]], laid out [S, S, N] (rows last, contiguous)."""
        idx_SN = idx_NS.T.contiguous()
        if self.G_FF is not None:  # one flat index_select: ~8x faster than 2-D advanced indexing on CPU
            lin = idx_SN[:, None, :] * self.G_FF.shape[0] + idx_SN[None, :, :]
            return self.G_FF.view(-1).index_select(0, lin.view(-1)).view(lin.shape)
        W_NSD = self.W_FD[idx_NS]
        return (W_NSD @ W_NSD.transpose(1, 2)).permute(1, 2, 0).contiguous()

    def entries(self, idx_NS: torch.Tensor, new_N: torch.Tensor) -> torch.Tensor:
        """G[idx_NS[n, s], new_N[n]] as [N, S]."""
        if self.G_FF is not None:
            return self.G_FF[idx_NS, new_N[:, None]]
        return torch.einsum("nsd,nd->ns", self.W_FD[idx_NS], self.W_FD[new_N])


def omp(
    X_ND: Float[torch.Tensor, "N D"],
    W_FD: Float[torch.Tensor, "F D"],
    k: int | Int[torch.Tensor, " N"],
    *,
    batch_size: int = 1024,
    gram_max_bytes: int = 1 << 30,
) -> PursuitResult:
    """Orthogonal matching pursuit to L0 = k (an int, or one k per row).

    Batch-OMP (Rubinstein et al. 2008, Alg. 3): pick the atom most correlated with the residual, then
    project x onto the span of the picked atoms. The projection is kept as the inverse Cholesky factor
    R^{-1} of G_SS (G_SS = R^T R), extended by one column per step, so the residual's correlations
    update as ``corr -= c_new * (b @ G)`` with a sparse b (s + 1 non-zeros) and the least-squares
    codes are ``R^{-1} z``, with z the residual's coordinates on the orthonormalised atoms. A row
    whose next atom lies in the span of its support (x already reconstructed) stops early.
    """
    k_N = _k_per_row(k, X_ND, W_FD)
    return _greedy(X_ND, W_FD, k_N, _omp_block, batch_size, gram_max_bytes)


def gradient_pursuit(
    X_ND: Float[torch.Tensor, "N D"],
    W_FD: Float[torch.Tensor, "F D"],
    k: int | Int[torch.Tensor, " N"],
    *,
    batch_size: int = 1024,
    gram_max_bytes: int = 1 << 30,
) -> PursuitResult:
    """Gradient pursuit to L0 = k (Blumensath & Davies 2008, Sec. III-A).

    Same greedy selection as OMP, but the codes on the support take one exact line-search step along
    the negative gradient restricted to the support, d = corr_S, step ``a = ||d||^2 / ||d W_S||^2``,
    instead of the least-squares solve: cheaper per step, slightly worse reconstruction.
    """
    k_N = _k_per_row(k, X_ND, W_FD)
    return _greedy(X_ND, W_FD, k_N, _gp_block, batch_size, gram_max_bytes)


def _k_per_row(k, X_ND, W_FD) -> torch.Tensor:
    _check(X_ND, W_FD)
    k_N = torch.as_tensor(k, dtype=torch.int64).expand(X_ND.shape[0]).clone()
    lim = min(W_FD.shape)
    if k_N.numel() and (int(k_N.min()) < 0 or int(k_N.max()) > lim):
        raise ConfigError(f"pursuit L0 target k must be in [0, min(F, D)] = [0, {lim}], got {k}")
    return k_N


def _greedy(X_ND, W_FD, k_N, block_fn, batch_size, gram_max_bytes) -> PursuitResult:
    W = W_FD.to(X_ND.dtype)
    op = _Gram(W, gram_max_bytes)
    parts = [
        block_fn(X_ND[i : i + batch_size], W, op, k_N[i : i + batch_size]) for i in range(0, X_ND.shape[0], batch_size)
    ]
    return _concat(parts, X_ND, W.shape[0])


def _select(corr: torch.Tensor, idx: torch.Tensor, s: int) -> torch.Tensor:
    a = corr.abs()
    a.scatter_(1, idx[:, :s], -1.0)  # never re-pick an atom already on the support
    return a.argmax(1)


def _sparse_rows(cols_NS: torch.Tensor, vals_NS: torch.Tensor, F: int) -> torch.Tensor:
    n, _s = cols_NS.shape
    return torch.zeros(n, F, dtype=vals_NS.dtype).scatter_add_(1, cols_NS, vals_NS)


def _omp_block(X, W, op: _Gram, k_N) -> PursuitResult:
    n, F = X.shape[0], W.shape[0]
    K = int(k_N.max()) if n else 0
    corr = X @ W.T  # residual correlations r W^T; the residual starts at x
    idx = torch.zeros(n, K, dtype=torch.int64)
    Rinv = torch.zeros(n, K, K, dtype=X.dtype)
    coef = torch.zeros(n, K, dtype=X.dtype)
    zz = torch.zeros(n, dtype=torch.float64)  # ||projection of x||^2 = sum of z^2
    zz_NK = torch.zeros(n, K, dtype=torch.float64)
    degenerate = torch.zeros(n, dtype=torch.bool)
    eps = 100 * torch.finfo(X.dtype).eps
    for s in range(K):
        new = _select(corr, idx, s)
        g = op.entries(idx[:, :s], new)  # G[S, new]
        rcol = torch.einsum("nji,nj->ni", Rinv[:, :s, :s], g)  # R^{-T} G[S, new]
        rnn2 = op.diag_F[new] - (rcol * rcol).sum(1)
        degenerate |= rnn2 <= eps * op.diag_F[new]
        live = (s < k_N) & ~degenerate
        rnn = torch.where(live, rnn2.clamp_min(eps).sqrt(), torch.ones_like(rnn2))
        rcol = torch.where(live[:, None], rcol, torch.zeros_like(rcol))
        z = torch.where(live, corr.gather(1, new[:, None])[:, 0] / rnn, torch.zeros_like(rnn))
        u = torch.einsum("nij,nj->ni", Rinv[:, :s, :s], rcol)  # R^{-1} R^{-T} G[S, new]
        Rinv[:, :s, s] = -u / rnn[:, None]
        Rinv[:, s, s] = 1 / rnn
        c_new = z / rnn
        coef[:, :s] -= u * c_new[:, None]
        coef[:, s] = c_new
        idx[:, s] = new
        zz += z.to(torch.float64) ** 2
        zz_NK[:, s] = zz
        # The residual loses z q_new, q_new = (w_new - u W_S) / rnn, so corr loses c_new (b @ G), b = e_new - u.
        corr -= op.apply_sparse(idx[:, : s + 1], torch.cat([-u, torch.ones(n, 1, dtype=X.dtype)], 1) * c_new[:, None])
    xx = (X.to(torch.float64) ** 2).sum(1)
    return PursuitResult(
        codes_NF=_sparse_rows(idx, coef, F),
        objective_N=0.5 * (xx - zz).clamp_min(0),
        n_iter_N=torch.minimum(k_N, torch.full_like(k_N, K)),
        converged_N=~degenerate,
        objective_path_NK=0.5 * (xx[:, None] - zz_NK).clamp_min(0),
    )


def _gp_block(X, W, op: _Gram, k_N) -> PursuitResult:
    n, F = X.shape[0], W.shape[0]
    K = int(k_N.max()) if n else 0
    corr = X @ W.T
    idx = torch.zeros(n, K, dtype=torch.int64)
    codes = torch.zeros(n, F, dtype=X.dtype)
    for s in range(K):
        idx[:, s] = _select(corr, idx, s)
        live = (s < k_N).to(X.dtype)[:, None]
        sup = idx[:, : s + 1]
        d = corr.gather(1, sup) * live  # the negative gradient of 1/2||x - cW||^2 on the support
        dG = op.apply_sparse(sup, d)
        num = (d * d).sum(1)
        den = (d * dG.gather(1, sup)).sum(1)  # ||d W_S||^2
        a = torch.where(den > 0, num / den.clamp_min(1e-30), torch.zeros_like(num))
        codes.scatter_add_(1, sup, a[:, None] * d)
        corr -= a[:, None] * dG
    r = X - codes @ W
    obj = 0.5 * (r.to(torch.float64) ** 2).sum(1)
    done = torch.ones(n, dtype=torch.bool)
    return PursuitResult(codes_NF=codes, objective_N=obj, n_iter_N=k_N.clone(), converged_N=done)


def _check(X_ND: torch.Tensor, W_FD: torch.Tensor) -> None:
    if X_ND.ndim != 2 or W_FD.ndim != 2 or X_ND.shape[1] != W_FD.shape[1]:
        raise DataError(
            f"pursuit needs X [N, D] and W [F, D] with the same D, got {tuple(X_ND.shape)}, {tuple(W_FD.shape)}"
        )
    if not bool(torch.isfinite(X_ND).all()):
        raise DataError("pursuit inputs contain NaN/inf: check the activations")
    norms = W_FD.detach().to(torch.float64).norm(dim=1)
    bad = (norms - 1).abs() > _UNIT_NORM_TOL
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        raise DataError(
            f"dictionary row {i} has norm {float(norms[i]):.4g}, not 1: build dictionaries with "
            "auditkit.methods.pursuit.dictionaries (rows are normalised there)"
        )


def _concat(parts: list[PursuitResult], X_ND: torch.Tensor, F: int) -> PursuitResult:
    if not parts:
        e = torch.zeros(0, dtype=torch.float64)
        return PursuitResult(
            codes_NF=torch.zeros(0, F, dtype=X_ND.dtype),
            objective_N=e,
            n_iter_N=torch.zeros(0, dtype=torch.int64),
            converged_N=torch.zeros(0, dtype=torch.bool),
        )
    paths = [p.objective_path_NK for p in parts]
    return PursuitResult(
        codes_NF=torch.cat([p.codes_NF for p in parts]),
        objective_N=torch.cat([p.objective_N for p in parts]),
        n_iter_N=torch.cat([p.n_iter_N for p in parts]),
        converged_N=torch.cat([p.converged_N for p in parts]),
        objective_path_NK=None if any(p is None for p in paths) else torch.cat(paths),
    )
