"""The embedded SAE evaluation's report folder (``auditkit sae-evals``): ``summary.md``, tables, ``run.json``.

``summary.md`` opens with one sentence on what was trained and scored and the metric x baseline verdict matrix
(rows: metric at each budget, columns: the SAE baselines and the activation bases; cells: selectivity [95% CI]
and mark), then sparse probing task by task (counts of q-value discoveries per control), how each metric's
separation changes with the budget, the metric-reliability table, the conventions and the cost. Renders only:
the numbers come from :func:`auditkit.calibration.sae_breadth.run_sae_breadth`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.calibration.sae_breadth import BASES, PROBE_KS, RECONSTRUCTION, budget_label
from auditkit.metrics.selectivity import VERDICT_RULE
from auditkit.report.outputs import atomic_folder
from auditkit.report.summary import LEGEND, MDE_LEGEND, markdown_matrix, matrix_row, matrix_table
from auditkit.report.tables import collapsed, markdown_table
from auditkit.report.write import write_run_json
from auditkit.types import REAL

KIND = "sae-evals"
OWNED = ("summary.md", "run.json", "results.csv", "selectivity.csv", "reliability.csv")
Q_LEVEL = 0.05
"""False-discovery level of the probing counts (Benjamini-Hochberg over every task and control of one metric and
budget)."""
HEADLINE = (*RECONSTRUCTION, *(f"mean_probe_acc_k{k}" for k in PROBE_KS))
SEPARATING = ("selective", "control better", "differs")


def _controls(result: Any) -> list[str]:
    return list(result.info["controls"])


def verdict_matrix(result: Any) -> pd.DataFrame:
    """The long verdict matrix of the headline metrics (method ``sae``), one row per (metric, budget)."""
    sel = result.selectivity[result.selectivity["method"] == "sae"]
    parts = []
    for metric in HEADLINE:
        for budget in result.config.budgets:
            cells = sel[(sel["metric"] == metric) & (sel["budget"] == budget)]
            if not cells.empty:
                parts.append(matrix_row(cells, f"{metric} @ {budget_label(budget)}", method="sae", metric=metric))
    if not parts:
        return pd.DataFrame()
    out = pd.concat(parts, ignore_index=True)
    order = {c: i for i, c in enumerate(_controls(result))}
    out["_c"] = out["control"].map(order)
    out["_r"] = out["row"].map({r: i for i, r in enumerate(dict.fromkeys(out["row"]))})
    return out.sort_values(["_r", "_c"], kind="stable").drop(columns=["_r", "_c"]).reset_index(drop=True)


def scored_sentence(result: Any) -> str:
    cfg, info = result.config, result.info
    corpus = info["corpus"]
    budgets = " and ".join(f"{b:,}" for b in cfg.budgets)
    return (
        f"TopK SAEs (F = {cfg.width}, k = {cfg.k}, batch {cfg.batch_size}) trained on `{info['provenance']['name']}` "
        f"at `{info['hook']}` on {budgets} tokens of a corpus pooled from every shipped sae-probes dataset "
        f"({corpus['texts']:,} texts, {corpus['tokens']:,} tokens; the {corpus['excluded']:,} texts the probes read "
        f"left out; each token seen once), {len(cfg.seeds)} seeds {list(cfg.seeds)}; each against the six SAE "
        f"baselines, scored on {info['held_out_rows']:,} held-out corpus tokens of {info['held_out_texts']:,} texts "
        f"({cfg.splice_texts} of them for CE "
        f"and KL) and by k-sparse probing (k = {', '.join(map(str, PROBE_KS))}) of {len(info['tasks'])} binary tasks "
        f"({cfg.max_examples} texts each, last token) against the same probes on the activations' neurons and "
        f"principal components and a dense probe; {info['seconds']['total']:.0f} s on {info['torch_threads']} torch "
        "thread(s)."
    )


def probing_counts(result: Any) -> pd.DataFrame:
    """Per (budget, k, control): of the tasks, how many the SAE probe beats (selective, q <= :data:`Q_LEVEL`), how
    many the control beats (control better, q <= it), and the rest; and the median selectivity."""
    sel = result.selectivity
    probing = sel[(sel["method"] != "sae") & sel["metric"].str.startswith("probe_acc_k")]
    rows = []
    for (budget, metric, control), part in probing.groupby(["budget", "metric", "control"], sort=False):
        found = part["q_value"] <= Q_LEVEL
        rows.append(
            dict(
                budget=budget_label(int(budget)),
                k=int(metric.removeprefix("probe_acc_k")),
                control=control,
                tasks=len(part),
                sae_better=int((found & (part["verdict"] == "selective")).sum()),
                control_better=int((found & (part["verdict"] == "control better")).sum()),
                median_selectivity=float(part["selectivity"].median()),
                median_mde=float(part["mde"].median()),
            )
        )
    out = pd.DataFrame(rows)
    order = {c: i for i, c in enumerate(_controls(result))}
    return out.sort_values(["budget", "k", "control"], key=lambda s: s.map(order) if s.name == "control" else s)


def reliability(result: Any) -> pd.DataFrame:
    """One row per (metric, budget): the trained SAE's mean and spread between seeds, the smallest and largest MDE
    over the baselines, and which baselines it separates from (selective, control better or differs)."""
    sel, rows = result.selectivity, result.rows
    real = rows[(rows["method"] == "sae") & (rows["control"] == REAL)]
    out = []
    for metric in HEADLINE:
        for budget in result.config.budgets:
            vals = real[(real["metric"] == metric) & (real["budget"] == budget)]["value"]
            cells = sel[(sel["method"] == "sae") & (sel["metric"] == metric) & (sel["budget"] == budget)]
            if vals.empty:
                continue
            separated = cells[cells["verdict"].isin(SEPARATING)]["control"].tolist()
            out.append(
                dict(
                    metric=metric,
                    budget=budget_label(budget),
                    trained_mean=float(vals.mean()),
                    seed_sd=float(vals.std(ddof=1)) if len(vals) > 1 else math.nan,
                    mde_min=float(cells["mde"].min()),
                    mde_max=float(cells["mde"].max()),
                    separates=len(separated),
                    of=len(cells),
                    from_controls=", ".join(separated) or "none",
                )
            )
    return pd.DataFrame(out)


def budget_lines(result: Any) -> list[str]:
    """How each headline metric's separation changes from the smallest budget to the largest."""
    rel = reliability(result)
    if len(result.config.budgets) < 2 or rel.empty:
        return []
    lo, hi = budget_label(min(result.config.budgets)), budget_label(max(result.config.budgets))
    lines = []
    for metric, part in rel.groupby("metric", sort=False):
        a, b = part[part["budget"] == lo], part[part["budget"] == hi]
        if a.empty or b.empty:
            continue
        a, b = a.iloc[0], b.iloc[0]
        lines.append(
            f"- `{metric}`: trained {a.trained_mean:.3f} -> {b.trained_mean:.3f}; separates from "
            f"{a.separates} of {a.of} controls at {lo}, {b.separates} of {b.of} at {hi}"
            + (f" (now also: {_gained(a, b)})" if _gained(a, b) else "")
            + (f" (no longer: {_lost(a, b)})" if _lost(a, b) else "")
        )
    return lines


def _gained(a: Any, b: Any) -> str:
    return ", ".join(sorted(set(b.from_controls.split(", ")) - set(a.from_controls.split(", ")) - {"none"}))


def _lost(a: Any, b: Any) -> str:
    return ", ".join(sorted(set(a.from_controls.split(", ")) - set(b.from_controls.split(", ")) - {"none"}))


def _format(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype.kind == "f":
            out[col] = out[col].map(lambda v: "" if pd.isna(v) else f"{v:.3g}")
    return out


def _per_task(result: Any) -> str:
    """Every task at the largest budget and k = 5: the SAE probe's accuracy and its verdicts (q-values)."""
    budget = max(result.config.budgets)
    sel, rows = result.selectivity, result.rows
    part = sel[(sel["method"] != "sae") & (sel["metric"] == "probe_acc_k5") & (sel["budget"] == budget)]
    acc = rows[(rows["budget"] == budget) & (rows["metric"] == "probe_acc_k5")].groupby(["method", "control"])["value"]
    means = acc.mean()
    out = []
    for task, cells in part.groupby("method", sort=False):
        line = {"task": task, "sae": f"{means.get((task, REAL), math.nan):.3f}"}
        for c in ("dense-probe", "neuron-basis", "pca", "sae-untrained", "sae-frozen-decoder"):
            hit = cells[cells["control"] == c]
            if not hit.empty:
                r = hit.iloc[0]
                mark = {"selective": "✓", "control better": "▼"}.get(r.verdict, "")
                q = "" if pd.isna(r.q_value) else f" q={r.q_value:.2g}"
                line[c] = f"{means.get((task, c), math.nan):.3f} ({r.selectivity:+.3f}{mark}{q})"
        out.append(line)
    return markdown_table(pd.DataFrame(out))


def render(result: Any) -> str:
    """``summary.md``: sentence and matrix first; probing counts, budgets, reliability, conventions, cost after."""
    from auditkit.audit.sae import CONVENTIONS

    matrix = verdict_matrix(result)
    lines = ["# SAE evaluation with controls: the embedded model", "", scored_sentence(result), "", "## Verdicts", ""]
    lines += [*markdown_matrix(matrix, corner="metric @ budget"), "", LEGEND + " " + MDE_LEGEND, ""]
    lines += [
        (
            "Columns: the six SAE baselines of the audit (`sae-untrained`: the trained SAE's initialisation; "
            "`sae-frozen-decoder`: a spectrum-matched random decoder, encoder trained; `sae-soft-frozen-decoder`: decoder "
            "held at cosine >= 0.8 to its initialisation; `sae-frozen-encoder`: encoder fixed at initialisation; `pca`, "
            "`identity`: signed top-k codes of the principal directions and of the neurons); and, for sparse probing "
            "only, `neuron-basis` / `pca-basis` (the same k-sparse probe on the activations' neurons or principal "
            "components) and `dense-probe` (a logistic probe on every neuron). `mean_probe_acc_k{k}`: the k-sparse "
            "probe's held-out accuracy averaged over the tasks (one value per seed)."
        ),
        "",
        "## Sparse probing, task by task",
        "",
        (
            f"Tasks where the SAE's k-sparse probe beats the control (selective, q <= {Q_LEVEL}) or the control beats it "
            "(control better, q <= it), Benjamini-Hochberg over every task and control of one k and budget; the median "
            "selectivity and minimum detectable effect over tasks."
        ),
        "",
        markdown_table(_format(probing_counts(result))),
        "",
    ]
    budget = budget_lines(result)
    if budget:
        lines += ["## How separation changes with the budget", "", *budget, ""]
    lines += [
        "## Metric reliability",
        "",
        (
            "Per metric and budget: the trained SAE's mean and its spread between seeds (SAE initialisation and batch "
            "order), the minimum detectable effect against the baselines (smallest and largest), and the controls it "
            "separates from at this budget."
        ),
        "",
        markdown_table(_format(reliability(result))),
        "",
    ]
    lines += collapsed("Verdict rule", VERDICT_RULE.format(threshold=result.config.threshold))
    lines += collapsed("Conventions (every metric's definition)", "\n".join(f"- {c}" for c in CONVENTIONS))
    lines += collapsed(
        f"Every task at {budget_label(max(result.config.budgets))}, k = 5 (accuracy; selectivity, mark and q)",
        _per_task(result),
    )
    seconds = {k: f"{v:.1f}" for k, v in result.info["seconds"].items()}
    cost = pd.DataFrame({"stage": list(seconds), "seconds": list(seconds.values())})
    lines += collapsed("Cost", markdown_table(cost))
    return "\n".join(lines)


def terminal_table(result: Any) -> Any:
    """The verdict matrix as a compact ``rich`` table."""
    return matrix_table(verdict_matrix(result), corner="selectivity")


def write_sae_breadth(result: Any, out: Path | str, command: str) -> Path:
    """Write summary.md, results.csv, selectivity.csv, reliability.csv and run.json to ``out`` (replacing only an
    output of this kind)."""
    out = Path(out)
    with atomic_folder(out, KIND, owned=OWNED) as tmp:
        result.rows.to_csv(tmp / "results.csv", index=False)
        result.selectivity.to_csv(tmp / "selectivity.csv", index=False)
        reliability(result).to_csv(tmp / "reliability.csv", index=False)
        write_run_json(tmp, command, result.config, result.info)
        (tmp / "summary.md").write_text(render(result) + f"\n\nReproduce: `{command}`\n")
    return out


__all__ = ["BASES", "KIND", "render", "terminal_table", "write_sae_breadth"]
