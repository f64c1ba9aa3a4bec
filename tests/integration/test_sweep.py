"""Sweeps: one-pass multi-hook extraction, a planted label found at the layer it appears, resume, bad input."""

from __future__ import annotations

import csv
import dataclasses
import json
import random
import weakref

import pandas as pd
import pytest
import torch
from auditkit.cli.main import app
from typer.testing import CliRunner

from auditkit import data
from auditkit import extract as extract_mod
from auditkit.audit import run as audit_run
from auditkit.audit.config import AuditConfig
from auditkit.audit.options import SAEAuditOptions
from auditkit.audit.run import run_audit
from auditkit.audit.sae import SAE_METRICS
from auditkit.errors import ConfigError
from auditkit.extract import ExtractConfig, extract, extract_hooks
from auditkit.models import ModelSpec, load_model
from auditkit.report.sweep import lexical_shortcuts, write_sweep
from auditkit.sweep.config import SweepConfig
from auditkit.sweep.plan import layer_of, parse_hooks, resolve_datasets
from auditkit.sweep.run import run_sweep
from auditkit.sweep.saved import load_sweep

pytestmark = pytest.mark.usefixtures("one_thread")

HOOKS = ["blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre", "blocks.1.hook_resid_post"]


def _planted_table(path, n=240, seed=0):
    """The label is the class of the FIRST word; the probe reads the LAST token. Before any attention (block 0's
    input) the last position cannot know the first word; after block 0 it can."""
    rng = random.Random(seed)
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
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(n):
            words = [rng.choice(first[i % 2])] + [rng.choice(filler) for _ in range(rng.randint(3, 6))]
            w.writerow([" ".join(words) + f" {i}", i % 2])
    return path


def _sweep_cfg(table, cache, **kw):
    audit = AuditConfig(
        model=ModelSpec(name="tiny-gpt2", seed=0, cache_dir=cache),
        max_examples=None,
        max_length=16,
        controls=("shuffled-labels", "random-tokens-uniform"),
        probes=("logistic",),
        progress=False,
    )
    return SweepConfig(audit=audit, datasets=f"table:{table}", hooks="all", **kw)


def test_one_pass_multi_hook_extraction_equals_each_single_hook_extraction(monkeypatch):
    loaded = load_model(ModelSpec(name="tiny-gpt2", seed=0))
    tok = loaded.model.tokenizer
    ds = data.from_lists(
        "toy", [f"text number {i} is {'long ' * (i % 4)}here" for i in range(24)], [i % 2 for i in range(24)]
    )
    batch = data.tokenize(ds, tok, prepend_bos=True, bos_token_id=tok.bos_token_id, max_length=32)
    cfg = ExtractConfig(hook=HOOKS[0], positions="all", batch_size=8, progress=False)
    passes = []
    original = extract_mod._forward_rows
    monkeypatch.setattr(extract_mod, "_forward_rows", lambda *a, **k: passes.append(a[2]) or original(*a, **k))
    many = extract_hooks(loaded.model, batch, cfg, HOOKS)
    assert len(passes) == 3 and all(p == HOOKS for p in passes)  # 24 texts in batches of 8: one pass each
    for hook in HOOKS:
        single = extract(loaded.model, batch, dataclasses.replace(cfg, hook=hook))
        torch.testing.assert_close(many[hook].acts_ND, single.acts_ND, atol=1e-6, rtol=0)
        assert many[hook].hook == hook and (many[hook].example_ids_N == single.example_ids_N).all()
    # resid_pre of block 1 is block 0's output: the two hooks that read it must differ from block 0's input
    assert not torch.allclose(many[HOOKS[0]].acts_ND, many[HOOKS[1]].acts_ND)


def test_a_planted_label_is_detected_at_the_layer_it_becomes_readable_and_not_before(tmp_path):
    result = run_sweep(_sweep_cfg(_planted_table(tmp_path / "planted.csv"), tmp_path / "cache"))
    assert list(result.rows.columns[:3]) == ["dataset", "hook", "layer"]
    sel = result.selectivity.query("metric == 'accuracy'").set_index(["hook", "control"])["verdict"]
    for control in ("shuffled-labels", "random-tokens-uniform"):
        assert sel[(HOOKS[0], control)] == "not selective"  # block 0's input: the last token cannot see the first
        assert sel[(HOOKS[1], control)] == "selective"
        assert sel[(HOOKS[2], control)] == "selective"
    assert result.selectivity.drop_duplicates("hook")["layer"].tolist() == [0.0, 1.0, 2.0]


def test_a_cell_is_exactly_the_single_audit_of_that_hook(tmp_path):
    table = _planted_table(tmp_path / "planted.csv", n=120)
    cfg = _sweep_cfg(table, tmp_path / "cache")
    result = run_sweep(cfg)
    single = run_audit(dataclasses.replace(cfg.audit, dataset=f"table:{table}", hook=HOOKS[1]))
    cell = (
        result.rows[result.rows["hook"] == HOOKS[1]].drop(columns=["dataset", "hook", "layer"]).reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(
        cell[["method", "control", "seed", "metric"]], single.rows[["method", "control", "seed", "metric"]]
    )
    assert (cell["value"] - single.rows["value"]).abs().max() < 1e-12


def test_a_killed_sweep_reruns_only_its_unfinished_cells(tmp_path, monkeypatch):
    table = _planted_table(tmp_path / "planted.csv", n=120)
    cfg = _sweep_cfg(table, tmp_path / "cache")
    calls = []
    original = audit_run.run_audit

    def dies_on_third(c, **kw):
        calls.append(c.hook)
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed mid-sweep, after two finished cells
        return original(c, **kw)

    monkeypatch.setattr(audit_run, "run_audit", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(cfg)
    calls.clear()
    monkeypatch.setattr(audit_run, "run_audit", lambda c, **kw: calls.append(c.hook) or original(c, **kw))
    resumed = run_sweep(cfg)
    assert calls == [HOOKS[2]]  # only the cell that had not finished
    again = run_sweep(cfg)
    assert calls == [HOOKS[2]]  # nothing left to compute
    pd.testing.assert_frame_equal(resumed.rows, again.rows)
    pd.testing.assert_frame_equal(resumed.selectivity, again.selectivity)


def test_hook_and_dataset_specs():
    assert parse_hooks("all", 2) == HOOKS
    assert parse_hooks("blocks.0-29:10.hook_resid_pre", 30) == [f"blocks.{i}.hook_resid_pre" for i in (0, 10, 20)]
    assert parse_hooks("middle,blocks.1.hook_resid_pre", 4) == ["blocks.2.hook_resid_pre", "blocks.1.hook_resid_pre"]
    assert [layer_of(h) for h in HOOKS] == [0.0, 1.0, 2.0]
    for bad in ("blocks.5-2.hook_resid_pre", "blocks.0-40.hook_resid_pre", ","):
        with pytest.raises(ConfigError):
            parse_hooks(bad, 30)
    binary = resolve_datasets("sae-probes:binary")
    assert len(binary) == 113 and len(set(binary)) == 113
    assert (
        resolve_datasets("sae-probes:2*_headline_is*,sae-probes:21_headline_istrump")[0]
        == "sae-probes:21_headline_istrump"
    )
    with pytest.raises(ConfigError, match="matches no"):
        resolve_datasets("sae-probes:*nothing-like-this*")


def _tiny_conllu(path, n=12):
    """A token-level dataset: ``n`` distinct three-word sentences tagged DET NOUN VERB."""
    blocks = [
        "\n".join(f"{i + 1}\t{w}\t{w}\t{t}\t_\t_\t0\t_\t_\t_" for i, (w, t) in enumerate(words)) + "\n"
        for words in ((("the", "DET"), (f"dog{j}", "NOUN"), ("runs", "VERB")) for j in range(n))
    ]
    path.write_text("\n".join(blocks) + "\n")
    return path


def test_bad_input_is_one_error_before_any_compute(tmp_path):
    table = _planted_table(tmp_path / "planted.csv", n=40)
    conllu = _tiny_conllu(tmp_path / "tiny.conllu")
    runner = CliRunner()
    common = ["sweep", "--model", "tiny-gpt2", "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]
    for args, needle in (
        (
            ["--datasets", f"table:{table}", "--hooks", "blocks.0.hook_resid_pre,blocks.7.hook_resid_pre"],
            "out of range",
        ),
        (["--datasets", f"table:{table}", "--hooks", "blocks.0.hook_resid_typo"], "unknown hook"),
        (["--datasets", "sae-probes:*nothing-like-this*"], "matches no"),
        (["--datasets", f"table:{table},sae-probes:25_headline_year"], "continuous"),
        # token-level (conllu) and sentence-level (table) data, with positions only token-level data has
        (["--datasets", f"conllu:{conllu},table:{table}", "--positions", "labelled"], "is sentence-level"),
    ):
        result = runner.invoke(app, [*common, *args])
        assert result.exit_code == 2, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert lines[-1].startswith("error:") and needle in lines[-1], result.output
        assert not (tmp_path / "out").exists()
        assert not list(tmp_path.glob("cache/**/meta.json")) and not list(tmp_path.glob("cache/**/*.safetensors"))


def test_a_sweep_trains_one_sae_per_layer_with_its_baselines(tmp_path):
    """``--methods sae`` in a sweep: an SAE per (hook, arm, seed), scored against the SAE baselines, which
    take each hook's own activations (their verdicts differ by hook only through the activations)."""
    table = _planted_table(tmp_path / "planted.csv", n=64)
    cfg = dataclasses.replace(
        _sweep_cfg(table, tmp_path / "cache"), hooks="blocks.0.hook_resid_pre,blocks.1.hook_resid_post"
    )
    audit = dataclasses.replace(
        cfg.audit,
        methods=("sae",),
        controls=("sae-untrained", "pca"),
        seeds=(0, 1, 2),
        sae=SAEAuditOptions(width=128, k=8, training_tokens=20_000, batch_size=256, splice_texts=8),
    )
    result = run_sweep(dataclasses.replace(cfg, audit=audit))
    rows = result.rows
    assert sorted(rows["hook"].unique()) == ["blocks.0.hook_resid_pre", "blocks.1.hook_resid_post"]
    for hook, cell in rows.groupby("hook"):
        assert set(cell["control"]) == {"none", "sae-untrained", "pca"}, hook
        assert set(cell["metric"]) == set(SAE_METRICS), hook
    ev = rows[rows["metric"] == "explained_variance"].groupby(["hook", "control"])["value"].mean()
    # Each hook's SAE is trained on that hook's activations: the real SAEs of the two hooks differ.
    assert abs(ev[("blocks.0.hook_resid_pre", "none")] - ev[("blocks.1.hook_resid_post", "none")]) > 1e-4
    sel = result.selectivity.set_index(["hook", "control", "metric"])["verdict"]
    for hook in rows["hook"].unique():
        assert sel[(hook, "sae-untrained", "explained_variance")] == "selective"  # training beats its own start
    # The summary reads each SAE's k-sparse probe of the label, layer by layer, with the audit's marks.
    out = write_sweep(result, tmp_path / "out", "auditkit sweep --methods sae")
    summary = (out / "summary.md").read_text()
    assert "probe_acc_k5" in summary and "| sae |" in summary and "✓" in summary
    assert len(list(out.glob("depth-*.png"))) == 1


def test_report_re_renders_a_sweep_from_its_own_tables(tmp_path):
    table = _planted_table(tmp_path / "planted.csv", n=120)
    cfg = dataclasses.replace(
        _sweep_cfg(table, tmp_path / "cache"), hooks="blocks.0.hook_resid_pre,blocks.1.hook_resid_pre"
    )
    out = write_sweep(run_sweep(cfg), tmp_path / "sweep", "auditkit sweep --hooks blocks.0-1.hook_resid_pre")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / "summary.md").write_text("stale")  # a report from an older layout
    result = CliRunner().invoke(app, ["report", str(out), "-q"])
    assert result.exit_code == 0, result.output
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after == before  # summary, figures and tables byte for byte: nothing recomputed, nothing rescored
    loaded, _ = load_sweep(out)
    assert loaded.hooks == ["blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre"]
    assert (loaded.selectivity["verdict"] == pd.read_csv(out / "selectivity.csv")["verdict"]).all()


def test_a_dataset_no_model_reads_is_not_a_lexical_shortcut():
    best = pd.DataFrame(
        {
            "dataset": ["chance", "tokens", "learned", "saturated"],
            "method": ["probe-logistic"] * 4,
            "best_hook": ["blocks.15.hook_resid_pre"] * 4,
            "real": [0.50, 0.80, 0.95, 0.99],
            "spectral-reinit accuracy": [0.53, 0.78, 0.60, 0.85],
            "gaussian-reinit accuracy": [0.52, 0.70, 0.62, 0.70],
        }
    )
    # chance: both near 0.5 (the old rule listed it); tokens: a reinitialised model reads it almost as well;
    # learned: training adds 0.33; saturated: the reinitialised model alone reaches 0.85.
    assert lexical_shortcuts(best)["dataset"].tolist() == ["tokens", "saturated"]


def test_sweep_command_takes_the_sae_options_and_reproduces_them(tmp_path):
    table = _planted_table(tmp_path / "planted.csv", n=64)
    out = tmp_path / "out"
    args = [
        "sweep",
        "--model",
        "tiny-gpt2",
        "--datasets",
        f"table:{table}",
        "--hooks",
        "blocks.1.hook_resid_post",
        "--methods",
        "sae",
        "--controls",
        "sae-untrained",
        "--max-length",
        "16",
        "--sae-width",
        "64",
        "--sae-k",
        "4",
        "--sae-tokens",
        "4000",
        "--sae-batch-size",
        "256",
        "--sae-splice-texts",
        "4",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["audit"]["sae"]["k"] == 4 and run["config"]["audit"]["sae"]["width"] == 64
    assert "--sae-k 4" in run["command"] and "--sae-width 64" in run["command"]
    rows = pd.read_csv(out / "results.csv")
    assert (rows.loc[rows["metric"] == "l0", "value"] - 4).abs().max() < 1e-6  # every arm's SAE has k = 4


# ----------------------------------------------------------------------------- saved cells: keyed by their inputs


def _counting(monkeypatch):
    """Record the (dataset, hook) of every cell audit that runs."""
    calls, original = [], audit_run.run_audit
    monkeypatch.setattr(audit_run, "run_audit", lambda c, **kw: calls.append((c.dataset, c.hook)) or original(c, **kw))
    return calls


def _relabel(path, every=3):
    """The same texts, every ``every``-th label set to 0: the class counts change, no text does."""
    lines = path.read_text().splitlines()
    edited = [line if i == 0 or (i - 1) % every else line.rsplit(",", 1)[0] + ",0" for i, line in enumerate(lines)]
    assert edited != lines
    path.write_text("\n".join(edited) + "\n")


def test_an_edited_table_recomputes_its_own_cells_and_only_those(tmp_path, monkeypatch):
    a = _planted_table(tmp_path / "a.csv", n=64)
    b = _planted_table(tmp_path / "b.csv", n=64, seed=1)
    cfg = dataclasses.replace(
        _sweep_cfg(a, tmp_path / "cache"), datasets=f"table:{a},table:{b}", hooks=",".join(HOOKS[1:])
    )
    before = run_sweep(cfg)
    _relabel(a)
    calls = _counting(monkeypatch)
    after = run_sweep(cfg)
    assert calls == [(f"table:{a}", h) for h in HOOKS[1:]]  # the edited table's cells, not b's
    fresh = run_sweep(
        dataclasses.replace(
            cfg,
            audit=dataclasses.replace(
                cfg.audit, model=dataclasses.replace(cfg.audit.model, cache_dir=tmp_path / "fresh")
            ),
        )
    )
    pd.testing.assert_frame_equal(after.rows, fresh.rows)  # the new labels' numbers, as a fresh cache gives them
    pd.testing.assert_frame_equal(after.selectivity, fresh.selectivity)
    assert after.cells == fresh.cells  # the new fingerprint and class counts
    assert after.cells[f"table:{a}"]["class_counts"] != before.cells[f"table:{a}"]["class_counts"]
    assert after.cells[f"table:{b}"] == before.cells[f"table:{b}"]
    old_b = before.rows[before.rows["dataset"] == f"table:{b}"].reset_index(drop=True)
    pd.testing.assert_frame_equal(after.rows[after.rows["dataset"] == f"table:{b}"].reset_index(drop=True), old_b)


def test_overwritten_local_weights_recompute_the_sweep(tmp_path, monkeypatch, gpt2_tokenizer):
    import os

    from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)  # test-local: reproducible saved weights
    folder = tmp_path / "gpt2"
    GPT2LMHeadModel(
        GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=64, n_ctx=64, vocab_size=len(gpt2_tokenizer))
    ).save_pretrained(folder)
    gpt2_tokenizer.save_pretrained(folder)
    table = _planted_table(tmp_path / "planted.csv", n=64)
    cfg = dataclasses.replace(_sweep_cfg(table, tmp_path / "cache"), hooks=HOOKS[2])
    cfg = dataclasses.replace(
        cfg, audit=dataclasses.replace(cfg.audit, model=dataclasses.replace(cfg.audit.model, name=str(folder)))
    )
    before = run_sweep(cfg)
    # Overwrite the weights in place with others of the same size, the old mtime put back: only the bytes differ.
    weights = folder / "model.safetensors"
    stat = weights.stat()
    hf = AutoModelForCausalLM.from_pretrained(folder)
    with torch.no_grad():
        for p in hf.parameters():
            p.mul_(1.5)
    hf.save_pretrained(folder)
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    calls = _counting(monkeypatch)
    after = run_sweep(cfg)
    assert calls == [(f"table:{table}", HOOKS[2])]
    assert after.provenance["file_sha256"] != before.provenance["file_sha256"]
    assert not after.rows["value"].equals(before.rows["value"])
    fresh = run_sweep(
        dataclasses.replace(
            cfg,
            audit=dataclasses.replace(
                cfg.audit, model=dataclasses.replace(cfg.audit.model, cache_dir=tmp_path / "fresh")
            ),
        )
    )
    pd.testing.assert_frame_equal(after.rows, fresh.rows)  # the new weights' numbers, never the old ones


def test_a_tampered_saved_cell_is_moved_aside_and_recomputed(tmp_path, monkeypatch, caplog):
    import re

    table = _planted_table(tmp_path / "odd name; $(x) ..csv", n=64)  # a name no path of the cell store may carry
    cfg = _sweep_cfg(table, tmp_path / "cache")  # hooks "all": HOOKS
    before = run_sweep(cfg)
    store = tmp_path / "cache" / "sweep-cells"
    cells = sorted(store.iterdir())
    assert len(cells) == len(HOOKS)
    # One cell's rows edited by hand; another cell replaced by a copy of a third (a valid cell under the wrong name).
    rows = cells[0] / "rows.csv"
    rows.write_text(rows.read_text().replace("0.", "1.", 1))
    edited = rows.read_bytes()
    for f in cells[2].iterdir():
        (cells[1] / f.name).write_bytes(f.read_bytes())
    calls = _counting(monkeypatch)
    with caplog.at_level("WARNING"):
        after = run_sweep(cfg)
    assert len(calls) == 2 and len(set(calls)) == 2  # the two damaged cells, not the third
    pd.testing.assert_frame_equal(after.rows, before.rows)
    pd.testing.assert_frame_equal(after.selectivity, before.selectivity)
    warned = sorted(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert len(warned) == 2, warned
    assert any("rows.csv does not match the checksum" in w and str(cells[0]) in w for w in warned), warned
    assert any("names another request" in w and str(cells[1]) in w for w in warned), warned
    aside = sorted(store.glob("*.corrupt-*"))
    assert sorted(p.name.partition(".")[0] for p in aside) == [cells[0].name, cells[1].name]
    assert (store / aside[0].name / "rows.csv").read_bytes() == edited  # kept for inspection, never deleted
    # Every path of the store is a hash (and a moved-aside hash): no dataset or hook name becomes a path.
    for p in store.iterdir():
        assert re.fullmatch(r"[0-9a-f]{64}(\.corrupt-\d{8}T\d{6}(-\d+)?)?", p.name), p.name


def test_an_attention_pattern_hook_is_refused_before_anything_is_loaded(tmp_path, monkeypatch):
    from auditkit.sweep import cells as cells_mod
    from auditkit.sweep import run as sweep_run

    def no_load(*a, **k):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(sweep_run, "load_model", no_load)
    monkeypatch.setattr(cells_mod, "load_model", no_load)
    table = _planted_table(tmp_path / "planted.csv", n=40)
    for hooks in ("blocks.0.attn.hook_pattern", "blocks.0.hook_resid_pre,blocks.1.attn.hook_attn_scores"):
        result = CliRunner().invoke(
            app,
            [
                "sweep",
                "--model",
                "tiny-gpt2",
                "--datasets",
                f"table:{table}",
                "--hooks",
                hooks,
                "--cache-dir",
                str(tmp_path / "cache"),
                "--out",
                str(tmp_path / "out"),
            ],
        )
        assert result.exit_code == 2, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and "attention patterns" in lines[0], result.output
        assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_data_edited_while_the_sweep_runs_fails_its_cells_instead_of_saving_them(tmp_path, monkeypatch):
    """The driver keys a cell by the data it prepared; a cell whose audit read other data (the table was edited
    between the two) is refused, not saved under the old key. The other dataset's cells are unaffected."""
    a = _planted_table(tmp_path / "a.csv", n=64)
    b = _planted_table(tmp_path / "b.csv", n=64, seed=1)
    cfg = dataclasses.replace(_sweep_cfg(a, tmp_path / "cache"), datasets=f"table:{a},table:{b}", hooks=HOOKS[2])
    original = audit_run.run_audit

    def edits_a_first(c, **kw):
        if c.dataset == f"table:{a}":
            _relabel(a)
        return original(c, **kw)

    monkeypatch.setattr(audit_run, "run_audit", edits_a_first)
    result = run_sweep(cfg)
    assert len(result.failures) == 1 and result.failures[0].startswith(f"table:{a} x {HOOKS[2]}: CacheError")
    assert "changed on disk while the sweep ran" in result.failures[0]
    assert result.rows["dataset"].unique().tolist() == [f"table:{b}"]
    monkeypatch.setattr(audit_run, "run_audit", original)
    calls = _counting(monkeypatch)
    rerun = run_sweep(cfg)  # the edited table's cell is computed now, on the data it reads
    assert calls == [(f"table:{a}", HOOKS[2])] and not rerun.failures


def test_audit_refuses_an_attention_pattern_hook_before_anything_is_loaded(tmp_path, monkeypatch):
    """`audit --hook ...attn.hook_pattern` loaded the model and failed at the first forward pass (issue 26)."""
    from auditkit.audit import run as audit_run

    def no_load(*a, **k):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(audit_run, "load_model", no_load)
    table = _planted_table(tmp_path / "planted.csv", n=40)
    result = CliRunner().invoke(
        app,
        [
            "audit",
            "--model",
            "tiny-gpt2",
            "--dataset",
            f"table:{table}",
            "--hook",
            "blocks.0.attn.hook_pattern",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "attention patterns" in lines[0], result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_the_audit_command_is_a_one_cell_plan_holding_one_reinitialised_model_at_a_time(tmp_path, monkeypatch):
    """``auditkit audit`` runs through the sweep's plan and executor: each weight-control model is dropped before
    the next is built (the direct audit kept all six resident), and its tables are the direct audit's, byte for byte."""
    from auditkit.audit import arms as arms_mod
    from auditkit.audit.saved import config_from_json
    from auditkit.report.write import write_outputs

    table = _planted_table(tmp_path / "planted.csv", n=80)
    live: list[weakref.ref] = []
    resident: list[int] = []  # reinitialised models alive as each one is built (itself included)
    original = arms_mod.reinit_loaded

    def tracked(*args, **kwargs):
        model = original(*args, **kwargs)
        live.append(weakref.ref(model))
        resident.append(sum(ref() is not None for ref in live))
        return model

    monkeypatch.setattr(arms_mod, "reinit_loaded", tracked)
    args = [
        "audit",
        "--model",
        "tiny-gpt2",
        "--dataset",
        f"table:{table}",
        "--hook",
        HOOKS[1],
        "--seeds",
        "0,1,2",
        "--controls",
        "shuffled-labels,spectral-reinit,gaussian-reinit",
        "--probes",
        "logistic",
        "--max-length",
        "16",
        "--max-examples",
        "0",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--out",
        str(tmp_path / "plan"),
        "--quiet",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert resident == [1] * 6, resident
    cfg = config_from_json(json.loads((tmp_path / "plan" / "run.json").read_text())["config"])
    direct_cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, cache_dir=tmp_path / "direct-cache"))
    live.clear(), resident.clear()
    write_outputs(audit_run.run_audit(direct_cfg), tmp_path / "direct", "auditkit audit")
    assert max(resident) == 6  # the direct audit: every reinitialised model of the run resident at once
    for name in ("results.csv", "selectivity.csv"):
        assert (tmp_path / "plan" / name).read_bytes() == (tmp_path / "direct" / name).read_bytes(), name
