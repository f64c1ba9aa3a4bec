"""The trust table's maths on planted tables: a phrase-presence label is lexical (bag-of-words near 1), a label
independent of the text is not; copies and conflicting labels are counted; the known faults and the flag rule."""

from __future__ import annotations

import numpy as np
import pytest

from auditkit.data import from_lists
from auditkit.trust.flags import FLAGS, KNOWN_FAULTS, FlagInput, flag
from auditkit.trust.run import TrustConfig, accuracy_interval, cap_texts, counts, dataset_row

WORDS = [f"w{i}" for i in range(300)]
CFG = TrustConfig(progress=False)


def _texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(6, 14))) for _ in range(n)]


def _phrase_presence(n: int = 400, seed: int = 0) -> tuple[list[str], list[int]]:
    """Label 1 iff the text contains "blue whale", inserted at a random place; lengths alike in both classes."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i, t in enumerate(_texts(n, seed)):
        words = t.split()
        label = i % 2
        phrase = ["blue", "whale"] if label else ["grey", "seal"]  # same length either way
        at = int(rng.integers(0, len(words) + 1))
        texts.append(" ".join(words[:at] + phrase + words[at:]))
        labels.append(label)
    return texts, labels


def test_a_phrase_presence_label_is_lexical_and_an_independent_label_is_not():
    texts, labels = _phrase_presence()
    row = dataset_row(from_lists("planted:phrase", texts, labels), CFG)
    assert row["bow_acc"] > 0.97 and row["bow_low"] > 0.9
    assert row["length_acc"] < 0.65  # the phrase, not the length, carries it
    assert row["flag"] == "lexical"

    rng = np.random.default_rng(1)
    null = from_lists("planted:null", _texts(400, 1), rng.integers(0, 2, size=400).tolist())
    row = dataset_row(null, CFG)
    assert row["bow_low"] < 0.5 < row["bow_high"]  # chance is inside the interval
    assert max(row["bow_acc"], row["length_acc"]) < 0.65
    assert row["flag"] == "ok" and row["reasons"] == ""


def test_a_length_cue_is_read_by_the_length_baseline():
    short, long = _texts(200, 2), [t + " " + t + " " + t for t in _texts(200, 3)]
    row = dataset_row(from_lists("planted:length", short + long, [0] * 200 + [1] * 200), CFG)
    assert row["length_acc"] > 0.97 and row["flag"] == "lexical"


def test_copies_and_conflicting_labels_are_counted():
    texts = ["a b", "a b", " a b ", "c d", "c d", "e f", "g h"]
    labels = [0, 0, 1, 1, 1, 0, 1]  # "a b" three times, one copy disagrees; "c d" twice, agreeing
    got = counts(from_lists("planted:copies", texts, labels))
    assert got == {
        "rows": 7,
        "distinct_texts": 4,
        "copies": 3,
        "conflicting_texts": 1,
        "majority": pytest.approx(4 / 7),
    }


def test_many_copies_are_leaky_and_many_conflicts_broken():
    texts = _texts(200, 4)
    labels = np.random.default_rng(4).integers(0, 2, size=200).tolist()  # no word decides it
    rng = np.random.default_rng(5)
    copies = rng.integers(0, 200, size=60)  # 60 more rows, copies of rows already there, same labels
    leaky = from_lists("planted:copies", texts + [texts[i] for i in copies], labels + [labels[i] for i in copies])
    row = dataset_row(leaky, CFG)
    assert row["copies"] == 60 and row["flag"] == "leaky" and row["reasons"] == "23% copies"

    phrase, phrase_labels = _phrase_presence(200, seed=4)  # lexical and leaky: lexical is the flag, both reasons
    row = dataset_row(from_lists("planted:both", phrase + phrase[:60], phrase_labels + phrase_labels[:60]), CFG)
    assert row["flag"] == "lexical" and row["reasons"].endswith("23% copies") and "text alone" in row["reasons"]

    flipped = [texts[i] for i in range(20)]  # 20 of 200 texts (10%) again with the other label
    broken = from_lists("planted:conflicts", texts + flipped, labels + [1 - labels[i] for i in range(20)])
    row = dataset_row(broken, CFG)
    assert row["conflicting_texts"] == 20 and row["flag"] == "broken"


@pytest.mark.parametrize("tag", ["161_agnews_0", "162_agnews_1", "163_agnews_2"])
def test_tasks_161_to_163_are_broken_whatever_their_numbers(tag):
    name = f"sae-probes:{tag}"
    assert KNOWN_FAULTS[name].kind == "broken"
    clean = dict(rows=4000, copies=0, distinct_texts=4000, conflicting_texts=0, majority=0.5, best_baseline=0.55)
    assert flag(FlagInput(name=name, **clean))[0] == "broken"
    assert flag(FlagInput(name="sae-probes:92_glue_sst2", **clean)) == ("ok", [])


def test_the_flag_rule_thresholds():
    base = dict(name="x", rows=1000, copies=0, distinct_texts=1000, conflicting_texts=0, majority=0.5)
    assert flag(FlagInput(**base, best_baseline=0.80))[0] == "lexical"  # balanced: 0.80 closes 60% of the gap
    assert flag(FlagInput(**base, best_baseline=0.79))[0] == "ok"
    skewed = {**base, "majority": 0.9}
    assert flag(FlagInput(**skewed, best_baseline=0.92))[0] == "ok"  # 0.92 is barely above always-majority
    assert flag(FlagInput(**skewed, best_baseline=0.97))[0] == "lexical"
    assert flag(FlagInput(**{**base, "copies": 100}, best_baseline=0.5))[0] == "ok"  # 10% is not above 10%
    assert flag(FlagInput(**{**base, "copies": 101}, best_baseline=0.5))[0] == "leaky"
    few = flag(FlagInput(**{**base, "conflicting_texts": 3}, best_baseline=0.5))
    assert few[0] == "ok" and "3 conflicting" in few[1][0]  # named, under the threshold
    assert flag(FlagInput(**{**base, "conflicting_texts": 50}, best_baseline=0.5))[0] == "broken"
    assert FLAGS == ("broken", "lexical", "leaky", "ok")
    both = flag(FlagInput(**{**base, "copies": 300}, best_baseline=0.95))
    assert both == ("lexical", ["text alone 0.95", "30% copies"])  # lexical ranks above leaky


def test_the_interval_is_floored_at_the_sampling_error():
    same = [np.array([True] * 75 + [False] * 25)] * 3  # three seeds that agree exactly
    mean, low, high = accuracy_interval(same)
    assert mean == pytest.approx(0.75)
    half = 4.302653 * np.sqrt(0.75 * 0.25 / 100 / 3)  # t(2) x sqrt(mean var / seeds)
    assert (high - mean) == pytest.approx(half, rel=1e-5) and (mean - low) == pytest.approx(half, rel=1e-5)


def test_the_cap_keeps_every_copy_of_a_kept_text_together():
    texts, labels = _phrase_presence(300, seed=6)
    ds = from_lists("planted:cap", texts + texts[:50], labels + labels[:50])
    capped = cap_texts(ds, 100, seed=0)
    assert len(capped.texts) == 100
    per_text = np.bincount(capped.item_example_M)
    kept = {capped.texts[e]: n for e, n in enumerate(per_text)}
    assert all(n == (2 if t in set(texts[:50]) else 1) for t, n in kept.items())
    assert abs(capped.labels_M.mean() - 0.5) < 0.1  # stratified by class
