"""Figures for the reports: matplotlib's object API (no pyplot, no global backend state), one palette.

Every figure colours an arm by :func:`arm_colour` and names it by :func:`short_name`, so a control has the
same colour and the same short name in the audit, SAE, pursuit, calibration and steering figures.
"""

from __future__ import annotations

import math
import textwrap
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from auditkit.controls import registry
from auditkit.types import REAL

_BUILT_IN = (
    *registry.controls(*registry.ARM_STAGES),
    *registry.controls("dictionary"),  # the pursuit method's random-dictionary controls
    *registry.controls("lexical"),
    *registry.controls("sae"),  # the sae method's own baselines (never in a figure with the calibration's nulls)
)
"""The built-in controls in the palette's order (the calibration matrix orders its columns by it)."""

PALETTE: dict[str, str] = {
    "real": "#000000",
    **{c.name: c.colour for c in _BUILT_IN if c.stage != "sae"},
    # the calibration's null families and planted arms
    "repeated-texts": "#2ca02c",
    **{c.name: c.colour for c in _BUILT_IN if c.stage == "sae"},
}
"""One colour per arm, used by every figure (tab10's colours; the real arm black): the registered controls' own
(:attr:`auditkit.controls.registry.Control.colour`), then the arms no registered control covers."""

_FALLBACK = ("#2ca02c", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2")

SHORT_NAMES: dict[str, str] = {REAL: "real", **{c.name: c.short_name for c in _BUILT_IN}}
"""Short arm names for tick labels and table headers (the report's text uses the full names)."""

DPI = 110
PNG_METADATA = {"Software": None}
"""No library version in the PNG: a figure re-rendered from the same rows is byte-identical."""


def arm_name(control: str) -> str:
    return "real" if control == REAL else control


def short_name(control: str) -> str:
    """The arm's tick name: a registered control's own (:mod:`auditkit.controls.registry`), else
    :data:`SHORT_NAMES`, else the name itself."""
    if control in registry.REGISTRY:
        return registry.REGISTRY[control].short_name
    return SHORT_NAMES.get(control, control)


def arm_colour(control: str) -> str:
    """The arm's colour in every figure; an unknown name gets a stable colour from its text."""
    name = arm_name(control)
    if name in registry.REGISTRY:
        return registry.REGISTRY[name].colour
    if name in PALETTE:
        return PALETTE[name]
    for family, colour in PALETTE.items():  # "label-null-shuffled" and the like share a family's colour
        if family != "real" and family in name:
            return colour
    return _FALLBACK[sum(map(ord, name)) % len(_FALLBACK)]


def subplots(
    nrows: int = 1, ncols: int = 1, *, figsize: tuple[float | int, float | int], **kwargs: Any
) -> tuple[Any, Any]:
    """A figure and its axes, drawn off-screen (``Figure`` needs no backend): ``fig.savefig`` writes it."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def save(fig: Any, path: Path, dpi: int = DPI) -> None:
    """Lay out and write ``fig`` (deterministic bytes: no version metadata)."""
    fig.savefig(path, dpi=dpi, metadata=PNG_METADATA)


def overlapping_labels(fig: Any) -> list[tuple[str, str]]:
    """Pairs of visible tick labels (within one axis of one panel) whose drawn boxes overlap."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if hasattr(fig.canvas, "get_renderer") else FigureCanvasAgg(fig)  # a Figure() has no backend
    renderer = canvas.get_renderer()
    pairs = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for axis in (ax.xaxis, ax.yaxis):
            labels = [t for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]
            boxes = [t.get_window_extent(renderer) for t in labels]
            for (a, ba), (b, bb) in combinations(zip(labels, boxes), 2):
                if ba.overlaps(bb) and ba.width > 0 and bb.width > 0:
                    pairs.append((a.get_text(), b.get_text()))
    return pairs


def titles_outside(fig: Any) -> list[str]:
    """Titles (each panel's and the figure's) whose drawn box leaves the figure: cut off in the saved image."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if hasattr(fig.canvas, "get_renderer") else FigureCanvasAgg(fig)
    renderer = canvas.get_renderer()
    page = fig.bbox
    texts = [ax.title for ax in fig.axes if ax.get_visible()] + ([fig._suptitle] if fig._suptitle else [])
    out = []
    for t in texts:
        box = t.get_window_extent(renderer)
        if t.get_text() and (box.x0 < page.x0 - 1 or box.x1 > page.x1 + 1 or box.y1 > page.y1 + 1):
            out.append(t.get_text())
    return out


def grid_shape(n: int, max_cols: int = 4) -> tuple[int, int]:
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def arms_grid(
    rows: pd.DataFrame, path: Path, metrics_by_panel: list[tuple[str, str]], title: str, *, ylim: tuple | None = None
) -> Any:
    """Per-seed values of every arm: one panel per ``(method, metric)``, a grid of at most four columns.

    A point is one seed; the bar is the mean over seeds; arms keep their colour across every figure."""
    nrows, ncols = grid_shape(len(metrics_by_panel))
    n_arms = max(rows.groupby(["method", "metric"])["control"].nunique().max(), 1)
    upright = n_arms > 3  # more arms: vertical labels, whose boxes stay one line wide and never overlap
    fig, axes = subplots(nrows, ncols, figsize=(max(2.8, 0.3 * n_arms + 0.8) * ncols, 3.1 * nrows + 0.6), squeeze=False)
    for ax in axes.flat[len(metrics_by_panel) :]:
        ax.set_visible(False)
    for ax, (method, metric) in zip(axes.flat, metrics_by_panel):
        sub = rows[(rows["method"] == method) & (rows["metric"] == metric)]
        arms = list(dict.fromkeys(sub["control"]))
        for i, arm in enumerate(arms):
            vals = sub[sub["control"] == arm]["value"]
            ax.scatter([i] * len(vals), vals, s=22, color=arm_colour(arm), alpha=0.85, zorder=3)
            if len(vals):
                ax.hlines(vals.mean(), i - 0.3, i + 0.3, color="black", lw=1.2, zorder=2)
        ax.set_xticks(
            range(len(arms)),
            [short_name(a) for a in arms],
            rotation=90 if upright else 40,
            ha="center" if upright else "right",
            fontsize=8,
            rotation_mode="default" if upright else "anchor",
        )
        ax.set_xlim(-0.6, len(arms) - 0.4)
        ax.tick_params(axis="y", labelsize=8)
        ax.set_title(method if metric == "" else f"{method}: {metric}", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        if ylim is not None:
            ax.set_ylim(*ylim)
    # a title wider than a narrow figure (one method, few arms) is wrapped, never cut at both edges
    fig.suptitle(textwrap.fill(title, width=max(30, int(fig.get_figwidth() * 12))), fontsize=10)
    fig.tight_layout()
    save(fig, path)
    return fig


def arms_plot(rows: pd.DataFrame, path: Path, metric: str = "accuracy") -> Any:
    """``arms.png``: per-seed ``metric`` of every arm, one panel per method (probe kind)."""
    methods = list(dict.fromkeys(rows[rows["metric"] == metric]["method"]))
    data = rows.assign(metric=rows["metric"].where(rows["metric"] != metric, ""))
    return arms_grid(
        data,
        path,
        [(m, "") for m in methods],
        f"Held-out {metric} per arm (one point = one seed; bar = mean over seeds)",
        ylim=(0, 1.02),
    )


MARKS: dict[str, str] = {
    "selective": "✓",
    "not selective": "✗",
    "control better": "▼",
    "inconclusive": "?",
    "degenerate": "⊘",
    "differs": "≠",
    "similar": "=",
    "descriptive": "·",
}
"""The mark of each verdict in the verdict matrix, its heatmap and the terminal table."""


FINDINGS = ("selective", "control better", "differs")
"""Verdicts that are findings: only their cells are coloured by effect; every other cell is :data:`NO_FINDING`."""
NO_FINDING = "#ececec"
"""A cell whose verdict is not a finding (✗, ?, ⊘, =): pale grey, lighter than any finding's colour."""
NOT_RUN = "#ffffff"
"""A cell whose control does not apply to its row."""
MIN_INTENSITY = 0.3
"""The faintest colour a finding gets (a ✓ of effect zero), on a diverging map from 0 (white) to 1 (darkest):
every finding is darker than :data:`NO_FINDING`, so a ✗ can never look stronger than a ✓."""
DIRECTION_ONLY = 0.5
"""The effect a finding of a metric with no chance level and ceiling is drawn at: its colour says only which
arm is better (its size, in the metric's own unit, is the number written in the cell)."""


def effect_colour(selectivity: float, verdict: str, metric: str, n_classes: int = 2) -> float:
    """The signed effect a verdict-matrix cell is coloured by, in [-1, 1], or NaN when its verdict is no
    finding (:data:`FINDINGS`). Anchored at chance and bounded: ``|selectivity| / (ceiling - chance)``,
    clipped to 1, for a metric with a ceiling (chance: 0.5 for AUROC, ``1 / n_classes`` otherwise);
    :data:`DIRECTION_ONLY` for any other metric, so no colour bar mixes units and no row is rescaled."""
    from auditkit.metrics.classification import CEILINGS

    if verdict not in FINDINGS or math.isnan(selectivity):
        return math.nan
    sign = 1.0 if selectivity >= 0 else -1.0
    if metric in CEILINGS:
        chance = 0.5 if metric == "auroc" else 1.0 / max(n_classes, 2)
        return sign * min(1.0, abs(selectivity) / (CEILINGS[metric] - chance))
    return sign * DIRECTION_ONLY


def effect_cmap() -> Any:
    """The diverging map of :func:`effect_colour`'s scale: RdBu, with effects near zero lifted to
    :data:`MIN_INTENSITY` so that a finding is never as pale as a cell that is none."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    base = colormaps["RdBu"]
    e = np.linspace(-1, 1, 256)
    return ListedColormap(base(0.5 + 0.5 * np.sign(e) * (MIN_INTENSITY + (1 - MIN_INTENSITY) * np.abs(e))))


def cell_rgba(effect: float, applies: bool = True) -> tuple[float, float, float, float]:
    """The colour of one heatmap cell: :func:`effect_cmap` at ``effect``, :data:`NO_FINDING` for NaN, and
    :data:`NOT_RUN` where the control does not apply."""
    from matplotlib.colors import to_rgba

    if not applies:
        return to_rgba(NOT_RUN)
    if math.isnan(effect):
        return to_rgba(NO_FINDING)
    return tuple(float(v) for v in effect_cmap()((effect + 1) / 2))  # type: ignore[return-value]


def luminance(rgba: tuple[float, ...]) -> float:
    """Relative luminance (sRGB weights) of a colour: lower is darker."""
    return 0.2126 * rgba[0] + 0.7152 * rgba[1] + 0.0722 * rgba[2]


def _text_colour(rgba: tuple[float, ...]) -> str:
    return "white" if luminance(rgba) < 0.45 else "black"


def add_effect_colourbar(fig: Any, ax: Any, **kwargs: Any) -> Any:
    """The one colour bar of a verdict heatmap, from -1 to 1 (see :func:`effect_colour`)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    bar = fig.colorbar(ScalarMappable(norm=Normalize(-1, 1), cmap=effect_cmap()), ax=ax, **kwargs)
    bar.ax.tick_params(labelsize=7)
    return bar


def verdict_heatmap(matrix: pd.DataFrame, path: Path, title: str) -> Any:
    """``verdicts.png``: rows x controls; each cell's selectivity (in its metric's unit) and verdict mark
    written in it, coloured by :func:`effect_colour` (the ``colour`` column of
    :func:`auditkit.report.summary.verdict_matrix`'s long table): findings by their effect on one scale, every
    other cell pale grey, cells whose control does not apply white."""
    rows = list(dict.fromkeys(matrix["row"]))
    controls = list(dict.fromkeys(matrix["control"]))
    image = np.ones((len(rows), len(controls), 4))
    labels = {}
    for r in matrix.itertuples(index=False):
        i, j = rows.index(r.row), controls.index(r.control)
        image[i, j] = cell_rgba(r.colour)
        mark = MARKS.get(r.verdict, "?")
        labels[i, j] = f"{r.shown:+.3g} {mark}" if not math.isnan(r.shown) else f"n/a {mark}"
    fig, ax = subplots(figsize=(max(6.5, 1.0 * len(controls) + 2.8), 0.42 * len(rows) + 1.9))
    ax.imshow(image, aspect="auto")
    for (i, j), text in labels.items():
        ax.text(j, i, text, ha="center", va="center", fontsize=8, color=_text_colour(tuple(image[i, j])))
    ax.set_xticks(range(len(controls)), [short_name(c) for c in controls], fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    for tick, control in zip(ax.get_xticklabels(), controls):
        tick.set_color(arm_colour(control))
    bar = add_effect_colourbar(fig, ax, fraction=0.05, pad=0.02)
    bar.set_label("finding's |selectivity| / (ceiling - chance)\ngrey: no finding", fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save(fig, path)
    return fig
