"""Shell words for the commands written into reports: one quoting rule for every reproduce command.

A reproduce command is exact when pasting it into a POSIX shell reruns the same configuration:
every value is ``shlex.quote``d (a path with a space stays one word), floats are written in full
(``repr``, so ``0.123456789`` is not rounded to ``0.123457`` as ``:g`` does), and a path inside the
working folder is written relative to it (``reports/default``, not ``/home/me/auditkit/reports/default``),
so a committed report holds no absolute machine path.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path

Option = tuple[str, object]
"""``(flag, value)``: ``True`` writes the flag alone, ``False`` or ``None`` leaves it out, a tuple or list is
comma-joined, anything else is one value."""


def display_path(value: str | os.PathLike[str]) -> str:
    """``value`` relative to the working folder when it is an absolute path inside it, else as given."""
    text = os.fspath(value)
    if not os.path.isabs(text):
        return text
    cwd = os.getcwd()
    absolute = os.path.abspath(text)
    if absolute == cwd:
        return "."
    if absolute.startswith(cwd.rstrip(os.sep) + os.sep):
        return os.path.relpath(absolute, cwd)
    return text


def format_value(value: object) -> str:
    """One option value as text (before quoting): floats by ``repr`` (numpy floats too), paths by
    :func:`display_path`, sequences comma-joined."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):  # numpy floats subclass float; repr(np.float64) is not a number
        return repr(float(value))
    if isinstance(value, Path):
        return display_path(value)
    if isinstance(value, (tuple, list)):
        return ",".join(format_value(v) for v in value)
    return str(value)


def command_line(program: Sequence[str], options: Iterable[Option]) -> str:
    """``program`` followed by ``options``, each word shell-quoted: ``shlex.split`` of the result gives back
    ``[*program, flag, value, ...]`` exactly."""
    words = list(program)
    for flag, value in options:
        if value is None or value is False:
            continue
        words.append(flag)
        if value is not True:
            words.append(format_value(value))
    return shlex.join(words)
