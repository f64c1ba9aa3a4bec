"""Bad input through the CLI: one ``error:`` line, exit 2, before any forward pass, no cache entry, no output.

Issue 13, section 3 (loading and input handling); docs/reliability.md lists every case with its outcome.
"""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from auditkit.cli.main import app
from typer.testing import CliRunner

MAX_LINE = 300
"""An error line is capped at a few hundred characters (``auditkit.cli.app.MAX_ERROR_CHARS``)."""

runner = CliRunner()


def _conllu(path, sentences):
    """A CoNLL-U file of two-word sentences, each given as (word, tag, word, tag)."""
    blocks = [
        f"# text = {w0} {w1}\n1\t{w0}\t{w0}\t{t0}\t_\t_\t0\t_\t_\t_\n2\t{w1}\t{w1}\t{t1}\t_\t_\t1\t_\t_\t_\n"
        for w0, t0, w1, t1 in sentences
    ]
    path.write_text("\n".join(blocks))
    return path


def _table(path, n=40):
    labels = [i % 2 for i in range(n)]
    texts = [f"sample {i} {'yes' if y else 'no'}" for i, y in enumerate(labels)]
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    return path


def _audit(tmp_path, *args, model="tiny-gpt2"):
    out, cache = tmp_path / "out", tmp_path / "cache"
    if "--dataset" not in args:
        args = ("--dataset", f"table:{_table(tmp_path / 't.csv')}", *args)
    result = runner.invoke(app, ["audit", "--model", model, "--cache-dir", str(cache), "--out", str(out), *args])
    return result, out, cache


def _assert_refused(result, out, cache, pattern):
    """Exit 2, one ``error:`` line (capped) naming ``pattern``, no output folder, no activation cache entry."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("error:"), result.stderr
    assert len(errors[0]) <= MAX_LINE and pattern in errors[0].lower(), errors[0]
    assert not any("Traceback" in line or "│" in line for line in lines), result.stderr  # no traceback, no usage box
    assert not out.exists(), "a refused run left an output folder"
    entries = list((cache / "activations").iterdir()) if (cache / "activations").exists() else []
    assert entries == [], f"a refused run left cache entries: {entries}"


@pytest.mark.parametrize("value", ["nan", "0", "-1", "inf"])
def test_probe_c_out_of_range(tmp_path, value):
    _assert_refused(*_audit(tmp_path, "--probe-c", value), "--probe-c")


def test_step0_on_a_model_without_checkpoints(tmp_path):
    _assert_refused(*_audit(tmp_path, "--controls", "shuffled-labels,step0"), "pythia")


def test_missing_sae_load(tmp_path):
    _assert_refused(*_audit(tmp_path, "--methods", "sae", "--sae-load", str(tmp_path / "no-such-sae")), "no-such-sae")


@pytest.fixture(scope="module")
def saved_sae(tmp_path_factory):
    """A whole SAE for tiny-gpt2 (d_model 64, width 96) and one of width 32, saved by auditkit."""
    import torch

    from auditkit.methods.sae import SAEConfig, save_sae, train_sae

    root = tmp_path_factory.mktemp("saes")
    x = torch.randn(500, 64, generator=torch.Generator().manual_seed(0))
    cfg = dict(k=4, training_tokens=500, progress=False)
    good = save_sae(train_sae(x, SAEConfig(width=96, **cfg), seed=0), root / "sae")
    narrow = save_sae(train_sae(x, SAEConfig(width=32, **cfg), seed=0), root / "sae32")
    return good, narrow


def _edit_cfg(folder, edit):
    cfg = json.loads((folder / "cfg.json").read_text())
    (folder / "cfg.json").write_text(json.dumps(edit(cfg)))


def _truncate(path, n_bytes):
    path.write_bytes(path.read_bytes()[:-n_bytes])


SAE_DAMAGE = {
    "cfg-is-a-list": (lambda f, narrow: (f / "cfg.json").write_text("[64, 96]"), "json list"),
    "d_in-a-string": (lambda f, narrow: _edit_cfg(f, lambda c: {**c, "d_in": "sixty-four"}), "d_in must be"),
    "d_in-a-float": (lambda f, narrow: _edit_cfg(f, lambda c: {**c, "d_in": 64.5}), "d_in must be"),
    "weights-truncated": (lambda f, narrow: _truncate(f / "sae_weights.safetensors", 100), "damaged or incomplete"),
    "weights-empty": (lambda f, narrow: (f / "sae_weights.safetensors").write_bytes(b""), "damaged or incomplete"),
    "no-architecture": (
        lambda f, narrow: _edit_cfg(f, lambda c: {k: v for k, v in c.items() if k != "architecture"}),
        "has no 'architecture'",
    ),
    "weights-of-another-width": (
        lambda f, narrow: shutil.copy(narrow / "sae_weights.safetensors", f / "sae_weights.safetensors"),
        "d_sae=96",
    ),
}


@pytest.mark.parametrize("damage", list(SAE_DAMAGE))
def test_damaged_sae_load_folder_is_one_line_before_any_forward_pass(tmp_path, monkeypatch, saved_sae, damage):
    """The whole --sae-load folder is read and checked in the preflight: each damage is one line, exit 2, no
    output and no cache entry (before: a traceback, or one line only after every arm's extraction)."""
    from auditkit import extract as extract_mod

    monkeypatch.setattr(extract_mod, "_forward_rows", lambda *a, **k: pytest.fail("a forward pass ran"))
    good, narrow = saved_sae
    folder = shutil.copytree(good, tmp_path / "damaged-sae")
    breaks, pattern = SAE_DAMAGE[damage]
    breaks(folder, narrow)
    _assert_refused(*_audit(tmp_path, "--methods", "sae", "--seeds", "0", "--sae-load", str(folder)), pattern)


def test_whole_sae_load_folder_passes_the_check(saved_sae):
    """The check reads what save_sae writes, for every architecture auditkit trains."""
    import torch

    from auditkit.methods.sae import SAEConfig, save_sae, train_sae
    from auditkit.methods.sae.io import read_saved_sae

    assert read_saved_sae(saved_sae[0]) == read_saved_sae(saved_sae[0].parent / "sae")
    assert (read_saved_sae(saved_sae[0]).d_in, read_saved_sae(saved_sae[0]).d_sae) == (64, 96)
    x = torch.randn(300, 16, generator=torch.Generator().manual_seed(0))
    for arch in ("standard", "jumprelu"):
        folder = save_sae(
            train_sae(x, SAEConfig(architecture=arch, width=32, training_tokens=300, progress=False), seed=0),
            saved_sae[0].parent / arch,
        )
        assert read_saved_sae(folder).architecture == arch


def test_max_length_above_the_model_context(tmp_path):
    path = tmp_path / "long.csv"
    texts = [("word " * 80 + ("yes" if i % 2 else "no")) for i in range(20)]  # ~400 byte tokens > n_ctx 256
    pd.DataFrame({"text": texts, "label": [i % 2 for i in range(20)]}).to_csv(path, index=False)
    _assert_refused(*_audit(tmp_path, "--dataset", f"table:{path}", "--max-length", "300"), "context")


@pytest.mark.parametrize(
    "sentences",
    [
        # two sentences: the one training sentence holds one word of each class
        [("The", "DET", "cat", "NOUN"), ("A", "DET", "dog", "NOUN")],
        # three sentences: seed 0 trains on DET NOUN VERB ADV, one word of each class
        [("The", "DET", "cat", "NOUN"), ("A", "DET", "dog", "NOUN"), ("Run", "VERB", "now", "ADV")],
    ],
)
def test_conllu_too_small_to_split(tmp_path, sentences):
    path = _conllu(tmp_path / "small.conllu", sentences)
    _assert_refused(*_audit(tmp_path, "--dataset", f"conllu:{path}"), "too small to split")


@pytest.mark.parametrize("word_id", ["x", "3-a", "1.x", ""])
def test_conllu_malformed_word_id(tmp_path, word_id):
    path = _conllu(tmp_path / "bad.conllu", [("The", "DET", "cat", "NOUN")] * 6)
    lines = path.read_text().splitlines()
    lines[2] = word_id + lines[2][1:]  # the first sentence's second word
    path.write_text("\n".join(lines) + "\n")
    result, out, cache = _audit(tmp_path, "--dataset", f"conllu:{path}")
    _assert_refused(result, out, cache, "line 3")
    assert "bad.conllu" in result.stderr


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["--positions", "foo"], "--positions"),
        (["--max-examples", "x"], "--max-examples"),
        (["--align", "middle"], "--align"),
        (["--no-such-option"], "no-such-option"),
    ],
)
def test_option_parsing_errors_are_one_line(tmp_path, args, pattern):
    _assert_refused(*_audit(tmp_path, *args), pattern)


def test_help_still_prints_help():
    result = runner.invoke(app, ["audit", "--help"])
    assert result.exit_code == 0 and "--probe-c" in result.output and "error:" not in result.output


@pytest.mark.parametrize("option", ["--controls", "--probes", "--methods"])
def test_an_empty_list_is_refused_not_read_as_all(tmp_path, option):
    _assert_refused(*_audit(tmp_path, option, ""), "empty")


def test_steer_empty_controls(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "steer",
            "--model",
            "tiny-gpt2",
            "--controls",
            "",
            "--max-examples",
            "16",
            "--seeds",
            "0",
            "--alphas",
            "0,0.1",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--out",
            str(out),
        ],
    )
    _assert_refused(result, out, tmp_path / "cache", "--controls")


def test_error_line_is_capped_for_a_huge_header(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("x" * 2_000_000 + ",label\nsome text,1\nmore text,0\n")  # no 'text' column
    result, out, cache = _audit(tmp_path, "--dataset", f"table:{path}")
    _assert_refused(result, out, cache, "no column 'text'")


def test_loader_failure_is_one_error_line(tmp_path, gpt2_tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path / "broken-model"
    GPT2LMHeadModel(
        GPT2Config(n_layer=1, n_embd=32, n_head=2, n_positions=64, vocab_size=len(gpt2_tokenizer))
    ).save_pretrained(folder)
    gpt2_tokenizer.save_pretrained(folder)
    (folder / "model.safetensors").write_bytes(b"\x00 truncated")
    _assert_refused(*_audit(tmp_path, model=str(folder)), "cannot load model")


def test_truncated_texts_are_counted_in_run_json_and_report(tmp_path):
    path = tmp_path / "t.csv"
    labels = [i % 2 for i in range(40)]
    texts = [f"{i} " + ("filler " * (200 if i < 6 else 1)) + ("yes" if y else "no") for i, y in enumerate(labels)]
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    result, out, _ = _audit(
        tmp_path,
        "--dataset",
        f"table:{path}",
        "--max-length",
        "32",
        "--seeds",
        "0,1",
        "--controls",
        "shuffled-labels",
        "--probes",
        "logistic",
        "--max-examples",
        "0",
    )
    assert result.exit_code == 0, result.output
    run = json.loads((out / "run.json").read_text())
    assert run["dataset"]["n_truncated"] == 6
    assert "Truncated: 6 of 40 texts" in (out / "report.md").read_text()


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["--seeds", "0,0"], "repeat"),
        (["--seeds", ""], "seeds is empty"),
        (["--methods", "probe,foo"], "unknown method"),
        (["--test-fraction", "nan"], "test_fraction"),
        (["--label-draws", "0"], "--label-draws"),
        (["--weight-draws", "0"], "--weight-draws"),
        (["--max-examples", "2"], "max_examples"),
        (["--max-length", "1"], "max_length"),
        (["--methods", "sae", "--sae-lr", "nan"], "--sae-lr"),
        (["--methods", "sae", "--sae-width", "abc"], "--sae-width"),
        (["--methods", "pursuit", "--pursuit-k", "0"], "--pursuit-k"),
        (["--methods", "pursuit", "--pursuit-sae", "x"], "--dictionary sae"),
        (["--positions", "labelled"], "token-level"),
        (["--dataset", "foo:bar"], "dataset kind"),
        (["--dataset", "table:t.csv", "--text-column", "sentence"], "no column 'sentence'"),
        (["--model", "pythia-70m"], "hub"),
    ],
)
def test_checks_listed_in_reliability_md_stay_one_line(tmp_path, monkeypatch, args, pattern):
    """Checks that held before issue 13 too, kept as one line before any compute (docs/reliability.md)."""
    monkeypatch.chdir(tmp_path)
    _table(tmp_path / "t.csv")
    import huggingface_hub.constants as hc  # an empty HF cache, so pythia-70m is offline whatever this machine holds

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    _assert_refused(*_audit(tmp_path, *args), pattern)


@pytest.mark.parametrize("value", ["0.1", "0.1,0.1", "0.01,-1", "0.01,nan", "0.01,x"])
def test_probe_c_grid_needs_two_distinct_positive_values(tmp_path, value):
    _assert_refused(*_audit(tmp_path, "--probe-c-grid", value), "--probe-c-grid")


def test_probe_c_grid_with_mdl_is_refused(tmp_path):
    _assert_refused(*_audit(tmp_path, "--probe-c-grid", "0.01,1", "--mdl"), "--probe-c-grid")


def test_a_fixed_probe_c_under_the_default_grid_is_refused_with_the_fix(tmp_path):
    """The probes choose their C by default; a ``--probe-c`` alone would be read by k-sparse only, not what it says:
    refused, naming ``--probe-c-grid none``."""
    _assert_refused(*_audit(tmp_path, "--probe-c", "0.01"), "--probe-c-grid none")


def test_the_probes_choose_c_by_default_and_the_online_code_keeps_one():
    from auditkit.audit.config import DEFAULT_C_GRID, AuditConfig

    assert AuditConfig().probe_c_grid == DEFAULT_C_GRID
    assert AuditConfig(mdl=True).probe_c_grid == ()  # the default grid gives way to the online code's one C
    assert AuditConfig(probe_c_grid=(), probe_C=0.01).probe_C == 0.01
