"""Reproducible randomness without global state.

Every random function in auditkit takes ``seed: int`` and builds its own generator here; library
code never seeds globally. Sub-seeds are derived by hashing names, so adding a new arm or control
never shifts the numbers of an existing one.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

_SEED_BITS = 63


def derive_seed(root: int, *names: object) -> int:
    """A sub-seed for ``names`` under ``root``: stable across runs, platforms and arm orderings."""
    text = "\x1f".join([str(int(root)), *map(str, names)])
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << _SEED_BITS) - 1)


def numpy_rng(seed: int) -> np.random.Generator:
    """A private NumPy generator for ``seed``."""
    return np.random.default_rng(int(seed))


def torch_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A private torch generator for ``seed`` on ``device``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen
