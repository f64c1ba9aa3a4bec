"""Baseline dictionaries for an SAE: what a dictionary nobody trained, or one that is not learned, scores.

Each baseline is a sae-lens inference SAE, so every SAE metric (reconstruction, sparsity, splice, token
entropy, k-sparse probing) scores it through the same code as a trained one:

* ``untrained``: :func:`auditkit.methods.sae.train.initial_sae`, the SAE training starts from;
* ``frozen-decoder``: :func:`auditkit.methods.sae.train.train_sae` with the decoder fixed at
  :func:`frozen_dictionary` (the trained decoder's singular values, Haar-random singular vectors);
* ``soft-frozen-decoder``: trained with every decoder row kept at cosine >= :data:`SOFT_FROZEN_COSINE` to its
  random initialisation (Korznikov et al., 2026's soft-frozen decoder);
* ``frozen-encoder``: trained with the encoder fixed at its random initialisation (decoder, biases and any
  threshold trained; Korznikov et al., 2026);
* ``pca``: :func:`pca_sae`, the top principal directions of the training rows;
* ``identity``: :func:`identity_sae`, the raw neuron basis.

PCA and identity have no learned encoder: a coefficient is a projection onto an atom, and the sparsity
rule is TopK on its magnitude (signed coefficients are the natural reading of a basis). An SAE's latents
are non-negative, so each direction v is two atoms, +v and -v, behind a ReLU: exactly one of a pair can be
positive, and TopK over the pairs keeps the k coefficients of largest |value| with their signs. Both
centre on the training rows' mean (their decoder bias), as an SAE's decoder bias does.

:func:`reference_ev` scores the PCA and identity codes on *any* arm's activations at that arm's SAE's k, so
every arm's explained variance can be read relative to what a basis of its own activations explains
(:func:`relative_ev`): a gap in raw explained variance between arms can say only that one arm's activations
have lower rank.
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Float

from auditkit.errors import ConfigError, DataError
from auditkit.linalg import spectrum_matched
from auditkit.methods.sae.metrics import encode_decode, explained_variance
from auditkit.methods.sae.train import SAEConfig, initial_sae, train_sae
from auditkit.seeding import derive_seed, torch_generator

BASELINE_KINDS = ("untrained", "frozen-decoder", "soft-frozen-decoder", "frozen-encoder", "pca", "identity")
"""The baselines, by the name :func:`auditkit.audit.options.SAE_BASELINES` maps each control to."""
SOFT_FROZEN_COSINE = 0.8
"""The soft-frozen decoder's floor: each row's cosine to its random initialisation (Korznikov et al., 2026)."""


def frozen_dictionary(W_dec_FD: Float[torch.Tensor, "F D"], *, seed: int) -> Float[torch.Tensor, "F D"]:
    """A random dictionary with the spectrum of ``W_dec_FD``: U' S V'^T (:func:`auditkit.linalg.spectrum_matched`).

    It covers the activation space as anisotropically as the trained decoder does, so a gap to it is about
    which directions training chose, not how much of the space a dictionary of that shape spans.
    """
    return spectrum_matched(W_dec_FD.detach().float().cpu(), torch_generator(seed))


def _signed_topk_sae(directions_MD: torch.Tensor, mean_D: torch.Tensor, k: int) -> Any:
    """A sae-lens TopK SAE with atoms [+V; -V] (F = 2M), b_dec = ``mean_D``, encoder = V^T (projection), on the
    directions' device."""
    from sae_lens import TopKSAE, TopKSAEConfig

    M, D = directions_MD.shape
    atoms_FD = torch.cat([directions_MD, -directions_MD]).float()
    cfg = TopKSAEConfig(d_in=D, d_sae=2 * M, k=min(k, 2 * M), dtype="float32", device=str(directions_MD.device))
    sae = TopKSAE(cfg)
    with torch.no_grad():
        sae.W_dec.copy_(atoms_FD)
        sae.W_enc.copy_(atoms_FD.T)
        sae.b_enc.zero_()
        sae.b_dec.copy_(mean_D.float())
    return sae.eval()


CHUNK_ROWS = 262_144
"""Rows per block of :func:`pca_sae`'s covariance above which it is summed block by block (at or below it, one
product: the numbers of every audit-sized run are unchanged)."""


@torch.no_grad()
def pca_sae(acts_ND: Float[torch.Tensor, "N D"], *, width: int, k: int) -> Any:
    """The top min(width // 2, D) principal directions of ``acts_ND`` as a signed TopK dictionary.

    F = 2 * min(width // 2, D) atoms (each direction signed, see the module docstring): a dictionary of
    ``width`` atoms spans at most D directions, so F is capped at 2D. Principal directions from the
    eigenvectors of the float64 covariance about the mean.
    """
    if acts_ND.ndim != 2 or acts_ND.shape[0] < 2:
        raise DataError(f"pca_sae needs an [N, D] tensor with N >= 2, got shape {tuple(acts_ND.shape)}")
    if acts_ND.shape[0] <= CHUNK_ROWS:
        x = acts_ND.double()
        mean_D = x.mean(0)
        centred = x - mean_D
        cov_DD = centred.T @ centred
    else:  # the same sums over row blocks: no float64 copy of the whole matrix (a million rows: 4.6 GB each)
        mean_D = sum(c.double().sum(0) for c in acts_ND.split(CHUNK_ROWS)) / acts_ND.shape[0]
        cov_DD = sum((c.double() - mean_D).T @ (c.double() - mean_D) for c in acts_ND.split(CHUNK_ROWS))
    _, vecs_DD = torch.linalg.eigh(cov_DD)
    m = max(1, min(width // 2, acts_ND.shape[1]))
    return _signed_topk_sae(vecs_DD.flip(-1)[:, :m].T, mean_D, k)


@torch.no_grad()
def identity_sae(acts_ND: Float[torch.Tensor, "N D"], *, k: int) -> Any:
    """The neuron basis as a signed TopK dictionary: F = 2D atoms +e_i and -e_i, b_dec the rows' mean."""
    if acts_ND.ndim != 2 or acts_ND.shape[0] < 1:
        raise DataError(f"identity_sae needs an [N, D] tensor, got shape {tuple(acts_ND.shape)}")
    D = acts_ND.shape[1]
    return _signed_topk_sae(torch.eye(D, dtype=torch.float64, device=acts_ND.device), acts_ND.double().mean(0), k)


def baseline_sae(kind: str, train_ND: Float[torch.Tensor, "N D"], cfg: SAEConfig, *, seed: int, trained: Any) -> Any:
    """The ``kind`` baseline (one of :data:`BASELINE_KINDS`) of the SAE ``trained`` on rows ``train_ND``.

    ``cfg`` and ``seed`` are the ones ``trained`` was (or would have been) trained with: ``untrained``
    is its starting point, ``frozen-decoder`` trains on the same rows, budget and seed with the decoder
    fixed at :func:`frozen_dictionary` of ``trained``'s decoder (dictionary seed derived from ``seed``);
    ``soft-frozen-decoder`` and ``frozen-encoder`` train on the same rows, budget and seed from ``untrained``'s
    initialisation, the decoder held near it or the encoder fixed at it;
    ``pca`` and ``identity`` keep :func:`sparsity_k` latents per row. Every baseline is built on ``cfg.device``,
    as training is (the frozen decoder's random dictionary is drawn on the CPU, then moved).
    """
    train_ND = train_ND.to(cfg.device)
    if kind == "untrained":
        return initial_sae(train_ND, cfg, seed=seed)
    if kind == "frozen-decoder":
        frozen = frozen_dictionary(trained.W_dec, seed=derive_seed(seed, "sae-frozen-decoder"))
        return train_sae(train_ND, cfg, seed=seed, frozen_decoder_FD=frozen)
    if kind == "soft-frozen-decoder":
        return train_sae(train_ND, cfg, seed=seed, decoder_min_cosine=SOFT_FROZEN_COSINE)
    if kind == "frozen-encoder":
        return train_sae(train_ND, cfg, seed=seed, frozen_encoder=True)
    k = sparsity_k(trained, train_ND, cfg)
    if kind == "pca":
        return pca_sae(train_ND, width=cfg.d_sae(train_ND.shape[1]), k=k)
    if kind == "identity":
        return identity_sae(train_ND, k=k)
    raise ConfigError(f"SAE baseline {kind!r} unknown: use one of {BASELINE_KINDS}")


def sparsity_k(trained: Any, train_ND: Float[torch.Tensor, "N D"], cfg: SAEConfig) -> int:
    """Latents per row of the TopK baselines: ``cfg.k`` for a TopK SAE, else ``trained``'s mean L0 on the
    training rows, rounded (at least 1), so every dictionary gets the same number of active atoms."""
    if cfg.architecture == "topk":
        return cfg.k
    _, z_NF = encode_decode(trained, train_ND.float())
    return max(1, round(float((z_NF != 0).double().sum(1).mean())))


REFERENCES = ("pca", "identity")
"""The bases every arm's explained variance is read against (:func:`reference_ev`)."""


@torch.no_grad()
def reference_ev(
    train_ND: Float[torch.Tensor, "N D"], test_ND: Float[torch.Tensor, "M D"], *, width: int, k: int
) -> dict[str, float]:
    """Held-out explained variance (about the mean of ``test_ND``) of the ``pca`` and ``identity`` codes fitted on
    ``train_ND`` with k latents per row: the dictionaries of :func:`pca_sae` and :func:`identity_sae`, so on the
    real arm they are the ``pca`` and ``identity`` baselines' explained variance."""
    saes = {"pca": pca_sae(train_ND, width=width, k=k), "identity": identity_sae(train_ND, k=k)}
    x_ND = test_ND.float()
    return {name: explained_variance(x_ND, encode_decode(sae, x_ND)[0]) for name, sae in saes.items()}


def relative_ev(ev: float, reference: dict[str, float]) -> dict[str, float]:
    """``ev_{name}`` (the reference's explained variance) and ``ev_over_{name}`` = ev / it, for each reference of
    :func:`reference_ev`; NaN where the reference explains nothing (a ratio to zero or less means nothing)."""
    out = {}
    for name, ref in reference.items():
        out[f"ev_{name}"] = ref
        out[f"ev_over_{name}"] = ev / ref if ref > 0 else float("nan")
    return out
