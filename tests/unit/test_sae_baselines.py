"""SAE baselines (untrained, frozen decoder, soft-frozen decoder, frozen encoder, PCA, identity): what each is, and
that a trained SAE beats them; the per-arm PCA and identity references of explained variance."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from auditkit.audit.config import KNOWN_CONTROLS, AuditConfig
from auditkit.audit.options import SAE_BASELINE_DESCRIPTIONS, SAE_BASELINES
from auditkit.calibration.synthetic import sparse_superposition
from auditkit.controls import ALL_CONTROLS, LEXICAL_CONTROLS
from auditkit.errors import ConfigError
from auditkit.linalg import cosine_floor, haar_orthonormal, singular_values
from auditkit.methods.sae import SAEConfig, evaluate_sae, train_sae
from auditkit.methods.sae.baselines import (
    BASELINE_KINDS,
    SOFT_FROZEN_COSINE,
    baseline_sae,
    frozen_dictionary,
    identity_sae,
    pca_sae,
    reference_ev,
    relative_ev,
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
    assert not set(SAE_BASELINES) & {*ALL_CONTROLS, *LEXICAL_CONTROLS}
    assert set(KNOWN_CONTROLS) == {*ALL_CONTROLS, *LEXICAL_CONTROLS, *SAE_BASELINES}
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
    assert (
        evaluate_sae(sae, test)["explained_variance"]
        > evaluate_sae(initial_sae(train, CFG, seed=0), test)["explained_variance"] + 0.2
    )
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


def _cos(a, b):
    return torch.nn.functional.cosine_similarity(a, b, dim=1)


def test_cosine_floor_rotates_only_rows_outside_the_cone_and_keeps_their_norm():
    gen = torch.Generator().manual_seed(0)
    anchor = torch.randn(200, 16, generator=gen)
    W = torch.randn(200, 16, generator=gen) * 3
    W[0] = -2 * anchor[0]  # opposite its anchor: no plane to rotate in
    W[1] = 0.5 * anchor[1] + 0.01 * W[1]  # inside
    out = cosine_floor(W, anchor, 0.8)
    inside = _cos(W, anchor) >= 0.8
    assert inside[1] and torch.equal(out[inside], W[inside])
    assert torch.allclose(out.norm(dim=1), W.norm(dim=1), rtol=1e-5)
    assert _cos(out[:1], anchor[:1]).item() == pytest.approx(1.0, abs=1e-6)
    moved = ~inside
    moved[0] = False
    assert moved.sum() > 150 and torch.allclose(_cos(out[moved], anchor[moved]), torch.tensor(0.8), atol=1e-5)
    # The nearest direction on the cone: the row turns by exactly its angle to the anchor minus the cone's angle.
    turn = torch.arccos(_cos(W[moved], anchor[moved]).clamp(-1, 1)) - torch.arccos(torch.tensor(0.8))
    assert torch.allclose(_cos(out[moved], W[moved]), torch.cos(turn), atol=1e-4)


def test_soft_frozen_decoder_stays_near_its_initialisation_and_frozen_encoder_keeps_it(data):
    """Both start where sae-untrained is; the soft-frozen decoder moves but no row leaves cosine 0.8 to its start;
    the frozen encoder's directions never move while its decoder trains; each reconstructs better than the start."""
    train, test = data
    start = initial_sae(train, CFG, seed=0)
    trained = train_sae(train, CFG, seed=0)
    soft = baseline_sae("soft-frozen-decoder", train, CFG, seed=0, trained=trained)
    cos = _cos(soft.W_dec, start.W_dec)
    assert cos.min() >= SOFT_FROZEN_COSINE - 1e-5 and (cos < 0.81).float().mean() > 0.5  # most rows pushed to the edge
    enc = baseline_sae("frozen-encoder", train, CFG, seed=0, trained=trained)
    # Inference folds the decoder norms into the encoder: each latent's encoder direction is unchanged.
    assert _cos(enc.W_enc.T, start.W_enc.T).min() > 1 - 1e-5
    assert _cos(enc.W_dec, start.W_dec).mean() < 0.9  # the decoder trained
    ev = {
        name: evaluate_sae(sae, test)["explained_variance"]
        for name, sae in dict(start=start, soft=soft, enc=enc, trained=trained).items()
    }
    assert ev["soft"] > ev["start"] + 0.3 and ev["enc"] > ev["start"] + 0.1, ev
    assert ev["trained"] > max(ev["soft"], ev["enc"]), ev


def _low_rank(seed, rank=4, d=32, n=12_000):
    """Rows in a ``rank``-dim subspace (Gaussian, unequal scales) around a mean far from zero."""
    gen = torch.Generator().manual_seed(seed)
    basis = haar_orthonormal(d, rank, gen).float()
    scales = torch.linspace(3.0, 1.0, rank)
    X = (torch.randn(n, rank, generator=gen) * scales) @ basis.T + 3.0
    return X[: 3 * n // 4], X[3 * n // 4 :]


def test_pca_relative_ev_of_a_planted_low_rank_arm_is_about_one(data):
    """An arm whose activations lie in a k-dim subspace: PCA's k-sparse code explains it exactly, so the SAE cannot
    beat it (ev_over_pca ~ 1, never above). Against an arm of sparse features in superposition, where the SAE
    beats PCA, raw explained variance calls the low-rank arm the better one and the PCA-relative gain the
    reverse: the raw gap was the arms' rank."""
    rows = []
    for seed in (0, 1, 2):
        arms = {REAL: _low_rank(seed), "superposition": data}
        for control, (train, test) in arms.items():
            ev = evaluate_sae(train_sae(train, CFG, seed=seed), test)["explained_variance"]
            ref = reference_ev(train, test, width=CFG.d_sae(train.shape[1]), k=CFG.k)
            rel = relative_ev(ev, ref)
            if control == REAL:
                assert ref["pca"] == pytest.approx(1.0, abs=1e-9)
                assert 0.9 < rel["ev_over_pca"] <= 1.0 + 1e-9, rel
            rows += [
                dict(method="sae", control=control, seed=seed, metric=m, value=v)
                for m, v in {"explained_variance": ev, **rel}.items()
            ]
    sel = selectivity_table(pd.DataFrame(rows)).set_index("metric")
    assert sel.loc["explained_variance", "verdict"] == "selective"
    assert sel.loc["ev_over_pca", "verdict"] == "control better", sel.loc["ev_over_pca"]


def test_pca_summed_over_row_blocks_equals_the_one_product(monkeypatch):
    from auditkit.methods.sae import baselines

    x = torch.randn(3000, 16, generator=torch.Generator().manual_seed(0)) * torch.linspace(0.1, 3, 16) + 2
    whole = baselines.pca_sae(x, width=32, k=4)
    monkeypatch.setattr(baselines, "CHUNK_ROWS", 700)
    blocks = baselines.pca_sae(x, width=32, k=4)
    assert torch.allclose(blocks.W_dec.abs(), whole.W_dec.abs(), atol=1e-5)
    assert torch.allclose(blocks.b_dec, whole.b_dec, atol=1e-5)
