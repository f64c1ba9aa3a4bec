"""Train sparse autoencoders with sae-lens on activations auditkit has already extracted.

sae-lens trains from a *data provider*: any iterator of [batch, d_in] activation tensors
(``sae_lens.training.types.DataProvider``). Its language-model runner builds one from a model and a
text dataset; auditkit already has the activations (an ``ActivationSet.acts_ND``), so
:class:`TensorBatches` is that iterator over an in-memory tensor, and everything else, the SAE classes
(TopK, standard ReLU + L1, JumpReLU), the optimiser, learning-rate and sparsity-coefficient schedules,
dead-latent tracking for the TopK auxiliary loss, gradient clipping, the activation-norm scaler and its
folding into the weights, is sae-lens's own :class:`~sae_lens.training.sae_trainer.SAETrainer`.

We drive the trainer through its public per-step seams (``step``, ``maybe_reset_sparsity``,
``set_final_sae_metadata``), exactly as sae-lens's own ``MultiSAETrainer`` does, rather than calling
``SAETrainer.fit``: ``fit`` refreshes its progress bar only every 100 steps (a whole short run here)
and cannot turn it off. Nothing is logged to wandb (``LoggingConfig(log_to_wandb=False)``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from jaxtyping import Float
from tqdm.auto import tqdm

from auditkit.errors import ConfigError, DataError
from auditkit.linalg import cosine_floor
from auditkit.seeding import derive_seed, torch_generator

logger = logging.getLogger(__name__)

Architecture = Literal["topk", "standard", "jumprelu"]
_ARCHITECTURES = ("topk", "standard", "jumprelu")
TRAINING_STATS_KEY = "auditkit_training"
"""Key under ``sae.cfg.metadata`` holding :class:`SAETrainStats` (saved with the SAE's cfg.json)."""


@dataclass(frozen=True, kw_only=True)
class SAEConfig:
    """How to train one sparse autoencoder on an [N, D] activation tensor.

    The defaults train a TopK SAE with 4x expansion (F = 2,304 for D = 576, the embedded SmolLM2-135M)
    on a 400k-token budget, about two minutes on a 2-core CPU (see bench/bench_sae.py).
    """

    architecture: Architecture = "topk"
    """``topk`` (Gao et al., 2024), ``standard`` (ReLU with an L1 penalty on decoder-norm-weighted
    latents, Anthropic's April 2024 update) or ``jumprelu`` (Rajamanoharan et al., 2024)."""
    expansion_factor: float = 4.0
    """Dictionary size F as a multiple of D (ignored when ``width`` is set)."""
    width: int | None = None
    """Dictionary size F; overrides ``expansion_factor``."""
    k: int = 32
    """Active latents per token (``topk`` only)."""
    l1_coefficient: float = 5.0
    """Weight of the L1 sparsity penalty (``standard`` only), on activations normalised to mean norm
    sqrt(D) when ``normalize_activations`` is on."""
    l0_coefficient: float = 1.0
    """Weight of the (straight-through) L0 penalty (``jumprelu`` only)."""
    jumprelu_init_threshold: float = 0.5
    """Initial JumpReLU threshold (``jumprelu`` only). sae-lens's default 0.01 leaves ~70% of latents
    active after a 100-step run (Adam moves the threshold by about ``lr`` per step); 0.5 on inputs of
    mean norm sqrt(D) gave L0 ~60 of 2,304 on SmolLM2 layer 15 after 25 steps."""
    lr: float = 1e-3
    """Adam learning rate."""
    lr_decay_fraction: float = 0.2
    """Fraction of the steps, at the end, over which the learning rate decays linearly to zero."""
    sparsity_warm_up_fraction: float = 0.05
    """Fraction of the steps over which the L1/L0 coefficient ramps up from zero (not ``topk``)."""
    training_tokens: int = 400_000
    """Token budget: rows seen during training, repeating the data in fresh random orders as needed."""
    batch_size: int = 4096
    """Rows per optimiser step (capped at N)."""
    normalize_activations: bool = True
    """Scale inputs to mean norm sqrt(D) while training (sae-lens's ``expected_average_only_in``) and
    fold the scale into the weights afterwards, so coefficients mean the same at every layer."""
    dead_feature_window: int | None = None
    """Steps without firing after which a latent counts as dead for the TopK auxiliary loss; None
    means a fifth of the run (at least 10 steps), since sae-lens's default of 1,000 steps is longer
    than a whole CPU-sized run."""
    device: str = "cpu"
    """Torch device for training (the audit passes the device its model ran on). Initial weights and batch
    orders are drawn on the CPU whatever it is, so a seed starts from the same SAE on every device."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        for bad, why in [
            (self.architecture not in _ARCHITECTURES, f"architecture {self.architecture!r}: use {_ARCHITECTURES}"),
            (self.expansion_factor <= 0, f"expansion_factor must be > 0, got {self.expansion_factor}"),
            (self.width is not None and self.width < 1, f"width must be >= 1, got {self.width}"),
            (self.k < 1, f"k must be >= 1, got {self.k}"),
            (self.width is not None and self.k > self.width, f"k={self.k} exceeds width={self.width}"),
            (self.l1_coefficient < 0 or self.l0_coefficient < 0, "sparsity coefficients must be >= 0"),
            (self.jumprelu_init_threshold < 0, "jumprelu_init_threshold must be >= 0"),
            (not self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (not 0 <= self.lr_decay_fraction < 1, f"lr_decay_fraction must be in [0, 1), got {self.lr_decay_fraction}"),
            (not 0 <= self.sparsity_warm_up_fraction < 1, "sparsity_warm_up_fraction must be in [0, 1)"),
            (self.training_tokens < 1, f"training_tokens must be >= 1, got {self.training_tokens}"),
            (self.batch_size < 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.dead_feature_window is not None and self.dead_feature_window < 1, "dead_feature_window must be >= 1"),
        ]:
            if bad:
                raise ConfigError(f"SAE config: {why}")

    def d_sae(self, d_in: int) -> int:
        """Dictionary size F for inputs of width ``d_in``."""
        return self.width if self.width is not None else max(1, round(self.expansion_factor * d_in))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, kw_only=True)
class SAETrainStats:
    """What happened during training (stored in ``sae.cfg.metadata['auditkit_training']``)."""

    seed: int
    """Seed the run was given."""
    n_steps: int
    """Optimiser steps taken."""
    n_tokens: int
    """Rows seen (``n_steps * batch_size``)."""
    n_rows: int
    """Distinct rows in the training tensor."""
    seconds: float
    """Wall time of the training loop (excluding norm estimation)."""
    tokens_per_second: float
    """Training throughput."""
    final_losses: dict[str, float]
    """Each loss term averaged over the last 10% of steps."""
    train_l0: float
    """Mean active latents per row over sae-lens's last sparsity window."""
    train_dead_latents: int
    """Latents that had not fired for ``dead_feature_window`` steps at the end."""
    scaling_factor: float | None
    """Input scale used during training (folded into the returned weights)."""
    config: dict[str, Any]
    """The :class:`SAEConfig` as a dict."""


class TensorBatches:
    """sae-lens data provider over an in-memory [N, D] tensor: fixed-size random batches, forever.

    Each epoch is a fresh permutation from a private generator; a batch that crosses an epoch boundary
    takes the rest of one permutation and the start of the next, so every batch has exactly
    ``batch_size`` rows (sae-lens counts samples per step from its config, not from the batch).
    """

    def __init__(self, acts_ND: Float[torch.Tensor, "N D"], batch_size: int, *, seed: int) -> None:
        self.acts_ND = acts_ND
        self.batch_size = min(batch_size, acts_ND.shape[0])
        self._gen = torch_generator(seed)
        self._order = torch.empty(0, dtype=torch.int64, device="cpu")

    def __iter__(self) -> TensorBatches:
        return self

    def __next__(self) -> Float[torch.Tensor, "B D"]:
        while self._order.numel() < self.batch_size:
            fresh = torch.randperm(self.acts_ND.shape[0], generator=self._gen, device="cpu")
            self._order = torch.cat([self._order, fresh])
        take, self._order = self._order[: self.batch_size], self._order[self.batch_size :]
        return self.acts_ND.index_select(0, take.to(self.acts_ND.device))


def _training_sae(cfg: SAEConfig, d_in: int, n_steps: int, seed: int) -> Any:
    """A freshly initialised sae-lens TrainingSAE, weights drawn from ``seed`` (no global RNG)."""
    from sae_lens import JumpReLUTrainingSAEConfig, StandardTrainingSAEConfig, TopKTrainingSAEConfig
    from sae_lens.saes.sae import TrainingSAE

    common: dict[str, Any] = dict(
        d_in=d_in,
        d_sae=cfg.d_sae(d_in),
        dtype="float32",
        device=cfg.device,
        normalize_activations="expected_average_only_in" if cfg.normalize_activations else "none",
    )
    warm = int(cfg.sparsity_warm_up_fraction * n_steps)
    if cfg.architecture == "topk":
        if cfg.k > common["d_sae"]:
            raise ConfigError(f"SAE config: k={cfg.k} exceeds the dictionary size {common['d_sae']}")
        sae_cfg: Any = TopKTrainingSAEConfig(k=cfg.k, **common)
    elif cfg.architecture == "standard":
        sae_cfg = StandardTrainingSAEConfig(l1_coefficient=cfg.l1_coefficient, l1_warm_up_steps=warm, **common)
    else:
        sae_cfg = JumpReLUTrainingSAEConfig(
            l0_coefficient=cfg.l0_coefficient,
            l0_warm_up_steps=warm,
            jumprelu_init_threshold=cfg.jumprelu_init_threshold,
            **common,
        )
    sae = TrainingSAE.from_dict(sae_cfg.to_dict())
    _reinitialise(sae, seed)
    return sae


@torch.no_grad()
def _reinitialise(sae: Any, seed: int) -> None:
    """Redraw sae-lens's initialisation from a private generator (sae-lens draws from the global one).

    Same scheme as ``TrainingSAE.initialize_weights``: Kaiming-uniform decoder rows rescaled to norm
    ``decoder_init_norm`` (0.1, Anthropic's April 2024 update), encoder = decoder transpose, biases zero
    (``train_sae`` then starts the decoder bias at the geometric median of the data).
    """
    F, D = sae.W_dec.shape
    bound = math.sqrt(6.0 / D)
    # Drawn and normalised on the CPU (the same start on every device); copy_ moves it to the SAE's device.
    draw = torch.rand(F, D, generator=torch_generator(derive_seed(seed, "sae-init")), device="cpu")
    W_dec_FD = draw * (2 * bound) - bound
    if sae.cfg.decoder_init_norm is not None:
        W_dec_FD = W_dec_FD / W_dec_FD.norm(dim=-1, keepdim=True) * sae.cfg.decoder_init_norm
    sae.W_dec.data.copy_(W_dec_FD)
    sae.W_enc.data.copy_(W_dec_FD.T)


@torch.no_grad()
def geometric_median(
    x_ND: Float[torch.Tensor, "N D"], *, seed: int, max_rows: int = 4096, n_iter: int = 30
) -> Float[torch.Tensor, " D"]:
    """Geometric median of the rows (Weiszfeld's algorithm, on at most ``max_rows`` random rows).

    The decoder bias starts here, as in Bricken et al. (2023, "Towards monosemanticity"): residual
    streams have a large mean that a zero-initialised bias needs more steps to learn than a CPU-sized run
    has, and a few massive-activation rows would drag an arithmetic mean away from typical tokens.
    """
    if x_ND.shape[0] > max_rows:
        pick = torch.randperm(x_ND.shape[0], generator=torch_generator(seed), device="cpu")[:max_rows]
        x_ND = x_ND[pick.to(x_ND.device)]
    x = x_ND.to(torch.float64)
    m_D = x.median(dim=0).values
    for _ in range(n_iter):
        w_N = 1.0 / (x - m_D).norm(dim=1).clamp_min(1e-8)
        m_D = (w_N[:, None] * x).sum(0) / w_N.sum()
    return m_D.to(x_ND.dtype)


def _trainer_config(cfg: SAEConfig, n_steps: int, batch_size: int) -> Any:
    from sae_lens.config import LoggingConfig, SAETrainerConfig

    return SAETrainerConfig(
        total_training_samples=n_steps * batch_size,
        train_batch_size_samples=batch_size,
        lr=cfg.lr,
        lr_end=cfg.lr,
        lr_scheduler_name="constant",
        lr_warm_up_steps=0,
        lr_decay_steps=int(cfg.lr_decay_fraction * n_steps),
        device=cfg.device,
        dead_feature_window=cfg.dead_feature_window or max(10, n_steps // 5),
        feature_sampling_window=max(1, n_steps),
        checkpoint_path=None,
        save_final_checkpoint=False,
        logger=LoggingConfig(log_to_wandb=False),
    )


def _prepared(
    acts_ND: Float[torch.Tensor, "N D"], cfg: SAEConfig, seed: int
) -> tuple[Any, TensorBatches, int, float | None]:
    """The TrainingSAE exactly as training starts it: (sae, batches, n_steps, input scaling factor).

    Weights from :func:`_training_sae` (sae-lens's init scheme, drawn from ``seed``), decoder bias at the
    geometric median of the rows, in the scaled input space when ``cfg.normalize_activations``.
    """
    if acts_ND.ndim != 2 or acts_ND.shape[0] < 2:
        raise DataError(f"train_sae needs an [N, D] tensor with N >= 2, got shape {tuple(acts_ND.shape)}")
    if not bool(torch.isfinite(acts_ND).all()):
        raise DataError("SAE training activations contain NaN/inf: check the extraction")
    acts_ND = acts_ND.to(device=cfg.device, dtype=torch.float32)
    batches = TensorBatches(acts_ND, cfg.batch_size, seed=derive_seed(seed, "sae-batches"))
    n_steps = max(1, math.ceil(cfg.training_tokens / batches.batch_size))
    sae = _training_sae(cfg, acts_ND.shape[1], n_steps, seed)
    # sae-lens's estimate_scaling_factor (sqrt(D) / mean row norm) on every row rather than a sample of
    # batches: exact, and cheap for an in-memory tensor.
    scaling_factor = (
        math.sqrt(acts_ND.shape[1]) / float(acts_ND.norm(dim=1).mean()) if cfg.normalize_activations else None
    )
    with torch.no_grad():
        sae.b_dec.copy_(geometric_median(acts_ND, seed=derive_seed(seed, "sae-b-dec")) * (scaling_factor or 1.0))
    return sae, batches, n_steps, scaling_factor


def initial_sae(acts_ND: Float[torch.Tensor, "N D"], cfg: SAEConfig, *, seed: int) -> Any:
    """The inference SAE that :func:`train_sae` with the same ``cfg`` and ``seed`` starts from (no step taken).

    Same init code, seed, decoder-bias start and input scaling (folded into the weights) as training, so it
    is the ``sae-untrained`` baseline of the audit: what the architecture and its initialisation give for free.
    """
    sae, _, _, scaling_factor = _prepared(acts_ND, cfg, seed)
    if scaling_factor is not None:
        sae.fold_activation_norm_scaling_factor(scaling_factor)
    return to_inference_sae(sae)


@torch.no_grad()
def _freeze_decoder(sae: Any, W_dec_FD: torch.Tensor, scaling_factor: float | None) -> None:
    """Fix the decoder at ``W_dec_FD`` (raw-activation units) and restart the encoder from it.

    The encoder starts as the frozen decoder's transpose with rows of sae-lens's ``decoder_init_norm``,
    the init scheme of every other SAE here; the decoder's ``requires_grad`` is off, so Adam (which skips
    parameters without a gradient) trains only the encoder and the biases.
    """
    if tuple(W_dec_FD.shape) != tuple(sae.W_dec.shape):
        raise ConfigError(f"frozen decoder of shape {tuple(W_dec_FD.shape)} for an SAE of {tuple(sae.W_dec.shape)}")
    W = W_dec_FD.to(device=sae.W_dec.device, dtype=sae.W_dec.dtype) * (scaling_factor or 1.0)
    sae.W_dec.copy_(W)
    unit = W / W.norm(dim=1, keepdim=True).clamp_min(1e-12)
    sae.W_enc.copy_((unit * (sae.cfg.decoder_init_norm or 1.0)).T)
    sae.W_dec.requires_grad_(False)


def train_sae(
    acts_ND: Float[torch.Tensor, "N D"],
    cfg: SAEConfig,
    *,
    seed: int,
    frozen_decoder_FD: Float[torch.Tensor, "F D"] | None = None,
    frozen_encoder: bool = False,
    decoder_min_cosine: float | None = None,
) -> Any:
    """Train an SAE on ``acts_ND`` (rows are tokens) and return the sae-lens *inference* SAE.

    The returned object is a ``sae_lens.SAE`` (``TopKSAE``, ``StandardSAE`` or ``JumpReLUSAE``) that
    works on raw activations (any training-time input scaling is folded into its weights); its
    ``cfg.metadata['auditkit_training']`` holds :class:`SAETrainStats` as a dict (``training_stats``).
    Constraints, for the SAE baselines (same rows, budget and seed otherwise):

    * ``frozen_decoder_FD`` (raw-activation units) fixes the decoder and trains only the encoder and biases
      (``sae-frozen-decoder``); a TopK SAE's inference form has unit decoder rows either way;
    * ``frozen_encoder`` fixes W_enc at its initialisation and trains the decoder, the biases and any
      threshold (``sae-frozen-encoder``);
    * ``decoder_min_cosine`` trains the decoder but, after every optimiser step, rotates each decoder row
      back to cosine >= this value to its initial row (:func:`auditkit.linalg.cosine_floor`; projected
      Adam), the ``sae-soft-frozen-decoder`` baseline.
    """
    from sae_lens.training.sae_trainer import SAETrainer

    sae, batches, n_steps, scaling_factor = _prepared(acts_ND, cfg, seed)
    if frozen_decoder_FD is not None:
        _freeze_decoder(sae, frozen_decoder_FD, scaling_factor)
    sae.W_enc.requires_grad_(not frozen_encoder)  # Adam skips a parameter that never gets a gradient
    trainer = SAETrainer(cfg=_trainer_config(cfg, n_steps, batches.batch_size), sae=sae, data_provider=batches)
    trainer.activation_scaler.scaling_factor = scaling_factor
    seconds, losses = _run_steps(trainer, batches, n_steps, cfg.progress, _decoder_floor(sae, decoder_min_cosine))
    sae.W_dec.requires_grad_(True)
    sae.W_enc.requires_grad_(True)
    if trainer.activation_scaler.scaling_factor is not None:
        sae.fold_activation_norm_scaling_factor(trainer.activation_scaler.scaling_factor)
        trainer.activation_scaler.scaling_factor = None
    trainer.set_final_sae_metadata()
    stats = SAETrainStats(
        seed=seed,
        n_steps=n_steps,
        n_tokens=n_steps * batches.batch_size,
        n_rows=int(acts_ND.shape[0]),
        seconds=seconds,
        tokens_per_second=n_steps * batches.batch_size / max(seconds, 1e-9),
        final_losses=losses,
        train_l0=float(sae.cfg.metadata.l0 or 0.0),
        train_dead_latents=int(sae.cfg.metadata.num_dead_features or 0),
        scaling_factor=scaling_factor,
        config=cfg.to_dict(),
    )
    logger.info("trained %s SAE: %d steps, %.0f tokens/s", cfg.architecture, n_steps, stats.tokens_per_second)
    return to_inference_sae(sae, stats)


def _decoder_floor(sae: Any, min_cosine: float | None) -> Callable[[], None] | None:
    """What to run after each step to keep the decoder rows at cosine >= ``min_cosine`` to where they start."""
    if min_cosine is None:
        return None
    if not 0 < min_cosine <= 1:
        raise ConfigError(f"decoder_min_cosine must be in (0, 1], got {min_cosine}")
    anchor_FD = sae.W_dec.detach().clone()

    @torch.no_grad()
    def project() -> None:
        sae.W_dec.copy_(cosine_floor(sae.W_dec, anchor_FD, min_cosine))

    return project


def _run_steps(
    trainer: Any, batches: TensorBatches, n_steps: int, progress: bool, after_step: Callable[[], None] | None = None
) -> tuple[float, dict[str, float]]:
    """The loop of ``SAETrainer.fit`` minus wandb and checkpoints (``after_step`` runs after each optimiser
    step); returns (seconds, tail-mean losses)."""
    tail = max(1, n_steps // 10)
    sums: dict[str, float] = {}
    start = time.perf_counter()
    with tqdm(total=n_steps * batches.batch_size, desc="Training SAE", unit="tok", disable=not progress) as bar:
        for step in range(n_steps):
            # No maybe_reset_sparsity(): feature_sampling_window is the whole run, so sae-lens's
            # firing statistics cover every step and feed set_final_sae_metadata().
            out = trainer.step(next(batches))
            if after_step is not None:
                after_step()
            trainer.n_training_steps += 1
            if step >= n_steps - tail:
                for name, value in out.losses.items():
                    sums[name] = sums.get(name, 0.0) + float(value.detach())
            bar.update(batches.batch_size)
            if step % 10 == 0 or step == n_steps - 1:
                bar.set_postfix(mse=f"{float(out.losses['mse_loss'].detach()):.4g}")
    return time.perf_counter() - start, {k: v / tail for k, v in sums.items()}


@torch.no_grad()
def to_inference_sae(training_sae: Any, stats: SAETrainStats | None = None) -> Any:
    """The sae-lens inference SAE equivalent to ``training_sae`` (what ``save_inference_model`` writes)."""
    from sae_lens import SAE

    state = {k: v.detach().clone() for k, v in training_sae.state_dict().items()}
    training_sae.process_state_dict_for_saving_inference(state)
    cfg_dict = training_sae.cfg.get_inference_sae_cfg_dict()
    if stats is not None:
        cfg_dict["metadata"][TRAINING_STATS_KEY] = dataclasses.asdict(stats)
    sae = SAE.from_dict(cfg_dict)
    sae.process_state_dict_for_loading(state)
    sae.load_state_dict(state)
    return sae.eval()


def training_stats(sae: Any) -> SAETrainStats | None:
    """The :class:`SAETrainStats` recorded by :func:`train_sae`, or None for an SAE trained elsewhere."""
    raw = sae.cfg.metadata.get(TRAINING_STATS_KEY)
    return SAETrainStats(**raw) if raw else None
