"""Extraction throughput: auditkit's extractor against TransformerLens ``run_with_cache``.

Same model, same tokens, same hook, measured in one run (these machines are noisy, so only the
ratio is meaningful). The baseline is ``run_with_cache`` with no names filter and no early stop,
reading the hook from the cache it returns. Each side runs in its own subprocess so that its peak
resident memory (ru_maxrss) is its own.

    python bench/bench_extract.py [--model smollm2-135m] [--layer 7] [--texts 256]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _batch(model_name: str, n_texts: int, max_length: int):
    from auditkit import data
    from auditkit.models import ModelSpec, load_model

    loaded = load_model(ModelSpec(name=model_name))
    ds = data.load_sae_probes("92_glue_sst2", max_examples=n_texts, seed=0)
    tok = loaded.model.tokenizer
    batch = data.tokenize(ds, tok, prepend_bos=True, bos_token_id=tok.bos_token_id, max_length=max_length)
    return loaded, batch


def _run(side: str, model_name: str, hook: str, n_texts: int, batch_size: int, max_length: int) -> dict:
    import torch

    from auditkit.extract import ExtractConfig, extract

    torch.set_grad_enabled(False)
    loaded, batch = _batch(model_name, n_texts, max_length)
    model = loaded.model
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if side == "auditkit":
        cfg = ExtractConfig(hook=hook, positions="all", include_bos=True, batch_size=batch_size, progress=False)
        rows = extract(model, batch, cfg).n
    else:
        rows = 0
        for lo in range(0, batch.n_examples, batch_size):
            width = int(batch.lengths_B[lo : lo + batch_size].max())
            _, cache = model.run_with_cache(batch.tokens_BL[lo : lo + batch_size, :width])
            mask = batch.mask_BL[lo : lo + batch_size, :width]
            rows += int(cache[hook][mask].shape[0])
            del cache
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return dict(
        side=side,
        rows=rows,
        tokens=batch.n_tokens,
        seconds=seconds,
        tok_per_s=batch.n_tokens / seconds,
        peak_rss_mb=peak / 1024,
        rss_growth_mb=(peak - rss_before) / 1024,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--layer", type=int, default=7, help="block whose hook_resid_pre is read")
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--side", choices=["auditkit", "run_with_cache"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    hook = f"blocks.{args.layer}.hook_resid_pre"
    if args.side:
        print(json.dumps(_run(args.side, args.model, hook, args.texts, args.batch_size, args.max_length)))
        return
    results = {}
    for side in ("run_with_cache", "auditkit"):
        cmd = [sys.executable, __file__, "--side", side, *sys.argv[1:]]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        results[side] = json.loads(out.strip().splitlines()[-1])
    base, ours = results["run_with_cache"], results["auditkit"]
    assert base["rows"] == ours["rows"], "the two sides read different rows"
    print(f"model {args.model}, hook {hook}, {ours['tokens']} tokens in {args.texts} texts, batch {args.batch_size}")
    for r in (base, ours):
        print(
            f"  {r['side']:15s} {r['tok_per_s']:9.0f} tok/s  {r['seconds']:7.2f} s  peak RSS {r['peak_rss_mb']:7.0f} MB"
            f"  (+{r['rss_growth_mb']:.0f} MB during extraction)"
        )
    print(f"speed ratio auditkit / run_with_cache: {ours['tok_per_s'] / base['tok_per_s']:.2f}x (target >= 2x)")
    print(f"peak-memory ratio auditkit / run_with_cache: {ours['peak_rss_mb'] / base['peak_rss_mb']:.2f}")


if __name__ == "__main__":
    main()
