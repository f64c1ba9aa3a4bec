"""The sweep report: summary.md (one screen first), figures over depth and over datasets, the tidy tables."""

from __future__ import annotations

import json
import math
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from auditkit.controls import registry
from auditkit.data import kinds as dataset_kinds
from auditkit.metrics.evidence import absence
from auditkit.metrics.lexical import RULE as LEXICAL_RULE
from auditkit.metrics.lexical import is_lexical
from auditkit.report.markdown import reproduce_section
from auditkit.report.outputs import atomic_folder, safe_name
from auditkit.report.plots import (
    MARKS,
    add_effect_colourbar,
    arm_colour,
    cell_rgba,
    effect_colour,
    luminance,
    subplots,
)
from auditkit.report.summary import IDENTICAL, control_task_note, lexical_note, trust_line
from auditkit.report.tables import fmt, markdown_table
from auditkit.report.write import _jsonable, library_versions, recorded_argv, rerender_outputs, table_records
from auditkit.types import REAL

HEADLINE = "accuracy"
"""The metric the summary reads: held-out accuracy of each probe kind, and for the ``sae`` method the
held-out accuracy of its k-sparse probe on the latents (:data:`SAE_READOUT`): the summary asks where and on
which datasets the label is read beyond the controls. Every other metric is in results.csv and selectivity.csv."""
SAE_READOUT = "probe_acc_k5"
LEGEND = ", ".join(f"{m} {v}" for v, m in MARKS.items())
Q_LEVEL = 0.05
"""A ✓ cell counts as a discovery of the sweep when its Benjamini-Hochberg q-value (over every test of the
metric in the sweep) is at most this: the expected share of false discoveries among them is then at most 5%."""
EFFECT = 0.10
"""The effect (accuracy difference) a sweep's ✗ cells are read against: "absent" when the interval's upper end
is below it, "not shown at this size" when the minimum detectable effect is above it."""
UNSURE = "(✓)"
"""The mark of a ✓ cell that does not survive the false-discovery control (q above :data:`Q_LEVEL`)."""


def _readout(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows (of results or selectivity) the summary reads, their metric renamed to :data:`HEADLINE`."""
    keep = (frame["metric"] == HEADLINE) | ((frame["method"] == "sae") & (frame["metric"] == SAE_READOUT))
    return frame[keep].assign(metric=HEADLINE)


def _tag(dataset: str) -> str:
    """A dataset's short name: the sae-probes tag, or a table's (treebank's) file name without its folder
    (:func:`auditkit.data.kinds.short_name`)."""
    return dataset_kinds.short_name(dataset)


def _hooks_phrase(hooks: list[str]) -> str:
    """``hook `X` `` for one hook, ``N hooks (`FIRST` ... `LAST`)`` for more."""
    if len(hooks) == 1:
        return f"hook `{hooks[0]}`"
    return f"{len(hooks)} hooks (`{hooks[0]}` ... `{hooks[-1]}`)"


def discovered(r: Any) -> bool:
    """A ✓ cell that survives the sweep's false-discovery control (:data:`Q_LEVEL`)."""
    return r.verdict == "selective" and r.q_value <= Q_LEVEL


def mark(r: Any) -> str:
    """A cell's mark: :data:`UNSURE` for a ✓ that is no discovery of the sweep, else the verdict's."""
    return UNSURE if r.verdict == "selective" and not discovered(r) else MARKS.get(r.verdict, "")


def _cell(r: Any) -> str:
    text = f"{mark(r)} {r.selectivity:+.3f} [{fmt(r.ci_low)}, {fmt(r.ci_high)}]"
    if r.verdict == "selective":
        return text + f" q={r.q_value:.2g}"
    if r.verdict == "not selective" and not math.isnan(r.mde):
        return text + f" MDE {r.mde:.2f}"
    if r.verdict == "not selective" and r.ci_low == r.ci_high:
        return text + f" {IDENTICAL}"
    return text


def _headline(result: Any) -> pd.DataFrame:
    return _readout(result.selectivity)


def _scores(result: Any) -> pd.DataFrame:
    """Mean held-out accuracy over seeds by dataset, hook, layer, method and arm."""
    rows = _readout(result.rows)
    return rows.groupby(["dataset", "hook", "layer", "method", "control"], sort=False)["value"].mean().reset_index()


def verdict_hook(result: Any) -> str:
    """The hook whose verdicts the dataset matrix shows: fixed before looking at any score (the audit's
    default, the middle block's input, when the sweep has it; else its first hook). A layer chosen for its
    high real accuracy would bias its own selectivity upward, so the best layer is only described."""
    middle = f"blocks.{result.provenance['n_layers'] // 2}.hook_resid_pre"
    return middle if middle in result.hooks else result.hooks[0]


def best_layers(result: Any) -> pd.DataFrame:
    """Per dataset and method: the hook with the highest mean real accuracy, that accuracy, and each weight
    control's and lexical baseline's accuracy there (descriptive: the verdicts are at :func:`verdict_hook`)."""
    scores, out = _scores(result), []
    for (dataset, method), sub in scores[scores["control"] == REAL].groupby(["dataset", "method"], sort=False):
        best = sub.loc[sub["value"].idxmax()]
        row: dict[str, Any] = dict(dataset=dataset, method=method, best_hook=best["hook"], real=best["value"])
        here = scores[(scores["dataset"] == dataset) & (scores["hook"] == best["hook"]) & (scores["method"] == method)]
        for control in (c for c in result.controls if registry.stage_of(c) in ("weight", "lexical")):
            hit = here[here["control"] == control]["value"]
            row[f"{control} accuracy"] = float(hit.iloc[0]) if len(hit) else math.nan
        out.append(row)
    return pd.DataFrame(out)


def majority_share(info: dict[str, Any]) -> float:
    """The majority class's share of a dataset's items (from its audits' ``class_counts``; 1 / classes, else 0.5)."""
    counts = info.get("class_counts") or []
    if sum(counts):
        return max(counts) / sum(counts)
    return 1 / max(len(info.get("class_names") or []), 2)


def lexical_shortcuts(best: pd.DataFrame, majority: dict[str, float] | None = None) -> pd.DataFrame:
    """Datasets whose best layer is lexical by the one rule of :mod:`auditkit.metrics.lexical`: a reading with no
    trained model in it (the best lexical baseline, or a reinitialised model, at that hook) closes at least
    :data:`~auditkit.metrics.lexical.LEXICAL_SHARE` of the real arm's gain over the majority class, and
    :data:`~auditkit.metrics.lexical.LEXICAL_FLOOR` of the headroom. ``majority`` maps a dataset to its majority
    share (default 0.5). A dataset that nothing reads (all near chance) is not lexical: that is a label the probe
    does not find at all, which the verdict matrix shows."""
    cols = [c for c in best.columns if c.endswith(" accuracy")]
    if not cols:
        return best.iloc[0:0]
    text_only = best[cols].max(axis=1)
    maj = best["dataset"].map(lambda d: (majority or {}).get(d, 0.5))
    keep = [is_lexical(t, m, r) for t, m, r in zip(text_only, maj, best["real"])]
    return best[keep]


def first_selective(result: Any) -> pd.DataFrame:
    """Per dataset and method, over depth: the **onset**, the shallowest hook from which every deeper hook is a
    discovery against every control (✓ with q <= :data:`Q_LEVEL`), which one lucky layer cannot set; the
    shallowest single such hook (descriptive: a minimum over many tests); how many hooks are discoveries
    against every control, and how many are ✓ against every control by the per-test rule alone."""
    sel, out = _headline(result), []
    for (dataset, method), sub in sel.groupby(["dataset", "method"], sort=False):
        flags = sub.assign(
            found=[discovered(r) for r in sub.itertuples(index=False)], passed=sub["verdict"] == "selective"
        )
        found = flags.groupby("hook", sort=False)["found"].all()
        passed = flags.groupby("hook", sort=False)["passed"].all()
        layers = sub.drop_duplicates("hook").set_index("hook")["layer"]
        by_depth = sorted(found.index, key=lambda h: layers[h])
        hooks = [h for h in by_depth if found[h]]
        onset = next((h for i, h in enumerate(by_depth) if all(found[g] for g in by_depth[i:])), None)
        out.append(
            dict(
                dataset=dataset,
                method=method,
                onset=onset or "none",
                first_selective_hook=hooks[0] if hooks else "none",
                selective_hooks=f"{len(hooks)}/{len(found)}",
                per_test_selective_hooks=f"{int(passed.sum())}/{len(passed)}",
            )
        )
    return pd.DataFrame(out)


def multiplicity(result: Any) -> dict[str, Any]:
    """The sweep's tests of its headline metric: how many, how many ✓ by the per-test rule, how many survive
    the false-discovery control, the bound on expected false ones among those, and how many ✓ a sweep with no
    effect anywhere would give by chance (one-sided 2.5% per test)."""
    sel = _headline(result)
    checked = sel[sel["p_value"].notna()]
    selective = checked[checked["verdict"] == "selective"]
    found = int(sum(discovered(r) for r in selective.itertuples(index=False)))
    return dict(
        tests=len(checked),
        selective=len(selective),
        discoveries=found,
        expected_false=Q_LEVEL * found,
        chance_selective=0.025 * len(checked),
        min_p=float(checked["p_value"].min()) if len(checked) else math.nan,
    )


def evidence_counts(result: Any) -> pd.DataFrame:
    """Per method, at :func:`verdict_hook`: how many ✗ cells rule out an effect of :data:`EFFECT` (absent), could
    not have shown it (not shown at this size: MDE above it), or neither (undecided); median MDE of the ✗ cells."""
    sel, hook, out = _headline(result), verdict_hook(result), []
    sel = sel[(sel["hook"] == hook) & (sel["verdict"] == "not selective")]
    for method, sub in sel.groupby("method", sort=False):
        kinds = [absence(r.selectivity, r.ci_high, r.mde, EFFECT) for r in sub.itertuples(index=False)]
        out.append(
            {
                "method": method,
                "not selective": len(sub),
                "absent": kinds.count("absent"),
                "not shown at this size": kinds.count("not shown at this size"),
                "undecided": kinds.count("undecided"),
                "median MDE": float(sub["mde"].median()),
            }
        )
    return pd.DataFrame(out)


def verdict_matrix(result: Any, method: str) -> pd.DataFrame:
    """Dataset x control at :func:`verdict_hook` for ``method``, datasets that fail the most controls first."""
    hook, sel, scores, out = verdict_hook(result), _headline(result), _scores(result), []
    for dataset in result.datasets:
        real = scores[
            (scores["dataset"] == dataset)
            & (scores["hook"] == hook)
            & (scores["method"] == method)
            & (scores["control"] == REAL)
        ]["value"]
        row: dict[str, Any] = dict(dataset=dataset, real=float(real.iloc[0]) if len(real) else math.nan)
        cells = sel[(sel["dataset"] == dataset) & (sel["hook"] == hook) & (sel["method"] == method)]
        row |= {r.control: _cell(r) for r in cells.itertuples(index=False)}
        row["_failed"] = int(sum(not discovered(r) for r in cells.itertuples(index=False)))
        out.append(row)
    frame = pd.DataFrame(out).sort_values(["_failed", "real"], ascending=[False, True])
    return frame[["dataset", "real", *(c for c in result.controls if c in frame.columns)]]


def depth_figure(result: Any, dataset: str, path: Path) -> None:
    """Selectivity against each control over depth (95% bands), and real and control accuracy over depth,
    one column per probe kind."""
    sel = _headline(result)
    sel = sel[sel["dataset"] == dataset].sort_values("layer")
    scores = _scores(result)
    scores = scores[scores["dataset"] == dataset].sort_values("layer")
    methods = list(dict.fromkeys(sel["method"]))
    fig, axes = subplots(2, len(methods), figsize=(5.5 * len(methods), 7.5), squeeze=False, sharex=True)
    colours = _control_colours(result.controls)
    for j, method in enumerate(methods):
        top, bottom = axes[0][j], axes[1][j]
        for control in result.controls:
            sub = sel[(sel["method"] == method) & (sel["control"] == control)]
            if sub.empty:
                continue
            top.plot(sub["layer"], sub["selectivity"], color=colours[control], label=control, lw=1.5)
            top.fill_between(sub["layer"], sub["ci_low"], sub["ci_high"], color=colours[control], alpha=0.15)
            sc = scores[(scores["method"] == method) & (scores["control"] == control)]
            bottom.plot(sc["layer"], sc["value"], color=colours[control], lw=1.2, ls="--")
        real = scores[(scores["method"] == method) & (scores["control"] == REAL)]
        bottom.plot(real["layer"], real["value"], color="black", lw=2, label="real model")
        top.axhline(0, color="grey", lw=0.8)
        top.set_title(f"{method}: selectivity (real - control), 95% band")
        top.set_ylabel(f"{HEADLINE} difference")
        bottom.set_title(f"{method}: held-out {HEADLINE} (mean of seeds)")
        bottom.set_ylabel(HEADLINE)
        bottom.set_xlabel("layer (block input; last point: final residual)")
        bottom.set_ylim(0, 1.02)
    handles, labels = axes[0][0].get_legend_handles_labels()
    h2, l2 = axes[1][0].get_legend_handles_labels()
    fig.legend(handles + h2, labels + l2, loc="lower center", ncol=4, fontsize=9, frameon=False)
    fig.suptitle(f"{dataset}: where the label becomes readable beyond the controls")
    fig.tight_layout(rect=(0, 0.08, 1, 0.97))
    fig.savefig(path, dpi=100)


def matrix_figure(result: Any, method: str, path: Path) -> Any:
    """Heatmap (dataset x control) at :func:`verdict_hook`: each cell's mark, coloured by the effect of a
    discovery (:func:`auditkit.report.plots.effect_colour`, anchored at chance); every other cell grey."""
    sel, hook = _headline(result), verdict_hook(result)
    order = list(verdict_matrix(result, method)["dataset"])
    controls = [c for c in result.controls if c in sel["control"].unique()]
    image = np.ones((len(order), len(controls), 4))
    marks = [["" for _ in controls] for _ in order]
    for i, dataset in enumerate(order):
        cells = sel[(sel["dataset"] == dataset) & (sel["hook"] == hook) & (sel["method"] == method)]
        n_classes = len(result.cells.get(dataset, {}).get("class_names", [])) or 2
        for r in cells.itertuples(index=False):
            j = controls.index(r.control)
            verdict = r.verdict if r.verdict != "selective" or discovered(r) else "inconclusive"  # (✓): no colour
            image[i, j] = cell_rgba(effect_colour(r.selectivity, verdict, HEADLINE, n_classes))
            marks[i][j] = mark(r)
    fig, ax = subplots(figsize=(2.6 + 1.25 * len(controls), 1.4 + 0.32 * len(order)))
    ax.imshow(image, aspect="auto")
    for i in range(len(order)):
        for j in range(len(controls)):
            dark = luminance(tuple(image[i, j])) < 0.45  # white marks on the darkest cells
            ax.text(j, i, marks[i][j], ha="center", va="center", fontsize=9, color="white" if dark else "black")
    ax.set_xticks(range(len(controls)), controls, rotation=30, ha="right", fontsize=9)
    ax.set_yticks(range(len(order)), [_tag(d) for d in order], fontsize=8)
    title = f"{method} at {verdict_hook(result)}: verdicts, {UNSURE} = ✓ with q > {Q_LEVEL}\n{LEGEND}"
    width = max(30, int(fig.get_figwidth() * 11))  # a legend wider than the figure is wrapped, never cut
    ax.set_title("\n".join(textwrap.fill(line, width=width) for line in title.split("\n")), fontsize=9)
    bar = add_effect_colourbar(fig, ax, shrink=0.6)
    bar.set_label("accuracy selectivity / (1 - chance)\n(discoveries only; grey: no discovery)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return fig


def _control_colours(controls: tuple[str, ...]) -> dict[str, Any]:
    """The report-wide colour of each control (:func:`auditkit.report.plots.arm_colour`)."""
    return {c: arm_colour(c) for c in controls}


def _multiplicity_lines(result: Any) -> list[str]:
    """What the sweep's many tests can and cannot tell: discoveries under false-discovery control, and what
    its ✗ cells say about an effect of :data:`EFFECT`."""
    m = multiplicity(result)
    head = (
        f"{m['tests']} tests of {HEADLINE} ((dataset, hook, method, control) cells with an interval). {m['selective']} "
        f"are ✓ by the per-test rule; with no effect anywhere about {m['chance_selective']:.0f} would be ✓ by chance. "
    )
    if m["discoveries"]:
        tail = (
            f"{m['discoveries']} survive the false-discovery control (Benjamini-Hochberg q <= {Q_LEVEL} over all "
            f"{m['tests']}): at most {m['expected_false']:.1f} of them are expected to be false. Only those count "
            f"as findings below; a ✓ that does not survive is marked {UNSURE}."
        )
    else:
        tail = (
            f"**None survives the false-discovery control** (Benjamini-Hochberg q <= {Q_LEVEL} over all {m['tests']}): "
            f"the smallest p-value is {m['min_p']:.2g}, where k discoveries need the k smallest at or below "
            f"k x {Q_LEVEL / max(m['tests'], 1):.2g}. "
            f"Every ✓ below is marked {UNSURE}: a lead at this size, not a finding. (With few seeds the interval's t "
            "quantile has heavy tails, which keeps every p-value large: more seeds or texts, see `auditkit plan`.)"
        )
    lines = ["## How much the verdicts can tell", "", head + tail, ""]
    counts = evidence_counts(result)
    if not counts.empty:
        lines += [
            (
                f"What the ✗ cells at `{verdict_hook(result)}` say about an effect of {EFFECT} ({HEADLINE}): **absent** when "
                f"the interval's upper end is below {EFFECT}; **not shown at this size** when the minimum detectable "
                f"effect (80% power) is above {EFFECT}: more texts are needed, and the ✗ is no evidence of absence; "
                "**undecided** otherwise."
            ),
            "",
            markdown_table(counts),
            "",
        ]
    return lines


def trust_lines(result: Any) -> list[str]:
    """The trust flag of every shipped dataset of the sweep (``auditkit datasets --audit``): one line for one
    dataset; for several, how many carry each flag and which, flagged ones first."""
    flags = {d: info["trust"] for d, info in result.cells.items() if info.get("trust")}
    if not flags:
        return []
    if len(result.datasets) == 1:
        return [trust_line(next(iter(flags.values()))), ""]
    by_flag: dict[str, list[str]] = {}
    for dataset, trust in flags.items():
        by_flag.setdefault(trust["flag"], []).append(f"`{_tag(dataset)}`")
    parts = [
        f"{len(by_flag[f])} {f}" + (f" ({', '.join(by_flag[f])})" if f != "ok" else "")
        for f in ("broken", "lexical", "leaky", "ok")
        if f in by_flag
    ]
    return [
        (
            f"**Dataset flags** (the trust table of the shipped datasets, `auditkit datasets --audit`): "
            f"{'; '.join(parts)}."
        ),
        "",
    ]


def render(result: Any, command: str, figures: dict[str, str]) -> str:
    """summary.md of a sweep."""
    cfg, prov = result.config, result.provenance
    audit = cfg.audit
    methods = list(dict.fromkeys(_headline(result)["method"]))
    first = first_selective(result)
    texts = f"up to {audit.max_examples}" if audit.max_examples else "all"
    sae_note = f"; for `sae`, of a k-sparse probe on the SAE latents ({SAE_READOUT})" if "sae" in methods else ""
    lines = [
        f"# auditkit sweep: {len(result.datasets)} dataset(s) x {len(result.hooks)} hook(s) on {prov['name']}",
        "",
        (
            f"{', '.join(methods)} read at {_hooks_phrase(result.hooks)} "
            f"of `{prov['name']}` on {len(result.datasets)} dataset(s), against {', '.join(result.controls)}, seeds "
            f"{list(audit.seeds)}, {texts} distinct texts per dataset. Every (dataset, hook) cell is an ordinary audit; "
            f"verdicts by the audit's rule on held-out accuracy (legend: {LEGEND}){sae_note}."
        ),
        "",
    ]
    lines += trust_lines(result)
    failures = result.failures
    if failures:  # before any number: what is missing from every table below
        lines += [f"**{len(failures)} cell(s) failed; their rows are missing below:**", ""]
        lines += [f"- `{line}`" for line in failures] + [""]
    lines += _multiplicity_lines(result)
    lines += lexical_note(result.controls)
    lines += control_task_note(
        result.controls,
        [info.get("level") for info in result.cells.values()],
        {c for info in result.cells.values() for c in info.get("left_out_controls", ())},
    )
    if len(result.hooks) > 1:
        lines += ["## Over depth", ""]
        lines += [
            (
                f"`onset`: the shallowest hook from which every deeper hook (of {len(result.hooks)}) is a discovery against "
                f"every control (✓ with q <= {Q_LEVEL}); `first_selective_hook`: the shallowest single such hook, a minimum "
                "over many tests that one lucky layer can set (descriptive); `selective_hooks`: hooks that are discoveries "
                "against every control; `per_test_selective_hooks`: hooks ✓ against every control by the per-test rule, "
                "before the false-discovery control. Read the whole profile in the figure."
            ),
            "",
            markdown_table(first),
            "",
        ]
        for name in (n for n in figures if n.startswith("depth-")):
            lines += [f"![{figures[name]}]({name})", ""]
    best = best_layers(result)
    if len(result.datasets) > 1:
        for method in methods:
            lines += [
                f"## Datasets against the controls: {method}",
                "",
                (
                    f"Verdicts at `{verdict_hook(result)}`, a hook fixed before any score was seen (a layer picked "
                    "for its high accuracy would bias its own selectivity up); datasets that fail the most controls "
                    "first. Each cell: verdict mark, selectivity (real - control accuracy), 95% interval; after a ✓ its "
                    f"q-value ({UNSURE}: q > {Q_LEVEL}, no discovery of the sweep), after a ✗ its minimum detectable "
                    "effect (MDE: the selectivity this cell would call ✓ with 80% power)."
                ),
                "",
                markdown_table(verdict_matrix(result, method)),
                "",
            ]
            if f"matrix-{method}.png" in figures:
                lines += [f"![verdict matrix]({f'matrix-{method}.png'})", ""]
    shortcuts = lexical_shortcuts(best, {d: majority_share(info) for d, info in result.cells.items()})
    lines += [
        "## Lexical shortcuts",
        "",
        (
            f"A dataset is lexical when {LEXICAL_RULE} (`auditkit/metrics/lexical.py`, "
            "the rule of every summary), read at its best layer."
        ),
        "",
    ]
    if shortcuts.empty:
        lines += ["No dataset is lexical by it.", ""]
    else:
        lines += [
            (
                "These datasets are lexical: the words, or a model with no training, give most of what the probe "
                "reads. Datasets nothing reads are not listed here."
            ),
            "",
            markdown_table(
                shortcuts[
                    [
                        c
                        for c in shortcuts.columns
                        if c in ("dataset", "method", "best_hook", "real") or c.endswith(" accuracy")
                    ]
                ]
            ),
            "",
        ]
    lines += ["## Best layer per dataset", "", markdown_table(best), ""]
    lines += [
        "## Details",
        "",
        "- `results.csv`: every row of every cell (`dataset, hook, layer, method, control, seed, metric, value`);",
        "- `selectivity.csv`: every cell's selectivity table (with its `dataset, hook, layer`);",
        "- `run.json`: configuration, datasets, provenance, library versions and timings.",
        "",
        (
            "The single-audit report of any cell renders in seconds from the cache: "
            "`auditkit audit` with that cell's `--dataset` and `--hook` and the options below."
        ),
        "",
        *reproduce_section(command),
    ]
    return "\n".join(lines)


RENDERED = ("summary.md", "depth-*.png", "matrix-*.png")
"""What :func:`render_sweep` writes: the files a re-render replaces."""
OWNED = (*RENDERED, "results.csv", "selectivity.csv", "run.json")
"""Everything :func:`write_sweep` writes: a new sweep at the same ``--out`` carries every other file over."""


def render_sweep(result: Any, folder: Path, command: str) -> None:
    """summary.md and the figures of a sweep, into ``folder``."""
    figures: dict[str, str] = {}
    if len(result.hooks) > 1:
        finished = set(result.selectivity["dataset"])  # a dataset whose every cell failed has no curve to draw
        for i, dataset in enumerate([d for d in result.datasets if d in finished][:4]):
            tag = safe_name(_tag(dataset), "dataset")  # read from results.csv by a re-render: checked before a path
            name = f"depth-{tag}.png"
            name = name if name not in figures else f"depth-{tag}-{i + 1}.png"  # two tables a.csv
            depth_figure(result, dataset, folder / name)
            figures[name] = f"{dataset} over depth"
    if len(result.datasets) > 1:
        for method in dict.fromkeys(_headline(result)["method"]):
            name = f"matrix-{safe_name(method, 'method in selectivity.csv')}.png"
            matrix_figure(result, method, folder / name)
            figures[name] = "verdict matrix"
    (folder / "summary.md").write_text(render(result, command, figures))


def write_sweep(result: Any, out: Path, command: str) -> Path:
    """Write the sweep's folder atomically: summary.md, figures, results.csv, selectivity.csv, run.json."""
    out = Path(out)
    with atomic_folder(out, "sweep", owned=OWNED) as tmp:
        render_sweep(result, tmp, command)
        result.rows.to_csv(tmp / "results.csv", index=False)
        result.selectivity.to_csv(tmp / "selectivity.csv", index=False)
        run = dict(
            command=command,
            argv=recorded_argv(sys.argv),
            config=_jsonable(result.config),
            datasets=result.datasets,
            hooks=result.hooks,
            controls=list(result.controls),
            provenance=result.provenance,
            cells=result.cells,
            timings=result.timings,
            versions=library_versions(),
            execution=result.execution,
            failures=result.failures,
            tables=table_records(tmp, {"results.csv": result.rows, "selectivity.csv": result.selectivity}),
        )
        (tmp / "run.json").write_text(json.dumps(run, indent=2, default=str))
    return out


def rerender_sweep(result: Any, out: Path, command: str) -> Path:
    """Re-render summary.md and the figures of a sweep folder in place from its own tables
    (:func:`auditkit.sweep.saved.load_sweep`); results.csv, selectivity.csv and run.json stay byte for byte."""
    return rerender_outputs(result, out, command, kind="sweep", render=render_sweep, rendered=RENDERED)
