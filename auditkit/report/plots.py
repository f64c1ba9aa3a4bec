"""Plots for the report (matplotlib, non-interactive backend)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def arms_plot(rows: pd.DataFrame, path: Path, metric: str = "accuracy") -> None:
    """Per-seed scores of every arm for ``metric``, one panel per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = rows[rows["metric"] == metric]
    methods = list(dict.fromkeys(data["method"]))
    fig, axes = plt.subplots(1, len(methods), figsize=(4 + 2 * len(methods), 3.2), squeeze=False)
    for ax, method in zip(axes[0], methods):
        sub = data[data["method"] == method]
        arms = list(dict.fromkeys(sub["control"]))
        for i, arm in enumerate(arms):
            vals = sub[sub["control"] == arm]["value"]
            ax.scatter([i] * len(vals), vals, alpha=0.7)
            ax.hlines(vals.mean(), i - 0.25, i + 0.25, color="black")
        ax.set_xticks(range(len(arms)), ["real" if a == "none" else a for a in arms], rotation=20)
        ax.set_ylabel(metric)
        ax.set_title(method)
        ax.set_ylim(0, 1.02)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
