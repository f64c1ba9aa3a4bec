"""``auditkit plan`` through Typer's CliRunner, on the committed audit reports/layer5-small (read only) and on a
stated design: the printed MDE is the selectivity.csv's, and bad input is one ``error:`` line, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from auditkit.cli.main import app
from typer.testing import CliRunner

from auditkit.metrics.planning import power_at, stated_design

runner = CliRunner()
PILOT = Path(__file__).resolve().parents[2] / "reports" / "layer5-small"


def _row(output: str, method: str, control: str) -> list[str]:
    lines = [line.split() for line in output.splitlines() if line.split()[:2] == [method, control]]
    assert len(lines) == 1, output
    return lines[0]


def test_plan_prints_the_pilots_mde_power_and_texts_needed():
    result = runner.invoke(app, ["plan", str(PILOT), "--effect", "0.10", "--control", "shuffled-labels"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(PILOT / "selectivity.csv")
    rows = table[(table.metric == "accuracy") & (table.control == "shuffled-labels")]
    assert len(rows) == 2
    for r in rows.itertuples():
        cells = _row(result.stdout, r.method, r.control)
        assert cells[4] == f"{r.mde:.3f}"  # the MDE the audit wrote, recomputed from its standard errors
        assert float(cells[5]) < 0.8 and int(cells[6].replace(",", "")) > 300  # +0.10 needs more than its 300 texts
    assert "spectral-reinit" not in result.stdout  # --control keeps one control
    assert "pilot:" in result.stdout and "300 texts (75 test texts per seed)" in result.stdout


def test_a_random_model_controls_draw_spread_is_not_planned_away():
    """Against spectral-reinit the pilot's rows are prediction intervals whose control draws spread by 0.03-0.06:
    at the pilot's three seeds no number of texts detects +0.10 (t on 2 df times that spread alone exceeds it)."""
    result = runner.invoke(app, ["plan", str(PILOT), "--effect", "0.10", "--control", "spectral-reinit"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(PILOT / "selectivity.csv")
    for r in table[(table.metric == "accuracy") & (table.control == "spectral-reinit")].itertuples():
        assert r.note.startswith("prediction interval")
        cells = _row(result.stdout, r.method, r.control)
        assert cells[4] == f"{r.mde:.3f}" and cells[6:8] == ["more", "than"], cells


def test_more_seeds_need_fewer_texts():
    three = runner.invoke(app, ["plan", str(PILOT), "--effect", "0.1", "--method", "probe-logistic"])
    ten = runner.invoke(app, ["plan", str(PILOT), "--effect", "0.1", "--method", "probe-logistic", "--seeds", "10"])
    assert three.exit_code == ten.exit_code == 0, three.output + ten.output
    n = [int(_row(r.stdout, "probe-logistic", "shuffled-labels")[6].replace(",", "")) for r in (three, ten)]
    assert n[1] < n[0]


def test_a_stated_design_prints_the_texts_needed():
    result = runner.invoke(app, ["plan", "--real", "0.75", "--control", "0.65", "--effect", "0.10"])
    assert result.exit_code == 0, result.output
    cells = next(line.split() for line in result.stdout.splitlines() if line.split()[:2] == ["0.75", "0.65"])
    n = int(cells[3].replace(",", ""))
    design = stated_design(0.75, 0.65)
    assert (
        power_at(design, n, 3, 0.10, test_fraction=0.25) >= 0.8 > power_at(design, n - 1, 3, 0.10, test_fraction=0.25)
    )
    beyond = runner.invoke(
        app, ["plan", "--real", "0.75", "--control", "0.65", "--effect", "0.06", "--max-texts", "500"]
    )
    assert beyond.exit_code == 0 and "more than 500" in beyond.stdout, beyond.output


@pytest.mark.parametrize(
    "args, says",
    [
        (["plan", "no-such-folder", "--effect", "0.1"], "no-such-folder"),
        (["plan", str(PILOT), "--effect", "0"], "--effect"),
        (["plan", str(PILOT), "--effect", "-0.1"], "--effect"),
        (["plan", str(PILOT), "--effect", "0.03"], "threshold"),
        (["plan", str(PILOT), "--effect", "0.1", "--power", "1"], "--power"),
        (["plan", str(PILOT), "--effect", "0.1", "--power", "0"], "--power"),
        (["plan", str(PILOT), "--effect", "0.1", "--control", "no-such-control"], "spectral-reinit"),
        (["plan", str(PILOT), "--effect", "0.1", "--method", "probe-nope"], "probe-logistic"),
        (["plan", str(PILOT), "--effect", "0.1", "--metric", "nope"], "accuracy"),
        (["plan", str(PILOT), "--effect", "0.1", "--real", "0.7"], "--real"),
        (["plan", str(PILOT)], "--effect"),
        (["plan", "--effect", "0.1"], "--real"),
        (["plan", "--real", "0.75", "--control", "spectral-reinit", "--effect", "0.1"], "accuracy"),
        (["plan", "--real", "1.5", "--control", "0.6", "--effect", "0.1"], "1.5"),
    ],
)
def test_bad_input_is_one_error_line(args, says):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and says in lines[0], result.stderr
    assert not result.stdout.strip()
