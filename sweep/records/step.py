"""A chain step's step.json: how the step job ended and what it made. The step job writes it in
every case, through this module alone (sweep.job.step); the chain reads it to take the step's
outputs, or to find the step done when its job ended while no chain job followed it
(sweep.chain.steps).

It comes back from an execute node: untrusted. :meth:`StepRecord.from_json` checks every key's
type and raises RecordError naming the file, the key and what was expected.

Standard library only (the job imports it).

Schema versions: 0, files written before step.json carried ``schema_version`` (read as 1);
1, the same keys with ``schema_version``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.names import STEP_RESULT
from ..fsutil import atomic_write_json
from .base import OMIT_NONE, Fields, JsonObject, Migration, migrate, to_json
from .untrusted import RECORD_LIMIT, load_object
from .runinfo import Threads

SCHEMA_VERSION = 1
STEP_STATUSES = ("running", "done", "failed")


@dataclass
class StepRecord:
    """results/<chain>/steps/<stage>-<inputs hash>/step.json. The simulation sets output (its
    dataset's file name), sha256, waveforms, mean_peaks, mean_clusters, threshold (the peak
    finder's working point its peaks were found at), notes and python; the choice of the peak
    leader (``select``) chosen (its index in the shortlist), separations (each shortlisted model's
    best π/K separation on the calibration tracks, None where it separates nothing), threshold
    and notes; the evaluation output (its files' names), summary, warnings and evaluate_seconds."""

    step: str | None  # "select" | "simulate" | "evaluate" (anything else is a failed step that says so)
    chain: str | None
    inputs_hash: str | None
    status: str  # STEP_STATUSES
    started: str | None = field(default=None, metadata=OMIT_NONE)
    host: str | None = field(default=None, metadata=OMIT_NONE)
    pid: int | None = field(default=None, metadata=OMIT_NONE)
    threads: Threads | None = field(default=None, metadata=OMIT_NONE)
    output: str | list[str] | None = field(default=None, metadata=OMIT_NONE)
    sha256: str | None = field(default=None, metadata=OMIT_NONE)
    waveforms: int | None = field(default=None, metadata=OMIT_NONE)
    mean_peaks: float | None = field(default=None, metadata=OMIT_NONE)
    mean_clusters: float | None = field(default=None, metadata=OMIT_NONE)
    threshold: float | None = field(default=None, metadata=OMIT_NONE)  # the peak finder's working point
    chosen: int | None = field(default=None, metadata=OMIT_NONE)  # select: the leader's index in the shortlist
    separations: list[float | None] | None = field(default=None, metadata=OMIT_NONE)  # select: σ of each
    notes: list[str] | None = field(default=None, metadata=OMIT_NONE)
    python: str | None = field(default=None, metadata=OMIT_NONE)
    summary: dict[str, Any] | None = field(default=None, metadata=OMIT_NONE)  # the evaluation's headline figures
    warnings: list[str] | None = field(default=None, metadata=OMIT_NONE)
    evaluate_seconds: float | None = field(default=None, metadata=OMIT_NONE)
    exit_code: int | None = field(default=None, metadata=OMIT_NONE)
    finished: str | None = field(default=None, metadata=OMIT_NONE)
    seconds: float | None = field(default=None, metadata=OMIT_NONE)
    software: dict[str, str] | None = field(default=None, metadata=OMIT_NONE)
    error: str | None = field(default=None, metadata=OMIT_NONE)

    @property
    def outputs(self) -> list[str]:
        """The files the step made (none, one or several)."""
        return [self.output] if isinstance(self.output, str) else list(self.output or [])

    def to_json(self) -> JsonObject:
        """The record's JSON object (schema_version first)."""
        return to_json(self, SCHEMA_VERSION)

    @classmethod
    def from_json(cls, data: JsonObject, path: str | Path = STEP_RESULT) -> StepRecord:
        """A step.json from its JSON object, of any schema version up to this sweep's.

        Raises:
            RecordError: written by a newer sweep, or a key of the wrong type (file and key named).
        """
        f = Fields(migrate(path, data, SCHEMA_VERSION, MIGRATIONS), path)
        threads = f.opt_obj("threads")
        output: str | list[str] | None = None
        if isinstance(f.data.get("output"), str):
            output = f.text("output")
        elif f.has("output"):
            output = f.texts("output")
        return cls(step=f.opt_text("step"), chain=f.opt_text("chain"), inputs_hash=f.opt_text("inputs_hash"),
                   status=f.choice("status", STEP_STATUSES), started=f.opt_text("started"), host=f.opt_text("host"),
                   pid=f.opt_integer("pid", lo=0), threads=Threads.from_json(threads) if threads else None,
                   output=output, sha256=f.opt_text("sha256"), waveforms=f.opt_integer("waveforms", lo=0),
                   mean_peaks=f.opt_number("mean_peaks"), mean_clusters=f.opt_number("mean_clusters"),
                   threshold=f.opt_number("threshold", lo=0), chosen=f.opt_integer("chosen", lo=0),
                   separations=[None if v != v else v for v in f.numbers("separations")] if f.has("separations")
                   else None,
                   notes=f.opt_texts("notes"), python=f.opt_text("python"),
                   summary=f.opt_mapping("summary"),
                   warnings=f.opt_texts("warnings"), evaluate_seconds=f.opt_number("evaluate_seconds", lo=0),
                   exit_code=f.opt_integer("exit_code"), finished=f.opt_text("finished"),
                   seconds=f.opt_number("seconds", lo=0),
                   software=f.text_map("software") if f.has("software") else None,
                   error=f.opt_text("error"))


def _v0_to_v1(data: JsonObject) -> JsonObject:
    """Version 0 (no schema_version) has the keys of version 1."""
    return data


MIGRATIONS: dict[int, Migration] = {0: _v0_to_v1}


def read_step(folder: Path) -> StepRecord | None:
    """The step.json in `folder`, or None when there is none.

    Raises:
        RecordError: unreadable (a symlink, not a regular file, over its size limit: records.untrusted),
            not a step.json, or written by a newer sweep (file and key named).
    """
    path = folder / STEP_RESULT
    data = load_object(path, RECORD_LIMIT)  # from an execute node: bounded, no symlink
    return None if data is None else StepRecord.from_json(data, path)


def write_step(folder: Path, record: StepRecord) -> None:
    """Write `folder`/step.json atomically."""
    atomic_write_json(folder / STEP_RESULT, record.to_json())
