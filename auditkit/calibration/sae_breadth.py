"""SAE evaluation on the embedded model, with controls: the field's SAE metrics at two training budgets, each
against every SAE baseline, and sparse probing across the shipped binary tasks.

One hook of one model (default: the embedded model's middle block, the breadth sweep's hook). For every seed and
every training budget (default 49,152 and 983,040 tokens, the SAE audit's budget and 20 times it):

- **the corpus**: texts pooled from every shipped sae-probes dataset (binary, multiclass and continuous targets
  alike: labels unused), minus every text a probing task reads, shuffled with a fixed seed, every position but
  BOS (:func:`pooled_corpus`, sized to ``max(budgets) + eval_tokens`` tokens by the tokenizer's count); its first
  ``max(budgets)`` rows train, and the rows of every text after them are held out (:func:`held_out_rows`: fewer
  than ``eval_tokens`` when the audit's tokenisation merges texts or counts fewer tokens than the estimate).
  A budget of B tokens trains on the corpus's first B rows, each seen once, so a larger budget is more data, not
  more epochs over the same rows;
- **the SAE** (:func:`auditkit.methods.sae.train.train_sae`, the audit's TopK SAE: F = 1,152, k = 32; batch 256),
  one per seed (its initialisation and batch order), and each SAE baseline of the audit built from it
  (:func:`auditkit.methods.sae.baselines.baseline_sae`: untrained, frozen, soft-frozen and frozen-encoder SAEs
  trained on the same rows, budget and seed; PCA and identity codes at its k). Trained SAEs are kept in the cache
  (``sae-evals/``, keyed by everything that made them and checked on read), so a stopped run resumes;
- **reconstruction metrics** on the held-out rows (:func:`auditkit.methods.sae.metrics.evaluate_sae`: explained
  variance and its ratio to PCA's, L0, dead and dense fractions, shrinkage, token entropy) and **splice metrics**
  on ``splice_texts`` held-out texts (CE recovered, KL), method ``sae-<budget>``;
- **sparse probing** (the sae-probes protocol): on every task's last-token activations (the audit's rows and
  per-seed splits, read from the activation cache the breadth sweep filled), a logistic probe on the top-k latents
  ranked by class-mean difference (:func:`auditkit.methods.sae.metrics.sparse_probe_records`, k = 1, 5, 20) of
  the SAE and of each baseline, and of the activations themselves (``neuron-basis``: the top-k neurons;
  ``pca-basis``: the top-k principal components of the corpus) and a ``dense-probe`` on every neuron.

Every comparison is :func:`auditkit.metrics.selectivity_table`'s paired interval and verdict; the unit of
replication is the seed (SAE initialisation and batch order, and the task's split), with the test texts'
sampling floor where the metric is a mean over held-out texts (probe accuracies). Probing tests get
Benjamini-Hochberg q-values over every (task, control) of one metric and budget. Orchestration only: the maths
is in ``methods/`` and ``metrics/``, the rendering in ``report/sae_breadth.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from auditkit.audit.options import SAE_BASELINES
from auditkit.errors import AuditkitError, ConfigError
from auditkit.metrics import selectivity_table
from auditkit.metrics.evidence import add_q_values, evidence_columns
from auditkit.seeding import derive_seed, numpy_rng
from auditkit.types import REAL, ActivationSet

logger = logging.getLogger(__name__)

PROBE_KS = (1, 5, 20)
"""Latent budgets of the k-sparse probes (the SAE audit's)."""
BASES = ("neuron-basis", "pca-basis", "dense-probe")
"""Probing controls read from the activations themselves: the top-k neurons, the top-k principal components (of
the corpus), and a logistic probe on every neuron (compared with every k)."""
RECONSTRUCTION = (
    "explained_variance",
    "ev_over_pca",
    "l0",
    "dead_fraction",
    "dense_fraction",
    "shrinkage",
    "token_entropy_norm",
    "ce_loss_recovered",
    "kl",
)
"""The reconstruction and splice metrics reported per budget (the SAE audit's definitions)."""
DIRECTIONS = {"l0": 0, "dead_fraction": -1, "dense_fraction": -1, "shrinkage": 0, "token_entropy_norm": -1, "kl": -1}
"""Metrics where higher is not better (0: no better direction)."""
CEILINGS = {
    "explained_variance": 1.0,
    "ce_loss_recovered": 1.0,
    **{f"{mean}probe_acc_k{k}": 1.0 for k in PROBE_KS for mean in ("", "mean_")},
}
FIXED_BY_CONSTRUCTION = tuple((m, c) for m in ("dead_fraction", "dense_fraction") for c in ("pca", "identity"))
"""As in the SAE audit: a fixed basis's dead and dense fractions are set by how it is built (no verdict)."""
CORPUS_BATCH = 64
"""Corpus texts per forward pass (short texts: four times the audit's batch; not part of the cache key)."""
CORPUS_SEED = 0
"""Seed of the corpus's text order (fixed: the corpus is an input, not a replicate)."""


@dataclass(frozen=True, kw_only=True)
class SAEBreadthConfig:
    """What the embedded SAE evaluation trains and scores."""

    model: str = "smollm2-135m"
    """Model name (``auditkit models``)."""
    hook: str | None = None
    """Hook; None: the residual stream entering the middle block (the breadth sweep's)."""
    tasks: tuple[str, ...] | None = None
    """sae-probes binary tasks probed (tags); None: every shipped binary task."""
    max_examples: int = 500
    """Texts per task (the breadth sweep's, so its cached activations are read)."""
    max_length: int = 64
    """Tokens per text, BOS included (tasks and corpus)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds: each trains its own SAEs (initialisation, batch order) and splits each task its own way."""
    budgets: tuple[int, ...] = (49_152, 983_040)
    """Training budgets in tokens (distinct corpus rows, each seen once)."""
    eval_tokens: int = 32_768
    """Corpus tokens beyond the largest budget (the held-out rows the reconstruction metrics are measured on; the
    rows actually held out are counted after tokenisation and stated in the report)."""
    splice_texts: int = 8
    """Held-out corpus texts the splice metrics (CE recovered, KL) run on."""
    width: int = 1152
    """SAE width F (the SAE audit's 2x of d_model 576)."""
    k: int = 32
    """Active latents per token of the TopK SAE."""
    batch_size: int = 256
    """Rows per optimiser step, fixed across budgets (the SAE audit's is 128: twice the steps, twice the CPU time
    at 983k tokens)."""
    lr: float = 1e-3
    """Adam learning rate."""
    baselines: tuple[str, ...] = tuple(SAE_BASELINES)
    """SAE baselines (every one by default)."""
    test_fraction: float = 0.25
    """Held-out share of each task's texts."""
    threshold: float = 0.05
    """Smallest mean difference a *selective* verdict needs."""
    cache_dir: Path | None = None
    """Cache root (activations and trained SAEs); None: auditkit's default."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self) -> None:
        for bad, why in [
            (not self.seeds or len(set(self.seeds)) != len(self.seeds), f"seeds {self.seeds}: give distinct seeds"),
            (len(self.seeds) < 2, "give at least two seeds: the interval needs a spread between seeds"),
            (not self.budgets or min(self.budgets) < self.batch_size, f"budgets {self.budgets} must be >= batch size"),
            (len(set(self.budgets)) != len(self.budgets), f"budgets {self.budgets} repeat"),
            (any(b not in SAE_BASELINES for b in self.baselines), f"baselines: use some of {', '.join(SAE_BASELINES)}"),
            (self.tasks is not None and len(self.tasks) == 0, "tasks: give at least one task"),
            (self.eval_tokens < 2 or self.splice_texts < 1, "eval_tokens must be >= 2 and splice_texts >= 1"),
            (self.max_examples < 8 or self.max_length < 4, "max_examples must be >= 8 and max_length >= 4"),
        ]:
            if bad:
                raise ConfigError(f"sae-evals: {why}")
        self.sae_config(self.budgets[0])  # validates width, k, lr, batch size (one ConfigError naming the value)

    def sae_config(self, budget: int) -> Any:
        from auditkit.methods.sae.train import SAEConfig

        return SAEConfig(
            architecture="topk", width=self.width, k=self.k, lr=self.lr, training_tokens=budget,
            batch_size=self.batch_size, progress=False,
        )  # fmt: skip


@dataclass
class SAEBreadthResult:
    """Tidy rows, selectivity tables and what the run measured about itself."""

    config: SAEBreadthConfig
    rows: pd.DataFrame
    """budget, method, control, seed, metric, value: reconstruction rows (method ``sae``) and probing rows
    (method: the task's tag)."""
    selectivity: pd.DataFrame
    """One row per (budget, method, control, metric): :func:`selectivity_table` with evidence columns and, for the
    probing rows, ``q_value``."""
    info: dict[str, Any] = field(default_factory=dict)


def budget_label(budget: int) -> str:
    """``49k``, ``983k``: a budget as the reports name it."""
    return f"{budget // 1000}k" if budget >= 1000 else str(budget)


def probe_tasks(cfg: SAEBreadthConfig) -> list[str]:
    """The probed tasks: ``cfg.tasks`` (checked) or every shipped binary task."""
    from auditkit.data.sae_probes import list_sae_probes

    binary = list(list_sae_probes("binary")["tag"])
    if cfg.tasks is None:
        return binary
    unknown = [t for t in cfg.tasks if t not in binary]
    if unknown:
        raise ConfigError(
            f"sae-evals: tasks {unknown} are not shipped binary sae-probes tasks: see `auditkit datasets`"
        )
    return list(cfg.tasks)


def task_config(cfg: SAEBreadthConfig, tag: str) -> Any:
    """The audit config whose real arm a task's probes read: the breadth sweep's cell for ``tag`` (same data,
    tokens, hook and positions, hence the same activation-cache entry)."""
    from auditkit.audit.config import AuditConfig
    from auditkit.models import ModelSpec

    return AuditConfig(
        model=ModelSpec(name=cfg.model, cache_dir=cfg.cache_dir),
        dataset=f"sae-probes:{tag}",
        max_examples=cfg.max_examples,
        max_length=cfg.max_length,
        hook=cfg.hook,
        controls=("shuffled-labels",),  # a label control: no extraction beyond the real arm's (dropped below)
        seeds=cfg.seeds,
        test_fraction=cfg.test_fraction,
        progress=False,
    )


def task_arms(cfg: SAEBreadthConfig, loaded: Any, tag: str) -> tuple[Any, list[ActivationSet]]:
    """A task's prepared audit and its real arm's activations per seed (with that seed's split)."""
    from auditkit.audit.arms import build_arms
    from auditkit.audit.run import prepare_audit

    prep = prepare_audit(task_config(cfg, tag), loaded, {})
    arms = build_arms(dataclasses.replace(prep.plan, controls=()), {})
    return prep, [a.acts for a in arms if a.control == REAL]


def pooled_corpus(cfg: SAEBreadthConfig, tokenizer: Any, exclude: set[str]) -> tuple[Any, dict[str, Any]]:
    """The SAE corpus: distinct texts of every shipped sae-probes dataset minus ``exclude``, in a fixed shuffled
    order, cut once its tokens (BOS excluded, ``max_length`` each) cover the largest budget and the held-out rows;
    an unlabelled dataset (labels unused)."""
    from auditkit.data.labelled import finish
    from auditkit.data.sae_probes import _sae_probes_table
    from auditkit.data.tables import read_frame

    texts: set[str] = set()
    for file in _sae_probes_table()["file"]:
        frame = read_frame(Path(file))
        texts.update(t for t in map(str, frame["prompt"].dropna()) if t.strip())
    pool = sorted(texts - exclude)
    order = numpy_rng(derive_seed(CORPUS_SEED, "sae-evals-corpus")).permutation(len(pool))
    need = max(cfg.budgets) + cfg.eval_tokens
    chosen, total = [], 0
    for i in order:
        n = min(len(tokenizer(pool[i], add_special_tokens=False)["input_ids"]), cfg.max_length - 1)
        if n == 0:
            continue
        chosen.append(pool[i])
        total += n
        if total >= need + cfg.max_length:  # the last texts' truncation never leaves the corpus short
            break
    if total < need:
        raise ConfigError(f"sae-evals: the pooled corpus has {total} tokens, fewer than {need}: lower --budgets")
    ds = finish(
        labelled=False,
        name="sae-probes:pooled-corpus",
        texts=tuple(chosen),
        labels_M=np.zeros(len(chosen), dtype=np.int64),
        item_example_M=np.arange(len(chosen), dtype=np.int64),
        class_names=("text",),
        source="sae-probes package: every shipped dataset's prompts, pooled",
    )
    return ds, dict(distinct_texts=len(texts), excluded=len(texts & exclude), texts=len(chosen), tokens=total)


def corpus_acts(cfg: SAEBreadthConfig, loaded: Any, ds: Any, hook: str) -> tuple[ActivationSet, Any]:
    """Every non-BOS position of the corpus at ``hook`` (through the activation cache), and its tokens."""
    from auditkit.cache import CacheEntry
    from auditkit.data import tokenize
    from auditkit.extract import ExtractConfig, cache_request, extract
    from auditkit.models import default_cache_dir

    model = loaded.model
    batch = tokenize(
        ds, model.tokenizer, prepend_bos=loaded.provenance.prepend_bos, bos_token_id=model.tokenizer.bos_token_id,
        max_length=cfg.max_length,
    )  # fmt: skip
    ecfg = ExtractConfig(
        hook=hook, positions="all", include_bos=False, batch_size=CORPUS_BATCH, progress=cfg.progress
    )  # fmt: skip
    entry = CacheEntry(cfg.cache_dir or default_cache_dir(), cache_request(loaded.provenance, batch, ecfg))
    return extract(model, batch, ecfg, provenance=loaded.provenance.to_dict(), cache=entry), batch


class SAEStore:
    """Trained SAEs (and trained baselines) under ``<cache>/sae-evals/<key>``: the key hashes every input that made
    one (corpus rows, config, seed, kind); the inputs are saved beside it and compared on read, so an SAE is never
    read back for other inputs."""

    def __init__(self, root: Path, corpus_fingerprint: str) -> None:
        self.root, self.corpus = Path(root) / "sae-evals", corpus_fingerprint

    def get(self, kind: str, budget: int, seed: int, make: Any, cfg: Any) -> Any:
        from auditkit.methods.sae import load_sae
        from auditkit.methods.sae.io import save_sae

        request = dict(
            format=1, corpus=self.corpus, kind=kind, budget=budget, seed=seed,
            config={k: v for k, v in cfg.to_dict().items() if k not in ("device", "progress")},
        )  # fmt: skip
        key = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:32]
        folder = self.root / key
        try:
            if json.loads((folder / "request.json").read_text()) == request:
                if json.loads((folder / "files.json").read_text()) == _file_hashes(folder / "sae"):
                    return load_sae(str(folder / "sae"))
                logger.warning("saved SAE %s does not match its recorded checksums: training it again", folder)
        except (OSError, ValueError, AuditkitError) as exc:  # absent, or damaged: recompute it
            if folder.exists():
                logger.warning("saved SAE %s unreadable (%s): training it again", folder, exc)
        sae = make()
        tmp = self.root / f"{key}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_sae(sae, tmp / "sae")
        (tmp / "request.json").write_text(json.dumps(request, sort_keys=True))
        (tmp / "files.json").write_text(json.dumps(_file_hashes(tmp / "sae")))
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
        return sae


def held_out_rows(example_ids_N: np.ndarray, n_train: int, minimum: int) -> np.ndarray:
    """The held-out rows of the corpus: every row of a text that starts after the last training row's text (rows
    of the text the training rows end in are neither, so no text is on both sides). Raises when fewer than
    ``minimum`` rows remain."""
    ex = np.asarray(example_ids_N)
    if np.any(np.diff(ex) < 0):
        raise RuntimeError("corpus rows are not in text order")
    if n_train > len(ex):
        raise ConfigError(f"sae-evals: the corpus has {len(ex)} rows, fewer than the largest budget {n_train}")
    keep = ex > ex[n_train - 1]
    if int(keep.sum()) < minimum:
        raise ConfigError(
            f"sae-evals: {int(keep.sum())} corpus rows are left after the largest budget's {n_train}, fewer than "
            f"{minimum}: raise --eval-tokens"
        )
    return keep


def _file_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file of a saved SAE, by name."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _dictionaries(
    cfg: SAEBreadthConfig, store: SAEStore, train_ND: torch.Tensor, budget: int, seed: int, seconds: dict[str, float]
) -> dict[str, Any]:
    """The seed's trained SAE at ``budget`` (control ``none``) and each of its baselines."""
    from auditkit.methods.sae.baselines import baseline_sae
    from auditkit.methods.sae.train import train_sae

    sae_cfg = cfg.sae_config(budget)
    rows = train_ND[:budget]
    sae_seed = derive_seed(seed, "sae")
    t = time.perf_counter()
    trained = store.get("trained", budget, seed, lambda: train_sae(rows, sae_cfg, seed=sae_seed), sae_cfg)
    seconds[f"train sae {budget_label(budget)}"] += time.perf_counter() - t
    out = {REAL: trained}
    for control in cfg.baselines:
        kind = SAE_BASELINES[control]
        t = time.perf_counter()

        def make(kind: str = kind) -> Any:
            return baseline_sae(kind, rows, sae_cfg, seed=sae_seed, trained=trained)

        trains = kind in ("frozen-decoder", "soft-frozen-decoder", "frozen-encoder")
        out[control] = store.get(kind, budget, seed, make, sae_cfg) if trains else make()
        seconds[f"baseline {control} {budget_label(budget)}"] += time.perf_counter() - t
    return out


def _reconstruction_rows(
    saes: dict[str, Any], test_ND: torch.Tensor, tokens_N: torch.Tensor, reference: dict[str, float], splice: Any
) -> list[dict[str, Any]]:
    from auditkit.methods.sae.baselines import relative_ev
    from auditkit.methods.sae.metrics import evaluate_sae

    rows = []
    for control, sae in saes.items():
        metrics = evaluate_sae(sae, test_ND, token_ids_N=tokens_N)
        metrics |= relative_ev(metrics["explained_variance"], reference)
        metrics |= splice(sae)
        rows += [dict(control=control, metric=m, value=float(metrics[m])) for m in RECONSTRUCTION]
    return rows


def _probe_rows(saes: dict[str, Any], acts: ActivationSet, pca_DD: torch.Tensor, mean_D: torch.Tensor) -> list[dict]:
    """k-sparse probing of one task and seed: the SAE's and each baseline's latents, the neuron and PCA bases, and
    the dense probe (one accuracy, paired with every k)."""
    from auditkit.methods.sae.metrics import encode_decode, sparse_probe_records

    x = acts.acts_ND.float()
    labels, test = torch.as_tensor(acts.labels_N), torch.as_tensor(acts.is_test_N)
    clusters = acts.example_ids_N

    def records(z: torch.Tensor, ks: tuple[int, ...] = PROBE_KS) -> list[dict[str, Any]]:
        return sparse_probe_records(z, labels, test, ks=ks, clusters_N=clusters)

    rows = []
    for control, sae in saes.items():
        rows += [dict(control=control, **r) for r in records(encode_decode(sae, x)[1])]
    rows += [dict(control="neuron-basis", **r) for r in records(x)]
    rows += [dict(control="pca-basis", **r) for r in records((x - mean_D) @ pca_DD)]
    dense = records(x, ks=(x.shape[1],))[0]
    rows += [dict(control="dense-probe", **{**dense, "metric": f"probe_acc_k{k}"}) for k in PROBE_KS]
    return rows


def _mean_over_tasks(probed: list[dict[str, Any]], budget: int, seed: int) -> list[dict[str, Any]]:
    """``mean_probe_acc_k{k}`` (method ``sae``): each arm's accuracy averaged over the tasks, one value per seed, so
    the headline matrix reads sparse probing at breadth on the same footing as the reconstruction metrics (tasks
    are fixed; the interval is the spread between seeds)."""
    frame = pd.DataFrame([{k: r[k] for k in ("control", "metric", "value")} for r in probed])
    means = frame.groupby(["control", "metric"], sort=False)["value"].mean()
    return [
        dict(budget=budget, method="sae", seed=seed, control=c, metric=f"mean_{m}", value=float(v))
        for (c, m), v in means.items()
    ]


def _splicer(loaded: Any, batch: Any, examples: np.ndarray, hook: str) -> Any:
    from auditkit.methods.sae.metrics import splice_metrics

    idx = torch.as_tensor(examples)
    mask_BL = batch.mask_BL[idx]
    width = int(mask_BL.sum(1).max())
    tokens_BL = batch.tokens_BL[idx, :width]

    def splice(sae: Any) -> dict[str, float]:
        s = splice_metrics(sae, loaded.model, tokens_BL, mask_BL[:, :width], hook, exclude_bos=batch.has_bos)
        return dict(ce_loss_recovered=s["ce_recovered_zero"], kl=s["kl_sae"])

    return splice


def breadth_selectivity(table: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """One row per (budget, method, control, metric) of ``table``: the interval, verdict and evidence columns;
    probing rows also get Benjamini-Hochberg q-values, one family per (metric, budget) over every task and
    control. Reconstruction rows (method ``sae``) carry no per-text outcome: their interval is the spread
    between seeds."""
    parts = []
    for (budget, probing), part in table.groupby(["budget", table["method"] != "sae"], sort=False):
        part = part.drop(columns="budget")
        if not probing:
            part = part.drop(columns=[c for c in ("outcome", "degenerate") if c in part.columns])
        s = selectivity_table(
            part, threshold=threshold, directions=DIRECTIONS, ceilings=CEILINGS, descriptive=FIXED_BY_CONSTRUCTION
        )
        s = evidence_columns(s, threshold=threshold).assign(budget=budget)
        if probing:
            s = add_q_values(s, by="metric")
        parts.append(s)
    return pd.concat(parts, ignore_index=True)


def run_sae_breadth(cfg: SAEBreadthConfig) -> SAEBreadthResult:
    """Everything of the module docstring; see :class:`SAEBreadthResult`."""
    from auditkit.models import ModelSpec, default_cache_dir, default_hook, load_model

    t0 = time.perf_counter()
    seconds: dict[str, float] = defaultdict(float)
    tags = probe_tasks(cfg)
    loaded = load_model(ModelSpec(name=cfg.model, cache_dir=cfg.cache_dir))
    hook = cfg.hook or default_hook(loaded.model.cfg.n_layers)
    cfg = dataclasses.replace(cfg, hook=hook)

    t = time.perf_counter()
    preps = {tag: task_arms(cfg, loaded, tag) for tag in tqdm(tags, desc="tasks", disable=not cfg.progress)}
    exclude = {text for prep, _ in preps.values() for text in prep.dataset.texts}
    seconds["task activations"] += time.perf_counter() - t
    t = time.perf_counter()
    corpus, corpus_info = pooled_corpus(cfg, loaded.model.tokenizer, exclude)
    acts, batch = corpus_acts(cfg, loaded, corpus, hook)
    seconds["corpus activations"] += time.perf_counter() - t
    n = acts.acts_ND.shape[0]
    train_ND, is_eval_N = (
        acts.acts_ND[: max(cfg.budgets)],
        held_out_rows(acts.example_ids_N, max(cfg.budgets), minimum=max(2, cfg.eval_tokens // 4)),
    )
    test_ND = acts.acts_ND[torch.as_tensor(is_eval_N)]
    tokens_N = torch.as_tensor(acts.token_ids_N[is_eval_N])
    held_out = np.unique(acts.example_ids_N[is_eval_N])[: cfg.splice_texts]
    splice = _splicer(loaded, batch, held_out, hook)
    store = SAEStore(cfg.cache_dir or default_cache_dir(), corpus.fingerprint)

    from auditkit.methods.sae.baselines import pca_sae, reference_ev

    pca = pca_sae(train_ND, width=2 * train_ND.shape[1], k=1)  # every principal direction, by variance
    pca_DD, mean_D = pca.W_dec[: train_ND.shape[1]].T.detach().clone(), pca.b_dec.detach().clone()
    del pca
    rows: list[dict[str, Any]] = []
    bar = tqdm(total=len(cfg.budgets) * len(cfg.seeds), desc="sae-evals", disable=not cfg.progress)
    for budget in cfg.budgets:
        reference = reference_ev(train_ND[:budget], test_ND, width=cfg.width, k=cfg.k)
        for seed in cfg.seeds:
            saes = _dictionaries(cfg, store, train_ND, budget, seed, seconds)
            t = time.perf_counter()
            for r in _reconstruction_rows(saes, test_ND, tokens_N, reference, splice):
                rows.append(dict(budget=budget, method="sae", seed=seed, **r))
            seconds["reconstruction and splice"] += time.perf_counter() - t
            t = time.perf_counter()
            probed = []
            for tag, (_, per_seed) in preps.items():
                for r in _probe_rows(saes, per_seed[cfg.seeds.index(seed)], pca_DD, mean_D):
                    probed.append(dict(budget=budget, method=tag, seed=seed, **r))
            rows += probed + _mean_over_tasks(probed, budget, seed)
            seconds["sparse probing"] += time.perf_counter() - t
            bar.update()
    bar.close()
    table = pd.DataFrame(rows)
    selectivity = breadth_selectivity(table, cfg.threshold)
    seconds["total"] = time.perf_counter() - t0
    info = dict(
        hook=hook,
        tasks=tags,
        corpus=corpus_info,
        corpus_fingerprint=corpus.fingerprint[:16],
        corpus_rows=int(n),
        held_out_rows=int(is_eval_N.sum()),
        held_out_texts=int(np.unique(acts.example_ids_N[is_eval_N]).size),
        provenance=loaded.provenance.to_dict(),
        seconds=dict(seconds),
        torch_threads=torch.get_num_threads(),
        controls=[*cfg.baselines, *BASES],
    )
    out_rows = table.drop(columns=[c for c in ("outcome",) if c in table.columns])
    return SAEBreadthResult(config=cfg, rows=out_rows, selectivity=selectivity, info=info)
