"""Output folders that never destroy: a marker on everything auditkit writes, a check before compute, and
an atomic swap that replaces only what carries the marker.

Every output folder gets ``.auditkit-output`` (JSON: who wrote it, the command kind, auditkit's version).
An existing ``--out`` is replaced only when it carries that marker, or is an empty folder (nothing to lose);
anything else (a file, a link, a folder of someone's files, the working folder, the cache, a folder that is or
holds an input) is refused with an :class:`OutputError` by :func:`check_output`, which each command calls
before it loads or computes anything, and again by :func:`atomic_folder` just before the swap.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from auditkit import __version__
from auditkit.errors import OutputError
from auditkit.models import default_cache_dir

logger = logging.getLogger(__name__)

MARKER = ".auditkit-output"
"""File in every output folder auditkit writes; its presence is what allows replacing the folder."""

_TEMP_NAME_CHARS = 40
"""Characters of the output's name kept in its temporary siblings' names, so that a name at the
filesystem's limit still leaves room for the temporary prefix and suffix."""


def is_auditkit_output(folder: Path) -> bool:
    """Whether ``folder`` holds auditkit's marker (a regular file with a JSON object naming auditkit)."""
    marker = Path(folder) / MARKER
    if marker.is_symlink() or not marker.is_file():
        return False
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("written_by") == "auditkit"


def marker_kind(folder: Path) -> str | None:
    """The command kind recorded in ``folder``'s marker (``audit``, ``sweep``, ...), None if it records none."""
    try:
        kind = json.loads((Path(folder) / MARKER).read_text()).get("kind")
    except (OSError, ValueError, AttributeError):
        return None
    return kind if isinstance(kind, str) else None


MAX_NAME_BYTES = 200
"""Longest name read from a file that may become part of a file name: a figure's prefix and suffix must still
fit the usual 255-byte limit of one name."""


def safe_name(name: object, what: str) -> str:
    """``name`` (read from a saved table or run file: a method, a dataset's tag) if it can become part of one file
    name inside an output folder; else an :class:`OutputError` naming ``what`` it is (e.g. "method 'x' in
    selectivity.csv"). Refused: not text, empty, ``.`` or ``..``, a path separator (``/``, ``\\``), NUL or another
    control character, over :data:`MAX_NAME_BYTES` bytes. Every report renderer that builds a path from a read
    name goes through here, so a crafted table can never make a re-render write outside its folder."""
    text = name if isinstance(name, str) else ""
    reason = (
        "is not text"
        if not isinstance(name, str)
        else "is empty"
        if not text.strip()
        else "is a path (. or ..)"
        if text in (".", "..")
        else "holds a path separator"
        if "/" in text or "\\" in text
        else "holds a control character"
        if any(ord(c) < 32 or ord(c) == 127 for c in text)
        else f"is over {MAX_NAME_BYTES} bytes"
        if len(text.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES
        else None
    )
    if reason is not None:
        shown = repr(name) if len(repr(name)) <= 60 else repr(name)[:60] + "..."
        raise OutputError(
            f"{what} {shown} cannot name a file ({reason}): the file was changed after the run; "
            "nothing was written: rerun the command in its report to write it again"
        )
    return text


def write_marker(folder: Path, kind: str) -> None:
    """Mark ``folder`` as an output of ``auditkit <kind>``."""
    data = {"written_by": "auditkit", "kind": kind, "version": __version__}
    (Path(folder) / MARKER).write_text(json.dumps(data) + "\n")


def _real(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.realpath(os.path.expanduser(os.fspath(path))))


def _holds(folder: Path, path: Path) -> bool:
    """``folder`` is ``path`` or one of its ancestors (both resolved)."""
    return folder == path or folder in path.parents


def _replaceable(out: Path, given: str, kind: str | None = None) -> None:
    """Raise unless what is at ``out`` (if anything) may be replaced: an auditkit output (of ``kind``, when
    given and the marker records one) or an empty folder."""
    if out.is_symlink():
        raise OutputError(f"--out {given!r} is a symbolic link: give a new folder (auditkit never replaces a link)")
    if not out.exists():
        return
    if not out.is_dir():
        raise OutputError(
            f"--out {given!r} is a file, not a folder auditkit wrote: give a new folder name "
            "(auditkit never replaces a file)"
        )
    if is_auditkit_output(out):
        found = marker_kind(out)
        if kind is not None and found is not None and found != kind:
            raise OutputError(
                f"--out {given!r} is the output of `auditkit {found}`, and this is `auditkit {kind}`: "
                "choose another --out, or delete that folder yourself if it is no longer "
                "needed"
            )
        return
    try:
        empty = next(os.scandir(out), None) is None
    except OSError as exc:
        raise OutputError(f"--out {given!r} cannot be read ({exc.strerror}): give a new folder") from None
    if not empty:
        raise OutputError(
            f"--out {given!r} is a folder auditkit did not write (no {MARKER} marker): give a new "
            "or empty folder, or move that one away; auditkit replaces only its own reports"
        )


def _protected(out: Path, given: str, inputs: Iterable[str | os.PathLike[str]], cache_dirs: Iterable[Path]) -> None:
    """Raise if ``out`` is, or holds, the working folder, a cache root or an input."""
    if _holds(out, _real(os.getcwd())):
        raise OutputError(
            f"--out {given!r} is the current folder or holds it: give a folder inside it, e.g. --out reports/NAME"
        )
    for cache in cache_dirs:
        if _holds(out, _real(cache)):
            raise OutputError(
                f"--out {given!r} is or holds auditkit's cache folder {str(cache)!r}: give a folder outside the cache"
            )
    for item in inputs:
        path = _real(item)
        if os.path.lexists(path) and _holds(out, path):
            raise OutputError(
                f"--out {given!r} is or holds the input {os.fspath(item)!r}: give a folder that "
                "holds none of the inputs"
            )


def _nearest_existing(path: Path) -> Path:
    while not os.path.lexists(path):  # lexists answers False, not an error, for a name over the limits
        path = path.parent
    return path


def _short(text: str, keep: int = 60) -> str:
    """``text`` quoted, cut to ``keep`` characters (an error line stays one short line)."""
    return repr(text) if len(text) <= keep else repr(text[:keep]) + "..."


def _within_limits(out: Path, given: str) -> None:
    """Raise if a name still to be created in ``out`` (absolute) exceeds the filesystem's name or path limit;
    checked on the text alone, since stat itself fails on such names."""
    anchor = _nearest_existing(out)
    try:
        name_max = os.pathconf(anchor, "PC_NAME_MAX")
        path_max = os.pathconf(anchor, "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    for part in out.relative_to(anchor).parts:
        if len(os.fsencode(part)) > name_max:
            raise OutputError(
                f"--out {_short(given)}: the name {_short(part)} is {len(os.fsencode(part))} bytes, "
                f"over this filesystem's limit of {name_max}: give a shorter name"
            )
    if len(os.fsencode(str(out))) >= path_max:
        raise OutputError(
            f"--out {_short(given)} is {len(os.fsencode(str(out)))} bytes long, over this system's "
            f"path limit of {path_max}: give a shorter path"
        )


def _writable(out: Path, given: str) -> None:
    """Raise unless ``out`` can be created: its nearest existing ancestor is a folder we can write in."""
    anchor = _nearest_existing(out.parent)
    if not anchor.is_dir():
        raise OutputError(
            f"--out {given!r} cannot be created: {str(anchor)!r} is a file, not a folder; give a path under a folder"
        )
    try:  # the one reliable test of writing here, whoever we run as: create and remove a temporary folder
        os.rmdir(tempfile.mkdtemp(prefix=".auditkit-check.", dir=anchor))
    except OSError as exc:
        raise OutputError(
            f"--out {given!r} cannot be written: {str(anchor)!r} is not writable "
            f"({exc.strerror}); give a folder you can write to"
        ) from None


def _movable(out: Path, given: str) -> None:
    """Raise unless an existing folder at ``out`` can be moved aside and emptied, as :func:`_swap` does: Linux
    renames a folder into another folder only when the folder itself is writable (its ``..`` entry changes), and
    the old report's files are deleted from it afterwards. Probed like :func:`_writable`, by creating and
    removing a temporary folder in it (``os.access`` says yes to root whatever the mode)."""
    if not out.is_dir():
        return
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".auditkit-check.", dir=out))
    except OSError as exc:
        raise OutputError(
            f"--out {given!r} cannot be replaced: that folder is not writable ({exc.strerror}); "
            "make it writable (chmod u+w) or give another --out"
        ) from None


def check_output(
    out: str | os.PathLike[str],
    *,
    inputs: Iterable[str | os.PathLike[str]] = (),
    cache_dir: str | os.PathLike[str] | None = None,
    kind: str | None = None,
) -> Path:
    """Raise :class:`OutputError` unless a command may write its output folder ``out``; returns it resolved.

    Refused: a file or link at ``out``; an existing folder without auditkit's marker, unless empty; the working
    folder, auditkit's cache root (``cache_dir`` and :func:`default_cache_dir`) and any existing path in
    ``inputs`` (dataset file, model or SAE folder), or any folder holding one of these; a path whose nearest
    existing ancestor is a file or not writable, or whose names exceed the filesystem's limits; with ``kind``, an
    earlier output of another command (the marker's kind: a sweep's folder for an audit); an earlier report that
    cannot be moved aside (itself not writable). Leaves nothing behind. Call it before loading or computing
    anything.
    """
    given = os.fspath(out)
    if not given.strip():
        raise OutputError("--out is empty: give an output folder, e.g. --out reports/NAME")
    unresolved = Path(os.path.abspath(os.path.expanduser(given)))
    _within_limits(unresolved, given)
    try:
        if unresolved.is_symlink():
            raise OutputError(f"--out {given!r} is a symbolic link: give a new folder (auditkit never replaces a link)")
        resolved = _real(unresolved)
        caches = [default_cache_dir()] + ([Path(cache_dir)] if cache_dir is not None else [])
        _protected(resolved, given, inputs, caches)
        _replaceable(resolved, given, kind)
        _writable(resolved, given)
        _movable(resolved, given)
    except OSError as exc:
        raise OutputError(f"--out {given!r} cannot be checked ({exc.strerror}): give another folder") from None
    return resolved


def _write_error(out: Path, exc: OSError) -> OutputError:
    reason = exc.strerror or str(exc)
    fix = "free some space" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "check the folder"
    return OutputError(
        f"cannot write {str(out)!r}: {reason}; nothing was replaced (an earlier report there is "
        f"kept): {fix}, or give another --out"
    )


@contextlib.contextmanager
def atomic_folder(out: Path, kind: str, *, owned: Iterable[str] | None = None) -> Iterator[Path]:
    """A temporary sibling of ``out``, marked as an output of ``auditkit <kind>``, to write into; swapped into
    place in one rename if the block succeeds.

    Only an auditkit output of the same kind or an empty folder at ``out`` is replaced (checked on entry and
    again just before the swap); a failed write (an exception, a full disk) leaves the previous ``out/`` or
    nothing, and no temporary folder. An ``OSError`` while writing becomes an :class:`OutputError`.

    With ``owned`` (the names or shell patterns of everything the writer writes), every other entry of an
    earlier ``out`` (a file the user saved into a report, not a folder auditkit marked) is carried over into the
    new folder byte for byte, and logged: auditkit replaces only its own outputs.
    """
    out = Path(out)
    _replaceable(out, str(out), kind)
    prefix = f".{out.name[:_TEMP_NAME_CHARS]}."
    tmp: Path | None = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=out.parent))
        write_marker(tmp, kind)
        if owned is not None and out.is_dir():
            kept = copy_except(out, tmp, owned, skip_marked=True)
            if kept:
                logger.warning(
                    "%s: kept %d file(s) auditkit did not write, carried over byte for byte: %s",
                    out,
                    len(kept),
                    ", ".join(kept),
                )
        yield tmp
        _replaceable(out, str(out), kind)
        _swap(tmp, out, prefix)
    except OSError as exc:
        raise _write_error(out, exc) from exc
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def rendering_errors(out: Path, kind: str) -> Iterator[None]:
    """Around a re-render from tables read back: a ``KeyError``, ``ValueError``, ``TypeError`` or ``IndexError``
    (a value rendering cannot use in a table that passed the reader's checks) becomes one :class:`OutputError`
    naming the folder, so ``auditkit report`` prints one line; inside :func:`atomic_folder`, nothing is written."""
    try:
        yield
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise OutputError(
            f"cannot re-render {str(out)!r} from its tables ({type(exc).__name__}: {exc}): they are "
            f"not what `auditkit {kind}` writes; rerun the command in its report"
        ) from exc


def _swap(tmp: Path, out: Path, prefix: str) -> None:
    """Move ``tmp`` to ``out``; a previous ``out`` is moved aside first, put back if the move fails, and
    deleted only once the new folder is in place."""
    if not os.path.lexists(out):
        os.replace(tmp, out)
        return
    old = Path(tempfile.mkdtemp(prefix=prefix + "old.", dir=out.parent))
    try:
        os.replace(out, old / out.name)
    except OSError:
        os.rmdir(old)
        raise
    try:
        os.replace(tmp, out)
    except OSError:
        os.replace(old / out.name, out)
        os.rmdir(old)
        raise
    shutil.rmtree(old, ignore_errors=True)


def copy_except(out: Path, tmp: Path, owned: Iterable[str], *, skip_marked: bool = False) -> list[str]:
    """Copy every entry of the output ``out`` into ``tmp`` byte for byte (links as links), except the marker
    and the names ``owned`` lists (names or shell patterns such as ``depth-*.png``: what a re-render writes
    anew), and with ``skip_marked`` a folder carrying auditkit's marker (an output auditkit wrote inside it).
    Returns the names copied."""
    skip, copied = (*owned, MARKER), []
    for item in sorted(Path(out).iterdir()):
        if any(fnmatch.fnmatchcase(item.name, pattern) for pattern in skip):
            continue
        if skip_marked and not item.is_symlink() and item.is_dir() and is_auditkit_output(item):
            continue
        copied.append(item.name)
        if item.is_dir() and not item.is_symlink():
            shutil.copytree(item, tmp / item.name, symlinks=True)
        else:
            shutil.copy2(item, tmp / item.name, follow_symlinks=False)
    return copied


RERENDERED_KINDS = {
    "audit": "auditkit audit",
    "validate": "auditkit validate",
    "steer": "auditkit steer",
    "sweep": "auditkit sweep",
}
"""Output kinds ``auditkit report`` re-renders, and the command that writes each."""


def output_kind(folder: str | os.PathLike[str]) -> tuple[Path, str]:
    """The folder and its kind, for ``auditkit report``: raise :class:`OutputError` unless ``folder`` is a real
    folder (not a link) carrying auditkit's marker of a kind in :data:`RERENDERED_KINDS`."""
    given = os.fspath(folder)
    path = Path(os.path.abspath(os.path.expanduser(given)))
    if path.is_symlink() or not path.is_dir():
        raise OutputError(
            f"{given!r} is not a folder: give a folder that `auditkit audit`, `sweep`, `validate` or `steer` wrote"
        )
    if not is_auditkit_output(path):
        raise OutputError(
            f"{given!r} is not an auditkit output (no {MARKER} marker): `auditkit report` re-renders "
            "only folders `auditkit audit`, `sweep`, `validate` or `steer` wrote"
        )
    kind = json.loads((path / MARKER).read_text()).get("kind")
    if kind not in RERENDERED_KINDS:
        raise OutputError(
            f"{given!r} is the output of `auditkit {kind}`, which `auditkit report` does not "
            f"re-render: give a folder of {', '.join(f'`{c}`' for c in RERENDERED_KINDS.values())}"
        )
    return path, kind


def check_audit_output(folder: str | os.PathLike[str], command: str = "report") -> Path:
    """Raise :class:`OutputError` unless ``folder`` is an ``auditkit audit`` output (a real folder, not a link,
    carrying the marker of kind ``audit``), as ``auditkit <command>`` (``report``, ``compare``) needs."""
    given = os.fspath(folder)
    path = Path(os.path.abspath(os.path.expanduser(given)))
    if path.is_symlink() or not path.is_dir():
        raise OutputError(f"{given!r} is not a folder: give the folder an `auditkit audit --out` wrote")
    if not is_auditkit_output(path):
        raise OutputError(
            f"{given!r} is not an auditkit output (no {MARKER} marker): `auditkit {command}` reads "
            "only folders `auditkit audit` wrote"
        )
    kind = json.loads((path / MARKER).read_text()).get("kind")
    if kind != "audit":
        raise OutputError(
            f"{given!r} is the output of `auditkit {kind}`, not of `auditkit audit`: give an audit's folder"
        )
    return path
