"""Options of the audit's ``sae`` method: one frozen config (a field of ``AuditConfig``) and its CLI form.

Kept apart from :mod:`auditkit.audit_sae` so that building an audit config never imports sae-lens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from auditkit.controls import ALL_CONTROLS, TOKEN_CONTROLS
from auditkit.errors import ConfigError
from auditkit.shell import display_path

SAE_ARCHITECTURES = ("topk", "standard", "jumprelu")
SAE_RUNNER = "auditkit.audit_sae:run_sae_method"
"""The ``sae`` method's runner (``auditkit.audit.RUNNERS``)."""
SAE_DEFAULT_CONTROLS = (*TOKEN_CONTROLS, "spectral-reinit", "gaussian-reinit")
"""Controls run by default: the ones an unsupervised method can be run against (step0 needs the hub)."""
SAE_CONTROLS = ALL_CONTROLS
"""Controls that apply: token and weight controls to every metric (a fresh SAE per arm); label controls
(opt-in) to the k-sparse-probing metrics only, reusing the real arm's SAE latents with the control's labels,
since the SAE itself never sees a label."""


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
        from auditkit.methods.sae_train import SAEConfig

        kw: dict[str, Any] = dict(
            architecture=self.architecture, expansion_factor=self.expansion_factor, width=self.width, k=self.k,
            l1_coefficient=self.l1_coefficient, lr=self.lr, training_tokens=self.training_tokens,
            batch_size=self.batch_size, progress=False,
        )  # fmt: skip
        return SAEConfig(**(kw | overrides))

    def cli_args(self) -> list[tuple[str, object]]:
        """The ``auditkit audit`` options that reproduce these settings, as ``(flag, value)`` pairs for
        :func:`auditkit.shell.command_line`."""
        width = str(self.width) if self.width is not None else f"{float(self.expansion_factor)!r}x"
        return [
            ("--sae-arch", self.architecture), ("--sae-width", width), ("--sae-k", self.k),
            ("--sae-l1", float(self.l1_coefficient)), ("--sae-lr", float(self.lr)), ("--sae-tokens", self.training_tokens),
            ("--sae-batch-size", self.batch_size), ("--sae-splice-texts", self.splice_texts),
            ("--sae-load", display_path(self.load) if self.load else None),
        ]  # fmt: skip
