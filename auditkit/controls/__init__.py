"""Controls: each reruns the same method on structure that has been destroyed.

A control returns the same type it takes in, at the stage it perturbs: label controls map an
ActivationSet to an ActivationSet, token controls a TokenBatch to a TokenBatch, weight controls a
model to a model. The audit runs every arm through the same extraction and method code.

Every control is one :class:`~auditkit.controls.registry.Control`, registered below in one literal
(:mod:`auditkit.controls.registry`). The tuples and dicts after it (``LABEL_CONTROLS``, ...) are filters over
the registry, taken at import for the code that reads the built-in controls; code that must also see a control
registered later (validation, arms, colours, the methods' control lists) reads the registry itself.
"""

from functools import partial

from auditkit.controls import registry
from auditkit.controls.labels import control_task, shuffled_labels
from auditkit.controls.registry import Control, default_for_level, names, register
from auditkit.controls.tokens import random_tokens
from auditkit.controls.weights import gaussian_reinit, spectral_reinit, spectral_reinit_model

SENTENCE, TOKEN = ("sentence",), ("token",)

for _control in (
    Control(
        name="shuffled-labels",
        stage="label",
        apply=shuffled_labels,
        colour="#1f77b4",
        short_name="shuffled",
        vocabulary_matrix=True,
        description="Destroys the link between inputs and labels by permuting the labels within each split "
        "(label marginals kept exactly); what survives is what the method finds in the activations' own structure.",
    ),
    Control(
        # On sentence-level data its type is the text, which never recurs across the split (copies are one
        # example), so it is a second shuffled-labels arm, not Hewitt and Liang's per-type control: token only.
        name="control-task",
        stage="label",
        apply=control_task,
        colour="#17becf",
        short_name="control task",
        levels=TOKEN,
        description="Destroys the task but keeps type identity: every token type gets one random label drawn from "
        "the empirical label distribution (Hewitt and Liang, 2019); a method that scores well here can memorise "
        "types. On sentence-level data the type is the text, which never recurs across the split: there it is a "
        "second draw of random labels, so it runs only when asked for.",
    ),
    Control(
        name="random-tokens-uniform",
        stage="token",
        apply=partial(random_tokens, variant="uniform"),
        variant="uniform",
        colour="#ff7f0e",
        short_name="rand tok unif",
        description="Destroys the input text: every real token is replaced by one drawn uniformly from the "
        "vocabulary (BOS, special tokens, lengths and labels kept); what survives is carried by position and length.",
    ),
    Control(
        name="random-tokens-unigram",
        stage="token",
        apply=partial(random_tokens, variant="unigram"),
        variant="unigram",
        colour="#bcbd22",
        short_name="rand tok unigr",
        description="Destroys word order and co-occurrence but keeps the corpus's token frequencies: every "
        "real token is replaced by one sampled from the corpus unigram distribution.",
    ),
    Control(
        name="spectral-reinit",
        stage="weight",
        apply=spectral_reinit_model,
        colour="#d62728",
        short_name="spectral",
        random_model=True,
        vocabulary_matrix=True,
        description="Destroys every learned direction in the weights while keeping each weight matrix's singular "
        "values (random singular vectors, attention per head); what survives is what the architecture and the "
        "weights' scale give for free.",
    ),
    Control(
        name="gaussian-reinit",
        stage="weight",
        apply=gaussian_reinit,
        colour="#9467bd",
        short_name="gaussian",
        random_model=True,
        vocabulary_matrix=True,
        description="Destroys everything training put into the weights: every tensor resampled i.i.d. Gaussian "
        "with its own mean and standard deviation (Heap et al., 2025).",
    ),
    Control(
        # One fixed checkpoint (not a draw of a random model); needs the hub and a Pythia model: opt in.
        name="step0",
        stage="weight",
        colour="#8c564b",
        short_name="step0",
        opt_in=True,
        description="The model at initialisation (Pythia's step-0 checkpoint): the same architecture before any "
        "training.",
    ),
    # Lexical baselines: no model at all, the texts (or the read position's token) alone, fitted on each seed's
    # training rows and scored on its held-out rows (auditkit.audit.lexical), with the probe method. The
    # bag-of-words and length baselines run by default on sentence-level data only: on token-level data the
    # words and length of the whole sentence are shared by every labelled word in it, so they say nothing about
    # which word carries which label (the labelled token's own identity, lexical-last-token, is the one there).
    Control(
        name="lexical-bow",
        stage="lexical",
        variant="bag-of-words",
        colour="#8c6d31",
        short_name="lex bow",
        levels=SENTENCE,
        description="No model: a logistic regression (the probe's C) on the text's unigrams and bigrams (TF-IDF), "
        "fitted on the seed's training texts. Selective over lexical: the probe reads more than which words occur.",
    ),
    Control(
        name="lexical-length",
        stage="lexical",
        variant="length",
        colour="#bd9e39",
        short_name="lex length",
        levels=SENTENCE,
        description="No model: a logistic regression on the text's length in characters and in words. Selective "
        "over lexical: the probe reads more than how long the text is.",
    ),
    Control(
        name="lexical-last-token",
        stage="lexical",
        variant="last-token",
        colour="#e7ba52",
        short_name="lex last tok",
        description="No model: a logistic regression on the identity of the token at the read position (one-hot "
        "token id). Selective over lexical: the probe reads more than which token it sits on.",
    ),
):
    register(_control)

LABEL_CONTROLS = {n: c.apply for n, c in registry.REGISTRY.items() if c.stage == "label"}
"""Label controls by the name used in result rows and on the command line -> their ``apply``."""

TOKEN_CONTROLS = {n: c.variant for n, c in registry.REGISTRY.items() if c.stage == "token"}
"""Token controls and their sampling variant."""

WEIGHT_CONTROLS = names("weight")
"""Weight controls (``step0`` needs the hub and a Pythia model; off by default)."""

RANDOM_MODEL_CONTROLS = names("weight", where=lambda c: c.random_model)
"""Weight controls whose arms are draws of a random model (``step0`` is one fixed checkpoint): their verdicts use a
prediction interval that carries the spread between draws (:data:`auditkit.metrics.selectivity.PREDICTION_RULE`)."""

ALL_CONTROLS = names(*registry.ARM_STAGES)
"""The arm controls: each perturbs one stage and is read through the model (its activations are extracted)."""

LEXICAL_CONTROLS = {n: c.variant for n, c in registry.REGISTRY.items() if c.stage == "lexical"}
"""Lexical baselines by control name -> baseline of :mod:`auditkit.methods.text_baselines` (see
:mod:`auditkit.audit.lexical`). They run with the probe method; a verdict against one reads "selective over
lexical"."""

DEFAULT_LEVELS = {n: c.levels for n, c in registry.REGISTRY.items() if c.levels is not None}
"""Controls run by default only on data of these levels (any other control: every level; see
:attr:`~auditkit.controls.registry.Control.levels`)."""

DESCRIPTIONS = {n: c.description for n, c in registry.REGISTRY.items()}
"""One sentence per control on what it destroys, used by the report (built-in controls; the report reads the
registry)."""

__all__ = [
    "ALL_CONTROLS",
    "DEFAULT_LEVELS",
    "DESCRIPTIONS",
    "LABEL_CONTROLS",
    "LEXICAL_CONTROLS",
    "RANDOM_MODEL_CONTROLS",
    "TOKEN_CONTROLS",
    "WEIGHT_CONTROLS",
    "Control",
    "control_task",
    "default_for_level",
    "gaussian_reinit",
    "random_tokens",
    "register",
    "shuffled_labels",
    "spectral_reinit",
]
