"""Peak memory of ``auditkit audit`` as a plan of one cell against the direct audit, measured in one run.

``auditkit audit`` runs its arms through the sweep's plan and executor (one model variant resident at a time,
each dropped before the next is built) and then the audit, every arm read from the cache. Before, the command
ran the direct audit (:func:`auditkit.audit.run.run_audit`), which keeps every reinitialised model of its arms
resident. Both sides run the same command (the CLI parses the same flags and writes the same report); the
``direct`` side only swaps the runner back to the direct audit, as the command called it before. Each side runs
in its own subprocess with its own empty activation cache (only the converted model is shared) and reports
its peak resident memory; the two sides' results.csv and selectivity.csv are compared byte for byte.
Target: the plan's peak at most 3 GB on the embedded model with every default control.

    OMP_NUM_THREADS=1 python bench/bench_audit_memory.py [--texts 100] [--extra "--seeds 0,1"]
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIDES = ("direct", "plan")


def _side(args: argparse.Namespace, side: str, folder: Path) -> dict:
    """One side in this process (called in a subprocess): ``auditkit audit`` into ``folder``; wall time and peak RSS."""
    from auditkit.cli.main import app

    from auditkit.audit import run as audit_run
    from auditkit.models import default_cache_dir
    from auditkit.sweep import run as sweep_run

    cache = folder / "cache"
    cache.mkdir(parents=True)
    if (default_cache_dir() / "models").is_dir():  # the converted model is shared; activations start empty
        (cache / "models").symlink_to(default_cache_dir() / "models")
    if side == "direct":  # the runner the command called before it ran a plan of one cell
        sweep_run.run_audit = lambda cfg, executor=None: audit_run.run_audit(cfg)
    argv = [
        "audit",
        "--max-examples",
        str(args.texts),
        "--cache-dir",
        str(cache),
        "--out",
        str(folder / "out"),
        "--quiet",
        *shlex.split(args.extra),
    ]
    start = time.perf_counter()
    app(argv, standalone_mode=False)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"side": side, "seconds": round(seconds, 1), "peak_rss_mb": round(peak)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=100, help="--max-examples of the audit")
    parser.add_argument("--extra", default="", help="more `auditkit audit` flags, quoted as one string")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(_side(args, args.side, args.folder)))
        return
    root = Path(tempfile.mkdtemp(prefix="bench-audit-memory-"))
    out = {}
    for side in SIDES:
        cmd = [
            sys.executable,
            __file__,
            "--texts",
            str(args.texts),
            "--extra",
            args.extra,
            "--side",
            side,
            "--folder",
            str(root / side),
        ]
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        out[side] = json.loads(done.stdout.strip().splitlines()[-1])
        print(out[side], flush=True)
    same = all(
        (root / "plan" / "out" / name).read_bytes() == (root / "direct" / "out" / name).read_bytes()
        for name in ("results.csv", "selectivity.csv")
    )
    plan, direct = out["plan"], out["direct"]
    print(
        f"peak RSS: plan of one cell {plan['peak_rss_mb']} MB vs direct audit {direct['peak_rss_mb']} MB "
        f"({plan['peak_rss_mb'] / direct['peak_rss_mb']:.2f}x; target <= 3 GB); wall time "
        f"{plan['seconds'] / direct['seconds']:.2f}x ({plan['seconds']} s vs {direct['seconds']} s); results.csv and "
        f"selectivity.csv {'byte-identical' if same else 'DIFFER'}"
    )


if __name__ == "__main__":
    main()
