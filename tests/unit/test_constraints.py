"""constraints.txt pins the versions the committed reports were made with (make setup installs against it).

A fresh resolve had installed transformers 5.25.0 where reports/default was made with 5.24.0. The pins
must agree with what every committed run.json records, and every
pinned library must be one that run.json records, so that the next regeneration shows what it ran on.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from auditkit.report.write import LIBRARIES

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;#]+)\s*$")


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = PIN.match(line)
            assert match, f"constraints.txt: {line!r} is not NAME==VERSION"
            pins[match[1].lower()] = match[2]
    return pins


def _public(version: str) -> str:
    """2.13.0+cpu -> 2.13.0: a pin without a local label admits the CPU build."""
    return version.split("+", 1)[0]


def test_constraints_pin_the_versions_every_committed_report_records() -> None:
    pins = _pins()
    runs = sorted((ROOT / "reports").rglob("run.json"))
    assert runs
    for run in runs:
        versions = json.loads(run.read_text()).get("versions", {})
        for name, pinned in pins.items():
            if name in versions:
                where = run.relative_to(ROOT)
                assert _public(versions[name]) == pinned, f"{where}: {name} {versions[name]}, pinned {pinned}"
    recorded = json.loads((ROOT / "reports" / "default" / "run.json").read_text())["versions"]
    for name in ("torch", "transformers", "transformer-lens", "sae-lens", "numpy", "pandas"):
        assert name in pins and _public(recorded[name]) == pins[name]


def test_every_pinned_library_is_recorded_in_run_json() -> None:
    assert set(_pins()) <= set(LIBRARIES), sorted(set(_pins()) - set(LIBRARIES))
