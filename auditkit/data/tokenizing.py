"""Tokenise a :class:`LabelledDataset` into a :class:`TokenBatch`: labels aligned to token positions,
splits by example, repeated model inputs merged."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
from typing import Any, Literal

import numpy as np
import torch
from jaxtyping import Bool

from auditkit.duplicates import (
    merge_identical_rows,
)
from auditkit.errors import ConfigError, DataError
from auditkit.seeding import derive_seed
from auditkit.splits import split_examples
from auditkit.types import LabelledDataset, TokenBatch

logger = logging.getLogger(__name__)


def split_items(
    ds: LabelledDataset, *, seed: int, test_fraction: float = 0.25, example_M: np.ndarray | None = None
) -> Bool[np.ndarray, " M"]:
    """bool [M] test membership: whole examples go to one side, so no text leaks across the split.

    Sentence-level data is stratified by label; token-level items of one text have many labels, so
    their texts are split unstratified. Same rule and sub-seed as the audit's own split of activations.
    ``example_M`` overrides the items' examples (texts merged after tokenising).
    """
    strata = ds.labels_M if ds.level == "sentence" else np.zeros(ds.n_items, dtype=np.int64)
    example_M = ds.item_example_M if example_M is None else example_M
    return split_examples(example_M, strata, seed=derive_seed(seed, "split"), test_fraction=test_fraction)


def _align_items(offsets_BT, ds: LabelledDataset, keep: int, shift: int, align: str) -> np.ndarray:
    """int64 [M] token position of each item's first/last overlapping sub-token, -1 if truncated away.

    A token overlaps a word span [s, e) when tok_start < e and tok_end > s, which also catches BPE
    tokens carrying a leading space (' cat' at 3..7 overlaps 'cat' at 4..7); empty tokens never do.
    """
    positions = np.full(ds.n_items, -1, dtype=np.int64)
    for b in np.unique(ds.item_example_M):
        idx = np.flatnonzero(ds.item_example_M == b)
        tok = np.asarray(offsets_BT[b], dtype=np.int64).reshape(-1, 2)
        if tok.shape[0] == 0:
            continue
        span = ds.item_span_M2[idx]
        hit = (tok[None, :, 0] < span[:, 1:2]) & (tok[None, :, 1] > span[:, 0:1])
        hit &= (tok[:, 1] > tok[:, 0])[None, :]
        pos = hit.argmax(1) if align == "first" else tok.shape[0] - 1 - hit[:, ::-1].argmax(1)
        # one token past the limit was tokenised, so a word cut mid-way lands at >= keep here too
        ok = hit.any(1) & (pos < keep)
        positions[idx[ok]] = pos[ok] + shift
    return positions


def tokenize(
    ds: LabelledDataset,
    tokenizer: Any,
    *,
    prepend_bos: bool,
    bos_token_id: int | None,
    max_length: int = 256,
    align: Literal["first", "last"] = "first",
    split_seed: int = 0,
    test_fraction: float = 0.25,
) -> TokenBatch:
    """Tokenise ``ds`` with a Hugging Face fast tokenizer, right-padded, BOS added by hand.

    Texts longer than ``max_length`` tokens keep their first tokens; ``n_truncated`` of the batch counts them.
    """
    shift = int(prepend_bos)
    keep = max_length - shift
    for bad, why in [
        (align not in ("first", "last"), f"align must be 'first' or 'last', got {align!r}"),
        (prepend_bos and bos_token_id is None, "prepend_bos=True needs a bos_token_id; pass one or prepend_bos=False"),
        (keep < 1, f"max_length={max_length} leaves no room for text tokens"),
        (not getattr(tokenizer, "is_fast", False), "tokenize needs a fast tokenizer (it reads character offsets)"),
    ]:
        if bad:
            raise ConfigError(why)
    # one token beyond the limit, so _align_items can tell a word cut mid-way from one that fits
    encode = functools.partial(
        tokenizer, add_special_tokens=False, return_offsets_mapping=True, truncation=True, max_length=keep + 1
    )
    # The tokenizer reads a whole text before truncating it (a 20 MB row took 56 s and 5.5 GB), so each text
    # is first cut to a character budget. No token spans more characters than the longest vocabulary entry
    # (a byte-level entry spells one character per byte: 128 for GPT-2, 81 for SmolLM2), so keep + 2 such
    # entries hold the keep + 1 tokens read here with one token to spare. (Only a single word longer than the
    # spare token, cut mid-way, may be split by BPE differently from the whole word: a truncation either way.)
    budget = (keep + 2) * max(map(len, tokenizer.get_vocab()), default=1)
    enc = encode([text[:budget] for text in ds.texts])
    # A cut text that gives no more than keep tokens lost characters the tokenizer would have used (one whose
    # normaliser drops characters): tokenise it whole, so that the cut never changes the tokens kept.
    if redo := [i for i, text in enumerate(ds.texts) if len(text) > budget and len(enc["input_ids"][i]) <= keep]:
        whole = encode([ds.texts[i] for i in redo])
        for j, i in enumerate(redo):
            enc["input_ids"][i], enc["offset_mapping"][i] = whole["input_ids"][j], whole["offset_mapping"][j]
    ids = [row[:keep] for row in enc["input_ids"]]
    if not prepend_bos and (empty := [i for i, row in enumerate(ids) if not row]):
        raise DataError(
            f"dataset {ds.name!r}: text {empty[0]} ({ds.texts[empty[0]]!r}) tokenises to zero "
            f"tokens ({len(empty)} such texts) and no BOS is prepended; remove them or set prepend_bos"
        )
    if n_cut := sum(len(row) > keep for row in enc["input_ids"]):  # exact: a cut text was re-read if it came short
        logger.info("%s: %d of %d texts truncated to %d tokens", ds.name, n_cut, len(ids), max_length)
    # Texts that tokenise to the same ids (equal once cut to max_length, say) are one model input:
    # one example for every split (see auditkit.duplicates).
    kept_rows, row_example = merge_identical_rows(ids)
    example_M = row_example[ds.item_example_M]
    if n_merged := len(ids) - len(kept_rows):
        logger.info("%s: %d texts have the same token ids as another and join its example", ds.name, n_merged)
    is_test = split_items(ds, seed=split_seed, test_fraction=test_fraction, example_M=example_M)
    if ds.level == "token":
        positions = _align_items(enc["offset_mapping"], ds, keep, shift, align)
        kept = positions >= 0
        if n_lost := int((~kept).sum()):
            logger.info("%s: dropped %d of %d items truncated away", ds.name, n_lost, ds.n_items)
        if not kept.any() or is_test[kept].all() or not is_test[kept].any():
            raise DataError(f"dataset {ds.name!r}: too few items survive max_length={max_length}")
    else:
        positions, kept = np.full(ds.n_items, -1, dtype=np.int64), np.ones(ds.n_items, bool)
    bos = bos_token_id if prepend_bos else None
    ids = [ids[b] for b in kept_rows]
    batch = _batch(ds, tokenizer, ids, bos, positions, kept, is_test, example_M, f"{max_length}|{align}")
    return dataclasses.replace(batch, n_truncated=n_cut)


def _batch(
    ds: LabelledDataset,
    tokenizer: Any,
    ids: list[list[int]],
    bos: int | None,
    positions: np.ndarray,
    kept: np.ndarray,
    is_test: np.ndarray,
    example_M: np.ndarray,
    settings: str,
) -> TokenBatch:
    """Pad the rows on the right, keep the surviving items, and key the batch for caches."""
    pad = next((p for p in (tokenizer.pad_token_id, tokenizer.eos_token_id) if p is not None), 0)
    rows = [([bos] if bos is not None else []) + list(row) for row in ids]
    width = max(map(len, rows))
    tokens_BL = torch.full((len(rows), width), int(pad), dtype=torch.int64)
    mask_BL = torch.zeros((len(rows), width), dtype=torch.bool)
    for b, row in enumerate(rows):
        tokens_BL[b, : len(row)] = torch.tensor(row, dtype=torch.int64)
        mask_BL[b, : len(row)] = True
    special = set(tokenizer.all_special_ids) | ({bos} if bos is not None else set())
    tok_id = f"{tokenizer.name_or_path}|{len(tokenizer)}|{settings}|{bos is not None}|{bos}"
    return TokenBatch(
        tokens_BL=tokens_BL,
        mask_BL=mask_BL,
        labels_M=ds.labels_M[kept],
        item_example_M=example_M[kept],
        item_position_M=positions[kept],
        merged_examples=len(ds.texts) - len(rows),
        is_test_M=is_test[kept],
        class_names=ds.class_names,
        level=ds.level,
        pad_token_id=int(pad),
        has_bos=bos is not None,
        special_token_ids=tuple(sorted(int(s) for s in special)),
        groups_M=None if ds.groups_M is None else tuple(np.asarray(ds.groups_M, dtype=object)[kept]),
        dataset_fingerprint=hashlib.sha256(f"{ds.fingerprint}|{tok_id}".encode()).hexdigest(),
        dataset_name=ds.name,
    )
