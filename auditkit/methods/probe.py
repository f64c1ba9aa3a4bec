"""Supervised linear probes.

:class:`LogisticProbe` is L2-regularised logistic regression (sigmoid for two classes, softmax for
more) with scikit-learn's objective scaling, ``C * sum_i loss_i + ||W||^2 / 2``, divided by N so that
the optimiser sees O(1) numbers. It fits a *stack* of S independent problems that share the feature
matrix but have their own labels and training rows (the arms and seeds of one audit) in one tensor
program: the summed objective is separable across the stack, so one L-BFGS run on it reaches every
problem's own optimum.
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float, Int

from auditkit.errors import ConfigError, DataError, NotFittedError


class LogisticProbe:
    """A stack of logistic-regression probes on shared features ``X`` [N, D].

    Follows scikit-learn's estimator contract: ``__init__`` stores hyper-parameters only, learned
    attributes end in ``_``.
    """

    def __init__(self, *, C: float = 1.0, max_iter: int = 200, tol: float = 1e-6, standardize: bool = True):
        if C <= 0:
            raise ConfigError(f"probe C must be > 0, got {C}")
        if max_iter < 1:
            raise ConfigError(f"probe max_iter must be >= 1, got {max_iter}")
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.standardize = standardize

    def fit(
        self,
        X_ND: Float[torch.Tensor, "N D"],
        y_SN: Int[torch.Tensor, "S N"],
        train_SN: Bool[torch.Tensor, "S N"],
        n_classes: int,
    ) -> "LogisticProbe":
        """Fit S probes; probe s trains on rows ``train_SN[s]`` with labels ``y_SN[s]``."""
        if n_classes < 2:
            raise DataError(f"a probe needs at least two classes, got {n_classes}")
        if not bool(torch.isfinite(X_ND).all()):
            raise DataError("probe features contain NaN/inf: check the activations")
        X = X_ND.to(torch.float64)
        w_SN = train_SN.to(X.dtype)
        n_S = w_SN.sum(1).clamp_min(1)
        # Standardise with each problem's own training rows, as a scikit-learn pipeline would.
        mu_SD = (w_SN @ X) / n_S[:, None]
        if self.standardize:
            var_SD = (w_SN @ X.square()) / n_S[:, None] - mu_SD.square()
            sd_SD = var_SD.clamp_min(0).sqrt().clamp_min(1e-8)
        else:
            mu_SD, sd_SD = torch.zeros_like(mu_SD), torch.ones_like(mu_SD)
        out = 1 if n_classes == 2 else n_classes
        S, D = y_SN.shape[0], X.shape[1]
        W = torch.zeros(S, D, out, dtype=X.dtype, requires_grad=True)
        b = torch.zeros(S, out, dtype=X.dtype, requires_grad=True)
        opt = torch.optim.LBFGS(
            [W, b], lr=1, max_iter=self.max_iter, tolerance_grad=self.tol, tolerance_change=1e-12,
            history_size=20, line_search_fn="strong_wolfe",
        )  # fmt: skip
        Z_SND = (X[None] - mu_SD[:, None]) / sd_SD[:, None]

        def closure() -> torch.Tensor:
            opt.zero_grad()
            logits = torch.einsum("snd,sdk->snk", Z_SND, W) + b[:, None]
            loss_SN = _loss(logits, y_SN)
            loss = ((loss_SN * w_SN).sum(1) / n_S).sum() + (W.square().sum((1, 2)) / (2 * self.C * n_S)).sum()
            loss.backward()
            return loss

        with torch.enable_grad():
            opt.step(closure)
        self.mu_SD_, self.sd_SD_ = mu_SD, sd_SD
        self.coef_SDK_ = W.detach()
        self.intercept_SK_ = b.detach()
        self.n_classes_ = n_classes
        self.n_params_ = D * out + out
        return self

    def decision_function(self, X_ND: Float[torch.Tensor, "N D"]) -> Float[torch.Tensor, "S N K"]:
        """Logits of every probe for every row ([S, N, 1] for binary problems)."""
        if not hasattr(self, "coef_SDK_"):
            raise NotFittedError("LogisticProbe is not fitted: call fit() first")
        Z = (X_ND.to(torch.float64)[None] - self.mu_SD_[:, None]) / self.sd_SD_[:, None]
        return torch.einsum("snd,sdk->snk", Z, self.coef_SDK_) + self.intercept_SK_[:, None]

    def predict_proba(self, X_ND: Float[torch.Tensor, "N D"]) -> Float[torch.Tensor, "S N K"]:
        """Class probabilities [S, N, K]."""
        logits = self.decision_function(X_ND)
        if self.n_classes_ == 2:
            p1 = torch.sigmoid(logits[..., 0])
            return torch.stack([1 - p1, p1], dim=-1)
        return torch.softmax(logits, dim=-1)

    def predict(self, X_ND: Float[torch.Tensor, "N D"]) -> Int[torch.Tensor, "S N"]:
        return self.predict_proba(X_ND).argmax(-1)

    def directions(self) -> Float[torch.Tensor, "S D K"]:
        """Probe directions in the original (unstandardised) activation basis."""
        if not hasattr(self, "coef_SDK_"):
            raise NotFittedError("LogisticProbe is not fitted: call fit() first")
        return self.coef_SDK_ / self.sd_SD_[..., None]


def _loss(logits_SNK: torch.Tensor, y_SN: torch.Tensor) -> torch.Tensor:
    if logits_SNK.shape[-1] == 1:
        return torch.nn.functional.binary_cross_entropy_with_logits(
            logits_SNK[..., 0], y_SN.to(logits_SNK.dtype), reduction="none"
        )
    S, N, K = logits_SNK.shape
    return torch.nn.functional.cross_entropy(
        logits_SNK.reshape(S * N, K), y_SN.reshape(S * N), reduction="none"
    ).reshape(S, N)
