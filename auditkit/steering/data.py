"""Concepts for steering: texts, one binary label column per concept, splits, label tokens.

A K-class dataset contributes K concepts (class k one-vs-rest); a binary dataset contributes one (its
positive class). Several datasets can be combined: a text is then labelled (0/1) for its own
dataset's concepts and unlabelled (-1) for the others', and each probe trains only on rows labelled
for its concept. Splits are by text, stratified within each dataset, one per seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from auditkit.data import load_sae_probes
from auditkit.errors import ConfigError, DataError
from auditkit.seeding import derive_seed
from auditkit.splits import split_examples


@dataclass(frozen=True, kw_only=True)
class Concepts:
    """Texts and their concept labels."""

    names: tuple[str, ...]
    """Name of every concept (C), ``dataset:class``."""
    texts: tuple[str, ...]
    """Every text (T), already put through the template."""
    labels_TC: np.ndarray
    """int64 [T, C]: 1 concept present, 0 absent, -1 text not labelled for this concept."""
    label_words: tuple[str | None, ...]
    """Per concept, the class name as a word whose next-token log-odds are measured (None: no such word)."""
    is_test_ST: np.ndarray
    """bool [S, T] test membership of every text under every seed."""
    sources: tuple[dict[str, Any], ...]
    """Per dataset: name, fingerprint, texts, class names."""


def load_concepts(
    datasets: tuple[str, ...],
    *,
    template: str,
    max_examples: int | None,
    seeds: tuple[int, ...],
    test_fraction: float,
) -> Concepts:
    """Load sae-probes datasets by tag and lay their classes out as concepts."""
    names, texts, label_blocks, words, splits, sources = [], [], [], [], [], []
    for tag in datasets:
        # One label per text: copies of a text are one example, and texts whose copies disagree are
        # dropped (a concept label must be one value per text; see auditkit.duplicates).
        ds = load_sae_probes(tag.removeprefix("sae-probes:"), max_examples=max_examples, seed=0, duplicates="dedupe")
        classes = range(ds.n_classes) if ds.n_classes > 2 else (1,)
        block = np.stack([(ds.labels_M == k).astype(np.int64) for k in classes], 1)
        label_blocks.append((len(texts), block))
        names += [f"{ds.name.removeprefix('sae-probes:')}:{ds.class_names[k]}" for k in classes]
        words += [ds.class_names[k].replace("_", " ") if ds.n_classes > 2 else None for k in classes]
        splits.append(
            [
                split_examples(
                    ds.item_example_M,
                    ds.labels_M,
                    seed=derive_seed(s, "steering-split", ds.name),
                    test_fraction=test_fraction,
                )
                for s in seeds
            ]
        )
        texts += [template.format(text=t) for t in ds.texts]
        sources.append(
            dict(
                name=ds.name,
                fingerprint=ds.fingerprint,
                texts=len(ds.texts),
                classes=list(ds.class_names),
                duplicates=ds.duplicates,
            )
        )
    labels = -np.ones((len(texts), len(names)), dtype=np.int64)
    col = 0
    for start, block in label_blocks:
        labels[start : start + len(block), col : col + block.shape[1]] = block
        col += block.shape[1]
    if len(names) < 2:
        raise ConfigError(
            f"datasets {datasets} give {len(names)} concept; a dual basis needs two or more: add a binary "
            "dataset or use a multiclass one (e.g. 17_world_country)"
        )
    return Concepts(
        names=tuple(names),
        texts=tuple(texts),
        labels_TC=labels,
        label_words=tuple(words),
        is_test_ST=np.concatenate(splits, axis=1),
        sources=tuple(sources),
    )


def label_token_ids(words: tuple[str | None, ...], tokenizer: Any) -> tuple[int | None, ...]:
    """First token of " word" for every concept; None where absent or shared with another concept
    (e.g. " United" for both United_Kingdom and United_States), since its log-odds would not be specific."""
    ids = [tokenizer.encode(" " + w, add_special_tokens=False)[0] if w else None for w in words]
    return tuple(i if i is not None and ids.count(i) == 1 else None for i in ids)


def tokenize_texts(
    texts: tuple[str, ...], tokenizer: Any, *, bos_token_id: int | None, max_length: int
) -> tuple[torch.Tensor, np.ndarray]:
    """int64 [T, L] token ids (BOS first when given, right-padded, cut to ``max_length``) and lengths [T]."""
    if max_length < 2:
        raise ConfigError(f"max_length must be >= 2, got {max_length}")
    head = [bos_token_id] if bos_token_id is not None else []
    ids = [(head + row)[:max_length] for row in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]
    lengths = np.array([len(r) for r in ids], dtype=np.int64)
    if (lengths < 1).any():
        raise DataError("a text tokenises to zero tokens and no BOS is prepended: remove empty texts")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (bos_token_id or 0)
    out = torch.full((len(ids), int(lengths.max())), int(pad), dtype=torch.long)
    for i, row in enumerate(ids):
        out[i, : len(row)] = torch.as_tensor(row)
    return out, lengths
