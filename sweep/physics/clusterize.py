"""Classical clusterization: peaks closer in time than the diffusion spread form one cluster.

Within one waveform the peaks are sorted in time; a peak *joins the current cluster* when its
time distance to the cluster's *reference peak* is below ``k·√t`` ns (t = drift time of the peak
in ns, i.e. its time minus ``t0_ns``, clamped at 0), otherwise it opens a new cluster. The number
of clusters is the number of cluster openings. The reference is

* ``"previous"``: the peak just before (each peak chained to the previous one; the rule this
  module had first). A run of close peaks then grows without bound and swallows the next cluster;
* ``"first"``: the cluster's first peak;
* ``"largest"``: the cluster's largest peak so far (needs the peaks' amplitudes): the beam-test
  analysis' rule (Bari/Lecce ``Clusterization.C``: the time difference to the cluster's
  maximum-amplitude peak against scale·√t, scale 0.24–0.25 tuned on the data).

``k`` = 0.26 ns^½ is the diffusion spread of one electron in He 90 / iC4H10 10 (σ_t = 0.26·√t): the
literature's starting value. It is a parameter to *tune* on calibration tracks
(:func:`sweep.physics.evaluate.choose_clusterization`), never on the tracks it is measured on.
"""

from __future__ import annotations

import numpy as np

DIFFUSION_CUT_NS_SQRT_NS = 0.26
#: the reference peaks a new one is compared with (see the module's docstring)
REFERENCES = ("previous", "first", "largest")


def _sorted_peaks(peak_wf, peak_time_ns, reference: str, amplitude) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated peaks sorted by (waveform, time): ``(waveform_index, time_ns, amplitude)`` (zeros
    when the reference needs none)."""
    wf = np.asarray(peak_wf, dtype=np.int64).ravel()
    t = np.asarray(peak_time_ns, dtype=np.float64).ravel()
    if wf.size != t.size:
        raise ValueError(f"peak_wf has {wf.size} entries, peak_time_ns {t.size}")
    if reference not in REFERENCES:
        raise ValueError(f"unknown clusterization reference {reference!r} (expected one of {REFERENCES})")
    amp = np.zeros(t.size)
    if reference == "largest":
        if amplitude is None:
            raise ValueError("the 'largest' reference needs the peaks' amplitudes")
        amp = np.asarray(amplitude, dtype=np.float64).ravel()
        if amp.size != t.size:
            raise ValueError(f"amplitude has {amp.size} entries, peak_time_ns {t.size}")
    step = np.diff(wf)
    if np.all((step > 0) | ((step == 0) & (np.diff(t) >= 0))):  # finders give them sorted already
        return wf, t, amp
    order = np.lexsort((t, wf))
    return wf[order], t[order], amp[order]


def _openings(wf: np.ndarray, t: np.ndarray, amp: np.ndarray, scales: list[float], t0_ns: float,
              reference: str) -> np.ndarray:
    """(len(scales), N) bool: which of the sorted peaks open a cluster, at each scale.

    "previous" is one vectorised comparison. "first" and "largest" are sequential within a
    waveform and parallel across waveforms and scales: column j holds every waveform's j-th peak
    (one row per waveform and scale), and the loop runs over the longest waveform's peaks, not
    over all peaks."""
    S, N = len(scales), wf.size
    if N == 0:
        return np.zeros((S, 0), dtype=bool)
    root = np.sqrt(np.maximum(t - float(t0_ns), 0.0))
    if reference == "previous":
        new = np.ones((S, N), dtype=bool)
        if N > 1:
            other = wf[1:] != wf[:-1]
            for i, k in enumerate(scales):
                new[i, 1:] = other | ~((t[1:] - t[:-1]) < k * root[1:])
        return new
    starts = np.flatnonzero(np.r_[True, wf[1:] != wf[:-1]])
    lengths = np.diff(np.r_[starts, N])
    pos = np.arange(N) - np.repeat(starts, lengths)
    rows = np.repeat(np.arange(starts.size), lengths)
    R = starts.size
    T = np.full((R, lengths.max()), np.nan)
    A, Q = np.zeros_like(T), np.zeros_like(T)
    T[rows, pos], A[rows, pos], Q[rows, pos] = t, amp, root
    K = np.repeat(np.asarray(scales, dtype=np.float64), R)  # row s·R + r: scale s, waveform r
    T, A, Q = np.tile(T, (S, 1)), np.tile(A, (S, 1)), np.tile(Q, (S, 1))
    ref_t, ref_a = T[:, 0].copy(), A[:, 0].copy()
    NEW = np.zeros(T.shape, dtype=bool)
    NEW[:, 0] = True
    for j in range(1, T.shape[1]):
        tj, aj = T[:, j], A[:, j]
        valid = ~np.isnan(tj)
        opens = valid & ~((tj - ref_t) < K * Q[:, j])
        NEW[:, j] = opens
        move = opens | (valid & (aj > ref_a)) if reference == "largest" else opens
        ref_t = np.where(move, tj, ref_t)
        ref_a = np.where(move, aj, ref_a)
    return np.stack([NEW[i * R:(i + 1) * R][rows, pos] for i in range(S)])


def cluster_starts(
    peak_wf: np.ndarray,
    peak_time_ns: np.ndarray,
    k: float = DIFFUSION_CUT_NS_SQRT_NS,
    t0_ns: float = 0.0,
    reference: str = "previous",
    amplitude: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort peaks by (waveform, time) and flag those that open a new cluster.

    ``reference`` is one of :data:`REFERENCES`; ``"largest"`` needs ``amplitude`` (one per peak).
    Returns ``(waveform_index, time_ns, opens_cluster)`` in that sorted order.

    Raises:
        ValueError: arrays of different lengths, an unknown reference, or "largest" without amplitudes.
    """
    wf, t, amp = _sorted_peaks(peak_wf, peak_time_ns, reference, amplitude)
    return wf, t, _openings(wf, t, amp, [float(k)], t0_ns, reference)[0]


def count_clusters(
    n_waveforms: int,
    peak_wf: np.ndarray,
    peak_time_ns: np.ndarray,
    k: float = DIFFUSION_CUT_NS_SQRT_NS,
    t0_ns: float = 0.0,
    reference: str = "previous",
    amplitude: np.ndarray | None = None,
) -> np.ndarray:
    """(B,) int64 number of clusters per waveform from its peak times (see :func:`cluster_starts`)."""
    wf, _, new = cluster_starts(peak_wf, peak_time_ns, k, t0_ns, reference, amplitude)
    return np.bincount(wf[new], minlength=int(n_waveforms)).astype(np.int64)


def count_clusters_scales(
    n_waveforms: int,
    peak_wf: np.ndarray,
    peak_time_ns: np.ndarray,
    scales: tuple[float, ...] | list[float],
    t0_ns: float = 0.0,
    reference: str = "previous",
    amplitude: np.ndarray | None = None,
) -> np.ndarray:
    """(len(scales), B) int64: :func:`count_clusters` at each scale in one pass (the evaluation
    counts every scale of every threshold: one loop over the peak positions, not one per scale).

    Raises:
        ValueError: as :func:`cluster_starts`.
    """
    wf, t, amp = _sorted_peaks(peak_wf, peak_time_ns, reference, amplitude)
    new = _openings(wf, t, amp, [float(k) for k in scales], t0_ns, reference)
    return np.stack([np.bincount(wf[row], minlength=int(n_waveforms)) for row in new]).astype(np.int64) \
        if len(new) else np.zeros((0, int(n_waveforms)), dtype=np.int64)


def count_clusters_single(times_ns, k: float = DIFFUSION_CUT_NS_SQRT_NS, t0_ns: float = 0.0,
                          reference: str = "previous", amplitude=None) -> int:
    """Number of clusters in one waveform's list of peak times."""
    t = np.asarray(times_ns, dtype=np.float64).ravel()
    return int(count_clusters(1, np.zeros(t.size, np.int64), t, k, t0_ns, reference, amplitude)[0]) if t.size else 0
