"""Shared machinery of the stacked probes: input checks, per-problem standardisation, stacked L-BFGS.

Every probe fits a *stack* of S independent problems that share the feature matrix ``X`` [N, D] but
have their own labels ``y_SN`` and training rows ``train_SN`` (the arms and seeds of one audit). The
per-problem objectives are summed into one separable objective, so one optimiser run reaches every
problem's own optimum: the gradient of the sum with respect to problem s's parameters is problem s's
own gradient. Convergence is therefore checked problem by problem (:func:`stacked_lbfgs`).

Standardisation is never materialised as an [S, N, D] tensor (1.4 GB in float64 at S=15, N=20k,
D=576): it is folded into the weights, ``((X - mu) / sd) @ W = X @ (W / sd) - (mu / sd) @ W``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from jaxtyping import Bool, Float, Int

from auditkit.errors import ConfigError, DataError, NotFittedError
from auditkit.seeding import derive_seed

logger = logging.getLogger(__name__)

FLOAT64_MAX_ELEMENTS = 4_000_000
"""``precision="auto"`` fits in float64 when S * N * K_out is at most this (small problems, tests), and
in float32 above it: float32 halves memory and roughly doubles matmul throughput, and the L-BFGS
tolerances below are set so that float32 round-off (~1e-7 relative) never blocks convergence."""

FLOAT32_MIN_TOL = 1e-5
"""Smallest per-problem gradient tolerance asked of a float32 fit: the gradient of a mean loss over
10^4 rows carries round-off around 1e-6, so a tighter target would only burn iterations."""


class Problems(NamedTuple):
    """Validated inputs of a stacked fit, in the working dtype."""

    X_ND: torch.Tensor
    """Features, centred by the mean over *all* rows (a shared shift that keeps the folded
    standardisation free of cancellation in float32; it changes no fitted function)."""
    shift_D: torch.Tensor
    """The shared shift subtracted from ``X_ND`` (to apply to new rows)."""
    y_SN: torch.Tensor
    """int64 labels; rows outside training may hold anything (clamped to a valid class)."""
    w_SN: torch.Tensor
    """Training weights (1.0 on training rows, 0.0 elsewhere)."""
    n_S: torch.Tensor
    """Training rows per problem."""
    n_classes: int


def resolve_dtype(precision: str, n_elements: int) -> torch.dtype:
    """float32 or float64 for a fit whose per-problem output tensor holds ``n_elements`` numbers."""
    if precision == "float64" or (precision == "auto" and n_elements <= FLOAT64_MAX_ELEMENTS):
        return torch.float64
    if precision in ("float32", "auto"):
        return torch.float32
    raise ConfigError(f"precision {precision!r} unknown: use auto, float32 or float64")


def check_problems(
    X_ND: Float[torch.Tensor, "N D"],
    y_SN: Int[torch.Tensor, "S N"],
    train_SN: Bool[torch.Tensor, "S N"],
    n_classes: int,
    precision: str,
) -> Problems:
    """Validate a stacked fit's inputs and move them to the working dtype."""
    if n_classes < 2:
        raise DataError(f"a probe needs at least two classes, got {n_classes}")
    if y_SN.ndim != 2 or train_SN.shape != y_SN.shape or y_SN.shape[1] != X_ND.shape[0]:
        raise DataError(
            f"probe inputs disagree: X {tuple(X_ND.shape)}, y {tuple(y_SN.shape)}, train {tuple(train_SN.shape)}; "
            "y and train must be [S, N] with N the rows of X"
        )
    if not bool(torch.isfinite(X_ND).all()):
        raise DataError("probe features contain NaN/inf: check the activations")
    train_SN = train_SN.bool()
    n_train_S = train_SN.sum(1)
    if bool((n_train_S == 0).any()):
        raise DataError(f"probe problem(s) {torch.nonzero(n_train_S == 0).flatten().tolist()} have no training rows")
    y_train = y_SN[train_SN]
    if bool(((y_train < 0) | (y_train >= n_classes)).any()):
        raise DataError(f"training labels must lie in [0, {n_classes}), got values {torch.unique(y_train).tolist()}")
    out = 1 if n_classes == 2 else n_classes
    dtype = resolve_dtype(precision, y_SN.shape[0] * X_ND.shape[0] * out)
    X = X_ND.to(dtype)
    shift_D = X.mean(0)
    w_SN = train_SN.to(dtype)
    return Problems(X - shift_D, shift_D, y_SN.long().clamp(0, n_classes - 1), w_SN, w_SN.sum(1), n_classes)


def train_moments(
    X_ND: Float[torch.Tensor, "N D"], w_SN: Float[torch.Tensor, "S N"], standardize: bool
) -> tuple[Float[torch.Tensor, "S D"], Float[torch.Tensor, "S D"]]:
    """Mean and standard deviation of every feature over each problem's training rows ([S, D] each),
    as a scikit-learn ``StandardScaler`` fitted on that problem's training rows would give them
    (population variance; constant features get sd 1 rather than 0)."""
    n_S = w_SN.sum(1).clamp_min(1)[:, None]
    mu_SD = (w_SN @ X_ND) / n_S
    if not standardize:
        return torch.zeros_like(mu_SD), torch.ones_like(mu_SD)
    var_SD = ((w_SN @ X_ND.square()) / n_S - mu_SD.square()).clamp_min(0)
    sd_SD = var_SD.sqrt()
    return mu_SD, torch.where(sd_SD > 1e-8 * (1 + mu_SD.abs()), sd_SD, torch.ones_like(sd_SD))


def fold_standardisation(
    W_SDK: torch.Tensor, b_SK: torch.Tensor, mu_SD: torch.Tensor, sd_SD: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights and biases acting on raw features that equal ``W``, ``b`` acting on standardised ones."""
    V_SDK = W_SDK / sd_SD[..., None]
    return V_SDK, b_SK - torch.einsum("sd,sdk->sk", mu_SD, V_SDK)


def shared_linear(X_ND: torch.Tensor, V_SDK: torch.Tensor) -> torch.Tensor:
    """``X @ V[s]`` for every s as ONE [N, D] x [D, S*K] matmul, returned as [S, N, K]."""
    S, D, K = V_SDK.shape
    out_NSK = (X_ND @ V_SDK.permute(1, 0, 2).reshape(D, S * K)).reshape(-1, S, K)
    return out_NSK.permute(1, 0, 2)


def masked_cross_entropy(logits_SNK: torch.Tensor, y_SN: torch.Tensor, w_SN: torch.Tensor) -> torch.Tensor:
    """Per-problem mean training loss [S]: binary cross-entropy on one logit, softmax cross-entropy on K."""
    if logits_SNK.shape[-1] == 1:
        loss_SN = torch.nn.functional.binary_cross_entropy_with_logits(
            logits_SNK[..., 0], y_SN.to(logits_SNK.dtype), reduction="none"
        )
    else:
        loss_SN = -torch.log_softmax(logits_SNK, dim=-1).gather(-1, y_SN[..., None])[..., 0]
    return (loss_SN * w_SN).sum(1) / w_SN.sum(1).clamp_min(1)


def logits_to_proba(logits_SNK: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Class probabilities [S, N, K] from one logit (binary) or K logits."""
    if n_classes == 2 and logits_SNK.shape[-1] == 1:
        p1 = torch.sigmoid(logits_SNK[..., 0])
        return torch.stack([1 - p1, p1], dim=-1)
    return torch.softmax(logits_SNK, dim=-1)


class LBFGSReport(NamedTuple):
    """How a stacked L-BFGS run ended, problem by problem."""

    grad_max_S: torch.Tensor
    """Largest absolute gradient entry of each problem's own objective at the end."""
    converged_S: torch.Tensor
    """bool: ``grad_max_S <= tol``."""
    n_iter: int
    """L-BFGS iterations taken (shared by the stack)."""


def stacked_lbfgs(
    params: Sequence[torch.Tensor],
    objective_S: Callable[[], torch.Tensor],
    *,
    max_iter: int,
    tol: float,
    max_rounds: int = 4,
) -> LBFGSReport:
    """Minimise ``objective_S().sum()`` over ``params`` (each with leading dim S); check every problem.

    One L-BFGS run (Nocedal and Wright, 2006, Alg. 7.5, strong-Wolfe line search) on the separable sum
    stops when the *largest* gradient entry over the whole stack is below ``tol`` (so every problem is
    below it), or when it runs out of iterations or progress. Each problem's own gradient is then
    checked; while any is above ``tol`` and rounds remain, L-BFGS restarts from where it stopped with a
    fresh curvature history (a stale history mixes problems that have already converged).
    """
    tol = max(tol, FLOAT32_MIN_TOL) if params[0].dtype == torch.float32 else tol
    n_iter = 0
    for _ in range(max_rounds):
        opt = torch.optim.LBFGS(
            list(params), lr=1, max_iter=max_iter, tolerance_grad=tol, tolerance_change=1e-14,
            history_size=20, line_search_fn="strong_wolfe",
        )  # fmt: skip

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = objective_S().sum()
            loss.backward()
            return loss

        with torch.enable_grad():
            opt.step(closure)
        n_iter += int(opt.state[opt._params[0]].get("n_iter", 0))
        grad_max_S = _per_problem_grad_max(params, objective_S)
        if bool((grad_max_S <= tol).all()):
            break
    converged = grad_max_S <= tol
    if not bool(converged.all()):
        logger.warning(
            "stacked L-BFGS: %d of %d problems above gradient tolerance %.1e after %d iterations (worst %.2e); "
            "raise max_iter", int((~converged).sum()), len(converged), tol, n_iter, float(grad_max_S.max()),
        )  # fmt: skip
    return LBFGSReport(grad_max_S.detach(), converged, n_iter)


def _per_problem_grad_max(params: Sequence[torch.Tensor], objective_S: Callable[[], torch.Tensor]) -> torch.Tensor:
    with torch.enable_grad():
        grads = torch.autograd.grad(objective_S().sum(), list(params))
    return torch.stack([g.detach().abs().reshape(len(g), -1).amax(1) for g in grads]).amax(0)


def problem_seeds(seed: int, name: str, n_problems: int, problem_keys: Sequence[str] | None) -> list[int]:
    """A seed per problem derived from its key (its index when no keys are given), so adding a problem
    to the stack never changes another problem's initialisation."""
    keys = list(problem_keys) if problem_keys is not None else [str(s) for s in range(n_problems)]
    if len(keys) != n_problems:
        raise ConfigError(f"problem_keys has {len(keys)} entries for {n_problems} problems: give one per problem")
    return [derive_seed(seed, name, k) for k in keys]


class StackedProbe:
    """Base class: the estimator contract shared by every stacked probe.

    Subclasses implement ``fit`` and ``decision_function`` ([S, N, K] logits, or [S, N, 1] for a
    binary problem); prediction, probabilities and the not-fitted check live here.
    """

    kind: str = ""
    """Registry name of the probe."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_classes_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() first")

    def decision_function(self, X_ND: Float[torch.Tensor, "N D"]) -> Float[torch.Tensor, "S N K"]:
        raise NotImplementedError

    def predict_proba(self, X_ND: Float[torch.Tensor, "N D"]) -> Float[torch.Tensor, "S N K"]:
        """Class probabilities [S, N, K]."""
        return logits_to_proba(self.decision_function(X_ND), self.n_classes_)

    def predict(self, X_ND: Float[torch.Tensor, "N D"]) -> Int[torch.Tensor, "S N"]:
        """Most probable class of every row under every probe."""
        return self.predict_proba(X_ND).argmax(-1)

    def _prepare(self, X_ND: torch.Tensor) -> torch.Tensor:
        """New rows in the fitted dtype with the fit's shared shift removed."""
        self._check_fitted()
        if X_ND.ndim != 2 or X_ND.shape[1] != self.shift_D_.shape[0]:
            raise DataError(f"probe was fitted on {self.shift_D_.shape[0]} features, got X {tuple(X_ND.shape)}")
        return X_ND.to(self.shift_D_.dtype) - self.shift_D_
