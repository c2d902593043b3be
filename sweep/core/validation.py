"""What validating a YAML input file of sweep takes, whatever the file (a grid file, a site
profile, a pipeline file): reading it (bounded in size, UTF-8), parsing it with the position of
every value (yamlpos), and a Validator that records every problem with file, line, column and
key path, so that all of them are reported together; plus the bounded previews of values and
the "did you mean" hints the messages use.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from . import schema, yamlpos
from .errors import GridError, GridIssue

#: Refused unread: a grid is a few kilobytes; this leaves room for generated axes of ~1M values.
MAX_GRID_BYTES = 64 << 20


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of a grid file, site profile or pipeline file (`what`), read once it is known
    to be small.

    Raises:
        GridError: missing, a folder, unreadable, too large or not UTF-8 (with the byte's position).
    """
    shown = str(path)
    try:
        if path.stat().st_size > MAX_GRID_BYTES:
            raise GridError([GridIssue(shown, 0, 0, "", f"the file is larger than {MAX_GRID_BYTES >> 20} MB: "
                                       f"a {what} is a few lines of YAML")])
        raw = path.read_bytes()
    except FileNotFoundError:
        raise GridError([GridIssue(shown, 0, 0, "", "file not found")]) from None
    except IsADirectoryError:
        raise GridError([GridIssue(shown, 0, 0, "", f"is a folder, expected a {what}")]) from None
    except OSError as exc:
        raise GridError([GridIssue(shown, 0, 0, "", f"cannot read: {exc.strerror or exc}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _line_column(raw, exc.start)
        raise GridError([GridIssue(shown, line, column, "", f"byte 0x{raw[exc.start]:02x} is not UTF-8: a {what} "
                                   "must be UTF-8 text (save it as UTF-8)")]) from None
    return text


def load_yaml(text: str, file: str, what: str) -> yamlpos.Located:
    """The document of a grid file, site profile or pipeline file (`what`; `file` names it in
    messages), with the positions of its values.

    Raises:
        GridError: the YAML is invalid, too deep or an alias bomb, with line and column.
    """
    try:
        located = yamlpos.load(text)
    except yamlpos.YamlProblem as exc:
        raise GridError([GridIssue(file, exc.line, exc.column, "", exc.message)]) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, BEL, ...)
        line, column = _line_column(text, exc.position)
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        raise GridError([GridIssue(file, line, column, "", f"the control character {char} is not allowed in a "
                                   f"{what} (only text, tabs inside quotes, and line breaks)")]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        lines = text.splitlines()
        if "maximum nesting depth" in problem:  # libyaml's own limit, beyond ours
            problem = yamlpos.TOO_DEEP
        elif mark and mark.line < len(lines) and lines[mark.line][mark.column:mark.column + 1] == "\t":
            problem = "a tab character: YAML indents with spaces only (replace the tab with spaces)"
        raise GridError([GridIssue(file, line, col, "", f"invalid YAML: {problem}")]) from None
    except yaml.YAMLError as exc:
        raise GridError([GridIssue(file, 0, 0, "", f"invalid YAML: {exc}")]) from None
    except RecursionError:  # pragma: no cover - the nesting limit is checked before composing
        raise GridError([GridIssue(file, 0, 0, "", "nesting too deep")]) from None
    return located


def _line_column(data: str | bytes, offset: int) -> yamlpos.Position:
    """1-based line and column of a character (or byte) offset into a file's text (or bytes)."""
    if isinstance(data, bytes):
        return data.count(b"\n", 0, offset) + 1, offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return data.count("\n", 0, offset) + 1, offset - (data.rfind("\n", 0, offset) + 1) + 1


def suggest(word: object, choices: Iterable[object]) -> str:
    """"; did you mean '<choice>'?" for the choice closest to `word` (of the first 100 characters),
    when one is close enough and differs from it; else ""."""
    close = difflib.get_close_matches(str(word)[:100], [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close and close[0] != str(word) else ""


class Validator:
    """Records the problems of one located YAML document (a grid file, a site profile, a pipeline
    file) as GridIssues with the file, line, column and key path of each; the sections of a
    document are read by subclasses (the grid's, the pipeline's) and by functions given one.

    Args:
        file: the document's file, as messages name it.
        located: the parsed document with the positions of its values (:func:`load_yaml`).
        root: the project folder; relative paths in the document resolve against it.
    """

    def __init__(self, file: str, located: yamlpos.Located, root: Path):
        self.file = file
        self.located = located
        self.root = root.resolve()
        self.issues: list[GridIssue] = []

    # -- reporting
    def error(self, path: yamlpos.KeyPath, message: str, at_key: bool = False) -> None:
        """Record an issue at `path` (the position of its key when `at_key`, else of its value),
        saying when the value is an alias (of which anchor) and adding :meth:`origin_note`."""
        line, col = self.located.where(path, prefer_key=at_key)
        anchor = None if at_key else self.located.anchor_of(path)
        if anchor is not None and anchor != (line, col):
            message += f" (an alias of the value written at line {anchor[0]}, column {anchor[1]})"
        message += self.origin_note(path)
        self.issues.append(GridIssue(self.file, line, col, yamlpos.format_path(path), message))

    def origin_note(self, path: yamlpos.KeyPath) -> str:
        """What :meth:`error` appends to a message at `path` to say where the setting came from:
        nothing here; a grid's validator names the site profile that gave it."""
        return ""

    def check(self, path: yamlpos.KeyPath, value: Any, check: schema.Check, what: str = "") -> bool:
        """Whether `value` passes `check`; when not, an issue "<what>expected ..., got ..." is
        recorded at `path`, with a "did you mean" for a near miss of a check's choices."""
        why = check(value)
        if why is None:
            return True
        hint = ""
        choices = getattr(check, "choices", None) or getattr(getattr(check, "item", None), "choices", None)
        if choices:
            bad = value if isinstance(value, str) else next(
                (v for v in (value if isinstance(value, list) else []) if v not in choices), None)
            if isinstance(bad, str):
                hint = suggest(bad, choices)
        self.error(path, f"{what}expected {why}, got {show(value)}{hint}")
        return False

    def mapping(self, path: yamlpos.KeyPath, value: Any, allowed: tuple[str, ...] | None) -> dict[Any, Any]:
        """The mapping at `path` ({} when absent or not a mapping, which is recorded), each key not
        in `allowed` recorded as unknown (None: any key)."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(path, f"expected a mapping (key: value lines), got {show(value)}")
            return {}
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    self.error(path + (key,), f"unknown key '{key}'{suggest(key, allowed)} "
                               f"(allowed: {', '.join(allowed)})", at_key=True)
        return value

    def duplicate_keys(self) -> None:
        """A key given twice in one mapping is an issue (YAML keeps only the last, silently)."""
        for dup_path, (line, col) in self.located.duplicates:
            self.issues.append(GridIssue(self.file, line, col, yamlpos.format_path(dup_path),
                                         "key appears more than once (YAML keeps only the last)"))

    def project_path(self, key: yamlpos.KeyPath, text: str, what: str, roots: tuple[Path, ...],
                     roots_variable: str | None, folder: bool = False) -> Path | None:
        """The resolved path (symlinks followed) of a path written at `key` (`text`, a `what` such
        as "dataset"; a folder when `folder`), when it stays inside the project or under one of
        `roots`, the folders the user allowed explicitly (in the environment variable
        `roots_variable`; None: no root may be allowed, a pipeline's paths); None (with the error
        recorded) otherwise."""
        if len(text) > 1024 or any(len(part.encode()) > 255 for part in text.split("/")):
            self.error(key, f"expected a {what} path the file system can hold (names of at most 255 bytes, "
                       f"at most 1024 in all), got {show(text)} ({len(text):,} characters)")
            return None
        try:
            path = (self.root / text).resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop
            self.error(key, f"cannot resolve the {what} path {show(text)}: {exc}")
            return None
        allowed = [r for r in roots if inside(path, r)]
        if not inside(path, self.root) and not allowed:
            also = (f" or under {', '.join(str(r) for r in roots)}" if roots else "" if roots_variable is None else
                    f" (to read one from elsewhere, name the folder that holds it in {roots_variable})")
            self.error(key, f"the {what} {show(text)} is {path}, outside the project {self.root}: a {what} must be "
                       f"inside the project{also}")
            return None
        if folder and path.exists() and not path.is_dir():
            self.error(key, f"expected a folder, got the file {path}")
            return None
        if not folder and path.is_dir():
            self.error(key, f"expected a {what} file, got the folder {path}")
            return None
        return path


def inside(path: Path, folder: Path) -> bool:
    """Whether `path` is `folder` or below it (both resolved: the project root and the allowed roots are)."""
    return path.is_relative_to(folder)


def show(value: Any, limit: int = 60) -> str:
    """A bounded preview of a value: at most `limit` characters, computed without walking more of
    the value than it shows (an alias bomb shares its lists; expanding them would take gigabytes).
    Escaping of unprintable characters happens where the message is printed (GridIssue)."""
    out: list[str] = []
    budget = [limit + 1]

    def put(text: str) -> bool:
        out.append(text[:budget[0]])
        budget[0] -= len(text)
        return budget[0] > 0

    def walk(v: Any, depth: int) -> bool:
        if depth > 8:
            return put("...")
        if isinstance(v, list):
            if not put("["):
                return False
            for i, item in enumerate(v):
                if (i and not put(", ")) or not walk(item, depth + 1):
                    return False
            return put("]")
        if isinstance(v, dict):
            if not put("{"):
                return False
            for i, (k, item) in enumerate(v.items()):
                if (i and not put(", ")) or not walk(k, depth + 1) or not put(": ") or not walk(item, depth + 1):
                    return False
            return put("}")
        return put(repr(v) if not isinstance(v, str) else repr(v[:limit + 2]))

    walk(value, 0)
    text = "".join(out)
    return text if len(text) <= limit else text[:limit - 3] + "..."
