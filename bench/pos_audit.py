"""Hewitt and Liang (2019, "Designing and Interpreting Probes with Control Tasks"), with auditkit's audit.

Part-of-speech tagging (UPOS, 17 classes) at the labelled word positions of UD English-EWT, read from
the embedded model (SmolLM2-135M) at the residual stream entering the middle block, by a linear
(logistic) probe and a one-hidden-layer MLP probe, each against Hewitt and Liang's control task (every
word type gets one random tag drawn from the empirical tag distribution, fixed across train and test),
over 3 seeds, each its own train/test split by sentence. Everything runs through ``run_audit`` and the
normal report writer; only the printed summary is specific to this script.

Hewitt and Liang's finding (ELMo, PTB POS): the linear probe is far more selective than the MLP at
similar accuracy (the MLP memorises word types and scores well on the control task). This script
prints each probe's real-task and control-task accuracy and their difference (selectivity) with 95%
intervals, and says whether that finding is reproduced here.

The data is read from the shared data folder next to the repository (``../shared/data``); the product
itself never reads it. The first run extracts activations (about 16k tokens for 1,000 sentences);
later runs read them from the activation cache.

    python bench/pos_audit.py [--sentences 1000] [--hook blocks.15.hook_resid_pre] [--out reports/pos]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pandas as pd

EWT = Path(__file__).resolve().parents[2] / "shared" / "data" / "ud-english-ewt"


def conllu_file() -> Path:
    """The EWT training file if present, else the dev file (the shared folder ships dev and test)."""
    for name in ("en_ewt-ud-train.conllu", "en_ewt-ud-dev.conllu"):
        if (EWT / name).is_file():
            return EWT / name
    sys.exit(f"UD English-EWT not found under {EWT}: put en_ewt-ud-train.conllu or en_ewt-ud-dev.conllu there")


def summary(rows: pd.DataFrame, sel: pd.DataFrame) -> pd.DataFrame:
    """Per probe: real and control-task accuracy (mean over seeds) and the selectivity with its 95% CI."""
    acc = rows.query("metric == 'accuracy'").groupby(["method", "control"])["value"].mean().unstack()
    s = sel.query("metric == 'accuracy' and control == 'control-task'").set_index("method")
    return pd.DataFrame(
        {
            "real accuracy": acc["none"],
            "control-task accuracy": acc["control-task"],
            "selectivity": s["selectivity"],
            "ci_low": s["ci_low"],
            "ci_high": s["ci_high"],
            "verdict": s["verdict"],
        }
    )


def main() -> None:
    from auditkit.cli.reproduce import reproduce_command

    from auditkit.audit.config import AuditConfig, input_paths
    from auditkit.audit.run import run_audit
    from auditkit.report.outputs import check_output
    from auditkit.report.write import write_outputs

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sentences", type=int, default=1000, help="sentences of the CoNLL-U file used")
    ap.add_argument("--hook", default=None, help="hook (default: the residual stream entering the middle block)")
    ap.add_argument("--out", type=Path, default=Path("reports/pos"))
    args = ap.parse_args()
    cfg = AuditConfig(
        dataset=f"conllu:{os.path.relpath(conllu_file())}",
        max_examples=args.sentences,
        hook=args.hook,
        probes=("logistic", "mlp"),
        controls=("control-task",),
        seeds=(0, 1, 2),
    )
    check_output(args.out, inputs=input_paths(cfg))
    t = time.perf_counter()
    result = run_audit(cfg)
    elapsed = time.perf_counter() - t
    write_outputs(result, args.out, reproduce_command(cfg, args.out))
    table = summary(result.rows, result.selectivity)
    counts = result.dataset.class_counts
    majority = max(counts) / sum(counts)
    print(
        f"UPOS on {result.dataset.name}: {result.dataset.n_items} words in {result.dataset.n_texts} sentences, "
        f"{len(counts)} tags (majority tag {majority:.3f}); hook {result.extraction.hook}; {elapsed:.0f} s"
    )
    print(table.to_string(float_format=lambda x: f"{x:.3f}"))
    lin, mlp = table.loc["probe-logistic"], table.loc["probe-mlp"]
    similar = abs(lin["real accuracy"] - mlp["real accuracy"]) <= 0.03
    disjoint = lin["ci_low"] > mlp["ci_high"]
    print(
        f"linear minus MLP: accuracy {lin['real accuracy'] - mlp['real accuracy']:+.3f}, selectivity "
        f"{lin['selectivity'] - mlp['selectivity']:+.3f} (intervals {'disjoint' if disjoint else 'overlapping'})"
    )
    # Hewitt and Liang's finding: at similar accuracy the linear probe is the more selective one.
    found = "reproduced" if similar and disjoint else "not reproduced"
    print(
        f"linear more selective than MLP at similar accuracy (accuracies within 0.03, intervals disjoint): "
        f"{found}; report in {args.out}/"
    )


if __name__ == "__main__":
    main()
