"""Probes with more (low-rank) or less (MLP) structure than a full linear map, fitted by gradient.

- :class:`LowRankProbe`: logits ``z A B + b`` with ``A`` [D, r], ``B`` [r, K]: a linear probe whose
  weight matrix has rank <= r, for asking how many directions a K-class concept needs. The penalty
  ``(|A|^2 + |B|^2) / 2`` equals the nuclear norm of ``A B`` at the optimum (Srebro, Rennie and
  Jaakkola, 2005, "Maximum-margin matrix factorization"), so this is trace-norm-regularised logistic
  regression at a fixed rank, with scikit-learn's C scaling. Fitted by stacked L-BFGS.
- :class:`MLPProbe`: one ReLU hidden layer, trained with AdamW (Loshchilov and Hutter, 2019;
  decoupled weight decay on the weight matrices only), minibatches shared by the stack. Adam's update
  is per coordinate, so one AdamW over the stacked parameters is exactly S independent AdamWs.

Both standardise each problem's features with its own training rows, folded into the first layer.
The low-rank probe starts from the truncated SVD of the full logistic solution (deterministic); the
MLP initialises each problem from a seed derived from ``seed`` and the problem's key
(``problem_keys``, default its index), so adding a problem never changes another one's start.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Bool, Float, Int

from auditkit.errors import ConfigError
from auditkit.methods.probes.base import (
    StackedProbe,
    check_problems,
    fold_standardisation,
    masked_cross_entropy,
    problem_seeds,
    shared_linear,
    stacked_lbfgs,
    train_moments,
)
from auditkit.methods.probes.logistic import LogisticProbe
from auditkit.seeding import derive_seed, torch_generator


def _stacked_init(
    shape: tuple[int, ...], scale: float, seeds: list[int], dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """Uniform(-scale, scale) draws, one private generator per problem (a loop over S draws only), moved to
    ``device``. Drawn on the CPU, so a problem starts from the same weights on every device."""
    draws = [torch.rand(shape, generator=torch_generator(s), dtype=torch.float64, device="cpu") for s in seeds]
    return ((torch.stack(draws) * 2 - 1) * scale).to(device=device, dtype=dtype)


class LowRankProbe(StackedProbe):
    """Rank-``rank`` logistic regression (``rank`` is capped at the output width: 1 for two classes)."""

    kind = "low-rank"

    def __init__(
        self,
        *,
        rank: int = 2,
        C: float = 1.0,
        max_iter: int = 500,
        tol: float = 1e-4,
        standardize: bool = True,
        precision: str = "auto",
    ):
        if rank < 1:
            raise ConfigError(f"low-rank probe rank must be >= 1, got {rank}")
        if C <= 0:
            raise ConfigError(f"probe C must be > 0, got {C}")
        self.rank = rank
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.standardize = standardize
        self.precision = precision

    def fit(
        self,
        X_ND: Float[torch.Tensor, "N D"],
        y_SN: Int[torch.Tensor, "S N"],
        train_SN: Bool[torch.Tensor, "S N"],
        n_classes: int,
    ) -> LowRankProbe:
        """Fit S probes; probe s trains on rows ``train_SN[s]`` with labels ``y_SN[s]``."""
        p = check_problems(X_ND, y_SN, train_SN, n_classes, self.precision)
        mu_SD, sd_SD = train_moments(p.X_ND, p.w_SN, self.standardize)
        _S, D = p.y_SN.shape[0], p.X_ND.shape[1]
        out = 1 if n_classes == 2 else n_classes
        r = min(self.rank, out, D)
        A_SDR, B_SRK, b_SK = self._warm_start(X_ND, y_SN, train_SN, n_classes, r, p.X_ND.dtype)

        def objective_S() -> torch.Tensor:
            V_SDR, c_SR = fold_standardisation(A_SDR, torch.zeros_like(A_SDR[:, 0]), mu_SD, sd_SD)
            logits = torch.bmm(shared_linear(p.X_ND, V_SDR) + c_SR[:, None], B_SRK) + b_SK[:, None]
            penalty_S = (A_SDR.square().sum((1, 2)) + B_SRK.square().sum((1, 2))) / (2 * self.C * p.n_S)
            return masked_cross_entropy(logits, p.y_SN, p.w_SN) + penalty_S

        report = stacked_lbfgs([A_SDR, B_SRK, b_SK], objective_S, max_iter=self.max_iter, tol=self.tol)
        self.shift_D_, self.mu_SD_, self.sd_SD_ = p.shift_D, mu_SD, sd_SD
        self.A_SDR_, self.B_SRK_, self.intercept_SK_ = A_SDR.detach(), B_SRK.detach(), b_SK.detach()
        self.n_classes_ = n_classes
        self.complexity_ = dict(n_params=r * (D + out) + out, rank=r)
        self.grad_max_S_, self.converged_S_, self.n_iter_S_ = report
        return self

    def _warm_start(self, X_ND, y_SN, train_SN, n_classes, r, dtype):
        """Balanced factors of the full-rank logistic solution truncated to rank r (Eckart-Young):
        ``A = U_r S_r^1/2``, ``B = S_r^1/2 V_r^T``. Deterministic, near the optimum, and away from the
        saddle point A = B = 0 that a small random start would have to escape."""
        full = LogisticProbe(
            C=self.C, max_iter=self.max_iter, tol=self.tol, standardize=self.standardize, precision=self.precision
        ).fit(X_ND, y_SN, train_SN, n_classes)
        U, sv, Vh = torch.linalg.svd(full.coef_SDK_.double(), full_matrices=False)
        root_SR = sv[:, :r].sqrt()
        A_SDR = (U[..., :r] * root_SR[:, None]).to(dtype).requires_grad_()
        B_SRK = (root_SR[..., None] * Vh[:, :r]).to(dtype).requires_grad_()
        return A_SDR, B_SRK, full.intercept_SK_.clone().to(dtype).requires_grad_()

    def decision_function(self, X_ND: Float[torch.Tensor, "N D"]) -> Float[torch.Tensor, "S N K"]:
        """Logits [S, N, K] ([S, N, 1] for binary problems)."""
        X = self._prepare(X_ND)
        V_SDK, c_SK = fold_standardisation(self.A_SDR_ @ self.B_SRK_, self.intercept_SK_, self.mu_SD_, self.sd_SD_)
        return shared_linear(X, V_SDK) + c_SK[:, None]

    def directions(self) -> Float[torch.Tensor, "S D K"]:
        """The rank-r weight matrix ``A B`` in the original activation basis."""
        self._check_fitted()
        return (self.A_SDR_ @ self.B_SRK_) / self.sd_SD_[..., None]


class MLPProbe(StackedProbe):
    """One-hidden-layer ReLU probe: ``relu(z W1 + b1) W2 + b2``; no ``directions()`` (not linear).

    ``batch_size=None`` trains full-batch; otherwise every epoch visits the rows that train any
    problem in a seeded random order, in shared minibatches (each problem's loss is the mean over its
    own training rows in the batch). Initialisations are per problem (``problem_keys``); the batch
    order depends on the union of the stack's training rows, so it is shared, and full-batch training
    makes a problem's fit independent of the rest of the stack.
    """

    kind = "mlp"

    def __init__(
        self,
        *,
        hidden: int = 64,
        weight_decay: float = 1e-2,
        epochs: int = 50,
        lr: float = 3e-3,
        batch_size: int | None = 256,
        standardize: bool = True,
        seed: int = 0,
        precision: str = "float32",
    ):
        if hidden < 1 or epochs < 1 or lr <= 0 or weight_decay < 0 or (batch_size is not None and batch_size < 1):
            raise ConfigError(
                f"MLP probe needs hidden >= 1, epochs >= 1, lr > 0, weight_decay >= 0, batch_size >= 1 or None; got "
                f"hidden={hidden}, epochs={epochs}, lr={lr}, weight_decay={weight_decay}, batch_size={batch_size}"
            )
        self.hidden = hidden
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.standardize = standardize
        self.seed = seed
        self.precision = precision

    def fit(
        self,
        X_ND: Float[torch.Tensor, "N D"],
        y_SN: Int[torch.Tensor, "S N"],
        train_SN: Bool[torch.Tensor, "S N"],
        n_classes: int,
        *,
        problem_keys: Sequence[str] | None = None,
    ) -> MLPProbe:
        """Fit S probes; probe s trains on rows ``train_SN[s]`` with labels ``y_SN[s]``."""
        p = check_problems(X_ND, y_SN, train_SN, n_classes, self.precision)
        self.mu_SD_, self.sd_SD_ = train_moments(p.X_ND, p.w_SN, self.standardize)
        S, D, H = p.y_SN.shape[0], p.X_ND.shape[1], self.hidden
        out = 1 if n_classes == 2 else n_classes
        seeds = problem_seeds(self.seed, "mlp-probe", S, problem_keys)
        # PyTorch's nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases.
        dt, dev = p.X_ND.dtype, p.X_ND.device
        self.W1_SDH_ = _stacked_init((D, H), D**-0.5, [derive_seed(s, "W1") for s in seeds], dt, dev).requires_grad_()
        self.b1_SH_ = _stacked_init((H,), D**-0.5, [derive_seed(s, "b1") for s in seeds], dt, dev).requires_grad_()
        self.W2_SHK_ = _stacked_init((H, out), H**-0.5, [derive_seed(s, "W2") for s in seeds], dt, dev).requires_grad_()
        self.b2_SK_ = _stacked_init((out,), H**-0.5, [derive_seed(s, "b2") for s in seeds], dt, dev).requires_grad_()
        self.shift_D_, self.n_classes_ = p.shift_D, n_classes
        self._train(p)
        for name in ("W1_SDH_", "b1_SH_", "W2_SHK_", "b2_SK_"):
            setattr(self, name, getattr(self, name).detach())
        self.complexity_ = dict(n_params=D * H + H + H * out + out, hidden=H)
        return self

    def _train(self, p) -> None:
        opt = torch.optim.AdamW(
            [
                dict(params=[self.W1_SDH_, self.W2_SHK_], weight_decay=self.weight_decay),
                dict(params=[self.b1_SH_, self.b2_SK_], weight_decay=0.0),
            ],
            lr=self.lr,
        )
        rows = torch.nonzero(p.w_SN.sum(0) > 0).flatten()
        batch = len(rows) if self.batch_size is None else min(self.batch_size, len(rows))
        gen = torch_generator(derive_seed(self.seed, "mlp-probe-batches"))
        losses = []
        with torch.enable_grad():
            for _ in range(self.epochs):
                # The batch order is drawn on the CPU (the same on every device), then indexes on X's device.
                order = rows[torch.randperm(len(rows), generator=gen, device="cpu").to(rows.device)]
                for lo in range(0, len(order), batch):
                    idx = order[lo : lo + batch]
                    logits = self._logits(p.X_ND[idx])
                    loss_S = masked_cross_entropy(logits, p.y_SN[:, idx], p.w_SN[:, idx])
                    opt.zero_grad()
                    loss_S.sum().backward()
                    opt.step()
                losses.append(loss_S.detach())
        self.final_loss_S_ = losses[-1]

    def _logits(self, X_ND: torch.Tensor) -> torch.Tensor:
        W1, b1 = fold_standardisation(self.W1_SDH_, self.b1_SH_, self.mu_SD_, self.sd_SD_)
        hidden_SNH = torch.relu(shared_linear(X_ND, W1) + b1[:, None])
        return torch.bmm(hidden_SNH, self.W2_SHK_) + self.b2_SK_[:, None]

    def decision_function(self, X_ND: Float[torch.Tensor, "N D"]) -> Float[torch.Tensor, "S N K"]:
        """Logits [S, N, K] ([S, N, 1] for binary problems)."""
        with torch.no_grad():
            return self._logits(self._prepare(X_ND))
