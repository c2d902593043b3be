"""A trained model as a plain function ``f(X) -> scores``, for the simulator and the evaluation.

Both the dataset builder (clusterization inputs from a peak finder) and :mod:`sweep.physics.evaluate`
score arrays with a model that may be a .keras file, a Keras model or any callable; keeping the
conversion here lets the data layer use it without depending on the evaluation. TensorFlow is
imported only for a model *file*.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..core.errors import InputError
from ..core.names import MODEL_INFO

Scorer = Callable[[np.ndarray], np.ndarray]


class ModelError(ValueError, InputError):
    """A model file that cannot be used: unreadable, not a Keras model, or the wrong input."""


def training_record(model: Any) -> dict[str, Any] | None:
    """What a model file was trained on (model.json beside it, written by its job), or None (a
    callable, or a model trained before sweep wrote the record)."""
    if model is None or not isinstance(model, (str, Path)):
        return None
    path = Path(model).with_suffix(".json")  # model.keras -> model.json (MODEL_INFO), leader.keras -> leader.json
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def check_sampling(model: Any, what: str, dt_ns: float, where: str) -> str | None:
    """A model must be applied to waveforms sampled as it was trained on.

    Args:
        model: the model (its path: its training record is read beside it).
        what: "peak model" or "cluster model", for messages.
        dt_ns: the sampling interval of the waveforms it is applied to.
        where: what those waveforms are ("the simulation", "data.root"), for messages.

    Returns:
        A note when the model has no training record (nothing could be checked), else None.

    Raises:
        ModelError: the sampling intervals differ (resampling is not supported).
    """
    record = training_record(model)
    if record is None:
        return (None if model is None or not isinstance(model, (str, Path)) else
                f"{what} {model}: no training record beside it ({MODEL_INFO}): its sampling interval is not checked")
    trained = record.get("dt_ns")
    if isinstance(trained, (int, float)) and abs(float(trained) - float(dt_ns)) > 1e-6 * float(trained):
        raise ModelError(f"{what} {model} was trained on waveforms sampled every {trained:.6g} ns "
                         f"({1 / trained:.6g} GS/s); {where} is sampled every {dt_ns:.6g} ns ({1 / dt_ns:.6g} GS/s). "
                         "sweep does not resample: apply it to waveforms at its training rate, or train one at this rate")
    return None


def load_model_fn(model: Any, batch_size: int = 8192, input_shape: tuple[int, ...] | None = None
                  ) -> Scorer | None:
    """None → None; a callable → itself; a path (.keras) → ``X -> model.predict(X).ravel()``.

    ``input_shape`` (without the batch axis, e.g. ``(15, 1)`` for a peak finder) is checked
    against a Keras model's input, so that a clusterizer given as a peak finder fails here with
    a clear message instead of deep inside ``predict``. Empty inputs give empty scores."""
    if model is None:
        return None
    if callable(model) and not isinstance(model, (str, Path)):
        if not hasattr(model, "predict"):
            return model
        m, label = model, type(model).__name__
    else:
        path = Path(model)
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        import keras  # TensorFlow only here

        try:
            m = keras.saving.load_model(path, compile=False)
        except Exception as exc:  # zip, JSON, deserialisation errors: all mean "not a usable model"
            raise ModelError(f"{path}: not a readable Keras model ({type(exc).__name__}: {exc})") from None
        label = str(path)
    if input_shape is not None:
        got = tuple(getattr(m, "input_shape", ())[1:])
        if got != tuple(input_shape):
            raise ModelError(f"{label}: takes inputs of shape {got}, expected {tuple(input_shape)}")

    def score(X: np.ndarray) -> np.ndarray:
        if len(X) == 0:  # Keras cannot predict on an empty batch
            return np.zeros(0, dtype=np.float64)
        return np.asarray(m.predict(X, batch_size=batch_size, verbose=0)).ravel()

    return score
