"""A run's progress while it trains: after every epoch its job writes, on the local backend,
progress.json in its results folder (through this module alone, sweep.job.progress): the value
of the watched column after each epoch so far (a search's pruner reads them: sweep.search.trials)
and the last epoch's `live` line (epoch k of n, the column's value, losses, seconds since the
training started), which `sweep status` shows. On a pool the values travel as the job attribute
SweepProgress (pruned trials, by chirp) and the live line as ChirpSweepLive, in the text
format_live writes and parse_live reads back.

Both are written by a job: untrusted; :meth:`Progress.from_json` and parse_live check them.

Standard library only (the job imports it).

Schema versions: 0, files written before progress.json carried ``schema_version`` (read as 1);
1, the same key with ``schema_version``; 2, `live` added (absent in a version-1 file).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..core.names import PROGRESS_FILE
from ..core.units import format_duration
from ..fsutil import atomic_write_json
from .base import OMIT_NONE, Fields, JsonObject, Migration, RecordError, migrate, to_json
from .untrusted import RECORD_LIMIT, load_object

SCHEMA_VERSION = 2
#: The most epochs a live line may claim (what a job reports is bounded like everything it returns).
MAX_EPOCHS = 1_000_000
#: The longest live line read back from a job attribute.
MAX_LIVE_TEXT = 512
#: The most seconds a live line may claim a training has run (three years).
MAX_ELAPSED_S = 1e8
#: What a live line's metric may be called: a history column's name.
METRIC_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")


@dataclass
class Live:
    """One epoch's report: epoch `epoch` of at most `epochs` (early stopping may end sooner), the
    watched validation column `metric` and its `value`, the training and validation losses, and
    the seconds since this attempt's training started."""

    epoch: int
    epochs: int
    metric: str
    value: float | None = None
    loss: float | None = None
    val_loss: float | None = None
    elapsed_s: float = 0.0

    @classmethod
    def from_json(cls, f: Fields) -> Live:
        """Read `live`.

        Raises:
            RecordError: a key of the wrong type or out of its bounds.
        """
        epochs = f.integer("epochs", lo=1, hi=MAX_EPOCHS)
        metric = f.text("metric")
        if not METRIC_NAME.fullmatch(metric):  # shown on a terminal: a column's name, nothing else
            raise RecordError(f.path, "expected a column name (letters, digits, _), got other text",
                              f.prefix + "metric")
        elapsed = f.number("elapsed_s", lo=0, finite=True)
        if elapsed > MAX_ELAPSED_S:
            raise RecordError(f.path, f"expected at most {MAX_ELAPSED_S:g} seconds, got {elapsed:g}",
                              f.prefix + "elapsed_s")
        return cls(epoch=f.integer("epoch", lo=1, hi=epochs), epochs=epochs, metric=metric,
                   value=f.opt_number("value", finite=True), loss=f.opt_number("loss", finite=True),
                   val_loss=f.opt_number("val_loss", finite=True), elapsed_s=elapsed)

    @property
    def eta_s(self) -> float:
        """Seconds left at this pace if every epoch runs (an upper bound: early stopping)."""
        return self.elapsed_s / self.epoch * (self.epochs - self.epoch)

    def text(self) -> str:
        """"epoch 3/30, val_f1 0.8123, loss 0.41/0.45, 1m20s, ETA ≤ 12m" for a terminal."""
        parts = [f"epoch {self.epoch}/{self.epochs}"]
        if self.value is not None:
            parts.append(f"{self.metric} {self.value:.4g}")
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4g}" + (f"/{self.val_loss:.4g}" if self.val_loss is not None else ""))
        parts.append(format_duration(self.elapsed_s))
        if self.epoch < self.epochs:
            parts.append(f"ETA ≤ {format_duration(self.eta_s)}")
        return ", ".join(parts)


def format_live(live: Live) -> str:
    """The live line as one job attribute's text: "epoch=3;epochs=30;metric=val_f1;value=0.81;…"
    (numbers in 6 significant digits, an absent one left out)."""
    out = [f"epoch={live.epoch}", f"epochs={live.epochs}", f"metric={live.metric}"]
    for key in ("value", "loss", "val_loss"):
        v = getattr(live, key)
        if v is not None and math.isfinite(v):
            out.append(f"{key}={v:.6g}")
    out.append(f"elapsed_s={live.elapsed_s:.1f}")
    return ";".join(out)


def parse_live(text: object, where: str = "ChirpSweepLive") -> Live | None:
    """A live line read back from a job attribute (untrusted): None when absent or not one
    (over MAX_LIVE_TEXT characters, a key or a value that is not what format_live writes)."""
    if not isinstance(text, str) or not text or len(text) > MAX_LIVE_TEXT:
        return None
    data: dict[str, object] = {}
    for item in text.split(";"):
        key, sep, value = item.partition("=")
        if not sep or key in data or key not in ("epoch", "epochs", "metric", "value", "loss", "val_loss",
                                                 "elapsed_s"):
            return None
        if key == "metric":
            data[key] = value  # checked by Live.from_json
            continue
        try:
            data[key] = int(value) if key in ("epoch", "epochs") else float(value)
        except ValueError:
            return None
    try:
        return Live.from_json(Fields(data, where))
    except RecordError:
        return None


@dataclass
class Progress:
    """results/<sweep>/<run-id>/progress.json: one value per finished epoch (NaN where the
    column had none), and the last epoch's live line."""

    values: list[float] = field(default_factory=list)
    live: Live | None = field(default=None, metadata=OMIT_NONE)

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
        live = f.opt_obj("live")
        return cls(values=f.numbers("values"), live=Live.from_json(live) if live is not None else None)


def _v0_to_v1(data: JsonObject) -> JsonObject:
    """Version 0 (no schema_version) has the key of version 1."""
    return data


def _v1_to_v2(data: JsonObject) -> JsonObject:
    """Version 2 adds `live`, absent from a version-1 file (a trial's values alone)."""
    return data


MIGRATIONS: dict[int, Migration] = {0: _v0_to_v1, 1: _v1_to_v2}


def read_progress(folder: Path) -> Progress | None:
    """The progress.json in `folder`, or None when there is none (yet).

    Raises:
        RecordError: unreadable (a symlink, not a regular file, over its size limit: records.untrusted),
            not a progress.json, or written by a newer sweep.
    """
    path = folder / PROGRESS_FILE
    data = load_object(path, RECORD_LIMIT)  # from an execute node: bounded, no symlink
    return None if data is None else Progress.from_json(data, path)


def write_progress(folder: Path, values: list[float], live: Live | None = None) -> None:
    """Write `folder`/progress.json atomically."""
    atomic_write_json(folder / PROGRESS_FILE, Progress(list(values), live).to_json())
