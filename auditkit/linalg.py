"""Random matrices shared by the weight controls and the dictionary controls."""

from __future__ import annotations

import torch
from jaxtyping import Float


def haar_orthonormal(n: int, k: int, generator: torch.Generator) -> Float[torch.Tensor, "n k"]:
    """An [n, k] matrix (k <= n) with orthonormal columns, Haar-distributed.

    QR of a Gaussian matrix with the signs of R's diagonal folded into Q (Mezzadri, 2007, "How to
    generate random matrices from the classical compact groups"): without the sign fix, plain QR is
    not uniformly distributed.
    """
    if k > n:
        raise ValueError(f"haar_orthonormal needs k <= n, got n={n}, k={k}")
    g = torch.randn(n, k, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(g, mode="reduced")
    return q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, torch.ones(()))[None, :]


def spectrum_matched(W: Float[torch.Tensor, "m n"], generator: torch.Generator) -> Float[torch.Tensor, "m n"]:
    """U' S V'^T: the singular values S of ``W`` with Haar-random singular vectors U', V'.

    Computed in float64 and cast back, so the singular values match to ~1e-7 relative in float32.
    """
    m, n = W.shape
    k = min(m, n)
    s = torch.linalg.svdvals(W.detach().to(torch.float64))
    u = haar_orthonormal(m, k, generator)
    v = haar_orthonormal(n, k, generator)
    return ((u * s[None, :]) @ v.T).to(W.dtype)
