"""A beam-test evaluation's beamtest.json: what a peak finder and a clusterizer count on real
data without truth (sweep.physics.notruth), per run and tube channel, with the Poisson fits, the
angle scaling and the pseudo-track resolutions. `sweep evaluate` on a beam-test dataset writes it
through this module alone; its report (sweep.collect.report_beamtest) reads it.

The groups' figures are the physics code's own (open objects); the record fixes what frames them.

Standard library only.

Schema versions: 1, the first (a file without ``schema_version`` is read as it, as every record
reads its version 0).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write_text
from .base import OMIT_NONE, Fields, JsonObject, Migration, migrate, plain
from .evaluation import EvaluatedModels
from .untrusted import EVALUATION_LIMIT, load_object

SCHEMA_VERSION = 1
BEAMTEST_EVALUATION = "beamtest.json"  # in the evaluation's output folder


@dataclass
class BeamTestEvaluation:
    """beamtest.json. Non-finite numbers are written as null."""

    input: str | None  # the beam-test dataset evaluated
    n_waveforms: int
    dt_ns: float
    threshold: float  # the LSTM's working point
    models: EvaluatedModels
    t0_ns: float  # the √t clusterization's
    deriv: dict[str, Any]  # DERIV's thresholds
    truncation: float  # dE/dx's truncated mean keeps this fraction
    groups: list[dict[str, Any]]  # per run and tube channel: counts' Poisson fits, pseudo-tracks
    angles: dict[str, Any] | None  # per channel and count: the 1/cos α scaling
    warnings: list[str] = field(default_factory=list)
    seconds: float | None = None
    plots: list[str] | None = field(default=None, metadata=OMIT_NONE)
    #: the signal fraction of the expected count (``lstm_expected``), when one was asked for (additive)
    prior: float | None = field(default=None, metadata=OMIT_NONE)

    def to_json(self) -> JsonObject:
        """The record's JSON object: schema_version, then its keys sorted."""
        body = plain(self)
        assert isinstance(body, dict)
        return {"schema_version": SCHEMA_VERSION, **dict(sorted(body.items()))}

    @classmethod
    def from_json(cls, data: JsonObject, path: str | Path = BEAMTEST_EVALUATION) -> BeamTestEvaluation:
        """A beam-test evaluation from its JSON object.

        Raises:
            RecordError: written by a newer sweep, or a key of the wrong type.
        """
        f = Fields(migrate(path, data, SCHEMA_VERSION, MIGRATIONS), path)
        return cls(input=f.opt_text("input"), n_waveforms=f.integer("n_waveforms", lo=0),
                   dt_ns=f.number("dt_ns", lo=0), threshold=f.number("threshold", lo=0),
                   models=EvaluatedModels.from_json(f.obj("models")), t0_ns=f.number("t0_ns"),
                   deriv=f.mapping("deriv"), truncation=f.number("truncation", lo=0),
                   groups=[dict(g.data) for g in f.objs("groups")], angles=f.opt_mapping("angles"),
                   warnings=f.texts("warnings"), seconds=f.opt_number("seconds", lo=0), plots=f.opt_texts("plots"),
                   prior=f.opt_number("prior", lo=0))


def _v0_to_v1(data: JsonObject) -> JsonObject:
    """Without schema_version: read as version 1, the only one (as every record reads its version 0)."""
    return data


MIGRATIONS: dict[int, Migration] = {0: _v0_to_v1}


def read_beamtest_evaluation(folder: Path) -> BeamTestEvaluation | None:
    """The beamtest.json in `folder`, or None when there is none.

    Raises:
        RecordError: unreadable (a symlink, not a regular file, over its size limit), not such a
            record, or written by a newer sweep.
    """
    path = folder / BEAMTEST_EVALUATION
    data = load_object(path, EVALUATION_LIMIT)
    return None if data is None else BeamTestEvaluation.from_json(data, path)


def write_beamtest_evaluation(folder: Path, evaluation: BeamTestEvaluation) -> None:
    """Write `folder`/beamtest.json atomically (indented, keys sorted)."""
    atomic_write_text(folder / BEAMTEST_EVALUATION, json.dumps(evaluation.to_json(), indent=2))
