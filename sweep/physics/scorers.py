"""A trained model as a plain function ``f(X) -> scores``, for the simulator and the evaluation.

Both the dataset builder (clusterization inputs from a peak finder) and :mod:`sweep.physics.evaluate`
score arrays with a model that may be a .keras file, a Keras model or any callable; keeping the
conversion here lets the data layer use it without depending on the evaluation. TensorFlow is
imported only for a model *file*.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError
from ..core.names import MODEL_INFO
from ..records.base import RecordError
from ..records.modelinfo import ModelInfo, read_model_info
from .tfimport import import_keras

Scorer = Callable[[np.ndarray], np.ndarray]


class ModelError(ValueError, InputError):
    """A model file that cannot be used: unreadable, not a Keras model, or the wrong input."""


#: The first Keras release without a published safe_mode bypass: 3.9 fixed CVE-2025-1550 (a
#: config.json naming any function), 3.11.0 CVE-2025-8747 and CVE-2025-9906 (gadgets that turn
#: safe mode off), 3.11.3 CVE-2025-9905 (HDF5 files ignore safe_mode), 3.13.2 CVE-2026-1462
#: (TFSMLayer loads an attacker's SavedModel; 3.13.0 and 3.13.1 have it). pyproject.toml and the
#: job's environment check (sweep/job/envcheck.py) require the same release.
KERAS_SAFE_MODE_FIXED = (3, 13, 2)
#: The only model files sweep loads: the Keras 3 archive, the one format safe_mode applies to.
MODEL_SUFFIX = ".keras"


def check_keras_version(version: str) -> None:
    """Refuse a Keras release with a known safe_mode bypass.

    Args:
        version: Keras' version text (keras.__version__), e.g. "3.13.2" or "3.14.0rc1".

    Raises:
        ModelError: the release is older than KERAS_SAFE_MODE_FIXED (a pre-release of it too).
    """
    parsed = tuple(int(m) for m in re.findall(r"\d+", version.split("rc")[0].split("a")[0].split("b")[0])[:3])
    prerelease = parsed == KERAS_SAFE_MODE_FIXED and not version.replace(".", "").isdigit()
    if parsed < KERAS_SAFE_MODE_FIXED or prerelease:
        fixed = ".".join(map(str, KERAS_SAFE_MODE_FIXED))
        raise ModelError(f"Keras {version} has published safe_mode bypasses (a model file runs code when it is "
                         f"loaded; CVE-2025-1550, CVE-2025-8747, CVE-2025-9906, CVE-2026-1462): sweep loads models "
                         f"only with Keras {fixed} or newer; upgrade it (pip install 'keras>={fixed}')")


def load_keras_model(path: str | Path, compile: bool = False) -> Any:
    """A model read from a .keras archive, in safe mode, with a Keras free of known safe_mode
    bypasses. Model files come back from execute nodes, which sweep does not trust.

    Args:
        path: the .keras file.
        compile: restore the optimizer and loss too (a checkpoint that goes on training).

    Returns:
        The Keras model.

    Raises:
        ModelError: the file is not a .keras archive, Keras is too old, or Keras cannot read it
            (among others: a Lambda layer, which safe mode refuses).
    """
    path = Path(path)
    if path.suffix != MODEL_SUFFIX:
        raise ModelError(f"{path}: only {MODEL_SUFFIX} model files are loaded (other formats, such as HDF5 .h5 "
                         "and SavedModel folders, run code that safe mode does not stop); save the model with "
                         f"model.save('name{MODEL_SUFFIX}')")
    keras = import_keras()
    check_keras_version(str(keras.__version__))
    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - zip, JSON, deserialisation errors: all mean "not a usable model"
        raise ModelError(f"{path}: not a readable Keras model ({type(exc).__name__}: {exc})") from None


def training_record(model: Any) -> ModelInfo | None:
    """What a model file was trained on (model.json beside it, written by its job), or None (a
    callable, or a model trained before sweep wrote the record).

    Raises:
        ModelError: the record is unreadable, holds a value of the wrong type (named), or was
            written by a newer sweep.
    """
    if model is None or not isinstance(model, (str, Path)):
        return None
    try:  # model.keras -> model.json (MODEL_INFO), leader.keras -> leader.json
        return read_model_info(model)
    except RecordError as exc:
        raise ModelError(f"{model}: its training record cannot be used: {exc}") from None


def check_model(model: Any, what: str, dt_ns: float, where: str, *, normalization: str | None = None,
                stats: dict[str, Any] | None = None, finder: str | None = None) -> list[str]:
    """A model must be applied to inputs made as its training's were (its training record).

    Args:
        model: the model (its path: its training record is read beside it).
        what: "peak model" or "cluster model", for messages.
        dt_ns: the sampling interval of the waveforms it is applied to.
        where: what those waveforms are ("the simulation", "data.root"), for messages.
        normalization: for a peak model, how the windows it will be given are normalised
            (:data:`sweep.physics.datasets.WINDOW_NORMALIZATION`).
        finder: for a peak model, the candidate finder whose candidates it will score: another
            than its training's is a warning (it meets windows of a kind it never saw).
        stats: :func:`sweep.physics.datasets.input_stats` of those waveforms: compared with the
            training's, a median far outside them (under half the training's 1st percentile or
            over twice its 99th) is a warning with the two figures.

    Returns:
        Notes and warnings, one line each (empty when all is as in training or the model is a
        callable).

    Raises:
        ModelError: the sampling intervals differ (resampling is not supported), or the peak
            model was trained on windows normalised otherwise.
    """
    record = training_record(model)
    if record is None:
        return ([] if model is None or not isinstance(model, (str, Path)) else
                [(f"{what} {model}: no training record beside it ({MODEL_INFO}): its sampling interval and "
                  "inputs are not checked")])
    trained = record.dt_ns
    if trained is not None and abs(float(trained) - float(dt_ns)) > 1e-6 * float(trained):
        raise ModelError(f"{what} {model} was trained on waveforms sampled every {trained:.6g} ns "
                         f"({1 / trained:.6g} GS/s); {where} is sampled every {dt_ns:.6g} ns ({1 / dt_ns:.6g} GS/s). "
                         "sweep does not resample: apply it to waveforms at its training rate, or train one at "
                         "this rate")
    inputs = record.input
    notes: list[str] = []
    if normalization is not None:
        known = inputs.normalization if inputs else None
        if known is None:
            notes.append(f"{what} {model}: its training record does not say how its windows were normalised")
        elif known != normalization:
            raise ModelError(f"{what} {model} was trained on windows normalised as {known!r}; sweep gives it "
                             f"windows in units of {normalization} (dataset format 3): retrain it on a dataset "
                             "simulated by this version")
    trained_finder = ((inputs.finder if inputs else None) or "rise") if normalization is not None else None
    if finder is not None and trained_finder is not None and trained_finder != finder:
        notes.append(f"warning: {what} {model} was trained on the candidates of the {trained_finder!r} finder and "
                     f"scores those of the {finder!r} finder here (simulation parameter candidate_finder): windows "
                     "of a kind it never saw; train it with the same finder")
    notes += _distribution_warnings(inputs.input_stats if inputs else None, stats, f"{what} {model}", where)
    return notes


#: per input statistic: (what it is, what a figure far from training's means)
_STATS = {
    "noise_rms": ("noise rms", ("amplitudes in another unit than training's? (sweep evaluate --amplitude-scale); "
                                "the model sees windows in units of each waveform's noise, so the unit alone does not "
                                "mislead it")),
    "peak_snr": ("peak signal-to-noise", ("the pulses stand otherwise above the noise than in training: expect "
                                          "missed or false peaks; train on a simulation with this noise and gain")),
}


def input_warnings(model: Any, what: str, stats: dict[str, Any], where: str) -> list[str]:
    """The warnings of :func:`check_model` about the inputs' noise and signal-to-noise alone, for
    waveforms whose statistics are known only after the checks that must come first (a simulation
    with a peak model: its sampling is checked before it runs, its waveforms after); [] without a
    training record."""
    record = training_record(model)
    inputs = record.input if record is not None else None
    return _distribution_warnings(inputs.input_stats if inputs is not None else None, stats, f"{what} {model}", where)


def _distribution_warnings(trained: Any, here: dict[str, Any] | None, label: str, where: str) -> list[str]:
    if not isinstance(trained, dict) or not here:
        return []
    out = []
    for key, (name, meaning) in _STATS.items():
        t, h = trained.get(key), here.get(key)
        if not isinstance(t, dict) or not isinstance(h, dict):
            continue
        try:
            lo, mid, hi, now = float(t["p1"]), float(t["p50"]), float(t["p99"]), float(h["p50"])
        except (KeyError, TypeError, ValueError):
            continue
        if not lo / 2 <= now <= 2 * hi:
            out.append(f"warning: {label}: the {name} of {where} is {now:.3g} (median over its waveforms) against "
                       f"{mid:.3g} in its training (1-99 %: {lo:.3g} to {hi:.3g}); {meaning}")
    return out


def load_model_fn(model: Any, batch_size: int = 8192, input_shape: tuple[int, ...] | None = None
                  ) -> Scorer | None:
    """None → None; a callable → itself; a path (.keras) → ``X -> model.predict(X).ravel()``
    (loaded by load_keras_model: .keras only, safe mode; ModelError otherwise).

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
        m = load_keras_model(path, compile=False)
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
