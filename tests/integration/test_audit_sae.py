"""``auditkit audit --methods sae`` on a tiny model: rows, conclusions, options, report and CLI."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from auditkit.cli.main import app
from auditkit.cli.reproduce import reproduce_command
from typer.testing import CliRunner

from auditkit import extract as extract_mod
from auditkit.audit.config import AuditConfig
from auditkit.audit.options import SAEAuditOptions, parse_width
from auditkit.audit.run import run_audit
from auditkit.audit.sae import PROBE_METRICS, SAE_METRICS
from auditkit.errors import ConfigError
from auditkit.methods.sae import SAEConfig, save_sae, train_sae
from auditkit.models import ModelSpec
from auditkit.report.write import write_outputs

SEEDS = (0, 1, 2)
CONTROLS = ("random-tokens-uniform", "spectral-reinit", "shuffled-labels")
SMALL = dict(width=128, k=8, training_tokens=20_000, batch_size=256, splice_texts=16)
SMALL_CLI = [
    "--sae-width",
    "128",
    "--sae-k",
    "8",
    "--sae-tokens",
    "20000",
    "--sae-batch-size",
    "256",
    "--sae-splice-texts",
    "8",
]


pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(path, controls=CONTROLS, seeds=SEEDS, **sae):
    return AuditConfig(
        dataset=f"table:{path}",
        hook="blocks.1.hook_resid_post",
        methods=("sae",),
        controls=controls,
        seeds=seeds,
        model=ModelSpec(name="tiny-gpt2", seed=0),
        use_cache=False,
        progress=False,
        sae=SAEAuditOptions(**(SMALL | sae)),
    )


@pytest.fixture(scope="module")
def audit(tmp_path_factory, tiny_gpt2, yes_no_table):
    path = yes_no_table(tmp_path_factory.mktemp("sae") / "planted.csv")
    return run_audit(_cfg(path), loaded=tiny_gpt2)


def test_rows_for_every_arm_seed_and_metric(audit):
    rows = audit.rows
    assert (rows["method"] == "sae").all() and rows["value"].notna().all()
    got = set(zip(rows["control"], rows["seed"], rows["metric"]))
    for seed in SEEDS:
        for control in ("none", "random-tokens-uniform", "spectral-reinit"):
            assert {(control, seed, m) for m in SAE_METRICS} <= got, control
        # A label control reuses the real arm's SAE: probing rows only.
        shuffled = {m for c, s, m in got if c == "shuffled-labels" and s == seed}
        assert shuffled == set(PROBE_METRICS)
    draws = rows["draw"].fillna(0) if "draw" in rows.columns else 0
    keys = set(zip(rows["control"], rows["seed"], rows["metric"], draws))
    assert len(rows) == len(keys)  # one row per arm, seed, metric and control draw


def test_real_arm_conclusions(audit):
    real = audit.rows[audit.rows["control"] == "none"].groupby("metric")["value"]
    assert real.min()["explained_variance"] > 0.3  # held-out tokens, about their own mean
    assert real.mean()["l0"] == pytest.approx(8.0)  # TopK: exactly k active latents per token
    assert real.mean()["probe_acc_k5"] > 0.8  # the planted final word is readable from five latents
    sel = audit.selectivity.set_index(["control", "metric"])
    # The planted label lives in the real text: random tokens and shuffled labels destroy it.
    for control in ("random-tokens-uniform", "shuffled-labels"):
        assert sel.loc[(control, "probe_acc_k5"), "verdict"] == "selective", control


def test_every_arm_is_read_against_its_own_pca_and_identity_codes(audit):
    """ev_over_pca is each arm's explained variance over the PCA code of *that arm's* activations at the same k,
    and its verdict compares that relative gain across arms, through the same selectivity rows."""
    rows = audit.rows.pivot_table(index=["control", "seed"], columns="metric", values="value")
    arms = rows.loc[["none", "random-tokens-uniform", "spectral-reinit"]]
    assert (arms["ev_over_pca"] - arms["explained_variance"] / arms["ev_pca"]).abs().max() < 1e-12
    assert (arms["ev_over_identity"] - arms["explained_variance"] / arms["ev_identity"]).abs().max() < 1e-12
    assert (arms["ev_pca"] > arms["ev_identity"]).all()  # the principal basis is the better k-sparse basis
    ev_pca = arms["ev_pca"].groupby("control").mean()
    assert ev_pca["none"] != ev_pca["spectral-reinit"]  # each arm's own reference, not the real arm's
    sel = audit.selectivity.set_index(["control", "metric"])
    for control in ("random-tokens-uniform", "spectral-reinit"):
        row = sel.loc[(control, "ev_over_pca")]
        assert row["selectivity"] == pytest.approx(row["real"] - row["control_score"], abs=1e-12)
        assert sel.loc[(control, "ev_pca"), "verdict"] in ("differs", "similar")  # descriptive: two-sided


def test_lower_is_better_metrics_are_sign_flipped(audit):
    sel = audit.selectivity.set_index(["control", "metric"])
    for control in ("random-tokens-uniform", "spectral-reinit"):
        fvu, ev = sel.loc[(control, "fvu")], sel.loc[(control, "explained_variance")]
        # fvu = 1 - EV, so with fvu's sign flipped both say the same thing about the real arm.
        assert fvu["selectivity"] == pytest.approx(ev["selectivity"], abs=1e-9)
        assert fvu["selectivity"] == pytest.approx(fvu["control_score"] - fvu["real"], abs=1e-9)
        kl = sel.loc[(control, "kl")]
        assert kl["selectivity"] == pytest.approx(kl["control_score"] - kl["real"], abs=1e-9)
        # A descriptive metric gets a two-sided verdict; TopK's l0 is k in every arm.
        assert sel.loc[(control, "l0"), "verdict"] == "similar"


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (dict(architecture="gated"), "--sae-arch 'gated' unknown"),
        (dict(k=0), "k must be >= 1"),
        (dict(training_tokens=0), "training_tokens"),
        (dict(width=8, k=32), "exceeds width"),
        (dict(splice_texts=0), "splice_texts"),
    ],
)
def test_bad_options_are_config_errors(options, match):
    with pytest.raises(ConfigError, match=match):
        SAEAuditOptions(**options)


def test_width_parsing():
    assert parse_width("4x") == (4.0, None) and parse_width("1152") == (1.0, 1152)
    with pytest.raises(ConfigError, match="expansion factor"):
        parse_width("wide")


def test_loaded_sae_scores_the_real_arm_and_controls_train_its_shape(tmp_path, tiny_gpt2, yes_no_table, monkeypatch):
    d = tiny_gpt2.model.cfg.d_model
    x = torch.randn(2000, d, generator=torch.Generator().manual_seed(0))
    folder = save_sae(
        train_sae(x, SAEConfig(width=96, k=4, training_tokens=4000, batch_size=500, progress=False), seed=0),
        tmp_path / "sae",
    )
    path = yes_no_table(tmp_path / "t.csv", n=48)
    result = run_audit(
        _cfg(path, controls=("random-tokens-uniform",), seeds=(0, 1), load=str(folder)), loaded=tiny_gpt2
    )
    info = result.method_info["sae"].extras
    assert info["d_sae"] == 96 and info["config"]["k"] == 4 and info["loaded"] == str(folder)
    assert "train_s" in info["arms"]["random-tokens-uniform"]
    l0 = result.rows[result.rows["metric"] == "l0"].groupby("control")["value"].mean()
    assert l0["none"] == pytest.approx(4.0) and l0["random-tokens-uniform"] == pytest.approx(4.0)
    assert f"--sae-load {folder}" in reproduce_command(result.config, "out")
    # An SAE of another width cannot read this hook.
    other = save_sae(
        train_sae(torch.randn(500, 16), SAEConfig(width=32, k=4, training_tokens=500, progress=False), seed=0),
        tmp_path / "sae16",
    )
    monkeypatch.setattr(extract_mod, "_forward_rows", lambda *a, **k: pytest.fail("a forward pass ran"))
    with pytest.raises(ConfigError, match="16-dim"):  # before any forward pass (from the SAE's cfg.json)
        run_audit(_cfg(path, controls=("random-tokens-uniform",), seeds=(0, 1), load=str(other)), loaded=tiny_gpt2)


def test_report_section_is_generated_from_the_verdicts(audit, tmp_path):
    out = write_outputs(audit, tmp_path / "report", reproduce_command(audit.config, tmp_path / "report"))
    report = (out / "report.md").read_text()
    for needle in (
        "## Method: sae",
        "### Metrics by arm",
        "sae_arms.png",
        "### Metric definitions",
        "`fvu` (lower is better)",
        "| sae: explained_variance |",
        "verdicts.png",
        "--sae-arch topk --sae-width 128",
        # The legend states each metric's conventions: token pooling, BOS, variance about the mean.
        "nothing is averaged per text first",
        "about the held-out tokens' mean, not about zero",
        "the one made at BOS included",
        "`ev_over_pca` (higher is better)",
        "of *its own* activations at its SAE's k",
    ):
        assert needle in report, needle
    assert (out / "sae_arms.png").stat().st_size > 0
    section = report[report.index("### What separates") : report.index("### Metric definitions")]
    sel = audit.selectivity
    # Every metric is listed under exactly the controls it separates, per the verdicts.
    everywhere = sel.groupby("metric")["verdict"].apply(lambda v: v.isin(["selective", "differs"]).all())
    line = next((l for l in section.splitlines() if "from every control that ran" in l), "")
    for metric, separates in everywhere.items():
        assert (f" {metric}," in line or f" {metric}." in line) == separates, (metric, line)


runner = CliRunner()


def _one_line_exit_2(result, out, pattern):
    assert result.exit_code == 2, result.output
    lines = [l.strip() for l in result.stderr.splitlines() if "error:" in l]
    assert len(lines) == 1 and lines[0].startswith("error:") and pattern in lines[0], result.stderr
    assert not out.exists()


def _cli(tmp_path, yes_no_table, *args):
    out = tmp_path / "out"
    path = yes_no_table(tmp_path / "t.csv", n=48)
    result = runner.invoke(
        app,
        [
            "audit",
            "--model",
            "tiny-gpt2",
            "--dataset",
            f"table:{path}",
            "--hook",
            "blocks.1.hook_resid_post",
            "--methods",
            "sae",
            "--no-cache",
            "--out",
            str(out),
            *args,
        ],
    )
    return result, out


def test_cli_sae_audit_writes_the_sae_section(tmp_path, yes_no_table):
    result, out = _cli(tmp_path, yes_no_table, "--controls", "random-tokens-uniform", "--seeds", "0,1", *SMALL_CLI)
    assert result.exit_code == 0, result.output
    assert "sae: explained_variance" in result.output and "rand tok unif" in result.output
    report = (out / "report.md").read_text()
    assert "## Method: sae" in report and "--methods sae" in report and "--sae-tokens 20000" in report
    rows = pd.read_csv(out / "results.csv")
    assert set(rows["control"]) == {"none", "random-tokens-uniform"} and set(rows["seed"]) == {0, 1}


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["--sae-arch", "gated"], "--sae-arch 'gated' unknown"),
        (["--sae-width", "big"], "--sae-width 'big'"),
        (["--sae-k", "0"], "k must be >= 1"),
    ],
)
def test_cli_bad_sae_options_exit_2(tmp_path, yes_no_table, args, pattern):
    result, out = _cli(tmp_path, yes_no_table, *args)
    _one_line_exit_2(result, out, pattern)


def test_k_sparse_probes_of_the_latents_are_read_against_the_lexical_baselines(tmp_path, tiny_gpt2, yes_no_table):
    """The label is the last word: five latents read it, and so does the read token's identity, so the k-sparse
    probe is not selective over `lexical-last-token`, while it is over shuffled labels; each lexical arm has one
    row per seed and k-sparse metric (a text-only probe does not depend on k) and no SAE metric."""
    cfg = _cfg(yes_no_table(tmp_path / "planted.csv"), controls=("shuffled-labels", "lexical-last-token"))
    result = run_audit(cfg, loaded=tiny_gpt2)
    lexical = result.rows[result.rows["control"] == "lexical-last-token"]
    assert set(lexical["metric"]) == set(PROBE_METRICS) and len(lexical) == len(SEEDS) * len(PROBE_METRICS)
    sel = result.selectivity.set_index(["control", "metric"])
    assert sel.loc[("shuffled-labels", "probe_acc_k5"), "verdict"] == "selective"
    assert sel.loc[("lexical-last-token", "probe_acc_k5"), "verdict"] != "selective"
    assert "lexical-last-token" in result.method_info["sae"].extras["lexical"]["seconds"]
