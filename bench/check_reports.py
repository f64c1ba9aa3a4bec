"""Are the committed reports still what the code makes? Reruns each committed report's own command (its
``run.json`` ``command``) into a temporary folder and compares every csv file byte for byte.

A refactor that must not move numbers (issue 28: "committed reports byte-identical") runs this before it lands.
With a warm activation cache an audit reruns in seconds to minutes (reports/default: about a minute on two cores);
long ones (the breadth sweep, the SAE and pursuit audits, calibrations) are skipped unless named.

    OMP_NUM_THREADS=1 python bench/check_reports.py [--reports default,layer5-small,sweeps/depth] [--keep]

Prints one line per report (``same``, or each differing csv) and exits 1 when any differs or fails to run.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICK = ("default", "layer5-small", "sweeps/depth")
"""Reports whose commands rerun in minutes from a warm cache (the default selection)."""


def _command(report: Path, out: Path) -> list[str]:
    words = shlex.split(json.loads((report / "run.json").read_text())["command"])
    if words[:1] != ["auditkit"] or "--out" not in words:
        raise ValueError(f"{report}: run.json's command is not an auditkit command with --out")
    words[words.index("--out") + 1] = str(out)
    return [sys.executable, "-m", "auditkit.cli.main", *words[1:]]


def check(name: str, keep: bool) -> tuple[bool, str]:
    """(identical, one line) for the committed report ``reports/<name>``."""
    report = ROOT / "reports" / name
    if not (report / "run.json").is_file():
        return False, f"{name}: no run.json"
    tmp = Path(tempfile.mkdtemp(prefix="check-report-"))
    out = tmp / "out"
    try:
        start = time.perf_counter()
        run = subprocess.run(_command(report, out), cwd=ROOT, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        if run.returncode != 0:
            last = (run.stderr.strip().splitlines() or ["(no output)"])[-1]
            return False, f"{name}: the command failed ({last})"
        committed = sorted(p.relative_to(report) for p in report.rglob("*.csv"))
        differ = [
            str(p) for p in committed if not (out / p).is_file() or (out / p).read_bytes() != (report / p).read_bytes()
        ]
        if differ:
            return False, f"{name}: DIFFERS in {', '.join(differ)} ({seconds:.0f} s)"
        return True, f"{name}: same ({len(committed)} csv files, {seconds:.0f} s)"
    finally:
        if keep:
            print(f"  output kept in {out}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", default=",".join(QUICK), help="comma-separated folders under reports/")
    parser.add_argument("--keep", action="store_true", help="keep the rerun outputs (printed)")
    args = parser.parse_args()
    ok = True
    for name in [n.strip() for n in args.reports.split(",") if n.strip()]:
        same, line = check(name, args.keep)
        ok &= same
        print(line, flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
