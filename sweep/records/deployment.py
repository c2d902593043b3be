"""deploy.json beside an exported ONNX model: what a consumer without TensorFlow (key4hep's ONNX
Runtime, sweep.deploy) must know to feed it as its training fed it, and how the export was checked.
`sweep export onnx` writes it through this module alone (sweep.physics.export); sweep.deploy.consumer reads it.

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
from .untrusted import load_object

SCHEMA_VERSION = 1
DEPLOYMENT = "deploy.json"  # beside model.onnx in the export's folder
ONNX_MODEL = "model.onnx"
#: a deploy.json is a few kB
DEPLOYMENT_LIMIT = 1 << 20


@dataclass
class Deployment:
    """deploy.json. ``inputs`` says how the model's inputs are made (for a peak finder: the window
    before/after the candidate, the normalization, the noise estimate, the candidate finder and its
    threshold in noise units, the working point, the matching tolerance; for a clusterizer: the
    histogram's bins and window and which peaks fill it); ``check`` how ONNX Runtime compared with
    Keras at export."""

    model: str  # "lstm" (peak finder) or "cnn" (clusterizer)
    onnx: str  # the ONNX file, beside this one
    onnx_sha256: str
    opset: int
    input_name: str
    input_shape: list[Any]  # [null (batch), ...]
    dt_ns: float  # the sampling interval the model was trained at
    inputs: dict[str, Any]
    check: dict[str, Any]  # inputs compared, max |Δ|, tolerance, versions
    source: dict[str, Any]  # the .keras file, its sha256, sweep, run id, training dataset sha256
    threshold: float | None = field(default=None, metadata=OMIT_NONE)  # a peak finder's working point

    def to_json(self) -> JsonObject:
        """The record's JSON object: schema_version, then its keys sorted."""
        body = plain(self)
        assert isinstance(body, dict)
        return {"schema_version": SCHEMA_VERSION, **dict(sorted(body.items()))}

    @classmethod
    def from_json(cls, data: JsonObject, path: str | Path = DEPLOYMENT) -> Deployment:
        """A deployment from its JSON object.

        Raises:
            RecordError: written by a newer sweep, or a key of the wrong type.
        """
        f = Fields(migrate(path, data, SCHEMA_VERSION, MIGRATIONS), path)
        return cls(model=f.choice("model", ("lstm", "cnn")), onnx=f.text("onnx"), onnx_sha256=f.text("onnx_sha256"),
                   opset=f.integer("opset", lo=1), input_name=f.text("input_name"),
                   input_shape=list(f.data.get("input_shape") or []), dt_ns=f.number("dt_ns", lo=0),
                   inputs=f.mapping("inputs"), check=f.mapping("check"), source=f.mapping("source"),
                   threshold=f.opt_number("threshold", lo=0))


def _v0_to_v1(data: JsonObject) -> JsonObject:
    """Without schema_version: read as version 1, the only one (as every record reads its version 0)."""
    return data


MIGRATIONS: dict[int, Migration] = {0: _v0_to_v1}


def read_deployment(folder: Path) -> Deployment | None:
    """The deploy.json in `folder`, or None when there is none.

    Raises:
        RecordError: unreadable (a symlink, not a regular file, over its size limit), not such a
            record, or written by a newer sweep.
    """
    path = Path(folder) / DEPLOYMENT
    data = load_object(path, DEPLOYMENT_LIMIT)
    return None if data is None else Deployment.from_json(data, path)


def write_deployment(folder: Path, deployment: Deployment) -> None:
    """Write `folder`/deploy.json atomically (indented, keys sorted)."""
    atomic_write_text(Path(folder) / DEPLOYMENT, json.dumps(deployment.to_json(), indent=2))
