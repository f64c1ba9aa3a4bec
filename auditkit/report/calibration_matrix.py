"""The first screen of a calibration report: one sentence on what was calibrated, the calibration matrix
(rows: methods; columns: controls; cells: the false-positive rate on label nulls with its exact 95% interval,
the mark of its status against the stated level, and the power at the reference strength), its legend, and
the heatmap that says the same. Rendering only: every number is read from the result's fpr and power tables
(:mod:`auditkit.calibration.stats` computed them)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from auditkit.methods.probes import registry as probe_kinds
from auditkit.report.plots import PALETTE, arm_colour, save, short_name, subplots

FIGURE = "calibration.png"
REFERENCE_STRENGTH = 0.5
"""Planted signal-to-noise whose power the matrix shows (the nearest strength drawn, when 0.5 was not)."""
LABEL_NULL = "null-labels"

STATUS_MARKS: dict[str, str] = {
    "at or below nominal": "✔",
    "above nominal (not significant)": "≈",
    "EXCEEDS nominal": "✘",
}
"""The mark of each false-positive status (:func:`fpr_status`) in the matrix, its heatmap and the terminal."""


def fpr_status(fpr: float, ci_low: float, nominal: float) -> str:
    """``EXCEEDS nominal`` when even the interval's lower end is above the nominal level."""
    if ci_low > nominal:
        return "EXCEEDS nominal"
    if fpr > nominal:
        return "above nominal (not significant)"
    return "at or below nominal"


def pct(x: float, digits: int = 1) -> str:
    return "n/a" if isinstance(x, float) and math.isnan(x) else f"{100 * x:.{digits}f}%"


def _label_nulls(fpr: pd.DataFrame) -> pd.DataFrame:
    if fpr.empty:
        return fpr
    return fpr[fpr["null"] == LABEL_NULL] if "null" in fpr else fpr


def reference_strength(power: pd.DataFrame) -> float | None:
    """The strength drawn nearest to :data:`REFERENCE_STRENGTH` (None without planted datasets)."""
    if power.empty:
        return None
    strengths = sorted(set(power["strength"].astype(float)))
    return min(strengths, key=lambda s: (abs(s - REFERENCE_STRENGTH), s))


def calibration_matrix(result: Any) -> pd.DataFrame:
    """Long table, one row per (method, control) of the label nulls: fpr, ci_low, ci_high, n_null, status,
    mark, and the power (with its interval) at :func:`reference_strength` (NaN where none was measured)."""
    fpr = _label_nulls(result.fpr)
    if fpr.empty:
        return pd.DataFrame(
            columns=[
                "method",
                "control",
                "fpr",
                "ci_low",
                "ci_high",
                "n_null",
                "status",
                "mark",
                "power",
                "power_low",
                "power_high",
            ]
        )
    ref = reference_strength(result.power)
    power = result.power
    if ref is not None:
        power = power[np.isclose(power["strength"].astype(float), ref)].set_index(["method", "control"])
    rows = []
    for r in fpr.itertuples(index=False):
        status = fpr_status(r.fpr, r.ci_low, r.nominal)
        p = power.loc[(r.method, r.control)] if ref is not None and (r.method, r.control) in power.index else None
        rows.append(
            {
                "method": r.method,
                "control": r.control,
                "fpr": float(r.fpr),
                "ci_low": float(r.ci_low),
                "ci_high": float(r.ci_high),
                "n_null": int(r.n_null),
                "status": status,
                "mark": STATUS_MARKS[status],
                "power": math.nan if p is None else float(p["power"]),
                "power_low": math.nan if p is None else float(p["ci_low"]),
                "power_high": math.nan if p is None else float(p["ci_high"]),
            }
        )
    out = pd.DataFrame(rows)
    controls = _controls(out)
    methods = sorted(dict.fromkeys(out["method"]), key=method_order)
    out["_m"] = out["method"].map(methods.index)
    out["_c"] = out["control"].map(controls.index)
    return out.sort_values(["_m", "_c"], kind="stable").drop(columns=["_m", "_c"]).reset_index(drop=True)


def _controls(matrix: pd.DataFrame) -> list[str]:
    """The matrix's controls in one order for every report: the palette's, then any other by appearance."""
    canonical = [c for c in PALETTE if c in set(matrix["control"])]
    return canonical + [c for c in dict.fromkeys(matrix["control"]) if c not in canonical]


def method_order(method: str) -> tuple[int, str]:
    """Probe kinds first (as the audit lists them), then SAE, pursuit, codelength rows."""
    family = (
        3
        if ":" in method
        else next((i for i, p in enumerate(("probe-", "sae-", "pursuit-")) if method.startswith(p)), 3)
    )
    kinds = probe_kinds.names()
    rank = next((i for i, k in enumerate(kinds) if method.removeprefix("probe-").startswith(k)), len(kinds))
    return family, f"{rank:02d}{_natural(method)}"


def _natural(text: str) -> str:
    """``sae-k5`` before ``sae-k20``: digits zero-padded."""
    out, digits = [], ""
    for ch in text + " ":
        if ch.isdigit():
            digits += ch
            continue
        if digits:
            out.append(digits.zfill(4))
            digits = ""
        out.append(ch)
    return "".join(out).rstrip()


def cell_text(r: Any, interval: bool = True) -> str:
    fpr = f"{pct(r.fpr)} [{pct(r.ci_low)}, {pct(r.ci_high)}] {r.mark}" if interval else f"{pct(r.fpr)} {r.mark}"
    if math.isnan(r.power):
        return fpr
    return f"{fpr}; power {r.power:.2f}" if interval else f"{fpr} {r.power:.2f}"


def wide(matrix: pd.DataFrame, interval: bool = True) -> tuple[list[str], list[list[str]]]:
    controls = _controls(matrix)
    body = []
    for method, g in matrix.groupby("method", sort=False):
        cells = {r.control: cell_text(r, interval) for r in g.itertuples(index=False)}
        body.append([method, *(cells.get(c, "") for c in controls)])
    return ["method", *controls], body


def legend(result: Any) -> str:
    nominal = pct(result.config.nominal)
    marks = ", ".join(f"{m} {s.lower()}" for s, m in STATUS_MARKS.items())
    ref = reference_strength(result.power)
    text = (
        f"Each cell: the false-positive rate, the share of the label-null datasets whose verdict was *selective*, "
        f"with its exact (Clopper-Pearson) 95% interval, and its status against the stated level {nominal}: "
        f"{marks} (the interval's lower end above {nominal})."
    )
    if ref is None:
        return (
            text
            + " No planted datasets were drawn, so power was not measured. An empty cell: that control does not apply."
        )
    ideal = result.power[np.isclose(result.power["strength"].astype(float), ref)]["ideal_accuracy"].mean()
    return text + (
        f" *power*: the share of planted datasets at signal-to-noise {ref:g} (the ideal reader's accuracy "
        f"{pct(float(ideal))}) called *selective*. An empty cell: that control does not apply to that method."
    )


def other_nulls_line(result: Any) -> str:
    """One sentence on the null families besides the label nulls (repeated-text nulls), '' when none ran."""
    fpr = result.fpr
    if fpr.empty or "null" not in fpr:
        return ""
    rest = fpr[fpr["null"] != LABEL_NULL]
    if rest.empty:
        return ""
    status = [fpr_status(f, lo, n) for f, lo, n in zip(rest["fpr"], rest["ci_low"], rest["nominal"])]
    worst = rest.iloc[int(np.argmax(rest["fpr"].to_numpy()))]
    bad = sum(s != "at or below nominal" for s in status)
    families = ", ".join(f"`{f}`" for f in dict.fromkeys(rest["null"]))
    return (
        f"Repeated-text nulls ({families}, {int(rest['n_null'].max())} datasets each): {len(rest) - bad} of "
        f"{len(rest)} method-control pairs at or below the stated level; the highest rate {pct(float(worst['fpr']))} "
        f"[{pct(float(worst['ci_low']))}, {pct(float(worst['ci_high']))}] ({worst['method']} vs {worst['control']}, "
        f"`{worst['null']}`)."
    )


def calibrated_sentence(result: Any) -> str:
    """One sentence: the synthetic setting, methods, controls, datasets, test rows, stated level."""
    cfg, info = result.config, result.info
    methods = list(dict.fromkeys(_label_nulls(result.fpr)["method"])) if not result.fpr.empty else list(cfg.methods)
    matrix = calibration_matrix(result)
    controls = _controls(matrix) if not matrix.empty else list(info.get("controls", []))
    n_rep = getattr(cfg, "n_null_repeated", 0)
    nulls = f"{cfg.n_null} label-null datasets" + (f", {n_rep} of each repeated-text null family" if n_rep else "")
    planted = (
        f"{cfg.n_planted} planted datasets at each of the strengths {', '.join(f'{s:g}' for s in cfg.strengths)}"
        if cfg.n_planted and cfg.strengths
        else "no planted datasets (power not measured)"
    )
    return (
        f"Calibrated the verdicts of {len(methods)} method{'s' if len(methods) != 1 else ''} "
        f"({', '.join(sorted(methods, key=method_order))}) against {len(controls)} control{'s' if len(controls) != 1 else ''} "
        f"({', '.join(controls)}) on {info.get('model', 'a synthetic model')} at `{info.get('hook')}`: {nulls} and "
        f"{planted}, each audited with seeds {list(cfg.seeds)} on about {info.get('n_test_rows_approx', '?')} "
        f"held-out test rows of {info.get('n_rows')}; stated false-positive level {pct(cfg.nominal)}."
    )


def summary_lines(result: Any, figure: str | None) -> list[str]:
    """The first screen: the sentence, the calibration matrix, its legend and the heatmap."""
    lines = [calibrated_sentence(result), "", "## Calibration matrix", ""]
    matrix = calibration_matrix(result)
    if matrix.empty:
        line = other_nulls_line(result)
        return lines + [
            "No label-null datasets were drawn: the matrix has no false-positive rate to show.",
            "",
            *([line, ""] if line else []),
        ]
    head, body = wide(matrix)
    lines += [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + [":---:"] * (len(head) - 1)) + "|",
        *("| " + " | ".join(cells) + " |" for cells in body),
        "",
        legend(result),
        "",
    ]
    if line := other_nulls_line(result):
        lines += [line, ""]
    if figure:
        what = (
            "false-positive rate and power" if reference_strength(result.power) is not None else "false-positive rate"
        )
        lines += [f"![Calibration matrix: {what} per method and control]({figure})", ""]
    return lines


def calibration_heatmap(result: Any, path: Path) -> Any:
    """``calibration.png``: methods x controls, the false-positive rate on label nulls coloured against the
    stated level (with its mark) and, below, the power at the reference strength (when planted data ran)."""
    matrix = calibration_matrix(result)
    methods = list(dict.fromkeys(matrix["method"]))
    controls = _controls(matrix)
    ref = reference_strength(result.power)
    panels = [("fpr", "Reds")] + ([("power", "Blues")] if ref is not None else [])
    upright = len(controls) > 6
    height = 0.36 * len(methods) + 1.2
    fig, axes = subplots(
        len(panels),
        1,
        # at most 12.5 in (about 1,400 px at the saved resolution): more than ten controls get narrower cells
        figsize=(min(12.5, max(6.5, 0.95 * len(controls) + 2.8)), height * len(panels) + (1.0 if upright else 0.6)),
        squeeze=False,
    )
    nominal = result.config.nominal
    for ax, (what, cmap) in zip(axes[:, 0], panels):
        grid = np.full((len(methods), len(controls)), np.nan)
        for r in matrix.itertuples(index=False):
            i, j = methods.index(r.method), controls.index(r.control)
            value = getattr(r, what)
            grid[i, j] = value
            text = f"{pct(value)} {r.mark}" if what == "fpr" else ("n/a" if math.isnan(value) else f"{value:.2f}")
            shade = value / (2 * nominal) if what == "fpr" else value
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=8 if len(controls) <= 10 else 7,
                color="white" if not math.isnan(shade) and shade > 0.65 else "black",
            )
        vmax = 2 * nominal if what == "fpr" else 1.0
        image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=vmax, aspect="auto")
        ax.set_yticks(range(len(methods)), methods, fontsize=8)
        ax.set_xticks(
            range(len(controls)),
            [short_name(c) for c in controls],
            fontsize=8,
            rotation=(60 if len(controls) > 10 else 30) if upright else 0,  # narrower cells past ten controls
            ha="right" if upright else "center",
            rotation_mode="anchor",
        )
        for tick, control in zip(ax.get_xticklabels(), controls):
            tick.set_color(arm_colour(control))
        bar = fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02)
        bar.ax.tick_params(labelsize=7)
        if what == "fpr":
            bar.set_label("false-positive rate", fontsize=7)
            ax.set_title(
                f"False-positive rate on label nulls ({int(matrix['n_null'].max())} datasets; a dataset = one "
                f"audit over {len(result.config.seeds)} seeds)\n✔ at or below the stated {pct(nominal)}, "
                "≈ above it (not significant), ✘ significantly above",
                fontsize=9,
            )
        else:
            bar.set_label("power", fontsize=7)
            ax.set_title(f"Power: share of planted datasets called selective (signal-to-noise {ref:g})", fontsize=9)
    fig.tight_layout()
    save(fig, path)
    return fig


TERMINAL_LEGEND = "false-positive rate on label nulls: " + "  ".join(
    f"{m} {s.lower()}" for s, m in STATUS_MARKS.items()
)


def terminal_table(result: Any) -> Any:
    """The calibration matrix as a compact ``rich`` table (FPR, mark, power; the report has the intervals)."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    matrix = calibration_matrix(result)
    if matrix.empty:
        return table
    head, body = wide(matrix, interval=False)
    table.add_column("FPR, power", no_wrap=True)
    for control in head[1:]:
        table.add_column(short_name(control), justify="right", no_wrap=True)
    for cells in body:
        table.add_row(*cells)
    return table
