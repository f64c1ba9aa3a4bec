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
        description="No model: a logistic regression at its own C (1; chosen among 0.1, 1, 10, 100 when the probes "
        "choose theirs by `--probe-c-grid`) on the text's unigrams and bigrams (TF-IDF), "
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
    # The sae method's own baselines (auditkit.audit.sae): the *real* activations encoded by a dictionary that
    # training did not find, by baseline_sae's kind (variant). The other methods skip them; no arm is extracted.
    Control(
        name="sae-untrained",
        stage="sae",
        variant="untrained",
        colour="#2ca02c",
        short_name="untrained",
        description="Removes the SAE's training: the SAE at its initialisation (same init code, seed, decoder-bias "
        "start and architecture as training), on the real activations.",
    ),
    Control(
        name="sae-frozen-decoder",
        stage="sae",
        variant="frozen-decoder",
        colour="#c5b0d5",
        short_name="frozen dec",
        description="Removes what training put into the dictionary: the decoder fixed at a random dictionary with "
        "the trained decoder's singular values (Haar-random singular vectors), encoder and biases trained on the "
        "real activations with the same budget and seed.",
    ),
    Control(
        name="sae-soft-frozen-decoder",
        stage="sae",
        variant="soft-frozen-decoder",
        colour="#c49c94",
        short_name="soft-frozen dec",
        description="Keeps the dictionary near chance: the decoder trained, but each row held at cosine >= 0.8 to "
        "its random initialisation after every step; encoder and biases trained on the real activations with the "
        "same budget and seed.",
    ),
    Control(
        name="sae-frozen-encoder",
        stage="sae",
        variant="frozen-encoder",
        colour="#f7b6d2",
        short_name="frozen enc",
        description="Removes what training put into the encoder: W_enc fixed at its random initialisation; "
        "decoder, biases and thresholds trained on the real activations with the same budget and seed.",
    ),
    Control(
        name="pca",
        stage="sae",
        variant="pca",
        colour="#ff9896",
        short_name="pca",
        description="Replaces the learned dictionary with the top principal directions of the real training "
        "activations (each signed, F capped at 2D), TopK on the magnitude of the projections with the same k.",
    ),
    Control(
        name="identity",
        stage="sae",
        variant="identity",
        colour="#ffbb78",
        short_name="identity",
        description="Replaces the learned dictionary with the raw neuron basis (each neuron signed, F = 2D), TopK "
        "on the magnitude of the centred activations with the same k.",
    ),
    # The pursuit method's own controls (auditkit.audit.pursuit): the same activations coded against a random
    # dictionary of the real one's shape, by auditkit.methods.pursuit.dictionaries.CONTROLS's key (variant).
    Control(
        name="gaussian-dict",
        stage="dictionary",
        variant="gaussian",
        colour="#e377c2",
        short_name="gauss dict",
        description="Destroys every learned direction of the dictionary and its spectrum: the real activations "
        "coded against i.i.d. Gaussian unit atoms of the same number and width (one draw per seed).",
    ),
    Control(
        name="spectral-dict",
        stage="dictionary",
        variant="spectrum-matched",
        colour="#7f7f7f",
        short_name="spectral dict",
        description="Destroys which directions the dictionary holds but keeps how much of the space it covers and "
        "how anisotropically: the real dictionary's singular values with Haar-random singular vectors, rows "
        "renormalised.",
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

SAE_BASELINES = {n: c.variant for n, c in registry.REGISTRY.items() if c.stage == "sae"}
"""The ``sae`` method's own controls (result-row and ``--controls`` name -> baseline kind of
:func:`auditkit.methods.sae.baselines.baseline_sae`)."""

DICTIONARY_CONTROLS = {n: c.variant for n, c in registry.REGISTRY.items() if c.stage == "dictionary"}
"""The ``pursuit`` method's own controls (result-row name -> :data:`auditkit.methods.pursuit.dictionaries.CONTROLS`
key)."""

DESCRIPTIONS = {n: c.description for n, c in registry.REGISTRY.items()}
"""One sentence per control on what it destroys, used by the report (built-in controls; the report reads the
registry)."""

__all__ = [
    "ALL_CONTROLS",
    "DEFAULT_LEVELS",
    "DESCRIPTIONS",
    "DICTIONARY_CONTROLS",
    "LABEL_CONTROLS",
    "LEXICAL_CONTROLS",
    "RANDOM_MODEL_CONTROLS",
    "SAE_BASELINES",
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
