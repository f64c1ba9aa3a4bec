"""Issue 27: one definition of "lexical", the lexical baselines' probabilities, and which controls run by default
on which level of data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from auditkit.audit.config import AuditConfig
from auditkit.audit.run import resolve_controls, spec_level
from auditkit.controls import LEXICAL_CONTROLS
from auditkit.methods.text_baselines import PROBA, bag_of_words_predict, bag_of_words_proba, token_identity_proba
from auditkit.metrics.lexical import LEXICAL_FLOOR, LEXICAL_SHARE, is_lexical
from auditkit.models import ModelSpec
from auditkit.trust.flags import FlagInput, flag


@pytest.mark.parametrize(
    ("text", "majority", "real", "lexical"),
    [
        (0.80, 0.5, 1.0, True),  # no real arm: 0.80 on balanced binary classes
        (0.79, 0.5, 1.0, False),
        (0.85, 0.5, 0.97, True),  # the words give 74% of what the probe gains over chance
        (0.70, 0.5, 0.97, False),  # 43%: the probe reads well beyond the words
        (0.60, 0.5, 0.62, False),  # nothing reads it well: unread, not lexical
        (0.90, 0.5, 0.50, True),  # the words read more than the probe
        (0.60, 0.2, 1.0, False),  # 0.5 of the headroom above a 0.2 majority
        (0.70, 0.2, 1.0, True),  # 0.625
    ],
)
def test_one_rule_decides_lexical(text, majority, real, lexical):
    assert (LEXICAL_SHARE, LEXICAL_FLOOR) == (0.6, 0.3)
    assert is_lexical(text, majority, real) is lexical


def test_the_trust_flag_and_the_sweep_summary_use_the_one_rule():
    from auditkit.report.sweep import lexical_shortcuts

    base = dict(name="x", rows=100, copies=0, distinct_texts=100, conflicting_texts=0, majority=0.5)
    assert flag(FlagInput(**base, best_baseline=0.80))[0] == "lexical"
    assert flag(FlagInput(**base, best_baseline=0.79))[0] == "ok"
    # The sweep reads its lexical baselines' accuracy as well as the reinitialised models'.
    best = pd.DataFrame(
        {
            "dataset": ["a", "b", "c"],
            "method": ["probe-logistic"] * 3,
            "real": [0.97, 0.97, 0.80],
            "spectral-reinit accuracy": [0.55, 0.55, 0.55],
            "lexical-bow accuracy": [0.85, 0.70, 0.75],
        }
    )
    got = lexical_shortcuts(best, {"a": 0.5, "b": 0.5, "c": 0.5})["dataset"].tolist()
    assert got == [d for d, t, r in zip("abc", best["lexical-bow accuracy"], best["real"]) if is_lexical(t, 0.5, r)]
    assert got == ["a", "c"]


def test_baseline_probabilities_agree_with_the_trust_tables_predictions():
    rng = np.random.default_rng(0)
    words = np.array(["red", "green", "blue", "pink", "gold", "teal"])
    texts = [" ".join(rng.choice(words, 4)) for _ in range(80)]
    y = np.array([int("red" in t) for t in texts])
    proba = bag_of_words_proba(texts[:60], y[:60], texts[60:], n_classes=3, C=1.0)
    assert proba.shape == (20, 3) and np.allclose(proba.sum(1), 1) and (proba[:, 2] == 0).all()  # class 2 unseen
    assert (proba.argmax(1) == bag_of_words_predict(texts[:60], y[:60], texts[60:], C=1.0)).all()


def test_the_last_token_baseline_reads_a_types_label_and_nothing_of_an_unseen_type():
    ids_train, y_train = [5, 5, 5, 7, 7, 7], np.array([1, 1, 1, 0, 0, 0])
    proba = token_identity_proba(ids_train, y_train, [5, 7, 9], n_classes=2, C=10.0)
    assert proba[0].argmax() == 1 and proba[1].argmax() == 0 and abs(proba[2, 1] - 0.5) < 0.05
    assert set(PROBA) == set(LEXICAL_CONTROLS.values())


def test_default_controls_follow_the_datas_level():
    """Sentence-level data: no control task (its type is the text, which never recurs across the split: a second
    shuffled-labels arm), the three lexical baselines. Token-level: the control task, and only the read token's
    identity among the lexical baselines. Named controls run whatever the level."""
    cfg = AuditConfig(model=ModelSpec(name="tiny-gpt2"))
    sentence, token = resolve_controls(cfg, "sentence"), resolve_controls(cfg, "token")
    assert "control-task" not in sentence and set(LEXICAL_CONTROLS) <= set(sentence)
    assert "control-task" in token and "lexical-last-token" in token
    assert "lexical-bow" not in token and "lexical-length" not in token
    named = AuditConfig(model=ModelSpec(name="tiny-gpt2"), controls=("control-task", "lexical-bow"))
    assert resolve_controls(named, "sentence") == resolve_controls(named, "token") == ("control-task", "lexical-bow")
    assert (spec_level("conllu:x.conllu"), spec_level("sae-probes:92_glue_sst2")) == ("token", "sentence")
    sae_only = AuditConfig(model=ModelSpec(name="tiny-gpt2"), methods=("sae",))
    assert set(LEXICAL_CONTROLS) <= set(resolve_controls(sae_only, "sentence"))  # arms of its k-sparse probes too
    assert "lexical-bow" not in resolve_controls(sae_only, "token")


def test_an_unknown_lexical_name_is_refused_before_any_compute():
    with pytest.raises(Exception, match="unknown control"):
        AuditConfig(controls=("lexical-words",))


def test_a_sweep_summary_names_each_flagged_dataset_at_the_top():
    from types import SimpleNamespace

    from auditkit.report.sweep import trust_lines

    cells = {
        "sae-probes:66_living-room": {"trust": {"flag": "lexical", "reasons": "text alone 0.95"}},
        "sae-probes:92_glue_sst2": {"trust": {"flag": "ok", "reasons": ""}},
        "sae-probes:161_agnews_0": {"trust": {"flag": "broken", "reasons": "mis-formatted (authors)"}},
        "table:mine.csv": {},
    }
    line = trust_lines(SimpleNamespace(cells=cells, datasets=list(cells)))[0]
    assert "1 broken (`161_agnews_0`); 1 lexical (`66_living-room`); 1 ok" in line
    assert trust_lines(SimpleNamespace(cells={"table:mine.csv": {}}, datasets=["table:mine.csv"])) == []
