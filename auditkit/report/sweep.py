"""The sweep report: summary.md (one screen first), figures over depth and over datasets, the tidy tables."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pandas as pd

from auditkit.controls import WEIGHT_CONTROLS
from auditkit.report.markdown import reproduce_section
from auditkit.report.outputs import atomic_folder, safe_name
from auditkit.report.plots import MARKS, arm_colour, subplots
from auditkit.report.tables import fmt, markdown_table
from auditkit.report.write import _jsonable, library_versions, recorded_argv, rerender_outputs, table_records
from auditkit.types import REAL

HEADLINE = "accuracy"
"""The metric the summary reads: held-out accuracy of each probe kind, and for the ``sae`` method the
held-out accuracy of its k-sparse probe on the latents (:data:`SAE_READOUT`): the summary asks where and on
which datasets the label is read beyond the controls. Every other metric is in results.csv and selectivity.csv."""
SAE_READOUT = "probe_acc_k5"
LEGEND = ", ".join(f"{m} {v}" for v, m in MARKS.items())


def _readout(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows (of results or selectivity) the summary reads, their metric renamed to :data:`HEADLINE`."""
    keep = (frame["metric"] == HEADLINE) | ((frame["method"] == "sae") & (frame["metric"] == SAE_READOUT))
    return frame[keep].assign(metric=HEADLINE)


def _tag(dataset: str) -> str:
    """A dataset's short name: the sae-probes tag, or a table's (treebank's) file name without its folder."""
    kind, _, value = dataset.partition(":")
    if kind in ("table", "conllu"):
        return PurePath(value).stem
    return (value or kind).replace("/", "_")


def _hooks_phrase(hooks: list[str]) -> str:
    """``hook `X` `` for one hook, ``N hooks (`FIRST` ... `LAST`)`` for more."""
    if len(hooks) == 1:
        return f"hook `{hooks[0]}`"
    return f"{len(hooks)} hooks (`{hooks[0]}` ... `{hooks[-1]}`)"


def _cell(r: Any) -> str:
    return f"{MARKS.get(r.verdict, '')} {r.selectivity:+.3f} [{fmt(r.ci_low)}, {fmt(r.ci_high)}]"


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
    control's accuracy there (descriptive: the verdicts are at :func:`verdict_hook`)."""
    scores, out = _scores(result), []
    for (dataset, method), sub in scores[scores["control"] == REAL].groupby(["dataset", "method"], sort=False):
        best = sub.loc[sub["value"].idxmax()]
        row: dict[str, Any] = dict(dataset=dataset, method=method, best_hook=best["hook"], real=best["value"])
        here = scores[(scores["dataset"] == dataset) & (scores["hook"] == best["hook"]) & (scores["method"] == method)]
        for control in (c for c in result.controls if c in WEIGHT_CONTROLS):
            hit = here[here["control"] == control]["value"]
            row[f"{control} accuracy"] = float(hit.iloc[0]) if len(hit) else math.nan
        out.append(row)
    return pd.DataFrame(out)


SHORTCUT_MARGIN, SHORTCUT_ABOVE_CHANCE, SHORTCUT_FLOOR = 0.05, 0.65, 0.8
"""A lexical shortcut: a reinitialised model reads the label within ``SHORTCUT_MARGIN`` of the real model's
accuracy while itself reading it well above chance (at least ``SHORTCUT_ABOVE_CHANCE``), or reads it at
``SHORTCUT_FLOOR`` or more whatever the real model does."""


def lexical_shortcuts(
    best: pd.DataFrame, margin: float = SHORTCUT_MARGIN, above_chance: float = SHORTCUT_ABOVE_CHANCE,
    floor: float = SHORTCUT_FLOOR,
) -> pd.DataFrame:  # fmt: skip
    """Datasets whose best layer a reinitialised model reads about as well, and well above chance (see
    :data:`SHORTCUT_MARGIN`): the label is carried by the tokens themselves (a lexical shortcut), not by what
    training put into the weights. A dataset that neither model reads (both near chance) is not one: that
    is a label the probe does not find at all, which the verdict matrix shows."""
    cols = [c for c in best.columns if c.endswith(" accuracy")]
    if not cols:
        return best.iloc[0:0]
    reinit = best[cols].max(axis=1)
    return best[((reinit >= best["real"] - margin) & (reinit >= above_chance)) | (reinit >= floor)]


def first_selective(result: Any) -> pd.DataFrame:
    """Per dataset and method: the shallowest hook where the real arm is selective against every control."""
    sel, out = _headline(result), []
    for (dataset, method), sub in sel.groupby(["dataset", "method"], sort=False):
        ok = sub.groupby("hook", sort=False)["verdict"].apply(lambda v: bool((v == "selective").all()))
        layers = sub.drop_duplicates("hook").set_index("hook")["layer"]
        hooks = [h for h in ok.index if ok[h]]
        first = min(hooks, key=lambda h: layers[h]) if hooks else None
        out.append(dict(dataset=dataset, method=method, first_selective_hook=first or "none",
                        selective_hooks=f"{len(hooks)}/{len(ok)}"))  # fmt: skip
    return pd.DataFrame(out)


def verdict_matrix(result: Any, method: str) -> pd.DataFrame:
    """Dataset x control at :func:`verdict_hook` for ``method``, datasets that fail the most controls first."""
    hook, sel, scores, out = verdict_hook(result), _headline(result), _scores(result), []
    for dataset in result.datasets:
        real = scores[(scores["dataset"] == dataset) & (scores["hook"] == hook) & (scores["method"] == method)
                      & (scores["control"] == REAL)]["value"]  # fmt: skip
        row: dict[str, Any] = dict(dataset=dataset, real=float(real.iloc[0]) if len(real) else math.nan)
        cells = sel[(sel["dataset"] == dataset) & (sel["hook"] == hook) & (sel["method"] == method)]
        row |= {r.control: _cell(r) for r in cells.itertuples(index=False)}
        row["_failed"] = int((cells["verdict"] != "selective").sum())
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


def matrix_figure(result: Any, method: str, path: Path) -> None:
    """Heatmap of normalised selectivity (dataset x control) at :func:`verdict_hook`, with verdict marks."""
    sel, hook = _headline(result), verdict_hook(result)
    order = list(verdict_matrix(result, method)["dataset"])
    controls = [c for c in result.controls if c in sel["control"].unique()]
    grid = np.full((len(order), len(controls)), np.nan)
    marks = [["" for _ in controls] for _ in order]
    for i, dataset in enumerate(order):
        cells = sel[(sel["dataset"] == dataset) & (sel["hook"] == hook) & (sel["method"] == method)]
        for r in cells.itertuples(index=False):
            j = controls.index(r.control)
            grid[i, j] = r.normalised if not math.isnan(r.normalised) else r.selectivity
            marks[i][j] = MARKS.get(r.verdict, "")
    fig, ax = subplots(figsize=(2.2 + 1.25 * len(controls), 1.2 + 0.32 * len(order)))
    im = ax.imshow(grid, aspect="auto", cmap="RdBu", vmin=-1, vmax=1)
    for i in range(len(order)):
        for j in range(len(controls)):
            dark = not np.isnan(grid[i][j]) and abs(grid[i][j]) > 0.6  # white marks on the darkest cells
            ax.text(j, i, marks[i][j], ha="center", va="center", fontsize=9, color="white" if dark else "black")
    ax.set_xticks(range(len(controls)), controls, rotation=30, ha="right", fontsize=9)
    ax.set_yticks(range(len(order)), [_tag(d) for d in order], fontsize=8)
    ax.set_title(f"{method} at {verdict_hook(result)}: normalised selectivity\n{LEGEND}", fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.6, label="(real - control) / (1 - control)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _control_colours(controls: tuple[str, ...]) -> dict[str, Any]:
    """The report-wide colour of each control (:func:`auditkit.report.plots.arm_colour`)."""
    return {c: arm_colour(c) for c in controls}


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
        f"{', '.join(methods)} read at {_hooks_phrase(result.hooks)} "
        f"of `{prov['name']}` on {len(result.datasets)} dataset(s), against {', '.join(result.controls)}, seeds "
        f"{list(audit.seeds)}, {texts} distinct texts per dataset. Every (dataset, hook) cell is an ordinary audit; "
        f"verdicts by the audit's rule on held-out accuracy (legend: {LEGEND}){sae_note}.",
        "",
    ]
    failures = result.failures
    if failures:  # before any number: what is missing from every table below
        lines += [f"**{len(failures)} cell(s) failed; their rows are missing below:**", ""]
        lines += [f"- `{line}`" for line in failures] + [""]
    if len(result.hooks) > 1:
        lines += ["## Over depth", ""]
        lines += [
            f"Shallowest hook where the real arm is selective against every control, out of {len(result.hooks)} hooks. "
            "Each hook is its own test: read the whole profile in the figure, not one layer (with many hooks, one "
            "layer can pass by chance even when the calibrated rate per test is low).",
            "",
            markdown_table(first),
            "",
        ]
        for name in (n for n in figures if n.startswith("depth-")):
            lines += [f"![{figures[name]}]({name})", ""]
    best = best_layers(result)
    if len(result.datasets) > 1:
        for method in methods:
            lines += [f"## Datasets against the controls: {method}", "",
                      f"Verdicts at `{verdict_hook(result)}`, a hook fixed before any score was seen (a layer picked "
                      "for its high accuracy would bias its own selectivity up); datasets that fail the most controls "
                      "first. Each cell: verdict mark, selectivity (real - control accuracy), 95% interval.", "",
                      markdown_table(verdict_matrix(result, method)), ""]  # fmt: skip
            if f"matrix-{method}.png" in figures:
                lines += [f"![verdict matrix]({f'matrix-{method}.png'})", ""]
    shortcuts = lexical_shortcuts(best)
    lines += ["## Lexical shortcuts", ""]
    if shortcuts.empty:
        lines += [f"No dataset is read about as well from a reinitialised model (within {SHORTCUT_MARGIN} of the real "
                  f"model and at least {SHORTCUT_ABOVE_CHANCE}, or at least {SHORTCUT_FLOOR}).", ""]  # fmt: skip
    else:
        lines += [f"Read about as well from a reinitialised model (within {SHORTCUT_MARGIN} of the real accuracy and "
                  f"at least {SHORTCUT_ABOVE_CHANCE}, or at least {SHORTCUT_FLOOR}): the tokens carry the label, not "
                  "what training put into the weights. Datasets neither model reads are not listed here.", "",
                  markdown_table(shortcuts[[c for c in shortcuts.columns if c in
                                 ("dataset", "method", "best_hook", "real") or c.endswith(" accuracy")]]), ""]  # fmt: skip
    lines += ["## Best layer per dataset", "", markdown_table(best), ""]
    lines += [
        "## Details",
        "",
        "- `results.csv`: every row of every cell (`dataset, hook, layer, method, control, seed, metric, value`);",
        "- `selectivity.csv`: every cell's selectivity table (with its `dataset, hook, layer`);",
        "- `run.json`: configuration, datasets, provenance, library versions and timings.",
        "",
        "The single-audit report of any cell renders in seconds from the cache: "
        "`auditkit audit` with that cell's `--dataset` and `--hook` and the options below.",
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
            command=command, argv=recorded_argv(sys.argv), config=_jsonable(result.config), datasets=result.datasets,
            hooks=result.hooks, controls=list(result.controls), provenance=result.provenance, cells=result.cells,
            timings=result.timings, versions=library_versions(), execution=result.execution,
            failures=result.failures,
            tables=table_records(tmp, {"results.csv": result.rows, "selectivity.csv": result.selectivity}),
        )  # fmt: skip
        (tmp / "run.json").write_text(json.dumps(run, indent=2, default=str))
    return out


def rerender_sweep(result: Any, out: Path, command: str) -> Path:
    """Re-render summary.md and the figures of a sweep folder in place from its own tables
    (:func:`auditkit.sweep.saved.load_sweep`); results.csv, selectivity.csv and run.json stay byte for byte."""
    return rerender_outputs(result, out, command, kind="sweep", render=render_sweep, rendered=RENDERED)
