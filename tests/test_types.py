"""The strictly typed packages pass `mypy --strict`, and the project's mypy configuration
(pyproject.toml's [tool.mypy]) checks the same packages with the same flags, so that `mypy` run
from the checkout's root is this test."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from tests.conftest import REPO

#: The packages mypy checks strictly, as folders of the checkout.
STRICT_PACKAGES = ["sweep/core", "sweep/records"]


def test_the_strict_packages_pass_mypy_strict():
    """`mypy` as .ci/run and a developer run it (the configuration's packages and flags, which the
    next test holds to STRICT_PACKAGES and --strict); its cache (.mypy_cache, ignored by git) makes
    a second run in the same checkout take a second."""
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"mypy ({' '.join(STRICT_PACKAGES)}, strict):\n{proc.stdout}{proc.stderr}"


def test_the_mypy_configuration_checks_the_strict_packages_strictly():
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert config["files"] == STRICT_PACKAGES
    modules = [package.replace("/", ".") for package in STRICT_PACKAGES]
    strict = [o for o in config.get("overrides", []) if o.get("disallow_untyped_defs")]
    for module in modules:
        covering = [o for o in strict if {module, f"{module}.*"} <= set(o["module"])]
        assert covering, f"no [[tool.mypy.overrides]] with the strict flags for {module} and {module}.*"
