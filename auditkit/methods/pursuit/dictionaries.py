"""Dictionaries for sparse coding: real ones read off a model or an SAE, and random controls.

A :class:`Dictionary` holds ``W_FD`` [F, D] with unit-norm rows (atoms), which is what
:mod:`auditkit.methods.pursuit.greedy` requires: the lasso penalty and OMP's greedy selection both compare
atoms by their correlation with the residual, so an atom's norm would otherwise act as a per-atom
weight. Codes against the unit-norm atoms reconstruct the same span; divide a code by the original
row norm (``Dictionary.row_norms_F``) to express it against the raw rows.

Controls keep the shape and return the same type (a control takes a ``Dictionary`` and returns one):

- ``gaussian_control``: i.i.d. Gaussian rows, normalised. Same F and D, no structure at all.
- ``spectrum_matched_control``: the real dictionary's singular values with Haar-random singular
  vectors (:func:`auditkit.linalg.spectrum_matched`), then rows normalised. The spectrum matched is
  that of the *normalised* real dictionary, the one pursuit actually uses, and normalising comes
  after matching because a Haar rotation does not keep row norms: the final row-normalisation moves
  the singular values a little (rows of U S V^T have norms concentrated near 1 when F is large, so
  the change is small; tests bound it), and unit rows are what makes the control comparable under
  the same alpha / k. It answers "is the reconstruction due to *which* directions the dictionary
  holds, or only to how much of the space it covers, and how anisotropically?".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float

from auditkit.errors import DataError
from auditkit.linalg import spectrum_matched
from auditkit.seeding import derive_seed, torch_generator
from auditkit.types import REAL

_ZERO_NORM = 1e-12


@dataclass(frozen=True, kw_only=True)
class Dictionary:
    """A sparse-coding dictionary with unit-norm rows, and where it came from."""

    W_FD: Float[torch.Tensor, "F D"]
    """Atoms, one unit-norm row each."""
    row_norms_F: Float[torch.Tensor, " F"]
    """Norm of every row before normalisation (all ones for controls)."""
    source: str
    """``sae``, ``embed``, ``unembed``, ``probe`` or ``matrix``."""
    control: str = REAL
    """``none`` for a real dictionary, else ``gaussian`` or ``spectrum-matched``."""
    seed: int | None = None
    """Seed of a control's randomness."""

    @property
    def n_atoms(self) -> int:
        return int(self.W_FD.shape[0])

    @property
    def d(self) -> int:
        return int(self.W_FD.shape[1])


def normalize_rows(W_FD: Float[torch.Tensor, "F D"]) -> Float[torch.Tensor, "F D"]:
    """Rows divided by their norms; a zero row raises (it has no direction to keep)."""
    norms = W_FD.norm(dim=1)
    if bool((norms <= _ZERO_NORM).any()):
        i = int((norms <= _ZERO_NORM).nonzero()[0])
        raise DataError(f"dictionary row {i} has zero norm: drop it before building a dictionary")
    return W_FD / norms[:, None]


def from_matrix(W_FD: Float[torch.Tensor, "F D"], source: str = "matrix") -> Dictionary:
    """A dictionary from any [F, D] matrix of directions (rows normalised)."""
    W = W_FD.detach()
    if W.dtype not in (torch.float32, torch.float64):
        W = W.to(torch.float32)  # half-precision decoders are upcast: pursuit needs exact unit norms
    if W.ndim != 2 or W.shape[0] == 0:
        raise DataError(f"a dictionary needs a non-empty [F, D] matrix, got shape {tuple(W_FD.shape)}")
    if not bool(torch.isfinite(W).all()):
        raise DataError(f"{source} dictionary contains NaN/inf")
    return Dictionary(W_FD=normalize_rows(W), row_norms_F=W.norm(dim=1), source=source)


def from_sae(sae: Any) -> Dictionary:
    """The decoder of an SAE: any object with ``W_dec`` [F, D] (a sae_lens ``SAE``, a dict-like)."""
    W_dec = sae["W_dec"] if isinstance(sae, dict) else getattr(sae, "W_dec", None)
    if W_dec is None:
        raise DataError(f"{type(sae).__name__} has no W_dec: pass an SAE with a decoder [F, D]")
    return from_matrix(W_dec, "sae")


def from_embedding(W_E_VD: Float[torch.Tensor, "V D"]) -> Dictionary:
    """Token embeddings W_E [V, D] (``embedding_matrices(model).W_E_VD``) as atoms."""
    return from_matrix(W_E_VD, "embed")


def from_unembedding(W_U_DV: Float[torch.Tensor, "D V"]) -> Dictionary:
    """Unembedding *columns* W_U [D, V] as atoms: the direction that raises each token's logit."""
    return from_matrix(W_U_DV.T, "unembed")


def from_probes(directions_KD: Float[torch.Tensor, "K D"]) -> Dictionary:
    """Probe directions [K, D] (e.g. ``LogisticProbe.directions()`` reshaped) as atoms."""
    return from_matrix(directions_KD, "probe")


def gaussian_control(real: Dictionary, seed: int) -> Dictionary:
    """i.i.d. N(0, 1) rows of the real dictionary's shape, normalised (uniform on the sphere)."""
    gen = torch_generator(derive_seed(seed, "dictionary-control", "gaussian", real.source))
    W = torch.randn(real.n_atoms, real.d, generator=gen, dtype=torch.float64)
    return _control(real, W, "gaussian", seed)


def spectrum_matched_control(real: Dictionary, seed: int) -> Dictionary:
    """The real (normalised) dictionary's singular values, Haar-random singular vectors, rows normalised."""
    gen = torch_generator(derive_seed(seed, "dictionary-control", "spectrum-matched", real.source))
    W = spectrum_matched(real.W_FD.to(torch.float64), gen)
    return _control(real, W, "spectrum-matched", seed)


def _control(real: Dictionary, W: torch.Tensor, name: str, seed: int) -> Dictionary:
    W = normalize_rows(W).to(real.W_FD.dtype)
    return dataclasses.replace(
        real, W_FD=W, row_norms_F=torch.ones(real.n_atoms, dtype=W.dtype), control=name, seed=seed
    )


CONTROLS = {"gaussian": gaussian_control, "spectrum-matched": spectrum_matched_control}
"""Dictionary controls by name, each ``(real: Dictionary, seed: int) -> Dictionary``."""
