"""Activations on disk, keyed by a hash of the whole request, written so that a crash leaves no lie.

Layout under ``<root>/activations/``::

    <key>/            a finished entry: meta.json (the request) + tensors.safetensors
    <key>.partial/    an unfinished one: chunk-00000.safetensors, chunk-00001.safetensors, ...

Every file is written to a temporary name and ``os.replace``d into place, and a finished entry is
assembled in a temporary folder and renamed in one step. A run killed with SIGKILL therefore leaves
at most some complete chunk files in ``<key>.partial/``, never a finished-looking entry, and the
rerun computes only the chunks that are missing. The key hashes the full request (model weights and
variant, hook, dataset fingerprint, positions, dtype, ...), never names alone, and ``meta.json`` is
compared with the request on load.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from auditkit.errors import CacheError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


def request_key(request: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``request`` (sorted keys, no whitespace)."""
    canonical = json.dumps({"format": FORMAT_VERSION, **request}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class CacheEntry:
    """One cached result: finished tensors, or the chunks of an unfinished computation."""

    def __init__(self, root: Path, request: dict[str, Any]) -> None:
        self.request = json.loads(json.dumps(request, sort_keys=True))
        self.key = request_key(request)
        self.base = Path(root) / "activations"
        self.path = self.base / self.key
        self.partial = self.base / f"{self.key}.partial"

    # -------------------------------------------------------------- finished entries

    def load(self) -> dict[str, torch.Tensor] | None:
        """The finished tensors, or None when there is no finished entry."""
        meta_path = self.path / "meta.json"
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CacheError(f"cache entry {self.path} is unreadable ({exc}): delete that folder") from exc
        if meta.get("request") != self.request:
            raise CacheError(
                f"cache entry {self.path} was written for another request (hash collision or edited "
                "meta.json): delete that folder and rerun"
            )
        return load_file(str(self.path / "tensors.safetensors"))

    def finish(self, tensors: dict[str, torch.Tensor]) -> None:
        """Write the finished entry atomically and drop the partial chunks."""
        self.base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.key}.", dir=self.base))
        try:
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp / "tensors.safetensors"))
            (tmp / "meta.json").write_text(json.dumps({"request": self.request}, indent=1, sort_keys=True))
            try:
                os.replace(tmp, self.path)
            except OSError:
                # A concurrent run finished the same request first; its entry is equivalent.
                if not (self.path / "meta.json").is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(self.partial, ignore_errors=True)

    # -------------------------------------------------------------- chunks of an unfinished run

    def _chunk_path(self, index: int) -> Path:
        return self.partial / f"chunk-{index:05d}.safetensors"

    def load_chunk(self, index: int) -> dict[str, torch.Tensor] | None:
        """A chunk saved by an earlier (possibly killed) run, or None."""
        path = self._chunk_path(index)
        if not path.is_file():
            return None
        try:
            return load_file(str(path))
        except (OSError, SafetensorError) as exc:  # an unreadable chunk is recomputed, never trusted
            logger.warning("recomputing unreadable cache chunk %s (%s)", path, exc)
            path.unlink(missing_ok=True)
            return None

    def save_chunk(self, index: int, tensors: dict[str, torch.Tensor]) -> None:
        """Save one chunk atomically; the request is written beside the chunks first."""
        self.partial.mkdir(parents=True, exist_ok=True)
        meta = self.partial / "meta.json"
        if not meta.is_file():
            meta.write_text(json.dumps({"request": self.request}, sort_keys=True))
        _atomic_save(tensors, self._chunk_path(index))
