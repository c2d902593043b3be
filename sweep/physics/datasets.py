"""The two training datasets built from simulated waveforms, their file format and loaders, and
:func:`simulate_to_file` (a simulation of :mod:`sweep.physics.simulate` -> one dataset file).

**Peak finding** (LSTM): candidates are *local rises* of the waveform. With
``d[i] = wf[i] − wf[i−1]``, sample ``i`` is a candidate when

    d[i] > thr  and  d[i] >= d[i−1]  and  d[i] > d[i+1]

(the steepest point of a rising edge; ``thr = finder_threshold_rms × σ``, 0 means ``d[i] > 0``).
Each candidate gives a 15-sample window (5 before, the candidate, 9 after), minus its mean,
divided by ``10 σ`` (values O(1), as the LSTM likes them). ``σ`` is the waveform's own noise rms
estimated from its samples (:func:`noise_rms`), so the windows and the candidates are the same
whatever the amplitude unit (mV, V, ADC counts) or gain of the digitizer: a model trained on mV
meets a file in volts unchanged (it found no peak at all on one while the windows were divided
by a fixed 10 mV). Label 1 if a true electron peak lies within ± ``k`` samples
(``tolerance_samples``), else 0. The true peak of an electron is where this same finder fires
for its pulse alone, without noise (``PulseResponse.peak_sample``: i0 or i0+1 where i0 is the
first sample after arrival, for the default pulse). The tag of the nearest true peak is kept (0
noise, 1 primary, 2 secondary; ties go to the primary). The natural mix is stored, plus
``balanced_index``: all windows of the minority class and a seeded random subset of the same
size of the majority class (noise), sorted.

**Clusterization** (CNN): per waveform, the distinct true electron-peak samples (primary and
secondary; electrons sharing a peak sample count once), each time smeared by a Gaussian of
``peak_time_smear_samples`` samples, histogrammed in ``cluster_bins`` (1024) bins over the
window. Label: the true number of primary clusters.

**File**: one compressed npz per simulation with exactly the keys of :data:`ARRAY_KEYS` plus
``meta`` (0-d unicode array holding JSON). Written deterministically (fixed zip timestamps) and
atomically (temp file in the same folder, then ``os.replace``).

Format version 2 stores ``windows`` as float16 and ``peak_inputs`` as uint8 (version 1: both
float32; still read, see :data:`DTYPES_BY_VERSION`). The loaders return float32 either way.
float16 keeps 11 significant bits, a rounding error <= 2^-12 of the value: <= 0.0625 σ for any
window within ±256 σ of its mean (0.07 mV at the simulator's noise, under half its 12-bit ADC
LSB of 0.244 mV), so nothing the digitisation resolves is lost; σ is at least 1/1000 of the
waveform's peak-to-peak, so no window value exceeds 100 and none overflows float16. It cuts the
zlib time (most of the write) by a third and the file by ~30 %. Version 3 has version 2's arrays
with the windows in units of 10 σ (:data:`WINDOW_NORMALIZATION`); versions 1 and 2 divided them
by a fixed ``window_scale_mv`` (10 mV), and a model trained on those is refused where it is
applied.
"""

from __future__ import annotations

import json
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..core.version import __version__
from ..core.errors import InputError
from ..fsutil import atomic_file, file_digest
from ..records.base import RecordError
from ..records.untrusted import check_npz
from .simulate import ParameterError, SimulationBatch, SimulationParams, simulate_batch

FORMAT_KIND = "sweep-cluster-counting"
FORMAT_VERSION = 3
#: what the peak finder's windows are divided by (in the dataset's meta and every LSTM's training
#: record; a model whose record says otherwise is refused where it is applied)
WINDOW_NORMALIZATION = "10 x noise_rms"
WINDOW_SCALE_RMS = 10.0  # windows are divided by this × σ: values O(1) (signal windows peak at ~1.5)
NOISE_FLOOR_FRACTION = 1e-3  # σ >= this × the waveform's peak-to-peak (windows stay in float16's range)
WINDOW_BEFORE = 5
WINDOW_AFTER = 9
WINDOW_LENGTH = WINDOW_BEFORE + 1 + WINDOW_AFTER  # 15
_ZLIB_LEVEL = 1  # fast; noise-dominated data hardly compresses better at 6-9
_MAX_COUNT = np.iinfo(np.uint8).max

#: key -> (dtype, ndim) of every array in a dataset file as written now (``meta`` comes on top).
ARRAY_KEYS: dict[str, tuple[np.dtype, int]] = {
    "windows": (np.dtype(np.float16), 2),
    "labels": (np.dtype(np.int8), 1),
    "tags": (np.dtype(np.int8), 1),
    "window_waveform": (np.dtype(np.int32), 1),
    "balanced_index": (np.dtype(np.int64), 1),
    "peak_inputs": (np.dtype(np.uint8), 2),
    "n_clusters": (np.dtype(np.int32), 1),
    "momentum": (np.dtype(np.float32), 1),
    "betagamma": (np.dtype(np.float32), 1),
}

#: format_version -> key -> (dtype, ndim) accepted when reading a file of that version.
DTYPES_BY_VERSION: dict[int, dict[str, tuple[np.dtype, int]]] = {
    1: {**ARRAY_KEYS, "windows": (np.dtype(np.float32), 2), "peak_inputs": (np.dtype(np.float32), 2)},
    2: ARRAY_KEYS,
    FORMAT_VERSION: ARRAY_KEYS,
}


class DatasetError(InputError):
    """A dataset file is missing, unreadable or not in the expected format."""


# --------------------------------------------------------------------------------------------
# Building blocks (pure functions, usable on hand-built waveforms)
# --------------------------------------------------------------------------------------------


def noise_rms(waveforms: np.ndarray) -> np.ndarray:
    """Each waveform's noise rms, estimated from its own samples: (B,) float64, in its unit.

    The rms about the waveform's median of the samples below that median. The pulses are
    positive-going, so the lower half is noise (for Gaussian noise E[y² | y < 0] = σ²; the
    pulses lift the median a little: +10 % on the simulator's waveforms, ±8 % from waveform to
    waveform). Unlike 1.4826 × MAD, which on 12-bit ADC samples can only step by 3/4 of an LSB
    (17 % of a 1 mV noise), it is continuous; like it, it is proportional to the amplitude unit.
    At least :data:`NOISE_FLOOR_FRACTION` of the waveform's peak-to-peak (a noise-free or flat
    waveform), and 1 for a constant one.
    """
    w = np.asarray(waveforms, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"waveforms must be 2-D (B, n), got shape {w.shape}")
    if w.shape[1] == 0:
        return np.ones(w.shape[0])
    y = w - np.median(w, axis=1, keepdims=True)
    below = y < 0
    n_below = below.sum(axis=1)
    ss = np.where(below, y * y, 0.0).sum(axis=1)
    sigma = np.sqrt(ss / np.maximum(n_below, 1))
    sigma = np.maximum(sigma, NOISE_FLOOR_FRACTION * (w.max(axis=1) - w.min(axis=1)))
    return np.where(sigma > 0, sigma, 1.0)


def input_stats(waveforms: np.ndarray, sigma: np.ndarray | None = None) -> dict[str, Any]:
    """What a peak finder's inputs look like, to compare a model's training data with the
    waveforms it is applied to: percentiles (1, 50, 99) over the waveforms of the noise rms (in
    the waveforms' unit: mV for the simulator) and of the peak signal-to-noise (the waveform's
    maximum above its median, in units of its noise rms: what the windows carry)."""
    w = np.asarray(waveforms, dtype=np.float64)
    sigma = noise_rms(w) if sigma is None else np.asarray(sigma, dtype=np.float64)
    return stats_of({"noise_rms": sigma, "peak_snr": peak_snr(w, sigma)})


def peak_snr(waveforms: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Per waveform (B,): its maximum above its median, in units of its noise rms `sigma` (B,)."""
    w = np.asarray(waveforms)
    if not w.size:
        return np.zeros(0)
    return (w.max(axis=1) - np.median(w, axis=1)) / sigma


def stats_of(values: dict[str, np.ndarray]) -> dict[str, Any]:
    """{name: {"p1", "p50", "p99"}} of per-waveform values, plus "waveforms" (how many)."""
    out: dict[str, Any] = {}
    n = 0
    for name, v in values.items():
        v = np.asarray(v, dtype=np.float64)
        n = int(v.size)
        if n:
            p1, p50, p99 = np.percentile(v, [1, 50, 99])
            out[name] = {"p1": float(p1), "p50": float(p50), "p99": float(p99)}
    out["waveforms"] = n
    return out


def window_normalization(meta: dict[str, Any]) -> str:
    """What a dataset's windows are divided by, from its meta: :data:`WINDOW_NORMALIZATION`, or
    ``"window_scale_mv=10.0"`` for the fixed scale of formats 1 and 2."""
    window = meta.get("window") or {}
    if window.get("normalization"):
        return str(window["normalization"])
    return f"window_scale_mv={window.get('scale_mv')}"


#: The candidate finders (SimulationParams.candidate_finder) and their rules, as dataset meta says them.
FINDER_RULES = {
    "rise": "d[i]=wf[i]-wf[i-1]; d[i]>thr and d[i]>=d[i-1] and d[i]>d[i+1]",
    "slope": "d[i]=wf[i]-wf[i-1]; d[i]-min(0, d[i-1], d[i-2], d[i-3])>thr and d[i]>=d[i-1] and d[i]>d[i+1]",
    "bump": "d[i]=wf[i]-wf[i-1]; d[i]>thr and d[i]>d[i+1]",
    "d2": "d[i]=wf[i]-wf[i-1]; c[i]=d[i]-d[i+1]; c[i]>thr and d[i]>0 and c[i]>=c[i-1] and c[i]>c[i+1]",
}
SLOPE_LOOKBACK = 3  # the slope finder compares a rise with the lowest of this many differences before it


def find_candidates(waveforms: np.ndarray, threshold: float | np.ndarray = 0.0,
                    rule: str = "rise") -> tuple[np.ndarray, np.ndarray]:
    """Candidates of a (B, n) array whose full 15-sample window fits, by :data:`FINDER_RULES`.

    ``rule`` "rise" (the seed's local rises: the steepest point of a rising edge above the
    threshold) or "slope" (the same local maxima of d, with the rise measured from the lowest
    difference of the 3 samples before when that is negative: a pulse that starts on an earlier
    pulse's falling tail, where d is small or negative, still stands out; every "rise" candidate
    is one; about twice as many) or "bump" (IHEP's ``find_bump``, littlepi/PeakFindingSemiDA: every
    point where the rise slows down, d[i] > d[i+1], and d[i] above the threshold; with threshold 0
    it is IHEP's rule exactly; several candidates per pulse, so the detections need
    :func:`suppress_nearby`) or "d2" (the Bari/Lecce DERIV algorithm's peak condition, y[i] −
    (y[i−1] + y[i+1])/2 above the threshold: the local maxima of minus the second difference on a
    rise, where a pulse bends over; its candidates sit at the pulse's top, about a sample after the
    arrival the "rise" finder marks). ``threshold`` (in the waveforms' unit) is one number or one per
    waveform ((B,): e.g. ``finder_threshold_rms × noise_rms(waveforms)``). Returns
    ``(waveform_index, sample)`` int64 arrays, ordered by waveform then sample.

    Raises:
        ValueError: not 2-D, or an unknown rule.
    """
    w = np.asarray(waveforms)
    if w.ndim != 2:
        raise ValueError(f"waveforms must be 2-D (B, n), got shape {w.shape}")
    if rule not in FINDER_RULES:
        raise ValueError(f"unknown candidate finder {rule!r} (expected one of {sorted(FINDER_RULES)})")
    n = w.shape[1]
    thr = np.maximum(np.asarray(threshold, dtype=np.float64), 0.0)
    if thr.ndim == 1:
        thr = thr[:, None]
    d = np.diff(w, axis=1)  # d[:, j] = wf[j+1] - wf[j]  (= "d[i]" with i = j + 1)
    c = d[:, 1:-1]  # d[i] for i = 2 .. n-2
    rise = c
    if rule == "slope":
        before = np.zeros_like(c, dtype=np.float64)  # min(0, d[i-1], ..., d[i-k]): none before d[1]
        for k in range(1, SLOPE_LOOKBACK + 1):
            shifted = np.zeros_like(c, dtype=np.float64)
            shifted[:, k - 1:] = d[:, : d.shape[1] - 1 - k]  # shifted[:, j] = d[i-k] = d[:, j+1-k]
            before = np.minimum(before, shifted)
        rise = c - before
    if rule == "bump":
        mask = (c > thr) & (c > d[:, 2:])
    elif rule == "d2":
        # c[i] = d[i] - d[i+1] = 2 wf[i] - wf[i-1] - wf[i+1], minus the second difference: largest
        # where a rising edge bends over; one candidate per bend (its local maximum), on a rise (d[i] > 0)
        bend = np.empty_like(d, dtype=np.float64)
        bend[:, :-1] = d[:, :-1] - d[:, 1:]  # bend[:, j] = c at i = j + 1
        bend[:, -1] = -np.inf
        cb = bend[:, 1:-1]  # c[i] for i = 2 .. n-2
        mask = (cb > thr) & (c > 0) & (cb >= bend[:, :-2]) & (cb > bend[:, 2:])
    else:
        mask = (rise > thr) & (c >= d[:, :-2]) & (c > d[:, 2:])
    lo, hi = WINDOW_BEFORE, n - WINDOW_AFTER - 1  # window must fit: i-5 >= 0, i+9 <= n-1
    mask[:, : max(lo - 2, 0)] = False
    mask[:, max(hi - 2 + 1, 0):] = False
    wf_idx, col = np.nonzero(mask)
    return wf_idx.astype(np.int64), (col + 2).astype(np.int64)


def suppress_nearby(wf_idx: np.ndarray, sample: np.ndarray, score: np.ndarray,
                    radius: int) -> np.ndarray:
    """Non-maximum suppression of detections: a boolean mask keeping each detection whose score is
    the largest among the detections of its waveform within ± ``radius`` samples (ties: the
    earlier one). Finders that fire several times on one pulse (``bump``) then count it once.
    ``radius`` 0 keeps everything."""
    w = np.asarray(wf_idx, dtype=np.int64)
    s = np.asarray(sample, dtype=np.int64)
    sc = np.asarray(score, dtype=np.float64)
    keep = np.ones(w.size, dtype=bool)
    r = int(radius)
    if r <= 0 or w.size < 2:
        return keep
    order = np.lexsort((s, w))
    w, s, sc = w[order], s[order], sc[order]
    kept = np.ones(w.size, dtype=bool)
    for shift in range(1, 2 * r + 1):  # at most 2r distinct samples lie within ± r of one
        near = (w[shift:] == w[:-shift]) & (s[shift:] - s[:-shift] <= r)
        # the later one loses to an earlier one scoring at least as much, and the earlier to a later one scoring more
        kept[shift:] &= ~(near & (sc[:-shift] >= sc[shift:]))
        kept[:-shift] &= ~(near & (sc[shift:] > sc[:-shift]))
    keep[order] = kept
    return keep


def peak_candidates(waveforms: np.ndarray, threshold_rms: float,
                    rule: str = "rise") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The peak finder's candidates as the datasets and the evaluation make them: ``(waveform_index,
    sample, scale)``, candidates (:func:`find_candidates` by ``rule``) whose rise exceeds
    ``threshold_rms`` × their waveform's noise rms and ``scale`` (B,) what each waveform's windows
    are divided by, :data:`WINDOW_SCALE_RMS` × its noise rms (``extract_windows(waveforms, wf,
    sample, scale)``)."""
    sigma = noise_rms(waveforms)
    wf_idx, sample = find_candidates(waveforms, float(threshold_rms) * sigma, rule)
    return wf_idx, sample, WINDOW_SCALE_RMS * sigma


def extract_windows(
    waveforms: np.ndarray, wf_idx: np.ndarray, sample: np.ndarray, scale: float | np.ndarray
) -> np.ndarray:
    """(N, 15) float32 windows [i−5, i+9], mean-subtracted and divided by ``scale``: one number,
    or one per waveform ((B,): the scale of :func:`peak_candidates`)."""
    w = np.asarray(waveforms)
    wf_idx = np.asarray(wf_idx)
    cols = np.asarray(sample)[:, None] + np.arange(-WINDOW_BEFORE, WINDOW_AFTER + 1)
    win = w[wf_idx[:, None], cols].astype(np.float32, copy=False)
    win = win - win.mean(axis=1, keepdims=True, dtype=np.float64).astype(np.float32)
    scale = np.asarray(scale, dtype=np.float64)
    inv = (1.0 / scale[wf_idx] if scale.ndim == 1 else np.full(wf_idx.size, 1.0 / float(scale)))
    win *= inv.astype(np.float32)[:, None]
    return win


def distinct_peaks(
    peak_wf: np.ndarray, peak_sample: np.ndarray, peak_tag: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One entry per distinct (waveform, sample); a primary wins over a secondary at the same
    sample. Returned sorted by waveform then sample."""
    wf = np.asarray(peak_wf, dtype=np.int64)
    s = np.asarray(peak_sample, dtype=np.int64)
    tag = np.asarray(peak_tag, dtype=np.int8)
    if wf.size == 0:
        return wf, s, tag
    order = np.lexsort((tag, s, wf))
    wf, s, tag = wf[order], s[order], tag[order]
    keep = np.ones(wf.size, dtype=bool)
    keep[1:] = (wf[1:] != wf[:-1]) | (s[1:] != s[:-1])
    return wf[keep], s[keep], tag[keep]


def match_candidates(
    cand_wf: np.ndarray,
    cand_sample: np.ndarray,
    peak_wf: np.ndarray,
    peak_sample: np.ndarray,
    peak_tag: np.ndarray,
    tolerance: int,
    n_samples: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Label candidates against true peaks: 1 if a peak of the same waveform lies within
    ± ``tolerance`` samples. Returns ``(labels int8, tags int8)`` where the tag is that of the
    nearest true peak (ties: the earlier one, primary before secondary at one sample), 0 if none.
    """
    tol = int(tolerance)
    if tol < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    cw = np.asarray(cand_wf, dtype=np.int64)
    cs = np.asarray(cand_sample, dtype=np.int64)
    pw, ps, pt = distinct_peaks(peak_wf, peak_sample, peak_tag)
    pad = tol + 1
    inside = (ps >= -pad) & (ps < n_samples + pad)
    pw, ps, pt = pw[inside], ps[inside], pt[inside]
    stride = n_samples + 2 * pad + 1  # keeps different waveforms > tol apart
    kp = pw * stride + ps + pad
    kc = cw * stride + cs + pad
    labels = np.zeros(kc.size, dtype=np.int8)
    tags = np.zeros(kc.size, dtype=np.int8)
    if kp.size == 0 or kc.size == 0:
        return labels, tags
    # kp is strictly increasing (distinct, sorted by waveform then sample)
    a = np.searchsorted(kp, kc, side="left")  # first peak >= candidate
    right = np.where(a < kp.size, kp[np.minimum(a, kp.size - 1)] - kc, np.iinfo(np.int64).max)
    left = np.where(a > 0, kc - kp[np.maximum(a - 1, 0)], np.iinfo(np.int64).max)
    use_left = left <= right
    dist = np.where(use_left, left, right)
    nearest = np.where(use_left, a - 1, a)
    hit = dist <= tol
    labels[hit] = 1
    tags[hit] = pt[nearest[hit]]
    return labels, tags


def cluster_inputs(
    n_waveforms: int,
    peak_wf: np.ndarray,
    peak_sample: np.ndarray,
    dt_ns: float,
    window_ns: float,
    n_bins: int,
    smear_samples: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """(B, n_bins) float32 histograms of the (smeared) peak times over [0, window_ns)."""
    wf = np.asarray(peak_wf, dtype=np.int64)
    t = np.asarray(peak_sample, dtype=np.float64)
    if smear_samples > 0:
        t = t + smear_samples * rng.standard_normal(t.size)
    b = np.floor(t * dt_ns / window_ns * n_bins).astype(np.int64)
    ok = (b >= 0) & (b < n_bins)
    h = np.bincount(wf[ok] * n_bins + b[ok], minlength=int(n_waveforms) * n_bins)
    return h.reshape(int(n_waveforms), n_bins).astype(np.float32)


def balanced_index(labels: np.ndarray, seed: int) -> np.ndarray:
    """Sorted int64 indices: every window of the minority class plus an equally large seeded
    random subset of the majority class (in practice: noise is down-sampled)."""
    labels = np.asarray(labels)
    sig = np.flatnonzero(labels == 1)
    noi = np.flatnonzero(labels == 0)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xBA1A]))
    if noi.size >= sig.size:
        noi = rng.choice(noi, size=sig.size, replace=False)
    else:
        sig = rng.choice(sig, size=noi.size, replace=False)
    return np.sort(np.concatenate([sig, noi])).astype(np.int64)


class DatasetBuilder:
    """Accumulates both datasets over simulation batches (see :func:`simulate_to_file`)."""

    def __init__(self, params: SimulationParams, peak_scorer: Callable[[np.ndarray], np.ndarray] | None = None,
                 peak_threshold: float = 0.5):
        """``peak_scorer`` (a trained peak finder, ``f(windows (N, 15, 1)) -> scores``) makes the
        clusterization inputs the candidates it scores >= ``peak_threshold`` (step 1 of the chain,
        no smearing), so that a clusterizer trained on them sees what it will see in use; without
        it they are the true peaks smeared by ``peak_time_smear_samples``."""
        self.params = params
        self.peak_scorer = peak_scorer
        self.peak_threshold = float(peak_threshold)
        self._parts: dict[str, list[np.ndarray]] = {k: [] for k in ARRAY_KEYS if k != "balanced_index"}
        self._n_waveforms = 0
        self._sigma: list[np.ndarray] = []  # per waveform, for input_stats()
        self._snr: list[np.ndarray] = []

    def input_stats(self) -> dict[str, Any]:
        """:func:`input_stats` of every waveform added so far."""
        def cat(parts: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(parts) if parts else np.zeros(0)

        return stats_of({"noise_rms": cat(self._sigma), "peak_snr": cat(self._snr)})

    def add(self, batch: SimulationBatch, rng: np.random.Generator) -> None:
        """Add a batch's waveforms: their candidate windows with labels and tags, and their
        clusterization inputs (`rng` smears the true peaks when there is no peak scorer).

        Raises:
            ValueError: the peak scorer returned another number of scores than windows.
        """
        p = self.params
        w = batch.waveforms_mv
        B, n = w.shape
        cw, cs, scale = peak_candidates(w, p.finder_threshold_rms, p.candidate_finder)
        pw, ps, pt = distinct_peaks(batch.electron_waveform, batch.electron_peak_sample, batch.electron_tag)
        labels, tags = match_candidates(cw, cs, pw, ps, pt, p.tolerance_samples, n)
        windows = extract_windows(w, cw, cs, scale)
        sigma = scale / WINDOW_SCALE_RMS
        self._sigma.append(sigma)
        self._snr.append(peak_snr(w, sigma))
        if self.peak_scorer is None:
            inside = (ps >= 0) & (ps < n)
            hist = cluster_inputs(B, pw[inside], ps[inside], p.dt_ns, p.window_ns, p.cluster_bins,
                                  p.peak_time_smear_samples, rng)
        else:
            scores = (np.asarray(self.peak_scorer(windows[:, :, None]), dtype=np.float64).ravel()
                      if cw.size else np.zeros(0))
            if scores.size != cw.size:
                raise ValueError(f"the peak finder returned {scores.size} scores for {cw.size} windows")
            found = scores >= self.peak_threshold
            hist = cluster_inputs(B, cw[found], cs[found], p.dt_ns, p.window_ns, p.cluster_bins, 0.0, rng)
        parts = self._parts
        parts["windows"].append(windows.astype(np.float16))
        parts["labels"].append(labels)
        parts["tags"].append(tags)
        parts["window_waveform"].append((cw + self._n_waveforms).astype(np.int32))
        # uint8 is safe: a bin counts distinct peak samples (true or detected), at most 5 seen with
        # the default 1024 bins and < 70 even with one bin for the whole window; the clip only
        # guards odd params.
        parts["peak_inputs"].append(np.minimum(hist, _MAX_COUNT).astype(np.uint8))
        parts["n_clusters"].append(np.asarray(batch.n_clusters, dtype=np.int32))
        parts["momentum"].append(np.asarray(batch.momentum_gev, dtype=np.float32))
        parts["betagamma"].append(np.asarray(batch.betagamma, dtype=np.float32))
        self._n_waveforms += B

    def finish(self, balance_seed: int) -> dict[str, np.ndarray]:
        """Every array of the dataset (ARRAY_KEYS), the batches concatenated (empty arrays when
        none was added), with a balanced_index drawn with `balance_seed`."""
        out: dict[str, np.ndarray] = {}
        for k, (dtype, ndim) in ARRAY_KEYS.items():
            if k == "balanced_index":
                continue
            parts = self._parts[k]
            if parts:
                out[k] = np.concatenate(parts).astype(dtype, copy=False)
            else:
                shape = (0, WINDOW_LENGTH if k == "windows" else self.params.cluster_bins)[:ndim]
                out[k] = np.zeros(shape, dtype=dtype)
        out["balanced_index"] = balanced_index(out["labels"], balance_seed)
        return {k: out[k] for k in ARRAY_KEYS}


# --------------------------------------------------------------------------------------------
# File format
# --------------------------------------------------------------------------------------------


def _set_level(info: zipfile.ZipInfo, level: int) -> None:
    """Per-entry deflate level for ``ZipFile.open(info, "w")`` (3.13+: ``compress_level``,
    earlier: ``_compresslevel``); falls back silently to zlib's default level."""
    for attr in ("compress_level", "_compresslevel"):
        try:
            setattr(info, attr, level)
            return
        except AttributeError:
            continue


def write_dataset(path: str | Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """Write ``arrays`` (exactly :data:`ARRAY_KEYS`) and ``meta`` to a compressed npz.

    Deterministic (fixed zip timestamps, fixed key order) and atomic: written to a temp file
    in the destination folder, then moved into place with ``os.replace``.
    """
    path = Path(path)
    missing = set(ARRAY_KEYS) - set(arrays)
    extra = set(arrays) - set(ARRAY_KEYS)
    if missing or extra:
        raise ValueError(f"dataset arrays: missing {sorted(missing)}, unexpected {sorted(extra)}")
    for k, (dtype, ndim) in ARRAY_KEYS.items():
        a = arrays[k]
        if a.dtype != dtype or a.ndim != ndim:
            raise ValueError(f"dataset array {k!r}: expected {dtype} with {ndim} dims, got {a.dtype} {a.shape}")
    meta_arr = np.array(json.dumps(meta, sort_keys=True))
    with atomic_file(path, "wb", permissions=0o644) as fh:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            for k, a in [*((k, arrays[k]) for k in ARRAY_KEYS), ("meta", meta_arr)]:
                info = zipfile.ZipInfo(f"{k}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                _set_level(info, _ZLIB_LEVEL)
                with zf.open(info, "w", force_zip64=True) as out:
                    np.lib.format.write_array(out, a, allow_pickle=False)
    return path


#: The arrays each model's job reads; a per-model file (write_model_file) carries these, the
#: others as empty arrays of their dtype, so that it is still a dataset file of this format.
MODEL_KEYS: dict[str, tuple[str, ...]] = {
    "lstm": ("windows", "labels", "tags", "window_waveform", "balanced_index"),
    "cnn": ("peak_inputs", "n_clusters", "momentum", "betagamma"),
}


def write_model_file(source: str | Path, model: str, target: str | Path) -> dict[str, Any]:
    """The arrays of `source` that `model`'s jobs read, in `target` (what HTCondor transfers to
    each job instead of the whole dataset). Its meta keeps the source's and adds `subset_of`
    (the source's file, size, mtime and sha256: the identity a job reports as its dataset).
    Written again only when the source's size or modification time changed.

    Returns:
        {"source_size", "size", "written"}: the two sizes in bytes, and whether it was written now.

    Raises:
        DatasetError: the source is not a readable dataset.
    """
    source, target = Path(source), Path(target)
    st = source.stat()
    if target.is_file():
        try:
            known = read_meta(target).get("subset_of", {})
        except DatasetError:
            known = {}
        if known.get("size") == st.st_size and known.get("mtime_ns") == st.st_mtime_ns and known.get("model") == model:
            return {"source_size": st.st_size, "size": target.stat().st_size, "written": False}
    meta = read_meta(source)
    arrays = _load(source, tuple(MODEL_KEYS[model]))
    for key, (dtype, ndim) in ARRAY_KEYS.items():
        if key not in arrays:
            arrays[key] = np.zeros((0,) * ndim, dtype=dtype)  # not read by this model's jobs
    digest = file_digest(source)
    meta = {**meta, "subset_of": {"file": source.name, "size": digest["size"], "mtime_ns": digest["mtime_ns"],
                                  "sha256": digest["sha256"], "model": model}}
    write_dataset(target, arrays, meta)
    return {"source_size": st.st_size, "size": target.stat().st_size, "written": True}


def dataset_identity(path: str | Path) -> dict[str, Any]:
    """{"file", "sha256", "size"} of the dataset a file stands for: the file itself, or, for a
    per-model file, the dataset it was cut from (so that a run's identity is the same however
    its data travelled)."""
    path = Path(path)
    try:
        source = read_meta(path).get("subset_of")
    except DatasetError:
        source = None
    if source:
        return {"file": source["file"], "sha256": source["sha256"], "size": source["size"]}
    digest = file_digest(path)
    return {"file": path.name, "sha256": digest["sha256"], "size": digest["size"]}


def _open(path: str | Path):
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: dataset file does not exist")
    if not path.is_file():
        raise DatasetError(f"{path}: not a regular file")
    try:  # a chain's dataset comes from a step job: no zip bomb reaches numpy
        check_npz(path)
    except RecordError as exc:
        raise DatasetError(str(exc)) from None
    try:
        f = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - BadZipFile, ValueError (pickle), OSError, EOFError ...: unreadable
        raise DatasetError(f"{path}: not a readable npz dataset ({type(exc).__name__}: {exc})") from None
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise DatasetError(f"{path}: not an npz archive (a single .npy array?)")
    return f


def _parse_meta(path: Path, f) -> dict[str, Any]:
    if "meta" not in f.files:
        raise DatasetError(f"{path}: missing key 'meta' (keys: {sorted(f.files)})")
    try:
        raw = f["meta"]
        if raw.ndim != 0 or raw.dtype.kind != "U":
            raise ValueError(f"expected a 0-d unicode array, got {raw.dtype} {raw.shape}")
        meta = json.loads(str(raw[()]))
    except Exception as exc:  # noqa: BLE001 - whatever the failure, 'meta' is unreadable
        raise DatasetError(f"{path}: unreadable 'meta' ({exc})") from None
    if not isinstance(meta, dict):
        raise DatasetError(f"{path}: 'meta' is not a JSON object")
    if meta.get("kind") != FORMAT_KIND:
        raise DatasetError(f"{path}: meta kind is {meta.get('kind')!r}, expected {FORMAT_KIND!r}")
    version = meta.get("format_version")
    if type(version) is not int or version not in DTYPES_BY_VERSION:
        raise DatasetError(
            f"{path}: format_version {version!r} is not supported (expected one of {sorted(DTYPES_BY_VERSION)})"
        )
    return meta


def read_meta(path: str | Path) -> dict[str, Any]:
    """The JSON metadata of a dataset file (checks kind and format_version)."""
    with _open(path) as f:
        return _parse_meta(Path(path), f)


def _load(path: str | Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    path = Path(path)
    with _open(path) as f:
        version = _parse_meta(path, f)["format_version"]
        expected = DTYPES_BY_VERSION[version]
        missing = [k for k in ARRAY_KEYS if k not in f.files]
        if missing:
            raise DatasetError(f"{path}: missing key(s) {missing}")
        out = {}
        for k in keys:
            try:
                a = f[k]
            except Exception as exc:  # noqa: BLE001 - whatever numpy raises, the member is unreadable
                raise DatasetError(f"{path}: cannot read {k!r} ({exc})") from None
            dtype, ndim = expected[k]
            if a.dtype != dtype or a.ndim != ndim:
                raise DatasetError(
                    f"{path}: {k!r} is {a.dtype} with shape {a.shape}, expected {dtype} with {ndim} dims"
                    f" (format_version {version})"
                )
            out[k] = a
    return out


def _check_len(path: str | Path, arrays: dict[str, np.ndarray], keys: tuple[str, ...]) -> int:
    n = arrays[keys[0]].shape[0]
    for k in keys[1:]:
        if arrays[k].shape[0] != n:
            raise DatasetError(f"{path}: {k!r} has {arrays[k].shape[0]} rows, {keys[0]!r} has {n}")
    return n


def _pick(n: int, max_samples: int | None, seed: int, idx: np.ndarray | None = None) -> np.ndarray:
    idx = np.arange(n) if idx is None else idx
    idx = idx[np.random.default_rng(seed).permutation(idx.size)]
    if max_samples is not None:
        if isinstance(max_samples, bool) or int(max_samples) != max_samples or max_samples < 1:
            raise ValueError(f"max_samples must be a positive integer or None, got {max_samples!r}")
        idx = idx[: int(max_samples)]
    return idx


def load_peak_dataset(
    path: str | Path, balanced: bool = True, max_samples: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Peak-finding windows: X float32 (N, 15, 1), y float32 (N,) in {0, 1}.

    ``balanced`` uses the stored balanced index (else the natural mix). Rows are shuffled
    deterministically by ``seed``; ``max_samples`` keeps the first rows after the shuffle.
    """
    X, y, _ = load_peak_windows(path, balanced, max_samples, seed)
    return X, y


def _peak_arrays(path: str | Path) -> dict[str, np.ndarray]:
    a = _load(path, ("windows", "labels", "balanced_index", "window_waveform"))
    n = _check_len(path, a, ("windows", "labels", "window_waveform"))
    if a["windows"].shape[1] != WINDOW_LENGTH:
        raise DatasetError(f"{path}: 'windows' has {a['windows'].shape[1]} columns, expected {WINDOW_LENGTH}")
    bi = a["balanced_index"]
    if bi.size and (bi.min() < 0 or bi.max() >= n):
        raise DatasetError(f"{path}: 'balanced_index' points outside the {n} windows")
    return a


def load_peak_windows(
    path: str | Path, balanced: bool = True, max_samples: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As :func:`load_peak_dataset`, plus each window's waveform index (int64, (N,)): windows of
    one waveform overlap and share its noise, so training and test data are split by waveform."""
    a = _peak_arrays(path)
    idx = _pick(a["windows"].shape[0], max_samples, seed, a["balanced_index"] if balanced else None)
    X = np.ascontiguousarray(a["windows"][idx][:, :, None], dtype=np.float32)
    y = a["labels"][idx].astype(np.float32)
    return X, y, a["window_waveform"][idx].astype(np.int64)


def natural_windows(path: str | Path, waveforms: np.ndarray, max_windows: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray, int]:
    """Every candidate window (the natural mix, not balanced) of the given waveforms, in file
    order: X float32 (M, 15, 1), y float32 (M,), and how many of the waveforms they cover (all,
    unless ``max_windows`` stopped the list at a waveform boundary)."""
    a = _peak_arrays(path)
    chosen = np.unique(np.asarray(waveforms, dtype=np.int64))
    idx = np.flatnonzero(np.isin(a["window_waveform"], chosen))
    used = len(chosen)
    if max_windows is not None and idx.size > max_windows:
        wf = a["window_waveform"][idx]
        last = wf[max_windows - 1]
        idx = idx[wf <= last]
        used = int(np.sum(chosen <= last))
    X = np.ascontiguousarray(a["windows"][idx][:, :, None], dtype=np.float32)
    return X, a["labels"][idx].astype(np.float32), used


def load_cluster_dataset(
    path: str | Path, max_samples: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Clusterization inputs: X float32 (M, 1024, 1) peak-time histograms, y float32 (M,) the true
    number of primary clusters. Shuffled deterministically by ``seed``; ``max_samples`` subsamples.
    """
    a = _load(path, ("peak_inputs", "n_clusters"))
    m = _check_len(path, a, ("peak_inputs", "n_clusters"))
    idx = _pick(m, max_samples, seed)
    X = np.ascontiguousarray(a["peak_inputs"][idx][:, :, None], dtype=np.float32)
    y = a["n_clusters"][idx].astype(np.float32)
    return X, y


# --------------------------------------------------------------------------------------------
# One simulation -> one dataset file
# --------------------------------------------------------------------------------------------

DEFAULT_BATCH_SIZE = 256


def _model_identity(model: Any) -> dict[str, Any]:
    """What a dataset records about the peak finder that built its clusterization inputs."""
    if isinstance(model, (str, Path)):
        import hashlib

        path = Path(model)
        return {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    return {"callable": getattr(model, "__name__", type(model).__name__)}


def simulate_to_file(
    path: str | Path,
    n_waveforms: int,
    seed: int,
    params: dict | None = None,
    progress: bool = False,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    peak_model: str | Path | None = None,
    peak_threshold: float = 0.5,
) -> dict:
    """Simulate ``n_waveforms`` waveforms and write both datasets to one compressed npz.

    Batch k uses ``default_rng(SeedSequence(seed).spawn(...)[k])``, so a (seed, params,
    batch_size) triple always gives the byte-identical file. Returns a summary dict with
    n_waveforms, n_windows, n_balanced, signal_fraction, mean_clusters, seconds, path and notes
    (lines: what could not be checked about ``peak_model``, and warnings about the simulation's
    waveforms against its training's, :func:`sweep.physics.scorers.check_model`).

    ``peak_model`` (a trained peak finder: a .keras file, or a callable ``f(windows) -> scores``)
    builds the clusterization inputs from the candidates it scores >= ``peak_threshold`` instead
    of the smeared true peaks: the training set for a clusterizer that will be fed by that peak
    finder (the two-step chain). TensorFlow is imported only for a .keras file.
    """
    t_start = time.perf_counter()
    p = SimulationParams.from_dict(params)
    if isinstance(n_waveforms, bool) or not isinstance(n_waveforms, (int, np.integer)) or n_waveforms < 1:
        raise ValueError(f"n_waveforms must be a positive integer, got {n_waveforms!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    n_waveforms, seed, batch_size = int(n_waveforms), int(seed), int(batch_size)
    if isinstance(peak_threshold, bool) or not isinstance(peak_threshold, (int, float)) or not 0 < peak_threshold <= 1:
        raise ParameterError(f"peak_threshold must be in (0, 1], got {peak_threshold!r}")
    n_batches = -(-n_waveforms // batch_size)
    children = np.random.SeedSequence(seed).spawn(n_batches)
    scorer, source = None, {"source": "true peaks", "smear_samples": p.peak_time_smear_samples}
    notes: list[str] = []
    if peak_model is not None:
        from .scorers import check_model, load_model_fn  # TensorFlow only for a model file

        notes = check_model(peak_model, "peak model", p.dt_ns, "the simulation", normalization=WINDOW_NORMALIZATION,
                            finder=p.candidate_finder)
        scorer = load_model_fn(peak_model, input_shape=(WINDOW_LENGTH, 1))
        source = {"source": "peak model", "peak_threshold": float(peak_threshold), "smear_samples": 0.0,
                  "peak_model": _model_identity(peak_model)}
    builder = DatasetBuilder(p, scorer, peak_threshold)

    bar = None
    if progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(TextColumn("simulating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        task = bar.add_task("sim", total=n_waveforms)
        bar.start()
    try:
        for k, child in enumerate(children):
            rng = np.random.default_rng(child)
            m = min(batch_size, n_waveforms - k * batch_size)
            builder.add(simulate_batch(p, m, rng), rng)
            if bar is not None:
                bar.advance(task, m)
    finally:
        if bar is not None:
            bar.stop()

    arrays = builder.finish(balance_seed=seed)
    if peak_model is not None:  # the simulation's waveforms against the peak model's training's
        from .scorers import input_warnings

        notes += input_warnings(peak_model, "peak model", builder.input_stats(), "the simulation")
    n_win = int(arrays["labels"].size)
    n_sig = int((arrays["labels"] == 1).sum())
    stats = {
        "n_windows": n_win,
        "n_signal_windows": n_sig,
        "n_balanced": int(arrays["balanced_index"].size),
        "signal_fraction": n_sig / n_win if n_win else 0.0,
        "mean_clusters": float(arrays["n_clusters"].mean()),
        "mean_peaks": float(arrays["peak_inputs"].sum(axis=1).mean()),
    }
    meta = {
        "kind": FORMAT_KIND,
        "format_version": FORMAT_VERSION,
        "params": p.to_dict(),
        "seed": seed,
        "batch_size": batch_size,
        "n_waveforms": n_waveforms,
        "n_samples": p.n_samples,
        "dt_ns": p.dt_ns,
        "tolerance_samples": p.tolerance_samples,
        "window": {"before": WINDOW_BEFORE, "after": WINDOW_AFTER, "normalization": WINDOW_NORMALIZATION,
                   "noise_rms": "rms about the median of the samples below the waveform's median",
                   "scale_rms": WINDOW_SCALE_RMS},
        "finder": {"name": p.candidate_finder, "rule": FINDER_RULES[p.candidate_finder],
                   "threshold_rms": p.finder_threshold_rms},
        "input_stats": builder.input_stats(),
        "truth_peak": "sample of steepest rise of the electron's isolated pulse (PulseResponse.peak_sample)",
        "cluster_input": {"bins": p.cluster_bins, "range_ns": [0.0, p.window_ns], **source,
                          "label": "true number of primary clusters"},
        "stats": stats,
        "software": {"sweep": __version__, "numpy": np.__version__},
    }
    write_dataset(path, arrays, meta)
    return {
        "path": str(path),
        "n_waveforms": n_waveforms,
        **stats,
        "seconds": time.perf_counter() - t_start,
        "notes": notes,
    }
