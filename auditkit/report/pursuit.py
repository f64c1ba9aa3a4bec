"""The ``pursuit`` method's report section and figure (registered in ``markdown.SECTIONS`` / ``write.FIGURES``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.audit.options import DICTIONARY_CONTROL_DESCRIPTIONS
from auditkit.audit.result import AuditResult
from auditkit.report.plots import arm_colour, save, short_name, subplots
from auditkit.report.tables import control_sections, markdown_table, method_selectivity
from auditkit.types import REAL

ARM_DESCRIPTIONS = DICTIONARY_CONTROL_DESCRIPTIONS
"""What the dictionary controls destroy (the registered controls carry their own, read by ``control_sections``)."""

FIGURE = "fvu_l0.png"
_DICTIONARY_WORDS = {
    "embed": "token embeddings (rows of W_E)",
    "unembed": "unembedding directions (columns of W_U)",
    "sae": "the decoder of a TopK SAE",
    "probe": "logistic-probe directions fitted on each seed's train split",
}


def _curve_table(rows: pd.DataFrame, sweep: list[str]) -> pd.DataFrame:
    """Mean over seeds of every sweep FVU (and mean L0, atom coverage), one row per arm."""
    cols = [*sweep, *[s.replace("fvu@", "mean_l0@") for s in sweep if "alpha" in s], "mean_l0", "frac_atoms_used"]
    sub = rows[(rows["method"] == "pursuit") & rows["metric"].isin(cols)]
    wide = sub.groupby(["control", "metric"])["value"].mean().unstack("metric")
    wide = wide[[c for c in cols if c in wide.columns]]
    order = [REAL, *[c for c in dict.fromkeys(sub["control"]) if c != REAL]]
    wide = wide.reindex([c for c in order if c in wide.index]).reset_index().rename(columns={"control": "arm"})
    wide["arm"] = wide["arm"].replace({REAL: "real"})
    return wide


def _verdict_paragraph(result: AuditResult, info: dict[str, Any]) -> list[str]:
    sel = method_selectivity(result, "pursuit")
    if sel.empty:
        return ["No control ran, so nothing can be said about what the dictionary's fit owes to training."]
    head = info["sweep"][-1]
    out = []
    fv = sel[sel["metric"] == head]
    for group, names in [
        ("random dictionaries", info["dictionary_controls"]),
        ("the weight and token controls", [c for c in fv["control"] if c not in info["dictionary_controls"]]),
    ]:
        g = fv[fv["control"].isin(names)]
        if g.empty:
            continue
        better = g[g["verdict"] == "selective"]
        worse = g[g["ci_high"] < 0]["control"].tolist()
        txt = f"Against {group}, the real arm's {head} ({g['real'].iloc[0]:.3f}) is lower (selective) than " + (
            ", ".join(f"{r.control} ({r.control_score:.3f})" for r in better.itertuples()) or "none of them"
        )
        if worse:
            txt += f"; it is *higher* than {', '.join(worse)}"
        out.append(txt + ".")
    acc = sel[sel["metric"] == "accuracy"]
    if not acc.empty:
        sel_c = acc[acc["verdict"] == "selective"]["control"].tolist()
        rest = acc[acc["verdict"] != "selective"]
        txt = (
            f"The probe on the codes reaches held-out accuracy {acc['real'].iloc[0]:.3f}; it is selective against "
            + (", ".join(sel_c) if sel_c else "no control")
        )
        if not rest.empty:
            txt += "; not against " + ", ".join(
                f"{r.control} ({r.verdict}, {r.control_score:.3f})" for r in rest.itertuples()
            )
        out.append(txt + ".")
    return [" ".join(out)]


def pursuit_section(result: AuditResult) -> list[str]:
    """Markdown lines of the pursuit section: setup, FVU-vs-L0 per arm, amortisation gap, code probe, verdict."""
    info = result.method_info["pursuit"].extras
    sweep = info["sweep"]
    param = "target L0 k" if info["solver"] in ("omp", "gradient") else "lasso alpha as a fraction of alpha_max"
    lines = [
        "## Method: pursuit",
        "",
        f"- Dictionary: {_DICTIONARY_WORDS[info['dictionary']]}, {info['n_atoms']} unit-norm atoms in "
        f"{info['d']} dimensions; solver `{info['solver']}`, sweep over the {param}: {', '.join(s.split('=')[1] for s in sweep)}; "
        + (
            "activations centred on the arm's mean (an SAE's b_dec) before coding"
            if info["center"]
            else "raw activations coded"
        ),
        (
            "- Every arm derives its dictionary as the real arm does (W_E / W_U of the arm's model, an SAE trained on the "
            "arm's activations, probes fitted on the arm's train split and labels) and is coded by the same solver. "
            f"Dictionary controls: {', '.join(info['dictionary_controls']) or 'none'}: the real activations against a random "
            "dictionary of the same shape (`gaussian-dict`: i.i.d. Gaussian atoms; `spectral-dict`: the real dictionary's "
            "singular values with Haar-random singular vectors), one draw per seed."
        ),
        (
            "- Metrics: `fvu@...`: fraction of variance (about the mean) left unexplained, lower is better; `mean_l0`: "
            "non-zeros per row; `frac_atoms_used`: share of atoms some row uses; `accuracy` etc.: a logistic probe "
            f"(C={info['code_probe_C']:g}) on the codes at the densest sweep point (atoms some row uses as features), "
            "trained on each seed's train split and scored on its held-out split."
        ),
        "- Which controls speak to which metric: reconstruction and support (`fvu@...`, `mean_l0`, `frac_atoms_used`, "
        "amortisation gap) against the dictionary, weight and token controls; the code probe against every control, "
        "label controls included (they change neither activations nor, except for `probe`, dictionaries), and the "
        "lexical baselines (`lexical-*`: a text-only probe on the same split, no model): a ✓ there means the code "
        "probe reads more than the words give."
        + (
            ""
            if info["solver"] in ("omp", "gradient")
            else " Lasso arms are matched in penalty, not in L0: read each `fvu@alpha` with its `mean_l0@alpha`."
        ),
        "",
        "### FVU against L0 (mean over seeds)",
        "",
        markdown_table(_curve_table(result.rows, sweep)),
        "",
        f"![FVU against L0 per arm]({FIGURE})",
        "",
    ]
    gap = result.rows[
        (result.rows["method"] == "pursuit")
        & result.rows["metric"].isin(["fvu_sae_encoder", "fvu_pursuit_matched", "amortisation_gap", "sae_l0"])
    ]
    if not gap.empty:
        table = gap.groupby(["control", "metric"])["value"].mean().unstack("metric").reset_index()
        lines += [
            "### Amortisation gap",
            "",
            (
                "FVU of the SAE's own encoder against OMP on the same decoder with each row's L0 matched to the "
                "encoder's (O'Neill, Ye & Lewis, 2024); gap = encoder FVU - pursuit FVU, > 0 when the encoder leaves "
                "reconstruction on the table."
            ),
            "",
            markdown_table(table.rename(columns={"control": "arm"}).replace({REAL: "real"})),
            "",
        ]
    lines += ["### Verdict", "", *_verdict_paragraph(result, info), ""]
    headline = method_selectivity(result, "pursuit")
    headline = headline[headline["metric"].isin([sweep[-1], "accuracy"])]
    lines += [
        (
            f"### Selectivity of {sweep[-1]} and code-probe accuracy by control (real minus control, paired by seed; "
            "for FVU, control minus real)"
        ),
        "",
        *control_sections(headline, level="####", descriptions=ARM_DESCRIPTIONS),
    ]
    return lines


def fvu_l0_figure(result: AuditResult, folder: Path) -> None:
    """``fvu_l0.png``: mean FVU against the sweep parameter, one line per arm."""
    info = result.method_info["pursuit"].extras
    table = _curve_table(result.rows, info["sweep"])
    xs = [float(s.split("=")[1]) for s in info["sweep"]]
    fig, ax = subplots(figsize=(7.5, 4))
    for _, row in table.iterrows():
        ys = [row[m] for m in info["sweep"]]
        ax.plot(
            xs,
            ys,
            marker="o",
            ms=4,
            label=short_name(row["arm"]),
            color=arm_colour(row["arm"]),
            lw=2.5 if row["arm"] == "real" else 1.2,
        )
    if info["solver"] in ("omp", "gradient"):
        ax.set_xscale("log", base=2)
    else:
        ax.invert_xaxis()
    ax.set_xlabel("target L0 (k)" if info["solver"] in ("omp", "gradient") else "alpha / alpha_max")
    ax.set_ylabel("FVU, lower is better (mean over seeds)")
    ax.set_title(
        f"Pursuit on the {info['dictionary']} dictionary: FVU per arm (a point = mean of the seeds)", fontsize=9
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    save(fig, folder / FIGURE)
