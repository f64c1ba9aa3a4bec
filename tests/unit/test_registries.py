"""The open sets (controls, probe kinds, dataset kinds, methods) are registries, and every list of their members is
derived: each control carries a description, a colour and a short name; each probe kind, dataset kind and method is
complete; the methods' own controls (the SAE baselines, the pursuit's random dictionaries) are registered controls,
listed by ``auditkit controls``; and the per-purpose lists and default lists are filters over the registries, in
registration order."""

from __future__ import annotations

import re

from auditkit.cli.main import app
from typer.testing import CliRunner

from auditkit.controls import registry as controls
from auditkit.methods.probes import registry as probe_kinds


def test_every_control_is_described_coloured_and_named():
    for c in controls.controls():
        assert c.stage in controls.STAGES, c.name
        assert c.description.endswith(".") and len(c.description) > 40, c.name
        assert re.fullmatch(r"#[0-9a-fA-F]{6}", c.colour) and c.short_name, c.name


def test_the_methods_own_controls_are_registered_and_their_tables_are_filters():
    from auditkit import controls as c
    from auditkit.audit.options import (
        DICTIONARY_CONTROL_DESCRIPTIONS,
        DICTIONARY_CONTROLS,
        SAE_BASELINE_DESCRIPTIONS,
        SAE_BASELINES,
    )
    from auditkit.methods.pursuit.dictionaries import CONTROLS as DRAWS
    from auditkit.methods.sae.baselines import BASELINE_KINDS
    from auditkit.report.plots import PALETTE, SHORT_NAMES, arm_colour

    assert SAE_BASELINES == c.SAE_BASELINES == {k.name: k.variant for k in controls.controls("sae")}
    assert list(SAE_BASELINES) == [
        "sae-untrained",
        "sae-frozen-decoder",
        "sae-soft-frozen-decoder",
        "sae-frozen-encoder",
        "pca",
        "identity",
    ]
    assert (
        DICTIONARY_CONTROLS
        == c.DICTIONARY_CONTROLS
        == {"gaussian-dict": "gaussian", "spectral-dict": "spectrum-matched"}
    )
    assert set(SAE_BASELINES.values()) <= set(BASELINE_KINDS) and set(DICTIONARY_CONTROLS.values()) <= set(DRAWS)
    assert SAE_BASELINE_DESCRIPTIONS == {n: controls.get(n).description for n in SAE_BASELINES}
    assert DICTIONARY_CONTROL_DESCRIPTIONS == {n: controls.get(n).description for n in DICTIONARY_CONTROLS}
    for name in (*SAE_BASELINES, *DICTIONARY_CONTROLS):
        assert PALETTE[name] == arm_colour(name) == controls.get(name).colour
        assert SHORT_NAMES[name] == controls.get(name).short_name


def test_a_methods_own_controls_stay_with_that_method():
    from auditkit.audit.config import known_controls
    from auditkit.audit.registry import METHODS

    own = set(controls.names(*controls.OWN_STAGES))
    assert own & set(METHODS["probe"].controls()) == set()
    assert set(controls.names("sae")) <= set(METHODS["sae"].controls())
    # the SAE baselines are --controls names; the random dictionaries are the pursuit's options
    assert set(controls.names("sae")) <= set(known_controls())
    assert set(controls.names("dictionary")) & set(known_controls()) == set()


def test_auditkit_controls_lists_every_registered_control():
    listed = CliRunner().invoke(app, ["controls"])
    assert listed.exit_code == 0, listed.output
    lines = {line.split()[0]: line for line in listed.output.splitlines()}
    assert list(lines) == list(controls.REGISTRY)
    for c in controls.controls():
        assert lines[c.name].split()[1] == c.stage and lines[c.name].endswith(c.description)
    assert "default (sae)" in lines["pca"] and "default (pursuit)" in lines["gaussian-dict"]


def test_every_probe_kind_is_complete():
    for k in probe_kinds.kinds():
        assert k.description and (k.probe is None) != (k.spec is None), k.name
        assert set(k.shared) <= set(probe_kinds.SHARED_HYPERPARAMETERS), k.name
        if k.probe is not None:
            assert k.probe.kind == k.name  # the estimator's own name agrees with its registration
            k.probe(**k.hyperparameters(C=0.5))  # takes every shared hyperparameter it declares
        else:
            assert k.spec(k.name) is not None  # its bare name is a valid spec


def test_the_probe_lists_are_filters_over_the_probe_kind_registry():
    from auditkit.methods.probes import PROBES
    from auditkit.steering.directions import READERS

    assert probe_kinds.names() == ("logistic", "mass-mean", "lda", "low-rank", "mlp", "k-sparse")
    assert tuple(PROBES) == probe_kinds.dense_names() == probe_kinds.names(lambda k: k.probe is not None)
    assert READERS == probe_kinds.names(lambda k: k.reader) == ("logistic", "mass-mean", "lda")
    assert probe_kinds.names(lambda k: "C" in k.shared) == ("logistic", "low-rank", "k-sparse")


def test_the_default_probe_list_of_the_audit_command_is_every_registered_kind():
    import inspect

    from auditkit.cli.audit import audit

    default = inspect.signature(audit).parameters["probes"].default
    assert default == ",".join(probe_kinds.names())


def test_every_dataset_kind_is_complete():
    from auditkit.data import kinds as dataset_kinds

    assert list(dataset_kinds.REGISTRY) == ["sae-probes", "conllu", "table", "token-properties"]
    assert [k.name for k in dataset_kinds.kinds(lambda k: k.shipped)] == ["sae-probes"]  # the kind of a bare tag
    for k in dataset_kinds.kinds():
        assert k.usage.startswith(f"{k.name}:") and k.summary, k.name
        assert k.level in dataset_kinds.LEVELS, k.name
        assert (k.load is None) == k.vocabulary, k.name  # text is loaded; vocabulary rows are a matrix audit's
    assert [k.name for k in dataset_kinds.kinds(lambda k: k.path)] == ["conllu", "table"]
    assert [k.name for k in dataset_kinds.kinds(lambda k: k.level == "token")] == ["conllu"]


def test_the_dataset_listing_and_the_matrix_kind_are_derived():
    from auditkit.audit.matrix import DATASET_KIND
    from auditkit.data import kinds as dataset_kinds

    assert DATASET_KIND == "token-properties" and dataset_kinds.REGISTRY[DATASET_KIND].vocabulary
    listed = CliRunner().invoke(app, ["datasets"])
    assert listed.exit_code == 0, listed.output
    tail = listed.output.splitlines()[-3:]
    assert tail == [f"{k.usage:52s} {k.summary}" for k in dataset_kinds.kinds(lambda k: not k.shipped)]


def test_every_method_is_complete_and_its_defaults_apply():
    from auditkit.audit.registry import METHODS

    for name, m in METHODS.items():
        assert m.name == name and callable(m.runner), name
        assert set(m.default_controls()) <= set(m.controls()), name
        assert set(m.controls()) <= set(controls.REGISTRY), name  # every control a method takes is registered
