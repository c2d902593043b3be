"""The track level's pieces: the charge from the waveform, the length-weighted truncated mean,
the density response and the choice of options on calibration tracks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sweep.physics import simulate as S
from sweep.physics import tracklevel as TL


def test_the_waveform_charge_counts_electrons_at_mean_gain():
    """Noise-free waveforms of known electrons: the integral above the pedestal over the gate, in
    units of one mean-gain pulse, is Σ G/<G> of the electrons. (A 16-bit ADC here: without noise to
    dither them, the 12-bit ADC's 0.24 mV steps against a baseline between two codes lose ~3 % of a
    lone pulse's tail.)"""
    p = S.SimulationParams(adc_bits=16)
    lo, hi = TL.integration_gate_ns(p)
    assert lo == p.t0_ns - 5 and p.t0_ns + float(S.drift_time_ns(p, 0.75)) < hi < p.window_ns
    rng = np.random.default_rng(1)
    gains = np.array([1.0, 2.5, 0.7, 3.0, 1.2])
    times = np.array([150.0, 200.0, 260.0, 300.0, 320.0])
    mv, _ = S.render_waveforms(p, 5, np.arange(5), times, gains, rng, noise=False)
    np.testing.assert_allclose(TL.waveform_charge(mv, p), gains, rtol=0.02)
    # a real simulation (noise, saturation, electrons outside the gate): within a few % on average
    b = S.simulate_batch(S.SimulationParams(cluster_size_max=19), 400, 2)
    truth = np.bincount(b.electron_waveform, weights=b.electron_gain, minlength=400)
    q = TL.waveform_charge(b.waveforms_mv, b.params)
    assert q.sum() / truth.sum() == pytest.approx(1.0, abs=0.05)
    assert np.corrcoef(q, truth)[0, 1] > 0.95


def test_the_length_weighted_truncated_mean():
    # four cells: charge per cm 1, 2, 3, 100; lengths 1, 1, 2, 1 (total 5): keeping 60 % of the length
    # keeps the cells whose length before them is < 3 cm: 1 and 2 and 3 (0, 1, 2 cm before)
    q = np.array([[1.0, 2.0, 6.0, 100.0]])
    L = np.array([[1.0, 1.0, 2.0, 1.0]])
    assert TL.dedx_length_truncated(L, q, 0.6)[0] == pytest.approx((1 + 2 + 6) / 4)
    assert TL.dedx_length_truncated(L, q, 0.3)[0] == pytest.approx((1 + 2) / 2)
    assert TL.dedx_length_truncated(L, q, 1.0)[0] == pytest.approx(109 / 5)
    # a cell without a chord is left out, whatever its charge
    assert TL.dedx_length_truncated(np.array([[0.0, 1.0]]), np.array([[5.0, 2.0]]), 1.0)[0] == pytest.approx(2.0)


def test_the_density_response_through_the_groups_means():
    rng = np.random.default_rng(0)
    groups = []
    for true in (14.0, 16.0, 12.0):
        t = true + rng.normal(0, 0.3, 400)
        groups.append((3.0 + 0.5 * t + rng.normal(0, 0.1, 400), t))
    r = TL.density_response(groups)
    assert r["slope"] == pytest.approx(0.5, abs=3 * r["slope_err"] + 0.01)
    assert r["offset"] == pytest.approx(3.0, abs=0.2) and 0 < r["slope_err"] < 0.01
    assert math.isnan(TL.density_response(groups[:1])["slope"])


def test_options_are_named_and_the_best_separating_one_is_chosen():
    assert TL.option_key("lstm_sqrt_t", 0.95, "largest", 0.26) == "lstm_sqrt_t@0.95/largest/0.26"
    assert TL.parse_option("lstm_sqrt_t@0.95/largest/0.26") == {
        "method": "lstm_sqrt_t", "threshold": 0.95, "reference": "largest", "scale": 0.26}
    assert TL.parse_option("deriv_npeaks") == {"method": "deriv_npeaks", "threshold": None}
    key = TL.option_key("lstm_expected", 0.9, prior=0.05)
    assert key == "lstm_expected@0.9/prior=0.05"
    assert TL.parse_option(key) == {"method": "lstm_expected", "threshold": 0.9, "prior": 0.05}
    rng = np.random.default_rng(1)
    pion = {"a@0.5": rng.normal(10, 1, 100), "a@0.9": rng.normal(10, 1, 100), "b": rng.normal(0, 1, 100)}
    kaon = {"a@0.5": rng.normal(11, 1, 100), "a@0.9": rng.normal(14, 1, 100), "b": rng.normal(1, 1, 100)}

    def separation(x, y):
        return abs(x.mean() - y.mean()) / (0.5 * (x.std() + y.std()))

    chosen, separations = TL.choose({"pion": pion, "kaon": kaon}, ["a", "b", "c"], separation)
    assert chosen == {"a": "a@0.9", "b": "b"}
    assert set(separations["a"]) == {"a@0.5", "a@0.9"} and separations["c"] == {}


def test_count_options_cover_every_threshold_reference_and_scale():
    p = S.SimulationParams()
    b = S.simulate_batch(p, 20, 3)
    from sweep.physics import datasets as D

    cw, cs, _ = D.peak_candidates(b.waveforms_mv, p.finder_threshold_rms, p.candidate_finder)
    score = np.random.default_rng(0).random(cw.size)
    out = TL.count_options(20, "lstm", cw, cs, b.waveforms_mv, p, score=score, thresholds=(0.5, 0.9))
    assert len(out) == 2 * (1 + len(TL.SCALES) * 3 + len(TL.PRIORS))
    # without scores there is nothing to weigh: peaks and √t clusters only
    assert not any("expected" in k for k in TL.count_options(20, "deriv", cw, cs, b.waveforms_mv, p))
    # a higher threshold keeps fewer peaks; clusters are never more than the peaks they are made of
    assert np.all(out["lstm_npeaks@0.9"] <= out["lstm_npeaks@0.5"])
    for k, v in out.items():
        if "sqrt_t" in k:
            thr = TL.parse_option(k)["threshold"]
            assert np.all(v <= out[TL.option_key("lstm_npeaks", thr)]), k


def test_the_expected_count_weighs_each_detection_by_its_probability_at_the_prior_it_meets():
    """Bayes' prior shift of a score trained on balanced classes: odds × prior / (1 − prior). A
    score of 0.9 among 10 % signal is even odds; 0.5 leaves the scores as they are; 0 and 1 stay."""
    s = np.array([0.0, 0.5, 0.9, 0.99, 1.0])
    assert np.array_equal(TL.expected_weights(s, 0.5), s)
    w = TL.expected_weights(s, 0.1)
    assert w[2] == pytest.approx(0.5) and w[3] == pytest.approx(11 / 12) and w[0] == 0 and w[4] == 1
    assert w[1] == pytest.approx(0.1)  # a score that says nothing gives the prior itself
    assert np.all(np.diff(TL.expected_weights(np.linspace(0, 1, 101), 0.05)) >= 0)
    assert np.all(np.isfinite(TL.expected_weights(np.array([-0.1, 1.2, np.nextafter(1, 0)]), 0.02)))


def test_the_expected_count_is_the_peak_count_weighed_by_the_scores_of_the_same_detections():
    """Each threshold's expected count weighs the very detections its peak count counts (after the
    same non-maximum suppression): never more than the peaks, equal to them when every score is 1,
    and Σ of the kept scores themselves at prior 0.5."""
    from sweep.physics import datasets as D

    p = S.SimulationParams()
    b = S.simulate_batch(p, 20, 3)
    cw, cs, _ = D.peak_candidates(b.waveforms_mv, p.finder_threshold_rms, p.candidate_finder)
    score = np.random.default_rng(0).random(cw.size)
    out = TL.count_options(20, "lstm", cw, cs, b.waveforms_mv, p, score=score, thresholds=(0.5, 0.9))
    for thr in (0.5, 0.9):
        peaks = out[TL.option_key("lstm_npeaks", thr)]
        sel = score >= thr
        keep = D.suppress_nearby(cw[sel], cs[sel], score[sel], p.tolerance_samples)
        soft = np.bincount(cw[sel][keep], weights=score[sel][keep], minlength=20)
        assert np.allclose(out[TL.option_key("lstm_expected", thr, prior=0.5)], soft)
        for prior in TL.PRIORS:
            e = out[TL.option_key("lstm_expected", thr, prior=prior)]
            assert np.all(e <= peaks + 1e-12) and np.all(e >= 0) and e.sum() > 0
    ones = TL.count_options(20, "lstm", cw, cs, b.waveforms_mv, p, score=np.ones(cw.size), thresholds=(0.5,))
    for prior in TL.PRIORS:
        assert np.array_equal(ones[TL.option_key("lstm_expected", 0.5, prior=prior)], ones["lstm_npeaks@0.5"])
