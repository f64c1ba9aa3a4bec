"""Options of the audit's ``pursuit`` method (one field of :class:`auditkit.audit.AuditConfig`).

Kept in its own module so that ``audit.py`` only names one field, and the runner
(:mod:`auditkit.audit_pursuit`) can import the audit without an import cycle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from auditkit.errors import ConfigError
from auditkit.shell import display_path

DICTIONARIES = ("embed", "unembed", "sae", "probe")
"""Where the dictionary's atoms come from: token embeddings W_E rows, unembedding W_U columns, the
decoder of an SAE, or the directions of logistic probes fitted on the train split."""
SOLVERS = ("omp", "gradient", "lasso", "nn-lasso")
"""Sparse coders: orthogonal matching pursuit, gradient pursuit, lasso, non-negative lasso."""
DICTIONARY_CONTROLS = {"gaussian-dict": "gaussian", "spectral-dict": "spectrum-matched"}
"""Method-level controls (result-row name -> :data:`auditkit.dictionaries.CONTROLS` key): the same
activations coded against a random dictionary of the real one's shape."""


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
            (self.dictionary not in DICTIONARIES, f"--dictionary {self.dictionary!r} unknown: use one of {list(DICTIONARIES)}"),
            (self.solver not in SOLVERS, f"--pursuit-solver {self.solver!r} unknown: use one of {list(SOLVERS)}"),
            (not self.ks or min(self.ks) < 1, f"--pursuit-k {self.ks} needs positive integers (e.g. 1,2,4,8)"),
            (not self.alphas or not all(0 < a < 1 for a in self.alphas),
             f"--pursuit-alphas {self.alphas} needs fractions of alpha_max in (0, 1) (e.g. 0.5,0.3,0.2)"),
            (any(c not in DICTIONARY_CONTROLS for c in self.dictionary_controls),
             f"dictionary controls {self.dictionary_controls} unknown: use some of {list(DICTIONARY_CONTROLS)}"),
            (self.sae_path is not None and self.dictionary != "sae", "--pursuit-sae needs --dictionary sae"),
            (self.sae_expansion <= 0 or self.sae_k < 1 or self.sae_tokens < 1, "SAE expansion, k and tokens must be > 0"),
            (not (math.isfinite(self.code_probe_C) and self.code_probe_C > 0),
             f"code_probe_C must be finite and > 0, got {self.code_probe_C}"),
        ]:  # fmt: skip
            if bad:
                raise ConfigError(why)

    def cli_args(self) -> list[tuple[str, object]]:
        """The ``auditkit audit`` options that reproduce these options, as ``(flag, value)`` pairs for
        :func:`auditkit.shell.command_line`."""
        sweep = ("--pursuit-k", self.ks) if self.solver in ("omp", "gradient") else ("--pursuit-alphas", self.alphas)
        return [
            ("--dictionary", self.dictionary), ("--pursuit-solver", self.solver), sweep,
            ("--pursuit-sae", display_path(self.sae_path) if self.sae_path else None),
            ("--pursuit-no-center", not self.center),
        ]  # fmt: skip


def parse_list(value: str, kind: type, option: str) -> tuple:
    """``"1,2,4"`` -> ``(1, 2, 4)`` as ``kind``; a bad item raises a one-line ConfigError."""
    try:
        return tuple(kind(v.strip()) for v in value.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{option} {value!r} is not a comma-separated list of {kind.__name__}s") from None

DICTIONARY_CONTROL_DESCRIPTIONS = {
    "gaussian-dict": "Destroys every learned direction of the dictionary and its spectrum: the real activations coded "
    "against i.i.d. Gaussian unit atoms of the same number and width (one draw per seed).",
    "spectral-dict": "Destroys which directions the dictionary holds but keeps how much of the space it covers and how "
    "anisotropically: the real dictionary's singular values with Haar-random singular vectors, rows renormalised.",
}
"""One sentence per dictionary control on what it destroys, for the report."""
