"""The audit's ``pursuit`` method end to end on a tiny model: conclusions, not just shapes."""

from __future__ import annotations

import pandas as pd
import pytest
from auditkit.cli.main import app
from typer.testing import CliRunner

from auditkit.audit.config import AuditConfig
from auditkit.audit.options import PursuitAuditOptions
from auditkit.audit.run import run_audit
from auditkit.errors import ConfigError
from auditkit.models import ModelSpec, load_model

SEEDS = (0, 1, 2)
CODE_PROBE = ("accuracy", "balanced_accuracy", "macro_f1", "auroc")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny():
    return load_model(ModelSpec(name="tiny-gpt2", seed=0))


def _run(path, tiny, controls, **opts):
    cfg = AuditConfig(
        dataset=f"table:{path}",
        hook="blocks.0.hook_resid_pre",
        seeds=SEEDS,
        methods=("pursuit",),
        controls=controls,
        use_cache=False,
        progress=False,
        model=ModelSpec(name="tiny-gpt2", seed=0),
        pursuit=PursuitAuditOptions(**opts),
    )
    return run_audit(cfg, loaded=tiny)


def _means(result):
    return result.rows.groupby(["control", "metric"])["value"].mean().unstack("metric")


def test_embedding_dictionary_reconstructs_its_own_model_and_codes_carry_the_label(tmp_path, tiny, yes_no_table):
    """At the residual stream entering block 0 a row is W_E[token] + W_pos[position]: the model's own W_E
    explains it far better than random dictionaries of the same shape or spectrum, a spectral-reinit model
    re-derives its own W_E and is explained as well (the fit needs no training), and the codes carry the
    planted label while shuffled labels fall to chance."""
    result = _run(
        yes_no_table(tmp_path / "t.csv", words=(3, 8)),
        tiny,
        ("shuffled-labels", "spectral-reinit"),
        ks=(1, 2, 4),
        center=False,
    )
    m = _means(result)
    assert set(m.index) == {"none", "shuffled-labels", "spectral-reinit", "gaussian-dict", "spectral-dict"}
    assert set(result.rows.query("control == 'shuffled-labels'")["metric"]) == set(CODE_PROBE)
    fvu = m[["fvu@k=1", "fvu@k=2", "fvu@k=4"]]
    assert (fvu.loc["none"].diff().dropna() < 0).all(), fvu  # FVU falls as L0 grows
    for control in ("gaussian-dict", "spectral-dict"):
        assert fvu.loc[control, "fvu@k=4"] > fvu.loc["none", "fvu@k=4"] + 0.15, fvu
    assert abs(fvu.loc["spectral-reinit", "fvu@k=4"] - fvu.loc["none", "fvu@k=4"]) < 0.1, fvu
    assert (m.loc[["none", "gaussian-dict"], "mean_l0"] == 4).all()
    assert m.loc["none", "accuracy"] > 0.95 and abs(m.loc["shuffled-labels", "accuracy"] - 0.5) < 0.2
    sel = result.selectivity.set_index(["control", "metric"])
    assert sel.loc[("gaussian-dict", "fvu@k=4"), "verdict"] == "selective"
    assert sel.loc[("shuffled-labels", "accuracy"), "verdict"] == "selective"
    assert sel.loc[("spectral-reinit", "fvu@k=4"), "verdict"] != "selective"
    assert result.method_info["pursuit"].headline == ("fvu@k=4", "accuracy")


def test_probe_and_sae_dictionaries(tmp_path, tiny, yes_no_table):
    """A binary probe gives one atom, so the sweep clips to k = 1; a trained SAE reports its amortisation
    gap, and OMP on its own decoder at matched L0 reconstructs at least as well as its encoder."""
    path = yes_no_table(tmp_path / "t.csv", n=80, words=(3, 8))
    probe = _run(path, tiny, ("shuffled-labels",), dictionary="probe", ks=(1, 8))
    assert result_metrics(probe) >= {"fvu@k=1", "accuracy"} and "fvu@k=8" not in result_metrics(probe)
    assert probe.method_info["pursuit"].extras["n_atoms"] == 1
    sae = _run(path, tiny, ("shuffled-labels",), dictionary="sae", ks=(2, 4), sae_k=4, sae_tokens=4000)
    m = _means(sae)
    assert {"fvu_sae_encoder", "fvu_pursuit_matched", "amortisation_gap"} <= set(m.columns)
    assert m.loc["none", "fvu_pursuit_matched"] <= m.loc["none", "fvu_sae_encoder"] + 1e-6
    assert m.loc["none", "fvu@k=4"] < m.loc["gaussian-dict", "fvu@k=4"]


@pytest.mark.parametrize(
    ("solver", "sweep"), [("gradient", ["fvu@k=1", "fvu@k=4"]), ("nn-lasso", ["fvu@alpha=0.5", "fvu@alpha=0.1"])]
)
def test_other_solvers_trace_a_falling_curve_below_random_dictionaries(tmp_path, tiny, yes_no_table, solver, sweep):
    result = _run(
        yes_no_table(tmp_path / "t.csv", n=60, words=(3, 8)),
        tiny,
        ("shuffled-labels",),
        solver=solver,
        ks=(1, 4),
        alphas=(0.5, 0.1),
        center=False,
    )
    m = _means(result)
    assert result.method_info["pursuit"].extras["sweep"] == sweep
    assert m.loc["none", sweep[1]] < m.loc["none", sweep[0]] < 1.0
    if solver == "gradient":  # matched L0: the model's own embeddings explain its layer-0 rows better
        assert m.loc["none", sweep[1]] < m.loc["gaussian-dict", sweep[1]] - 0.1, m[sweep]
    else:  # a smaller penalty buys a denser code; arms are matched in penalty, not in L0, so FVU alone
        # does not rank them (a random dictionary spends more atoms at the same alpha / alpha_max)
        l0 = m[["mean_l0@alpha=0.5", "mean_l0@alpha=0.1"]].dropna()  # label controls have no reconstruction rows
        assert len(l0) == 3 and (l0["mean_l0@alpha=0.1"] > l0["mean_l0@alpha=0.5"]).all(), l0


def result_metrics(result) -> set[str]:
    return set(result.rows["metric"])


@pytest.mark.parametrize(
    ("opts", "pattern"),
    [
        ({"dictionary": "pca"}, "--dictionary"),
        ({"ks": (0, 4)}, "--pursuit-k"),
        ({"solver": "lars"}, "--pursuit-solver"),
        ({"alphas": (2.0,)}, "--pursuit-alphas"),
        ({"sae_path": "x"}, "--pursuit-sae needs --dictionary sae"),
    ],
)
def test_bad_options_raise_config_errors(opts, pattern):
    with pytest.raises(ConfigError, match=pattern):
        PursuitAuditOptions(**opts)


def test_cli_writes_the_pursuit_section_and_rejects_a_bad_dictionary(tmp_path, yes_no_table):
    runner, out = CliRunner(), tmp_path / "out"
    common = [
        "audit",
        "--model",
        "tiny-gpt2",
        "--dataset",
        f"table:{yes_no_table(tmp_path / 't.csv', n=60, words=(3, 8))}",
        "--hook",
        "blocks.0.hook_resid_pre",
        "--methods",
        "pursuit",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    result = runner.invoke(app, [*common, "--controls", "shuffled-labels", "--pursuit-k", "1,2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text()
    for needle in (
        "## Method: pursuit",
        "### FVU against L0",
        "fvu_l0.png",
        "#### gaussian-dict",
        "### Verdict",
        "--dictionary embed --pursuit-solver omp --pursuit-k 1,2",
    ):
        assert needle in report, needle
    assert (out / "fvu_l0.png").stat().st_size > 0
    rows = pd.read_csv(out / "results.csv")
    assert set(rows["control"]) == {"none", "shuffled-labels", "gaussian-dict", "spectral-dict"}
    bad = runner.invoke(app, [*common, "--dictionary", "pca", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "dictionary" in bad.output.lower() and not (tmp_path / "bad").exists()
    bad = runner.invoke(app, [*common, "--pursuit-k", "1,x", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "error: --pursuit-k" in bad.output and not (tmp_path / "bad").exists()


def test_the_code_probe_is_read_against_the_lexical_baselines(tmp_path, tiny, yes_no_table):
    """The label is the last word (' yes' / ' no'): the codes carry it, and so do the words alone. The code probe is
    selective over shuffled labels but not over the bag-of-words or last-token baselines, which read the label as
    well; the lexical arms have code-probe metrics only (no reconstruction), on the code probe's own splits."""
    result = _run(
        yes_no_table(tmp_path / "t.csv", words=(3, 8)),
        tiny,
        ("shuffled-labels", "lexical-bow", "lexical-last-token"),
        ks=(1, 2, 4),
        center=False,
    )
    for control in ("lexical-bow", "lexical-last-token"):
        assert set(result.rows.query("control == @control")["metric"]) == set(CODE_PROBE)
    sel = result.selectivity.set_index(["control", "metric"])
    assert sel.loc[("shuffled-labels", "accuracy"), "verdict"] == "selective"
    assert sel.loc[("lexical-bow", "accuracy"), "verdict"] != "selective"
    assert sel.loc[("lexical-last-token", "accuracy"), "verdict"] != "selective"
    assert "lexical-bow" in result.method_info["pursuit"].extras["lexical"]["seconds"]
