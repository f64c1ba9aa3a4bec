"""Repeated texts end to end: copies of a text are one example, so a null over repeated texts is never
"selective", and what the source held in repeats is stated."""

from __future__ import annotations

import pandas as pd
import pytest

from auditkit.audit.config import AuditConfig
from auditkit.audit.run import run_audit
from auditkit.models import ModelSpec, load_model
from auditkit.seeding import numpy_rng

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "iota", "kappa", "lambda", "sigma", "omega"]
CONTROLS = ("shuffled-labels", "random-tokens-uniform", "control-task")

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny():
    return load_model(ModelSpec(name="tiny-gpt2", seed=0))


def _repeated_null(path, n_texts: int, copies: int, seed: int):
    """``n_texts`` distinct random texts, each ``copies`` times (some with stray surrounding spaces), one
    label per text drawn independently of it: the null of a dataset with repeated prompts."""
    rng = numpy_rng(seed)
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(4, 9)))) for _ in range(n_texts)]
    labels = rng.integers(0, 2, size=n_texts)
    rows = [(t + (" " if c == 1 else ""), int(y)) for c in range(copies) for t, y in zip(texts, labels)]
    order = rng.permutation(len(rows))
    pd.DataFrame([rows[i] for i in order], columns=["text", "label"]).to_csv(path, index=False)
    return path


def test_null_over_repeated_texts_is_never_selective(tmp_path, tiny):
    """Every text three times, labels unrelated to the text: with copies on both sides of a split the real
    arm memorises each text's label and "wins" against shuffled labels and random tokens; as one example
    it cannot."""
    verdicts = []
    for draw in range(3):
        path = _repeated_null(tmp_path / f"null{draw}.csv", n_texts=60, copies=3, seed=100 + draw)
        cfg = AuditConfig(
            dataset=f"table:{path}",
            hook="blocks.1.hook_resid_post",
            seeds=(0, 1, 2, 3, 4),
            controls=CONTROLS,
            probes=("logistic",),
            use_cache=False,
            progress=False,
            model=ModelSpec(name="tiny-gpt2", seed=0),
        )
        result = run_audit(cfg, loaded=tiny)
        sel = result.selectivity.query("metric == 'accuracy'").set_index("control")
        verdicts += list(sel["verdict"])
        dup = result.dataset.duplicates
        assert dup["repeated_texts"] == 60 and dup["repeated_rows"] == 180 and dup["label_conflicts"] == 0
        assert result.dataset.n_texts == 60 and result.dataset.n_items == 180
    assert "selective" not in verdicts, verdicts
