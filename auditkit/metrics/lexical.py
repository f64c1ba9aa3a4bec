"""One definition of "lexical", used by the trust table, the audit and sweep summaries and the docs.

A label is **lexical** when a reading that has no trained model in it (the best lexical baseline:
bag-of-words, length or the read position's token; in a sweep also a reinitialised model) closes at least
:data:`LEXICAL_SHARE` of the real arm's gain over the majority class,
``(text - majority) / (real - majority) >= 0.6``, and at least :data:`LEXICAL_FLOOR` of the whole headroom,
``(text - majority) / (1 - majority) >= 0.3`` (a label nothing reads well is not lexical, it is unread). With no
real arm (the trust table reads no model) the real arm is taken as perfect, so the rule is
``(text - majority) / (1 - majority) >= 0.6``: accuracy 0.80 or more on balanced binary classes.

This is a threshold on the point estimates, descriptive like the sweep's best layer; whether a probe reads
*more* than the words is the verdict against each lexical arm ("selective over lexical"), with its interval.
"""

from __future__ import annotations

import math

LEXICAL_SHARE = 0.6
"""Share of the real arm's gain over the majority class that a model-free reading must reach to be lexical."""
LEXICAL_FLOOR = 0.3
"""Share of the whole headroom over the majority class it must reach too (0.65 on balanced binary classes)."""

RULE = (
    f"the best reading with no trained model in it (a lexical baseline: bag-of-words, length or the "
    f"read position's token; or a reinitialised model) closes at least {LEXICAL_SHARE:.0%} of the real arm's gain "
    f"over the majority class, (text - majority) / (real - majority) >= {LEXICAL_SHARE:g}, and at least "
    f"{LEXICAL_FLOOR:.0%} of the headroom, (text - majority) / (1 - majority) >= {LEXICAL_FLOOR:g}; with no real "
    f"arm (the trust table) the real arm counts as perfect: (text - majority) / (1 - majority) >= {LEXICAL_SHARE:g}, "
    "0.80 on balanced binary classes"
)
"""The rule in words, for reports: "a label is lexical when " + RULE."""


def lexical_share(accuracy: float, majority: float, real: float = 1.0) -> float:
    """(accuracy - majority) / (real - majority): the share of the real arm's gain over the majority class that
    ``accuracy`` reaches (of the whole headroom with the default ``real``); NaN when the real arm gains nothing."""
    return (accuracy - majority) / (real - majority) if real - majority > 1e-12 else math.nan


def is_lexical(text_only: float, majority: float, real: float = 1.0) -> bool:
    """Whether a label is lexical (the module's rule): ``text_only`` is the best model-free accuracy, ``real``
    the real arm's (1.0 when no model was read)."""
    if any(math.isnan(x) for x in (text_only, majority, real)) or majority >= 1:
        return False
    # A model-free reading above the real arm's reaches all of its gain (max keeps the share at most 1).
    share = lexical_share(text_only, majority, max(real, text_only))
    return lexical_share(text_only, majority) >= LEXICAL_FLOOR and share >= LEXICAL_SHARE
