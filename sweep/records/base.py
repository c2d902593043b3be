"""What every record shares: its schema version, its migrations, and reading it key by key.

A record is a JSON object that sweep writes and reads back (a manifest, a run's run.json, ...).
Each one is a dataclass in its own module of sweep.records, which alone writes its file. The
file carries ``schema_version``: a reader migrates an older version (files written before the
key existed are version 0) step by step to the current one, and refuses a newer one with a
message that says to upgrade sweep.

Reading is validation: :class:`Fields` hands out a JSON object's values one key at a time, each
checked for its type (and bounds), and raises :class:`RecordError` naming the file, the key and
what was expected. What comes back from an execute node is untrusted input, read the same way.

Only the standard library is imported here (and by every record module at import time): the
job process imports the records it writes before it knows whether numpy is installed.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn

from ..core.errors import ResultsError, printable

#: A record's JSON object, as read from its file or as written to it.
JsonObject = dict[str, Any]
#: One migration step: the object of version v -> the object of version v + 1.
Migration = Callable[[JsonObject], JsonObject]
#: Field metadata: the key is not written while the field is None (today's files leave it out).
OMIT_NONE: Mapping[str, Any] = {"omit_none": True}
#: Field metadata: the key is not written while the field holds True (RunEntry.in_grid).
OMIT_TRUE: Mapping[str, Any] = {"omit_true": True}


class RecordError(ResultsError):
    """A record file that cannot be used: unreadable, not the JSON object its model expects, or
    written by a newer sweep. The message names the file, the key and what was expected."""

    def __init__(self, path: str | Path, message: str, key: str = ""):
        self.path = str(path)
        self.key = key
        self.detail = message
        super().__init__(printable(f"{path}: {key + ': ' if key else ''}{message}"))


class NewerRecordError(RecordError):
    """A record written by a newer sweep (its schema_version is above what this sweep reads)."""


def newer_message(found: int, current: int) -> str:
    """The words of a refusal to read a record of a newer schema version."""
    return (f"written by a newer sweep (schema_version {found}; this sweep reads up to {current}): "
            "upgrade sweep to read it")


def check_version(path: str | Path, data: Mapping[str, Any], current: int) -> int:
    """The schema version of a record's object (0 when it has none: written before versions).

    Args:
        path: the file, for messages.
        data: its JSON object.
        current: the newest version this sweep reads.

    Returns:
        The version, 0 to `current`.

    Raises:
        RecordError: not a whole number >= 0; NewerRecordError: newer than `current`.
    """
    version = data.get("schema_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise RecordError(path, f"expected a whole number >= 0, got {_shown(version)}", "schema_version")
    if version > current:
        raise NewerRecordError(path, newer_message(version, current))
    return version


def migrate(path: str | Path, data: JsonObject, current: int, migrations: Mapping[int, Migration]) -> JsonObject:
    """A record's object brought to the current schema version.

    Args:
        path: the file, for messages.
        data: its JSON object, of any version up to `current`.
        current: the version the record's model reads.
        migrations: version v -> the step from v to v + 1, for every v below `current`.

    Returns:
        The object at version `current` (without the schema_version key).

    Raises:
        RecordError: the version is invalid or newer than `current`.
    """
    version = check_version(path, data, current)
    out = {k: v for k, v in data.items() if k != "schema_version"}
    while version < current:
        out = migrations[version](out)
        version += 1
    return out


def load_object(path: Path) -> JsonObject | None:
    """The JSON object in `path`, or None when the file does not exist.

    Raises:
        RecordError: unreadable, not JSON, or not a JSON object.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordError(path, f"unreadable: {exc}") from None
    return parse_object(path, text)


def parse_object(path: Path, text: str) -> JsonObject:
    """The JSON object that `text`, read from `path`, holds.

    Raises:
        RecordError: not JSON, or not a JSON object (`path` named).
        RecursionError: nested deeper than Python's parser goes (untrusted readers say so).
    """
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise RecordError(path, f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RecordError(path, f"expected a JSON object, got {_kind(data)}")
    return data


#: The suffix of a record's previous version (sweep.fsutil.PREVIOUS_SUFFIX, kept by durable writers).
PREVIOUS_SUFFIX = ".prev"

_warned: set[str] = set()


def load_object_recovering(path: Path) -> JsonObject | None:
    """The JSON object in `path` (None when the file does not exist); when the file is torn
    (unreadable, not JSON, not an object: a crash or power cut while it was written), the
    object of its previous version `path`.prev instead, with a warning on stderr (once per file
    and process) that the last change to it may be lost. The records that decide what is
    submitted (the manifest, chain.json) are written with their previous version kept.

    Raises:
        RecordError: the file is torn and there is no usable previous version (the message
            names both).
    """
    try:
        return load_object(path)
    except RecordError as torn:
        previous = path.with_name(path.name + PREVIOUS_SUFFIX)
        try:
            data = load_object(previous)
        except RecordError as exc:
            raise RecordError(path, f"{torn.detail}; its previous version {previous.name} is no better "
                                    f"({exc.detail})") from None
        if data is None:
            raise
        if str(path) not in _warned:
            _warned.add(str(path))
            print(printable(f"warning: {path} is torn ({torn.detail}); using its previous version {previous.name} "
                            "(the last change to it may be lost; the next write replaces the torn file)"),
                  file=sys.stderr)
        return data


def to_json(record: Any, version: int) -> JsonObject:
    """A record's JSON object: ``schema_version`` first, then its fields (see :func:`plain`)."""
    body = plain(record)
    assert isinstance(body, dict)
    return {"schema_version": version, **body}


def plain(value: Any) -> Any:
    """A dataclass (nested ones too) as JSON values: each field under its own name, in field
    order, except a None field with OMIT_NONE metadata and a True one with OMIT_TRUE; an Enum as
    its value; tuples as lists."""
    if is_dataclass(value) and not isinstance(value, type):
        out: JsonObject = {}
        for f in fields(value):
            v = getattr(value, f.name)
            if (v is None and f.metadata.get("omit_none")) or (v is True and f.metadata.get("omit_true")):
                continue
            out[f.name] = plain(v)
        return out
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, (str, int, float, bool)) or value is None else _kind(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Fields:
    """One JSON object of a record, read key by key.

    Each getter checks the value at a key and returns it typed; a value of the wrong type, out of
    its bounds, or absent where it is required raises :class:`RecordError` with the file, the
    dotted key (``dataset.sha256``) and what was expected. An absent key and a null are the same
    to the ``opt_`` getters (None).
    """

    def __init__(self, data: Mapping[str, Any], path: str | Path, prefix: str = ""):
        self.data = data
        self.path = path
        self.prefix = prefix

    def has(self, key: str) -> bool:
        """Whether the object holds `key` with a value other than null."""
        return self.data.get(key) is not None

    def fail(self, key: str, expected: str) -> NoReturn:
        """Raise the RecordError of a value that is not what was expected.

        Raises:
            RecordError: always.
        """
        got = "nothing" if key not in self.data else _shown(self.data[key])
        raise RecordError(self.path, f"expected {expected}, got {got}", self.prefix + key)

    def _get(self, key: str, expected: str) -> Any:
        value = self.data.get(key)
        if value is None:
            self.fail(key, expected)
        return value

    # ---------------------------------------------------------------- strings
    def text(self, key: str) -> str:
        """A required string."""
        value = self._get(key, "a string")
        if not isinstance(value, str):
            self.fail(key, "a string")
        return value

    def opt_text(self, key: str) -> str | None:
        """A string, or None."""
        return self.text(key) if self.has(key) else None

    def texts(self, key: str) -> list[str]:
        """A list of strings ([] when absent)."""
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, "a list of strings")
        return list(value)

    def opt_texts(self, key: str) -> list[str] | None:
        """A list of strings, or None."""
        return self.texts(key) if self.has(key) else None

    def text_map(self, key: str) -> dict[str, str]:
        """An object of strings ({} when absent)."""
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            self.fail(key, "an object of strings")
        return dict(value)

    # ---------------------------------------------------------------- numbers
    def integer(self, key: str, lo: int | None = None, hi: int | None = None) -> int:
        """A required whole number within [lo, hi]."""
        value = self._get(key, _bounds("a whole number", lo, hi))
        if not isinstance(value, int) or isinstance(value, bool) or (lo is not None and value < lo) or (
                hi is not None and value > hi):
            self.fail(key, _bounds("a whole number", lo, hi))
        return value

    def opt_integer(self, key: str, lo: int | None = None, hi: int | None = None) -> int | None:
        """A whole number within [lo, hi], or None."""
        return self.integer(key, lo, hi) if self.has(key) else None

    def integers(self, key: str, lo: int | None = None) -> list[int]:
        """A list of whole numbers >= lo ([] when absent)."""
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) and (lo is None or v >= lo) for v in value):
            self.fail(key, f"a list of whole numbers{'' if lo is None else f' >= {lo}'}")
        return list(value)

    def number(self, key: str, lo: float | None = None, *, finite: bool = False) -> float:
        """A required number >= lo (NaN only when not `finite` and there is no lower bound)."""
        expected = _bounds("a finite number" if finite else "a number", lo, None)
        value = self._get(key, expected)
        if not _is_number(value) or (finite and not math.isfinite(value)) or (lo is not None and not value >= lo):
            self.fail(key, expected)
        return float(value) if isinstance(value, float) else value

    def opt_number(self, key: str, lo: float | None = None, *, finite: bool = False) -> float | None:
        """A number >= lo, or None."""
        return self.number(key, lo, finite=finite) if self.has(key) else None

    def numbers(self, key: str) -> list[float]:
        """A list of numbers, NaN written as null or NaN allowed ([] when absent)."""
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(v is None or _is_number(v) for v in value):
            self.fail(key, "a list of numbers")
        return [math.nan if v is None else v for v in value]

    def number_map(self, key: str) -> dict[str, float | None]:
        """An object of numbers or nulls ({} when absent): metric name -> value."""
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(v is None or _is_number(v) for v in value.values()):
            self.fail(key, "an object of numbers")
        return dict(value)

    def integer_map(self, key: str, lo: int | None = None) -> dict[str, int]:
        """An object of whole numbers >= lo ({} when absent)."""
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(
                isinstance(v, int) and not isinstance(v, bool) and (lo is None or v >= lo) for v in value.values()):
            self.fail(key, f"an object of whole numbers{'' if lo is None else f' >= {lo}'}")
        return dict(value)

    # ---------------------------------------------------------------- others
    def boolean(self, key: str, default: bool) -> bool:
        """A boolean (`default` when absent)."""
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(key, "true or false")
        return value

    def opt_boolean(self, key: str) -> bool | None:
        """A boolean, or None."""
        return self.boolean(key, False) if self.has(key) else None

    def mapping(self, key: str) -> dict[str, Any]:
        """An open JSON object, its content not checked ({} when absent)."""
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(key, "an object")
        return dict(value)

    def opt_mapping(self, key: str) -> dict[str, Any] | None:
        """An open JSON object, or None."""
        return self.mapping(key) if self.has(key) else None

    def obj(self, key: str) -> Fields:
        """A required nested object, to be read key by key."""
        value = self._get(key, "an object")
        if not isinstance(value, dict):
            self.fail(key, "an object")
        return Fields(value, self.path, f"{self.prefix}{key}.")

    def opt_obj(self, key: str) -> Fields | None:
        """A nested object, or None."""
        return self.obj(key) if self.has(key) else None

    def objs(self, key: str) -> list[Fields]:
        """A list of nested objects ([] when absent)."""
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.fail(key, "a list of objects")
        return [Fields(v, self.path, f"{self.prefix}{key}[{i}].") for i, v in enumerate(value)]

    def obj_map(self, key: str) -> dict[str, Fields]:
        """An object of nested objects ({} when absent)."""
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            self.fail(key, "an object of objects")
        return {k: Fields(v, self.path, f"{self.prefix}{key}.{k}.") for k, v in value.items()}

    def pairs(self, key: str) -> list[tuple[str, str]]:
        """A list of [string, string] pairs ([] when absent): a ranking, a search's objectives."""
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(
                isinstance(v, list) and len(v) == 2 and all(isinstance(x, str) for x in v) for v in value):
            self.fail(key, "a list of [name, direction] pairs")
        return [(v[0], v[1]) for v in value]

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        """A required string, one of `allowed`."""
        value = self._get(key, f"one of {', '.join(allowed)}")
        if value not in allowed:
            self.fail(key, f"one of {', '.join(allowed)}")
        assert isinstance(value, str)
        return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _bounds(what: str, lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"{what} from {lo} to {hi}"
    if lo is not None:
        return f"{what} >= {lo}"
    if hi is not None:
        return f"{what} <= {hi}"
    return what
