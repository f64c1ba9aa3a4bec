"""The calibration report: what was tested, false-positive rates against the nominal level, power.

``render_calibration`` only renders; ``write_calibration`` writes report.md, the tidy tables, run.json
and the power plot into a temporary folder swapped into place in one rename, like an audit's outputs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.audit.options import SAE_BASELINES
from auditkit.report.outputs import atomic_folder
from auditkit.report.plots import arm_colour, subplots
from auditkit.report.tables import markdown_table
from auditkit.report.write import library_versions

PLOT = "power.png"


def fpr_status(fpr: float, ci_low: float, nominal: float) -> str:
    """``exceeds`` when even the interval's lower end is above the nominal level."""
    if ci_low > nominal:
        return "EXCEEDS nominal"
    if fpr > nominal:
        return "above nominal (not significant)"
    return "at or below nominal"


def _pct(x: float) -> str:
    return "n/a" if isinstance(x, float) and math.isnan(x) else f"{100 * x:.1f}%"


def _fpr_section(result: Any) -> list[str]:
    cfg, fpr = result.config, result.fpr
    if fpr.empty:
        return ["## False-positive rate", "", "No null datasets were drawn.", ""]
    table = pd.DataFrame(
        {
            "null": fpr["null"] if "null" in fpr else "null-labels",
            "method": fpr["method"], "control": fpr["control"], "null datasets": fpr["n_null"],
            "selective": fpr["n_selective"], "FPR": fpr["fpr"].map(_pct),
            "95% CI": [f"[{_pct(a)}, {_pct(b)}]" for a, b in zip(fpr["ci_low"], fpr["ci_high"])],
            "nominal": fpr["nominal"].map(_pct),
            "status": [fpr_status(f, lo, n) for f, lo, n in zip(fpr["fpr"], fpr["ci_low"], fpr["nominal"])],
            "interval > 0": fpr["interval_rate"].map(_pct), "its nominal": fpr["interval_nominal"].map(_pct),
            "mean sel.": fpr["mean_selectivity"],
            "sd sel.": fpr["sd_selectivity"], "seed ICC": fpr["seed_icc"],
        }
    )  # fmt: skip
    return [
        "## False-positive rate (null datasets)",
        "",
        f"Share of null datasets called *selective*, with its exact (Clopper-Pearson) 95% interval, against "
        f"the nominal level {_pct(cfg.nominal)}. A pair **exceeds** the nominal level when the interval's lower "
        "end is above it. *interval > 0* is the share whose 95% interval alone lies above zero (the rule "
        "without its threshold; 2.5% if the seeds were independent). *seed ICC* is the within-dataset "
        "correlation of the per-seed differences: the seeds share one dataset, so they are not independent, "
        "and a positive ICC makes the t-interval over seeds too narrow by sqrt((1 - ICC) / (1 + (S - 1) ICC)).",
        "",
        markdown_table(table),
        "",
    ]


def _power_section(result: Any) -> list[str]:
    power = result.power
    if power.empty:
        return ["## Power", "", "No planted datasets were drawn.", ""]
    wide = power.pivot_table(index=["method", "strength"], columns="control", values="power").reset_index()
    real = power.groupby(["method", "strength"])["mean_real"].mean()
    ideal = power.groupby("strength")["ideal_accuracy"].mean()
    wide.insert(2, "best acc.", [float(ideal[s]) for s in wide["strength"]])
    wide.insert(3, "real acc.", [float(real[m, s]) for m, s in zip(wide["method"], wide["strength"])])
    n = int(power["n"].min())
    return [
        "## Power (planted datasets)",
        "",
        f"Share of planted datasets called *selective* ({n} datasets per strength and method). Strength is the signal-to-noise ratio of the latent "
        "score; *best acc.* is the expected accuracy of the ideal reader (who knows the direction), mean "
        "Phi(strength |z|) over the rows (1/2 + arctan(strength)/pi if z were Gaussian); *real acc.* the probe's "
        "mean held-out accuracy on the real arm.",
        "",
        markdown_table(wide),
        "",
        f"![power curves]({PLOT})",
        "",
    ]


def _recovery_section(result: Any) -> list[str]:
    rec = result.recovery
    if rec is None or rec.empty:
        return []
    ok = "all passed" if bool(rec["passed"].all()) else f"{int((~rec['passed']).sum())} FAILED"
    return [
        f"## Recovery checks ({ok})",
        "",
        "Sparse features in superposition with known directions (sae-lens's `FeatureDictionary`, Zipfian "
        "firing). The planted dictionary must *recover* (pursuit: support recall at the true L0; SAE: mean "
        "best |cosine| of every planted direction with a decoder row), and its Gaussian and "
        "spectrum-matched controls must *fail*.",
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
                "direction better than an untrained, frozen-decoder, PCA or identity dictionary, not whether the "
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


def render_calibration(result: Any, plot: str | None = PLOT) -> str:
    """The markdown calibration report of a :class:`auditkit.calibration.run.CalibrationResult`."""
    cfg, info = result.config, result.info
    lines = [
        "# Calibration of the audit's verdicts",
        "",
        "## What was tested",
        "",
        f"- **Arms**: {info.get('model', 'a synthetic model')}, read at `{info.get('hook')}` on "
        f"{info.get('n_rows')} labelled tokens (d = {info.get('d')}) from {info.get('n_examples')} sequences; "
        f"every arm (real and {', '.join(info.get('controls', []))}) extracted once per seed and relabelled per "
        "dataset exactly as the audit labels it (split redrawn, label controls reapplied).",
        f"- **Audit settings**: seeds {list(cfg.seeds)} ({len(info.get('seed_sets', [[]]))} seed set(s)), test "
        f"fraction {cfg.test_fraction:g}, probes {', '.join(cfg.probes)} (logistic C = {cfg.probe_C:g}), verdict on "
        f"held-out {cfg.metric}. "
        + _mdl_sentence(cfg)
        + "All datasets share one batch of tokens, so datasets on one seed set share its control draws; "
        "datasets cycle through the seed sets to average over them.",
        *_feature_lines(cfg),
        f"- **Verdict rule**: {info.get('verdict_rule', '')}.",
        f"- **Null datasets** ({cfg.n_null}): labels drawn uniformly, independently of the tokens, one per row.",
        f"- **Repeated-text nulls** ({getattr(cfg, 'n_null_repeated', 0)} of each family): the batch holds "
        f"{getattr(cfg, 'repeated_sequences', 0)} sequences three times (copies merged into one example, as in every "
        "tokenised dataset); `null-repeated-text` draws one label per text for all its rows (a sentence-level null), "
        "`null-repeated-token` one label per word position, shared by a sequence's copies (a token-level null). A "
        "split that let copies straddle train and test would show here as false positives.",
        f"- **Planted datasets** ({cfg.n_planted} per strength, strengths {list(cfg.strengths)}): labels "
        "1[strength * z + e > 0], z the standardised projection of the real arm's activations on a random "
        "direction, e ~ N(0, 1), so only the real model carries them.",
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


def power_plot(result: Any, path: Path) -> None:
    """Power against strength, one line per control, with the null FPR at strength 0."""
    methods = list(dict.fromkeys(result.power["method"]))
    fig, axes = subplots(1, len(methods), figsize=(4.2 * len(methods), 3.8), sharey=True, squeeze=False)
    fpr = result.fpr[result.fpr.get("null", "null-labels") == "null-labels"] if not result.fpr.empty else result.fpr
    fpr = fpr.set_index(["method", "control"])["fpr"] if not fpr.empty else pd.Series(dtype=float)
    for ax, method in zip(axes[0], methods):
        for control, sub in result.power[result.power["method"] == method].groupby("control", sort=False):
            xs, ys = list(sub["strength"]), list(sub["power"])
            if (method, control) in fpr.index:
                xs, ys = [0.0, *xs], [float(fpr[method, control]), *ys]
            ax.plot(xs, ys, marker="o", label=control, color=arm_colour(control))
        ax.axhline(result.config.nominal, color="grey", linestyle="--", label=f"nominal {result.config.nominal:g}")
        ax.set_title(method, fontsize=9)
        ax.set_xlabel("planted signal-to-noise (0 = null)")
        ax.set_ylim(-0.02, 1.02)
    axes[0][0].set_ylabel("P(verdict = selective)")
    legend = {}  # every panel's arms (a method's own controls, e.g. the pursuit dictionary controls, included)
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(legend.values(), legend.keys(), loc="lower center", ncol=min(len(legend), 5), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08 + 0.05 * ((len(legend) - 1) // 5), 1, 1))
    fig.savefig(path, dpi=110)


def write_calibration(result: Any, out: Path | str, command: str = "auditkit validate") -> Path:
    """Write report.md, power.png, fpr.csv, power.csv, verdicts.csv, recovery.csv and run.json to ``out``."""
    out = Path(out)
    with atomic_folder(out, "validate") as tmp:
        has_plot = not result.power.empty
        if has_plot:
            power_plot(result, tmp / PLOT)
        report = render_calibration(result, PLOT if has_plot else None)
        (tmp / "report.md").write_text(report + f"\nReproduce: `{command}`\n")
        result.fpr.to_csv(tmp / "fpr.csv", index=False)
        result.power.to_csv(tmp / "power.csv", index=False)
        result.verdicts.to_csv(tmp / "verdicts.csv", index=False)
        result.recovery.to_csv(tmp / "recovery.csv", index=False)
        run = dict(command=command, argv=sys.argv, config=dataclasses.asdict(result.config), info=result.info,
                   versions=library_versions())  # fmt: skip
        (tmp / "run.json").write_text(json.dumps(run, indent=2, default=str))
    return out
