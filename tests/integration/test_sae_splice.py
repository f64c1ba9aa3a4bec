"""SAEs spliced into a tiny TransformerLens model, and the extract -> train -> evaluate path end to end."""

from __future__ import annotations

import math

import pytest
import torch

from auditkit.errors import HookError
from auditkit.methods.sae import SAEConfig, evaluate_sae, splice_metrics, train_sae

pytestmark = pytest.mark.usefixtures("one_thread")


HOOK = "blocks.1.hook_resid_pre"


def linear_sae(d: int, scale: float):
    """x -> scale * x exactly (latents relu(x), relu(-x)); scale 0 is a zero-ablating 'SAE'."""
    from sae_lens import StandardSAE, StandardSAEConfig

    sae = StandardSAE(StandardSAEConfig(d_in=d, d_sae=2 * d))
    eye = torch.eye(d)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], dim=1))
        sae.W_dec.copy_(torch.cat([eye, -eye], dim=0) * scale)
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae.eval()


@pytest.fixture(scope="module")
def batch(tiny_gpt2):
    from auditkit.data import from_lists, tokenize

    texts = [f"the cat number {i} sat on the mat and looked at {i * 7} birds" for i in range(12)]
    ds = from_lists("cats", texts, [i % 2 for i in range(12)])
    tok = tiny_gpt2.model.tokenizer
    return tokenize(ds, tok, prepend_bos=True, bos_token_id=tok.bos_token_id, max_length=48)


def test_perfect_sae_recovers_all_loss_and_zero_sae_none(tiny_gpt2, batch):
    model, d = tiny_gpt2.model, tiny_gpt2.model.cfg.d_model
    m = splice_metrics(linear_sae(d, 1.0), model, batch.tokens_BL, batch.mask_BL, HOOK)
    assert m["ce_recovered_zero"] == pytest.approx(1.0, abs=1e-4)
    assert m["ce_recovered_mean"] == pytest.approx(1.0, abs=1e-4)
    assert m["kl_sae"] == pytest.approx(0.0, abs=1e-6)
    # a random tiny model: ablating may even lower CE, but it must change the predictions
    assert m["ce_zero"] != pytest.approx(m["ce_clean"]) and m["kl_zero"] > 1e-3
    zero = splice_metrics(linear_sae(d, 0.0), model, batch.tokens_BL, batch.mask_BL, HOOK)
    assert zero["ce_recovered_zero"] == pytest.approx(0.0, abs=1e-6)


@torch.no_grad()
def _reference_splice(sae, model, batch, hook):
    """CE and KL of each splice, one unpadded text at a time, with plain full-depth hooked passes."""
    texts = [batch.tokens_BL[b : b + 1, : int(batch.lengths_B[b])] for b in range(batch.n_examples)]
    rows = []
    for tok in texts:
        _, cache = model.run_with_cache(tok, names_filter=hook)
        rows.append(cache[hook][0, 1:])
    mean = torch.cat(rows).double().mean(0).float()
    swaps = {"sae": lambda x: sae(x), "zero": torch.zeros_like, "mean": lambda x: mean.expand_as(x)}
    sums, n = {}, 0
    for tok in texts:
        clean = torch.log_softmax(model(tok).double(), -1)[0, :-1]
        target = tok[0, 1:]
        sums["ce_clean"] = sums.get("ce_clean", 0.0) - float(clean.gather(-1, target[:, None]).sum())
        for name, swap in swaps.items():

            def fn(act, hook, swap=swap):
                out = act.clone()
                out[:, 1:] = swap(act[:, 1:])
                return out

            with model.hooks(fwd_hooks=[(hook, fn)]):
                logp = torch.log_softmax(model(tok).double(), -1)[0, :-1]
            sums[f"ce_{name}"] = sums.get(f"ce_{name}", 0.0) - float(logp.gather(-1, target[:, None]).sum())
            sums[f"kl_{name}"] = sums.get(f"kl_{name}", 0.0) + float((clean.exp() * (clean - logp)).sum())
        n += len(target)
    return {k: v / n for k, v in sums.items()}


@pytest.mark.parametrize("hook", [HOOK, "blocks.0.hook_mlp_out", "hook_embed"])
def test_splice_matches_one_text_at_a_time_full_passes(tiny_gpt2, hook):
    """Length-sorted batches, the restart at the hook's block and the stacked splices change nothing."""
    from auditkit.data import from_lists, tokenize

    texts = ["a b", "the cat sat on the mat and then it slept for a long while", "one two three", "x", "dogs bark"]
    tok = tiny_gpt2.model.tokenizer
    batch = tokenize(from_lists("mixed", texts, [0, 1, 0, 1, 0]), tok, prepend_bos=True, bos_token_id=tok.bos_token_id)
    model, d = tiny_gpt2.model, tiny_gpt2.model.cfg.d_model
    sae = linear_sae(d, 0.5)
    got = splice_metrics(sae, model, batch.tokens_BL, batch.mask_BL, hook, batch_size=2)
    ref = _reference_splice(sae, model, batch, hook)
    for key, value in ref.items():
        assert got[key] == pytest.approx(value, abs=1e-4, rel=1e-4), key


def test_splice_rejects_unknown_hook(tiny_gpt2, batch):
    with pytest.raises(HookError, match="did you mean"):
        splice_metrics(linear_sae(64, 1.0), tiny_gpt2.model, batch.tokens_BL, batch.mask_BL, "blocks.1.hook_resid_prе")


def test_extract_train_evaluate_end_to_end(tiny_gpt2, batch):
    from auditkit.extract import ExtractConfig, extract

    acts = extract(tiny_gpt2.model, batch, ExtractConfig(hook=HOOK, positions="all", progress=False))
    held_out = torch.from_numpy(acts.example_ids_N % 4 == 0)  # texts 0, 4, 8
    cfg = SAEConfig(k=8, width=128, training_tokens=40_000, batch_size=256, progress=False)
    sae = train_sae(acts.acts_ND[~held_out], cfg, seed=0)
    m = evaluate_sae(sae, acts.acts_ND[held_out], token_ids_N=torch.from_numpy(acts.token_ids_N)[held_out])
    assert m["explained_variance"] > 0.5 and m["l0"] == pytest.approx(8.0)
    s = splice_metrics(sae, tiny_gpt2.model, batch.tokens_BL, batch.mask_BL, HOOK)
    assert s["kl_sae"] < s["kl_zero"] and s["kl_sae"] < s["kl_mean"] and not any(math.isnan(v) for v in s.values())
