"""The options of ``auditkit audit``, ``sweep`` and ``steer`` are declared once (``cli/flags.py``): each flag is
spelled in one place, ``--help`` lists them in panels, and the reproduce command written from a saved config
parses back to that config (issue 28)."""

from __future__ import annotations

import ast
import dataclasses
import json
import shlex
from pathlib import Path

import pandas as pd
import pytest
import typer
from auditkit.cli.declare import parse
from auditkit.cli.flags import audit_flags, sweep_flags
from auditkit.cli.main import app
from auditkit.cli.reproduce import reproduce_command, sweep_command
from typer.testing import CliRunner

from auditkit.audit.config import DEFAULT_C_GRID, AuditConfig
from auditkit.audit.options import PursuitAuditOptions, SAEAuditOptions
from auditkit.audit.saved import config_from_json
from auditkit.models import ModelSpec
from auditkit.report.write import _jsonable
from auditkit.sweep.config import SweepConfig

ROOT = Path(__file__).resolve().parents[2]
OTHER_COMMANDS = ("listing.py", "plan.py", "report.py", "sae_evals.py", "sae_synth.py", "validate.py")
"""Modules of the commands whose options are not generated from a declaration yet: their own ``--out``,
``--seeds`` or ``--quiet`` are their own commands' declarations."""

runner = CliRunner()


def _command(name: str):
    return typer.main.get_command(app).commands[name]


def _flags(name: str) -> set[str]:
    return {o for p in _command(name).params for o in p.opts if o.startswith("--") and o != "--help"}


def _spellings() -> dict[str, list[str]]:
    """Where each string that is exactly a flag of ``audit``, ``sweep`` or ``steer`` is written in ``cli/``."""
    flags = _flags("audit") | _flags("sweep") | _flags("steer")
    where: dict[str, list[str]] = {f: [] for f in flags}
    for path in sorted((ROOT / "cli").rglob("*.py")):
        if path.name in OTHER_COMMANDS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in where:
                where[node.value].append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return where


def test_every_flag_of_audit_sweep_and_steer_is_spelled_in_one_declaration():
    where = _spellings()
    assert len(where) > 50  # every option of the three commands, the new sweep options included
    assert {f: sites for f, sites in where.items() if len(sites) != 1} == {}
    assert {site.partition(":")[0] for sites in where.values() for site in sites} == {"cli/flags.py"}
    for module in (
        "audit.py",
        "sweep.py",
        "steer.py",
        "reproduce.py",
    ):  # the commands and reproduce declare nothing by hand
        source = (ROOT / "cli" / module).read_text()
        assert "typer.Option" not in source and "Annotated" not in source, module


def test_the_sweep_takes_the_audit_options_each_cell_uses():
    audit, sweep = _flags("audit"), _flags("sweep")
    cell_options = {"--text-column", "--label-column", "--align", "--dictionary", "--pursuit-solver", "--pursuit-k"}
    cell_options |= {"--pursuit-alphas", "--pursuit-sae", "--pursuit-no-center", "--sae-k", "--mdl", "--probe-c"}
    assert cell_options <= sweep
    assert audit - sweep == {"--dataset", "--hook", "--matrix", "--vocab-sample", "--no-cache", "--quiet"}
    assert sweep - audit == {"--datasets", "--hooks"}


@pytest.mark.parametrize("command", ["audit", "sweep"])
def test_help_lists_the_options_in_panels(command):
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "160"}, terminal_width=160)
    assert result.exit_code == 0, result.output
    titles = [line.strip("╭─╮ ").rstrip("─ ") for line in result.output.splitlines() if line.startswith("╭─")]
    assert titles == [
        "Options",  # --help alone
        "Model",
        "Data",
        "Methods and controls",
        "Probes (--methods probe)",
        "SAE (--methods sae)",
        "Pursuit (--methods pursuit)",
        "Execution",
        "Output",
    ]


def _saved(cfg: object) -> dict:
    """``cfg`` as run.json saves it."""
    return json.loads(json.dumps(_jsonable(cfg)))


def _parsed(command: str):
    """The options the CLI parses from ``command`` (a reproduce command), without running it."""
    words = shlex.split(command)
    assert words[0] == "auditkit"
    flags = audit_flags() if words[1] == "audit" else sweep_flags()
    return parse(flags, _command(words[1]).make_context(words[1], words[2:]).params)


AUDIT = AuditConfig(
    model=ModelSpec(name="tiny-gpt2", revision="step0", processed=True, device="cuda:1", dtype="bfloat16"),
    dataset="table:/data/my table.csv",
    text_column="sentence",
    label_column="y",
    align="last",
    duplicates="dedupe",
    hook="blocks.1.hook_resid_post",
    positions="last",
    max_examples=None,
    max_length=64,
    methods=("probe", "sae", "pursuit"),
    controls=("shuffled-labels", "sae-untrained"),
    seeds=(3, 5, 8),
    test_fraction=0.123456789,
    label_draws=4,
    weight_draws=2,
    probe_C=0.3,
    probes=("logistic", "k-sparse:k=1,5"),
    mdl=True,
    mdl_schedule=(0.1, 0.5, 1.0),
    gaussian_keep_embeddings=True,
    # a width F stands for the expansion factor, which it overrides: --sae-width 96 sets both
    sae=SAEAuditOptions(
        architecture="standard", width=96, expansion_factor=1.0, l1_coefficient=2.5, lr=3e-4, training_tokens=1000
    ),
    pursuit=PursuitAuditOptions(dictionary="unembed", solver="gradient", ks=(1, 3), center=False),
)
"""An audit whose every reproduced option differs from its default."""


@pytest.mark.parametrize(
    "cfg",
    [
        AUDIT,
        AuditConfig(),
        dataclasses.replace(AUDIT, pursuit=PursuitAuditOptions(solver="lasso", alphas=(0.4, 0.1)), max_examples=64),
        dataclasses.replace(AUDIT, sae=SAEAuditOptions(expansion_factor=1.5, k=4, load="/saes/mine")),
        dataclasses.replace(
            AUDIT,
            dataset="token-properties:capitalised",
            matrix="W_U",
            vocab_sample=500,
            methods=("probe",),  # the options of methods it does not run are not written: left at their defaults
            controls=("shuffled-labels",),
            sae=SAEAuditOptions(),
            pursuit=PursuitAuditOptions(),
        ),
        AuditConfig(probe_c_grid=(), probe_C=0.01),  # a fixed C: --probe-c-grid none --probe-c 0.01
        AuditConfig(probe_c_grid=(0.0123456789, 1.0)),  # written in full, not rounded
    ],
    ids=["every-option", "defaults", "lasso", "expansion-and-load", "matrix", "fixed-c", "c-grid"],
)
def test_a_saved_audits_reproduce_command_parses_back_to_its_config(cfg):
    from auditkit.audit.run import resolve_controls, spec_level

    saved = config_from_json(_saved(cfg))
    assert saved == cfg
    parsed = _parsed(reproduce_command(saved, "out"))
    # the command names the controls the audit ran, so a later change of the defaults does not change a rerun
    ran = dataclasses.replace(cfg, controls=resolve_controls(cfg, spec_level(cfg.dataset)))
    assert parsed.build(AuditConfig) == ran
    assert parsed.plain["out"] == Path("out")


def test_a_run_saved_before_the_c_grid_existed_reads_back_at_its_fixed_c():
    """run.json files written before ``probe_c_grid`` existed have no such key; their probes were fitted at the
    fixed ``probe_C``. Read back under today's default grid they would claim a grid they never used (a re-render,
    a compare or a sweep's saved config would state the wrong method)."""
    data = _saved(AuditConfig(probe_c_grid=()))
    del data["probe_c_grid"]
    assert config_from_json(data).probe_c_grid == ()
    assert config_from_json(_saved(AuditConfig())).probe_c_grid == DEFAULT_C_GRID  # a recorded grid is kept


def test_a_saved_sweeps_reproduce_command_parses_back_to_its_config():
    audit = dataclasses.replace(AUDIT, dataset=AuditConfig().dataset, hook=None)  # a cell's own are not the sweep's
    cfg = SweepConfig(audit=audit, datasets="table:a.csv,table:b.csv", hooks="blocks.0.hook_resid_pre")
    data = _saved(cfg)
    saved = SweepConfig(audit=config_from_json(data["audit"]), datasets=data["datasets"], hooks=data["hooks"])
    assert saved == cfg
    command = sweep_command(saved, "out")
    for option in ("--text-column sentence", "--align last", "--pursuit-solver gradient", "--pursuit-no-center"):
        assert option in command
    assert _parsed(command).build(SweepConfig) == cfg


def _planted(path: Path, n: int = 48) -> Path:
    labels = [i % 2 for i in range(n)]
    texts = [f"item {i} {'good' if y else 'bad'}" for i, y in enumerate(labels)]
    pd.DataFrame({"sentence": texts, "y": labels}).to_csv(path, index=False)
    return path


def test_sweep_passes_the_cell_options_through_to_every_cell(tmp_path, monkeypatch):
    """--text-column, --label-column, --align and the pursuit options reach each cell's audit (before, the sweep
    had none of them: a table with other column names could not be swept)."""
    from auditkit.audit import run as audit_run

    asked = []
    original = audit_run.run_audit
    monkeypatch.setattr(audit_run, "run_audit", lambda c, **kw: asked.append(c) or original(c, **kw))
    out = tmp_path / "out"
    args = ["sweep", "--model", "tiny-gpt2", "--datasets", f"table:{_planted(tmp_path / 't.csv')}"]
    args += ["--hooks", "blocks.1.hook_resid_post", "--methods", "pursuit", "--controls", "shuffled-labels"]
    args += ["--text-column", "sentence", "--label-column", "y", "--align", "last", "--dictionary", "unembed"]
    args += ["--pursuit-solver", "lasso", "--pursuit-alphas", "0.4", "--pursuit-no-center", "--seeds", "0,1"]
    args += ["--max-length", "16", "--cache-dir", str(tmp_path / "cache"), "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(asked) == 1
    cell = asked[0]
    assert (cell.text_column, cell.label_column, cell.align) == ("sentence", "y", "last")
    assert cell.pursuit == PursuitAuditOptions(dictionary="unembed", solver="lasso", alphas=(0.4,), center=False)
    rows = pd.read_csv(out / "results.csv")
    assert "fvu@alpha=0.4" in set(rows["metric"])  # the lasso sweep ran, at the penalty asked for
    command = json.loads((out / "run.json").read_text())["command"]
    assert "--text-column sentence" in command and "--pursuit-alphas 0.4" in command
