"""Sweep cost against separate audits, measured in one run (these machines are noisy: only ratios count).

Two ratios, each side in its own subprocess with its own empty activation cache (only the converted
model is shared) and its own peak resident memory:

1. depth: ``auditkit sweep --hooks all`` (every block's input and the final residual) against ONE audit
   at the middle layer with the same probes and controls. Separate audits of every hook would cost about
   (number of hooks) x the second; the target is a sweep within 3x of one audit.
2. breadth: ``auditkit sweep`` over N datasets at the middle layer against N separate audits (each loads
   the model and builds its reinitialised models again). Target: at most 0.6x.

    python bench/bench_sweep.py [--texts 200] [--datasets 4] [--probes logistic,mass-mean]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time


def _side(args: argparse.Namespace, side: str) -> dict:
    """One side in this process (called in a subprocess); its wall time and peak RSS."""
    import dataclasses
    from pathlib import Path

    from auditkit.audit.config import AuditConfig
    from auditkit.audit.run import run_audit
    from auditkit.data import list_sae_probes
    from auditkit.models import ModelSpec, default_cache_dir
    from auditkit.sweep.config import SweepConfig
    from auditkit.sweep.run import run_sweep

    cache = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    if (default_cache_dir() / "models").is_dir():  # the converted model is shared; activations start empty
        (cache / "models").symlink_to(default_cache_dir() / "models")
    tags = [t for t in list_sae_probes("binary")["tag"]][: args.datasets]
    audit = AuditConfig(
        model=ModelSpec(name=args.model, cache_dir=cache),
        max_examples=args.texts,
        probes=tuple(args.probes.split(",")),
        progress=False,
    )
    start = time.perf_counter()
    if side == "one-audit":
        run_audit(dataclasses.replace(audit, dataset="sae-probes:92_glue_sst2"))
        cells = 1
    elif side == "depth-sweep":
        cells = len(run_sweep(SweepConfig(audit=audit, datasets="sae-probes:92_glue_sst2", hooks="all")).hooks)
    elif side == "separate-audits":
        for tag in tags:
            run_audit(dataclasses.replace(audit, dataset=f"sae-probes:{tag}"))
        cells = len(tags)
    else:
        cells = len(
            run_sweep(
                SweepConfig(audit=audit, datasets=",".join(f"sae-probes:{t}" for t in tags), hooks="middle")
            ).datasets
        )
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return dict(side=side, seconds=round(seconds, 1), cells=cells, peak_rss_mb=round(peak))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--texts", type=int, default=200, help="distinct texts per dataset")
    parser.add_argument("--datasets", type=int, default=4, help="binary sae-probes datasets of the breadth ratio")
    parser.add_argument("--probes", default="logistic,mass-mean")
    parser.add_argument("--side", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(_side(args, args.side)))
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
        "--probes",
        args.probes,
    ]
    out = {}
    for side in ("one-audit", "depth-sweep", "separate-audits", "breadth-sweep"):
        done = subprocess.run([*base, "--side", side], check=True, capture_output=True, text=True)
        out[side] = json.loads(done.stdout.strip().splitlines()[-1])
        print(out[side], flush=True)
    depth = out["depth-sweep"]["seconds"] / out["one-audit"]["seconds"]
    breadth = out["breadth-sweep"]["seconds"] / out["separate-audits"]["seconds"]
    hooks = out["depth-sweep"]["cells"]
    print(
        f"depth: a sweep of {hooks} hooks costs {depth:.2f}x one middle-layer audit (target <= 3x; {hooks} separate "
        f"audits would cost about {hooks}x); peak RSS {out['depth-sweep']['peak_rss_mb']} MB vs "
        f"{out['one-audit']['peak_rss_mb']} MB"
    )
    print(
        f"breadth: a sweep of {out['breadth-sweep']['cells']} datasets costs {breadth:.2f}x the separate audits "
        f"(target <= 0.6x); peak RSS {out['breadth-sweep']['peak_rss_mb']} MB vs "
        f"{out['separate-audits']['peak_rss_mb']} MB"
    )


if __name__ == "__main__":
    main()
