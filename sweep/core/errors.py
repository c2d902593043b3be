"""Every error sweep reports to a user derives from :class:`SweepError`.

The CLI prints the message (no traceback) and maps each subclass to one exit status, in one
table (``sweep.cli.EXIT_STATUS``): 2 for what the user wrote (a grid file, an input file or
value), 1 for everything else.
"""

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
        return printable(f"{where}:{key} {self.message}")


def printable(text: str) -> str:
    """Text safe to print on a terminal: every control, format or separator character (newlines,
    ANSI and OSC escapes, bidi overrides, U+2028) written as a Python escape, so a key or value
    from a grid can neither forge an output line nor drive the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii") for c in text)


class SweepError(Exception):
    """Base of the errors a user meets; also raised as such for problems no subclass names."""


class GridError(SweepError):
    """A grid file is invalid. Carries every issue found (several are reported together)."""

    def __init__(self, issues: list[GridIssue]):
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class InputError(SweepError):
    """Bad input outside a grid file that the user must fix: simulation parameters, a dataset,
    waveform or model file that cannot be used, a command-line value that does not fit."""


class NotFoundError(SweepError):
    """Something named on the command line or in the grid does not exist (a dataset, a model
    file, a sweep's grid file)."""


class RenderError(SweepError):
    """A template cannot be rendered, or a value cannot be written safely into a job's files."""


class BackendError(SweepError):
    """The pool (schedd, DAGMan, job owner) or this machine cannot take or follow the jobs."""


class LockedError(SweepError):
    """Another sweep command is deciding and writing for the same sweep (its lock is held)."""


class ResultsError(SweepError):
    """A sweep's records are absent or unreadable, or a question asked of them is invalid
    (--by, --filter, --top, --format, --output)."""
