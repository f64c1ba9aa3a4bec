"""Lexical baselines as arms of the probe method: what the texts alone give, on the audit's own splits.

Each lexical control (:mod:`auditkit.controls.registry`, stage ``lexical``) is a text-only probe
(:mod:`auditkit.methods.text_baselines`): no forward pass, no activations. For every seed it is fitted on the
real arm's training rows and scored on that seed's held-out rows (the split of
:func:`auditkit.audit.arms.split_for_seed`), one row per labelled row of the real arm, clustered by example as
the probe's rows are; so :func:`auditkit.metrics.selectivity.selectivity_table` pairs it with the real arm by seed
and gives its verdict an interval with the same sampling floor as any control's. A ✓ against one reads "selective
over lexical": the probe reads more than the words, the length or the read position's token.

What a lexical arm reads of each row: ``lexical-bow`` and ``lexical-length`` the row's text as the model read it
(its tokens decoded, so a text cut at ``max_length`` is cut here too); ``lexical-last-token`` the id of the token at
the row's position (rows pooled over positions, ``--positions mean``, have none: it is skipped there).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from auditkit.controls import registry
from auditkit.methods.text_baselines import LEXICAL_C, LEXICAL_C_GRID, PROBA
from auditkit.metrics.classification import classification_records
from auditkit.types import ActivationSet, TokenBatch


def row_texts(batch: TokenBatch, tokenizer: Any) -> list[str]:
    """The text of every batch row as the model read it: its real tokens (BOS left out) decoded."""
    start = 1 if batch.has_bos else 0
    return [tokenizer.decode(row[mask][start:].tolist()) for row, mask in zip(batch.tokens_BL, batch.mask_BL)]


def applies(control: str, acts: ActivationSet) -> str | None:
    """Why lexical control ``control`` cannot read ``acts`` (None when it can)."""
    if registry.get(control).variant == "last-token" and bool((acts.token_ids_N < 0).any()):
        return f"rows pooled over positions ({acts.positions}) sit on no single token"
    return None


def _features(control: str, acts: ActivationSet, texts_B: Sequence[str]) -> list[Any]:
    """What baseline ``control`` reads of every row of ``acts``: its example's text, or its token id."""
    if registry.get(control).variant == "last-token":
        return acts.token_ids_N.tolist()
    return [texts_B[e] for e in acts.example_ids_N]


def arm_records(
    control: str,
    acts: ActivationSet,
    texts_B: Sequence[str],
    n_classes: int,
    seed: int,
    degenerate: bool,
    choose_C: bool = False,
) -> list[dict[str, Any]]:
    """Tidy-row fields (metric, value, outcome, degenerate) of lexical control ``control`` on one seed's labelled
    real arm ``acts``: fitted on its training rows at :data:`~auditkit.methods.text_baselines.LEXICAL_C` (or, with
    ``choose_C``, at the C its training texts' folds choose among
    :data:`~auditkit.methods.text_baselines.LEXICAL_C_GRID`), scored on its held-out rows clustered by example."""
    features = _features(control, acts, texts_B)
    test = acts.is_test_N
    train_x = [f for f, t in zip(features, test) if not t]
    test_x = [f for f, t in zip(features, test) if t]
    proba = PROBA[registry.get(control).variant](
        train_x,
        acts.labels_N[~test],
        test_x,
        n_classes=n_classes,
        C=LEXICAL_C,
        seed=seed,
        C_grid=LEXICAL_C_GRID if choose_C else (),
        groups=acts.example_ids_N[~test],
    )
    return classification_records(
        torch.as_tensor(acts.labels_N[test]),
        torch.as_tensor(proba, dtype=torch.float64),
        acts.example_ids_N[test],
        degenerate=degenerate,
    )


def lexical_rows(
    real: Sequence[tuple[int, ActivationSet, bool]],
    controls: Sequence[str],
    methods: Sequence[str],
    texts_B: Sequence[str],
    *,
    n_classes: int,
    choose_C: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows of every lexical control in ``controls`` for every seed: ``real`` holds each seed's labelled real arm
    and whether it is degenerate (one training class). A baseline is fitted once per seed and its rows repeated
    under each of ``methods`` (the probe kinds: each pairs with its own real arm). A baseline's C is its own, never
    the probes' (:data:`~auditkit.methods.text_baselines.LEXICAL_C`); with ``choose_C`` (the probes choose theirs) it
    chooses among :data:`~auditkit.methods.text_baselines.LEXICAL_C_GRID` by the same folds. Also the method info:
    C, seconds per control, and the controls skipped with why."""
    rows: list[dict[str, Any]] = []
    info: dict[str, Any] = {"C": LEXICAL_C, "seconds": {}, "skipped": {}, "reads": "texts as the model read them"}
    if choose_C:
        info["C_grid"] = list(LEXICAL_C_GRID)
    for control in (c for c in controls if registry.stage_of(c) == "lexical"):
        why = applies(control, real[0][1])
        if why is not None:
            info["skipped"][control] = why
            continue
        t = time.perf_counter()
        for seed, acts, degenerate in real:
            records = arm_records(control, acts, texts_B, n_classes, seed, degenerate, choose_C)
            rows += [dict(method=m, control=control, seed=seed, draw=0, **r) for m in methods for r in records]
        info["seconds"][control] = round(time.perf_counter() - t, 3)
    return rows, info
