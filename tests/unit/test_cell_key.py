"""A saved sweep cell is keyed by what scored it: a cell that runs a random-model control was scored with the
prediction rule (auditkit.metrics.selectivity.PREDICTION_RULE), so one saved before that rule is never read back,
while a cell with label controls only keeps its key."""

from __future__ import annotations

import dataclasses

from auditkit.audit.config import AuditConfig
from auditkit.metrics.selectivity import PREDICTION_RULE
from auditkit.sweep.store import CellStore

INPUTS = (("data", "abc"), ("weights", "def"))


def _before_the_rule(store: CellStore, audit: AuditConfig) -> dict:
    request = store.request(audit, INPUTS)
    request.pop("prediction_rule", None)
    return request


def test_a_cell_with_a_random_model_control_is_keyed_by_the_prediction_rule(tmp_path):
    store = CellStore(tmp_path)
    for controls in (None, ("shuffled-labels", "gaussian-reinit"), ("spectral-reinit",)):
        audit = dataclasses.replace(AuditConfig(), controls=controls)
        request = store.request(audit, INPUTS)
        assert request["prediction_rule"] == PREDICTION_RULE
        assert store.path(request) != store.path(_before_the_rule(store, audit))


def test_a_cell_with_label_controls_only_keeps_its_key(tmp_path):
    store = CellStore(tmp_path)
    audit = dataclasses.replace(AuditConfig(), controls=("shuffled-labels", "lexical-bow"))
    request = store.request(audit, INPUTS)
    assert "prediction_rule" not in request
    assert store.path(request) == store.path(_before_the_rule(store, audit))


def test_a_cell_fitted_under_a_c_grid_is_keyed_by_how_c_is_chosen(tmp_path):
    """Cells are keyed by config, not code: a change of how a grid chooses C (the lexical baselines' own range
    came in after the grid) must not read back a cell chosen the old way; a cell at a fixed C keeps its key."""
    from auditkit.audit.probe import C_CHOICE_RULE

    store = CellStore(tmp_path)
    gridded = dataclasses.replace(AuditConfig(), controls=("shuffled-labels",), probe_c_grid=(0.01, 1.0))
    request = store.request(gridded, INPUTS)
    assert request["c_choice_rule"] == C_CHOICE_RULE
    before = {k: v for k, v in request.items() if k != "c_choice_rule"}
    assert store.path(request) != store.path(before)
    fixed = dataclasses.replace(gridded, probe_c_grid=())
    assert "c_choice_rule" not in store.request(fixed, INPUTS)
