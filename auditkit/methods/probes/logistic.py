"""The logistic probe.

:class:`LogisticProbe` is L2-regularised logistic regression (sigmoid for two classes, softmax for
more) with scikit-learn's objective scaling, ``C * sum_i loss_i + ||W||^2 / 2``, divided by N so that
the optimiser sees O(1) numbers. Like every probe here it fits a *stack* of S independent problems
that share the feature matrix but have their own labels and training rows (the arms and seeds of one
audit) in one tensor program (see :mod:`auditkit.methods.probes.base`).
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float, Int

from auditkit.errors import ConfigError
from auditkit.methods.probes.base import (
    StackedProbe,
    check_problems,
    fold_standardisation,
    left_apply,
    masked_cross_entropy,
    shared_linear,
    stacked_lbfgs,
    train_moments,
    whitening_preconditioner,
)

PRECONDITION_MAX_DIMS = 1024
"""Widest feature matrix ``precondition="auto"`` whitens."""


class LogisticProbe(StackedProbe):
    """A stack of L2 logistic-regression probes on shared features ``X`` [N, D].

    ``standardize`` scales each problem's features by its own training rows' mean and sd, as a
    scikit-learn ``make_pipeline(StandardScaler(), LogisticRegression(C=C))`` would; the penalty then
    acts on the standardised coefficients. ``tol`` bounds every problem's largest gradient entry, as
    scikit-learn's lbfgs ``tol`` does (same default, 1e-4; at least 1e-5 in float32). ``precision`` is
    ``auto`` (float64 for small stacks, else float32), ``float32`` or ``float64``. ``precondition``
    optimises in whitened coordinates (:func:`~auditkit.methods.probes.base.whitening_preconditioner`;
    same optimum, several times fewer iterations on correlated activations; needs ``standardize``):
    ``True``, ``False``, or ``auto`` (the default: only up to :data:`PRECONDITION_MAX_DIMS` features, since the
    whitening factorises a D x D matrix, too costly for tens of thousands of sparse-code features).

    Fitted attributes: ``coef_SDK_`` / ``intercept_SK_`` (standardised basis), ``mu_SD_``, ``sd_SD_``,
    ``n_params_``, ``complexity_``, and per problem ``converged_S_``, ``grad_max_S_``, ``n_iter_S_``.
    """

    kind = "logistic"

    def __init__(
        self,
        *,
        C: float = 1.0,
        max_iter: int = 1000,
        tol: float = 1e-4,
        standardize: bool = True,
        precision: str = "auto",
        precondition: bool | str = "auto",
    ):
        if C <= 0:
            raise ConfigError(f"probe C must be > 0, got {C}")
        if max_iter < 1:
            raise ConfigError(f"probe max_iter must be >= 1, got {max_iter}")
        if precondition not in (True, False, "auto"):
            raise ConfigError(f"probe precondition must be True, False or 'auto', got {precondition!r}")
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.standardize = standardize
        self.precision = precision
        self.precondition = precondition

    def fit(
        self,
        X_ND: Float[torch.Tensor, "N D"],
        y_SN: Int[torch.Tensor, "S N"],
        train_SN: Bool[torch.Tensor, "S N"],
        n_classes: int,
    ) -> LogisticProbe:
        """Fit S probes; probe s trains on rows ``train_SN[s]`` with labels ``y_SN[s]``."""
        p = check_problems(X_ND, y_SN, train_SN, n_classes, self.precision)
        mu_SD, sd_SD = train_moments(p.X_ND, p.w_SN, self.standardize)
        out = 1 if n_classes == 2 else n_classes
        S, D = p.y_SN.shape[0], p.X_ND.shape[1]
        dev = p.X_ND.device
        U_SDK = torch.zeros(S, D, out, dtype=p.X_ND.dtype, device=dev, requires_grad=True)
        b_SK = torch.zeros(S, out, dtype=p.X_ND.dtype, device=dev, requires_grad=True)
        P_DD, L_DD = torch.eye(D, dtype=p.X_ND.dtype, device=dev), None
        whiten = D <= PRECONDITION_MAX_DIMS if self.precondition == "auto" else self.precondition
        if whiten and self.standardize:
            P_DD, L_DD = whitening_preconditioner(p.X_ND, p.w_SN, 1 / (self.C * float(p.n_S.mean())))

        def objective_S() -> torch.Tensor:
            W_SDK = left_apply(P_DD, U_SDK)
            V_SDK, c_SK = fold_standardisation(W_SDK, b_SK, mu_SD, sd_SD)
            logits_SNK = shared_linear(p.X_ND, V_SDK) + c_SK[:, None]
            # sklearn's objective divided by n: mean loss + ||W||^2 / (2 C n).
            return masked_cross_entropy(logits_SNK, p.y_SN, p.w_SN) + W_SDK.square().sum((1, 2)) / (2 * self.C * p.n_S)

        def grad_to_natural(g_SP: torch.Tensor) -> torch.Tensor:
            # dL/dW = P^-T dL/dU = L dL/dU: the stopping test is scikit-learn's, on W's gradient.
            gW_SDK = left_apply(L_DD, g_SP[:, : D * out].reshape(S, D, out))
            return torch.cat([gW_SDK.reshape(S, -1), g_SP[:, D * out :]], 1)

        report = stacked_lbfgs(
            [U_SDK, b_SK],
            objective_S,
            max_iter=self.max_iter,
            tol=self.tol,
            grad_to_natural=grad_to_natural if L_DD is not None else None,
        )
        self.shift_D_, self.mu_SD_, self.sd_SD_ = p.shift_D, mu_SD, sd_SD
        self.coef_SDK_ = left_apply(P_DD, U_SDK.detach())
        self.intercept_SK_ = b_SK.detach()
        self.n_classes_ = n_classes
        self.n_params_ = D * out + out
        self.complexity_ = dict(n_params=self.n_params_, rank=min(D, out))
        self.grad_max_S_, self.converged_S_, self.n_iter_S_ = report
        return self

    def decision_function(self, X_ND: Float[torch.Tensor, "N D"]) -> Float[torch.Tensor, "S N K"]:
        """Logits of every probe for every row ([S, N, 1] for binary problems)."""
        X = self._prepare(X_ND)
        V_SDK, c_SK = fold_standardisation(self.coef_SDK_, self.intercept_SK_, self.mu_SD_, self.sd_SD_)
        return shared_linear(X, V_SDK) + c_SK[:, None]

    def directions(self) -> Float[torch.Tensor, "S D K"]:
        """Probe directions in the original (unstandardised) activation basis."""
        self._check_fitted()
        return self.coef_SDK_ / self.sd_SD_[..., None]
