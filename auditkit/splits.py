"""Deterministic train/test splits by example, so no text contributes rows to both sides."""

from __future__ import annotations

import numpy as np

from auditkit.errors import ConfigError, DataError
from auditkit.seeding import numpy_rng


def split_examples(example_ids: np.ndarray, labels: np.ndarray, *, seed: int, test_fraction: float) -> np.ndarray:
    """bool is_test for every row: whole examples go to test, stratified by the example's first label.

    Stratifying keeps the class balance of both sides close to the whole set's, which keeps
    chance-level accuracy the same across seeds and arms.
    """
    if not 0 < test_fraction < 1:
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction}")
    uniq, first = np.unique(example_ids, return_index=True)
    strata = labels[first]
    rng = numpy_rng(seed)
    test_examples = []
    for value in np.unique(strata):
        members = uniq[strata == value]
        members = members[rng.permutation(len(members))]
        n_test = int(round(len(members) * test_fraction))
        if len(members) >= 2:  # small strata still get one example on each side
            n_test = min(max(n_test, 1), len(members) - 1)
        test_examples.append(members[:n_test])
    is_test = np.isin(example_ids, np.concatenate(test_examples))
    if is_test.all() or not is_test.any():
        raise DataError(
            f"split with test_fraction={test_fraction} left one side empty ({len(uniq)} examples): "
            "use more examples or another test_fraction"
        )
    return is_test
