"""Token controls: a TokenBatch in, a TokenBatch out, with the inputs replaced by random tokens."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Literal

import numpy as np
import torch

from auditkit.errors import ConfigError
from auditkit.seeding import numpy_rng
from auditkit.types import TokenBatch


def random_tokens(
    batch: TokenBatch, seed: int, *, vocab_size: int, variant: Literal["uniform", "unigram"] = "uniform"
) -> TokenBatch:
    """Replace every real, non-special token by a random one; lengths, BOS, padding and labels stay.

    ``uniform`` samples uniformly over the vocabulary without the special tokens; ``unigram`` samples
    from the batch's own token frequencies (so the marginal token statistics of the corpus survive
    and only their order and co-occurrence are destroyed). BOS and any special token stay exactly
    where they are in the real arm, and supervised methods keep the real labels at the same
    positions: whatever a method still finds is carried by position, length or the method itself.
    """
    if variant not in ("uniform", "unigram"):
        raise ConfigError(f"random-tokens variant {variant!r} unknown: use uniform or unigram")
    tokens = batch.tokens_BL.clone()
    special = torch.zeros(vocab_size, dtype=torch.bool)
    ids = [i for i in batch.special_token_ids if 0 <= i < vocab_size]
    special[ids] = True
    replace_BL = batch.mask_BL & ~special[tokens.clamp(0, vocab_size - 1)]
    if batch.has_bos:
        replace_BL[:, 0] = False
    rng = numpy_rng(seed)
    n = int(replace_BL.sum())
    if variant == "uniform":
        pool = np.flatnonzero(~special.numpy())
        draws = pool[rng.integers(0, len(pool), size=n)]
    else:
        counts = np.bincount(tokens[replace_BL].numpy(), minlength=vocab_size).astype(np.float64)
        draws = rng.choice(vocab_size, size=n, p=counts / counts.sum())
    tokens[replace_BL] = torch.as_tensor(draws, dtype=tokens.dtype)
    name = f"random-tokens-{variant}"
    digest = hashlib.sha256(f"{batch.dataset_fingerprint}|{name}|{seed}".encode()).hexdigest()
    return dataclasses.replace(batch, tokens_BL=tokens, dataset_fingerprint=digest, variant=f"{name}:{seed}")
