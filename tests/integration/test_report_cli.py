"""``auditkit report`` (re-render without recomputing), ``auditkit compare``, the first screen of a report,
the terminal's verdict matrix and the figures' legibility, on tiny audits."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest
from auditkit.cli.main import app
from auditkit.report.plots import PALETTE, arm_colour, arms_plot, overlapping_labels, verdict_heatmap
from auditkit.report.summary import verdict_matrix
from auditkit.audit.saved import load_run
from typer.testing import CliRunner

runner = CliRunner()


def _run(tmp_path, yes_no_table, name, *args):
    out = tmp_path / name
    table = tmp_path / "t.csv"
    if not table.exists():
        yes_no_table(table, n=80, words=(3, 6))
    result = runner.invoke(app, [
        "audit", "--model", "tiny-gpt2", "--dataset", f"table:{table}", "--hook", "blocks.1.hook_resid_post",
        "--probes", "logistic,mass-mean", "--controls", "shuffled-labels,random-tokens-uniform", "--seeds", "0,1,2",
        "--cache-dir", str(tmp_path / "cache"), "--out", str(out), *args,
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    return result, out


@pytest.fixture(scope="module")
def runs(tmp_path_factory, yes_no_table):
    tmp = tmp_path_factory.mktemp("runs")
    first, a = _run(tmp, yes_no_table, "a")
    _, b = _run(tmp, yes_no_table, "b", "--test-fraction", "0.4")
    return first, a, b


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_first_screen_is_the_sentence_the_matrix_and_the_heatmap(runs):
    first, a, _ = runs
    report = (a / "report.md").read_text()
    head = report[: report.index("## What was audited")]
    assert "Audited `tiny-gpt2` at hook `blocks.1.hook_resid_post`" in head and "3 seeds [0, 1, 2]" in head
    assert "| probe-logistic |" in head and "| shuffled-labels | random-tokens-uniform |" in head
    assert "✓ selective" in head and "![Verdict matrix" in head and (a / "verdicts.png").stat().st_size > 0
    assert "<details>" in report and "## Reproduce" in report
    # the planted label is selective against shuffled labels, in the report and in the terminal table
    sel = pd.read_csv(a / "selectivity.csv")
    logistic = sel.query("method == 'probe-logistic' and control == 'shuffled-labels' and metric == 'accuracy'")
    assert logistic["verdict"].item() == "selective"
    assert "probe-logistic" in first.output and "✓" in first.output and "report: " in first.output
    assert "vs shuffled-labels:" not in first.output  # the bullet list is gone


def test_quiet_prints_only_the_path(tmp_path, yes_no_table):
    result, out = _run(tmp_path, yes_no_table, "q", "--quiet")
    assert result.stdout.strip().splitlines() == [f"{out}/report.md"]


def test_report_rerenders_byte_identically_and_keeps_the_tables(runs):
    _, a, _ = runs
    before = _digests(a)
    first = runner.invoke(app, ["report", str(a)])
    assert first.exit_code == 0, first.output
    once = _digests(a)
    second = runner.invoke(app, ["report", str(a), "-q"])
    assert second.exit_code == 0 and second.stdout.strip() == f"{a}/report.md"
    assert _digests(a) == once  # byte-identical re-render from the same inputs
    for name in ("results.csv", "selectivity.csv", "run.json"):
        assert once[name] == before[name], name  # never rescored, never rewritten
    assert {"report.md", "arms.png", "verdicts.png"} <= set(once)


def test_report_refuses_what_audit_did_not_write(tmp_path, runs):
    _, a, _ = runs
    stranger = tmp_path / "notes"
    stranger.mkdir()
    (stranger / "run.json").write_text("{}")
    steer = tmp_path / "steer"
    steer.mkdir()
    (steer / ".auditkit-output").write_text(json.dumps({"written_by": "auditkit", "kind": "steer"}))
    for target, pattern in [(stranger, "not an auditkit output"), (tmp_path / "missing", "not a folder"),
                            (steer, "auditkit steer"), (a / "report.md", "not a folder")]:  # fmt: skip
        result = runner.invoke(app, ["report", str(target)])
        lines = [l for l in result.stderr.splitlines() if l.strip()]
        assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error:"), result.output
        assert pattern in lines[0]
    assert sorted(p.name for p in stranger.iterdir()) == ["run.json"]


def test_compare_two_runs(runs, tmp_path):
    _, a, b = runs
    result = runner.invoke(app, ["compare", str(a), str(b)])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "| `config.test_fraction` | `0.25` | `0.4` |" in text
    assert "## Verdicts that changed" in text and "## Largest selectivity deltas" in text
    same = runner.invoke(app, ["compare", str(a), str(a), "--out", str(tmp_path / "same.md")])
    assert same.exit_code == 0
    written = (tmp_path / "same.md").read_text()
    assert "None: every row in both runs has the same verdict." in written and "| +0.000 |" in written
    again = runner.invoke(app, ["compare", str(a), str(a), "--out", str(tmp_path / "same.md")])
    assert again.exit_code == 2 and again.stderr.startswith("error:")


def test_figures_are_legible(runs, tmp_path):
    _, a, _ = runs
    result, _ = load_run(a)
    fig = arms_plot(result.rows, tmp_path / "arms.png")
    assert fig.get_size_inches()[0] <= 13.5  # at most four panels a row
    assert len(fig.axes[0].get_xticklabels()) == 3 and overlapping_labels(fig) == []
    matrix = verdict_matrix(result)
    heat = verdict_heatmap(matrix, tmp_path / "verdicts.png", "t")
    ax = heat.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(dict.fromkeys(matrix["row"]))
    assert len(ax.get_xticklabels()) == 2 and overlapping_labels(heat) == []
    assert heat.get_size_inches()[0] * 110 <= 1400  # readable at 100% zoom without scrolling
    # eleven probe kinds, eight controls: still no overlapping labels
    many = pd.DataFrame([dict(method=f"probe-k-sparse-k{k}", control=c, seed=s, metric="accuracy", value=0.5)
                         for k in range(11) for c in ["none", *list(PALETTE)[1:9]] for s in range(3)])  # fmt: skip
    big = arms_plot(many, tmp_path / "many.png")
    assert len(big.axes) == 12 and overlapping_labels(big) == []


def test_one_colour_per_control():
    assert arm_colour("none") == arm_colour("real") == "#000000"
    assert len({arm_colour(c) for c in list(PALETTE)[:10]}) == 10
