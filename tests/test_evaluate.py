"""Two-step evaluation: peak, cluster and track level on small fresh simulations."""

from __future__ import annotations

import importlib

import json
import math
import os

import numpy as np
import pytest

from sweep.physics import evaluate as E
from sweep.physics import datasets as D
from sweep.core.errors import InputError
from sweep.physics.simulate import SimulationParams, simulate_batch
from sweep.physics import deriv
from sweep.physics import tracklevel as TL

SMALL_GRID = [deriv.DerivParams(n1=a, n2=0.0, n3=0.5, n4=0.5) for a in (4.0, 8.0, 12.0)]


def rise_scorer(X):
    """A crude stand-in for the LSTM: a sigmoid of the rise around the candidate."""
    x = X[:, :, 0]
    return 1.0 / (1.0 + np.exp(-(10.0 * (x[:, 7] - x[:, 4]) - 4.0)))


def test_perfect_detections_give_efficiency_one():
    b = simulate_batch(None, 20, 3)
    tw, ts, _ = E.truth_peaks(b)
    r = E.peak_level(tw, ts, tw, ts, 1, b.waveforms_mv.shape[1])
    assert r["efficiency"] == 1.0 and r["purity"] == 1.0 and r["f1"] == 1.0
    r = E.peak_level(tw[::2], ts[::2], tw, ts, 0, b.waveforms_mv.shape[1])
    assert r["purity"] == 1.0 and 0.4 < r["efficiency"] < 0.6


def test_oracle_scorer_is_perfect_on_windows():
    """A scorer that returns the window labels: window-level precision = recall = 1."""
    b = simulate_batch(None, 30, 4)
    p = b.params
    tw, ts, tt = E.truth_peaks(b)
    cw, cs, _ = D.peak_candidates(b.waveforms_mv, p.finder_threshold_rms, p.candidate_finder)
    labels, _ = D.match_candidates(cw, cs, tw, ts, tt, p.tolerance_samples, b.waveforms_mv.shape[1])
    calls = iter([labels.astype(float)])
    peaks, det = E.evaluate_peaks(b, lambda X: next(calls), deriv_grid=SMALL_GRID)
    win = peaks["lstm"]["window_natural"]
    assert win["precision"] == 1.0 and win["recall"] == 1.0 and win["auc"] == 1.0
    assert peaks["lstm"]["window_balanced"]["f1"] == 1.0
    # every positive detection is a good one; efficiency is limited only by the candidates
    assert peaks["lstm"]["peak"]["purity"] == 1.0
    assert 0.5 < peaks["lstm"]["peak"]["efficiency"] <= 1.0
    assert peaks["deriv"]["peak"]["eff_purity"] > 0.2


def test_truncated_mean():
    v = np.array([[1.0, 2.0, 3.0, 4.0, 100.0]])
    assert E.truncated_mean(v, 0.8, axis=1)[0] == pytest.approx(2.5)
    assert E.truncated_mean(v, 0.01, axis=1)[0] == pytest.approx(1.0)


def test_cluster_counts_true_peaks_and_perfect_cnn():
    b = simulate_batch(None, 40, 6)
    tw, ts, _ = E.truth_peaks(b)
    det = {"lstm": (tw, ts)}
    truth = b.n_clusters.astype(float)
    calls = iter([truth])
    metrics, counts = E.evaluate_clusters(b, det, lambda X: next(calls))
    assert metrics["lstm_cnn"]["mae"] == 0.0 and metrics["lstm_cnn"]["bias"] == 0.0
    # √t clusterization of the true peaks can only merge clusters, never split them further than
    # the peaks allow: at most as many clusters as distinct peaks, at least one per non-empty waveform
    npk = np.bincount(tw, minlength=40)
    assert np.all(counts["lstm_sqrt_t"] <= npk) and np.all(counts["lstm_sqrt_t"][npk > 0] >= 1)
    assert np.array_equal(counts["lstm_sqrt_t"], counts["truth_peaks_sqrt_t"])


def test_track_level_true_counts_poisson():
    p = SimulationParams()
    r = E.evaluate_tracks(p, None, None, deriv.DerivParams(n1=8, n2=0, n3=0.5, n4=0.5), n_tracks=40, cells=20,
                          momentum_gev=10.0, truncation=0.7, seed=1, chunk_waveforms=300)
    # round tubes crossed at b uniform in [0, R]: the mean chord is (π/2) R = 1.18 cm
    assert r["track_length_cm"] == pytest.approx(20 * math.pi / 2 * 0.75, rel=0.05)
    N = r["mean_true_clusters"]
    assert r["track_length_cm"] * 14 < N < r["track_length_cm"] * 17  # ~15.5 clusters/cm for a 10 GeV pion
    assert r["poisson_limit"] == pytest.approx(1 / math.sqrt(N))
    t = r["dndx"]["truth"]
    assert t["response"]["slope"] == pytest.approx(1.0) and t["response"]["offset"] == pytest.approx(0.0, abs=1e-9)
    assert 0.5 < t["ratio_to_poisson"] < 1.6  # 40 tracks: ±11 % statistical on the spread
    assert r["dedx"]["resolution"] > 0 and r["dedx"]["truncation"] == 0.7 and r["dedx"]["source"] == "waveform"
    assert "deriv_sqrt_t" in r["dndx"] and r["calibration"]["particles"] == ["pion", "kaon"]
    # every option of a method was tried on the calibration tracks; the chosen one separates best there
    scan = r["calibration"]["scan"]["deriv_sqrt_t"]
    assert len(scan) == 15 and r["dndx"]["deriv_sqrt_t"]["option"] == max(scan, key=scan.get)


def test_evaluate_end_to_end_with_callables(tmp_path):
    out = tmp_path / "ev"
    r = E.evaluate(rise_scorer, lambda X: X.sum(axis=(1, 2)) * 0.8, out_dir=out, n_waveforms=60, seed=3,
                   deriv_grid=SMALL_GRID, scan_waveforms=30, n_tracks=8, cells=10, separation_momenta=(5.0, 20.0),
                   separation_tracks=6)
    s = r["summary"]
    assert {"pi_k_sigma_dedx_5gev", "pi_k_sigma_dndx_truth_20gev", "pi_k_sigma_dndx_lstm_cnn_5gev"} <= set(s)
    for k in ("lstm_f1_balanced", "lstm_auc_balanced", "lstm_eff_purity_peaks", "deriv_eff_purity_peaks",
              "lstm_minus_deriv", "dedx_resolution", "poisson_limit", "dndx_lstm_cnn_resolution"):
        assert k in s, k
    assert 0.0 <= s["lstm_eff_purity_peaks"] <= 1.0
    data = json.loads((out / "evaluation.json").read_text())
    assert data["summary"]["deriv_eff_purity_peaks"] == pytest.approx(s["deriv_eff_purity_peaks"])
    assert "values" not in data["tracks"]["dedx"]
    assert data["separation"]["momenta_gev"] == [5.0, 20.0] and len(data["separation"]["dedx"]) == 2
    for png in ("peaks.png", "roc.png", "clusters.png", "tracks.png", "separation.png"):
        assert (out / png).stat().st_size > 1000, png


def test_evaluate_without_models_and_cli(tmp_path):
    from sweep.cli import main

    rc = main(["evaluate", "--out", str(tmp_path / "cli"), "--waveforms", "40", "--scan-waveforms", "20",
               "--tracks", "0", "--separation-momenta", "4,40", "--separation-tracks", "3", "--cells", "5",
               "--no-plots"])
    assert rc == 0
    data = json.loads((tmp_path / "cli" / "evaluation.json").read_text())
    assert "lstm" not in data["peaks"] and data["tracks"] is None
    assert data["separation"]["momenta_gev"] == [4.0, 40.0] and data["separation"]["n_tracks"] == 3
    for bad in (["--separation-momenta", "3,ten"], ["--separation-momenta", "3,3"], ["--separation-tracks", "1"],
                ["--tracks", "-1"], ["--cells", "0"], ["--truncation", "0"], ["--momentum", "-5"]):
        with pytest.raises(SystemExit) as e:
            main(["evaluate", *bad])
        assert e.value.code == 2, bad
    assert data["clusters"]["deriv_sqrt_t"]["mean_true"] > 0
    assert main(["evaluate", "--peak-model", str(tmp_path / "nope.keras"), "--out", str(tmp_path / "x")]) == 1


@pytest.mark.training
def test_keras_model_file(tmp_path):
    """A real (untrained, tiny) Keras LSTM saved as .keras is loaded and scored."""
    importlib.import_module("keras")
    import keras

    from sweep.job.models import build_lstm

    keras.utils.set_random_seed(0)
    m = build_lstm({"topology": [4, 4, 1], "activations": ["relu", "sigmoid"], "dropout": [0.0, 0.0]})
    path = tmp_path / "lstm.keras"
    m.save(path)
    r = E.evaluate(path, None, n_waveforms=10, deriv_grid=SMALL_GRID, n_tracks=0, separation_tracks=0)
    assert r["separation"] is None
    assert r["models"]["peak"] == str(path)
    assert 0.0 <= r["peaks"]["lstm"]["window_natural"]["auc"] <= 1.0


@pytest.mark.training
def test_a_model_meets_waveforms_sampled_otherwise_than_its_training_s(tmp_path, capsys):
    """The training record beside a model (model.json) is checked where the model is applied: a
    file at another sampling rate is refused, with both rates (an LSTM found no peak at all,
    silently, on a 1.5 GS/s toy); without a record it says it could not check."""
    importlib.import_module("keras")
    import json

    import keras

    from sweep.cli import main
    from sweep.job.models import build_lstm
    from sweep.physics import readers as R
    from sweep.physics.simulate import simulate_batch

    keras.utils.set_random_seed(0)
    path = tmp_path / "lstm.keras"
    build_lstm({"topology": [4, 4, 1], "activations": ["relu", "sigmoid"], "dropout": [0.0, 0.0]}).save(path)
    ws = R.WaveformSet.from_batch(simulate_batch(None, 4, 3))
    toy = R.write_root(tmp_path / "toy.root", R.WaveformSet(ws.waveforms_mv, 1 / 1.5, ws.peak_offsets,
                                                             ws.peak_sample / 1.5, ws.peak_sample, ws.peak_tag,
                                                             ws.n_clusters, ws.momentum_gev), sampling_rate=1.5)
    args = ["evaluate", "--peak-model", str(path), "--input", str(toy), "--out", str(tmp_path / "ev"), "--no-plots"]
    assert main(args) == 0  # no record: evaluated, and it says what it could not check
    assert "no training record beside it (model.json)" in capsys.readouterr().err
    path.with_suffix(".json").write_text(json.dumps({"model": "lstm", "dt_ns": ws.dt_ns}))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "sampled every 0.833333 ns (1.2 GS/s)" in err and "(1.5 GS/s)" in err and "does not resample" in err
    from sweep.physics.datasets import simulate_to_file

    with pytest.raises(Exception, match="does not resample"):  # the simulation at another rate: refused too
        simulate_to_file(tmp_path / "d.npz", 4, 1, {"sampling_rate_gsps": 1.5}, peak_model=path)


def test_separation_power_on_constructed_cases():
    rng = np.random.default_rng(0)
    a, b = rng.normal(10.0, 1.0, 200_000), rng.normal(14.0, 3.0, 200_000)
    assert E.separation_power(a, b) == pytest.approx(4.0 / 2.0, rel=0.01)  # |Δ| / mean σ
    assert E.separation_power(b, a) == E.separation_power(a, b)
    # an affine response (efficiency 0.6, offset) separates exactly as well
    assert E.separation_power(0.6 * a + 3, 0.6 * b + 3) == pytest.approx(E.separation_power(a, b))
    assert math.isnan(E.separation_power(np.zeros(5), np.zeros(5)))  # a count that found nothing: no figure
    assert E.separation_power(np.zeros(5), np.ones(5)) == math.inf
    # the quoted error matches the spread of the separation over repeated small samples
    rng = np.random.default_rng(1)
    samples = [(rng.normal(10, 1, 50), rng.normal(14, 1, 50)) for _ in range(2000)]
    spread = np.std([E.separation_power(x, y) for x, y in samples])
    assert np.mean([E.separation_error(x, y) for x, y in samples]) == pytest.approx(spread, rel=0.1)


@pytest.mark.slow
def test_pi_k_separation_of_true_counts():
    """Kaons of 3 GeV/c (βγ 6.1) ionise less than pions (βγ 21.5): 12.4 vs 14.1 clusters/cm. With
    true counts over 50 tubes of 1.18 cm mean chord the separation is |Δ| / σ ≈ 1.7 / (14 / √830) = 3.5."""
    p = SimulationParams()
    choices = E.default_choices(0.5, 0.7)
    r = E.evaluate_separation(p, None, None, deriv.DerivParams(n1=8, n2=0, n3=0.5, n4=0.5), momenta_gev=[3.0],
                              n_tracks=40, cells=50, seed=4, choices=choices)
    assert r["momenta_gev"] == [3.0] and r["particles"] == ["pion", "kaon"]
    truth = r["dndx"]["truth"][0]
    assert 2.8 < truth < 5.5 and 0.2 < r["dndx_err"]["truth"][0] < 1.0
    assert 0 < r["dedx"][0] < truth  # dE/dx separates less than the true cluster count
    assert set(r["dndx"]) >= {"truth", "deriv_sqrt_t", "truth_peaks_sqrt_t"}
    # seeded by the momentum's value: the same tracks whatever else is in the list
    r2 = E.evaluate_separation(p, None, None, deriv.DerivParams(n1=8, n2=0, n3=0.5, n4=0.5), momenta_gev=[50.0, 3.0],
                               n_tracks=40, cells=50, seed=4, choices=choices)
    assert r2["dndx"]["truth"][1] == truth and r2["dedx"][1] == r["dedx"][0]
    with pytest.raises(ValueError, match="distinct"):
        E.evaluate_separation(p, None, None, deriv.DerivParams(), momenta_gev=[3.0, 3.0], n_tracks=5, cells=2,
                              seed=4, choices=choices)


def test_a_counter_that_ignores_its_input_has_no_density_response():
    """A counter that ignores its input has a tiny raw spread but no response to the density: its
    resolution is infinite (or huge), never Poisson-like; the truth's response is exactly 1."""
    t = np.random.default_rng(0).poisson(25, 10_000).astype(float)
    assert E.response_slope(2 * t + 1, t) == pytest.approx(2.0)
    assert E.response_slope(np.full_like(t, 25.0), t) == pytest.approx(0.0, abs=1e-12)

    class Const:
        def __call__(self, X):
            return np.full(len(X), 25.0)

    p = SimulationParams()
    r = E.evaluate_tracks(p, lambda X: np.ones(len(X)), Const(), deriv.DerivParams(n1=8, n2=0, n3=0.5, n4=0.5),
                          n_tracks=10, cells=10, momentum_gev=10.0, truncation=0.7, seed=2)
    cnn, truth = r["dndx"]["lstm_cnn"], r["dndx"]["truth"]
    # 25 per cell: its dN/dx moves only with the tracks' lengths, not with the species
    assert abs(cnn["response"]["slope"]) < 3 * cnn["response"]["slope_err"], cnn["response"]
    assert not cnn["resolution"] < 5 * truth["resolution"]
    assert truth["response"]["slope"] == pytest.approx(1.0)


def _span_of_the_peaks(X):
    """A 'clusterizer' that measures the chord, not the density: the time span of its input peaks."""
    h = X[:, :, 0] > 0
    first = np.argmax(h, axis=1)
    last = h.shape[1] - 1 - np.argmax(h[:, ::-1], axis=1)
    return np.where(h.any(axis=1), last - first, 0).astype(float)


@pytest.mark.slow
def test_an_estimator_of_the_chord_is_not_taken_for_a_count_when_chords_vary():
    """With round tubes the true count per cell follows the chord, so a per-cell calibration gives a
    'count' that only measures the chord a large slope and a Poisson-like resolution (the trap of
    the per-cell calibration this replaced: it reported 1.0x Poisson for it). Calibrated to the
    density (pions against kaons), its response is small and its resolution is several times the
    truth's."""
    p = SimulationParams()
    d = deriv.DerivParams(n1=8, n2=0, n3=0.5, n4=0.5)
    r = E.evaluate_tracks(p, rise_scorer, _span_of_the_peaks, d, n_tracks=40, cells=40, momentum_gev=10.0,
                          truncation=0.7, seed=7, chunk_waveforms=800, lstm_threshold=0.97)
    span = r["dndx"]["lstm_cnn"]
    truth = r["dndx"]["truth"]
    # cell by cell it does follow the true count (through the chord) ...
    per, chord, _ = E.simulate_tracks(p, rise_scorer, _span_of_the_peaks, d, particle="pion", momentum_gev=10.0,
                                      n_tracks=10, cells=40, seed=(7, 1), keys={"lstm_cnn", "truth"},
                                      cnn_threshold=0.97)
    assert np.corrcoef(per["lstm_cnn"].ravel(), per["truth"].ravel())[0, 1] > 0.5
    assert E.response_slope(per["lstm_cnn"].ravel(), per["truth"].ravel()) > 1  # a per-cell slope of ~4
    # ... but not the density
    assert span["resolution"] > 3 * truth["resolution"], (span["resolution"], truth["resolution"])


@pytest.mark.slow
def test_a_shrinking_estimator_calibrated_to_the_density_responds_with_slope_one():
    """A per-cell count that regresses towards the mean (0.3 × the rise finder's peaks + 12: the way an
    MSE-trained CNN shrinks) responds to the density with a slope far below 1; calibrated on pions
    and kaons of their own, its mean is the truth's on the measured tracks, and between pions and
    kaons at another momentum its calibrated density response is 1 within errors."""
    p = SimulationParams()
    d = deriv.DerivParams(n1=8, n2=0, n3=0.5, n4=0.5)

    def shrink(X):
        return 0.3 * X.sum(axis=(1, 2)) + 12.0

    r = E.evaluate_tracks(p, rise_scorer, shrink, d, n_tracks=30, cells=40, momentum_gev=10.0,
                          truncation=0.7, seed=5, chunk_waveforms=600)
    cnn = r["dndx"]["lstm_cnn"]
    assert 0.02 < cnn["response"]["slope"] < 0.6, cnn["response"]
    assert abs(cnn["counted_over_true"] - 1) < 3 * cnn["counted_over_true_err"], cnn
    assert math.isfinite(cnn["resolution_err"]) and cnn["resolution"] > r["dndx"]["truth"]["resolution"] * 0.8
    sep = E.evaluate_separation(p, rise_scorer, shrink, d, momenta_gev=[3.0], n_tracks=30, cells=40,
                                seed=5, choices=r["calibration"])
    c = sep["calibrated"]["lstm_cnn"]
    assert "truth" not in sep["calibrated"]
    assert abs(c["density_slope"][0] - 1) < 3 * c["density_slope_err"][0] + 0.05, c
    # the separation itself does not depend on the calibration (an affine map)
    assert sep["dndx"]["lstm_cnn"][0] > 0 and sep["options"]["lstm_cnn"] == "lstm_cnn"
    # calibrated at 3 GeV/c on pions and kaons of its own: the response used there is that fit's
    at3 = E._responses_at(p, rise_scorer, shrink, d, momentum_gev=3.0, n_tracks=30, cells=40, seed=5,
                          lstm_threshold=0.5, thresholds=sorted({0.5}),
                          options={"lstm_cnn": "lstm_cnn"})["lstm_cnn"]
    assert at3["slope"] != pytest.approx(r["dndx"]["lstm_cnn"]["response"]["slope"])
    old = E.evaluate_separation(p, rise_scorer, shrink, d, momenta_gev=[3.0], n_tracks=30, cells=40,
                                seed=5, choices=r["calibration"], calibration_tracks=0)  # the 10 GeV/c fit
    assert old["calibration_momenta"]["3"]["source"] == "the track level's calibration tracks"
    assert old["dndx"] == sep["dndx"] and old["calibrated"] != sep["calibrated"]


def test_the_separation_uses_the_track_level_s_tracks_of_its_species_and_momentum_again(monkeypatch):
    """The track level's measured pions at 10 GeV/c serve the π/K separation at 10 GeV/c too (the
    first n of them): the LSTM scores no second set of the same kind; the kaons, and the pions at
    another momentum, are simulated (seen by wrapping simulate_tracks, which still runs)."""
    p = SimulationParams()
    kept: dict = {}
    r = E.evaluate_tracks(p, rise_scorer, None, None, n_tracks=8, cells=10, momentum_gev=10.0, truncation=0.7,
                          seed=5, keep=kept)
    (counts, chord, charge), = kept.values()
    assert list(kept) == [("pion", 10.0)] and chord.shape == (8, 10) and set(r["calibration"]["options"].values()) \
        <= set(counts)
    made = []
    real = E.simulate_tracks

    def spy(*args, **kw):
        made.append((kw["particle"], kw["momentum_gev"]))
        return real(*args, **kw)

    monkeypatch.setattr(E, "simulate_tracks", spy)
    sep = E.evaluate_separation(p, rise_scorer, None, None, momenta_gev=[3.0, 10.0], n_tracks=6, cells=10, seed=5,
                                choices=r["calibration"], reuse=kept)
    # 3 GeV/c: its own calibration pions and kaons, then the measured ones; 10 GeV/c: the track level's fit
    assert sep["reused"] == ["pion at 10 GeV/c"] and sorted(made) == [("kaon", 3.0), ("kaon", 3.0), ("kaon", 10.0),
                                                                      ("pion", 3.0), ("pion", 3.0)]
    assert sep["calibration_momenta"] == {
        "3": {"source": "calibration tracks at this momentum", "tracks": 6, "particles": ["pion", "kaon"]},
        "10": {"source": "the track level's calibration tracks", "tracks": 8, "particles": ["pion", "kaon"]}}
    # the dE/dx of the first 6 kept pions against the kaons: what the separation at 10 GeV/c reports
    kaons = real(p, rise_scorer, None, None, particle="kaon", momentum_gev=10.0, n_tracks=6, cells=10,
                 seed=(5, 0x5E9A, 10000, 1), keys=set(r["calibration"]["options"].values()))
    dedx = [TL.dedx_length_truncated(ch[:6], q["waveform"][:6], 0.7) for _, ch, q in ((counts, chord, charge), kaons)]
    assert sep["dedx"][1] == pytest.approx(E.separation_power(*dedx))
    # tracks of another cell count are not the same kind: simulated
    made.clear()
    again = E.evaluate_separation(p, rise_scorer, None, None, momenta_gev=[10.0], n_tracks=6, cells=12, seed=5,
                                  choices=r["calibration"], reuse=kept)
    assert again["reused"] == [] and ("pion", 10.0) in made


@pytest.mark.parametrize("suffix", [".npz", ".h5", ".root"])
def test_evaluate_on_a_file(tmp_path, suffix):
    """The peak and cluster levels run on waveforms read from a file (npz, HDF5, CEPC ROOT)."""
    from sweep.physics import readers as R

    if suffix == ".h5":
        importlib.import_module("h5py")
    if suffix == ".root":
        importlib.import_module("uproot")
    b = simulate_batch(None, 12, 21)
    ws = R.WaveformSet.from_batch(b)
    if suffix == ".root":  # times on the sample grid: the samples come back exactly
        ws = R.WaveformSet(ws.waveforms_mv, ws.dt_ns, ws.peak_offsets, ws.peak_sample * ws.dt_ns, ws.peak_sample,
                           ws.peak_tag, ws.n_clusters, ws.momentum_gev)
    path = {".npz": R.write_npz, ".h5": R.write_hdf5, ".root": R.write_root}[suffix](tmp_path / f"w{suffix}", ws)
    opts = {"dt_ns": ws.dt_ns} if suffix == ".root" else None
    r_file = E.evaluate(rise_scorer, None, input_path=path, read_options=opts, deriv_grid=SMALL_GRID,
                        scan_waveforms=None)
    r_sim = E.evaluate_peaks(b, rise_scorer, deriv_grid=SMALL_GRID)[0]
    assert r_file["tracks"] is None and r_file["n_waveforms"] == 12
    assert r_file["peaks"]["lstm"]["peak"] == r_sim["lstm"]["peak"]
    assert r_file["peaks"]["deriv"]["peak"] == r_sim["deriv"]["peak"]


@pytest.mark.training
def test_sweep_evaluate_keeps_tensorflow_s_start_up_lines_off_the_terminal(tmp_path):
    """TensorFlow's C++ start-up lines (absl's pre-init warning, oneDNN, cpu_feature_guard) are
    not sweep's to show: `sweep evaluate` with a model file prints none of them."""
    import subprocess
    import sys

    from sweep.job.models import build_lstm

    path = tmp_path / "lstm.keras"
    build_lstm({"topology": [4, 4, 1], "activations": ["relu", "sigmoid"], "dropout": [0.0, 0.0]}).save(path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    proc = subprocess.run([sys.executable, "-m", "sweep.cli", "evaluate", "--peak-model", str(path), "--out",
                           str(tmp_path / "ev"), "--waveforms", "10", "--scan-waveforms", "10", "--tracks", "0",
                           "--separation-tracks", "0", "--no-plots"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for noise in ("absl::InitializeLog", "oneDNN", "cpu_feature_guard", "rebuild TensorFlow"):
        assert noise not in proc.stderr + proc.stdout, proc.stderr


def test_the_working_point_is_the_threshold_that_separates_best_on_calibration_tracks():
    """The chosen working point is one of the scanned thresholds, the one whose counts separate the
    calibration pions from the kaons best, and the same calibration tracks give the same choice."""
    p = SimulationParams()
    wp = E.choose_working_point(p, rise_scorer, momentum_gev=10.0, cells=20, n_tracks=12, seed=3,
                                thresholds=(0.5, 0.9, 0.99))
    seps = wp["separation_by_threshold"]
    assert set(seps) == {"0.5", "0.9", "0.99"} and wp["threshold"] in (0.5, 0.9, 0.99)
    assert seps[f"{wp['threshold']:g}"] == max(seps.values())
    assert wp["option"].startswith("lstm_") and f"@{wp['threshold']:g}" in wp["option"]
    # chosen by what the CNN is given, the hard detections: never by the expected count's weights
    assert TL.parse_option(wp["option"])["method"] in E.WORKING_POINT_METHODS
    # seeded: the same calibration tracks give the same choice
    assert E.choose_working_point(p, rise_scorer, momentum_gev=10.0, cells=20, n_tracks=12, seed=3,
                                  thresholds=(0.5, 0.9, 0.99)) == wp


def test_the_peak_leader_by_separation_is_the_shortlisted_model_that_separates_best():
    """peaks.leader: separation. Each shortlisted model's working point is chosen on the same
    calibration tracks; the leader is the one whose best count separates pions from kaons most: a
    classifier of the rise beats one that scores at random, and one that finds nothing cannot lead."""
    p = SimulationParams()

    def random_scores(X):
        return np.random.default_rng(len(X)).random(len(X))

    def nothing(X):
        return np.zeros(len(X))

    kw = dict(momentum_gev=10.0, cells=40, n_tracks=30, seed=3)
    choice = E.choose_peak_leader(p, [random_scores, nothing, rise_scorer], **kw)
    seps = choice["separations"]
    assert choice["chosen"] == 2 and math.isnan(seps[1]) and choice["working_points"][1] is None
    assert seps[2] > seps[0] + 1.0, seps
    # the leader's working point is the one choose_working_point gives it alone, on the same tracks
    alone = E.choose_working_point(p, rise_scorer, **kw)
    assert choice["working_points"][2] == alone and choice["threshold"] == alone["threshold"]
    assert choice["option"] == alone["option"]
    with pytest.raises(InputError, match="none of the 2 shortlisted peak models separates"):
        E.choose_peak_leader(p, [nothing, nothing], **kw)


def test_a_model_whose_scores_never_reach_the_usual_thresholds_is_scanned_over_its_own_range():
    """The seed's topology [.., .., 1] with a sigmoid before the output sigmoid caps the scores (a
    chain's leader topped at 0.74): thresholds above its highest score find nothing (no separation,
    never 'infinitely good'), and the scan takes the quantiles of its own scores instead."""
    p = SimulationParams()

    def capped(X):
        return 0.2 + 0.54 * rise_scorer(X)  # scores in (0.2, 0.74)

    thresholds = E.scan_thresholds(p, capped, seed=3)  # the pilot choose_working_point(seed=3) makes
    assert max(thresholds) <= 0.74 and 0.5 in thresholds and 0.7 in thresholds and 0.8 not in thresholds
    assert len([t for t in thresholds if t not in (0.5, 0.7)]) >= 4  # its score quantiles
    wp = E.choose_working_point(p, capped, momentum_gev=10.0, cells=20, n_tracks=10, seed=3)
    assert wp["threshold"] in thresholds and all(math.isfinite(v) for v in wp["separation_by_threshold"].values())
    # forced onto thresholds it never reaches, it says so instead of choosing one
    with pytest.raises(InputError, match="separate nothing"):
        E.choose_working_point(p, capped, momentum_gev=10.0, cells=10, n_tracks=4, seed=3, thresholds=(0.8, 0.9))
