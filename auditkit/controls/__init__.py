"""Controls: each reruns the same method on structure that has been destroyed.

A control returns the same type it takes in, at the stage it perturbs: label controls map an
ActivationSet to an ActivationSet, token controls a TokenBatch to a TokenBatch, weight controls a
model to a model. The audit runs every arm through the same extraction and method code.
"""

from auditkit.controls.labels import control_task, shuffled_labels
from auditkit.controls.tokens import random_tokens
from auditkit.controls.weights import gaussian_reinit, spectral_reinit

LABEL_CONTROLS = {"shuffled-labels": shuffled_labels, "control-task": control_task}
"""Label controls by the name used in result rows and on the command line."""

TOKEN_CONTROLS = {"random-tokens-uniform": "uniform", "random-tokens-unigram": "unigram"}
"""Token controls and their sampling variant."""

WEIGHT_CONTROLS = ("spectral-reinit", "gaussian-reinit", "step0")
"""Weight controls (``step0`` needs the hub and a Pythia model; off by default)."""

ALL_CONTROLS = (*LABEL_CONTROLS, *TOKEN_CONTROLS, *WEIGHT_CONTROLS)
"""The arm controls: each perturbs one stage and is read through the model (its activations are extracted)."""

LEXICAL_CONTROLS = {"lexical-bow": "bag-of-words", "lexical-length": "length", "lexical-last-token": "last-token"}
"""Lexical baselines by control name -> baseline of :mod:`auditkit.methods.text_baselines`: no model at all, the
texts (or the read position's token) alone, fitted on each seed's training rows and scored on its held-out rows
(:mod:`auditkit.audit.lexical`). They run with the probe method; a verdict against one reads "selective over
lexical"."""

DEFAULT_LEVELS = {"control-task": ("token",), "lexical-bow": ("sentence",), "lexical-length": ("sentence",)}
"""Controls run by default only on data of these levels (any other control: every level); named in ``--controls``
they run anyway. ``control-task``: on sentence-level data its type is the text, which never recurs across the
split (copies are one example), so it is a second shuffled-labels arm, not Hewitt and Liang's per-type control.
``lexical-bow``, ``lexical-length``: on token-level data the words and length of the whole sentence are shared by
every labelled word in it, so they say nothing about which word carries which label (``lexical-last-token``,
the labelled token's own identity, is the lexical baseline there)."""


def default_for_level(control: str, level: str) -> bool:
    """Whether ``control`` runs by default on data of ``level`` (``sentence`` or ``token``)."""
    return level in DEFAULT_LEVELS.get(control, (level,))


DESCRIPTIONS = {
    "shuffled-labels": "Destroys the link between inputs and labels by permuting the labels within each split "
    "(label marginals kept exactly); what survives is what the method finds in the activations' own structure.",
    "control-task": "Destroys the task but keeps type identity: every token type gets one random label drawn from the "
    "empirical label distribution (Hewitt and Liang, 2019); a method that scores well here can memorise types. On "
    "sentence-level data the type is the text, which never recurs across the split: there it is a second draw of "
    "random labels, so it runs only when asked for.",
    "random-tokens-uniform": "Destroys the input text: every real token is replaced by one drawn uniformly from the "
    "vocabulary (BOS, special tokens, lengths and labels kept); what survives is carried by position and length.",
    "random-tokens-unigram": "Destroys word order and co-occurrence but keeps the corpus's token frequencies: every "
    "real token is replaced by one sampled from the corpus unigram distribution.",
    "spectral-reinit": "Destroys every learned direction in the weights while keeping each weight matrix's singular "
    "values (random singular vectors, attention per head); what survives is what the architecture and the weights' "
    "scale give for free.",
    "gaussian-reinit": "Destroys everything training put into the weights: every tensor resampled i.i.d. Gaussian "
    "with its own mean and standard deviation (Heap et al., 2025).",
    "step0": "The model at initialisation (Pythia's step-0 checkpoint): the same architecture before any training.",
    "lexical-bow": "No model: a logistic regression (the probe's C) on the text's unigrams and bigrams (TF-IDF), "
    "fitted on the seed's training texts. Selective over lexical: the probe reads more than which words occur.",
    "lexical-length": "No model: a logistic regression on the text's length in characters and in words. Selective "
    "over lexical: the probe reads more than how long the text is.",
    "lexical-last-token": "No model: a logistic regression on the identity of the token at the read position (one-hot "
    "token id). Selective over lexical: the probe reads more than which token it sits on.",
}
"""One sentence per control on what it destroys, used by the report."""

__all__ = [
    "ALL_CONTROLS",
    "DEFAULT_LEVELS",
    "DESCRIPTIONS",
    "LABEL_CONTROLS",
    "LEXICAL_CONTROLS",
    "TOKEN_CONTROLS",
    "WEIGHT_CONTROLS",
    "control_task",
    "default_for_level",
    "gaussian_reinit",
    "random_tokens",
    "shuffled_labels",
    "spectral_reinit",
]
