"""Which packages the wheel holds: the one thing pyproject.toml cannot say (everything else is there).

Every package under auditkit/, found rather than listed, so a module that becomes a package is never left
out of the wheel; and the Typer app's top-level folder cli/ (with any subpackage) installed as auditkit.cli,
so that site-packages never gets a bare top-level package named "cli" (a name other projects also use).
tests/ and bench/ are not packages of the install. `make test` builds the wheel, installs it without -e
into a fresh virtual environment and runs `auditkit` from there; tests/integration/test_wheel.py checks
its file list.
"""

from setuptools import find_packages, setup

CLI = "auditkit.cli"

setup(
    packages=[
        *find_packages(include=["auditkit", "auditkit.*"]),
        CLI,
        *(f"{CLI}.{name}" for name in find_packages("cli")),
    ],
    package_dir={CLI: "cli"},
)
