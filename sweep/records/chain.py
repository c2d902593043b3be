"""A chain's record, results/<chain>/chain.json: each stage's state, what it was made from (its
inputs' hash) and what it made (a leader, a dataset, an evaluation), and the chain jobs queued
for it. This module alone writes it (sweep.chain.stages after each stage's step,
sweep.chain.run when it queues the chain job); `sweep status`, `collect` and `report` read it.

Schema versions: 0, files written before the record carried ``schema_version`` (read as 1,
an empty ``previous_leader`` object read as none); 1, the same keys with ``schema_version``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write_json
from .base import OMIT_NONE, Fields, JsonObject, Migration, load_object_recovering, migrate, to_json

SCHEMA_VERSION = 1
CHAIN_RECORD = "chain.json"  # results/<chain>/chain.json
STAGE_STATES = ("running", "done", "failed")


@dataclass
class Leader:
    """A grid stage's best run, kept as results/<chain>/<stage>-leader.keras."""

    run_id: str
    name: str | None
    metric: str
    value: float | None
    sha256: str
    model: str  # the kept copy, relative to the project folder
    metrics: dict[str, float | None] = field(default_factory=dict)  # the sweep's ranking metrics

    @classmethod
    def from_json(cls, f: Fields) -> Leader:
        """Read a leader.

        Raises:
            RecordError: a key of the wrong type.
        """
        return cls(run_id=f.text("run_id"), name=f.opt_text("name"), metric=f.text("metric"),
                   value=f.opt_number("value"), sha256=f.text("sha256"), model=f.text("model"),
                   metrics=f.number_map("metrics"))


@dataclass
class StageEntry:
    """One stage's state in the record; the keys a stage does not use stay unset (not written).

    Grid stages (peaks, clusters) set sweep, leader, previous_leader, ranked, changed (a peak
    leader chosen by π/K separation also shortlist, the runs it was chosen among, inputs_hash,
    threshold, its working point, and job, its choice's step job); the
    simulation inputs_hash, path, sha256, waveforms, mean_peaks, mean_clusters, threshold; the evaluation
    inputs_hash, output, summary, warnings; both steps skipped, seconds, host and job."""

    state: str  # STAGE_STATES
    at: str = ""
    sweep: str | None = field(default=None, metadata=OMIT_NONE)
    previous_leader: Leader | None = field(default=None, metadata=OMIT_NONE)
    leader: Leader | None = field(default=None, metadata=OMIT_NONE)
    ranked: int | None = field(default=None, metadata=OMIT_NONE)
    changed: bool | None = field(default=None, metadata=OMIT_NONE)
    skipped: bool | None = field(default=None, metadata=OMIT_NONE)
    inputs_hash: str | None = field(default=None, metadata=OMIT_NONE)
    path: str | None = field(default=None, metadata=OMIT_NONE)  # the simulation's dataset, as the pipeline says
    sha256: str | None = field(default=None, metadata=OMIT_NONE)
    waveforms: int | None = field(default=None, metadata=OMIT_NONE)
    mean_peaks: float | None = field(default=None, metadata=OMIT_NONE)
    mean_clusters: float | None = field(default=None, metadata=OMIT_NONE)
    threshold: float | None = field(default=None, metadata=OMIT_NONE)  # the simulation's peak working point
    output: str | None = field(default=None, metadata=OMIT_NONE)  # evaluation.json, relative to the project
    summary: dict[str, Any] | None = field(default=None, metadata=OMIT_NONE)  # the evaluation's headline figures
    warnings: list[str] | None = field(default=None, metadata=OMIT_NONE)
    seconds: float | None = field(default=None, metadata=OMIT_NONE)
    host: str | None = field(default=None, metadata=OMIT_NONE)
    job: str | None = field(default=None, metadata=OMIT_NONE)  # "cluster.proc" of the step's job
    reason: str | None = field(default=None, metadata=OMIT_NONE)  # why it failed
    shortlist: list[str] | None = field(default=None, metadata=OMIT_NONE)  # run ids a leader was chosen among

    @classmethod
    def from_json(cls, f: Fields) -> StageEntry:
        """Read a stage's entry.

        Raises:
            RecordError: a key of the wrong type.
        """
        prev, leader = f.opt_obj("previous_leader"), f.opt_obj("leader")
        return cls(state=f.choice("state", STAGE_STATES), at=f.opt_text("at") or "", sweep=f.opt_text("sweep"),
                   previous_leader=Leader.from_json(prev) if prev else None,
                   leader=Leader.from_json(leader) if leader else None, ranked=f.opt_integer("ranked", lo=0),
                   changed=f.opt_boolean("changed"), skipped=f.opt_boolean("skipped"),
                   inputs_hash=f.opt_text("inputs_hash"), path=f.opt_text("path"), sha256=f.opt_text("sha256"),
                   waveforms=f.opt_integer("waveforms", lo=0), mean_peaks=f.opt_number("mean_peaks"),
                   mean_clusters=f.opt_number("mean_clusters"), threshold=f.opt_number("threshold", lo=0),
                   output=f.opt_text("output"),
                   summary=f.opt_mapping("summary"), warnings=f.opt_texts("warnings"),
                   seconds=f.opt_number("seconds"), host=f.opt_text("host"), job=f.opt_text("job"),
                   reason=f.opt_text("reason"), shortlist=f.opt_texts("shortlist"))


@dataclass
class ChainJob:
    """A chain job queued on a pool (local universe)."""

    cluster: int
    owner: str | None
    submitted: str

    @classmethod
    def from_json(cls, f: Fields) -> ChainJob:
        """Read an entry of `jobs`.

        Raises:
            RecordError: a key of the wrong type.
        """
        return cls(cluster=f.integer("cluster", lo=0), owner=f.opt_text("owner"),
                   submitted=f.opt_text("submitted") or "")


@dataclass
class ChainRecord:
    """results/<chain>/chain.json."""

    chain: str | None = None
    pipeline: str | None = field(default=None, metadata=OMIT_NONE)  # the pipeline file, relative to the project
    stages: dict[str, StageEntry] = field(default_factory=dict)  # stage name (core.pipeline.STAGES) -> entry
    jobs: list[ChainJob] | None = field(default=None, metadata=OMIT_NONE)

    def to_json(self) -> JsonObject:
        """The record's JSON object (schema_version first)."""
        return to_json(self, SCHEMA_VERSION)

    @classmethod
    def from_json(cls, data: JsonObject, path: str | Path = CHAIN_RECORD) -> ChainRecord:
        """A chain record from its JSON object, of any schema version up to this sweep's.

        Raises:
            RecordError: written by a newer sweep, or a key of the wrong type (file and key named).
        """
        f = Fields(migrate(path, data, SCHEMA_VERSION, MIGRATIONS), path)
        return cls(chain=f.opt_text("chain"), pipeline=f.opt_text("pipeline"),
                   stages={k: StageEntry.from_json(v) for k, v in f.obj_map("stages").items()},
                   jobs=[ChainJob.from_json(j) for j in f.objs("jobs")] if f.has("jobs") else None)

    def stage(self, name: str) -> StageEntry | None:
        """A stage's entry, or None before it started."""
        return self.stages.get(name)


def _v0_to_v1(data: JsonObject) -> JsonObject:
    """Version 0: the keys of version 1, but a grid stage that had no leader before wrote
    ``"previous_leader": {}`` (version 1 leaves the key out)."""
    stages = data.get("stages")
    if isinstance(stages, dict):
        data = {**data, "stages": {k: ({kk: vv for kk, vv in v.items() if not (kk == "previous_leader" and vv == {})}
                                       if isinstance(v, dict) else v) for k, v in stages.items()}}
    return data


MIGRATIONS: dict[int, Migration] = {0: _v0_to_v1}


def read_chain(results: Path) -> ChainRecord:
    """results/<chain>/chain.json, or an empty record when there is none. A torn file (a crash
    or power cut while it was written) is read from its previous version, chain.json.prev,
    with a warning; it is never taken for an empty record (which would run every stage again
    and forget the jobs the chain queued).

    Raises:
        RecordError (a ResultsError): torn without a usable previous version, not a chain
            record, or written by a newer sweep (file and key named).
    """
    path = results / CHAIN_RECORD
    data = load_object_recovering(path)
    return ChainRecord() if data is None else ChainRecord.from_json(data, path)


def save_chain(results: Path, record: ChainRecord) -> None:
    """Replace results/<chain>/chain.json atomically and durably (fsync of the file and its
    folder), keeping the version it replaces as chain.json.prev (one chain process writes it
    at a time: the chain job, or `sweep chain` before it queues one).

    Raises:
        LinkedPathError: chain.json is a symbolic link.
        OSError: the file cannot be written.
    """
    atomic_write_json(results / CHAIN_RECORD, record.to_json(), durable=True, keep_previous=True)
