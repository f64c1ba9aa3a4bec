"""The steering pipeline: read a concept's direction with probes, write it into the residual stream, measure.

* :mod:`~auditkit.steering.data`: concept texts and label words; :mod:`~auditkit.steering.directions`: reading
  directions (logistic, mass-mean, LDA) and their dual writing directions; :mod:`~auditkit.steering.hooks`:
  adding a vector at a residual site; :mod:`~auditkit.steering.effects`: what a step changes;
  :mod:`~auditkit.steering.summary`: means, intervals and verdicts; :mod:`~auditkit.steering.run`:
  :func:`~auditkit.steering.run.run_steering`, wiring them over the real model and its controls.
"""
