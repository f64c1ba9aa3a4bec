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

DESCRIPTIONS = {
    "shuffled-labels": "Destroys the link between inputs and labels by permuting the labels within each split "
    "(label marginals kept exactly); what survives is what the method finds in the activations' own structure.",
    "control-task": "Destroys the task but keeps type identity: every token type (or example) gets one random label "
    "drawn from the empirical label distribution (Hewitt and Liang, 2019); a method that scores well here can "
    "memorise types.",
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
}
"""One sentence per control on what it destroys, used by the report."""

__all__ = [
    "ALL_CONTROLS", "DESCRIPTIONS", "LABEL_CONTROLS", "TOKEN_CONTROLS", "WEIGHT_CONTROLS", "control_task",
    "gaussian_reinit", "random_tokens", "shuffled_labels", "spectral_reinit",
]  # fmt: skip
