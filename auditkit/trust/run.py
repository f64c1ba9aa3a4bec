"""The trust table: one row per dataset, from its texts and labels alone (no model).

Per dataset: rows, distinct texts, copies, texts with conflicting labels and the majority share, counted on the
whole source (:mod:`auditkit.duplicates`: identical texts are one example); then, on at most ``max_texts``
distinct texts (a subsample stratified by class, :func:`auditkit.data.labelled.stratified_subsample`), the
held-out accuracy of each text-only baseline (:mod:`auditkit.methods.text_baselines`) over the audit's seeds
and splits (:func:`auditkit.data.split_items`: whole texts to one side, stratified by label), with the
audit's interval rule (:data:`INTERVAL`); finally the flag (:mod:`auditkit.trust.flags`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

from auditkit.cache import request_key
from auditkit.data import list_sae_probes, load_sae_probes, split_items
from auditkit.data.labelled import stratified_subsample
from auditkit.data.sae_probes import resolve_sae_probes
from auditkit.errors import ConfigError
from auditkit.methods.text_baselines import BASELINES, LEXICAL_C, baseline_correct
from auditkit.metrics.lexical import LEXICAL_FLOOR, LEXICAL_SHARE
from auditkit.seeding import derive_seed
from auditkit.trust.flags import BROKEN_CONFLICT_SHARE, FLAGS, KNOWN_FAULTS, LEAKY_COPY_SHARE, FlagInput, flag
from auditkit.types import LabelledDataset

INTERVAL = (
    "95% interval: mean accuracy over the seeds +/- t(seeds - 1) x the larger of the between-seed standard error "
    "and the sampling standard error of one seed's held-out texts, sqrt(mean_s a_s(1 - a_s) / n_s / seeds) (the "
    "audit's own rule); the unit is a held-out text of one seed's split"
)
"""How every accuracy interval in the table is made, stated in the report."""


@dataclass(frozen=True, kw_only=True)
class TrustConfig:
    """One trust table: which datasets, how many texts each, and the audit's seeds, split and probe C."""

    tasks: tuple[str, ...] = ()
    """sae-probes tags or names to cover; empty means every shipped classification task."""
    max_texts: int = 5000
    """Distinct texts per dataset the baselines fit on at most (a stratified subsample above it); the counts
    (rows, copies, conflicts, balance) are always of the whole dataset."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds of the splits, as an audit's."""
    test_fraction: float = 0.25
    """Share of distinct texts held out, as an audit's."""
    probe_C: float = LEXICAL_C
    """Inverse L2 strength of the baselines' logistic regression: the audit's lexical arms' (never a probe's C)."""
    progress: bool = True
    """Show a progress bar over datasets."""

    def __post_init__(self) -> None:
        if self.max_texts < 20:
            raise ConfigError(f"max_texts must be at least 20, got {self.max_texts}: e.g. --max-texts 5000")
        if len(self.seeds) < 2 or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds {self.seeds} must be at least two distinct seeds for an interval")
        if not 0 < self.test_fraction < 1:
            raise ConfigError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        if not self.probe_C > 0:
            raise ConfigError(f"probe_C must be above 0, got {self.probe_C}")


@dataclass(frozen=True, kw_only=True)
class TrustResult:
    """The table (one row per dataset, :data:`COLUMNS`), the config and the seconds each dataset took."""

    config: TrustConfig
    table: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)


COLUMNS = (
    "dataset",
    "kind",
    "classes",
    "rows",
    "distinct_texts",
    "copies",
    "conflicting_texts",
    "majority",
    "texts_used",
    "bow_acc",
    "bow_low",
    "bow_high",
    "length_acc",
    "length_low",
    "length_high",
    "known_fault",
    "flag",
    "reasons",
)
"""The columns of the table and of datasets.csv."""

_PREFIX = {"bag-of-words": "bow", "length": "length"}


def resolve_tasks(cfg: TrustConfig) -> list[tuple[str, str]]:
    """(tag, kind) of every dataset ``cfg`` covers, in the suite's order; an unknown tag raises before any
    dataset is read."""
    table = list_sae_probes("classification")
    if not cfg.tasks:
        return list(zip(table["tag"], table["kind"]))
    rows = [resolve_sae_probes(t) for t in cfg.tasks]
    for r in rows:
        if r["kind"] not in ("binary", "multiclass"):
            raise ConfigError(
                f"sae-probes dataset {r['tag']!r} has a {r['kind']} target: the trust table covers "
                "classification tasks; `auditkit datasets` lists them"
            )
    return list(dict.fromkeys((r["tag"], r["kind"]) for r in rows))


def counts(ds: LabelledDataset) -> dict[str, int | float]:
    """Rows, distinct texts, copies, texts with conflicting labels and majority share of a dataset loaded with
    the ``group`` policy (every row kept as an item of its text)."""
    dup = ds.duplicates
    rows = int(dup.get("source_texts", ds.n_items))
    distinct = len(ds.texts)
    majority = float(np.bincount(ds.labels_M).max() / ds.n_items)
    return dict(
        rows=rows,
        distinct_texts=distinct,
        copies=rows - distinct,
        conflicting_texts=int(dup.get("label_conflicts", 0)),
        majority=majority,
    )


def cap_texts(ds: LabelledDataset, max_texts: int, seed: int) -> LabelledDataset:
    """``ds`` on at most ``max_texts`` distinct texts, stratified by each text's first label; every item of a
    kept text stays."""
    if len(ds.texts) <= max_texts:
        return ds
    present, first = np.unique(ds.item_example_M, return_index=True)
    chosen = present[stratified_subsample(ds.labels_M[first], max_texts, seed)]
    keep = np.isin(ds.item_example_M, chosen)
    used, example_M = np.unique(ds.item_example_M[keep], return_inverse=True)
    return dataclasses.replace(
        ds, texts=tuple(ds.texts[e] for e in used), labels_M=ds.labels_M[keep], item_example_M=example_M
    )


def accuracy_interval(correct_by_seed: Sequence[np.ndarray]) -> tuple[float, float, float]:
    """(mean, low, high) of the held-out accuracy over seeds, by :data:`INTERVAL`."""
    acc = np.array([c.mean() for c in correct_by_seed])
    n_seeds = len(acc)
    mean = float(acc.mean())
    se_seeds = float(acc.std(ddof=1)) / math.sqrt(n_seeds)
    var_seed = np.mean([a * (1 - a) / len(c) for a, c in zip(acc, correct_by_seed)])
    se = max(se_seeds, math.sqrt(float(var_seed) / n_seeds))
    half = float(stats.t.ppf(0.975, n_seeds - 1)) * se
    return mean, max(mean - half, 0.0), min(mean + half, 1.0)


def baseline_scores(ds: LabelledDataset, cfg: TrustConfig) -> dict[str, float]:
    """Each baseline's mean held-out accuracy and interval on ``ds``, keyed ``bow_acc``, ``bow_low``, ..."""
    item_texts = [ds.texts[e] for e in ds.item_example_M]
    correct: dict[str, list[np.ndarray]] = {b: [] for b in BASELINES}
    for seed in cfg.seeds:
        is_test = split_items(ds, seed=seed, test_fraction=cfg.test_fraction)
        for name in BASELINES:
            correct[name].append(baseline_correct(name, item_texts, ds.labels_M, is_test, C=cfg.probe_C, seed=seed))
    out: dict[str, float] = {}
    for name in BASELINES:
        p = _PREFIX[name]
        out[f"{p}_acc"], out[f"{p}_low"], out[f"{p}_high"] = accuracy_interval(correct[name])
    return out


def dataset_row(ds: LabelledDataset, cfg: TrustConfig, *, kind: str = "") -> dict[str, object]:
    """The table's row of one dataset (loaded whole, with the ``group`` duplicates policy)."""
    row: dict[str, object] = dict(dataset=ds.name, kind=kind, classes=ds.n_classes, **counts(ds))
    used = cap_texts(ds, cfg.max_texts, derive_seed(0, "trust-subsample", ds.name))
    row["texts_used"] = len(used.texts)
    row.update(baseline_scores(used, cfg))
    fault = KNOWN_FAULTS.get(ds.name)
    row["known_fault"] = fault.note if fault else ""
    word, reasons = flag(
        FlagInput(
            name=ds.name,
            rows=int(row["rows"]),
            copies=int(row["copies"]),
            distinct_texts=int(row["distinct_texts"]),
            conflicting_texts=int(row["conflicting_texts"]),
            majority=float(row["majority"]),
            best_baseline=max(float(row["bow_acc"]), float(row["length_acc"])),
        )
    )
    row["flag"], row["reasons"] = word, "; ".join(reasons)
    return row


def run_trust(cfg: TrustConfig, *, load: Callable[[str], LabelledDataset] | None = None) -> TrustResult:
    """The trust table of every dataset ``cfg`` covers. ``load`` reads one tag (default: the shipped sae-probes
    dataset, whole, every copy kept)."""
    tasks = resolve_tasks(cfg)
    load = load or (lambda tag: load_sae_probes(tag, duplicates="group"))
    rows, timings = [], {}
    for tag, kind in tqdm(tasks, desc="datasets", unit="dataset", disable=not cfg.progress):
        start = time.perf_counter()
        rows.append(dataset_row(load(tag), cfg, kind=kind))
        timings[tag] = time.perf_counter() - start
    return TrustResult(config=cfg, table=pd.DataFrame(rows, columns=list(COLUMNS)), timings=timings)


TRUST_KINDS = ("binary", "multiclass")
"""The sae-probes kinds the trust table covers (classification)."""


def sae_probes_trust(tag: str, cfg: TrustConfig | None = None, *, cache_root: Path | None = None) -> dict | None:
    """One shipped sae-probes task's row of the trust table (``auditkit datasets --audit``, same config by default,
    so the same numbers as ``reports/datasets``): flag, reasons, and the baselines' accuracies; None for a task
    the table does not cover (a continuous target). An audit and a sweep put the flag atop their reports.

    With ``cache_root`` the row is kept under ``trust/`` there, keyed by the task's content, the config and the
    flag rules, so the cells of a sweep (one audit per hook) compute it once."""
    listing = resolve_sae_probes(tag)
    if listing["kind"] not in TRUST_KINDS:
        return None
    cfg = cfg or TrustConfig(progress=False)
    ds = load_sae_probes(tag, duplicates="group")
    rules = dict(
        flags=FLAGS, conflict=BROKEN_CONFLICT_SHARE, copies=LEAKY_COPY_SHARE, lexical=(LEXICAL_SHARE, LEXICAL_FLOOR)
    )
    key = request_key(dict(kind="trust", data=ds.fingerprint, config=dataclasses.asdict(cfg), rules=repr(rules)))
    path = Path(cache_root) / "trust" / f"{key}.json" if cache_root is not None else None
    if path is not None and path.is_file():
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            pass  # unreadable: recomputed and rewritten
    row = dataset_row(ds, cfg, kind=str(listing["kind"]))
    kept = ("dataset", "flag", "reasons", "bow_acc", "length_acc", "majority")
    out = {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in row.items() if k in kept}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as tmp:
            tmp.write(json.dumps(out))
        os.replace(tmp.name, path)
    return out
