"""Models by TransformerLens name, loaded from the Hugging Face hub (or a pre-populated HF cache)."""

from __future__ import annotations

import difflib
from typing import Any

from auditkit.errors import ConfigError, HubUnreachableError, ModelNotFoundError
from auditkit.models.building import make_provenance
from auditkit.models.spec import EMBEDDED_MODELS, TINY_MODELS, TORCH_DTYPES, LoadedModel, ModelSpec


def _pythia_checkpoint(official: str, revision: str | None) -> tuple[int | None, str | None]:
    """Pythia checkpoints go through TransformerLens's ``checkpoint_value``; other revisions pass on."""
    if revision and official.startswith("EleutherAI/pythia") and revision.startswith("step"):
        try:
            return int(revision.removeprefix("step")), None
        except ValueError as exc:
            raise ConfigError(f"Pythia revision {revision!r} is not 'step<N>' (e.g. step0)") from exc
    return None, revision


def load_from_hub(spec: ModelSpec) -> LoadedModel:
    from transformer_lens import HookedTransformer
    from transformer_lens.loading_from_pretrained import OFFICIAL_MODEL_NAMES, get_official_model_name

    try:
        official = get_official_model_name(spec.name)
    except ValueError:
        choices = [*EMBEDDED_MODELS, *TINY_MODELS, *OFFICIAL_MODEL_NAMES]
        close = difflib.get_close_matches(spec.name, choices, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ModelNotFoundError(
            f"unknown model {spec.name!r}: {hint}run `auditkit models` to list models, "
            "or pass a local Hugging Face folder"
        ) from None
    checkpoint, revision = _pythia_checkpoint(official, spec.revision)
    kwargs: dict[str, Any] = {"revision": revision} if revision else {}
    try:
        model = HookedTransformer.from_pretrained(
            official,
            fold_ln=spec.processed,
            center_writing_weights=spec.processed,
            center_unembed=spec.processed,
            fold_value_biases=spec.processed,
            checkpoint_value=checkpoint,
            device=spec.device,
            dtype=TORCH_DTYPES[spec.dtype],
            **kwargs,
        )
    except (OSError, ConnectionError) as exc:
        raise HubUnreachableError(
            f"cannot fetch {official!r} from the Hugging Face hub and it is not in the local HF cache: "
            "connect to the hub, pre-populate HF_HUB_CACHE, or use 'smollm2-135m' or a local folder"
        ) from exc
    prov = make_provenance(
        model,
        spec,
        source="hub",
        architecture=str(model.cfg.original_architecture),
        revision=spec.revision,
    )
    return LoadedModel(model, prov)
