"""Tests for auditkit.data: loaders, validation, fingerprints, splits and token alignment."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import GPT2_TOKENIZER as GPT2_DIR  # the one definition of ../shared/data
from conftest import UD_EWT

from auditkit import data
from auditkit.errors import DataError, HubUnreachableError
from auditkit.types import LabelledDataset

EWT_DEV = UD_EWT / "en_ewt-ud-dev.conllu"
GPT2_EOS = 50256

needs_ewt = pytest.mark.skipif(not EWT_DEV.is_file(), reason=f"UD English-EWT dev file not found at {EWT_DEV}")


@pytest.fixture(scope="module")
def gpt2_tok():
    if not (GPT2_DIR / "vocab.json").is_file():
        pytest.skip(f"GPT-2 tokenizer files not found in {GPT2_DIR}")
    import transformers

    # from_pretrained(folder): in transformers 5 the vocab_file=/merges_file= keywords are silently
    # ignored and give an empty tokenizer.
    tok = transformers.GPT2TokenizerFast.from_pretrained(str(GPT2_DIR))
    assert len(tok) == 50257
    return tok


@pytest.fixture(scope="module")
def ewt():
    if not EWT_DEV.is_file():
        pytest.skip(f"UD English-EWT dev file not found at {EWT_DEV}")
    return data.load_conllu(EWT_DEV)


def _token_dataset(texts: list[str], words: list[list[str]]) -> LabelledDataset:
    """A token-level dataset labelling every listed word (found left to right) with class 0/1 alternately."""
    spans, examples = [], []
    for i, (text, ws) in enumerate(zip(texts, words)):
        pos = 0
        for w in ws:
            start = text.index(w, pos)
            spans.append((start, start + len(w)))
            examples.append(i)
            pos = start + len(w)
    labels = np.arange(len(spans)) % 2
    return LabelledDataset(
        name="hand",
        texts=tuple(texts),
        labels_M=labels.astype(np.int64),
        item_example_M=np.asarray(examples, dtype=np.int64),
        class_names=("a", "b"),
        level="token",
        item_span_M2=np.asarray(spans, dtype=np.int64),
        groups_M=tuple(w for ws in words for w in ws),
        fingerprint="hand",
    )


# ---------------------------------------------------------------- sae-probes


def test_listing_finds_binary_datasets_without_importing_the_package():
    binary = data.list_sae_probes("binary")
    assert len(binary) >= 100
    assert set(binary["kind"]) == {"binary"}
    classification = data.list_sae_probes()
    assert "92_glue_sst2" in set(classification["tag"])
    assert "continuous" not in set(classification["kind"])
    everything = data.list_sae_probes("all")
    assert "93_glue_stsb" in set(everything["tag"]) and len(everything) > len(classification)
    row = classification.set_index("tag").loc["92_glue_sst2"]
    assert row["name"] == "glue_sst2" and Path(row["file"]).is_file()
    # importing sae_probes would drag in xgboost; the listing must only find its files
    assert "sae_probes" not in sys.modules


def test_sst2_subsample_is_stratified_and_seeded():
    a = data.load_sae_probes("glue_sst2", max_examples=200, seed=0)
    assert a.name == "sae-probes:92_glue_sst2"
    assert a.class_names == ("0", "1") and a.n_classes == 2
    assert len(a.texts) == 200 <= a.n_items  # 200 distinct texts, each with every copy's label
    assert len({t.strip() for t in a.texts}) == 200
    counts = np.bincount(a.labels_M[np.unique(a.item_example_M, return_index=True)[1]], minlength=2)
    full = data.load_sae_probes("92_glue_sst2")
    full_frac = np.bincount(full.labels_M)[1] / full.n_items
    assert abs(counts[1] / 200 - full_frac) < 0.01  # stratified: class share kept to rounding
    assert set(a.texts) <= set(full.texts)
    same = data.load_sae_probes("92_glue_sst2", max_examples=200, seed=0)
    assert same.texts == a.texts and same.fingerprint == a.fingerprint
    other = data.load_sae_probes("glue_sst2", max_examples=200, seed=1)
    assert other.texts != a.texts and other.fingerprint != a.fingerprint


def test_multiclass_string_targets_are_sorted_classes():
    ds = data.load_sae_probes("10_nyc_borough", max_examples=50)
    assert list(ds.class_names) == sorted(ds.class_names)
    assert "Manhattan" in ds.class_names and ds.n_classes == 5
    assert len(np.unique(ds.labels_M)) == 5  # every class survives a small stratified sample


def test_unknown_tag_suggests_close_match():
    with pytest.raises(DataError) as err:
        data.load_sae_probes("glue_sst3")
    assert "glue_sst2" in str(err.value) and "auditkit datasets" in str(err.value)


def test_continuous_dataset_rejected():
    with pytest.raises(DataError, match="continuous"):
        data.load_sae_probes("93_glue_stsb")


# ---------------------------------------------------------------- CoNLL-U


@needs_ewt
def test_conllu_spans_slice_back_to_every_word(ewt):
    assert ewt.level == "token" and ewt.name == "conllu:en_ewt-ud-dev"
    assert ewt.item_span_M2.shape == (ewt.n_items, 2) and ewt.n_items > 20000
    bad = [
        (ewt.texts[e][s:t], form)
        for (s, t), e, form in zip(ewt.item_span_M2, ewt.item_example_M, ewt.groups_M)
        if ewt.texts[e][s:t] != form
    ]
    assert bad == []
    assert 15 <= ewt.n_classes <= 18 and {"NOUN", "VERB", "PUNCT"} <= set(ewt.class_names)
    assert list(ewt.class_names) == sorted(ewt.class_names)
    assert ewt.texts[0] == "From the AP comes this story :"


@needs_ewt
def test_conllu_max_sentences():
    ds = data.load_conllu(EWT_DEV, max_sentences=10)
    assert len(ds.texts) == 10 and ds.item_example_M.max() == 9


def test_conllu_reconstructs_text_and_skips_ranges_and_empty_nodes(tmp_path):
    rows = [
        "# sent_id = 1",
        "1\tI\tI\tPRON\t_\t_\t0\troot\t_\t_",
        "2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_",
        "2\tdo\tdo\tAUX\t_\t_\t0\troot\t_\t_",
        "3\tn't\tnot\tPART\t_\t_\t0\troot\t_\t_",
        "3.1\tknow\tknow\tVERB\t_\t_\t_\t_\t_\t_",
        "4\tknow\tknow\tVERB\t_\t_\t0\troot\t_\tSpaceAfter=No",
        "5\t.\t.\tPUNCT\t_\t_\t0\troot\t_\t_",
        "",
        "# text = This  one has a comment",
        "1\tThis\tthis\tDET\t_\t_\t0\troot\t_\t_",
        "2\tone\tone\tNUM\t_\t_\t0\troot\t_\t_",
        "3\thas\thave\tVERB\t_\t_\t0\troot\t_\t_",
        "4\ta\ta\tDET\t_\t_\t0\troot\t_\t_",
        "5\tcomment\tcomment\tNOUN\t_\t_\t0\troot\t_\t_",
        "",
    ]
    path = tmp_path / "tiny.conllu"
    path.write_text("\n".join(rows), encoding="utf-8")
    ds = data.load_conllu(path)
    assert ds.texts == ("I don't know.", "This  one has a comment")
    assert ds.groups_M == ("I", "do", "n't", "know", ".", "This", "one", "has", "a", "comment")
    for (s, e), ex, form in zip(ds.item_span_M2, ds.item_example_M, ds.groups_M):
        assert ds.texts[ex][s:e] == form


def test_conllu_missing_or_empty_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.conllu"
    with pytest.raises(DataError, match="nope.conllu"):
        data.load_conllu(missing)
    empty = tmp_path / "empty.conllu"
    empty.write_text("# just a comment\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="empty.conllu"):
        data.load_conllu(empty)


# ---------------------------------------------------------------- tables, lists, validation


def test_load_table_csv_and_jsonl(tmp_path):
    rows = [{"text": f"example {i}", "label": "pos" if i % 2 else "neg"} for i in range(20)]
    csv = tmp_path / "d.csv"
    csv.write_text("text,label\n" + "".join(f"{r['text']},{r['label']}\n" for r in rows), encoding="utf-8")
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    a, b = data.load_table(csv), data.load_table(jsonl)
    for ds in (a, b):
        assert ds.class_names == ("neg", "pos")
        assert ds.texts[3] == "example 3" and ds.labels_M[3] == 1 and ds.labels_M[4] == 0
    assert a.fingerprint == b.fingerprint  # same content, same fingerprint, whatever the file format
    assert data.load_table(csv, max_examples=6).n_items == 6


def test_load_table_missing_column_lists_available(tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("sentence,label\na,0\nb,1\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        data.load_table(csv)
    assert "'text'" in str(err.value) and "sentence" in str(err.value)


def test_load_table_unreadable_csv(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text('text,label\n"unterminated,1\n', encoding="utf-8")
    with pytest.raises(DataError, match="bad.csv"):
        data.load_table(bad)
    with pytest.raises(DataError, match="absent.csv"):
        data.load_table(tmp_path / "absent.csv")


def test_load_table_hub_id_offline_raises_hub_unreachable(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # the hub libraries read the variable at import; patch their constants in case they are loaded
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    with pytest.raises(HubUnreachableError) as err:
        data.load_table("someone/not-a-real-dataset-xyz")
    msg = str(err.value)
    assert "\n" not in msg and "hub can't be reached" in msg and "local" in msg


def test_validation_errors():
    with pytest.raises(DataError, match=r"got 10 texts but 9 labels"):
        data.from_lists("m", ["t"] * 10, [0, 1] * 4 + [0])
    with pytest.raises(DataError, match=r"labels have one class \('1'\); a probe needs at least two"):
        data.from_lists("one", ["a", "b", "c"], [1, 1, 1])
    with pytest.raises(DataError, match="empty"):
        data.from_lists("none", [], [])
    with pytest.raises(DataError, match="outside"):
        data.from_lists("range", ["a", "b"], [0, 2], class_names=("x", "y"))


def test_from_lists_encodes_labels_and_keeps_given_names():
    ds = data.from_lists("m", ["a", "b", "c"], ["z", "y", "z"])
    assert ds.class_names == ("y", "z") and ds.labels_M.tolist() == [1, 0, 1]
    named = data.from_lists("m", ["a", "b"], [1, 0], class_names=("neg", "pos"))
    assert named.class_names == ("neg", "pos") and named.labels_M.tolist() == [1, 0]


def test_fingerprint_changes_with_one_label():
    texts = ["a", "b", "c"]
    base = data.fingerprint(texts, [0, 1, 0])
    assert data.fingerprint(texts, [0, 1, 0]) == base
    assert data.fingerprint(texts, [0, 1, 1]) != base
    assert data.fingerprint(["ab", "", "c"], [0, 1, 0]) != data.fingerprint(["a", "b", "c"], [0, 1, 0])
    spans = np.array([[0, 1], [0, 1], [0, 1]])
    assert data.fingerprint(texts, [0, 1, 0], spans) != data.fingerprint(texts, [0, 1, 0], spans + 1)
    a = data.from_lists("m", texts, [0, 1, 0])
    assert a.fingerprint != data.from_lists("m", texts, [0, 1, 1]).fingerprint


def test_split_sentence_level_is_stratified_and_seeded():
    ds = data.from_lists("m", [f"t{i}" for i in range(40)], [0] * 30 + [1] * 10)
    a = data.split_items(ds, seed=0)
    assert a.dtype == bool and a.sum() == 10  # 25% of 30 (7.5 -> 8) + 25% of 10 (2.5 -> 2)
    assert set(ds.labels_M[a]) == {0, 1} and set(ds.labels_M[~a]) == {0, 1}
    assert (data.split_items(ds, seed=0) == a).all()
    assert (data.split_items(ds, seed=1) != a).any()


@needs_ewt
def test_split_token_level_keeps_each_text_on_one_side(ewt):
    is_test = data.split_items(ewt, seed=3)
    per_text = {}
    for ex, t in zip(ewt.item_example_M, is_test):
        per_text.setdefault(int(ex), set()).add(bool(t))
    assert all(len(sides) == 1 for sides in per_text.values())
    frac = np.mean([next(iter(s)) for s in per_text.values()])
    assert 0.2 < frac < 0.3


def test_split_too_small_raises():
    with pytest.raises(DataError):
        data.split_items(data.from_lists("m", ["a", "b"], [0, 1]), seed=0, test_fraction=0.1)


# ---------------------------------------------------------------- tokenize


@pytest.mark.parametrize("prepend_bos", [True, False])
@pytest.mark.parametrize("align,expected", [("first", [" x", " the", "the"]), ("last", ["ist", " the", "the"])])
def test_alignment_decodes_to_the_word(gpt2_tok, prepend_bos, align, expected):
    texts = ["the xylophonist plays", "i saw the cat", "the zebras ran"]
    words = [["xylophonist"], ["the"], ["the"]]
    ds = _token_dataset(texts, words)
    batch = data.tokenize(ds, gpt2_tok, prepend_bos=prepend_bos, bos_token_id=GPT2_EOS, align=align, test_fraction=0.34)
    decoded = [
        gpt2_tok.decode([int(batch.tokens_BL[e, p])]) for e, p in zip(batch.item_example_M, batch.item_position_M)
    ]
    assert decoded == expected
    assert batch.has_bos is prepend_bos and batch.level == "token"
    if prepend_bos:
        assert (batch.tokens_BL[:, 0] == GPT2_EOS).all()
    assert batch.groups_M == ("xylophonist", "the", "the")


def test_alignment_every_ewt_word_overlaps_its_token(gpt2_tok, ewt):
    batch = data.tokenize(ewt, gpt2_tok, prepend_bos=True, bos_token_id=GPT2_EOS, max_length=512)
    assert len(batch.labels_M) == ewt.n_items  # nothing truncated at 512 tokens
    hits = [
        gpt2_tok.decode([int(batch.tokens_BL[e, p])]).strip() in form
        for e, p, form in zip(batch.item_example_M, batch.item_position_M, batch.groups_M)
    ]
    # misses are only tokens that merge two words ("don" for "do"/"n't", ',"' for ',')
    assert np.mean(hits) > 0.97


def test_truncation_drops_words_cut_away(gpt2_tok):
    ds = _token_dataset(["the xylophonist plays", "the cat sat"], [["the", "xylophonist", "plays"], ["cat", "sat"]])
    first = data.tokenize(ds, gpt2_tok, prepend_bos=True, bos_token_id=GPT2_EOS, max_length=3, test_fraction=0.5)
    # 2 text tokens kept per row: 'the', ' x' -> xylophonist's first sub-token survives, its last does not
    assert first.groups_M == ("the", "xylophonist", "cat")
    assert first.item_position_M.tolist() == [1, 2, 2]
    assert first.tokens_BL.shape == (2, 3)
    last = data.tokenize(
        ds, gpt2_tok, prepend_bos=True, bos_token_id=GPT2_EOS, max_length=3, align="last", test_fraction=0.5
    )
    assert last.groups_M == ("the", "cat")
    assert last.item_position_M.tolist() == [1, 2]


def test_sentence_level_batch(gpt2_tok):
    ds = data.from_lists("m", ["hello there", "a", "the cat sat on the mat", "no"], [0, 1, 0, 1])
    batch = data.tokenize(ds, gpt2_tok, prepend_bos=False, bos_token_id=None, test_fraction=0.5)
    assert (batch.item_position_M == -1).all()
    assert batch.pad_token_id == GPT2_EOS and GPT2_EOS in batch.special_token_ids
    lengths = [len(gpt2_tok(t)["input_ids"]) for t in ds.texts]
    assert batch.lengths_B.tolist() == lengths
    assert (batch.tokens_BL[1, 1:] == GPT2_EOS).all() and not batch.mask_BL[1, 1:].any()
    assert batch.is_test_M.sum() == 2
    other = data.tokenize(ds, gpt2_tok, prepend_bos=False, bos_token_id=None, test_fraction=0.5, max_length=128)
    assert other.dataset_fingerprint != batch.dataset_fingerprint


def test_empty_text_without_bos_is_rejected(gpt2_tok):
    ds = data.from_lists("m", ["", "a", "b", "c"], [0, 1, 0, 1])
    with pytest.raises(DataError, match="zero tokens"):
        data.tokenize(ds, gpt2_tok, prepend_bos=False, bos_token_id=None, test_fraction=0.5)
    batch = data.tokenize(ds, gpt2_tok, prepend_bos=True, bos_token_id=GPT2_EOS, test_fraction=0.5)
    assert batch.lengths_B.tolist()[0] == 1


def test_sae_probes_source_names_the_package_file_not_the_machine_path():
    ds = data.load_sae_probes("92_glue_sst2", max_examples=20)
    assert ds.source == "sae-probes package: sae_probes/data/cleaned_data/92_glue_sst2.csv.zst"
    assert not ds.source.startswith("/") and "site-packages" not in ds.source
