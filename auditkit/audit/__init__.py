"""The audit pipeline: one model, hook and dataset; every method on the real arm and every control arm.

* :mod:`~auditkit.audit.config`: :class:`AuditConfig`, and :mod:`~auditkit.audit.options` the methods' options;
* :mod:`~auditkit.audit.arms`: the arms (the real one and each control, per seed) and their activations;
* :mod:`~auditkit.audit.method`: what a method is (:class:`~auditkit.audit.method.Method`), gets and returns;
* one runner per method: :mod:`~auditkit.audit.probe`, :mod:`~auditkit.audit.sae`, :mod:`~auditkit.audit.pursuit`,
  registered once in :mod:`~auditkit.audit.registry`;
* :mod:`~auditkit.audit.matrix`: audits of the embedding and unembedding matrices;
* :mod:`~auditkit.audit.run`: :func:`run_audit`, wiring the stages; :mod:`~auditkit.audit.result`: what it returns.

The package itself imports nothing, so reading :mod:`~auditkit.audit.options` or the config never loads
the pipeline. Typical use::

    from auditkit.audit.config import AuditConfig
    from auditkit.audit.run import run_audit

    result = run_audit(AuditConfig(dataset="sae-probes:92_glue_sst2", methods=("probe",)))
    result.selectivity  # one row per (method, control, metric), with its interval and verdict
"""
