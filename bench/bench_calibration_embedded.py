"""Calibration where audits run: the embedded model at the default hook, real texts, the weight-control null.

Runs :func:`auditkit.calibration.embedded.calibrate_embedded` (label nulls and planted label sets on the
audit's default model, hook and dataset; the weight-control null: a reinitialised draw audited against other
draws of its control on lexical labels) and writes ``summary.md`` and the tidy tables with
:func:`auditkit.report.calibration_embedded.write_embedded_calibration`. Every arm's activations go through the
activation cache, so a rerun at other dataset counts costs only the probe fits.

    python bench/bench_calibration_embedded.py [--n-null 60] [--n-planted 25] [--n-draws 6]
        [--out reports/calibration/embedded]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from auditkit.calibration.embedded import EmbeddedCalibrationConfig, calibrate_embedded
from auditkit.report.calibration_embedded import write_embedded_calibration
from auditkit.report.outputs import check_output
from auditkit.shell import command_line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-null", type=int, default=60)
    parser.add_argument("--n-planted", type=int, default=25)
    parser.add_argument("--strengths", default="0.5,1.0")
    parser.add_argument("--n-truth-seeds", type=int, default=8)
    parser.add_argument("--n-rotations", type=int, default=6, help="weight-control nulls per label and control")
    parser.add_argument("--n-draws", type=int, default=6, help="pool draws of each weight control")
    parser.add_argument("--n-token-draws", type=int, default=3, help="random-token pool draws (0: no token control)")
    parser.add_argument("--probes", default="logistic,mass-mean")
    parser.add_argument("--metrics", default="accuracy,auroc")
    parser.add_argument(
        "--max-examples", type=int, default=1000, help="texts read (the audit's default; a sweep's 200)"
    )
    parser.add_argument("--label-draws", type=int, default=10, help="draws of each label control per seed")
    parser.add_argument(
        "--probe-c", type=float, default=None, help="inverse L2 strength of the logistic probe (default: the audit's)"
    )
    parser.add_argument(
        "--probe-c-grid",
        default="",
        help="each arm and seed chooses its C among these by CV, as an audit does by default (0.001,0.01,0.1,1); "
        "empty: every probe at --probe-c",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("reports/calibration/embedded"))
    args = parser.parse_args()
    torch.set_num_threads(1)  # stacked fits on a shared machine: a second thread only waits
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 20)
    cfg = EmbeddedCalibrationConfig(
        n_null=args.n_null,
        n_planted=args.n_planted,
        strengths=tuple(float(x) for x in args.strengths.split(",") if x),
        n_truth_seeds=args.n_truth_seeds,
        n_rotations=args.n_rotations,
        n_draws=args.n_draws,
        n_token_draws=args.n_token_draws,
        token_controls=("random-tokens-uniform",) if args.n_token_draws else (),
        probes=tuple(p for p in args.probes.split(",") if p),
        seed=args.seed,
        cache_dir=args.cache_dir,
        metrics=tuple(m for m in args.metrics.split(",") if m),
        label_draws=args.label_draws,
        max_examples=args.max_examples,
        **({"probe_C": args.probe_c} if args.probe_c is not None else {}),
        probe_c_grid=tuple(float(x) for x in args.probe_c_grid.split(",") if x),
    )
    check_output(args.out)
    t = time.perf_counter()
    result = calibrate_embedded(cfg, log=lambda line: print(line, flush=True))
    print(f"\n=== {result.info['n_datasets']} datasets, {time.perf_counter() - t:.0f} s ===")
    print(result.fpr.to_string(index=False, float_format="%.3f"))
    print(result.power.to_string(index=False, float_format="%.3f"))
    print(result.coverage.to_string(index=False, float_format="%.3f"))
    print("timings:", {k: round(v, 1) for k, v in result.info["timings"].items()})
    command = command_line(
        ["python", "bench/bench_calibration_embedded.py"],
        [
            ("--n-null", args.n_null),
            ("--n-planted", args.n_planted),
            ("--strengths", args.strengths),
            ("--n-truth-seeds", args.n_truth_seeds),
            ("--n-rotations", args.n_rotations),
            ("--n-draws", args.n_draws),
            ("--n-token-draws", args.n_token_draws),
            ("--probes", args.probes),
            ("--metrics", args.metrics),
            ("--label-draws", args.label_draws),
            ("--max-examples", args.max_examples),
            *([("--probe-c", args.probe_c)] if args.probe_c is not None else []),
            *([("--probe-c-grid", args.probe_c_grid)] if args.probe_c_grid else []),
            ("--seed", args.seed),
            ("--out", args.out),
        ],
    )
    out = write_embedded_calibration(result, args.out, command=command)
    print("report:", out / "summary.md")


if __name__ == "__main__":
    main()
