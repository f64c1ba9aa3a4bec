"""The ``sae`` method's report section and figure (rendering only: every number comes from the result)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
from scipy import stats

from auditkit.audit.options import SAE_BASELINE_DESCRIPTIONS, SAE_BASELINES
from auditkit.audit.result import AuditResult
from auditkit.audit.sae import SAE_METRICS
from auditkit.controls import registry
from auditkit.metrics.evidence import DESCRIPTIVE
from auditkit.metrics.reliability import SEPARATES, reliability_table
from auditkit.report.plots import MARKS, arm_name, arms_grid
from auditkit.report.tables import control_sections, fmt, markdown_table, method_selectivity

FIGURE = "sae_arms.png"
RELIABILITY = "sae_reliability.csv"
"""The metric-reliability table (:func:`reliability`), written beside the figure from the saved tables."""
FIGURE_METRICS = ("explained_variance", "ce_loss_recovered", "kl", "probe_acc_k5", "dead_fraction", "token_entropy")
ARM_DESCRIPTIONS = SAE_BASELINE_DESCRIPTIONS
"""What the SAE baselines remove (the registered controls carry their own, read by ``control_sections``)."""
QUESTIONS = (
    (
        "the model and token controls",
        (
            "does the model's activation space hold this? (a fresh SAE, same budget and "
            "seed, on the activations of a reinitialised model or of random tokens)"
        ),
    ),
    (
        "the SAE baselines",
        (
            "did training find anything a random, untrained, frozen, PCA or identity dictionary would "
            "not? "
            "(the *real* activations and split, encoded by a dictionary training did not find)"
        ),
    ),
    ("the label controls", "do the latents' probes read the labels, or structure any labelling would show?"),
)
"""The question each group of controls answers, in the order of :func:`control_groups`."""


def control_groups(controls: list[str]) -> list[tuple[str, str, list[str]]]:
    """(group, question, controls that ran) for each group with a control, in :data:`QUESTIONS` order."""
    members = (
        [c for c in controls if c not in SAE_BASELINES and registry.stage_of(c) != "label"],
        [c for c in controls if c in SAE_BASELINES],
        [c for c in controls if registry.stage_of(c) == "label"],
    )
    return [(group, question, names) for (group, question), names in zip(QUESTIONS, members) if names]


BASELINE_BUILDS = {
    "sae-untrained": "`sae-untrained` is the SAE training starts from (same init code and seed)",
    "sae-frozen-decoder": "`sae-frozen-decoder` trains encoder and biases with the decoder fixed at a spectrum-matched "
    "random dictionary (the trained decoder's singular values, Haar-random singular vectors)",
    "sae-soft-frozen-decoder": "`sae-soft-frozen-decoder` trains from the SAE's initialisation with every decoder row "
    "held at cosine >= 0.8 to its initial row",
    "sae-frozen-encoder": "`sae-frozen-encoder` trains decoder and biases with the encoder fixed at its initialisation",
}
"""How each trained-shape SAE baseline is built, for the report (pca and identity share one sentence)."""


def baseline_lines(info: dict[str, Any]) -> list[str]:
    """How each SAE baseline that ran was built (from the method's info)."""
    if not info.get("baselines"):
        return []
    ran = info["baselines"]
    shapes = ", ".join(f"{c} F = {b['d_sae']}" for c, b in ran.items())
    k = "the same k" if info["config"]["architecture"] == "topk" else "k = the trained SAE's mean L0 on training rows"
    parts = [text for c, text in BASELINE_BUILDS.items() if c in ran]
    bases = [c for c in ("pca", "identity") if c in ran]
    if bases:
        what = {
            "pca": "`pca` (top principal directions, F capped at 2D)",
            "identity": "`identity` (the neuron basis, F = 2D)",
        }
        parts.append(
            f"{' and '.join(what[c] for c in bases)} {'are' if len(bases) > 1 else 'is a'} signed TopK "
            f"code{'s' if len(bases) > 1 else ''}, {k}, centred on the training mean: each direction is two "
            "atoms (+v, -v) so TopK keeps the largest |coefficient| with its sign"
        )
    trained = [c for c in ("sae-frozen-decoder", "sae-soft-frozen-decoder", "sae-frozen-encoder") if c in ran]
    same = f" ({', '.join(trained)}: the real arm's SAE's budget and seed)" if trained else ""
    return [f"- SAE baselines ({shapes}): built per seed from the real arm's training rows{same}. {'; '.join(parts)}."]


def _mean_ci(values: pd.Series) -> str:
    """``mean [low, high]``: the 95% Student-t interval of the mean over seeds."""
    n, mean = len(values), float(values.mean())
    if n < 2:
        return fmt(mean)
    half = float(stats.t.ppf(0.975, n - 1)) * float(values.std(ddof=1)) / math.sqrt(n)
    return f"{fmt(mean)} [{fmt(mean - half)}, {fmt(mean + half)}]"


def metric_by_arm(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per metric, one column per arm: mean over seeds and its 95% interval."""
    sae = rows[rows["method"] == "sae"]
    arms = list(dict.fromkeys(sae["control"]))
    table = {
        metric: {
            arm_name(a): _mean_ci(g[g["control"] == a]["value"]) if (g["control"] == a).any() else "" for a in arms
        }
        for metric, g in sae.groupby("metric", sort=False)
    }
    return pd.DataFrame.from_dict(table, orient="index").rename_axis("metric").reset_index()


def separation_lines(sel: pd.DataFrame) -> list[str]:
    """Which metrics separate the trained model from which controls, read off the verdicts."""
    if sel.empty:
        return ["No control ran, so no metric can be said to separate the trained model from anything."]
    groups: dict[str, list[str]] = {}
    reversed_: list[str] = []
    fixed = sel[sel["verdict"] == DESCRIPTIVE]
    for metric, sub in sel[sel["verdict"] != DESCRIPTIVE].groupby("metric", sort=False):
        hits = sub[sub["verdict"].isin(SEPARATES)]
        if len(hits) == len(sub):
            key = "every control that ran"
        elif hits.empty:
            key = "no control"
        else:
            key = ", ".join(hits["control"]) + " only"
        groups.setdefault(key, []).append(metric)
        low = sub[(sub["ci_high"] < 0) & (sub["metric"].map(_direction) != 0)]
        reversed_ += [f"{metric} vs {c}" for c in low["control"]]
    ends = ("every control that ran", "no control")
    order = [ends[0], *(k for k in groups if k not in ends), ends[1]]
    lines = []
    for key in order:
        if key in groups:
            lines.append(f"- Separate the real arm from {key}: {', '.join(groups[key])}.")
    if reversed_:
        lines.append(
            "- The control arm scores *better* (interval of real - control below zero, direction-corrected) on: "
            + "; ".join(reversed_)
            + "."
        )
    if not fixed.empty:
        pairs = "; ".join(f"{m} vs {c}" for m, c in zip(fixed["metric"], fixed["control"]))
        lines.append(f"- No verdict (descriptive: the control's value is fixed by how it is built): {pairs}.")
    return lines


def sae_section(result: AuditResult) -> list[str]:
    """The report section of the ``sae`` method."""
    info = result.method_info["sae"].extras
    c = info["config"]
    shape = (
        f"k={c['k']}"
        if c["architecture"] == "topk"
        else (f"l1={c['l1_coefficient']:g}" if c["architecture"] == "standard" else f"l0={c['l0_coefficient']:g}")
    )
    sel = method_selectivity(result, "sae")
    lines = [
        "## Method: sae",
        "",
        (
            f"- One {c['architecture']} SAE (F = {info['d_sae']}, {shape}, lr {c['lr']:g}, batch {c['batch_size']}, "
            f"{c['training_tokens']:,} training tokens) per arm and seed, trained with sae-lens's SAETrainer on the "
            f"seed's training texts at every token position ({info['train_tokens']:,} rows; BOS excluded) and scored on "
            f"its held-out texts ({info['test_tokens']:,} rows); every arm of a seed shares the hyper-parameters, budget "
            "and initialisation seed, so arms differ only in their activations."
        ),
        (
            f"- Splice metrics on the first {info['splice_texts']} held-out texts of each seed, in each arm's own model "
            "(random-token arms: the trained model on that arm's random tokens; weight controls: the reinitialised model)."
        ),
        f"- k-sparse probing at the audit's `{info['probe_positions']}` positions, on the same split"
        + (
            f"; label controls ({', '.join(info['label_controls'])}) reuse the real arm's latents with their labels "
            "and give probing rows only."
            if info["label_controls"]
            else "."
        ),
    ]
    if info.get("loaded"):
        lines.append(
            f"- The real arm is scored with the loaded SAE `{info['loaded']}` (not trained here); control arms train "
            "SAEs of its architecture and width on the budget above, so a difference mixes learned structure with "
            "the loaded SAE's larger training budget."
        )
    lines += baseline_lines(info)
    if "ev_over_pca" in info["definitions"]:
        lines.append(
            "- Every arm's explained variance is also read against the PCA and identity codes of *its own* "
            "activations at its SAE's k (`ev_over_pca`, `ev_over_identity`; `ev_pca` and `ev_identity` are those "
            "codes' explained variance): a gap in raw explained variance between arms whose activations differ in "
            "rank says little about the SAE; a gap in `ev_over_pca` says the SAE gains more over a basis on one arm."
        )
    groups = control_groups(list(dict.fromkeys(sel["control"])))
    lines += [f"- Against {group}: {question} ({', '.join(names)})." for group, question, names in groups]
    ce = ", ".join(f"{arm_name(a)} {v['ce_clean']:.2f}" for a, v in info["arms"].items() if "ce_clean" in v)
    lines += [
        f"- Clean next-token CE of each arm's model on its splice texts (nats, mean over seeds): {ce}.",
        "",
        "### Metrics by arm (mean over seeds, 95% interval of the mean)",
        "",
        markdown_table(metric_by_arm(result.rows)),
        "",
        f"![SAE metrics by arm]({FIGURE})",
        "",
        "### What separates the trained model from the controls",
        "",
        "Read off the verdicts below (directional metrics: selective; descriptive ones: differs).",
        "",
        *_separations(sel),
        "",
        *reliability_lines(reliability(result)),
        "### Metric definitions",
        "",
        *[f"- {text}" for text in info.get("conventions", [])],
        *[f"- `{m}` ({_direction_word(m)}): {text}" for m, text in info["definitions"].items()],
        *_descriptive_legend(sel),
        "",
        "### Selectivity by control (real minus control, paired by seed; sign-flipped where lower is better)",
        "",
        *control_sections(sel, level="####", descriptions=ARM_DESCRIPTIONS),
    ]
    return lines


def _descriptive_legend(sel: pd.DataFrame) -> list[str]:
    """The legend line of the pairs with no verdict, where any ran."""
    fixed = sel[sel["verdict"] == DESCRIPTIVE]
    if fixed.empty:
        return []
    metrics, controls = (", ".join(f"`{v}`" for v in dict.fromkeys(fixed[c])) for c in ("metric", "control"))
    return [
        (
            f"- {MARKS[DESCRIPTIVE]} descriptive: {metrics} against {controls} get no verdict. Those codes are a "
            "fixed basis read with a top-k rule, so which of their latents never or often fire is set by how they "
            "are built, not learned: the difference is shown (selectivity and interval), never judged."
        )
    ]


def _separations(sel: pd.DataFrame) -> list[str]:
    """:func:`separation_lines`, read apart for the arm controls and the SAE baselines when both ran (each
    answers its own question, so "every control" should not mix them)."""
    baseline = sel["control"].isin(list(SAE_BASELINES))
    if baseline.all() or not baseline.any():
        return separation_lines(sel)
    return [
        "Against the model, token and label controls:",
        "",
        *separation_lines(sel[~baseline]),
        "",
        "Against the SAE baselines:",
        "",
        *separation_lines(sel[baseline]),
    ]


RELIABILITY_INTRO = (
    "Per metric: its reseed spread (**SD**: standard deviation over seeds of the trained SAE's value on the real "
    "arm; each seed redraws the split, the SAE's initialisation and its data order), and against each SAE baseline "
    "and reinitialised model the verdict's mark with the smallest difference this audit could detect there: the "
    'minimum detectable effect at 80% power for a directional metric (a ✗ with a large one means "not shown at '
    "this size\"), ± the 95% interval's half-width for a two-sided one (≠ / =); "
    f"{MARKS[DESCRIPTIVE]} a pair fixed by how the control is built, with no verdict. **Tells**: how many of those "
    f"controls the metric separates from the trained SAE (✓ or ≠). The same table, long: `{RELIABILITY}`."
)


def reliability(result: AuditResult) -> pd.DataFrame:
    """The metric-reliability table (:func:`auditkit.metrics.reliability.reliability_table`) of an SAE audit:
    every metric it reports against each SAE baseline and reinitialised model that ran."""
    controls = [c for c in result.controls if c in SAE_BASELINES or registry.stage_of(c) == "weight"]
    metrics = list(result.method_info["sae"].extras["definitions"])
    return reliability_table(result.rows, result.selectivity, method="sae", metrics=metrics, controls=controls)


def _reliability_cell(r: Any) -> str:
    mark = MARKS.get(r.verdict, "?")
    if r.detectable_kind == "none" or math.isnan(r.detectable):
        return mark
    return f"{mark} {'±' if r.detectable_kind == 'half-width' else ''}{r.detectable:.3g}"


def reliability_lines(table: pd.DataFrame) -> list[str]:
    """The section "Which metrics can tell trained from random at this budget" (empty when no SAE baseline or
    reinitialised model ran)."""
    if table.empty:
        return []
    wide: dict[str, dict[str, str]] = {}
    for r in table.itertuples(index=False):
        row = wide.setdefault(r.metric, {"metric": r.metric, "SD": f"{r.reseed_sd:.3g}"})
        row[r.control] = _reliability_cell(r)
    judged = table[table["separates"].notna()]
    count = judged.groupby("metric", sort=False)["separates"].agg(lambda s: (int(s.astype(bool).sum()), len(s)))
    for metric, row in wide.items():
        row["tells"] = "{} of {}".format(*count[metric]) if metric in count else ""
    every = [m for m, (k, n) in count.items() if k == n]
    none = [m for m, (k, n) in count.items() if k == 0]
    return [
        "### Which metrics can tell trained from random at this budget",
        "",
        RELIABILITY_INTRO,
        "",
        markdown_table(pd.DataFrame(list(wide.values())).fillna("")),
        "",
        f"- Tell the trained SAE from every one of these controls: {', '.join(every) or 'no metric'}.",
        f"- From none of them: {', '.join(none) or 'no metric'}.",
        "",
    ]


def _direction(metric: str) -> int:
    """+1 higher is better, -1 lower, 0 descriptive (:data:`auditkit.audit.sae.SAE_METRICS`)."""
    return SAE_METRICS[metric][0] if metric in SAE_METRICS else 1


def _direction_word(metric: str) -> str:
    return {1: "higher is better", -1: "lower is better", 0: "descriptive, two-sided"}[_direction(metric)]


def sae_figures(result: AuditResult, folder: Path) -> None:
    """``sae_arms.png``: per-seed values of the key metrics for every arm, a grid of panels; and
    :data:`RELIABILITY`, the metric-reliability table read from the same result."""
    reliability(result).to_csv(folder / RELIABILITY, index=False)
    rows = result.rows[result.rows["method"] == "sae"]
    metrics = [m for m in FIGURE_METRICS if (rows["metric"] == m).any()]
    arms_grid(
        rows,
        folder / FIGURE,
        [("sae", m) for m in metrics],
        "SAE metrics per arm (one point = one seed; bar = mean over seeds)",
    )
