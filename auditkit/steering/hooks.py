"""Forward passes that read, and forward passes that write: a vector added at a residual-stream hook.

Every pass runs under ``torch.inference_mode`` with TransformerLens hooks held by ``model.hooks``
(removed whatever happens). A steered pass never recomputes the clean prefix: the residual stream
entering block ``layer`` is computed once per text (:func:`prefix_residual`) and every intervention
restarts from it (``start_at_layer``), adding its vector at the steering hook, which fires inside block
``layer`` or later. Texts are right-padded, so with causal attention no real token sees padding and
no attention mask is needed (as in :mod:`auditkit.extract`).

Rows: T texts (a text's tokens, BOS first), R intervention rows (a text and a vector each).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from jaxtyping import Float, Int

from auditkit.errors import HookError
from auditkit.extract import validate_hook

_RESID = re.compile(r"^blocks\.(\d+)\.hook_resid_(pre|mid|post)$")
_SUB = {"pre": 0, "mid": 1, "post": 2}


def residual_site(model: Any, hook: str) -> tuple[int, int]:
    """(layer, 0/1/2 for resid_pre/mid/post) of a residual-stream hook; :class:`HookError` otherwise.

    Steering vectors are added to the residual stream, the one place every later layer reads from.
    """
    validate_hook(model, hook)
    match = _RESID.match(hook)
    if match is None:
        raise HookError(f"hook {hook!r} is not a residual-stream hook: steer at blocks.L.hook_resid_pre, _mid or _post")
    return int(match.group(1)), _SUB[match.group(2)]


@dataclass(frozen=True, kw_only=True)
class Site:
    """Where a vector is written and where its effect is read again."""

    hook: str
    """Residual hook the vector is added at (the readers of the same layer read here too)."""
    later_hook: str
    """A residual hook after ``hook``, where a second set of readers measures the downstream effect."""
    positions: Literal["all", "last"]
    """Add the vector at every non-BOS token, or only at the last (labelled) token."""
    has_bos: bool
    """Whether position 0 is a BOS token (never steered)."""

    def layer(self, model: Any) -> int:
        return residual_site(model, self.hook)[0]

    def validate(self, model: Any) -> None:
        if residual_site(model, self.later_hook) <= residual_site(model, self.hook):
            raise HookError(f"later hook {self.later_hook!r} must come after the steering hook {self.hook!r}")


def _chunks(lengths_R: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Row indices in chunks of similar length (sorted), so padding costs little."""
    order = np.argsort(lengths_R, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@torch.inference_mode()
def prefix_residual(
    model: Any, tokens_TL: Int[torch.Tensor, "T L"], lengths_T: np.ndarray, layer: int, batch_size: int
) -> Float[torch.Tensor, "T L D"]:
    """The clean residual stream entering block ``layer`` at every position of every text."""
    out = torch.zeros(*tokens_TL.shape, model.cfg.d_model)
    for idx in _chunks(lengths_T, batch_size):
        width = int(lengths_T[idx].max())
        resid = model(tokens_TL[idx, :width].to(model.cfg.device), stop_at_layer=layer)
        out[torch.as_tensor(idx), :width] = resid.float().cpu()
    return out


class ReadRows(NamedTuple):
    """Activations at the last token of every text, at each hook read, and the mean activation norm."""

    last_TD: dict[str, torch.Tensor]
    """hook -> float32 [T, D]."""
    mean_norm: float
    """Mean L2 norm at the first hook over the positions a vector would be added at."""


@torch.inference_mode()
def read_last(model: Any, tokens_TL: torch.Tensor, lengths_T: np.ndarray, site: Site, batch_size: int) -> ReadRows:
    """One pass per chunk reading ``site.hook`` and ``site.later_hook`` at each text's last token."""
    hooks = (site.hook, site.later_hook)
    out = {h: torch.zeros(len(lengths_T), model.cfg.d_model) for h in hooks}
    norm_sum, norm_n = 0.0, 0
    stop = residual_site(model, site.later_hook)[0] + 1
    for idx in _chunks(lengths_T, batch_size):
        width = int(lengths_T[idx].max())
        last_B = torch.as_tensor(lengths_T[idx] - 1)
        where_BL = steer_mask(lengths_T[idx], width, site)
        got: dict[str, torch.Tensor] = {}

        # grab runs inside this iteration's forward pass only, so reading the loop's variables is intended.
        def grab(act: torch.Tensor, hook: Any) -> None:
            got[hook.name] = act[torch.arange(len(idx)), last_B].float().cpu()  # noqa: B023
            if hook.name == site.hook:
                got["norms"] = act.float().norm(dim=-1)[where_BL].cpu()  # noqa: B023

        with model.hooks(fwd_hooks=[(h, grab) for h in hooks]):
            model(tokens_TL[idx, :width].to(model.cfg.device), return_type=None, stop_at_layer=stop)
        for h in hooks:
            out[h][torch.as_tensor(idx)] = got[h]
        norm_sum, norm_n = norm_sum + float(got["norms"].double().sum()), norm_n + int(got["norms"].numel())
    return ReadRows(out, norm_sum / max(norm_n, 1))


def steer_mask(lengths_B: np.ndarray, width: int, site: Site) -> torch.Tensor:
    """bool [B, width]: the positions a vector is added at (every real non-BOS token, or the last)."""
    pos_L = torch.arange(width)[None]
    length_B1 = torch.as_tensor(lengths_B)[:, None]
    if site.positions == "last":
        return pos_L == length_B1 - 1
    return (pos_L < length_B1) & (pos_L >= int(site.has_bos))


class SteeredRows(NamedTuple):
    """What one steered (or clean, delta = 0) pass gives for every row."""

    later_RD: torch.Tensor
    """float32 [R, D] activations at the later hook, last token."""
    logprob_last_RV: torch.Tensor | None
    """float32 [R, V] next-token log-probabilities at the last token (only when ``keep_logprobs``)."""
    kl_R: torch.Tensor
    """float64 [R] KL(clean || steered) of the next-token distribution at the last token (NaN without clean)."""
    label_lp_RK: torch.Tensor
    """float64 [R, K] log-probabilities of the label tokens at the last token."""
    ce_R: torch.Tensor
    """float64 [R] mean next-token cross-entropy over the text's real tokens (nats)."""


@torch.inference_mode()
def steered_rows(
    model: Any,
    site: Site,
    resid_TLD: torch.Tensor,
    tokens_TL: torch.Tensor,
    lengths_T: np.ndarray,
    text_R: np.ndarray,
    delta_RD: Float[torch.Tensor, "R D"],
    *,
    clean_lp_TV: torch.Tensor | None = None,
    label_ids: tuple[int, ...] = (),
    keep_logprobs: bool = False,
    text_ce: bool = False,
    batch_size: int = 32,
) -> SteeredRows:
    """Rerun every row's text from its cached prefix with ``delta_RD[r]`` added at ``site.hook``.

    Logits are computed at the last token only, unless ``text_ce`` asks for the whole text's
    cross-entropy (the unembedding is the costliest matmul of a small model's pass).
    """
    R, layer = len(text_R), site.layer(model)
    later = torch.zeros(R, model.cfg.d_model)
    kl, ce = torch.full((R,), float("nan"), dtype=torch.float64), torch.full((R,), float("nan"), dtype=torch.float64)
    labels = torch.zeros(R, len(label_ids), dtype=torch.float64)
    kept = torch.zeros(R, model.cfg.d_vocab) if keep_logprobs else None
    for idx in _chunks(lengths_T[text_R], batch_size):
        texts, rows = torch.as_tensor(text_R[idx]), torch.as_tensor(idx)
        last_B = torch.as_tensor(lengths_T[text_R[idx]] - 1)
        width = int(last_B.max()) + 1
        add_BLD = delta_RD[rows].float()[:, None, :] * steer_mask(lengths_T[text_R[idx]], width, site)[..., None]
        later[rows], final_BLD = _run_from(model, site, layer, resid_TLD[texts, :width], add_BLD, last_B)
        lp_last_BV = _unembed(model, final_BLD[torch.arange(len(idx)), last_B]).log_softmax(-1)
        if text_ce:
            lp_BLV = _unembed(model, final_BLD).log_softmax(-1)
            ce[rows] = _text_ce(lp_BLV, tokens_TL[texts, :width], lengths_T[text_R[idx]])
        if label_ids:
            labels[rows] = lp_last_BV[:, list(label_ids)].double()
        if clean_lp_TV is not None:
            clean = clean_lp_TV[texts].double()
            kl[rows] = (clean.exp() * (clean - lp_last_BV.double())).sum(-1)
        if kept is not None:
            kept[rows] = lp_last_BV
    return SteeredRows(later, kept, kl, labels, ce)


def _run_from(
    model: Any, site: Site, layer: int, resid_BLD: torch.Tensor, add_BLD: torch.Tensor, last_B: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One hooked pass from block ``layer``: the later-hook activations at the last token [B, D] and the
    last block's output residual stream [B, L, D] (the unembedding is left to :func:`_unembed`)."""
    got: dict[str, torch.Tensor] = {}

    def write(act: torch.Tensor, hook: Any) -> torch.Tensor:
        return act + add_BLD.to(act.device, act.dtype)

    def grab(act: torch.Tensor, hook: Any) -> None:
        got["later"] = act[torch.arange(len(last_B)), last_B].float().cpu()

    def grab_final(act: torch.Tensor, hook: Any) -> None:
        got["final"] = act

    final_hook = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
    hooks = [(site.hook, write), (site.later_hook, grab), (final_hook, grab_final)]
    with model.hooks(fwd_hooks=hooks):
        model(resid_BLD.to(model.cfg.device, model.cfg.dtype), start_at_layer=layer, return_type=None)
    return got["later"], got["final"]


def _unembed(model: Any, final_ND: torch.Tensor) -> torch.Tensor:
    """Logits (float32, CPU) from the last block's output residual stream, as the model's forward pass
    computes them: final norm, unembedding, and an output soft-cap where the architecture has one."""
    x = final_ND[:, None] if final_ND.ndim == 2 else final_ND
    logits = model.unembed(model.ln_final(x) if model.cfg.normalization_type is not None else x)
    cap = getattr(model.cfg, "output_logits_soft_cap", -1.0) or -1.0
    if cap > 0:
        logits = cap * torch.tanh(logits / cap)
    logits = logits.float().cpu()
    return logits[:, 0] if final_ND.ndim == 2 else logits


def _text_ce(lp_BLV: torch.Tensor, tokens_BL: torch.Tensor, lengths_B: np.ndarray) -> torch.Tensor:
    """Mean cross-entropy of predicting tokens 1..n-1 of each text from the positions before them."""
    nll_BL = -lp_BLV[:, :-1].gather(-1, tokens_BL[:, 1:, None])[..., 0].double()
    valid_BL = torch.arange(nll_BL.shape[1])[None] < torch.as_tensor(lengths_B - 1)[:, None]
    return (nll_BL * valid_BL).sum(1) / valid_BL.sum(1).clamp_min(1)
