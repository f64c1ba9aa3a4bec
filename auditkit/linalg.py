"""Random matrices shared by the weight controls and the dictionary controls, and the cone projection that keeps
the soft-frozen SAE decoder near its initialisation."""

from __future__ import annotations

import math

import torch
from jaxtyping import Float


def haar_orthonormal(
    n: int, k: int, generator: torch.Generator, batch: tuple[int, ...] = ()
) -> Float[torch.Tensor, "*b n k"]:
    """[*batch, n, k] matrices (k <= n) with orthonormal columns, Haar-distributed, float64.

    QR of a Gaussian matrix with the signs of R's diagonal folded into Q (Mezzadri, 2007, "How to
    generate random matrices from the classical compact groups"): without the sign fix, plain QR is
    not uniformly distributed. Drawn on the generator's device.
    """
    if k > n:
        raise ValueError(f"haar_orthonormal needs k <= n, got n={n}, k={k}")
    g = torch.randn(*batch, n, k, generator=generator, dtype=torch.float64, device=generator.device)
    q, r = torch.linalg.qr(g, mode="reduced")
    del g  # one float64 copy of an [n, k] matrix fewer while the signs are folded in (the embedding's: 226 MB)
    d = torch.diagonal(r, dim1=-2, dim2=-1)
    signs = torch.where(d < 0, -1.0, 1.0).to(torch.float64)
    return q.mul_(signs[..., None, :])


def spectrum_matched(W: Float[torch.Tensor, "*b m n"], generator: torch.Generator) -> Float[torch.Tensor, "*b m n"]:
    """U' S V'^T: the singular values S of ``W`` with Haar-random singular vectors U', V'.

    Leading dimensions are a batch (e.g. attention heads), each matrix treated on its own.
    Computed in float64 and cast back, so the singular values match to ~1e-7 relative in float32. The singular
    vectors are drawn on the generator's device (a CPU generator: the same draw wherever ``W`` lives), the result
    is on ``W``'s device.
    """
    *batch, m, n = W.shape
    k = min(m, n)
    s = singular_values(W)
    u = haar_orthonormal(m, k, generator, tuple(batch)).to(s.device)
    v = haar_orthonormal(n, k, generator, tuple(batch)).to(s.device)
    return (u.mul_(s[..., None, :]) @ v.transpose(-2, -1)).to(W.dtype)  # in place: the same products, one buffer fewer


def singular_values(W: Float[torch.Tensor, "*b m n"]) -> Float[torch.Tensor, "*b k"]:
    """Singular values in descending order, float64, from the eigenvalues of the smaller Gram matrix.

    3x faster than ``torch.linalg.svdvals`` on a 576 x 1536 matrix; in float64 the error of a singular
    value s is ~1e-16 s_max^2 / s, far below float32 resolution for any weight matrix whose condition
    number is under ~1e4 (trained transformers' are), and the spectrum is only ever cast to float32.
    """
    X = W.detach().to(torch.float64)
    gram = X @ X.transpose(-2, -1) if X.shape[-2] <= X.shape[-1] else X.transpose(-2, -1) @ X
    return torch.linalg.eigvalsh(gram).clamp_min(0).sqrt().flip(-1)


def cosine_floor(
    W: Float[torch.Tensor, "m n"], anchor: Float[torch.Tensor, "m n"], min_cosine: float
) -> Float[torch.Tensor, "m n"]:
    """Each row of ``W`` rotated, norm kept, into the cone of vectors at cosine >= ``min_cosine`` to its row of
    ``anchor``: rows already inside are unchanged, the others move in the plane of (row, anchor row) to the cone's
    edge, the nearest direction on it. A row opposite its anchor (no such plane) becomes the anchor's direction.
    """
    a = anchor / anchor.norm(dim=1, keepdim=True).clamp_min(1e-12)
    norm = W.norm(dim=1, keepdim=True)
    along = (W * a).sum(1, keepdim=True)
    perp = W - along * a
    perp = perp - (perp * a).sum(1, keepdim=True) * a  # a second pass: orthogonal to rounding
    perp_norm = perp.norm(dim=1, keepdim=True)
    edge = min_cosine * a + math.sqrt(max(0.0, 1 - min_cosine**2)) * perp / perp_norm.clamp_min(1e-12)
    edge = torch.where(perp_norm > 1e-4 * norm, edge, a)  # (anti-)parallel to its anchor up to rounding
    outside = along < min_cosine * norm
    return torch.where(outside, norm * edge, W)
