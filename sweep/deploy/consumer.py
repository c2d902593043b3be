"""The reference consumer of an exported model (`sweep export onnx`): numpy and ONNX Runtime
only, no TensorFlow, as key4hep runs it.

    finder = sweep.deploy.load("results/demo/onnx/68934086ec0f")
    wf, sample, score = finder.peaks(waveforms_mv, dt_ns=0.8333)
    counter = sweep.deploy.load("results/chain/onnx/clusters")
    clusters = counter.counts(len(waveforms_mv), wf, sample, dt_ns=0.8333)

A peak finder takes raw waveforms (rows; any unit, positive pulses): its candidates, their
15-sample windows in units of 10 × each waveform's noise rms, the model's scores, those at least
the working point kept, nearby ones merged — the same functions (sweep.physics.datasets) and
order as sweep's own evaluation, so the peaks are the Keras path's. A clusterizer takes peaks
(waveform index, sample) and returns each waveform's cluster count from their time histogram.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError
from ..physics import datasets as D
from ..records.deployment import Deployment, read_deployment


class _Exported:
    def __init__(self, folder: Path, deployment: Deployment):
        import onnxruntime as ort

        self.folder = folder
        self.deployment = deployment
        path = folder / Path(deployment.onnx).name
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != deployment.onnx_sha256:  # never a model other than the one checked
            raise InputError(f"{path}: not the model exported and checked with this deploy.json (its sha256 "
                             "differs): export it again")
        self.session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])

    def run(self, X: np.ndarray, batch: int = 4096) -> np.ndarray:
        """The model's outputs (n,) for inputs X (n, ...) float32."""
        X = np.asarray(X, dtype=np.float32)
        if not len(X):
            return np.zeros(0)
        name = self.deployment.input_name
        return np.concatenate([np.asarray(self.session.run(None, {name: X[a:a + batch]})[0], dtype=np.float64).ravel()
                               for a in range(0, len(X), batch)])

    def _check_dt(self, dt_ns: float) -> None:
        trained = self.deployment.dt_ns
        if abs(float(dt_ns) - trained) > 1e-6 * trained:
            raise InputError(f"{self.folder}: the model was trained on waveforms sampled every {trained:.6g} ns; "
                             f"these are sampled every {float(dt_ns):.6g} ns (it cannot be applied: no resampling)")


class PeakFinder(_Exported):
    """An exported peak finder (deploy.json ``model: lstm``)."""

    def peaks(self, waveforms_mv: np.ndarray, dt_ns: float, threshold: float | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(waveform index, sample, score) of the peaks of ``waveforms_mv`` (B, n) at the working
        point (``threshold``, default the export's).

        Raises:
            InputError: waveforms sampled otherwise than the model's training.
        """
        self._check_dt(dt_ns)
        i = self.deployment.inputs
        w = np.asarray(waveforms_mv, dtype=np.float32)
        cw, cs, scale = D.peak_candidates(w, float(i["finder_threshold_rms"]), str(i["candidate_finder"]))
        scores = self.run(D.extract_windows(w, cw, cs, scale)[:, :, None])
        thr = self.deployment.threshold if threshold is None else threshold
        keep = scores >= (0.5 if thr is None else thr)
        cw, cs, scores = cw[keep], cs[keep], scores[keep]
        merged = D.suppress_nearby(cw, cs, scores, int(i["tolerance_samples"]))
        return cw[merged], cs[merged], scores[merged]


class Clusterizer(_Exported):
    """An exported clusterizer (deploy.json ``model: cnn``)."""

    def counts(self, n_waveforms: int, wf: np.ndarray, sample: np.ndarray, dt_ns: float) -> np.ndarray:
        """(n_waveforms,) cluster counts from the peaks (waveform index, sample).

        Raises:
            InputError: peaks of waveforms sampled otherwise than the model's training.
        """
        self._check_dt(dt_ns)
        i = self.deployment.inputs
        X = D.cluster_inputs(int(n_waveforms), wf, sample, float(dt_ns), float(i["window_ns"]), int(i["bins"]),
                             0.0, np.random.default_rng(0))
        return self.run(X[:, :, None])


def load(folder: str | Path) -> Any:
    """The exported model in ``folder`` (model.onnx and deploy.json): a :class:`PeakFinder` or a
    :class:`Clusterizer`.

    Raises:
        InputError: no export there, or a model.onnx other than the one exported (its sha256);
            RecordError: a deploy.json sweep cannot read.
    """
    folder = Path(folder)
    deployment = read_deployment(folder)
    if deployment is None:
        raise InputError(f"{folder}: no deploy.json: not a model exported by `sweep export onnx`")
    return (PeakFinder if deployment.model == "lstm" else Clusterizer)(folder, deployment)
