"""Shell words of reproduce commands, and the output marker on every committed report."""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
import pytest

from auditkit.report.outputs import MARKER, is_auditkit_output
from auditkit.shell import command_line, display_path, format_value

REPORTS = Path(__file__).resolve().parents[2] / "reports"


def test_command_line_round_trips_through_shlex():
    words = ["auditkit", "audit", "--dataset", "table:my data/it's.csv", "--hook", "$(rm -rf ~)", "--x", "a;b"]
    line = command_line(words[:2], [("--dataset", words[3]), ("--hook", words[5]), ("--x", words[7])])
    assert shlex.split(line) == words


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.123456789, "0.123456789"),
        (1.0, "1.0"),
        (1e-3, "0.001"),
        (np.float64(0.1), "0.1"),
        (3, "3"),
        ((0, 1, 2), "0,1,2"),
        ((0.5, 0.123456789), "0.5,0.123456789"),
        ("x y", "x y"),
    ],
)
def test_values_are_written_in_full(value, text):
    assert format_value(value) == text


def test_flags_and_missing_values():
    assert command_line(["p"], [("--on", True), ("--off", False), ("--none", None), ("--n", 0)]) == "p --on --n 0"


def test_paths_inside_the_working_folder_are_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert display_path(tmp_path / "reports" / "default") == "reports/default"
    assert display_path(tmp_path) == "."
    assert display_path("/elsewhere/out") == "/elsewhere/out"
    assert display_path("rel/out") == "rel/out"
    assert display_path(str(tmp_path) + "-sibling/x") == str(tmp_path) + "-sibling/x"


def test_every_committed_report_carries_the_marker():
    """The committed reports were written by auditkit: marked, so regenerating them in place is allowed."""
    folders = {p.parent for name in ("report.md", "steering.md", "summary.md") for p in REPORTS.rglob(name)}
    assert len(folders) >= 10
    assert sorted(str(f.relative_to(REPORTS)) for f in folders if not is_auditkit_output(f)) == []
    assert not is_auditkit_output(REPORTS), f"reports/ itself is not an output; it must not carry {MARKER}"
