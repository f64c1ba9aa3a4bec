"""Curves and comparisons that run solvers: FVU against L0 over a sweep, and the amortisation gap.

- **Amortisation gap** (O'Neill, Ye & Lewis 2024, "Compute optimal inference and provable
  amortisation gap in sparse autoencoders"): how much better pursuit with an SAE's own decoder
  reconstructs than the SAE's one-shot encoder at the same L0. L0 is matched *per row*: OMP selects
  exactly as many atoms for row n as the SAE's encoder made non-zero on row n (``match="row"``), so
  the two sides spend the same atoms on every row; ``match="mean"`` uses one k, the SAE's mean L0
  rounded, for all rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from jaxtyping import Float

from auditkit.errors import ConfigError, DataError
from auditkit.methods.pursuit.dictionaries import from_sae
from auditkit.methods.pursuit.greedy import gradient_pursuit, omp
from auditkit.methods.pursuit.lasso import fista_path
from auditkit.metrics.sparse_coding import fvu, support_stats


@dataclass(frozen=True)
class CurvePoint:
    method: str
    """``omp``, ``gradient-pursuit`` or ``fista``."""
    param: float
    """k for the greedy methods, alpha for FISTA."""
    mean_l0: float
    fvu: float


def fvu_l0_curve(
    X_ND: Float[torch.Tensor, "N D"],
    W_FD: Float[torch.Tensor, "F D"],
    *,
    method: Literal["omp", "gradient-pursuit", "fista"] = "omp",
    ks: list[int] | None = None,
    alphas: list[float] | None = None,
    **kwargs: Any,
) -> list[CurvePoint]:
    """FVU against mean L0 over a sweep of k (greedy methods) or a decreasing alpha path (FISTA).

    The FISTA sweep warm-starts each alpha from the previous one (:func:`fista_path`).
    """
    if method == "fista":
        if not alphas:
            raise ConfigError("fvu_l0_curve(method='fista') needs alphas (decreasing)")
        results = fista_path(X_ND, W_FD, alphas, **kwargs)
        params: list[float] = list(alphas)
    elif method in ("omp", "gradient-pursuit"):
        if not ks:
            raise ConfigError(f"fvu_l0_curve(method={method!r}) needs ks")
        solve = omp if method == "omp" else gradient_pursuit
        results = [solve(X_ND, W_FD, k, **kwargs) for k in ks]
        params = [float(k) for k in ks]
    else:
        raise ConfigError(f"unknown pursuit method {method!r}: use omp, gradient-pursuit or fista")
    W = W_FD.to(X_ND.dtype)
    return [
        CurvePoint(method, p, support_stats(r.codes_NF).mean_l0, fvu(X_ND, r.codes_NF @ W))
        for p, r in zip(params, results)
    ]


@dataclass(frozen=True)
class AmortisationGap:
    fvu_sae: float
    """FVU of the SAE's own encode -> decode."""
    fvu_pursuit: float
    """FVU of OMP with the SAE's decoder (and b_dec) at the matched L0."""
    l0_sae: float
    """Mean L0 of the SAE's codes."""
    l0_pursuit: float
    """Mean L0 of the pursuit codes."""

    @property
    def gap(self) -> float:
        """fvu_sae - fvu_pursuit: > 0 when the encoder leaves reconstruction on the table."""
        return self.fvu_sae - self.fvu_pursuit


def amortisation_gap(
    sae: Any, X_ND: Float[torch.Tensor, "N D"], *, match: Literal["row", "mean"] = "row", batch_size: int = 1024
) -> AmortisationGap:
    """Compare an SAE's encoder with OMP on its decoder at matched L0 (see the module docstring).

    ``sae`` has ``encode``/``decode`` (a sae_lens SAE) or ``W_enc`` [D, F], ``b_enc``, ``W_dec`` [F, D],
    ``b_dec`` (a ReLU SAE). Pursuit codes ``x - b_dec`` against the normalised decoder rows and adds
    ``b_dec`` back, the SAE's own affine decoder; input normalisation inside an SAE is not reproduced.
    """
    if match not in ("row", "mean"):
        raise ConfigError(f"amortisation_gap match must be 'row' or 'mean', got {match!r}")
    X = X_ND.to(torch.float32)
    codes_NF, X_sae = _sae_forward(sae, X)
    l0_N = (codes_NF != 0).sum(1)
    dic = from_sae(sae)
    b_dec = getattr(sae, "b_dec", None)
    b_D = torch.zeros(X.shape[1]) if b_dec is None else b_dec.detach().to(X.dtype)
    k = l0_N if match == "row" else int(round(float(l0_N.to(torch.float64).mean())))
    k = torch.as_tensor(k).clamp(max=min(dic.W_FD.shape))
    res = omp(X - b_D, dic.W_FD.to(X.dtype), k, batch_size=batch_size)
    X_pur = res.codes_NF @ dic.W_FD.to(X.dtype) + b_D
    return AmortisationGap(
        fvu_sae=fvu(X, X_sae),
        fvu_pursuit=fvu(X, X_pur),
        l0_sae=float(l0_N.to(torch.float64).mean()),
        l0_pursuit=support_stats(res.codes_NF).mean_l0,
    )


def _sae_forward(sae: Any, X_ND: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        if callable(getattr(sae, "encode", None)) and callable(getattr(sae, "decode", None)):
            codes = sae.encode(X_ND)
            return codes.detach().to(X_ND.dtype), sae.decode(codes).detach().to(X_ND.dtype)
        try:
            names = ("W_enc", "b_enc", "W_dec", "b_dec")
            W_enc, b_enc, W_dec, b_dec = (getattr(sae, n).detach().to(X_ND.dtype) for n in names)
        except AttributeError as e:
            raise DataError(
                f"{type(sae).__name__} has neither encode/decode nor W_enc, b_enc, W_dec, b_dec: {e}"
            ) from None
        codes = torch.relu((X_ND - b_dec) @ W_enc + b_enc)
        return codes, codes @ W_dec + b_dec
