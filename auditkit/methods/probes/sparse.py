"""k-sparse probing: how few input dimensions (neurons, SAE latents) does a concept need?

Following Gurnee et al. (2023, "Finding Neurons in a Haystack", sec. 3) and Kantamneni et al. (2025,
"Are Sparse Autoencoders Useful?"), each problem ranks the input dimensions by a class-mean
difference on *its own training rows only* (ranking on test rows would leak), then fits a logistic
probe on the top k dimensions, for every k. Works on any feature matrix [N, D]: raw neurons, the
residual stream, SAE latents.

Ranking rule (binary and K classes alike): the largest one-vs-rest standardised mean difference,

    score_d = max_k |mean(x_d | y = k) - mean(x_d | y != k)| / sd(x_d),

sd over the problem's training rows (dimensions with zero variance score 0). For two classes both
one-vs-rest contrasts are the same difference of class means. Standardising makes the ranking
independent of each dimension's units (SAE latents and MLP neurons differ by orders of magnitude);
``rank_by="raw"`` drops the division, as Gurnee et al. do.

All problems and all k are fitted in ONE stacked L-BFGS (:func:`auditkit.methods.probes.base.stacked_lbfgs`):
every problem's top-``max(ks)`` dimensions are gathered once into an [S, N, k_max] tensor, and the
probe for k only sees the first k of them (the weights of the others are masked to zero).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Bool, Float, Int

from auditkit.errors import ConfigError
from auditkit.methods.probes.base import (
    check_problems,
    fold_standardisation,
    logits_to_proba,
    masked_cross_entropy,
    stacked_lbfgs,
    train_moments,
)
from auditkit.metrics.classification import classification_records

KS = (1, 2, 5, 10, 20, 50)
"""Default numbers of dimensions (Gurnee et al. use 1 to 256 in powers of two; Kantamneni et al. 1 to 16)."""


SPARSE_KIND = "k-sparse"
"""Name of k-sparse probing among the audit's probe kinds; ``k-sparse:k=1,5,20`` chooses the ks."""


def parse_sparse_spec(spec: str) -> tuple[int, ...] | None:
    """The ks of a ``k-sparse`` (default :data:`KS`) or ``k-sparse:k=1,5,20`` probe spec; None for any
    other probe kind."""
    kind, sep, arg = spec.partition(":")
    if kind != SPARSE_KIND:
        return None
    if not sep:
        return KS
    name, _, values = arg.partition("=")
    try:
        ks = tuple(int(v) for v in values.split(",") if v.strip())
    except ValueError:
        ks = ()
    if name.strip() != "k" or not ks or min(ks) < 1 or len(set(ks)) != len(ks):
        raise ConfigError(
            f"probe spec {spec!r} is malformed: write k-sparse or k-sparse:k=1,5,20 (distinct positive ks)"
        )
    return tuple(sorted(ks))


@dataclass(frozen=True, kw_only=True)
class SparseProbeResult:
    """Scores and chosen dimensions of a k-sparse probing run."""

    rows: list[dict]
    """Tidy rows ``problem, k, metric, value`` (held-out metrics of every problem at every k)."""
    dims: dict[int, np.ndarray]
    """k -> int64 [S, k]: the dimensions each problem's k-sparse probe used, best-ranked first."""
    scores_SD: torch.Tensor
    """float64 [S, D]: every dimension's ranking score on every problem."""
    converged_SJ: torch.Tensor
    """bool [S, len(ks)]: whether each probe's L-BFGS reached its gradient tolerance."""


def rank_dims(
    X_ND: Float[torch.Tensor, "N D"],
    y_SN: Int[torch.Tensor, "S N"],
    train_SN: Bool[torch.Tensor, "S N"],
    n_classes: int,
    *,
    rank_by: str = "standardized",
) -> Float[torch.Tensor, "S D"]:
    """Ranking score of every dimension on every problem's training rows (module docstring), [S, D]."""
    if rank_by not in ("standardized", "raw"):
        raise ConfigError(f"rank_by must be 'standardized' or 'raw', got {rank_by!r}")
    p = check_problems(X_ND, y_SN, train_SN, n_classes, "float64")
    onehot_SNK = torch.nn.functional.one_hot(p.y_SN, n_classes).double() * p.w_SN[..., None]
    counts_SK = onehot_SNK.sum(1)
    sums_SKD = torch.einsum("snk,nd->skd", onehot_SNK, p.X_ND)
    total_SD = sums_SKD.sum(1)
    in_SKD = sums_SKD / counts_SK.clamp_min(1)[..., None]
    out_SKD = (total_SD[:, None] - sums_SKD) / (p.n_S[:, None] - counts_SK).clamp_min(1)[..., None]
    present_SK = (counts_SK > 0) & (counts_SK < p.n_S[:, None])
    diff_SKD = (in_SKD - out_SKD).abs() * present_SK[..., None]
    score_SD = diff_SKD.amax(1)
    if rank_by == "standardized":
        _, sd_SD = train_moments(p.X_ND, p.w_SN, True)
        var_SD = (p.w_SN @ p.X_ND.square()) / p.n_S[:, None] - (total_SD / p.n_S[:, None]).square()
        score_SD = torch.where(var_SD > 1e-12 * (1 + sd_SD.square()), score_SD / sd_SD, torch.zeros_like(score_SD))
    return score_SD


def sparse_probe(
    X_ND: Float[torch.Tensor, "N D"],
    y_SN: Int[torch.Tensor, "S N"],
    train_SN: Bool[torch.Tensor, "S N"],
    n_classes: int,
    *,
    test_SN: Bool[torch.Tensor, "S N"] | None = None,
    ks: Sequence[int] = KS,
    C: float = 1.0,
    max_iter: int = 1000,
    tol: float = 1e-4,
    rank_by: str = "standardized",
    problem_names: Sequence[str] | None = None,
    clusters_SN: np.ndarray | None = None,
) -> SparseProbeResult:
    """Rank dimensions on each problem's training rows, fit logistic probes on the top k for every k
    in ``ks`` (capped at D), and score them on ``test_SN`` (default: the rows outside training).
    ``clusters_SN`` (int [S, N], the example of every row) clusters the rows' test-sampling error."""
    if not ks or min(ks) < 1:
        raise ConfigError(f"ks must be positive integers, got {list(ks)}")
    S, D = y_SN.shape[0], X_ND.shape[1]
    ks = sorted({min(int(k), D) for k in ks})
    names = list(problem_names) if problem_names is not None else list(range(S))
    scores_SD = rank_dims(X_ND, y_SN, train_SN, n_classes, rank_by=rank_by)
    order_SD = torch.argsort(scores_SD, dim=1, descending=True, stable=True)
    top_SM = order_SD[:, : ks[-1]]
    p = check_problems(X_ND, y_SN, train_SN, n_classes, "auto")
    Xg_SNM = p.X_ND.T[top_SM].transpose(1, 2)  # [S, N, k_max], gathered once
    logits_SJNK, converged_SJ = _fit_nested(Xg_SNM, p.y_SN, p.w_SN, ks, n_classes, C=C, max_iter=max_iter, tol=tol)
    # Scored on the CPU (the metrics are numpy), wherever the fit ran.
    test_SN = (~train_SN.bool() if test_SN is None else test_SN.bool()).cpu()
    y_SN = y_SN.cpu()
    rows = []
    proba_SJNK = logits_to_proba(logits_SJNK.flatten(0, 1), n_classes).unflatten(0, logits_SJNK.shape[:2]).cpu()
    for s in range(S):
        test = test_SN[s]
        for j, k in enumerate(ks):
            clusters = None if clusters_SN is None else np.asarray(clusters_SN[s])[test.numpy()]
            for record in classification_records(y_SN[s][test], proba_SJNK[s, j][test], clusters):
                rows.append(dict(problem=names[s], k=k, **record))
    dims = {k: top_SM[:, :k].cpu().numpy().astype(np.int64) for k in ks}
    return SparseProbeResult(rows=rows, dims=dims, scores_SD=scores_SD, converged_SJ=converged_SJ)


def _fit_nested(Xg_SNM, y_SN, w_SN, ks, n_classes, *, C, max_iter, tol):
    """Logistic probes on the first k gathered dimensions, for every k, as one stack of S * J problems.
    Returns logits on all rows [S, J, N, K] and per-probe convergence [S, J]."""
    S, _N, M = Xg_SNM.shape
    J, out = len(ks), 1 if n_classes == 2 else n_classes
    dev = Xg_SNM.device
    mask_JM = (torch.arange(M, device=dev)[None] < torch.tensor(ks, device=dev)[:, None]).to(Xg_SNM.dtype)
    mu_SM = torch.einsum("sn,snm->sm", w_SN, Xg_SNM) / w_SN.sum(1, keepdim=True)
    var_SM = torch.einsum("sn,snm->sm", w_SN, Xg_SNM.square()) / w_SN.sum(1, keepdim=True) - mu_SM.square()
    sd_SM = var_SM.clamp_min(0).sqrt()
    sd_SM = torch.where(sd_SM > 1e-8 * (1 + mu_SM.abs()), sd_SM, torch.ones_like(sd_SM))
    mu_PM, sd_PM = mu_SM.repeat_interleave(J, 0), sd_SM.repeat_interleave(J, 0)
    W_PMK = torch.zeros(S * J, M, out, dtype=Xg_SNM.dtype, device=dev, requires_grad=True)
    b_PK = torch.zeros(S * J, out, dtype=Xg_SNM.dtype, device=dev, requires_grad=True)
    y_PN, w_PN = y_SN.repeat_interleave(J, 0), w_SN.repeat_interleave(J, 0)
    n_P = w_PN.sum(1)

    def logits() -> tuple[torch.Tensor, torch.Tensor]:
        Wm_PMK = W_PMK * mask_JM.repeat(S, 1)[..., None]
        V_PMK, c_PK = fold_standardisation(Wm_PMK, b_PK, mu_PM, sd_PM)
        out_SJNK = torch.einsum("snm,sjmk->sjnk", Xg_SNM, V_PMK.unflatten(0, (S, J)))
        return out_SJNK.flatten(0, 1) + c_PK[:, None], Wm_PMK

    def objective_P() -> torch.Tensor:
        logits_PNK, Wm_PMK = logits()
        return masked_cross_entropy(logits_PNK, y_PN, w_PN) + Wm_PMK.square().sum((1, 2)) / (2 * C * n_P)

    report = stacked_lbfgs([W_PMK, b_PK], objective_P, max_iter=max_iter, tol=tol)
    with torch.no_grad():
        logits_PNK, _ = logits()
    return logits_PNK.unflatten(0, (S, J)), report.converged_S.reshape(S, J)
