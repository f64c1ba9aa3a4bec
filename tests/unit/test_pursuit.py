"""Pursuit solvers: agreement with scikit-learn's reference solvers, and conclusions on planted codes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from auditkit.errors import ConfigError, DataError
from auditkit.methods.pursuit import fista, fista_path, gradient_pursuit, lipschitz_constant, omp
from auditkit.seeding import torch_generator


@pytest.fixture(autouse=True)
def _one_thread():
    """These problems are tiny: with 2 shared cores, OpenMP/BLAS threads spin-wait on each other
    (100x slower under load), so run single-threaded and restore the setting afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _dictionary(F: int, D: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    W = torch.randn(F, D, generator=torch_generator(seed), dtype=dtype)
    return W / W.norm(dim=1, keepdim=True)


def _planted(N: int, W: torch.Tensor, k: int, seed: int, noise: float = 0.0, positive: bool = False):
    """Rows with exactly k atoms each, coefficients of magnitude in [1, 2] with random signs."""
    g = torch_generator(seed)
    F, D = W.shape
    support = torch.rand(N, F, generator=g).argsort(1)[:, :k]
    mag = 1 + torch.rand(N, k, generator=g, dtype=W.dtype)
    sign = torch.ones_like(mag) if positive else torch.where(torch.rand(N, k, generator=g) < 0.5, -1.0, 1.0).to(W.dtype)
    codes = torch.zeros(N, F, dtype=W.dtype).scatter_(1, support, mag * sign)
    X = codes @ W + noise * torch.randn(N, D, generator=g, dtype=W.dtype)
    return X, support


@pytest.mark.parametrize("positive", [False, True])
def test_fista_objective_matches_sklearn_lasso_cd(positive: bool) -> None:
    linear_model = pytest.importorskip("sklearn.linear_model")
    D, F, N = 48, 96, 12
    W = _dictionary(F, D, 1)
    X = torch.randn(N, D, generator=torch_generator(2), dtype=torch.float64)
    alpha = 0.3 * float((X @ W.T).abs().max())
    res = fista(X, W, alpha, positive=positive, tol=1e-10, max_iter=20_000)
    assert bool(res.converged_N.all())
    for n in range(N):
        # sparse_encode(lasso_cd, alpha) fits Lasso(alpha / D) with D samples: our objective / D.
        ref = linear_model.Lasso(alpha=alpha / D, fit_intercept=False, tol=1e-12, max_iter=100_000, positive=positive)
        ref.fit(W.T.numpy(), X[n].numpy())
        c = ref.coef_
        ref_obj = 0.5 / D * np.sum((X[n].numpy() - c @ W.numpy()) ** 2) + alpha / D * np.abs(c).sum()
        ours = float(res.objective_N[n]) / D
        assert abs(ours - ref_obj) <= 1e-4 * ref_obj
    if positive:
        assert bool((res.codes_NF >= 0).all())
        assert bool((fista(X, W, alpha, tol=1e-8).codes_NF < 0).any())  # the constraint was active


def test_fista_objective_is_that_of_its_codes_and_matches_sparse_encode() -> None:
    decomposition = pytest.importorskip("sklearn.decomposition")
    W = _dictionary(64, 32, 3)
    X = torch.randn(10, 32, generator=torch_generator(4), dtype=torch.float64)
    res = fista(X, W, 0.5, tol=1e-10, max_iter=20_000)
    c = res.codes_NF
    direct = 0.5 * ((X - c @ W) ** 2).sum(1) + 0.5 * c.abs().sum(1)
    torch.testing.assert_close(res.objective_N, direct, rtol=1e-10, atol=1e-10)
    ref = decomposition.sparse_encode(X.numpy(), W.numpy(), algorithm="lasso_cd", alpha=0.5)
    ref_obj = 0.5 * ((X.numpy() - ref @ W.numpy()) ** 2).sum(1) + 0.5 * np.abs(ref).sum(1)
    np.testing.assert_allclose(res.objective_N.numpy(), ref_obj, rtol=1e-4)


def test_omp_support_and_codes_match_sklearn() -> None:
    linear_model = pytest.importorskip("sklearn.linear_model")
    W = _dictionary(120, 40, 5)
    X = torch.randn(15, 40, generator=torch_generator(6), dtype=torch.float64)
    res = omp(X, W, 7)
    for n in range(X.shape[0]):
        ref = linear_model.OrthogonalMatchingPursuit(n_nonzero_coefs=7, fit_intercept=False)
        ref.fit(W.T.numpy(), X[n].numpy())
        assert set(np.flatnonzero(ref.coef_)) == set(res.codes_NF[n].nonzero()[:, 0].tolist())
        np.testing.assert_allclose(res.codes_NF[n].numpy(), ref.coef_, atol=1e-8)
    direct = 0.5 * ((X - res.codes_NF @ W) ** 2).sum(1)
    torch.testing.assert_close(res.objective_N, direct)


@pytest.mark.parametrize("solver", [omp, gradient_pursuit])
def test_planted_supports_are_recovered_over_an_incoherent_dictionary(solver) -> None:
    W = _dictionary(512, 256, 7, torch.float32)
    X, support = _planted(200, W, 5, 8, noise=0.01)
    res = solver(X, W, 5)
    found = res.codes_NF != 0
    recovered = found.gather(1, support).float().mean()
    assert float(recovered) >= 0.95
    assert bool((found.sum(1) == 5).all())


def test_warm_starts_along_a_decreasing_path_save_iterations() -> None:
    W = _dictionary(128, 48, 9, torch.float32)
    X, _ = _planted(100, W, 5, 10, noise=0.05)
    alphas = [2.0, 1.0, 0.5, 0.25, 0.12]
    warm = fista_path(X, W, alphas, tol=1e-6)
    cold = fista_path(X, W, alphas, tol=1e-6, warm_start=False)
    it_warm = sum(int(r.n_iter_N.sum()) for r in warm[1:])
    it_cold = sum(int(r.n_iter_N.sum()) for r in cold[1:])
    assert it_warm < 0.8 * it_cold
    for a, b in zip(warm, cold):
        torch.testing.assert_close(a.objective_N.mean(), b.objective_N.mean(), rtol=1e-3, atol=0)


def test_per_row_k_sets_each_rows_l0_and_w_path_matches_gram_path() -> None:
    W = _dictionary(100, 30, 11)
    X = torch.randn(9, 30, generator=torch_generator(12), dtype=torch.float64)
    k = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8])
    res = omp(X, W, k)
    assert (res.codes_NF != 0).sum(1).tolist() == k.tolist()
    no_gram = omp(X, W, k, gram_max_bytes=0)
    torch.testing.assert_close(res.codes_NF, no_gram.codes_NF)
    torch.testing.assert_close(fista(X, W, 0.3).codes_NF, fista(X, W, 0.3, gram_max_bytes=0).codes_NF)


def test_lipschitz_constant_bounds_the_top_eigenvalue() -> None:
    W = _dictionary(300, 50, 13)
    top = float(torch.linalg.matrix_norm(W, 2)) ** 2
    assert top <= lipschitz_constant(W, seed=0) <= 1.02 * top


def test_bad_inputs_raise() -> None:
    W = _dictionary(20, 10, 14)
    X = torch.randn(3, 10, dtype=torch.float64)
    with pytest.raises(DataError, match="norm"):
        omp(X, 2 * W, 2)
    with pytest.raises(ConfigError, match="decreasing"):
        fista_path(X, W, [0.1, 0.2])
    with pytest.raises(ConfigError, match="min"):
        omp(X, W, 11)
