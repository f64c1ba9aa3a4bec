"""A text is one example (policies, merges at text and token level), and statistics that cannot be fooled."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import one_row_per_text  # an ActivationSet and its TokenBatch, shared by the probe-stage tests

from auditkit import data
from auditkit.audit.arms import Arm
from auditkit.audit.config import AuditConfig
from auditkit.audit.probe import probe_rows
from auditkit.controls.labels import control_task
from auditkit.errors import ConfigError
from auditkit.extract import plan_rows
from auditkit.metrics.classification import ExampleScores
from auditkit.metrics.selectivity import paired_sampling_se, selectivity_table

TEXTS = ["a cat", "a dog ", " a cat", "a bird", "a dog", "a cat", "a fish", "a fox"]
LABELS = ["pos", "neg", "pos", "neg", "pos", "pos", "neg", "pos"]  # "a dog" copies disagree


def test_identical_texts_after_trimming_are_one_example_and_keep_every_label():
    ds = data.from_lists("t", TEXTS, LABELS)
    assert ds.texts == ("a cat", "a dog ", "a bird", "a fish", "a fox")
    assert ds.n_items == 8
    assert np.bincount(ds.item_example_M).tolist() == [3, 2, 1, 1, 1]
    assert ds.duplicates == dict(
        policy="group",
        source_texts=8,
        repeated_texts=2,
        repeated_rows=5,
        label_conflicts=1,
        dropped_items=0,
        merged_after_tokenising=0,
    )


def test_duplicate_policies_drop_conflicts_or_keep_one_label_per_text():
    dropped = data.from_lists("t", TEXTS, LABELS, duplicates="drop-conflicts")
    assert "a dog " not in dropped.texts and dropped.n_items == 6 and dropped.duplicates["dropped_items"] == 2
    one = data.from_lists("t", TEXTS, LABELS, duplicates="dedupe")
    assert one.n_items == len(one.texts) == 4 and (one.item_example_M == np.arange(4)).all()
    with pytest.raises(ConfigError, match="duplicates policy"):
        data.from_lists("t", TEXTS, LABELS, duplicates="first")


def test_split_never_puts_a_texts_copies_on_both_sides():
    texts = [f"text {i % 40}" for i in range(120)]
    ds = data.from_lists("t", texts, [i % 40 % 2 for i in range(120)])
    for seed in range(5):
        is_test = data.split_items(ds, seed=seed)
        sides = pd.Series(is_test).groupby(ds.item_example_M).nunique()
        assert (sides == 1).all()


def test_max_examples_counts_distinct_texts():
    texts = [f"text {i % 50}" for i in range(200)]
    ds = data.from_lists("t", texts, [i % 50 % 2 for i in range(200)])
    sub = data.labelled_dataset("t", ds.texts, [0, 1] * 25, source="memory", max_examples=10)
    assert len(sub.texts) == 10


def test_labels_differing_by_whitespace_are_one_class_and_by_case_are_reported():
    ds = data.from_lists("t", ["a", "b", "c", "d"], ["pos", " pos ", "neg", "Neg"])
    assert ds.class_names == ("Neg", "neg", "pos")
    assert len(ds.label_notes) == 1 and "'Neg' and 'neg'" in ds.label_notes[0]


def test_texts_with_identical_tokens_after_truncation_are_one_example(gpt2_tokenizer):
    texts = [f"the same long opening words then {w}" for w in ("alpha", "beta", "gamma")] + ["other", "more text"]
    ds = data.from_lists("t", texts, [0, 1, 0, 1, 0])
    batch = data.tokenize(ds, gpt2_tokenizer, prepend_bos=False, bos_token_id=None, max_length=4)
    assert batch.n_examples == 3 and batch.merged_examples == 2
    assert batch.item_example_M.tolist()[:3] == [0, 0, 0]
    assert len(set(batch.is_test_M[:3])) == 1


def test_conllu_repeated_sentences_are_one_example(tmp_path):
    sent = "1\tHi\thi\tINTJ\t_\t_\t0\troot\t_\t_\n2\tthere\tthere\tADV\t_\t_\t1\tdep\t_\t_\n"
    other = "1\tGo\tgo\tVERB\t_\t_\t0\troot\t_\t_\n"
    path = tmp_path / "x.conllu"
    path.write_text(f"# text = Hi there\n{sent}\n# text = Go\n{other}\n# text = Hi there\n{sent}\n")
    ds = data.load_conllu(path)
    assert ds.texts == ("Hi there", "Go") and ds.n_items == 5
    assert ds.duplicates["repeated_texts"] == 1 and ds.duplicates["label_conflicts"] == 0
    assert data.load_conllu(path, duplicates="dedupe").n_items == 3


def test_all_positions_row_of_a_text_whose_copies_disagree_carries_no_label(gpt2_tokenizer):
    ds = data.from_lists("t", ["a cat", "a cat", "a dog", "a bird"], [0, 1, 1, 0])
    batch = data.tokenize(ds, gpt2_tokenizer, prepend_bos=False, bos_token_id=None)
    plan = plan_rows(batch, "all", include_bos=False)
    assert (plan.labels_N[plan.example_N == 0] == -1).all()
    assert (plan.labels_N[plan.example_N == 1] == 1).all()


@pytest.mark.parametrize("option", ["probes", "controls", "methods"])
def test_repeated_names_are_rejected(option):
    value = {"probes": ("logistic", "logistic"), "controls": ("shuffled-labels",) * 2, "methods": ("probe", "probe")}
    with pytest.raises(ConfigError, match="more than once"):
        AuditConfig(**{option: value[option]})


def _rows(diffs, outcome=None, degenerate=False):
    rows = []
    for seed, d in enumerate(diffs):
        rows.append(
            dict(
                method="m",
                control="none",
                seed=seed,
                metric="accuracy",
                value=0.6 + d,
                outcome=None if outcome is None else outcome[0],
                degenerate=False,
            )
        )
        rows.append(
            dict(
                method="m",
                control="c",
                seed=seed,
                metric="accuracy",
                value=0.6,
                outcome=None if outcome is None else outcome[1],
                degenerate=degenerate,
            )
        )
    return pd.DataFrame(rows)


def test_repeated_rows_of_one_pair_are_refused():
    rows = _rows([0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match="once per seed"):
        selectivity_table(pd.concat([rows, rows]))


def test_two_seeds_that_agree_never_give_a_zero_width_interval():
    no_outcomes = selectivity_table(_rows([0.083, 0.083])).iloc[0]
    assert no_outcomes["verdict"] == "inconclusive" and "zero-width" in no_outcomes["note"]
    rng = np.random.default_rng(0)
    real = ExampleScores((rng.random(60) < 0.68).astype(float), np.arange(60))
    ctrl = ExampleScores((rng.random(60) < 0.6).astype(float), np.arange(60))
    row = selectivity_table(_rows([0.083, 0.083], outcome=(real, ctrl))).iloc[0]
    assert row["ci_low"] < row["selectivity"] < row["ci_high"] and row["ci_high"] - row["ci_low"] > 0.1
    assert "fewer than 3" in row["note"]


def test_sampling_error_is_clustered_by_example():
    d = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    zero = np.zeros(6)
    rows_apart = paired_sampling_se(ExampleScores(d, np.arange(6)), ExampleScores(zero, np.arange(6)))
    clustered = paired_sampling_se(
        ExampleScores(d, np.array([0, 0, 0, 1, 1, 1])), ExampleScores(zero, np.array([0, 0, 0, 1, 1, 1]))
    )
    assert clustered > rows_apart > 0
    assert math.isnan(paired_sampling_se(ExampleScores(d, np.arange(6)), ExampleScores(zero[:5], np.arange(5))))


def test_a_control_whose_labels_collapse_is_degenerate_not_control_better():
    row = selectivity_table(_rows([-0.3, -0.35, -0.32], degenerate=True)).iloc[0]
    assert row["verdict"] == "degenerate"
    n = 80
    gen = torch.Generator().manual_seed(0)
    acts, batch = one_row_per_text(torch.randn(n, 8, generator=gen), np.arange(n) % 2, groups_N=("same",) * n)
    ctrl = control_task(acts, seed=1)  # every row one type: one label for all
    assert np.unique(ctrl.labels_N).size == 1
    arms = [Arm(c, s, a, batch, lambda: None) for c, a in (("none", acts), ("control-task", ctrl)) for s in (0, 1, 2)]
    rows, _ = probe_rows(arms, ("logistic",))
    sel = selectivity_table(rows).query("metric == 'accuracy'").iloc[0]
    assert sel["verdict"] == "degenerate" and sel["control_score"] == 1.0
