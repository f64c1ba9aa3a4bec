"""Calibration sweeps: false-positive rate and power of every method x control verdict.

Two regimes, both at the audit's default settings (3 seeds, test fraction 0.25, threshold 0.05,
every probe kind of the audit's default ``--probes``, logistic C = 1; ``--methods sae,pursuit`` for the
SAE's k-sparse probing and the pursuit code probe at the audit's default SAE and pursuit options) on the
synthetic set-language model:

- ``default``: 64 sequences x 16 labelled tokens (1,024 rows, ~256 test rows per seed), ``--n-null``
  nulls per pair and a power curve of ``--n-planted`` datasets per strength;
- ``small``: 16 sequences x 8 tokens (128 rows, ~32 test rows), nulls only: at small N the threshold
  0.05 no longer dominates the interval, so any anti-conservatism of the interval over correlated
  seeds shows in the verdict's FPR.

``--seed-sets K`` (default 20) cycles the datasets through K seed sets, so the FPR is averaged over the
control draws as well: every dataset here shares one batch of tokens, so with one set all of them see
the same control draws and the FPR is conditional on those (see ``CalibrationConfig.n_seed_sets``).
Prints the tables and writes each regime's report with :func:`write_calibration` under ``--out``.

    python bench/bench_calibration.py [--n-null 200] [--n-planted 40] [--seed-sets 20] [--probes ...] [--out reports/calibration]
    python bench/bench_calibration.py --methods sae,pursuit --n-planted 20 --out reports/calibration/features
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import pandas as pd
import torch

from auditkit.calibration.run import CalibrationConfig, calibrate
from auditkit.report.calibration import write_calibration
from auditkit.report.outputs import check_output
from auditkit.shell import command_line

STRENGTHS = (0.1, 0.2, 0.3, 0.5, 1.0, 2.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-null", type=int, default=200)
    parser.add_argument("--n-null-repeated", type=int, default=100, help="null datasets of each repeated-text family")
    parser.add_argument("--n-planted", type=int, default=40)
    parser.add_argument("--seed-sets", type=int, default=20)
    parser.add_argument("--regimes", default="default,small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--probes", default="logistic,mass-mean,lda,low-rank,mlp", help="probe kinds calibrated")
    parser.add_argument("--methods", default="probe", help="methods calibrated: probe, sae, pursuit (comma-separated)")
    parser.add_argument("--out", type=Path, default=Path("reports/calibration"))
    args = parser.parse_args()
    torch.set_num_threads(1)  # tiny fits on a shared machine: a second thread only waits
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 20)
    base = CalibrationConfig(
        n_null=args.n_null,
        n_null_repeated=args.n_null_repeated,
        n_seed_sets=args.seed_sets,
        seed=args.seed,
        progress=True,
        chunk=25,
        probes=tuple(p for p in args.probes.split(",") if p),
        methods=tuple(m for m in args.methods.split(",") if m),
    )
    regimes = {
        "default": dataclasses.replace(base, n_planted=args.n_planted, strengths=STRENGTHS),
        "small": dataclasses.replace(
            base, n_planted=0, strengths=(), n_sequences=16, seq_length=8, repeated_sequences=4
        ),
    }
    names = args.regimes.split(",")
    for name in names:  # every regime's output folder before the first regime's compute
        check_output(args.out / name)
    for name in names:
        cfg = regimes[name]
        t = time.perf_counter()
        result = calibrate(cfg)
        info = result.info
        print(
            f"\n=== {name}: {info['n_rows']} rows (d={info['d']}), {info['n_datasets']} datasets, "
            f"seed sets {info['seed_sets']}, {time.perf_counter() - t:.0f} s ==="
        )
        cols = [
            "null",
            "method",
            "control",
            "n_null",
            "n_selective",
            "fpr",
            "ci_low",
            "ci_high",
            "interval_rate",
            "mean_selectivity",
            "sd_selectivity",
            "seed_icc",
        ]
        print(result.fpr[cols].to_string(index=False, float_format="%.3f"))
        if not result.power.empty:
            wide = result.power.pivot_table(index=["method", "strength"], columns="control", values="power")
            wide.insert(0, "real_acc", result.power.groupby(["method", "strength"])["mean_real"].mean())
            print(wide.to_string(float_format="%.2f"))
        print(
            "timings:",
            {k: round(v, 1) for k, v in info["timings"].items()},
            "unconverged fit warnings:",
            info["unconverged_fit_warnings"],
        )
        command = command_line(
            ["python", "bench/bench_calibration.py"],
            [
                ("--n-null", args.n_null),
                ("--n-planted", args.n_planted),
                ("--seed-sets", args.seed_sets),
                ("--regimes", name),
                ("--seed", args.seed),
                ("--probes", args.probes),
                ("--methods", args.methods),
                ("--out", args.out),
            ],
        )
        out = write_calibration(result, args.out / name, command=command)
        print("report:", out / "report.md")


if __name__ == "__main__":
    main()
