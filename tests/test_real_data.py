"""Models that survive real data: the peak finder's inputs do not depend on the amplitude unit,
a file's units, names and sampling come from the command line or the file, and a model applied
to inputs unlike its training's is refused (another sampling, another normalization) or warned
about (noise or signal-to-noise far from training's), with both figures.

The case that started it: a ROOT file in the CEPC layout from an independent toy (1.5 GS/s,
amplitudes in volts, a sampling_rate branch). The LSTM, whose windows were divided by a fixed
10 mV, found no peak at all on it (F1 0), silently."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

from sweep.physics import datasets as D
from sweep.physics import readers as R
from sweep.physics.simulate import SimulationParams, simulate_batch

RATE = {"sampling_rate_gsps": 1.5}  # the toy's rate (not the simulator's default 1.2 GS/s)


def test_noise_rms_follows_the_noise_and_the_unit():
    """The estimate tracks the simulated noise (within the pulses' +10 %), is proportional to the
    unit, and is continuous (1.4826 × MAD of 12-bit samples is one value for every waveform)."""
    for noise in (0.5, 1.0, 2.0):
        b = simulate_batch(SimulationParams.from_dict({"noise_rms_mv": noise}), 60, np.random.default_rng(1))
        sigma = D.noise_rms(b.waveforms_mv)
        assert 0.95 * noise < np.median(sigma) < 1.25 * noise, noise
        assert np.unique(sigma).size > 50  # not stepped by the ADC
        np.testing.assert_allclose(D.noise_rms(b.waveforms_mv * 1e-3), sigma * 1e-3, rtol=1e-5)
    flat = np.full((2, 100), 50.0)
    assert D.noise_rms(flat).tolist() == [1.0, 1.0]  # constant: windows are all zero anyway
    quiet = simulate_batch(SimulationParams.from_dict({"noise_rms_mv": 0.0, "baseline_jitter_mv": 0.0}), 5, 2)
    floor = D.NOISE_FLOOR_FRACTION * np.ptp(quiet.waveforms_mv.astype(np.float64), axis=1)
    assert np.all(D.noise_rms(quiet.waveforms_mv) >= floor * (1 - 1e-12))
    assert np.any(D.noise_rms(quiet.waveforms_mv) == floor)


@pytest.mark.parametrize("factor", [1 / 1024, 1e-3, 37.0])
def test_candidates_and_windows_do_not_depend_on_the_amplitude_unit(factor):
    """The same waveforms in volts (1e-3), in another power of two, or in ADC-like units give the
    same candidates and the same windows (1/1024 exactly; others up to float32 rounding)."""
    b = simulate_batch(None, 40, np.random.default_rng(5))
    w = b.waveforms_mv
    cw, cs, scale = D.peak_candidates(w, 1.0)
    vw, vs, vscale = D.peak_candidates((w * np.float32(factor)).astype(np.float32), 1.0)
    mine = set(zip(cw.tolist(), cs.tolist(), strict=True))
    theirs = set(zip(vw.tolist(), vs.tolist(), strict=True))
    if factor == 1 / 1024:
        assert mine == theirs
    else:  # a rise exactly at the threshold may flip by a float32 rounding
        assert len(mine ^ theirs) <= 1e-3 * len(mine)
    common = sorted(mine & theirs)
    ia = [i for i, k in enumerate(zip(cw.tolist(), cs.tolist(), strict=True)) if k in theirs]
    ib = [i for i, k in enumerate(zip(vw.tolist(), vs.tolist(), strict=True)) if k in mine]
    assert len(ia) == len(ib) == len(common)
    mine_w = D.extract_windows(w, cw[ia], cs[ia], scale)
    their_w = D.extract_windows((w * np.float32(factor)).astype(np.float32), vw[ib], vs[ib], vscale)
    np.testing.assert_allclose(their_w, mine_w, atol=2e-5)


def test_a_dataset_says_how_its_windows_are_normalised_and_what_its_inputs_look_like(tmp_path):
    D.simulate_to_file(tmp_path / "d.npz", 30, 1)
    meta = D.read_meta(tmp_path / "d.npz")
    assert meta["format_version"] == 3 and meta["window"]["normalization"] == D.WINDOW_NORMALIZATION
    assert D.window_normalization(meta) == "10 x noise_rms"
    assert D.window_normalization({"window": {"before": 5, "after": 9, "scale_mv": 10.0}}) == "window_scale_mv=10.0"
    stats = meta["input_stats"]
    assert stats["waveforms"] == 30 and 1.0 < stats["noise_rms"]["p50"] < 1.25
    assert stats["noise_rms"]["p1"] <= stats["noise_rms"]["p50"] <= stats["noise_rms"]["p99"]
    assert 10 < stats["peak_snr"]["p50"] < 500


# --------------------------------------------------------------------------------------------
# a real trained LSTM meets a toy file in volts at 1.5 GS/s
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small LSTM trained for real on a 1.5 GS/s simulation, with its training record written
    by the job's own code (sweep.job.training.training_record)."""
    importlib.import_module("keras")
    import keras

    from sweep.fsutil import file_digest
    from sweep.job.models import build_lstm
    from sweep.job.training import training_record

    root = tmp_path_factory.mktemp("trained")
    data = root / "train.npz"
    D.simulate_to_file(data, 300, 11, RATE)
    X, y = D.load_peak_dataset(data, seed=0, max_samples=6000)
    keras.utils.set_random_seed(0)
    model = build_lstm({"topology": [16, 16, 1], "activations": ["relu", "sigmoid"], "dropout": [0.0, 0.0]})
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy")
    model.fit(X, y, epochs=4, batch_size=128, verbose=0)
    path = root / "model.keras"
    model.save(path)
    record = training_record({"model": "lstm", "run_id": "r1", "sweep": "t"}, data,
                             file_digest(data)["sha256"]).to_json()
    path.with_suffix(".json").write_text(json.dumps(record))
    return path, record


def _toy(tmp_path, name, volts=True, noise_mv=1.0, seed=21):
    """A toy file as an independent group writes it: 1.5 GS/s, amplitudes in volts, a
    sampling_rate branch in Hz, its own tree and branch names."""
    b = simulate_batch(SimulationParams.from_dict({**RATE, "noise_rms_mv": noise_mv}), 80, np.random.default_rng(seed))
    ws = R.WaveformSet.from_batch(b)
    if volts:
        ws.waveforms_mv = ws.waveforms_mv * np.float32(1e-3)
    return R.write_root(tmp_path / name, ws, sampling_rate=1.5e9, tree="toy",
                        branches={"waveform": "adc", "clusters": "n_primary", "momentum": "p"})


NAMES = ["--tree", "toy", "--branch", "waveform=adc", "--branch", "clusters=n_primary", "--branch", "momentum=p"]


def _evaluate(tmp_path, capsys, model, toy, *extra):
    from sweep.cli import main

    out = tmp_path / f"ev-{toy.stem}-{len(extra)}"
    rc = main(["evaluate", "--peak-model", str(model), "--input", str(toy), "--out", str(out), "--no-plots",
               "--scan-waveforms", "40", *NAMES, *extra])
    err = capsys.readouterr().err
    result = json.loads((out / "evaluation.json").read_text()) if rc == 0 else None
    return rc, err, result


@pytest.mark.training
def test_a_trained_lstm_finds_the_peaks_of_a_file_in_volts(trained, tmp_path, capsys):
    """Same waveforms in mV and in volts: the same F1 (it was 0 in volts), well above nothing; the
    volts file without --amplitude-unit gets a warning with both noise figures, and none with it."""
    model, record = trained
    assert record["input"]["normalization"] == D.WINDOW_NORMALIZATION and record["dt_ns"] == pytest.approx(1 / 1.5)
    rc, err_mv, in_mv = _evaluate(tmp_path, capsys, model, _toy(tmp_path, "mv.root", volts=False))
    assert rc == 0 and "warning" not in err_mv
    rc, err_v, in_v = _evaluate(tmp_path, capsys, model, _toy(tmp_path, "volts.root"))
    assert rc == 0
    f1_mv = in_mv["peaks"]["lstm"]["window_natural"]["f1"]
    f1_v = in_v["peaks"]["lstm"]["window_natural"]["f1"]
    # F1 at 0.5 on every candidate of the default (slope) finder, ~3.6 % of them signal: ~0.49 for
    # this small model; 0 is what volts gave before
    assert f1_mv > 0.4 and f1_v == pytest.approx(f1_mv, abs=0.01)
    assert in_v["peaks"]["lstm"]["window_natural"]["auc"] > 0.85
    noise = [line for line in err_v.splitlines() if "warning" in line and "noise rms" in line]
    assert len(noise) == 1 and "volts.root is 0.00" in noise[0] and "against 1.1" in noise[0], err_v
    assert "--amplitude-scale" in noise[0] and in_v["warnings"] == noise
    rc, err, in_unit = _evaluate(tmp_path, capsys, model, _toy(tmp_path, "volts.root"), "--amplitude-unit", "V")
    assert rc == 0 and "warning" not in err and in_unit["warnings"] == []
    # the same within float32 rounding: with the volts scaled × 1000 the slope finder's candidates differ
    # by a few windows of thousands (F1 0.48636 against 0.48643; the rise finder's came out bit-equal)
    assert in_unit["peaks"]["lstm"]["window_natural"]["f1"] == pytest.approx(f1_v, abs=1e-3)


@pytest.mark.training
def test_pulses_far_smaller_than_the_noise_of_training_are_a_warning(trained, tmp_path, capsys):
    model, _ = trained
    rc, err, result = _evaluate(tmp_path, capsys, model, _toy(tmp_path, "loud.root", noise_mv=12.0),
                                "--amplitude-unit", "V")
    assert rc == 0
    lines = [line for line in err.splitlines() if "warning" in line]
    assert any("peak signal-to-noise" in line and "against" in line and "1-99 %" in line for line in lines), err
    assert result["warnings"] == lines


@pytest.mark.training
def test_a_model_trained_on_windows_normalised_otherwise_is_refused(trained, tmp_path, capsys):
    """A model trained on format-2 windows (divided by 10 mV) would see windows ~9x too large."""
    model, record = trained
    old = tmp_path / "old.keras"
    old.write_bytes(model.read_bytes())
    old.with_suffix(".json").write_text(json.dumps({**record, "input": {**record["input"],
                                                                        "normalization": "window_scale_mv=10.0"}}))
    rc, err, _ = _evaluate(tmp_path, capsys, old, _toy(tmp_path, "mv.root", volts=False))
    assert rc == 2 and "normalised as 'window_scale_mv=10.0'" in err and "retrain" in err and "Traceback" not in err
    with pytest.raises(Exception, match="normalised as 'window_scale_mv=10.0'"):
        D.simulate_to_file(tmp_path / "c.npz", 4, 1, RATE, peak_model=old)
    assert not (tmp_path / "c.npz").exists()


def test_simulating_with_a_peak_model_warns_about_a_noisier_simulation(trained, tmp_path):
    model, _ = trained
    quiet = D.simulate_to_file(tmp_path / "same.npz", 20, 2, RATE, peak_model=model)
    assert quiet["notes"] == []
    loud = D.simulate_to_file(tmp_path / "loud.npz", 20, 2, {**RATE, "noise_rms_mv": 12.0}, peak_model=model)
    assert any("peak signal-to-noise of the simulation" in n for n in loud["notes"]), loud["notes"]


@pytest.mark.parametrize("args, message", [
    (["--branch", "waveform"], "expected WHAT=NAME"),
    (["--branch", "colour=adc"], "unknown branch role 'colour'"),
    (["--branch", "waveform=a;b"], "plain branch name"),
    (["--tree", "nope"], "no tree 'nope'"),
    (["--branch", "time=t_ns"], "lacks branch(es) t_ns (time)"),
    (["--dt-ns", "0.8333"], "samples every 0.666667 ns"),
])
def test_reader_options_errors_name_what_is_wrong(tmp_path, capsys, args, message):
    from sweep.cli import main

    toy = _toy(tmp_path, "t.root", volts=False)
    names = [a for a in NAMES]
    if args[0] == "--tree":
        names = names[2:]
    rc = main(["evaluate", "--input", str(toy), "--out", str(tmp_path / "o"), "--no-plots", *names, *args])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "o").exists()


def test_reader_options_need_an_input_that_takes_them(tmp_path, capsys):
    from sweep.cli import main

    assert main(["evaluate", "--tree", "toy", "--out", str(tmp_path / "o")]) == 2
    assert "describe an --input file" in capsys.readouterr().err
    ws = R.WaveformSet.from_batch(simulate_batch(None, 3, 1))
    npz = R.write_npz(tmp_path / "w.npz", ws)
    assert main(["evaluate", "--input", str(npz), "--amplitude-unit", "V", "--out", str(tmp_path / "o")]) == 2
    assert "amplitude_unit do(es) not apply to a .npz file (it says its own units" in capsys.readouterr().err
    with pytest.raises(R.ReaderError, match="amplitude_unit do\\(es\\) not apply to a .npz file"):
        R.read_waveforms(npz, amplitude_unit="V")
    h5 = R.write_hdf5(tmp_path / "w.h5", ws)
    with pytest.raises(R.ReaderError, match="tree do\\(es\\) not apply to a .h5 file"):
        R.read_waveforms(h5, tree="sim")
    volts = R.read_waveforms(h5, amplitude_unit="uV")
    np.testing.assert_allclose(volts.waveforms_mv, ws.waveforms_mv * 1e-3, rtol=1e-6)
    with pytest.raises(SystemExit):
        main(["evaluate", "--input", str(h5), "--amplitude-unit", "V", "--amplitude-scale", "2"])


def test_negative_pulses_are_refused_until_their_polarity_is_given_then_read_flipped(tmp_path):
    """IHEP's beam-test files have negative pulses. Read as they are, the noise estimate (the
    samples below the median) would take the pulses for noise and the finder would look for rises
    in the tails: the reader sees which way the pulses go and asks; --polarity negative flips them."""
    from sweep.cli import main

    ws = R.WaveformSet.from_batch(simulate_batch(None, 20, 5))
    positive = R.write_hdf5(tmp_path / "pos.h5", ws)
    flipped = R.WaveformSet(-ws.waveforms_mv, ws.dt_ns, ws.peak_offsets, ws.peak_time_ns, ws.peak_sample,
                            ws.peak_tag, ws.n_clusters, ws.momentum_gev)
    negative = R.write_hdf5(tmp_path / "neg.h5", flipped)
    assert R.read_waveforms(positive).waveforms_mv.max() > 10  # positive pulses: read as they are
    with pytest.raises(R.ReaderError, match=r"neg.h5: the pulses look negative-going \(the waveforms reach "
                                            r"\d+\.\dx further below .* --polarity negative"):
        R.read_waveforms(negative)
    back = R.read_waveforms(negative, polarity="negative")
    np.testing.assert_array_equal(back.waveforms_mv, ws.waveforms_mv)
    as_is = R.read_waveforms(negative, polarity="positive")  # said: taken as said
    np.testing.assert_array_equal(as_is.waveforms_mv, flipped.waveforms_mv)
    with pytest.raises(R.ReaderError, match="polarity must be one of positive, negative"):
        R.read_waveforms(negative, polarity="up")
    npz = R.write_npz(tmp_path / "w.npz", ws)
    with pytest.raises(R.ReaderError, match="polarity do\\(es\\) not apply to a .npz file"):
        R.read_waveforms(npz, polarity="negative")
    assert main(["evaluate", "--input", str(negative), "--out", str(tmp_path / "ev")]) == 2
    assert not (tmp_path / "ev").exists()
    with pytest.raises(SystemExit):
        main(["evaluate", "--input", str(negative), "--polarity", "sideways"])


def test_root_time_units(tmp_path):
    ws = R.WaveformSet.from_batch(simulate_batch(None, 4, 3))
    in_us = R.WaveformSet(ws.waveforms_mv, ws.dt_ns, ws.peak_offsets, ws.peak_time_ns * 1e-3, ws.peak_sample,
                          ws.peak_tag, ws.n_clusters, ws.momentum_gev)
    path = R.write_root(tmp_path / "us.root", in_us)
    back = R.read_root(path, dt_ns=ws.dt_ns, time_unit="us")
    np.testing.assert_allclose(back.peak_time_ns, ws.peak_time_ns, rtol=1e-9)
    np.testing.assert_array_equal(back.peak_sample, np.rint(ws.peak_time_ns / ws.dt_ns).astype(np.int64))
    with pytest.raises(R.ReaderError, match="time unit must be one of"):
        R.read_root(path, dt_ns=ws.dt_ns, time_unit="fortnight")
