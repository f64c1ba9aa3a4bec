"""The ground-truth SAE evaluation's report folder (``auditkit sae-synth``): ``summary.md``, tables, ``run.json``.

``summary.md`` opens with one sentence on what was scored and the verdict matrix (rows: method and metric,
columns: controls; cells: selectivity [95% CI] and mark), then the scores of every arm (mean and spread
over seeds) and the run's cost. Renders only: the numbers come from
:func:`auditkit.calibration.synth_sae.run_synth_sae`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.calibration.synth_sae import TRUE
from auditkit.metrics.ground_truth import GROUND_TRUTH_METRICS
from auditkit.metrics.selectivity import VERDICT_RULE
from auditkit.report.outputs import atomic_folder
from auditkit.report.summary import LEGEND, MDE_LEGEND, markdown_matrix, matrix_row, matrix_table
from auditkit.report.tables import collapsed, markdown_table, results_summary
from auditkit.report.write import write_run_json
from auditkit.types import REAL

KIND = "sae-synth"
OWNED = ("summary.md", "run.json", "results.csv", "selectivity.csv")


def _method_rank(method: str) -> int:
    """The SAEs first, then pursuit on their decoders, then pursuit on the true dictionary (the ceiling)."""
    return 2 if method == TRUE else 0 if method.startswith("sae-") else 1


def verdict_matrix(result: Any) -> pd.DataFrame:
    """The long verdict matrix (:data:`auditkit.report.summary.MATRIX_COLUMNS`) of the headline metrics."""
    sel = result.selectivity
    parts = []
    for method in sorted(dict.fromkeys(result.rows["method"]), key=_method_rank):
        for metric in GROUND_TRUTH_METRICS:
            cells = sel[(sel["method"] == method) & (sel["metric"] == metric)]
            if not cells.empty:
                parts.append(matrix_row(cells, f"{method}: {metric}", method=method, metric=metric))
    if not parts:
        return pd.DataFrame()
    out = pd.concat(parts, ignore_index=True)
    order = {c: i for i, c in enumerate(result.info["controls"])}
    out["_c"] = out["control"].map(order)
    out["_r"] = out["row"].map({r: i for i, r in enumerate(dict.fromkeys(out["row"]))})
    return out.sort_values(["_r", "_c"], kind="stable").drop(columns=["_r", "_c"]).reset_index(drop=True)


def scored_sentence(result: Any) -> str:
    cfg, info = result.config, result.info
    m = cfg.model
    return (
        f"auditkit's SAEs ({', '.join(cfg.architectures)}; F = {info['width']}, TopK k = {info['k']}, "
        f"{cfg.training_tokens:,} training rows seen) and OMP on their decoders and on the true dictionary, scored by "
        f"SynthSAEBench's MCC, F1 and uniqueness against the known features of a synthetic model (sae-lens "
        f"`SyntheticModel`: G = {m.n_features} features in D = {m.hidden_dim} dimensions, true mean L0 "
        f"{info['true_l0']:.2f}, Zipfian firing, {m.roots} parents x {m.hierarchy_branching} children, "
        f"rank-{m.correlation_rank} correlations), each against every SAE baseline and random dictionary, "
        f"{len(cfg.seeds)} seeds {list(cfg.seeds)}; {info['seconds']['total']:.0f} s on "
        f"{info['torch_threads']} torch thread(s)."
    )


def answer_line(result: Any, matrix: pd.DataFrame) -> str:
    """How many cells are selective, and the MCC of each method's real arm against the range of its controls'."""
    rows = result.rows[result.rows["metric"] == "mcc"]
    means = rows.groupby(["method", "control"])["value"].mean()
    real = {m: means[(m, REAL)] for m in sorted(dict.fromkeys(rows["method"]), key=_method_rank)}
    controls = means[means.index.get_level_values("control") != REAL]
    n_sel = int((matrix["verdict"] == "selective").sum())
    return (
        f"{n_sel} of {len(matrix)} cells selective. MCC (mean over seeds): "
        + ", ".join(f"{m} {v:.3f}" for m, v in real.items())
        + f"; its controls {controls.min():.3f} to {controls.max():.3f}."
    )


def _scores_table(result: Any) -> str:
    summary = results_summary(result.rows)
    summary["mean ± sd"] = [f"{a:.3f} ± {b:.3f}" for a, b in zip(summary["mean"], summary["sd"].fillna(0.0))]
    wide = summary.pivot_table(index=["method", "arm"], columns="metric", values="mean ± sd", aggfunc="first")
    cols = [c for c in (*GROUND_TRUTH_METRICS, "explained_variance", "l0") if c in wide.columns]
    return markdown_table(wide[cols].reset_index())


def _cost_lines(info: dict[str, Any]) -> list[str]:
    seconds = {k: f"{v:.1f}" for k, v in info["seconds"].items()}
    return [markdown_table(pd.DataFrame({"stage": list(seconds), "seconds (all seeds)": list(seconds.values())}))]


def render_synth(result: Any) -> str:
    """``summary.md``: the sentence, the verdict matrix and its legend first; scores and cost after, collapsed."""
    matrix = verdict_matrix(result)
    lines = ["# Ground truth for the SAE audit", "", scored_sentence(result), "", "## Verdicts", ""]
    if matrix.empty:
        lines += ["No control ran.", ""]
    else:
        lines += [
            *markdown_matrix(matrix, corner="method: metric"),
            "",
            answer_line(result, matrix),
            "",
            LEGEND + " " + MDE_LEGEND,
            "",
        ]
    lines += collapsed("Verdict rule", VERDICT_RULE.format(threshold=result.config.threshold))
    lines += collapsed("Scores of every arm (mean ± sd over seeds)", _scores_table(result))
    lines += collapsed("Cost", "\n".join(_cost_lines(result.info)))
    return "\n".join(lines)


def terminal_table(result: Any) -> Any:
    """The verdict matrix as a compact ``rich`` table."""
    return matrix_table(verdict_matrix(result), corner="selectivity")


def write_synth(result: Any, out: Path | str, command: str) -> Path:
    """Write summary.md, results.csv, selectivity.csv and run.json to ``out`` (replacing only an output of this
    kind)."""
    out = Path(out)
    with atomic_folder(out, KIND, owned=OWNED) as tmp:
        result.rows.to_csv(tmp / "results.csv", index=False)
        result.selectivity.to_csv(tmp / "selectivity.csv", index=False)
        write_run_json(tmp, command, result.config, result.info)
        (tmp / "summary.md").write_text(render_synth(result) + f"\n\nReproduce: `{command}`\n")
    return out
