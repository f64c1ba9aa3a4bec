"""The cost of drawing each label control several times per seed (``--label-draws``), on the default audit.

Builds the default audit's arms (embedded model, default dataset and hook, 1,000 texts, seeds 0-2; real arm
through the activation cache) with only the label controls, then times the probe method's stacked fits
(:func:`auditkit.audit.probe.probe_rows`) at one draw and at ``--draws`` draws per seed, in this run, for every
probe kind asked. Each draw adds one problem to the stack of the real arm's features; no forward pass. The
machine is shared and noisy: only the ratio within a run means something.

    python bench/bench_label_draws.py [--draws 10] [--probes logistic,mass-mean,lda,low-rank,mlp,k-sparse]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--probes", default="logistic,mass-mean,lda,low-rank,mlp,k-sparse")
    parser.add_argument("--max-examples", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(1)

    from auditkit.audit.arms import build_arms
    from auditkit.audit.config import AuditConfig
    from auditkit.audit.probe import probe_rows
    from auditkit.audit.run import prepare_audit
    from auditkit.methods.probes.sparse import parse_sparse_spec

    controls = ("shuffled-labels", "control-task")
    cfg = AuditConfig(controls=controls, max_examples=args.max_examples, progress=False)
    prep = prepare_audit(cfg, None, {})
    kinds = [p for p in args.probes.split(",") if p]
    print(f"{prep.hook}, {args.max_examples} texts, seeds {cfg.seeds}, probes {kinds}")
    print(f"{'probe':<12} {'1 draw (s)':>10} {f'{args.draws} draws (s)':>14} {'ratio':>6}")
    for kind in kinds:
        kind = "k-sparse" if parse_sparse_spec(kind) is not None else kind
        seconds = []
        for draws in (1, args.draws):
            plan = dataclasses.replace(prep.plan, label_draws=draws)
            arms = build_arms(plan, {})
            t = time.perf_counter()
            probe_rows(arms, [kind], C=cfg.probe_C)
            seconds.append(time.perf_counter() - t)
        print(f"{kind:<12} {seconds[0]:>10.2f} {seconds[1]:>14.2f} {seconds[1] / seconds[0]:>6.1f}", flush=True)


if __name__ == "__main__":
    main()
