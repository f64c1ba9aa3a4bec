"""A synthetic model with known features, from sae-lens's SynthSAEBench (``sae_lens.synthetic``), at CPU size.

``x = a W_true + b``: ``G`` true features, unit directions ``W_true`` [G, D] in ``D < G`` dimensions
(superposition), a fixed bias ``b``, and sparse non-negative activations ``a`` with Zipfian firing
probabilities, a feature hierarchy (a child fires only with its parent; some parents' children mutually
exclusive), low-rank correlations between firings, and noisy magnitudes. Everything here is sae-lens's
``SyntheticModel``; this module only states auditkit's small default sizes and draws rows from a seed.

sae-lens's sampler draws from torch's global generator and takes no generator argument, so
:func:`sample_rows` runs it inside ``sae_lens.util.temporary_seed`` (``torch.random.fork_rng``): the global
state is saved, seeded from ``seed`` and restored afterwards, so no caller's randomness moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float

from auditkit.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class SynthModelOptions:
    """The synthetic model: sizes and the structure of its features (sae-lens ``SyntheticModelConfig``)."""

    n_features: int = 256
    """G, the number of true features."""
    hidden_dim: int = 64
    """D, the activation width (D < G puts the features in superposition)."""
    zipf_exponent: float = 0.5
    """Exponent of the Zipfian firing probabilities (feature i fires with probability ~ 1 / i^exponent)."""
    max_prob: float = 0.4
    """Firing probability of the most frequent feature."""
    min_prob: float = 0.02
    """Firing probability of the rarest feature."""
    hierarchy_roots: int | None = None
    """Parent features, each with ``hierarchy_branching`` children that fire only with it (0: no hierarchy;
    None: G // 16, so a quarter of the features are in the hierarchy at the default branching)."""
    hierarchy_branching: int = 3
    """Children per parent."""
    mutually_exclusive: float = 0.5
    """Share of parents whose children are mutually exclusive (at most one fires)."""
    correlation_rank: int = 8
    """Rank of the low-rank correlation between feature firings (0: independent firings)."""
    correlation_scale: float = 0.1
    """Strength of those correlations."""
    magnitude_std: float = 0.2
    """Standard deviation of a firing feature's magnitude (mean 1)."""
    seed: int = 0
    """Seed of the model itself (directions, probabilities, hierarchy, correlations); rows are drawn per run seed."""

    def __post_init__(self) -> None:
        for bad, why in [
            (
                self.n_features < 2 or self.hidden_dim < 2,
                (f"n_features and hidden_dim must be >= 2, got {self.n_features} and {self.hidden_dim}"),
            ),
            (
                not 0 < self.min_prob <= self.max_prob <= 1,
                (f"need 0 < min_prob <= max_prob <= 1, got {self.min_prob} and {self.max_prob}"),
            ),
            (self.roots < 0 or self.correlation_rank < 0, "hierarchy_roots and correlation_rank must be >= 0"),
            (
                self.roots * (1 + self.hierarchy_branching) > self.n_features,
                (f"{self.roots} roots x (1 + {self.hierarchy_branching} children) exceed {self.n_features} features"),
            ),
            (self.roots > 0 and self.hierarchy_branching < 2, "hierarchy_branching must be >= 2"),
            (
                not 0 <= self.mutually_exclusive <= 1,
                f"mutually_exclusive must be in [0, 1], got {self.mutually_exclusive}",
            ),
            (self.magnitude_std < 0 or self.zipf_exponent < 0, "magnitude_std and zipf_exponent must be >= 0"),
        ]:
            if bad:
                raise ConfigError(f"synthetic model: {why}")

    @property
    def roots(self) -> int:
        """Parent features of the hierarchy (``hierarchy_roots`` resolved)."""
        return self.n_features // 16 if self.hierarchy_roots is None else self.hierarchy_roots


def build_synthetic_model(opts: SynthModelOptions) -> Any:
    """The sae-lens ``SyntheticModel`` of ``opts`` (deterministic in ``opts.seed``)."""
    from sae_lens.synthetic import (
        HierarchyConfig,
        LowRankCorrelationConfig,
        SyntheticModel,
        SyntheticModelConfig,
        ZipfianFiringProbabilityConfig,
    )

    hierarchy = None
    if opts.roots:
        hierarchy = HierarchyConfig(
            total_root_nodes=opts.roots,
            branching_factor=opts.hierarchy_branching,
            max_depth=1,
            mutually_exclusive_portion=opts.mutually_exclusive,
        )
    correlation = None
    if opts.correlation_rank:
        correlation = LowRankCorrelationConfig(rank=opts.correlation_rank, correlation_scale=opts.correlation_scale)
    cfg = SyntheticModelConfig(
        num_features=opts.n_features,
        hidden_dim=opts.hidden_dim,
        hierarchy=hierarchy,
        correlation=correlation,
        firing_probability=ZipfianFiringProbabilityConfig(
            exponent=opts.zipf_exponent, max_prob=opts.max_prob, min_prob=opts.min_prob
        ),
        std_firing_magnitudes=opts.magnitude_std,
        mean_firing_magnitudes=1.0,
        seed=opts.seed,
    )
    return SyntheticModel(cfg)


@dataclass(frozen=True)
class SynthRows:
    """Rows drawn from a synthetic model, with the truth behind them."""

    x_ND: Float[torch.Tensor, "N D"]
    """Activations."""
    acts_NG: Float[torch.Tensor, "N G"]
    """The true feature activations that made them (non-negative; > 0 where a feature fires)."""


def sample_rows(model: Any, n: int, *, seed: int) -> SynthRows:
    """``n`` rows of ``model`` drawn from ``seed`` (global torch state untouched; see the module docstring)."""
    from sae_lens.util import temporary_seed

    with temporary_seed(int(seed)):
        x, acts = model.sample_with_features(n)
    return SynthRows(x_ND=x.detach().float(), acts_NG=acts.detach().float())


def true_dictionary(model: Any) -> tuple[Float[torch.Tensor, "G D"], Float[torch.Tensor, " D"]]:
    """The true feature directions [G, D] and the bias [D] of ``model``."""
    fd = model.feature_dict
    return fd.feature_vectors.detach().float(), fd.bias.detach().float()
