"""Sparse autoencoders: train with sae-lens on extracted activations, load, save, and evaluate.

The public surface of auditkit's SAE method; the work lives in three modules:

* :mod:`auditkit.methods.sae.train`: :class:`SAEConfig` and :func:`train_sae`, sae-lens's own
  ``SAETrainer`` and SAE classes (TopK, standard ReLU + L1, JumpReLU) fed from an in-memory
  activation tensor;
* :mod:`auditkit.methods.sae.io`: :func:`load_sae` (a folder, or a sae-lens pretrained release
  ``RELEASE/SAE_ID``) and :func:`save_sae` (cfg.json + sae_weights.safetensors, written atomically);
* :mod:`auditkit.methods.sae.metrics`: :func:`evaluate_sae` (explained variance and FVU about the
  mean, L0, dead and dense fractions, shrinkage, token entropy, k-sparse probing) and
  :func:`splice_metrics` (CE loss recovered and KL with the SAE spliced into the model).

Typical use::

    acts = extract(model, batch, ExtractConfig(hook=hook, positions="all"))
    train, test = acts.acts_ND[~acts.is_test_N], acts.acts_ND[acts.is_test_N]
    sae = train_sae(train, SAEConfig(), seed=0)
    metrics = evaluate_sae(sae, test, token_ids_N=torch.from_numpy(acts.token_ids_N[acts.is_test_N]))
"""

from __future__ import annotations

from auditkit.methods.sae.io import load_sae, save_sae
from auditkit.methods.sae.metrics import (
    DENSE_THRESHOLD,
    PROBE_KS,
    evaluate_sae,
    explained_variance,
    sparse_probe_accuracy,
    splice_metrics,
    token_entropy,
)
from auditkit.methods.sae.train import SAEConfig, SAETrainStats, TensorBatches, train_sae, training_stats

__all__ = [
    "DENSE_THRESHOLD",
    "PROBE_KS",
    "SAEConfig",
    "SAETrainStats",
    "TensorBatches",
    "evaluate_sae",
    "explained_variance",
    "load_sae",
    "save_sae",
    "sparse_probe_accuracy",
    "splice_metrics",
    "token_entropy",
    "train_sae",
    "training_stats",
]
