"""A sweep's manifest, jobs/<sweep>/sweep.json: its runs, its submissions, the memory its runs
needed, its code archive and dataset, and a search's settings. This module alone writes it
(the submit stage and the search driver render into it through :func:`updating`, backends
record submissions through :func:`update_submission`, collect the memory through
:func:`remember_memory`); status, collect, resubmit and the backends read it as a
:class:`Manifest`. Every write replaces the file atomically, and every read-modify-write holds
the sweep's lock (records.lock), so two commands at once cannot lose each other's entries.

`runs` keeps every run the sweep has ever recorded: a run that the current grid no longer has
is marked ``"in_grid": false`` (its results stay rankable), never dropped.

Schema versions: 0, files written before the manifest carried ``schema_version`` (read as 1);
1, the same keys with ``schema_version``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import ResultsError
from ..core.names import BACKEND_HTCONDOR, JOBS_DIR, MANIFEST, SweepPaths
from ..fsutil import atomic_write_json, file_digest
from .base import (OMIT_NONE, OMIT_TRUE, Fields, JsonObject, Migration, RecordError, load_object_recovering, migrate,
                   to_json)
from .lock import check_lock, sweep_lock

SCHEMA_VERSION = 1


def now() -> str:
    """The current UTC time as the manifest records it (ISO 8601, seconds)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass
class RunEntry:
    """One run the sweep has recorded: its ids, name, repeat, seed and swept values."""

    run_id: str
    config_id: str
    name: str
    repeat: int = 0
    seed: int = 0
    swept: dict[str, Any] = field(default_factory=dict)  # hyperparameter -> value: as open as the grid
    trials: list[int] | None = field(default=None, metadata=OMIT_NONE)  # a search's trials of this run
    in_grid: bool = field(default=True, metadata=OMIT_TRUE)  # False: the grid no longer has it

    @classmethod
    def from_json(cls, f: Fields) -> RunEntry:
        """Read one entry of `runs`.

        Raises:
            RecordError: a key of the wrong type.
        """
        return cls(run_id=f.text("run_id"), config_id=f.text("config_id"), name=f.text("name"),
                   repeat=f.opt_integer("repeat", lo=0) or 0, seed=f.integer("seed"), swept=f.mapping("swept"),
                   trials=f.integers("trials", lo=0) if f.has("trials") else None,
                   in_grid=f.boolean("in_grid", True))


@dataclass
class Submission:
    """One submission of runs (or a search's driver job): where it went and what the schedd
    gave it. Keys that a backend does not know stay unset (not written)."""

    id: str
    at: str
    backend: str | None = field(default=None, metadata=OMIT_NONE)  # names.BACKEND_*
    mode: str | None = field(default=None, metadata=OMIT_NONE)  # "dag" | "direct"
    role: str | None = field(default=None, metadata=OMIT_NONE)  # names.ROLE_DRIVER for a search's driver
    runs: list[str] | None = field(default=None, metadata=OMIT_NONE)
    state: str | None = field(default=None, metadata=OMIT_NONE)  # "submitting" | "submitted"
    pool: str | None = field(default=None, metadata=OMIT_NONE)
    owner: str | None = field(default=None, metadata=OMIT_NONE)
    cluster: int | None = field(default=None, metadata=OMIT_NONE)
    dag: str | None = field(default=None, metadata=OMIT_NONE)
    retries: int | None = field(default=None, metadata=OMIT_NONE)
    jobs: int | None = field(default=None, metadata=OMIT_NONE)
    grid: str | None = field(default=None, metadata=OMIT_NONE)  # a driver's grid file

    @classmethod
    def from_json(cls, f: Fields) -> Submission:
        """Read one entry of `submissions`.

        Raises:
            RecordError: a key of the wrong type.
        """
        return cls(id=f.text("id"), at=f.opt_text("at") or "", backend=f.opt_text("backend"),
                   mode=f.opt_text("mode"), role=f.opt_text("role"),
                   runs=f.texts("runs") if f.has("runs") else None, state=f.opt_text("state"),
                   pool=f.opt_text("pool"), owner=f.opt_text("owner"), cluster=f.opt_integer("cluster", lo=0),
                   dag=f.opt_text("dag"), retries=f.opt_integer("retries", lo=0), jobs=f.opt_integer("jobs", lo=0),
                   grid=f.opt_text("grid"))


@dataclass
class CodeRef:
    """The code archive the jobs run (jobs/<sweep>/sweep-code-<sha256[:16]>.zip)."""

    archive: str
    sha256: str

    @classmethod
    def from_json(cls, f: Fields) -> CodeRef:
        """Read `code`.

        Raises:
            RecordError: a key of the wrong type.
        """
        return cls(archive=f.text("archive"), sha256=f.text("sha256"))


@dataclass
class DatasetRef:
    """The dataset the runs submitted last train on: its path and content digest."""

    path: str
    sha256: str
    size: int
    mtime_ns: int

    @classmethod
    def from_json(cls, f: Fields) -> DatasetRef:
        """Read `dataset`.

        Raises:
            RecordError: a key of the wrong type.
        """
        return cls(path=f.text("path"), sha256=f.text("sha256"), size=f.integer("size", lo=0),
                   mtime_ns=f.integer("mtime_ns"))

    def digest(self) -> dict[str, Any]:
        """As :func:`sweep.fsutil.file_digest` gives it (its `known` argument)."""
        return {"sha256": self.sha256, "size": self.size, "mtime_ns": self.mtime_ns}


def dataset_ref(path: Path, known: DatasetRef | None = None) -> DatasetRef:
    """The dataset at `path` as the manifest records it. `known` (the manifest's earlier record)
    is reused while it is of the same path and the file's size and modification time are
    unchanged, so a large file is read once.

    Raises:
        OSError: the file cannot be read.
    """
    earlier = known.digest() if known is not None and known.path == str(path) else None
    d = file_digest(path, earlier)
    return DatasetRef(path=str(path), sha256=d["sha256"], size=d["size"], mtime_ns=d["mtime_ns"])


@dataclass
class ResourceRequest:
    """What each job asks for (the grid's resources, sweep.core.grid.Resources.as_dict)."""

    request_cpus: int
    request_memory_mb: int
    request_disk_mb: int
    runtime_s: int
    request_gpus: int | None = field(default=None, metadata=OMIT_NONE)
    gpus_minimum_memory_mb: int | None = field(default=None, metadata=OMIT_NONE)

    @classmethod
    def from_json(cls, f: Fields) -> ResourceRequest:
        """Read `resources`.

        Raises:
            RecordError: a key of the wrong type.
        """
        return cls(request_cpus=f.integer("request_cpus", lo=0), request_memory_mb=f.integer("request_memory_mb", lo=0),
                   request_disk_mb=f.integer("request_disk_mb", lo=0), runtime_s=f.integer("runtime_s", lo=0),
                   request_gpus=f.opt_integer("request_gpus", lo=0),
                   gpus_minimum_memory_mb=f.opt_integer("gpus_minimum_memory_mb", lo=0))

    @classmethod
    def of(cls, resources: dict[str, int]) -> ResourceRequest:
        """From the grid's resources (sweep.core.grid.Resources.as_dict())."""
        return cls(request_cpus=resources["request_cpus"], request_memory_mb=resources["request_memory_mb"],
                   request_disk_mb=resources["request_disk_mb"], runtime_s=resources["runtime_s"],
                   request_gpus=resources.get("request_gpus"),
                   gpus_minimum_memory_mb=resources.get("gpus_minimum_memory_mb"))


@dataclass
class SearchInfo:
    """A search's settings, as its driver recorded them."""

    sampler: str
    pruner: str
    objectives: list[tuple[str, str]]
    trials: int
    parallel: int
    seed: int | None
    journal: str
    prune_on: list[str]
    backend: str

    @classmethod
    def from_json(cls, f: Fields) -> SearchInfo:
        """Read `search`.

        Raises:
            RecordError: a key of the wrong type.
        """
        return cls(sampler=f.text("sampler"), pruner=f.text("pruner"), objectives=f.pairs("objectives"),
                   trials=f.integer("trials", lo=0), parallel=f.integer("parallel", lo=0), seed=f.opt_integer("seed"),
                   journal=f.text("journal"), prune_on=f.texts("prune_on"), backend=f.text("backend"))


@dataclass
class Manifest:
    """jobs/<sweep>/sweep.json. What a render records (sweep, model, grid, ranking, ...) is None
    in a manifest that holds only a submission so far (a search whose driver job is queued and
    has not started)."""

    sweep: str | None = None
    model: str | None = None
    description: str | None = None
    grid: str | None = None  # the grid file, absolute
    grid_sha256: str | None = field(default=None, metadata=OMIT_NONE)  # a search's driver records none
    rendered_at: str | None = None
    sweep_version: str | None = None
    ranking: list[tuple[str, str]] = field(default_factory=list)
    swept: list[str] = field(default_factory=list)
    resources: ResourceRequest | None = None
    code: CodeRef | None = None
    search: SearchInfo | None = field(default=None, metadata=OMIT_NONE)
    runs: list[RunEntry] = field(default_factory=list)
    dataset: DatasetRef | None = field(default=None, metadata=OMIT_NONE)
    submissions: list[Submission] = field(default_factory=list)
    learned_memory_mb: dict[str, int] = field(default_factory=dict)  # run id -> MB its next job asks for

    def to_json(self) -> JsonObject:
        """The manifest's JSON object (schema_version first)."""
        return to_json(self, SCHEMA_VERSION)

    @classmethod
    def from_json(cls, data: JsonObject, path: str | Path = MANIFEST) -> Manifest:
        """A manifest from its JSON object, of any schema version up to this sweep's.

        Raises:
            RecordError: written by a newer sweep, or a key of the wrong type (file and key named).
        """
        f = Fields(migrate(path, data, SCHEMA_VERSION, MIGRATIONS), path)
        resources, code, search, dataset = f.opt_obj("resources"), f.opt_obj("code"), f.opt_obj("search"), \
            f.opt_obj("dataset")
        return cls(sweep=f.opt_text("sweep"), model=f.opt_text("model"), description=f.opt_text("description"),
                   grid=f.opt_text("grid"), grid_sha256=f.opt_text("grid_sha256"),
                   rendered_at=f.opt_text("rendered_at"),
                   sweep_version=f.opt_text("sweep_version"), ranking=f.pairs("ranking"), swept=f.texts("swept"),
                   resources=ResourceRequest.from_json(resources) if resources else None,
                   code=CodeRef.from_json(code) if code else None,
                   search=SearchInfo.from_json(search) if search else None,
                   runs=[RunEntry.from_json(r) for r in f.objs("runs")],
                   dataset=DatasetRef.from_json(dataset) if dataset else None,
                   submissions=[Submission.from_json(s) for s in f.objs("submissions")],
                   learned_memory_mb=f.integer_map("learned_memory_mb", lo=0))

    def run(self, run_id: str) -> RunEntry | None:
        """The entry of a run, or None."""
        return next((r for r in self.runs if r.run_id == run_id), None)

    @property
    def on_pool(self) -> bool:
        """Whether any submission of the sweep went to HTCondor."""
        return any(s.backend == BACKEND_HTCONDOR for s in self.submissions)


def _v0_to_v1(data: JsonObject) -> JsonObject:
    """Version 0 (no schema_version) has the keys of version 1, but a submission written by hand
    (or by a test's stand-in) may lack its id: version 1 has "" there."""
    subs = data.get("submissions")
    if isinstance(subs, list):
        data = {**data, "submissions": [{**s, "id": ""} if isinstance(s, dict) and s.get("id") is None else s
                                        for s in subs]}
    return data


MIGRATIONS: dict[int, Migration] = {0: _v0_to_v1}


def read_manifest(jobs_dir: Path) -> Manifest | None:
    """The manifest in `jobs_dir`, or None when there is none. A torn manifest (a crash or
    power cut while it was written) is read from its previous version, sweep.json.prev, with a
    warning.

    Raises:
        RecordError (a ResultsError): the file exists but is unreadable (and so is its previous
            version), not a manifest, or written by a newer sweep.
    """
    path = jobs_dir / MANIFEST
    try:
        data = load_object_recovering(path)
    except RecordError as exc:  # as sweep has always said it
        raise RecordError(path, f"unreadable sweep manifest: {exc.detail}") from None
    return None if data is None else Manifest.from_json(data, path)


def load_manifest(root: Path, sweep: str) -> Manifest:
    """The manifest of sweep `sweep` under the project folder `root`.

    Raises:
        ResultsError: when the project has no such sweep, or its manifest is unreadable.
    """
    paths = SweepPaths(root.resolve())
    manifest = read_manifest(paths.jobs(sweep))
    if manifest is None:
        raise ResultsError(f"no sweep '{sweep}' under {paths.root / JOBS_DIR} (run `sweep submit GRID` first)")
    return manifest


def save_manifest(jobs_dir: Path, manifest: Manifest) -> None:
    """Replace the manifest in `jobs_dir` atomically and durably (fsync of the file and its
    folder: it holds the intent record written before a submission), keeping the version it
    replaces as sweep.json.prev (read when sweep.json is torn). The caller holds the sweep's
    lock when it read the manifest it is saving; :func:`updating` does all three. When this
    process holds the lock, it first makes sure it still does (fencing): the intent record of a
    submission is never written by a command that lost the lock.

    Raises:
        LockLostError (a LockedError): this process held the sweep's lock and lost it; nothing
            was written.
        LinkedPathError: sweep.json is a symbolic link.
        OSError: the file cannot be written.
    """
    check_lock(jobs_dir)
    atomic_write_json(jobs_dir / MANIFEST, manifest.to_json(), durable=True, keep_previous=True)


@contextmanager
def updating(jobs_dir: Path) -> Iterator[Manifest]:
    """Read, change and write the manifest under the sweep's lock: the block changes the
    manifest it is given (a new, empty one when there is none); it is written when the block
    ends without an error.

    Yields:
        The manifest.

    Raises:
        RecordError: the existing manifest is unreadable or written by a newer sweep.
        LockedError: another command held the sweep's lock too long.
    """
    with sweep_lock(jobs_dir):
        manifest = read_manifest(jobs_dir) or Manifest()
        yield manifest
        save_manifest(jobs_dir, manifest)


def merge_runs(old: list[RunEntry], current: list[RunEntry]) -> list[RunEntry]:
    """The current grid's runs, then every earlier run it no longer has, marked in_grid false."""
    ids = {r.run_id for r in current}
    return [*(dataclasses.replace(r, in_grid=True) for r in current),
            *(dataclasses.replace(r, in_grid=False) for r in old if r.run_id not in ids)]


def list_sweeps(root: Path) -> list[str]:
    """The names of the sweeps under `root`/jobs/ (those with a manifest), sorted."""
    jobs = root.resolve() / JOBS_DIR
    return sorted(p.name for p in jobs.iterdir() if (p / MANIFEST).is_file()) if jobs.is_dir() else []


def record_submission(jobs_dir: Path, **fields: Any) -> None:
    """Add a finished submission (the local backend's) under a new id.

    Args:
        jobs_dir: the sweep's jobs folder.
        fields: the :class:`Submission`'s fields (backend, runs, ...).
    """
    update_submission(jobs_dir, uuid.uuid4().hex[:12], **fields)


def update_submission(jobs_dir: Path, submission: str, **fields: Any) -> None:
    """Create or update the manifest entry of one submission (by its id), atomically.

    Args:
        jobs_dir: the sweep's jobs folder.
        submission: the submission's id.
        fields: the :class:`Submission`'s fields to set.

    Raises:
        TypeError: a field that Submission does not have.
    """
    with updating(jobs_dir) as manifest:
        index = next((i for i, e in enumerate(manifest.submissions) if e.id == submission), None)
        if index is None:
            manifest.submissions.append(Submission(id=submission, at=now(), **fields))
        else:
            manifest.submissions[index] = dataclasses.replace(manifest.submissions[index], **fields)


def remember_memory(jobs_dir: Path, learned: dict[str, int]) -> None:
    """Keep the memory runs needed after memory holds: the next render starts them there."""
    known = (read_manifest(jobs_dir) or Manifest()).learned_memory_mb
    if all(known.get(k, 0) >= v for k, v in learned.items()):
        return  # nothing new: no lock, no write
    with updating(jobs_dir) as manifest:
        for run_id, mb in learned.items():
            manifest.learned_memory_mb[run_id] = max(manifest.learned_memory_mb.get(run_id, 0), mb)


def on_pool(manifest: Manifest | None) -> bool:
    """Whether any submission of the sweep went to HTCondor (False without a manifest)."""
    return manifest is not None and manifest.on_pool
