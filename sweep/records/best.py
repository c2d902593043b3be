"""The index of a sweep's best runs, results/<sweep>/best/best.json: the ranking they were
chosen by and, per rank, the run and the files copied into best/<rank>-<run-id>/. `sweep
collect --best` writes it through this module alone (sweep.collect.leaderboard.copy_best), for
people and their scripts; sweep itself does not read it back.

Schema versions: 0, files written before best.json carried ``schema_version`` (read as 1);
1, the same keys with ``schema_version``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..core.names import BEST_INDEX
from ..fsutil import atomic_write_json
from .base import Fields, JsonObject, Migration, load_object, migrate, to_json

SCHEMA_VERSION = 1


@dataclass
class BestRun:
    """One of the best runs: its rank, id, folder under best/ and the files copied there."""

    rank: int
    run_id: str
    folder: str
    files: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, f: Fields) -> BestRun:
        """Read an entry of `best`.

        Raises:
            RecordError: a key of the wrong type.
        """
        return cls(rank=f.integer("rank", lo=1), run_id=f.text("run_id"), folder=f.text("folder"),
                   files=f.texts("files"))


@dataclass
class BestIndex:
    """results/<sweep>/best/best.json."""

    sweep: str
    ranking: list[tuple[str, str]]
    best: list[BestRun] = field(default_factory=list)

    def to_json(self) -> JsonObject:
        """The record's JSON object (schema_version first)."""
        return to_json(self, SCHEMA_VERSION)

    @classmethod
    def from_json(cls, data: JsonObject, path: str | Path = BEST_INDEX) -> BestIndex:
        """The index from its JSON object, of any schema version up to this sweep's.

        Raises:
            RecordError: written by a newer sweep, or a key of the wrong type.
        """
        f = Fields(migrate(path, data, SCHEMA_VERSION, MIGRATIONS), path)
        return cls(sweep=f.text("sweep"), ranking=f.pairs("ranking"),
                   best=[BestRun.from_json(b) for b in f.objs("best")])


def _v0_to_v1(data: JsonObject) -> JsonObject:
    """Version 0 (no schema_version) has the keys of version 1."""
    return data


MIGRATIONS: dict[int, Migration] = {0: _v0_to_v1}


def read_best_index(folder: Path) -> BestIndex | None:
    """The index in `folder` (a best/ folder), or None when there is none.

    Raises:
        RecordError: unreadable, not an index, or written by a newer sweep.
    """
    path = folder / BEST_INDEX
    data = load_object(path)
    return None if data is None else BestIndex.from_json(data, path)


def write_best_index(folder: Path, index: BestIndex) -> None:
    """Write `folder`/best.json (atomically; best/ itself is swapped in whole by its writer)."""
    atomic_write_json(folder / BEST_INDEX, index.to_json())
