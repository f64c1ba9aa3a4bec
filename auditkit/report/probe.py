"""The ``probe`` method's report section and its online-code figure (rendering only)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from auditkit.audit.result import AuditResult
from auditkit.controls import ALL_CONTROLS
from auditkit.report.plots import subplots
from auditkit.report.tables import control_sections, markdown_table, method_selectivity
from auditkit.types import REAL

MDL_FIGURE = "mdl_blocks.png"


def probe_section(result: AuditResult) -> list[str]:
    """The probe kinds, the metrics, the online code (with ``--mdl``) and the selectivity by control."""
    cfg, info = result.config, result.method_info["probe"].extras
    return [
        "## Method: probe",
        "",
        "- Probes: "
        + "; ".join(f"{k} ({', '.join(f'{a}={b}' for a, b in v.items())})" for k, v in info["kinds"].items())
        + f"; {c_phrase(info)}; {len(cfg.seeds)} seeds {list(cfg.seeds)}, each with its own train/test split by "
        f"example (test fraction {cfg.test_fraction:g}) and control draw",
        *c_chosen_lines(info),
        (
            "- Metrics, on each seed's held-out test split: accuracy: share of correct predictions; balanced_accuracy: "
            "mean recall over classes; macro_f1: unweighted mean F1 over classes; auroc (binary only): area under the "
            "ROC curve of the positive-class probability."
        ),
        *mdl_lines(result),
        "",
        "### Selectivity by control (real minus control, paired by seed)",
        "",
        (
            "Normalised selectivity is (real - control) / (ceiling - control): the share of the headroom above the "
            "control that the real arm reaches."
        ),
        "",
        *control_sections(method_selectivity(result, "probe"), level="####"),
    ]


def c_phrase(info: dict[str, Any]) -> str:
    """How the probes' C was set: fixed, or chosen per arm and seed among a grid."""
    C, grid = info["C"], info.get("C_grid")  # every probe run records its C, chosen or not
    if not grid:
        return f"C={C:g}"
    fixed = f"; k-sparse at C={C:g}" if "k-sparse" in info["kinds"] else ""  # the grid does not reach it
    return (
        f"C chosen per arm and seed among {', '.join(f'{c:g}' for c in grid)} by cross-validation on the arm's own "
        f"training texts (`--probe-c-grid`{fixed})"
    )


def c_chosen_lines(info: dict[str, Any]) -> list[str]:
    """One line per probe kind: the C each arm chose (how many of its problems, seeds x draws, chose each)."""
    out = []
    for kind, arms in info.get("C_chosen", {}).items():
        parts = [
            f"{'real' if arm == REAL else arm} "
            + ", ".join(f"{c} ({n})" for c, n in sorted(tally.items(), key=lambda t: float(t[0])))
            for arm, tally in arms.items()
        ]
        out.append(f"  - {kind}, C chosen (problems): " + "; ".join(parts))
    return out


def mdl_lines(result: AuditResult) -> list[str]:
    """The online code's definition, its per-arm means and the figure (nothing without ``--mdl``)."""
    mdl = result.method_info["probe"].extras.get("mdl")
    if not mdl:
        return []
    rows = result.rows[result.rows["metric"].isin(["codelength_per_label", "compression"])]
    table = rows.pivot_table(index=["method", "control"], columns="metric", values="value", aggfunc="mean", sort=False)
    table = table.reset_index().rename(
        columns={"control": "arm", "codelength_per_label": "bits per label (mean)", "compression": "compression (mean)"}
    )
    table["arm"] = table["arm"].replace({REAL: "real"})
    pct = ", ".join(f"{100 * f:g}" for f in mdl["schedule"])
    return [
        "- Online codelength (Voita and Titov, 2020, MDL probing), on each seed's *training* rows: the examples "
        "(texts) in a random order, each text's rows together (one order per seed, shared by every arm, so the "
        f"arms' blocks hold the same rows), cut at {pct} % of the rows (moved to the next text boundary); only "
        "the arms that share the real arm's features are coded (the label controls: across different features "
        "the code also measures how much a probe overfits noise on each). The first block is sent with the "
        "uniform code (log2 K bits a label), every later block with the probe trained on all rows before it "
        "(-log2 p(label) bits a row) or with the uniform code where that is cheaper, plus one bit naming the "
        "choice. codelength_per_label: the total over the n training labels / n (lower is "
        "better; selectivity = control minus real bits per label); compression: uniform codelength (n log2 K) "
        "/ online codelength (higher is better; 1 = nothing learned). One number per arm and seed, not a mean "
        "over held-out rows, so its 95% interval is "
        "the Student-t interval of the per-seed differences alone (between-seed spread). Block j of every arm "
        "and seed is one stacked fit per probe kind."
        + (f" Not coded: {', '.join(mdl['not_coded'])} (k-sparse probes)." if mdl.get("not_coded") else ""),
        "",
        "### Online code (MDL)",
        "",
        markdown_table(table),
        "",
        f"![bits per label of each block, real vs each control, seed {_first_seed(mdl)}]({MDL_FIGURE})",
    ]


def _first_seed(mdl: dict[str, Any]) -> Any:
    for blocks in mdl["blocks"].values():
        for b in blocks.values():
            return b["seed"]
    return "n/a"


def probe_figures(result: AuditResult, folder: Path) -> None:
    """``mdl_blocks.png`` (with ``--mdl``): bits per label of every block for one seed, real vs each control,
    one panel per probe kind, the uniform code dashed."""
    mdl = result.method_info["probe"].extras.get("mdl")
    if not mdl or not mdl["blocks"]:
        return
    from matplotlib import colormaps

    colours = {REAL: "black", **dict(zip(ALL_CONTROLS, colormaps["tab10"].colors))}
    kinds = list(mdl["blocks"])
    fig, axes = subplots(1, len(kinds), figsize=(4.2 * len(kinds), 3.4), squeeze=False, sharey=True)
    for ax, kind in zip(axes[0], kinds):
        for control, b in mdl["blocks"][kind].items():
            ends = [0, *b["ends"]]
            sizes = [hi - lo for lo, hi in itertools.pairwise(ends)]
            per_label = [bits / size for bits, size in zip(b["bits"], sizes)]
            ax.step(
                b["ends"],
                per_label,
                where="pre",
                color=colours.get(control),
                marker="o",
                ms=3,
                label="real" if control == REAL else control,
            )
        uniform = next(iter(mdl["blocks"][kind].values()))
        ax.axhline(uniform["uniform_bits"] / uniform["ends"][-1], color="grey", linestyle="--", lw=1, label="uniform")
        ax.set_xscale("log")
        ax.set_xlabel("training rows sent so far (block end)")
        ax.set_title(f"probe-{kind}, seed {uniform['seed']}", fontsize=10)
    axes[0][0].set_ylabel("bits per label in the block")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / MDL_FIGURE, dpi=110)
