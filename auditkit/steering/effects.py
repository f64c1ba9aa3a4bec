"""Doses and effects: how far each direction is pushed, and what the push did. Pure maths, no I/O.

Doses (``alpha``) come in one of two units:

* ``norm``: the added vector has length ``alpha`` times the mean activation norm at the hook (over
  the positions steered), the same for every direction, random ones included (matched norm);
* ``gap``: the vector moves the target concept's logistic readout at the hook by ``alpha`` times
  that readout's class-mean gap (its projected class-mean difference), so every direction has the
  same on-target effect where it is written and differs only in side effects; a random direction
  gets the dual vector's length at the same dose (it barely moves any readout).

Effects of one intervention (direction, concept k, dose) on one seed's held-out texts, each readout
in units of its own class-mean gap: ``same_on``/``same_off``/``same_ratio`` at the hook (exact:
``p_j . delta``), ``later_on``/``later_off``/``later_ratio`` from readers fitted at the later hook
(measured), ``later_selective`` = on - off there, ``kl`` of the next-token distribution at the last
token to the clean one, ``label_logodds`` (change of log p(word_k) - logsumexp_j!=k log p(word_j) over
the concepts' label words) and ``heldout_dce`` (change of mean next-token cross-entropy, nats, on
held-out prose steered at every position).
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float

from auditkit.errors import ConfigError
from auditkit.steering.directions import off_on, readout_shifts, unit

MIN_ALIGNMENT = 0.02
"""In ``gap`` units a direction whose cosine with the target reader is below this would need an
unbounded push to move it; its doses are left out (NaN) rather than blown up."""


def step_vectors(
    dirs: dict[str, Float[torch.Tensor, "S C D"]],
    P_SCD: Float[torch.Tensor, "S C D"],
    gaps_SC: Float[torch.Tensor, "S C"],
    alphas: tuple[float, ...],
    scale: str,
    mean_norm: float,
) -> dict[str, Float[torch.Tensor, "S C A D"]]:
    """The vector added for every direction kind, seed, concept and dose."""
    alpha_A = torch.as_tensor(alphas, dtype=torch.float64)
    units = {kind: unit(V.double()) for kind, V in dirs.items()}
    if scale == "norm":
        return {kind: alpha_A[None, None, :, None] * mean_norm * U[:, :, None] for kind, U in units.items()}
    if scale != "gap":
        raise ConfigError(f"scale {scale!r} unknown: use norm or gap")
    out = {}
    for kind, U in units.items():
        if kind == "random":
            continue
        along_SC = (P_SCD.double() * U).sum(-1)
        aligned = along_SC.abs() >= MIN_ALIGNMENT * P_SCD.double().norm(dim=-1)
        length_SC = torch.where(aligned, gaps_SC / along_SC, torch.full_like(along_SC, math.nan))
        out[kind] = alpha_A[None, None, :, None] * (length_SC[..., None] * U)[:, :, None]
    if "random" in units:
        ref = out["dual"] if "dual" in out else next(iter(out.values()))
        out["random"] = ref.norm(dim=-1, keepdim=True) * units["random"][:, :, None]
    return out


def label_logodds(label_lp_RK: Float[torch.Tensor, "R K"], target: int) -> torch.Tensor:
    """log p(word_target) - logsumexp of the other label words' log-probabilities, per row."""
    others = [j for j in range(label_lp_RK.shape[1]) if j != target]
    return label_lp_RK[:, target] - torch.logsumexp(label_lp_RK[:, others], dim=1)


def effect_values(
    *,
    target: int,
    delta_D: torch.Tensor,
    P_CD: torch.Tensor,
    gaps_C: torch.Tensor,
    later_shift_C: torch.Tensor,
    kl: float,
    dce: float,
    logodds: float | None,
) -> dict[str, float]:
    """Every effect metric of one intervention (see the module docstring)."""
    same_C = readout_shifts(P_CD[None], delta_D[None], gaps_C[None])[0]
    s_on, s_off, s_ratio = off_on(same_C, target)
    l_on, l_off, l_ratio = off_on(later_shift_C, target)
    out = dict(
        step_norm=float(delta_D.norm()),
        same_on=s_on,
        same_off=s_off,
        same_ratio=s_ratio,
        later_on=l_on,
        later_off=l_off,
        later_ratio=l_ratio,
        later_selective=l_on - l_off,
        kl=kl,
        heldout_dce=dce,
    )
    if logodds is not None:
        out["label_logodds"] = logodds
    return out


def later_shifts(
    later_RD: torch.Tensor, clean_later_RD: torch.Tensor, W_CD: torch.Tensor, gaps_C: torch.Tensor
) -> Float[torch.Tensor, " C"]:
    """Mean shift of every later-hook reader over the rows, in units of its class-mean gap."""
    return ((later_RD.double() - clean_later_RD.double()) @ W_CD.double().T).mean(0) / gaps_C
