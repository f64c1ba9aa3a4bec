"""End-to-end audits: conclusions on planted structure, on pure-noise labels, and on a trained model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from auditkit import extract as extract_mod
from auditkit.audit.arms import ArmPlan, build_arms
from auditkit.audit.config import AuditConfig
from auditkit.audit.probe import probe_rows
from auditkit.audit.run import run_audit
from auditkit.calibration.synthetic import set_language, set_membership_batch, train_set_language_model
from auditkit.controls import weights as weights_mod
from auditkit.extract import ExtractConfig
from auditkit.metrics import selectivity_table
from auditkit.models import LoadedModel, ModelSpec, load_model
from auditkit.seeding import numpy_rng
from auditkit.types import ModelProvenance

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "iota", "kappa", "lambda", "sigma", "omega"]
SEEDS = (0, 1, 2, 3, 4)


def _write_table(path, labels, planted: bool, seed=0):
    rng = numpy_rng(seed)
    texts = []
    for label in labels:
        words = " ".join(rng.choice(WORDS, size=int(rng.integers(3, 8))))
        # Planted structure: the final word names the class. Otherwise the last word is random too.
        texts.append(words + ((" yes" if label == 1 else " no") if planted else " " + str(rng.choice(WORDS))))
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def tiny():
    return load_model(ModelSpec(name="tiny-gpt2", seed=0))


def _cfg(path, controls=None, **kw):
    kw = {"use_cache": False, "model": ModelSpec(name="tiny-gpt2", seed=0), "seeds": SEEDS, **kw}
    return AuditConfig(
        dataset=f"table:{path}", hook="blocks.1.hook_resid_post", controls=controls, progress=False, **kw
    )


def test_planted_label_is_selective_against_data_controls(tmp_path, tiny):
    path = _write_table(tmp_path / "planted.csv", [i % 2 for i in range(160)], planted=True)
    controls = ("shuffled-labels", "control-task", "random-tokens-uniform", "random-tokens-unigram")
    result = run_audit(_cfg(path, controls), loaded=tiny)
    acc = result.rows[result.rows["metric"] == "accuracy"].groupby("control")["value"].mean()
    assert acc["none"] > 0.95
    for control in controls:
        assert abs(acc[control] - 0.5) < 0.15, control
    sel = result.selectivity[result.selectivity["metric"] == "accuracy"].set_index("control")
    assert (sel["verdict"] == "selective").all() and (sel["ci_low"] > 0.25).all()
    assert sorted(result.rows["seed"].unique()) == list(SEEDS)


def test_noise_labels_are_not_selective(tmp_path, tiny):
    labels = numpy_rng(7).integers(0, 2, size=160)
    path = _write_table(tmp_path / "noise.csv", labels, planted=False)
    result = run_audit(_cfg(path), loaded=tiny)  # every default control
    sel = result.selectivity[result.selectivity["metric"] == "accuracy"].set_index("control")
    # Sentence-level data: no control task by default (its type is the text: a second shuffled-labels arm); the
    # lexical baselines run instead.
    assert set(sel.index) == {
        "shuffled-labels",
        "random-tokens-uniform",
        "random-tokens-unigram",
        "spectral-reinit",
        "gaussian-reinit",
        "lexical-bow",
        "lexical-length",
        "lexical-last-token",
    }
    assert sel.loc["shuffled-labels", "ci_low"] <= 0 <= sel.loc["shuffled-labels", "ci_high"]
    assert (sel["verdict"] != "selective").all(), sel
    real = result.rows.query("metric == 'accuracy' and control == 'none'")["value"]
    assert abs(real.mean() - 0.5) < 0.15


@pytest.fixture(scope="module")
def set_model():
    lang = set_language(1024, seed=0)
    return lang, train_set_language_model(lang, seed=0)


def test_trained_token_identity_feature_is_selective_against_every_control(set_model):
    """A trained model writes set membership into its weights; every control destroys it."""
    lang, model = set_model
    prov = ModelProvenance(
        name="set-lm",
        source="random-init",
        architecture="GPT2LMHeadModel",
        n_layers=1,
        d_model=64,
        d_vocab=lang.vocab_size,
    )
    controls = (
        "shuffled-labels",
        "control-task",
        "random-tokens-uniform",
        "random-tokens-unigram",
        "spectral-reinit",
        "gaussian-reinit",
    )
    plan = ArmPlan(
        loaded=LoadedModel(model, prov),
        batch=set_membership_batch(lang, 160, 24, seed=1),
        extract_cfg=ExtractConfig(hook="blocks.0.hook_resid_post", progress=False),
        cache_root=None,
        seeds=(0, 1, 2),
        controls=controls,
        test_fraction=0.25,
    )
    rows, _ = probe_rows(build_arms(plan, {}), ("logistic",))
    acc = rows[rows["metric"] == "accuracy"].groupby("control")["value"].mean()
    assert acc["none"] > 0.95
    # With 1,023 token types in 64 dimensions a probe cannot memorise types: every control sits near chance.
    for control in controls:
        assert acc[control] < 0.65, (control, acc[control])
    sel = selectivity_table(rows).query("metric == 'accuracy'").set_index("control")
    assert (sel["verdict"] == "selective").all(), sel


def test_rerun_with_one_more_control_computes_only_that_control(tmp_path, tiny, monkeypatch):
    path = _write_table(tmp_path / "planted.csv", [i % 2 for i in range(48)], planted=True)
    computed, reinits = [], []
    original, original_reinit = extract_mod._extract_examples, weights_mod.spectral_reinit
    monkeypatch.setattr(extract_mod, "_extract_examples", lambda *a, **k: computed.append(1) or original(*a, **k))
    monkeypatch.setattr(weights_mod, "spectral_reinit", lambda *a: reinits.append(1) or original_reinit(*a))
    cache = dict(use_cache=True, model=ModelSpec(name="tiny-gpt2", seed=0, cache_dir=tmp_path / "cache"))
    first = run_audit(_cfg(path, ("shuffled-labels",), **cache), loaded=tiny)
    assert len(computed) == 1
    run_audit(_cfg(path, ("shuffled-labels", "random-tokens-uniform"), **cache), loaded=tiny)
    assert len(computed) == 1 + len(SEEDS)
    run_audit(_cfg(path, ("shuffled-labels", "random-tokens-uniform", "spectral-reinit"), **cache), loaded=tiny)
    assert len(computed) == 1 + 2 * len(SEEDS) and len(reinits) == len(SEEDS)
    again = run_audit(_cfg(path, ("shuffled-labels", "random-tokens-uniform", "spectral-reinit"), **cache), loaded=tiny)
    assert len(computed) == 1 + 2 * len(SEEDS) and len(reinits) == len(SEEDS), "a cached arm was recomputed"
    real = lambda r: r.rows.query("control == 'none'").reset_index(drop=True)
    pd.testing.assert_frame_equal(real(first), real(again))
    assert np.isfinite(again.selectivity["selectivity"]).all()


def test_damaged_control_arm_entry_is_recomputed_with_the_control_model(tmp_path, tiny):
    """A weight-control arm whose cache entry fails its check is recomputed with the control's own
    weights: the entry looked cached (its meta.json exists), which once skipped building that model."""
    path = _write_table(tmp_path / "planted.csv", [i % 2 for i in range(48)], planted=True)
    cache = dict(use_cache=True, seeds=(0, 1), model=ModelSpec(name="tiny-gpt2", seed=0, cache_dir=tmp_path / "cache"))
    first = run_audit(_cfg(path, ("spectral-reinit",), **cache), loaded=tiny)
    entries = sorted((tmp_path / "cache" / "activations").glob("*/tensors.safetensors"))
    assert len(entries) == 3  # the real arm and one spectral-reinit arm per seed
    clean = {tensors: load_file(str(tensors))["acts"].clone() for tensors in entries}  # not a view of the file
    for tensors in entries:
        blob = bytearray(tensors.read_bytes())
        blob[-5] ^= 0xFF
        tensors.write_bytes(bytes(blob))
    again = run_audit(_cfg(path, ("spectral-reinit",), **cache), loaded=tiny)
    pd.testing.assert_frame_equal(first.rows, again.rows)
    assert len(list((tmp_path / "cache" / "activations").glob("*.corrupt-*"))) == 3
    for tensors, acts in clean.items():  # each arm recomputed with its own weights
        assert torch.equal(load_file(str(tensors))["acts"], acts), tensors.parent.name


def test_k_sparse_probes_give_one_method_per_k_for_every_arm_and_seed(tmp_path, tiny):
    path = _write_table(tmp_path / "planted.csv", [i % 2 for i in range(160)], planted=True)
    cfg = _cfg(path, ("shuffled-labels", "random-tokens-uniform"), probes=("logistic", "k-sparse:k=1,5"))
    result = run_audit(cfg, loaded=tiny)
    acc = result.rows[result.rows["metric"] == "accuracy"]
    counts = acc.groupby(["method", "control"])["seed"].nunique()
    for method in ("probe-k-sparse-k1", "probe-k-sparse-k5"):
        for control in ("none", "shuffled-labels", "random-tokens-uniform"):
            assert counts[(method, control)] == len(SEEDS), (method, control)
    mean = acc.groupby(["method", "control"])["value"].mean()
    # The planted last word changes the last token: five raw dimensions read it; shuffled labels cannot.
    assert mean[("probe-k-sparse-k5", "none")] > 0.9
    assert abs(mean[("probe-k-sparse-k5", "shuffled-labels")] - 0.5) < 0.15
    assert result.method_info["probe"].extras["kinds"]["k-sparse"]["ks"] == "1,5"


def test_matrix_audit_reads_a_planted_property_and_its_controls_do_not(tiny):
    """W_E with the 'all-alphabetic' property written along one direction: readable from the real matrix,
    not from shuffled labels, nor from either reinitialised matrix (which loses the direction)."""
    import copy

    import torch

    from auditkit.token_properties import token_properties

    model = copy.deepcopy(tiny.model)
    props = token_properties(model.tokenizer, vocab_size=model.cfg.d_vocab)
    direction = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        model.embed.W_E[torch.as_tensor(props.labels["all_alphabetic"])] += (
            2 * direction / direction.norm() * model.W_E.norm(dim=1).mean()
        )
    loaded = LoadedModel(model, tiny.provenance)
    cfg = AuditConfig(
        model=ModelSpec(name="tiny-gpt2", seed=0),
        matrix="W_E",
        dataset="token-properties:all-alphabetic",
        seeds=SEEDS,
        probes=("logistic", "k-sparse:k=1,5"),
        use_cache=False,
        progress=False,
    )
    result = run_audit(cfg, loaded=loaded)
    assert set(result.controls) == {"shuffled-labels", "spectral-reinit", "gaussian-reinit"}
    bal = result.rows.query("metric == 'balanced_accuracy'").groupby(["method", "control"])
    assert (bal["seed"].nunique() == len(SEEDS)).all() and len(bal.size()) == 3 * 4  # every (probe, arm), every seed
    bal = bal["value"]
    assert bal.apply(lambda v: v.between(0, 1).all()).all()
    mean = bal.mean()
    assert mean[("probe-logistic", "none")] > 0.95
    for control in result.controls:
        assert abs(mean[("probe-logistic", control)] - 0.5) < 0.15, (control, mean[("probe-logistic", control)])
    sel = result.selectivity.query("metric == 'balanced_accuracy' and method == 'probe-logistic'").set_index("control")
    assert (sel["verdict"] == "selective").all(), sel
    assert result.dataset.level == "vocabulary" and result.extraction.hook == "W_E"


def test_more_label_draws_leave_the_first_draw_as_it_was_and_average_the_rest(tmp_path, tiny):
    """--label-draws adds draws after the first: the first draw's rows equal a one-draw audit's (so an audit
    saved before draws existed keeps its numbers), every seed has every draw, and the selectivity's control
    score is the mean of a seed's draws."""
    path = _write_table(tmp_path / "planted.csv", [i % 2 for i in range(120)], planted=True)
    controls = ("shuffled-labels",)
    one = run_audit(_cfg(path, controls, probes=("logistic",), label_draws=1), loaded=tiny).rows
    many = run_audit(_cfg(path, controls, probes=("logistic",), label_draws=4), loaded=tiny)
    rows = many.rows
    first = rows[rows["draw"] == 0].reset_index(drop=True)
    keys = ["method", "control", "seed", "metric"]
    merged = one.merge(first, on=keys, suffixes=("_one", "_many"))
    assert len(merged) == len(one) and np.array_equal(merged["value_one"], merged["value_many"])
    ctrl = rows[(rows["control"] == "shuffled-labels") & (rows["metric"] == "accuracy")]
    assert (ctrl.groupby("seed")["draw"].nunique() == 4).all()
    assert ctrl.groupby("seed")["value"].nunique().max() > 1  # the draws differ
    sel = many.selectivity.query("metric == 'accuracy'").iloc[0]
    assert sel["control_score"] == pytest.approx(ctrl["value"].mean())
