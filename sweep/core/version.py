"""sweep's version (the root package re-exports it; pyproject.toml holds the same string,
tests/test_packaging.py checks the installed wheel's)."""

__version__ = "0.1.0"
