"""DERIV peak finder, its threshold scan and the classical √t clusterization."""

from __future__ import annotations

import numpy as np
import pytest

from sweep.physics.simulate import simulate_batch
from sweep.physics import clusterize, deriv


def _pulse(n: int, at: float, amp: float, dt: float = 1 / 1.2) -> np.ndarray:
    t = np.arange(n) * dt - at
    v = np.where(t >= 0, np.exp(-np.maximum(t, 0) / 7.0) - np.exp(-np.maximum(t, 0) / 1.0), 0.0)
    return amp * v / v.max() if v.max() > 0 else v


def test_isolated_pulses_found_in_clean_waveform():
    rng = np.random.default_rng(0)
    n = 1200
    starts = [100.0, 300.0, 520.0, 800.0]  # ns, far apart
    w = 50.0 + 0.1 * rng.standard_normal(n)  # 0.5 % noise
    for s in starts:
        w += _pulse(n, s, 20.0)
    wf, smp = deriv.find_peaks(w, deriv.DerivParams(n1=20, n2=3, n3=0.5, n4=3))
    assert np.all(wf == 0)
    assert len(smp) == len(starts)
    # found at the pulse maximum: ~2.3 ns after arrival
    expect = np.rint((np.array(starts) + 2.33) * 1.2)
    assert np.all(np.abs(smp - expect) <= 1)


def test_no_peaks_in_pure_noise_vectorized():
    rng = np.random.default_rng(1)
    w = 50.0 + rng.standard_normal((20, 2400))
    wf, smp = deriv.find_peaks(w, deriv.DerivParams(n1=5.0, n2=1.0, n3=0.5, n4=1.0))
    assert wf.size == 0 and smp.size == 0


def test_noise_estimates_robust_and_head():
    rng = np.random.default_rng(2)
    w = 50.0 + 2.0 * rng.standard_normal((3, 4000))
    w[:, 2000:2010] += 100.0  # a big signal does not inflate the robust σ
    est = deriv.noise_estimates(w)
    assert np.allclose(est["sigma"].ravel(), 2.0, rtol=0.1)
    assert np.allclose(est["baseline"].ravel(), 50.0, atol=0.2)
    est2 = deriv.noise_estimates(w, noise_samples=1000)
    assert np.allclose(est2["sigma"].ravel(), 2.0, rtol=0.1)


def test_merge_hits_keeps_largest_of_each_run_and_respects_waveforms():
    mask = np.zeros((2, 10), bool)
    mask[0, [2, 3, 4, 7]] = True
    mask[1, [0, 1]] = True
    y = np.zeros((2, 10))
    y[0, [2, 3, 4, 7]] = [1, 5, 2, 1]
    y[1, [0, 1]] = [3, 1]
    wf, s = deriv.merge_hits(mask, y)
    assert wf.tolist() == [0, 0, 1] and s.tolist() == [3, 7, 0]


def test_match_detections_perfect_and_empty():
    tw = np.array([0, 0, 1])
    ts = np.array([10, 50, 20])
    r = deriv.match_detections(tw, ts, tw, ts, 1, 100)
    assert r["efficiency"] == 1.0 and r["purity"] == 1.0 and r["eff_purity"] == 1.0
    r = deriv.match_detections(tw, ts + 1, tw, ts, 1, 100)
    assert r["efficiency"] == 1.0 and r["purity"] == 1.0
    r = deriv.match_detections(tw, ts + 2, tw, ts, 1, 100)
    assert r["efficiency"] == 0.0 and r["purity"] == 0.0
    r = deriv.match_detections(np.zeros(0, int), np.zeros(0, int), tw, ts, 1, 100)
    assert r["n_detected"] == 0 and r["efficiency"] == 0.0


@pytest.fixture(scope="module")
def sim():
    return simulate_batch(None, 60, 5)


def test_threshold_scan_efficiency_falls_purity_rises(sim):
    w = sim.waveforms_mv
    tw, ts = sim.electron_waveform, sim.electron_peak_sample
    off = deriv.calibrate_offset(w, tw, ts, 1)
    assert -3 <= off <= 1
    grid = [deriv.DerivParams(n1=a, n2=0.5, n3=0.5, n4=0.5, offset_samples=off) for a in (2, 4, 8, 16, 32)]
    scan = deriv.threshold_scan(w, tw, ts, 1, grid)
    eff = np.array([q["efficiency"] for q in scan["points"]])
    pur = np.array([q["purity"] for q in scan["points"]])
    ndet = np.array([q["n_detected"] for q in scan["points"]])
    assert np.all(np.diff(ndet) <= 0)  # strictly tighter cuts never add detections
    assert np.all(np.diff(eff) <= 1e-12)
    assert pur[-1] >= pur[0]
    assert eff[0] > 0.5 and scan["best"]["eff_purity"] == max(q["eff_purity"] for q in scan["points"])
    assert scan["best"]["eff_purity"] > 0.3


def test_classical_clusterization_counts():
    # t0 = 0: cut = 0.26 sqrt(t); at t=100 ns the cut is 2.6 ns
    assert clusterize.count_clusters_single([100.0, 101.0, 102.0]) == 1  # chain of close peaks
    assert clusterize.count_clusters_single([100.0, 103.0]) == 2  # 3 ns > 2.6 ns
    assert clusterize.count_clusters_single([400.0, 405.0]) == 1  # cut 5.2 ns at 400 ns
    assert clusterize.count_clusters_single([]) == 0
    # vectorised over waveforms, unsorted input, t0 offset
    wf = np.array([1, 0, 0, 1, 2, 0])
    t = np.array([250.0, 110.0, 100.0, 200.0, 300.0, 160.0])
    counts = clusterize.count_clusters(4, wf, t)
    assert counts.tolist() == [3, 2, 1, 0]
    # with t0 = 100 ns the cut uses the drift time t - t0
    assert clusterize.count_clusters(1, [0, 0], [100.0, 100.5], t0_ns=100.0).tolist() == [2]  # cut 0.18 ns
    assert clusterize.count_clusters(1, [0, 0], [100.0, 110.5], t0_ns=100.0).tolist() == [2]
    assert clusterize.count_clusters(1, [0, 0], [110.0, 110.5], t0_ns=100.0).tolist() == [1]


def _clusters_by_loop(times, amps, k, t0, reference):
    """The √t clusterization written as the plain loop the vectorised one must equal."""
    n, ref_t, ref_a = 0, None, None
    for t, a in sorted(zip(times, amps, strict=True)):
        if ref_t is None or not (t - ref_t) < k * max(t - t0, 0.0) ** 0.5:
            n, ref_t, ref_a = n + 1, t, a
        elif reference == "previous" or (reference == "largest" and a > ref_a):
            ref_t, ref_a = t, a
    return n


def _random_peaks(seed: int, n: int, waveforms: int):
    """n peaks spread over `waveforms` waveforms: (waveform, time 100-400 ns, amplitude)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, waveforms, n), 100.0 + rng.uniform(0, 300, n), rng.exponential(10.0, n)


@pytest.mark.parametrize("reference", ["previous", "first", "largest"])
def test_clusterization_references_equal_the_plain_loop(reference):
    wf, t, a = _random_peaks(3, 2000, 40)
    got = clusterize.count_clusters(41, wf, t, 0.4, 100.0, reference, a)
    want = [_clusters_by_loop(t[wf == i], a[wf == i], 0.4, 100.0, reference) for i in range(41)]
    assert got.tolist() == want and got[40] == 0


def test_clusterization_references_on_a_constructed_chain():
    # at t0 = 0 and t ~ 400 ns the cut is 0.26 × 20 = 5.2 ns: 400, 404, 408, 412 are each within 5.2 ns of the
    # one before, so chained to the previous peak they are one cluster; compared with the first, two
    times = [400.0, 404.0, 408.0, 412.0]
    assert clusterize.count_clusters_single(times) == 1
    assert clusterize.count_clusters_single(times, reference="first") == 2
    # compared with the largest so far: 408 is the largest, so 412 (4 ns after it) stays in its cluster
    assert clusterize.count_clusters_single(times, reference="largest", amplitude=[1, 2, 9, 1]) == 1
    assert clusterize.count_clusters_single(times, reference="largest", amplitude=[9, 1, 1, 1]) == 2
    with pytest.raises(ValueError, match="amplitudes"):
        clusterize.count_clusters_single(times, reference="largest")
    with pytest.raises(ValueError, match="reference"):
        clusterize.count_clusters_single(times, reference="nearest")


@pytest.mark.parametrize("reference", ["previous", "first", "largest"])
def test_every_scale_in_one_pass_equals_one_scale_at_a_time(reference):
    wf, t, a = _random_peaks(5, 1500, 30)
    scales = (0.15, 0.26, 0.5)
    many = clusterize.count_clusters_scales(31, wf, t, scales, 100.0, reference, a)
    assert many.shape == (3, 31)
    for k, row in zip(scales, many, strict=True):
        assert row.tolist() == clusterize.count_clusters(31, wf, t, k, 100.0, reference, a).tolist()
