"""A training job's checkpoint state, checkpoint/state.json in its scratch folder: which run on
which dataset it belongs to (its key), how many epochs are done, the history rows so far and
EarlyStopping's state. The job writes it after every epoch, last of the checkpoint's files,
through this module alone (sweep.job.checkpoint.save); a restarted job reads it to go on from
there (sweep.job.checkpoint.load). HTCondor spools it between starts.

Standard library only (the job imports it).

Schema versions: 0, files written before state.json carried ``schema_version`` (read as 1, an
absent ``early_stopping`` as a fresh one); 1, the same keys with ``schema_version``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write_json
from .base import Fields, JsonObject, Migration, migrate, to_json
from .untrusted import RECORD_LIMIT, load_object

SCHEMA_VERSION = 1
CHECKPOINT_STATE = "state.json"  # checkpoint/state.json (sweep.core.names.CHECKPOINT_DIR)


@dataclass
class EarlyStoppingState:
    """Keras' EarlyStopping between epochs: epochs without improvement, the best val_loss and
    the (0-based) epoch it was reached at."""

    wait: int = 0
    best: float | None = None
    best_epoch: int = 0

    @classmethod
    def from_json(cls, f: Fields) -> EarlyStoppingState:
        """Read `early_stopping`.

        Raises:
            RecordError: a key of the wrong type.
        """
        return cls(wait=f.opt_integer("wait", lo=0) or 0, best=f.opt_number("best"),
                   best_epoch=f.opt_integer("best_epoch", lo=0) or 0)


@dataclass
class CheckpointState:
    """checkpoint/state.json."""

    key: str  # "<run id>:<dataset sha256>": a checkpoint is good only for the same run on the same data
    epochs_done: int
    rows: list[dict[str, Any]] = field(default_factory=list)  # history.csv's rows so far (column -> value)
    early_stopping: EarlyStoppingState = field(default_factory=EarlyStoppingState)

    def to_json(self) -> JsonObject:
        """The record's JSON object (schema_version first)."""
        return to_json(self, SCHEMA_VERSION)

    @classmethod
    def from_json(cls, data: JsonObject, path: str | Path = CHECKPOINT_STATE) -> CheckpointState:
        """A checkpoint state from its JSON object, of any schema version up to this sweep's.

        Raises:
            RecordError: written by a newer sweep, or a key of the wrong type.
        """
        f = Fields(migrate(path, data, SCHEMA_VERSION, MIGRATIONS), path)
        rows = f.data.get("rows")
        if rows is not None and not (isinstance(rows, list) and all(isinstance(r, dict) for r in rows)):
            f.fail("rows", "a list of objects")
        return cls(key=f.text("key"), epochs_done=f.integer("epochs_done", lo=0),
                   rows=[dict(r) for r in rows or []],
                   early_stopping=EarlyStoppingState.from_json(f.obj("early_stopping")))


def _v0_to_v1(data: JsonObject) -> JsonObject:
    """Version 0 (no schema_version) has the keys of version 1; a state without
    ``early_stopping`` had a fresh one."""
    return {**data, "early_stopping": data.get("early_stopping") or {}}


MIGRATIONS: dict[int, Migration] = {0: _v0_to_v1}


def read_state(folder: Path) -> CheckpointState | None:
    """The checkpoint state in `folder` (the checkpoint folder), or None when there is none.

    Raises:
        RecordError: unreadable (a symlink, not a regular file, over its size limit: records.untrusted),
            not a checkpoint state, or written by a newer sweep.
    """
    path = folder / CHECKPOINT_STATE
    data = load_object(path, RECORD_LIMIT)  # from an execute node: bounded, no symlink
    return None if data is None else CheckpointState.from_json(data, path)


def write_state(folder: Path, state: CheckpointState) -> None:
    """Write `folder`/state.json atomically (after the checkpoint's other files)."""
    atomic_write_json(folder / CHECKPOINT_STATE, state.to_json())
