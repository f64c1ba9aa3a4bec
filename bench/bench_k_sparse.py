"""What k-sparse probes add to the fitting step of the default audit.

The default audit (SST-2, 1,000 texts, every default control, 3 seeds) fits its probes on 13 activation
matrices: the real arm's, shared by the real, shuffled-label and control-task problems of every seed
(one stack of 9), and one per seed of each token and weight control (12 stacks of 1). This benchmark
builds that structure from the real arm's cached activations (the 12 single-problem matrices are
copies of it with the real labels, so no extra forward pass is needed; the fits cost the same on any
matrix of that shape) and times ``probe_rows`` with the five default probe kinds, then with k-sparse
(k = 1, 2, 5, 10, 20, 50) alone, in one run.

    python bench/bench_k_sparse.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import time


def main() -> None:
    from auditkit import data as data_mod
    from auditkit.audit.arms import Arm, ArmPlan, build_arms
    from auditkit.audit.config import AuditConfig
    from auditkit.audit.probe import probe_rows
    from auditkit.audit.run import load_dataset_spec
    from auditkit.extract import ExtractConfig
    from auditkit.models import default_cache_dir, default_hook, load_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    cfg = AuditConfig(progress=False)
    loaded = load_model(cfg.model)
    ds = load_dataset_spec(cfg)
    ds = dataclasses.replace(ds, groups_M=tuple(ds.texts[i] for i in ds.item_example_M))
    tok = loaded.model.tokenizer
    batch = data_mod.tokenize(ds, tok, prepend_bos=True, bos_token_id=tok.bos_token_id, max_length=cfg.max_length)
    plan = ArmPlan(
        loaded=loaded,
        batch=batch,
        extract_cfg=ExtractConfig(hook=default_hook(loaded.model.cfg.n_layers), progress=False),
        cache_root=default_cache_dir(),
        seeds=cfg.seeds,
        controls=("shuffled-labels", "control-task"),
        test_fraction=0.25,
    )
    arms = build_arms(plan, {})
    reals = [a for a in arms if a.control == "none"]
    for j in range(4):  # 4 token/weight controls x 3 seeds, each its own activation matrix
        for a in reals:
            arms.append(Arm(f"copy-{j}", a.seed, a.acts.replace(acts_ND=a.acts.acts_ND.clone()), a.batch, a.model))
    print(
        f"{len(arms)} problems on {len({id(a.acts.acts_ND) for a in arms})} activation matrices, "
        f"{reals[0].acts.n} rows x {reals[0].acts.d}"
    )
    for probes in (("logistic", "mass-mean", "lda", "low-rank", "mlp"), ("k-sparse",)):
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            rows, _ = probe_rows(arms, probes, C=cfg.probe_C)
            times.append(time.perf_counter() - t)
        print(f"{','.join(probes)}: {min(times):.1f} s (best of {args.repeats}); {rows['method'].nunique()} methods")


if __name__ == "__main__":
    main()
