"""The embedded SAE evaluation (``auditkit sae-evals``), run on the tiny model at a size that takes seconds: the SAE
corpus never holds a text the probes read, probing tests get q-values over tasks and controls, the headline
matrix has one row per (metric, budget) against every baseline, saved SAEs are reused only for the inputs that
made them, and bad input is one line before anything is computed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from auditkit.cli.main import app
from typer.testing import CliRunner

from auditkit.audit.options import SAE_BASELINES
from auditkit.calibration import sae_breadth
from auditkit.calibration.sae_breadth import BASES, SAEBreadthConfig, run_sae_breadth
from auditkit.report.sae_breadth import reliability, render, verdict_matrix

pytestmark = pytest.mark.usefixtures("one_thread")

TASKS = ("92_glue_sst2", "5_hist_fig_ismale")


def _cfg(tmp_path, **kw):
    base = dict(
        model="tiny-gpt2",
        tasks=TASKS,
        max_examples=40,
        max_length=24,
        seeds=(0, 1),
        budgets=(256, 1024),
        eval_tokens=256,
        splice_texts=2,
        width=64,
        k=4,
        batch_size=64,
        cache_dir=tmp_path / "cache",
        progress=False,
    )
    return SAEBreadthConfig(**(base | kw))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return run_sae_breadth(_cfg(tmp_path_factory.mktemp("sae-evals")))


def test_the_sae_corpus_holds_no_text_a_probe_reads(small, tmp_path):
    from auditkit.models import ModelSpec, load_model

    cfg = small.config
    loaded = load_model(ModelSpec(name=cfg.model, cache_dir=cfg.cache_dir))
    probe_texts = {t for tag in TASKS for t in sae_breadth.task_arms(cfg, loaded, tag)[0].dataset.texts}
    corpus, info = sae_breadth.pooled_corpus(cfg, loaded.model.tokenizer, probe_texts)
    assert not set(corpus.texts) & probe_texts
    assert info["excluded"] > 0  # the probed texts are shipped texts: leaving them out is not vacuous
    assert info["tokens"] >= max(cfg.budgets) + cfg.eval_tokens


def test_probing_tests_get_q_values_and_the_matrix_covers_every_baseline(small):
    sel = small.selectivity
    probing = sel[sel["method"] != "sae"]
    assert set(probing["method"]) == set(TASKS)
    tested = probing["p_value"].notna()  # a zero-width interval (identical predictions) is no test
    assert tested.sum() > len(probing) / 2
    assert probing.loc[tested, "q_value"].between(0, 1).all()
    assert probing.loc[~tested, "q_value"].isna().all()
    # BH: within one (metric, budget) family a q-value is never below its p-value
    assert (probing.loc[tested, "q_value"] >= probing.loc[tested, "p_value"] - 1e-12).all()
    assert sel.loc[sel["method"] == "sae", "q_value"].isna().all()
    matrix = verdict_matrix(small)
    rows = set(matrix["row"])
    assert {"explained_variance @ 256", "mean_probe_acc_k5 @ 1k"} <= rows
    ev = matrix[matrix["row"] == "explained_variance @ 1k"]
    assert set(ev["control"]) == set(SAE_BASELINES)  # the bases only read probes
    probe = matrix[matrix["row"] == "mean_probe_acc_k5 @ 1k"]
    assert set(probe["control"]) == set(SAE_BASELINES) | set(BASES)


def test_the_dense_probe_is_one_fit_paired_with_every_k(small):
    rows = small.rows
    dense = rows[(rows["control"] == "dense-probe") & (rows["method"] != "sae")]
    per_k = dense.pivot_table(index=["budget", "method", "seed"], columns="metric", values="value")
    assert np.allclose(per_k.to_numpy(), per_k.to_numpy()[:, :1])


def test_the_report_opens_with_the_matrix_and_states_the_budgets(small):
    text = render(small)
    head = text.split("## Sparse probing")[0]
    assert "| metric @ budget |" in head and "sae-frozen-decoder" in head
    assert "## How separation changes with the budget" in text
    rel = reliability(small)
    assert set(rel["budget"]) == {"256", "1k"}


def test_saved_saes_are_reused_for_their_inputs_and_retrained_when_damaged(small, caplog):
    cfg = small.config
    store_root = cfg.cache_dir / "sae-evals"
    saved = sorted(p for p in store_root.iterdir() if p.is_dir())
    assert saved, "trained SAEs are kept"
    again = run_sae_breadth(cfg)
    assert again.selectivity["selectivity"].equals(small.selectivity["selectivity"])
    trained = {k: v for k, v in again.info["seconds"].items() if k.startswith("train sae")}
    assert all(v < 5 for v in trained.values())  # read back, not trained (each takes longer to train)
    weights = next(saved[0].glob("sae/*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    caplog.set_level("WARNING")
    third = run_sae_breadth(cfg)
    assert "does not match its recorded checksums" in caplog.text
    assert third.selectivity["selectivity"].equals(small.selectivity["selectivity"])
    request = json.loads((saved[0] / "request.json").read_text())
    assert request["corpus"] and request["budget"] in cfg.budgets


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--tasks", "no_such_task"], "not shipped binary sae-probes tasks"),
        (["--budgets", "49k"], "--budgets '49k' is not a comma-separated list of ints"),
        (["--seeds", "0"], "at least two seeds"),
    ],
)
def test_bad_input_is_one_line_before_any_compute(tmp_path, args, needle):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["sae-evals", *args, "--out", str(out)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]
    assert not out.exists()


def test_held_out_rows_share_no_text_with_the_training_rows():
    # texts 0-3 of 3, 4, 2 and 5 rows; the first 5 rows train: text 1 straddles the cut and is on neither side
    ex = np.repeat([0, 1, 2, 3], [3, 4, 2, 5])
    keep = sae_breadth.held_out_rows(ex, 5, minimum=2)
    assert set(ex[keep]) == {2, 3} and not set(ex[keep]) & set(ex[:5])
    assert keep[:7].sum() == 0  # the straddling text's later rows are not held out
    with pytest.raises(Exception, match="raise --eval-tokens"):
        sae_breadth.held_out_rows(ex, 5, minimum=8)
