"""Every audit method, registered once: name, controls, runner, report section and figures.

Adding a method: write its runner (``auditkit/audit/<name>.py``), its maths (``auditkit/methods/``),
optionally its report section (``auditkit/report/<name>.py``), then add one line here. Nothing else names
a method (see ``docs/development.md``).
"""

from __future__ import annotations

from auditkit.audit import probe, pursuit, sae
from auditkit.audit.method import Method
from auditkit.errors import ConfigError
from auditkit.report import pursuit as pursuit_report
from auditkit.report import sae as sae_report
from auditkit.report.probe import MDL_FIGURE, probe_figures, probe_section

METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "probe",
            probe.applicable_controls,
            probe.default_controls,
            probe.run_probe_method,
            section=probe_section,
            figures=probe_figures,
            figure_files=(MDL_FIGURE,),
        ),
        Method(
            "pursuit",
            pursuit.applicable_controls,
            pursuit.default_controls,
            pursuit.run_pursuit_method,
            section=pursuit_report.pursuit_section,
            figures=pursuit_report.fvu_l0_figure,
            figure_files=(pursuit_report.FIGURE,),
        ),
        Method(
            "sae",
            sae.applicable_controls,
            sae.default_controls,
            sae.run_sae_method,
            section=sae_report.sae_section,
            figures=sae_report.sae_figures,
            figure_files=(sae_report.FIGURE, sae_report.RELIABILITY),
        ),
    )
}
"""Every audit method by its ``--methods`` name."""


def check_methods(methods: tuple[str, ...]) -> None:
    """Every name is a registered method (a ConfigError naming the choices otherwise)."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"unknown method(s) {unknown}: use one of {list(METHODS)}")
