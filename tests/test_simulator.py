"""Physics and mechanics of the toy waveform simulator (sweep.physics.simulate)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import yaml

from sweep.physics import datasets as D
from sweep.physics import simulate as S


def test_import_is_light():
    code = (
        "import sys, sweep.physics, sweep.physics.simulate, sweep.physics.datasets; "
        "bad = [m for m in ('scipy', 'tensorflow', 'rich', 'sklearn') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_defaults_follow_the_reference():
    p = S.SimulationParams()
    assert p.particle == "pion" and p.momentum_min_gev == 4 and p.momentum_max_gev == 180
    assert p.cell_size_cm == 1.5 and p.half_cell_cm == 0.75
    assert p.n_samples == 2400 and p.dt_ns == pytest.approx(1 / 1.2)
    assert p.pulse_tau_rise_ns == 1 and p.pulse_tau_fall_ns == 7
    assert p.gain_polya_theta == 0.5 and p.noise_rms_mv == 1 and p.adc_bits == 12
    assert p.diffusion_ns_sqrt_ns == 0.26 and len(p.cluster_size_percent) == 19
    assert dict(zip(p.cluster_density_betagamma, p.cluster_density_per_cm, strict=True))[4.0] == 12.13


def test_cluster_density_spline():
    p = S.SimulationParams()
    knots = np.array(p.cluster_density_betagamma)
    np.testing.assert_allclose(S.cluster_density_per_cm(p, knots), p.cluster_density_per_cm, rtol=1e-12)
    assert S.cluster_density_per_cm(p, 5000.0) == pytest.approx(16.98)
    assert S.cluster_density_per_cm(p, 0.1) == pytest.approx(42.94)
    lo, hi = S.cluster_density_per_cm(p, np.array([4.0, 180.0]) / S.PARTICLE_MASSES_GEV["pion"])
    assert 14.4 < lo < 14.9 and 16.8 < hi <= 16.98
    # smooth and monotonic in the relativistic rise region
    bg = np.geomspace(5, 1000, 200)
    assert np.all(np.diff(S.cluster_density_per_cm(p, bg)) > -1e-3)


@pytest.mark.parametrize("bg", [4.0, 30.0, 300.0])
def test_mean_clusters_per_cm_matches_table(bg):
    p = S.SimulationParams(fixed_betagamma=bg, cell_shape="square")  # perpendicular track: chord = 1.5 cm
    b = S.simulate_batch(p, 20_000, np.random.default_rng(11), render=False)
    np.testing.assert_allclose(b.tracks.chord_cm, 1.5)
    per_cm = b.n_clusters.mean() / 1.5
    expected = float(S.cluster_density_per_cm(p, bg))
    assert per_cm == pytest.approx(expected, rel=0.02)


def test_cluster_counts_are_poisson_at_fixed_length():
    p = S.SimulationParams(fixed_betagamma=100.0, cell_shape="square")
    n = S.simulate_batch(p, 30_000, np.random.default_rng(5), render=False).n_clusters
    lam = 16.43 * 1.5
    assert n.mean() == pytest.approx(lam, rel=0.01)
    assert n.var() / n.mean() == pytest.approx(1.0, abs=0.05)


def test_default_mean_clusters_near_seed_study():
    seed_geometry = S.SimulationParams(cell_shape="square")  # every chord 1.5 cm, as in the seed study
    b = S.simulate_batch(seed_geometry, 4000, np.random.default_rng(1), render=False)
    assert 23.5 < b.n_clusters.mean() < 26.5  # seed study: 25.25 per 1.5 cm cell


def test_cluster_sizes_fischle():
    p = S.SimulationParams(cluster_size_max=19)  # the seed study's cut distribution
    k = S.sample_cluster_sizes(p, 400_000, np.random.default_rng(2))
    assert k.min() == 1 and k.max() == 19
    assert k.mean() == pytest.approx(1.53, abs=0.02)
    assert (k == 1).mean() == pytest.approx(0.766 / 0.99523, abs=0.005)
    b = S.simulate_batch(p, 3000, np.random.default_rng(3), render=False)
    assert b.cluster_size.mean() == pytest.approx(1.53, abs=0.03)


def test_the_default_cluster_sizes_have_the_delta_electron_tail_to_300():
    """The default is Fischle's table with its 10.9/n² tail up to 300 electrons: the mean is the
    closed form's 1.82, clusters of 20-300 electrons occur (0.5 % of them), none beyond 300."""
    p = S.SimulationParams()
    assert p.cluster_size_max == 300 and p.cell_shape == "tube"
    table = np.asarray(S.FISCHLE_CLUSTER_SIZE_PERCENT)
    tail = np.arange(20, 301, dtype=float)
    expected = ((table * np.arange(1, 20)).sum() + 10.9 * (1 / tail).sum()) / (table.sum() + 10.9 * (1 / tail**2).sum())
    assert expected == pytest.approx(1.82, abs=0.01)
    k = S.sample_cluster_sizes(p, 1_000_000, np.random.default_rng(6))
    assert k.max() <= 300 and k.mean() == pytest.approx(expected, rel=0.03)
    in_tail = 10.9 * (1 / tail**2).sum() / (table.sum() + 10.9 * (1 / tail**2).sum())
    assert (k >= 20).mean() == pytest.approx(in_tail, rel=0.05)


def test_cluster_size_tail_beyond_the_table():
    """cluster_size_max > 19 adds Fischle's 10.9/n² % tail; the table part keeps its shape."""
    p = S.SimulationParams(cluster_size_max=1000)
    prob = S.cluster_size_probabilities(p)
    assert prob.size == 1000 and prob.sum() == pytest.approx(1.0)
    n = np.arange(1, 1001)
    # relative weights: table entry 1 (76.6 %) against the tail 10.9/n² at n = 20 and 1000
    assert prob[19] / prob[0] == pytest.approx(10.9 / 400 / 76.6)
    assert prob[999] / prob[0] == pytest.approx(10.9 / 1e6 / 76.6)
    # mean = (Σ table n P(n) + 10.9 Σ_{20..1000} 1/n) / (Σ table + 10.9 Σ 1/n²), here 1.95
    table = np.asarray(S.FISCHLE_CLUSTER_SIZE_PERCENT)
    tail = np.arange(20, 1001, dtype=float)
    expected = ((table * n[:19]).sum() + 10.9 * (1 / tail).sum()) / (table.sum() + 10.9 * (1 / tail**2).sum())
    assert (prob * n).sum() == pytest.approx(expected) and 1.9 < expected < 2.0
    k = S.sample_cluster_sizes(p, 1_000_000, np.random.default_rng(4))
    assert k.max() <= 1000 and (k >= 20).mean() == pytest.approx(prob[19:].sum(), rel=0.05)
    assert k.mean() == pytest.approx(expected, rel=0.03)
    # a maximum below the table's length cuts the table there
    assert S.sample_cluster_sizes(S.SimulationParams(cluster_size_max=3), 10_000, np.random.default_rng(5)).max() == 3
    with pytest.raises(S.ParameterError, match="cluster_size_max"):
        S.SimulationParams(cluster_size_max=0)


def test_chord_geometry():
    R = 0.75
    tube = S.SimulationParams(cell_shape="tube")
    t = S.sample_tracks(tube, 1000, np.random.default_rng(0))
    np.testing.assert_allclose(t.chord_cm, 2 * np.sqrt(R**2 - t.impact_parameter_cm**2))
    tilted = S.SimulationParams(cell_shape="square", track_angle_max_deg=40.0, fixed_impact_parameter_cm=0.0)
    t = S.sample_tracks(tilted, 1000, np.random.default_rng(0))
    np.testing.assert_allclose(t.chord_cm, 1.5 / np.cos(t.angle_rad))
    assert np.abs(t.angle_rad).max() <= math.radians(40.0)


def test_drift_time_relation_and_diffusion():
    p = S.SimulationParams()
    r = np.linspace(0, 0.75, 50)
    t = S.drift_time_ns(p, r)
    assert np.all(np.diff(t) > 0)
    assert 150 < S.drift_time_ns(p, 0.75) < 500  # half cell in a few hundred ns
    assert S.drift_time_ns(p, 0.75) != pytest.approx(2 * S.drift_time_ns(p, 0.375))  # nonlinear

    b = S.simulate_batch(p, 500, np.random.default_rng(4), render=False)
    cl_global = b.electron_cluster.astype(np.int64) + b.cluster_offsets[b.electron_waveform]
    dt_sec = b.electron_time_ns - b.cluster_time_ns[cl_global]
    sec = b.electron_tag == 2
    assert np.all(dt_sec >= 0)  # the primary is the earliest electron of its cluster
    assert np.sqrt(np.mean(dt_sec[sec] ** 2)) < 10.0  # secondaries sit next to their primary
    spacing = np.concatenate([np.diff(b.cluster_time_ns[b.cluster_offsets[i]:b.cluster_offsets[i + 1]])
                              for i in range(b.n_waveforms)])
    assert np.median(dt_sec[sec]) < np.mean(spacing)


def test_truth_bookkeeping():
    p = S.SimulationParams()
    b = S.simulate_batch(p, 200, np.random.default_rng(9))
    E, C = b.electron_time_ns.size, b.cluster_time_ns.size
    assert b.electron_offsets[-1] == E and b.cluster_offsets[-1] == C == b.n_clusters.sum()
    assert b.cluster_size.sum() == E
    np.testing.assert_array_equal(np.bincount(b.electron_waveform, minlength=200), np.diff(b.electron_offsets))
    np.testing.assert_array_equal(
        np.bincount(b.electron_waveform[b.electron_tag == 1], minlength=200), b.n_clusters
    )
    np.testing.assert_array_equal(b.electron_sample, np.floor(b.electron_time_ns / p.dt_ns))
    for i in range(200):
        e = b.electrons(i)
        assert np.all(np.diff(e["time_ns"]) >= 0)
        assert np.all(np.diff(e["cluster"][e["tag"] == 1]) == 1)  # clusters ordered by arrival
        assert set(np.unique(e["cluster"])) == set(range(b.n_clusters[i]))
    d = b.electron_peak_sample - b.electron_sample
    assert set(np.unique(d)) <= {1, 2}  # peak (steepest rise) 1-2 samples after arrival
    np.testing.assert_allclose(b.betagamma, b.momentum_gev / S.PARTICLE_MASSES_GEV["pion"])
    assert b.momentum_gev.min() >= 4 and b.momentum_gev.max() <= 180


def test_polya_gain():
    g = S.polya_gain(S.SimulationParams(), 400_000, np.random.default_rng(0))
    assert g.mean() == pytest.approx(1.0, abs=0.01)
    assert g.var() == pytest.approx(1 / 1.5, rel=0.02)


def test_noise_baseline_and_adc():
    p = S.SimulationParams()
    rng = np.random.default_rng(0)
    mv, adc = S.render_waveforms(p, 64, np.zeros(0), np.zeros(0), np.zeros(0), rng)
    assert mv.shape == (64, 2400) and mv.dtype == np.float32 and adc.dtype == np.int16
    assert mv.std(axis=1).mean() == pytest.approx(1.0, abs=0.03)
    assert mv.mean() == pytest.approx(50.0, abs=0.3)
    x = mv - mv.mean(axis=1, keepdims=True)
    rho1 = (x[:, 1:] * x[:, :-1]).mean() / (x * x).mean()
    assert rho1 == pytest.approx(math.exp(-p.dt_ns / 1.0), abs=0.03)  # coloured, not white
    lsb = 1000 / 4096
    np.testing.assert_allclose(mv, adc * lsb, atol=1e-3)
    assert adc.min() >= 0 and adc.max() < 4096


@pytest.mark.parametrize("electronics", [False, True])
def test_isolated_pulse_shape_and_finder_consistency(electronics):
    # 16-bit ADC here so that quantisation ties cannot move the steepest-rise sample
    p = S.SimulationParams(electronics=electronics, baseline_mv=100.0, adc_bits=16)
    resp = S.pulse_response(p)
    fine = np.linspace(0, 200, 200_001)
    v = resp(fine)
    assert v.max() == pytest.approx(1.0, abs=1e-6) and v[0] == pytest.approx(0.0, abs=1e-9)
    if not electronics:
        assert resp.peak_time_ns == pytest.approx(math.log(7) * 7 / 6, abs=1e-3)
    else:
        assert resp.peak_time_ns > 4.0
    rng = np.random.default_rng(1)
    n = 400
    t = rng.uniform(300.0, 1500.0, n)
    mv, _ = S.render_waveforms(p, n, np.arange(n), t, np.ones(n), rng, noise=False)
    amp = mv.max(axis=1) - 100.0
    assert np.all(amp <= p.single_electron_peak_mv + 0.05)
    assert np.all(amp >= 0.85 * p.single_electron_peak_mv)
    tmax = np.argmax(mv, axis=1) * p.dt_ns - t
    assert np.all(np.abs(tmax - resp.peak_time_ns) <= p.dt_ns)
    cw, cs = D.find_candidates(mv, 0.5)
    np.testing.assert_array_equal(cw, np.arange(n))  # exactly one candidate per isolated pulse ...
    diff = cs - resp.peak_sample(t)
    assert np.all(np.abs(diff) <= 1)  # ... where the truth says
    assert np.mean(diff == 0) > (0.99 if not electronics else 0.8)


def test_finder_on_default_adc_within_tolerance():
    p = S.SimulationParams(baseline_mv=100.0)  # 12-bit: ties may shift the candidate by one sample
    rng = np.random.default_rng(2)
    t = rng.uniform(300.0, 1500.0, 400)
    mv, _ = S.render_waveforms(p, 400, np.arange(400), t, np.ones(400), rng, noise=False)
    cw, cs = D.find_candidates(mv, 0.5)
    np.testing.assert_array_equal(cw, np.arange(400))
    diff = cs - S.pulse_response(p).peak_sample(t)
    assert np.all((diff == 0) | (diff == 1)) and np.mean(diff == 0) > 0.9


def test_amplitude_scales_linearly():
    p = S.SimulationParams(baseline_mv=100.0)
    mv, _ = S.render_waveforms(p, 2, [0, 1], [500.0, 500.0], [1.0, 3.0], None, noise=False)
    s = mv - 100.0
    assert s[1].max() == pytest.approx(3 * s[0].max(), rel=0.01)


def test_reproducible_by_seed():
    p = S.SimulationParams()
    a = S.simulate_batch(p, 50, np.random.default_rng(123))
    b = S.simulate_batch(p, 50, np.random.default_rng(123))
    c = S.simulate_batch(p, 50, np.random.default_rng(124))
    np.testing.assert_array_equal(a.waveforms_mv, b.waveforms_mv)
    np.testing.assert_array_equal(a.electron_time_ns, b.electron_time_ns)
    np.testing.assert_array_equal(a.n_clusters, b.n_clusters)
    assert not np.array_equal(a.waveforms_mv, c.waveforms_mv)


def test_params_roundtrip_through_yaml():
    p = S.SimulationParams(electronics=True, cell_shape="tube", fixed_betagamma=3.0)
    d = yaml.safe_load(yaml.safe_dump(p.to_dict()))
    assert S.SimulationParams.from_dict(d) == p
    assert S.SimulationParams.from_dict(None) == S.SimulationParams()
    assert S.SimulationParams.from_dict({"xt_coefficients_ns": [100, 50, 10]}).xt_coefficients_ns == (100.0, 50.0, 10.0)
    assert hash(p) == hash(S.SimulationParams.from_dict(d))


def test_params_errors():
    with pytest.raises(S.ParameterError, match=r"'noise_rms'.*did you mean 'noise_rms_mv'"):
        S.SimulationParams.from_dict({"noise_rms": 2.0})
    with pytest.raises(S.ParameterError, match="particle"):
        S.SimulationParams.from_dict({"particle": "gluon"})
    with pytest.raises(S.ParameterError, match="cell_size_cm"):
        S.SimulationParams.from_dict({"cell_size_cm": -1})
    with pytest.raises(S.ParameterError, match="expected a number"):
        S.SimulationParams.from_dict({"noise_rms_mv": "loud"})
    with pytest.raises(S.ParameterError, match="tolerance_samples"):
        S.SimulationParams.from_dict({"tolerance_samples": 1.5})
    with pytest.raises(S.ParameterError, match="mapping"):
        S.SimulationParams.from_dict([1, 2])
    with pytest.raises(S.ParameterError, match="momentum_max_gev"):
        S.SimulationParams.from_dict({"momentum_min_gev": 10, "momentum_max_gev": 5})
    assert issubclass(S.ParameterError, ValueError)
    with pytest.raises(S.ParameterError, match="'window_scale_mv' was removed: .*own noise rms"):
        S.SimulationParams.from_dict({"window_scale_mv": 10.0})  # windows are in noise units since format 3


def test_electronics_presets_set_their_values_and_given_keys_win():
    fast = S.SimulationParams.from_dict({"electronics_preset": "fast_front_end"})
    assert (fast.pulse_tau_rise_ns, fast.pulse_tau_fall_ns, fast.sampling_rate_gsps) == (0.5, 2.0, 2.0)
    digi = S.SimulationParams.from_dict({"electronics_preset": "dchdigi_v03", "noise_rms_mv": 2.0})
    assert digi.dt_ns == 0.5 and digi.adc_bits == 12 and digi.noise_rms_mv == 2.0
    assert S.SimulationParams.from_dict({"electronics_preset": "seed"}) == S.SimulationParams()
    mine = S.SimulationParams.from_dict({"electronics_preset": "fast_front_end", "sampling_rate_gsps": 1.5})
    assert mine.sampling_rate_gsps == 1.5 and mine.pulse_tau_fall_ns == 2.0
    assert "electronics_preset" not in mine.to_dict()  # the record holds the values
    with pytest.raises(S.ParameterError, match="electronics_preset.*seed, fast_front_end, dchdigi_v03"):
        S.SimulationParams.from_dict({"electronics_preset": "fastest"})


def test_a_track_dip_lengthens_the_path_and_its_clusters_and_no_dip_keeps_every_seed_s_stream():
    from sweep.physics.simulate import SimulationParams, sample_tracks, simulate_batch

    rng = np.random.default_rng(3)
    flat = simulate_batch(SimulationParams(), 300, np.random.default_rng(8))
    again = simulate_batch(SimulationParams().replace(track_dip_max_deg=0.0), 300, np.random.default_rng(8))
    assert np.array_equal(flat.waveforms_mv, again.waveforms_mv)  # no draw made for a dip of 0
    tracks = sample_tracks(SimulationParams().replace(track_dip_max_deg=60), 20000, rng)
    assert tracks.dip_rad.min() >= 0 and tracks.dip_rad.max() <= math.radians(60)
    assert np.allclose(tracks.path_cm, tracks.chord_cm / np.cos(tracks.dip_rad))
    # the clusters follow the path: E[1/cos] over [0, 60°] = ln(tan 75°) / (π/3) = 1.2577
    expected = math.log(math.tan(math.radians(75))) / (math.pi / 3)
    dipped = simulate_batch(SimulationParams().replace(track_dip_max_deg=60), 3000, np.random.default_rng(9))
    plain = simulate_batch(SimulationParams(), 3000, np.random.default_rng(9))
    ratio = dipped.n_clusters.mean() / plain.n_clusters.mean()
    assert abs(ratio - expected) < 0.05, ratio
    with pytest.raises(Exception, match="track_dip_max_deg"):
        SimulationParams().replace(track_dip_max_deg=85)
