"""Online (prequential) codelength: the code is what Voita and Titov define, and it separates a planted
label from a label the features cannot predict."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from auditkit.errors import ConfigError, DataError
from auditkit.methods.probes import make_probe
from auditkit.methods.probes.logistic import LogisticProbe
from auditkit.methods.probes.mdl import (
    DEFAULT_SCHEDULE,
    block_ends,
    check_schedule,
    online_codelength,
    training_order,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _fit(kind: str, **hp):
    def fit(X, y, train, k, keys):
        probe = make_probe(kind, **hp)
        return probe.fit(X, y, train, k, problem_keys=keys) if kind == "mlp" else probe.fit(X, y, train, k)

    return fit


def _data(n: int = 2000, d: int = 16, seed: int = 0):
    """A planted 3-class label read linearly off Gaussian features, and a label drawn independently."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    W = torch.randn(d, 3, generator=g, dtype=torch.float64)
    planted = (X @ W * 2 + torch.randn(n, 3, generator=g, dtype=torch.float64)).argmax(1)
    null = torch.randint(0, 3, (n,), generator=g)
    return X, planted, null


def test_schedule_is_the_papers_and_bad_schedules_raise():
    assert [round(100 * f, 2) for f in DEFAULT_SCHEDULE] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.25, 12.5, 25, 50, 100]
    assert block_ends(10_000, DEFAULT_SCHEDULE).tolist() == [10, 20, 40, 80, 160, 320, 625, 1250, 2500, 5000, 10_000]
    assert block_ends(100, DEFAULT_SCHEDULE).tolist() == [1, 2, 3, 6, 12, 25, 50, 100]  # repeats dropped
    for bad in [(0.5,), (0.2, 0.1, 1.0), (0.1, 0.5), (0.0, 1.0), (0.5, float("nan"), 1.0)]:
        with pytest.raises(ConfigError, match="schedule"):
            check_schedule(bad)


def test_code_is_uniform_first_block_plus_each_next_block_under_the_probe_trained_before_it():
    X, planted, _ = _data(n=300)
    y_SN = planted[None]
    train_SN = torch.ones(1, 300, dtype=torch.bool)
    train_SN[0, :20] = False  # 20 held-out rows never enter the code
    schedule = (0.1, 0.5, 1.0)
    code = online_codelength(_fit("logistic", tol=1e-9), X, y_SN, train_SN, 3, schedule=schedule, order_seeds=[7])
    assert code.block_ends[0].tolist() == [28, 140, 280]
    assert math.isclose(float(code.uniform_S[0]), 280 * math.log2(3))
    assert math.isclose(code.block_bits[0][0], 28 * math.log2(3))
    assert math.isclose(float(code.codelength_S[0]), float(code.block_bits[0].sum()))
    # Recompute block 2 by hand: a probe fitted on the first 140 ordered rows, coding rows 140..280.
    order, _ = training_order(train_SN[0], 7)
    t = torch.zeros(300, dtype=torch.bool)
    t[order[:140]] = True
    probe = LogisticProbe(tol=1e-9).fit(X, y_SN, t[None], 3)
    p = probe.predict_proba(X)[0, order[140:280], :].gather(1, planted[order[140:280], None])
    # The cheaper of the probe's code and the uniform code, plus the one bit that names it.
    expected = min(float(-torch.log2(p).sum()), 140 * math.log2(3)) + 1
    assert math.isclose(code.block_bits[0][2], expected, rel_tol=1e-6)


@pytest.mark.parametrize("kind,hp", [("logistic", {}), ("mlp", dict(epochs=20, batch_size=None, lr=3e-2))])
def test_a_planted_label_compresses_and_an_unpredictable_one_does_not(kind, hp):
    X, planted, null = _data()
    y_SN = torch.stack([planted, null])
    train_SN = torch.ones(2, len(planted), dtype=torch.bool)
    code = online_codelength(_fit(kind, **hp), X, y_SN, train_SN, 3, order_seeds=[1, 1])
    assert code.compression_S[0] > 1.5, code.compression_S
    # An unpredictable label costs the uniform code (a probe can only overfit it; where it is confidently
    # wrong the block falls back to the uniform code), plus a bit a block.
    assert 0.95 < code.compression_S[1] <= 1.0, code.compression_S
    assert code.codelength_S[1] > 1.5 * code.codelength_S[0]


def test_problems_sharing_an_order_seed_share_their_blocks_and_unlabelled_training_rows_raise():
    X, planted, null = _data(n=400)
    y_SN = torch.stack([planted, null, planted])
    train_SN = torch.ones(3, 400, dtype=torch.bool)
    code = online_codelength(_fit("logistic"), X, y_SN, train_SN, 3, order_seeds=[3, 3, 3], schedule=(0.25, 1.0))
    assert np.array_equal(code.block_ends[0], code.block_ends[1])
    assert math.isclose(float(code.codelength_S[0]), float(code.codelength_S[2]), rel_tol=1e-9)
    with pytest.raises(DataError, match="no label"):
        online_codelength(_fit("logistic"), X, torch.full_like(y_SN, -1), train_SN, 3, order_seeds=[0, 0, 0])


def test_an_example_never_straddles_two_blocks():
    """Rows of one text are sent in one block (else a probe reads a text's label off its other rows)."""
    groups = np.repeat(np.arange(50), 6)  # 50 texts of 6 rows
    train = torch.ones(300, dtype=torch.bool)
    train[:12] = False
    order, bounds = training_order(train, 3, groups)
    assert sorted(order.tolist()) == list(range(12, 300))
    ends = block_ends(288, (0.01, 0.1, 0.5, 1.0), bounds)
    assert ends.tolist() == [6, 30, 144, 288]
    for lo, hi in zip([0, *ends[:-1]], ends):
        inside, outside = set(groups[order[lo:hi]]), set(groups[order[:lo]]) | set(groups[order[hi:]])
        assert not inside & outside
