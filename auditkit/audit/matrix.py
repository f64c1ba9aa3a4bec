"""Audits of embedding matrices: probes on rows of W_E (or columns of W_U) for token-string properties.

``auditkit audit --matrix W_E --dataset token-properties:capitalised`` asks whether a token's
embedding encodes a property of its string. The rows are a seeded sample of vocabulary tokens (one
row per token, so every token is its own example and its own type); labels come from
:mod:`auditkit.token_properties`. The arms and the probes are the audit's own: each seed splits the
sample into train and test (stratified, :func:`auditkit.splits.split_examples`), and every arm goes
through :func:`auditkit.audit.probe.probe_rows`, giving the same tidy rows, selectivity and report.

Controls that apply:

- ``shuffled-labels``: labels permuted within each split, as for activations.
- ``spectral-reinit`` and ``gaussian-reinit``: the same rows of the weight-control model's matrix,
  computed by :func:`auditkit.controls.weights.reinit_matrix`, which is bit-identical to the matrix
  :func:`~auditkit.controls.weights.spectral_reinit` / ``gaussian_reinit`` put into the whole model
  for that arm (same ``derive_seed(seed, control)``, same per-parameter generator).

Not applicable: ``control-task`` (Hewitt and Liang's control gives every *type* one random label so
that a probe able to memorise types scores well; here every row is a distinct type, no type recurs
between train and test, and the control collapses to i.i.d. random labels: shuffled-labels without
exact marginals), the token controls (there is no text to replace) and ``step0`` (needs the hub).
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from auditkit.audit.arms import Arm, label_control, split_for_seed
from auditkit.audit.records import DatasetInfo, ExtractionInfo, MethodInfo, ProvenanceInfo
from auditkit.controls import registry
from auditkit.controls.weights import MATRICES, reinit_matrix
from auditkit.data import kinds as dataset_kinds
from auditkit.errors import ConfigError, DataError
from auditkit.models import LoadedModel, load_model
from auditkit.seeding import derive_seed, numpy_rng
from auditkit.token_properties import PROPERTIES, TokenProperties, token_properties
from auditkit.types import REAL, ActivationSet, TokenBatch

if TYPE_CHECKING:
    from auditkit.audit.config import AuditConfig
    from auditkit.audit.result import AuditResult

DATASET_KIND = next(k.name for k in dataset_kinds.kinds(lambda k: k.vocabulary))
"""The registered dataset kind of vocabulary rows (:attr:`auditkit.data.kinds.DatasetKind.vocabulary`)."""


def vocabulary_controls() -> tuple[str, ...]:
    """Controls of a matrix audit, all run by default: the registered ones that declare
    :attr:`~auditkit.controls.registry.Control.vocabulary_matrix` (see the module docstring for the others)."""
    return registry.names(where=lambda c: c.vocabulary_matrix)


MATRIX_CONTROLS = vocabulary_controls()
"""The built-in controls of a matrix audit, at import (:func:`vocabulary_controls` also sees later ones)."""
ALIASES = {"leading-space": "starts_with_space"}
MIN_PER_CLASS = 20
"""Fewest sampled tokens on each side of a property for it to be audited."""


def property_name(spec: str) -> str:
    """The :data:`PROPERTIES` key of a command-line property name (hyphens or underscores, or an alias)."""
    name = ALIASES.get(spec, spec.replace("-", "_"))
    if name not in PROPERTIES:
        choices = ["all", *ALIASES, *(p.replace("_", "-") for p in PROPERTIES)]
        raise ConfigError(f"token property {spec!r} unknown: use token-properties:P with P one of {choices}")
    return name


def parse_dataset(dataset: str) -> str:
    """The property (or ``all``) of a ``token-properties:PROP`` dataset."""
    kind, _, prop = dataset.partition(":")
    if kind != DATASET_KIND or not prop:
        raise ConfigError(
            f"--matrix audits label vocabulary tokens, not {dataset!r}: use --dataset token-properties:PROP "
            "(e.g. token-properties:capitalised, or token-properties:all)"
        )
    return prop if prop == "all" else property_name(prop)


def matrix_controls(cfg: AuditConfig) -> tuple[str, ...]:
    """The controls of a matrix audit: the ones asked for (each must apply) or all of :func:`vocabulary_controls`."""
    applicable = vocabulary_controls()
    if cfg.controls is None:
        controls = applicable
    else:
        bad = [c for c in cfg.controls if c not in applicable]
        if bad:
            raise ConfigError(f"control(s) {bad} do not apply to a --matrix audit: use some of {list(applicable)}")
        controls = cfg.controls
    if cfg.gaussian_keep_embeddings and "gaussian-reinit" in controls:
        raise ConfigError("--gaussian-keep-embeddings would keep the audited matrix: drop it for a --matrix audit")
    return controls


def matrix_rows(model: Any, matrix: str, ids: np.ndarray, control: str = REAL, seed: int = 0) -> torch.Tensor:
    """float32 [N, D]: the rows of W_E (or columns of W_U) for token ``ids``, of the real model or of the
    weight-control model ``control`` with arm seed ``seed``."""
    if control == REAL:
        W = model.W_E if matrix == "W_E" else model.W_U
    else:
        W = reinit_matrix(model, matrix, control, seed)
    W_VD = W if matrix == "W_E" else W.T
    return W_VD.detach()[torch.as_tensor(ids)].float().clone()


def sample_tokens(props: TokenProperties, n: int, seed: int = 0) -> np.ndarray:
    """int64 ids of ``n`` usable tokens (all of them when fewer), sampled without replacement, sorted."""
    usable = np.flatnonzero(props.mask_V)
    if len(usable) == 0:
        raise DataError("the tokenizer has no usable (non-special, decodable) tokens to label")
    take = min(n, len(usable))
    return np.sort(numpy_rng(derive_seed(seed, "vocab-sample")).choice(usable, size=take, replace=False))


def audited_properties(props: TokenProperties, ids: np.ndarray, prop: str) -> list[str]:
    """The property names to audit: ``prop``, or for ``all`` every property with enough tokens on each side."""
    names = list(PROPERTIES) if prop == "all" else [prop]
    positives = {p: int(props.labels[p][ids].sum()) for p in names}
    ok = [p for p in names if min(positives[p], len(ids) - positives[p]) >= MIN_PER_CLASS]
    if prop != "all" and not ok:
        pos = int(props.labels[prop][ids].sum())
        raise DataError(
            f"token property {prop!r} has {pos} positive and {len(ids) - pos} negative tokens in the sample; "
            f"it needs {MIN_PER_CLASS} of each: choose another property or a larger --vocab-sample"
        )
    return ok


def _vocab_batch(ids: np.ndarray, labels_N: np.ndarray, class_names: tuple[str, ...], prop: str) -> TokenBatch:
    """The sampled tokens as a TokenBatch of one-token texts (what the rows were read from)."""
    n = len(ids)
    fingerprint = hashlib.sha256(ids.tobytes() + labels_N.tobytes() + prop.encode()).hexdigest()
    return TokenBatch(
        tokens_BL=torch.as_tensor(ids)[:, None],
        mask_BL=torch.ones(n, 1, dtype=torch.bool),
        labels_M=labels_N,
        item_example_M=np.arange(n),
        item_position_M=np.zeros(n, dtype=np.int64),
        is_test_M=np.zeros(n, dtype=bool),
        class_names=class_names,
        level="token",
        pad_token_id=0,
        has_bos=False,
        dataset_fingerprint=fingerprint,
        dataset_name=f"{DATASET_KIND}:{prop}",
    )


def build_matrix_arms(
    loaded: LoadedModel,
    matrix: str,
    ids: np.ndarray,
    labels_N: np.ndarray,
    prop: str,
    seeds: tuple[int, ...],
    test_fraction: float,
    controls: tuple[str, ...],
    weight_rows: dict[tuple[str, int], torch.Tensor] | None = None,
    label_draws: int = 1,
) -> list[Arm]:
    """Every (control, seed) arm of a matrix audit; rows are the sampled tokens, in the same order in every arm.

    ``weight_rows`` memoises the weight-control rows by (control, seed), so that auditing several
    properties of one sample reinitialises the matrix once per arm, not once per property."""
    weight_rows = {} if weight_rows is None else weight_rows
    class_names = (f"not {prop}", prop)
    batch = _vocab_batch(ids, labels_N, class_names, prop)
    strings = tuple(loaded.model.tokenizer.convert_ids_to_tokens(ids.tolist()))
    n = len(ids)
    real = ActivationSet(
        acts_ND=matrix_rows(loaded.model, matrix, ids),
        labels_N=labels_N.astype(np.int64),
        token_ids_N=ids,
        example_ids_N=np.arange(n),
        positions_N=np.full(n, -1),
        is_test_N=np.zeros(n, dtype=bool),
        hook=matrix,
        positions="vocabulary-rows",
        class_names=class_names,
        groups_N=strings,
        provenance={**loaded.provenance.to_dict(), "matrix": matrix, "dataset": batch.dataset_fingerprint},
    )
    own = lambda: loaded
    arms = []
    for seed in seeds:
        real_s = split_for_seed(real, seed, test_fraction)
        arms.append(Arm(REAL, seed, real_s, batch, own))
        for control in controls:
            if registry.stage_of(control) == "label":
                arms += [
                    Arm(control, seed, label_control(real_s, control, seed, d), batch, own, d)
                    for d in range(label_draws)
                ]
            else:
                key = (control, seed)
                if key not in weight_rows:
                    weight_rows[key] = matrix_rows(loaded.model, matrix, ids, control, derive_seed(seed, control))
                acts = weight_rows[key]
                arms.append(Arm(control, seed, real_s.replace(acts_ND=acts), batch, own))
    return arms


def run_matrix_audit(cfg: AuditConfig, *, loaded: LoadedModel | None = None) -> AuditResult:
    """One matrix audit (``cfg.matrix`` set, ``cfg.dataset`` = ``token-properties:PROP`` with one property)."""
    prop = parse_dataset(cfg.dataset)
    if prop == "all":
        raise ConfigError("token-properties:all runs one audit per property: use run_matrix_audits")
    return run_matrix_audits(cfg, loaded=loaded)[prop.replace("_", "-")]


def run_matrix_audits(cfg: AuditConfig, *, loaded: LoadedModel | None = None) -> dict[str, AuditResult]:
    """Matrix audits for ``token-properties:PROP``, or one per property with enough tokens for ``all``."""
    import dataclasses

    from auditkit.audit.probe import MDL_DIRECTIONS, probe_rows
    from auditkit.audit.result import AuditResult, score_rows

    if cfg.matrix not in MATRICES:
        raise ConfigError(f"--matrix {cfg.matrix!r} unknown: use one of {list(MATRICES)}")
    if cfg.methods != ("probe",):
        raise ConfigError(f"a --matrix audit runs probes only, not {list(cfg.methods)}: use --methods probe")
    prop = parse_dataset(cfg.dataset)
    controls = matrix_controls(cfg)
    t0 = time.perf_counter()
    loaded = loaded or load_model(cfg.model)
    load_s = time.perf_counter() - t0
    model = loaded.model
    props = token_properties(model.tokenizer, vocab_size=model.cfg.d_vocab)
    ids = sample_tokens(props, cfg.vocab_sample)
    tokenizer_name = loaded.provenance.name  # the model spec, not a local cache path
    results, weight_rows = {}, {}
    for name in audited_properties(props, ids, prop):
        t = time.perf_counter()
        labels_N = props.labels[name][ids].astype(np.int64)
        sub = dataclasses.replace(cfg, dataset=f"{DATASET_KIND}:{name.replace('_', '-')}")
        arms = build_matrix_arms(
            loaded,
            cfg.matrix,
            ids,
            labels_N,
            name.replace("_", "-"),
            cfg.seeds,
            cfg.test_fraction,
            controls,
            weight_rows,
            cfg.label_draws,
        )
        build_s = time.perf_counter() - t
        t = time.perf_counter()
        rows, info = probe_rows(
            arms,
            cfg.probes,
            C=cfg.probe_C,
            mdl=cfg.mdl_schedule if cfg.mdl else None,
            C_grid=cfg.probe_c_grid,
            device=loaded.provenance.device,
        )
        fit_s = time.perf_counter() - t
        real = arms[0].acts
        rows, selectivity = score_rows(rows, cfg.selectivity_threshold, directions=MDL_DIRECTIONS)
        results[name.replace("_", "-")] = AuditResult(
            config=sub,
            rows=rows,
            selectivity=selectivity,
            provenance=ProvenanceInfo.of(loaded.provenance),
            dataset=DatasetInfo(
                name=sub.dataset,
                source=f"decoded strings of the {tokenizer_name} tokenizer",
                fingerprint=arms[0].batch.dataset_fingerprint,
                level="vocabulary",
                n_texts=len(ids),
                n_items=len(ids),
                class_names=tuple(real.class_names),
                class_counts=tuple(np.bincount(labels_N, minlength=2).tolist()),
                n_tokens=len(ids),
                vocab_size=int(model.cfg.d_vocab),
                usable_tokens=int(props.mask_V.sum()),
            ),
            extraction=ExtractionInfo(
                hook=cfg.matrix, positions="vocabulary-rows", rows=real.n, d=real.d, cache_key=None
            ),
            # most properties are rare: balanced accuracy heads the matrix beside accuracy
            method_info={"probe": MethodInfo(headline=("accuracy", "balanced_accuracy"), extras=dict(info))},
            controls=controls,
            timings=dict(
                load_model_s=load_s,
                build_arms_s=build_s,
                **{"method[probe]_s": fit_s},
                total_s=load_s + build_s + fit_s,
            ),
        )
    return results
