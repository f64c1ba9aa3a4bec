"""Options of the audit's methods: one frozen dataclass per method that has options, each a field of
:class:`auditkit.audit.config.AuditConfig`.

Plain data with validation, no compute: building a config never imports sae-lens or a solver. The
command-line flags of each are declared in :mod:`auditkit.cli.flags`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from auditkit.controls import registry
from auditkit.errors import ConfigError

SAE_ARCHITECTURES = ("topk", "standard", "jumprelu")
SAE_BASELINES = {c.name: c.variant for c in registry.controls("sae")}
"""The ``sae`` method's own controls (result-row and ``--controls`` name -> baseline kind of
:func:`auditkit.methods.sae.baselines.baseline_sae`): the *real* activations encoded by a dictionary that
training did not find. The other methods skip them; no arm is extracted for them. A filter over the control
registry (stage ``sae``, :mod:`auditkit.controls`)."""
SAE_BASELINE_DESCRIPTIONS = {c.name: c.description for c in registry.controls("sae")}
"""One sentence per SAE baseline on what it removes, for the report (the registered controls')."""


def parse_width(value: str) -> tuple[float, int | None]:
    """``--sae-width``: ``"2x"`` is an expansion factor (F = 2 D), ``"1152"`` a dictionary size F.

    Returns (expansion_factor, width); width is None for an expansion factor.
    """
    text = str(value).strip().lower()
    try:
        if text.endswith("x"):
            return float(text[:-1]), None
        return 1.0, int(text)
    except ValueError:
        raise ConfigError(
            f"--sae-width {value!r} is neither an expansion factor like 2x nor a dictionary size like 1152"
        ) from None


@dataclass(frozen=True, kw_only=True)
class SAEAuditOptions:
    """How the ``sae`` method trains and scores one SAE per arm and seed.

    Every arm (the real one and each control) of a seed gets the same hyper-parameters, the same token
    budget and the same initialisation seed; only its activations differ. The defaults are sized for a
    2-core CPU; measured run times are in the README ("SAE audit").
    """

    architecture: str = "topk"
    """``topk``, ``standard`` (ReLU + L1) or ``jumprelu`` (see :class:`auditkit.methods.sae.SAEConfig`)."""
    expansion_factor: float = 2.0
    """Dictionary size F as a multiple of d_model (ignored when ``width`` is set)."""
    width: int | None = None
    """Dictionary size F; overrides ``expansion_factor``."""
    k: int = 32
    """Active latents per token (``topk`` only)."""
    l1_coefficient: float = 5.0
    """L1 penalty weight (``standard`` only), on inputs normalised to mean norm sqrt(D)."""
    lr: float = 1e-3
    """Adam learning rate."""
    training_tokens: int = 49_152
    """Token budget per SAE: rows seen in training (the training rows repeat in fresh orders as needed)."""
    batch_size: int = 128
    """Rows per optimiser step. Small batches matter at a CPU budget: on the embedded model's layer 15
    (SST-2, 49,152 tokens, seed 0) held-out explained variance was 0.32 with batches of 1,024 (48 steps),
    0.76 with 256 and 0.89 with 128 (384 steps), for 1.4x the training time."""
    load: str | None = None
    """A saved SAE folder or ``RELEASE/SAE_ID``: the real arm is scored with this SAE instead of a trained
    one; every control arm still trains an SAE of the same architecture, width and k on the budget above."""
    splice_texts: int = 16
    """Held-out texts of each seed on which the SAE is spliced into its arm's model (CE loss and KL):
    ~200 predicted tokens per seed for SST-2 sentences. Each text costs about 2.5 forward passes of the
    model's depth per arm and seed (the splice is the largest part of scoring an SAE)."""

    def __post_init__(self) -> None:
        if self.architecture not in SAE_ARCHITECTURES:
            raise ConfigError(f"--sae-arch {self.architecture!r} unknown: use one of {', '.join(SAE_ARCHITECTURES)}")
        if self.splice_texts < 1:
            raise ConfigError(f"SAE splice_texts must be >= 1, got {self.splice_texts}")
        floats = (("--sae-width", self.expansion_factor), ("--sae-l1", self.l1_coefficient), ("--sae-lr", self.lr))
        for flag, value in floats:
            if not math.isfinite(value):  # NaN passes every < or > test below
                raise ConfigError(f"{flag} must be a finite number, got {value}")
        self.sae_config()  # validates the rest (ConfigError naming the bad value)

    def sae_config(self, **overrides: Any) -> Any:
        """The :class:`auditkit.methods.sae.SAEConfig` these options train with."""
        from auditkit.methods.sae.train import SAEConfig

        kw: dict[str, Any] = dict(
            architecture=self.architecture,
            expansion_factor=self.expansion_factor,
            width=self.width,
            k=self.k,
            l1_coefficient=self.l1_coefficient,
            lr=self.lr,
            training_tokens=self.training_tokens,
            batch_size=self.batch_size,
            progress=False,
        )
        return SAEConfig(**(kw | overrides))


DICTIONARIES = ("embed", "unembed", "sae", "probe")
"""Where the dictionary's atoms come from: token embeddings W_E rows, unembedding W_U columns, the
decoder of an SAE, or the directions of logistic probes fitted on the train split."""
SOLVERS = ("omp", "gradient", "lasso", "nn-lasso")
"""Sparse coders: orthogonal matching pursuit, gradient pursuit, lasso, non-negative lasso."""
DICTIONARY_CONTROLS = {c.name: c.variant for c in registry.controls("dictionary")}
"""Method-level controls (result-row name -> :data:`auditkit.methods.pursuit.dictionaries.CONTROLS` key): the same
activations coded against a random dictionary of the real one's shape. A filter over the control registry (stage
``dictionary``, :mod:`auditkit.controls`)."""


@dataclass(frozen=True, kw_only=True)
class PursuitAuditOptions:
    """How the ``pursuit`` method codes every arm's activations."""

    dictionary: str = "embed"
    """One of :data:`DICTIONARIES`."""
    solver: str = "omp"
    """One of :data:`SOLVERS`."""
    ks: tuple[int, ...] = (1, 2, 4, 8)
    """Target L0 sweep of the greedy solvers (clipped to min(F, D)); the largest is the default L0
    whose codes feed the code probe. OMP gives the whole sweep from one run (it is greedy)."""
    alphas: tuple[float, ...] = (0.5, 0.3, 0.2)
    """Lasso sweep: penalties as fractions of the arm's alpha_max = max_n,j |x_n . w_j| (all codes
    zero at 1); the smallest gives the code probe's codes. Arms are matched in penalty, not in L0: read
    each ``fvu@alpha`` with its ``mean_l0@alpha`` (a random dictionary spends more atoms at one alpha)."""
    center: bool = True
    """Code ``x - mean(x)`` (the arm's own mean over all its rows; for an SAE, ``x - b_dec``), so the
    dictionary explains the variation that FVU measures rather than spending atoms on the mean."""
    dictionary_controls: tuple[str, ...] = tuple(DICTIONARY_CONTROLS)
    """Random-dictionary controls to run (see :data:`DICTIONARY_CONTROLS`)."""
    sae_path: str | None = None
    """``dictionary=sae``: a saved SAE folder or sae-lens release to use for every arm; None trains a
    small TopK SAE on each arm's own activations (same budget, seed derived from the arm)."""
    sae_expansion: float = 4.0
    """Trained SAE width as a multiple of d_model."""
    sae_k: int = 8
    """Active latents of the trained TopK SAE."""
    sae_tokens: int = 100_000
    """Training budget (rows seen) of each trained SAE."""
    code_probe_C: float = 1.0
    """Inverse L2 strength of the logistic probe fitted on the codes."""

    def __post_init__(self) -> None:
        for bad, why in [
            (
                self.dictionary not in DICTIONARIES,
                f"--dictionary {self.dictionary!r} unknown: use one of {list(DICTIONARIES)}",
            ),
            (self.solver not in SOLVERS, f"--pursuit-solver {self.solver!r} unknown: use one of {list(SOLVERS)}"),
            (not self.ks or min(self.ks) < 1, f"--pursuit-k {self.ks} needs positive integers (e.g. 1,2,4,8)"),
            (
                not self.alphas or not all(0 < a < 1 for a in self.alphas),
                f"--pursuit-alphas {self.alphas} needs fractions of alpha_max in (0, 1) (e.g. 0.5,0.3,0.2)",
            ),
            (
                any(c not in DICTIONARY_CONTROLS for c in self.dictionary_controls),
                f"dictionary controls {self.dictionary_controls} unknown: use some of {list(DICTIONARY_CONTROLS)}",
            ),
            (self.sae_path is not None and self.dictionary != "sae", "--pursuit-sae needs --dictionary sae"),
            (
                self.sae_expansion <= 0 or self.sae_k < 1 or self.sae_tokens < 1,
                "SAE expansion, k and tokens must be > 0",
            ),
            (
                not (math.isfinite(self.code_probe_C) and self.code_probe_C > 0),
                f"code_probe_C must be finite and > 0, got {self.code_probe_C}",
            ),
        ]:
            if bad:
                raise ConfigError(why)


DICTIONARY_CONTROL_DESCRIPTIONS = {c.name: c.description for c in registry.controls("dictionary")}
"""One sentence per dictionary control on what it destroys, for the report (the registered controls')."""
