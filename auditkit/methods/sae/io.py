"""Load and save SAEs in sae-lens's own format: a folder with ``cfg.json`` + ``sae_weights.safetensors``.

Loading reads safetensors and JSON only (sae-lens's ``sae_lens_disk_loader``); nothing is unpickled.
Pretrained releases (``SAE.from_pretrained``) need the Hugging Face hub, and say so in one line when
it cannot be reached.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from auditkit.errors import HubUnreachableError, ModelNotFoundError, OutputError

logger = logging.getLogger(__name__)

SAE_CFG_FILENAME = "cfg.json"
SAE_WEIGHTS_FILENAME = "sae_weights.safetensors"


def load_sae(spec: str | Path, *, device: str = "cpu", dtype: str = "float32") -> Any:
    """A ``sae_lens.SAE`` from a folder or a pretrained release.

    ``spec`` is either a folder written by :func:`save_sae` or by sae-lens (``cfg.json`` +
    ``sae_weights.safetensors``), or ``"RELEASE/SAE_ID"`` naming an SAE in sae-lens's pretrained
    directory (``gpt2-small-res-jb/blocks.8.hook_resid_pre``; the part before the first ``/`` is the
    release, no release name contains one). Raises :class:`ModelNotFoundError` for an unknown
    folder or release, :class:`HubUnreachableError` when the release is not in the local HF cache and
    the hub cannot be reached.
    """
    if check_sae_spec(spec) == "folder":
        return _load_folder(Path(spec).expanduser(), device, dtype)
    return _load_pretrained(str(spec), device, dtype)


def check_sae_spec(spec: str | Path) -> str:
    """``"folder"`` or ``"release"``: what ``spec`` names, checked without reading weights or the hub (the
    audit runs this before its first forward pass). Raises :class:`ModelNotFoundError` as :func:`load_sae` would
    for a file, a folder missing its files, or a name that is neither a folder nor a known release."""
    path = Path(spec).expanduser()
    if path.is_dir():
        missing = [n for n in (SAE_CFG_FILENAME, SAE_WEIGHTS_FILENAME) if not (path / n).is_file()]
        if missing:
            raise ModelNotFoundError(
                f"SAE folder {str(path)!r} lacks {', '.join(missing)}: save it with auditkit's save_sae or "
                "sae-lens's SAE.save_model"
            )
        return "folder"
    if path.exists():
        raise ModelNotFoundError(f"SAE spec {str(spec)!r} is a file: pass the folder holding {SAE_CFG_FILENAME}")
    _release_id(str(spec))
    return "release"


def saved_sae_reads(folder: str | Path) -> tuple[int | None, str | None]:
    """The activation width (``d_in``) and the hook a saved SAE folder was trained at, from its cfg.json
    alone (no weights read); ``None`` where cfg.json does not say."""
    try:
        cfg = json.loads((Path(folder).expanduser() / SAE_CFG_FILENAME).read_text())
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"cannot read the SAE config in {str(folder)!r}: {exc}") from exc
    d_in = cfg.get("d_in")
    hook = (cfg.get("metadata") or {}).get("hook_name") or cfg.get("hook_name")
    return (int(d_in) if d_in is not None else None), hook


def _load_folder(path: Path, device: str, dtype: str) -> Any:
    from sae_lens import SAE

    try:
        return SAE.load_from_disk(path, device=device, dtype=dtype).eval()
    except (KeyError, ValueError, json.JSONDecodeError, RuntimeError) as exc:
        raise ModelNotFoundError(f"cannot read the SAE in {str(path)!r}: {exc}") from exc


def _release_id(spec: str) -> tuple[str, str]:
    """``RELEASE/SAE_ID`` split and checked against sae-lens's pretrained directory (shipped with sae-lens)."""
    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory

    release, _, sae_id = spec.partition("/")
    directory = get_pretrained_saes_directory()
    if release not in directory:
        close = difflib.get_close_matches(release, list(directory), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ModelNotFoundError(
            f"SAE {spec!r} is neither a folder nor a sae-lens pretrained release: {hint}"
            "pass a folder with cfg.json + sae_weights.safetensors or RELEASE/SAE_ID"
        )
    ids = list(directory[release].saes_map)
    if sae_id not in ids:
        close = difflib.get_close_matches(sae_id, ids, n=3, cutoff=0.5) or ids[:3]
        raise ModelNotFoundError(f"release {release!r} has no SAE {sae_id!r}: e.g. {', '.join(close)}")
    return release, sae_id


def _load_pretrained(spec: str, device: str, dtype: str) -> Any:
    from sae_lens import SAE

    release, sae_id = _release_id(spec)
    try:
        return SAE.from_pretrained(release, sae_id, device=device, dtype=dtype).eval()
    except (OSError, ConnectionError) as exc:
        # huggingface_hub raises LocalEntryNotFoundError (an OSError) offline or when unreachable.
        raise HubUnreachableError(
            f"cannot fetch SAE {spec!r} from the Hugging Face hub and it is not in the local HF cache: "
            "connect to the hub, pre-populate HF_HUB_CACHE, or train one with `auditkit audit --methods sae`"
        ) from exc


SAE_FILES = frozenset({"cfg.json", "sae_weights.safetensors", "sparsity.safetensors"})
"""The files of a saved SAE (sae-lens's format): the only contents :func:`save_sae` replaces."""


def save_sae(sae: Any, folder: str | Path) -> Path:
    """Write ``sae`` to ``folder`` in sae-lens's format, atomically; returns the folder.

    The files are written into a temporary sibling folder that is then renamed into place, so a
    crash never leaves a half-written SAE. An existing ``folder`` is replaced only when it is empty or holds
    a saved SAE and nothing else (:data:`SAE_FILES`); any other folder, or a file, raises
    :class:`OutputError` and is left as it was. Training SAEs are saved as their inference form
    (``save_inference_model``), which is what :func:`load_sae` returns.
    """
    folder = Path(folder).expanduser()
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise OutputError(f"{str(folder)!r} exists and is not a folder: give a new folder for the SAE")
    if folder.is_dir():
        extra = sorted(p.name for p in folder.iterdir() if p.name not in SAE_FILES)
        if extra:
            raise OutputError(f"{str(folder)!r} holds files that are not a saved SAE ({', '.join(extra[:3])}): "
                              "give a new or empty folder (auditkit never replaces what it did not write)")  # fmt: skip
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        if hasattr(sae, "save_inference_model"):
            sae.save_inference_model(tmp)
        else:
            sae.save_model(tmp)
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=folder.parent))
            os.replace(folder, old / folder.name)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder
