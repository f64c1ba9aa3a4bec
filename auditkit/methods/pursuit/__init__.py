"""Basis pursuit: sparse codes of activations against a dictionary.

* :mod:`~auditkit.methods.pursuit.greedy`: OMP and gradient pursuit (batched, exact k per row);
* :mod:`~auditkit.methods.pursuit.lasso`: FISTA lasso and non-negative lasso, warm-started paths;
* :mod:`~auditkit.methods.pursuit.dictionaries`: dictionaries from W_E, W_U, an SAE's decoder or probes,
  and their random controls (Gaussian, spectrum-matched);
* :mod:`~auditkit.methods.pursuit.curves`: FVU-vs-L0 curves and the SAE amortisation gap.
"""
