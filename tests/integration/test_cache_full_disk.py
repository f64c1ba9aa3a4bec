"""A full disk under the activation cache (issue 26): one ``error:`` line naming the cache folder and the fix,
exit 2, no output, no temporary file; the chunks saved before the failure stay, and a rerun resumes from them
and gives the result of a clean run.

ENOSPC is simulated in the writer auditkit calls. safetensors wraps the OS error of a failed write into its own
``SafetensorError`` ("Error while serializing: I/O error: No space left on device (os error 28)", no errno),
which is what a real full disk raises (checked by hand on a 64 KiB tmpfs); a plain ``OSError(ENOSPC)`` is what
the other writes (meta.json, the temporary folder) raise.
"""

from __future__ import annotations

import errno
import os
import re

import pandas as pd
import pytest
from auditkit.cli.main import app
from safetensors import SafetensorError
from typer.testing import CliRunner

from auditkit import cache as cache_mod
from auditkit import extract as extract_mod

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()
N_TEXTS = 300
"""Two chunks at the extraction's chunk size (256 texts)."""
FULL = "Error while serializing: I/O error: No space left on device (os error 28)"


def _table(path):
    labels = [i % 2 for i in range(N_TEXTS)]
    texts = [f"sample {i} {'yes' if y else 'no'}" for i, y in enumerate(labels)]
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    return path


def _audit(table, out, *cache_args):
    args = [
        "audit",
        "--model",
        "tiny-gpt2",
        "--dataset",
        f"table:{table}",
        "--methods",
        "probe",
        "--probes",
        "logistic",
        "--controls",
        "shuffled-labels",
        "--seeds",
        "0",
        "--out",
        str(out),
        *cache_args,
    ]
    return runner.invoke(app, args)


@pytest.fixture(scope="module")
def clean_results(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean")
    result = _audit(_table(root / "t.csv"), root / "out", "--no-cache")
    assert result.exit_code == 0, result.output
    return pd.read_csv(root / "out" / "results.csv")


def _computed_chunks(monkeypatch) -> list[int]:
    """The first text of every chunk that is computed (not loaded from the cache), in order."""
    computed: list[int] = []
    original = extract_mod._extract_examples

    def counting(model, batch, plan, cfg, lo, hi, bar, **kw):
        computed.append(lo)
        return original(model, batch, plan, cfg, lo, hi, bar, **kw)

    monkeypatch.setattr(extract_mod, "_extract_examples", counting)
    return computed


FAULTS = {
    # (the file whose write fails, what the writer raises, chunks left, chunks the rerun computes)
    "second-chunk": (r"\.chunk-00001\.safetensors\.", SafetensorError(FULL), ["chunk-00000.safetensors"], [256]),
    "finished-entry": (
        r"^tensors\.safetensors$",
        SafetensorError(FULL),
        ["chunk-00000.safetensors", "chunk-00001.safetensors"],
        [],
    ),
    "finished-entry-oserror": (
        r"^tensors\.safetensors$",
        OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
        ["chunk-00000.safetensors", "chunk-00001.safetensors"],
        [],
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_full_disk_under_the_cache_is_one_line_and_the_rerun_resumes(tmp_path, monkeypatch, clean_results, fault):
    failing, raised, left, recomputed = FAULTS[fault]
    table, cache, out = _table(tmp_path / "t.csv"), tmp_path / "cache", tmp_path / "out"
    real_save = cache_mod.save_file

    def full_disk(tensors, filename, *args, **kwargs):
        if re.search(failing, os.path.basename(filename)):
            raise raised
        return real_save(tensors, filename, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(cache_mod, "save_file", full_disk)
        result = _audit(table, out, "--cache-dir", str(cache))
    assert result.exit_code == 2, (result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip() and "%|" not in line]  # not progress bars
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert str(cache / "activations") in lines[0] and "--cache-dir" in lines[0], lines[0]
    assert "no space left on device" in lines[0].lower() and "free some space" in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert not out.exists()

    # Resumable: no finished entry, no temporary file or folder, the chunks written before the failure kept.
    entries = sorted(p.name for p in (cache / "activations").iterdir())
    assert len(entries) == 1 and entries[0].endswith(".partial"), entries
    partial = cache / "activations" / entries[0]
    assert sorted(p.name for p in partial.iterdir() if p.name != "meta.json") == left

    computed = _computed_chunks(monkeypatch)
    rerun = _audit(table, out, "--cache-dir", str(cache))
    assert rerun.exit_code == 0, rerun.output
    assert computed == recomputed, "the rerun did not resume from the saved chunks"
    assert [p.name for p in (cache / "activations").iterdir()] == [entries[0].removesuffix(".partial")]
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv"), clean_results)
