"""SAEs spliced into a tiny TransformerLens model, and the extract -> train -> evaluate path end to end."""

from __future__ import annotations

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
    assert s["kl_sae"] < s["kl_zero"] and s["kl_sae"] < s["kl_mean"] and all(v == v for v in s.values())
