"""A search trial's progress.json on the local backend: the value of the pruner's column after
each epoch so far. The trial's job writes it after every epoch, through this module alone
(sweep.job.progress); the search driver reads it (sweep.search.trials). (On a pool the same
values travel as the job attribute SweepProgress, by chirp.)

It is written by a job: untrusted; :meth:`Progress.from_json` checks it.

Standard library only (the job imports it).

Schema versions: 0, files written before progress.json carried ``schema_version`` (read as 1);
1, the same key with ``schema_version``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..core.names import PROGRESS_FILE
from ..fsutil import atomic_write_json
from .base import Fields, JsonObject, Migration, migrate, to_json
from .untrusted import RECORD_LIMIT, load_object

SCHEMA_VERSION = 1


@dataclass
class Progress:
    """results/<sweep>/<run-id>/progress.json: one value per finished epoch (NaN where the
    column had none)."""

    values: list[float] = field(default_factory=list)

    def to_json(self) -> JsonObject:
        """The record's JSON object (schema_version first)."""
        return to_json(self, SCHEMA_VERSION)

    @classmethod
    def from_json(cls, data: JsonObject, path: str | Path = PROGRESS_FILE) -> Progress:
        """A progress.json from its JSON object, of any schema version up to this sweep's.

        Raises:
            RecordError: written by a newer sweep, or values that are not a list of numbers.
        """
        f = Fields(migrate(path, data, SCHEMA_VERSION, MIGRATIONS), path)
        return cls(values=f.numbers("values"))


def _v0_to_v1(data: JsonObject) -> JsonObject:
    """Version 0 (no schema_version) has the key of version 1."""
    return data


MIGRATIONS: dict[int, Migration] = {0: _v0_to_v1}


def read_progress(folder: Path) -> Progress | None:
    """The progress.json in `folder`, or None when there is none (yet).

    Raises:
        RecordError: unreadable (a symlink, not a regular file, over its size limit: records.untrusted),
            not a progress.json, or written by a newer sweep.
    """
    path = folder / PROGRESS_FILE
    data = load_object(path, RECORD_LIMIT)  # from an execute node: bounded, no symlink
    return None if data is None else Progress.from_json(data, path)


def write_progress(folder: Path, values: list[float]) -> None:
    """Write `folder`/progress.json atomically."""
    atomic_write_json(folder / PROGRESS_FILE, Progress(list(values)).to_json())
