"""The control registry: one :class:`Control` per control, carrying everything about it.

A control is declared once, here or by :func:`register` in the module that defines it: its name (the
``--controls`` name and the ``control`` column of every row), the stage it perturbs, the sentence the report
prints on what it destroys, its colour and short name in every figure, the data levels it runs on by default,
and its ``apply`` hook. Every other module reads the registry (:func:`get`, :func:`names`) and never re-spells
a control's name; the per-purpose tuples of :mod:`auditkit.controls` (``LABEL_CONTROLS``, ...) are filters over
it, taken when the package is imported.

The built-in controls are registered by :mod:`auditkit.controls` at import, in one literal. :func:`register`
is the extension point (a module that adds a control calls it at its own import; a test registers a toy
control and :func:`unregister` s it afterwards); nothing else changes the registry at run time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from auditkit.errors import ConfigError

STAGES = ("label", "token", "weight", "lexical", "sae", "dictionary")
"""What a control perturbs. ``label``: ``apply(acts, seed) -> ActivationSet`` relabels the seed's real arm;
``token``: ``apply(batch, seed, *, vocab_size) -> TokenBatch`` replaces the inputs; ``weight``: a model
(``apply(model, seed, *, keep_embeddings) -> model``; ``step0`` loads a checkpoint instead, no ``apply``);
``lexical``: no model at all, a text-only baseline (:mod:`auditkit.audit.lexical`, by ``variant``); ``sae``: the
``sae`` method's own baselines, the real activations encoded by a dictionary training did not find (by
``variant``, a baseline of :func:`auditkit.methods.sae.baselines.baseline_sae`); ``dictionary``: the ``pursuit``
method's own, the real activations coded against a random dictionary of the real one's shape (by ``variant``, a
key of :data:`auditkit.methods.pursuit.dictionaries.CONTROLS`)."""
ARM_STAGES = ("label", "token", "weight")
"""Stages whose arms are read through the model (activations extracted or relabelled)."""
AUDIT_STAGES = (*ARM_STAGES, "lexical")
"""Stages of the controls every method may take (``--controls``): the arms and the lexical baselines."""
OWN_STAGES = {"sae": "sae", "dictionary": "pursuit"}
"""Stages of a method's own controls -> that method: run on the real activations by it alone, never an arm.
``sae`` baselines are ``--controls`` names of the sae method; the ``dictionary`` controls are chosen by the pursuit
options (:attr:`auditkit.audit.options.PursuitAuditOptions.dictionary_controls`)."""

_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


@dataclass(frozen=True, kw_only=True)
class Control:
    """One control, registered once (:func:`register`)."""

    name: str
    """The ``--controls`` name and the ``control`` value of its rows."""
    stage: str
    """What it perturbs: one of :data:`STAGES`."""
    description: str
    """One sentence on what it destroys (and keeps), printed by the report above its section."""
    colour: str
    """Its colour in every figure, ``#rrggbb`` (a plain string: the report reads it, nothing here draws)."""
    short_name: str
    """Its name on tick labels and table headers."""
    apply: Callable[..., Any] | None = None
    """The perturbation, same type in and out (see :data:`STAGES` for the call per stage); None where the
    stage's code builds the arm itself (``step0``, the lexical baselines)."""
    variant: str = ""
    """The name its stage's code reads: a token control's sampling, a lexical control's baseline."""
    levels: tuple[str, ...] | None = None
    """Data levels (``sentence``, ``token``) it runs on by default; None: every level. Named in ``--controls``
    it runs anyway."""
    random_model: bool = False
    """A weight control whose arms are draws of a random model: drawn ``weight_draws`` times per seed, and its
    verdicts use the prediction interval (:data:`auditkit.metrics.selectivity.PREDICTION_RULE`)."""
    opt_in: bool = False
    """Runs only when named in ``--controls`` (``step0`` needs the hub)."""
    vocabulary_matrix: bool = False
    """Applies to a ``--matrix`` audit of vocabulary rows (:mod:`auditkit.audit.matrix`)."""

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"control {self.name!r}: stage {self.stage!r} unknown, use one of {STAGES}")
        if not _COLOUR.fullmatch(self.colour):
            raise ValueError(f"control {self.name!r}: colour {self.colour!r} is not #rrggbb")
        if not self.description or not self.short_name:
            raise ValueError(f"control {self.name!r}: give it a description and a short name")
        if self.apply is None and self.stage in ("label", "token"):
            raise ValueError(f"control {self.name!r}: a {self.stage} control needs its apply")
        if not self.variant and self.stage in ("lexical", *OWN_STAGES):
            raise ValueError(f"control {self.name!r}: a {self.stage} control needs its variant")


REGISTRY: dict[str, Control] = {}
"""Every control by name, in registration order (the order of columns and legends)."""


def register(control: Control) -> Control:
    """Add ``control`` to the registry (a name already taken raises ``ValueError``); returns it."""
    if control.name in REGISTRY:
        raise ValueError(f"control {control.name!r} is registered already")
    REGISTRY[control.name] = control
    return control


def unregister(name: str) -> None:
    """Remove a control registered by :func:`register` (tests that register a toy control)."""
    del REGISTRY[name]


def get(name: str) -> Control:
    """The registered control ``name``; a ``ConfigError`` naming the choices otherwise."""
    if name not in REGISTRY:
        raise ConfigError(f"unknown control {name!r}: use one of {list(REGISTRY)}")
    return REGISTRY[name]


def controls(*stages: str) -> tuple[Control, ...]:
    """The registered controls of ``stages`` (every stage when none is given), in registration order."""
    return tuple(c for c in REGISTRY.values() if not stages or c.stage in stages)


def names(*stages: str, where: Callable[[Control], bool] | None = None) -> tuple[str, ...]:
    """Names of the registered controls of ``stages`` (all when none) for which ``where`` holds."""
    return tuple(c.name for c in controls(*stages) if where is None or where(c))


def stage_of(name: str) -> str | None:
    """The stage of control ``name``; None for a name the registry does not hold (a method's own control)."""
    return REGISTRY[name].stage if name in REGISTRY else None


def is_random_model(name: str) -> bool:
    """Whether ``name`` is a registered random-model control (:attr:`Control.random_model`)."""
    return name in REGISTRY and REGISTRY[name].random_model


def default_for_level(name: str, level: str) -> bool:
    """Whether control ``name`` runs by default on data of ``level`` (any name the registry does not hold:
    every level)."""
    levels = REGISTRY[name].levels if name in REGISTRY else None
    return levels is None or level in levels
