"""Waveform readers: npz, HDF5 and ROOT (CEPC layout) round trips to WaveformSet."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from sweep.physics import readers as R
from sweep.physics.simulate import simulate_batch


@pytest.fixture(scope="module")
def ws():
    return R.WaveformSet.from_batch(simulate_batch(None, 6, 11))


def _same(a: R.WaveformSet, b: R.WaveformSet, charge: bool = True):
    assert np.array_equal(a.waveforms_mv, b.waveforms_mv)
    assert a.dt_ns == pytest.approx(b.dt_ns)
    for k in ("peak_offsets", "peak_sample", "peak_tag", "n_clusters"):
        assert np.array_equal(getattr(a, k), getattr(b, k)), k
    assert np.allclose(a.peak_time_ns, b.peak_time_ns)
    assert np.allclose(a.momentum_gev, b.momentum_gev)
    if charge:
        assert np.allclose(a.charge, b.charge)


def test_from_batch(ws):
    assert ws.n_waveforms == 6 and ws.n_samples == 2400
    assert ws.peak_offsets[-1] == ws.peak_time_ns.size
    assert set(np.unique(ws.peak_tag)) <= {1, 2}
    # one primary per cluster
    assert int((ws.peak_tag == 1).sum()) == int(ws.n_clusters.sum())
    assert ws.peak_wf.size == ws.peak_time_ns.size and ws.peaks(0)["tag"].size == ws.peak_offsets[1]


def test_npz_round_trip(ws, tmp_path):
    p = R.write_npz(tmp_path / "w.npz", ws)
    _same(ws, R.read_npz(p))
    _same(ws, R.read_waveforms(p))


def test_hdf5_round_trip(ws, tmp_path):
    importlib.import_module("h5py")
    p = R.write_hdf5(tmp_path / "w.h5", ws)
    _same(ws, R.read_hdf5(p))
    _same(ws, R.read_waveforms(p))


def test_root_round_trip_cepc_layout(ws, tmp_path):
    uproot = importlib.import_module("uproot")
    # ROOT stores peak times only: use times on the sample grid so samples come back exactly
    t = ws.peak_sample * ws.dt_ns
    ws2 = R.WaveformSet(ws.waveforms_mv, ws.dt_ns, ws.peak_offsets, t, ws.peak_sample, ws.peak_tag,
                        ws.n_clusters, ws.momentum_gev)
    noise = [np.array([3.0, 4.5])] * ws.n_waveforms  # tag-0 entries are dropped on reading
    p = R.write_root(tmp_path / "w.root", ws2, noise_times_ns=noise)
    with uproot.open(p) as f:
        tree = f["sim"]
        assert {"wf_i", "time", "tag", "ncls", "mom"} <= set(tree.keys())
        assert int(tree.num_entries) == ws.n_waveforms
        assert (tree["tag"].array(library="ak")[0].tolist()[-2:]) == [0, 0]
    back = R.read_root(p, dt_ns=ws.dt_ns)
    _same(ws2, back, charge=False)
    assert back.charge is None
    back2 = R.read_waveforms(p, dt_ns=ws.dt_ns, entry_stop=2)
    assert back2.n_waveforms == 2


def test_root_time_in_samples(ws, tmp_path):
    importlib.import_module("uproot")
    ws2 = R.WaveformSet(ws.waveforms_mv[:2], ws.dt_ns, ws.peak_offsets[:3],
                        ws.peak_sample[: ws.peak_offsets[2]].astype(float), ws.peak_sample[: ws.peak_offsets[2]],
                        ws.peak_tag[: ws.peak_offsets[2]], ws.n_clusters[:2], ws.momentum_gev[:2])
    p = R.write_root(tmp_path / "s.root", ws2)
    # whole numbers inside the waveform: sample indices or ns? Read as ns each truth time would be off
    # by the sampling interval; the reader asks instead of assuming
    with pytest.raises(R.ReaderError, match=r"whole numbers from \d+ to \d+, inside the waveforms' \d+ samples: "
                                            r"sample indices .* --time-unit sample or --time-unit ns"):
        R.read_root(p, dt_ns=ws.dt_ns)
    from sweep.cli import main

    assert main(["evaluate", "--input", str(p), "--dt-ns", str(ws.dt_ns), "--out", str(tmp_path / "ev")]) == 2
    assert not (tmp_path / "ev").exists()  # nothing half-written
    as_ns = R.read_root(p, dt_ns=ws.dt_ns, time_unit="ns")  # said: taken as said
    assert np.allclose(as_ns.peak_time_ns, ws2.peak_sample)
    back = R.read_root(p, dt_ns=ws.dt_ns, time_unit="sample")
    assert np.array_equal(back.peak_sample, ws2.peak_sample)
    assert np.allclose(back.peak_time_ns, ws2.peak_sample * ws.dt_ns)


def test_simulator_dataset_npz(tmp_path):
    from sweep.physics.datasets import simulate_to_file

    p = tmp_path / "d.npz"
    simulate_to_file(p, 20, seed=3)
    ws = R.read_npz(p)
    assert ws.n_waveforms == 20 and ws.n_samples == 0 and ws.peak_time_ns.size == 0
    assert ws.extra["windows"].shape[1] == 15 and ws.extra["peak_inputs"].shape == (20, 1024)
    assert ws.extra["windows"].dtype == ws.extra["peak_inputs"].dtype == np.float32
    assert ws.n_clusters.sum() > 0


def test_errors(tmp_path, ws):
    with pytest.raises(R.ReaderError):
        R.read_npz(tmp_path / "missing.npz")
    with pytest.raises(R.ReaderError):
        R.read_waveforms(tmp_path / "x.txt")
    bad = tmp_path / "bad.npz"
    np.savez(bad, a=np.zeros(3))
    with pytest.raises(R.ReaderError):
        R.read_npz(bad)
    with pytest.raises(R.ReaderError):
        R.WaveformSet(ws.waveforms_mv, ws.dt_ns, ws.peak_offsets[:-1], ws.peak_time_ns, ws.peak_sample,
                      ws.peak_tag, ws.n_clusters, ws.momentum_gev)


def _on_grid(ws: R.WaveformSet, dt_ns: float) -> R.WaveformSet:
    """The same waveforms said to be sampled every dt_ns, truth times on that grid."""
    return R.WaveformSet(ws.waveforms_mv, dt_ns, ws.peak_offsets, ws.peak_sample * dt_ns, ws.peak_sample,
                         ws.peak_tag, ws.n_clusters, ws.momentum_gev)


@pytest.mark.parametrize("rate", [1.5, 1500.0, 1.5e9], ids=["GS/s", "MS/s", "Hz"])
def test_root_sampling_rate_comes_from_the_file(ws, tmp_path, rate):
    """An independent toy at 1.5 GS/s with a sampling_rate branch: the truth times land on their
    samples without --dt-ns (sweep used to assume 1.2 GS/s and put every one on a wrong sample)."""
    toy = _on_grid(ws, 1 / 1.5)
    p = R.write_root(tmp_path / "toy.root", toy, sampling_rate=rate)
    back = R.read_root(p)
    assert back.dt_ns == pytest.approx(1 / 1.5)
    assert np.array_equal(back.peak_sample, toy.peak_sample)
    assert R.read_root(p, dt_ns=1 / 1.5).dt_ns == pytest.approx(1 / 1.5)  # agreeing: fine
    with pytest.raises(R.ReaderError, match="but --dt-ns 0.833333 was given"):
        R.read_root(p, dt_ns=1 / 1.2)


def test_a_file_that_does_not_say_its_sampling_interval_needs_dt_ns(ws, tmp_path):
    p = R.write_root(tmp_path / "cepc.root", _on_grid(ws, ws.dt_ns))
    with pytest.raises(R.ReaderError, match="does not say its sampling interval.*--dt-ns"):
        R.read_root(p)
    assert R.read_root(p, dt_ns=ws.dt_ns).dt_ns == pytest.approx(ws.dt_ns)
    importlib.import_module("h5py")
    import h5py

    h = R.write_hdf5(tmp_path / "w.h5", ws)
    with h5py.File(h, "a") as f:
        del f.attrs["dt_ns"]
    with pytest.raises(R.ReaderError, match="does not say its sampling interval"):
        R.read_hdf5(h)
    with h5py.File(h, "a") as f:
        f.attrs["sampling_rate"] = 1.5e9
    assert R.read_hdf5(h).dt_ns == pytest.approx(1 / 1.5)


def test_evaluate_on_a_file_without_its_sampling_interval_is_a_clear_error(ws, tmp_path, capsys):
    from sweep.cli import main

    p = R.write_root(tmp_path / "cepc.root", _on_grid(ws, ws.dt_ns))
    assert main(["evaluate", "--input", str(p), "--out", str(tmp_path / "ev"), "--tracks", "0",
                 "--separation-tracks", "0", "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert "does not say its sampling interval" in err and "--dt-ns" in err and "Traceback" not in err
