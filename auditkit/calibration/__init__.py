"""The calibration pipeline: the verdict rule's false-positive rate on nulls and its power on planted labels.

* :mod:`~auditkit.calibration.synthetic`: null and planted labels, repeated-text nulls, a synthetic set language;
* :mod:`~auditkit.calibration.features`: SAE and pursuit features scored on many labelings at once;
* :mod:`~auditkit.calibration.recovery`: sanity checks that the solvers recover a planted sparse code;
* :mod:`~auditkit.calibration.stats`: false-positive and power tables with exact intervals;
* :mod:`~auditkit.calibration.run`: :func:`~auditkit.calibration.run.calibrate` and ``auditkit validate``.
"""
