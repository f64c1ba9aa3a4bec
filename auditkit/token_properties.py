"""Binary properties of vocabulary items, for probing embedding and unembedding matrices.

A probe on ``W_E`` [V, D] asks whether a token's embedding encodes, say, "starts a new word". The
labels come from the token's *decoded string*, read the same way for every tokenizer family: GPT-2
style byte-level BPE marks a leading space with 'Ġ' and SentencePiece with '▁', but both decode it
to ' '. Decoding a token alone is not enough, because SentencePiece decoders strip the leading space
of a sequence; each token is therefore decoded after an anchor token and the anchor's own text is cut
off (``decode([anchor, t])[len(decode([anchor])):]``).

Tokens excluded from every task (``mask_V`` False): special tokens (BOS/EOS/PAD/UNK and added
specials), tokens whose string is empty, and tokens that decode to U+FFFD (a lone byte of a multi-byte
UTF-8 character: its string properties are undefined). Ids at or beyond the tokenizer's length (the
padding rows of a model's ``d_vocab``) are also masked when ``vocab_size`` asks for them.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from auditkit.errors import DataError

_PUNCT = set(string.punctuation)


def _is_punct(ch: str) -> bool:
    return ch in _PUNCT or unicodedata.category(ch).startswith("P")


def _body(text: str) -> str:
    """The token's text without its leading word-boundary space."""
    return text.removeprefix(" ")


PROPERTIES: dict[str, Callable[[str], bool]] = {
    "starts_with_space": lambda t: t.startswith(" "),
    "capitalised": lambda t: _body(t)[:1].isupper(),
    "all_caps": lambda t: sum(c.isalpha() for c in _body(t)) >= 2 and _body(t).isupper(),
    "lowercase_word": lambda t: _body(t).isalpha() and _body(t).islower(),
    "all_alphabetic": lambda t: _body(t).isalpha(),
    "digit": lambda t: _body(t) != "" and all(c in string.digits for c in _body(t)),
    "has_digit": lambda t: any(c in string.digits for c in t),
    "punctuation": lambda t: _body(t) != "" and all(_is_punct(c) for c in _body(t)),
    "whitespace": lambda t: t.isspace(),
    "non_ascii": lambda t: not t.isascii(),
}
"""Every property, as a predicate on the decoded token string (``_body`` drops one leading space).
``capitalised``: first letter after the space is upper case; ``digit``: only ASCII digits after the
space; ``punctuation``: only punctuation (ASCII ``string.punctuation`` or Unicode category P*)."""


@dataclass(frozen=True, kw_only=True)
class TokenProperties:
    """Per-token binary labels over the vocabulary."""

    labels: dict[str, np.ndarray]
    """property name -> bool [V] label of every token id (meaningful only where ``mask_V``)."""
    mask_V: np.ndarray
    """bool [V]: tokens to use in every task (not special, decodable, non-empty)."""
    strings: tuple[str, ...]
    """Decoded string of every token id ('' past the tokenizer's length)."""

    def usable(self, min_count: int = 10) -> list[str]:
        """Properties with at least ``min_count`` masked tokens on each side (a two-class task)."""
        out = []
        for name, lab in self.labels.items():
            pos = int((lab & self.mask_V).sum())
            if min(pos, int(self.mask_V.sum()) - pos) >= min_count:
                out.append(name)
        return out


def decoded_tokens(tokenizer: Any) -> list[str]:
    """The string every token id decodes to, leading space kept (module docstring)."""
    n = len(tokenizer)
    anchor = _anchor_id(tokenizer)
    prefix = tokenizer.decode([anchor], clean_up_tokenization_spaces=False)
    pairs = tokenizer.batch_decode([[anchor, i] for i in range(n)], clean_up_tokenization_spaces=False)
    out = []
    for i, text in enumerate(pairs):
        if not text.startswith(prefix):  # a decoder that merges across tokens: fall back to the token alone
            text = prefix + tokenizer.decode([i], clean_up_tokenization_spaces=False)
        out.append(text[len(prefix) :])
    return out


def _anchor_id(tokenizer: Any) -> int:
    """A plain, non-special token to decode in front of every token (the first id of 'a')."""
    ids = tokenizer.encode("a", add_special_tokens=False)
    special = set(tokenizer.all_special_ids)
    ids = [i for i in ids if i not in special]
    if not ids:
        raise DataError(f"tokenizer {getattr(tokenizer, 'name_or_path', '?')!r} cannot encode 'a': no anchor token")
    return ids[-1]


def token_properties(tokenizer: Any, *, vocab_size: int | None = None) -> TokenProperties:
    """Labels of every :data:`PROPERTIES` entry over ids ``0 .. vocab_size - 1`` (default ``len(tokenizer)``)."""
    strings = decoded_tokens(tokenizer)
    n = len(strings)
    V = n if vocab_size is None else vocab_size
    if V < n:
        raise DataError(f"vocab_size {V} is smaller than the tokenizer's {n} tokens: pass the model's d_vocab")
    strings = strings + [""] * (V - n)
    special = np.zeros(V, dtype=bool)
    special[[i for i in tokenizer.all_special_ids if i < V]] = True
    special[
        [i for i in getattr(tokenizer, "added_tokens_decoder", {}) if i < V and _is_special_added(tokenizer, i)]
    ] = True
    mask = ~special & np.array([s != "" and "\ufffd" not in s for s in strings])
    mask[n:] = False
    labels = {name: np.array([fn(s) for s in strings], dtype=bool) for name, fn in PROPERTIES.items()}
    return TokenProperties(labels=labels, mask_V=mask, strings=tuple(strings))


def _is_special_added(tokenizer: Any, token_id: int) -> bool:
    token = tokenizer.added_tokens_decoder.get(token_id)
    return bool(getattr(token, "special", False))
