"""Rendering: audit, steering and calibration results to report.md, results.csv, run.json and figures.

No computation here. Shared pieces: :mod:`~auditkit.report.tables` (markdown), :mod:`~auditkit.report.plots`
(figures), :mod:`~auditkit.report.outputs` (safe, atomic output folders); one module per report kind or
method section.
"""
