"""Generative linear probes: mass-mean and LDA, in closed form, then calibrated on the training rows.

Both read directions off class means: mass-mean takes the difference of class means as it is
(Marks and Tegmark, 2023, "The Geometry of Truth", sec. 4), LDA first multiplies it by the inverse of
a shrinkage-regularised within-class covariance (Fisher, 1936; Hastie, Tibshirani and Friedman,
"Elements of Statistical Learning", eq. 4.9). Mass-mean is LDA with the covariance replaced by the
identity, which is why LDA beats it when the noise is anisotropic: mass-mean's direction is tilted
towards high-variance noise axes that happen to correlate with the mean difference.

Directions:

- two classes: one direction ``P (mu_1 - mu_0)`` ([S, D, 1]);
- K > 2 classes: one direction per class, ``P (mu_k - mean_j mu_j)`` ([S, D, K]); the logits
  ``x . P mu_k`` are the nearest-class-mean rule (P = I, mass-mean) or the LDA discriminant functions,
  up to per-class offsets (the ``-|x|^2 / 2`` term of a squared distance is shared by all classes).

The rule is then *calibrated on the training rows*: a per-problem scale ``a`` and per-class offsets
``c`` minimise the training cross-entropy of ``a * (x . direction) + c`` (Platt, 1999, for two classes:
the fitted offset is the threshold; for K classes a temperature plus class offsets, which absorbs
class priors and the ``|mu_k|^2`` terms). Only ``1 + K`` numbers per problem are fitted this way, so the
probe's capacity stays that of the closed-form rule.
"""

from __future__ import annotations

from abc import abstractmethod

import torch
from jaxtyping import Bool, Float, Int

from auditkit.errors import ConfigError
from auditkit.methods.probes.base import (
    Problems,
    StackedProbe,
    check_problems,
    masked_cross_entropy,
    shared_linear,
    stacked_lbfgs,
    train_moments,
)


def class_means(p: Problems) -> tuple[Float[torch.Tensor, "S K D"], Float[torch.Tensor, "S K"]]:
    """Per-problem class means over training rows and class counts; an absent class gets the
    problem's overall training mean (so its direction is zero)."""
    onehot_SNK = torch.nn.functional.one_hot(p.y_SN, p.n_classes).to(p.X_ND.dtype) * p.w_SN[..., None]
    counts_SK = onehot_SNK.sum(1)
    sums_SKD = torch.einsum("snk,nd->skd", onehot_SNK, p.X_ND)
    overall_SD = sums_SKD.sum(1) / p.n_S[:, None]
    means_SKD = torch.where(counts_SK[..., None] > 0, sums_SKD / counts_SK.clamp_min(1)[..., None], overall_SD[:, None])
    return means_SKD, counts_SK


def _contrasts(means_SKD: torch.Tensor) -> torch.Tensor:
    """[S, D, 1] mean difference for two classes, [S, D, K] centred class means otherwise."""
    if means_SKD.shape[1] == 2:
        return (means_SKD[:, 1] - means_SKD[:, 0])[..., None]
    return (means_SKD - means_SKD.mean(1, keepdim=True)).transpose(1, 2)


class _GenerativeProbe(StackedProbe):
    """Closed-form directions from class means, then the 1 + K calibration numbers per problem."""

    def __init__(self, *, standardize: bool, max_iter: int = 100, tol: float = 1e-6, precision: str = "auto"):
        self.standardize = standardize
        self.max_iter = max_iter
        self.tol = tol
        self.precision = precision

    @abstractmethod
    def _directions(
        self, p: Problems, means_SKD: torch.Tensor, mu_SD: torch.Tensor, sd_SD: torch.Tensor
    ) -> torch.Tensor:
        """Directions in the standardised basis, [S, D, 1 or K] (mass-mean and LDA each define theirs)."""

    def fit(
        self,
        X_ND: Float[torch.Tensor, "N D"],
        y_SN: Int[torch.Tensor, "S N"],
        train_SN: Bool[torch.Tensor, "S N"],
        n_classes: int,
    ) -> _GenerativeProbe:
        """Fit S probes; probe s uses rows ``train_SN[s]`` with labels ``y_SN[s]``."""
        p = check_problems(X_ND, y_SN, train_SN, n_classes, self.precision)
        mu_SD, sd_SD = train_moments(p.X_ND, p.w_SN, self.standardize)
        means_SKD, _ = class_means(p)
        V_SDK = self._directions(p, means_SKD, mu_SD, sd_SD).to(p.X_ND.dtype) / sd_SD[..., None]
        proj_SNK = shared_linear(p.X_ND, V_SDK)
        # Unit training spread, so the calibration's scale starts at O(1) whatever the activations' units.
        spread_S = ((proj_SNK.square() * p.w_SN[..., None]).sum((1, 2)) / (p.n_S * proj_SNK.shape[-1])).sqrt()
        V_SDK = V_SDK / spread_S.clamp_min(1e-12)[:, None, None]
        proj_SNK = proj_SNK / spread_S.clamp_min(1e-12)[:, None, None]
        a_S, c_SK, report = _calibrate(proj_SNK, p, max_iter=self.max_iter, tol=self.tol)
        self.shift_D_ = p.shift_D
        self.coef_SDK_ = V_SDK * a_S[:, None, None]
        self.intercept_SK_ = c_SK
        self.n_classes_ = n_classes
        out = V_SDK.shape[-1]
        self.complexity_ = dict(n_params=X_ND.shape[1] * out + out + 1, rank=min(X_ND.shape[1], n_classes - 1))
        self.grad_max_S_, self.converged_S_, self.n_iter_S_ = report
        return self

    def decision_function(self, X_ND: Float[torch.Tensor, "N D"]) -> Float[torch.Tensor, "S N K"]:
        """Calibrated logits [S, N, K] ([S, N, 1] for binary problems)."""
        return shared_linear(self._prepare(X_ND), self.coef_SDK_) + self.intercept_SK_[:, None]

    def directions(self) -> Float[torch.Tensor, "S D K"]:
        """The calibrated directions in the original activation basis."""
        self._check_fitted()
        return self.coef_SDK_


def _calibrate(proj_SNK: torch.Tensor, p: Problems, *, max_iter: int, tol: float):
    """Scale ``a`` [S] and offsets ``c`` [S, K] minimising training cross-entropy of ``a * proj + c``,
    with a unit L2 penalty on ``a`` (scikit-learn's C = 1) so separable problems stay finite."""
    proj_SNK = proj_SNK.detach()
    dev = proj_SNK.device
    a_S = torch.ones(proj_SNK.shape[0], dtype=proj_SNK.dtype, device=dev, requires_grad=True)
    c_SK = torch.zeros(proj_SNK.shape[0], proj_SNK.shape[-1], dtype=proj_SNK.dtype, device=dev, requires_grad=True)

    def objective_S() -> torch.Tensor:
        logits = a_S[:, None, None] * proj_SNK + c_SK[:, None]
        return masked_cross_entropy(logits, p.y_SN, p.w_SN) + a_S.square() / (2 * p.n_S)

    report = stacked_lbfgs([a_S, c_SK], objective_S, max_iter=max_iter, tol=tol)
    return a_S.detach(), c_SK.detach(), report


class MassMeanProbe(_GenerativeProbe):
    """Difference of class means (two classes), nearest class mean (K classes), calibrated on train.

    ``standardize`` (default False, as in Marks and Tegmark) takes the means of per-feature
    standardised activations instead of raw ones.
    """

    kind = "mass-mean"

    def __init__(self, *, standardize: bool = False, max_iter: int = 100, tol: float = 1e-6, precision: str = "auto"):
        super().__init__(standardize=standardize, max_iter=max_iter, tol=tol, precision=precision)

    def _directions(self, p, means_SKD, mu_SD, sd_SD):
        return _contrasts((means_SKD - mu_SD[:, None]) / sd_SD[:, None])


class LDAProbe(_GenerativeProbe):
    """Linear discriminant analysis with a shrunk pooled within-class covariance.

    ``Sigma = (1 - alpha) S_w + alpha (tr(S_w) / D) I`` on standardised features (``standardize``,
    default True, makes the identity target scale-free, as scikit-learn does for ``shrinkage='auto'``).
    ``shrinkage`` is a fixed ``alpha`` in [0, 1], or ``"auto"`` (default): the Ledoit and Wolf (2004)
    optimal ``alpha`` computed on each problem's pooled within-class residuals (one alpha per problem,
    in ``shrinkage_S_``). ``alpha = 1`` gives back the mass-mean rule.
    """

    kind = "lda"

    def __init__(
        self,
        *,
        shrinkage: float | str = "auto",
        standardize: bool = True,
        max_iter: int = 100,
        tol: float = 1e-6,
        precision: str = "auto",
    ):
        if shrinkage != "auto" and not (isinstance(shrinkage, (int, float)) and 0 <= shrinkage <= 1):
            raise ConfigError(f"LDA shrinkage must be 'auto' or a number in [0, 1], got {shrinkage!r}")
        super().__init__(standardize=standardize, max_iter=max_iter, tol=tol, precision=precision)
        self.shrinkage = shrinkage

    def _directions(self, p, means_SKD, mu_SD, sd_SD):
        zmeans_SKD = ((means_SKD - mu_SD[:, None]) / sd_SD[:, None]).double()
        cov_SDD = _within_class_cov(p, means_SKD, sd_SD)
        D = cov_SDD.shape[-1]
        target_S = torch.diagonal(cov_SDD, dim1=1, dim2=2).sum(1) / D
        if self.shrinkage == "auto":
            alpha_S = _ledoit_wolf_alpha(p, means_SKD, sd_SD, cov_SDD)
        else:
            alpha_S = torch.full_like(target_S, float(self.shrinkage))
        eye = torch.eye(D, dtype=torch.float64, device=cov_SDD.device)
        shrunk_SDD = (1 - alpha_S)[:, None, None] * cov_SDD + (alpha_S * target_S)[:, None, None] * eye
        # A tiny ridge keeps the Cholesky factor defined when alpha = 0 and features are collinear.
        shrunk_SDD = shrunk_SDD + 1e-10 * target_S.clamp_min(1e-30)[:, None, None] * eye
        chol_SDD = torch.linalg.cholesky(shrunk_SDD)
        self.shrinkage_S_ = alpha_S
        return torch.cholesky_solve(_contrasts(zmeans_SKD), chol_SDD)


def _within_class_cov(p: Problems, means_SKD: torch.Tensor, sd_SD: torch.Tensor) -> torch.Tensor:
    """Pooled within-class covariance of standardised features, [S, D, D] float64.

    ``S_w = X_train^T X_train / n - sum_k pi_k mu_k mu_k^T``. The Gram term depends only on the
    training mask, which the arms of one seed share, so it is computed once per distinct mask.
    """
    masks_UN, inverse_S = torch.unique(p.w_SN, dim=0, return_inverse=True)
    gram_UDD = torch.stack([(p.X_ND * m[:, None]).T @ p.X_ND for m in masks_UN]).double()
    counts_SK = torch.nn.functional.one_hot(p.y_SN, p.n_classes).double().mul(p.w_SN[..., None].double()).sum(1)
    n_S = p.n_S.double()
    means = means_SKD.double()
    between_SDD = torch.einsum("sk,skd,ske->sde", counts_SK / n_S[:, None], means, means)
    cov_SDD = gram_UDD[inverse_S] / n_S[:, None, None] - between_SDD
    inv_sd_SD = 1 / sd_SD.double()
    return cov_SDD * inv_sd_SD[:, :, None] * inv_sd_SD[:, None, :]


def _ledoit_wolf_alpha(
    p: Problems, means_SKD: torch.Tensor, sd_SD: torch.Tensor, cov_SDD: torch.Tensor
) -> torch.Tensor:
    """Ledoit and Wolf's (2004, "A well-conditioned estimator for large-dimensional covariance
    matrices", Lemma 3.2 / Theorem 3.4) shrinkage intensity towards ``(tr S / D) I``, with the
    standardised within-class residuals ``r_i = (x_i - mu_{y_i}) / sd`` as the samples, written as
    scikit-learn's ``ledoit_wolf_shrinkage``. Needs only ``sum_i |r_i|^4``, which expands into
    matmuls against X, never an [S, N, D] tensor."""
    D = cov_SDD.shape[-1]
    inv_var_SD = (1 / sd_SD.square()).to(p.X_ND.dtype)
    means = means_SKD.to(p.X_ND.dtype)
    sq_NS = p.X_ND.square() @ inv_var_SD.T
    cross_SNK = shared_linear(p.X_ND, (means * inv_var_SD[:, None]).transpose(1, 2))
    msq_SK = (means.square() * inv_var_SD[:, None]).sum(-1)
    cross_SN = cross_SNK.gather(-1, p.y_SN[..., None])[..., 0]
    r2_SN = (sq_NS.T - 2 * cross_SN + msq_SK.gather(-1, p.y_SN)).clamp_min(0).double()
    n_S = p.n_S.double()
    beta_raw_S = (r2_SN.square() * p.w_SN.double()).sum(1)
    frob_S = cov_SDD.square().sum((1, 2))
    mu_S = torch.diagonal(cov_SDD, dim1=1, dim2=2).sum(1) / D
    beta_S = (beta_raw_S / n_S - frob_S) / (D * n_S)
    delta_S = (frob_S - D * mu_S.square()) / D
    beta_S = torch.minimum(beta_S, delta_S)
    return torch.where(delta_S > 0, beta_S / delta_S.clamp_min(1e-300), torch.ones_like(delta_S)).clamp(0, 1)
