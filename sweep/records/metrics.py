"""A run's metrics.json: its test metrics at the best epoch, the validation metrics of that
epoch, how training went (epochs, early stop, split, sizes, speed), what it trained on, and for
a search trial its pruner stopped, where it stopped. Written last by the job (its presence means
"trained"), through this module alone (sweep.job.runner); collect ranks it, the search driver
tells its study (records.runs reads it).

It comes back from an execute node: untrusted. :meth:`Metrics.from_json` checks every key's
type and raises RecordError naming the file, the key and what was expected. Metric values may
be NaN (JSON NaN, as Python writes it) or null.

Standard library only (the job imports it).

Schema versions: 0, files written before metrics.json carried ``schema_version`` (by sweep,
or by a stand-in job: any key may be missing; read as 1); 1, the same keys with
``schema_version``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..core.names import METRICS
from ..fsutil import atomic_write_json
from .base import OMIT_NONE, Fields, JsonObject, Migration, migrate, to_json
from .untrusted import RECORD_LIMIT, load_object
from .runinfo import DatasetIdentity, Threads

SCHEMA_VERSION = 1


@dataclass
class Split:
    """How the samples were split: "waveform" (no waveform in two splits) or "window" (older
    peak finders), with the waveforms of each part and the natural-mix test windows."""

    by: str | None = field(default=None, metadata=OMIT_NONE)
    test_waveforms: int | None = field(default=None, metadata=OMIT_NONE)
    train_waveforms: int | None = field(default=None, metadata=OMIT_NONE)
    val_waveforms: int | None = field(default=None, metadata=OMIT_NONE)
    natural_windows: int | None = field(default=None, metadata=OMIT_NONE)
    natural_waveforms: int | None = field(default=None, metadata=OMIT_NONE)
    natural_signal_fraction: float | None = field(default=None, metadata=OMIT_NONE)

    @classmethod
    def from_json(cls, f: Fields) -> Split:
        """Read `split`.

        Raises:
            RecordError: a key of the wrong type.
        """
        return cls(by=f.opt_text("by"), test_waveforms=f.opt_integer("test_waveforms", lo=0),
                   train_waveforms=f.opt_integer("train_waveforms", lo=0),
                   val_waveforms=f.opt_integer("val_waveforms", lo=0),
                   natural_windows=f.opt_integer("natural_windows", lo=0),
                   natural_waveforms=f.opt_integer("natural_waveforms", lo=0),
                   natural_signal_fraction=f.opt_number("natural_signal_fraction"))


@dataclass
class Pruned:
    """Where a search's pruner stopped a trial: after which epoch, at what value of which
    column, and that column's value at every epoch."""

    at_epoch: int
    value: float | None
    column: str
    values: list[float] = field(default_factory=list)

    @classmethod
    def from_json(cls, f: Fields) -> Pruned:
        """Read `pruned`.

        Raises:
            RecordError: a key of the wrong type.
        """
        return cls(at_epoch=f.integer("at_epoch", lo=0), value=f.opt_number("value"), column=f.text("column"),
                   values=f.numbers("values"))


@dataclass
class Metrics:
    """results/<sweep>/<run-id>/metrics.json. A valid result has `test`; a pruned trial has
    `pruned` and no test metrics."""

    run_id: str | None = field(default=None, metadata=OMIT_NONE)
    config_id: str | None = field(default=None, metadata=OMIT_NONE)
    model: str | None = field(default=None, metadata=OMIT_NONE)
    test: dict[str, float | None] | None = field(default=None, metadata=OMIT_NONE)  # metric -> value
    pruned: Pruned | None = field(default=None, metadata=OMIT_NONE)
    validation: dict[str, float | None] | None = field(default=None, metadata=OMIT_NONE)  # at the best epoch
    best_epoch: int | None = field(default=None, metadata=OMIT_NONE)
    epochs_run: int | None = field(default=None, metadata=OMIT_NONE)
    stopped_early: bool | None = field(default=None, metadata=OMIT_NONE)
    threshold: float | None = field(default=None, metadata=OMIT_NONE)  # a peak finder's decision threshold
    n_train: int | None = field(default=None, metadata=OMIT_NONE)
    n_val: int | None = field(default=None, metadata=OMIT_NONE)
    n_test: int | None = field(default=None, metadata=OMIT_NONE)
    split: Split | None = field(default=None, metadata=OMIT_NONE)
    n_params: int | None = field(default=None, metadata=OMIT_NONE)
    train_seconds: float | None = field(default=None, metadata=OMIT_NONE)
    train_samples_per_second: float | None = field(default=None, metadata=OMIT_NONE)
    resumed_from_epoch: int | None = field(default=None, metadata=OMIT_NONE)
    software: dict[str, str] | None = field(default=None, metadata=OMIT_NONE)
    threads: Threads | None = field(default=None, metadata=OMIT_NONE)
    dataset: DatasetIdentity | None = field(default=None, metadata=OMIT_NONE)

    def to_json(self) -> JsonObject:
        """The record's JSON object (schema_version first)."""
        return to_json(self, SCHEMA_VERSION)

    @classmethod
    def from_json(cls, data: JsonObject, path: str | Path = METRICS) -> Metrics:
        """A metrics.json from its JSON object, of any schema version up to this sweep's.

        Raises:
            RecordError: written by a newer sweep, or a key of the wrong type (file and key named).
        """
        f = Fields(migrate(path, data, SCHEMA_VERSION, MIGRATIONS), path)
        pruned, split, threads, dataset = (f.opt_obj(k) for k in ("pruned", "split", "threads", "dataset"))
        return cls(run_id=f.opt_text("run_id"), config_id=f.opt_text("config_id"), model=f.opt_text("model"),
                   test=f.number_map("test") if f.has("test") else None,
                   pruned=Pruned.from_json(pruned) if pruned else None,
                   validation=f.number_map("validation") if f.has("validation") else None,
                   best_epoch=f.opt_integer("best_epoch", lo=0), epochs_run=f.opt_integer("epochs_run", lo=0),
                   stopped_early=f.opt_boolean("stopped_early"), threshold=f.opt_number("threshold"),
                   n_train=f.opt_integer("n_train", lo=0), n_val=f.opt_integer("n_val", lo=0),
                   n_test=f.opt_integer("n_test", lo=0), split=Split.from_json(split) if split else None,
                   n_params=f.opt_integer("n_params", lo=0), train_seconds=f.opt_number("train_seconds", lo=0),
                   train_samples_per_second=f.opt_number("train_samples_per_second", lo=0),
                   resumed_from_epoch=f.opt_integer("resumed_from_epoch", lo=0),
                   software=f.text_map("software") if f.has("software") else None,
                   threads=Threads.from_json(threads) if threads else None,
                   dataset=DatasetIdentity.from_json(dataset) if dataset else None)


def _v0_to_v1(data: JsonObject) -> JsonObject:
    """Version 0 (no schema_version) has the keys of version 1."""
    return data


MIGRATIONS: dict[int, Migration] = {0: _v0_to_v1}


def read_metrics(folder: Path) -> Metrics | None:
    """The metrics.json in `folder`, or None when there is none.

    Raises:
        RecordError: unreadable (a symlink, not a regular file, over its size limit: records.untrusted),
            not a metrics.json, or written by a newer sweep (file and key named).
    """
    path = folder / METRICS
    data = load_object(path, RECORD_LIMIT)  # from an execute node: bounded, no symlink
    return None if data is None else Metrics.from_json(data, path)


def write_metrics(folder: Path, metrics: Metrics) -> None:
    """Write `folder`/metrics.json atomically."""
    atomic_write_json(folder / METRICS, metrics.to_json())
