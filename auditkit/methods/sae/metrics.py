"""Metrics for a trained SAE on held-out activations, and with the SAE spliced into the model.

Every metric here is defined in its function's docstring. Two definitions differ on purpose from
common practice:

* **Explained variance / FVU are taken about the evaluation set's mean.** FVU = sum_n ||x_n - x̂_n||^2 /
  sum_n ||x_n - mean(x)||^2. Dividing by sum_n ||x_n||^2 instead (the variance about zero, as older
  sae-lens evals and many notebooks do) credits an SAE for reproducing the mean, which residual streams
  have in bulk: on such data a reconstruction that only outputs the mean scores close to 1.
* **Dead latents are counted on the evaluation set** (never active on any of its tokens), not from a
  training-time window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from tqdm.auto import tqdm

from auditkit.errors import DataError
from auditkit.metrics.classification import ExampleScores

DENSE_THRESHOLD = 0.1
"""A latent is *dense* when it is active on more than this fraction of evaluation tokens."""
PROBE_KS: tuple[int, ...] = (1, 5, 20)
"""Latent budgets of the k-sparse probe."""


# ----------------------------------------------------------------------------- reconstruction


def explained_variance(x_ND: Float[torch.Tensor, "N D"], x_hat_ND: Float[torch.Tensor, "N D"]) -> float:
    """1 - sum_n ||x_n - x̂_n||^2 / sum_n ||x_n - mean(x)||^2, the mean taken over the N rows given.

    Predicting the mean for every row scores exactly 0, a perfect reconstruction 1; worse than the
    mean is negative. Sums are in float64 (the denominator is a difference of large numbers when the
    mean is large). FVU is 1 minus this.
    """
    x, x_hat = x_ND.to(torch.float64), x_hat_ND.to(torch.float64)
    total = (x - x.mean(0)).square().sum()
    if float(total) <= 0:
        raise DataError("explained variance is undefined: the evaluation rows have zero variance")
    return float(1 - (x - x_hat).square().sum() / total)


@torch.no_grad()
def encode_decode(
    sae: Any, acts_ND: Float[torch.Tensor, "N D"], *, batch_size: int = 4096
) -> tuple[Float[torch.Tensor, "N D"], Float[torch.Tensor, "N F"]]:
    """Reconstructions and latent activations of every row, in batches; encoded on the SAE's device, returned on
    the rows' device."""
    sae.eval()
    x_hat, latents = [], []
    for lo in range(0, acts_ND.shape[0], batch_size):
        z = sae.encode(acts_ND[lo : lo + batch_size].to(device=sae.W_dec.device, dtype=sae.dtype))
        z = z.to_dense() if z.is_sparse else z
        x_hat.append(sae.decode(z).to(device=acts_ND.device, dtype=acts_ND.dtype))
        latents.append(z.to(acts_ND.device))
    return torch.cat(x_hat), torch.cat(latents)


def token_entropy(latents_NF: Float[torch.Tensor, "N F"], token_ids_N: Int[torch.Tensor, " N"]) -> tuple[float, float]:
    """Mean entropy of the token-id distribution each live latent fires on (nats, and normalised).

    For latent f, p_f(t) = (# rows with token id t where f is active) / (# rows where f is active);
    H_f = -sum_t p_f(t) log p_f(t). Averaged over live latents (active at least once). The normalised
    value divides by log(U), U the number of distinct token ids in the evaluation rows, so 0 means every
    latent fires on a single token id and 1 means uniformly over all of them. Heap et al. (2025),
    "Sparse autoencoders can interpret randomly initialized transformers", use low token entropy as the
    sign of single-token latents, which SAEs find on random transformers too.
    """
    _, tok_N = torch.unique(token_ids_N, return_inverse=True)
    U = int(tok_N.max()) + 1
    active_NF = (latents_NF != 0).to(torch.float64)
    onehot_NU = torch.nn.functional.one_hot(tok_N, U).to(torch.float64)
    counts_FU = active_NF.T @ onehot_NU
    fires_F = counts_FU.sum(1)
    live = fires_F > 0
    if not bool(live.any()):
        return float("nan"), float("nan")
    p_FU = counts_FU[live] / fires_F[live, None]
    H_F = -(p_FU * torch.log(p_FU.clamp_min(1e-300))).sum(1)
    mean_H = float(H_F.mean())
    return mean_H, (mean_H / math.log(U) if U > 1 else 0.0)


# ----------------------------------------------------------------------------- sparse probing


def sparse_probe_accuracy(
    latents_NF: Float[torch.Tensor, "N F"],
    labels_N: Int[torch.Tensor, " N"],
    is_test_N: Bool[torch.Tensor, " N"],
    *,
    ks: Sequence[int] = PROBE_KS,
) -> dict[str, float]:
    """``probe_acc_k{k}`` of :func:`sparse_probe_records`, as a dict."""
    return {r["metric"]: r["value"] for r in sparse_probe_records(latents_NF, labels_N, is_test_N, ks=ks)}


def sparse_probe_records(
    latents_NF: Float[torch.Tensor, "N F"],
    labels_N: Int[torch.Tensor, " N"],
    is_test_N: Bool[torch.Tensor, " N"],
    *,
    ks: Sequence[int] = PROBE_KS,
    clusters_N: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Held-out accuracy of a logistic probe on the top-k latents, for each k (a minimal version).

    Latents are ranked on the *training* rows by class-mean difference: |mean over class 1 - mean over
    class 0| for two classes, and for more the largest |mean over class c - mean over the rest| (the
    ranking of Gurnee et al., 2023 and Kantamneni et al., 2025). A logistic probe
    (:class:`auditkit.methods.probes.logistic.LogisticProbe`, C = 1, standardised) is fit on the top k and scored
    on the test rows, on the latents' device (labels and masks follow them). Rows labelled -1 are ignored.
    Tidy-row fields: ``metric`` (``probe_acc_k{k}``), ``value``, ``outcome`` (each test row right or not,
    clustered by ``clusters_N``: the example of every row) and ``degenerate`` (False: one training class raises
    instead).
    """
    from auditkit.methods.probes.logistic import LogisticProbe

    labels_N, is_test_N = labels_N.to(latents_NF.device), is_test_N.to(latents_NF.device)
    keep = labels_N >= 0
    z, y, test = latents_NF[keep].to(torch.float64), labels_N[keep], is_test_N[keep]
    train = ~test
    classes = torch.unique(y[train])
    if classes.numel() < 2 or not bool(test.any()):
        raise DataError("sparse probing needs at least two classes among training rows and some test rows")
    means_KF = torch.stack([z[train & (y == c)].mean(0) for c in classes])
    rest_KF = torch.stack([z[train & (y != c)].mean(0) for c in classes])
    score_F = (means_KF - rest_KF).abs().amax(0)
    y_idx = torch.searchsorted(classes, y.clamp_min(int(classes[0])))
    clusters = np.arange(len(y)) if clusters_N is None else np.asarray(clusters_N)[keep.cpu().numpy()]
    out = []
    for k in ks:
        top = torch.topk(score_F, min(k, score_F.numel())).indices
        probe = LogisticProbe(C=1.0).fit(z[:, top], y_idx[None], train[None], n_classes=int(classes.numel()))
        right = (probe.predict(z[test][:, top])[0] == y_idx[test]).double().cpu().numpy()
        outcome = ExampleScores(right, clusters[test.cpu().numpy()])
        out.append(dict(metric=f"probe_acc_k{k}", value=float(right.mean()), outcome=outcome, degenerate=False))
    return out


# ----------------------------------------------------------------------------- evaluate_sae


@torch.no_grad()
def evaluate_sae(
    sae: Any,
    acts_ND: Float[torch.Tensor, "N D"],
    *,
    token_ids_N: Int[torch.Tensor, " N"] | None = None,
    labels_N: Int[torch.Tensor, " N"] | None = None,
    is_test_N: Bool[torch.Tensor, " N"] | None = None,
    batch_size: int = 4096,
) -> dict[str, float]:
    """Metrics of ``sae`` on held-out rows ``acts_ND`` (rows = tokens). Keys and definitions:

    * ``explained_variance``, ``fvu``: about the mean of ``acts_ND`` (:func:`explained_variance`).
    * ``mse``: mean over rows and dimensions of (x - x̂)^2.
    * ``l0``: mean number of non-zero latents per row.
    * ``dead_fraction``: fraction of latents never non-zero on any row.
    * ``dense_fraction``: fraction of latents non-zero on more than ``DENSE_THRESHOLD`` (10%) of rows.
    * ``shrinkage``: mean over rows of ||x̂|| / ||x|| (rows with ||x|| > 0); < 1 means shrunk
      reconstructions, the usual L1 artefact.
    * ``token_entropy``, ``token_entropy_norm``: with ``token_ids_N`` (:func:`token_entropy`).
    * ``probe_acc_k{1,5,20}``: with ``labels_N`` and ``is_test_N`` (:func:`sparse_probe_accuracy`).
    """
    if acts_ND.ndim != 2 or acts_ND.shape[0] < 2:
        raise DataError(f"evaluate_sae needs an [N, D] tensor with N >= 2, got shape {tuple(acts_ND.shape)}")
    x_ND = acts_ND.to(torch.float32)
    x_hat_ND, z_NF = encode_decode(sae, x_ND, batch_size=batch_size)
    ev = explained_variance(x_ND, x_hat_ND)
    active_NF = z_NF != 0
    freq_F = active_NF.double().mean(0)
    norm_N = x_ND.norm(dim=1)
    ok = norm_N > 0
    out = {
        "explained_variance": ev,
        "fvu": 1 - ev,
        "mse": float((x_ND - x_hat_ND).double().square().mean()),
        "l0": float(active_NF.double().sum(1).mean()),
        "dead_fraction": float((freq_F == 0).double().mean()),
        "dense_fraction": float((freq_F > DENSE_THRESHOLD).double().mean()),
        "shrinkage": float((x_hat_ND.norm(dim=1)[ok] / norm_N[ok]).double().mean()),
    }
    if token_ids_N is not None:
        out["token_entropy"], out["token_entropy_norm"] = token_entropy(z_NF, torch.as_tensor(token_ids_N))
    if labels_N is not None and is_test_N is not None:
        out |= sparse_probe_accuracy(z_NF, torch.as_tensor(labels_N), torch.as_tensor(is_test_N))
    return out


# ----------------------------------------------------------------------------- splice metrics


@torch.inference_mode()
def splice_metrics(
    sae: Any,
    model: Any,
    tokens_BL: Int[torch.Tensor, "B L"],
    mask_BL: Bool[torch.Tensor, "B L"],
    hook: str,
    *,
    exclude_bos: bool = True,
    batch_size: int = 8,
    progress: bool = False,
) -> dict[str, float]:
    """Next-token loss with the SAE's reconstruction spliced in at ``hook``, against ablations.

    At every real token (``mask_BL``; position 0 left clean when ``exclude_bos``, since SAEs are trained
    without the BOS outlier) the activation at ``hook`` is replaced by sae(x) (``sae``), by zero
    (``zero``), or by the mean activation over all the spliced positions of ``tokens_BL`` (``mean``, taken
    from the clean run). CE is the mean next-token cross-entropy (nats) over predictions of real tokens.
    Keys: ``ce_clean``, ``ce_sae``, ``ce_zero``, ``ce_mean``; ``ce_recovered_zero`` =
    (ce_zero - ce_sae) / (ce_zero - ce_clean) and ``ce_recovered_mean`` likewise (1 = as good as the
    clean model, 0 = no better than ablating); ``kl_sae``, ``kl_zero``, ``kl_mean``: mean
    KL(clean || patched) per scored position (nats).

    Cost: texts are batched by length; for a hook inside block l the model runs once to block l
    (keeping block l's input residual and the hook's activations), and from block l on four times (clean,
    and the three splices as one stacked batch, via TransformerLens's ``start_at_layer``): about 2.5 full
    passes for a middle layer rather than 4.5. Hooks outside the blocks run four full passes.
    """
    from auditkit.extract import validate_hook

    validate_hook(model, hook)
    splice_BL = mask_BL.clone()
    if exclude_bos:
        splice_BL[:, 0] = False
    if not bool(splice_BL.any()):
        raise DataError("splice_metrics: no position to splice (all padding or BOS)")
    lengths_B = mask_BL.sum(1)
    order = torch.argsort(lengths_B, stable=True)
    batches = [order[lo : lo + batch_size] for lo in range(0, len(order), batch_size)]
    start = _start_layer(model, hook)
    # Pass 1: block l's input residual per batch, and the mean activation at the hook over spliced positions.
    starts, total, count = [], torch.zeros((), dtype=torch.float64), 0
    for idx in batches:
        width = int(lengths_B[idx].max())
        resid, rows = _run_to_hook(model, tokens_BL[idx, :width], splice_BL[idx, :width], hook, start)
        starts.append(resid)
        total, count = total + rows.double().sum(0), count + rows.shape[0]
    mean_D = (total / count).float()
    # Pass 2: from block l on, clean and the three splices.
    sums: dict[str, float] = {}
    n_scored = 0
    replacements = _replacements(sae, mean_D)
    for idx, resid in tqdm(list(zip(batches, starts)), desc="splice SAE", disable=not progress):
        width = int(lengths_B[idx].max())
        tok, where, m = tokens_BL[idx, :width], splice_BL[idx, :width], mask_BL[idx, :width]
        scored = m[:, 1:] & m[:, :-1]
        clean = torch.log_softmax(_run_rest(model, tok, resid, start).double(), dim=-1)
        sums["ce_clean"] = sums.get("ce_clean", 0.0) + float(_nll(clean, tok, scored).sum())
        n = tok.shape[0]
        stacked = _run_rest(
            model,
            tok.repeat(len(replacements), 1),
            None if resid is None else resid.repeat(len(replacements), 1, 1),
            start,
            fwd_hooks=[(hook, _splice_hook(list(replacements.values()), where))],
        )
        for i, arm in enumerate(replacements):
            logp = torch.log_softmax(stacked[i * n : (i + 1) * n].double(), dim=-1)
            sums[f"ce_{arm}"] = sums.get(f"ce_{arm}", 0.0) + float(_nll(logp, tok, scored).sum())
            kl = (clean.exp() * (clean - logp)).sum(-1)[:, :-1][scored]
            sums[f"kl_{arm}"] = sums.get(f"kl_{arm}", 0.0) + float(kl.sum())
        n_scored += int(scored.sum())
    if n_scored == 0:
        raise DataError("splice_metrics: no position has a next real token to score")
    out = {k: v / n_scored for k, v in sums.items()}
    for ablation in ("zero", "mean"):
        gap = out[f"ce_{ablation}"] - out["ce_clean"]
        out[f"ce_recovered_{ablation}"] = (out[f"ce_{ablation}"] - out["ce_sae"]) / gap if gap != 0 else float("nan")
    return out


def _start_layer(model: Any, hook: str) -> int | None:
    """The block a hook lives in (the run can restart at its input residual), or None outside the blocks."""
    from auditkit.extract import hook_stop_layer

    stop = hook_stop_layer(model, hook)
    if stop is None or stop < 1 or model.cfg.positional_embedding_type == "shortformer":
        return None  # shortformer models add positions inside every block: restart needs them too
    if model.tokenizer is not None and model.tokenizer.padding_side != "right":
        return None  # TransformerLens would build a padding mask from the tokens on a full pass only
    return stop - 1


def _run_to_hook(
    model: Any, tokens_BL: torch.Tensor, where_BL: torch.Tensor, hook: str, start: int | None
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Block ``start``'s input residual (None when ``start`` is None) and the hook's rows at ``where_BL``."""
    from auditkit.extract import capture_point

    got: dict[str, torch.Tensor] = {}

    def grab_rows(act: torch.Tensor, hook: Any) -> None:
        got["rows"] = _check_3d(act, hook.name)[where_BL].clone()

    def grab_resid(act: torch.Tensor, hook: Any) -> None:
        got["resid"] = act.clone()

    read, stop = capture_point(model, hook)
    if start is not None and hook == f"blocks.{start}.hook_resid_pre" and stop == start:
        # The hook is block ``start``'s input itself, read before the block runs (extract.capture_point).
        hooks = [(read, lambda act, hook: (grab_rows(act, hook), grab_resid(act, hook)))]
    else:
        hooks = [(hook, grab_rows)]
        if start is not None:
            hooks.append((f"blocks.{start}.hook_resid_pre", grab_resid))
        stop = start + 1 if start is not None else None
    with model.hooks(fwd_hooks=hooks):
        model(tokens_BL, return_type=None, stop_at_layer=stop)
    return got.get("resid"), got["rows"]


def _run_rest(
    model: Any,
    tokens_BL: torch.Tensor,
    resid_BLD: torch.Tensor | None,
    start: int | None,
    fwd_hooks: list | None = None,
) -> torch.Tensor:
    """Logits from block ``start`` on, given its input residual (or a full pass from the tokens)."""
    with model.hooks(fwd_hooks=fwd_hooks or []):
        if start is None:
            return model(tokens_BL, return_type="logits")
        return model(resid_BLD, start_at_layer=start, tokens=tokens_BL, return_type="logits")


def _nll(logp_BLV: torch.Tensor, tokens_BL: torch.Tensor, scored_BL: torch.Tensor) -> torch.Tensor:
    return -logp_BLV[:, :-1].gather(-1, tokens_BL[:, 1:, None])[..., 0][scored_BL]


def _replacements(sae: Any, mean_D: torch.Tensor) -> dict[str, Any]:
    def through_sae(x: torch.Tensor) -> torch.Tensor:
        return sae(x.to(sae.dtype)).to(x.dtype)

    return {
        "sae": through_sae,
        "zero": lambda x: torch.zeros_like(x),
        "mean": lambda x: mean_D.to(x.dtype).expand_as(x),
    }


def _check_3d(act: torch.Tensor, name: str) -> torch.Tensor:
    # Only [B, L, D] activations (resid/mlp/attn outputs); hook_z-style [B, L, H, d] is not supported.
    if act.ndim != 3:
        raise DataError(f"splice_metrics supports [batch, pos, d] hooks; {name} has shape {tuple(act.shape)}")
    return act


def _splice_hook(replaces: list[Any], where_BL: torch.Tensor) -> Any:
    """Hook for a stack of len(replaces) copies of one batch: copy i gets replaces[i] at ``where_BL``."""

    def hook_fn(act: torch.Tensor, hook: Any) -> torch.Tensor:
        _check_3d(act, hook.name)
        n = where_BL.shape[0]
        out = act.clone()
        for i, replace in enumerate(replaces):
            chunk = out[i * n : (i + 1) * n]
            chunk[where_BL] = replace(act[i * n : (i + 1) * n][where_BL])
        return out

    return hook_fn
