"""k-sparse probing finds planted dimensions; k-fold masks are stratified partitions by example."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from auditkit.errors import ConfigError, DataError
from auditkit.methods.sparse_probe import rank_dims, sparse_probe
from auditkit.metrics.classification import log_loss, stacked_metrics
from auditkit.splits import kfold_examples


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


def test_kfold_examples_is_a_stratified_deterministic_partition_by_example() -> None:
    rng = np.random.default_rng(0)
    example_ids = np.repeat(np.arange(200), rng.integers(1, 5, size=200))
    labels_by_example = rng.integers(0, 3, size=200)
    labels = labels_by_example[example_ids]
    folds = kfold_examples(example_ids, labels, k=5, seed=3)
    assert len(folds) == 5
    assert (np.sum(folds, axis=0) == 1).all()  # every row in exactly one test fold
    for f in folds:
        assert not set(example_ids[f]) & set(example_ids[~f])  # never split inside an example
        per_class = np.bincount(labels_by_example[np.unique(example_ids[f])], minlength=3)
        assert (abs(per_class - np.bincount(labels_by_example, minlength=3) / 5) <= 1).all()
    sizes = [len(np.unique(example_ids[f])) for f in folds]
    assert max(sizes) - min(sizes) <= 1
    again = kfold_examples(example_ids, labels, k=5, seed=3)
    assert all((a == b).all() for a, b in zip(folds, again))
    other = kfold_examples(example_ids, labels, k=5, seed=4)
    assert any((a != b).any() for a, b in zip(folds, other))
    with pytest.raises(ConfigError):
        kfold_examples(example_ids, labels, k=1, seed=0)
    with pytest.raises(DataError):
        kfold_examples(np.arange(3), np.zeros(3, dtype=int), k=4, seed=0)


def test_stacked_metrics_and_log_loss() -> None:
    y_SN = torch.tensor([[0, 1, 1, 0], [1, 1, 0, 0]])
    proba = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.6, 0.4]], dtype=torch.float64)
    test_SN = torch.tensor([[True, True, True, False], [True, True, True, True]])
    rows = stacked_metrics(y_SN, torch.stack([proba, proba]), test_SN)
    assert rows[0]["accuracy"] == 1.0 and rows[1]["accuracy"] == 0.5
    assert abs(log_loss(y_SN[0][:3], proba[:3]) - float(-np.log([0.9, 0.8, 0.6]).mean())) < 1e-12


def test_sparse_probe_specs_parse_and_reject_bad_ks() -> None:
    from auditkit.methods.sparse_probe import KS, parse_sparse_spec

    assert parse_sparse_spec("k-sparse") == KS
    assert parse_sparse_spec("k-sparse:k=20,1,5") == (1, 5, 20)
    assert parse_sparse_spec("logistic") is None
    for bad in ("k-sparse:k=0", "k-sparse:k=", "k-sparse:n=3", "k-sparse:k=2,2", "k-sparse:k=x"):
        with pytest.raises(ConfigError, match="k-sparse"):
            parse_sparse_spec(bad)
