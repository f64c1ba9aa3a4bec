"""Load a model spec into a TransformerLens ``HookedTransformer`` plus its provenance: :func:`load_model`
dispatches to the embedded, tiny, local-folder or hub loader; :func:`list_models` lists them."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
from pathlib import Path

from auditkit.errors import AuditkitError, ModelError
from auditkit.models.building import first_line
from auditkit.models.embedded import load_embedded
from auditkit.models.hub import load_from_hub
from auditkit.models.local import load_local_folder
from auditkit.models.spec import EMBEDDED_MODELS, TINY_MODELS, LoadedModel, ModelInfo, ModelSpec, resolve_device
from auditkit.models.tiny import load_tiny
from auditkit.types import ModelProvenance


def load_model(spec: ModelSpec) -> LoadedModel:
    """Load ``spec`` as a HookedTransformer; raises an :class:`AuditkitError` on bad input.

    Whatever transformers, TransformerLens or safetensors raise while reading the model's files (their
    exception types are many and undocumented: OSError, ValueError, AttributeError, SafetensorError...)
    becomes a :class:`ModelError` naming the model and the cause's first line.
    """
    spec = dataclasses.replace(spec, device=resolve_device(spec.device))
    try:
        if spec.name in EMBEDDED_MODELS:
            loaded = load_embedded(spec, EMBEDDED_MODELS[spec.name])
        elif spec.name in TINY_MODELS:
            loaded = load_tiny(spec)
        elif Path(spec.name).expanduser().exists():
            loaded = load_local_folder(spec, Path(spec.name).expanduser())
        else:
            loaded = load_from_hub(spec)
    except AuditkitError:
        raise
    except Exception as exc:  # third-party loaders raise anything; re-raised as one typed error, cause chained
        raise ModelError(
            f"cannot load model {spec.name!r}: {type(exc).__name__}: {first_line(exc)}; check that its config.json, "
            "weights and tokenizer are complete (save_pretrained() writes all three), or pass another model"
        ) from exc
    loaded.model.eval()
    for param in loaded.model.parameters():
        param.requires_grad_(False)
    return loaded


def has_step0_checkpoint(provenance: ModelProvenance) -> bool:
    """Whether the ``step0`` control can load this model's step-0 checkpoint: a Pythia model from the hub
    (a local folder has no checkpoints, and its loader ignores ``revision``)."""
    return provenance.source == "hub" and provenance.name.lower().replace("eleutherai/", "").startswith("pythia")


def list_models() -> list[ModelInfo]:
    """What ``load_model`` can load, marking what works with no network."""
    rows = []
    for name, emb in EMBEDDED_MODELS.items():
        present = importlib.util.find_spec(emb.package) is not None
        rows.append(
            ModelInfo(
                name=name,
                source="embedded-gguf",
                available_offline=present,
                note=f"{emb.display_name} ({emb.weights_variant}); package {emb.package.replace('_', '-')}"
                + ("" if present else " not installed"),
            )
        )
    rows += [
        ModelInfo(name=t, source="random-init", available_offline=True, note="tiny random model for tests")
        for t in TINY_MODELS
    ]
    from transformer_lens.loading_from_pretrained import OFFICIAL_MODEL_NAMES

    for name in OFFICIAL_MODEL_NAMES:
        cached = _in_hf_cache(name)
        rows.append(
            ModelInfo(
                name=name,
                source="hub",
                available_offline=cached,
                note="in the local Hugging Face cache" if cached else "needs the Hugging Face hub",
            )
        )
    return rows


def _in_hf_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    with contextlib.suppress(Exception):
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    return False
