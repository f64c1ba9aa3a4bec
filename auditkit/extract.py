"""Activations at any TransformerLens hook, at chosen positions, plus the embedding matrices.

The forward pass runs under ``torch.inference_mode``, reads the hooks asked for (one, or many in one
pass: :func:`extract_hooks`), removes them afterwards whatever happens, and stops after the last block it
needs (``stop_at_layer``), which is where the speed over ``run_with_cache`` comes from. Rows are gathered inside the hook, so the full
[B, L, D] activations of a batch are never kept. Batches are right-padded: with causal attention a
real token never attends to padding on its right, so no attention mask is needed and padded
positions are simply never read.
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from jaxtyping import Float
from tqdm.auto import tqdm

from auditkit.cache import CacheEntry
from auditkit.errors import ConfigError, DataError, HookError
from auditkit.types import ActivationSet, TokenBatch

logger = logging.getLogger(__name__)

Positions = Literal["auto", "all", "last", "mean", "labelled"]
_BLOCK_RE = re.compile(r"^blocks\.(\d+)\.")


@dataclass(frozen=True, kw_only=True)
class ExtractConfig:
    """Which activations to read."""

    hook: str
    """TransformerLens hook name, e.g. ``blocks.15.hook_resid_pre``."""
    positions: Positions = "auto"
    """``all`` tokens, the ``last`` token, the ``mean`` over tokens, or the ``labelled`` positions of
    token-level items; ``auto`` is ``labelled`` for token-level data and ``last`` otherwise."""
    include_bos: bool = False
    """Keep the BOS position in ``all`` and ``mean`` (its activations are outliers in most models)."""
    batch_size: int = 16
    """Texts per forward pass."""
    chunk_size: int = 256
    """Texts per cache chunk: the unit a killed run resumes from."""
    dtype: str = "float32"
    """Dtype of the stored activations."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        if self.positions not in ("auto", "all", "last", "mean", "labelled"):
            raise ConfigError(f"positions {self.positions!r} unknown: use auto, all, last, mean or labelled")
        if self.batch_size < 1 or self.chunk_size < 1:
            raise ConfigError(f"batch_size and chunk_size must be >= 1, got {self.batch_size}, {self.chunk_size}")
        if self.dtype not in ("float32", "float16", "bfloat16", "float64"):
            raise ConfigError(f"activation dtype {self.dtype!r} unknown: use float32, float16, bfloat16 or float64")


class RowPlan(NamedTuple):
    """Which (example, position) every ActivationSet row comes from, and its label."""

    example_N: np.ndarray
    position_N: np.ndarray
    labels_N: np.ndarray
    is_test_N: np.ndarray
    item_N: np.ndarray
    """Index of the dataset item of every row, -1 for rows that carry no item."""


# ----------------------------------------------------------------------------- hooks


_RESID_PRE_RE = re.compile(r"^blocks\.(\d+)\.hook_resid_pre$")


def capture_point(model: Any, hook: str) -> tuple[str, int | None]:
    """The hook to read and the ``stop_at_layer`` to read it with, for the activations of ``hook``.

    ``blocks.i.hook_resid_pre`` (i >= 1) is the same tensor as ``blocks.{i-1}.hook_resid_post`` (the
    blocks run in sequence with nothing in between), which a pass stopped *before* block i still
    fires: one block fewer than stopping after block i. Every other hook is read where it is.
    """
    match = _RESID_PRE_RE.match(hook)
    if match and int(match.group(1)) >= 1:
        i = int(match.group(1))
        return f"blocks.{i - 1}.hook_resid_post", i
    return hook, hook_stop_layer(model, hook)


def hook_stop_layer(model: Any, hook: str) -> int | None:
    """The ``stop_at_layer`` that still runs ``hook``: blocks.i.* -> i + 1, embeddings -> 0."""
    match = _BLOCK_RE.match(hook)
    if match:
        return int(match.group(1)) + 1
    if hook.startswith(("hook_embed", "hook_pos_embed", "hook_tokens")):
        return 0
    return None


def validate_hook(model: Any, hook: str) -> None:
    """Raise :class:`HookError` for an unknown hook or a layer out of range, suggesting close names."""
    if hook in model.hook_dict:
        return
    match = _BLOCK_RE.match(hook)
    n_layers = model.cfg.n_layers
    if match and int(match.group(1)) >= n_layers:
        raise HookError(
            f"hook {hook!r}: layer {match.group(1)} is out of range, the model has layers 0..{n_layers - 1}"
        )
    close = difflib.get_close_matches(hook, list(model.hook_dict), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "e.g. blocks.0.hook_resid_pre"
    raise HookError(f"unknown hook {hook!r}: {hint} (`auditkit hooks MODEL` lists them)")


def resolve_positions(cfg: ExtractConfig, batch: TokenBatch) -> str:
    if cfg.positions == "auto":
        return "labelled" if batch.level == "token" else "last"
    if cfg.positions == "labelled" and batch.level != "token":
        raise ConfigError(
            f"positions 'labelled' needs token-level labels, and {batch.dataset_name!r} is sentence-level: "
            "use auto, last, mean or all"
        )
    return cfg.positions


# ----------------------------------------------------------------------------- row plan


def plan_rows(batch: TokenBatch, positions: str, include_bos: bool) -> RowPlan:
    """The rows an extraction produces, computed from the batch alone (no forward pass)."""
    lengths_B = batch.lengths_B.numpy()
    first = 1 if (batch.has_bos and not include_bos) else 0
    n_items = len(batch.labels_M)
    if positions == "labelled":
        items = np.arange(n_items)
        return RowPlan(
            batch.item_example_M.copy(),
            batch.item_position_M.copy(),
            batch.labels_M.copy(),
            batch.is_test_M.copy(),
            items,
        )
    if positions in ("last", "mean"):
        if batch.level == "token":
            raise ConfigError(f"positions {positions!r} need sentence-level labels: use labelled or all")
        pos = lengths_B[batch.item_example_M] - 1 if positions == "last" else -np.ones(n_items, np.int64)
        return RowPlan(
            batch.item_example_M.copy(),
            pos.astype(np.int64),
            batch.labels_M.copy(),
            batch.is_test_M.copy(),
            np.arange(n_items),
        )
    # all: every real token; a row carries an item's label if that item sits there (token level) or
    # the example's label (sentence level).
    ex_N = np.concatenate([np.full(max(int(n) - first, 0), b) for b, n in enumerate(lengths_B)])
    pos_N = np.concatenate([np.arange(first, int(n)) for n in lengths_B])
    item_N = -np.ones(len(ex_N), np.int64)
    lookup = {}
    if batch.level == "token":
        lookup = {(int(e), int(p)): i for i, (e, p) in enumerate(zip(batch.item_example_M, batch.item_position_M))}
        item_N = np.array([lookup.get((int(e), int(p)), -1) for e, p in zip(ex_N, pos_N)], np.int64)
    else:
        # An example's first item; an example whose copies disagree on the label carries none here
        # (one row cannot hold two labels; see auditkit.duplicates).
        by_example = -np.ones(batch.n_examples, np.int64)
        by_example[batch.item_example_M[::-1]] = np.arange(n_items)[::-1]
        agree = np.ones(batch.n_examples, bool)
        np.logical_and.at(
            agree, batch.item_example_M, batch.labels_M == batch.labels_M[by_example[batch.item_example_M]]
        )
        by_example[~agree] = -1
        item_N = by_example[ex_N]
    test_by_example = np.zeros(batch.n_examples, bool)
    test_by_example[batch.item_example_M] = batch.is_test_M
    labels_N = np.where(item_N >= 0, batch.labels_M[np.maximum(item_N, 0)], -1).astype(np.int64)
    return RowPlan(ex_N.astype(np.int64), pos_N.astype(np.int64), labels_N, test_by_example[ex_N], item_N)


# ----------------------------------------------------------------------------- forward passes


def check_vector_hook(hook: str) -> None:
    """Raise :class:`HookError` when ``hook`` names attention patterns or scores ([B, H, L, L]: no vector per token).

    Decided by the name alone, so a sweep refuses it before loading anything."""
    if "pattern" in hook or "attn_scores" in hook:
        raise HookError(f"hook {hook!r} holds attention patterns, not per-token vectors: pick a hook_z/resid hook")


def _flatten(act: torch.Tensor, hook: str) -> torch.Tensor:
    check_vector_hook(hook)
    if act.ndim < 3:
        raise HookError(f"hook {hook!r} has no per-token activations (shape {tuple(act.shape)})")
    return act.reshape(act.shape[0], act.shape[1], -1)


@torch.inference_mode()
def _forward_rows(
    model: Any,
    tokens_BL: torch.Tensor,
    hooks: list[str],
    rows_ex: np.ndarray,
    rows_pos: np.ndarray,
    mask_BL: torch.Tensor,
    mean_first: int,
) -> dict[str, torch.Tensor]:
    """Activations [R, D] of one forward batch at the given (local example, position) rows, at every hook
    of ``hooks``: one pass, stopped after the deepest block any of them needs.

    A position of -1 means the mean over the example's real tokens from ``mean_first`` on.
    """
    captured: dict[str, torch.Tensor] = {}
    ex = torch.as_tensor(rows_ex, dtype=torch.long)
    pos = torch.as_tensor(rows_pos, dtype=torch.long)

    def grabber(hook_name: str) -> Any:
        def grab(act: torch.Tensor, hook: Any) -> None:
            act_BLD = _flatten(act, hook_name)
            if bool((pos < 0).any()):
                weights_BL = mask_BL.clone().to(act_BLD.dtype)
                weights_BL[:, :mean_first] = 0
                means_BD = (act_BLD * weights_BL[..., None]).sum(1) / weights_BL.sum(1, keepdim=True).clamp_min(1)
                captured[hook_name] = means_BD[ex]
            else:
                captured[hook_name] = act_BLD[ex, pos]

        return grab

    points = [(hook, *capture_point(model, hook)) for hook in hooks]
    stops = [stop for _, _, stop in points]
    stop = None if any(s is None for s in stops) else max(stops)
    with model.hooks(fwd_hooks=[(read, grabber(hook)) for hook, read, _ in points]):
        model(tokens_BL.to(model.cfg.device), return_type=None, stop_at_layer=stop)
    return {hook: captured[hook].detach().to("cpu") for hook in hooks}


def _extract_examples(
    model: Any,
    batch: TokenBatch,
    plan: RowPlan,
    cfg: ExtractConfig,
    lo: int,
    hi: int,
    bar: Any,
    hooks: list[str] | None = None,
) -> dict[str, torch.Tensor]:
    """Rows of examples [lo, hi) at every hook (default ``cfg.hook``), in plan order, as float [R, D].

    Forward batches group texts of similar length (sorted by length within the chunk), so that a
    batch is padded to a width close to its texts' own lengths: on sentence datasets of mixed length
    this runs a fraction of the padded positions of batching in dataset order. Right padding and the
    causal mask make every real token's activations independent of its batch-mates.
    """
    hooks = hooks or [cfg.hook]
    rows_sel = np.flatnonzero((plan.example_N >= lo) & (plan.example_N < hi))
    lengths = batch.lengths_B.numpy()
    order = lo + np.argsort(lengths[lo:hi], kind="stable")
    mean_first = 1 if (batch.has_bos and not cfg.include_bos) else 0
    local = np.full(batch.n_examples, -1, np.int64)
    parts: dict[str, list[torch.Tensor]] = {hook: [] for hook in hooks}
    where = []
    for start in range(0, len(order), cfg.batch_size):
        group = order[start : start + cfg.batch_size]
        local[group] = np.arange(len(group))
        sel = rows_sel[local[plan.example_N[rows_sel]] >= 0]
        idx = torch.as_tensor(group)
        width = int(lengths[group].max())
        rows = _forward_rows(
            model,
            batch.tokens_BL[idx, :width],
            hooks,
            local[plan.example_N[sel]],
            plan.position_N[sel],
            batch.mask_BL[idx, :width],
            mean_first,
        )
        local[group] = -1
        for hook in hooks:
            parts[hook].append(rows[hook].to(getattr(torch, cfg.dtype)))
        where.append(sel)
        bar.update(int(batch.mask_BL[idx].sum()))
    if not where:
        return {hook: torch.empty(0, 0) for hook in hooks}
    # Back to plan order: the rows of every group, scattered to their places in [lo, hi).
    inverse = np.empty(len(rows_sel), np.int64)
    inverse[np.searchsorted(rows_sel, np.concatenate(where))] = np.arange(len(rows_sel))
    return {hook: torch.cat(parts[hook])[torch.as_tensor(inverse)] for hook in hooks}


def extract(
    model: Any,
    batch: TokenBatch,
    cfg: ExtractConfig,
    *,
    provenance: dict[str, Any] | None = None,
    cache: CacheEntry | None = None,
) -> ActivationSet:
    """Activations of ``batch`` at ``cfg.hook``, one row per planned position.

    With ``cache``, finished entries are loaded instead of computed, and chunks of ``cfg.chunk_size``
    texts are saved as they finish so that an interrupted run resumes where it stopped.
    """
    return extract_hooks(model, batch, cfg, [cfg.hook], provenance=provenance, caches={cfg.hook: cache})[cfg.hook]


def extract_hooks(
    model: Any,
    batch: TokenBatch,
    cfg: ExtractConfig,
    hooks: list[str],
    *,
    provenance: dict[str, Any] | None = None,
    caches: dict[str, CacheEntry | None] | None = None,
) -> dict[str, ActivationSet]:
    """Activations of ``batch`` at every hook of ``hooks`` (``cfg.hook`` is not used), one row per planned
    position: one forward pass per text batch reads all of them and stops after the deepest block any
    needs. Each hook has its own cache entry (``caches``): finished entries are loaded, and only the
    hooks without one are computed, so adding a layer later computes only that layer.
    """
    if not hooks or len(set(hooks)) != len(hooks):
        raise ConfigError(f"hooks {hooks} must be a non-empty list of distinct hook names")
    for hook in hooks:
        validate_hook(model, hook)
    positions = resolve_positions(cfg, batch)
    plan = plan_rows(batch, positions, cfg.include_bos)
    if len(plan.example_N) == 0:
        raise DataError("no rows to extract: the dataset is empty after tokenisation")
    caches = caches or {}
    acts: dict[str, torch.Tensor] = {}
    todo = []
    for hook in hooks:
        entry = caches.get(hook)
        done = entry.load() if entry is not None else None
        if done is not None:
            acts[hook] = done["acts"]
            logger.info("loaded %d cached activation rows from %s", acts[hook].shape[0], entry.path)
        else:
            todo.append(hook)
    if todo:
        acts.update(_extract_chunks(model, batch, plan, cfg, {hook: caches.get(hook) for hook in todo}))
    out = {}
    for hook in hooks:
        if acts[hook].shape[0] != len(plan.example_N):
            raise DataError(f"extracted {acts[hook].shape[0]} rows at {hook} but planned {len(plan.example_N)}")
        check_finite(acts[hook], hook)
        out[hook] = _activation_set(batch, plan, acts[hook], hook, positions, provenance or {})
    return out


def _extract_chunks(
    model: Any, batch: TokenBatch, plan: RowPlan, cfg: ExtractConfig, caches: dict[str, CacheEntry | None]
) -> dict[str, torch.Tensor]:
    hooks = list(caches)
    chunks: dict[str, list[torch.Tensor]] = {hook: [] for hook in hooks}
    where = []
    desc = f"extract {hooks[0]}" if len(hooks) == 1 else f"extract {len(hooks)} hooks"
    with tqdm(total=batch.n_tokens, unit="tok", desc=desc, disable=not cfg.progress, leave=False) as bar:
        for index, lo in enumerate(range(0, batch.n_examples, cfg.chunk_size)):
            hi = min(lo + cfg.chunk_size, batch.n_examples)
            where.append(np.flatnonzero((plan.example_N >= lo) & (plan.example_N < hi)))
            missing = []
            for hook in hooks:
                saved = caches[hook].load_chunk(index) if caches[hook] is not None else None
                if saved is None:
                    missing.append(hook)
                else:
                    chunks[hook].append(saved["acts"])
            if not missing:
                bar.update(int(batch.mask_BL[lo:hi].sum()))
                continue
            computed = _extract_examples(model, batch, plan, cfg, lo, hi, bar, hooks=missing)
            for hook in missing:
                check_finite(computed[hook], hook)  # before caching: a NaN chunk must never be stored
                if caches[hook] is not None:
                    caches[hook].save_chunk(index, {"acts": computed[hook]})
                chunks[hook].append(computed[hook])
    # A chunk holds the rows of its examples in plan order; rows of one example need not be adjacent in
    # the plan (a repeated text's copies sit where the source had them), so scatter, never concatenate.
    out = {}
    for hook in hooks:
        filled = [(c, w) for c, w in zip(chunks[hook], where) if c.numel()]
        acts_ND = torch.empty((len(plan.example_N), filled[0][0].shape[1]), dtype=filled[0][0].dtype)
        for c, w in filled:
            acts_ND[torch.as_tensor(w)] = c
        if caches[hook] is not None:
            caches[hook].finish({"acts": acts_ND})
        out[hook] = acts_ND
    return out


def cache_request(provenance: Any, batch: TokenBatch, cfg: ExtractConfig) -> dict[str, Any]:
    """Everything that determines the extracted rows, for :class:`CacheEntry` keys."""
    return {
        "model": provenance.cache_token(),
        "hook": cfg.hook,
        "positions": resolve_positions(cfg, batch),
        "include_bos": cfg.include_bos,
        "dtype": cfg.dtype,
        "chunk_size": cfg.chunk_size,
        "dataset": batch.dataset_fingerprint,
        "tokens": batch.variant,
        "n_examples": batch.n_examples,
    }


def check_finite(acts_ND: Float[torch.Tensor, "N D"], hook: str) -> None:
    """Raise :class:`DataError` when activations hold NaN or infinity."""
    bad = ~torch.isfinite(acts_ND)
    if bool(bad.any()):
        rows = int(bad.any(dim=1).sum())
        raise DataError(
            f"activations at {hook!r} contain NaN/inf in {rows} rows: use dtype float32 or check the model weights"
        )


def _activation_set(
    batch: TokenBatch,
    plan: RowPlan,
    acts_ND: torch.Tensor,
    hook: str,
    positions: str,
    provenance: dict[str, Any],
) -> ActivationSet:
    pos = np.maximum(plan.position_N, 0)
    token_ids = batch.tokens_BL[plan.example_N, pos].numpy().astype(np.int64)
    token_ids = np.where(plan.position_N >= 0, token_ids, -1)
    groups = None
    if batch.groups_M is not None:
        groups = tuple(batch.groups_M[i] if i >= 0 else "" for i in plan.item_N)
    return ActivationSet(
        acts_ND=acts_ND,
        labels_N=plan.labels_N,
        token_ids_N=token_ids,
        example_ids_N=plan.example_N,
        positions_N=plan.position_N,
        is_test_N=plan.is_test_N,
        hook=hook,
        positions=positions,
        class_names=batch.class_names,
        groups_N=groups,
        provenance={
            **provenance,
            "dataset": batch.dataset_name,
            "dataset_fingerprint": batch.dataset_fingerprint,
            "tokens": batch.variant,
        },
    )


# ----------------------------------------------------------------------------- embedding matrices


class EmbeddingMatrices(NamedTuple):
    """The model's token and position embeddings and unembedding, detached copies."""

    W_E_VD: torch.Tensor
    W_U_DV: torch.Tensor
    W_pos_LD: torch.Tensor | None
    """None for rotary or other architectures without a learned position table."""


def embedding_matrices(model: Any) -> EmbeddingMatrices:
    """W_E [V, D], W_U [D, V] and W_pos [n_ctx, D] (where the architecture has one)."""
    w_pos = None
    if model.cfg.positional_embedding_type in ("standard", "shortformer"):
        w_pos = model.W_pos.detach().clone()
    return EmbeddingMatrices(model.W_E.detach().clone(), model.W_U.detach().clone(), w_pos)
