"""The cost of choosing each arm's C by cross-validation (``--probe-c-grid``), on the default audit.

Builds the default audit's arms (embedded model, default dataset and hook, 1,000 texts, seeds 0-2, the label
controls drawn ``--label-draws`` times and the reinitialised models; every arm through the activation cache), then
times the probe method's stacked fits (:func:`auditkit.audit.probe.probe_rows`) at the fixed C and with the grid,
in this run, for every probe kind asked, and prints the Cs the grid chose per arm. The machine is shared and noisy:
only the ratio within a run means something.

    python bench/bench_probe_c_grid.py [--grid 0.001,0.01,0.1,1] [--probes logistic,low-rank]
    python bench/bench_probe_c_grid.py --dataset conllu:PATH --controls control-task --max-examples 150
"""

from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", default="0.001,0.01,0.1,1")
    parser.add_argument("--probes", default="logistic")
    parser.add_argument("--max-examples", type=int, default=1000)
    parser.add_argument("--label-draws", type=int, default=10)
    parser.add_argument("--dataset", default=None, help="default: the audit's")
    parser.add_argument("--controls", default="shuffled-labels,control-task,spectral-reinit,gaussian-reinit")
    args = parser.parse_args()
    torch.set_num_threads(1)

    from auditkit.audit.arms import build_arms
    from auditkit.audit.config import AuditConfig
    from auditkit.audit.probe import probe_rows
    from auditkit.audit.run import prepare_audit

    grid = tuple(float(x) for x in args.grid.split(",") if x)
    controls = tuple(c for c in args.controls.split(",") if c)
    data = {"dataset": args.dataset} if args.dataset else {}
    cfg = AuditConfig(
        **data, controls=controls, max_examples=args.max_examples, label_draws=args.label_draws, progress=False
    )
    prep = prepare_audit(cfg, None, {})
    arms = build_arms(prep.plan, {})
    kinds = [p for p in args.probes.split(",") if p]
    print(f"{prep.hook}, {args.max_examples} texts, seeds {cfg.seeds}, {len(arms)} problems, grid {grid}")
    print(f"{'probe':<12} {'fixed C (s)':>11} {'grid (s)':>9} {'ratio':>6}  chosen C per arm")
    for kind in kinds:
        t = time.perf_counter()
        fixed, _ = probe_rows(arms, [kind], C=cfg.probe_C)
        fixed_s = time.perf_counter() - t
        t = time.perf_counter()
        tuned, info = probe_rows(arms, [kind], C=cfg.probe_C, C_grid=grid)
        grid_s = time.perf_counter() - t
        accuracy = {
            name: rows[(rows["metric"] == "accuracy")].groupby("control")["value"].mean().round(3).to_dict()
            for name, rows in (("fixed", fixed), ("grid", tuned))
        }
        print(f"{kind:<12} {fixed_s:>11.2f} {grid_s:>9.2f} {grid_s / fixed_s:>6.1f}  {info['C_chosen'].get(kind)}")
        print(f"{'':<12} mean accuracy per arm: {accuracy}", flush=True)


if __name__ == "__main__":
    main()
