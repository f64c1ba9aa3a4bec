"""Ground-truth recovery scores of a dictionary and its codes, where the true features are known.

On a synthetic model whose activations are ``x = a W_true + b`` with sparse, non-negative feature
activations ``a`` [N, G] and known feature directions ``W_true`` [G, D], a learned dictionary ``W`` [F, D] and
its codes ``z`` [N, F] are scored by sae-lens's own SynthSAEBench metrics (``sae_lens.synthetic.evals``),
called here, not re-implemented:

- ``mcc``: mean correlation coefficient, the mean |cosine| of the one-to-one matching of atoms to true
  features that maximises it (Hungarian algorithm over min(F, G) pairs);
- ``f1``: each atom is a detector of its best-matching true feature (largest |cosine|): firing (z != 0)
  against the feature being active (a > 0), F1 per atom, averaged over atoms;
- ``uniqueness``: distinct true features that are some atom's best match, divided by F (1: no two atoms
  track one feature; a signed basis, +v and -v, scores at most 0.5 by construction);

and two descriptive numbers from auditkit: ``explained_variance`` (1 - FVU about the rows' mean,
:func:`auditkit.metrics.sparse_coding.fvu`) and ``l0`` (non-zero codes per row).
"""

from __future__ import annotations

import torch
from jaxtyping import Float

from auditkit.metrics.sparse_coding import fvu

GROUND_TRUTH_METRICS = ("mcc", "f1", "uniqueness")
"""SynthSAEBench's recovery metrics, the headline of a ground-truth evaluation (all in [0, 1], higher better)."""
DIRECTIONS = {"mcc": 1, "f1": 1, "uniqueness": 1, "explained_variance": 1, "l0": 0}
"""Which way is better (:data:`auditkit.metrics.selectivity.Direction`): L0 is descriptive."""
CEILINGS = {"mcc": 1.0, "f1": 1.0, "uniqueness": 1.0, "explained_variance": 1.0}
"""Best value of each bounded metric, for the normalised selectivity."""


@torch.no_grad()
def ground_truth_scores(
    codes_NF: Float[torch.Tensor, "N F"],
    W_FD: Float[torch.Tensor, "F D"],
    true_acts_NG: Float[torch.Tensor, "N G"],
    true_GD: Float[torch.Tensor, "G D"],
    x_ND: Float[torch.Tensor, "N D"],
    x_hat_ND: Float[torch.Tensor, "N D"],
) -> dict[str, float]:
    """Every metric of the module docstring for one dictionary ``W_FD`` with codes ``codes_NF`` of rows ``x_ND``
    (reconstructed as ``x_hat_ND``), against the true features ``true_GD`` active as ``true_acts_NG``."""
    from sae_lens.synthetic import compute_classification_metrics, feature_uniqueness, mean_correlation_coefficient

    W, truth = W_FD.detach().float().cpu(), true_GD.detach().float().cpu()
    codes = codes_NF.detach().float().cpu()
    detection = compute_classification_metrics(codes, true_acts_NG.detach().float().cpu(), W, truth)
    return {
        "mcc": float(mean_correlation_coefficient(W, truth)),
        "f1": float(detection.f1_score),
        "uniqueness": float(feature_uniqueness(W, truth)),
        "explained_variance": 1.0 - fvu(x_ND, x_hat_ND),
        "l0": float((codes != 0).double().sum(1).mean()),
    }
