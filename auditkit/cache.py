"""Activations on disk, keyed by a hash of the whole request, written so that a crash leaves no lie
and verified on load so that a damaged file is never used.

Layout under ``<root>/activations/``::

    <key>/                   a finished entry: meta.json (the request, tensors.safetensors's sha256)
                             + tensors.safetensors
    <key>.partial/           an unfinished one: chunk-00000.safetensors, chunk-00001.safetensors, ...
    <name>.corrupt-<time>    an entry or chunk that failed its check, moved aside for inspection

Every file is written to a temporary name and ``os.replace``d into place, and a finished entry is
assembled in a temporary folder and renamed in one step. A run killed with SIGKILL therefore leaves
at most some complete chunk files in ``<key>.partial/``, never a finished-looking entry, and the
rerun computes only the chunks that are missing. The key hashes the full request (model weights and
variant, hook, dataset fingerprint, positions, dtype, ...), never names alone.

What a crash cannot do, a disk, a copy or a hand can: a flipped byte, a truncated file, two entries'
tensor files exchanged, a folder without its ``meta.json``. So a finished entry's ``meta.json``
records the request and the SHA-256 of its tensor file, and a chunk (which has no meta file of its
own) carries its key, index and the SHA-256 of its tensors in its safetensors header. A file that
fails its check is moved aside (renamed ``*.corrupt-<time>``, never deleted), named in one warning,
and recomputed.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save_file

from auditkit.errors import CacheError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
"""2: checksums in meta.json and chunk headers. Part of every key, so entries of an older format
(which carry no checksum and cannot be verified) are never read: they are recomputed."""

TENSORS = "tensors.safetensors"


def request_key(request: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``request`` (sorted keys, no whitespace)."""
    canonical = json.dumps({"format": FORMAT_VERSION, **request}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of the names, dtypes, shapes and bytes of ``tensors`` (in name order)."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def check_root(root: Path) -> None:
    """Raise :class:`CacheError` unless ``root`` is (or can be made) a writable cache folder.

    Writability is probed by creating and removing a file (``os.access`` says yes to root on a
    read-only mount). Nothing is created: a missing root is probed in its nearest existing parent.
    """
    root = Path(root)
    probe_dir, reason = root, None
    while not probe_dir.exists() and not probe_dir.is_symlink() and probe_dir != probe_dir.parent:
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        what = "a broken link" if not probe_dir.exists() else "a regular file"
        reason = f"it is {what}" if probe_dir == root else f"{probe_dir} is {what}"
    for sub in ("activations", "models"):
        if reason is None and (root / sub).exists() and not (root / sub).is_dir():
            reason = f"{root / sub} is not a folder"
    if reason is None:
        try:
            fd, tmp = tempfile.mkstemp(prefix=".auditkit-probe-", dir=probe_dir)
            os.close(fd)
            os.unlink(tmp)
        except OSError as exc:
            reason = f"cannot write in {probe_dir} ({exc.strerror or exc})"
    if reason is not None:
        raise CacheError(
            f"cache folder {str(root)!r} cannot be used: {reason}; pass a writable --cache-dir "
            "(or AUDITKIT_CACHE), or --no-cache to run without a cache"
        )


def move_aside(
    path: Path,
    reason: str,
    *,
    what: str = "cache entry",
    tag: str = "corrupt",
    into: Path | None = None,
    name: str | None = None,
) -> Path | None:
    """Rename ``path`` to ``<into>/<name>.<tag>-<time>`` (default: beside it, under its own name) and
    log one warning naming both; never delete it. Returns the new path, or None when another process
    moved it first.
    """
    stamp, reason = time.strftime("%Y%m%dT%H%M%S"), " ".join(reason.split())  # one line, whatever the cause
    folder, stem = into or path.parent, name or path.name
    for n in range(100):
        target = folder / (f"{stem}.{tag}-{stamp}" + (f"-{n}" if n else ""))
        if target.exists():
            continue
        try:
            os.rename(path, target)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CacheError(f"{what} {path} is {tag} ({reason}) and cannot be moved aside ({exc}): delete it") from exc
        logger.warning("%s %s is %s (%s): moved aside to %s, recomputing", what, path, tag, reason, target)
        return target
    raise CacheError(f"{what} {path} is {tag} ({reason}) and cannot be moved aside: delete it")


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class _Invalid(Exception):
    """A cache file failed its check (internal: always turned into a move-aside and a recompute)."""


class CacheEntry:
    """One cached result: finished tensors, or the chunks of an unfinished computation."""

    def __init__(self, root: Path, request: dict[str, Any]) -> None:
        self.request = json.loads(json.dumps(request, sort_keys=True))
        self.key = request_key(request)
        self.base = Path(root) / "activations"
        self.path = self.base / self.key
        self.partial = self.base / f"{self.key}.partial"
        self._loaded: dict[str, torch.Tensor] | None = None

    # -------------------------------------------------------------- finished entries

    def load(self) -> dict[str, torch.Tensor] | None:
        """The verified finished tensors, or None when there is no usable finished entry.

        An entry that fails its check is moved aside (one warning) and None is returned, so the
        caller recomputes it; the result of a successful check is kept for the next call.
        """
        if self._loaded is None and (self.path.exists() or self.path.is_symlink()):
            try:
                self._loaded = self._read_verified()
            except _Invalid as exc:
                move_aside(self.path, str(exc))
        return self._loaded

    def _read_verified(self) -> dict[str, torch.Tensor]:
        if not self.path.is_dir():
            raise _Invalid("not a folder")
        try:
            meta = json.loads((self.path / "meta.json").read_text())
            blob = (self.path / TENSORS).read_bytes()
        except FileNotFoundError as exc:
            raise _Invalid(f"{Path(exc.filename).name} is missing") from exc
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _Invalid(f"unreadable: {exc}") from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION or "sha256" not in meta:
            raise _Invalid(f"meta.json is not auditkit cache format {FORMAT_VERSION}")
        if meta.get("request") != self.request:
            raise _Invalid("meta.json names another request")
        if hashlib.sha256(blob).hexdigest() != meta["sha256"]:
            raise _Invalid(f"{TENSORS} does not match the checksum in meta.json")
        return load_bytes(blob)

    def finish(self, tensors: dict[str, torch.Tensor]) -> None:
        """Write the finished entry atomically and drop the partial chunks. A failed write (a full disk) raises
        :class:`CacheError` and leaves the chunks, so a rerun resumes from them."""
        with self._writing():
            self.base.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{self.key}.", dir=self.base))
            try:
                save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp / TENSORS))
                meta = {"format": FORMAT_VERSION, "request": self.request, "sha256": _file_sha256(tmp / TENSORS)}
                (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
                self._place(tmp)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(self.partial, ignore_errors=True)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Turn a failed write under the cache folder into one :class:`CacheError` line naming the folder and the
        fix. safetensors wraps the OS error of a failed write (ENOSPC included) into a ``SafetensorError`` whose
        message carries the OS's text, with no errno."""
        try:
            yield
        except (OSError, SafetensorError) as exc:
            reason = (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)).split(": ")[-1]
            codes = (errno.ENOSPC, errno.EDQUOT)
            full = getattr(exc, "errno", None) in codes or any(f"(os error {n})" in reason for n in codes)
            fix = "free some space there" if full else "check that folder"
            raise CacheError(
                f"cannot write the activation cache in {str(self.base)!r}: {' '.join(reason.split())}; {fix} or "
                "choose another --cache-dir (or --no-cache); a rerun resumes from the chunks saved so far"
            ) from exc

    def _place(self, tmp: Path) -> None:
        """Rename ``tmp`` to the entry's path; whatever blocks it is either a concurrent run's
        equivalent entry (kept) or something that fails the check (moved aside, then replaced)."""
        for _ in range(2):
            try:
                os.replace(tmp, self.path)
                return
            except OSError:
                try:
                    self._read_verified()
                    return
                except _Invalid as exc:
                    move_aside(self.path, str(exc))
        raise CacheError(f"cannot write cache entry {self.path}: something keeps recreating it; use --no-cache")

    # -------------------------------------------------------------- chunks of an unfinished run

    def _chunk_path(self, index: int) -> Path:
        return self.partial / f"chunk-{index:05d}.safetensors"

    def load_chunk(self, index: int) -> dict[str, torch.Tensor] | None:
        """A verified chunk saved by an earlier (possibly killed) run, or None.

        A chunk that fails its check is moved out of the partial folder (one warning) and recomputed.
        """
        path = self._chunk_path(index)
        if not path.is_file():
            return None
        try:
            return self._read_chunk(path, index)
        except _Invalid as exc:
            # Out of the partial folder, which is removed when the entry finishes.
            move_aside(path, str(exc), what="cache chunk", into=self.base, name=f"{self.key}.{path.stem}")
            return None

    def _read_chunk(self, path: Path, index: int) -> dict[str, torch.Tensor]:
        # Read into memory, not mapped: what is checked is exactly what is used.
        try:
            blob = path.read_bytes()
            tensors = load_bytes(blob)
            header = json.loads(blob[8 : 8 + int.from_bytes(blob[:8], "little")])
            meta = header.get("__metadata__") or {}
        except (OSError, SafetensorError, ValueError, AttributeError) as exc:
            raise _Invalid(f"unreadable: {exc}") from exc
        if meta.get("key") != self.key or meta.get("index") != str(index):
            raise _Invalid(f"written for key {meta.get('key', '?')[:12]}.. chunk {meta.get('index', '?')}")
        if tensors_sha256(tensors) != meta.get("sha256"):
            raise _Invalid("tensors do not match the checksum in its header")
        return tensors

    def save_chunk(self, index: int, tensors: dict[str, torch.Tensor]) -> None:
        """Save one chunk atomically, its key, index and checksum in its header; the request is
        written beside the chunks first."""
        header = {"key": self.key, "index": str(index), "sha256": tensors_sha256(tensors)}
        with self._writing():
            self.partial.mkdir(parents=True, exist_ok=True)
            meta = self.partial / "meta.json"
            if not meta.is_file():  # written whole or not at all, like every file here
                tmp = meta.with_name(f".meta.json.{os.getpid()}")
                try:
                    tmp.write_text(json.dumps({"request": self.request}, sort_keys=True))
                    os.replace(tmp, meta)
                finally:
                    tmp.unlink(missing_ok=True)
            _atomic_save(tensors, self._chunk_path(index), metadata=header)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()
