"""Random matrices shared by the weight controls and the dictionary controls."""

from __future__ import annotations

import torch
from jaxtyping import Float


def haar_orthonormal(n: int, k: int, generator: torch.Generator, batch: tuple[int, ...] = ()) -> Float[torch.Tensor, "*b n k"]:
    """[*batch, n, k] matrices (k <= n) with orthonormal columns, Haar-distributed, float64.

    QR of a Gaussian matrix with the signs of R's diagonal folded into Q (Mezzadri, 2007, "How to
    generate random matrices from the classical compact groups"): without the sign fix, plain QR is
    not uniformly distributed.
    """
    if k > n:
        raise ValueError(f"haar_orthonormal needs k <= n, got n={n}, k={k}")
    g = torch.randn(*batch, n, k, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(g, mode="reduced")
    d = torch.diagonal(r, dim1=-2, dim2=-1)
    signs = torch.where(d < 0, -1.0, 1.0).to(torch.float64)
    return q * signs[..., None, :]


def spectrum_matched(W: Float[torch.Tensor, "*b m n"], generator: torch.Generator) -> Float[torch.Tensor, "*b m n"]:
    """U' S V'^T: the singular values S of ``W`` with Haar-random singular vectors U', V'.

    Leading dimensions are a batch (e.g. attention heads), each matrix treated on its own.
    Computed in float64 and cast back, so the singular values match to ~1e-7 relative in float32.
    """
    *batch, m, n = W.shape
    k = min(m, n)
    s = torch.linalg.svdvals(W.detach().to(torch.float64))
    u = haar_orthonormal(m, k, generator, tuple(batch))
    v = haar_orthonormal(n, k, generator, tuple(batch))
    return ((u * s[..., None, :]) @ v.transpose(-2, -1)).to(W.dtype)
