"""Calibration of the verdicts: conclusions on known-answer datasets, at small sizes.

The full sweeps (200 nulls per pair, every control, a finer power curve) live in
bench/bench_calibration.py; here the conclusions are checked at a size that runs in seconds.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from auditkit.audit.arms import ArmPlan, build_arms
from auditkit.audit.options import SAE_BASELINES, PursuitAuditOptions, SAEAuditOptions
from auditkit.calibration.recovery import RecoveryConfig, recovery_checks
from auditkit.calibration.run import CalibrationConfig, calibrate, relabel
from auditkit.calibration.stats import binomial_interval, seed_icc
from auditkit.calibration.synthetic import (
    correlated_basis,
    null_labels,
    planted_labels,
    set_language,
    set_membership_batch,
    train_set_language_model,
)
from auditkit.errors import ConfigError
from auditkit.extract import ExtractConfig
from auditkit.models import LoadedModel
from auditkit.report.calibration import render_calibration, write_calibration
from auditkit.types import ModelProvenance

STRENGTHS = (0.1, 0.5, 2.0)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def shuffled():
    """60 nulls and 12 planted datasets per strength, shuffled-label control, audit defaults."""
    cfg = CalibrationConfig(
        controls=("shuffled-labels",),
        n_null=60,
        n_planted=12,
        strengths=STRENGTHS,
        train_steps=100,
        chunk=100,
        probes=("logistic",),
    )
    return calibrate(cfg)


def test_null_fpr_of_the_shuffled_label_verdict_is_at_most_nominal(shuffled):
    row = shuffled.fpr.set_index("control").loc["shuffled-labels"]
    assert row["n_null"] == 60 and row["nominal"] == 0.05
    assert row["fpr"] <= row["nominal"], row
    assert row["ci_low"] <= row["fpr"] <= row["ci_high"]
    # The nulls really are null: the mean selectivity sits at zero.
    assert abs(row["mean_selectivity"]) < 0.02


def test_power_is_near_one_at_a_strong_signal_and_rises_with_strength(shuffled):
    power = shuffled.power.set_index("strength")["power"]
    assert power[2.0] >= 0.9
    assert power[0.1] <= 0.2
    assert power[0.1] <= power[0.5] <= power[2.0] and power[0.1] < power[2.0]
    real = shuffled.power.set_index("strength")["mean_real"]
    assert real[2.0] > real[0.5] > real[0.1]
    ideal = shuffled.power.set_index("strength")["ideal_accuracy"]
    assert (real <= ideal + 0.03).all()  # no reader beats the ideal one (up to test-set noise)


def test_report_states_the_nominal_level_and_writes_atomically(shuffled, tmp_path):
    text = render_calibration(shuffled)
    assert "nominal level 5.0%" in text and "shuffled-labels" in text and "power.png" in text
    out = write_calibration(shuffled, tmp_path / "calibration")
    assert {p.name for p in out.iterdir()} >= {
        "report.md",
        "power.png",
        "calibration.png",
        "fpr.csv",
        "power.csv",
        "run.json",
    }
    assert text.index("## Calibration matrix") < text.index("## What was tested")
    assert "| method | shuffled-labels |" in text and "| probe-logistic | " in text and "; power " in text
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "a temporary folder was left behind"


def test_relabel_reproduces_build_arms_with_those_labels():
    """The efficiency of the calibration rests on this: relabelling built arms is building them anew."""
    lang = set_language(256, seed=0)
    model = train_set_language_model(lang, seed=0, steps=0, d_model=32)
    prov = ModelProvenance(
        name="lm", source="random-init", architecture="GPT2LMHeadModel", n_layers=1, d_model=32, d_vocab=256
    )
    batch = set_membership_batch(lang, 24, 8, seed=1)
    plan = ArmPlan(
        loaded=LoadedModel(model, prov),
        batch=batch,
        cache_root=None,
        seeds=(0, 1),
        test_fraction=0.25,
        extract_cfg=ExtractConfig(hook="blocks.0.hook_resid_post", progress=False),
        controls=("shuffled-labels", "control-task", "random-tokens-uniform", "spectral-reinit"),
    )
    new = null_labels(batch.labels_M.shape[0], seed=5)
    fresh = build_arms(dataclasses.replace(plan, batch=dataclasses.replace(batch, labels_M=new)), {})
    relabelled = relabel(build_arms(plan, {}), new, test_fraction=0.25)
    for a, b in zip(fresh, relabelled, strict=True):
        assert (a.control, a.seed) == (b.control, b.seed)
        np.testing.assert_array_equal(a.acts.labels_N, b.acts.labels_N)
        np.testing.assert_array_equal(a.acts.is_test_N, b.acts.is_test_N)
        torch.testing.assert_close(a.acts.acts_ND, b.acts.acts_ND)


def test_planted_labels_reach_the_ideal_accuracy_and_null_labels_carry_nothing():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(20_000, 16, generator=gen)
    planted = planted_labels(X, strength=1.0, seed=3)
    ideal = ((X.double() @ planted.direction_D.double()) > 0).numpy()
    assert abs((ideal == planted.labels_N).mean() - bayes_accuracy(1.0)) < 0.015
    assert planted.ideal_accuracy == pytest.approx(bayes_accuracy(1.0), abs=0.01)  # z is Gaussian here
    assert abs(planted.labels_N.mean() - 0.5) < 0.02
    null = null_labels(20_000, seed=3)
    assert abs(null.mean() - 0.5) < 0.02 and not np.array_equal(null, null_labels(20_000, seed=4))


def test_correlated_basis_has_the_asked_cosines():
    B = correlated_basis(6, 32, cosine=0.6, seed=0).double()
    G = B @ B.T
    torch.testing.assert_close(G.diagonal(), torch.ones(6, dtype=torch.float64), atol=1e-6, rtol=0)
    off = G[~torch.eye(6, dtype=torch.bool)]
    torch.testing.assert_close(off, torch.full_like(off, 0.6), atol=1e-6, rtol=0)
    with pytest.raises(ConfigError, match="cosine"):
        correlated_basis(6, 32, cosine=-0.5, seed=0)


def test_binomial_interval_and_icc():
    low, high = binomial_interval(0, 60)
    assert low == 0 and 0.05 < high < 0.07  # rule of three: about 3 / 60
    assert binomial_interval(60, 60)[1] == 1.0
    import pandas as pd

    shared = pd.DataFrame([dict(dataset=j, seed=s, diff=float(j)) for j in range(10) for s in range(3)])
    assert seed_icc(shared) == pytest.approx(1.0)


def test_pursuit_recovers_planted_supports_and_its_dictionary_controls_do_not():
    cfg = RecoveryConfig(pursuit_rows=200, pursuit_d=32, pursuit_features=96, run_sae=False)
    rows = recovery_checks(cfg, seed=0)
    recall = rows[rows["metric"] == "support_recall"].groupby("dictionary")["value"].min()
    assert recall["real"] >= 0.95
    assert recall["gaussian"] < 0.2 and recall["spectrum-matched"] < 0.2
    assert rows["passed"].all(), rows


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="seeds"):
        CalibrationConfig(seeds=(0,))
    with pytest.raises(ConfigError, match="methods"):
        CalibrationConfig(methods=("steering",))
    with pytest.raises(ConfigError, match="probes"):
        CalibrationConfig(probes=("ridge",))
    with pytest.raises(ConfigError, match="unknown"):
        CalibrationConfig(controls=("shuffled",))
    with pytest.raises(ConfigError, match="applies to pursuit"):
        CalibrationConfig(
            methods=("pursuit",), controls=("step0",), pursuit=PursuitAuditOptions(dictionary_controls=())
        )
    with pytest.raises(ConfigError, match="no datasets"):
        CalibrationConfig(n_null=0, n_planted=0)


def test_sae_finds_planted_directions_and_its_decoder_controls_do_not():
    cfg = RecoveryConfig(pursuit_rows=50, pursuit_d=16, pursuit_features=32, sae_rows=6000, sae_tokens=200_000)
    rows = recovery_checks(cfg, seed=0)
    cos = rows[rows["check"] == "sae-directions"].set_index("dictionary")["value"]
    assert cos["real"] >= 0.9
    assert cos["gaussian"] < 0.7 and cos["spectrum-matched"] < 0.7


def test_every_calibrated_probe_kind_gets_its_own_false_positive_rate():
    """Each probe kind is a method of its own: its nulls are counted separately and stay at or below nominal."""
    cfg = CalibrationConfig(
        controls=("control-task",),
        n_null=40,
        n_planted=0,
        strengths=(),
        train_steps=50,
        chunk=40,
        probes=("logistic", "mass-mean", "lda"),
    )
    fpr = calibrate(cfg).fpr.set_index("method")
    assert sorted(fpr.index) == ["probe-lda", "probe-logistic", "probe-mass-mean"]
    assert (fpr["n_null"] == 40).all()
    assert (fpr["fpr"] <= fpr["nominal"]).all(), fpr


def test_sae_and_pursuit_label_verdicts_are_calibrated_and_have_power():
    """k-sparse probing of SAE latents and the pursuit code probe, through the audit's own code: nulls at
    or below nominal against every control (the SAE baselines included), planted labels found against the
    random-token control, and the dictionary controls and SAE baselines blind to labels that live in the
    activations (power ~0 by construction)."""
    cfg = CalibrationConfig(
        methods=("sae", "pursuit"),
        controls=("random-tokens-uniform", "shuffled-labels", *SAE_BASELINES),
        n_null=30,
        n_planted=6,
        strengths=(2.0,),
        train_steps=50,
        chunk=36,
        sae=SAEAuditOptions(training_tokens=8192),
    )
    result = calibrate(cfg)
    fpr = result.fpr.set_index(["method", "control"])
    sae_controls = ("random-tokens-uniform", "shuffled-labels", *SAE_BASELINES)
    expected = {(f"sae-k{k}", c) for k in (1, 5, 20) for c in sae_controls}
    expected |= {
        ("pursuit-code", c) for c in ("random-tokens-uniform", "shuffled-labels", "gaussian-dict", "spectral-dict")
    }
    assert set(fpr.index) == expected
    assert (fpr["n_null"] == 30).all()
    # 30 nulls per pair, all on one seed set: no pair may *exceed* the level (its exact interval above
    # it), and pooled over the 28 pairs the rate is at or below nominal.
    assert (fpr["ci_low"] <= fpr["nominal"]).all(), fpr
    assert fpr["n_selective"].sum() / fpr["n_null"].sum() <= 0.05, fpr
    assert (fpr["mean_selectivity"].abs() < 0.02).all(), fpr
    power = result.power.set_index(["method", "control"])
    for method in ("sae-k5", "sae-k20", "pursuit-code"):
        assert power.loc[(method, "shuffled-labels"), "power"] >= 0.8, power
        # The tiny model is trained only 50 steps: random-token arms keep the positional part of the
        # planted direction, so the gap is smaller there, but still clearly positive.
        assert power.loc[(method, "random-tokens-uniform"), "mean_selectivity"] > 0.05, power
    for control in ("gaussian-dict", "spectral-dict"):
        assert power.loc[("pursuit-code", control), "power"] <= 0.34, power
    for control in SAE_BASELINES:
        assert power.loc[("sae-k5", control), "power"] <= 0.34, power
    assert result.info["timings"]["sae_features_s"] > 0
    text = render_calibration(result)
    assert "sae-k5" in text and "pursuit-code" in text and "*all* of its arm's rows" in text
    assert "The SAE baselines (sae-untrained" in text


def test_repeated_text_nulls_stay_at_nominal():
    """Nulls whose labels belong to a text (or a word of it) on a batch where a quarter of the sequences
    appear three times: copies are one example, so neither family exceeds the nominal rate."""
    cfg = CalibrationConfig(
        controls=("shuffled-labels", "random-tokens-uniform"),
        n_null=0,
        n_null_repeated=40,
        n_planted=0,
        strengths=(),
        train_steps=50,
        chunk=40,
        probes=("logistic",),
        n_seed_sets=4,
    )
    result = calibrate(cfg)
    fpr = result.fpr
    assert set(fpr["null"]) == {"null-repeated-text", "null-repeated-token"}
    assert (fpr["n_null"] == 40).all() and result.info["merged_copies"] >= 2 * cfg.repeated_sequences
    assert (fpr["fpr"] <= 0.05).all(), fpr


def bayes_accuracy(strength: float) -> float:
    """Best accuracy on :func:`auditkit.calibration.synthetic.planted_labels` with a Gaussian latent score.

    P(sign(s z + e) = sign(z)) for independent standard normals z, e is 1/2 + arctan(s) / pi (the
    orthant probability of a bivariate normal with correlation s / sqrt(1 + s^2)).
    """
    return 0.5 + math.atan(strength) / math.pi


@pytest.fixture(scope="module")
def mdl_calibration():
    """The online-codelength verdicts (``auditkit audit --mdl``) of the logistic probe: 60 nulls and 12 planted
    datasets per strength against the shuffled-label control."""
    cfg = CalibrationConfig(
        controls=("shuffled-labels",),
        n_null=60,
        n_planted=12,
        strengths=STRENGTHS,
        train_steps=100,
        chunk=100,
        probes=("logistic",),
        mdl_probes=("logistic",),
    )
    return calibrate(cfg)


def test_codelength_verdicts_keep_the_nominal_rate_on_nulls_and_gain_power_with_strength(mdl_calibration):
    fpr = mdl_calibration.fpr.set_index("method")
    power = mdl_calibration.power.set_index(["method", "strength"])["power"]
    for method in ("probe-logistic:codelength_per_label", "probe-logistic:compression"):
        assert fpr.loc[method, "n_null"] == 60
        assert fpr.loc[method, "fpr"] <= 0.05, fpr.loc[method]
        assert power[method, 2.0] >= 0.9 and power[method, 0.1] <= power[method, 2.0]
    # The accuracy verdict is still scored beside them, on the same datasets.
    assert "probe-logistic" in set(fpr.index)
