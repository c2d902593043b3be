"""An evaluation's evaluation.json: how a peak finder and a clusterizer do on simulated
waveforms, at the peak, cluster, track and particle-separation levels, with its headline
figures (summary) and warnings. `sweep evaluate` and a chain's evaluation step write it
through this module alone (sweep.physics.evaluate); the chain's report reads it
(sweep.chain.report), and a chain keeps it in results/<chain>/evaluation/.

The levels' figures are the physics code's own (open objects: they change with the
evaluation); the record fixes what frames them.

Standard library only.

Schema versions: 0, files written before evaluation.json carried ``schema_version`` (read as
1); 1, the same keys with ``schema_version``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write_text
from .base import OMIT_NONE, Fields, JsonObject, Migration, migrate, plain
from .untrusted import EVALUATION_LIMIT, load_object

SCHEMA_VERSION = 1
EVALUATION = "evaluation.json"  # in the evaluation's output folder


@dataclass
class EvaluatedModels:
    """The models evaluated: their files, "callable", or None for a level without one."""

    peak: str | None = None
    cluster: str | None = None

    @classmethod
    def from_json(cls, f: Fields) -> EvaluatedModels:
        """Read `models`.

        Raises:
            RecordError: a key of the wrong type.
        """
        return cls(peak=f.opt_text("peak"), cluster=f.opt_text("cluster"))


@dataclass
class Evaluation:
    """evaluation.json. Non-finite numbers are written as null."""

    seed: int
    n_waveforms: int
    input: str | None  # a waveform file the evaluation read, or None (simulated)
    models: EvaluatedModels
    params: dict[str, Any]  # the simulation's parameters
    peaks: dict[str, Any]  # peak level: per finder (lstm, deriv), windows and peaks
    clusters: dict[str, Any]  # cluster level: per method
    tracks: dict[str, Any] | None  # track level (dE/dx, dN/dx), without the per-track values
    separation: dict[str, Any] | None  # pi/K separation per momentum
    warnings: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)  # the headline figures, flat
    seconds: float | None = None
    plots: list[str] | None = field(default=None, metadata=OMIT_NONE)  # the PNGs beside it

    def to_json(self) -> JsonObject:
        """The record's JSON object: schema_version, then its keys sorted, as sweep always wrote them."""
        body = plain(self)
        assert isinstance(body, dict)
        return {"schema_version": SCHEMA_VERSION, **dict(sorted(body.items()))}

    @classmethod
    def from_json(cls, data: JsonObject, path: str | Path = EVALUATION) -> Evaluation:
        """An evaluation from its JSON object, of any schema version up to this sweep's.

        Raises:
            RecordError: written by a newer sweep, or a key of the wrong type.
        """
        f = Fields(migrate(path, data, SCHEMA_VERSION, MIGRATIONS), path)
        return cls(seed=f.integer("seed"), n_waveforms=f.integer("n_waveforms", lo=0), input=f.opt_text("input"),
                   models=EvaluatedModels.from_json(f.obj("models")), params=f.mapping("params"),
                   peaks=f.mapping("peaks"), clusters=f.mapping("clusters"), tracks=f.opt_mapping("tracks"),
                   separation=f.opt_mapping("separation"), warnings=f.texts("warnings"), summary=f.mapping("summary"),
                   seconds=f.opt_number("seconds", lo=0), plots=f.opt_texts("plots"))


def _v0_to_v1(data: JsonObject) -> JsonObject:
    """Version 0 (no schema_version) has the keys of version 1."""
    return data


MIGRATIONS: dict[int, Migration] = {0: _v0_to_v1}


def read_evaluation(folder: Path) -> Evaluation | None:
    """The evaluation.json in `folder`, or None when there is none.

    Raises:
        RecordError: unreadable (a symlink, not a regular file, over its size limit: records.untrusted),
            not an evaluation, or written by a newer sweep.
    """
    path = folder / EVALUATION
    data = load_object(path, EVALUATION_LIMIT)  # from an execute node: bounded, no symlink
    return None if data is None else Evaluation.from_json(data, path)


def write_evaluation(folder: Path, evaluation: Evaluation) -> None:
    """Write `folder`/evaluation.json atomically (indented, keys sorted)."""
    atomic_write_text(folder / EVALUATION, json.dumps(evaluation.to_json(), indent=2))
