"""The Ray executor's overhead against the local one at the same total thread count, measured in one run.

The same sweep twice, each side in its own subprocess with its own empty activation cache (only the converted
model is shared): ``--executor local`` with T torch threads in one process, then ``--executor ray`` on a Ray
instance started for it with T CPUs and T one-thread actors. Both write results.csv; the script checks they are
byte-identical and prints the wall-time ratio ray / local (target: at most 1.15 on a sweep of a few minutes).
On one machine the Ray side can only lose: its cells run in parallel, but each actor loads the model itself
and imports torch again, and the fits get one thread each instead of T.

    python bench/bench_executors.py [--texts 40] [--datasets 1] [--hooks blocks.0-29:14.hook_resid_pre] [--threads 1]
"""

from __future__ import annotations

import argparse
import filecmp
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _side(args: argparse.Namespace, side: str, out: Path) -> dict:
    """One side in this process (called in a subprocess): its wall time, the number of cells."""
    import torch

    from auditkit.audit.config import AuditConfig
    from auditkit.data import list_sae_probes
    from auditkit.models import ModelSpec, default_cache_dir
    from auditkit.report.sweep import write_sweep
    from auditkit.sweep.config import SweepConfig
    from auditkit.sweep.executors import ExecutorOptions
    from auditkit.sweep.run import run_sweep

    cache = Path(tempfile.mkdtemp(prefix="bench-executors-"))
    if (default_cache_dir() / "models").is_dir():  # the converted model is shared; activations start empty
        (cache / "models").symlink_to(default_cache_dir() / "models")
    tags = list(list_sae_probes("binary")["tag"])[: args.datasets]
    audit = AuditConfig(
        model=ModelSpec(name=args.model, cache_dir=cache),
        max_examples=args.texts,
        probes=("logistic", "mass-mean"),
        progress=False,
    )
    cfg = SweepConfig(audit=audit, datasets=",".join(f"sae-probes:{t}" for t in tags), hooks=args.hooks)
    start = time.perf_counter()
    if side == "local":
        torch.set_num_threads(args.threads)
        result = run_sweep(cfg)
    else:
        import ray

        ray.init(num_cpus=args.threads, include_dashboard=False, log_to_driver=False)
        torch.set_num_threads(1)  # the driver only plans, validates and merges
        result = run_sweep(cfg, executor=ExecutorOptions(executor="ray", num_cpus=1))
        ray.shutdown()
    seconds = time.perf_counter() - start
    write_sweep(result, out, "bench")
    return {
        "side": side,
        "seconds": round(seconds, 1),
        "cells": result.execution["cells_run"],
        "audit_cells": len(result.datasets) * len(result.hooks),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--texts", type=int, default=40, help="distinct texts per dataset")
    parser.add_argument("--datasets", type=int, default=1, help="binary sae-probes datasets")
    parser.add_argument("--hooks", default="blocks.0-29:14.hook_resid_pre")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (local) = Ray CPUs (one per actor)")
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(_side(args, args.side, Path(args.out))))
        return
    base = [
        sys.executable,
        __file__,
        "--model",
        args.model,
        "--texts",
        str(args.texts),
        "--datasets",
        str(args.datasets),
        "--hooks",
        args.hooks,
        "--threads",
        str(args.threads),
    ]
    folder = Path(tempfile.mkdtemp(prefix="bench-executors-out-"))
    out = {}
    for side in ("local", "ray"):
        done = subprocess.run(
            [*base, "--side", side, "--out", str(folder / side)], check=True, capture_output=True, text=True
        )
        out[side] = json.loads(done.stdout.strip().splitlines()[-1])
        print(out[side], flush=True)
    same = filecmp.cmp(folder / "local" / "results.csv", folder / "ray" / "results.csv", shallow=False)
    ratio = out["ray"]["seconds"] / out["local"]["seconds"]
    print(
        f"ray / local wall time at {args.threads} threads in all: {ratio:.2f}x (target <= 1.15x) on "
        f"{out['local']['audit_cells']} audit cells ({out['local']['cells']} cells with extraction); "
        f"results.csv byte-identical: {same}"
    )


if __name__ == "__main__":
    main()
