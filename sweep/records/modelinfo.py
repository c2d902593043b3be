"""A trained model's training record, model.json beside model.keras: what the model was trained
on (the dataset, its sampling interval and waveform length, the simulation's parameters, the
inputs' layout and normalization). The training job writes it through this module alone
(sweep.job.training); it is checked where the model is applied (sweep.physics.scorers: `sweep
evaluate`, `sweep data simulate --peak-model`, a chain's steps), and a chain keeps a copy beside
each stage's leader (<stage>-leader.json).

It comes back from an execute node, and users place models with records beside them:
untrusted. :meth:`ModelInfo.from_json` checks every key's type and raises RecordError naming
the file, the key and what was expected.

Standard library only (the job imports it).

Schema versions: 0, files written before model.json carried ``schema_version`` (any key may be
missing; read as 1); 1, the same keys with ``schema_version``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.names import MODEL_INFO
from ..fsutil import atomic_write_json
from .base import OMIT_NONE, Fields, JsonObject, Migration, migrate, to_json
from .untrusted import RECORD_LIMIT, load_object

SCHEMA_VERSION = 1


@dataclass
class TrainedOn:
    """The dataset a model trained on (the one a per-model file was cut from)."""

    file: str
    sha256: str

    @classmethod
    def from_json(cls, f: Fields) -> TrainedOn:
        """Read `dataset`.

        Raises:
            RecordError: a key of the wrong type.
        """
        return cls(file=f.opt_text("file") or "", sha256=f.opt_text("sha256") or "")


@dataclass
class ModelInput:
    """How a model's inputs were made. A peak finder's record sets window, before,
    normalization, finder and input_stats (written, null or not); a clusterizer's cluster_input.
    A record from before a key existed lacks it (None)."""

    window: int | None = field(default=None, metadata=OMIT_NONE)  # samples per window
    before: int | None = field(default=None, metadata=OMIT_NONE)  # of them before the candidate
    normalization: str | None = field(default=None, metadata=OMIT_NONE)  # sweep.physics.datasets.WINDOW_NORMALIZATION
    finder: str | None = field(default=None, metadata=OMIT_NONE)  # the candidate finder
    input_stats: dict[str, Any] | None = field(default=None, metadata=OMIT_NONE)  # noise and S/N percentiles
    cluster_input: dict[str, Any] | None = field(default=None, metadata=OMIT_NONE)  # the dataset's cluster inputs

    @classmethod
    def from_json(cls, f: Fields) -> ModelInput:
        """Read `input`.

        Raises:
            RecordError: a key of the wrong type.
        """
        return cls(window=f.opt_integer("window", lo=1), before=f.opt_integer("before", lo=0),
                   normalization=f.opt_text("normalization"), finder=f.opt_text("finder"),
                   input_stats=f.opt_mapping("input_stats"), cluster_input=f.opt_mapping("cluster_input"))


@dataclass
class ModelInfo:
    """model.json (or <stage>-leader.json)."""

    model: str | None = field(default=None, metadata=OMIT_NONE)  # "lstm" | "cnn"
    run_id: str | None = field(default=None, metadata=OMIT_NONE)
    sweep: str | None = field(default=None, metadata=OMIT_NONE)
    dataset: TrainedOn | None = field(default=None, metadata=OMIT_NONE)
    dt_ns: float | None = None  # the sampling interval of its waveforms
    n_samples: int | None = None  # samples per waveform
    simulation: dict[str, Any] | None = None  # the simulation's parameters (SimulationParams.to_dict)
    input: ModelInput | None = field(default=None, metadata=OMIT_NONE)

    def to_json(self) -> JsonObject:
        """The record's JSON object (schema_version first); a peak finder's input keys are
        written even when null, as sweep always wrote them."""
        out = to_json(self, SCHEMA_VERSION)
        if self.model == "lstm" and self.input is not None:
            out["input"] = {"window": self.input.window, "before": self.input.before,
                            "normalization": self.input.normalization, "finder": self.input.finder,
                            "input_stats": self.input.input_stats}
        elif self.input is not None:
            out["input"] = {"cluster_input": self.input.cluster_input}
        return out

    @classmethod
    def from_json(cls, data: JsonObject, path: str | Path = MODEL_INFO) -> ModelInfo:
        """A model.json from its JSON object, of any schema version up to this sweep's.

        Raises:
            RecordError: written by a newer sweep, or a key of the wrong type (file and key named).
        """
        f = Fields(migrate(path, data, SCHEMA_VERSION, MIGRATIONS), path)
        dataset, inputs = f.opt_obj("dataset"), f.opt_obj("input")
        dt_ns = f.opt_number("dt_ns", finite=True)
        if dt_ns is not None and dt_ns <= 0:
            f.fail("dt_ns", "a finite number > 0")
        return cls(model=f.opt_text("model"), run_id=f.opt_text("run_id"), sweep=f.opt_text("sweep"),
                   dataset=TrainedOn.from_json(dataset) if dataset else None,
                   dt_ns=dt_ns, n_samples=f.opt_integer("n_samples", lo=0),
                   simulation=f.opt_mapping("simulation"), input=ModelInput.from_json(inputs) if inputs else None)


def _v0_to_v1(data: JsonObject) -> JsonObject:
    """Version 0 (no schema_version) has the keys of version 1."""
    return data


MIGRATIONS: dict[int, Migration] = {0: _v0_to_v1}


def record_path(model: str | Path) -> Path:
    """The training record of a model file: beside it, with .json for .keras (model.keras ->
    model.json, peaks-leader.keras -> peaks-leader.json)."""
    return Path(model).with_suffix(".json")


def read_model_info(model: str | Path) -> ModelInfo | None:
    """The training record beside a model file, or None when it has none.

    Raises:
        RecordError: unreadable (a symlink, not a regular file, over its size limit: records.untrusted),
            not a training record, or written by a newer sweep.
    """
    path = record_path(model)
    # the model's folder is the user's (it may be a link to where models are kept); the record
    # in it came from an execute node: bounded, never read through a symlink
    data = load_object(path.parent.resolve() / path.name, RECORD_LIMIT)
    return None if data is None else ModelInfo.from_json(data, path)


def write_model_info(folder: Path, info: ModelInfo) -> None:
    """Write `folder`/model.json atomically."""
    atomic_write_json(folder / MODEL_INFO, info.to_json())
