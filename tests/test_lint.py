"""`ruff check .` from the checkout's root passes: the rules pyproject.toml's [tool.ruff] selects, on
every Python file of the checkout (sweep/, tests/, bench/, tools/). ruff is in the test extra, so a
missing ruff fails this test rather than skipping it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

from tests.conftest import REPO


def test_ruff_finds_nothing():
    assert importlib.util.find_spec("ruff") is not None, (
        "ruff is not installed in this interpreter: it is in the test extra "
        "(`.venv/bin/python -m pip install -e '.[test]'`)")
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"ruff check . (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
