"""The sweep pipeline: the audit over many hooks and many datasets in one run.

* :mod:`~auditkit.sweep.plan`: hook lists and ranges, dataset lists and groups, resolved before any compute;
* :mod:`~auditkit.sweep.run`: :func:`~auditkit.sweep.run.run_sweep`: every arm extracted at every hook in one
  forward pass, one model variant resident at a time; then each (dataset, hook) cell is an ordinary audit
  read from the cache, saved as it finishes so a killed sweep resumes.

The summary report is :mod:`auditkit.report.sweep`.
"""
