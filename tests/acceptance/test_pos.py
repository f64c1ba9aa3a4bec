"""Part of speech on the embedded model against Hewitt and Liang's control task, at a small size."""

from __future__ import annotations

import pytest
from conftest import UD_EWT  # the one definition of ../shared/data

from auditkit.audit.config import AuditConfig
from auditkit.audit.run import run_audit
from auditkit.models import ModelSpec

pytestmark = pytest.mark.acceptance


def test_linear_pos_probe_is_accurate_and_beats_its_control_task(session_cache):
    dev = UD_EWT / "en_ewt-ud-dev.conllu"
    if not dev.is_file():
        pytest.skip(f"UD English-EWT dev is not at {dev}")
    cfg = AuditConfig(
        model=ModelSpec(name="smollm2-135m", cache_dir=session_cache),
        dataset=f"conllu:{dev}",
        max_examples=150,
        probes=("logistic",),
        controls=("control-task",),
        seeds=(0, 1, 2),
        progress=False,
    )
    result = run_audit(cfg)
    counts = result.dataset.class_counts
    assert len(counts) >= 15 and result.dataset.level == "token"
    acc = result.rows.query("metric == 'accuracy'").groupby("control")["value"].mean()
    # UPOS is linearly readable from the middle of the residual stream: far above the majority tag...
    assert acc["none"] > max(counts) / sum(counts) + 0.4
    # ...and the control task (one random tag per word type) is not read as well.
    assert acc["control-task"] < acc["none"] - 0.1
    sel = result.selectivity.query("metric == 'accuracy'").set_index("control")
    assert sel.loc["control-task", "verdict"] == "selective"
