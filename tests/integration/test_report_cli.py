"""``auditkit report`` (re-render without recomputing), ``auditkit compare``, the first screen of a report,
the terminal's verdict matrix and the figures' legibility, on tiny audits."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from auditkit.cli.main import app
from typer.testing import CliRunner

from auditkit.audit.saved import load_run
from auditkit.errors import OutputError
from auditkit.report.plots import PALETTE, arm_colour, arms_plot, overlapping_labels, verdict_heatmap
from auditkit.report.summary import verdict_matrix

runner = CliRunner()


def _run(tmp_path, yes_no_table, name, *args):
    out = tmp_path / name
    table = tmp_path / "t.csv"
    if not table.exists():
        yes_no_table(table, n=80, words=(3, 6))
    result = runner.invoke(
        app,
        [
            "audit",
            "--model",
            "tiny-gpt2",
            "--dataset",
            f"table:{table}",
            "--hook",
            "blocks.1.hook_resid_post",
            "--probes",
            "logistic,mass-mean",
            "--controls",
            "shuffled-labels,random-tokens-uniform",
            "--seeds",
            "0,1,2",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--out",
            str(out),
            *args,
        ],
    )
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
    for target, pattern in [
        (stranger, "not an auditkit output"),
        (tmp_path / "missing", "not a folder"),
        (steer, "auditkit steer"),
        (a / "report.md", "not a folder"),
    ]:
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
    many = pd.DataFrame(
        [
            dict(method=f"probe-k-sparse-k{k}", control=c, seed=s, metric="accuracy", value=0.5)
            for k in range(11)
            for c in ["none", *list(PALETTE)[1:9]]
            for s in range(3)
        ]
    )
    big = arms_plot(many, tmp_path / "many.png")
    assert len(big.axes) == 12 and overlapping_labels(big) == []


def test_one_colour_per_control():
    assert arm_colour("none") == arm_colour("real") == "#000000"
    assert len({arm_colour(c) for c in list(PALETTE)[:10]}) == 10


# --- issue 26: what a re-render or a comparison reads is checked first --------------------------------------

REPORTS = Path(__file__).resolve().parents[2] / "reports"


def _one_error(result, *patterns):
    lines = [l for l in result.stderr.splitlines() if l.strip() and not l.startswith("warning:")]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert "Traceback" not in result.output and all(p in lines[0] for p in patterns), lines[0]
    return lines[0]


def _copy(folder, tmp_path, name="copy"):
    out = tmp_path / "runs" / name
    shutil.copytree(folder, out)
    return out


def _tree(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_crafted_method_name_cannot_make_report_write_outside_its_folder(tmp_path):
    """selectivity.csv names a method `x/../../../ESCAPED` and the folder holds `matrix-x/`: the figure
    `matrix-{method}.png` would resolve to the run folder's grandparent. Refused, one line, nothing written."""
    out = _copy(REPORTS / "sweeps" / "breadth", tmp_path)
    _older(out)  # no recorded checksums: the edited table reaches the name check, as a crafted older run would
    sel = out / "selectivity.csv"
    sel.write_text(sel.read_text().replace("probe-logistic", "x/../../../ESCAPED"))
    (out / "matrix-x").mkdir()
    before = _tree(tmp_path)
    result = runner.invoke(app, ["report", str(out)])
    assert not list(tmp_path.rglob("ESCAPED*"))  # was: ESCAPED.png written into tmp_path
    _one_error(result, "'x/../../../ESCAPED'", "cannot name a file", "path separator")
    assert _tree(tmp_path) == before and sorted(p.name for p in out.parent.iterdir()) == ["copy"]


@pytest.mark.parametrize("name", ["x/y", "..", "", "a\x00b", "n" * 201, "a\\b"])
def test_safe_name_refuses_what_is_not_one_file_name(name):
    from auditkit.report.outputs import safe_name

    with pytest.raises(OutputError, match="cannot name a file"):
        safe_name(name, "method")
    assert safe_name("probe-k-sparse-k5", "method") == "probe-k-sparse-k5"


def test_run_json_records_each_tables_rows_and_checksum(runs):
    _, a, _ = runs
    tables = json.loads((a / "run.json").read_text())["tables"]
    for name in ("results.csv", "selectivity.csv"):
        assert tables[name]["sha256"] == hashlib.sha256((a / name).read_bytes()).hexdigest()
        assert tables[name]["rows"] == len(pd.read_csv(a / name))


def _truncate(path):
    """Cut the table in the middle of its last metric name (the report would show a metric `accura`)."""
    text = path.read_text()
    path.write_text(text[: text.rindex("accuracy") + len("accura")])


@pytest.mark.parametrize("command", ["report", "compare"])
def test_a_table_changed_after_the_run_is_refused(runs, tmp_path, command):
    _, a, b = runs
    out = _copy(a, tmp_path)
    _truncate(out / "selectivity.csv")
    before = _tree(out)
    args = ["report", str(out)] if command == "report" else ["compare", str(b), str(out)]
    line = _one_error(runner.invoke(app, args), "selectivity.csv", "changed after the run", "rerun the command")
    assert "SHA-256" in line and _tree(out) == before
    # the same edit, keeping the row count and the columns: still a different table
    out2 = _copy(a, tmp_path, "edited")
    (out2 / "results.csv").write_text((out2 / "results.csv").read_text().replace(",0.", ",0.0", 1))
    _one_error(runner.invoke(app, ["report", str(out2)]), "results.csv", "changed after the run")


def _older(folder):
    """The run as written before tables were recorded: no `tables` in run.json."""
    run = json.loads((folder / "run.json").read_text())
    run.pop("tables", None)
    (folder / "run.json").write_text(json.dumps(run, indent=2))


def test_an_older_run_is_still_checked_for_whole_tables_and_their_columns(runs, tmp_path):
    _, a, _ = runs
    cut = _copy(a, tmp_path, "cut")
    _older(cut)
    _truncate(cut / "selectivity.csv")
    _one_error(runner.invoke(app, ["report", str(cut)]), "selectivity.csv", "last line is cut")
    renamed = _copy(a, tmp_path, "renamed")
    _older(renamed)
    sel = pd.read_csv(renamed / "selectivity.csv").rename(columns={"verdict": "call"})
    sel.to_csv(renamed / "selectivity.csv", index=False)
    before = _tree(renamed)
    _one_error(runner.invoke(app, ["report", str(renamed)]), "selectivity.csv", "no column(s) verdict")
    assert _tree(renamed) == before
    whole = _copy(a, tmp_path, "whole")
    _older(whole)
    assert runner.invoke(app, ["report", str(whole), "-q"]).exit_code == 0  # an untouched older run renders


def test_a_sweep_table_with_other_columns_is_one_line(tmp_path):
    out = _copy(REPORTS / "sweeps" / "breadth", tmp_path)
    _older(out)  # no recorded checksums: the renamed column reaches the column check
    rows = pd.read_csv(out / "results.csv").rename(columns={"hook": "site"})
    rows.to_csv(out / "results.csv", index=False)
    before = _tree(out)
    _one_error(runner.invoke(app, ["report", str(out)]), "results.csv", "no column(s) hook")
    assert _tree(out) == before


def test_a_rendering_error_is_one_line_and_nothing_written(runs, tmp_path):
    """run.json without the probe's C: the tables and the typed blocks pass, rendering fails (was: a KeyError
    traceback)."""
    _, a, _ = runs
    out = _copy(a, tmp_path)
    run = json.loads((out / "run.json").read_text())
    del run["methods"]["probe"]["C"]
    (out / "run.json").write_text(json.dumps(run, indent=2))
    before = _tree(out.parent)
    _one_error(runner.invoke(app, ["report", str(out)]), "cannot re-render", "KeyError")
    assert _tree(out.parent) == before


def test_a_missing_model_name_is_one_line_naming_the_key_and_the_file(runs, tmp_path):
    """run.json without the model's name: refused when its provenance is read, before anything renders."""
    _, a, _ = runs
    out = _copy(a, tmp_path)
    run = json.loads((out / "run.json").read_text())
    del run["provenance"]["name"]
    (out / "run.json").write_text(json.dumps(run, indent=2))
    before = _tree(out.parent)
    _one_error(runner.invoke(app, ["report", str(out)]), str(out / "run.json"), "'provenance' has no 'name'")
    assert _tree(out.parent) == before


@pytest.mark.parametrize("top", ["0", "-1"])
def test_compare_refuses_a_top_below_one(runs, top):
    _, a, b = runs
    _one_error(runner.invoke(app, ["compare", str(a), str(b), "--top", top]), "--top", top)


def test_compare_on_a_foreign_folder_names_compare(runs, tmp_path):
    _, a, _ = runs
    (tmp_path / "notes").mkdir()
    line = _one_error(runner.invoke(app, ["compare", str(a), str(tmp_path / "notes")]), "`auditkit compare`")
    assert "auditkit report" not in line


def test_other_installed_versions_are_one_warning(runs, tmp_path):
    _, a, b = runs
    out = _copy(a, tmp_path)
    run = json.loads((out / "run.json").read_text())
    run["versions"]["transformers"] = "0.0.1"
    (out / "run.json").write_text(json.dumps(run, indent=2))
    for args in (["report", str(out), "-q"], ["compare", str(b), str(out)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        warnings = [l for l in result.stderr.splitlines() if l.startswith("warning:")]
        assert len(warnings) == 1 and "transformers 0.0.1 -> " in warnings[0] and str(out) in warnings[0]
    same = runner.invoke(app, ["report", str(a), "-q"])  # written here: no warning
    assert same.exit_code == 0 and "warning:" not in same.stderr
