"""Token properties read off decoded token strings, on the byte-level and the real GPT-2 tokenizer."""

from __future__ import annotations

import string

import numpy as np

from auditkit.models import byte_tokenizer
from auditkit.token_properties import PROPERTIES, token_properties


def test_byte_level_tokenizer_properties_are_exact() -> None:
    tok = byte_tokenizer()
    props = token_properties(tok)
    V = len(tok)
    assert len(props.strings) == V and props.mask_V.shape == (V,)
    # 128 ASCII bytes usable; the 128 high bytes decode to U+FFFD alone; <|endoftext|> is special.
    assert int(props.mask_V.sum()) == 128
    assert not props.mask_V[tok.convert_tokens_to_ids("<|endoftext|>")]
    used = [props.strings[i] for i in np.flatnonzero(props.mask_V)]
    assert sorted(used) == sorted(chr(i) for i in range(128))

    def on(name: str) -> set[str]:
        return {props.strings[i] for i in np.flatnonzero(props.labels[name] & props.mask_V)}

    assert on("capitalised") == set(string.ascii_uppercase)
    assert on("digit") == set(string.digits)
    assert on("punctuation") == set(string.punctuation)
    assert on("all_alphabetic") == set(string.ascii_letters)
    assert on("starts_with_space") == {" "}
    assert set(props.labels) == set(PROPERTIES)


def test_gpt2_tokenizer_properties(gpt2_tokenizer) -> None:
    props = token_properties(gpt2_tokenizer, vocab_size=50304)  # a model's padded d_vocab
    assert len(props.strings) == 50304 and not props.mask_V[50257:].any()
    ids = {t: gpt2_tokenizer.convert_tokens_to_ids(t) for t in ("ĠThe", "The", "Ġhello", "123", ",", "Ċ")}
    lab = props.labels
    assert props.strings[ids["ĠThe"]] == " The"  # 'Ġ' read through decoding
    assert lab["starts_with_space"][ids["ĠThe"]] and not lab["starts_with_space"][ids["The"]]
    assert lab["capitalised"][ids["ĠThe"]] and lab["capitalised"][ids["The"]]
    assert lab["all_alphabetic"][ids["Ġhello"]] and not lab["capitalised"][ids["Ġhello"]]
    assert lab["digit"][ids["123"]] and lab["punctuation"][ids[","]] and lab["whitespace"][ids["Ċ"]]
    assert not props.mask_V[gpt2_tokenizer.eos_token_id]
    # Lone bytes of multi-byte characters (e.g. the 'â' byte of 'â€') are not usable.
    assert "\ufffd" not in "".join(props.strings[i] for i in np.flatnonzero(props.mask_V))
    share = props.labels["starts_with_space"][props.mask_V].mean()
    assert 0.5 < share < 0.8  # most GPT-2 tokens begin a word
    assert {"starts_with_space", "capitalised", "digit", "punctuation", "all_alphabetic"} <= set(props.usable())


def test_sentencepiece_leading_space_survives_decoding() -> None:
    """SentencePiece decoders strip a sequence's leading space; decoding after an anchor keeps it."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "a": 2, "▁a": 3, "▁The": 4, "The": 5, "▁": 6, "7": 7}
    tk = Tokenizer(models.Unigram([(t, -1.0) for t in vocab], unk_id=0))
    tk.normalizer = normalizers.Replace(" ", "▁")
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tk.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", bos_token="<s>")
    assert tok.decode([4]) == "The"  # the convention the anchor works around
    props = token_properties(tok)
    assert props.strings[4] == " The" and props.labels["starts_with_space"][4]
    assert props.strings[5] == "The" and not props.labels["starts_with_space"][5]
    assert not props.mask_V[0] and not props.mask_V[1]
