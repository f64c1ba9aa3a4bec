"""``auditkit report`` on calibration, steering and token-properties:all outputs: copies of the committed
reports are re-rendered in a temporary folder (never in reports/), byte-identically on a second render, their
tables and run files untouched, and their first screen is the sentence, the matrix and its figure."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest
from auditkit.cli.main import app
from typer.testing import CliRunner

from auditkit.audit.saved import load_matrix
from auditkit.calibration.saved import load_calibration
from auditkit.report.calibration import power_plot, render_calibration
from auditkit.report.calibration_matrix import calibration_heatmap, calibration_matrix
from auditkit.report.embedding import embedding_matrix
from auditkit.report.plots import overlapping_labels, verdict_heatmap
from auditkit.report.steering import dose_response_plot, steering_matrix
from auditkit.steering.saved import load_steering

runner = CliRunner()
REPORTS = Path(__file__).resolve().parents[2] / "reports"
MAX_WIDTH_PX = 1400
"""A figure read at 100% zoom without scrolling."""


def _copy(name: str, tmp_path: Path) -> Path:
    out = tmp_path / name.replace("/", "-")
    shutil.copytree(REPORTS / name, out)
    return out


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _rerender_twice(folder: Path, report: str) -> dict[str, str]:
    """Re-render ``folder`` twice through the CLI: the second render is byte-identical to the first, and every
    table and run file is the committed one, byte for byte."""
    before = _digests(folder)
    first = runner.invoke(app, ["report", str(folder)])
    assert first.exit_code == 0, first.output
    assert f"report: {folder}/{report}" in first.stdout
    once = _digests(folder)
    second = runner.invoke(app, ["report", str(folder), "-q"])
    assert second.exit_code == 0 and second.stdout.strip() == f"{folder}/{report}"
    assert _digests(folder) == once
    for name, digest in before.items():
        if name.endswith((".csv", ".json")):
            assert once[name] == digest, name  # never recomputed, never rewritten
    return once


def _first_screen(text: str, end: str) -> str:
    return text[: text.index(end)]


@pytest.mark.parametrize("name", ["calibration/small", "calibration/features/small"])
def test_calibration_rerenders_byte_identically_with_the_matrix_first(name, tmp_path):
    folder = _copy(name, tmp_path)
    files = _rerender_twice(folder, "report.md")
    assert {"report.md", "calibration.png"} <= set(files) and "power.png" not in files  # nulls only: no power
    text = (folder / "report.md").read_text()
    head = _first_screen(text, "## What was tested")
    assert head.startswith("# Calibration of the audit's verdicts\n\nCalibrated the verdicts of ")
    assert "200 label-null datasets" in head and "no planted datasets (power not measured)" in head
    assert "## Calibration matrix" in head and "| method | shuffled-labels | control-task |" in head
    assert "0.0% [0.0%, 1.8%] ✔" in head and "![Calibration matrix" in head
    # the nulls-only glitch: no "0 per strength, strengths []"
    assert "0 per strength" not in text and "strengths []" not in text
    assert "- **Planted datasets**: none were drawn, so power was not measured" in text
    assert "<details>" in text and "Reproduce: `python bench/bench_calibration.py" in text
    settings = next(line for line in text.splitlines() if line.startswith("- **Audit settings**"))
    assert ("probes logistic" in settings) == name.startswith("calibration/small")  # SAE/pursuit use no probe kinds
    assert "/work/" not in text and "/home/" not in text


def test_calibration_matrix_reads_the_committed_rates(tmp_path):
    result, _ = load_calibration(REPORTS / "calibration/default")
    matrix = calibration_matrix(result).set_index(["method", "control"])
    fpr = pd.read_csv(REPORTS / "calibration/default/fpr.csv").query("null == 'null-labels'")
    assert len(matrix) == len(fpr) == 30
    row = matrix.loc[("probe-mass-mean", "spectral-reinit")]
    assert row["fpr"] == 0.005 and row["mark"] == "✔" and row["n_null"] == 200
    power = pd.read_csv(REPORTS / "calibration/default/power.csv")
    expected = power.query("method == 'probe-logistic' and control == 'control-task' and strength == 0.5")["power"]
    assert matrix.loc[("probe-logistic", "control-task"), "power"] == expected.item()
    text = render_calibration(result)
    assert f"power {expected.item():.2f}" in text and "signal-to-noise 0.5" in text


def test_calibration_figures_are_legible(tmp_path):
    for name in ("calibration/default", "calibration/features/default"):
        result, _ = load_calibration(REPORTS / name)
        matrix = calibration_matrix(result)
        heat = calibration_heatmap(result, tmp_path / "calibration.png")
        assert heat.get_size_inches()[0] * 110 <= MAX_WIDTH_PX and len(heat.axes) == 4  # two panels, two colour bars
        for ax in heat.axes[:2]:
            assert [t.get_text() for t in ax.get_yticklabels()] == list(dict.fromkeys(matrix["method"]))
            assert len(ax.get_xticklabels()) == matrix["control"].nunique()
        assert "False-positive rate" in heat.axes[0].get_title() and "3 seeds" in heat.axes[0].get_title()
        assert overlapping_labels(heat) == []
        power = power_plot(result, tmp_path / "power.png")
        assert overlapping_labels(power) == [] and "one strength" in power._suptitle.get_text()


def test_steering_rerenders_byte_identically_with_the_matrix_first(tmp_path):
    folder = _copy("steering", tmp_path)
    _rerender_twice(folder, "steering.md")
    text = (folder / "steering.md").read_text()
    head = _first_screen(text, "## Rankings")
    assert "Steered `smollm2-135m` at `blocks.15.hook_resid_pre`" in head and "3 seeds [0, 1, 2]" in head
    assert "| direction | random direction | spectral-reinit |" in head
    # logistic writes: 0.692 (real) - (-0.098) (random) at alpha 0.125, and 0.692 - 0.441 (spectral-reinit)
    assert "| logistic: writes | +0.790 [+0.723, +0.856] ✓ | +0.250 [+0.180, +0.320] ✓ |" in head
    assert "![Dose-response" in head and "<details>" in text


def test_steering_figures_are_legible(tmp_path):
    result = load_steering(REPORTS / "steering")
    assert len(result.concepts) == 5
    matrix = steering_matrix(result)
    assert set(matrix["control"]) == {"random direction", "spectral-reinit"} and len(matrix) == 16
    fig = dose_response_plot(result.summary, tmp_path / "dose.png")
    assert fig.get_size_inches()[0] * 110 <= MAX_WIDTH_PX and overlapping_labels(fig) == []
    assert "mean over 3 seeds" in fig._suptitle.get_text()


KEPT = ("capitalised", "non-ascii")
"""Two of the committed properties (re-rendering all eight takes half a minute on two cores)."""


def test_embedding_summary_rerenders_with_the_matrix_first(tmp_path):
    folder = tmp_path / "embedding"
    shutil.copytree(
        REPORTS / "embedding",
        folder,
        ignore=lambda d, names: [
            n
            for n in names
            if Path(d) == REPORTS / "embedding" and (REPORTS / "embedding" / n).is_dir() and n not in KEPT
        ],
    )
    files = _rerender_twice(folder, "summary.md")
    committed = _digests(REPORTS / "embedding")
    for name, digest in committed.items():
        if name.split("/")[0] in KEPT:  # every property's own report is rendered exactly as committed
            assert files[name] == digest, name
    text = (folder / "summary.md").read_text()
    head = _first_screen(text, "## Per property")
    assert "Audited the rows of `W_E` of `smollm2-135m`" in head and "2 token properties" in head
    assert "| property | shuffled-labels | spectral-reinit | gaussian-reinit |" in head
    assert "| capitalised | +0.483 [+0.475, +0.491] ✓ |" in head and "![Verdict matrix" in head
    assert "--dataset token-properties:all" in text and "--out reports/embedding\n" in text
    results = {p: r for p, (r, _) in load_matrix(folder).items()}
    heat = verdict_heatmap(embedding_matrix(results), tmp_path / "v.png", "t")
    assert [t.get_text() for t in heat.axes[0].get_yticklabels()] == list(KEPT) and overlapping_labels(heat) == []
    assert heat.get_size_inches()[0] * 110 <= MAX_WIDTH_PX


def test_calibration_without_label_nulls_still_renders(tmp_path):
    """Only repeated-text nulls (or none at all): the matrix says so and no heatmap is drawn."""
    from auditkit.report.calibration import render_files

    result, _ = load_calibration(REPORTS / "calibration/small")
    for fpr in (result.fpr[result.fpr["null"] != "null-labels"], result.fpr.iloc[0:0]):
        folder = tmp_path / str(len(fpr))
        folder.mkdir()
        render_files(dataclasses.replace(result, fpr=fpr), folder, "auditkit validate")
        text = (folder / "report.md").read_text()
        assert "No label-null datasets were drawn" in text and not (folder / "calibration.png").exists()
        assert ("Repeated-text nulls (" in text) == (len(fpr) > 0)


@pytest.mark.parametrize("name", ["sae", "pursuit"])
def test_a_re_render_equals_the_first_render_of_an_audit(tmp_path, name):
    """reports/sae and reports/pursuit were written by `auditkit audit` itself (a first render). The SAE method
    writes its baselines' rows before the model and token controls'; a re-render must still order the columns as
    the audit ran its controls. Pursuit writes rows for its own random dictionaries, which the audit never lists
    among its controls (a re-render listed them: 10 controls against the first render's 8). Either way the
    re-rendered report equals the committed one byte for byte."""
    out = _copy(name, tmp_path)
    before = _digests(out)
    result = runner.invoke(app, ["report", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert _digests(out) == before


def test_breadth_matrix_figures_keep_their_titles_inside(tmp_path):
    from auditkit.report.plots import titles_outside
    from auditkit.report.sweep import matrix_figure
    from auditkit.sweep.saved import load_sweep

    result, _ = load_sweep(REPORTS / "sweeps/breadth")
    for method in ("probe-logistic", "probe-mass-mean"):
        fig = matrix_figure(result, method, tmp_path / f"{method}.png")
        assert titles_outside(fig) == [], method  # the legend line was cut at the right edge before wrapping
