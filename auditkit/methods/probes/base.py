"""Shared machinery of the stacked probes: input checks, per-problem standardisation, stacked L-BFGS.

Every probe fits a *stack* of S independent problems that share the feature matrix ``X`` [N, D] but
have their own labels ``y_SN`` and training rows ``train_SN`` (the arms and seeds of one audit). The
per-problem objectives are summed into one separable objective whose gradient on problem s's
parameters is problem s's own gradient; :func:`stacked_lbfgs` then runs one batched L-BFGS in which
every problem keeps its own curvature history, step length and stopping test, so the stack costs one
tensor program per iteration and every problem is checked to converge on its own.

Standardisation is never materialised as an [S, N, D] tensor (1.4 GB in float64 at S=15, N=20k,
D=576): it is folded into the weights, ``((X - mu) / sd) @ W = X @ (W / sd) - (mu / sd) @ W``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from jaxtyping import Bool, Float, Int

from auditkit.errors import ConfigError, DataError, NotFittedError
from auditkit.seeding import derive_seed

logger = logging.getLogger(__name__)

FLOAT64_MAX_ELEMENTS = 2_000_000
"""``precision="auto"`` fits in float64 when N * (D + S * K_out) (features plus logits) is at most this
(small problems, tests), and in float32 above it: the narrow matmuls of a fit are bound by reading X,
so float32 halves both memory and time; objectives are still summed in float64 and the gradient
tolerance is floored (FLOAT32_MIN_TOL) so that float32 round-off never blocks convergence."""

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
    """float32 or float64 for a fit whose features and logits hold ``n_elements`` numbers."""
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
    """Validate a stacked fit's inputs and move them to the working dtype (and labels and masks to X's device)."""
    if n_classes < 2:
        raise DataError(f"a probe needs at least two classes, got {n_classes}")
    # A fit runs on its features' device (the audit's --device): labels and masks follow X.
    y_SN, train_SN = y_SN.to(X_ND.device), train_SN.to(X_ND.device)
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
    dtype = resolve_dtype(precision, X_ND.shape[0] * (X_ND.shape[1] + y_SN.shape[0] * out))
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


def left_apply(M_DE: torch.Tensor, U_SEK: torch.Tensor) -> torch.Tensor:
    """``M @ U[s]`` for every s as one matmul, [S, D, K]."""
    S, E, K = U_SEK.shape
    return (M_DE @ U_SEK.transpose(0, 1).reshape(E, S * K)).reshape(-1, S, K).transpose(0, 1)


def whitening_preconditioner(X_ND: torch.Tensor, w_SN: torch.Tensor, ridge: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``P = L^-T`` and ``L``, with ``L L^T = R + ridge I`` and R the correlation matrix of the rows that
    train any problem.

    Optimising ``W = P U`` instead of W leaves the objective unchanged but turns the Hessian of its
    data term, about ``R`` times the logistic weights, into ``P^T R P``, close to a multiple of the
    identity: residual-stream features are strongly correlated (eigenvalues of R spread over 5+
    decades), which is what makes plain L-BFGS take hundreds of iterations. ``ridge`` (the L2 strength
    per row, 1 / (C n)) keeps P bounded in directions that the penalty, not the data, determines. The
    gradient in W's coordinates is ``P^-T dL/dU = L dL/dU``. A Cholesky factor rather than the
    symmetric root: same conditioning, and ``eigh`` is erratic on CPU (tens of seconds on a first call).
    """
    rows = w_SN.sum(0) > 0
    Xr = X_ND[rows]
    Xr = Xr - Xr.mean(0)
    sd_D = Xr.square().mean(0).sqrt().clamp_min(1e-12).double()
    corr_DD = ((Xr.T @ Xr) / len(Xr)).double() / (sd_D[:, None] * sd_D[None, :])
    eye = torch.eye(len(corr_DD), dtype=torch.float64, device=corr_DD.device)
    L = torch.linalg.cholesky(corr_DD + ridge * eye)
    P = torch.linalg.solve_triangular(L.T, eye, upper=True)
    return P.to(X_ND.dtype), L.to(X_ND.dtype)


def masked_cross_entropy(logits_SNK: torch.Tensor, y_SN: torch.Tensor, w_SN: torch.Tensor) -> torch.Tensor:
    """Per-problem mean training loss [S]: binary cross-entropy on one logit, softmax cross-entropy on K."""
    if logits_SNK.shape[-1] == 1:
        loss_SN = torch.nn.functional.binary_cross_entropy_with_logits(
            logits_SNK[..., 0], y_SN.to(logits_SNK.dtype), reduction="none"
        )
    else:
        loss_SN = -torch.log_softmax(logits_SNK, dim=-1).gather(-1, y_SN[..., None])[..., 0]
    # Summed in float64: a line search compares objective values that differ by less than float32's
    # resolution of a sum over 10^4 rows.
    return (loss_SN.double() * w_SN.double()).sum(1) / w_SN.double().sum(1).clamp_min(1)


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
    n_iter_S: torch.Tensor
    """int64: iterations each problem took before it converged or stopped."""


def stacked_lbfgs(
    params: Sequence[torch.Tensor],
    objective_S: Callable[[], torch.Tensor],
    *,
    max_iter: int,
    tol: float,
    history: int = 10,
    grad_to_natural: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> LBFGSReport:
    """Minimise every problem's ``objective_S()[s]`` over its slice of ``params`` (leading dim S), in place.

    A batched L-BFGS (Nocedal and Wright, 2006, Alg. 7.4 two-loop recursion, Armijo backtracking):
    each problem keeps its own curvature pairs, step length and stopping test, and the whole stack
    costs one objective evaluation per iteration (more only while some problem backtracks). One
    L-BFGS on the *summed* objective would share one step length and one curvature history across
    problems, which mixes them and takes several times the iterations. A problem stops when its own
    largest gradient entry is at most ``tol`` (at least 1e-5 in float32), or when its line search
    finds no decrease (round-off floor); it is then frozen while the others go on.

    ``grad_to_natural`` maps the flat gradient [S, P] in the optimised (preconditioned) coordinates to
    the gradient in the model's own coordinates, where the stopping test is made.
    """
    params = list(params)
    gmax = (lambda g: grad_to_natural(g).abs().amax(1)) if grad_to_natural is not None else (lambda g: g.abs().amax(1))
    tol = max(tol, FLOAT32_MIN_TOL) if params[0].dtype == torch.float32 else tol
    x_SP = torch.cat([p.detach().reshape(len(p), -1) for p in params], 1)
    S = x_SP.shape[0]
    evaluate = _flat_objective(params, objective_S)
    f_S, g_SP = evaluate(x_SP)
    active = gmax(g_SP) > tol
    n_iter_S = torch.zeros(S, dtype=torch.int64, device=x_SP.device)
    pairs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    for _ in range(max_iter):
        if not bool(active.any()):
            break
        d_SP = -_two_loop(g_SP, pairs) * active[:, None]
        gd_S = (g_SP * d_SP).sum(1)
        # The first step (no curvature yet) is scaled to unit length, as in scipy's L-BFGS-B.
        t_S = torch.ones(S, dtype=x_SP.dtype, device=x_SP.device)
        if not pairs:
            t_S = (1 / g_SP.norm(dim=1).clamp_min(1e-12)).clamp_max(1)
        x_new, f_new, g_new, ok = _armijo(evaluate, x_SP, f_S, gd_S, d_SP, t_S, active)
        s_SP, y_SP = x_new - x_SP, g_new - g_SP
        sy_S = (s_SP * y_SP).sum(1)
        # Skip the pair where curvature is not positive (or the problem is frozen): rho = 0 is a no-op.
        rho_S = torch.where(sy_S > 1e-10 * s_SP.norm(dim=1) * y_SP.norm(dim=1), 1 / sy_S, torch.zeros_like(sy_S))
        pairs = [*pairs, (s_SP, y_SP, rho_S)][-history:]
        x_SP, f_S, g_SP = x_new, f_new, g_new
        n_iter_S += active.long()
        active = active & ok & (gmax(g_SP) > tol)
    _unflatten(params, x_SP)
    grad_max_S = gmax(g_SP)
    converged = grad_max_S <= tol
    if not bool(converged.all()):
        logger.warning(
            "stacked L-BFGS: %d of %d problems above gradient tolerance %.1e after %d iterations (worst %.2e); "
            "raise max_iter",
            int((~converged).sum()),
            S,
            tol,
            int(n_iter_S.max()),
            float(grad_max_S.max()),
        )
    return LBFGSReport(grad_max_S, converged, n_iter_S)


def _two_loop(g_SP: torch.Tensor, pairs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """H g for every problem, H the L-BFGS inverse-Hessian estimate from its own pairs (N&W Alg. 7.4)."""
    q = g_SP.clone()
    alphas = []
    for s, y, rho in reversed(pairs):
        a = rho * (s * q).sum(1)
        q -= a[:, None] * y
        alphas.append(a)
    gamma = torch.ones_like(g_SP[:, 0])
    found = torch.zeros_like(gamma, dtype=torch.bool)
    for s, y, rho in reversed(pairs):  # the newest valid pair sets the initial scaling (N&W eq. 7.20)
        use = (rho > 0) & ~found
        gamma = torch.where(use, 1 / (rho * (y * y).sum(1)).clamp_min(1e-300), gamma)
        found = found | use
    r = gamma[:, None] * q
    for (s, y, rho), a in zip(pairs, reversed(alphas)):
        b = rho * (y * r).sum(1)
        r += (a - b)[:, None] * s
    return r


def _armijo(evaluate, x_SP, f_S, gd_S, d_SP, t_S, active, c1: float = 1e-4, max_halvings: int = 30):
    """Backtrack each active problem's step until ``f(x + t d) <= f(x) + c1 t g.d``; ``ok`` is False
    for a problem whose step shrank to nothing (its decrease is below round-off)."""
    done = ~active
    for _ in range(max_halvings):
        x_new = x_SP + t_S[:, None] * d_SP
        f_new, g_new = evaluate(x_new)
        done = done | (f_new <= f_S + c1 * t_S * gd_S)
        if bool(done.all()):
            return x_new, f_new, g_new, torch.ones_like(done)
        t_S = torch.where(done, t_S, t_S / 2)
    # Problems that never decreased keep their old point (t = 0) and stop.
    t_S = torch.where(done, t_S, torch.zeros_like(t_S))
    x_new = x_SP + t_S[:, None] * d_SP
    f_new, g_new = evaluate(x_new)
    return x_new, f_new, g_new, done


def _flat_objective(params: list[torch.Tensor], objective_S: Callable[[], torch.Tensor]):
    """``x_SP -> (f_S, g_SP)``: loads the flat point into ``params`` and differentiates the summed objective
    (its gradient on problem s's slice is problem s's own gradient: the sum is separable)."""

    def evaluate(x_SP: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _unflatten(params, x_SP)
        with torch.enable_grad():
            f_S = objective_S()
            grads = torch.autograd.grad(f_S.sum(), params)
        g_SP = torch.cat([g.reshape(len(g), -1) for g in grads], 1)
        return f_S.detach().double(), g_SP

    return evaluate


def _unflatten(params: list[torch.Tensor], x_SP: torch.Tensor) -> None:
    with torch.no_grad():
        lo = 0
        for p in params:
            width = p[0].numel()
            p.copy_(x_SP[:, lo : lo + width].reshape(p.shape))
            lo += width


def problem_seeds(seed: int, name: str, n_problems: int, problem_keys: Sequence[str] | None) -> list[int]:
    """A seed per problem derived from its key (its index when no keys are given), so adding a problem
    to the stack never changes another problem's initialisation."""
    keys = list(problem_keys) if problem_keys is not None else [str(s) for s in range(n_problems)]
    if len(keys) != n_problems:
        raise ConfigError(f"problem_keys has {len(keys)} entries for {n_problems} problems: give one per problem")
    return [derive_seed(seed, name, k) for k in keys]


class StackedProbe(ABC):
    """Base class: the estimator contract shared by every stacked probe.

    Subclasses implement ``fit`` and ``decision_function`` ([S, N, K] logits, or [S, N, 1] for a
    binary problem); prediction, probabilities and the not-fitted check live here.
    """

    kind: str = ""
    """Registry name of the probe."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_classes_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() first")

    @abstractmethod
    def decision_function(self, X_ND: Float[torch.Tensor, "N D"]) -> Float[torch.Tensor, "S N K"]:
        """Logits [S, N, K] of every problem's probe (each kind defines its own)."""

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
