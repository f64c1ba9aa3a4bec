"""The audit's ``probe`` method: every probe kind on every labelled-position arm.

Also the stacking every supervised read-out of the audit shares (the probe method, the pursuit code
probe, the calibration): arms whose features are one matrix are fitted as one stack of problems,
each problem scored on its own seed's held-out rows (:func:`stack_labels`, :func:`stack_records`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from auditkit.audit.arms import Arm
from auditkit.audit.lexical import lexical_rows, row_texts
from auditkit.audit.method import MethodContext, MethodOutput
from auditkit.controls import registry
from auditkit.errors import ConfigError, DataError
from auditkit.methods.probes import make_probe
from auditkit.methods.probes import registry as probe_kinds
from auditkit.methods.probes.base import StackedProbe
from auditkit.methods.probes.mdl import online_codelength, order_seed
from auditkit.methods.probes.sparse import SPARSE_KIND, sparse_probe
from auditkit.methods.text_baselines import CV_FOLDS, cv_folds
from auditkit.metrics.classification import classification_records
from auditkit.seeding import derive_seed
from auditkit.types import REAL, ActivationSet

METHOD = "probe"


def applicable_controls() -> tuple[str, ...]:
    """Every registered control of the audit's stages applies to a probe (a method's own controls, the SAE baselines
    and random dictionaries, do not), and the lexical baselines (:mod:`auditkit.audit.lexical`) run with it."""
    return registry.names(*registry.AUDIT_STAGES)


def default_controls() -> tuple[str, ...]:
    """Run by default: every registered control but the opt-in ones (step0 needs the hub), on the data levels each
    applies to (:attr:`auditkit.controls.registry.Control.levels`)."""
    return registry.names(*registry.AUDIT_STAGES, where=lambda c: not c.opt_in)


def labelled_rows(acts: ActivationSet) -> ActivationSet:
    """The rows of ``acts`` that carry a label (``labels_N >= 0``)."""
    keep = acts.labels_N >= 0
    if not keep.any():
        raise DataError("no extracted row carries a label: check the dataset's label positions")
    if keep.all():
        return acts
    idx = np.flatnonzero(keep)
    groups = tuple(acts.groups_N[i] for i in idx) if acts.groups_N is not None else None
    return acts.replace(
        acts_ND=acts.acts_ND[torch.as_tensor(idx)],
        labels_N=acts.labels_N[idx],
        token_ids_N=acts.token_ids_N[idx],
        example_ids_N=acts.example_ids_N[idx],
        positions_N=acts.positions_N[idx],
        is_test_N=acts.is_test_N[idx],
        groups_N=groups,
    )


def one_class(acts: ActivationSet) -> bool:
    """Whether an arm's labelled training rows hold one class (its probe can only learn the prior)."""
    train = acts.labels_N[~acts.is_test_N]
    return np.unique(train[train >= 0]).size < 2


def stack_labels(members: Sequence[ActivationSet]) -> tuple[torch.Tensor, torch.Tensor]:
    """``y_SN`` and ``test_SN`` of problems that share their rows (one problem per arm and seed)."""
    y_SN = torch.as_tensor(np.stack([a.labels_N for a in members]))
    test_SN = torch.as_tensor(np.stack([a.is_test_N for a in members]))
    return y_SN, test_SN


def stack_records(
    method: str,
    keys: Sequence[tuple[Any, ...]],
    members: Sequence[ActivationSet],
    y_SN: torch.Tensor,
    test_SN: torch.Tensor,
    proba_SNK: torch.Tensor,
) -> list[dict[str, Any]]:
    """Tidy rows of a fitted stack: each problem (``keys``: its control, seed and, optionally, draw) scored on
    its held-out rows (:func:`auditkit.metrics.classification.classification_records`), marked degenerate if
    it trained on one class."""
    rows = []
    for s, (key, acts) in enumerate(zip(keys, members)):
        control, seed, draw = (*key, 0)[:3]
        test = test_SN[s]
        records = classification_records(
            y_SN[s][test], proba_SNK[s][test], acts.example_ids_N[test.numpy()], degenerate=one_class(acts)
        )
        rows += [dict(method=method, control=control, seed=seed, draw=draw, **r) for r in records]
    return rows


def problem_name(control: str, seed: int, draw: int = 0) -> str:
    """A stacked problem's key (it seeds an MLP's initialisation): ``control/seed``, ``/draw`` after the first
    draw, so adding draws never moves the first draw's numbers."""
    return f"{control}/{seed}" + (f"/{draw}" if draw else "")


def run_probe_method(ctx: MethodContext) -> MethodOutput:
    """The ``probe`` method: every probe kind on every labelled-position arm."""
    arms = [a for a in ctx.arms() if a.control == REAL or a.control in ctx.controls_for(applicable_controls())]
    mdl = ctx.cfg.mdl_schedule if ctx.cfg.mdl else None
    rows, info = probe_rows(
        arms,
        ctx.cfg.probes,
        C=ctx.cfg.probe_C,
        mdl=mdl,
        device=ctx.loaded.provenance.device,
        C_grid=ctx.cfg.probe_c_grid,
    )
    if lexical := [c for c in ctx.controls_for(applicable_controls()) if registry.stage_of(c) == "lexical"]:
        rows = _with_lexical(ctx, arms, rows, lexical, info)
    headline = ("accuracy", *MDL_METRICS) if mdl else ("accuracy",)
    return MethodOutput(rows=rows, info=info, headline=headline, directions=MDL_DIRECTIONS if mdl else {})


def _with_lexical(
    ctx: MethodContext, arms: list[Arm], rows: pd.DataFrame, controls: list[str], info: dict[str, Any]
) -> pd.DataFrame:
    """``rows`` with the lexical arms' rows, each paired with every probe kind's real arm (its info in ``info``)."""
    methods = list(dict.fromkeys(rows.loc[(rows["control"] == REAL) & (rows["metric"] == "accuracy"), "method"]))
    extra, info["lexical"] = lexical_arm_rows(
        ctx, arms, controls, methods, n_classes=info["n_classes"], choose_C=bool(ctx.cfg.probe_c_grid)
    )
    return pd.concat([rows, pd.DataFrame(extra)], ignore_index=True)


def lexical_arm_rows(
    ctx: MethodContext,
    arms: list[Arm],
    controls: Sequence[str],
    methods: Sequence[str],
    *,
    n_classes: int,
    choose_C: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows of the lexical controls among ``controls`` on the labelled real arm of each seed of ``arms`` (the same
    rows and split a method's probe reads), under each of ``methods``, and their info
    (:func:`auditkit.audit.lexical.lexical_rows`). Used by every method whose rows include a classification probe."""
    t = time.perf_counter()
    lexical = [c for c in controls if registry.stage_of(c) == "lexical"]
    if not lexical:
        return [], {}
    real = [(a.seed, acts, one_class(acts)) for a in arms if a.control == REAL for acts in [labelled_rows(a.acts)]]
    texts_B = row_texts(ctx.batch, ctx.loaded.model.tokenizer)
    out = lexical_rows(real, lexical, methods, texts_B, n_classes=n_classes, choose_C=choose_C)
    ctx.timings["lexical_s"] = ctx.timings.get("lexical_s", 0.0) + time.perf_counter() - t
    return out


C_CHOICE_RULE = (
    "with a C grid every dense probe arm and seed chooses its C by the mean held-out cross-entropy of 3 folds of "
    "its own training texts (ties to the stronger penalty), on its first draw, and every draw of it is refitted "
    "at that C; the lexical baselines choose theirs the same way among 0.1, 1, 10, 100"
)
"""How a C is chosen under ``--probe-c-grid`` (:func:`choose_C`, :data:`~auditkit.methods.text_baselines.LEXICAL_C_GRID`),
in words: a saved sweep cell fitted under a grid is keyed by it (:mod:`auditkit.sweep.store`), so a change of the
choice is a new text here and no cell chosen the old way is read back."""


MDL_METRICS = ("codelength_per_label", "compression")
"""Metrics of the online code (:mod:`auditkit.methods.probes.mdl`), one value per arm and seed: the online
codelength in bits per coded label (the total over the n training labels divided by n, so the verdict's
threshold is a number of bits per label, as compression's is a ratio: on the total, a 0.05-bit threshold is
no threshold, and the label nulls of the calibration gave 6% false positives against the control task), and
the compression, uniform / online."""
MDL_DIRECTIONS = {"codelength_per_label": -1}
"""Fewer bits is better; compression is higher-is-better, the default."""


def fit_stack(
    kind: str,
    hp: dict[str, Any],
    X_ND: torch.Tensor,
    y_SN: torch.Tensor,
    train_SN: torch.Tensor,
    n_classes: int,
    keys: list[str],
) -> StackedProbe:
    """A fitted stack of ``kind``; a keyed kind (:attr:`auditkit.methods.probes.registry.ProbeKind.keyed`, the MLP)
    seeds each problem's initialisation from its key, so adding an arm never moves another arm's numbers."""
    probe = make_probe(kind, **hp)
    if probe_kinds.REGISTRY[kind].keyed:
        return probe.fit(X_ND, y_SN, train_SN, n_classes, problem_keys=keys)
    return probe.fit(X_ND, y_SN, train_SN, n_classes)


def choose_C(
    kind: str,
    hp: dict[str, Any],
    grid: Sequence[float],
    X_ND: torch.Tensor,
    y_SN: torch.Tensor,
    train_SN: torch.Tensor,
    n_classes: int,
    keys: list[str],
    groups_SN: np.ndarray,
) -> np.ndarray:
    """float [S]: each problem's C among ``grid``, the one with the lowest held-out cross-entropy over
    :data:`~auditkit.methods.text_baselines.CV_FOLDS` folds of its own training rows (rows of one text, ``groups_SN``,
    in one fold; the folds seeded by the problem's key, so an arm's choice never depends on the other arms). Every
    arm, control or real, goes through the same choice, on its own labels and features: the budget stays equal.
    Ties go to the smaller C (the stronger penalty). A problem whose folds cannot all see every one of its training
    classes keeps ``hp``'s C. The test rows are never read."""
    grid = sorted(grid)
    S, _ = y_SN.shape
    fold_SN = np.full(tuple(y_SN.shape), -1, dtype=np.int64)
    usable = np.zeros(S, dtype=bool)
    for s in range(S):
        train = train_SN[s].cpu().numpy()
        fold_N = cv_folds(groups_SN[s][train], y_SN[s].cpu().numpy()[train], derive_seed(0, "probe-c-grid", keys[s]))
        if fold_N is not None:
            fold_SN[s, train], usable[s] = fold_N, True
    folds = torch.as_tensor(fold_SN, device=y_SN.device)
    y_cv = y_SN.repeat(CV_FOLDS, 1)  # problem s of fold k is row k * S + s
    fit_cv = torch.cat([train_SN & (folds != k) for k in range(CV_FOLDS)])
    held_cv = torch.cat([folds == k for k in range(CV_FOLDS)]).cpu()
    names = [f"{key}/cv{k}" for k in range(CV_FOLDS) for key in keys]
    loss_GS = np.zeros((len(grid), S))
    for g, c in enumerate(grid):
        probe = fit_stack(kind, {**hp, "C": c}, X_ND, y_cv, fit_cv, n_classes, names)
        proba = probe.predict_proba(X_ND).cpu().to(torch.float64)
        p_true = proba.gather(2, y_cv.cpu().clamp_min(0).unsqueeze(-1)).squeeze(-1).clamp_min(1e-12)
        nll = -(p_true.log() * held_cv).sum(1) / held_cv.sum(1).clamp_min(1)
        loss_GS[g] = nll.view(CV_FOLDS, S).mean(0).numpy()
    chosen = np.asarray(grid)[loss_GS.argmin(0)]
    return np.where(usable, chosen, hp["C"])


def _fit_chosen(
    kind: str,
    hp: dict[str, Any],
    chosen_S: np.ndarray,
    X_ND: torch.Tensor,
    y_SN: torch.Tensor,
    train_SN: torch.Tensor,
    n_classes: int,
    keys: list[str],
) -> tuple[torch.Tensor, StackedProbe]:
    """Class probabilities [S, N, K] of every problem fitted at its own C (one stacked fit per distinct C)."""
    proba_SNK = None
    for c in np.unique(chosen_S):
        idx = np.flatnonzero(chosen_S == c)
        sub = torch.as_tensor(idx, device=y_SN.device)
        probe = fit_stack(
            kind, {**hp, "C": float(c)}, X_ND, y_SN[sub], train_SN[sub], n_classes, [keys[i] for i in idx]
        )
        part = probe.predict_proba(X_ND).cpu().to(torch.float64)  # a small group may fit in float64, a large one not
        if proba_SNK is None:
            proba_SNK = torch.empty((len(chosen_S), *part.shape[1:]), dtype=torch.float64)
        proba_SNK[torch.as_tensor(idx)] = part
    return proba_SNK, probe


def probe_rows(
    arms: list[Arm],
    kinds: Sequence[str],
    *,
    C: float = 1.0,
    mdl: Sequence[float] | None = None,
    device: str = "cpu",
    C_grid: Sequence[float] = (),
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Fit stacked probes of every kind, one stack per distinct activation matrix (the real arm and its
    label controls share one), and score each on its own seed's test rows.

    ``kinds`` are registered probe kinds (:mod:`auditkit.methods.probes.registry`: a dense kind's name or a
    ``k-sparse`` spec); ``C`` is the inverse L2 strength of every kind that declares it; with ``C_grid`` every
    dense kind that declares C chooses it per problem among those values (:func:`choose_C`). ``mdl``, a block schedule, adds the online codelength
    of every dense kind on each arm's training rows (:func:`mdl_rows`). Every fit runs on ``device`` (the
    device the audit's model ran on, recorded as the info's ``fit_device``); scoring is on the CPU."""
    groups: dict[int, list[tuple[Arm, ActivationSet]]] = {}
    for arm in arms:
        groups.setdefault(id(arm.acts.acts_ND), []).append((arm, labelled_rows(arm.acts)))
    n_classes = len(arms[0].acts.class_names) or int(arms[0].acts.labels_N.max()) + 1
    if np.unique(arms[0].acts.labels_N[arms[0].acts.labels_N >= 0]).size < 2:
        raise DataError("the extracted rows carry one class only: a probe needs at least two")
    rows, info = [], {"C": C, "n_problems": len(arms), "n_classes": n_classes, "kinds": {}, "fit_device": device}
    if C_grid and mdl is not None:
        raise ConfigError("--probe-c-grid chooses C per problem; --mdl codes at one C: drop one of them")
    chosen_C: dict[str, dict[str, dict[str, int]]] = {}
    for kind in kinds:
        declared, params = _kind_of(kind)
        hp = declared.hyperparameters(C=C)
        if not declared.dense:
            own_rows, info["kinds"][declared.name] = OWN_FITS[declared.name](
                list(groups.values()), n_classes, params, hp, device
            )
            rows += own_rows
            if mdl is not None:  # not a probe of the stacked interface: not coded
                info.setdefault("mdl", {"schedule": list(mdl), "blocks": {}}).setdefault("not_coded", []).append(kind)
            continue
        for members in groups.values():
            keys = [(a.control, a.seed, a.draw) for a, _ in members]
            labelled = [acts for _, acts in members]
            y_SN, test_SN = stack_labels(labelled)
            X_ND, names = labelled[0].acts_ND.to(device), [problem_name(*k) for k in keys]
            if C_grid and "C" in hp:
                groups_SN = np.stack([acts.example_ids_N for acts in labelled])
                train_SN = ~test_SN.to(device)
                # One choice per arm and seed, on its first draw: the draws of a label control are exchangeable, so
                # they share the C their first draw chose (a tenth of the cross-validation fits at 10 draws)
                first = {}
                for i, (control, seed, _) in enumerate(keys):
                    first.setdefault((control, seed), i)
                pick = np.asarray(sorted(first.values()))
                sel = torch.as_tensor(pick, device=y_SN.device)
                chosen_first = choose_C(
                    kind,
                    hp,
                    C_grid,
                    X_ND,
                    y_SN[sel].to(device),
                    train_SN[torch.as_tensor(pick, device=train_SN.device)],
                    n_classes,
                    [names[i] for i in pick],
                    groups_SN[pick],
                )
                by_arm = {keys[i][:2]: c for i, c in zip(pick, chosen_first)}
                chosen = np.asarray([by_arm[k[:2]] for k in keys])
                proba_SNK, probe = _fit_chosen(kind, hp, chosen, X_ND, y_SN.to(device), train_SN, n_classes, names)
                for (control, _, _), c in zip(keys, chosen):
                    tally = chosen_C.setdefault(kind, {}).setdefault(control, {})
                    tally[f"{c:g}"] = tally.get(f"{c:g}", 0) + 1
            else:
                probe = fit_stack(kind, hp, X_ND, y_SN.to(device), ~test_SN.to(device), n_classes, names)
                proba_SNK = probe.predict_proba(X_ND).cpu()
            rows += stack_records(f"probe-{kind}", keys, labelled, y_SN, test_SN, proba_SNK)
            if mdl is not None and any(c == REAL for c, _, _ in keys):
                # Only the arms that share the real arm's features (its label controls): across different
                # features the code also measures how much a probe overfits noise on each (calibration).
                # The first draw of each control only: the code's between-seed spread is its interval.
                first = [i for i, (_, _, d) in enumerate(keys) if d == 0]
                fit = functools.partial(fit_stack, kind, hp)
                mdl_part, blocks = mdl_rows(
                    f"probe-{kind}",
                    fit,
                    [keys[i][:2] for i in first],
                    [labelled[i] for i in first],
                    n_classes,
                    mdl,
                    device,
                )
                rows += mdl_part
                mdl_info = info.setdefault("mdl", {"schedule": list(mdl), "blocks": {}})
                mdl_info["blocks"].setdefault(kind, {}).update(blocks)
        info["kinds"][kind] = {
            k: (v if isinstance(v, (int, float, str)) else str(v)) for k, v in probe.complexity_.items()
        }
    if C_grid:
        info["C_grid"] = sorted(C_grid)
        info["C_chosen"] = chosen_C  # kind -> arm -> {C: problems (seeds x draws)}
    return pd.DataFrame(rows), info


def mdl_rows(
    method: str,
    fit: Any,
    keys: Sequence[tuple[str, int]],
    members: Sequence[ActivationSet],
    n_classes: int,
    schedule: Sequence[float],
    device: str = "cpu",
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Online codelength (bits) and compression of every problem of a stack, on its seed's training rows
    ordered example by example by the seed's permutation (every arm of a seed codes the same rows in the
    same blocks, so the arms differ only in labels); and, for the first seed, each arm's block ends and bits per block
    (the report's figure). One value per arm and seed: the interval is the between-seed spread. The block fits run
    on ``device``."""
    y_SN, test_SN = stack_labels(members)
    code = online_codelength(
        fit,
        members[0].acts_ND.to(device),
        y_SN.to(device),
        ~test_SN.to(device),
        n_classes,
        schedule=schedule,
        order_seeds=[order_seed(seed) for _, seed in keys],
        problem_keys=[f"{c}/{s}" for c, s in keys],
        groups_N=members[0].example_ids_N,
    )
    rows, blocks = [], {}
    first = min(seed for _, seed in keys)
    for s, ((control, seed), acts) in enumerate(zip(keys, members)):
        n_coded = int(code.block_ends[s][-1])
        for metric, value in (
            ("codelength_per_label", code.codelength_S[s] / n_coded),
            ("compression", code.compression_S[s]),
        ):
            rows.append(
                dict(
                    method=method,
                    control=control,
                    seed=seed,
                    metric=metric,
                    value=float(value),
                    degenerate=one_class(acts),
                )
            )
        if seed == first:
            blocks[control] = dict(
                ends=code.block_ends[s].tolist(),
                bits=code.block_bits[s].tolist(),
                uniform_bits=float(code.uniform_S[s]),
                seed=seed,
            )
    return rows, blocks


def _kind_of(spec: str) -> tuple[probe_kinds.ProbeKind, Any]:
    """The registered kind of a ``--probes`` item and its parsed parameters (the config has refused any other)."""
    found = probe_kinds.parse(spec)
    if found is None:
        raise ConfigError(f"probe kind {spec!r} is not registered: use one of {list(probe_kinds.names())}")
    return found


def _sparse_rows(
    groups: list[list[tuple[Arm, ActivationSet]]],
    n_classes: int,
    ks: tuple[int, ...],
    hp: dict[str, Any],
    device: str = "cpu",
) -> tuple[list[dict], dict[str, Any]]:
    """k-sparse probes (:func:`auditkit.methods.probes.sparse.sparse_probe`) on the raw dimensions of every
    activation matrix (each problem ranks dimensions on its own training rows), method ``probe-k-sparse-k{k}``;
    and their complexity for the method info (k, and the parameters of each k's probe). ``hp``: the shared
    hyperparameters the kind declares (``C``). Fitted on ``device``."""
    rows = []
    for members in groups:
        labelled = [acts for _, acts in members]
        y_SN, test_SN = stack_labels(labelled)
        clusters_SN = np.stack([a.example_ids_N for a in labelled])
        res = sparse_probe(
            labelled[0].acts_ND.to(device),
            y_SN.to(device),
            ~test_SN.to(device),
            n_classes,
            test_SN=test_SN,
            ks=ks,
            clusters_SN=clusters_SN,
            **hp,
        )
        for r in res.rows:
            arm, acts = members[r.pop("problem")]
            r["degenerate"] = one_class(acts)
            rows.append(
                dict(
                    method=f"probe-{SPARSE_KIND}-k{r.pop('k')}", control=arm.control, seed=arm.seed, draw=arm.draw, **r
                )
            )
    out = 1 if n_classes == 2 else n_classes
    d = int(groups[0][0][1].acts_ND.shape[1])
    info = dict(
        ks=",".join(map(str, ks)),
        complexity="k input dimensions",
        rank_by="standardized class-mean difference",
        n_params=",".join(str((min(k, d) + 1) * out) for k in ks),
    )
    return rows, info


OWN_FITS = {SPARSE_KIND: _sparse_rows}
"""The fit of every registered kind that is not a stacked estimator (:attr:`~auditkit.methods.probes.registry.
ProbeKind.spec`), by name: ``(groups, n_classes, params, hp, device) -> (rows, info)``."""
