"""Sparse-coding throughput: auditkit's batched FISTA and OMP against scikit-learn's ``sparse_encode``.

Same activations, same dictionary, measured in one run (these machines are noisy and shared, so only
the ratios are meaningful):

- lasso: ``sparse_encode(algorithm="lasso_cd", alpha)`` (coordinate descent, tol 1e-8 fixed inside
  sklearn) against ``auditkit.methods.pursuit.lasso.fista`` with the *same* alpha (same objective scaling),
  run to a tolerance whose objective agrees with sklearn's (the agreement is printed), with both
  solvers: the default working set (``solver="working-set"``) and plain FISTA (``solver="fista"``);
- omp: ``sparse_encode(algorithm="omp", n_nonzero_coefs=k)`` against ``auditkit.methods.pursuit.greedy.omp``
  with the same k (same L0; support agreement is printed).

Activations are synthetic: non-negative k-sparse combinations of a unit-norm Gaussian dictionary
(D = 576, SmolLM2-135M's width; F = 2,304 = 4 D) plus Gaussian noise. sklearn solves rows one at a
time in Python, so it is timed on a subset of rows and extrapolated linearly (its one-off Gram
matrix is timed separately and added once); the output says so.

    python bench/bench_pursuit.py [--n 10000] [--subset-lasso 300] [--subset-omp 1000] [--k 32]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def _data(n: int, d: int, f: int, k_true: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    from auditkit.methods.pursuit.dictionaries import from_matrix
    from auditkit.seeding import torch_generator

    g = torch_generator(seed)
    W = from_matrix(torch.randn(f, d, generator=g)).W_FD
    support = torch.rand(n, f, generator=g).argsort(1)[:, :k_true]
    codes = torch.zeros(n, f).scatter_(1, support, 0.5 + torch.rand(n, k_true, generator=g))
    X = codes @ W
    X += 0.1 * X.norm(dim=1, keepdim=True).mean() / d**0.5 * torch.randn(n, d, generator=g)
    return X, W


def _lasso_obj(X: np.ndarray, C: np.ndarray, W: np.ndarray, alpha: float) -> np.ndarray:
    return 0.5 * ((X - C @ W) ** 2).sum(1) + alpha * np.abs(C).sum(1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--d", type=int, default=576)
    ap.add_argument("--f", type=int, default=2304)
    ap.add_argument("--k", type=int, default=32, help="OMP L0 target")
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--tol", type=float, default=1e-5, help="FISTA relative objective tolerance")
    ap.add_argument("--subset-lasso", type=int, default=300)
    ap.add_argument("--subset-omp", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads for both sides")
    args = ap.parse_args()
    from sklearn.decomposition import sparse_encode
    from threadpoolctl import threadpool_limits

    # sklearn's sparse_encode (n_jobs=None) solves one row at a time in one thread; both sides get
    # the same thread budget. On these 2 shared cores, 2 threads spin-wait under load (measured 3-6x
    # slower for auditkit), so 1 is the default.
    torch.set_num_threads(args.threads)
    with threadpool_limits(args.threads):
        _run(args, sparse_encode)


def _run(args: argparse.Namespace, sparse_encode) -> None:

    from auditkit.methods.pursuit.greedy import omp
    from auditkit.methods.pursuit.lasso import fista

    X, W = _data(args.n, args.d, args.f, 20, 0)
    Xn, Wn = X.double().numpy(), W.double().numpy()
    print(f"{args.n} synthetic activations (20-sparse + noise), D={args.d}, F={args.f}; threads={args.threads}")

    t = time.perf_counter()
    gram = Wn @ Wn.T
    t_gram = time.perf_counter() - t

    # --- lasso: auditkit's two solvers vs coordinate descent at the same alpha
    m = args.subset_lasso
    t = time.perf_counter()
    C_ref = sparse_encode(Xn[:m], Wn, gram=gram, algorithm="lasso_cd", alpha=args.alpha)
    t_cd = t_gram + (time.perf_counter() - t) * args.n / m
    ref = _lasso_obj(Xn[:m], C_ref, Wn, args.alpha)
    print(
        f"lasso  alpha={args.alpha}: sklearn lasso_cd {t_cd:7.1f} s (timed on {m} rows, extrapolated"
        f" x{args.n / m:.0f} + Gram {t_gram:.2f} s); mean L0 {np.count_nonzero(C_ref, 1).mean():.1f}"
    )
    for solver in ("working-set", "fista"):
        t = time.perf_counter()
        res = fista(X, W, args.alpha, tol=args.tol, solver=solver)
        t_ours = time.perf_counter() - t
        rel = (_lasso_obj(Xn[:m], res.codes_NF[:m].double().numpy(), Wn, args.alpha) - ref) / ref
        print(
            f"       auditkit fista(solver={solver!r}) {t_ours:6.2f} s (float32, tol {args.tol:g}, mean"
            f" {res.n_iter_N.float().mean():.1f} {'epochs' if solver == 'working-set' else 'iters'})"
            f" | ratio {t_cd / t_ours:5.1f}x | objective (ours - sklearn)/sklearn on those rows:"
            f" mean {rel.mean():+.2e}, max {rel.max():+.2e}; mean L0"
            f" {np.count_nonzero(res.codes_NF[:m].numpy(), 1).mean():.1f}"
        )

    # --- omp: batched OMP vs sklearn's per-row Gram OMP at the same L0
    t = time.perf_counter()
    res = omp(X, W, args.k)
    t_omp = time.perf_counter() - t
    m = args.subset_omp
    t = time.perf_counter()
    C_ref = sparse_encode(Xn[:m], Wn, gram=gram, algorithm="omp", n_nonzero_coefs=args.k)
    t_skomp = t_gram + (time.perf_counter() - t) * args.n / m
    ours_sup, ref_sup = res.codes_NF[:m].numpy() != 0, C_ref != 0
    same = (ours_sup == ref_sup).all(1).mean()
    resid_ours = ((Xn[:m] - res.codes_NF[:m].double().numpy() @ Wn) ** 2).sum(1)
    resid_ref = ((Xn[:m] - C_ref @ Wn) ** 2).sum(1)
    print(
        f"omp    k={args.k}: sklearn omp {t_skomp:7.1f} s (timed on {m} rows, extrapolated x{args.n / m:.0f} + Gram)"
        f" | auditkit omp {t_omp:6.2f} s (float32) | ratio {t_skomp / t_omp:5.1f}x"
    )
    print(
        f"       L0 {ours_sup.sum(1).mean():.1f} vs {ref_sup.sum(1).mean():.1f};"
        f" identical support on {same:.1%} of rows;"
        f" residual energy ratio ours/sklearn {resid_ours.sum() / resid_ref.sum():.5f}"
    )


if __name__ == "__main__":
    main()
