"""Shared fixtures. Tests run offline: the hub is never contacted."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path

import numpy as np
import pytest
import torch

from auditkit.errors import DataError
from auditkit.linalg import haar_orthonormal
from auditkit.seeding import derive_seed, numpy_rng, torch_generator

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
GPT2_TOKENIZER = SHARED / "gpt2-tokenizer"
UD_EWT = SHARED / "ud-english-ewt"


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache root shared by the session's tests (the embedded model is converted once into it)."""
    root = os.environ.get("AUDITKIT_TEST_CACHE")
    return Path(root) if root else tmp_path_factory.mktemp("auditkit-cache")


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op torch thread for a module of small problems: on a shared 2-core machine, OpenMP/BLAS
    threads spin-wait on each other and made such modules ten to a hundred times slower under load.
    Use it with ``pytestmark = pytest.mark.usefixtures("one_thread")``; restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def gpt2_tokenizer():
    if not (GPT2_TOKENIZER / "vocab.json").is_file():
        pytest.skip(f"the real GPT-2 tokenizer files are not at {GPT2_TOKENIZER}")
    from transformers import GPT2TokenizerFast

    return GPT2TokenizerFast.from_pretrained(str(GPT2_TOKENIZER))


@pytest.fixture(scope="session")
def tiny_gpt2():
    from auditkit.models import ModelSpec, load_model

    return load_model(ModelSpec(name="tiny-gpt2", seed=0))


WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "iota", "kappa", "lambda", "sigma", "omega"]


@pytest.fixture(scope="session")
def yes_no_table():
    """Writes a CSV table whose final word names the class (' yes' / ' no') after a few random words:
    a label written into the last token. ``write(path, n=120, words=(4, 10))``; returns ``path``."""
    import pandas as pd

    from auditkit.seeding import numpy_rng

    def write(path: Path, n: int = 120, words: tuple[int, int] = (4, 10)) -> Path:
        rng = numpy_rng(0)
        labels = [i % 2 for i in range(n)]
        texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(*words)))) + (" yes" if y else " no") for y in labels]
        pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
        return path

    return write


def planted_features(
    n: int, d: int, k: int, *, cosine: float, noise: float = 0.3, seed: int = 0
) -> tuple[torch.Tensor, np.ndarray, torch.Tensor]:
    """Known-answer data ``x = sum_k z_k f_k + noise``: unit features of pairwise cosine ``cosine``.

    Returns activations [n, d], labels [n, k] (z_k in {0, 1}, independent fair coins) and the feature
    basis F [k, d]. The Gram matrix ``(1 - c) I + c 11^T`` is factored ``L L^T`` (Cholesky) and
    embedded by a Haar-random orthonormal frame, so ``F F^T`` equals it exactly.
    """
    if not -1 / max(k - 1, 1) < cosine < 1:
        raise DataError(f"pairwise cosine {cosine} is not attainable by {k} unit vectors: use (-1/(k-1), 1)")
    gram = (1 - cosine) * torch.eye(k, dtype=torch.float64) + cosine
    frame_DK = haar_orthonormal(d, k, torch_generator(derive_seed(seed, "planted-frame")))
    F_KD = torch.linalg.cholesky(gram) @ frame_DK.T
    z_NK = numpy_rng(derive_seed(seed, "planted-z")).integers(0, 2, size=(n, k))
    eps = torch.randn(n, d, generator=torch_generator(derive_seed(seed, "planted-noise")), dtype=torch.float64)
    X_ND = torch.as_tensor(z_NK, dtype=torch.float64) @ F_KD + noise * eps
    return X_ND.float(), z_NK.astype(np.int64), F_KD


def one_row_per_text(
    X_ND: torch.Tensor,
    labels_N: np.ndarray,
    *,
    level: str = "token",
    positions: str = "labelled",
    groups_N: tuple | None = None,
):
    """An ``ActivationSet`` of one row per text (every fourth one held out) and the one-token ``TokenBatch`` it came
    from: the arms of a probe-stage unit test without a model. Returns (acts, batch)."""
    from auditkit.types import ActivationSet, TokenBatch

    n = X_ND.shape[0]
    labels_N = np.asarray(labels_N)
    acts = ActivationSet(
        acts_ND=X_ND,
        labels_N=labels_N,
        token_ids_N=np.zeros(n, np.int64),
        example_ids_N=np.arange(n),
        positions_N=np.zeros(n, np.int64),
        is_test_N=np.arange(n) % 4 == 0,
        hook="h",
        positions=positions,
        class_names=("a", "b"),
        groups_N=groups_N,
    )
    batch = TokenBatch(
        tokens_BL=torch.zeros(n, 1, dtype=torch.long),
        mask_BL=torch.ones(n, 1, dtype=torch.bool),
        labels_M=labels_N,
        item_example_M=np.arange(n),
        item_position_M=np.zeros(n, np.int64),
        is_test_M=acts.is_test_N,
        class_names=("a", "b"),
        level=level,
        pad_token_id=0,
        has_bos=False,
    )
    return acts, batch
