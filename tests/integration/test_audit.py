"""End-to-end audits on a tiny model: conclusions on planted and on pure-noise labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from auditkit.audit import AuditConfig, run_audit
from auditkit.models import ModelSpec, load_model
from auditkit.seeding import numpy_rng

WORDS = "alpha beta gamma delta epsilon zeta theta iota kappa lambda sigma omega".split()


def _write_table(path, labels_fn, n=160, seed=0):
    rng = numpy_rng(seed)
    rows = []
    for i in range(n):
        words = list(rng.choice(WORDS, size=int(rng.integers(3, 8))))
        label = labels_fn(i, rng)
        # Planted structure: the final word names the class when labels_fn says so.
        rows.append({"text": " ".join(words) + (" yes" if label == 1 else " no"), "label": label})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def tiny():
    return load_model(ModelSpec(name="tiny-gpt2", seed=0))


def _cfg(path, **kw):
    return AuditConfig(
        model=ModelSpec(name="tiny-gpt2", seed=0), dataset=f"table:{path}", hook="blocks.1.hook_resid_post",
        seeds=(0, 1, 2, 3, 4), use_cache=False, progress=False, **kw,
    )  # fmt: skip


def test_planted_label_is_selective(tmp_path, tiny):
    path = _write_table(tmp_path / "planted.csv", lambda i, rng: i % 2)
    result = run_audit(_cfg(path), loaded=tiny)
    rows = result.rows
    acc = rows[rows["metric"] == "accuracy"].groupby("control")["value"].mean()
    assert acc["none"] > 0.95
    assert abs(acc["shuffled-labels"] - 0.5) < 0.15
    sel = result.selectivity.set_index("metric").loc["accuracy"]
    assert sel["verdict"] == "selective" and sel["ci_low"] > 0.3
    assert set(rows["control"]) == {"none", "shuffled-labels"}
    assert sorted(rows["seed"].unique()) == [0, 1, 2, 3, 4]


def test_noise_labels_are_not_selective(tmp_path, tiny):
    # Labels independent of the text: the texts' last word is random too.
    rng = numpy_rng(7)
    labels = rng.integers(0, 2, size=160)
    texts = [" ".join(rng.choice(WORDS, size=5)) for _ in range(160)]
    path = tmp_path / "noise.csv"
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    result = run_audit(_cfg(path), loaded=tiny)
    sel = result.selectivity.set_index("metric").loc["accuracy"]
    assert sel["ci_low"] <= 0 <= sel["ci_high"]
    assert sel["verdict"] == "not selective"
    real = result.rows.query("metric == 'accuracy' and control == 'none'")["value"]
    assert abs(real.mean() - 0.5) < 0.15


def test_shuffled_labels_keep_marginals_within_each_split(tmp_path, tiny):
    from auditkit.audit import build_arms
    from auditkit.extract import ExtractConfig, extract
    from auditkit import data

    path = _write_table(tmp_path / "planted.csv", lambda i, rng: int(i % 3 == 0))
    ds = data.load_table(path)
    tok = tiny.model.tokenizer
    batch = data.tokenize(ds, tok, prepend_bos=True, bos_token_id=tok.bos_token_id)
    acts = extract(tiny.model, batch, ExtractConfig(hook="blocks.0.hook_resid_post", progress=False))
    arms = build_arms(acts, _cfg(path))
    for (control, seed, arm), (_, _, real) in zip(arms[1::2], arms[0::2]):
        assert control == "shuffled-labels"
        for side in (False, True):
            a = np.sort(arm.labels_N[arm.is_test_N == side])
            np.testing.assert_array_equal(a, np.sort(real.labels_N[real.is_test_N == side]))
        assert (arm.labels_N != real.labels_N).any()
        np.testing.assert_array_equal(arm.is_test_N, real.is_test_N)
