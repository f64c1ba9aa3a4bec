"""Bad input caught where it enters: config values, CoNLL-U word ids, huge table headers, huge texts."""

from __future__ import annotations

import math

import pytest

from auditkit import data
from auditkit.errors import ConfigError, DataError

NAN, INF = math.nan, math.inf


@pytest.mark.parametrize("value", [NAN, INF, 0.0, -1.0])
def test_probe_c_must_be_finite_and_positive(value):
    from auditkit.audit.config import AuditConfig
    from auditkit.steering.run import SteeringConfig

    with pytest.raises(ConfigError, match="probe_C"):
        AuditConfig(probe_C=value)
    with pytest.raises(ConfigError, match="probe_C"):
        SteeringConfig(probe_C=value)


@pytest.mark.parametrize("field", ["lr", "l1_coefficient", "expansion_factor"])
@pytest.mark.parametrize("value", [NAN, INF])
def test_sae_options_must_be_finite(field, value):
    from auditkit.audit.options import SAEAuditOptions

    with pytest.raises(ConfigError, match="finite"):
        SAEAuditOptions(**{field: value})


def test_pursuit_code_probe_c_must_be_finite():
    from auditkit.audit.options import PursuitAuditOptions

    with pytest.raises(ConfigError, match="code_probe_C"):
        PursuitAuditOptions(code_probe_C=NAN)


@pytest.mark.parametrize("word_id", ["x", "3-a", "a-3", "1.x", "-1", ""])
def test_conllu_malformed_word_id_names_file_and_line(tmp_path, word_id):
    rows = [
        "# text = The cat",
        "1\tThe\tthe\tDET\t_\t_\t2\tdet\t_\t_",
        f"{word_id}\tcat\tcat\tNOUN\t_\t_\t0\troot\t_\t_",
        "",
    ]
    path = tmp_path / "bad.conllu"
    path.write_text("\n".join(rows), encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.conllu.*line 3.*word id") as err:
        data.load_conllu(path)
    assert "\n" not in str(err.value)


def test_missing_column_message_stays_short_for_a_huge_header(tmp_path):
    path = tmp_path / "wide.csv"
    columns = ["y" * 1_000_000, *(f"c{i}" for i in range(50))]
    path.write_text(",".join(columns) + "\n" + ",".join("1" for _ in columns) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="no column 'text'") as err:
        data.load_table(path)
    message = str(err.value)
    assert len(message) < 600 and "1,000,000 characters" in message and "43 more" in message


# ---------------------------------------------------------------- texts cut before tokenising


class _Spy:
    """A tokenizer that records the longest text it is asked to read."""

    def __init__(self, tokenizer):
        self._tokenizer, self.longest = tokenizer, 0

    def __call__(self, texts, **kwargs):
        self.longest = max(self.longest, *map(len, texts))
        return self._tokenizer(texts, **kwargs)

    def __len__(self):
        return len(self._tokenizer)

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)


def test_tokenize_cuts_huge_texts_and_counts_truncation_exactly(gpt2_tokenizer):
    huge = "word " * 20_000 + "end"  # 100 kB: read whole, the tokenizer's time and memory grow with it
    tokens_long = "a " * 40  # 40 tokens but only 80 characters: truncated by tokens, never cut by characters
    texts = [huge, "a short yes", tokens_long, "no", huge.upper()]
    ds = data.from_lists("long", texts, [0, 1, 0, 1, 1])
    spy = _Spy(gpt2_tokenizer)
    batch = data.tokenize(ds, spy, prepend_bos=True, bos_token_id=50256, max_length=16, test_fraction=0.5)
    assert spy.longest <= (15 + 2) * 128  # tokens x characters of GPT-2's longest vocabulary entry
    assert batch.n_truncated == 3
    for row, text in zip(batch.tokens_BL, texts):  # the kept tokens are those of the whole text
        expected = gpt2_tokenizer(text, add_special_tokens=False)["input_ids"][:15]
        assert row[1 : 1 + len(expected)].tolist() == expected


def test_a_cut_text_that_comes_short_is_tokenised_whole():
    """A normaliser that drops characters can leave a cut text with fewer tokens than it needs: then the whole
    text is read, so cutting never changes the tokens kept."""
    from tokenizers import normalizers

    from auditkit.models import byte_tokenizer

    tok = byte_tokenizer()
    tok.backend_tokenizer.normalizer = normalizers.Replace("~", "")
    texts = ["~" * 5_000 + "yes it is", "no", "~~ok", "maybe"]
    batch = data.tokenize(
        data.from_lists("tilde", texts, [0, 1, 0, 1]),
        tok,
        prepend_bos=False,
        bos_token_id=None,
        max_length=8,
        test_fraction=0.5,
    )
    assert tok.decode(batch.tokens_BL[0][batch.mask_BL[0]]) == "yes it i"
    assert batch.n_truncated == 1
