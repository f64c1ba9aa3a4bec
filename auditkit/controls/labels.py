"""Label controls: activations in, activations out, with the labels' link to the inputs destroyed."""

from __future__ import annotations

import numpy as np

from auditkit.seeding import derive_seed, numpy_rng
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
    return acts.replace(
        labels_N=labels, provenance={**acts.provenance, "control": "shuffled-labels", "control_seed": seed}
    )


def control_task(acts: ActivationSet, seed: int) -> ActivationSet:
    """Hewitt and Liang's (2019) control task: one random label per type, fixed up front.

    Every grouping key (``acts.groups_N``: the word type for token-level data, the example text for
    sentence-level data; the example index when no key is declared) gets a label drawn from the
    empirical label distribution of the labelled rows. The draw for a key depends only on ``seed``
    and the key itself (a hash), so it is independent of the order rows are seen and identical in
    train and test. A probe that scores well here can memorise types, so accuracy on the real task
    says little by itself; selectivity is the difference.
    """
    labelled = acts.labels_N >= 0
    n_classes = max(len(acts.class_names), int(acts.labels_N.max()) + 1)
    cdf = np.cumsum(np.bincount(acts.labels_N[labelled], minlength=n_classes) / labelled.sum())
    keys = acts.groups_N if acts.groups_N is not None else tuple(f"example:{e}" for e in acts.example_ids_N)
    uniq, inverse = np.unique(np.asarray(keys, dtype=object).astype(str), return_inverse=True)
    # A uniform draw per key from a hash of (seed, key), mapped through the empirical CDF.
    u = np.array([derive_seed(seed, "control-task", k) / 2.0**63 for k in uniq])
    per_key = np.minimum(np.searchsorted(cdf, u, side="right"), n_classes - 1)
    labels = np.where(labelled, per_key[inverse], -1).astype(np.int64)
    return acts.replace(
        labels_N=labels, provenance={**acts.provenance, "control": "control-task", "control_seed": seed}
    )
