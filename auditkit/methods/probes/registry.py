"""The probe-kind registry: one :class:`ProbeKind` per kind, carrying everything about it.

A probe kind is declared once, by :func:`register`: its name (the ``--probes`` value and the ``probe-{name}``
method of its rows), one sentence on what it fits, its stacked estimator (or, for a kind that is not one, the
parser of its ``name:ARGS`` spec), and the *shared* hyperparameters it takes from the audit
(:data:`SHARED_HYPERPARAMETERS`: ``C``, set by ``--probe-c``). Every consumer reads the registry: the config's
accepted ``--probes`` values, :func:`auditkit.methods.probes.make_probe`, the audit's dispatch of ``C`` to every
kind that declares it, the steering readers, the report's order of probe methods. The per-purpose lists
(:data:`auditkit.methods.probes.PROBES`, the steering readers) are filters over it.

The built-in kinds are registered by :mod:`auditkit.methods.probes` at import, in one literal. :func:`register` is
the extension point (a module that adds a kind calls it at its own import; a test registers a toy kind and
:func:`unregister` s it afterwards); nothing else changes the registry at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from auditkit.methods.probes.base import StackedProbe

SHARED_HYPERPARAMETERS = ("C",)
"""Hyperparameters the audit sets on every kind that declares them: ``C``, the inverse L2 strength of the fit
(``--probe-c``, :attr:`auditkit.audit.config.AuditConfig.probe_C`)."""


@dataclass(frozen=True, kw_only=True)
class ProbeKind:
    """One probe kind, registered once (:func:`register`)."""

    name: str
    """The ``--probes`` value; its rows' method is ``probe-{name}`` (``probe-{name}-k{k}`` for k-sparse)."""
    description: str
    """One sentence on what it fits."""
    probe: type[StackedProbe] | None = None
    """Its stacked estimator (``fit(X_ND, y_SN, train_SN, n_classes)``, ``predict_proba``, ``complexity_``):
    a *dense* kind, fitted by the audit's stacked loop and coded by ``--mdl``. None for a kind fitted by its own
    function (``k-sparse``), which then gives :attr:`spec`."""
    shared: tuple[str, ...] = ()
    """The shared hyperparameters (:data:`SHARED_HYPERPARAMETERS`) it takes, passed by name to its estimator
    (or its own fit): a kind that declares ``C`` gets ``--probe-c``."""
    spec: Callable[[str], Any] | None = None
    """A kind without an estimator: parses its ``--probes`` item (``name`` or ``name:ARGS``) to its parameters,
    raising ``ConfigError`` on a malformed one."""
    keyed: bool = False
    """Its fit takes ``problem_keys`` (each problem's initialisation seeded from its key, so adding an arm never
    moves another arm's numbers)."""
    reader: bool = False
    """A linear reader: its ``directions()`` are read-out directions the steering compares (fitted on binary
    concepts)."""

    def __post_init__(self) -> None:
        if not self.name or ":" in self.name or "," in self.name:
            raise ValueError(f"probe kind {self.name!r}: a name without ':' or ','")
        if not self.description:
            raise ValueError(f"probe kind {self.name!r}: give it a description")
        if (self.probe is None) == (self.spec is None):
            raise ValueError(f"probe kind {self.name!r}: give exactly one of its estimator (probe) and its spec parser")
        if unknown := [h for h in self.shared if h not in SHARED_HYPERPARAMETERS]:
            raise ValueError(
                f"probe kind {self.name!r}: shared hyperparameters {unknown} unknown, use {SHARED_HYPERPARAMETERS}"
            )
        if (self.keyed or self.reader) and self.probe is None:
            raise ValueError(f"probe kind {self.name!r}: keyed and reader describe an estimator; give its probe")

    @property
    def dense(self) -> bool:
        """Whether it is a stacked estimator (:attr:`probe`)."""
        return self.probe is not None

    def hyperparameters(self, **shared: Any) -> dict[str, Any]:
        """The values among ``shared`` (the audit's :data:`SHARED_HYPERPARAMETERS`) this kind declares."""
        return {name: value for name, value in shared.items() if name in self.shared}


REGISTRY: dict[str, ProbeKind] = {}
"""Every probe kind by name, in registration order (the order of ``--probes`` listings and of the report's probe
methods)."""


def register(kind: ProbeKind) -> ProbeKind:
    """Add ``kind`` to the registry (a name already taken raises ``ValueError``); returns it."""
    if kind.name in REGISTRY:
        raise ValueError(f"probe kind {kind.name!r} is registered already")
    REGISTRY[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Remove a kind registered by :func:`register` (tests that register a toy kind)."""
    del REGISTRY[name]


def kinds(where: Callable[[ProbeKind], bool] | None = None) -> tuple[ProbeKind, ...]:
    """The registered kinds for which ``where`` holds (all when None), in registration order."""
    return tuple(k for k in REGISTRY.values() if where is None or where(k))


def names(where: Callable[[ProbeKind], bool] | None = None) -> tuple[str, ...]:
    """Names of the registered kinds for which ``where`` holds (all when None)."""
    return tuple(k.name for k in kinds(where))


def dense_names() -> tuple[str, ...]:
    """Names of the dense kinds (:attr:`ProbeKind.dense`): those :func:`auditkit.methods.probes.make_probe` builds."""
    return names(lambda k: k.dense)


def parse(spec: str) -> tuple[ProbeKind, Any] | None:
    """The kind of a ``--probes`` item and its parameters (None for a dense kind, the :attr:`ProbeKind.spec`
    parse otherwise, whose ``ConfigError`` propagates); None for an item no registered kind reads."""
    name = spec.partition(":")[0]
    kind = REGISTRY.get(name)
    if kind is None or (kind.spec is None and spec != name):
        return None
    return kind, (kind.spec(spec) if kind.spec is not None else None)
