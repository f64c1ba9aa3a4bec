"""Load and save SAEs in sae-lens's own format: a folder with ``cfg.json`` + ``sae_weights.safetensors``.

Loading reads safetensors and JSON only (sae-lens's ``sae_lens_disk_loader``); nothing is unpickled.
Pretrained releases (``SAE.from_pretrained``) need the Hugging Face hub, and say so in one line when
it cannot be reached.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from auditkit.errors import HubUnreachableError, ModelNotFoundError, OutputError, shorten

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


SAE_TENSORS: dict[str, dict[str, tuple[str, ...]]] = {
    arch: {
        "W_enc": ("d_in", "d_sae"),
        "W_dec": ("d_sae", "d_in"),
        "b_enc": ("d_sae",),
        "b_dec": ("d_in",),
        **({"threshold": ("d_sae",)} if arch == "jumprelu" else {}),
    }
    for arch in ("topk", "standard", "jumprelu")
}
"""The tensors of a saved SAE of each architecture auditkit trains, with their shapes in cfg.json's terms (sae-lens's
inference SAEs; a JumpReLU SAE from before sae-lens 6 may hold ``log_threshold`` instead of ``threshold``)."""
SAE_DTYPES = ("float32", "float64", "float16", "bfloat16")
"""Weight dtypes an SAE may hold (``torch.`` prefixed in cfg.json or not, as sae-lens reads them)."""
_SAFETENSORS_DTYPES = {"F32": "float32", "F64": "float64", "F16": "float16", "BF16": "bfloat16"}


@dataclasses.dataclass(frozen=True)
class SavedSAE:
    """What a saved SAE folder holds, read and checked by :func:`read_saved_sae` without building the SAE."""

    architecture: str
    d_in: int
    """Width of the activations it reads (the model's d_model at its hook)."""
    d_sae: int
    hook: str | None
    """The hook it was trained at, where cfg.json says."""


def read_saved_sae(folder: str | Path) -> SavedSAE:
    """Read and check a whole saved SAE folder before anything is computed: cfg.json is a JSON object with an
    architecture auditkit can train (:data:`SAE_TENSORS`; sae-lens's default ``standard`` for a config from before
    sae-lens 6), positive integer ``d_in`` and ``d_sae`` (and ``k`` for TopK) and a known ``dtype``; the weights
    file opens (safetensors checks that its header covers the file exactly, so a truncated or empty file fails)
    and holds the architecture's tensors, floating point, of the shapes cfg.json gives. Raises
    :class:`ModelNotFoundError` naming the folder, the problem and the fix."""
    path = Path(folder).expanduser()
    fix = "save it again (auditkit's save_sae, sae-lens's SAE.save_model)"
    try:
        cfg = json.loads((path / SAE_CFG_FILENAME).read_text())
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"cannot read the SAE config in {str(path)!r}: {exc}") from exc
    if not isinstance(cfg, dict):
        raise ModelNotFoundError(
            f"{SAE_CFG_FILENAME} in {str(path)!r} is a JSON {type(cfg).__name__}, not an object of SAE settings: {fix}"
        )
    metadata = cfg.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ModelNotFoundError(f"{SAE_CFG_FILENAME} in {str(path)!r}: 'metadata' is not an object: {fix}")
    pre_6 = not (cfg.get("sae_lens_version") or metadata.get("sae_lens_version"))
    arch = cfg.get("architecture", "standard" if pre_6 else None)  # sae-lens's own default for old configs
    if arch not in SAE_TENSORS:
        what = "has no 'architecture'" if arch is None else f"names architecture {shorten(arch)}"
        raise ModelNotFoundError(
            f"{SAE_CFG_FILENAME} in {str(path)!r} {what}: auditkit reads and trains "
            f"{', '.join(SAE_TENSORS)} SAEs; {fix}"
        )
    sizes = {f: _positive_int(cfg, f, path, fix) for f in ("d_in", "d_sae", *(("k",) if arch == "topk" else ()))}
    dtype = cfg.get("dtype", "float32")
    if not isinstance(dtype, str) or dtype.removeprefix("torch.") not in SAE_DTYPES:
        raise ModelNotFoundError(
            f"{SAE_CFG_FILENAME} in {str(path)!r}: dtype {shorten(dtype)} is not one of {', '.join(SAE_DTYPES)}: {fix}"
        )
    _check_weights(path / SAE_WEIGHTS_FILENAME, arch, sizes, fix)
    hook = metadata.get("hook_name") or cfg.get("hook_name") or cfg.get("hook_point")
    return SavedSAE(arch, sizes["d_in"], sizes["d_sae"], hook if isinstance(hook, str) else None)


def _positive_int(cfg: dict[str, Any], field: str, path: Path, fix: str) -> int:
    value = cfg.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        got = "no value" if field not in cfg else shorten(value)
        raise ModelNotFoundError(
            f"{SAE_CFG_FILENAME} in {str(path)!r}: {field} must be a positive integer, got {got}: {fix}"
        )
    return value


def _check_weights(weights: Path, arch: str, sizes: dict[str, int], fix: str) -> None:
    """The weights file opens and holds ``arch``'s tensors, floating point, of the shapes ``sizes`` give."""
    from safetensors import SafetensorError, safe_open

    where = f"{str(weights)!r}"
    try:
        with safe_open(str(weights), framework="pt") as handle:
            found = {name: handle.get_slice(name) for name in handle.keys()}  # noqa: SIM118 (a safetensors handle, not a dict)
            shapes = {name: tuple(s.get_shape()) for name, s in found.items()}
            dtypes = {name: s.get_dtype() for name, s in found.items()}
    except (OSError, SafetensorError) as exc:
        reason = str(exc).split(": ")[-1]  # safetensors: "Error while deserializing header: <what>"
        raise ModelNotFoundError(f"the SAE weights {where} are damaged or incomplete ({reason}): {fix}") from exc
    expected = dict(SAE_TENSORS[arch])
    if arch == "jumprelu" and "log_threshold" in shapes and "threshold" not in shapes:
        expected["log_threshold"] = expected.pop("threshold")  # sae-lens converts it on load
    missing, extra = sorted(set(expected) - set(shapes)), sorted(set(shapes) - set(expected))
    if missing or extra:
        raise ModelNotFoundError(
            f"the SAE weights {where} hold {sorted(shapes)}, a {arch} SAE holds {sorted(expected)}: {fix}"
        )
    for name, dims in expected.items():
        want = tuple(sizes[d] for d in dims)
        if shapes[name] != want:
            spelled = " and ".join(f"{d}={sizes[d]}" for d in dict.fromkeys(dims))
            raise ModelNotFoundError(
                f"the SAE weights {where}: {name} is {list(shapes[name])}, but cfg.json's "
                f"{spelled} make it {list(want)}: {fix}"
            )
        if dtypes[name] not in _SAFETENSORS_DTYPES:
            raise ModelNotFoundError(
                f"the SAE weights {where}: {name} is {dtypes[name]}, not a float type ({', '.join(SAE_DTYPES)}): {fix}"
            )


def _load_folder(path: Path, device: str, dtype: str) -> Any:
    from sae_lens import SAE
    from safetensors import SafetensorError

    try:
        return SAE.load_from_disk(path, device=device, dtype=dtype).eval()
    except (KeyError, TypeError, ValueError, RuntimeError, SafetensorError) as exc:
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
            raise OutputError(
                f"{str(folder)!r} holds files that are not a saved SAE ({', '.join(extra[:3])}): "
                "give a new or empty folder (auditkit never replaces what it did not write)"
            )
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
