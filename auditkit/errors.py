"""The error hierarchy.

Every error auditkit raises on bad input derives from :class:`AuditkitError`; its message is one line
that names what was wrong, the bad value, and what to do. Only the CLI turns these into exit code 2.
"""

from __future__ import annotations


class AuditkitError(Exception):
    """Base class: a problem with the user's input or environment that the user can fix."""


class ConfigError(AuditkitError, ValueError):
    """A configuration value is out of range or inconsistent."""


class ModelNotFoundError(AuditkitError):
    """The model spec names no known model, folder or file."""


class ModelError(AuditkitError):
    """A model was found but could not be loaded or converted (incomplete, corrupt or unsupported files)."""


class HubUnreachableError(AuditkitError):
    """The model or dataset lives on the Hugging Face hub and the hub cannot be reached."""


class HookError(AuditkitError):
    """A hook name is unknown to the model, or its layer is out of range."""


class DataError(AuditkitError):
    """A dataset is empty, unreadable, mislabelled or otherwise unusable."""


class CacheError(AuditkitError):
    """A cache entry does not match the request it was loaded for."""


class NotFittedError(AuditkitError, AttributeError):
    """An estimator was used before ``fit``."""


class OutputError(AuditkitError):
    """The output path would destroy something auditkit did not write, or cannot be written at all."""


def shorten(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, so that a message never echoes a huge input (a 48 MB
    table header, a whole file) back at the user."""
    if isinstance(value, str) and len(value) > limit:  # never build the repr of a huge string
        return f"{value[:limit]!r}... ({len(value):,} characters)"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"
