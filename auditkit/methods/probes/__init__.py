"""Supervised probes, each a *stack* of S independent problems fitted in one tensor program.

* :mod:`~auditkit.methods.probes.base`: the stacked-probe interface and shared numerics (standardisation,
  stacked L-BFGS, whitening);
* :mod:`~auditkit.methods.probes.logistic`: L2 logistic regression (scikit-learn's objective);
* :mod:`~auditkit.methods.probes.generative`: mass-mean and LDA (class-conditional Gaussians);
* :mod:`~auditkit.methods.probes.nn`: low-rank logistic and a one-hidden-layer MLP;
* :mod:`~auditkit.methods.probes.sparse`: k-sparse probes on the top-k dimensions.

:data:`PROBES` and :func:`make_probe` name the dense kinds.
"""

from __future__ import annotations

from typing import Any

from auditkit.errors import ConfigError
from auditkit.methods.probes.base import StackedProbe
from auditkit.methods.probes.generative import LDAProbe, MassMeanProbe
from auditkit.methods.probes.logistic import LogisticProbe
from auditkit.methods.probes.nn import LowRankProbe, MLPProbe

PROBES: dict[str, type[StackedProbe]] = {
    "logistic": LogisticProbe,
    "mass-mean": MassMeanProbe,
    "lda": LDAProbe,
    "low-rank": LowRankProbe,
    "mlp": MLPProbe,
}
"""Every probe kind by name. All share ``fit(X_ND, y_SN, train_SN, n_classes)`` and ``predict_proba``."""


def make_probe(kind: str, **hyperparameters: Any) -> StackedProbe:
    """A probe of ``kind`` (a key of :data:`PROBES`) with ``hyperparameters`` (unknown names raise)."""
    if kind not in PROBES:
        raise ConfigError(f"probe kind {kind!r} unknown: use one of {sorted(PROBES)}")
    try:
        return PROBES[kind](**hyperparameters)
    except TypeError as err:
        raise ConfigError(f"bad hyperparameters for the {kind} probe {sorted(hyperparameters)}: {err}") from err
