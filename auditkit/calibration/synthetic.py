"""Known-answer data and models: planted structure the audit must find, and nulls it must not.

:func:`train_set_language_model` trains a tiny GPT-2-architecture model on a synthetic language
with a known latent variable: the vocabulary is split into two sets, and the next token stays in
the current token's set with probability ``stay``. Predicting the next token requires knowing the
current token's set, so training writes a *token-identity feature* (set membership) into the
weights, something the weight controls have to destroy. With many more token types than model
dimensions, a linear probe cannot read membership off random features by memorising types.

For calibrating the audit (:mod:`auditkit.calibration.run`): :func:`null_labels` (labels independent of
everything: the null), :func:`planted_labels` (labels read off given activations along a random
direction at a chosen signal-to-noise), :func:`sparse_superposition` (sparse features with known
directions and Zipfian frequencies, on ``sae_lens.synthetic``), and :func:`correlated_basis` /
:func:`basis_activations` (K planted features whose directions have a chosen pairwise cosine, for
probe-vs-steering comparisons). :func:`planted_activations` plants a linear concept of chosen strength.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from jaxtyping import Float

from auditkit.duplicates import merge_identical_rows
from auditkit.errors import ConfigError
from auditkit.seeding import derive_seed, numpy_rng, torch_generator
from auditkit.types import TokenBatch

BOS_ID = 0


@dataclass(frozen=True, kw_only=True)
class SetLanguage:
    """Two-set Markov language: membership of every token, and the switching probability."""

    member_V: np.ndarray
    """int64 [V] set (0 or 1) of every token id; the BOS id 0 belongs to no set and is never sampled."""
    stay: float
    """Probability that the next token is drawn from the current token's set."""

    @property
    def vocab_size(self) -> int:
        return int(self.member_V.shape[0])


def set_language(vocab_size: int = 1024, *, stay: float = 0.9, seed: int = 0) -> SetLanguage:
    """A random balanced split of token ids 1..V-1 into two sets."""
    member = numpy_rng(derive_seed(seed, "set-language")).permutation(vocab_size - 1) % 2
    return SetLanguage(member_V=np.concatenate([[-1], member]).astype(np.int64), stay=stay)


def sample_sequences(lang: SetLanguage, n: int, length: int, seed: int) -> np.ndarray:
    """int64 [n, length + 1] sequences, each starting with BOS, from the two-set Markov chain."""
    rng = numpy_rng(seed)
    sets = [np.flatnonzero(lang.member_V == k) for k in (0, 1)]
    out = np.zeros((n, length + 1), dtype=np.int64)
    current = rng.integers(0, 2, size=n)
    for t in range(1, length + 1):
        switch = rng.random(n) > lang.stay
        current = np.where(switch, 1 - current, current)
        picks = [rng.choice(sets[k], size=n) for k in (0, 1)]
        out[:, t] = np.where(current == 0, picks[0], picks[1])
    return out


def train_set_language_model(
    lang: SetLanguage, *, seed: int = 0, steps: int = 200, n_layers: int = 1, d_model: int = 64, batch: int = 32
) -> Any:
    """A tiny GPT-2-architecture HookedTransformer trained on ``lang`` (Adam, a few seconds on CPU)."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(
        n_layers=n_layers,
        d_model=d_model,
        n_heads=4,
        d_head=d_model // 4,
        d_mlp=4 * d_model,
        n_ctx=64,
        d_vocab=lang.vocab_size,
        act_fn="gelu_new",
        normalization_type="LN",
        seed=derive_seed(seed, "init") % 2**31,
        original_architecture="GPT2LMHeadModel",
        device="cpu",
    )
    model = HookedTransformer(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
    data = torch.as_tensor(sample_sequences(lang, batch * steps, 32, derive_seed(seed, "train")))
    with torch.enable_grad():
        for step in range(steps):
            loss = model(data[step * batch : (step + 1) * batch], return_type="loss")
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def set_membership_batch(
    lang: SetLanguage, n: int, length: int, *, seed: int, test_fraction: float = 0.25, repeated: int = 0
) -> TokenBatch:
    """Token-level items at every non-BOS position, labelled with the token's set, grouped by token id.

    ``repeated``: the first that many sequences appear three times, as a dataset with repeated texts
    does; the copies are merged into one example (:func:`auditkit.duplicates.merge_identical_rows`, the
    rule every tokenised dataset goes through), so each copy's items belong to that one example.
    """
    if not 0 <= repeated <= n:
        raise ConfigError(f"repeated must be in [0, n={n}], got {repeated}")
    seqs = sample_sequences(lang, n, length, seed)
    raw = np.concatenate([seqs, seqs[:repeated], seqs[:repeated]])
    keep, row_example = merge_identical_rows(raw.tolist())
    row, pos = np.meshgrid(np.arange(len(raw)), np.arange(1, length + 1), indexing="ij")
    row, pos = row.ravel(), pos.ravel()
    ex, tokens = row_example[row], raw[row, pos]
    is_test_example = numpy_rng(derive_seed(seed, "split")).random(len(keep)) < test_fraction
    return TokenBatch(
        tokens_BL=torch.as_tensor(raw[keep]),
        mask_BL=torch.ones((len(keep), raw.shape[1]), dtype=torch.bool),
        labels_M=lang.member_V[tokens],
        item_example_M=ex,
        item_position_M=pos,
        is_test_M=is_test_example[ex],
        class_names=("set0", "set1"),
        level="token",
        pad_token_id=BOS_ID,
        has_bos=True,
        special_token_ids=(BOS_ID,),
        groups_M=tuple(str(t) for t in tokens),
        dataset_fingerprint=f"set-language:{seed}:{n}:{length}:{repeated}",
        dataset_name="synthetic:set-language",
        merged_examples=len(raw) - len(keep),
    )


def planted_activations(
    n: int, d: int, *, strength: float, seed: int, n_classes: int = 2
) -> tuple[torch.Tensor, np.ndarray]:
    """Gaussian activations [n, d] whose class means differ by ``strength`` along one random direction.

    ``strength`` is the class-mean separation in units of the noise standard deviation (0 is the null).
    """
    gen = torch_generator(derive_seed(seed, "planted"))
    labels = numpy_rng(derive_seed(seed, "labels")).integers(0, n_classes, size=n)
    direction = torch.randn(d, generator=gen)
    direction = direction / direction.norm()
    noise = torch.randn(n, d, generator=gen)
    offsets = torch.as_tensor(labels - (n_classes - 1) / 2, dtype=torch.float32)[:, None] * strength
    return noise + offsets * direction[None, :], labels.astype(np.int64)


# ----------------------------------------------------------------------------- labels: the null and planted


def null_labels(n: int, *, seed: int, n_classes: int = 2) -> np.ndarray:
    """int64 [n] labels drawn uniformly and independently of anything else: the null hypothesis.

    Whatever activations they are paired with, no method can read them off better than chance in
    expectation, so every "selective" verdict on them is a false positive.
    """
    if n < 1 or n_classes < 2:
        raise ConfigError(f"null_labels needs n >= 1 and n_classes >= 2, got n={n}, n_classes={n_classes}")
    return numpy_rng(derive_seed(seed, "null-labels")).integers(0, n_classes, size=n).astype(np.int64)


@dataclass(frozen=True)
class PlantedLabels:
    """Binary labels read from given activations along one direction, with label noise."""

    labels_N: np.ndarray
    """int64 [N] 0/1 labels."""
    direction_D: torch.Tensor
    """float [D] unit direction the labels were read along."""
    strength: float
    """Signal-to-noise ratio of the latent score (0 is the null)."""
    ideal_accuracy: float
    """Expected accuracy of the ideal reader, who knows u: mean over rows of Phi(strength * |z|)."""


def planted_labels(acts_ND: Float[torch.Tensor, "N D"], *, strength: float, seed: int) -> PlantedLabels:
    """Labels carried by ``acts_ND`` along a random direction u, at signal-to-noise ``strength``.

    A probit model: z = standardised projection (x . u), y = 1[strength * z + e > 0] with e ~ N(0, 1),
    so ``strength`` is sd(signal) / sd(noise) of the latent score. The best accuracy any reader can
    reach is the mean of Phi(strength * |z|) (``ideal_accuracy``); it is 1/2 + arctan(strength) / pi
    when z is Gaussian (0.5 at 0, 0.75 at 1, 0.85 at 2), more when z is bimodal or heavy-tailed.
    Only activations that carry u linearly carry the labels: paired with a control's activations
    (other weights, other tokens) they are noise to the probe.
    """
    if strength < 0:
        raise ConfigError(f"strength must be >= 0, got {strength}")
    gen = torch_generator(derive_seed(seed, "planted-labels"))
    X = acts_ND.to(torch.float64)
    u = torch.randn(X.shape[1], generator=gen, dtype=torch.float64)
    u = u / u.norm()
    proj = X @ u
    z = (proj - proj.mean()) / proj.std().clamp_min(1e-12)
    noise = torch.randn(X.shape[0], generator=gen, dtype=torch.float64)
    labels = (strength * z + noise > 0).numpy().astype(np.int64)
    ideal = float(torch.special.ndtr(strength * z.abs()).mean())
    return PlantedLabels(
        labels_N=labels, direction_D=u.to(acts_ND.dtype), strength=float(strength), ideal_accuracy=ideal
    )


# ----------------------------------------------------------------------------- sparse features in superposition


@dataclass(frozen=True)
class SparseSuperposition:
    """Activations built from sparse features with known directions and firing frequencies."""

    acts_ND: torch.Tensor
    """float32 [N, D] activations, ``codes_NF @ directions_FD`` (plus noise when asked)."""
    codes_NF: torch.Tensor
    """float32 [N, F] non-negative feature coefficients (zero where a feature is off)."""
    directions_FD: torch.Tensor
    """float32 [F, D] unit feature directions (the planted dictionary)."""
    firing_F: torch.Tensor
    """float32 [F] firing probability of every feature."""


def sparse_superposition(
    n: int,
    *,
    d: int,
    n_features: int,
    seed: int,
    max_firing: float = 0.1,
    min_firing: float = 0.01,
    zipf_exponent: float = 1.0,
    magnitude_std: float = 0.2,
    orthogonalize: bool = True,
    noise: float = 0.0,
) -> SparseSuperposition:
    """N rows of F > D sparse features in superposition, built on ``sae_lens.synthetic``.

    Directions: sae-lens's ``FeatureDictionary`` (unit rows; ``orthogonalize`` runs its gradient-descent
    initializer, which spreads the F directions to the lowest mutual coherence it reaches in D dims).
    Frequencies: ``zipfian_firing_probabilities`` (from ``max_firing`` down to ``min_firing``). Each
    feature fires independently with its probability, at magnitude N(1, magnitude_std) clipped at 0,
    the rule of sae-lens's ``ActivationGenerator.sample``; the draw is done here from a private generator
    because ``ActivationGenerator`` samples from torch's global RNG. ``noise`` adds isotropic Gaussian
    noise of that standard deviation per coordinate.
    """
    from sae_lens.synthetic import FeatureDictionary, orthogonal_initializer, zipfian_firing_probabilities

    init = orthogonal_initializer() if orthogonalize else None
    dictionary = FeatureDictionary(n_features, d, seed=derive_seed(seed, "features") % 2**31, initializer=init)
    W_FD = dictionary.feature_vectors.detach().clone()
    firing_F = zipfian_firing_probabilities(
        n_features, exponent=zipf_exponent, max_prob=max_firing, min_prob=min_firing
    )
    gen = torch_generator(derive_seed(seed, "firing"))
    fire_NF = torch.rand(n, n_features, generator=gen) < firing_F
    magnitude_NF = (1.0 + magnitude_std * torch.randn(n, n_features, generator=gen)).clamp_min(0.0)
    codes_NF = fire_NF * magnitude_NF
    acts_ND = codes_NF @ W_FD
    if noise > 0:
        acts_ND = acts_ND + noise * torch.randn(n, d, generator=gen)
    return SparseSuperposition(acts_ND=acts_ND, codes_NF=codes_NF, directions_FD=W_FD, firing_F=firing_F)


# ----------------------------------------------------------------------------- a non-orthogonal planted basis


def correlated_basis(k: int, d: int, *, cosine: float, seed: int) -> Float[torch.Tensor, "K D"]:
    """float32 [K, D] unit directions whose pairwise cosine is exactly ``cosine`` (K <= D).

    The Gram matrix G = (1 - c) I + c 1 1^T is positive definite for -1/(K-1) < c < 1; with its
    Cholesky factor G = R R^T and a Haar-random orthonormal frame Q [D, K], the rows of R Q^T have
    Gram matrix G. With c > 0 a probe for feature k reads the *dual* direction (orthogonal to the
    other features), not b_k itself, which is what a probe-vs-steering comparison has to see.
    """
    from auditkit.linalg import haar_orthonormal

    if not 1 <= k <= d:
        raise ConfigError(f"correlated_basis needs 1 <= k <= d, got k={k}, d={d}")
    if k > 1 and not -1 / (k - 1) < cosine < 1:
        raise ConfigError(f"cosine must be in (-1/(k-1), 1) = ({-1 / (k - 1):.3g}, 1) for k={k}, got {cosine}")
    G_KK = (1 - cosine) * torch.eye(k, dtype=torch.float64) + cosine * torch.ones(k, k, dtype=torch.float64)
    R_KK = torch.linalg.cholesky(G_KK)
    Q_DK = haar_orthonormal(d, k, torch_generator(derive_seed(seed, "correlated-basis")))
    return (R_KK @ Q_DK.T).to(torch.float32)


def basis_activations(
    basis_KD: Float[torch.Tensor, "K D"],
    n: int,
    *,
    seed: int,
    p_on: float = 0.5,
    strength: float = 1.0,
    noise: float = 1.0,
) -> tuple[Float[torch.Tensor, "N D"], np.ndarray]:
    """Activations [N, D] = sum_k strength * f_k b_k + noise, with binary features f [N, K] (returned).

    Every feature is on independently with probability ``p_on``; ``noise`` is the per-coordinate
    standard deviation of isotropic Gaussian noise.
    """
    gen = torch_generator(derive_seed(seed, "basis-activations"))
    f_NK = torch.rand(n, basis_KD.shape[0], generator=gen) < p_on
    acts_ND = strength * f_NK.to(basis_KD.dtype) @ basis_KD
    acts_ND = acts_ND + noise * torch.randn(n, basis_KD.shape[1], generator=gen, dtype=basis_KD.dtype)
    return acts_ND, f_NK.numpy().astype(np.int64)
