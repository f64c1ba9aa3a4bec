"""Controls: each reruns the same method on structure that has been destroyed.

A control returns the same type it takes in, at the stage it perturbs: label controls map an
ActivationSet to an ActivationSet, token controls a TokenBatch to a TokenBatch, weight controls a
model to a model.
"""

from auditkit.controls.labels import shuffled_labels

LABEL_CONTROLS = {"shuffled-labels": shuffled_labels}
"""Label controls by the name used in result rows and on the command line."""

__all__ = ["LABEL_CONTROLS", "shuffled_labels"]
