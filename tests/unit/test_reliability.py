"""The metric-reliability table on hand-made seed rows: reseed spread, what is detectable, and separation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from auditkit.metrics.reliability import reliability_table
from auditkit.metrics.selectivity import selectivity_table

REAL = {"ev": [0.90, 0.92, 0.91], "flat": [0.5, 0.5, 0.5], "l0": [8.0, 8.2, 7.9], "dead": [0.10, 0.12, 0.11]}
CONTROL = {"ev": [0.30, 0.33, 0.31], "flat": [0.5, 0.5, 0.5], "l0": [8.0, 8.1, 8.0], "dead": [0.0, 0.0, 0.0]}


def _rows() -> pd.DataFrame:
    rows = [
        dict(method="sae", control=arm, seed=s, metric=m, value=v)
        for arm, values in (("none", REAL), ("basis", CONTROL))
        for m, vs in values.items()
        for s, v in enumerate(vs)
    ]
    return pd.DataFrame(rows)


def _table() -> pd.DataFrame:
    sel = selectivity_table(_rows(), directions={"l0": 0, "dead": -1}, descriptive={("dead", "basis")})
    return reliability_table(_rows(), sel, method="sae", metrics=list(REAL), controls=["basis"]).set_index("metric")


def test_a_clear_gap_separates_and_states_its_minimum_detectable_effect():
    t = _table()
    assert t.loc["ev", "verdict"] == "selective" and t.loc["ev", "separates"]
    assert t.loc["ev", "detectable_kind"] == "mde" and 0.05 <= t.loc["ev", "detectable"] < 0.2
    assert t.loc["ev", "reseed_sd"] == pytest.approx(np.std(REAL["ev"], ddof=1))


def test_a_metric_identical_across_arms_does_not_separate():
    t = _table()
    assert t.loc["flat", "reseed_sd"] == 0 and t.loc["flat", "separates"] is False
    assert t.loc["flat", "verdict"] == "not selective"


def test_a_two_sided_metric_states_its_interval_half_width():
    t = _table()
    assert t.loc["l0", "detectable_kind"] == "half-width" and t.loc["l0", "detectable"] > 0
    assert t.loc["l0", "separates"] == (t.loc["l0", "verdict"] == "differs")


def test_a_pair_fixed_by_construction_has_no_verdict():
    sel = selectivity_table(_rows(), directions={"dead": -1}, descriptive={("dead", "basis")}).set_index("metric")
    assert sel.loc["dead", "verdict"] == "descriptive"
    assert sel.loc["dead", "selectivity"] == pytest.approx(-0.11)  # the difference is still shown
    assert math.isnan(sel.loc["dead", "mde"]) and math.isnan(sel.loc["dead", "p_value"])  # and is no test
    t = _table()
    assert t.loc["dead", "separates"] is None and t.loc["dead", "detectable_kind"] == "none"
