"""SAE training (sae-lens), metrics and save/load: conclusions on planted and hand-built data."""

from __future__ import annotations

import json

import pytest
import torch

from auditkit.errors import ConfigError, HubUnreachableError, ModelNotFoundError, OutputError
from auditkit.methods.sae import (
    SAEConfig,
    TensorBatches,
    evaluate_sae,
    explained_variance,
    load_sae,
    save_sae,
    sparse_probe_accuracy,
    token_entropy,
    train_sae,
    training_stats,
)
from auditkit.seeding import torch_generator


def planted(n: int = 12_000, d: int = 32, n_features: int = 64, p_fire: float = 0.04, seed: int = 0, draw: int = 1):
    """Sparse features in superposition (64 unit directions in 32 dims), firing independently.

    Directions come from sae-lens's ``FeatureDictionary`` (seeded); coefficients are drawn here from a
    private generator because sae-lens's ``ActivationGenerator`` samples from the global RNG.
    """
    from sae_lens.synthetic import FeatureDictionary

    features = FeatureDictionary(n_features, d, seed=seed, initializer=None)
    gen = torch_generator(seed + draw)
    fire = torch.rand(n, n_features, generator=gen) < p_fire
    coef = fire * (1 + 0.2 * torch.randn(n, n_features, generator=gen)).clamp_min(0)
    with torch.no_grad():
        return features(coef), features.feature_vectors.detach().clone()


def mean_max_cos(true_KD: torch.Tensor, W_dec_FD: torch.Tensor) -> float:
    """For each true direction, the best |cosine| with any decoder row; averaged."""
    t = true_KD / true_KD.norm(dim=1, keepdim=True)
    w = W_dec_FD / W_dec_FD.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return float((t @ w.T).abs().amax(1).mean())


def identity_sae(d: int, *, scale: float = 1.0, b_dec: torch.Tensor | None = None):
    """x -> scale * x exactly: latents relu(x) and relu(-x), decoder [I; -I] * scale."""
    from sae_lens import StandardSAE, StandardSAEConfig

    sae = StandardSAE(StandardSAEConfig(d_in=d, d_sae=2 * d))
    eye = torch.eye(d)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], dim=1))
        sae.W_dec.copy_(torch.cat([eye, -eye], dim=0) * scale)
        sae.b_enc.zero_()
        sae.b_dec.zero_()
        if b_dec is not None:
            # apply_b_dec_to_input subtracts b_dec before encoding, so W_dec = 0 + b_dec = mean predicts the mean.
            sae.W_dec.zero_()
            sae.b_dec.copy_(b_dec)
    return sae.eval()


pytestmark = pytest.mark.usefixtures("one_thread")


FAST = dict(width=128, training_tokens=300_000, batch_size=1024, progress=False)


@pytest.fixture(scope="module")
def planted_data():
    return planted()


@pytest.fixture(scope="module")
def topk_sae(planted_data):
    X, _ = planted_data
    return train_sae(X, SAEConfig(architecture="topk", k=4, **FAST), seed=0)


# ----------------------------------------------------------------------------- training


def test_topk_recovers_planted_features(planted_data, topk_sae):
    _X, true_KD = planted_data
    assert type(topk_sae).__name__ == "TopKSAE"
    assert mean_max_cos(true_KD, topk_sae.W_dec.detach()) >= 0.9
    # sae-lens's own one-to-one (Hungarian) score agrees that the features were found
    from sae_lens.synthetic import mean_correlation_coefficient

    assert mean_correlation_coefficient(true_KD, topk_sae.W_dec.detach()) >= 0.85
    stats = training_stats(topk_sae)
    assert stats is not None and stats.n_tokens >= 300_000 and stats.tokens_per_second > 0


def test_standard_l1_recovers_planted_features(planted_data):
    X, true_KD = planted_data
    sae = train_sae(X, SAEConfig(architecture="standard", l1_coefficient=2.0, **FAST), seed=0)
    assert type(sae).__name__ == "StandardSAE"
    assert mean_max_cos(true_KD, sae.W_dec.detach()) >= 0.9


def test_training_is_reproducible_by_seed(planted_data):
    X, _ = planted_data
    cfg = SAEConfig(architecture="jumprelu", width=32, training_tokens=8_192, batch_size=1024, progress=False)
    a, b, c = (train_sae(X[:4000], cfg, seed=s) for s in (0, 0, 1))
    assert type(a).__name__ == "JumpReLUSAE"
    assert torch.equal(a.W_dec, b.W_dec) and torch.equal(a.threshold, b.threshold)
    assert not torch.equal(a.W_dec, c.W_dec)


def test_tensor_batches_cover_every_row_each_epoch():
    X = torch.arange(10.0)[:, None]
    it = TensorBatches(X, 4, seed=0)
    rows = torch.cat([next(it) for _ in range(5)])[:, 0]  # 20 rows = two epochs
    assert all(b.shape == (4, 1) for b in [next(it)])
    assert sorted(rows[:10].tolist()) == list(range(10)) and sorted(rows[10:].tolist()) == list(range(10))


@pytest.mark.parametrize(
    "bad",
    [
        dict(k=0),
        dict(lr=0.0),
        dict(width=8, k=16),
        dict(training_tokens=0),
        dict(lr_decay_fraction=1.0),
        dict(expansion_factor=-1.0),
    ],
)
def test_config_rejects_bad_values(bad):
    with pytest.raises(ConfigError):
        SAEConfig(**bad)


# ----------------------------------------------------------------------------- metrics


def test_explained_variance_mean_predictor_is_zero_and_perfect_is_one():
    X = torch.randn(500, 8, generator=torch_generator(0)) * 3 + 5
    assert evaluate_sae(identity_sae(8), X)["explained_variance"] == pytest.approx(1.0, abs=1e-6)
    m = evaluate_sae(identity_sae(8, b_dec=X.mean(0)), X)
    assert m["explained_variance"] == pytest.approx(0.0, abs=1e-6)
    assert m["fvu"] == pytest.approx(1.0, abs=1e-6)


def test_fvu_about_the_mean_differs_from_variance_about_zero():
    """On data with a large mean, dividing by sum ||x||^2 calls the mean predictor nearly perfect."""
    X = torch.randn(2000, 16, generator=torch_generator(1)) + 50.0
    x_hat = X.mean(0).expand_as(X)
    about_zero = float(1 - (X - x_hat).square().sum() / X.square().sum())
    ours = explained_variance(X, x_hat)
    assert about_zero > 0.999 and abs(ours) < 1e-6
    # sae-lens 6.54's streaming ExplainedVarianceCalculator is also taken about the mean and agrees
    # (on a moderate mean: it squares in float32, so at mean 50 it is off by ~2e-5 from cancellation)
    from sae_lens.evals import ExplainedVarianceCalculator

    Y = X - 47.0
    noisy = Y + 0.5 * torch.randn(Y.shape, generator=torch_generator(2))
    calc = ExplainedVarianceCalculator()
    calc.add_batch(sae_output=noisy, hidden_acts=Y)
    assert explained_variance(Y, noisy) == pytest.approx(calc.compute(), abs=1e-5)


def test_l0_dead_dense_and_shrinkage_on_a_hand_built_sae():
    X = torch.rand(400, 4, generator=torch_generator(3)) + 0.1  # all positive: the relu(-x) half never fires
    m = evaluate_sae(identity_sae(4), X)
    assert m["l0"] == pytest.approx(4.0)
    assert m["dead_fraction"] == pytest.approx(0.5)
    assert m["dense_fraction"] == pytest.approx(0.5)
    assert m["shrinkage"] == pytest.approx(1.0, abs=1e-6)
    assert evaluate_sae(identity_sae(4, scale=0.5), X)["shrinkage"] == pytest.approx(0.5, abs=1e-6)


def test_token_entropy_single_token_latents_vs_spread_latents():
    tokens = torch.arange(400) % 8
    one_hot_latents = torch.nn.functional.one_hot(tokens, 8).float()  # latent f fires only on token f
    assert token_entropy(one_hot_latents, tokens) == (pytest.approx(0.0), pytest.approx(0.0))
    everywhere = torch.ones(400, 3)  # fire on every token: uniform over 8 ids
    H, H_norm = token_entropy(everywhere, tokens)
    assert H == pytest.approx(torch.log(torch.tensor(8.0)).item()) and H_norm == pytest.approx(1.0)


def test_sparse_probe_finds_a_planted_latent_and_not_noise():
    gen = torch_generator(4)
    y = torch.randint(0, 2, (600,), generator=gen)
    z = torch.rand(600, 50, generator=gen)
    z[:, 17] = y * 2.0 + 0.1 * torch.rand(600, generator=gen)
    test = torch.arange(600) % 4 == 0
    acc = sparse_probe_accuracy(z, y, test)
    assert acc["probe_acc_k1"] > 0.95 and set(acc) == {"probe_acc_k1", "probe_acc_k5", "probe_acc_k20"}
    noise = sparse_probe_accuracy(z[:, [i for i in range(50) if i != 17]], y, test)
    assert noise["probe_acc_k1"] < 0.7


def test_evaluate_trained_sae_on_held_out_planted_rows(topk_sae):
    X, _ = planted(n=1000, seed=0, draw=99)  # same dictionary, fresh coefficients: held-out rows
    m = evaluate_sae(topk_sae, X, token_ids_N=torch.arange(1000) % 7)
    assert m["explained_variance"] > 0.6 and m["l0"] == pytest.approx(4.0)
    assert 0 <= m["dead_fraction"] <= 1 and 0 <= m["token_entropy_norm"] <= 1


# ----------------------------------------------------------------------------- save / load


def test_save_load_round_trip(tmp_path, topk_sae, planted_data):
    X, _ = planted_data
    folder = save_sae(topk_sae, tmp_path / "sae")
    assert sorted(p.name for p in folder.iterdir()) == ["cfg.json", "sae_weights.safetensors"]
    assert json.loads((folder / "cfg.json").read_text())["architecture"] == "topk"
    loaded = load_sae(folder)
    assert type(loaded) is type(topk_sae)
    with torch.no_grad():
        assert torch.allclose(loaded(X[:256]), topk_sae(X[:256]), atol=1e-6)
    assert training_stats(loaded) == training_stats(topk_sae)
    save_sae(identity_sae(32), folder)  # replacing an existing folder is atomic too
    assert load_sae(folder).cfg.d_sae == 64
    assert [p.name for p in tmp_path.iterdir()] == ["sae"]  # no temporary folders left behind


def test_load_pretrained_offline_raises_hub_unreachable():
    with pytest.raises(HubUnreachableError, match="hub"):
        load_sae("gpt2-small-res-jb/blocks.0.hook_resid_pre")


def test_load_unknown_specs_say_what_is_wrong(tmp_path):
    with pytest.raises(ModelNotFoundError, match="did you mean gpt2-small-res-jb"):
        load_sae("gpt2-small-res-j/blocks.0.hook_resid_pre")
    with pytest.raises(ModelNotFoundError, match="has no SAE"):
        load_sae("gpt2-small-res-jb/blocks.99.hook_resid_pre")
    with pytest.raises(ModelNotFoundError, match="lacks cfg.json"):
        load_sae(tmp_path)


def test_save_never_replaces_a_folder_it_did_not_write(tmp_path, topk_sae):
    user = tmp_path / "results"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="not a saved SAE"):
        save_sae(topk_sae, user)
    assert [p.name for p in user.iterdir()] == ["notes.txt"] and (user / "notes.txt").read_text() == "mine"
    a_file = tmp_path / "weights.bin"
    a_file.write_bytes(b"x")
    with pytest.raises(OutputError, match="not a folder"):
        save_sae(topk_sae, a_file)
    assert a_file.read_bytes() == b"x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results", "weights.bin"]  # no temporary folder left
