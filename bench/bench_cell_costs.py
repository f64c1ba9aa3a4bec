"""Per-cell costs behind docs/scaling.md: extraction tokens/s by depth, model load and reinit build times.

One process, no cache: the embedded model reads the same texts stopped after 1, 8, 15, 23 and 30 blocks
(one hook each, the pass stopped after it), on ``--threads`` torch threads; then the time to load the model
and to build one spectral-reinit copy. The fit time per cell is read from a committed sweep's run.json.

    python bench/bench_cell_costs.py [--texts 128] [--threads 1] [--device cpu] [--dtype float32]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--dataset", default="92_glue_sst2")
    parser.add_argument("--texts", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--sweep-run", default="reports/sweeps/depth/run.json")
    args = parser.parse_args()

    import torch

    from auditkit import data
    from auditkit.controls.weights import reinit_loaded
    from auditkit.extract import ExtractConfig, extract
    from auditkit.models import ModelSpec, load_model

    torch.set_num_threads(args.threads)
    t = time.perf_counter()
    loaded = load_model(ModelSpec(name=args.model, device=args.device, dtype=args.dtype))
    load_s = time.perf_counter() - t
    n_layers = loaded.model.cfg.n_layers
    ds = data.load_sae_probes(args.dataset, max_examples=args.texts, seed=0)
    tok = loaded.model.tokenizer
    batch = data.tokenize(
        ds, tok, prepend_bos=loaded.provenance.prepend_bos, bos_token_id=tok.bos_token_id, max_length=128
    )
    print(
        f"{args.model} on {loaded.provenance.device} in {loaded.provenance.dtype}, {args.threads} thread(s): "
        f"load {load_s:.1f} s; {batch.n_examples} texts, {batch.n_tokens} tokens"
    )
    depths = sorted({1, n_layers // 4 + 1, n_layers // 2, 3 * n_layers // 4 + 1, n_layers})
    rows = []
    for blocks in depths:  # blocks.{b}.hook_resid_pre is read after b blocks; the last block's output after all
        hook = f"blocks.{blocks}.hook_resid_pre" if blocks < n_layers else f"blocks.{n_layers - 1}.hook_resid_post"
        cfg = ExtractConfig(hook=hook, positions="last", progress=False)
        extract(loaded.model, batch, cfg)  # warm-up
        t = time.perf_counter()
        extract(loaded.model, batch, cfg)
        seconds = time.perf_counter() - t
        rows.append({"blocks": blocks, "hook": hook, "tokens_per_s": round(batch.n_tokens / seconds)})
        print(rows[-1], flush=True)
    t = time.perf_counter()
    reinit_loaded(loaded, "spectral-reinit", 0)
    print(f"spectral-reinit build: {time.perf_counter() - t:.1f} s")
    run = Path(args.sweep_run)
    if run.is_file():
        r = json.loads(run.read_text())
        n = len(r["datasets"]) * len(r["hooks"])
        print(
            f"fit time per cell ({args.sweep_run}, {len(r['controls'])} controls, seeds {r['config']['audit']['seeds']},"
            f" probes {r['config']['audit']['probes']}, {r['config']['audit']['max_examples']} texts): "
            f"{r['timings']['cells_s'] / n:.2f} s over {n} cells"
        )


if __name__ == "__main__":
    main()
