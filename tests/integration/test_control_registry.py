"""A control is one registered object: a toy control registered here, in this module alone, is accepted by the
config and the CLI, run by the probe method, shown in the verdict matrix with its own description, and coloured
and named by its own declaration in every figure; unregistered, it is gone again."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from auditkit.cli.main import app
from typer.testing import CliRunner

from auditkit.audit.config import AuditConfig, known_controls
from auditkit.audit.matrix import matrix_controls
from auditkit.audit.registry import METHODS
from auditkit.audit.run import resolve_controls
from auditkit.controls import registry
from auditkit.controls.registry import Control
from auditkit.errors import ConfigError
from auditkit.report.plots import arm_colour, short_name
from auditkit.types import ActivationSet

pytestmark = pytest.mark.usefixtures("one_thread")

TOY = "toy-relabel"
COLOUR = "#123456"
DESCRIPTION = "Keeps everything: the labels' classes renamed by one fixed permutation (a toy for the registry test)."


def rotate_labels(acts: ActivationSet, seed: int) -> ActivationSet:
    """Every class k becomes (k + 1) mod K, whatever the seed: a renaming that destroys nothing."""
    n_classes = max(len(acts.class_names), int(acts.labels_N.max()) + 1)
    labels = np.where(acts.labels_N >= 0, (acts.labels_N + 1) % n_classes, -1)
    return acts.replace(labels_N=labels, provenance={**acts.provenance, "control": TOY, "control_seed": seed})


@pytest.fixture
def toy():
    registry.register(
        Control(
            name=TOY,
            stage="label",
            apply=rotate_labels,
            colour=COLOUR,
            short_name="toy",
            description=DESCRIPTION,
            vocabulary_matrix=True,
        )
    )
    yield TOY
    registry.unregister(TOY)


def test_a_registered_control_is_known_to_every_consumer(toy):
    assert toy in known_controls()
    AuditConfig(controls=("shuffled-labels", toy))  # accepted
    assert arm_colour(toy) == COLOUR and short_name(toy) == "toy"
    # every method that takes label controls applies it; the probe runs it by default, on every data level
    assert all(toy in METHODS[m].controls() for m in ("probe", "pursuit", "sae"))
    assert toy in resolve_controls(AuditConfig(), "sentence") and toy in resolve_controls(AuditConfig(), "token")
    matrix_cfg = AuditConfig(dataset="token-properties:capitalised", matrix="W_E", controls=(toy,))
    assert matrix_controls(matrix_cfg) == (toy,) and toy in matrix_controls(AuditConfig(matrix="W_E"))


def test_an_unregistered_control_is_unknown():
    with pytest.raises(ConfigError, match="unknown control"):
        AuditConfig(controls=(TOY,))
    assert arm_colour(TOY) != COLOUR


def test_a_registered_control_is_listed_by_the_cli(toy):
    listed = CliRunner().invoke(app, ["controls"])
    assert listed.exit_code == 0, listed.output
    line = next(line for line in listed.output.splitlines() if line.startswith(toy))
    assert line.split()[1] == "label" and line.endswith(DESCRIPTION)


def test_a_registered_control_runs_through_the_cli_into_the_matrix(toy, tmp_path, yes_no_table):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "audit",
            "--model",
            "tiny-gpt2",
            "--dataset",
            f"table:{yes_no_table(tmp_path / 't.csv', n=80)}",
            "--hook",
            "blocks.1.hook_resid_post",
            "--methods",
            "probe",
            "--probes",
            "logistic",
            "--controls",
            f"shuffled-labels,{toy}",
            "--label-draws",
            "1",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    sel = pd.read_csv(out / "selectivity.csv")
    toy_acc = sel[(sel["control"] == toy) & (sel["metric"] == "accuracy")]
    # A renaming of the classes destroys nothing: the probe is exactly as good on it, never selective over it,
    # while it is selective over shuffled labels (the label sits in the last token).
    assert len(toy_acc) == 1 and abs(float(toy_acc["selectivity"].iloc[0])) < 0.02, toy_acc
    assert toy_acc["verdict"].iloc[0] != "selective"
    shuffled = sel[(sel["control"] == "shuffled-labels") & (sel["metric"] == "accuracy")]
    assert shuffled["verdict"].iloc[0] == "selective", shuffled
    report = (out / "report.md").read_text().splitlines()
    header = next(line for line in report if line.startswith("| ") and "shuffled-labels" in line)
    assert toy in header  # a column of the verdict matrix on the first screen
    section = next(i for i, line in enumerate(report) if line.startswith("#") and line.endswith(f"# {toy}"))
    assert report[section + 2] == DESCRIPTION  # its section opens with its own description
