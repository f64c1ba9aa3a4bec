"""``auditkit``: argument parsing only. Each command builds a config, calls one library function,
and writes outputs. Bad input becomes a one-line message on stderr and exit code 2.

The app and its error handling are in :mod:`auditkit.cli.app`. The options of ``audit``, ``sweep`` and ``steer`` are
declared once, in :mod:`auditkit.cli.flags`; :mod:`auditkit.cli.declare` makes their commands and reproduce commands
from it, and :mod:`auditkit.cli.options` holds the value parsers. Each command is in its own module, registered here,
in this order.
"""

from __future__ import annotations

from auditkit.cli.app import app
from auditkit.cli.audit import audit
from auditkit.cli.listing import controls, datasets, hooks, models
from auditkit.cli.plan import plan
from auditkit.cli.report import compare, report
from auditkit.cli.sae_evals import sae_evals
from auditkit.cli.sae_synth import sae_synth
from auditkit.cli.steer import steer
from auditkit.cli.sweep import sweep
from auditkit.cli.validate import validate

for command in (
    audit,
    sweep,
    models,
    datasets,
    hooks,
    controls,
    validate,
    sae_synth,
    sae_evals,
    steer,
    report,
    compare,
    plan,
):
    app.command()(command)


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
