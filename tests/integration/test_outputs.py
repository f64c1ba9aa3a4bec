"""``--out`` never destroys what auditkit did not write, is checked before any compute, leaves no temporary
folder whatever happens; the reproduce command written into a report is exact (issue 13, sections 1 and 4).

The refusal tests run no model: every command's compute is replaced by a function that fails the test,
so a refusal that came after compute (or never came) fails it."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shlex
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from auditkit.cli.main import app
from typer.testing import CliRunner

from auditkit.errors import AuditkitError
from auditkit.report.write import write_outputs

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()
MARKER = ".auditkit-output"
COMPUTE = (
    "auditkit.sweep.run.run_audit",
    "auditkit.audit.run.run_audit",
    "auditkit.audit.matrix.run_matrix_audits",
    "auditkit.steering.run.run_steering",
    "auditkit.calibration.run.run_validate",
)


def _table(path: Path, n: int = 40) -> Path:
    labels = [i % 2 for i in range(n)]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {"text": [f"sample {i} {'yes' if l else 'no'}" for i, l in enumerate(labels)], "label": labels}
    ).to_csv(path, index=False)
    return path


@pytest.fixture
def no_compute(monkeypatch):
    """Every command's compute fails the test: refusals must come before anything is loaded."""

    def compute_started(*args, **kwargs):
        raise AssertionError("compute started before --out was checked")

    for target in COMPUTE:
        monkeypatch.setattr(target, compute_started)


@pytest.fixture(scope="module")
def tiny_result(tmp_path_factory):
    """One real audit result of a tiny model (a few seconds), reused by the tests that must write a report."""
    from auditkit.audit.config import AuditConfig
    from auditkit.audit.run import run_audit
    from auditkit.models import ModelSpec

    table = _table(tmp_path_factory.mktemp("data") / "t.csv")
    cfg = AuditConfig(
        model=ModelSpec(name="tiny-gpt2"),
        dataset=f"table:{table}",
        probes=("logistic",),
        controls=("shuffled-labels",),
        use_cache=False,
        progress=False,
    )
    return run_audit(cfg)


@pytest.fixture
def canned_audit(monkeypatch, tiny_result):
    """``auditkit audit`` computes nothing and writes ``tiny_result``; the configs it was asked for are kept."""
    asked = []

    def run_audit(cfg, **kwargs):
        asked.append(cfg)
        return tiny_result

    monkeypatch.setattr("auditkit.sweep.run.run_audit", run_audit)  # the command's one entry point
    return asked


def _snapshot(path: Path) -> dict[str, bytes]:
    if path.is_file():
        return {"": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _audit(out, *args, cache=None):
    extra = ["--cache-dir", str(cache)] if cache is not None else []
    return runner.invoke(app, ["audit", "--model", "tiny-gpt2", *extra, "--out", str(out), *args])


def _one_error_line(result, *patterns):
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert all(p in lines[0].lower() for p in patterns), lines[0]
    assert "Traceback" not in result.output


def _no_temporaries(folder: Path):
    stray = [p.name for p in folder.iterdir() if p.name.startswith(".") and p.name != MARKER]
    assert stray == [], f"temporary folders left behind: {stray}"


def _mark(folder: Path, **files: str) -> Path:
    """An earlier auditkit output (marker and files) at ``folder``."""
    folder.mkdir(parents=True)
    (folder / MARKER).write_text(json.dumps({"written_by": "auditkit", "kind": "audit", "version": "0.1.0"}))
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


# --- refusals, before any compute --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", [["audit", "--model", "tiny-gpt2"], ["steer", "--model", "tiny-gpt2"], ["validate"]]
)
def test_a_folder_of_user_files_is_refused_and_kept(tmp_path, no_compute, command):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("three years of work")
    (mine / "sub").mkdir()
    (mine / "sub" / "data.csv").write_text("a,b\n1,2\n")
    before = _snapshot(mine)
    result = runner.invoke(app, [*command, "--out", str(mine)])
    _one_error_line(result, "did not write", "new or empty folder")
    assert _snapshot(mine) == before
    _no_temporaries(tmp_path)


def test_a_regular_file_is_refused_and_kept(tmp_path, no_compute):
    target = tmp_path / "results.txt"
    target.write_text("keep me")
    _one_error_line(_audit(target), "is a file")
    assert target.read_text() == "keep me"
    _no_temporaries(tmp_path)


def test_a_symbolic_link_is_refused(tmp_path, no_compute):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "notes.txt").write_text("keep me")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    _one_error_line(_audit(tmp_path / "link"), "symbolic link")
    assert (tmp_path / "link").is_symlink() and (tmp_path / "real" / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize("out", [".", "..", "work/.."])
def test_the_working_folder_and_its_ancestors_are_refused(tmp_path, monkeypatch, no_compute, out):
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("keep me")
    _mark(work / "old-report", **{"report.md": "old"})
    monkeypatch.chdir(work if out != "work/.." else tmp_path)
    before = _snapshot(tmp_path)
    _one_error_line(_audit(out), "current folder")
    assert _snapshot(tmp_path) == before


def test_the_cache_folder_is_refused(tmp_path, no_compute):
    cache = tmp_path / "cache"
    (cache / "activations" / "abc").mkdir(parents=True)
    (cache / "activations" / "abc" / "meta.json").write_text("{}")
    before = _snapshot(cache)
    _one_error_line(_audit(cache, cache=cache), "cache")
    assert _snapshot(cache) == before


def test_the_folder_holding_the_default_cache_is_refused(tmp_path, monkeypatch, no_compute):
    """``AUDITKIT_CACHE`` (auditkit.models.default_cache_dir) is protected even when --cache-dir is not given,
    and so is a marked report folder that happens to hold it."""
    holder = _mark(tmp_path / "holder", **{"report.md": "old"})
    (holder / "cache" / "models").mkdir(parents=True)
    monkeypatch.setenv("AUDITKIT_CACHE", str(holder / "cache"))
    before = _snapshot(holder)
    _one_error_line(_audit(holder), "cache")
    assert _snapshot(holder) == before


@pytest.mark.parametrize("which", ["dataset", "model", "sae-load"])
def test_a_folder_holding_an_input_is_refused_even_when_marked(tmp_path, no_compute, which):
    """The input sits inside an earlier auditkit report (so the marker alone would allow replacing it)."""
    holder = _mark(tmp_path / "report", **{"report.md": "old"})
    table = _table(holder / "data" / "t.csv")
    args = ["--dataset", f"table:{table}"]
    if which == "model":
        (holder / "model").mkdir()
        args = ["--model", str(holder / "model"), *args]
    if which == "sae-load":
        (holder / "sae").mkdir()
        args += ["--methods", "sae", "--sae-load", str(holder / "sae")]
    before = _snapshot(holder)
    result = runner.invoke(app, ["audit", "--out", str(holder), *args])
    _one_error_line(result, "input")
    assert _snapshot(holder) == before


def test_the_dataset_files_own_folder_is_refused(tmp_path, no_compute):
    table = _table(tmp_path / "data" / "t.csv")
    before = _snapshot(tmp_path / "data")
    _one_error_line(_audit(tmp_path / "data", "--dataset", f"table:{table}"), "input")
    assert _snapshot(tmp_path / "data") == before


def test_a_parent_that_is_a_file_is_refused(tmp_path, no_compute):
    """Tests run as root, so chmod cannot make a folder unwritable: a regular file as the parent can."""
    (tmp_path / "notes.txt").write_text("keep me")
    _one_error_line(_audit(tmp_path / "notes.txt" / "report"), "cannot be created", "is a file")
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    _no_temporaries(tmp_path)


def test_an_unwritable_parent_is_refused(tmp_path, monkeypatch, no_compute):
    """What a read-only folder does to a non-root user (EACCES on creating anything in it), simulated."""

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("tempfile.mkdtemp", denied)
    _one_error_line(_audit(tmp_path / "new" / "report"), "not writable")
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_earlier_report_is_refused_before_compute(tmp_path, monkeypatch, no_compute):
    """An earlier report that is itself read-only (mode 0555) cannot be renamed into another folder on Linux
    (its ``..`` changes) nor emptied: refused up front, not after the whole compute. Its parent stays writable.
    The EACCES a non-root user gets inside it is simulated (tests run as root)."""
    out = _mark(tmp_path / "out", **{"report.md": "earlier"})
    before = _snapshot(out)
    real_mkdtemp = tempfile.mkdtemp

    def denied_inside_out(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve() == out.resolve():
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_mkdtemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr("tempfile.mkdtemp", denied_inside_out)
    _one_error_line(_audit(out), "cannot be replaced", "not writable", "--out")
    assert _snapshot(out) == before
    _no_temporaries(tmp_path)
    _no_temporaries(out)


def test_a_name_over_the_filesystem_limit_is_refused(tmp_path, no_compute):
    _one_error_line(_audit(tmp_path / ("r" * 300)), "shorter name")
    assert list(tmp_path.iterdir()) == []


# --- what may be replaced, and faults while writing --------------------------------------------------------


def test_an_earlier_auditkit_report_is_replaced_and_marked(tmp_path, canned_audit, caplog):
    """auditkit's own files of the earlier report are replaced (its figures of a method not run this time
    removed); a file the user saved into it is carried over byte for byte, and the log names it (issue 26)."""
    out = _mark(tmp_path / "out", **{"report.md": "stale", "sae_arms.png": "old figure", "notes.md": "mine"})
    (out / "mine").mkdir()
    (out / "mine" / "data.bin").write_bytes(b"\x00\xff")
    with caplog.at_level("WARNING", logger="auditkit.report.outputs"):
        result = _audit(out, "--dataset", f"table:{_table(tmp_path / 't.csv')}")
    assert result.exit_code == 0, result.output
    assert "## Reproduce" in (out / "report.md").read_text() and not (out / "sae_arms.png").exists()
    assert (out / "notes.md").read_text() == "mine" and (out / "mine" / "data.bin").read_bytes() == b"\x00\xff"
    assert "kept 2 file(s) auditkit did not write" in caplog.text and "mine, notes.md" in caplog.text
    assert json.loads((out / MARKER).read_text())["kind"] == "audit"
    _no_temporaries(tmp_path)


@pytest.mark.parametrize(
    "command,kind",
    [
        (["audit", "--model", "tiny-gpt2"], "sweep"),
        (["steer", "--model", "tiny-gpt2"], "audit"),
        (["validate"], "audit"),
    ],
)
def test_an_output_of_another_command_is_refused(tmp_path, no_compute, command, kind):
    """An earlier `auditkit sweep` report at an audit's --out (was: replaced without a word)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / MARKER).write_text(json.dumps({"written_by": "auditkit", "kind": kind, "version": "0.1.0"}))
    (out / "summary.md").write_text("the sweep")
    before = _snapshot(out)
    result = runner.invoke(app, [*command, "--out", str(out)])
    this = command[0]
    _one_error_line(result, f"`auditkit {kind}`", f"`auditkit {this}`", "another --out", "delete")
    assert _snapshot(out) == before
    _no_temporaries(tmp_path)


def test_the_writer_itself_refuses_an_output_of_another_kind(tmp_path, tiny_result):
    out = tmp_path / "out"
    out.mkdir()
    (out / MARKER).write_text(json.dumps({"written_by": "auditkit", "kind": "sweep", "version": "0.1.0"}))
    before = _snapshot(out)
    error = _write(tiny_result, out)
    assert _snapshot(out) == before and isinstance(error, AuditkitError) and "auditkit sweep" in str(error)
    _no_temporaries(tmp_path)


def test_an_empty_folder_may_be_used(tmp_path, canned_audit):
    (tmp_path / "out").mkdir()
    result = _audit(tmp_path / "out", "--dataset", f"table:{_table(tmp_path / 't.csv')}")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "report.md").is_file() and (tmp_path / "out" / MARKER).is_file()


def test_a_full_disk_while_writing_keeps_the_old_report_and_no_temporary(tmp_path, monkeypatch, canned_audit):
    out = _mark(tmp_path / "out", **{"report.md": "previous"})
    before = _snapshot(out)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    result = _audit(out, "--dataset", "table:elsewhere.csv")
    _one_error_line(result, "no space left", "nothing was replaced")
    assert _snapshot(out) == before
    _no_temporaries(tmp_path)


def _write(result, out: Path) -> Exception | None:
    """``write_outputs`` into ``out``; the error it raised, if any (checked after the files)."""
    try:
        write_outputs(result, out, "auditkit audit")
    except (AuditkitError, OSError) as exc:
        return exc
    return None


def test_a_failed_final_rename_puts_the_previous_report_back(tmp_path, monkeypatch, tiny_result):
    out = _mark(tmp_path / "out", **{"report.md": "previous"})
    before = _snapshot(out)
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst) == out and Path(src).name.startswith(".out."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    error = _write(tiny_result, out)
    assert _snapshot(out) == before
    _no_temporaries(tmp_path)
    assert isinstance(error, AuditkitError) and "No space left" in str(error)


def test_the_writer_itself_refuses_a_folder_it_did_not_write(tmp_path, tiny_result):
    """The last line of defence, for library callers and for a folder that appeared during the compute."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("keep me")
    error = _write(tiny_result, mine)
    assert _snapshot(mine) == {"thesis.tex": b"keep me"}
    _no_temporaries(tmp_path)
    assert isinstance(error, AuditkitError) and "did not write" in str(error)


# --- the reproduce command ---------------------------------------------------------------------------------


def test_reproduce_command_round_trips_through_the_shell(tmp_path, monkeypatch, canned_audit):
    """A path with a space stays one word, --probe-c 0.123456789 is not rounded, --out inside the working folder
    (and an input path inside it) is written relative to it, and running the command gives back the same
    configuration."""
    monkeypatch.chdir(tmp_path)
    table = _table(tmp_path / "my data" / "t 1.csv")
    out = tmp_path / "my reports" / "run 1"
    args = [
        "audit",
        "--model",
        "tiny-gpt2",
        "--dataset",
        f"table:{table}",
        "--probe-c",
        "0.123456789",
        "--probe-c-grid",
        "none",
        "--test-fraction",
        "0.3",
        "--controls",
        "shuffled-labels",
        "--probes",
        "logistic",
        "--out",
        str(out),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    command = json.loads((out / "run.json").read_text())["command"]
    assert command in (out / "report.md").read_text()
    words = shlex.split(command)
    assert words[:2] == ["auditkit", "audit"]
    assert words[words.index("--probe-c") + 1] == "0.123456789"
    assert words[words.index("--dataset") + 1] == "table:my data/t 1.csv"
    assert words[words.index("--out") + 1] == "my reports/run 1"
    assert str(tmp_path) not in command

    again = runner.invoke(app, words[1:])
    assert again.exit_code == 0, again.output
    # the same configuration, its dataset path written relative to the working folder as --out is
    assert canned_audit[1] == dataclasses.replace(canned_audit[0], dataset="table:my data/t 1.csv")
    assert json.loads((out / "run.json").read_text())["command"] == command


def test_reproduce_command_writes_floats_in_full_and_quotes_every_value():
    from auditkit.cli.reproduce import reproduce_command

    from auditkit.audit.config import AuditConfig
    from auditkit.audit.options import PursuitAuditOptions
    from auditkit.models import ModelSpec

    cfg = AuditConfig(
        model=ModelSpec(name="tiny-gpt2"),
        dataset="table:/data/it's here.csv",
        probe_C=0.123456789,
        probe_c_grid=(),
        test_fraction=0.123456789,
        methods=("probe", "pursuit", "sae"),
        pursuit=PursuitAuditOptions(solver="lasso", alphas=(0.123456789, 0.05)),
    )
    words = shlex.split(reproduce_command(cfg, "/elsewhere/out dir"))
    value = dict(zip(words[2::2], words[3::2]))
    assert value["--dataset"] == "table:/data/it's here.csv" and value["--out"] == "/elsewhere/out dir"
    assert value["--probe-c"] == value["--test-fraction"] == "0.123456789"
    assert value["--pursuit-alphas"] == "0.123456789,0.05" and value["--sae-lr"] == "0.001"
    assert dataclasses.asdict(cfg)["probe_C"] == float(value["--probe-c"])
    assert value["--probe-c-grid"] == "none"


def test_reproduce_command_names_the_c_grid_even_at_its_default():
    """A command that leaves out a default reruns under whatever the default is by then: the committed reports made
    at C = 1 before the grid existed say no --probe-c-grid, and rerun today they choose C. The command names the grid
    (or none) always."""
    from auditkit.cli.reproduce import reproduce_command

    from auditkit.audit.config import DEFAULT_C_GRID, AuditConfig

    words = shlex.split(reproduce_command(AuditConfig(), "out"))
    value = dict(zip(words[2::2], words[3::2]))
    assert tuple(float(c) for c in value["--probe-c-grid"].split(",")) == DEFAULT_C_GRID


def test_validate_reproduce_command_is_quoted(tmp_path, monkeypatch):
    commands = []
    monkeypatch.setattr("auditkit.calibration.run.run_validate", lambda **kw: object())
    monkeypatch.setattr(
        "auditkit.report.calibration.write_calibration", lambda result, out, command: commands.append(command) or out
    )
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["validate", "--seed", "3", "--out", str(tmp_path / "my out" / "v"), "-q"])
    assert result.exit_code == 0, result.output
    assert shlex.split(commands[0]) == ["auditkit", "validate", "--seed", "3", "--out", "my out/v"]
    assert result.stdout.strip() == "my out/v/report.md"  # -q: the report's path only


def test_steer_and_validate_carry_a_users_file_over(tmp_path, monkeypatch):
    """`steer` and `validate` replaced their earlier folder whole, deleting a file the user had saved in it
    (issue 26); they carry it over as `audit` and `sweep` do."""
    import dataclasses
    from types import SimpleNamespace

    import pandas as pd

    from auditkit.report import calibration as calibration_report
    from auditkit.report import steering as steering_report

    @dataclasses.dataclass
    class Config:
        seed: int = 0

    monkeypatch.setattr(calibration_report, "render_files", lambda r, folder, c: (folder / "report.md").write_text("r"))
    monkeypatch.setattr(steering_report, "render_files", lambda r, folder: (folder / "steering.md").write_text("s"))
    empty = pd.DataFrame()
    calibration = SimpleNamespace(fpr=empty, power=empty, verdicts=empty, recovery=empty, config=Config(), info={})
    rows = pd.DataFrame(columns=["direction", "concept", "seed", "alpha", "metric", "value", "arm"])
    steering = SimpleNamespace(rows=rows, config=Config(), site={}, data={}, provenance={}, verdicts={}, timings={})
    for kind, write, result in (
        ("validate", calibration_report.write_calibration, calibration),
        ("steer", steering_report.write_steering, steering),
    ):
        out = _mark(tmp_path / kind, **{"notes.md": "mine"})
        (out / MARKER).write_text(json.dumps({"written_by": "auditkit", "kind": kind, "version": "0.1.0"}))
        write(result, out)
        assert (out / "notes.md").read_text() == "mine", kind
        assert json.loads((out / MARKER).read_text())["kind"] == kind
    _no_temporaries(tmp_path)
