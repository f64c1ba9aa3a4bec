"""auditkit: controls for interpretability claims about pretrained transformers."""

from __future__ import annotations

__version__ = "0.1.0"
