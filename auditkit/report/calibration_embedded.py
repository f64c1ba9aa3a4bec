"""The embedded calibration's report folder: ``summary.md`` and the tidy tables, written atomically.

``summary.md`` opens with what was calibrated and the false-positive rates (label nulls and the weight-control
null) with their exact intervals, then power and the interval's coverage on planted data; the tables
(``fpr.csv``, ``power.csv``, ``coverage.csv``, ``truth.csv``, ``verdicts.csv``) and ``run.json`` hold every
number. Renders only: the numbers come from :func:`auditkit.calibration.embedded.calibrate_embedded`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.report.calibration_matrix import fpr_status, pct
from auditkit.report.outputs import atomic_folder
from auditkit.report.tables import markdown_table
from auditkit.report.write import write_run_json

KIND = "calibration-embedded"
TABLES = ("fpr", "power", "coverage", "truth", "verdicts")
OWNED = ("summary.md", "run.json", *(f"{t}.csv" for t in TABLES))


def _ci(lo: float, hi: float) -> str:
    return f"[{pct(lo)}, {pct(hi)}]"


def _metric(table: pd.DataFrame) -> dict[str, pd.Series]:
    """The ``metric`` column first, where the run calibrated more than one metric (older runs: accuracy only)."""
    return {"metric": table["metric"]} if "metric" in table.columns else {}


def _fresh(covered: float, n: float) -> str:
    return "" if pd.isna(n) or not n else f"{pct(covered / n)} of {int(n)}"


def _glance(result: Any) -> list[str]:
    """One line per metric: the worst false-positive rate of each null family, and the pooled coverage."""
    fpr, cov = result.fpr, result.coverage
    if fpr.empty or "metric" not in fpr.columns:
        return []
    lines = ["At a glance:", ""]
    for metric in dict.fromkeys(fpr["metric"]):
        f = fpr[(fpr["metric"] == metric) & (fpr["labels"].isin(["random", "all"]))]
        worst = {null: f[f["null"] == null]["fpr"].max() for null in dict.fromkeys(f["null"])}
        c = cov[cov["metric"] == metric] if "metric" in cov.columns else cov.iloc[0:0]
        covered = (
            f"{pct(c['covered'].sum() / c['n'].sum())} of {int(c['n'].sum())} intervals" if len(c) else "not measured"
        )
        lines.append(
            f'- **{metric}**: worst "selective" rate '
            + ", ".join(f"{pct(v)} on {k}" for k, v in worst.items())
            + f" (stated {pct(result.config.nominal)}); coverage {covered} (nominal 95%){_own_target(c)}."
        )
    return [*lines, ""]


def _own_target(c: pd.DataFrame) -> str:
    """On planted data, each interval against the target it states: the mean difference for label and token
    controls, one fresh draw's difference for a random-model control's prediction interval."""
    if "fresh_coverage" not in c.columns or not c["fresh_n"].notna().any():
        return ""
    planted = c[c["strength"] > 0]
    fresh = planted["fresh_n"].notna()
    covered = planted.loc[~fresh, "covered"].sum() + planted.loc[fresh, "fresh_covered"].sum()
    n = planted.loc[~fresh, "n"].sum() + planted.loc[fresh, "fresh_n"].sum()
    return (
        f"; on planted data, each interval against its own target (one fresh draw's difference for the "
        f"reinitialised controls' prediction intervals): {pct(covered / n)} of {int(n)}"
    )


def render_embedded(result: Any) -> str:
    """``summary.md`` of an embedded calibration."""
    cfg, info, fpr = result.config, result.info, result.fpr
    n = info["n_datasets"]
    lines = [
        "# Calibration on the embedded model",
        "",
        f"Verdicts of {', '.join('probe-' + p for p in cfg.probes)} on `{info['model']}` at `{info['hook']}` "
        f"({info['positions']} position), {info['n_texts']} texts of `{info['dataset']}` (about "
        f"{info['n_test_texts_approx']} test texts per seed), {len(cfg.seeds)} seeds per dataset, verdict rule: "
        f"{info['verdict_rule']}; {n.get('null-labels', 0)} label nulls, {n.get('planted', 0)} planted datasets "
        f"(signal-to-noise {', '.join(map(str, cfg.strengths))}), {n.get('null-weight', 0)} weight-control nulls; "
        f"stated level {pct(cfg.nominal)}. Pool of control draws: {info['pool_draws']}."
        + (f" Logistic probe C = {cfg.probe_C:g} (the audit's default is 1)." if cfg.probe_C != 1.0 else "")
        + (
            f" C chosen per arm and seed among {', '.join(f'{c:g}' for c in cfg.probe_c_grid)} (--probe-c-grid)."
            if getattr(cfg, "probe_c_grid", ())
            else ""
        )
        + (
            f" Label controls drawn {info['label_draws']} times per seed; interval rule: {info['interval_rule']}."
            if "interval_rule" in info
            else ""
        ),
        "",
        *_glance(result),
        '## False-positive rate of "selective"',
        "",
    ]
    if not fpr.empty:
        table = pd.DataFrame(
            {
                **_metric(fpr),
                "null": fpr["null"],
                "labels": fpr["labels"],
                "method": fpr["method"],
                "control": fpr["control"],
                "datasets": fpr["n_null"],
                "selective": fpr["n_selective"],
                "FPR": fpr["fpr"].map(pct),
                "exact 95% CI": [_ci(a, b) for a, b in zip(fpr["ci_low"], fpr["ci_high"])],
                "status": [fpr_status(f, lo, nom) for f, lo, nom in zip(fpr["fpr"], fpr["ci_low"], fpr["nominal"])],
                "interval > 0": fpr["interval_rate"].map(pct),
                "mean sel.": fpr["mean_selectivity"].round(4),
                "sd sel.": fpr["sd_selectivity"].round(4),
            }
        )
        lines += [markdown_table(table), ""]
    if not result.power.empty:
        p = result.power
        table = pd.DataFrame(
            {
                **_metric(p),
                "method": p["method"],
                "control": p["control"],
                "strength": p["strength"],
                "n": p["n"],
                "power": p["power"].round(3),
                "exact 95% CI": [_ci(a, b) for a, b in zip(p["ci_low"], p["ci_high"])],
                "mean sel.": p["mean_selectivity"].round(3),
                "mean real acc.": p["mean_real"].round(3),
                "ideal acc.": p["ideal_accuracy"].round(3),
            }
        )
        lines += ["## Power on planted data", "", markdown_table(table), ""]
    if not result.coverage.empty:
        c = result.coverage
        table = pd.DataFrame(
            {
                **_metric(c),
                "method": c["method"],
                "control": c["control"],
                "strength": c["strength"],
                "n": c["n"],
                "coverage": c["coverage"].map(pct),
                "exact 95% CI": [_ci(a, b) for a, b in zip(c["ci_low"], c["ci_high"])],
                "below": c["miss_low"].map(pct),
                "above": c["miss_high"].map(pct),
                "mean truth": c["mean_truth"].round(3),
                "mean half-width": c["mean_half_width"].round(3),
                "RMSE": c["rmse"].round(3),
                "truth SE": c["mean_truth_se"].round(3),
                **(
                    {"fresh-draw coverage": [_fresh(k, n) for k, n in zip(c["fresh_covered"], c["fresh_n"])]}
                    if "fresh_n" in c.columns
                    else {}
                ),
            }
        )
        lines += [
            "## Coverage of the 95% interval",
            "",
            (
                "Share of intervals that contain the true selectivity: 0 on the label nulls (strength 0); on planted data "
                "the expected per-seed difference real - control over the audit's randomness (split, label-control draw, "
                "control model) with texts and labels fixed, estimated on "
                f"{cfg.n_truth_seeds} fresh seeds per dataset whose control models the audit did not use "
                "(`truth.csv`; `truth SE` is its standard error). `below` / `above`: the interval misses on that side "
                "(2.5% each for a calibrated interval)."
                + (
                    " `fresh-draw coverage` (reinitialised controls): the share of (interval, fresh seed) pairs "
                    "whose difference between the real arm's mean score and that seed's control draw lies in the "
                    "interval: the target a prediction interval states (intervals x fresh seeds)."
                    if "fresh_n" in c.columns
                    else ""
                )
            ),
            "",
            markdown_table(table),
            "",
        ]
    t = info["timings"]
    lines += [
        (
            f"Wall time: {t['total_s']:.0f} s ({t['pool_s']:.0f} s for the pool of activations, through the cache; "
            f"{t['fit_s']:.0f} s of probe fits), {info['unconverged_fit_warnings']} fits ended above tolerance. "
            f"Lexical labels: {', '.join(info['lexical_labels'])}."
        ),
        "",
    ]
    return "\n".join(lines)


def write_embedded_calibration(result: Any, out: Path | str, command: str) -> Path:
    """Write summary.md, the tables and run.json to ``out`` (replacing only an output of this kind)."""
    out = Path(out)
    with atomic_folder(out, KIND, owned=OWNED) as tmp:
        for name in TABLES:
            getattr(result, name).to_csv(tmp / f"{name}.csv", index=False)
        write_run_json(tmp, command, result.config, result.info)
        (tmp / "summary.md").write_text(render_embedded(result) + f"\nReproduce: `{command}`\n")
    return out
