"""Audits with the online codelength (``--mdl``): a planted label compresses and is selective in bits against
its label controls, a noise label is not; the report carries the code and its figure; the reproduce command
round-trips."""

from __future__ import annotations

import json
import shlex

import pandas as pd
import pytest
from auditkit.cli.main import app
from typer.testing import CliRunner

from auditkit.audit.config import AuditConfig
from auditkit.audit.run import run_audit
from auditkit.errors import ConfigError
from auditkit.models import ModelSpec, load_model
from auditkit.seeding import numpy_rng

pytestmark = pytest.mark.usefixtures("one_thread")

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "iota", "kappa", "lambda", "sigma", "omega"]
SEEDS = (0, 1, 2, 3, 4)
CONTROLS = ("shuffled-labels", "control-task")


def _table(path, labels, planted: bool, seed: int = 0):
    rng = numpy_rng(seed)
    texts = []
    for label in labels:
        words = " ".join(rng.choice(WORDS, size=int(rng.integers(3, 8))))
        texts.append(words + ((" yes" if label == 1 else " no") if planted else " " + str(rng.choice(WORDS))))
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def tiny():
    return load_model(ModelSpec(name="tiny-gpt2", seed=0))


def _audit(path, tiny, **kw):
    cfg = AuditConfig(
        dataset=f"table:{path}",
        hook="blocks.1.hook_resid_post",
        controls=CONTROLS,
        progress=False,
        use_cache=False,
        model=ModelSpec(name="tiny-gpt2", seed=0),
        seeds=SEEDS,
        probes=("logistic", "mlp"),
        mdl=True,
        **kw,
    )
    return run_audit(cfg, loaded=tiny)


def test_planted_label_compresses_and_is_selective_in_bits_against_its_label_controls(tmp_path, tiny):
    result = _audit(_table(tmp_path / "planted.csv", [i % 2 for i in range(200)], planted=True), tiny)
    sel = result.selectivity.set_index(["method", "control", "metric"])
    for method in ("probe-logistic", "probe-mlp"):
        for control in CONTROLS:
            bits = sel.loc[(method, control, "codelength_per_label")]
            assert bits["verdict"] == "selective" and bits["ci_low"] > 0, (method, control, bits)
            assert bits["real"] < bits["control_score"]  # fewer bits on the real arm
            assert sel.loc[(method, control, "compression"), "verdict"] == "selective"
    comp = result.rows.query("metric == 'compression' and method == 'probe-logistic'").groupby("control")["value"]
    assert comp.mean()["none"] > 2 and (comp.mean()[list(CONTROLS)] < 1.1).all(), comp.mean()
    assert result.method_info["probe"].headline == ("accuracy", "codelength_per_label", "compression")
    assert set(result.method_info["probe"].extras["mdl"]["blocks"]) == {"logistic", "mlp"}


def test_noise_label_is_not_selective_in_bits(tmp_path, tiny):
    labels = numpy_rng(7).integers(0, 2, size=200)
    result = _audit(_table(tmp_path / "noise.csv", labels, planted=False), tiny)
    sel = result.selectivity[result.selectivity["metric"].isin(["codelength_per_label", "compression"])]
    assert len(sel) == 2 * 2 * len(CONTROLS)
    assert (sel["verdict"] != "selective").all(), sel[["method", "control", "metric", "selectivity", "verdict"]]


def test_mdl_cli_writes_the_code_and_its_figure_and_the_command_round_trips(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _table(tmp_path / "t.csv", [i % 2 for i in range(80)], planted=True)
    args = [
        "audit",
        "--model",
        "tiny-gpt2",
        "--dataset",
        f"table:{path.name}",
        "--controls",
        "shuffled-labels",
        "--probes",
        "logistic,k-sparse:k=1",
        "--mdl",
        "--mdl-schedule",
        "0.1,0.5,1",
        "--no-cache",
        "--out",
        "out",
    ]
    runner = CliRunner()
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = (tmp_path / "out" / "report.md").read_text()
    assert "### Online code (MDL)" in report and "mdl_blocks.png" in report and "Not coded: k-sparse:k=1" in report
    assert (tmp_path / "out" / "mdl_blocks.png").stat().st_size > 0
    assert "probe-logistic: codelength_per_label" in report.split("## What was audited")[0]  # in the verdict matrix
    assert "codelength_per_label" in result.output  # and in the terminal's matrix
    command = json.loads((tmp_path / "out" / "run.json").read_text())["command"]
    words = shlex.split(command)
    assert words[words.index("--mdl-schedule") + 1] == "0.1,0.5,1.0" and "--mdl" in words
    asked = []
    monkeypatch.setattr("auditkit.sweep.run.run_audit", lambda cfg, **kw: asked.append(cfg) or 1 / 0)
    runner.invoke(app, [*words[1:-2], "--out", "again"])
    assert asked and asked[0].mdl and asked[0].mdl_schedule == (0.1, 0.5, 1.0)


def test_mdl_without_the_probe_method_or_with_a_bad_schedule_is_one_error():
    with pytest.raises(ConfigError, match="--mdl scores the probe method"):
        AuditConfig(methods=("sae",), mdl=True)
    with pytest.raises(ConfigError, match="schedule"):
        AuditConfig(mdl=True, mdl_schedule=(0.5, 0.25, 1.0))
    result = CliRunner().invoke(app, ["audit", "--mdl", "--mdl-schedule", "0.5,x", "--out", "never"])
    assert result.exit_code == 2 and result.stderr.startswith("error:")


def test_a_sweep_scores_the_codelength_per_cell_with_its_direction(tmp_path):
    """The label is the class of the first word, read at the last token: unreadable before any attention
    (block 0's input), readable after block 0. The sweep's cells are audits, so the codelength verdict (lower
    is better) follows the layer; the reproduce command keeps --mdl."""
    import random

    from auditkit.cli.reproduce import sweep_command

    from auditkit.sweep.config import SweepConfig
    from auditkit.sweep.run import run_sweep

    rng = random.Random(0)
    first = (["river", "cloud", "quiet", "metal"], ["apple", "stone", "green", "happy"])
    filler = [
        "the",
        "a",
        "of",
        "and",
        "to",
        "in",
        "is",
        "was",
        "for",
        "on",
        "with",
        "as",
        "by",
        "at",
        "from",
        "this",
        "that",
        "it",
        "be",
        "are",
    ]
    texts = [
        " ".join([rng.choice(first[i % 2]), *rng.choices(filler, k=rng.randint(3, 6))]) + f" {i}" for i in range(240)
    ]
    pd.DataFrame({"text": texts, "label": [i % 2 for i in range(240)]}).to_csv(tmp_path / "t.csv", index=False)
    audit = AuditConfig(
        model=ModelSpec(name="tiny-gpt2", seed=0, cache_dir=tmp_path / "cache"),
        max_examples=None,
        max_length=16,
        controls=("shuffled-labels",),
        probes=("logistic",),
        progress=False,
        mdl=True,
    )
    hooks = "blocks.0.hook_resid_pre,blocks.1.hook_resid_pre"
    cfg = SweepConfig(audit=audit, datasets=f"table:{tmp_path / 't.csv'}", hooks=hooks)
    result = run_sweep(cfg)
    sel = result.selectivity.query("metric == 'codelength_per_label'").set_index("hook")
    assert sel.loc["blocks.0.hook_resid_pre", "verdict"] != "selective"
    assert sel.loc["blocks.1.hook_resid_pre", "verdict"] == "selective"
    assert sel.loc["blocks.1.hook_resid_pre", "real"] < sel.loc["blocks.1.hook_resid_pre", "control_score"]
    assert "--mdl" in shlex.split(sweep_command(cfg, tmp_path / "out"))
