"""The audit's ``pursuit`` method: sparse-code every arm's activations against a dictionary.

Orchestration only (the solvers are :mod:`auditkit.methods.pursuit.greedy` / :mod:`~auditkit.methods.pursuit.lasso`,
the dictionaries :mod:`auditkit.methods.pursuit.dictionaries`, the metrics :mod:`auditkit.metrics.sparse_coding`).

Every arm goes through the same code: its dictionary is derived the way the real one is, from
*that arm* (W_E / W_U of the arm's model, an SAE trained on the arm's activations, probes fitted on
the arm's train split with the arm's labels), its activations are coded, and the same metrics are
computed. Which arms speak to which metric:

- **reconstruction** (``fvu@k=...`` / ``fvu@alpha=...``, ``mean_l0``, ``frac_atoms_used``; with an
  SAE ``fvu_sae_encoder`` and ``amortisation_gap``): the dictionary controls (``gaussian-dict``,
  ``spectral-dict``: the real activations against a random dictionary of the same shape, the second
  with the same singular values), the weight controls (the reinitialised model's activations and its
  own dictionary) and the token controls (random-token activations, real dictionary). Label controls
  do not touch activations or dictionaries (except ``probe``'s), so they give no reconstruction rows.
- **code probe** (``accuracy``, ``balanced_accuracy``, ``macro_f1``, ``auroc`` of a logistic probe
  on the codes, held-out split): every control, label controls included.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from auditkit.audit.arms import Arm
from auditkit.audit.method import MethodContext, MethodOutput
from auditkit.audit.options import PursuitAuditOptions
from auditkit.audit.probe import (
    default_controls as probe_defaults,
)
from auditkit.audit.probe import (
    labelled_rows,
    lexical_arm_rows,
    problem_name,
    stack_labels,
    stack_records,
)
from auditkit.controls import registry
from auditkit.errors import DataError
from auditkit.extract import embedding_matrices
from auditkit.methods.probes.logistic import LogisticProbe
from auditkit.methods.pursuit.curves import amortisation_gap
from auditkit.methods.pursuit.dictionaries import (
    CONTROLS as DRAWS,
)
from auditkit.methods.pursuit.dictionaries import (
    Dictionary,
    from_embedding,
    from_probes,
    from_sae,
    from_unembedding,
)
from auditkit.methods.pursuit.greedy import gradient_pursuit, omp
from auditkit.methods.pursuit.lasso import fista_path
from auditkit.metrics.sparse_coding import fvu, support_stats
from auditkit.seeding import derive_seed
from auditkit.types import REAL, ActivationSet

logger = logging.getLogger(__name__)

METHOD = "pursuit"


def applicable_controls() -> tuple[str, ...]:
    """Every registered data and weight control but the opt-in ones (step0), and the lexical baselines, which like the
    label controls speak only to its code probe; its own dictionary controls (gaussian-dict, spectral-dict) are set in
    :class:`~auditkit.audit.options.PursuitAuditOptions`."""
    return registry.names(*registry.ARM_STAGES, "lexical", where=lambda c: not c.opt_in)


def default_controls() -> tuple[str, ...]:
    """Run by default: those the probe method runs by default, on the data levels each applies to."""
    return tuple(c for c in probe_defaults() if c in applicable_controls())


@dataclass(frozen=True)
class _Source:
    """A dictionary for one arm, with the offset its codes are taken about and (for SAEs) the SAE."""

    key: tuple
    dic: Dictionary
    sae: Any = None


@dataclass(frozen=True)
class _Coded:
    codes_NF: torch.Tensor
    """Codes at the default L0 (largest k, or smallest alpha)."""
    curve: dict[str, float]
    """Metric name -> value: FVU at each sweep point (and mean L0 at each alpha for the lasso)."""
    support: dict[str, float]
    extra: dict[str, float]
    """SAE only: encoder FVU and amortisation gap."""


def sweep_metrics(opts: PursuitAuditOptions, n_atoms: int, d: int) -> list[str]:
    """The FVU metric names of the sweep, in sweep order (sparsest first)."""
    if opts.solver in ("omp", "gradient"):
        return [f"fvu@k={k}" for k in effective_ks(opts, n_atoms, d)]
    return [f"fvu@alpha={a:g}" for a in sorted(opts.alphas, reverse=True)]


def effective_ks(opts: PursuitAuditOptions, n_atoms: int, d: int) -> list[int]:
    """The k sweep clipped to min(F, D) (a k beyond it cannot be reached)."""
    return sorted({min(k, n_atoms, d) for k in opts.ks})


def code(X_ND: torch.Tensor, source: _Source, opts: PursuitAuditOptions) -> _Coded:
    """Code ``X_ND`` (an arm's activations) against ``source`` and measure the reconstruction."""
    X = X_ND.to(torch.float32)
    offset_D = _offset(X, source, opts)
    Xc, W = X - offset_D, source.dic.W_FD.to(torch.float32)
    total = float(((X.double() - X.double().mean(0)) ** 2).sum())
    if total <= 0:
        raise DataError(f"the {X.shape[0]} activation rows have zero variance: FVU is undefined")
    curve: dict[str, float] = {}
    if opts.solver == "omp":
        ks = effective_ks(opts, *W.shape)
        res = omp(Xc, W, max(ks))
        for k in ks:  # ||x - x_hat||^2 = 2 x objective; OMP's path holds every smaller k
            curve[f"fvu@k={k}"] = float(2 * res.objective_path_NK[:, k - 1].sum()) / total
        codes = res.codes_NF
    elif opts.solver == "gradient":
        for k in effective_ks(opts, *W.shape):
            codes = gradient_pursuit(Xc, W, k).codes_NF
            curve[f"fvu@k={k}"] = fvu(X, codes @ W + offset_D)
    else:
        fracs = sorted(opts.alphas, reverse=True)
        alpha_max = float((Xc @ W.T).abs().max())
        path = fista_path(Xc, W, [f * alpha_max for f in fracs], positive=opts.solver == "nn-lasso")
        for f, r in zip(fracs, path):
            curve[f"fvu@alpha={f:g}"] = fvu(X, r.codes_NF @ W + offset_D)
            curve[f"mean_l0@alpha={f:g}"] = support_stats(r.codes_NF).mean_l0
        codes = path[-1].codes_NF
    st = support_stats(codes)
    extra = {}
    if source.sae is not None:
        gap = amortisation_gap(source.sae, X, match="row")
        extra = {
            "fvu_sae_encoder": gap.fvu_sae,
            "fvu_pursuit_matched": gap.fvu_pursuit,
            "amortisation_gap": gap.gap,
            "sae_l0": gap.l0_sae,
        }
    return _Coded(codes, curve, {"mean_l0": st.mean_l0, "frac_atoms_used": st.frac_atoms_used}, extra)


def _offset(X: torch.Tensor, source: _Source, opts: PursuitAuditOptions) -> torch.Tensor:
    if not opts.center:
        return torch.zeros(X.shape[1])
    b_dec = getattr(source.sae, "b_dec", None) if source.sae is not None else None
    return b_dec.detach().to(X.dtype) if b_dec is not None else X.mean(0)


class _Dictionaries:
    """Each arm's dictionary, derived from the arm the way the real one is from the real arm (cached). Its
    probes and SAEs are fitted on ``device``; the dictionaries they give are handed to the coders on the CPU."""

    def __init__(self, opts: PursuitAuditOptions, n_classes: int, progress: bool, device: str = "cpu") -> None:
        self.opts, self.n_classes, self.progress, self.device = opts, n_classes, progress, device
        self._cache: dict[tuple, _Source] = {}
        self.sae_info: dict[str, Any] = {}

    def for_arm(self, arm: Arm) -> _Source:
        kind = self.opts.dictionary
        if kind in ("embed", "unembed"):
            model = arm.model().model
            key = (kind, id(model))
            if key not in self._cache:
                mats = embedding_matrices(model)
                dic = from_embedding(mats.W_E_VD) if kind == "embed" else from_unembedding(mats.W_U_DV)
                self._cache[key] = _Source(key, dic)
        elif kind == "probe":
            key = ("probe", arm.control, arm.seed, arm.draw)
            if key not in self._cache:
                self._cache[key] = _Source(key, from_probes(self._probe_directions(arm.acts)))
        else:
            key = ("sae", None if self.opts.sae_path else id(arm.acts.acts_ND))
            if key not in self._cache:
                sae = self._sae(arm)
                self._cache[key] = _Source(key, from_sae(sae), sae)
        return self._cache[key]

    def _probe_directions(self, acts: ActivationSet) -> torch.Tensor:
        rows = labelled_rows(acts)
        probe = LogisticProbe(C=self.opts.code_probe_C)
        train = torch.as_tensor(~rows.is_test_N)[None].to(self.device)
        labels = torch.as_tensor(rows.labels_N)[None].to(self.device)
        probe.fit(rows.acts_ND.to(self.device), labels, train, self.n_classes)
        return probe.directions()[0].T.to(torch.float32).cpu()  # [K, D]: one direction per logit

    def _sae(self, arm: Arm) -> Any:
        if self.opts.sae_path:
            from auditkit.methods.sae.io import load_sae

            return load_sae(self.opts.sae_path)
        from auditkit.methods.sae.train import SAEConfig, train_sae, training_stats

        cfg = SAEConfig(
            expansion_factor=self.opts.sae_expansion,
            k=self.opts.sae_k,
            training_tokens=self.opts.sae_tokens,
            progress=self.progress,
            device=self.device,
        )
        # Trained on the audit's device, then coded against on the CPU, where the sparse coders run.
        sae = train_sae(arm.acts.acts_ND, cfg, seed=derive_seed(arm.seed, "pursuit-sae", arm.control)).to("cpu")
        stats = training_stats(sae)
        self.sae_info[f"{arm.control}/{arm.seed}"] = dict(seconds=stats.seconds, n_steps=stats.n_steps) if stats else {}
        return sae


@dataclass(frozen=True)
class _Problem:
    """One result row group: an arm (or dictionary control) of one seed, and the coding it reads."""

    control: str
    seed: int
    acts: ActivationSet
    coding_key: tuple
    reconstruction: bool
    """Whether this arm's reconstruction metrics are rows (not for label controls: same coding as real)."""
    draw: int = 0
    """The arm's draw of its control (:attr:`auditkit.audit.arms.Arm.draw`)."""


def run_pursuit_method(ctx: MethodContext) -> MethodOutput:
    """The ``pursuit`` method: code every arm, then reconstruction and code-probe rows (see module docstring)."""
    opts: PursuitAuditOptions = ctx.cfg.pursuit
    arms = [a for a in ctx.arms() if a.control == REAL or a.control in ctx.controls_for(applicable_controls())]
    n_classes = len(arms[0].acts.class_names) or int(arms[0].acts.labels_N.max()) + 1
    device = ctx.loaded.provenance.device
    dicts = _Dictionaries(opts, n_classes, ctx.cfg.progress, device)
    sources, problems = plan_codings(arms, opts, dicts)
    t = time.perf_counter()
    coded = {key: code(X, src, opts) for key, (X, src) in sources.items()}
    ctx.timings["pursuit_code_s"] = time.perf_counter() - t
    some = next(iter(sources.values()))[1].dic
    metrics = sweep_metrics(opts, some.n_atoms, some.d)
    directions = {
        **{m: -1 for m in metrics},
        "fvu_sae_encoder": -1,
        "fvu_pursuit_matched": -1,
        "amortisation_gap": 0,
        "mean_l0": 0,
        "frac_atoms_used": 0,
        **{f"mean_l0@alpha={a:g}": 0 for a in opts.alphas},
    }
    rows = [
        dict(method=METHOD, control=p.control, seed=p.seed, draw=p.draw, metric=m, value=v)
        for p in problems
        if p.reconstruction
        for m, v in {**coded[p.coding_key].curve, **coded[p.coding_key].support, **coded[p.coding_key].extra}.items()
    ]
    t = time.perf_counter()
    rows += code_probe_rows(problems, coded, n_classes, opts.code_probe_C, device)
    ctx.timings["pursuit_code_probe_s"] = time.perf_counter() - t
    lexical, lexical_info = lexical_arm_rows(
        ctx, arms, ctx.controls_for(applicable_controls()), [METHOD], n_classes=n_classes
    )
    rows += lexical
    info = dict(
        lexical=lexical_info,
        dictionary=opts.dictionary,
        solver=opts.solver,
        ks=list(opts.ks),
        alphas=list(opts.alphas),
        center=opts.center,
        n_atoms=some.n_atoms,
        d=some.d,
        sweep=metrics,
        dictionary_controls=list(opts.dictionary_controls),
        n_codings=len(coded),
        sae=dicts.sae_info,
        sae_path=opts.sae_path,
        code_probe_C=opts.code_probe_C,
        fit_device=device,
        solver_device="cpu",
        code_probe_features={
            problem_name(p.control, p.seed, p.draw): int((coded[p.coding_key].codes_NF != 0).any(0).sum())
            for p in problems
        },
    )
    return MethodOutput(rows=pd.DataFrame(rows), info=info, headline=(metrics[-1], "accuracy"), directions=directions)


def plan_codings(
    arms: list[Arm], opts: PursuitAuditOptions, dicts: _Dictionaries
) -> tuple[dict[tuple, tuple[torch.Tensor, _Source]], list[_Problem]]:
    """Every coding the arms need (activations and dictionary, keyed so that arms sharing both share it),
    and one problem per arm and dictionary control. Dictionary controls are drawn per seed
    (``derive_seed(seed, name)``) from the real arm's dictionary."""
    sources: dict[tuple, tuple[torch.Tensor, _Source]] = {}
    problems: list[_Problem] = []
    for arm in arms:
        src = dicts.for_arm(arm)
        key = (id(arm.acts.acts_ND), src.key)
        sources.setdefault(key, (arm.acts.acts_ND, src))
        relabelled = registry.stage_of(arm.control) == "label"
        problems.append(_Problem(arm.control, arm.seed, arm.acts, key, not relabelled, arm.draw))
        if arm.control == REAL:
            for name in opts.dictionary_controls:
                ckey = (id(arm.acts.acts_ND), (name, arm.seed, src.key))
                if ckey not in sources:
                    ctrl = DRAWS[registry.get(name).variant](src.dic, derive_seed(arm.seed, name))
                    sources[ckey] = (arm.acts.acts_ND, _Source(ckey[1], ctrl, None))
                problems.append(_Problem(name, arm.seed, arm.acts, ckey, True))
    return sources, problems


def code_probe_rows(
    problems: list[_Problem], coded: dict[tuple, _Coded], n_classes: int, C: float, device: str = "cpu"
) -> list[dict]:
    """A logistic probe on each problem's codes (the atoms some row uses), fitted on ``device`` and scored on
    its held-out rows (on the CPU).

    Problems that share a coding (the real arm of every seed and its label controls) are fitted as one stack.
    """
    groups: dict[tuple, list[_Problem]] = {}
    for p in problems:
        groups.setdefault(p.coding_key, []).append(p)
    rows = []
    for key, members in groups.items():
        codes = coded[key].codes_NF
        keep = torch.as_tensor(members[0].acts.labels_N >= 0)
        used = (codes != 0).any(0)
        if not bool(used.any()):
            used[0] = True  # every code is zero: one constant feature, so the probe predicts the prior
        X_ND = codes[keep][:, used].to(torch.float32)
        labelled = [labelled_rows(p.acts) for p in members]
        y_SN, test_SN = stack_labels(labelled)
        X_ND = X_ND.to(device)
        proba_SNK = LogisticProbe(C=C).fit(X_ND, y_SN.to(device), ~test_SN.to(device), n_classes).predict_proba(X_ND)
        proba_SNK = proba_SNK.cpu()
        keys = [(p.control, p.seed, p.draw) for p in members]
        rows += stack_records(METHOD, keys, labelled, y_SN, test_SN, proba_SNK)
    return rows
