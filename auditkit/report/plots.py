"""Figures for the reports: matplotlib's object API (no pyplot, no global backend state)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.types import REAL


def subplots(
    nrows: int = 1, ncols: int = 1, *, figsize: tuple[float | int, float | int], **kwargs: Any
) -> tuple[Any, Any]:
    """A figure and its axes, drawn off-screen (``Figure`` needs no backend): ``fig.savefig`` writes it."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def arms_plot(rows: pd.DataFrame, path: Path, metric: str = "accuracy") -> None:
    """Per-seed scores of every arm for ``metric``, one panel per method."""
    data = rows[rows["metric"] == metric]
    methods = list(dict.fromkeys(data["method"]))
    fig, axes = subplots(1, len(methods), figsize=(4 + 2 * len(methods), 3.2), squeeze=False)
    for ax, method in zip(axes[0], methods):
        sub = data[data["method"] == method]
        arms = list(dict.fromkeys(sub["control"]))
        for i, arm in enumerate(arms):
            vals = sub[sub["control"] == arm]["value"]
            ax.scatter([i] * len(vals), vals, alpha=0.7)
            ax.hlines(vals.mean(), i - 0.25, i + 0.25, color="black")
        ax.set_xticks(range(len(arms)), ["real" if a == REAL else a for a in arms], rotation=20)
        ax.set_ylabel(metric)
        ax.set_title(method)
        ax.set_ylim(0, 1.02)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
