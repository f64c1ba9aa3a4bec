"""Lasso codes of activations against a fixed dictionary, batched over tokens.

Every row x [D] is coded against W [F, D] (unit-norm rows) by ``min_c 1/2 ||x - c W||^2 + alpha ||c||_1``
(``c >= 0`` with ``positive``). This is exactly scikit-learn's
``sparse_encode(X, W, algorithm="lasso_cd", alpha=alpha)``: it fits ``Lasso(alpha=alpha / D)`` with D
samples and F features, whose objective ``1/(2D) ||x - W^T c||^2 + (alpha/D) ||c||_1`` is ours divided
by D (same minimiser). So a plain ``Lasso(alpha=a)`` on one row is ``alpha = a * D`` here. Objectives
are reported in our scaling. Two solvers, both in the correlation domain of :mod:`.pursuit`:

- ``"fista"``: FISTA on all F atoms; every iteration is one [N, F] correlation update ``c @ G``; a row
  stops at a duality gap of ``tol`` x its objective (see :func:`fista`).
- ``"working-set"`` (the default): coordinate descent on a small per-row working set of atoms, with
  the optimality of the result checked against all F atoms once per outer step (see :func:`fista`).
"""

from __future__ import annotations

import itertools
import math
from typing import Literal

import torch
from jaxtyping import Float

from auditkit.errors import ConfigError
from auditkit.methods.pursuit.greedy import PursuitResult, _check, _concat, _Gram
from auditkit.seeding import torch_generator

_WS_START = 32  # working-set size of a row with no support yet (a cold start)
_WS_MAX = 512  # a row whose working set would outgrow this is solved by FISTA on all F atoms
_WS_EPOCHS = 100  # ... as is a row that needs more epochs: coordinate descent crawls on ill-conditioned
# working sets (support near D), where each epoch is S Python-level steps and FISTA is far cheaper
_BLOCK_ELEMS = 1 << 24  # rows x S x S of one gathered Gram block (64 MiB in float32)
_MAX_OUTER = 50
_INNER_GAP = 0.3  # an inner solve stops at a working-set duality gap of this fraction of tol x objective
_INNER_STALL = 0.01  # ... or when an epoch lowers the objective by less than this fraction of tol x objective
_GAP_EVERY = 3  # plain FISTA checks its duality gap at iteration 1 and every 3rd: a check is an O(N F)
# max; every 3rd was 7-15% faster end to end than every one (2,000 rows, D = 64..576, F = 2D, float32)
_STALL_CHECKS = 2  # ... and stops at a gap within its rounding error once this many checks set no new low


def lipschitz_constant(W_FD: Float[torch.Tensor, "F D"], *, seed: int = 0, max_iter: int = 300) -> float:
    """L = largest eigenvalue of W W^T (the Lipschitz constant of the lasso's gradient), times 1.01.

    Power iteration on the smaller of W W^T and W^T W (same non-zero spectrum). The Rayleigh quotient
    approaches lambda_max from below, slowly when the top of the spectrum is crowded (random
    dictionaries sit at a Marchenko-Pastur edge), and FISTA needs step <= 1/L (Beck & Teboulle 2009,
    Thm 4.4): the 1% margin keeps the step safe for ~1% more iterations.
    """
    W = W_FD.detach().to(torch.float64)
    small = W.shape[1] <= W.shape[0]
    v = torch.randn(W.shape[1] if small else W.shape[0], generator=torch_generator(seed), dtype=torch.float64)
    lam = 0.0
    for _ in range(max_iter):
        w = W.T @ (W @ v) if small else W @ (W.T @ v)
        new = float(v @ w) / float(v @ v)
        v = w / w.norm().clamp_min(1e-300)
        if abs(new - lam) <= 1e-9 * abs(new):
            lam = new
            break
        lam = new
    return 1.01 * lam


def fista(
    X_ND: Float[torch.Tensor, "N D"],
    W_FD: Float[torch.Tensor, "F D"],
    alpha: float,
    *,
    positive: bool = False,
    max_iter: int = 1000,
    tol: float = 1e-6,
    init_NF: Float[torch.Tensor, "N F"] | None = None,
    lipschitz: float | None = None,
    batch_size: int = 1024,
    gram_max_bytes: int = 1 << 30,
    solver: Literal["working-set", "fista"] = "working-set",
) -> PursuitResult:
    """Lasso (or non-negative lasso) codes: ``1/2 ||x - c W||^2 + alpha ||c||_1`` per row.

    ``solver="fista"``: FISTA (Beck & Teboulle 2009, SIAM J. Imaging Sci. 2(1)) on all F atoms, with
    momentum reset when the objective rises (function-value restart, O'Donoghue & Candes 2015). A row
    stops, with ``converged_N`` True, when the duality gap at its iterate (the working-set solver's,
    below: the residual rescaled into the dual feasible set, Celer Eq. 3) is at most ``tol`` times its
    objective, a certificate that the objective is within ``tol`` relative of the optimum. The gap is
    checked at the first iteration, every third and the last. A row still above it after ``max_iter``
    iterations keeps its last iterate with ``converged_N`` False. tol is floored at 8 eps (as below), and
    a row also stops, converged, once its gap has stalled (no new low for two checks) within the gap's own
    rounding error, about ``2 eps L (max_j |x . w_j| / L + 2 max_j |c_j|) ||c||_1`` (:func:`_fista_gap`).
    In float32 with a small alpha that error is ~1e-5 of the objective, while the codes' objective is
    within ~1e-10 of the optimum (their rounding costs the objective to second order, the gap to first);
    without this rule such rows would all run to ``max_iter``. So in float32 ``converged_N`` certifies
    ``tol`` or, on such rows, the rounding level (measured: no converged row above tol = 1e-6 on random
    and planted problems, D = 64..576). With alpha = 0 there is no dual certificate (the gap is the
    objective): rows run to ``max_iter`` and report False unless the residual is 0.

    ``solver="working-set"``: the working-set scheme of Celer (Massias, Gramfort & Salmon 2018, "Celer:
    a fast solver for the Lasso with dual extrapolation", ICML, Alg. 3) and Blitz (Johnson & Guestrin
    2015, ICML), batched over rows. Each outer step solves the lasso restricted to each row's working
    set (its current support plus the atoms with the largest ``|x - cW| . w_j``, 2x the support size,
    at least 32) by cyclic coordinate descent on the gathered [S, S] Gram blocks, then recomputes the
    correlations with all F atoms once and the duality gap at the rescaled residual (Celer Eq. 3).
    A row stops when that gap is at most ``tol`` times its objective (a certificate: the objective is
    within ``tol`` relative of the optimum), or, once its working set is solved (to 0.3x that gap, or
    until an epoch gains < 0.01 tol), when a coordinate step on each violating atom would lower the
    objective by at most ``tol`` relative, ``sum_j (|w_j . r| - alpha)_+^2 / 2 <= tol * objective``
    (a one-step decrease criterion, applied to the violators: the gap is a loose bound when an atom exceeds
    alpha by ~1e-5, and such a row would be re-solved for a ~1e-11 gain). In float32, tol is floored at
    8 eps (~1e-6): smaller gaps are rounding noise. Rows whose working set would exceed 512 atoms
    (tiny alpha), or that need over 100 epochs (ill-conditioned working sets, a support near D), are
    solved again exactly as ``solver="fista"`` solves them. ``n_iter_N`` counts coordinate-descent
    epochs (plus FISTA's iterations on those rows).

    Rows are solved in blocks of ``batch_size``; finished rows leave the block. ``init_NF`` warm-starts
    (see :func:`fista_path`); ``lipschitz`` (FISTA's step, computed when None) is only needed by FISTA.
    Computation is in X's dtype; in float32, relative gaps below ~1e-6 are rounding noise.
    """
    _check(X_ND, W_FD)
    if alpha < 0 or tol <= 0 or max_iter < 1:
        raise ConfigError(f"fista needs alpha >= 0, tol > 0, max_iter >= 1; got {alpha}, {tol}, {max_iter}")
    if solver not in ("working-set", "fista"):
        raise ConfigError(f"unknown lasso solver {solver!r}: use 'working-set' or 'fista'")
    W = W_FD.to(X_ND.dtype)
    ws_op = _Gram(W, gram_max_bytes) if solver == "working-set" else None
    fista_op: list = []  # (L, G / L operator), built on first use: the working-set solver rarely needs it

    def run_fista(X: torch.Tensor, init: torch.Tensor | None) -> PursuitResult:
        if not fista_op:
            L = lipschitz if lipschitz is not None else lipschitz_constant(W)
            fista_op.extend([L, _Gram(W / math.sqrt(L), gram_max_bytes)])  # gradient step u = x + b - c @ G/L
        L, op = fista_op
        return _fista_block(X, W, op, alpha / L, L, positive, max_iter, tol, init)

    parts = []
    for i in range(0, X_ND.shape[0], batch_size):
        X = X_ND[i : i + batch_size]
        init = None if init_NF is None else init_NF[i : i + batch_size].to(X_ND.dtype)
        if ws_op is None:
            parts.append(run_fista(X, init))
            continue
        res, left = _ws_block(X, W, ws_op, alpha, positive, max_iter, tol, init)
        if left.numel():  # solved from the caller's start exactly as solver="fista" would (same codes)
            fin = run_fista(X[left], None if init is None else init[left])
            res.codes_NF[left], res.objective_N[left], res.converged_N[left] = (
                fin.codes_NF,
                fin.objective_N,
                fin.converged_N,
            )
            res.n_iter_N[left] += fin.n_iter_N
        parts.append(res)
    return _concat(parts, X_ND, W.shape[0])


def _fista_block(X, W, op, lam, L, positive, max_iter, tol, init) -> PursuitResult:
    """FISTA on one block of rows, with the operator ``op`` of G / L and lam = alpha / L.

    A row stops, converged, once the duality gap at its iterate is at most tol x its objective, or is
    within the gap's rounding error (:func:`_fista_gap`) with no new low for ``_STALL_CHECKS`` checks (a
    stall; FISTA's gap is not monotone, so one check above the low is no stall). Checks are at iteration 1,
    every ``_GAP_EVERY``-th and the last; rows still above it after ``max_iter`` iterations keep their last
    iterate, ``converged_N`` False.
    """
    n, F = X.shape[0], W.shape[0]
    b = (X @ W.T) / L  # x W^T / L: the constant part of the gradient step
    bmax = b.abs().amax(1).to(torch.float64)
    xx = (X.to(torch.float64) ** 2).sum(1)
    tol = max(tol, 8 * torch.finfo(X.dtype).eps)  # gaps below this are rounding noise (as in _ws_block)
    x = torch.zeros(n, F, dtype=X.dtype) if init is None else init.clone()
    if positive:
        x.clamp_min_(0)
    u_prev, _ = _step(x, b, op)  # u(c) = c - grad(c)/L is affine in c, so the momentum step on u
    x = _prox(u_prev, lam, positive)  # equals the gradient step at FISTA's extrapolated point
    u, nz = _step(x, b, op)
    check = True  # a warm start may be optimal already
    obj, gap, noise = _fista_gap(nz, x, u, b, bmax, xx, lam, L, positive, check)
    low = torch.full((n,), math.inf, dtype=torch.float64)  # the lowest gap at the previous checks
    since = torch.zeros(n, dtype=torch.int64)  # checks since that low was set
    t = torch.ones(n, dtype=torch.float64)
    rows = torch.arange(n)
    out = torch.zeros(n, F, dtype=X.dtype)
    out_obj, out_it = obj.clone(), torch.full((n,), max_iter, dtype=torch.int64)
    out_conv = torch.zeros(n, dtype=torch.bool)
    for it in range(1, max_iter + 1):  # x, u, obj, gap: after `it` iterations
        if check:
            since = torch.where(gap < low, 0, since + 1)
            low = torch.minimum(low, gap)
        done = (gap <= tol * obj) | ((gap <= noise) & (since >= _STALL_CHECKS))  # noise is 0 between checks
        if bool(done.any()):
            r = rows[done]
            out[r], out_obj[r], out_it[r], out_conv[r] = x[done], obj[done], it, True
            keep = ~done
            rows, x, u, u_prev, b, bmax, xx, t, obj, low, since = (
                a[keep] for a in (rows, x, u, u_prev, b, bmax, xx, t, obj, low, since)
            )
            if rows.numel() == 0:
                break
        if it == max_iter:
            break
        t_next = (1 + torch.sqrt(1 + 4 * t * t)) / 2
        beta = ((t - 1) / t_next).to(X.dtype)
        x = _prox(torch.lerp(u, u_prev, -beta[:, None]), lam, positive)
        u_prev = u
        u, nz = _step(x, b, op)
        check = (it + 1) % _GAP_EVERY == 0 or it + 1 == max_iter
        obj_new, gap, noise = _fista_gap(nz, x, u, b, bmax, xx, lam, L, positive, check)
        t = torch.where(obj_new > obj, torch.ones_like(t_next), t_next)  # restart on increase
        obj = obj_new
    out[rows], out_obj[rows] = x, obj
    return PursuitResult(codes_NF=out, objective_N=out_obj, n_iter_N=out_it, converged_N=out_conv)


def _prox(v: torch.Tensor, lam: float, positive: bool) -> torch.Tensor:
    # Proximal map of lam*||.||_1 (soft threshold), plus the indicator of c >= 0 when positive.
    return (v - lam).clamp_min_(0) if positive else torch.nn.functional.softshrink(v, lam)


def _step(x: torch.Tensor, b: torch.Tensor, op: _Gram) -> tuple[torch.Tensor, tuple]:
    """u = x + b - x G/L (the gradient step from x), and x's non-zeros (row-major, reused)."""
    r, col = torch.nonzero(x, as_tuple=True)
    vals = x[r, col]
    return torch.add(x, b).sub_(op.apply_nz(r, col, vals, x.shape[0])), (r, col, vals)


def _fista_gap(nz, x, u, b, bmax, xx, lam, L, positive, check) -> tuple[torch.Tensor, ...]:
    """Objective, duality gap (:func:`_gap`) and the gap's rounding level, per row, of FISTA's iterate x
    from its gradient step u = x + b - x G/L; ``bmax`` = max_j |b_j|.

    The correlations are q = (x_row - cW) W^T = L (u - x), x_row W^T = L b and alpha = L lam, so the
    objective costs O(nnz) (sums over x's non-zeros only) and is the working-set solver's, term for term.
    The gap also needs max_j |q_j|, an O(N F) pass; without ``check`` it is skipped and the gap is that
    of the dual point 0, the objective itself (a valid bound that stops no row but one at objective 0).

    Rounding: u's entries are sums of terms of size |c| and |b|, so in X's dtype each q_j = L (u_j - c_j)
    carries an error of ~eps L (|b| + 2|c|), and the gap, ~ ||c||_1 max_j |dq_j|, one of about
    ``2 eps L (max|b| + 2 max|c|) ||c||_1``: the returned level. In float32 with a small alpha this
    exceeds 8 eps x objective (measured: gaps stall at ~1e-5 relative while the objective is within
    ~1e-12 of the optimum, since the primal error is second order in the codes' error, the gap first).
    """
    r, col, vals = nz
    v = vals.to(torch.float64)
    q_nz = (u[r, col].to(torch.float64) - v) * L
    n = u.shape[0]
    noise = torch.zeros(n, dtype=torch.float64)
    if check:
        top = L * (torch.sub(u, x) if positive else torch.sub(u, x).abs_()).amax(1).to(torch.float64)
        cmax = torch.zeros(n, dtype=torch.float64).scatter_reduce_(0, r, v.abs(), "amax")
        l1 = torch.zeros(n, dtype=torch.float64).index_add_(0, r, v.abs())
        noise = 2 * torch.finfo(u.dtype).eps * L * (bmax + 2 * cmax) * l1
    else:
        top = torch.full((n,), math.inf, dtype=torch.float64)
    obj, gap = _gap_nz(r, v, L * b[r, col].to(torch.float64), q_nz, xx, lam * L, top)
    return obj, gap, noise


def fista_path(
    X_ND: Float[torch.Tensor, "N D"],
    W_FD: Float[torch.Tensor, "F D"],
    alphas: list[float],
    *,
    warm_start: bool = True,
    **kwargs,
) -> list[PursuitResult]:
    """FISTA along a decreasing lambda path, each solve warm-started from the previous codes.

    Decreasing alphas make each solution a good start for the next (the support grows gradually), as
    in scikit-learn's ``lasso_path``; ``warm_start=False`` solves each from zero (for comparison).
    """
    if any(a2 > a1 for a1, a2 in itertools.pairwise(alphas)):
        raise ConfigError(f"fista_path needs decreasing alphas (warm starts go from sparse to dense), got {alphas}")
    L = kwargs.pop("lipschitz", None)
    if L is None and kwargs.get("solver") == "fista":  # the working-set solver seldom needs L
        L = lipschitz_constant(W_FD.to(X_ND.dtype))
    results: list[PursuitResult] = []
    for a in alphas:
        init = results[-1].codes_NF if (warm_start and results) else None
        results.append(fista(X_ND, W_FD, a, init_NF=init, lipschitz=L, **kwargs))
    return results


def _ws_block(X, W, op: _Gram, alpha, positive, max_iter, tol, init) -> tuple[PursuitResult, torch.Tensor]:
    """Working-set lasso on one block of rows (see :func:`fista`); also returns the rows left to FISTA.

    Between outer steps each row's codes live on its working set only: atoms idx [m, S] (sorted) and
    values cS [m, S] (zero off the support), so nothing of size [m, F] but the correlations is kept.
    """
    n, F = X.shape[0], W.shape[0]
    b = X @ W.T  # x W^T: the correlations at c = 0
    xx = (X.to(torch.float64) ** 2).sum(1)
    if init is None:
        init = torch.zeros(n, 0, dtype=X.dtype)
    idx, cS = _pack(init.clamp_min(0) if positive else init)
    out_c, out_obj = torch.zeros(n, F, dtype=X.dtype), torch.zeros(n, dtype=torch.float64)
    out_it, out_conv = torch.zeros(n, dtype=torch.int64), torch.zeros(n, dtype=torch.bool)
    rows, it = torch.arange(n), torch.zeros(n, dtype=torch.int64)
    solved = torch.zeros(n, dtype=torch.bool)  # the last working-set solve converged (see _solve_ws)
    tol = max(tol, 8 * torch.finfo(X.dtype).eps)  # gaps below this are rounding noise
    left = [torch.zeros(0, dtype=torch.int64)]
    for outer in range(_MAX_OUTER + 1):
        (r, col, vals), corr, prio, obj, gap = _check_all(op, b, rows, idx, cS, xx, alpha, positive)
        gain = _violation_gain(prio, r, col, alpha)
        conv = (gap <= tol * obj) | (solved & (gain <= tol * obj))
        done = conv | (it >= max_iter) | (outer == _MAX_OUTER)
        nnz = torch.bincount(r, minlength=rows.numel())
        p = (2 * nnz).clamp(min=min(_WS_START, F), max=F)  # Celer's working-set size: twice the support
        big = ~done & ((p > _WS_MAX) | (it >= _WS_EPOCHS))
        fin = done | big
        f = rows[fin]
        out_obj[f], out_it[f], out_conv[f] = obj[fin], it[fin], conv[fin]
        sel = fin[r]
        out_c[rows[r[sel]], col[sel]] = vals[sel]
        left.append(rows[big])
        keep = ~fin
        if not bool(keep.any()):
            break
        sel = keep[r]
        r, col, vals = (torch.cumsum(keep, 0) - 1)[r[sel]], col[sel], vals[sel]
        kept = keep.nonzero()[:, 0]
        rows, prio, xx, it, p = (t[kept] for t in (rows, prio, xx, it, p))
        solved = torch.zeros(rows.numel(), dtype=torch.bool)
        idx, cS = _working_set(prio, r, col, vals, int(p.max()))
        qS, bS = corr[kept[:, None], idx], b[rows[:, None], idx]
        chunk = max(1, _BLOCK_ELEMS // idx.shape[1] ** 2)
        for i in range(0, rows.numel(), chunk):
            s = slice(i, i + chunk)
            budget = (min(max_iter, _WS_EPOCHS) - it[s]).clamp_min(1)
            epochs, solved[s] = _solve_ws(op, idx[s], cS[s], qS[s], bS[s], xx[s], alpha, positive, tol, budget)
            it[s] += epochs
        idx, order = idx.sort(1)
        cS = cS.gather(1, order)
    res = PursuitResult(codes_NF=out_c, objective_N=out_obj, n_iter_N=out_it, converged_N=out_conv)
    return res, torch.cat(left)


def _check_all(op: _Gram, b, rows, idx, cS, xx, alpha, positive):
    """An outer step's check against all F atoms: the codes' non-zeros (r, col, vals), the correlations
    (x - cW) W^T [m, F], their priorities |.| (the correlations themselves when positive), the objective
    and the duality gap."""
    r, k = torch.nonzero(cS, as_tuple=True)  # row-major, columns ascending (idx is sorted)
    col, vals = idx[r, k], cS[r, k]
    corr = b.index_select(0, rows)
    if vals.numel():
        corr.sub_(op.apply_nz(r, col, vals, rows.numel()))
    prio = corr.clone() if positive else corr.abs()
    obj, gap = _gap_nz(r, vals, b[rows[r], col], corr[r, col], xx, alpha, prio.amax(1))
    return (r, col, vals), corr, prio, obj, gap


def _pack(c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense codes [n, F] -> (atoms [n, S], values [n, S]) of each row's support, zero-padded."""
    r, col = torch.nonzero(c, as_tuple=True)
    count = torch.bincount(r, minlength=c.shape[0])
    pos = torch.arange(r.numel()) - (torch.cumsum(count, 0) - count)[r]
    S = int(count.max()) if r.numel() else 0
    idx = torch.zeros(c.shape[0], S, dtype=torch.int64)
    vals = torch.zeros(c.shape[0], S, dtype=c.dtype)
    idx[r, pos], vals[r, pos] = col, c[r, col]
    return idx, vals


def _working_set(prio, r, col, vals, S) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's S atoms of highest priority (Celer Sec. 4.1: |w_j . r| for unit-norm atoms), its
    support (r, col, vals) first; returns the atoms [m, S] and the current codes on them. Overwrites prio."""
    prio[r, col] = math.inf
    idx = prio.topk(S, dim=1, sorted=False).indices
    dense = torch.zeros_like(prio)
    dense[r, col] = vals
    return idx, dense.gather(1, idx)


def _solve_ws(op: _Gram, idx, cS, qS, bS, xx, alpha, positive, tol, budget) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinate descent on the working sets idx [m, S]; updates the codes cS [m, S]; returns the epochs
    and whether the solve converged (gap target or stall) rather than ran out of epochs, both [m].

    Batched over rows, one atom at a time: ``c_j <- prox(c_j + q_j / G_jj)`` then ``q -= dc_j G_j`` with
    q = (x - c W) W_S^T the working-set correlations. Tensors are laid out [S, (S,) m] so that each
    coordinate step reads contiguous rows.
    """
    G = op.block(idx)  # [S, S, m]
    c, q, b = (t.T.contiguous() for t in (cS, qS, bS))
    out = c.clone()
    inv_d = 1 / G.diagonal(dim1=0, dim2=1).T  # [S, m]; G_jj = ||w_j||^2, 1 up to _UNIT_NORM_TOL
    thr = alpha * inv_d
    live, done_at = torch.arange(idx.shape[0]), budget.clone()
    met = torch.zeros(idx.shape[0], dtype=torch.bool)
    prev = torch.full((idx.shape[0],), math.inf, dtype=torch.float64)
    for epoch in range(1, int(budget.max()) + 1):
        for j in range(c.shape[0]):
            cj = c[j]
            v = torch.addcmul(cj, q[j], inv_d[j])
            new = (v - thr[j]).clamp_min_(0) if positive else v - torch.clamp(v, -thr[j], thr[j])
            q.addcmul_(G[j], new - cj, value=-1)  # G symmetric: column j of the block is row j
            cj.copy_(new)
        top = (q if positive else q.abs()).amax(0)
        obj, gap = _gap(*((c * t).sum(0, dtype=torch.float64) for t in (b, q)), c.abs().sum(0), top, xx, alpha)
        ok = (gap <= _INNER_GAP * tol * obj) | (prev - obj <= _INNER_STALL * tol * obj)  # a stall: rounding
        fin = ok | (epoch >= budget)
        prev = obj
        if bool(fin.any()):
            out[:, live[fin]], done_at[live[fin]], met[live[fin]] = c[:, fin], epoch, ok[fin]
            keep = ~fin
            if not bool(keep.any()):
                break
            live, G, c, q, b, xx, inv_d, thr, prev, budget = (
                t[..., keep] for t in (live, G, c, q, b, xx, inv_d, thr, prev, budget)
            )
    cS.copy_(out.T)
    return done_at, met


def _violation_gain(prio, r, col, alpha) -> torch.Tensor:
    """sum_j (|q_j| - alpha)_+^2 / 2 over the atoms off the support; prio = |q| (q for the non-negative
    lasso), q = (x - cW) W^T.

    For an atom at zero with |q_j| = alpha + v, a coordinate step gains exactly v^2 / (2 G_jj), v^2 / 2
    for unit-norm atoms; summed over the violators, this estimates what one more outer step could gain.
    Atoms on the support are at their optimality condition up to the inner solve's tolerance.
    """
    v = (prio - alpha).clamp_min_(0)
    v[r, col] = 0
    return 0.5 * v.square_().sum(1, dtype=torch.float64)


def _gap_nz(r, vals, b_nz, q_nz, xx, alpha, top) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_gap` over all F atoms, with the sums over the codes' non-zeros only: row r, value vals, and
    there b = x W^T and q = (x - cW) W^T (gathered, b_nz and q_nz)."""
    sums = torch.zeros(3, xx.shape[0], dtype=torch.float64)
    v = vals.to(torch.float64)
    sums.index_add_(1, r, torch.stack([v * b_nz, v * q_nz, v.abs()]))
    return _gap(*sums, top, xx, alpha)


def _gap(cb, cq, l1, top, xx, alpha) -> tuple[torch.Tensor, torch.Tensor]:
    """Primal objective and duality gap per row (float64) from c.b, c.q, ||c||_1 and max_j |q_j|, where
    q = (x - cW) W^T and b = x W^T (max_j q_j for the non-negative lasso), and ``xx`` = ||x||^2.

    ``||x - cW||^2 = R = xx - c.b - c.q``. The dual point is the residual scaled into the dual feasible
    set, theta = s r with s = min(1, alpha / max_j |q_j|) (Celer Eq. 3), and with
    D(theta) = 1/2 ||x||^2 - 1/2 ||x - theta||^2 the gap simplifies to
    ``1/2 R (1 - s)^2 + alpha ||c||_1 - s c.q``, free of the cancellation in P - D.
    """
    top = top.to(torch.float64)
    s = torch.where(top > alpha, alpha / top.clamp_min(1e-300), torch.ones_like(top))
    R = (xx - cb - cq).clamp_min(0)
    return 0.5 * R + alpha * l1, 0.5 * R * (1 - s) ** 2 + alpha * l1 - s * cq
