"""The ``probe`` method's report section."""

from __future__ import annotations

from typing import Any

from auditkit.report.tables import control_sections, method_selectivity


def probe_section(result: Any) -> list[str]:
    """The probe kinds, the metrics, and the selectivity by control."""
    cfg, info = result.config, result.method_info["probe"]
    return [
        "## Method: probe",
        "",
        "- Probes: "
        + "; ".join(f"{k} ({', '.join(f'{a}={b}' for a, b in v.items())})" for k, v in info["kinds"].items())
        + f"; C={info['C']:g}; {len(cfg.seeds)} seeds {list(cfg.seeds)}, each with its own train/test split by "
        f"example (test fraction {cfg.test_fraction:g}) and control draw",
        "- Metrics, on each seed's held-out test split: accuracy: share of correct predictions; balanced_accuracy: "
        "mean recall over classes; macro_f1: unweighted mean F1 over classes; auroc (binary only): area under the "
        "ROC curve of the positive-class probability.",
        "",
        "### Selectivity by control (real minus control, paired by seed)",
        "",
        "Normalised selectivity is (real - control) / (ceiling - control): the share of the headroom above the "
        "control that the real arm reaches.",
        "",
        *control_sections(method_selectivity(result, "probe"), level="####"),
    ]
