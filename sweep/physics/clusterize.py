"""Classical clusterization: peaks closer in time than the diffusion spread form one cluster.

Within one waveform the peaks are sorted in time; a peak *joins the current cluster* when its
distance to the previous peak is below ``k·√t`` ns (k = 0.26 for He 90 / iC4H10 10, the
beam-test cut; t = drift time of the peak in ns, i.e. its time minus ``t0_ns``, clamped at 0),
otherwise it opens a new cluster. The number of clusters is the number of cluster openings.
"""

from __future__ import annotations

import numpy as np

DIFFUSION_CUT_NS_SQRT_NS = 0.26


def cluster_starts(
    peak_wf: np.ndarray,
    peak_time_ns: np.ndarray,
    k: float = DIFFUSION_CUT_NS_SQRT_NS,
    t0_ns: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort peaks by (waveform, time) and flag those that open a new cluster.

    Returns ``(waveform_index, time_ns, opens_cluster)`` in that sorted order.
    """
    wf = np.asarray(peak_wf, dtype=np.int64).ravel()
    t = np.asarray(peak_time_ns, dtype=np.float64).ravel()
    if wf.size != t.size:
        raise ValueError(f"peak_wf has {wf.size} entries, peak_time_ns {t.size}")
    order = np.lexsort((t, wf))
    wf, t = wf[order], t[order]
    new = np.ones(wf.size, dtype=bool)
    if wf.size > 1:
        dt = t[1:] - t[:-1]
        cut = float(k) * np.sqrt(np.maximum(t[1:] - float(t0_ns), 0.0))
        new[1:] = (wf[1:] != wf[:-1]) | ~(dt < cut)
    return wf, t, new


def count_clusters(
    n_waveforms: int,
    peak_wf: np.ndarray,
    peak_time_ns: np.ndarray,
    k: float = DIFFUSION_CUT_NS_SQRT_NS,
    t0_ns: float = 0.0,
) -> np.ndarray:
    """(B,) int64 number of clusters per waveform from its peak times (vectorised)."""
    wf, _, new = cluster_starts(peak_wf, peak_time_ns, k, t0_ns)
    return np.bincount(wf[new], minlength=int(n_waveforms)).astype(np.int64)


def count_clusters_single(times_ns, k: float = DIFFUSION_CUT_NS_SQRT_NS, t0_ns: float = 0.0) -> int:
    """Number of clusters in one waveform's list of peak times."""
    t = np.asarray(times_ns, dtype=np.float64).ravel()
    return int(count_clusters(1, np.zeros(t.size, np.int64), t, k, t0_ns)[0]) if t.size else 0
