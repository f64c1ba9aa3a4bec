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
    accuracy (1 / (classes present x rows of the row's class) if right, times N, so its mean is the metric);
    and, for macro-F1 and (binary) AUROC, which are not means over rows, one jackknife pseudo-value per
    example (:func:`jackknife_pseudo_values`), whose clustered spread is the jackknife's standard error."""
    y = y_true.long().numpy()
    pred = proba.argmax(1).numpy()
    right = (pred == y).astype(np.float64)
    clusters = np.arange(len(y)) if clusters_N is None else np.asarray(clusters_N, dtype=np.int64)
    counts = np.bincount(y, minlength=proba.shape[1]).astype(np.float64)
    weight = len(y) / (np.count_nonzero(counts) * counts[y])
    out = {"accuracy": ExampleScores(right, clusters), "balanced_accuracy": ExampleScores(right * weight, clusters)}
    n_classes = proba.shape[1]
    uniq, inverse = np.unique(clusters, return_inverse=True)
    if uniq.size >= 3:
        loo = {"macro_f1": _macro_f1_leave_out(y, pred, inverse, n_classes)}
        if n_classes == 2:
            loo["auroc"] = _auroc_leave_out(y, proba[:, 1].double().numpy(), inverse)
        full = classification_metrics(y_true, proba)
        for metric, theta_G in loo.items():
            pseudo = jackknife_pseudo_values(full[metric], theta_G)
            if pseudo is not None:
                out[metric] = ExampleScores(pseudo, uniq)
    return out


def jackknife_pseudo_values(theta: float, theta_G: np.ndarray) -> np.ndarray | None:
    """Pseudo-values ``G theta - (G - 1) theta_(-g)`` of a statistic ``theta`` and its leave-one-example-out
    values ``theta_G``: their variance over G is the delete-one jackknife variance (Quenouille-Tukey), so a
    metric that is not a mean over rows gets the same clustered sampling floor as one that is. None when a
    left-out value is undefined (an example held the only rows of a class)."""
    if not np.isfinite(theta_G).all() or not np.isfinite(theta):
        return None
    g = len(theta_G)
    return g * theta - (g - 1) * theta_G


def _macro_f1_leave_out(y: np.ndarray, pred: np.ndarray, inverse: np.ndarray, n_classes: int) -> np.ndarray:
    """Macro-F1 with each example's rows left out, from per-example confusion counts (as :func:`macro_f1`)."""
    g = int(inverse.max()) + 1
    pred_NK = pred[:, None] == np.arange(n_classes)[None, :]
    true_NK = y[:, None] == np.arange(n_classes)[None, :]

    def per_example(mask_NK: np.ndarray) -> np.ndarray:  # [G, K] rows of each example where the mask holds
        return np.stack(
            [np.bincount(inverse, weights=mask_NK[:, k].astype(float), minlength=g) for k in range(n_classes)], axis=1
        )

    tp_GK, fp_GK, fn_GK = (
        per_example(pred_NK & true_NK),
        per_example(pred_NK & ~true_NK),
        per_example(~pred_NK & true_NK),
    )
    tp, fp, fn = tp_GK.sum(0) - tp_GK, fp_GK.sum(0) - fp_GK, fn_GK.sum(0) - fn_GK
    denom = 2 * tp + fp + fn
    present = (tp + fp + fn) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(present, 2 * tp / np.where(denom > 0, denom, 1), 0.0)
    return f1.sum(1) / present.sum(1)


def _auroc_leave_out(y: np.ndarray, score: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """AUROC with each example's rows left out, from the Mann-Whitney placements: U minus what the left-out
    positives and negatives placed, plus their pairs within the example (subtracted twice); NaN where a
    class empties."""
    g = int(inverse.max()) + 1
    pos = y == 1
    neg_sorted, pos_sorted = np.sort(score[~pos]), np.sort(score[pos])

    def beats(sorted_other: np.ndarray, values: np.ndarray, above: bool) -> np.ndarray:
        lo = np.searchsorted(sorted_other, values, side="left")
        hi = np.searchsorted(sorted_other, values, side="right")
        strictly = lo if above else len(sorted_other) - hi
        return strictly + 0.5 * (hi - lo)

    place = np.where(pos, beats(neg_sorted, score, True), beats(pos_sorted, score, False))
    u = place[pos].sum()
    lost = np.bincount(inverse, weights=place, minlength=g)
    inside = np.zeros(g)
    for e in np.unique(inverse[pos]):
        rows = inverse == e
        if (rows & ~pos).any():
            sp, sn = score[rows & pos][:, None], score[rows & ~pos][None, :]
            inside[e] = float((sp > sn).sum() + 0.5 * (sp == sn).sum())
    n_pos = pos.sum() - np.bincount(inverse, weights=pos.astype(float), minlength=g)
    n_neg = (~pos).sum() - np.bincount(inverse, weights=(~pos).astype(float), minlength=g)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), (u - lost + inside) / (n_pos * n_neg), np.nan)


def classification_records(
    y_true: Int[torch.Tensor, " N"],
    proba: Float[torch.Tensor, "N K"],
    clusters_N: np.ndarray | None = None,
    *,
    degenerate: bool = False,
) -> list[dict[str, Any]]:
    """:func:`classification_metrics` as tidy-row fields: ``metric``, ``value``, ``outcome`` (the
    :class:`ExampleScores` of a metric that is a mean over rows, else None) and ``degenerate`` (the arm's
    training labels held one class, so its probe could only learn the prior)."""
    scores = example_scores(y_true, proba, clusters_N)
    return [
        dict(metric=m, value=v, outcome=scores.get(m), degenerate=degenerate)
        for m, v in classification_metrics(y_true, proba).items()
    ]
