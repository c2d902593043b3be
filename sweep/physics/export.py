"""A trained peak finder or clusterizer as ONNX, for software that runs ONNX Runtime and no
TensorFlow (key4hep; :mod:`sweep.deploy`): `sweep export onnx`.

The model is converted by Keras's own exporter (``model.export(format="onnx")``, tf2onnx under
it, on the CPU; opset as the file says), with a dynamic batch dimension, into
``<out>/model.onnx``; beside it ``deploy.json`` (:mod:`sweep.records.deployment`) says what the
model expects — sampling interval, window layout, normalization and noise estimate, candidate
finder and its threshold, working point, or the clusterizer's histogram — where it came from, and
how it was checked: ONNX Runtime against Keras on :data:`CHECK_INPUTS` or more held-out inputs made
as its training's were (windows of candidates, or peak-time histograms, of waveforms simulated
with its training record's parameters and another seed). A difference over the tolerance (1e-5;
for a clusterizer's counts, relative to counts above 1: float32 sums of 1024 bins round at that
level) is an error and nothing is written.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..fsutil import atomic_folder, file_digest
from ..records.deployment import ONNX_MODEL, Deployment, write_deployment
from . import datasets as D
from .scorers import ModelError, load_keras_model, training_record
from .simulate import SimulationParams, simulate_batch

#: held-out inputs compared at export, at least
CHECK_INPUTS = 1000
#: the largest |ONNX − Keras| allowed (relative above 1 for a clusterizer's counts)
TOLERANCE = 1e-5
#: the held-out simulation's seed (not a training seed of sweep's: those are small)
CHECK_SEED = 20261203


def check_inputs(kind: str, params: SimulationParams, n: int = CHECK_INPUTS, seed: int = CHECK_SEED) -> np.ndarray:
    """At least ``n`` held-out inputs of a peak finder (``lstm``: windows of candidates, (m, 15, 1))
    or a clusterizer (``cnn``: histograms of the smeared true peak times, (n, bins, 1)), float32."""
    rng = np.random.default_rng(seed)
    if kind == "lstm":
        windows = []
        while sum(len(w) for w in windows) < n:
            batch = simulate_batch(params, 20, rng)
            cw, cs, scale = D.peak_candidates(batch.waveforms_mv, params.finder_threshold_rms, params.candidate_finder)
            windows.append(D.extract_windows(batch.waveforms_mv, cw, cs, scale))
        return np.concatenate(windows)[:, :, None].astype(np.float32)
    batch = simulate_batch(params, n, rng)
    X = D.cluster_inputs(n, batch.electron_waveform, batch.electron_peak_sample, params.dt_ns, params.window_ns,
                         params.cluster_bins, params.peak_time_smear_samples, rng)
    return X[:, :, None].astype(np.float32)


def export_onnx(model_path: str | Path, out_dir: str | Path, *, threshold: float | None = None,
                n_check: int = CHECK_INPUTS, tolerance: float = TOLERANCE) -> Deployment:
    """Export the .keras model ``model_path`` (with its training record beside it) to ``out_dir``
    (model.onnx and deploy.json, replaced whole or not at all) and check it (see the module doc).

    Args:
        model_path: a peak finder's or clusterizer's .keras file.
        out_dir: the export's folder.
        threshold: a peak finder's working point, written for its consumers (default 0.5).
        n_check: held-out inputs compared, at least.
        tolerance: the largest difference allowed.

    Returns:
        The deployment record written.

    Raises:
        ModelError: no training record beside the model, a model Keras cannot read, or ONNX
            Runtime disagreeing with Keras beyond the tolerance.
    """
    import onnx
    import onnxruntime as ort

    model_path = Path(model_path)
    record = training_record(model_path)
    if record is None or record.model not in ("lstm", "cnn") or not record.simulation or record.dt_ns is None:
        raise ModelError(f"{model_path}: no training record beside it (model.json, or <stage>-leader.json) saying "
                         "what it was trained on: an exported model must say what its inputs are")
    kind = record.model
    params = SimulationParams.from_dict(record.simulation)
    # an LSTM traced on a GPU becomes an op tf2onnx cannot convert: the export runs on the CPU (this
    # holds where TensorFlow is first imported here, as in `sweep export onnx`)
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    model = load_keras_model(model_path)
    shape = (D.WINDOW_LENGTH, 1) if kind == "lstm" else (params.cluster_bins, 1)
    X = check_inputs(kind, params, n_check)
    expected = np.asarray(model.predict(X, batch_size=4096, verbose=0), dtype=np.float64)  # also builds it
    with atomic_folder(out_dir) as tmp:
        mask = os.umask(0)
        os.umask(mask)
        tmp.chmod(0o777 & ~mask)  # readable by whoever the umask lets read: the consumer need not be its owner
        onnx_path = tmp / ONNX_MODEL
        try:
            model.export(str(onnx_path), format="onnx", verbose=False)
        except Exception as exc:  # noqa: BLE001 - tf2onnx's many failures all mean "not exportable"
            raise ModelError(f"{model_path}: ONNX export failed ({type(exc).__name__}: {exc})") from None
        proto = onnx.load(str(onnx_path))
        opset = max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        (inp,) = session.get_inputs()
        got = np.concatenate([np.asarray(session.run(None, {inp.name: X[a:a + 4096]})[0], dtype=np.float64)
                              for a in range(0, len(X), 4096)])
        diff = np.abs(got - expected)
        scale = np.maximum(1.0, np.abs(expected)) if kind == "cnn" else np.ones_like(expected)
        worst = float(np.max(diff / scale))
        if not math.isfinite(worst) or worst > tolerance:
            raise ModelError(f"{model_path}: ONNX Runtime and Keras differ by {worst:.3g} on {len(X)} held-out inputs "
                             f"(allowed {tolerance:g}{', relative above 1' if kind == 'cnn' else ''}): not exported")
        inputs: dict[str, Any]
        if kind == "lstm":
            inputs = {"window": D.WINDOW_LENGTH, "before": D.WINDOW_BEFORE, "after": D.WINDOW_AFTER,
                      "normalization": D.WINDOW_NORMALIZATION, "scale_rms": D.WINDOW_SCALE_RMS,
                      "noise_estimate": "rms about the median of the samples below the median (sweep.physics."
                                        "datasets.noise_rms), at least noise_floor_fraction x peak-to-peak",
                      "noise_floor_fraction": D.NOISE_FLOOR_FRACTION, "candidate_finder": params.candidate_finder,
                      "finder_threshold_rms": params.finder_threshold_rms,
                      "tolerance_samples": params.tolerance_samples}
        else:
            inputs = {"bins": params.cluster_bins, "window_ns": params.window_ns,
                      "smear_samples": 0.0, "peaks": (record.input.cluster_input if record.input else None)}
        import keras
        import tensorflow as tf
        import tf2onnx

        deployment = Deployment(
            model=kind, onnx=ONNX_MODEL, onnx_sha256=file_digest(onnx_path)["sha256"], opset=int(opset),
            input_name=inp.name,
            input_shape=[None, *shape], dt_ns=float(record.dt_ns), inputs=inputs,
            check={"inputs": int(len(X)), "max_abs_diff": float(diff.max()), "max_diff": worst,
                   "tolerance": tolerance, "relative_above_1": kind == "cnn", "seed": CHECK_SEED,
                   "keras": keras.__version__, "tensorflow": tf.__version__, "tf2onnx": tf2onnx.__version__,
                   "onnx": onnx.__version__,
                   "onnxruntime": ort.__version__},
            source={"keras": str(model_path), "sha256": file_digest(model_path)["sha256"], "sweep": record.sweep,
                    "run_id": record.run_id,
                    "dataset_sha256": record.dataset.sha256 if record.dataset else None},
            threshold=(0.5 if threshold is None else float(threshold)) if kind == "lstm" else None)
        write_deployment(tmp, deployment)
    return deployment
