"""The markdown control report."""

from __future__ import annotations

import importlib
import math
from typing import Any, Callable

import pandas as pd

from auditkit.controls import DESCRIPTIONS
from auditkit.metrics.selectivity import INTERVAL_RULE, REAL, TWO_SIDED_RULE, VERDICT_RULE

SECTIONS: dict[str, str] = {}
"""``module:function`` rendering a method's own report section, ``f(result) -> list[str]`` of markdown
lines; a method not listed gets the generic section (its selectivity tables by control)."""
SECTIONS["pursuit"] = "auditkit.report.pursuit:pursuit_section"
SECTIONS["sae"] = "auditkit.report.sae:sae_section"


def _fmt(x: Any, digits: int = 3) -> str:
    if isinstance(x, float):
        return "n/a" if math.isnan(x) else f"{x:.{digits}f}"
    return str(x)


def _table(df: pd.DataFrame) -> str:
    head = "| " + " | ".join(df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def results_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds of every (method, arm, metric)."""
    g = rows.groupby(["method", "control", "metric"])["value"]
    out = pd.concat([g.mean().rename("mean"), g.std(ddof=1).rename("sd"), g.size().rename("seeds")], axis=1)
    out = out.reset_index().rename(columns={"control": "arm"})
    out["arm"] = out["arm"].replace({REAL: "real"})
    return out


def _control_sections(sel: pd.DataFrame, level: str = "###") -> list[str]:
    lines = []
    for control in dict.fromkeys(sel["control"]):
        sub = sel[sel["control"] == control].drop(columns=["control", "n_seeds"])
        lines += [f"{level} {control}", "", DESCRIPTIONS.get(control, ""), "", _table(sub), ""]
    return lines


def _section_renderer(method: str) -> Callable[[Any], list[str]]:
    if method == "probe":
        return _probe_section
    if method not in SECTIONS:
        return lambda result: _generic_section(result, method)
    module, _, name = SECTIONS[method].partition(":")
    return getattr(importlib.import_module(module), name)


def method_selectivity(result: Any, method_prefix: str) -> pd.DataFrame:
    """Selectivity rows of one method (``probe`` matches ``probe-logistic``, ``probe-mlp``, ...)."""
    sel = result.selectivity
    if sel.empty:
        return sel
    m = sel["method"]
    return sel[(m == method_prefix) | m.str.startswith(method_prefix + "-")]


def _generic_section(result: Any, method: str) -> list[str]:
    lines = [f"## Method: {method}", "", "Selectivity by control (real minus control, paired by seed):", ""]
    return lines + _control_sections(method_selectivity(result, method))


def _probe_section(result: Any) -> list[str]:
    cfg, info = result.config, result.method_info["probe"]
    return [
        "## Method: probe",
        "",
        "- Probes: " + "; ".join(f"{k} ({', '.join(f'{a}={b}' for a, b in v.items())})" for k, v in info["kinds"].items())
        + f"; C={info['C']:g}; {len(cfg.seeds)} seeds {list(cfg.seeds)}, each with its own train/test split by "
        f"example (test fraction {cfg.test_fraction:g}) and control draw",
        "- Metrics, on each seed's held-out test split: accuracy: share of correct predictions; balanced_accuracy: "
        "mean recall over classes; macro_f1: unweighted mean F1 over classes; auroc (binary only): area under the "
        "ROC curve of the positive-class probability.",
        "",
        "### Selectivity by control (real minus control, paired by seed)",
        "",
        "Normalised selectivity is (real - control) / (ceiling - control): the share of the headroom above the "
        "control that the real arm reaches.",
        "",
        *_control_sections(method_selectivity(result, "probe"), level="####"),
    ]


def _verdict_lines(result: Any) -> list[str]:
    sel, lines = result.selectivity, []
    for method, info in result.method_info.items():
        msel = method_selectivity(result, method)
        for r in msel[msel["metric"].isin(info.get("headline", ["accuracy"]))].itertuples(index=False):
            lines.append(
                f"- **{r.method}** vs **{r.control}**: {r.verdict} ({r.metric} {r.real:.3f} real vs "
                f"{r.control_score:.3f} control; selectivity {r.selectivity:+.3f}, "
                f"95% CI [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}], {r.n_seeds} seeds"
                + (f"; {r.note}" if getattr(r, "note", "") else "") + ")"
            )
    return lines or ["- no control ran: there is nothing to compare the real arm with"]


def _dataset_line(ds: dict[str, Any]) -> str:
    if ds["level"] == "vocabulary":  # a --matrix audit: the rows are vocabulary tokens, not texts
        return (
            f"- Dataset: `{ds['name']}` ({ds['n_items']} vocabulary tokens sampled from {ds['usable_tokens']} usable of "
            f"{ds['vocab_size']}; labels from the {ds['source']}; classes {ds['class_names']} with counts "
            f"{ds['class_counts']}; fingerprint `{ds['fingerprint'][:16]}`)"
        )
    line = (
        f"- Dataset: `{ds['name']}` ({ds['level']}-level, {ds['n_texts']} distinct texts, {ds['n_items']} labelled "
        f"items, {ds['n_tokens']} tokens; classes {ds['class_names']} with counts {ds['class_counts']}; "
        f"fingerprint `{ds['fingerprint'][:16]}`)"
    )
    if dup := ds.get("duplicates"):
        line += "\n" + duplicates_line(dup)
    return line + "".join(f"\n- Labels: {note}" for note in ds.get("label_notes", ()))


def duplicates_line(dup: dict[str, Any]) -> str:
    """One bullet saying what the source held in repeats and what the policy did."""
    return (
        f"- Repeated texts: {dup['repeated_texts']} distinct texts occur more than once in the source, covering "
        f"{dup['repeated_rows']} of its {dup['source_texts']} texts; {dup['label_conflicts']} with copies whose "
        f"labels disagree; policy `{dup['policy']}` ({dup['dropped_items']} items dropped); "
        f"{dup.get('merged_after_tokenising', 0)} texts merged for identical token ids. Copies are one example: "
        "never on both sides of a split."
    )


def render(result: Any, command: str, plot_name: str | None) -> str:
    """report.md for an :class:`auditkit.audit.AuditResult`."""
    cfg, prov, ds, ex = result.config, result.provenance, result.dataset, result.extraction
    lines = [
        f"# auditkit control report: {ds['name']} on {prov['name']}",
        "",
        "## Verdicts",
        "",
        *_verdict_lines(result),
        "",
        f"Verdict rule: {VERDICT_RULE.format(threshold=cfg.selectivity_threshold)}; {TWO_SIDED_RULE}; "
        f"{INTERVAL_RULE}. "
        "Selectivity is signed so that positive means the real arm does better (for a metric where lower is "
        "better, control - real).",
        "",
        "## What was audited",
        "",
        f"- Model: `{prov['name']}` (source {prov['source']}, architecture {prov['architecture']}, "
        f"revision {prov['revision']}, weights {prov['weights_variant']}, TransformerLens weight processing "
        f"{'applied' if prov['processed'] else 'not applied'}, {prov['n_layers']} layers, d_model {prov['d_model']}, "
        f"BOS prepended: {prov['prepend_bos']})",
        _dataset_line(ds),
        *([(f"- Truncated: {ds['n_truncated']} of {ds['n_texts']} texts were longer than --max-length {cfg.max_length} "
            "tokens and were cut to it")] if "n_truncated" in ds else []),
        f"- Activations: hook `{ex['hook']}`, positions `{ex['positions']}`"
        + (f", {ex['rows']} rows x {ex['d']} dims" if ex.get("rows") is not None else ""),
        f"- Methods: {', '.join(result.method_info)}",
        f"- Controls: {', '.join(result.controls)}; every control arm of a seed uses that seed's split, and its "
        "own draw (`derive_seed(seed, control)`)",
        "",
    ]
    for method in result.method_info:
        lines += _section_renderer(method)(result)
    lines += [
        "## Results (mean and standard deviation over seeds)",
        "",
        _table(results_summary(result.rows)),
        "",
    ]
    if plot_name:
        lines += [f"![real vs control]({plot_name})", ""]
    lines += [
        "## Reproduce",
        "",
        "```",
        command,
        "```",
        "",
        "Per-seed rows are in `results.csv`; the full configuration, library versions and timings in `run.json`.",
        "",
    ]
    return "\n".join(lines)
