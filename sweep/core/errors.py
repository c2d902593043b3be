"""Errors that point at a place in a grid file."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GridIssue:
    """One problem in a grid file: where it is and what was expected."""

    file: str
    line: int  # 1-based; 0 when the problem concerns the file as a whole
    column: int  # 1-based
    key: str  # dotted key path, e.g. "axes.optimizer[2]"
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.message}"


class GridError(Exception):
    """Raised with every issue found in a grid file (several are reported together)."""

    def __init__(self, issues: list[GridIssue]):
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class SweepError(Exception):
    """A user-facing error outside the grid file (paths, results, backends)."""


class InputError(Exception):
    """Bad input outside a grid file that the user must fix (simulation parameters, a dataset or
    waveform file, a model file): the CLI prints the message and exits 2, without a traceback."""
