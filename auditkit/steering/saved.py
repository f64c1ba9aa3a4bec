"""A steering comparison read back from its output folder (steering.json, steering.csv), for re-rendering
without recomputing: the rows and the verdicts are read as written; the per-seed means and intervals are the
same pure summary of those rows (:func:`auditkit.steering.summary.summarise`) that the run took."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.errors import AuditkitError, OutputError
from auditkit.models import ModelSpec
from auditkit.steering.run import SteeringConfig, SteeringResult
from auditkit.steering.summary import summarise

GEOMETRY = "all"
"""``concept`` of the rows that describe all concepts at once (the readers' geometry), not a concept."""
FILES = ("steering.json", "steering.csv")
"""What a steering output holds that a re-render reads."""


def _fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """``data``'s keys that are fields of ``cls``, JSON lists back to tuples (an older file's extra keys are
    ignored)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names}


def config_from_json(data: dict[str, Any]) -> SteeringConfig:
    """The :class:`SteeringConfig` that steering.json's ``config`` was written from."""
    model = _fields(ModelSpec, data["model"])
    if model.get("cache_dir") is not None:
        model["cache_dir"] = Path(model["cache_dir"])
    return SteeringConfig(
        **{k: v for k, v in _fields(SteeringConfig, data).items() if k != "model"}, model=ModelSpec(**model)
    )


def load_steering(folder: Path) -> SteeringResult:
    """The :class:`SteeringResult` a steering output folder was written from.

    Raises :class:`OutputError` naming what is missing when ``folder`` does not hold a steering output."""
    folder = Path(folder)
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise OutputError(
            f"{str(folder)!r} is an `auditkit steer` output without {', '.join(missing)}: give the "
            "folder `auditkit steer --out` wrote"
        )
    try:
        meta = json.loads((folder / "steering.json").read_text())
        rows = pd.read_csv(folder / "steering.csv")
        cfg = config_from_json(meta["config"])
        return SteeringResult(
            config=cfg,
            rows=rows,
            summary=summarise(rows),
            verdicts=meta["verdicts"],
            concepts=tuple(c for c in dict.fromkeys(rows["concept"]) if c != GEOMETRY),
            site=meta["site"],
            provenance=meta["provenance"],
            data=meta["data"],
            timings=meta.get("timings", {}),
        )
    except (OSError, ValueError, KeyError, TypeError, AuditkitError) as exc:
        raise OutputError(
            f"cannot read the steering output in {str(folder)!r} ({type(exc).__name__}: {exc}): its "
            "steering.json or steering.csv is not what `auditkit steer` writes"
        ) from None
