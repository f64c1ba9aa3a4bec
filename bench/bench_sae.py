"""SAE training throughput: auditkit's ``train_sae`` against sae-lens's own training runner.

Same activations, same SAE (architecture, width, k or coefficient), same token budget, batch size,
learning rate and schedule, measured in one run (these machines are noisy, so only the ratio is
meaningful). The baseline is ``LanguageModelSAETrainingRunner`` training from sae-lens's cached-activation
format (a Hugging Face dataset on disk, rows of ``--context`` tokens, written from the same tensor
before timing starts), which is how sae-lens trains on activations that already exist; its model is
only a placeholder (it is never run with cached activations). Both sides normalise inputs to mean
norm sqrt(D) and fold the scale back afterwards. Each side runs in its own subprocess, alternating,
``--repeats`` times; the best time of each is compared.

Activations: ``--acts FILE.safetensors`` (a tensor named ``acts``, [N, D]), else synthetic sparse
features in superposition at D = 576 (the embedded SmolLM2-135M's width), from sae-lens's
``FeatureDictionary``; throughput does not depend on where the rows came from.

The defaults are the SAE audit's (``auditkit audit --methods sae``: TopK, F = 2 x D, k = 32, 49,152
tokens in batches of 128); ``--tokens 400000 --batch 4096 --expansion 4`` is the library default of
``SAEConfig``.

    python bench/bench_sae.py [--acts FILE] [--tokens 49152] [--batch 128] [--expansion 2] [--architecture topk]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOOK = "blocks.0.hook_resid_pre"


def _acts(path: str | None, n: int, d: int):
    import torch
    from safetensors.torch import load_file

    if path:
        return load_file(path)["acts"].float()
    from sae_lens.synthetic import FeatureDictionary

    from auditkit.seeding import torch_generator

    features = FeatureDictionary(4 * d, d, seed=0, initializer=None)
    gen = torch_generator(1)
    coef = (torch.rand(n, 4 * d, generator=gen) < 0.01) * torch.rand(n, 4 * d, generator=gen)
    with torch.no_grad():
        return features(coef) + 0.5


def _auditkit(acts, cfg) -> float:
    from auditkit.methods.sae import train_sae

    start = time.perf_counter()
    train_sae(acts, cfg, seed=0)
    return time.perf_counter() - start


def _cached_dataset(acts, context: int, folder: Path) -> int:
    """Write ``acts`` in sae-lens's cached-activation format; returns the rows kept."""
    from datasets import Array2D, Dataset, Features

    n_ctx = acts.shape[0] // context
    rows = acts[: n_ctx * context].reshape(n_ctx, context, acts.shape[1]).numpy()
    features = Features({HOOK: Array2D(shape=(context, acts.shape[1]), dtype="float32")})
    Dataset.from_dict({HOOK: rows}, features=features).save_to_disk(str(folder))
    return n_ctx * context


def _sae_lens(acts, cfg, context: int) -> float:
    import torch
    from datasets import Dataset
    from sae_lens import (
        JumpReLUTrainingSAEConfig,
        LanguageModelSAERunnerConfig,
        LanguageModelSAETrainingRunner,
        LoggingConfig,
        StandardTrainingSAEConfig,
        TopKTrainingSAEConfig,
    )

    from auditkit.models import ModelSpec, load_model

    torch.manual_seed(0)  # sae-lens initialises from the global RNG (a benchmark script may seed it)
    d, n_steps = acts.shape[1], math.ceil(cfg.training_tokens / cfg.batch_size)
    common = dict(d_in=d, d_sae=cfg.d_sae(d), normalize_activations="expected_average_only_in")
    warm = int(cfg.sparsity_warm_up_fraction * n_steps)
    if cfg.architecture == "topk":
        sae_cfg: object = TopKTrainingSAEConfig(k=cfg.k, **common)
    elif cfg.architecture == "standard":
        sae_cfg = StandardTrainingSAEConfig(l1_coefficient=cfg.l1_coefficient, l1_warm_up_steps=warm, **common)
    else:
        sae_cfg = JumpReLUTrainingSAEConfig(
            l0_coefficient=cfg.l0_coefficient,
            l0_warm_up_steps=warm,
            jumprelu_init_threshold=cfg.jumprelu_init_threshold,
            **common,
        )
    with tempfile.TemporaryDirectory() as tmp:
        _cached_dataset(acts, context, Path(tmp) / "cache")
        placeholder = load_model(ModelSpec(name="tiny-gpt2")).model
        tokens = Dataset.from_dict({"tokens": [[0] * context]})  # never read: cached activations win
        runner_cfg = LanguageModelSAERunnerConfig(
            sae=sae_cfg,
            model_name="placeholder",
            hook_name=HOOK,
            dataset_path="placeholder",
            context_size=context,
            use_cached_activations=True,
            cached_activations_path=str(Path(tmp) / "cache"),
            training_tokens=n_steps * cfg.batch_size,
            train_batch_size_tokens=cfg.batch_size,
            store_batch_size_prompts=max(1, cfg.batch_size // context),
            n_batches_in_buffer=max(2, 2 * cfg.batch_size // context),
            lr=cfg.lr,
            lr_end=cfg.lr,
            lr_scheduler_name="constant",
            lr_decay_steps=int(cfg.lr_decay_fraction * n_steps),
            dead_feature_window=max(10, n_steps // 5),
            feature_sampling_window=max(1, n_steps),
            n_batches_for_norm_estimate=max(1, min(100, n_steps)),
            logger=LoggingConfig(log_to_wandb=False),
            checkpoint_path=None,
            output_path=None,
            device="cpu",
            verbose=False,
        )
        start = time.perf_counter()
        LanguageModelSAETrainingRunner(runner_cfg, override_dataset=tokens, override_model=placeholder).run()
        return time.perf_counter() - start


def _child(args: argparse.Namespace) -> None:
    from auditkit.methods.sae import SAEConfig

    acts = _acts(args.acts, args.rows, 576)
    cfg = SAEConfig(
        architecture=args.architecture,
        training_tokens=args.tokens,
        batch_size=args.batch,
        expansion_factor=args.expansion,
        progress=False,
    )
    seconds = _auditkit(acts, cfg) if args.side == "auditkit" else _sae_lens(acts, cfg, args.context)
    n_steps = math.ceil(cfg.training_tokens / min(cfg.batch_size, acts.shape[0]))
    tokens = n_steps * min(cfg.batch_size, acts.shape[0])
    print(
        json.dumps(
            dict(
                side=args.side,
                rows=acts.shape[0],
                d=acts.shape[1],
                d_sae=cfg.d_sae(acts.shape[1]),
                tokens=tokens,
                seconds=seconds,
                tok_per_s=tokens / seconds,
            )
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--acts", default=None, help="safetensors file with an [N, D] tensor named 'acts'")
    parser.add_argument("--rows", type=int, default=40_000, help="synthetic rows when no --acts")
    parser.add_argument("--architecture", default="topk", choices=["topk", "standard", "jumprelu"])
    parser.add_argument("--tokens", type=int, default=49_152)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--expansion", type=float, default=2.0, help="dictionary size F as a multiple of D")
    parser.add_argument("--context", type=int, default=128, help="tokens per cached row on the sae-lens side")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--side", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        _child(args)
        return
    passthrough = sys.argv[1:]
    best: dict[str, dict] = {}
    for _ in range(args.repeats):
        for side in ("sae-lens", "auditkit"):
            out = subprocess.run(
                [sys.executable, __file__, *passthrough, "--side", side], check=True, capture_output=True, text=True
            ).stdout
            row = json.loads(out.strip().splitlines()[-1])
            print(json.dumps(row), flush=True)
            if side not in best or row["seconds"] < best[side]["seconds"]:
                best[side] = row
    ratio = best["auditkit"]["tok_per_s"] / best["sae-lens"]["tok_per_s"]
    print(
        f"{args.architecture} D={best['auditkit']['d']} F={best['auditkit']['d_sae']} "
        f"tokens={best['auditkit']['tokens']:,} batch={args.batch}: "
        f"sae-lens runner {best['sae-lens']['tok_per_s']:,.0f} tok/s, "
        f"auditkit {best['auditkit']['tok_per_s']:,.0f} tok/s, speed ratio {ratio:.2f}x (target >= 1x)"
    )


if __name__ == "__main__":
    main()
