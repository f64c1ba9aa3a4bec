"""Rendering: audit results to report.md, results.csv, run.json and plots. No computation here."""

from auditkit.report.write import write_outputs

__all__ = ["write_outputs"]
