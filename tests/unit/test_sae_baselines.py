"""SAE baselines (untrained, frozen decoder, PCA, identity): what each is, and that a trained SAE beats them."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from auditkit.audit.config import KNOWN_CONTROLS, AuditConfig
from auditkit.audit.options import SAE_BASELINE_DESCRIPTIONS, SAE_BASELINES
from auditkit.calibration.synthetic import sparse_superposition
from auditkit.controls import ALL_CONTROLS
from auditkit.errors import ConfigError
from auditkit.linalg import singular_values
from auditkit.methods.sae import SAEConfig, evaluate_sae, train_sae
from auditkit.methods.sae.baselines import (
    BASELINE_KINDS,
    baseline_sae,
    frozen_dictionary,
    identity_sae,
    pca_sae,
)
from auditkit.methods.sae.train import initial_sae
from auditkit.metrics import selectivity_table
from auditkit.types import REAL

pytestmark = pytest.mark.usefixtures("one_thread")

CFG = SAEConfig(width=128, k=4, training_tokens=100_000, batch_size=512, progress=False)


@pytest.fixture(scope="module")
def data():
    X = sparse_superposition(12_000, d=32, n_features=64, seed=0, orthogonalize=False).acts_ND
    return X[:9000], X[9000:]


def test_names_are_declared_once_and_do_not_collide_with_arm_controls():
    assert set(SAE_BASELINES.values()) == set(BASELINE_KINDS)
    assert set(SAE_BASELINE_DESCRIPTIONS) == set(SAE_BASELINES)
    assert not set(SAE_BASELINES) & set(ALL_CONTROLS)
    assert set(KNOWN_CONTROLS) == {*ALL_CONTROLS, *SAE_BASELINES}
    AuditConfig(methods=("sae",), controls=tuple(SAE_BASELINES))  # accepted
    with pytest.raises(ConfigError, match="unknown control"):
        AuditConfig(methods=("sae",), controls=("sae-untrianed",))


def test_untrained_is_where_training_starts(data):
    train, _ = data
    a, b = initial_sae(train, CFG, seed=3), initial_sae(train, CFG, seed=3)
    assert torch.equal(a.W_dec, b.W_dec) and not torch.equal(a.W_dec, initial_sae(train, CFG, seed=4).W_dec)
    one_step = train_sae(train, SAEConfig(**{**CFG.to_dict(), "training_tokens": 1, "lr": 1e-12}), seed=3)
    # One step at a negligible learning rate leaves the SAE where it started.
    assert torch.allclose(a.W_dec, one_step.W_dec, atol=1e-6) and torch.allclose(a.b_dec, one_step.b_dec, atol=1e-5)


def test_frozen_decoder_keeps_the_dictionary_and_trains_the_encoder(data):
    train, test = data
    W = frozen_dictionary(torch.randn(128, 32, generator=torch.Generator().manual_seed(0)), seed=1)
    sae = train_sae(train, CFG, seed=0, frozen_decoder_FD=W)
    unit = W / W.norm(dim=1, keepdim=True)
    assert torch.allclose(sae.W_dec, unit, atol=1e-5)  # TopK's inference form has unit decoder rows
    assert evaluate_sae(sae, test)["explained_variance"] > evaluate_sae(initial_sae(train, CFG, seed=0), test)[
        "explained_variance"
    ] + 0.2
    src = torch.randn(128, 32, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(singular_values(frozen_dictionary(src, seed=5)), singular_values(src), rtol=1e-5)


def test_pca_and_identity_are_signed_topk_on_a_basis(data):
    train, test = data
    pca = pca_sae(train, width=128, k=4)
    assert pca.W_dec.shape == (64, 32)  # width // 2 = 64 directions capped at D = 32, each signed
    assert pca_sae(train, width=16, k=4).W_dec.shape == (16, 32)
    ident = identity_sae(train, k=32)
    # With k = D the signed neuron basis reconstructs exactly; with fewer it keeps the largest |x - mean|.
    assert evaluate_sae(ident, test)["explained_variance"] == pytest.approx(1.0, abs=1e-5)
    x = test[:5]
    got = identity_sae(train, k=3).decode(identity_sae(train, k=3).encode(x)) - train.mean(0)
    centred = x - train.mean(0)
    keep = centred.abs().topk(3, dim=1).indices
    want = torch.zeros_like(centred).scatter(1, keep, centred.gather(1, keep))
    assert torch.allclose(got, want, atol=1e-5)
    m = evaluate_sae(pca, test)
    assert m["l0"] == pytest.approx(4.0)


def test_trained_sae_on_planted_features_is_selective_against_every_baseline_on_reconstruction(data):
    """Sparse features in superposition: training finds them; no baseline reconstructs as well."""
    train, test = data
    rows = []
    for seed in (0, 1, 2):
        sae = train_sae(train, CFG, seed=seed)
        arms = {REAL: sae} | {c: baseline_sae(k, train, CFG, seed=seed, trained=sae) for c, k in SAE_BASELINES.items()}
        for control, model in arms.items():
            ev = evaluate_sae(model, test)["explained_variance"]
            rows.append(dict(method="sae", control=control, seed=seed, metric="explained_variance", value=ev))
    sel = selectivity_table(pd.DataFrame(rows)).set_index("control")
    assert set(sel.index) == set(SAE_BASELINES)
    assert (sel["verdict"] == "selective").all(), sel[["mean", "ci_low", "ci_high", "verdict"]]
