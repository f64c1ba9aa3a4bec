"""Ground truth for the SAE audit (``auditkit sae-synth``): on sae-lens's synthetic model with known features,
a trained SAE must beat every random baseline on MCC, and pursuit on the true dictionary must reach the ceiling.

Sized to run in seconds: G = 64 features in D = 32 dimensions, a TopK SAE on 40k rows seen, 3 seeds."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from auditkit.cli.main import app
from typer.testing import CliRunner

from auditkit.audit.options import DICTIONARY_CONTROLS, SAE_BASELINES
from auditkit.calibration.synth_model import SynthModelOptions, build_synthetic_model, sample_rows
from auditkit.calibration.synth_sae import TRUE, SynthSAEConfig, run_synth_sae
from auditkit.errors import ConfigError
from auditkit.report.synth_sae import render_synth

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = SynthModelOptions(n_features=64, hidden_dim=32)
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def small():
    cfg = SynthSAEConfig(
        model=SMALL, architectures=("topk",), seeds=SEEDS, train_rows=4000, test_rows=2000, training_tokens=40_000
    )
    return run_synth_sae(cfg)


def _verdicts(result, method, metric):
    sel = result.selectivity
    return sel[(sel["method"] == method) & (sel["metric"] == metric)].set_index("control")["verdict"].to_dict()


def test_a_trained_sae_beats_every_random_baseline_on_mcc(small):
    assert _verdicts(small, "sae-topk", "mcc") == {name: "selective" for name in SAE_BASELINES}


def test_pursuit_on_the_true_dictionary_reaches_the_ceiling_and_beats_random_dictionaries(small):
    real = small.rows[(small.rows["method"] == TRUE) & (small.rows["control"] == "none")]
    by_metric = real.groupby("metric")["value"]
    assert by_metric.min()["mcc"] == pytest.approx(1.0, abs=1e-5) and by_metric.min()["uniqueness"] == 1.0
    for metric in ("mcc", "f1", "uniqueness"):
        assert _verdicts(small, TRUE, metric) == {name: "selective" for name in DICTIONARY_CONTROLS}, metric
    # The true dictionary's codes detect features better than the learned one's: the truth is the ceiling.
    learned = small.rows[(small.rows["method"] == "pursuit-topk") & (small.rows["control"] == "none")]
    assert by_metric.mean()["f1"] > learned.groupby("metric")["value"].mean()["f1"]


def test_every_method_and_control_is_scored_once_per_seed(small):
    counts = small.rows.groupby(["method", "control", "metric"]).size()
    assert set(counts) == {len(SEEDS)}
    controls = {m: set(g["control"]) - {"none"} for m, g in small.rows.groupby("method")}
    assert controls == {
        "sae-topk": set(SAE_BASELINES),
        "pursuit-topk": {*SAE_BASELINES, *DICTIONARY_CONTROLS},
        TRUE: set(DICTIONARY_CONTROLS),
    }


def test_the_summary_opens_with_the_verdict_matrix(small):
    lines = render_synth(small).splitlines()
    assert lines[0].startswith("# ") and lines[4] == "## Verdicts"
    assert lines[6].startswith("| method: metric |") and all(c in lines[6] for c in small.info["controls"])
    assert lines[8].startswith("| sae-topk: mcc |")
    assert any(line.startswith("| sae-topk: mcc |") and line.count("✓") == len(SAE_BASELINES) for line in lines[:20])
    n_cells = 3 * (len(SAE_BASELINES) + (len(SAE_BASELINES) + len(DICTIONARY_CONTROLS)) + len(DICTIONARY_CONTROLS))
    assert any(f" of {n_cells} cells selective. MCC" in line for line in lines[:40])


def test_rows_are_drawn_from_the_seed_and_leave_the_global_generator_alone():
    model = build_synthetic_model(SMALL)
    state = torch.random.get_rng_state()
    a, b, c = (sample_rows(model, 50, seed=s) for s in (7, 7, 8))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(a.x_ND, b.x_ND) and not torch.equal(a.x_ND, c.x_ND)
    assert torch.allclose(
        a.acts_NG @ model.feature_dict.feature_vectors.detach() + model.feature_dict.bias.detach(), a.x_ND, atol=1e-5
    )


@pytest.mark.parametrize(
    "kw",
    [
        dict(architectures=("topk", "gated")),
        dict(seeds=(0, 0)),
        dict(baselines=("pca", "nope")),
        dict(training_tokens=0),
        dict(model=dict(n_features=8, hierarchy_roots=4)),
    ],
)
def test_bad_settings_raise_before_any_compute(kw):
    if "model" in kw:
        with pytest.raises(ConfigError):
            SynthModelOptions(**kw["model"])
        return
    with pytest.raises(ConfigError):
        SynthSAEConfig(**kw)


runner = CliRunner()


def test_cli_bad_architecture_is_one_error_line_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["sae-synth", "--archs", "topk,gated", "--out", str(out)])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and result.output.startswith("error:"), (
        result.output
    )
    assert "gated" in result.output and not out.exists()


def test_cli_writes_the_report_and_prints_the_matrix(tmp_path):
    out = tmp_path / "out"
    args = ["sae-synth", "--archs", "topk", "--seeds", "0,1,2", "--features", "32", "--dim", "16", "--tokens", "4000"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "sae-topk: mcc" in result.output and "report:" in result.output
    assert {p.name for p in out.iterdir()} >= {"summary.md", "results.csv", "selectivity.csv", "run.json"}
    rows = pd.read_csv(out / "results.csv")
    assert list(rows.columns) == ["method", "control", "seed", "metric", "value"]
    assert "Reproduce: `auditkit sae-synth --archs topk" in (out / "summary.md").read_text()
