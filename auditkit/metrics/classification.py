"""Held-out classification metrics, computed with torch (no scikit-learn at run time)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
from jaxtyping import Float, Int

CEILINGS = {"accuracy": 1.0, "balanced_accuracy": 1.0, "auroc": 1.0, "macro_f1": 1.0}
"""The best possible value of each metric, for normalised selectivity."""


def accuracy(y_true: Int[torch.Tensor, " N"], y_pred: Int[torch.Tensor, " N"]) -> float:
    return float((y_true == y_pred).double().mean())


def balanced_accuracy(y_true: Int[torch.Tensor, " N"], y_pred: Int[torch.Tensor, " N"], n_classes: int) -> float:
    """Mean per-class recall over the classes present in ``y_true``."""
    recalls = [float((y_pred[y_true == k] == k).double().mean()) for k in range(n_classes) if bool((y_true == k).any())]
    return sum(recalls) / len(recalls)


def macro_f1(y_true: Int[torch.Tensor, " N"], y_pred: Int[torch.Tensor, " N"], n_classes: int) -> float:
    """Unweighted mean F1 over the classes present in ``y_true`` or ``y_pred``."""
    scores = []
    for k in range(n_classes):
        tp = int(((y_pred == k) & (y_true == k)).sum())
        fp = int(((y_pred == k) & (y_true != k)).sum())
        fn = int(((y_pred != k) & (y_true == k)).sum())
        if tp + fp + fn:
            scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores)


def auroc(y_true: Int[torch.Tensor, " N"], score: Float[torch.Tensor, " N"]) -> float:
    """Area under the ROC curve for binary labels: the Mann-Whitney U statistic with tied ranks."""
    pos = y_true == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = torch.argsort(score.double())
    s = score.double()[order]
    ranks = torch.empty(len(s), dtype=torch.float64)
    ranks[order] = _tied_ranks(s)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _tied_ranks(sorted_values: torch.Tensor) -> torch.Tensor:
    """1-based ranks of already-sorted values, ties sharing their average rank."""
    _, inverse, counts = torch.unique_consecutive(sorted_values, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    avg = ends - (counts.double() - 1) / 2
    return avg[inverse]


def classification_metrics(y_true: Int[torch.Tensor, " N"], proba: Float[torch.Tensor, "N K"]) -> dict[str, float]:
    """accuracy, balanced_accuracy, macro_f1 and (binary only) auroc of class probabilities."""
    n_classes = proba.shape[1]
    y_pred = proba.argmax(1)
    out = {
        "accuracy": accuracy(y_true, y_pred),
        "balanced_accuracy": balanced_accuracy(y_true, y_pred, n_classes),
        "macro_f1": macro_f1(y_true, y_pred, n_classes),
    }
    if n_classes == 2:
        out["auroc"] = auroc(y_true, proba[:, 1])
    return out


class ExampleScores(NamedTuple):
    """What each held-out row contributes to a metric (their mean is the metric), with its cluster.

    Rows of one example (text) are one cluster: a split draws examples, not rows, so the test-sampling
    error of a metric is the between-cluster spread (:func:`auditkit.metrics.selectivity.paired_sampling_se`).
    """

    values_N: np.ndarray
    """float64 [N] contribution of every test row."""
    clusters_N: np.ndarray
    """int64 [N] example of every test row."""


def example_scores(
    y_true: Int[torch.Tensor, " N"], proba: Float[torch.Tensor, "N K"], clusters_N: np.ndarray | None = None
) -> dict[str, ExampleScores]:
    """Per-row contributions of the metrics that are means over rows: accuracy (1 if right), and balanced
    accuracy (1 / (classes present x rows of the row's class) if right, times N, so its mean is the metric)."""
    y = y_true.long().numpy()
    right = (proba.argmax(1).numpy() == y).astype(np.float64)
    clusters = np.arange(len(y)) if clusters_N is None else np.asarray(clusters_N, dtype=np.int64)
    counts = np.bincount(y, minlength=proba.shape[1]).astype(np.float64)
    weight = len(y) / (np.count_nonzero(counts) * counts[y])
    return {"accuracy": ExampleScores(right, clusters), "balanced_accuracy": ExampleScores(right * weight, clusters)}


def classification_records(
    y_true: Int[torch.Tensor, " N"], proba: Float[torch.Tensor, "N K"], clusters_N: np.ndarray | None = None,
    *, degenerate: bool = False,
) -> list[dict[str, Any]]:  # fmt: skip
    """:func:`classification_metrics` as tidy-row fields: ``metric``, ``value``, ``outcome`` (the
    :class:`ExampleScores` of a metric that is a mean over rows, else None) and ``degenerate`` (the arm's
    training labels held one class, so its probe could only learn the prior)."""
    scores = example_scores(y_true, proba, clusters_N)
    return [
        dict(metric=m, value=v, outcome=scores.get(m), degenerate=degenerate)
        for m, v in classification_metrics(y_true, proba).items()
    ]
