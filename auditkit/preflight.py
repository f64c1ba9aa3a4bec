"""Checks that need the loaded model or the tokenised data, run before the audit's first forward pass.

Pure value checks live in the configs' ``__post_init__``. What depends on the model (its hooks, its
context length, whether it has a step-0 checkpoint, whether a named SAE exists, whether a saved SAE is whole
and reads this hook) or on the tokenised data (whether every seed's split leaves something to train and to
test) is checked here, after the model is loaded and before any activation is extracted: bad input then
costs no forward pass and leaves no cache entry behind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from auditkit.errors import ConfigError, DataError
from auditkit.extract import validate_hook
from auditkit.methods.sae.io import check_sae_spec, read_saved_sae
from auditkit.models import LoadedModel, has_step0_checkpoint
from auditkit.seeding import derive_seed
from auditkit.splits import split_examples
from auditkit.types import TokenBatch

if TYPE_CHECKING:
    from auditkit.audit.config import AuditConfig


def check_model(cfg: AuditConfig, loaded: LoadedModel, hook: str, controls: tuple[str, ...]) -> None:
    """Raise an :class:`AuditkitError` if ``cfg`` asks of ``loaded`` what it cannot do."""
    name = loaded.provenance.name
    validate_hook(loaded.model, hook)
    n_ctx = int(loaded.model.cfg.n_ctx)
    if cfg.max_length > n_ctx:
        # Positions past n_ctx have no positional embedding (or rotary table): the forward pass would fail
        # on the first text that long, after every shorter batch had been computed.
        raise ConfigError(
            f"--max-length {cfg.max_length} is above the context of {name!r} ({n_ctx} tokens): "
            f"pass --max-length {n_ctx} or less"
        )
    if "step0" in controls and not has_step0_checkpoint(loaded.provenance):
        raise ConfigError(
            f"control step0 needs a Pythia model from the hub (e.g. pythia-70m), not {name!r}: "
            "drop step0 from --controls"
        )
    if "sae" in cfg.methods and cfg.sae.load and check_sae_spec(cfg.sae.load) == "folder":
        # The whole folder (cfg.json's fields, the weights' names, shapes and dtypes) and the checks the method
        # makes on the loaded SAE, before any forward pass: a damaged SAE costs no extraction, leaves no entry.
        saved = read_saved_sae(cfg.sae.load)
        d_in, trained_at, d_model = saved.d_in, saved.hook, int(loaded.model.cfg.d_model)
        if d_in != d_model:
            raise ConfigError(
                f"--sae-load {cfg.sae.load}: the SAE reads {d_in}-dim activations but {hook} has {d_model}: "
                "load an SAE trained on this model and hook"
            )
        if trained_at and trained_at != hook:
            raise ConfigError(
                f"--sae-load {cfg.sae.load} was trained at {trained_at}, not {hook}: pass --hook {trained_at}"
            )
    if "pursuit" in cfg.methods and cfg.pursuit.sae_path:
        check_sae_spec(cfg.pursuit.sae_path)


def check_splits(batch: TokenBatch, seeds: tuple[int, ...], test_fraction: float) -> None:
    """Every seed's train/test split of the labelled items (the audit's own rule and sub-seed, see
    :func:`auditkit.audit.arms.build_arms`) must hold a test item, two classes on the training side, and some
    class with two training items: with one item per class a probe has no within-class spread to fit
    (LDA's covariance is zero) and its score says nothing."""
    for seed in seeds:
        is_test = split_examples(
            batch.item_example_M, batch.labels_M, seed=derive_seed(seed, "split"), test_fraction=test_fraction
        )  # raises DataError when one side is empty
        train = batch.labels_M[~is_test]
        n_classes = np.unique(train).size
        if n_classes < 2 or train.size <= n_classes:
            raise DataError(
                f"dataset {batch.dataset_name!r} is too small to split: seed {seed} leaves {train.size} training "
                f"items in {n_classes} class(es) and {int(is_test.sum())} test items ({batch.n_examples} texts); "
                "a probe needs two classes and a class with two training items: use more examples or sentences"
            )
