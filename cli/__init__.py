"""auditkit's command line (installed as the ``auditkit.cli`` package; see pyproject.toml)."""
