"""Reading and writing directions for a set of concepts, and their geometry. Pure maths, no model, no I/O.

A *concept* is one binary question about an example (class k of a K-class task one-vs-rest, or the
positive class of a binary task). For C concepts at one hook the readers are linear probes
``r_c(x) = p_c . x + b_c``; stacking their weights gives the reading matrix ``P`` [C, D].

Reading is not writing when the readers are not orthogonal (Park, Choe and Veitch, 2023, "The
Linear Representation Hypothesis and the Geometry of Large Language Models", sec. 3; the
dual-basis argument of Elhage et al., 2022, "Toy Models of Superposition"): adding the probe
direction ``p_k`` itself (the *transpose* writer, column k of ``P^T``) moves every reader j by
``p_j . p_k``, while the column k of the pseudo-inverse, ``u_k = P^+ e_k``, satisfies ``P u_k = e_k``:
it moves reader k by one logit and leaves the others unchanged (the *dual basis*). The more ``P``'s
rows deviate from orthogonality, the further ``u_k`` turns away from ``p_k``.

Shapes: S seeds (each with its own train/test split), C concepts, D activation width, N rows.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from jaxtyping import Bool, Float

from auditkit.errors import DataError
from auditkit.methods.probes import make_probe
from auditkit.methods.probes import registry as probe_kinds
from auditkit.metrics.classification import auroc
from auditkit.seeding import derive_seed, torch_generator

READERS = probe_kinds.names(lambda k: k.reader)
"""Probe kinds fitted as readers (the registered kinds flagged :attr:`~auditkit.methods.probes.registry.ProbeKind.
reader`, taken at import: logistic, mass-mean, lda); their directions are candidate steering vectors too."""
DIRECTION_KINDS = (*READERS, "dual", "random")
"""Every direction compared: the three probe directions, the dual basis of the logistic readers, and
random directions (the control; matched in norm at every dose)."""


def concept_problems(labels_NC: np.ndarray, is_test_SN: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Stacked binary problems for every (seed, concept): labels and training masks, each [S*C, N].

    ``labels_NC`` holds 1 (concept present), 0 (absent) or -1 (row not labelled for this concept, e.g.
    a text of another dataset); a row trains problem (s, c) when it is labelled for c and not in
    seed s's test split. Problems are ordered seed-major: index ``s * C + c``.
    """
    S, C = is_test_SN.shape[0], labels_NC.shape[1]
    y_PN = np.repeat(np.clip(labels_NC.T, 0, 1)[None], S, axis=0).reshape(S * C, -1)
    train_PN = ((labels_NC.T >= 0)[None] & ~is_test_SN[:, None]).reshape(S * C, -1)
    for p in np.flatnonzero(np.array([len(np.unique(y_PN[p][train_PN[p]])) < 2 for p in range(S * C)])):
        raise DataError(f"concept {p % C} has one class only in seed {p // C}'s training rows: use more examples")
    return torch.as_tensor(y_PN), torch.as_tensor(train_PN)


def fit_readers(
    X_ND: Float[torch.Tensor, "N D"],
    labels_NC: np.ndarray,
    is_test_SN: np.ndarray,
    *,
    probe_C: float = 1.0,
    kinds: tuple[str, ...] = READERS,
) -> dict[str, Float[torch.Tensor, "S C D"]]:
    """Weights of a logistic, a mass-mean and an LDA probe (``kinds``) for every (seed, concept), [S, C, D].

    Each is the probe's direction in the raw activation basis (``directions()``), so ``x . w`` is its
    logit up to an offset. All S*C problems of one kind are fitted as one stack.
    """
    y_PN, train_PN = concept_problems(labels_NC, is_test_SN)
    S, C = is_test_SN.shape[0], labels_NC.shape[1]
    out = {}
    for kind in kinds:
        probe = make_probe(kind, **probe_kinds.REGISTRY[kind].hyperparameters(C=probe_C)).fit(X_ND, y_PN, train_PN, 2)
        out[kind] = probe.directions()[..., 0].double().reshape(S, C, -1)
    return out


def dual_basis(P_SCD: Float[torch.Tensor, "S C D"]) -> Float[torch.Tensor, "S C D"]:
    """Rows ``u_k`` = columns of the Moore-Penrose pseudo-inverse of each seed's reading matrix, so
    that ``P u_k = e_k`` (exactly when P has full row rank): a unit move of reader k only."""
    return torch.linalg.pinv(P_SCD.double()).transpose(1, 2)


def random_directions(S: int, C: int, D: int, seed: int) -> Float[torch.Tensor, "S C D"]:
    """Uniformly random unit directions, one per (seed, concept), each from its own derived seed."""
    rows = []
    for s in range(S):
        for c in range(C):
            gen = torch_generator(derive_seed(seed, "steering-random", s, c))
            v = torch.randn(D, generator=gen, dtype=torch.float64)
            rows.append(v / v.norm())
    return torch.stack(rows).reshape(S, C, D)


def unit(V: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit norm along the last axis."""
    return V / V.norm(dim=-1, keepdim=True).clamp_min(1e-30)


def class_gaps(
    X_ND: Float[torch.Tensor, "N D"],
    W_SCD: Float[torch.Tensor, "S C D"],
    labels_NC: np.ndarray,
    rows_SN: Bool[np.ndarray, "S N"],
) -> Float[torch.Tensor, "S C"]:
    """Mean of ``x . w_sc`` over rows where concept c is present minus where it is absent, among
    ``rows_SN[s]``: the class-mean gap of each readout, the unit readout shifts are reported in."""
    S, C, _ = W_SCD.shape
    proj_NSC = torch.einsum("nd,scd->nsc", X_ND.double(), W_SCD.double())
    gaps = torch.zeros(S, C, dtype=torch.float64)
    for s in range(S):
        for c in range(C):
            on = torch.as_tensor(rows_SN[s] & (labels_NC[:, c] == 1))
            off = torch.as_tensor(rows_SN[s] & (labels_NC[:, c] == 0))
            gaps[s, c] = proj_NSC[on, s, c].mean() - proj_NSC[off, s, c].mean()
    return gaps


def reading_auroc(
    X_ND: Float[torch.Tensor, "N D"],
    V_SCD: Float[torch.Tensor, "S C D"],
    labels_NC: np.ndarray,
    is_test_SN: np.ndarray,
) -> Float[torch.Tensor, "S C"]:
    """Held-out AUROC of the projection on each direction as a reader of its concept (0.5 = chance)."""
    S, C, _ = V_SCD.shape
    out = torch.full((S, C), float("nan"), dtype=torch.float64)
    proj_NSC = torch.einsum("nd,scd->nsc", X_ND.double(), V_SCD.double())
    for s in range(S):
        for c in range(C):
            rows = is_test_SN[s] & (labels_NC[:, c] >= 0)
            out[s, c] = auroc(torch.as_tensor(labels_NC[rows, c]), proj_NSC[torch.as_tensor(rows), s, c])
    return out


class ReaderGeometry(NamedTuple):
    """How far a reading matrix is from orthogonal, per seed."""

    cos_SCC: torch.Tensor
    """Cosines between its normalised rows."""
    max_offdiag_S: torch.Tensor
    """Largest off-diagonal |cos|."""
    mean_offdiag_S: torch.Tensor
    """Mean off-diagonal |cos|."""
    condition_S: torch.Tensor
    """Condition number (largest / smallest singular value) of the row-normalised matrix; 1 when orthogonal."""


def reader_geometry(P_SCD: Float[torch.Tensor, "S C D"]) -> ReaderGeometry:
    """Orthogonality of each seed's reading matrix (rows normalised, so scale does not count)."""
    Q = unit(P_SCD.double())
    cos = Q @ Q.transpose(1, 2)
    C = cos.shape[-1]
    off = ~torch.eye(C, dtype=torch.bool)
    abs_off = cos.abs()[:, off]
    sv = torch.linalg.svdvals(Q)
    if C == 1:
        return ReaderGeometry(cos, torch.zeros(len(Q)), torch.zeros(len(Q)), torch.ones(len(Q)))
    return ReaderGeometry(cos, abs_off.amax(1), abs_off.mean(1), sv[:, 0] / sv[:, -1].clamp_min(1e-30))


def readout_shifts(
    P_SCD: Float[torch.Tensor, "S C D"], delta_SD: Float[torch.Tensor, "S D"], gaps_SC: Float[torch.Tensor, "S C"]
) -> Float[torch.Tensor, "S C"]:
    """Shift of every reader j caused by adding ``delta`` at the readers' own hook, ``p_j . delta``, in
    units of reader j's class-mean gap (exact: the readout is linear in the activation)."""
    return torch.einsum("scd,sd->sc", P_SCD.double(), delta_SD.double()) / gaps_SC


def off_on(shift_C: torch.Tensor, target: int) -> tuple[float, float, float]:
    """(on-target shift, mean |off-target shift|, their ratio): the surgicality of one intervention;
    the ratio is 0 for a perfectly surgical direction."""
    on = float(shift_C[target])
    others = [float(abs(shift_C[j])) for j in range(len(shift_C)) if j != target]
    off = float(np.mean(others)) if others else 0.0
    return on, off, off / abs(on) if abs(on) > 1e-12 else float("nan")
