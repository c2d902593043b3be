"""A run's run.json: how its job ended (status, exit status, error), where and with what it ran
(host, interpreter, threads, device, code, dataset) and when. The job process writes it in every
case through this module (sweep.job.runner, and sweep.job's __main__ when the interpreter
cannot run the job); collect, status and the search driver read it (records.runs).

It comes back from an execute node: untrusted. :meth:`RunInfo.from_json` checks every key's
type and raises RecordError naming the file, the key and what was expected.

This module is imported by the job before it knows whether numpy is installed: standard library
only, here and in what it imports.

Schema versions: 0, files written before run.json carried ``schema_version`` (by sweep, by the
job wrapper when it found no interpreter, or by hand: any key may be missing but ``status``;
read as 1); 1, the same keys with ``schema_version``. The job wrapper (templates/run_job.sh.j2),
a shell script that runs before any Python, writes the same three keys as
:func:`write_failed_run` with the current schema_version (tests/test_records.py checks it).
Version 1 later gained the optional key ``phases`` (where the job's time went, issue 27), and
then ``provenance`` and ``outputs`` (what a result can be checked against, issue 26), and
``config_sha256`` (which version of its sweep's shared config.yaml the job read, issue 27): additive,
so no new version; a reader ignores keys it does not know, and a run.json without them is a run
of an older sweep (nothing to check: "unverified").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..core.names import HISTORY, METRICS, MODEL, MODEL_INFO, ROC, RUN_INFO
from ..core.states import RunState
from ..fsutil import atomic_write_json
from .base import OMIT_NONE, Fields, JsonObject, Migration, RecordError, migrate, to_json
from .untrusted import RECORD_LIMIT, load_object

SCHEMA_VERSION = 1
#: What a run.json may say of its run (sweep.core.states.RunState values).
RUN_STATUSES = (RunState.RUNNING, RunState.OK, RunState.FAILED, RunState.PRUNED)
#: The phases of a job's start, in order (sweep/job/phases.py says what each one holds).
PHASES = ("startup", "data", "model", "training", "checkpoints", "evaluation", "output")
#: The outputs whose sha256 the job records in run.json (`outputs`) once they are final, those of
#: them it wrote: what `sweep collect` checks the run's folder against.
DIGESTED = (MODEL, MODEL_INFO, METRICS, HISTORY, ROC)
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass
class Phase:
    """Wall and CPU seconds of one phase of a job's start (CPU: every thread of the process)."""

    wall_s: float
    cpu_s: float

    @classmethod
    def from_json(cls, f: Fields) -> Phase:
        """Read one phase.

        Raises:
            RecordError: a time that is not a finite number >= 0.
        """
        return cls(wall_s=f.number("wall_s", lo=0, finite=True), cpu_s=f.number("cpu_s", lo=0, finite=True))


@dataclass
class Threads:
    """The CPUs a job was given and the threads it set (TensorFlow's intra- and inter-op)."""

    cpus: int
    cpus_source: str
    intra_op: int | None = field(default=None, metadata=OMIT_NONE)
    inter_op: int | None = field(default=None, metadata=OMIT_NONE)

    @classmethod
    def from_json(cls, f: Fields) -> Threads:
        """Read `threads`.

        Raises:
            RecordError: a key of the wrong type.
        """
        return cls(cpus=f.integer("cpus", lo=0), cpus_source=f.opt_text("cpus_source") or "",
                   intra_op=f.opt_integer("intra_op", lo=0), inter_op=f.opt_integer("inter_op", lo=0))


@dataclass
class DatasetIdentity:
    """The dataset a run trained on (the one a per-model file was cut from), and how it came."""

    file: str
    sha256: str
    size: int
    transferred_bytes: int | None = field(default=None, metadata=OMIT_NONE)  # into the job's scratch folder
    fetched_from: str | None = field(default=None, metadata=OMIT_NONE)  # data.url, by a transfer plugin

    @classmethod
    def from_json(cls, f: Fields) -> DatasetIdentity:
        """Read `dataset`.

        Raises:
            RecordError: a key of the wrong type.
        """
        return cls(file=f.text("file"), sha256=f.text("sha256"), size=f.integer("size", lo=0),
                   transferred_bytes=f.opt_integer("transferred_bytes", lo=0), fetched_from=f.opt_text("fetched_from"))


@dataclass
class CodeOrigin:
    """Where the job's sweep code came from: the archive shipped with it, or a folder."""

    archive: str | None = field(default=None, metadata=OMIT_NONE)
    sha256: str | None = field(default=None, metadata=OMIT_NONE)
    loaded_from: str | None = field(default=None, metadata=OMIT_NONE)
    folder: str | None = field(default=None, metadata=OMIT_NONE)

    @classmethod
    def from_json(cls, f: Fields) -> CodeOrigin:
        """Read `code`.

        Raises:
            RecordError: a key of the wrong type.
        """
        return cls(archive=f.opt_text("archive"), sha256=f.opt_text("sha256"), loaded_from=f.opt_text("loaded_from"),
                   folder=f.opt_text("folder"))


@dataclass
class Interpreter:
    """The Python that ran the job."""

    executable: str
    prefix: str

    @classmethod
    def from_json(cls, f: Fields) -> Interpreter:
        """Read `interpreter`.

        Raises:
            RecordError: a key of the wrong type.
        """
        return cls(executable=f.text("executable"), prefix=f.opt_text("prefix") or "")


@dataclass
class Device:
    """What TensorFlow trained on: "GPU:0" or "CPU", the GPUs' names, CUDA_VISIBLE_DEVICES."""

    trained_on: str
    gpus: list[str] = field(default_factory=list)
    cuda_visible_devices: str | None = None

    @classmethod
    def from_json(cls, f: Fields) -> Device:
        """Read `device`.

        Raises:
            RecordError: a key of the wrong type.
        """
        return cls(trained_on=f.text("trained_on"), gpus=f.texts("gpus"),
                   cuda_visible_devices=f.opt_text("cuda_visible_devices"))


@dataclass
class Provenance:
    """Where a run's result comes from: the project's checkout and the host it was submitted from
    (the submit side writes them into config.yaml, the job copies them), the HTCondor that queued
    the job (the job ad's CondorVersion) and the execute node's (the machine ad's); a key nobody
    could tell (not a git checkout, the local backend) is left out."""

    commit: str | None = field(default=None, metadata=OMIT_NONE)  # the project checkout's HEAD
    dirty: bool | None = field(default=None, metadata=OMIT_NONE)  # tracked files changed since `commit`
    submit_host: str | None = field(default=None, metadata=OMIT_NONE)
    submit_condor: str | None = field(default=None, metadata=OMIT_NONE)  # "23.9.6": the HTCondor that queued it
    execute_condor: str | None = field(default=None, metadata=OMIT_NONE)  # the execute node's HTCondor

    @classmethod
    def from_json(cls, f: Fields) -> Provenance:
        """Read `provenance`.

        Raises:
            RecordError: a key of the wrong type.
        """
        return cls(commit=f.opt_text("commit"), dirty=f.opt_boolean("dirty"), submit_host=f.opt_text("submit_host"),
                   submit_condor=f.opt_text("submit_condor"), execute_condor=f.opt_text("execute_condor"))


@dataclass
class RunInfo:
    """results/<sweep>/<run-id>/run.json. Only `status` is always there: a job that failed
    before it read its configuration knows little else."""

    status: RunState
    started: str | None = field(default=None, metadata=OMIT_NONE)
    host: str | None = field(default=None, metadata=OMIT_NONE)
    pid: int | None = field(default=None, metadata=OMIT_NONE)
    argv: list[str] | None = field(default=None, metadata=OMIT_NONE)
    run_id: str | None = field(default=None, metadata=OMIT_NONE)
    config_id: str | None = field(default=None, metadata=OMIT_NONE)
    sweep: str | None = field(default=None, metadata=OMIT_NONE)
    seed: int | None = field(default=None, metadata=OMIT_NONE)
    model: str | None = field(default=None, metadata=OMIT_NONE)
    code: CodeOrigin | None = field(default=None, metadata=OMIT_NONE)
    interpreter: Interpreter | None = field(default=None, metadata=OMIT_NONE)
    threads: Threads | None = field(default=None, metadata=OMIT_NONE)
    device: Device | None = field(default=None, metadata=OMIT_NONE)
    dataset: DatasetIdentity | None = field(default=None, metadata=OMIT_NONE)
    exit_code: int | None = field(default=None, metadata=OMIT_NONE)
    finished: str | None = field(default=None, metadata=OMIT_NONE)
    software: dict[str, str] | None = field(default=None, metadata=OMIT_NONE)  # package -> version
    error: str | None = field(default=None, metadata=OMIT_NONE)
    duration_s: float | None = field(default=None, metadata=OMIT_NONE)
    pruned_at_epoch: int | None = field(default=None, metadata=OMIT_NONE)
    best_epoch: int | None = field(default=None, metadata=OMIT_NONE)
    resumed_from_epoch: int | None = field(default=None, metadata=OMIT_NONE)
    job_starts: int | None = field(default=None, metadata=OMIT_NONE)  # HTCondor's starts, this one included
    phases: dict[str, Phase] | None = field(default=None, metadata=OMIT_NONE)  # this start's, in PHASES order
    provenance: Provenance | None = field(default=None, metadata=OMIT_NONE)
    outputs: dict[str, str] | None = field(default=None, metadata=OMIT_NONE)  # output (DIGESTED) -> its sha256
    #: the sha256 of the config.yaml the job read (a sweep's shared one is named by it: core.names)
    config_sha256: str | None = field(default=None, metadata=OMIT_NONE)

    def to_json(self) -> JsonObject:
        """The record's JSON object (schema_version first)."""
        return to_json(self, SCHEMA_VERSION)

    @classmethod
    def from_json(cls, data: JsonObject, path: str | Path = RUN_INFO) -> RunInfo:
        """A run.json from its JSON object, of any schema version up to this sweep's.

        Raises:
            RecordError: written by a newer sweep, or a key of the wrong type (file and key named).
        """
        f = Fields(migrate(path, data, SCHEMA_VERSION, MIGRATIONS), path)
        code, interpreter, threads, device, dataset = (f.opt_obj(k) for k in (
            "code", "interpreter", "threads", "device", "dataset"))
        return cls(status=RunState(f.choice("status", tuple(s.value for s in RUN_STATUSES))),
                   started=f.opt_text("started"), host=f.opt_text("host"), pid=f.opt_integer("pid", lo=0),
                   argv=f.opt_texts("argv"), run_id=f.opt_text("run_id"), config_id=f.opt_text("config_id"),
                   sweep=f.opt_text("sweep"), seed=f.opt_integer("seed"), model=f.opt_text("model"),
                   code=CodeOrigin.from_json(code) if code else None,
                   interpreter=Interpreter.from_json(interpreter) if interpreter else None,
                   threads=Threads.from_json(threads) if threads else None,
                   device=Device.from_json(device) if device else None,
                   dataset=DatasetIdentity.from_json(dataset) if dataset else None,
                   exit_code=f.opt_integer("exit_code"), finished=f.opt_text("finished"),
                   software=f.text_map("software") if f.has("software") else None, error=f.opt_text("error"),
                   duration_s=f.opt_number("duration_s", lo=0), pruned_at_epoch=f.opt_integer("pruned_at_epoch", lo=0),
                   best_epoch=f.opt_integer("best_epoch", lo=0),
                   resumed_from_epoch=f.opt_integer("resumed_from_epoch", lo=0),
                   job_starts=f.opt_integer("job_starts", lo=0), phases=_phases(f),
                   provenance=Provenance.from_json(f.obj("provenance")) if f.has("provenance") else None,
                   outputs=_outputs(f), config_sha256=_sha256(f, "config_sha256"))


def _sha256(f: Fields, key: str) -> str | None:
    value = f.opt_text(key)
    if value is not None and not _SHA256.fullmatch(value):
        raise RecordError(f.path, f"expected a sha256 (64 lowercase hex digits), got {value[:70]!r}", f.prefix + key)
    return value


def _outputs(f: Fields) -> dict[str, str] | None:
    """`outputs`: only the DIGESTED names (collect opens them in the run's folder), each with a
    sha256 in lowercase hex."""
    if not f.has("outputs"):
        return None
    outputs = f.text_map("outputs")
    for name, digest in outputs.items():
        if name not in DIGESTED:
            raise RecordError(f.path, f"expected only the outputs {', '.join(DIGESTED)}, got {name[:40]!r}",
                              f.prefix + "outputs")
        if not _SHA256.fullmatch(digest):
            raise RecordError(f.path, f"expected a sha256 (64 lowercase hex digits), got {digest[:70]!r}",
                              f"{f.prefix}outputs.{name}")
    return {name: outputs[name] for name in DIGESTED if name in outputs}


def _phases(f: Fields) -> dict[str, Phase] | None:
    if not f.has("phases"):
        return None
    phases = f.obj_map("phases")
    unknown = sorted(set(phases) - set(PHASES))
    if unknown:
        raise RecordError(f.path, f"expected only the phases {', '.join(PHASES)}, got {unknown[0][:40]!r}",
                          f.prefix + "phases")
    return {name: Phase.from_json(phases[name]) for name in PHASES if name in phases}


def _v0_to_v1(data: JsonObject) -> JsonObject:
    """Version 0 (no schema_version) has the keys of version 1; ``"job_starts": null`` (outside
    HTCondor) is left out, as version 1 writes it."""
    return {k: v for k, v in data.items() if not (k == "job_starts" and v is None)}


MIGRATIONS: dict[int, Migration] = {0: _v0_to_v1}


def read_run_info(folder: Path) -> RunInfo | None:
    """The run.json in `folder`, or None when there is none.

    Raises:
        RecordError: unreadable (a symlink, not a regular file, over its size limit: records.untrusted),
            not a run.json, or written by a newer sweep (file and key named).
    """
    path = folder / RUN_INFO
    data = load_object(path, RECORD_LIMIT)  # from an execute node: bounded, no symlink
    return None if data is None else RunInfo.from_json(data, path)


def recorded_config_sha256(folder: Path) -> str | None:
    """The sha256 of the config.yaml the job in `folder` read (run.json's config_sha256), or None:
    none recorded, no run.json, or one that cannot be read (an execute node's file: unreadable is
    no reason to refuse what asks, which then takes the newest version)."""
    try:
        info = read_run_info(folder)
    except RecordError:
        return None
    return info.config_sha256 if info is not None else None


def write_run_info(folder: Path, info: RunInfo) -> None:
    """Write `folder`/run.json atomically."""
    atomic_write_json(folder / RUN_INFO, info.to_json())


def write_failed_run(folder: Path, exit_code: int, error: str) -> None:
    """The run.json of a job that cannot start (an interpreter without what the job needs):
    status failed, its exit status and why. Standard library only, as all of this module."""
    write_run_info(folder, RunInfo(status=RunState.FAILED, exit_code=exit_code, error=error))
