"""The embedded-model calibration's constructions, on a tiny model in seconds (the measurement itself is
bench/bench_calibration_embedded.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from auditkit.audit.arms import build_arms
from auditkit.calibration.embedded import (
    NULL_WEIGHT,
    EmbeddedCalibrationConfig,
    Pool,
    audit_setup,
    build_pool,
    calibrate_embedded,
    dataset_arms,
    lexical_labels,
    weight_null_datasets,
)
from auditkit.controls.weights import reinit_loaded
from auditkit.extract import extract
from auditkit.report.calibration_embedded import write_embedded_calibration
from auditkit.seeding import derive_seed
from auditkit.types import REAL

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_cfg(yes_no_table, tmp_path_factory):
    table = yes_no_table(tmp_path_factory.mktemp("data") / "t.csv", n=80, words=(1, 4))
    return EmbeddedCalibrationConfig(
        model="tiny-gpt2",
        dataset=f"table:{table}",
        max_examples=None,
        n_draws=6,
        n_token_draws=3,
        n_null=4,
        n_planted=2,
        strengths=(1.0,),
        n_truth_seeds=3,
        n_rotations=2,
        probes=("logistic",),
        cache_dir=tmp_path_factory.mktemp("cache"),
    )


@pytest.fixture(scope="module")
def pool(tiny_cfg):
    timings: dict[str, float] = {}
    prep = audit_setup(tiny_cfg, timings)
    draws = build_pool(prep.plan, tiny_cfg, timings)
    real = build_arms(dataclasses.replace(prep.plan, seeds=(0,), controls=()), timings)[0].acts
    texts = tuple(prep.dataset.texts[i] for i in prep.dataset.item_example_M)
    n_tok = prep.batch.mask_BL.sum(1).numpy()[real.example_ids_N]
    return Pool(real, draws, texts, n_tok, prep.batch, prep.loaded), prep


def test_weight_null_audits_a_reinit_draw_against_other_draws_of_the_same_control(tiny_cfg, pool):
    """Exchangeability by construction: the audited arm is a reinitialised draw (not the trained weights), each
    control arm is another draw of the same control, and draw d is exactly the model the audit builds for seed d."""
    pool, prep = pool
    datasets = weight_null_datasets(tiny_cfg, pool)
    assert datasets and {ds.kind for ds in datasets} == {NULL_WEIGHT}
    for ds in datasets:
        control, r = ds.real_draw
        arms = dataset_arms(pool, ds, tiny_cfg.test_fraction)
        real_arms = [a for a in arms if a.control == REAL]
        ctrl_arms = [a for a in arms if a.control != REAL]
        assert {a.control for a in ctrl_arms} == {control} and ds.controls == (control,)
        for a in real_arms:
            assert a.acts.acts_ND is pool.draws[control][r].acts_ND  # the audited model is a control draw
            assert not torch.allclose(a.acts.acts_ND, pool.real.acts_ND)  # not the trained model
        used = [next(d for d, x in enumerate(pool.draws[control]) if x.acts_ND is a.acts.acts_ND) for a in ctrl_arms]
        assert r not in used and len(set(used)) == len(tiny_cfg.seeds)
        for a, b in zip(real_arms, ctrl_arms):  # each pair is scored on the same split, with the same labels
            np.testing.assert_array_equal(a.acts.is_test_N, b.acts.is_test_N)
            np.testing.assert_array_equal(a.acts.labels_N, ds.labels_N)
    # Draw d of the pool is the control model of audit seed d: the same reinitialisation of the trained model.
    control, d = "spectral-reinit", 4
    model = reinit_loaded(prep.loaded, control, derive_seed(d, control)).model
    direct = extract(model, prep.batch, prep.plan.extract_cfg)
    torch.testing.assert_close(direct.acts_ND, pool.draws[control][d].acts_ND)


def test_lexical_labels_are_word_presence_in_the_frequency_range_and_a_length_cue(pool):
    pool, _ = pool
    labels = lexical_labels(pool.texts_N, pool.n_tokens_N, pool.real.example_ids_N, (0.1, 0.5))
    words = [k for k in labels if k.startswith("has:")]
    assert words and "longer-than-median" in labels
    first = np.unique(pool.real.example_ids_N, return_index=True)[1]
    for name in words:
        word, y = name[4:], labels[name][first]
        assert 0.1 <= y.mean() <= 0.5
        assert all(bool(v) == (word in pool.texts_N[i].lower().split()) for v, i in zip(y, first))
    long = labels["longer-than-median"][first]
    assert (pool.n_tokens_N[first][long == 1] > np.median(pool.n_tokens_N[first])).all()


def test_embedded_calibration_runs_end_to_end_and_reports_coverage(tiny_cfg, tmp_path):
    result = calibrate_embedded(tiny_cfg)
    out = write_embedded_calibration(result, tmp_path / "embedded", command="bench")
    assert {p.name for p in out.iterdir()} >= {"summary.md", "fpr.csv", "coverage.csv", "truth.csv", ".auditkit-output"}
    assert "weight-control nulls" in (out / "summary.md").read_text()
    assert set(result.fpr["null"]) == {"null-labels", NULL_WEIGHT}
    weight = result.fpr[(result.fpr["null"] == NULL_WEIGHT) & (result.fpr["labels"] == "all")]
    assert set(weight["control"]) == set(tiny_cfg.weight_controls)
    n_labels = len(result.info["lexical_labels"])  # the words and the length cue
    assert (weight["n_null"] == n_labels * tiny_cfg.n_rotations).all()
    assert set(result.coverage["strength"]) == {0.0, 1.0}
    assert result.truth["n_truth_seeds"].eq(3).all() and result.truth["dataset"].notna().all()
    assert set(result.truth["control"]) == set(tiny_cfg.controls)
    # the reinitialised controls' prediction intervals are also read against their own target, one fresh draw
    fresh = result.coverage.dropna(subset=["fresh_n"])
    assert set(fresh["control"]) == set(tiny_cfg.weight_controls) and (fresh["strength"] > 0).all()
    assert (fresh["fresh_n"] == tiny_cfg.n_planted * tiny_cfg.n_truth_seeds).all()
    summary = (out / "summary.md").read_text()
    assert "fresh-draw coverage" in summary and "each interval against its own target" in summary
