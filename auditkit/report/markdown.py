"""The markdown audit report: what was audited, the verdicts, each method's section, the reproduce command."""

from __future__ import annotations

from auditkit.audit.records import DatasetInfo
from auditkit.audit.registry import METHODS
from auditkit.audit.result import AuditResult
from auditkit.metrics.selectivity import TWO_SIDED_RULE, VERDICT_RULE, interval_rule
from auditkit.report.summary import summary_lines
from auditkit.report.tables import (
    collapsed,
    control_sections,
    duplicates_line,
    markdown_table,
    method_selectivity,
    results_summary,
)


def reproduce_section(command: str) -> list[str]:
    """The ``## Reproduce`` section of a report: the exact command in a code block."""
    return ["## Reproduce", "", "```", command, "```", ""]


def _generic_section(result: AuditResult, method: str) -> list[str]:
    lines = [f"## Method: {method}", "", "Selectivity by control (real minus control, paired by seed):", ""]
    return lines + control_sections(method_selectivity(result, method))


def _dataset_line(ds: DatasetInfo) -> str:
    # class names and counts print as the lists run.json holds (the report predates the typed record)
    names, counts = list(ds.class_names), list(ds.class_counts)
    if ds.level == "vocabulary":  # a --matrix audit: the rows are vocabulary tokens, not texts
        return (
            f"- Dataset: `{ds.name}` ({ds.n_items} vocabulary tokens sampled from {ds.usable_tokens} usable of "
            f"{ds.vocab_size}; labels from the {ds.source}; classes {names} with counts "
            f"{counts}; fingerprint `{ds.fingerprint[:16]}`)"
        )
    line = (
        f"- Dataset: `{ds.name}` ({ds.level}-level, {ds.n_texts} distinct texts, {ds.n_items} labelled "
        f"items, {ds.n_tokens} tokens; classes {names} with counts {counts}; "
        f"fingerprint `{ds.fingerprint[:16]}`)"
    )
    if dup := ds.duplicates:
        line += "\n" + duplicates_line(dup)
    return line + "".join(f"\n- Labels: {note}" for note in ds.label_notes or ())


def render(result: AuditResult, command: str, plot_name: str | None, summary_plot: str | None = None) -> str:
    """report.md for an :class:`auditkit.audit.result.AuditResult`: the first screen (:mod:`auditkit.report.summary`),
    what was audited, each method's section (long tables collapsed), every metric collapsed, the reproduce command."""
    cfg, prov, ds, ex = result.config, result.provenance, result.dataset, result.extraction
    rule = (
        f"Verdict rule: {VERDICT_RULE.format(threshold=cfg.selectivity_threshold)}; {TWO_SIDED_RULE}; "
        f"{interval_rule(result.selectivity)}. "
        "Selectivity is signed so that positive means the real arm does better (for a metric where lower is "
        "better, control - real)."
        + (
            f" The threshold {cfg.selectivity_threshold:g} is in each metric's own units: points of accuracy, "
            "AUROC or F1; bits per label for a codelength; nats for KL and CE; a ratio for compression or "
            "EV / EV of PCA; a fraction for explained variance, FVU and dead or dense latents."
            if "df" in result.selectivity.columns
            else ""
        )
    )
    lines = [
        f"# auditkit control report: {ds.name} on {prov.name}",
        "",
        *summary_lines(result, rule, summary_plot),
        "## What was audited",
        "",
        (
            f"- Model: `{prov.name}` (source {prov.source}, architecture {prov.architecture}, "
            f"revision {prov.revision}, weights {prov.weights_variant}, TransformerLens weight processing "
            f"{'applied' if prov.processed else 'not applied'}, {prov.n_layers} layers, d_model {prov.d_model}, "
            f"BOS prepended: {prov.prepend_bos})"
        ),
        _dataset_line(ds),
        *(
            [
                (
                    f"- Truncated: {ds.n_truncated} of {ds.n_texts} texts were longer than --max-length {cfg.max_length} "
                    "tokens and were cut to it"
                )
            ]
            if ds.n_truncated is not None
            else []
        ),
        f"- Activations: hook `{ex.hook}`, positions `{ex.positions}`"
        + (f", {ex.rows} rows x {ex.d} dims" if ex.rows is not None else ""),
        f"- Methods: {', '.join(result.method_info)}",
        f"- Controls: {', '.join(result.controls)}; every control arm of a seed uses that seed's split, and its "
        + (
            "own draw (`derive_seed(seed, control)`)"
            if "df" not in result.selectivity.columns
            else f"own draws, averaged within the seed: {cfg.label_draws} of each label control, {cfg.weight_draws} of "
            "each reinitialised model (`--label-draws`, `--weight-draws`)"
        ),
        "",
    ]
    for method in result.method_info:
        section = METHODS[method].section if method in METHODS else None
        lines += section(result) if section else _generic_section(result, method)
    if plot_name:
        lines += ["## Scores per arm", "", f"![held-out scores per arm and seed]({plot_name})", ""]
    lines += [
        "## Results (mean and standard deviation over seeds)",
        "",
        *collapsed("every metric of every arm", markdown_table(results_summary(result.rows))),
    ]
    lines += [
        *reproduce_section(command),
        "Per-seed rows are in `results.csv`; the full configuration, library versions and timings in `run.json`.",
        "",
    ]
    return "\n".join(lines)
