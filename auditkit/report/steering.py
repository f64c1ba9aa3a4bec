"""Render a :class:`auditkit.steering.run.SteeringResult`: steering.md, steering.csv, steering.json and the
dose-response plot, written atomically (a temporary sibling folder renamed into place).

steering.md opens with its answer: one sentence on what was steered, the comparison matrix (rows: each
direction's reading and writing; columns: the random direction and each control arm; cells: the seed-paired
difference with its 95% interval and the verdict's mark, :func:`auditkit.steering.summary.comparison_matrix`)
with its legend, then the dose-response figure; the rankings, geometry and tables follow, long ones folded.
:func:`rerender_steering` re-renders steering.md and the figure from steering.csv and steering.json."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.metrics.evidence import evidence_columns
from auditkit.report.outputs import atomic_folder, copy_except, rendering_errors
from auditkit.report.plots import MARKS, save, subplots
from auditkit.report.summary import markdown_matrix, matrix_row, matrix_table
from auditkit.report.tables import collapsed, duplicates_line
from auditkit.report.write import _jsonable, library_versions
from auditkit.steering.directions import DIRECTION_KINDS, READERS
from auditkit.steering.summary import comparison_matrix
from auditkit.types import REAL

PLOT = "dose_response.png"
CURVES = (
    ("later_on", "on-target readout shift, later hook (class gaps)"),
    ("later_off", "mean |off-target| shift, later hook (class gaps)"),
    ("same_off", "mean |off-target| shift, same hook (class gaps)"),
    ("kl", "KL(clean || steered), next token (nats)"),
    ("heldout_dce", "held-out cross-entropy change (nats/token)"),
    ("label_logodds", "label-word log-odds change (nats)"),
)
WRITE_TABLE = (
    "step_norm",
    "same_on",
    "same_ratio",
    "later_on",
    "later_off",
    "later_ratio",
    "later_selective",
    "kl",
    "label_logodds",
    "heldout_dce",
)


def _fmt(x: Any, digits: int = 3) -> str:
    if isinstance(x, float):
        if math.isnan(x):
            return "n/a"
        return f"{x:.{digits}g}" if abs(x) >= 1e4 else f"{x:.{digits}f}"
    return str(x)


def _ci(mean: float, lo: float, hi: float) -> str:
    return f"{_fmt(mean)} [{_fmt(lo)}, {_fmt(hi)}]"


def _table(header: list[str], body: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *["| " + " | ".join(r) + " |" for r in body]]


def _cell(summary: pd.DataFrame, arm: str, direction: str, metric: str, alpha: float | None) -> str:
    sub = summary[(summary["arm"] == arm) & (summary["direction"] == direction) & (summary["metric"] == metric)]
    sub = sub[sub["alpha"].isna()] if alpha is None else sub[(sub["alpha"] - alpha).abs() < 1e-12]
    if sub.empty:
        return "n/a"
    r = sub.iloc[0]
    return _ci(r["mean"], r["ci_low"], r["ci_high"])


def _verdict_lines(v: dict[str, Any], what: str, unit: str) -> list[str]:
    if not v:
        return [f"- {what}: fewer than two directions to compare"]
    d = v["difference"]
    sign = "lower" if v["metric"] == "later_ratio" else "higher"
    return [
        f"- **{what}: {v['best']}** ({unit} {_ci(*v['best_value'])}) vs runner-up **{v['runner_up']}** "
        f"({_ci(*v['runner_up_value'])}): difference {d[0]:+.3f}, 95% CI [{_fmt(d[1])}, {_fmt(d[2])}] "
        f"({sign} is better; {v['n_seeds']} seeds, paired). Ranking: "
        + ", ".join(f"{k} {val:.3f}" for k, val in v["ranking"])
    ]


def _verdicts(result: Any) -> list[str]:
    cfg, lines = result.config, ["## Rankings: which direction reads, writes, is surgical best", ""]
    dose = f"alpha = {cfg.dose_for_verdict:g} ({cfg.scale} units)"
    for arm, v in result.verdicts.items():
        lines += [f"### {'real model' if arm == REAL else arm}", ""]
        lines += _verdict_lines(v["reads_best"], "reads best", "held-out AUROC")
        lines += _verdict_lines(v["writes_best"], f"writes best at {dose}", "on - off at the later hook")
        lines += _verdict_lines(v["most_surgical"], f"most surgical at {dose}", "off/on ratio at the later hook")
        if v["moves_label_words_most"]:
            lines += _verdict_lines(
                v["moves_label_words_most"], f"moves its label word most at {dose}", "label-word log-odds change"
            )
        lines.append("")
    return lines


def _geometry(result: Any) -> list[str]:
    s, lines = result.summary, ["## Geometry of the readers", ""]
    lines += [
        (
            "How far each reading matrix P (rows: one probe per concept, normalised) is from orthogonal. "
            "The further from orthogonal, the further the dual-basis writers (columns of P^+) turn away "
            "from the probe directions themselves."
        ),
        "",
    ]
    body = []
    for arm in result.verdicts:
        for kind in READERS:
            body.append(
                [arm, kind]
                + [_cell(s, arm, kind, m, None) for m in ("max_offdiag_cos", "mean_offdiag_cos", "condition_number")]
            )
    lines += _table(["arm", "readers", "max off-diag abs cos", "mean off-diag abs cos", "condition number"], body)
    kinds = DIRECTION_KINDS
    lines += ["", "Mean cosine between directions of the same concept (real model; mean over concepts, seeds):", ""]
    body = [[a] + [_cell(s, REAL, a, f"cos:{b}", None).split(" [")[0] if a != b else "1" for b in kinds] for a in kinds]
    return lines + _table(["", *kinds], body) + [""]


def _reading_writing(result: Any) -> list[str]:
    s, cfg = result.summary, result.config
    kinds = DIRECTION_KINDS
    lines = ["## Reading: held-out AUROC of each direction as a reader of its concept", ""]
    body = [[k] + [_cell(s, a, k, "read_auroc", None) for a in result.verdicts] for k in kinds]
    lines += _table(["direction", *result.verdicts], body)
    for arm in result.verdicts:
        lines += ["", f"## Writing at alpha = {cfg.dose_for_verdict:g} ({cfg.scale} units), arm {arm}", ""]
        body = [[k] + [_cell(s, arm, k, m, cfg.dose_for_verdict) for m in WRITE_TABLE] for k in kinds]
        lines += _table(["direction", *WRITE_TABLE], body)
    return lines + [""]


def _setup(result: Any) -> list[str]:
    cfg, site, data = result.config, result.site, result.data
    norms = ", ".join(f"{a}: {v:.2f}" for a, v in site["mean_norm"].items())
    return [
        "## Set-up",
        "",
        f"- model: {result.provenance[REAL].get('name')} ({result.provenance[REAL].get('weights_variant')})",
        (
            f"- concepts ({len(result.concepts)}): {', '.join(result.concepts)}; texts: {data['texts']} "
            f"(template {cfg.template!r}); label words: {data['label_words'] or 'none'}"
        ),
        *(
            f"- `{d['name']}`: " + duplicates_line(d["duplicates"]).removeprefix("- ")
            for d in data["datasets"]
            if d.get("duplicates")
        ),
        f"- written at `{site['hook']}` ({site['positions']} positions), read again at `{site['later_hook']}`",
        f"- doses alpha = {', '.join(f'{a:g}' for a in cfg.alphas)} in {cfg.scale} units; mean activation norm {norms}",
        (
            f"- seeds {', '.join(map(str, cfg.seeds))} (each its own split; {cfg.n_eval} held-out texts steered per seed); "
            f"held-out prose: {cfg.n_heldout} texts of {data['heldout']}; controls: {', '.join(cfg.controls) or 'none'}"
        ),
        f"- time: {', '.join(f'{k} {v:.1f}s' for k, v in result.timings.items())}",
        "",
    ]


DEFINITIONS = """## Definitions

- Directions per concept k: `logistic` (L2 logistic probe weight), `mass-mean` (class-mean difference),
  `lda` (shrunk-covariance LDA direction), `dual` (column k of the pseudo-inverse of P, the matrix of
  the logistic probe weights: it moves probe k's logit by 1 and the others by 0), `random` (matched norm).
- Readouts are the logistic probes' logits, at the steering hook and at the later hook (probes fitted
  there too), each in units of its own class-mean gap on training rows. `*_on`: target concept's shift;
  `*_off`: mean |shift| of the other concepts; `*_ratio`: off / on (0 is surgical); `later_selective`:
  on - off at the later hook (the writing score). Same-hook shifts are exact (`p_j . delta`), so the dual's
  same-hook ratio is 0 by construction; the later hook is the test.
- `kl`: KL(clean || steered) of the next-token distribution at the last token; `label_logodds`: change of
  log p(word_k) - logsumexp of the other label words; `heldout_dce`: change of next-token cross-entropy on
  held-out prose steered at every position; `step_norm`: length of the added vector.
- Intervals: mean over concepts within a seed, then a two-sided 95% Student-t interval over seeds.

## Reading these numbers

- At matched norm (`scale=norm`) the logistic direction moves its own same-hook readout the most per
  unit length by construction (it is that readout's gradient); `scale=gap` instead matches the
  on-target push at the hook and compares only what else moves.
- The K classes of one multiclass task are mutually exclusive: a text that becomes more "Australia"
  becomes less of the others, so an off-target shift near 1/(K-1) of the on-target one is what a natural
  change of class does, and a dual vector that holds the other readouts fixed moves off the data (the
  one-vs-rest mass-mean rows of a balanced task are linearly dependent, hence their huge condition
  number). Several independent binary tasks (`datasets=(A, B, ...)`) test surgicality without this.
- The spectral-reinit arm is the null: directions there read and write a random network; what the
  real arm shows beyond it is about the trained model.
"""


def dose_response_plot(summary: pd.DataFrame, path: Path) -> Any:
    """One panel per effect metric: mean over seeds (95% band) against dose, one line per direction,
    solid for the real model and dashed for the controls."""
    from matplotlib import colormaps

    panels = [(m, t) for m, t in CURVES if (summary["metric"] == m).any()]
    fig, axes = subplots(2, (len(panels) + 1) // 2, figsize=(4.2 * ((len(panels) + 1) // 2), 7), squeeze=False)
    colours = dict(zip(DIRECTION_KINDS, colormaps["tab10"].colors))
    for ax, (metric, title) in zip(axes.flat, panels):
        for (arm, direction), g in summary[summary["metric"] == metric].groupby(["arm", "direction"]):
            g = g.sort_values("alpha")
            style = "-" if arm == REAL else "--"
            label = direction if arm == REAL else f"{direction} ({arm})"
            ax.plot(g["alpha"], g["mean"], style, marker="o", ms=3, color=colours.get(direction), label=label)
            ax.fill_between(g["alpha"], g["ci_low"], g["ci_high"], color=colours.get(direction), alpha=0.12)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("alpha")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    seeds = int(summary["n_seeds"].max()) if "n_seeds" in summary and len(summary) else 0
    fig.suptitle(
        f"Effects against dose (a point = mean over {seeds} seeds of the mean over concepts; band = 95% "
        "interval; dashed = control arm)",
        fontsize=10,
    )
    fig.tight_layout()
    save(fig, path)
    return fig


THRESHOLD = 0.05
"""Smallest mean difference called selective (the audit's default threshold)."""


def steering_matrix(result: Any) -> pd.DataFrame:
    """The comparison matrix as the audit's long verdict-matrix table (rows ``direction: reads``/``writes``,
    columns the comparisons), read from the result's rows."""
    table = comparison_matrix(
        result.rows,
        reference_alpha=result.config.dose_for_verdict,
        directions=tuple(d for d in DIRECTION_KINDS if d != "random"),
        threshold=THRESHOLD,
    )
    if table.empty:
        return table
    parts = []
    for (direction, label), cells in table.groupby(["direction", "label"], sort=False):
        cells = evidence_columns(
            cells.rename(columns={"comparison": "control", "difference": "selectivity"}), threshold=THRESHOLD
        )  # the interval is over seeds alone (no sampling floor)
        parts.append(
            matrix_row(
                cells, f"{direction}: {label.split(' ')[0]}", method=direction, metric=str(cells["metric"].iloc[0])
            )
        )
    return pd.concat(parts, ignore_index=True)


def steered_sentence(result: Any) -> str:
    """One sentence: model, hooks, dataset, directions, comparisons, seeds, doses."""
    cfg, site, data = result.config, result.site, result.data
    names = ", ".join(f"`{d['name']}`" for d in data["datasets"])
    directions = [d for d in DIRECTION_KINDS if d != "random" and (result.rows["direction"] == d).any()]
    controls = list(cfg.controls)
    return (
        f"Steered `{result.provenance[REAL].get('name')}` at `{site['hook']}` ({site['positions']} positions; effects "
        f"read again at `{site['later_hook']}`) on {names} ({data['texts']} texts, {len(result.concepts)} concepts) "
        f"with the {', '.join(directions)} directions, each against a matched-norm random direction"
        + (f" and against itself in the {', '.join(controls)} arm" if controls else "")
        + f": {len(cfg.seeds)} seeds {list(cfg.seeds)}, doses alpha = {', '.join(f'{a:g}' for a in cfg.alphas)} in "
        f"{cfg.scale} units (writing compared at {cfg.dose_for_verdict:g})."
    )


def _legend(result: Any) -> str:
    marks = ", ".join(f"{MARKS[v]} {v}" for v in ("selective", "not selective", "control better", "inconclusive"))
    return (
        "Each cell: the direction in the real model minus its comparison (the matched-norm random direction in the "
        "real model, or the same kind of direction fitted in the control arm), the mean over seeds of the "
        f"seed-paired difference [95% Student-t interval over {len(result.config.seeds)} seeds] and the verdict: "
        f"{marks} (selective: the interval above 0 and the difference at least {THRESHOLD:g}; control better: "
        "the interval below 0). *reads*: held-out AUROC of the direction as a reader of its concept; *writes*: the "
        "on-target minus the mean |off-target| readout shift at the later hook, in class-gap units, at alpha = "
        f"{result.config.dose_for_verdict:g}. Means over concepts within a seed."
    )


def _first_screen(result: Any) -> list[str]:
    lines = [steered_sentence(result), "", "## Comparison matrix", ""]
    matrix = steering_matrix(result)
    if matrix.empty:
        return lines + ["No comparison ran: the run has no random direction and no control arm.", ""]
    return lines + [
        *markdown_matrix(matrix, "direction"),
        "",
        _legend(result),
        "",
        f"![Dose-response: each effect against alpha, one line per direction]({PLOT})",
        "",
    ]


def terminal_table(result: Any) -> Any:
    """The comparison matrix as a compact ``rich`` table (difference and mark; the report has the intervals)."""
    return matrix_table(steering_matrix(result), corner="direction")


def render_steering(result: Any) -> str:
    """steering.md for a SteeringResult."""
    names = ", ".join(d["name"] for d in result.data["datasets"])
    lines = [f"# auditkit steering report: {names} on {result.provenance[REAL].get('name')}", ""]
    lines += _first_screen(result) + _verdicts(result)
    details = ["#" + line if line.startswith("## ") else line for line in _geometry(result) + _reading_writing(result)]
    lines += [
        "## Details",
        "",
        *collapsed("Geometry of the readers; reading and writing tables per arm", "\n".join(details)),
    ]
    lines += _setup(result) + [DEFINITIONS]
    return "\n".join(lines)


RENDERED = ("steering.md", PLOT)
"""Files :func:`render_files` writes; a re-render replaces exactly these."""
OWNED = (*RENDERED, "steering.csv", "steering.json")
"""Everything :func:`write_steering` writes: a new run at the same ``--out`` carries every other file over."""


def render_files(result: Any, folder: Path) -> None:
    dose_response_plot(result.summary, folder / PLOT)
    (folder / "steering.md").write_text(render_steering(result))


def rerender_steering(result: Any, out: Path) -> Path:
    """Re-render steering.md and the dose-response figure of a steering output ``out`` in place, atomically;
    steering.csv and steering.json are carried over byte for byte."""
    out = Path(out)
    with atomic_folder(out, "steer") as tmp:
        copy_except(out, tmp, RENDERED)
        with rendering_errors(out, "steer"):
            render_files(result, tmp)
    return out


def write_steering(result: Any, out: Path) -> Path:
    """Write ``out/steering.md``, ``steering.csv``, ``steering.json`` and the plot in a temporary sibling
    folder, then swap it into place with one rename: a failed run leaves the previous ``out/`` or nothing."""
    out = Path(out)
    with atomic_folder(out, "steer", owned=OWNED) as tmp:
        render_files(result, tmp)
        rows = result.rows[["direction", "concept", "seed", "alpha", "metric", "value", "arm"]]
        rows.to_csv(tmp / "steering.csv", index=False)
        meta = dict(
            config=_jsonable(result.config),
            site=result.site,
            data=result.data,
            provenance=result.provenance,
            verdicts=_jsonable(result.verdicts),
            timings=result.timings,
            versions=library_versions(),
        )
        (tmp / "steering.json").write_text(json.dumps(meta, indent=2, default=str))
    return out
