"""The audit's ``sae`` method: one SAE per arm and seed, same hyper-parameters, budget and init seed.

Orchestration only; the maths is in :mod:`auditkit.methods.sae`. Every arm comes from the audit's own
arm machinery (:func:`auditkit.audit.arms.build_arms`) at *all* token positions of the audit's texts: the real
model on the real texts, the real model on each seed's random tokens, each seed's reinitialised model on
the real texts. Per arm and seed the SAE trains on the seed's training texts and is scored on its held-out
texts: reconstruction and sparsity on held-out tokens, CE loss and KL with the SAE spliced into that arm's
own model, latent token entropy, and k-sparse probing of the audit's labels at its labelled positions. Each arm's
explained variance is also read against the PCA and identity codes of *its own* activations at its SAE's k
(``ev_over_pca``, ``ev_over_identity``), so arms whose activations differ in rank are compared on what the SAE
adds over a basis.
Label controls (opt-in) reuse the real arm's latents with the control's labels, for the probing metrics only.

The SAE baselines (:data:`auditkit.audit.options.SAE_BASELINES`: ``sae-untrained``, ``sae-frozen-decoder``,
``sae-soft-frozen-decoder``, ``sae-frozen-encoder``, ``pca``, ``identity``) are arms of this method only: the real
arm's activations and split, encoded by a dictionary training did not find
(:func:`auditkit.methods.sae.baselines.baseline_sae`), built per seed right after the real arm's SAE (the frozen
decoder takes that SAE's spectrum) and scored by the same code, against the real arm's PCA and identity codes.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from auditkit.audit.arms import Arm, build_arms, label_control
from auditkit.audit.method import MethodContext, MethodOutput
from auditkit.controls import registry
from auditkit.errors import ConfigError
from auditkit.extract import resolve_positions
from auditkit.seeding import derive_seed
from auditkit.types import REAL, ActivationSet

logger = logging.getLogger(__name__)

METHOD = "sae"
HEADLINE = ("explained_variance", "ev_over_pca", "ce_loss_recovered", "kl", "probe_acc_k5")
"""Metrics whose verdicts open the report."""

SAE_METRICS: dict[str, tuple[int, str]] = {
    "explained_variance": (
        1,
        (
            "1 - sum ||x - x_hat||^2 / sum ||x - mean(x)||^2, both sums over every held-out token "
            "(BOS excluded; tokens pooled, not averaged per text), the variance about those tokens' "
            "mean, not about zero (0: no better than predicting the mean; 1: exact)"
        ),
    ),
    "fvu": (-1, "fraction of variance unexplained, 1 - explained_variance"),
    "ev_over_pca": (
        1,
        (
            "explained_variance / ev_pca: the SAE's explained variance relative to the PCA code of the "
            "same arm's activations at the same k (1: no better than PCA; compares arms whose activations "
            "differ in rank)"
        ),
    ),
    "ev_over_identity": (
        1,
        ("explained_variance / ev_identity: relative to the neuron-basis code of the same arm at the same k"),
    ),
    "ev_pca": (
        0,
        (
            "explained variance (as above) of the arm's PCA code: the top principal directions of its "
            "training tokens, each signed, the k largest |projections| per token (the pca baseline's code)"
        ),
    ),
    "ev_identity": (
        0,
        (
            "explained variance of the arm's neuron-basis code: the k largest |x - training mean| per "
            "token (the identity baseline's code)"
        ),
    ),
    "l0": (0, "number of active latents per held-out token, averaged over tokens (fixed at k for TopK)"),
    "dead_fraction": (
        -1,
        (
            "share of latents never active on any held-out token (counted on the evaluation tokens, "
            "not over a training window)"
        ),
    ),
    "dense_fraction": (-1, "share of latents active on more than 10% of held-out tokens"),
    "shrinkage": (0, "||x_hat|| / ||x|| per held-out token, averaged over tokens (1: no shrinkage)"),
    "ce_loss_recovered": (
        1,
        (
            "(CE_zero - CE_sae) / (CE_zero - CE_clean): next-token cross-entropy of the arm's own "
            "model with the SAE's reconstruction spliced in at the hook on every non-BOS token of the "
            "seed's held-out splice texts, against zero-ablating the hook at the same tokens (BOS left "
            "clean in both); each CE is the mean over every prediction of a real next token of those "
            "texts, pooled, the one made at BOS included (1: as good as the clean "
            "model; 0: no better than ablation; unstable when ablation barely changes CE); verdicts compare "
            "each arm's distance to 1, since a splice can undercut the clean CE by chance"
        ),
    ),
    "ce_loss_recovered_mean": (
        1,
        ("as ce_loss_recovered, against mean-ablation (the mean activation over the spliced tokens, BOS left clean)"),
    ),
    "ce_loss_increase": (
        -1,
        ("CE_sae - CE_clean, nats per predicted token; verdicts compare each arm's |CE_sae - CE_clean|"),
    ),
    "kl": (
        -1,
        (
            "KL(clean || SAE spliced) of the next-token distributions, nats, averaged over the same predictions as "
            "CE (the one made at BOS included, where it is 0: BOS is never spliced)"
        ),
    ),
    "token_entropy": (
        0,
        (
            "mean over live latents of the entropy (nats) of the token ids each fires on, over the "
            "held-out tokens (BOS excluded; low: single-token latents; Heap et al., 2025)"
        ),
    ),
    "token_entropy_norm": (0, "token_entropy / log(number of distinct held-out token ids)"),
    **{
        f"probe_acc_k{k}": (
            1,
            (
                f"held-out accuracy of a logistic probe on the {k} latent(s) with the largest "
                "class-mean difference on training rows, at the audit's labelled positions"
            ),
        )
        for k in (1, 5, 20)
    },
}
"""Every row metric of the method: direction (+1 higher is better, -1 lower, 0 descriptive) and definition."""
CONVENTIONS = (
    (
        "Tokens: every token of the seed's held-out texts except BOS and padding. A metric over tokens pools them (a "
        "ratio of totals, or a mean over tokens): a longer text weighs more; nothing is averaged per text first."
    ),
    "Explained variance (and fvu, ev_pca, ev_identity) is taken about the held-out tokens' mean, not about zero.",
    (
        "Splices (ce_*, kl): the SAE, zero- and mean-ablation replace the hook's activation at every non-BOS token, BOS "
        "left clean in all three; CE and KL average over every prediction of a real next token, the one made at BOS "
        "included. sae-lens's run_evals averages over its non-special positions (BOS excluded) and zero-ablates BOS "
        "too: its CE and KL totals differ by convention (offsets measured in docs/methods/sae.md)."
    ),
)
"""How the method's metrics pool tokens, treat BOS and centre variance: the report's legend states them."""
PROBE_METRICS = tuple(m for m in SAE_METRICS if m.startswith("probe_acc_"))


DIRECTIONS = {m: d for m, (d, _) in SAE_METRICS.items() if d != 1}
"""The metrics where higher is not better (see :data:`auditkit.metrics.selectivity.Direction`)."""
CEILINGS = {m: 1.0 for m in ("explained_variance", "ce_loss_recovered", "ce_loss_recovered_mean", *PROBE_METRICS)}
TARGETS = {"ce_loss_recovered": 1.0, "ce_loss_recovered_mean": 1.0, "ce_loss_increase": 0.0}
"""The splice metrics an arm can overshoot: a splice that lowers the next-token loss below the clean model's
(CE recovered above 1, a negative CE increase) changes what the model computes as surely as one that raises
it. Their verdicts score each arm's distance to the clean model (:func:`auditkit.metrics.selectivity.
selectivity_table`), so an overshooting arm never reads as more faithful than one that matches."""
"""Best attainable values, for the normalised selectivity."""
FIXED_BY_CONSTRUCTION = tuple((m, c) for m in ("dead_fraction", "dense_fraction") for c in ("pca", "identity"))
"""(metric, control) pairs with no verdict: the dead and dense fractions of the PCA and identity codes are set by
how they are built (a fixed basis read with a top-k rule, not by anything learned), so the trained SAE's
difference from them says nothing about training (issue 25); the values are shown, descriptive."""


def applicable_controls() -> tuple[str, ...]:
    """Controls that apply: token and weight controls to every metric (a fresh SAE per arm); label controls
    (opt-in) to the k-sparse-probing metrics only, reusing the real arm's SAE latents with the control's labels,
    since the SAE itself never sees a label; the SAE baselines to every metric (the real activations, another
    dictionary)."""
    return registry.names(*registry.AUDIT_STAGES, "sae")


def default_controls() -> tuple[str, ...]:
    """Controls run by default: the ones an unsupervised method can be run against (the token controls and the
    random-model weight controls; step0 needs the hub), the SAE baselines, and the lexical baselines of its k-sparse
    probes (on the data levels each applies to)."""
    return (
        *registry.names("token"),
        *registry.names("weight", where=lambda c: c.random_model),
        *registry.names("sae"),
        *registry.names("lexical"),
    )


def run_sae_method(ctx: MethodContext) -> MethodOutput:
    """The ``sae`` method: train and score one SAE per arm and seed (see the module docstring)."""
    opts = ctx.cfg.sae
    controls = ctx.controls_for(applicable_controls())
    plan = dataclasses.replace(
        ctx.plan,
        extract_cfg=dataclasses.replace(ctx.plan.extract_cfg, positions="all"),
        controls=tuple(c for c in controls if registry.stage_of(c) not in ("label", "sae")),
    )
    t = time.perf_counter()
    arms = build_arms(plan, ctx.timings)
    ctx.timings["extract_s"] = ctx.timings.get("extract_s", 0.0) + time.perf_counter() - t
    hook = plan.extract_cfg.hook
    probe_positions = resolve_positions(ctx.plan.extract_cfg, ctx.batch)
    # SAEs train, and their latents' probes fit, where the model ran (what ran, ``auto`` resolved).
    device = ctx.loaded.provenance.device
    loaded = _load_checked(opts.load, hook, arms[0].acts.d, device) if opts.load else None
    sae_cfg = opts.sae_config(device=device, **(_shape_of(loaded) if loaded is not None else {}))
    rows: list[dict[str, Any]] = []
    per_arm: dict[str, dict[str, list[float]]] = {}
    label_controls = [c for c in controls if registry.stage_of(c) == "label"]
    baselines = [c for c in controls if registry.stage_of(c) == "sae"]
    lexical = _Lexical(ctx, [c for c in controls if registry.stage_of(c) == "lexical"], probe_positions)
    shapes: dict[str, list[int]] = {}
    for arm in tqdm(arms, desc="SAE arms", disable=not ctx.cfg.progress):
        t = time.perf_counter()
        sae = loaded if loaded is not None and arm.control == REAL else _train(arm, sae_cfg)
        scoring = _Scoring(hook, probe_positions, opts.splice_texts, _reference(arm, sae_cfg, sae), rows, per_arm)
        probe_set = _scored(sae, arm, arm.control, t, scoring)
        if arm.control == REAL:
            for control in label_controls:
                for draw in range(ctx.cfg.label_draws):
                    records = probe_records_of(label_control(probe_set, control, arm.seed, draw), device)
                    rows += [dict(method=METHOD, control=control, seed=arm.seed, draw=draw, **r) for r in records]
            lexical.add(probe_set, arm.seed)
            for control in baselines:
                t = time.perf_counter()
                base = _baseline(control, arm, sae_cfg, sae)
                shapes.setdefault(control, []).append(int(base.W_dec.shape[0]))
                _scored(base, arm, control, t, scoring)
    rows += lexical.rows(rows)
    info = dict(
        lexical=lexical.info,
        config={k: v for k, v in sae_cfg.to_dict().items() if k not in ("device", "progress")},
        d_sae=sae_cfg.d_sae(arms[0].acts.d),
        loaded=opts.load,
        splice_texts=opts.splice_texts,
        probe_positions=probe_positions,
        label_controls=label_controls,
        train_tokens=int((~arms[0].acts.is_test_N).sum()),
        test_tokens=int(arms[0].acts.is_test_N.sum()),
        arms={c: {k: float(np.mean(v)) for k, v in s.items()} for c, s in per_arm.items()},
        baselines={c: dict(kind=registry.get(c).variant, d_sae=max(f)) for c, f in shapes.items()},
        definitions={m: text for m, (_, text) in SAE_METRICS.items()},
        conventions=list(CONVENTIONS),
        fit_device=device,
    )
    return MethodOutput(
        rows=pd.DataFrame(rows),
        info=info,
        headline=HEADLINE,
        directions=DIRECTIONS,
        ceilings=CEILINGS,
        targets=TARGETS,
        descriptive=FIXED_BY_CONSTRUCTION,
    )


@dataclasses.dataclass(frozen=True)
class _Scoring:
    """How one arm's SAEs are scored, and where their rows and timings go."""

    hook: str
    probe_positions: str
    splice_texts: int
    reference: dict[str, Any]
    """The arm's :func:`_reference`: explained variance of its PCA and identity codes, and the seconds they took."""
    rows: list[dict[str, Any]]
    per_arm: dict[str, dict[str, list[float]]]


def _reference(arm: Arm, cfg: Any, sae: Any) -> dict[str, Any]:
    """Explained variance of the PCA and identity codes of ``arm``'s own activations at its SAE's k (fitted on its
    training rows, scored on its held-out rows), which every SAE scored on these activations is read against."""
    from auditkit.methods.sae.baselines import reference_ev, sparsity_k

    t = time.perf_counter()
    test = torch.as_tensor(arm.acts.is_test_N)
    train_ND = arm.acts.acts_ND[~test].to(cfg.device)
    k = sparsity_k(sae, train_ND, cfg)
    ev = reference_ev(train_ND, arm.acts.acts_ND[test].to(cfg.device), width=cfg.d_sae(arm.acts.d), k=k)
    return dict(ev=ev, seconds=time.perf_counter() - t)


class _Lexical:
    """The lexical baselines of the k-sparse probes: fitted on each seed's probe rows (the real arm's labelled rows
    at the probe positions, its split), one accuracy per seed, paired with every ``probe_acc_k{k}`` of the real arm
    (the baseline does not depend on k)."""

    def __init__(self, ctx: MethodContext, controls: list[str], positions: str) -> None:
        self.ctx, self.controls, self.seeds = ctx, controls, []
        self.info: dict[str, Any] = {}
        if positions == "mean" and "lexical-last-token" in controls:
            self.controls = [c for c in controls if c != "lexical-last-token"]
            self.info["skipped"] = {"lexical-last-token": "rows pooled over positions (mean) sit on no single token"}

    def add(self, probe_set: ActivationSet, seed: int) -> None:
        if self.controls:
            self.seeds.append((seed, probe_set, bool(np.unique(probe_set.labels_N[~probe_set.is_test_N]).size < 2)))

    def rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from auditkit.audit.lexical import lexical_rows, row_texts

        ks = sorted({r["metric"] for r in rows if r["control"] == REAL and r["metric"].startswith("probe_acc_k")})
        if not self.controls or not self.seeds or not ks:
            return []
        t = time.perf_counter()
        n_classes = int(max(int(a.labels_N.max()) for _, a, _ in self.seeds)) + 1
        texts_B = row_texts(self.ctx.batch, self.ctx.loaded.model.tokenizer)
        found, info = lexical_rows(self.seeds, self.controls, [METHOD], texts_B, n_classes=n_classes)
        self.info = {**info, **self.info}
        self.ctx.timings["lexical_s"] = self.ctx.timings.get("lexical_s", 0.0) + time.perf_counter() - t
        accuracy = [r for r in found if r["metric"] == "accuracy"]
        return [{**r, "metric": k} for r in accuracy for k in ks]


def _scored(sae: Any, arm: Arm, control: str, started: float, s: _Scoring) -> ActivationSet:
    """Score ``sae`` on ``arm``, append its rows as ``control`` and its timings; returns the probe rows' latents."""
    from auditkit.methods.sae.baselines import relative_ev

    built = time.perf_counter()
    metrics, probe_records, probe_set = _score(sae, arm, s.hook, s.probe_positions, s.splice_texts)
    metrics |= relative_ev(metrics["explained_variance"], s.reference["ev"])
    stats = s.per_arm.setdefault(control, {})
    reference_s = s.reference["seconds"] if control == arm.control else 0.0  # built between training and here
    for key, value in (
        ("train_s", built - started - reference_s),
        ("score_s", time.perf_counter() - built),
        ("reference_s", reference_s),
        ("ce_clean", metrics.pop("ce_clean")),
        ("ce_zero", metrics.pop("ce_zero")),
    ):
        stats.setdefault(key, []).append(float(value))
    s.rows.extend(dict(method=METHOD, control=control, seed=arm.seed, metric=m, value=v) for m, v in metrics.items())
    s.rows.extend(dict(method=METHOD, control=control, seed=arm.seed, **r) for r in probe_records)
    logger.info(
        "SAE arm %s seed %d: train %.1f s, score %.1f s, EV %.3f",
        control,
        arm.seed,
        stats["train_s"][-1],
        stats["score_s"][-1],
        metrics["explained_variance"],
    )
    return probe_set


def _baseline(control: str, real: Arm, cfg: Any, trained: Any) -> Any:
    """The SAE baseline ``control`` of the real arm's SAE ``trained`` (same rows, config and seed as :func:`_train`)."""
    from auditkit.methods.sae.baselines import baseline_sae

    train = torch.as_tensor(~real.acts.is_test_N)
    return baseline_sae(
        registry.get(control).variant,
        real.acts.acts_ND[train],
        cfg,
        seed=derive_seed(real.seed, "sae"),
        trained=trained,
    )


def _train(arm: Arm, cfg: Any) -> Any:
    from auditkit.methods.sae import train_sae

    train = torch.as_tensor(~arm.acts.is_test_N)
    # One init and batch-order seed per audit seed, shared by every arm: arms differ only in their data.
    return train_sae(arm.acts.acts_ND[train], cfg, seed=derive_seed(arm.seed, "sae"))


def _score(
    sae: Any, arm: Arm, hook: str, probe_positions: str, splice_texts: int
) -> tuple[dict[str, float], list[dict[str, Any]], ActivationSet]:
    """Held-out reconstruction, sparsity, token entropy, splice and k-sparse-probing metrics of one arm."""
    from auditkit.methods.sae import evaluate_sae

    acts, test = arm.acts, torch.as_tensor(arm.acts.is_test_N)
    out = evaluate_sae(sae, acts.acts_ND[test], token_ids_N=torch.as_tensor(acts.token_ids_N)[test])
    out.pop("mse")
    out |= _splice(sae, arm, hook, splice_texts)
    probe_set = _probe_set(sae, acts, probe_positions)
    return out, probe_records_of(probe_set, sae.W_dec.device), probe_set


def _splice(sae: Any, arm: Arm, hook: str, n_texts: int) -> dict[str, float]:
    from auditkit.methods.sae import splice_metrics

    examples = np.unique(arm.acts.example_ids_N[arm.acts.is_test_N])[:n_texts]
    idx = torch.as_tensor(examples)
    mask_BL = arm.batch.mask_BL[idx]
    width = int(mask_BL.sum(1).max())
    s = splice_metrics(
        sae,
        arm.model().model,
        arm.batch.tokens_BL[idx, :width],
        mask_BL[:, :width],
        hook,
        exclude_bos=arm.batch.has_bos,
    )
    return dict(
        ce_loss_recovered=s["ce_recovered_zero"],
        ce_loss_recovered_mean=s["ce_recovered_mean"],
        ce_loss_increase=s["ce_sae"] - s["ce_clean"],
        kl=s["kl_sae"],
        ce_clean=s["ce_clean"],
        ce_zero=s["ce_zero"],
    )


def _probe_set(sae: Any, acts: ActivationSet, positions: str) -> ActivationSet:
    """The rows a probe of the audit would read (its ``positions``), with SAE latents as features.

    ``last``: each text's last token; ``labelled``/``all``: every labelled row; ``mean``: each text's
    latents averaged over its tokens.
    """
    from auditkit.methods.sae.metrics import encode_decode

    ex = acts.example_ids_N
    labelled = acts.labels_N >= 0
    if positions == "last":
        keep = np.flatnonzero(np.r_[ex[1:] != ex[:-1], True] & labelled)
    elif positions == "mean":
        keep = np.flatnonzero(np.r_[True, ex[1:] != ex[:-1]] & labelled)
    else:
        keep = np.flatnonzero(labelled)
    if positions == "mean":
        _, z_NF = encode_decode(sae, acts.acts_ND)
        _, inverse = np.unique(ex, return_inverse=True)
        sums = torch.zeros(int(inverse.max()) + 1, z_NF.shape[1], dtype=z_NF.dtype)
        sums.index_add_(0, torch.as_tensor(inverse), z_NF)
        counts = torch.as_tensor(np.bincount(inverse), dtype=z_NF.dtype)[:, None]
        z_RF = (sums / counts)[torch.as_tensor(inverse[keep])]
    else:
        _, z_RF = encode_decode(sae, acts.acts_ND[torch.as_tensor(keep)])
    groups = tuple(acts.groups_N[i] for i in keep) if acts.groups_N is not None else None
    return acts.replace(
        acts_ND=z_RF,
        labels_N=acts.labels_N[keep],
        token_ids_N=acts.token_ids_N[keep],
        example_ids_N=ex[keep],
        positions_N=acts.positions_N[keep],
        is_test_N=acts.is_test_N[keep],
        groups_N=groups,
    )


def probe_records_of(probe_set: ActivationSet, device: str | torch.device = "cpu") -> list[dict[str, Any]]:
    """k-sparse probing of an arm's latents as tidy-row fields (metric, value, outcome, degenerate), fitted on
    ``device``."""
    from auditkit.methods.sae.metrics import sparse_probe_records

    return sparse_probe_records(
        probe_set.acts_ND.to(device),
        torch.as_tensor(probe_set.labels_N),
        torch.as_tensor(probe_set.is_test_N),
        clusters_N=probe_set.example_ids_N,
    )


def _load_checked(spec: str, hook: str, d_model: int, device: str = "cpu") -> Any:
    """A loaded SAE (on ``device``) that reads ``hook``'s activations, or a ConfigError saying why not."""
    from auditkit.methods.sae import load_sae

    sae = load_sae(spec, device=device)
    if int(sae.cfg.d_in) != d_model:
        raise ConfigError(
            f"--sae-load {spec}: the SAE reads {sae.cfg.d_in}-dim activations but {hook} has {d_model}: "
            "load an SAE trained on this model and hook"
        )
    trained_at = getattr(sae.cfg.metadata, "hook_name", None)
    if trained_at and trained_at != hook:
        raise ConfigError(f"--sae-load {spec} was trained at {trained_at}, not {hook}: pass --hook {trained_at}")
    return sae


def _shape_of(sae: Any) -> dict[str, Any]:
    """SAEConfig overrides that make control SAEs the loaded SAE's architecture, width and k."""
    arch = sae.cfg.architecture()
    if arch not in ("topk", "standard", "jumprelu"):
        raise ConfigError(
            f"--sae-load: the loaded SAE is a {arch!r} SAE; the controls can train topk, standard or jumprelu only"
        )
    shape: dict[str, Any] = dict(architecture=arch, width=int(sae.cfg.d_sae))
    if arch == "topk":
        shape["k"] = int(sae.cfg.k)
    return shape
