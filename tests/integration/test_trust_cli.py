"""``auditkit datasets --audit`` through Typer's CliRunner: a real (small) run writes the marked folder and can
replace it in place; bad input is one ``error:`` line, exit code 2, before any compute, with nothing written."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from auditkit.cli.main import app
from typer.testing import CliRunner

from auditkit.report.outputs import MARKER, marker_kind

runner = CliRunner()


def test_the_trust_table_of_one_shipped_task_and_its_rerun_in_place(tmp_path):
    out = tmp_path / "datasets"
    args = ["datasets", "--audit", "--out", str(out), "--tasks", "41_truthqa_tf", "--no-progress"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, "datasets.csv", "run.json", "summary.md"])
    assert marker_kind(out) == "datasets"
    row = pd.read_csv(out / "datasets.csv").iloc[0]
    assert (row.dataset, row.rows, row.distinct_texts, row.copies) == ("sae-probes:41_truthqa_tf", 786, 490, 296)
    assert row.flag == "leaky" and "lexical leak (paper)" in row.reasons
    summary = (out / "summary.md").read_text()
    assert "1 sae-probes classification tasks (1 binary)" in summary and "0 broken, 0 lexical, 1 leaky, 0 ok" in summary
    again = runner.invoke(app, args)  # its own marked folder is replaced, nothing else left beside it
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["datasets"]


def _one_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_a_users_folder_as_out_is_refused_and_left_alone(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    line = _one_error(runner.invoke(app, ["datasets", "--audit", "--out", str(mine), "--tasks", "41_truthqa_tf"]))
    assert "auditkit did not write" in line
    assert os.listdir(mine) == ["notes.txt"] and (mine / "notes.txt").read_text() == "keep me"
    assert sorted(os.listdir(tmp_path)) == ["mine"]  # no temporary folder left


@pytest.mark.parametrize(
    "args, says",
    [
        (["--audit", "--tasks", "no_such_task"], "unknown sae-probes dataset"),
        (["--audit", "--tasks", " , "], "--tasks is empty"),
        (["--audit", "--max-texts", "5"], "max_texts must be at least 20"),
        (["--out", "somewhere"], "--out applies only with --audit"),
        (["--audit", "--kind", "binary"], "pick some with --tasks"),
    ],
)
def test_bad_input_is_one_error_line_before_any_compute(tmp_path, args, says):
    out = tmp_path / "never"
    if "--out" not in args:
        args = [*args, "--out", str(out)]
    line = _one_error(runner.invoke(app, ["datasets", *args]))
    assert says in line
    assert os.listdir(tmp_path) == []
