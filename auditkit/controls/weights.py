"""Weight controls: a model in, a new model out, with what training put into the weights destroyed.

Applied to *unprocessed* weights (no LayerNorm folding or centring), then run through the same
extraction as the real arm. The input model is never modified.

``spectral_reinit`` keeps every weight matrix's singular values and replaces its singular vectors
by Haar-random ones, W = U S V^T -> U' S V'^T. What survives is the scale of every map (norms,
condition numbers, how much each layer amplifies); what is destroyed is every learned direction
and every alignment between layers. Rules:

* **Attention weights are treated per head** (each of W_Q, W_K, W_V [d_model, d_head] and
  W_O [d_head, d_model] of every head, and of every key/value head under grouped-query attention).
  Heads are separate linear maps in the forward pass: the singular values of W_Q^h and W_K^h set the
  scale of head h's attention logits, so keeping them per head keeps each head's attention
  sharpness; treating the layer's concatenated matrix would keep the layer's spectrum but mix scale
  between heads.
* MLP in, gate and out matrices, the token embedding, the position embedding and the unembedding
  are treated as one matrix each.
* **Tied embeddings stay tied**: when W_U equals W_E^T, W_E is transformed and W_U set to its transpose.
* **Biases** keep their norm and get a uniformly random direction (per head for per-head biases): a
  bias is a learned direction too, but its size sets the activations' offset scale.
* **Norm gains and norm biases** (LayerNorm/RMSNorm ``w`` and ``b``) are kept as they are: they act
  coordinate-wise, and the coordinates they would single out no longer mean anything once the
  matrices around them are randomised.

``gaussian_reinit`` is the control of Heap et al. (2025, "Sparse autoencoders can interpret randomly
initialized transformers"): every parameter tensor is resampled i.i.d. Gaussian with that tensor's own
mean and standard deviation, optionally keeping the token/position embeddings and the unembedding.
"""

from __future__ import annotations

import copy
import dataclasses
import gc
from typing import Any

import torch

from auditkit.controls.registry import controls as registry_controls
from auditkit.controls.registry import get
from auditkit.errors import ConfigError
from auditkit.linalg import spectrum_matched
from auditkit.seeding import derive_seed, torch_generator

EMBEDDING_PARAMS = ("embed.W_E", "pos_embed.W_pos", "unembed.W_U")


def _is_norm(name: str) -> bool:
    return name.split(".")[-2].startswith("ln") if "." in name else False


def _is_bias(name: str) -> bool:
    leaf = name.split(".")[-1]
    return leaf.startswith(("b_", "_b_")) or leaf == "b"


def _random_direction(b: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Same norm per last-axis vector, uniformly random direction."""
    g = torch.randn(b.shape, generator=gen, dtype=torch.float64, device=gen.device).to(b.device)
    g = g / g.norm(dim=-1, keepdim=True).clamp_min(1e-30)
    return (g * b.detach().to(torch.float64).norm(dim=-1, keepdim=True)).to(b.dtype)


def _spectral_tensor(p: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    if p.ndim in (2, 3):  # a matrix, or per-head matrices [H, a, b] treated one by one
        return spectrum_matched(p, gen)
    raise ConfigError(f"spectral reinit does not know how to treat a {p.ndim}-D weight of shape {tuple(p.shape)}")


def _tied(model: Any) -> bool:
    W_E, W_U = model.embed.W_E, model.unembed.W_U
    return W_E.shape == W_U.T.shape and torch.equal(W_E, W_U.T)


def _spectral_param(name: str, p: torch.Tensor, seed: int) -> torch.Tensor | None:
    """Spectral reinit of one parameter (None: kept as it is). Its own generator, ``derive_seed(seed,
    "spectral-reinit", name)``, so the result depends neither on parameter order nor on the other parameters."""
    if _is_norm(name):
        return None
    gen = torch_generator(derive_seed(seed, "spectral-reinit", name))
    return _random_direction(p, gen) if _is_bias(name) else _spectral_tensor(p, gen)


def _gaussian_param(name: str, p: torch.Tensor, seed: int) -> torch.Tensor:
    """Gaussian reinit of one parameter: i.i.d. N(mean, std) of the tensor, own generator per name."""
    gen = torch_generator(derive_seed(seed, "gaussian-reinit", name))
    x = p.detach().to(torch.float64)
    std = float(x.std()) if x.numel() > 1 else 0.0
    mean = float(x.mean())
    del x  # the float64 copy of a large matrix (the embedding: 226 MB) is not kept while drawing
    draw = torch.randn(p.shape, generator=gen, dtype=torch.float64, device=gen.device).to(p.device)
    return draw.mul_(std).add_(mean).to(p.dtype)  # in place: the same float64 operations, one buffer fewer


@torch.no_grad()
def spectral_reinit(model: Any, seed: int) -> Any:
    """A copy of ``model`` whose weight matrices keep their singular values, with random singular vectors.

    Each parameter gets its own generator (``derive_seed(seed, name)``), so the result does not depend
    on parameter order.
    """
    new = copy.deepcopy(model)
    tied = _tied(model)
    for name, p in new.named_parameters():
        if tied and name == "unembed.W_U":
            continue
        value = _spectral_param(name, p, seed)
        if value is not None:
            p.copy_(value)
    if tied:
        new.unembed.W_U.copy_(new.embed.W_E.T)
    return new


@torch.no_grad()
def gaussian_reinit(model: Any, seed: int, *, keep_embeddings: bool = False) -> Any:
    """A copy of ``model`` with every parameter tensor resampled i.i.d. N(mean, std) of that tensor.

    With ``keep_embeddings``, W_E, W_pos and W_U keep their trained values.
    """
    new = copy.deepcopy(model)
    for name, p in new.named_parameters():
        if keep_embeddings and name in EMBEDDING_PARAMS:
            continue
        p.copy_(_gaussian_param(name, p, seed))
    return new


def spectral_reinit_model(model: Any, seed: int, *, keep_embeddings: bool = False) -> Any:
    """:func:`spectral_reinit` with the weight controls' ``apply`` signature (``keep_embeddings`` is
    ``gaussian-reinit``'s option: spectral reinit always treats the embeddings)."""
    return spectral_reinit(model, seed)


MATRICES = {"W_E": "embed.W_E", "W_U": "unembed.W_U"}
"""Embedding matrices a weight control can be applied to alone, by the name used on the command line."""


@torch.no_grad()
def reinit_matrix(model: Any, matrix: str, control: str, seed: int) -> torch.Tensor:
    """``matrix`` (``W_E`` [V, D] or ``W_U`` [D, V]) of the weight-control model ``control`` at ``seed``,
    computed without building that model: exactly what :func:`spectral_reinit` or :func:`gaussian_reinit`
    put there (same per-name generator; a tied W_U is the transpose of the reinitialised W_E)."""
    if matrix not in MATRICES:
        raise ConfigError(f"matrix {matrix!r} unknown: use one of {list(MATRICES)}")
    name = MATRICES[matrix]
    p = dict(model.named_parameters())[name]
    if control == "spectral-reinit":
        if matrix == "W_U" and _tied(model):
            return _spectral_param(MATRICES["W_E"], model.embed.W_E, seed).T.clone()
        return _spectral_param(name, p, seed)
    if control == "gaussian-reinit":
        return _gaussian_param(name, p, seed)
    raise ConfigError(
        f"weight control {control!r} cannot be applied to a matrix alone: use spectral-reinit or gaussian-reinit"
    )


def reinit_loaded(loaded: Any, control: str, seed: int, *, keep_embeddings: bool = False) -> Any:
    """A :class:`auditkit.models.LoadedModel` for a weight control, with its provenance updated."""
    from auditkit.models import LoadedModel

    if loaded.provenance.processed:
        raise ConfigError(
            f"weight control {control!r} applies to unprocessed weights: load the model without --processed"
        )
    spec = get(control)
    gc.collect()  # a model released just before (its hooks hold reference cycles) is freed before this one is built
    if spec.stage != "weight" or spec.apply is None:
        usable = [c.name for c in registry_controls("weight") if c.apply is not None]
        raise ConfigError(f"{control!r} is not a weight control that reinitialises a model: use one of {usable}")
    model = spec.apply(loaded.model, seed, keep_embeddings=keep_embeddings)
    return LoadedModel(model, weight_control_provenance(loaded.provenance, control, seed, keep_embeddings))


def weight_control_provenance(prov: Any, control: str, seed: int, keep_embeddings: bool = False) -> Any:
    """Provenance of a weight-control model, known before the model is built (for cache look-ups)."""
    variant = control + ("-keep-embeddings" if keep_embeddings and control == "gaussian-reinit" else "")
    return dataclasses.replace(prov, weights_variant=f"{prov.weights_variant}+{variant}", seed=seed)
