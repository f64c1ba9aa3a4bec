"""The Ray executor against the local one, on a Ray cluster started in this process: the same results.csv, byte
for byte, whether every worker lives or one dies mid-cell; a failing cell fails alone, in one line."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest
import ray
from auditkit.cli.main import app
from typer.testing import CliRunner

from auditkit import extract as extract_mod
from auditkit.errors import ConfigError
from auditkit.sweep import ray_executor
from auditkit.sweep.cells import FAULT_ENV

pytestmark = pytest.mark.usefixtures("one_thread")

HOOKS = "blocks.0.hook_resid_pre,blocks.1.hook_resid_pre"


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    """One local Ray instance for the module: 2 CPUs, so two one-thread actors."""
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024**2, log_to_driver=False)
    yield
    ray.shutdown()


def _table(path, first_words, n=80, seed=0):
    """The label is the class of the first word (readable after block 0, not before)."""
    rng = random.Random(seed)
    filler = [
        "the",
        "a",
        "of",
        "and",
        "to",
        "in",
        "is",
        "was",
        "for",
        "on",
        "with",
        "as",
        "by",
        "at",
        "from",
        "this",
        "that",
        "it",
    ]
    rows = []
    for i in range(n):
        words = [rng.choice(first_words[i % 2])] + [rng.choice(filler) for _ in range(rng.randint(3, 6))]
        rows.append({"text": " ".join(words) + f" {i}", "label": i % 2})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tables")
    a = _table(folder / "a.csv", (["river", "cloud", "quiet"], ["apple", "stone", "green"]))
    b = _table(folder / "b.csv", (["north", "winter"], ["south", "summer"]), seed=1)
    return [f"table:{a}", f"table:{b}"]


def _sweep(tables, folder, *extra):
    """A small sweep: 2 datasets x 2 hooks x 2 controls (one of them a weight control) x 2 seeds."""
    args = [
        "sweep",
        "--model",
        "tiny-gpt2",
        "--datasets",
        ",".join(tables),
        "--hooks",
        HOOKS,
        "--controls",
        "shuffled-labels,spectral-reinit",
        "--seeds",
        "0,1",
        "--probes",
        "logistic",
        "--max-examples",
        "0",
        "--max-length",
        "16",
        "--cache-dir",
        str(folder / "cache"),
        "--out",
        str(folder / "out"),
        *extra,
    ]
    return CliRunner().invoke(app, args)


@pytest.fixture(scope="module")
def local_run(tables, tmp_path_factory):
    folder = tmp_path_factory.mktemp("local")
    result = _sweep(tables, folder)
    assert result.exit_code == 0, result.output
    return folder / "out"


def test_ray_sweep_writes_the_local_results_csv_byte_for_byte(tables, local_run, tmp_path):
    result = _sweep(tables, tmp_path, "--executor", "ray")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "results.csv").read_bytes() == (local_run / "results.csv").read_bytes()
    assert (tmp_path / "out" / "selectivity.csv").read_bytes() == (local_run / "selectivity.csv").read_bytes()
    rows = pd.read_csv(tmp_path / "out" / "results.csv")
    assert (
        rows.groupby(["dataset", "hook"]).ngroups == 4
        and set(rows["control"]) == {"none", "shuffled-labels", "spectral-reinit"}
        and set(rows["seed"]) == {0, 1}
    )
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["execution"]["executor"] == "ray" and run["failures"] == []
    # 3 model variants (trained, spectral-reinit of each seed) x 2 datasets to extract, then 4 audit cells
    assert run["execution"]["cells_run"] == 10


def test_an_actor_killed_mid_cell_is_restarted_and_the_results_are_identical(tables, local_run, tmp_path, monkeypatch):
    marker = tmp_path / "killed"
    # The worker that starts this extraction (a weight-control model, built in that worker) dies the first time.
    cell = f"extract spectral-reinit@1 x {tables[1]}"
    monkeypatch.setenv(FAULT_ENV, json.dumps({"cell": cell, "mode": "exit", "marker": str(marker)}))
    result = _sweep(tables, tmp_path, "--executor", "ray")
    assert result.exit_code == 0, result.output
    assert marker.read_text().startswith("killed extract spectral-reinit@1")  # the kill did happen
    assert (tmp_path / "out" / "results.csv").read_bytes() == (local_run / "results.csv").read_bytes()


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_a_failing_cell_fails_alone_in_one_line(tables, local_run, tmp_path, monkeypatch, executor):
    bad = f"{tables[0]} x blocks.1.hook_resid_pre"
    monkeypatch.setenv(FAULT_ENV, json.dumps({"cell": bad, "mode": "raise"}))
    result = _sweep(tables, tmp_path, "--executor", executor)
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert errors == [f"error: cell {bad}: RuntimeError: injected fault ({FAULT_ENV})"]
    rows = pd.read_csv(tmp_path / "out" / "results.csv")
    expected = pd.read_csv(local_run / "results.csv")
    keep = ~((expected["dataset"] == tables[0]) & (expected["hook"] == "blocks.1.hook_resid_pre"))
    pd.testing.assert_frame_equal(rows, expected[keep].reset_index(drop=True))  # the other three cells, unchanged
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["failures"] == [f"{bad}: RuntimeError: injected fault ({FAULT_ENV})"]
    assert "1 cell(s) failed" in (tmp_path / "out" / "summary.md").read_text()


def test_a_dataset_whose_every_cell_failed_leaves_the_other_datasets_report(tables, local_run, tmp_path, monkeypatch):
    # The trained model's extraction of the first dataset fails: both of its audit cells are skipped, so the
    # dataset has no row at all (the depth figures used to fail on it and lose the whole report).
    bad = f"extract trained x {tables[0]}"
    monkeypatch.setenv(FAULT_ENV, json.dumps({"cell": bad, "mode": "raise"}))
    result = _sweep(tables, tmp_path)
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert errors[0] == f"error: cell {bad}: RuntimeError: injected fault ({FAULT_ENV})" and len(errors) == 3
    assert all("skipped: it needs" in line for line in errors[1:])
    rows = pd.read_csv(tmp_path / "out" / "results.csv")
    expected = pd.read_csv(local_run / "results.csv")
    pd.testing.assert_frame_equal(rows, expected[expected["dataset"] == tables[1]].reset_index(drop=True))
    assert [p.name for p in (tmp_path / "out").glob("depth-*.png")] == ["depth-b.png"]


def test_a_single_audit_on_ray_writes_the_local_results_byte_for_byte(tables, tmp_path, monkeypatch):
    def audit(folder, *extra):
        args = [
            "audit",
            "--model",
            "tiny-gpt2",
            "--dataset",
            tables[0],
            "--hook",
            "blocks.1.hook_resid_pre",
            "--controls",
            "shuffled-labels,spectral-reinit,random-tokens-uniform",
            "--seeds",
            "0,1",
            "--probes",
            "logistic,mass-mean",
            "--max-examples",
            "0",
            "--max-length",
            "16",
            "--cache-dir",
            str(folder / "cache"),
            "--out",
            str(folder / "out"),
            "--quiet",
            *extra,
        ]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        return folder / "out"

    local = audit(tmp_path / "local")

    def no_forward_pass_here(*args, **kwargs):
        raise AssertionError("the driver ran a forward pass: an arm was not extracted by the actors")

    # The actors are other processes: this patch reaches the driver alone, which must find every arm cached.
    monkeypatch.setattr(extract_mod, "_forward_rows", no_forward_pass_here)
    remote = audit(tmp_path / "ray", "--executor", "ray")
    for name in ("results.csv", "selectivity.csv"):
        assert (remote / name).read_bytes() == (local / name).read_bytes(), name


def test_more_workers_than_the_cluster_holds_is_one_line_before_any_compute(tables, tmp_path):
    result = _sweep(tables, tmp_path, "--executor", "ray", "--ray-workers", "5")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1].startswith("error: the Ray cluster has 2 CPUs") and "too few for 5 actor(s)" in lines[-1], lines
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def _closed_loopback_port() -> int:
    """A port on 127.0.0.1 where nothing listens: bound by this process, then released."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command", ["sweep", "audit"])
def test_an_unreachable_ray_address_is_one_line_within_60_s_before_anything_is_loaded(tables, tmp_path, command):
    """Ray itself retried a closed port for minutes, logging each retry, and never gave up within 180 s.
    A process of its own: this module's Ray instance would be used instead of the address."""
    address = f"127.0.0.1:{_closed_loopback_port()}"
    data = ["--datasets", ",".join(tables)] if command == "sweep" else ["--dataset", tables[0]]
    args = [
        sys.executable,
        "-m",
        "auditkit.cli.main",
        command,
        "--model",
        "tiny-gpt2",
        *data,
        "--executor",
        "ray",
        "--ray-address",
        address,
        "--cache-dir",
        str(tmp_path / "cache"),
        "--out",
        str(tmp_path / "out"),
    ]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"OMP_NUM_THREADS": "1"}
    t0 = time.monotonic()
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path, check=False)
    assert time.monotonic() - t0 < 60
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot reach the Ray cluster at '{address}' ("), lines
    assert "ray start --head" in lines[0] and done.stdout == ""
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no temporary folder either


def test_this_modules_ray_cluster_passes_the_reachability_check_on_loopback():
    """Ray connects to a loopback address through this node's own IP: its head must answer on 127.0.0.1 too, or
    the check would refuse a local cluster that ray.init reaches."""
    port = int(ray.get_runtime_context().gcs_address.rsplit(":", 1)[1])
    ray_executor.check_reachable(f"127.0.0.1:{port}", timeout=5.0)


def test_a_listening_address_passes_the_reachability_check():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        ray_executor.check_reachable(f"127.0.0.1:{server.getsockname()[1]}", timeout=5.0)
        ray_executor.check_reachable(f"ray://127.0.0.1:{server.getsockname()[1]}", timeout=5.0)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("auto", None),
        ("local", None),
        ("127.0.0.1:6379", ("127.0.0.1", 6379)),
        ("ray://localhost:10001", ("localhost", 10001)),
        ("[::1]:6379", ("::1", 6379)),
    ],
)
def test_ray_address_forms(address, expected):
    assert ray_executor.host_port(address) == expected


@pytest.mark.parametrize("address", [":6379", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000", "127.0.0.1:0"])
def test_a_malformed_ray_address_is_refused_naming_the_form(address):
    with pytest.raises(ConfigError, match=r"is not HOST:PORT \(e\.g\. 127\.0\.0\.1:6379\), auto or local"):
        ray_executor.host_port(address)
