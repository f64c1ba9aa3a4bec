"""How auditkit's SAE metrics differ from sae-lens's own evaluation (``sae_lens.evals.run_evals``) on one SAE.

One small TopK SAE (the SAE audit's defaults: F = 2 x D, k = 32, lr 1e-3, batches of 128; ``--tokens`` training
tokens) is trained by auditkit on the embedded model's ``--hook`` activations of SST-2 texts, then scored on the
same held-out token rows by both: auditkit's ``evaluate_sae`` + ``splice_metrics`` (what the audit reports) and
sae-lens's ``run_evals`` with its defaults (special tokens excluded). Rows are ``--length`` tokens, BOS first,
no padding (texts shorter than that are skipped), because sae-lens's evaluation reads fixed-length rows.

A third column re-averages sae-lens's own per-token CE and KL tensors (``get_recons_loss``) over auditkit's
positions (every prediction of a real next token, the one made at BOS included), so the offset of the CE and
KL totals splits into the position convention (column 3 - column 2) and the zero-ablation's BOS handling
(sae-lens zeroes the BOS position too; auditkit leaves it clean in every splice; column 1 - column 3).

``--saebench`` adds SAEBench's core evaluation (``sae_bench.evals.core.main.run_evals``) on the same SAE and rows,
called as its own runner calls it (special tokens ignored in every total, the SAE spliced at every position,
BOS included, unless its ``exclude_special_tokens_from_reconstruction`` is set: both are reported), plus two
explained variances of the held-out activations that locate its offset: about zero, and SAEBench's own formula
(total variance E||x||^2 - (E||x||^2 / D)^2). sae-bench is not a dependency of auditkit: put its wheel (and
its ``tabulate``) on PYTHONPATH for this run only; it needs nothing from the hub when called this way.

    python bench/sae_eval_offsets.py [--texts 400] [--length 16] [--tokens 20000] [--hook blocks.15.hook_resid_pre]
        [--saebench]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch


def _rows(model, texts: tuple[str, ...], length: int) -> torch.Tensor:
    """[B, length] token rows, BOS first, of the texts with at least ``length`` tokens (cut to it)."""
    rows = []
    for text in texts:
        tok = model.to_tokens(text, prepend_bos=True)[0]
        if tok.shape[0] >= length:
            rows.append(tok[:length])
    return torch.stack(rows)


class _Store:
    """The part of sae-lens's ActivationsStore that ``run_evals`` reads: fixed batches of token rows."""

    def __init__(self, tokens_BL: torch.Tensor, batch: int) -> None:
        self.tokens_BL, self.store_batch_size_prompts, self.context_size = tokens_BL, batch, tokens_BL.shape[1]
        self._at = 0

    def get_batch_tokens(self, n: int) -> torch.Tensor:
        out = self.tokens_BL[self._at : self._at + n]
        self._at += n
        return out

    def reset_input_dataset(self) -> None:
        self._at = 0


def _acts(model, tokens_BL: torch.Tensor, hook: str) -> torch.Tensor:
    """The hook's activations at every non-BOS position, [B * (L - 1), D]."""
    with torch.inference_mode():
        _, cache = model.run_with_cache(tokens_BL, names_filter=[hook])
    return cache[hook][:, 1:].reshape(-1, cache[hook].shape[-1]).clone()


def _dead_dense(feature_density: list[float]) -> dict[str, float]:
    """Dead (never active) and dense (active on more than 10% of tokens) fractions from per-latent densities."""
    density = torch.tensor(feature_density)
    return dict(
        dead_fraction=float((density == 0).float().mean()), dense_fraction=float((density > 0.1).float().mean())
    )


def _sae_lens_on_auditkit_positions(sae, model, tokens_BL: torch.Tensor, batch: int) -> dict[str, float]:
    """sae-lens's per-token CE and KL (its splice: non-special positions; its zero-ablation: every position),
    averaged over every prediction of a next token (the one made at BOS included), as auditkit averages."""
    from sae_lens.evals import get_recons_loss
    from sae_lens.training.activation_scaler import ActivationScaler

    tok = model.tokenizer
    special = [int(t) for t in {tok.bos_token_id, tok.eos_token_id, tok.pad_token_id} if t is not None]
    sums: dict[str, float] = {}
    n = 0
    for lo in range(0, tokens_BL.shape[0], batch):
        out = get_recons_loss(
            sae,
            model,
            ActivationScaler(),
            tokens_BL[lo : lo + batch],
            compute_kl=True,
            compute_ce_loss=True,
            ignore_tokens=special,
        )
        for key, value in out.items():
            v = value[:, : tokens_BL.shape[1] - 1]  # KL has one more position (the last, with no next token)
            sums[key] = sums.get(key, 0.0) + float(v.double().sum())
        n += out["ce_loss_with_sae"].numel()
    m = {k: v / n for k, v in sums.items()}
    m["ce_loss_score"] = (m["ce_loss_with_ablation"] - m["ce_loss_with_sae"]) / (
        m["ce_loss_with_ablation"] - m["ce_loss_without_sae"]
    )
    return m


def _saebench(sae, model, tokens_BL: torch.Tensor, batch: int, exclude_special: bool) -> dict[str, float]:
    """SAEBench's core totals on these rows, flattened, with dead / dense fractions from its feature densities."""
    from sae_bench.evals.core.eval_config import CoreEvalConfig
    from sae_bench.evals.core.main import run_evals
    from sae_bench.sae_bench_utils.general_utils import load_and_format_sae

    sae.cfg.metadata.model_name = "auditkit-embedded"
    load_and_format_sae("auditkit", sae, "cpu")  # SAEBench's own cfg normalisation for an SAE object (no hub)
    n_batches = -(-tokens_BL.shape[0] // batch)
    cfg = CoreEvalConfig(
        batch_size_prompts=batch,
        n_eval_reconstruction_batches=n_batches,
        n_eval_sparsity_variance_batches=n_batches,
        compute_kl=True,
        compute_ce_loss=True,
        compute_l2_norms=True,
        compute_sparsity_metrics=True,
        compute_variance_metrics=True,
        compute_featurewise_density_statistics=True,
        exclude_special_tokens_from_reconstruction=exclude_special,
    )
    tok = model.tokenizer
    ignore = {tok.pad_token_id, tok.eos_token_id, tok.bos_token_id}  # what its runner passes
    theirs, features = run_evals(sae, _Store(tokens_BL, batch), model, cfg, ignore_tokens=ignore)
    flat = {k: v for group in theirs.values() for k, v in group.items()}
    flat |= _dead_dense(features["feature_density"])
    return flat


def _variance_references(sae, acts_ND: torch.Tensor) -> dict[str, float]:
    """Explained variance of the held-out activations about zero, and with SAEBench's total variance."""
    x = acts_ND.double()
    resid = (x - sae.decode(sae.encode(acts_ND)).double()).pow(2).sum(-1).mean()
    sq = x.pow(2).sum(-1).mean()
    return dict(
        ev_about_zero=float(1 - resid / sq),
        ev_saebench_formula=float(1 - resid / (sq - (sq / x.shape[1]) ** 2)),
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--texts", type=int, default=400)
    p.add_argument("--length", type=int, default=16)
    p.add_argument("--tokens", type=int, default=20_000)
    p.add_argument("--hook", default="blocks.15.hook_resid_pre")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--saebench", action="store_true", help="add SAEBench's core evaluation (sae_bench importable)")
    args = p.parse_args()
    if args.saebench:
        try:
            import sae_bench.evals.core.main  # noqa: F401
        except ImportError as e:
            print(
                f"error: --saebench needs sae_bench importable ({e}); put the sae-bench wheel on PYTHONPATH",
                file=sys.stderr,
            )
            sys.exit(2)
    torch.set_grad_enabled(False)
    from sae_lens.evals import EvalConfig, run_evals
    from sae_lens.training.activation_scaler import ActivationScaler

    from auditkit.audit.options import SAEAuditOptions
    from auditkit.data.sae_probes import load_sae_probes
    from auditkit.methods.sae import evaluate_sae, splice_metrics, train_sae
    from auditkit.models import ModelSpec
    from auditkit.models.loading import load_model

    t0 = time.perf_counter()
    model = load_model(ModelSpec()).model
    texts = load_sae_probes("92_glue_sst2", max_examples=args.texts, seed=0).texts
    tokens_BL = _rows(model, texts, args.length)
    half = tokens_BL.shape[0] // 2
    train_BL, test_BL = tokens_BL[:half], tokens_BL[half:]
    with torch.enable_grad():
        sae = train_sae(
            _acts(model, train_BL, args.hook), SAEAuditOptions(training_tokens=args.tokens).sae_config(), seed=0
        )
    sae.cfg.metadata.hook_name = args.hook
    ours = evaluate_sae(sae, _acts(model, test_BL, args.hook))
    ours |= splice_metrics(sae, model, test_BL, torch.ones_like(test_BL, dtype=torch.bool), args.hook, exclude_bos=True)
    n_batches = -(-test_BL.shape[0] // args.batch)
    cfg = EvalConfig(
        batch_size_prompts=args.batch,
        n_eval_reconstruction_batches=n_batches,
        compute_kl=True,
        compute_ce_loss=True,
        n_eval_sparsity_variance_batches=n_batches,
        compute_l2_norms=True,
        compute_sparsity_metrics=True,
        compute_variance_metrics=True,
        compute_featurewise_density_statistics=True,
    )
    theirs, features = run_evals(sae, _Store(test_BL, args.batch), model, ActivationScaler(), cfg)
    flat = {k: v for group in theirs.values() for k, v in group.items()}
    flat |= _dead_dense(features["feature_density"])
    mixed = _sae_lens_on_auditkit_positions(sae, model, test_BL, args.batch)
    pairs = [  # (auditkit, sae-lens, sae-lens re-averaged on auditkit's positions)
        ("explained_variance", "explained_variance", None),
        ("l0", "l0", None),
        ("shrinkage", "l2_ratio", None),
        ("dead_fraction", "dead_fraction", None),
        ("dense_fraction", "dense_fraction", None),
        ("ce_clean", "ce_loss_without_sae", "ce_loss_without_sae"),
        ("ce_sae", "ce_loss_with_sae", "ce_loss_with_sae"),
        ("ce_zero", "ce_loss_with_ablation", "ce_loss_with_ablation"),
        ("kl_sae", "kl_div_with_sae", "kl_div_with_sae"),
        ("kl_zero", "kl_div_with_ablation", "kl_div_with_ablation"),
        ("ce_recovered_zero", "ce_loss_score", "ce_loss_score"),
    ]
    table = {
        a: dict(
            auditkit=ours[a],
            sae_lens=flat[s],
            sae_lens_on_auditkit_positions=mixed[m] if m else None,
            offset=ours[a] - flat[s],
        )
        for a, s, m in pairs
    }
    extra = {}
    if args.saebench:
        for key, exclude in (("saebench", False), ("saebench_exclude_special", True)):
            bench = _saebench(sae, model, test_BL, args.batch, exclude)
            for a, s, _ in pairs:
                table[a] |= {key: bench[s], f"{key}_offset": ours[a] - bench[s]}
        extra = _variance_references(sae, _acts(model, test_BL, args.hook))
    info = dict(
        rows=int(test_BL.shape[0]),
        length=args.length,
        hook=args.hook,
        train_rows=int(half),
        tokens=args.tokens,
        seconds=round(time.perf_counter() - t0, 1),
    )
    print(json.dumps(dict(info=info, metrics=table, explained_variance_references=extra), indent=1))


if __name__ == "__main__":
    main()
