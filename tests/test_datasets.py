"""The peak-finding / clusterization datasets, their file format and loaders (sweep.physics.datasets)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from sweep.physics import datasets as D
from sweep.physics import simulate as S

N_WF = 300
EXPECTED_KEYS = {
    "windows", "labels", "tags", "window_waveform", "balanced_index",
    "peak_inputs", "n_clusters", "momentum", "betagamma", "meta",
}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("ds") / "sim.npz"
    summary = D.simulate_to_file(path, N_WF, seed=7)
    return path, summary


def test_file_keys_dtypes_shapes(small):
    path, _ = small
    with np.load(path, allow_pickle=False) as f:
        assert set(f.files) == EXPECTED_KEYS
        a = {k: f[k] for k in f.files}
    for k, (dtype, ndim) in D.ARRAY_KEYS.items():
        assert a[k].dtype == dtype and a[k].ndim == ndim, k
    N = a["labels"].shape[0]
    assert a["windows"].shape == (N, 15)
    assert a["tags"].shape == a["window_waveform"].shape == (N,)
    assert a["peak_inputs"].shape == (N_WF, 1024)
    for k in ("n_clusters", "momentum", "betagamma"):
        assert a[k].shape == (N_WF,)
    assert a["meta"].shape == () and a["meta"].dtype.kind == "U"
    # mean-subtracted in float32, then rounded to float16: each value moves by <= 2^-11 of the
    # row's largest |value|, so the stored row mean may be off by as much (plus float32 noise)
    w = a["windows"].astype(np.float64)
    assert np.all(np.abs(w.mean(axis=1)) <= np.abs(w).max(axis=1) * 2.0**-11 + 1e-5)
    assert 0.5 < np.abs(a["windows"][a["labels"] == 1]).max(axis=1).mean() < 5  # O(1)
    assert set(np.unique(a["labels"])) == {0, 1}
    assert np.array_equal(a["tags"] == 0, a["labels"] == 0)
    assert set(np.unique(a["tags"])) == {0, 1, 2}
    assert np.all(np.diff(a["window_waveform"]) >= 0) and a["window_waveform"].max() < N_WF
    assert 16 < a["n_clusters"].mean() < 22  # ~15.5 clusters/cm × the tubes' mean chord of 1.18 cm
    assert np.all(a["momentum"] >= 4) and np.all(a["momentum"] <= 180)
    np.testing.assert_allclose(a["betagamma"], a["momentum"] / 0.13957, rtol=1e-4)
    # at least the primaries show up in the clusterization input (peaks >= clusters - merges)
    assert a["peak_inputs"].sum(axis=1).mean() > a["n_clusters"].mean()


def test_meta_and_summary(small):
    path, summary = small
    meta = D.read_meta(path)
    assert meta["kind"] == "sweep-cluster-counting" and meta["format_version"] == D.FORMAT_VERSION == 3
    assert meta["seed"] == 7 and meta["n_waveforms"] == N_WF and meta["tolerance_samples"] == 1
    assert set(meta["software"]) >= {"sweep", "numpy"}
    assert S.SimulationParams.from_dict(meta["params"]) == S.SimulationParams()
    json.dumps(meta)
    assert set(summary) >= {"n_waveforms", "n_windows", "signal_fraction", "mean_clusters", "seconds"}
    with np.load(path) as f:
        labels, ncl = f["labels"], f["n_clusters"]
    assert summary["n_waveforms"] == N_WF and summary["n_windows"] == labels.size
    assert summary["signal_fraction"] == pytest.approx(labels.mean())
    assert summary["mean_clusters"] == pytest.approx(ncl.mean())
    assert 0.01 < summary["signal_fraction"] < 0.2  # natural mix: a few % signal
    assert summary["seconds"] > 0


def test_same_seed_identical_file_other_seed_different(tmp_path):
    a, b, c = tmp_path / "a.npz", tmp_path / "b.npz", tmp_path / "c.npz"
    D.simulate_to_file(a, 60, seed=3, batch_size=32)
    D.simulate_to_file(b, 60, seed=3, batch_size=32)
    D.simulate_to_file(c, 60, seed=4, batch_size=32)
    assert a.read_bytes() == b.read_bytes()
    with np.load(a) as fa, np.load(c) as fc:
        assert not np.array_equal(fa["n_clusters"], fc["n_clusters"])
        assert fa["windows"].shape != fc["windows"].shape or not np.array_equal(fa["windows"], fc["windows"])
    assert sorted(os.listdir(tmp_path)) == ["a.npz", "b.npz", "c.npz"]  # no temp files left


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "d.npz"
    D.simulate_to_file(path, 20, seed=1)
    before = path.read_bytes()
    with pytest.raises(ValueError):
        D.write_dataset(path, {"windows": np.zeros((1, 15), np.float32)}, {})
    with pytest.raises(S.ParameterError, match="nosie_rms_mv"):
        D.simulate_to_file(path, 20, seed=1, params={"nosie_rms_mv": 2})
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["d.npz"]


def test_params_change_the_physics(tmp_path):
    s = D.simulate_to_file(tmp_path / "e.npz", 100, seed=1, params={"fixed_betagamma": 4.0, "cell_shape": "square"})
    assert s["mean_clusters"] == pytest.approx(12.13 * 1.5, rel=0.08)
    assert D.read_meta(tmp_path / "e.npz")["params"]["fixed_betagamma"] == 4.0


# ---------------------------------------------------------------------------------------------
# labelling on hand-built waveforms
# ---------------------------------------------------------------------------------------------


def test_isolated_pulse_gives_one_signal_window_at_the_right_place():
    p = S.SimulationParams()
    resp = S.pulse_response(p)
    t = np.array([900.3, 1200.7])
    rng = np.random.default_rng(0)
    mv, _ = S.render_waveforms(p, 2, [0, 1], t, [1.5, 1.5], rng)
    cw, cs, scale = D.peak_candidates(mv, p.finder_threshold_rms)
    peak = resp.peak_sample(t)
    labels, tags = D.match_candidates(cw, cs, [0, 1], peak, [1, 1], 1, p.n_samples)
    for w in (0, 1):
        sig = cs[(cw == w) & (labels == 1)]
        assert sig.size == 1 and abs(int(sig[0]) - int(peak[w])) <= 1
        assert abs(sig[0] * p.dt_ns - t[w]) < 3.0  # a sample or two after the arrival
    assert set(tags[labels == 1]) == {1}
    win = D.extract_windows(mv, cw[labels == 1], cs[labels == 1], scale)
    # the big rise sits at the candidate (index 5) and the pulse top shortly after it
    assert np.all(np.argmax(np.diff(win, axis=1), axis=1) + 1 == 5)
    assert np.all((np.argmax(win, axis=1) >= 5) & (np.argmax(win, axis=1) <= 8))


def test_pure_noise_waveform_has_no_signal_labels_and_few_strong_candidates():
    p = S.SimulationParams()
    mv, _ = S.render_waveforms(p, 20, np.zeros(0), np.zeros(0), np.zeros(0), np.random.default_rng(3))
    cw, cs = D.find_candidates(mv, p.finder_threshold_rms * p.noise_rms_mv)
    labels, tags = D.match_candidates(cw, cs, [], [], [], 1, p.n_samples)
    assert cw.size > 0 and labels.sum() == 0 and tags.sum() == 0
    strong_w, _ = D.find_candidates(mv, 5.0 * p.noise_rms_mv)  # a real single electron rises ~5 mV
    assert strong_w.size <= 2


def test_find_candidates_rule_and_edges():
    w = np.zeros((1, 40), np.float32)
    w[0, 20:] = [2, 7, 9, 9.5, 9, 8] + [8] * 14  # rises 2, 5, 2, .5 -> steepest at sample 21
    w[0, 2:4] = 50  # inside the first 5 samples: no full window, ignored
    cw, cs = D.find_candidates(w, 0.0)
    assert cs.tolist() == [21]
    assert D.find_candidates(w, 5.0)[1].size == 0  # threshold is strict: d > thr
    assert D.find_candidates(w, 4.9)[1].tolist() == [21]


def test_the_slope_finder_also_finds_a_pulse_on_a_falling_tail():
    """A second pulse that starts on the first one's falling tail rises by less than the
    threshold (d = -1 then +1.5): the seed's finder misses it, the slope finder measures it from
    the tail's -3 and finds it; everything the rise finder finds, the slope finder finds too."""
    w = np.zeros((1, 60), np.float32)
    first = [4, 12, 14, 13, 10, 7, 4]  # rise 4, 8, 2; then falls by 1, 3, 3, 3
    w[0, 20:27] = first
    w[0, 27:34] = [5.5, 6.5, 6, 5, 4, 3, 2]  # on the tail (4): +1.5, +1 -> a new pulse's start
    assert D.find_candidates(w, 2.0)[1].tolist() == [21]
    assert D.find_candidates(w, 2.0, "slope")[1].tolist() == [21, 27]
    rng = np.random.default_rng(4)
    noisy = w + rng.normal(0, 0.3, (200, 60)).astype(np.float32)
    rise = set(zip(*D.find_candidates(noisy, 1.0), strict=True))
    slope = set(zip(*D.find_candidates(noisy, 1.0, "slope"), strict=True))
    assert rise <= slope and len(slope) > len(rise)
    with pytest.raises(ValueError, match="unknown candidate finder"):
        D.find_candidates(w, 1.0, "upsampled")
    from sweep.physics.simulate import ParameterError, SimulationParams

    with pytest.raises(ParameterError, match="candidate_finder"):
        SimulationParams(candidate_finder="fast")


def test_match_tolerance_and_tags():
    n = 100
    cw = np.zeros(6, np.int64)
    cs = np.array([47, 48, 49, 50, 51, 52])
    for k, expect in [(0, [0, 0, 0, 1, 0, 0]), (1, [0, 0, 1, 1, 1, 0]), (2, [0, 1, 1, 1, 1, 1])]:
        labels, _ = D.match_candidates(cw, cs, [0], [50], [2], k, n)
        assert labels.tolist() == expect, k
    # nearest truth peak gives the tag; primary wins at an identical sample
    labels, tags = D.match_candidates(cw, cs, [0, 0, 0], [48, 52, 52], [2, 2, 1], 2, n)
    assert labels.tolist() == [1] * 6
    assert tags.tolist() == [2, 2, 2, 2, 1, 1]
    # peaks of another waveform never match
    labels, _ = D.match_candidates([1, 1], [0, 5], [0], [n - 1], [1], 3, n)
    assert labels.tolist() == [0, 0]


def test_cluster_inputs_histogram():
    rng = np.random.default_rng(0)
    h = D.cluster_inputs(2, [0, 0, 0, 1], [0, 1200, 2399, 600], 1 / 1.2, 2000.0, 1024, 0.0, rng)
    assert h.shape == (2, 1024) and h.dtype == np.float32
    assert h[0].sum() == 3 and h[0, 0] == 1 and h[0, 512] == 1 and h[0, 1023] == 1
    assert h[1, 256] == 1 and h[1].sum() == 1
    hs = D.cluster_inputs(1, np.zeros(1000, int), np.full(1000, 1200), 1 / 1.2, 2000.0, 1024, 1.0, rng)
    assert hs.sum() == 1000 and 2 <= np.count_nonzero(hs) <= 8  # smeared by ~1 sample ≈ 0.5 bin


def test_distinct_peaks():
    w, s, t = D.distinct_peaks([1, 0, 0, 0], [5, 9, 3, 9], [2, 2, 2, 1])
    assert w.tolist() == [0, 0, 1] and s.tolist() == [3, 9, 5] and t.tolist() == [2, 1, 2]


# ---------------------------------------------------------------------------------------------
# balanced index and loaders
# ---------------------------------------------------------------------------------------------


def test_balanced_index_is_balanced(small):
    path, _ = small
    with np.load(path) as f:
        labels, bi = f["labels"], f["balanced_index"]
    assert np.all(np.diff(bi) > 0)  # sorted, unique
    assert (labels[bi] == 1).sum() == (labels[bi] == 0).sum() == (labels == 1).sum()
    assert bi.size > 10 * N_WF  # plenty of windows (~40 per waveform)
    again = D.balanced_index(labels, 7)
    np.testing.assert_array_equal(again, bi)
    assert not np.array_equal(D.balanced_index(labels, 8), bi)


def test_load_peak_dataset(small):
    path, summary = small
    X, y = D.load_peak_dataset(path)
    assert X.dtype == np.float32 and y.dtype == np.float32
    assert X.ndim == 3 and X.shape[1:] == (15, 1) and y.shape == (X.shape[0],)
    assert y.mean() == 0.5 and set(np.unique(y)) == {0.0, 1.0}
    Xn, yn = D.load_peak_dataset(path, balanced=False)
    assert yn.size == summary["n_windows"] and yn.mean() == pytest.approx(summary["signal_fraction"])
    X2, y2 = D.load_peak_dataset(path)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    X3, _ = D.load_peak_dataset(path, seed=1)
    assert not np.array_equal(X, X3)
    assert np.array_equal(np.sort(X[:, :, 0], axis=0), np.sort(X3[:, :, 0], axis=0))  # same rows
    Xm, ym = D.load_peak_dataset(path, max_samples=100)
    assert Xm.shape == (100, 15, 1) and ym.shape == (100,)
    np.testing.assert_array_equal(Xm, X[:100])
    with pytest.raises(ValueError):
        D.load_peak_dataset(path, max_samples=0)


def test_load_cluster_dataset(small):
    path, _ = small
    X, y = D.load_cluster_dataset(path)
    assert X.shape == (N_WF, 1024, 1) and X.dtype == np.float32 and y.dtype == np.float32
    with np.load(path) as f:
        np.testing.assert_array_equal(np.sort(y), np.sort(f["n_clusters"]))
    Xm, ym = D.load_cluster_dataset(path, max_samples=10, seed=2)
    assert Xm.shape == (10, 1024, 1) and ym.shape == (10,)
    assert np.corrcoef(X.sum(axis=(1, 2)), y)[0, 1] > 0.5  # the input carries the cluster count


def test_windows_are_learnable(small):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    path, _ = small
    X, y = D.load_peak_dataset(path, seed=0)
    X = X[:, :, 0]
    half = X.shape[0] // 2
    model = LogisticRegression(max_iter=500).fit(X[:half], y[:half])
    auc = roc_auc_score(y[half:], model.predict_proba(X[half:])[:, 1])
    # a linear model on the default (slope) finder's candidates: ~0.86 (0.9+ on the rise finder's,
    # which are easier and fewer); shuffled labels give 0.5
    assert auc > 0.8


# ---------------------------------------------------------------------------------------------
# bad files
# ---------------------------------------------------------------------------------------------


def _rewrite(small, path, drop=(), meta_changes=None, retype=None):
    src, _ = small
    with np.load(src) as f:
        arrays = {k: f[k] for k in f.files if k != "meta"}
        meta = json.loads(str(f["meta"][()]))
    meta.update(meta_changes or {})
    for k, v in (retype or {}).items():
        arrays[k] = arrays[k].astype(v)
    arrays = {k: v for k, v in arrays.items() if k not in drop}
    np.savez_compressed(path, meta=np.array(json.dumps(meta)), **arrays)
    return path


@pytest.mark.parametrize("loader", [D.load_peak_dataset, D.load_cluster_dataset, D.read_meta])
def test_loader_errors(small, tmp_path, loader):
    missing = tmp_path / "nope.npz"
    with pytest.raises(D.DatasetError, match="nope.npz.*does not exist"):
        loader(missing)
    text = tmp_path / "text.npz"
    text.write_text("hello, not a zip\n")
    with pytest.raises(D.DatasetError, match="text.npz.*not a readable npz"):
        loader(text)
    npy = tmp_path / "single.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(D.DatasetError, match="single.npy.*not an npz"):
        loader(npy)
    v4 = _rewrite(small, tmp_path / "v4.npz", meta_changes={"format_version": 4})
    with pytest.raises(D.DatasetError, match="v4.npz.*format_version 4"):
        loader(v4)
    vs = _rewrite(small, tmp_path / "vs.npz", meta_changes={"format_version": "3"})
    with pytest.raises(D.DatasetError, match="vs.npz.*format_version '3'"):
        loader(vs)
    kind = _rewrite(small, tmp_path / "kind.npz", meta_changes={"kind": "something-else"})
    with pytest.raises(D.DatasetError, match="kind.npz.*kind"):
        loader(kind)
    np.savez(tmp_path / "nometa.npz", windows=np.zeros((2, 15), np.float32))
    with pytest.raises(D.DatasetError, match="nometa.npz.*'meta'"):
        loader(tmp_path / "nometa.npz")


def test_missing_key_and_wrong_dtype(small, tmp_path):
    no_lab = _rewrite(small, tmp_path / "nolabels.npz", drop=("labels",))
    with pytest.raises(D.DatasetError, match=r"nolabels.npz.*missing key.*labels"):
        D.load_peak_dataset(no_lab)
    with pytest.raises(D.DatasetError, match="nolabels.npz"):
        D.load_cluster_dataset(no_lab)
    f64 = _rewrite(small, tmp_path / "f64.npz", retype={"windows": np.float64})
    with pytest.raises(D.DatasetError, match="f64.npz.*'windows'.*float64"):
        D.load_peak_dataset(f64)
    assert D.load_cluster_dataset(f64)[0].shape == (N_WF, 1024, 1)  # unaffected part still loads
    # dtypes are checked per format_version: v1 arrays in a file that says v3 are refused
    mixed = _rewrite(small, tmp_path / "mixed.npz", retype={"peak_inputs": np.float32})
    with pytest.raises(D.DatasetError, match="mixed.npz.*'peak_inputs'.*float32.*expected uint8.*format_version 3"):
        D.load_cluster_dataset(mixed)
    assert issubclass(D.DatasetError, Exception)


def test_version_1_file_still_loads(small, tmp_path):
    """A format-1 file (float32 windows and peak_inputs) loads like a format-2/3 one."""
    from sweep.physics import readers as R

    path, _ = small
    v1 = _rewrite(small, tmp_path / "v1.npz", meta_changes={"format_version": 1},
                  retype={"windows": np.float32, "peak_inputs": np.float32})
    with np.load(v1) as f:
        assert f["windows"].dtype == f["peak_inputs"].dtype == np.float32
    assert D.read_meta(v1)["format_version"] == 1
    for balanced in (True, False):
        X1, y1 = D.load_peak_dataset(v1, balanced=balanced)
        X2, y2 = D.load_peak_dataset(path, balanced=balanced)
        assert X1.dtype == X2.dtype == y1.dtype == y2.dtype == np.float32
        assert X1.shape == X2.shape and y1.shape == y2.shape
        np.testing.assert_array_equal(X1, X2)  # float16 -> float32 is exact
        np.testing.assert_array_equal(y1, y2)
    C1, n1 = D.load_cluster_dataset(v1)
    C2, n2 = D.load_cluster_dataset(path)
    assert C1.dtype == C2.dtype == n1.dtype == np.float32 and C1.shape == C2.shape == (N_WF, 1024, 1)
    np.testing.assert_array_equal(C1, C2)
    np.testing.assert_array_equal(n1, n2)
    ws = R.read_npz(v1)  # readers.py reads dataset files through D._load too
    assert ws.n_waveforms == N_WF and ws.extra["windows"].shape == (y1.size, 15)


def test_peak_inputs_clipped_to_uint8(monkeypatch):
    p = S.SimulationParams()
    batch = S.simulate_batch(p, 3, np.random.default_rng(0))
    monkeypatch.setattr(D, "cluster_inputs", lambda B, *a: np.full((B, p.cluster_bins), 300.0, np.float32))
    b = D.DatasetBuilder(p)
    b.add(batch, np.random.default_rng(1))
    out = b.finish(balance_seed=0)
    assert out["peak_inputs"].dtype == np.uint8 and np.all(out["peak_inputs"] == 255)
    assert out["windows"].dtype == np.float16


def test_progress_bar_runs(tmp_path, capsys):
    s = D.simulate_to_file(tmp_path / "p.npz", 10, seed=0, progress=True)
    assert s["n_waveforms"] == 10


def _peaks_per_waveform(path):
    with np.load(path) as f:
        return f["peak_inputs"].sum(axis=1), np.bincount(f["window_waveform"], minlength=f["n_clusters"].size), f


def test_cluster_inputs_from_a_peak_finder(tmp_path):
    """With a peak finder the clusterization inputs are the candidates it keeps (step 1 of the
    chain), not the smeared true peaks; everything else in the file is unchanged."""
    def keep_all(X):
        assert X.ndim == 3 and X.shape[1:] == (15, 1) and X.dtype == np.float32
        return np.ones(len(X))

    truth = D.simulate_to_file(tmp_path / "truth.npz", 30, seed=5)
    D.simulate_to_file(tmp_path / "all.npz", 30, seed=5, peak_model=keep_all)
    D.simulate_to_file(tmp_path / "none.npz", 30, seed=5, peak_model=lambda X: np.full(len(X), 0.4))
    D.simulate_to_file(tmp_path / "low.npz", 30, seed=5, peak_model=lambda X: np.full(len(X), 0.4),
                       peak_threshold=0.3)
    kept, candidates, _ = _peaks_per_waveform(tmp_path / "all.npz")
    np.testing.assert_array_equal(kept, candidates)  # every candidate of every waveform, once
    assert _peaks_per_waveform(tmp_path / "none.npz")[0].sum() == 0  # 0.4 < threshold 0.5
    np.testing.assert_array_equal(_peaks_per_waveform(tmp_path / "low.npz")[0], candidates)
    true_peaks = _peaks_per_waveform(tmp_path / "truth.npz")[0]
    assert true_peaks.sum() != kept.sum()
    with np.load(tmp_path / "truth.npz") as a, np.load(tmp_path / "all.npz") as b:
        for k in ("windows", "labels", "n_clusters", "balanced_index"):
            np.testing.assert_array_equal(a[k], b[k])
    src = D.read_meta(tmp_path / "all.npz")["cluster_input"]
    assert src["source"] == "peak model" and src["peak_threshold"] == 0.5 and src["smear_samples"] == 0.0
    assert src["peak_model"] == {"callable": "keep_all"}
    assert D.read_meta(tmp_path / "truth.npz")["cluster_input"]["source"] == "true peaks"
    assert truth["mean_peaks"] == pytest.approx(true_peaks.mean())
    with pytest.raises(ValueError, match="2 scores for"):
        D.simulate_to_file(tmp_path / "bad.npz", 5, seed=5, peak_model=lambda X: np.ones(2))
    with pytest.raises(ValueError, match="peak_threshold"):
        D.simulate_to_file(tmp_path / "bad.npz", 5, seed=5, peak_model=keep_all, peak_threshold=0)
    assert not (tmp_path / "bad.npz").exists()


@pytest.mark.training
def test_cli_simulate_with_a_keras_peak_finder(tmp_path):
    import keras  # a hard dependency of the package
    from sweep.cli import main
    from sweep.job.models import build_lstm

    keras.utils.set_random_seed(0)
    model = build_lstm({"topology": [4, 4, 1], "activations": ["relu", "sigmoid"], "dropout": [0.0, 0.0]})
    # a few quick epochs so that its scores spread over (0, 1) (untrained, all sit near 0.42)
    D.simulate_to_file(tmp_path / "train.npz", 30, seed=1)
    X, y = D.load_peak_dataset(tmp_path / "train.npz")
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="binary_crossentropy")
    model.fit(X, y, batch_size=64, epochs=3, verbose=0)
    model.save(tmp_path / "finder.keras")
    out = tmp_path / "cnn.npz"
    assert main(["data", "simulate", "--out", str(out), "--waveforms", "12", "--seed", "2", "--no-progress",
                 "--peak-model", str(tmp_path / "finder.keras"), "--threshold", "0.5"]) == 0
    scores = model.predict(np.load(out)["windows"].astype(np.float32)[:, :, None], verbose=0).ravel()
    kept, candidates, _ = _peaks_per_waveform(out)
    assert 0 < kept.sum() < candidates.sum() / 2  # it found some peaks, far from every candidate
    with np.load(out) as f:
        per_wf = np.bincount(f["window_waveform"][scores >= 0.5], minlength=12)
    # the stored windows are float16: a score within rounding of the threshold may flip
    assert np.abs(kept.astype(int) - per_wf).sum() <= 2
    meta = D.read_meta(out)["cluster_input"]
    assert meta["source"] == "peak model" and len(meta["peak_model"]["sha256"]) == 64
    assert main(["data", "simulate", "--out", str(tmp_path / "x.npz"), "--peak-model", str(tmp_path / "no.keras")]) == 1
    assert not (tmp_path / "x.npz").exists()
    # a batch without any candidate (Keras cannot predict on an empty array) still gives a file
    quiet = tmp_path / "quiet.yaml"
    quiet.write_text("finder_threshold_rms: 10000\n")
    assert main(["data", "simulate", "--out", str(tmp_path / "q.npz"), "--waveforms", "3", "--no-progress",
                 "--params", str(quiet), "--peak-model", str(tmp_path / "finder.keras")]) == 0
    with np.load(tmp_path / "q.npz") as f:
        assert f["windows"].shape == (0, 15) and f["peak_inputs"].sum() == 0


@pytest.mark.training
def test_cli_simulate_refuses_bad_input_and_writes_nothing(tmp_path, capsys):
    from sweep.cli import main
    from sweep.core.schema import CNN_PARAMS
    from sweep.job.models import build_cnn

    out = tmp_path / "x.npz"
    build_cnn({k: p.default for k, p in CNN_PARAMS.items()}).save(tmp_path / "cnn.keras")
    (tmp_path / "junk.keras").write_text("not a model")
    (tmp_path / "bad.yaml").write_text("noise_rms: 2\n")
    (tmp_path / "broken.yaml").write_text("noise_rms_mv: [1,\n")
    cases = [
        (["--peak-model", str(tmp_path / "cnn.keras")], "takes inputs of shape (1024, 1), expected (15, 1)"),
        (["--peak-model", str(tmp_path / "junk.keras")], "not a readable Keras model"),
        (["--threshold", "0.3"], "--threshold applies to the peaks of --peak-model"),
        (["--params", str(tmp_path / "bad.yaml")], "did you mean 'noise_rms_mv'"),
        (["--params", str(tmp_path / "broken.yaml")], "broken.yaml"),
        (["--params", str(tmp_path / "missing.yaml")], "missing.yaml"),
    ]
    for extra, message in cases:
        capsys.readouterr()
        assert main(["data", "simulate", "--out", str(out), "--waveforms", "3", "--no-progress", *extra]) == 2, extra
        assert message in capsys.readouterr().err.replace("\n", ""), extra
        assert not out.exists()
    for extra in (["--threshold", "0"], ["--threshold", "1.5"], ["--waveforms", "0"], ["--seed", "-1"]):
        with pytest.raises(SystemExit) as e:
            main(["data", "simulate", "--out", str(out), *extra])
        assert e.value.code == 2 and not out.exists()


@pytest.mark.training
def test_a_peak_model_scoring_another_finder_s_candidates_is_warned(tmp_path):
    """model.json says which finder's candidates the model learnt; another finder's is a warning
    that names both (the same finder, or a record from before finders had names: none)."""
    import json

    from sweep.physics.scorers import check_model

    model = tmp_path / "peaks.keras"
    record = {"model": "lstm", "dt_ns": 1 / 1.2, "input": {"normalization": D.WINDOW_NORMALIZATION, "finder": "rise"}}
    model.with_suffix(".json").write_text(json.dumps(record))
    notes = check_model(model, "peak model", 1 / 1.2, "the simulation", normalization=D.WINDOW_NORMALIZATION,
                        finder="slope")
    assert any("'rise' finder" in n and "'slope' finder" in n for n in notes), notes
    assert not check_model(model, "peak model", 1 / 1.2, "the simulation", normalization=D.WINDOW_NORMALIZATION,
                           finder="rise")
    del record["input"]["finder"]  # trained before the finder was recorded: the seed's
    model.with_suffix(".json").write_text(json.dumps(record))
    assert not check_model(model, "peak model", 1 / 1.2, "x", normalization=D.WINDOW_NORMALIZATION, finder="rise")


def test_the_d2_finder_fires_once_where_each_rise_bends_over():
    """DERIV's peak condition as a candidate finder: c[i] = 2 wf[i] - wf[i-1] - wf[i+1] (minus the
    second difference) at its local maxima, on a rise, above the threshold: a candidate where a pulse
    bends over, checked against a plain loop over the rule on noisy waveforms."""
    w = np.zeros((1, 40))
    w[0, 10:] = np.cumsum([1, 3, 4, 2, 1] + [0] * 25)  # rises 1 3 4 2 1 0 ...: c = -2 -1 2 1 1 0 ...
    assert D.find_candidates(w, 0.0, "d2")[1].tolist() == [12, 14]  # it bends over at 12, flattens at 14
    assert D.find_candidates(w, 1.0, "d2")[1].tolist() == [12]  # strict: c > thr
    assert D.find_candidates(w, 2.0, "d2")[1].size == 0
    assert D.find_candidates(-w, 0.0, "d2")[1].size == 0  # a falling edge bends too, but is not a rise
    rng = np.random.default_rng(7)
    noisy = np.tile(w, (50, 1)) + rng.normal(0, 0.4, (50, 40))
    d = np.diff(noisy, axis=1)
    expect = []
    for b in range(50):
        for i in range(D.WINDOW_BEFORE, 40 - D.WINDOW_AFTER):
            c = [d[b, k - 1] - d[b, k] if k <= 38 else -np.inf for k in (i - 1, i, i + 1)]
            if c[1] > 0.5 and d[b, i - 1] > 0 and c[1] >= c[0] and c[1] > c[2]:
                expect.append((b, i))
    got = list(zip(*(a.tolist() for a in D.find_candidates(noisy, 0.5, "d2")), strict=True))
    assert got == expect and len(got) > 50


def test_the_bump_finder_is_ihep_s_rule_and_suppression_keeps_one_per_pulse():
    # d = wf[i] - wf[i-1]: 0 0 1 3 4 2 1 0 ...; IHEP's find_bump fires where d[i] > d[i+1] (the rise slows down)
    w = np.zeros((1, 40))
    w[0, 10:17] = np.cumsum([1, 3, 4, 2, 1, 0, 0])
    d = np.diff(w[0])
    wf, s = D.find_candidates(w, 0.0, "bump")
    assert s.tolist() == [i for i in range(2, 39 - D.WINDOW_AFTER + 1) if d[i - 1] > 0 and d[i - 1] > d[i]]
    assert s.tolist() == [12, 13, 14]  # three candidates on one pulse (rise is one of them, at the steepest point)
    assert D.find_candidates(w, 0.0, "rise")[1].tolist() == [12]
    # a threshold applies to the rise d[i]
    assert D.find_candidates(w, 2.5, "bump")[1].tolist() == [12]
    # suppression within ± 1 sample keeps the best-scoring one of a run, and both of two apart
    keep = D.suppress_nearby(np.zeros(3, int), s, np.array([0.2, 0.9, 0.5]), 1)
    assert keep.tolist() == [False, True, False]
    keep = D.suppress_nearby(np.array([0, 0, 1]), np.array([12, 14, 13]), np.array([0.9, 0.5, 0.1]), 1)
    assert keep.tolist() == [True, True, True]  # 12 and 14 are 2 apart; 13 is another waveform's
    keep = D.suppress_nearby(np.zeros(2, int), np.array([5, 6]), np.array([0.5, 0.5]), 1)
    assert keep.tolist() == [True, False]  # a tie: the earlier one
    assert D.suppress_nearby(np.zeros(2, int), np.array([5, 6]), np.array([0.5, 0.9]), 0).all()
