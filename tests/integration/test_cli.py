"""The CLI through Typer's CliRunner: outputs of a tiny audit, and every bad input -> one line, exit 2."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from auditkit.cli.main import app
from typer.testing import CliRunner

runner = CliRunner()


def _table(path, n=40, labels=None, text=True):
    labels = labels if labels is not None else [i % 2 for i in range(n)]
    pd.DataFrame(
        {"text": [f"sample {i} {'yes' if l else 'no'}" for i, l in enumerate(labels)], "label": labels}
    ).to_csv(path, index=False)
    return path


def _audit(tmp_path, *args):
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["audit", "--model", "tiny-gpt2", "--cache-dir", str(tmp_path / "cache"), "--out", str(out), *args]
    )
    return result, out


def test_tiny_audit_writes_report_results_and_run(tmp_path):
    result, out = _audit(
        tmp_path, "--dataset", f"table:{_table(tmp_path / 't.csv')}", "--hook", "blocks.1.hook_resid_post"
    )
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(out / "results.csv")
    # degenerate: the arm's training labels held one class (its verdict is then "degenerate")
    assert list(rows.columns) == ["method", "control", "seed", "draw", "metric", "value", "degenerate"]
    # Sentence-level data: the lexical baselines run, the control task does not (its type would be the text).
    assert set(rows["control"]) == {
        "none",
        "shuffled-labels",
        "random-tokens-uniform",
        "random-tokens-unigram",
        "spectral-reinit",
        "gaussian-reinit",
        "lexical-bow",
        "lexical-length",
        "lexical-last-token",
    }
    assert rows["seed"].nunique() == 3
    report = (out / "report.md").read_text()
    for needle in (
        "## What was audited",
        "95% CI",
        "auditkit audit --model tiny-gpt2",
        "Verdict rule",
        "arms.png",
        "### spectral-reinit",
        "### lexical-bow",
        "selective over lexical",
        "`control-task` did not run",
    ):
        assert needle in report
    assert "--controls shuffled-labels,random-tokens-uniform" in report  # the reproduce command: no control-task
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["seeds"] == [0, 1, 2] and "torch" in run["versions"] and run["timings"]["total_s"] > 0
    assert run["provenance"]["source"] == "random-init"
    # The thread count moves fitted numbers in the 3rd-6th decimal: a rerun needs it to match.
    assert run["versions"]["torch_threads"] == torch.get_num_threads()


def _assert_one_line_exit_2(result, out, pattern):
    assert result.exit_code == 2, result.output
    # Progress bars share stderr; the error itself is exactly one line.
    lines = [l.strip() for l in result.stderr.splitlines() if "error:" in l]
    assert len(lines) == 1 and lines[0].startswith("error:") and pattern in lines[0].lower(), result.stderr
    assert not out.exists(), "a failed run left an output folder"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".out")], "a failed run left a temp folder"


def test_unknown_model(tmp_path):
    result, out = runner.invoke(app, ["audit", "--model", "gtp2", "--out", str(tmp_path / "out")]), tmp_path / "out"
    _assert_one_line_exit_2(result, out, "unknown model")


@pytest.mark.parametrize(
    ("hook", "pattern"),
    [("blocks.1.hook_resid_pr", "did you mean"), ("blocks.9.hook_resid_pre", "out of range")],
)
def test_bad_hooks(tmp_path, hook, pattern):
    result, out = _audit(tmp_path, "--dataset", f"table:{_table(tmp_path / 't.csv')}", "--hook", hook)
    _assert_one_line_exit_2(result, out, pattern)


def test_missing_labels_are_a_label_count_mismatch(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"text": ["a", "b", "c", "d"], "label": [0, 1, None, 1]}).to_csv(path, index=False)
    result, out = _audit(tmp_path, "--dataset", f"table:{path}")
    _assert_one_line_exit_2(result, out, "label")


def test_empty_dataset(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text,label\n")
    result, out = _audit(tmp_path, "--dataset", f"table:{path}")
    _assert_one_line_exit_2(result, out, "empty")


def test_one_class_labels(tmp_path):
    result, out = _audit(tmp_path, "--dataset", f"table:{_table(tmp_path / 't.csv', labels=[1] * 20)}")
    _assert_one_line_exit_2(result, out, "one class")


@pytest.mark.parametrize("content", [None, b"\x00\xff\xfe garbage \x00"])
def test_unreadable_files(tmp_path, content):
    path = tmp_path / "t.csv"
    if content is not None:
        path.write_bytes(content)
    result, out = _audit(tmp_path, "--dataset", f"table:{path}")
    _assert_one_line_exit_2(result, out, str(path).lower()[:20])


def test_unknown_dataset_tag(tmp_path):
    result, out = _audit(tmp_path, "--dataset", "sae-probes:glue_sst")
    _assert_one_line_exit_2(result, out, "glue_sst2")


def test_bad_seeds_and_controls(tmp_path):
    result, out = _audit(tmp_path, "--seeds", "0,x")
    _assert_one_line_exit_2(result, out, "seeds")
    result, out = _audit(tmp_path, "--controls", "shuffle")
    _assert_one_line_exit_2(result, out, "control")


def test_nan_activations_leave_no_cache_entry(tmp_path, gpt2_tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=64, n_ctx=64, vocab_size=len(gpt2_tokenizer))
    model = GPT2LMHeadModel(cfg)
    with torch.no_grad():
        model.transformer.h[0].mlp.c_fc.weight.fill_(float("nan"))
    folder = tmp_path / "nan-model"
    model.save_pretrained(folder)
    gpt2_tokenizer.save_pretrained(folder)
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "audit",
            "--model",
            str(folder),
            "--dataset",
            f"table:{_table(tmp_path / 't.csv')}",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--out",
            str(out),
        ],
    )
    _assert_one_line_exit_2(result, out, "nan")
    finished = [p for p in (tmp_path / "cache" / "activations").glob("*") if (p / "meta.json").exists()]
    assert finished == []


def test_models_and_datasets_listings():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0
    line = next(l for l in result.output.splitlines() if l.startswith("smollm2-135m"))
    assert "offline" in line
    assert any(l.startswith("gpt2 ") and " hub " in l for l in result.output.splitlines())
    result = runner.invoke(app, ["datasets"])
    assert result.exit_code == 0 and "sae-probes:92_glue_sst2" in result.output


def test_steer_and_validate_bad_input(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["steer", "--alphas", "0,x", "--out", str(out)])
    _assert_one_line_exit_2(result, out, "alphas")
    result = runner.invoke(app, ["steer", "--model", "tiny-gpt2", "--datasets", "no_such_task", "--out", str(out)])
    _assert_one_line_exit_2(result, out, "no_such_task")


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["--matrix", "W_X", "--dataset", "token-properties:digit"], "w_x"),
        (["--matrix", "W_E", "--dataset", "token-properties:nope"], "nope"),
        (["--matrix", "W_E"], "token-properties"),
        (["--dataset", "token-properties:digit"], "--matrix"),
        (["--matrix", "W_E", "--dataset", "token-properties:digit", "--controls", "control-task"], "control-task"),
        (["--probes", "logistic,k-sparse:k=0"], "k-sparse"),
    ],
)
def test_matrix_and_sparse_probe_bad_input(tmp_path, args, pattern):
    result, out = _audit(tmp_path, *args)
    _assert_one_line_exit_2(result, out, pattern)


def test_matrix_all_writes_a_folder_per_property_and_a_summary(tmp_path):
    result, out = _audit(
        tmp_path, "--matrix", "W_U", "--dataset", "token-properties:all", "--probes", "logistic,mass-mean"
    )
    assert result.exit_code == 0, result.output
    summary = (out / "summary.md").read_text()
    assert "| property |" in summary and "auditkit audit --model tiny-gpt2" in summary
    assert summary.index("## Verdicts") < summary.index("## Per property") and (out / "verdicts.png").is_file()
    # the terminal prints the properties' verdict matrix and the summary's path, not a line per verdict
    assert "property" in result.stdout and "report: " in result.stdout and "summary.md" in result.stdout
    assert "probe-logistic vs" not in result.stdout
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert "capitalised" in folders and "punctuation" in folders
    rows = pd.read_csv(out / "capitalised" / "results.csv")
    assert set(rows["control"]) == {"none", "shuffled-labels", "spectral-reinit", "gaussian-reinit"}
    assert set(rows["method"]) == {"probe-logistic", "probe-mass-mean"}
    assert "--matrix W_U" in (out / "capitalised" / "report.md").read_text()


def test_probe_specs_keep_a_k_sparse_list_together():
    from auditkit.cli.options import probe_specs

    assert probe_specs("logistic,k-sparse:k=1,5,20,mlp") == ("logistic", "k-sparse:k=1,5,20", "mlp")
    assert probe_specs("k-sparse,mass-mean") == ("k-sparse", "mass-mean")


@pytest.mark.parametrize("where", ["file", "under-file", "env-file", "env-under-file"])
def test_unusable_cache_root_is_one_line_naming_no_cache(tmp_path, monkeypatch, where):
    regular = tmp_path / "regular"
    regular.write_text("a user's file")
    root = regular / "cache" if "under" in where else regular
    args = [
        "audit",
        "--model",
        "tiny-gpt2",
        "--dataset",
        f"table:{_table(tmp_path / 't.csv')}",
        "--out",
        str(tmp_path / "out"),
    ]
    if where.startswith("env"):
        monkeypatch.setenv("AUDITKIT_CACHE", str(root))
    else:
        args += ["--cache-dir", str(root)]
    before = sorted(p.name for p in tmp_path.iterdir())
    result = runner.invoke(app, args)
    _assert_one_line_exit_2(result, tmp_path / "out", "--no-cache")
    assert regular.read_text() == "a user's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "a failed run created something"


def test_no_cache_is_the_way_round_an_unusable_cache_root(tmp_path, monkeypatch):
    regular = tmp_path / "regular"
    regular.write_text("a user's file")
    monkeypatch.setenv("AUDITKIT_CACHE", str(regular / "cache"))
    result = runner.invoke(
        app,
        [
            "audit",
            "--model",
            "tiny-gpt2",
            "--dataset",
            f"table:{_table(tmp_path / 't.csv')}",
            "--no-cache",
            "--controls",
            "shuffled-labels",
            "--seeds",
            "0",
            "--probes",
            "logistic",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "report.md").is_file() and regular.read_text() == "a user's file"


def test_an_audit_and_a_sweep_on_a_shipped_task_open_with_its_trust_flag(tmp_path):
    """The trust table's flag (auditkit datasets --audit) of a shipped sae-probes task atop the reports: a
    phrase-presence task is lexical there; computed once and kept in the cache for the sweep's cells."""
    args = [
        "--dataset",
        "sae-probes:66_living-room",
        "--max-examples",
        "40",
        "--max-length",
        "24",
        "--controls",
        "shuffled-labels,lexical-bow",
        "--hook",
        "blocks.1.hook_resid_post",
    ]
    result, out = _audit(tmp_path, *args)
    assert result.exit_code == 0, result.output
    head = (out / "report.md").read_text().split("## Verdicts")[0]
    assert "**Dataset flag: lexical** (text alone 0.95; 24% copies)" in head
    assert list((tmp_path / "cache" / "trust").glob("*.json"))
    sweep = runner.invoke(
        app,
        [
            "sweep",
            "--model",
            "tiny-gpt2",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--datasets",
            "sae-probes:66_living-room",
            "--hooks",
            "blocks.1.hook_resid_post",
            "--max-examples",
            "40",
            "--max-length",
            "24",
            "--controls",
            "shuffled-labels,lexical-bow",
            "--out",
            str(tmp_path / "sweep"),
        ],
    )
    assert sweep.exit_code == 0, sweep.output
    top = (tmp_path / "sweep" / "summary.md").read_text().split("## How much")[0]
    assert "**Dataset flag: lexical**" in top
