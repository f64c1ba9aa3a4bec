"""Known faults of the shipped datasets, as one literal table, and the one rule that flags a dataset.

The flag is one word, the most severe that applies (:data:`FLAGS`, worst first). Lexical ranks above leaky
because nothing in an audit undoes it, while auditkit's splits already keep every copy of a text on one side:

- ``broken``: the data is not what its name says: a known mis-formatting (:data:`KNOWN_FAULTS`), or at least
  :data:`BROKEN_CONFLICT_SHARE` of its distinct texts carry conflicting labels.
- ``lexical``: the words alone decide it, by the one rule of :mod:`auditkit.metrics.lexical` with no real arm:
  the better of the bag-of-words and length baselines closes at least :data:`LEXICAL_HEADROOM` of the gap from
  the majority share to perfect accuracy, (accuracy - majority) / (1 - majority) >= 0.6; with balanced binary
  classes, accuracy >= 0.80. A probe that reads such a task shows the words are in the activations, not that the
  model represents the concept.
- ``leaky``: copies (rows beyond the first of a repeated text) are more than :data:`LEAKY_COPY_SHARE` of its
  rows, or a known leak (:data:`KNOWN_FAULTS`). auditkit's own splits keep every copy of a text on one side,
  so copies do not leak into its audits, but they shrink the data and leak in any split made row by row.
- ``ok``: none of these. Conflicting labels under the threshold are still named in the reasons.
"""

from __future__ import annotations

from dataclasses import dataclass

from auditkit.metrics.lexical import LEXICAL_SHARE, is_lexical

FLAGS: tuple[str, ...] = ("broken", "lexical", "leaky", "ok")
"""The flags, worst first; a dataset takes the first that applies."""

MEANINGS = {
    "broken": "not what its name says: known mis-formatting, or many texts with conflicting labels",
    "leaky": "many rows are copies of another row, or a known leak",
    "lexical": "the words or the length alone read the label",
    "ok": "none of these",
}
"""What each flag means, in a few words, for reports."""

BROKEN_CONFLICT_SHARE = 0.05
"""Share of distinct texts with conflicting labels at which a dataset is ``broken``."""
LEAKY_COPY_SHARE = 0.10
"""Share of rows that are copies above which a dataset is ``leaky``."""
LEXICAL_HEADROOM = LEXICAL_SHARE
"""Share of the headroom above the majority class a text-only baseline must close for ``lexical`` (the one
threshold of :mod:`auditkit.metrics.lexical`)."""


@dataclass(frozen=True, kw_only=True)
class KnownFault:
    """A fault of a shipped dataset that its numbers here cannot show, stated by its source."""

    kind: str
    """``broken`` (mis-formatted: flags the dataset broken) or ``leaky`` (a known leak: flags it leaky)."""
    note: str
    """What is wrong, and who says so."""
    short: str
    """Two or three words for the table's reasons."""


_MISFORMATTED = KnownFault(
    kind="broken",
    note="mis-formatted according to the suite's own authors: the texts read as news headlines and code",
    short="mis-formatted (authors)",
)
_TRUTHQA_LEAK = KnownFault(
    kind="leaky",
    note="leaks lexically at the embedding layer in the suite's paper (AUC 0.78-0.82 there)",
    short="lexical leak (paper)",
)

KNOWN_FAULTS: dict[str, KnownFault] = {
    "sae-probes:161_agnews_0": _MISFORMATTED,
    "sae-probes:162_agnews_1": _MISFORMATTED,
    "sae-probes:163_agnews_2": _MISFORMATTED,
    "sae-probes:41_truthqa_tf": _TRUTHQA_LEAK,
}
"""Faults known from the datasets' sources, by dataset name; the one place they are written."""


@dataclass(frozen=True, kw_only=True)
class FlagInput:
    """What the flag rule reads about one dataset."""

    name: str
    rows: int
    copies: int
    distinct_texts: int
    conflicting_texts: int
    majority: float
    best_baseline: float
    """The better mean held-out accuracy of the text-only baselines."""


def flag(x: FlagInput) -> tuple[str, list[str]]:
    """The dataset's flag (:data:`FLAGS`, the rule in the module docstring) and every reason that applies, worst
    first, as short phrases for the table."""
    reasons: dict[str, list[str]] = {f: [] for f in FLAGS}
    fault = KNOWN_FAULTS.get(x.name)
    if fault is not None:
        reasons[fault.kind].append(fault.short)
    if x.conflicting_texts:  # any conflict is named; from the threshold on, it breaks the dataset
        share = x.conflicting_texts / max(x.distinct_texts, 1)
        worst = "broken" if share >= BROKEN_CONFLICT_SHARE else "ok"
        reasons[worst].append(f"{x.conflicting_texts:,} conflicting ({share:.1%} of texts)")
    if x.rows and x.copies / x.rows > LEAKY_COPY_SHARE:
        reasons["leaky"].append(f"{x.copies / x.rows:.0%} copies")
    if is_lexical(x.best_baseline, x.majority):
        reasons["lexical"].append(f"text alone {x.best_baseline:.2f}")
    found = [f for f in FLAGS[:-1] if reasons[f]]  # reasons under "ok" are notes that flag nothing
    return (found[0] if found else "ok"), [r for f in FLAGS for r in reasons[f]]
