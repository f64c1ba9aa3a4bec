"""The SAE baselines as controls of ``auditkit audit --methods sae`` on the tiny model."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from auditkit.cli.main import app
from typer.testing import CliRunner

from auditkit.audit.config import AuditConfig
from auditkit.audit.options import SAE_BASELINES, SAEAuditOptions
from auditkit.audit.run import resolve_controls, run_audit
from auditkit.audit.sae import SAE_METRICS, default_controls
from auditkit.audit.saved import load_run
from auditkit.methods.sae import SAEConfig, save_sae
from auditkit.methods.sae.train import initial_sae
from auditkit.models import ModelSpec
from auditkit.report.sae import RELIABILITY, sae_section
from auditkit.report.write import rerender_outputs, write_outputs

SMALL = dict(width=128, k=8, training_tokens=20_000, batch_size=256, splice_texts=8)
BASELINES = tuple(SAE_BASELINES)

pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(path, controls=BASELINES, seeds=(0, 1, 2), methods=("sae",), **sae):
    return AuditConfig(
        dataset=f"table:{path}",
        hook="blocks.1.hook_resid_post",
        methods=methods,
        controls=controls,
        seeds=seeds,
        model=ModelSpec(name="tiny-gpt2", seed=0),
        use_cache=False,
        progress=False,
        sae=SAEAuditOptions(**(SMALL | sae)),
    )


@pytest.fixture(scope="module")
def audit(tmp_path_factory, tiny_gpt2, yes_no_table):
    path = yes_no_table(tmp_path_factory.mktemp("baselines") / "planted.csv", n=64)
    return run_audit(_cfg(path, controls=(*BASELINES, "shuffled-labels")), loaded=tiny_gpt2)


def test_every_baseline_is_an_arm_with_every_metric(audit):
    rows = audit.rows
    for control in BASELINES:
        sub = rows[rows["control"] == control]
        assert set(sub["metric"]) == set(SAE_METRICS), control
        assert sorted(sub["seed"].unique()) == [0, 1, 2]
    info = audit.method_info["sae"].extras
    d = 64  # tiny-gpt2's d_model
    assert info["baselines"]["pca"]["d_sae"] == 2 * min(128 // 2, d)
    assert info["baselines"]["identity"]["d_sae"] == 2 * d
    trained_shape = ("sae-untrained", "sae-frozen-decoder", "sae-soft-frozen-decoder", "sae-frozen-encoder")
    assert {info["baselines"][c]["d_sae"] for c in trained_shape} == {128}
    l0 = rows[rows["metric"] == "l0"].groupby("control")["value"].mean()
    assert (l0 - 8).abs().max() < 1e-6, l0  # same k everywhere
    sel = audit.selectivity.set_index(["control", "metric"])
    # Training beats its own starting point on reconstruction.
    assert sel.loc[("sae-untrained", "explained_variance"), "verdict"] == "selective"
    assert set(audit.selectivity["control"]) == {*BASELINES, "shuffled-labels"}
    # The trained-under-a-constraint baselines trained (same budget as the real arm's SAE) and beat their start.
    ev = rows[rows["metric"] == "explained_variance"].groupby("control")["value"].mean()
    for control in ("sae-soft-frozen-decoder", "sae-frozen-encoder"):
        assert info["arms"][control]["train_s"] > 10 * info["arms"]["sae-untrained"]["train_s"], control
        assert ev[control] > ev["sae-untrained"] + 0.1, ev


def test_baselines_are_read_against_the_real_arms_own_pca_and_identity_codes(audit):
    """Every baseline scores the real activations, so its references are the real arm's: the pca baseline's
    explained variance *is* the real arm's ev_pca, and its ev_over_pca is 1."""
    rows = audit.rows.set_index(["control", "seed", "metric"])["value"]
    for seed in (0, 1, 2):
        assert rows[("none", seed, "ev_pca")] == pytest.approx(rows[("pca", seed, "explained_variance")], abs=1e-9)
        ident = rows[("identity", seed, "explained_variance")]
        assert rows[("none", seed, "ev_identity")] == pytest.approx(ident, abs=1e-9)
        assert rows[("pca", seed, "ev_over_pca")] == pytest.approx(1.0, abs=1e-9)
        for control in BASELINES:
            assert rows[(control, seed, "ev_pca")] == rows[("none", seed, "ev_pca")]
            ratio = rows[(control, seed, "explained_variance")] / rows[(control, seed, "ev_pca")]
            assert rows[(control, seed, "ev_over_pca")] == pytest.approx(ratio, rel=1e-12)


def test_report_says_which_question_each_control_answers(audit):
    text = "\n".join(sae_section(audit))
    assert "did training find anything" in text and "do the latents' probes read the labels" in text
    assert "Against the SAE baselines:" in text  # the separation is read per group of controls
    for control in BASELINES:
        assert f"#### {control}" in text


def test_dead_and_dense_fractions_against_a_fixed_basis_are_descriptive(audit):
    """Issue 25: which PCA or identity latents never or often fire is set by how those codes are built, so the
    trained SAE's difference from them gets no verdict; its values and the other baselines' verdicts stay."""
    sel = audit.selectivity.set_index(["metric", "control"])
    for metric in ("dead_fraction", "dense_fraction"):
        for control in ("pca", "identity"):
            row = sel.loc[(metric, control)]
            assert row["verdict"] == "descriptive" and pd.isna(row["mde"]) and pd.notna(row["selectivity"])
            assert ((audit.rows["control"] == control) & (audit.rows["metric"] == metric)).sum() == 3
        assert sel.loc[(metric, "sae-untrained"), "verdict"] in (
            "selective",
            "not selective",
            "control better",
            "inconclusive",
        )
    assert (audit.selectivity["verdict"] == "descriptive").sum() == 4
    text = "\n".join(sae_section(audit))
    assert "No verdict (descriptive" in text and "dead_fraction vs pca" in text and "· descriptive:" in text


def test_the_reliability_table_says_which_metrics_tell_trained_from_random(audit, tmp_path):
    """Written with the report, read back from the saved run, and written again by a re-render."""
    out = write_outputs(audit, tmp_path / "run", "auditkit audit")
    table = pd.read_csv(out / RELIABILITY).set_index(["metric", "control"])
    assert set(table.index.get_level_values("control")) == set(BASELINES)  # not the label control
    assert set(table.index.get_level_values("metric")) == set(SAE_METRICS)
    ev = table.loc[("explained_variance", "sae-untrained")]
    assert ev["separates"] == True and ev["detectable_kind"] == "mde" and ev["detectable"] > 0
    assert ev["reseed_sd"] > 0
    # ev_pca is the real arm's PCA code for every baseline: identical values, so it separates from none.
    same = table.xs("ev_pca", level="metric")
    assert (same["separates"] == False).all() and (same["verdict"] == "similar").all()
    assert table.loc[("dead_fraction", "pca"), "detectable_kind"] == "none"
    report = (out / "report.md").read_text()
    assert "### Which metrics can tell trained from random at this budget" in report
    first = (out / RELIABILITY).read_bytes()
    (out / RELIABILITY).unlink()
    result, run = load_run(out)
    rerender_outputs(result, out, run["command"])
    assert (out / RELIABILITY).read_bytes() == first
    assert "### Which metrics can tell trained" in (out / "report.md").read_text()


def test_an_untrained_sae_is_not_selective_against_sae_untrained(tmp_path, tiny_gpt2, yes_no_table):
    """The issue's case: an SAE at initialisation, saved and loaded, on a planted task. Against random tokens it
    may look selective (random projections of real activations keep the label); against its own
    initialisation nothing it scores is better."""
    d = tiny_gpt2.model.cfg.d_model
    x = torch.randn(2000, d, generator=torch.Generator().manual_seed(0))
    untrained = initial_sae(x, SAEConfig(width=128, k=8, progress=False), seed=123)
    folder = save_sae(untrained, tmp_path / "untrained")
    path = yes_no_table(tmp_path / "t.csv", n=64)
    result = run_audit(_cfg(path, controls=("sae-untrained",), load=str(folder)), loaded=tiny_gpt2)
    sel = result.selectivity
    assert set(sel["control"]) == {"sae-untrained"}
    assert set(sel["metric"]) == set(SAE_METRICS)  # the PCA- and identity-relative EV included
    # No metric: the CE splice metrics are read as distances to the clean model, so a near-zero reconstruction
    # that happens to lower CE below the clean model's is no win either.
    assert not (sel["verdict"] == "selective").any(), sel[sel["verdict"] == "selective"]
    probing = sel[sel["metric"].str.startswith("probe_acc_")]
    assert len(probing) == 3 and (probing["verdict"] == "not selective").all()


def test_baselines_are_default_for_sae_skipped_by_other_methods_and_accepted_by_the_cli(
    tmp_path, tiny_gpt2, yes_no_table
):
    assert set(BASELINES) <= set(default_controls())
    path = yes_no_table(tmp_path / "t.csv", n=48)
    assert set(BASELINES) <= set(resolve_controls(_cfg(path, controls=None)))
    # The probe method skips them: no arm is extracted for them and no row carries them.
    probe = run_audit(
        _cfg(path, controls=("pca", "shuffled-labels"), seeds=(0, 1), methods=("probe",)), loaded=tiny_gpt2
    )
    assert set(probe.rows["control"]) == {"none", "shuffled-labels"}
    bad = CliRunner().invoke(
        app, ["audit", "--methods", "sae", "--controls", "pca,sae-untrianed", "--out", str(tmp_path / "o")]
    )
    assert bad.exit_code == 2 and "error:" in bad.output and "sae-untrianed" in bad.output
