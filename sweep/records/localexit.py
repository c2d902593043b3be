"""The local backend's exit record of a run's job, results/<sweep>/<run-id>/.local-exit.json:
its exit status (negative: the signal that killed it), why it was killed, how long it ran and
on how many CPUs; written first when the job starts (no exit status yet, its process id and host,
so `sweep status` sees it running), then when it ends. HTCondor's counterpart is the job event
log. The local backend writes it through this module alone (sweep.submit.backends.local);
records.runs reads it when run.json does not say how the job ended.

Schema versions: 0, files written before the record carried ``schema_version`` (read as 1);
1, the same keys with ``schema_version``; 2, `pid`, `host` and `started` of a job that has not
ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..core.names import LOCAL_RECORD
from ..fsutil import atomic_write_json
from .base import OMIT_NONE, Fields, JsonObject, Migration, migrate, to_json
from .untrusted import RECORD_LIMIT, load_object

SCHEMA_VERSION = 2


@dataclass
class LocalExit:
    """How a job of the local backend ended."""

    returncode: int | None
    reason: str | None = None  # killed for its runtime limit, interrupted, or by a signal
    wall_s: float | None = None
    cpus: int | None = None
    pid: int | None = field(default=None, metadata=OMIT_NONE)  # a job that has not ended: its process group
    host: str | None = field(default=None, metadata=OMIT_NONE)  # and the host it runs on
    started: str | None = field(default=None, metadata=OMIT_NONE)  # and its start (records.lock.process_start_time)

    def to_json(self) -> JsonObject:
        """The record's JSON object (schema_version first)."""
        return to_json(self, SCHEMA_VERSION)

    @classmethod
    def from_json(cls, data: JsonObject, path: str | Path = LOCAL_RECORD) -> LocalExit:
        """The record from its JSON object, of any schema version up to this sweep's.

        Raises:
            RecordError: written by a newer sweep, or a key of the wrong type.
        """
        f = Fields(migrate(path, data, SCHEMA_VERSION, MIGRATIONS), path)
        return cls(returncode=f.opt_integer("returncode"), reason=f.opt_text("reason"),
                   wall_s=f.opt_number("wall_s", lo=0), cpus=f.opt_integer("cpus", lo=0),
                   pid=f.opt_integer("pid", lo=1), host=f.opt_text("host"), started=f.opt_text("started"))


def _v0_to_v1(data: JsonObject) -> JsonObject:
    """Version 0 (no schema_version) has the keys of version 1."""
    return data


def _v1_to_v2(data: JsonObject) -> JsonObject:
    """Version 2 adds `pid`, `host` and `started` (written while a job runs), absent from version 1."""
    return data


MIGRATIONS: dict[int, Migration] = {0: _v0_to_v1, 1: _v1_to_v2}


def read_local_exit(folder: Path) -> LocalExit | None:
    """The exit record in `folder`, or None when there is none.

    Raises:
        RecordError: unreadable (a symlink, not a regular file, over its size limit: records.untrusted),
            not an exit record, or written by a newer sweep.
    """
    path = folder / LOCAL_RECORD
    data = load_object(path, RECORD_LIMIT)  # from an execute node: bounded, no symlink
    return None if data is None else LocalExit.from_json(data, path)


def write_local_exit(folder: Path, record: LocalExit) -> None:
    """Write `folder`/.local-exit.json atomically."""
    atomic_write_json(folder / LOCAL_RECORD, record.to_json())
