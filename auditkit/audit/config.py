"""The audit's configuration: one frozen dataclass, validated field by field on construction."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from auditkit.audit.options import PursuitAuditOptions, SAEAuditOptions
from auditkit.controls import registry
from auditkit.data import kinds as dataset_kinds
from auditkit.duplicates import check_policy
from auditkit.errors import ConfigError
from auditkit.extract import check_vector_hook
from auditkit.methods.probes import registry as probe_kinds
from auditkit.methods.probes.mdl import DEFAULT_SCHEDULE, check_schedule
from auditkit.models import ModelSpec

DEFAULT_DATASET = "sae-probes:92_glue_sst2"
ALIGNMENTS = ("first", "last")
"""Sub-token a token-level label sits on: the word's first or its last."""
DEFAULT_C = 1.0
"""The probes' C when none is chosen (scikit-learn's default)."""
DEFAULT_C_GRID: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0)
"""The Cs every probe arm chooses among by default (``--probe-c-grid``). Calibrated on the embedded model
(reports/calibration/embedded, embedded-c-grid): at C = 1 the logistic probe detected a planted signal-to-noise of
0.5 against shuffled labels in 30% of datasets, choosing among these in 92.5%, every null family at or below its
stated level."""


def known_controls() -> tuple[str, ...]:
    """Every ``--controls`` name: the registered controls (labels, tokens, weights, lexical baselines:
    :mod:`auditkit.controls.registry`) and the methods' own controls named on the command line (the SAE baselines; the
    pursuit's random dictionaries are its options); a method skips the ones it does not apply
    (:attr:`auditkit.audit.method.Method.controls`)."""
    return (*registry.names(*registry.AUDIT_STAGES), *registry.names("sae"))


KNOWN_CONTROLS = known_controls()
"""The built-in ``--controls`` names, at import (:func:`known_controls` also sees a control registered later)."""


@dataclass(frozen=True, kw_only=True)
class AuditConfig:
    """One audit: model, data, hook, methods, controls, seeds."""

    model: ModelSpec = field(default_factory=ModelSpec)
    """The model to audit."""
    dataset: str = DEFAULT_DATASET
    """``sae-probes:TAG``, ``conllu:PATH``, or ``table:PATH_OR_HUB_ID`` (see ``auditkit datasets``)."""
    text_column: str = "text"
    """Text column of a ``table:`` dataset."""
    label_column: str = "label"
    """Label column of a ``table:`` dataset."""
    max_examples: int | None = 1000
    """Distinct texts used (a stratified, seeded subsample; a repeated text counts once); None for all."""
    duplicates: str = "group"
    """What to do with a text's copies whose labels disagree: ``group`` keeps them (one example),
    ``drop-conflicts`` removes them, ``dedupe`` keeps one item per text (see :mod:`auditkit.duplicates`)."""
    hook: str | None = None
    """TransformerLens hook; default: the residual stream entering the middle block."""
    positions: str = "auto"
    """Position rule for extraction (see :class:`ExtractConfig`)."""
    max_length: int = 128
    """Tokens per text, BOS included; longer texts are truncated."""
    align: str = "first"
    """Sub-token a token-level label sits on: ``first`` or ``last``."""
    methods: tuple[str, ...] = ("probe",)
    """Feature-finding methods to audit (names in :data:`auditkit.audit.registry.METHODS`; checked when the
    audit starts, before any compute)."""
    controls: tuple[str, ...] | None = None
    """Controls to run every method against; None runs every control that applies to the methods."""
    gaussian_keep_embeddings: bool = False
    """gaussian-reinit keeps the trained W_E, W_pos and W_U."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds: each gives its own train/test split and control draw."""
    test_fraction: float = 0.25
    """Share of examples held out for scoring."""
    label_draws: int = 10
    """Draws of each label control (shuffled labels, control task) per seed; a seed's control score is the mean
    of its draws. Each draw is one more problem in the same stacked fit (no forward pass); more draws shrink
    the control's draw-to-draw spread in the interval (docs/controls.md, "The interval")."""
    weight_draws: int = 1
    """Draws of each reinitialised model (spectral-reinit, gaussian-reinit) per seed; a seed's control score is
    the mean of its draws. Each draw costs one forward pass of a freshly reinitialised model."""
    probe_C: float = DEFAULT_C
    """Inverse L2 strength (scikit-learn's C) of every probe kind that declares it (the logistic, low-rank and
    k-sparse probes; :attr:`auditkit.methods.probes.registry.ProbeKind.shared`) when no C is chosen
    (``probe_c_grid`` empty); under the grid, that of k-sparse and of a problem too small to choose (fewer training
    texts than folds)."""
    probe_c_grid: tuple[float, ...] = DEFAULT_C_GRID
    """Each dense probe kind that declares C (logistic, low-rank) chooses its C among these values per arm and seed,
    by the held-out cross-entropy of 3 folds of that arm's own training texts (:func:`auditkit.audit.probe.choose_C`);
    every arm goes through the same choice, so the budget stays equal, and the lexical baselines choose theirs
    among their own range. Empty (``--probe-c-grid none``): every kind fits at :attr:`probe_C`. The default grid
    gives way to ``mdl`` (the online code is defined at one C). About 10 more stacked fits per value
    (docs/methods/probe.md)."""
    probes: tuple[str, ...] = ("logistic",)
    """Probe kinds fitted by the ``probe`` method, registered in :mod:`auditkit.methods.probes.registry`: logistic,
    mass-mean, lda, low-rank, mlp, and ``k-sparse`` (or ``k-sparse:k=1,5,20``: logistic probes on the top-k raw
    dimensions, one method per k)."""
    mdl: bool = False
    """Also score every dense probe kind by its online codelength (Voita and Titov, 2020) on each arm's
    training rows: metrics ``codelength_per_label`` (lower is better) and ``compression`` (uniform / online)."""
    mdl_schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    """Block ends of the online code as fractions of the training rows (the paper's, 0.1% doubling to 100%)."""
    matrix: str | None = None
    """``W_E`` or ``W_U``: probe rows of the token embedding (columns of the unembedding) for the
    ``token-properties:PROP`` dataset instead of activations (see :mod:`auditkit.audit.matrix`)."""
    vocab_sample: int = 20000
    """Vocabulary tokens sampled (seeded) as the rows of a ``matrix`` audit."""
    pursuit: PursuitAuditOptions = field(default_factory=PursuitAuditOptions)
    """Dictionary, solver and L0 sweep of the ``pursuit`` method."""
    sae: SAEAuditOptions = field(default_factory=SAEAuditOptions)
    """Options of the ``sae`` method."""
    selectivity_threshold: float = 0.05
    """Minimum mean (real - control) accuracy for a 'selective' verdict."""
    batch_size: int = 16
    """Texts per forward pass."""
    use_cache: bool = True
    """Read and write the activation cache."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self) -> None:
        if self.hook is not None:
            check_vector_hook(self.hook)  # by its name alone: refused before anything is loaded
        if not self.seeds:
            raise ConfigError("seeds is empty: give at least one seed (three or more for intervals)")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds {self.seeds} repeat a value: give distinct seeds")
        for option, names in (("methods", self.methods), ("controls", self.controls or ()), ("probes", self.probes)):
            if repeated := sorted({n for n in names if names.count(n) > 1}):
                # A repeated name would count its rows once per copy: more "seeds", a narrower interval.
                raise ConfigError(f"--{option} names {', '.join(repeated)} more than once: give each once")
        check_policy(self.duplicates)
        if not self.methods or not self.probes:  # an empty --methods '' or --probes '' is a mistake, never "all"
            empty = "methods" if not self.methods else "probes"
            raise ConfigError(f"{empty} is empty: name at least one (--help lists them)")
        known = known_controls()
        bad = [c for c in self.controls or () if c not in known]
        if bad:
            raise ConfigError(f"unknown control(s) {bad}: use one of {list(known)}")
        if self.controls is not None and not self.controls:
            raise ConfigError("controls is empty: name at least one control, or leave it out to run all that apply")
        if self.max_examples is not None and self.max_examples < 4:
            raise ConfigError(f"max_examples must be >= 4, got {self.max_examples}")
        if self.align not in ALIGNMENTS:
            raise ConfigError(f"align {self.align!r} unknown: use first or last")
        bad_probes = [p for p in self.probes if probe_kinds.parse(p) is None]
        if bad_probes or not self.probes:
            raise ConfigError(
                f"unknown probe kind(s) {bad_probes or self.probes}: use some of {list(probe_kinds.names())}"
            )
        if not 0 < self.test_fraction < 1:
            raise ConfigError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        for name, value in (("label-draws", self.label_draws), ("weight-draws", self.weight_draws)):
            if not 1 <= value <= 1000:
                raise ConfigError(f"--{name} must be between 1 and 1000, got {value}: e.g. --{name} 10")
        if not (math.isfinite(self.probe_C) and self.probe_C > 0):
            raise ConfigError(f"probe_C (--probe-c) must be a finite number > 0, got {self.probe_C}: e.g. --probe-c 1")
        if self.mdl and tuple(self.probe_c_grid) == DEFAULT_C_GRID:
            object.__setattr__(self, "probe_c_grid", ())  # the default grid gives way to the online code's one C
        grid = self.probe_c_grid
        if grid and self.probe_C != DEFAULT_C:
            raise ConfigError(
                f"--probe-c {self.probe_C!r} fixes C, but the probes choose theirs among "
                f"{','.join(map(repr, grid))} by cross-validation (--probe-c-grid): add --probe-c-grid none to "
                f"fit every probe at {self.probe_C!r}, or drop --probe-c"
            )
        if grid and (len(grid) < 2 or len(set(grid)) != len(grid) or not all(math.isfinite(c) and c > 0 for c in grid)):
            raise ConfigError(
                f"--probe-c-grid needs two or more distinct finite values > 0, got {','.join(map(str, grid))}: "
                "e.g. --probe-c-grid 0.001,0.01,0.1,1"
            )
        if grid and self.mdl:
            raise ConfigError("--probe-c-grid chooses C per problem; --mdl codes at one C: drop one of them")
        kind = dataset_kinds.kind_of(self.dataset)
        if self.matrix is None and kind is not None and kind.vocabulary:
            raise ConfigError(f"{self.dataset} labels vocabulary tokens: add --matrix W_E or --matrix W_U")
        check_schedule(self.mdl_schedule)
        if self.mdl and "probe" not in self.methods:
            raise ConfigError("--mdl scores the probe method's probes: add probe to --methods, or drop --mdl")
        dense = probe_kinds.dense_names()
        if self.mdl and not [p for p in self.probes if p in dense]:
            raise ConfigError(f"--mdl codes with the dense probe kinds {list(dense)}: name at least one in --probes")
        if self.vocab_sample < 40:
            raise ConfigError(f"vocab_sample must be >= 40, got {self.vocab_sample}")


def input_paths(cfg: AuditConfig) -> tuple[str, ...]:
    """What the audit reads that may be a local path (model folder, dataset file or folder, SAE folders), for
    :func:`auditkit.report.outputs.check_output`; names that are not paths are harmless there."""
    paths = [cfg.model.name, cfg.pursuit.sae_path, cfg.sae.load, dataset_kinds.local_path(cfg.dataset)]
    return tuple(p for p in paths if p)
