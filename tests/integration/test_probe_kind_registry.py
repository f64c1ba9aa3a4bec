"""A probe kind is one registered object: a toy kind registered here, in this module alone, that declares the shared
hyperparameter ``C`` is accepted by the config and the CLI, listed among the accepted ``--probes`` values, fitted by
the probe method, and gets ``--probe-c`` (before the registry, ``C`` went to the logistic and low-rank probes by name
and a new kind silently kept its own default); unregistered, it is gone again."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from auditkit.cli.main import app
from typer.testing import CliRunner

from auditkit.audit.config import AuditConfig
from auditkit.errors import ConfigError
from auditkit.methods.probes import make_probe, registry
from auditkit.methods.probes.logistic import LogisticProbe
from auditkit.methods.probes.registry import ProbeKind
from auditkit.types import REAL

pytestmark = pytest.mark.usefixtures("one_thread")

TOY = "toy-logistic"


class RecordingLogistic(LogisticProbe):
    """The logistic probe, recording the C it was built with in its complexity (the method info)."""

    kind = TOY

    def fit(self, *args, **kwargs) -> RecordingLogistic:
        super().fit(*args, **kwargs)
        self.complexity_ = {**self.complexity_, "C": self.C}
        return self


@pytest.fixture
def toy():
    registry.register(
        ProbeKind(name=TOY, probe=RecordingLogistic, shared=("C",), description="A logistic probe that records C.")
    )
    yield TOY
    registry.unregister(TOY)


def test_a_registered_kind_is_accepted_and_listed(toy):
    AuditConfig(probes=("logistic", toy))  # accepted
    AuditConfig(probes=(toy,), methods=("probe",), mdl=True)  # a dense kind: --mdl codes it
    with pytest.raises(ConfigError, match=toy):  # listed among the accepted values
        AuditConfig(probes=("ridge",))
    assert make_probe(toy, C=0.5).C == 0.5


def test_an_unregistered_kind_is_unknown():
    with pytest.raises(ConfigError, match="unknown probe kind"):
        AuditConfig(probes=(TOY,))


def _audit(tmp_path, yes_no_table, *args: str):
    return CliRunner().invoke(
        app,
        [
            "audit",
            "--model",
            "tiny-gpt2",
            "--dataset",
            f"table:{yes_no_table(tmp_path / 't.csv', n=60)}",
            "--hook",
            "blocks.1.hook_resid_post",
            "--methods",
            "probe",
            "--controls",
            "shuffled-labels",
            "--label-draws",
            "1",
            "--cache-dir",
            str(tmp_path / "cache"),
            *args,
        ],
    )


def test_probe_c_reaches_a_registered_kind_through_the_cli(toy, tmp_path, yes_no_table):
    out = tmp_path / "out"
    result = _audit(
        tmp_path,
        yes_no_table,
        "--probes",
        f"logistic,{toy}",
        "--probe-c",
        "0.25",
        "--probe-c-grid",
        "none",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    kinds = json.loads((out / "run.json").read_text())["methods"]["probe"]["kinds"]
    assert kinds[toy]["C"] == 0.25  # --probe-c, not the estimator's default of 1
    rows = pd.read_csv(out / "results.csv")
    real = rows[(rows["control"] == REAL) & (rows["metric"] == "accuracy")]
    # The same objective at the same C as the built-in logistic probe: the same accuracies, seed by seed.
    by_method = real.groupby("method")["value"].apply(list)
    assert by_method[f"probe-{toy}"] == pytest.approx(by_method["probe-logistic"], abs=1e-6)


def test_the_cli_lists_a_registered_kind_among_the_accepted_values(toy, tmp_path, yes_no_table):
    result = _audit(tmp_path, yes_no_table, "--probes", "ridge", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and "error:" in result.output and toy in result.output, result.output
