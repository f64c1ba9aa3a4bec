"""The ``sae`` method's report section and figure (rendering only: every number comes from the result)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
from scipy import stats

from auditkit.audit.sae import SAE_METRICS
from auditkit.report.plots import arm_name, arms_grid
from auditkit.report.tables import control_sections, fmt, markdown_table, method_selectivity

FIGURE = "sae_arms.png"
FIGURE_METRICS = ("explained_variance", "ce_loss_recovered", "kl", "probe_acc_k5", "dead_fraction", "token_entropy")
SEPARATES = ("selective", "differs")


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
    for metric, sub in sel.groupby("metric", sort=False):
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
    return lines


def sae_section(result: Any) -> list[str]:
    """The report section of the ``sae`` method."""
    info = result.method_info["sae"]
    c = info["config"]
    shape = f"k={c['k']}" if c["architecture"] == "topk" else (
        f"l1={c['l1_coefficient']:g}" if c["architecture"] == "standard" else f"l0={c['l0_coefficient']:g}"
    )  # fmt: skip
    sel = method_selectivity(result, "sae")
    lines = [
        "## Method: sae",
        "",
        f"- One {c['architecture']} SAE (F = {info['d_sae']}, {shape}, lr {c['lr']:g}, batch {c['batch_size']}, "
        f"{c['training_tokens']:,} training tokens) per arm and seed, trained with sae-lens's SAETrainer on the "
        f"seed's training texts at every token position ({info['train_tokens']:,} rows; BOS excluded) and scored on "
        f"its held-out texts ({info['test_tokens']:,} rows); every arm of a seed shares the hyper-parameters, budget "
        "and initialisation seed, so arms differ only in their activations.",
        f"- Splice metrics on the first {info['splice_texts']} held-out texts of each seed, in each arm's own model "
        "(random-token arms: the trained model on that arm's random tokens; weight controls: the reinitialised model).",
        f"- k-sparse probing at the audit's `{info['probe_positions']}` positions, on the same split"
        + (f"; label controls ({', '.join(info['label_controls'])}) reuse the real arm's latents with their labels "
           "and give probing rows only." if info["label_controls"] else "."),
    ]  # fmt: skip
    if info.get("loaded"):
        lines.append(
            f"- The real arm is scored with the loaded SAE `{info['loaded']}` (not trained here); control arms train "
            "SAEs of its architecture and width on the budget above, so a difference mixes learned structure with "
            "the loaded SAE's larger training budget."
        )
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
        *separation_lines(sel),
        "",
        "### Metric definitions",
        "",
        *[f"- `{m}` ({_direction_word(m)}): {text}" for m, text in info["definitions"].items()],
        "",
        "### Selectivity by control (real minus control, paired by seed; sign-flipped where lower is better)",
        "",
        *control_sections(sel, level="####"),
    ]
    return lines


def _direction(metric: str) -> int:
    """+1 higher is better, -1 lower, 0 descriptive (:data:`auditkit.audit.sae.SAE_METRICS`)."""
    return SAE_METRICS[metric][0] if metric in SAE_METRICS else 1


def _direction_word(metric: str) -> str:
    return {1: "higher is better", -1: "lower is better", 0: "descriptive, two-sided"}[_direction(metric)]


def sae_figures(result: Any, folder: Path) -> None:
    """``sae_arms.png``: per-seed values of the key metrics for every arm, a grid of panels."""
    rows = result.rows[result.rows["method"] == "sae"]
    metrics = [m for m in FIGURE_METRICS if (rows["metric"] == m).any()]
    arms_grid(rows, folder / FIGURE, [("sae", m) for m in metrics],
              "SAE metrics per arm (one point = one seed; bar = mean over seeds)")  # fmt: skip
