"""The wheel holds every package of the source tree, and nothing else at the top level.

`make setup` installs auditkit in editable mode, which reads the source tree and so hides a package the wheel
leaves out (auditkit.models and auditkit.data were, once they became packages: an installed wheel failed
`auditkit models` with ModuleNotFoundError). `make test` also runs the built wheel from a fresh environment
(the Makefile's wheel-check); this test names the missing files.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _source_copy(dst: Path) -> Path:
    """The files git would commit (tracked, and untracked but not ignored), copied: the build then sees no
    stale build/ folder and leaves nothing in the working tree."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard", "-z"], capture_output=True, check=False
    )
    if listed.returncode != 0:
        pytest.skip(f"git cannot list the source files: {listed.stderr.decode().strip()}")
    for name in filter(None, listed.stdout.decode().split("\0")):
        if (ROOT / name).is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dst / name)
    return dst


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    src = _source_copy(tmp_path_factory.mktemp("src"))
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(src)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = out.glob("auditkit-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def _expected() -> dict[str, Path]:
    """Each source module's path inside the wheel: auditkit/ as it is, cli/ under auditkit/cli/."""
    out = {}
    for top, prefix in (("auditkit", "auditkit"), ("cli", "auditkit/cli")):
        for path in (ROOT / top).rglob("*.py"):
            out[f"{prefix}/{path.relative_to(ROOT / top).as_posix()}"] = path
    return out


def test_wheel_holds_every_module_of_auditkit_and_cli(wheel_names: set[str]) -> None:
    expected = _expected()
    missing = sorted(name for name in expected if name not in wheel_names)
    assert not missing, f"the wheel leaves out {len(missing)} module(s), first: {missing[:5]}"
    assert {"auditkit/models/__init__.py", "auditkit/data/__init__.py", "auditkit/cli/main.py"} <= wheel_names


def test_every_source_folder_is_a_package_in_the_wheel(wheel_names: set[str]) -> None:
    """A folder of modules without __init__.py would be left out of the wheel by package discovery."""
    folders = {name.rsplit("/", 1)[0] for name in _expected()}
    not_packages = sorted(f for f in folders if f"{f}/__init__.py" not in wheel_names)
    assert not not_packages, f"folders without __init__.py in the wheel: {not_packages}"


def test_wheel_has_no_stray_top_level_package(wheel_names: set[str]) -> None:
    tops = {name.split("/", 1)[0] for name in wheel_names}
    dist_info = {t for t in tops if t.endswith(".dist-info")}
    assert len(dist_info) == 1, dist_info
    assert tops - dist_info == {"auditkit"}, f"top-level entries besides auditkit: {sorted(tops - dist_info)}"
    (info,) = dist_info
    assert f"{info}/entry_points.txt" in wheel_names
