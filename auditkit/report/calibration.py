"""The calibration report: what was tested, false-positive rates against the nominal level, power.

The first screen (:mod:`auditkit.report.calibration_matrix`) is one sentence on what was calibrated, the
calibration matrix (methods x controls: false-positive rate with its interval and mark, power) and its heatmap;
the details follow, long tables folded. ``render_calibration`` only renders; ``write_calibration`` writes
report.md, the tidy tables, run.json and the figures into a temporary folder swapped into place in one rename,
like an audit's outputs; ``rerender_calibration`` re-renders report.md and the figures of such a folder from
its own tables (:func:`auditkit.calibration.saved.load_calibration`), recomputing nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.audit.options import SAE_BASELINES
from auditkit.report.calibration_matrix import (
    FIGURE,
    calibration_heatmap,
    calibration_matrix,
    fpr_status,
    method_order,
    summary_lines,
)
from auditkit.report.calibration_matrix import pct as _pct
from auditkit.report.outputs import atomic_folder, copy_except, rendering_errors
from auditkit.report.plots import PALETTE, arm_colour, grid_shape, save, subplots
from auditkit.report.tables import collapsed, markdown_table
from auditkit.report.write import write_run_json

PLOT = "power.png"
RENDERED = ("report.md", PLOT, FIGURE)
"""Files :func:`render_files` writes; a re-render replaces exactly these."""
OWNED = (*RENDERED, "fpr.csv", "power.csv", "verdicts.csv", "recovery.csv", "run.json")
"""Everything :func:`write_calibration` writes: a new run at the same ``--out`` carries every other file over."""


def _fpr_section(result: Any) -> list[str]:
    cfg, fpr = result.config, result.fpr
    if fpr.empty:
        return ["## False-positive rate", "", "No null datasets were drawn.", ""]
    table = pd.DataFrame(
        {
            "null": fpr.get("null", "null-labels"),
            "method": fpr["method"],
            "control": fpr["control"],
            "null datasets": fpr["n_null"],
            "selective": fpr["n_selective"],
            "FPR": fpr["fpr"].map(_pct),
            "95% CI": [f"[{_pct(a)}, {_pct(b)}]" for a, b in zip(fpr["ci_low"], fpr["ci_high"])],
            "nominal": fpr["nominal"].map(_pct),
            "status": [fpr_status(f, lo, n) for f, lo, n in zip(fpr["fpr"], fpr["ci_low"], fpr["nominal"])],
            "interval > 0": fpr["interval_rate"].map(_pct),
            "its nominal": fpr["interval_nominal"].map(_pct),
            "mean sel.": fpr["mean_selectivity"],
            "sd sel.": fpr["sd_selectivity"],
            "seed ICC": fpr["seed_icc"],
        }
    )
    return [
        "## False-positive rate (null datasets)",
        "",
        (
            f"Every null family. Share of null datasets called *selective*, with its exact (Clopper-Pearson) 95% interval, against "
            f"the nominal level {_pct(cfg.nominal)}. A pair **exceeds** the nominal level when the interval's lower "
            "end is above it. *interval > 0* is the share whose 95% interval alone lies above zero (the rule "
            "without its threshold; 2.5% if the seeds were independent). *seed ICC* is the within-dataset "
            "correlation of the per-seed differences: the seeds share one dataset, so they are not independent, "
            "and a positive ICC makes the t-interval over seeds too narrow by sqrt((1 - ICC) / (1 + (S - 1) ICC))."
        ),
        "",
        *collapsed(
            f"{len(table)} null x method x control rows: {_status_counts(table['status'])}", markdown_table(table)
        ),
    ]


def _status_counts(status: pd.Series) -> str:
    return ", ".join(f"{n} {s.lower()}" for s, n in status.value_counts(sort=False).items())


def _power_section(result: Any) -> list[str]:
    power = result.power
    if power.empty:
        return ["## Power", "", "No planted datasets were drawn: power was not measured.", ""]
    wide = power.pivot_table(index=["method", "strength"], columns="control", values="power").reset_index()
    real = power.groupby(["method", "strength"])["mean_real"].mean()
    ideal = power.groupby("strength")["ideal_accuracy"].mean()
    wide.insert(2, "best acc.", [float(ideal[s]) for s in wide["strength"]])
    wide.insert(3, "real acc.", [float(real[m, s]) for m, s in zip(wide["method"], wide["strength"])])
    n = int(power["n"].min())
    return [
        "## Power (planted datasets)",
        "",
        (
            f"Share of planted datasets called *selective* ({n} datasets per strength and method). Strength is the signal-to-noise ratio of the latent "
            "score; *best acc.* is the expected accuracy of the ideal reader (who knows the direction), mean "
            "Phi(strength |z|) over the rows (1/2 + arctan(strength)/pi if z were Gaussian); *real acc.* the probe's "
            "mean held-out accuracy on the real arm."
        ),
        "",
        f"![Power against planted signal-to-noise, one line per control (strength 0: the null FPR)]({PLOT})",
        "",
        *collapsed(f"Power per method and strength ({len(wide)} rows)", markdown_table(wide)),
    ]


def _recovery_section(result: Any) -> list[str]:
    rec = result.recovery
    if rec is None or rec.empty:
        return []
    ok = "all passed" if bool(rec["passed"].all()) else f"{int((~rec['passed']).sum())} FAILED"
    return [
        f"## Recovery checks ({ok})",
        "",
        (
            "Sparse features in superposition with known directions (sae-lens's `FeatureDictionary`, Zipfian "
            "firing). The planted dictionary must *recover* (pursuit: support recall at the true L0; SAE: mean "
            "best |cosine| of every planted direction with a decoder row), and its Gaussian and "
            "spectrum-matched controls must *fail*."
        ),
        "",
        markdown_table(rec),
        "",
    ]


def _feature_lines(cfg: Any) -> list[str]:
    """What the SAE and pursuit rows are, when those methods are calibrated."""
    lines = []
    if "sae" in cfg.methods:
        o = cfg.sae
        width = o.width if o.width is not None else f"{o.expansion_factor:g} x d"
        lines.append(
            f"- **sae-k1, sae-k5, sae-k20**: the SAE method's k-sparse probing of latents (`probe_acc_k{{k}}`), "
            f"through the audit's own code: one {o.architecture} SAE (F = {width}, k = {o.k}, {o.training_tokens:,} "
            f"tokens, batch {o.batch_size}) per arm and seed, same initialisation seed for every arm of a seed. "
            "Each SAE is trained once on *all* of its arm's rows, not on one dataset's training split (the split "
            "moves with every dataset's labels); the SAE never sees a label, so this cannot put label signal into "
            "a null dataset's latents."
        )
        baselines = [c for c in cfg.controls_for("sae") if c in SAE_BASELINES]
        if baselines:
            lines.append(
                f"- The SAE baselines ({', '.join(baselines)}) are built per seed from the real arm's rows and its "
                "SAE, as the audit builds them, and probed with the real arm's labels. They encode the *real* "
                "activations, so planted labels (which live there) stay readable and their power stays near zero "
                "by construction: a verdict against a baseline asks whether SAE training found the label's "
                "direction better than an untrained, frozen, PCA or identity dictionary, not whether the "
                "model carries the label."
            )
    if "pursuit" in cfg.methods:
        o = cfg.pursuit
        lines.append(
            f"- **pursuit-code**: the pursuit method's probe on codes (logistic, C = {o.code_probe_C:g}), through "
            f"the audit's own code: {o.solver} codes (k = {max(o.ks)}) against each arm's own "
            f"{o.dictionary} dictionary, computed once per arm, and the dictionary controls "
            f"({', '.join(o.dictionary_controls)}). Those code the *real* activations against a random dictionary; "
            "planted labels live in the real activations, which such codes keep, so their power stays near zero "
            "by construction: a code-probe verdict against a dictionary control asks whether the dictionary "
            "matters, not whether the model carries the label."
        )
    return lines


def _mdl_sentence(cfg: Any) -> str:
    """What the online-codelength verdicts are, when the calibration scored them (``mdl_probes``)."""
    kinds = getattr(cfg, "mdl_probes", ())
    if not kinds:
        return ""
    return (
        f"Online-codelength verdicts (`auditkit audit --mdl`) of {', '.join(kinds)}: methods "
        "`probe-<kind>:codelength_per_label` (control minus real bits) and `probe-<kind>:compression`, one number per "
        "arm and seed on its training rows, so their interval is the between-seed spread alone. "
    )


def _planted_line(cfg: Any) -> str:
    if not cfg.n_planted or not cfg.strengths:
        return "- **Planted datasets**: none were drawn, so power was not measured (false-positive rates only)."
    return (
        f"- **Planted datasets** ({cfg.n_planted} per strength, strengths {list(cfg.strengths)}): labels "
        "1[strength * z + e > 0], z the standardised projection of the real arm's activations on a random "
        "direction, e ~ N(0, 1), so only the real model carries them."
    )


def _settings_line(cfg: Any, info: dict[str, Any]) -> str:
    probes = (
        f"probes {', '.join(cfg.probes)} (logistic C = {cfg.probe_C:g}), " if "probe" in cfg.methods else ""
    )  # the SAE and pursuit rows fit their own probes (below), not these kinds
    return (
        f"- **Audit settings**: seeds {list(cfg.seeds)} ({len(info.get('seed_sets', [[]]))} seed set(s)), test "
        f"fraction {cfg.test_fraction:g}, {probes}verdict on held-out {cfg.metric}. "
        + _mdl_sentence(cfg)
        + "All datasets share one batch of tokens, so datasets on one seed set share its control draws; "
        "datasets cycle through the seed sets to average over them."
    )


def render_calibration(result: Any, plot: str | None = PLOT, figure: str | None = FIGURE) -> str:
    """The markdown calibration report of a :class:`auditkit.calibration.run.CalibrationResult`."""
    cfg, info = result.config, result.info
    lines = [
        "# Calibration of the audit's verdicts",
        "",
        *summary_lines(result, figure),
        "## What was tested",
        "",
        (
            f"- **Arms**: {info.get('model', 'a synthetic model')}, read at `{info.get('hook')}` on "
            f"{info.get('n_rows')} labelled tokens (d = {info.get('d')}) from {info.get('n_examples')} sequences; "
            f"every arm (real and {', '.join(info.get('controls', []))}) extracted once per seed and relabelled per "
            "dataset exactly as the audit labels it (split redrawn, label controls reapplied)."
        ),
        _settings_line(cfg, info),
        *_feature_lines(cfg),
        f"- **Verdict rule**: {info.get('verdict_rule', '')}.",
        f"- **Null datasets** ({cfg.n_null}): labels drawn uniformly, independently of the tokens, one per row.",
        (
            f"- **Repeated-text nulls** ({getattr(cfg, 'n_null_repeated', 0)} of each family): the batch holds "
            f"{getattr(cfg, 'repeated_sequences', 0)} sequences three times (copies merged into one example, as in every "
            "tokenised dataset); `null-repeated-text` draws one label per text for all its rows (a sentence-level null), "
            "`null-repeated-token` one label per word position, shared by a sequence's copies (a token-level null). A "
            "split that let copies straddle train and test would show here as false positives."
        ),
        _planted_line(cfg),
        f"- **Nominal level** stated for 'selective' on a null: {_pct(cfg.nominal)}.",
        "",
        *_fpr_section(result),
        *_power_section(result),
        *_recovery_section(result),
        "## Timings",
        "",
        ", ".join(f"{k} {v:.1f}" for k, v in info.get("timings", {}).items()),
        "",
    ]
    if plot is None:
        lines = [line for line in lines if PLOT not in line]
    return "\n".join(lines)


def power_plot(result: Any, path: Path) -> Any:
    """Power against strength, one panel per method (at most three a row), one line per control in its
    report-wide colour, with the null FPR at strength 0."""
    methods = sorted(dict.fromkeys(result.power["method"]), key=method_order)
    nrows, ncols = grid_shape(len(methods), max_cols=3)
    fig, axes = subplots(nrows, ncols, figsize=(3.6 * ncols, 2.8 * nrows + 1.3), sharey=True, squeeze=False)
    fpr = result.fpr[result.fpr.get("null", "null-labels") == "null-labels"] if not result.fpr.empty else result.fpr
    fpr = fpr.set_index(["method", "control"])["fpr"] if not fpr.empty else pd.Series(dtype=float)
    for ax in axes.flat[len(methods) :]:
        ax.set_visible(False)
    order = {c: i for i, c in enumerate(PALETTE)}
    for ax, method in zip(axes.flat, methods):
        sub_m = result.power[result.power["method"] == method]
        for control in sorted(dict.fromkeys(sub_m["control"]), key=lambda c: (order.get(c, len(order)), c)):
            sub = sub_m[sub_m["control"] == control]
            xs, ys = list(sub["strength"]), list(sub["power"])
            if (method, control) in fpr.index:
                xs, ys = [0.0, *xs], [float(fpr[method, control]), *ys]
            ax.plot(xs, ys, marker="o", ms=4, label=control, color=arm_colour(control))
        ax.axhline(result.config.nominal, color="grey", linestyle="--", label=f"nominal {result.config.nominal:g}")
        ax.set_title(method, fontsize=9)
        ax.set_xlabel("planted signal-to-noise (0 = null)", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.set_ylim(-0.02, 1.02)
    for row in axes:
        row[0].set_ylabel("P(verdict = selective)", fontsize=8)
    fig.suptitle(
        "Share of datasets called selective (a point = one strength; a dataset = one audit over "
        f"{len(result.config.seeds)} seeds)",
        fontsize=10,
    )
    legend = {}  # every panel's arms (a method's own controls, e.g. the pursuit dictionary controls, included)
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    legend = {k: v for k, v in legend.items() if not k.startswith("nominal")} | {  # the level line last
        k: v for k, v in legend.items() if k.startswith("nominal")
    }
    fig.legend(legend.values(), legend.keys(), loc="lower center", ncol=min(len(legend), 4), fontsize=8, frameon=False)
    height = fig.get_size_inches()[1]
    fig.tight_layout(rect=(0, (0.25 + 0.2 * ((len(legend) + 3) // 4)) / height, 1, 1))
    save(fig, path)
    return fig


def render_files(result: Any, folder: Path, command: str) -> None:
    """report.md, the power plot (when planted data ran) and the calibration heatmap into ``folder``."""
    has_plot = not result.power.empty
    if has_plot:
        power_plot(result, folder / PLOT)
    figure = None
    if not calibration_matrix(result).empty:
        calibration_heatmap(result, folder / FIGURE)
        figure = FIGURE
    report = render_calibration(result, PLOT if has_plot else None, figure)
    (folder / "report.md").write_text(report + f"\nReproduce: `{command}`\n")


def write_calibration(result: Any, out: Path | str, command: str = "auditkit validate") -> Path:
    """Write report.md, power.png, calibration.png, fpr.csv, power.csv, verdicts.csv, recovery.csv and run.json
    to ``out``."""
    out = Path(out)
    with atomic_folder(out, "validate", owned=OWNED) as tmp:
        render_files(result, tmp, command)
        result.fpr.to_csv(tmp / "fpr.csv", index=False)
        result.power.to_csv(tmp / "power.csv", index=False)
        result.verdicts.to_csv(tmp / "verdicts.csv", index=False)
        result.recovery.to_csv(tmp / "recovery.csv", index=False)
        write_run_json(tmp, command, result.config, result.info)
    return out


def rerender_calibration(result: Any, out: Path, command: str) -> Path:
    """Re-render report.md and the figures of a calibration output ``out`` in place, atomically; the tables
    and run.json are carried over byte for byte."""
    out = Path(out)
    with atomic_folder(out, "validate") as tmp:
        copy_except(out, tmp, RENDERED)
        with rendering_errors(out, "validate"):
            render_files(result, tmp, command)
    return out
