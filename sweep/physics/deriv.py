"""DERIV: the classical derivative peak finder of the Bari/Lecce beam tests (NumPy, vectorised).

For a (B, n) array of positive-going waveforms (mV):

1. baseline = median of the waveform (or of the first ``noise_samples`` samples), y = wf − baseline;
2. noise rms σ: from the signal-free head ``y[:noise_samples]`` (std) or, by default, robustly
   from the whole waveform (1.4826 × MAD; pulses occupy a small part of the window);
3. central differences d1[i] = (y[i+1] − y[i−1])/2, d2[i] = y[i+1] − 2y[i] + y[i−1]; their
   noise widths σ(d1), σ(d2) are estimated robustly (MAD) per waveform;
4. sample i is a hit when all of

   * y[i] > N1·σ                                   (amplitude),
   * y[i] − (y[i−1] + y[i+1])/2 > N2·σ              (local prominence),
   * y[i] − y[i−1] > −N3·σ(d1) and y[i+1] − y[i] < N3·σ(d1)
                                                    (the first derivative changes sign, within
                                                     a noise tolerance N3),
   * d2[i] < −N4·σ(d2)                              (curvature);

5. consecutive hits are merged into one peak at the sample of largest amplitude.

The peak is found at the pulse *maximum*; the simulator's truth peak is the steepest rise
(1–2 samples earlier). ``DerivParams.offset_samples`` shifts the reported sample (time-walk
correction); :func:`calibrate_offset` finds the integer shift that maximises the matches.

:func:`threshold_scan` runs a grid of thresholds and gives efficiency (recall) and purity
(precision) against truth with the same ± k sample matching as the datasets
(:func:`sweep.physics.datasets.match_candidates`).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class DerivParams:
    """Thresholds of the DERIV finder (in units of the noise widths)."""

    n1: float = 4.0  # amplitude, × σ
    n2: float = 1.0  # prominence over the neighbours' mean, × σ
    n3: float = 0.5  # sign-change tolerance of the first derivative, × σ(d1)
    n4: float = 1.0  # curvature, × σ(d2)
    noise_samples: int = 0  # > 0: baseline and σ from y[:noise_samples]; 0: robust (median, MAD)
    offset_samples: int = 0  # added to the reported peak sample (time-walk correction)

    def replace(self, **kw: Any) -> DerivParams:
        """A copy with the fields given changed (a TypeError for an unknown one)."""
        return dataclasses.replace(self, **kw)

    def to_dict(self) -> dict[str, Any]:
        """field -> value."""
        return dataclasses.asdict(self)


def _mad_sigma(x: np.ndarray, axis: int = 1) -> np.ndarray:
    med = np.median(x, axis=axis, keepdims=True)
    return MAD_TO_SIGMA * np.median(np.abs(x - med), axis=axis, keepdims=True)


def noise_estimates(waveforms: np.ndarray, noise_samples: int = 0) -> dict[str, np.ndarray]:
    """Per waveform: baseline, σ, σ(d1) and σ(d2) (each (B, 1) float64) and y = wf − baseline."""
    w = np.asarray(waveforms, dtype=np.float64)
    if w.ndim == 1:
        w = w[None, :]
    if w.ndim != 2:
        raise ValueError(f"waveforms must be 1-D or 2-D, got shape {w.shape}")
    if noise_samples and noise_samples >= 8:
        head = w[:, : int(noise_samples)]
        base = np.median(head, axis=1, keepdims=True)
        y = w - base
        sigma = np.std(head, axis=1, keepdims=True)
        ref = y[:, : int(noise_samples)]
    else:
        base = np.median(w, axis=1, keepdims=True)
        y = w - base
        sigma = _mad_sigma(y)
        ref = y
    d1 = 0.5 * (ref[:, 2:] - ref[:, :-2])
    d2 = ref[:, 2:] - 2.0 * ref[:, 1:-1] + ref[:, :-2]
    tiny = 1e-9
    return {
        "baseline": base,
        "sigma": np.maximum(sigma, tiny),
        "sigma_d1": np.maximum(_mad_sigma(d1), tiny),
        "sigma_d2": np.maximum(_mad_sigma(d2), tiny),
        "y": y,
    }


def _hit_mask(y: np.ndarray, est: dict[str, np.ndarray], p: DerivParams) -> np.ndarray:
    """(B, n) boolean hits (edges never hit)."""
    B, n = y.shape
    mask = np.zeros((B, n), dtype=bool)
    if n < 3:
        return mask
    yc, yl, yr = y[:, 1:-1], y[:, :-2], y[:, 2:]
    s, s1, s2 = est["sigma"], est["sigma_d1"], est["sigma_d2"]
    d2 = yr - 2.0 * yc + yl
    m = yc > p.n1 * s
    m &= yc - 0.5 * (yl + yr) > p.n2 * s
    m &= (yc - yl > -p.n3 * s1) & (yr - yc < p.n3 * s1)
    m &= d2 < -p.n4 * s2
    mask[:, 1:-1] = m
    return mask


def merge_hits(mask: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge runs of consecutive hits into one peak at the run's largest ``y``.

    Returns ``(waveform_index, sample)`` int64, ordered by waveform then sample.
    """
    B, n = mask.shape
    flat = np.flatnonzero(mask.ravel())
    if flat.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    wf, s = np.divmod(flat, n)
    start = np.ones(flat.size, dtype=bool)
    start[1:] = (flat[1:] != flat[:-1] + 1) | (wf[1:] != wf[:-1])
    run = np.cumsum(start) - 1
    amp = y.ravel()[flat]
    order = np.lexsort((-amp, run))  # per run, largest amplitude first
    first = np.ones(order.size, dtype=bool)
    first[1:] = run[order][1:] != run[order][:-1]
    pick = np.sort(order[first])
    return wf[pick].astype(np.int64), s[pick].astype(np.int64)


def find_peaks(
    waveforms: np.ndarray, params: DerivParams | None = None, *, estimates: dict | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """DERIV peaks of a (B, n) (or (n,)) array: ``(waveform_index, sample)`` int64 arrays."""
    p = params or DerivParams()
    est = estimates if estimates is not None else noise_estimates(waveforms, p.noise_samples)
    y = est["y"]
    wf, s = merge_hits(_hit_mask(y, est, p), y)
    if p.offset_samples:
        s = s + int(p.offset_samples)
    return wf, s


# --------------------------------------------------------------------------------------------
# Matching against truth
# --------------------------------------------------------------------------------------------


def match_detections(
    det_wf: np.ndarray,
    det_sample: np.ndarray,
    true_wf: np.ndarray,
    true_sample: np.ndarray,
    tolerance: int,
    n_samples: int,
) -> dict[str, Any]:
    """Efficiency and purity of detections against (distinct) true peaks, ± ``tolerance`` samples.

    purity = detections with a true peak within ± k / detections (the datasets' labelling rule);
    efficiency = distinct true peaks with a detection within ± k / distinct true peaks.
    Returns counts, efficiency, purity, eff_purity, f1 and the per-detection labels.
    """
    from .datasets import distinct_peaks, match_candidates

    tw, ts, _ = distinct_peaks(true_wf, true_sample, np.ones(np.size(true_wf), np.int8))
    dw = np.asarray(det_wf, dtype=np.int64)
    ds = np.asarray(det_sample, dtype=np.int64)
    det_labels, _ = match_candidates(dw, ds, tw, ts, np.ones(tw.size, np.int8), tolerance, n_samples)
    if dw.size:
        true_found, _ = match_candidates(tw, ts, dw, ds, np.ones(dw.size, np.int8), tolerance, n_samples)
    else:
        true_found = np.zeros(tw.size, np.int8)
    n_det, n_true = int(dw.size), int(tw.size)
    good = int(det_labels.sum())
    found = int(true_found.sum())
    purity = good / n_det if n_det else 0.0
    eff = found / n_true if n_true else 0.0
    f1 = 2 * eff * purity / (eff + purity) if eff + purity else 0.0
    return {"n_detected": n_det, "n_true": n_true, "n_good": good, "n_found": found,
            "efficiency": eff, "purity": purity, "eff_purity": eff * purity, "f1": f1,
            "labels": det_labels}


def calibrate_offset(
    waveforms: np.ndarray,
    true_wf: np.ndarray,
    true_sample: np.ndarray,
    tolerance: int,
    params: DerivParams | None = None,
    search: Sequence[int] = range(-4, 5),
) -> int:
    """Integer shift of the DERIV sample that maximises the number of matched detections."""
    p = (params or DerivParams()).replace(offset_samples=0)
    w = np.asarray(waveforms)
    wf, s = find_peaks(w, p)
    n = w.shape[-1]
    best, best_good = 0, -1
    for off in search:
        r = match_detections(wf, s + int(off), true_wf, true_sample, tolerance, n)
        if r["n_good"] > best_good:
            best, best_good = int(off), r["n_good"]
    return best


def threshold_grid(
    n1: Iterable[float] = (3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 15.0),
    n2: Iterable[float] = (0.0, 1.0, 2.0, 4.0),
    n3: Iterable[float] = (0.5, 1.0),
    n4: Iterable[float] = (0.5, 1.0, 2.0, 4.0),
    base: DerivParams | None = None,
) -> list[DerivParams]:
    """The Cartesian product of the four threshold lists (other fields from ``base``)."""
    b = base or DerivParams()
    return [b.replace(n1=float(a), n2=float(c), n3=float(d), n4=float(e))
            for a, c, d, e in itertools.product(n1, n2, n3, n4)]


def threshold_scan(
    waveforms: np.ndarray,
    true_wf: np.ndarray,
    true_sample: np.ndarray,
    tolerance: int,
    grid: Sequence[DerivParams] | None = None,
) -> dict[str, Any]:
    """Efficiency and purity of DERIV for each point of ``grid`` (default :func:`threshold_grid`).

    Noise estimates are computed once per ``noise_samples`` setting. Returns
    ``{"points": [...], "best": point with the largest eff×purity}``; each point holds the
    thresholds and the counts/efficiency/purity/eff_purity/f1 of :func:`match_detections`.
    """
    w = np.asarray(waveforms)
    if w.ndim == 1:
        w = w[None, :]
    n = w.shape[1]
    grid = list(grid) if grid is not None else threshold_grid()
    cache: dict[int, dict] = {}
    points = []
    for p in grid:
        est = cache.get(p.noise_samples)
        if est is None:
            est = cache[p.noise_samples] = noise_estimates(w, p.noise_samples)
        wf, s = find_peaks(w, p, estimates=est)
        r = match_detections(wf, s, true_wf, true_sample, tolerance, n)
        r.pop("labels")
        points.append({**p.to_dict(), **r})
    best = max(points, key=lambda q: q["eff_purity"]) if points else None
    return {"points": points, "best": best, "tolerance": int(tolerance)}
