"""Known-answer data and models: planted structure the audit must find, and nulls it must not.

:func:`train_set_language_model` trains a tiny GPT-2-architecture model on a synthetic language
with a known latent variable: the vocabulary is split into two sets, and the next token stays in
the current token's set with probability ``stay``. Predicting the next token requires knowing the
current token's set, so training writes a *token-identity feature* (set membership) into the
weights, something the weight controls have to destroy. With many more token types than model
dimensions, a linear probe cannot read membership off random features by memorising types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

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
        n_layers=n_layers, d_model=d_model, n_heads=4, d_head=d_model // 4, d_mlp=4 * d_model, n_ctx=64,
        d_vocab=lang.vocab_size, act_fn="gelu_new", normalization_type="LN", seed=derive_seed(seed, "init") % 2**31,
        original_architecture="GPT2LMHeadModel", device="cpu",
    )  # fmt: skip
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


def set_membership_batch(lang: SetLanguage, n: int, length: int, *, seed: int, test_fraction: float = 0.25) -> TokenBatch:
    """Token-level items at every non-BOS position, labelled with the token's set, grouped by token id."""
    seqs = sample_sequences(lang, n, length, seed)
    ex, pos = np.meshgrid(np.arange(n), np.arange(1, length + 1), indexing="ij")
    ex, pos = ex.ravel(), pos.ravel()
    tokens = seqs[ex, pos]
    is_test_example = numpy_rng(derive_seed(seed, "split")).random(n) < test_fraction
    return TokenBatch(
        tokens_BL=torch.as_tensor(seqs), mask_BL=torch.ones(seqs.shape, dtype=torch.bool),
        labels_M=lang.member_V[tokens], item_example_M=ex, item_position_M=pos, is_test_M=is_test_example[ex],
        class_names=("set0", "set1"), level="token", pad_token_id=BOS_ID, has_bos=True,
        special_token_ids=(BOS_ID,), groups_M=tuple(str(t) for t in tokens),
        dataset_fingerprint=f"set-language:{seed}:{n}:{length}", dataset_name="synthetic:set-language",
    )  # fmt: skip


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
