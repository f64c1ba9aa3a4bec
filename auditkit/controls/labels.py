"""Label controls: activations in, activations out, with the labels' link to the inputs destroyed."""

from __future__ import annotations

import numpy as np

from auditkit.seeding import numpy_rng
from auditkit.types import ActivationSet


def shuffled_labels(acts: ActivationSet, seed: int) -> ActivationSet:
    """Permute the labels within each split (train, test) with ``seed``.

    Each split keeps its label marginals exactly; unlabelled rows (-1) stay where they are. A method
    that still scores above chance on these labels is reading structure of the data or of itself,
    not of the relation between inputs and labels.
    """
    rng = numpy_rng(seed)
    labels = acts.labels_N.copy()
    for side in (False, True):
        idx = np.flatnonzero((acts.is_test_N == side) & (labels >= 0))
        labels[idx] = labels[idx[rng.permutation(len(idx))]]
    return acts.replace(labels_N=labels, provenance={**acts.provenance, "control": "shuffled-labels", "control_seed": seed})
