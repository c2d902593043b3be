"""The evaluation without truth (`sweep evaluate --input TB.npz`, sweep.physics.notruth): synthetic
beam-test runs at two track angles, written in IHEP's layout (negative pulses), imported, then
counted; the counts' means scale with 1/cos α, the Poisson fits hold for Poisson counts and fail for
others, pseudo-tracks resolve better with more hits, and the report opens in a real browser."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sweep.cli import main
from sweep.physics.notruth import angle_scaling, evaluate_without_truth, poisson_fit, pseudo_tracks
from sweep.physics.simulate import SimulationParams, simulate_batch
from tests.test_beamtest import ihep_file
from tests.test_evaluate import rise_scorer

#: runs DERIV counts in proportion to the path: a tenth of the gas's cluster density, one electron
#: per cluster, 0.5 / 2 ns pulses, every track through the wire (1.5 cm chords): its peaks hardly
#: merge. (At the gas's density with 1/7 ns pulses its count saturates: 1.38 ± 0.03 for 60° against 2.)
SPARSE = {"cluster_size_max": 1, "fixed_impact_parameter_cm": 0.0, "pulse_tau_rise_ns": 0.5,
          "pulse_tau_fall_ns": 2.0}


def runs(tmp_path, angles=(0, 60), events=1000):
    """IHEP-layout files of simulated tracks crossing a 1.5 cm tube at each angle (the cluster
    density × 1/cos α: the path is that much longer), with their true cluster counts."""
    truth = {}
    for i, angle in enumerate(angles):
        p = SimulationParams().replace(cluster_density_scale=0.1 / math.cos(math.radians(angle)), **SPARSE)
        batch = simulate_batch(p, events, np.random.default_rng(200 + i))
        ihep_file(tmp_path / f"run{angle}.root", -batch.waveforms_mv)  # negative, as IHEP's are
        truth[angle] = batch.n_clusters
    (tmp_path / "channels.yaml").write_text("channels:\n  0: {tube: 1.5}\n")
    return truth


def test_runs_at_two_angles_recover_the_path_length_scaling_and_the_report_opens(tmp_path, capsys):
    truth = runs(tmp_path)
    files = [str(tmp_path / "run0.root"), str(tmp_path / "run60.root")]
    out = tmp_path / "data" / "tb.npz"
    assert main(["--root", str(tmp_path), "data", "import", *files, "--out", str(out), "--sampling-rate", "1.2",
                 "--encoding", "mV"]) == 0
    assert "polarity negative (auto:" in capsys.readouterr().out
    ev = tmp_path / "ev"
    args = ["--root", str(tmp_path), "evaluate", "--input", str(out), "--out", str(ev)]
    assert main(args + ["--angles", "0"]) == 2  # one angle per file
    assert "one angle in [0, 90) degrees per file of the dataset (2: run0.root, run60.root)" in capsys.readouterr().err
    assert main(args + ["--angles", "0,60", "--tracks", "5"]) == 2
    assert "--tracks: not for a beam-test dataset" in capsys.readouterr().err
    assert main(args + ["--angles", "0,60", "--hits", "5,20"]) == 0
    printed = capsys.readouterr().out
    assert "channel 0 deriv_npeaks: mean ∝ (1/cos α)^" in printed
    record = json.loads((ev / "beamtest.json").read_text())
    assert record["schema_version"] == 1 and len(record["groups"]) == 2
    assert [g["angle_deg"] for g in record["groups"]] == [0.0, 60.0] and record["groups"][0]["tube_cm"] == 1.5
    s = record["angles"]["0"]["deriv_npeaks"]
    # the count follows the path: the ratio of the means is 1/cos 60° = 2 within 2 standard errors,
    # and so is the fitted exponent 1; and it is the true clusters' own ratio (1.93 here) within one
    true_ratio = truth[60].mean() / truth[0].mean()
    assert s["expected_ratio"] == pytest.approx(2.0)
    assert abs(s["ratio"] - 2.0) < 2 * s["ratio_err"] and abs(s["exponent"] - 1.0) < 2 * s["exponent_err"], s
    assert abs(s["ratio"] - true_ratio) < s["ratio_err"], (s, true_ratio)
    for g in record["groups"]:  # Poisson counts (one electron per cluster, one chord); 5- and 20-hit tracks
        fit = g["fits"]["deriv_npeaks"]
        assert g["events"] == 1000 and fit["ndf"] > 2 and fit["chi2"] / fit["ndf"] < 3, fit
        pt = g["pseudo_tracks"]
        assert pt["hits"] == [5, 20] and pt["tracks"] == [200, 50] and pt["unit"] == "per cm"
        assert pt["resolution"]["deriv_npeaks"][1] < pt["resolution"]["deriv_npeaks"][0]
        assert pt["resolution"]["dedx"][1] < pt["resolution"]["dedx"][0]
    assert sorted(record["plots"]) == ["angles.png", "counts-0.png", "counts-1.png", "pseudo-tracks.png"]
    from tests.test_report import _browser, _chromium

    binary = _chromium()
    assert binary, "chromium is not installed: this test needs it (scripts/setup.sh installs it)"
    dom = _browser(binary, tmp_path / "chromium-profile", "--virtual-time-budget=5000", "--dump-dom",
                   (ev / "report.html").as_uri())
    assert "<h1>Beam-test evaluation (no truth)</h1>" in dom.stdout, dom.stderr[-2000:]
    assert dom.stdout.count("<table") >= 4 and dom.stdout.count("data:image/png;base64,") == 4
    assert "Scaling with the track angle" in dom.stdout


def test_a_raw_beam_test_file_given_to_evaluate_is_sent_to_import_first(tmp_path, capsys):
    path = ihep_file(tmp_path / "run.root", np.zeros((3, 50)))
    assert main(["--root", str(tmp_path), "evaluate", "--input", str(path), "--out", str(tmp_path / "ev")]) == 2
    assert "a ihep beam-test file: import it first (sweep data import" in capsys.readouterr().err
    assert not (tmp_path / "ev").exists()


def one_channel_dataset(p: SimulationParams, events: int) -> dict:
    """A beam-test dataset's dict (as beamtest.read_dataset gives) of one run and channel: simulated
    events, pedestal removed."""
    batch = simulate_batch(p, events, np.random.default_rng(3))
    w = batch.waveforms_mv - np.median(batch.waveforms_mv, axis=1, keepdims=True)
    return {"waveforms": w, "dt_ns": p.dt_ns, "file_index": np.zeros(events, np.int32),
            "channel": np.zeros(events, np.int32), "event": np.arange(events), "tube_cm": np.full(events, np.nan),
            "meta": {"files": [{"path": "sim.root"}]}}


def test_the_lstm_and_cnn_counts_come_from_the_models_at_the_working_point(tmp_path):
    p = SimulationParams().replace(cluster_density_scale=0.5)
    data = one_channel_dataset(p, 60)

    def cnn(X):  # a stand-in clusterizer: the number of peaks in its input histogram
        return (X[:, :, 0] > 0).sum(axis=1).astype(float)

    loose = evaluate_without_truth(data, rise_scorer, cnn, threshold=0.1, params=p, hits=(5,))
    tight = evaluate_without_truth(data, rise_scorer, cnn, threshold=0.9, params=p, hits=(5,))
    fl, ft = loose["groups"][0]["fits"], tight["groups"][0]["fits"]
    assert set(fl) == {"lstm_npeaks", "lstm_sqrt_t", "lstm_cnn", "deriv_npeaks", "deriv_sqrt_t"}  # no prior given
    assert ft["lstm_npeaks"]["mean"] < fl["lstm_npeaks"]["mean"]  # a higher working point keeps fewer peaks
    assert fl["deriv_npeaks"]["mean"] == ft["deriv_npeaks"]["mean"]  # DERIV has no working point
    assert loose["groups"][0]["pseudo_tracks"]["unit"] == "per hit" and loose["angles"] is None


def test_the_expected_count_weighs_the_same_peaks_by_their_probability_at_the_given_prior(tmp_path, capsys):
    """With --prior the LSTM's peaks are also counted as the expected number of true peaks: each of
    the very peaks lstm_npeaks counts, weighed by its score's probability at that signal fraction
    (never more than the peaks; all of them for scores of 1). Without a peak model, outside (0, 1),
    or for a simulated evaluation (which chooses its prior on calibration tracks) it is refused."""
    from sweep.core.errors import InputError
    from sweep.physics import datasets as D
    from sweep.physics import tracklevel as TL
    from sweep.physics.evaluate import score_candidates

    p = SimulationParams().replace(cluster_density_scale=0.5)
    data = one_channel_dataset(p, 40)
    w = data["waveforms"]
    r = evaluate_without_truth(data, rise_scorer, None, threshold=0.5, params=p, hits=(5,), prior=0.05)
    fits = r["groups"][0]["fits"]
    assert r["prior"] == 0.05 and 0 < fits["lstm_expected"]["mean"] < fits["lstm_npeaks"]["mean"]
    # by hand: the scores of the peaks lstm_npeaks keeps, weighed
    q = p.replace(sampling_rate_gsps=1.0 / p.dt_ns, window_ns=w.shape[1] * p.dt_ns)
    cw, cs, sc = score_candidates(rise_scorer, w.astype(np.float32), q)
    sel = sc >= 0.5
    keep = D.suppress_nearby(cw[sel], cs[sel], sc[sel], q.tolerance_samples)
    by_hand = np.bincount(cw[sel][keep], weights=TL.expected_weights(sc[sel][keep], 0.05), minlength=40)
    assert fits["lstm_expected"]["mean"] == pytest.approx(by_hand.mean())
    ones = evaluate_without_truth(data, lambda X: np.ones(len(X)), None, threshold=0.5, params=p, hits=(5,),
                                  prior=0.05)["groups"][0]["fits"]
    assert ones["lstm_expected"]["mean"] == pytest.approx(ones["lstm_npeaks"]["mean"])
    plain = evaluate_without_truth(data, rise_scorer, None, params=p, hits=(5,))
    assert "lstm_expected" not in plain["groups"][0]["fits"] and plain["prior"] is None
    for bad, model in ((0.05, None), (1.0, rise_scorer), (0.0, rise_scorer)):
        with pytest.raises(InputError, match="--prior"):
            evaluate_without_truth(data, model, None, params=p, hits=(5,), prior=bad)
    assert main(["--root", str(tmp_path), "evaluate", "--prior", "0.05", "--tracks", "0"]) == 2
    assert "--prior applies to a beam-test dataset" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:  # argparse's own refusal of the value
        main(["--root", str(tmp_path), "evaluate", "--prior", "1", "--tracks", "0"])
    assert refused.value.code == 2 and "a number in (0, 1)" in capsys.readouterr().err


def test_a_poisson_fit_holds_for_poisson_counts_and_fails_for_others():
    rng = np.random.default_rng(5)
    good = poisson_fit(rng.poisson(12.0, 5000))
    assert good["mean"] == pytest.approx(12.0, abs=3 * good["mean_err"])
    assert good["ndf"] > 10 and good["chi2"] / good["ndf"] < 2 and good["var_over_mean"] == pytest.approx(1, abs=0.1)
    wide = poisson_fit(rng.poisson(rng.uniform(4, 20, 5000)))  # a mixture: overdispersed
    assert wide["chi2"] / wide["ndf"] > 10 and wide["var_over_mean"] > 2
    assert poisson_fit(np.zeros(0))["events"] == 0


def test_angle_scaling_and_pseudo_track_resolutions_by_hand():
    s = angle_scaling([10.0, 20.0], [0.1, 0.2], [0, 60])
    assert s["ratio"] == pytest.approx(2.0) and s["exponent"] == pytest.approx(1.0)
    assert s["ratio_err"] == pytest.approx(2 * math.hypot(0.01, 0.01))
    counts = {"deriv_npeaks": np.tile([1.0, 3.0], 50), "charge": np.ones(100)}
    pt = pseudo_tracks(counts, 2.0, (2, 4, 200), 0.7)
    assert pt["hits"] == [2, 4] and pt["tracks"] == [50, 25]  # 200 hits make fewer than 2 tracks
    assert pt["resolution"]["deriv_npeaks"] == [0.0, 0.0] and pt["resolution"]["dedx"] == [0.0, 0.0]
