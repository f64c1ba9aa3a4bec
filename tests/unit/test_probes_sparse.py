"""k-sparse probing finds planted dimensions; k-fold masks are stratified partitions by example."""

from __future__ import annotations

import pytest
import torch

from auditkit.errors import ConfigError
from auditkit.methods.probes.sparse import rank_dims, sparse_probe


def _planted_sparse(n: int = 3000, d: int = 80, seed: int = 0):
    """Labels read off three planted dimensions; all dimensions on wildly different scales."""
    g = torch.Generator().manual_seed(seed)
    scale = 10 ** (4 * torch.rand(d, generator=g, dtype=torch.float64) - 2)
    X = torch.randn(n, d, generator=g, dtype=torch.float64) * scale
    planted = [5, 33, 71]
    z = X[:, planted] / scale[planted]
    y = (z @ torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64) + 0.3 * torch.randn(n, generator=g) > 0).long()
    return X, y, planted


def test_sparse_probe_finds_planted_dims_and_shuffled_stays_at_chance() -> None:
    X, y, planted = _planted_sparse()
    g = torch.Generator().manual_seed(1)
    train = torch.rand(len(y), generator=g) < 0.7
    y_SN = torch.stack([y, y[torch.randperm(len(y), generator=g)]])
    res = sparse_probe(X, y_SN, torch.stack([train, train]), 2, ks=(1, 3, 10), problem_names=["real", "shuffled"])
    assert sorted(res.dims[3][0].tolist()) == planted
    acc = {(r["problem"], r["k"]): r["value"] for r in res.rows if r["metric"] == "accuracy"}
    assert acc[("real", 3)] > 0.93 and acc[("real", 1)] < acc[("real", 3)] - 0.1
    assert acc[("real", 10)] > 0.92
    assert all(abs(acc[("shuffled", k)] - 0.5) < 0.06 for k in (1, 3, 10))
    assert bool(res.converged_SJ.all()) and res.scores_SD.shape == (2, 80)
    assert {r["metric"] for r in res.rows} >= {"accuracy", "auroc"}


def test_sparse_probe_multiclass_ranks_on_training_rows_only() -> None:
    g = torch.Generator().manual_seed(2)
    n, d = 1200, 30
    y = torch.randint(0, 3, (n,), generator=g)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    X[:, 4] += 3.0 * (y == 1)  # one-vs-rest signal for class 1 ...
    X[:, 9] -= 3.0 * (y == 2)  # ... and for class 2
    train = torch.arange(n) < n // 2
    # A dimension that separates the classes on the test rows only must not be chosen.
    X[~train, 20] += 5.0 * (y[~train] == 0)
    scores = rank_dims(X, y[None], train[None], 3)
    assert set(torch.topk(scores[0], 2).indices.tolist()) == {4, 9}
    res = sparse_probe(X, y[None], train[None], 3, ks=(2, 50))
    assert sorted(res.dims[2][0].tolist()) == [4, 9]
    assert res.dims[30].shape == (1, 30)  # k is capped at D
    acc = {r["k"]: r["value"] for r in res.rows if r["metric"] == "accuracy"}
    assert acc[2] > 0.85


def test_sparse_probe_rejects_bad_ks() -> None:
    X, y, _ = _planted_sparse(n=100)
    with pytest.raises(ConfigError):
        sparse_probe(X, y[None], torch.ones(1, 100, dtype=torch.bool), 2, ks=(0, 2))


def test_sparse_probe_specs_parse_and_reject_bad_ks() -> None:
    from auditkit.methods.probes.sparse import KS, parse_sparse_spec

    assert parse_sparse_spec("k-sparse") == KS
    assert parse_sparse_spec("k-sparse:k=20,1,5") == (1, 5, 20)
    assert parse_sparse_spec("logistic") is None
    for bad in ("k-sparse:k=0", "k-sparse:k=", "k-sparse:n=3", "k-sparse:k=2,2", "k-sparse:k=x"):
        with pytest.raises(ConfigError, match="k-sparse"):
            parse_sparse_spec(bad)
