"""Figures for the reports: matplotlib's object API (no pyplot, no global backend state), one palette.

Every figure colours an arm by :func:`arm_colour` and names it by :func:`short_name`, so a control has the
same colour and the same short name in the audit, SAE, pursuit, calibration and steering figures.
"""

from __future__ import annotations

import math
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from auditkit.types import REAL

PALETTE: dict[str, str] = {
    "real": "#000000",
    "shuffled-labels": "#1f77b4",
    "control-task": "#17becf",
    "random-tokens-uniform": "#ff7f0e",
    "random-tokens-unigram": "#bcbd22",
    "spectral-reinit": "#d62728",
    "gaussian-reinit": "#9467bd",
    "step0": "#8c564b",
    "gaussian-dict": "#e377c2",
    "spectral-dict": "#7f7f7f",
    # the calibration's null families and planted arms
    "repeated-texts": "#2ca02c",
}
"""One colour per arm, used by every figure (tab10's colours; the real arm black)."""

_FALLBACK = ("#2ca02c", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2")

SHORT_NAMES: dict[str, str] = {
    REAL: "real",
    "shuffled-labels": "shuffled",
    "control-task": "control task",
    "random-tokens-uniform": "rand tok unif",
    "random-tokens-unigram": "rand tok unigr",
    "spectral-reinit": "spectral",
    "gaussian-reinit": "gaussian",
    "step0": "step0",
    "gaussian-dict": "gauss dict",
    "spectral-dict": "spectral dict",
}
"""Short arm names for tick labels and table headers (the report's text uses the full names)."""

DPI = 110
PNG_METADATA = {"Software": None}
"""No library version in the PNG: a figure re-rendered from the same rows is byte-identical."""


def arm_name(control: str) -> str:
    return "real" if control == REAL else control


def short_name(control: str) -> str:
    return SHORT_NAMES.get(control, control)


def arm_colour(control: str) -> str:
    """The arm's colour in every figure; an unknown name gets a stable colour from its text."""
    name = arm_name(control)
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
    fig, axes = subplots(nrows, ncols, figsize=(max(2.8, 0.3 * n_arms + 0.8) * ncols, 3.1 * nrows + 0.6),
                         squeeze=False)  # fmt: skip
    for ax in axes.flat[len(metrics_by_panel):]:
        ax.set_visible(False)
    for ax, (method, metric) in zip(axes.flat, metrics_by_panel):
        sub = rows[(rows["method"] == method) & (rows["metric"] == metric)]
        arms = list(dict.fromkeys(sub["control"]))
        for i, arm in enumerate(arms):
            vals = sub[sub["control"] == arm]["value"]
            ax.scatter([i] * len(vals), vals, s=22, color=arm_colour(arm), alpha=0.85, zorder=3)
            if len(vals):
                ax.hlines(vals.mean(), i - 0.3, i + 0.3, color="black", lw=1.2, zorder=2)
        ax.set_xticks(range(len(arms)), [short_name(a) for a in arms], rotation=90 if upright else 40,
                      ha="center" if upright else "right", fontsize=8, rotation_mode="default" if upright else "anchor")  # fmt: skip
        ax.set_xlim(-0.6, len(arms) - 0.4)
        ax.tick_params(axis="y", labelsize=8)
        ax.set_title(method if metric == "" else f"{method}: {metric}", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        if ylim is not None:
            ax.set_ylim(*ylim)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save(fig, path)
    return fig


def arms_plot(rows: pd.DataFrame, path: Path, metric: str = "accuracy") -> Any:
    """``arms.png``: per-seed ``metric`` of every arm, one panel per method (probe kind)."""
    methods = list(dict.fromkeys(rows[rows["metric"] == metric]["method"]))
    data = rows.assign(metric=rows["metric"].where(rows["metric"] != metric, ""))
    return arms_grid(data, path, [(m, "") for m in methods],
                     f"Held-out {metric} per arm (one point = one seed; bar = mean over seeds)", ylim=(0, 1.02))  # fmt: skip


MARKS: dict[str, str] = {
    "selective": "✓",
    "not selective": "✗",
    "control better": "▼",
    "inconclusive": "?",
    "degenerate": "⊘",
    "differs": "≠",
    "similar": "=",
}
"""The mark of each verdict in the verdict matrix, its heatmap and the terminal table."""


def verdict_heatmap(matrix: pd.DataFrame, path: Path, title: str) -> Any:
    """``verdicts.png``: rows x controls, coloured by normalised selectivity (or selectivity scaled to the
    row's largest absolute value where the metric has no ceiling, rows marked ``*``), each cell's normalised
    selectivity (``*`` rows: selectivity) and verdict mark written in it. ``matrix`` is :func:`auditkit.report.summary.verdict_matrix`'s long table."""
    rows = list(dict.fromkeys(matrix["row"]))
    controls = list(dict.fromkeys(matrix["control"]))
    colour = np.full((len(rows), len(controls)), np.nan)
    labels = {}
    for r in matrix.itertuples(index=False):
        i, j = rows.index(r.row), controls.index(r.control)
        colour[i, j] = r.colour
        digits = 3 if r.scaled else 2  # selectivity rows can be small (FVU, L0)
        mark = MARKS.get(r.verdict, "?")
        labels[i, j] = f"{r.shown:+.{digits}f} {mark}" if not math.isnan(r.shown) else f"n/a {mark}"
    fig, ax = subplots(figsize=(max(6.5, 1.0 * len(controls) + 2.8), 0.42 * len(rows) + 1.9))
    image = ax.imshow(np.ma.masked_invalid(colour), cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
    for (i, j), text in labels.items():
        dark = not math.isnan(colour[i, j]) and abs(colour[i, j]) > 0.6
        ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
    ax.set_xticks(range(len(controls)), [short_name(c) for c in controls], fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    for tick, control in zip(ax.get_xticklabels(), controls):
        tick.set_color(arm_colour(control))
    bar = fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02)
    bar.ax.tick_params(labelsize=7)
    bar.set_label("normalised selectivity (* rows: scaled)", fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save(fig, path)
    return fig
