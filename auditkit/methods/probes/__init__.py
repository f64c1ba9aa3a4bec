"""Supervised probes, each a *stack* of S independent problems fitted in one tensor program.

* :mod:`~auditkit.methods.probes.base`: the stacked-probe interface and shared numerics (standardisation,
  stacked L-BFGS, whitening);
* :mod:`~auditkit.methods.probes.logistic`: L2 logistic regression (scikit-learn's objective);
* :mod:`~auditkit.methods.probes.generative`: mass-mean and LDA (class-conditional Gaussians);
* :mod:`~auditkit.methods.probes.nn`: low-rank logistic and a one-hidden-layer MLP;
* :mod:`~auditkit.methods.probes.sparse`: k-sparse probes on the top-k dimensions.

Every kind is one :class:`~auditkit.methods.probes.registry.ProbeKind`, registered below in one literal
(:mod:`auditkit.methods.probes.registry`). :data:`PROBES` (the dense kinds, taken at import) is a filter over the
registry; :func:`make_probe` reads the registry itself, so it also builds a kind registered later.
"""

from __future__ import annotations

from typing import Any

from auditkit.errors import ConfigError
from auditkit.methods.probes import registry
from auditkit.methods.probes.base import StackedProbe
from auditkit.methods.probes.generative import LDAProbe, MassMeanProbe
from auditkit.methods.probes.logistic import LogisticProbe
from auditkit.methods.probes.nn import LowRankProbe, MLPProbe
from auditkit.methods.probes.registry import ProbeKind, register
from auditkit.methods.probes.sparse import SPARSE_KIND, parse_sparse_spec

for _kind in (
    ProbeKind(
        name="logistic",
        probe=LogisticProbe,
        shared=("C",),
        reader=True,
        description="L2-regularised logistic regression on the standardised activations (scikit-learn's objective).",
    ),
    ProbeKind(
        name="mass-mean",
        probe=MassMeanProbe,
        reader=True,
        description="The difference of class means (nearest class mean for K classes), calibrated on the training "
        "rows.",
    ),
    ProbeKind(
        name="lda",
        probe=LDAProbe,
        reader=True,
        description="Linear discriminant analysis with a shrunk pooled within-class covariance, calibrated on the "
        "training rows.",
    ),
    ProbeKind(
        name="low-rank",
        probe=LowRankProbe,
        shared=("C",),
        description="Logistic regression whose weight matrix has rank at most r (how many directions a K-class "
        "concept needs).",
    ),
    ProbeKind(
        name="mlp",
        probe=MLPProbe,
        keyed=True,
        description="A one-hidden-layer MLP, each problem's initialisation seeded from its key.",
    ),
    ProbeKind(
        name=SPARSE_KIND,
        spec=parse_sparse_spec,
        shared=("C",),
        description="Logistic probes on the top-k raw dimensions ranked on each problem's training rows, one method "
        "per k (k-sparse:k=1,5,20 chooses the ks).",
    ),
):
    register(_kind)

PROBES: dict[str, type[StackedProbe]] = {k.name: k.probe for k in registry.kinds(lambda k: k.dense)}
"""The built-in dense kinds by name (a filter over the registry, taken at import). All share
``fit(X_ND, y_SN, train_SN, n_classes)`` and ``predict_proba``."""


def make_probe(kind: str, **hyperparameters: Any) -> StackedProbe:
    """A probe of the registered dense ``kind`` with ``hyperparameters`` (unknown names raise)."""
    dense = registry.dense_names()
    if kind not in dense:
        raise ConfigError(f"probe kind {kind!r} unknown: use one of {sorted(dense)}")
    try:
        return registry.REGISTRY[kind].probe(**hyperparameters)
    except TypeError as err:
        raise ConfigError(f"bad hyperparameters for the {kind} probe {sorted(hyperparameters)}: {err}") from err
