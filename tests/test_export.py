"""`sweep export onnx` and sweep.deploy: a peak finder and a clusterizer trained for real (small),
exported through Keras's ONNX exporter, checked against Keras at export (a check that cannot be
met is an error and nothing is written), and run by the reference consumer in a process without
TensorFlow, which finds the same peaks and counts as sweep's Keras path on the same waveforms."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from sweep.cli import main
from sweep.physics import datasets as D
from tests.conftest import REPO
from tests.synthetic import make_sweep

pytestmark = pytest.mark.training


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small LSTM and CNN trained for real on a 200-waveform simulation, with their training
    records written by the job's own code."""
    import keras

    from sweep.fsutil import file_digest
    from sweep.job.models import build_cnn, build_lstm
    from sweep.job.training import training_record

    root = tmp_path_factory.mktemp("trained")
    data = root / "train.npz"
    D.simulate_to_file(data, 200, 11)
    keras.utils.set_random_seed(0)
    out = {}
    for kind in ("lstm", "cnn"):
        if kind == "lstm":
            X, y = D.load_peak_dataset(data, seed=0, max_samples=6000)
            model = build_lstm({"topology": [16, 16, 1], "activations": ["relu", "sigmoid"], "dropout": [0.0, 0.0]})
            model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy")
        else:
            X, y = D.load_cluster_dataset(data)
            model = build_cnn({"filters": [4, 4], "kernel_sizes": [5, 3], "dense_units": [8], "activation": "relu",
                               "pool_size": 2, "dropout": 0.0, "convs_per_block": 1, "head": "flatten"})
            model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
        model.fit(X, y, epochs=4, batch_size=128, verbose=0)
        path = root / kind / "model.keras"
        path.parent.mkdir()
        model.save(path)
        record = training_record({"model": kind, "run_id": f"r-{kind}", "sweep": "t"}, data,
                                 file_digest(data)["sha256"])
        path.with_name("model.json").write_text(json.dumps(record.to_json()))
        out[kind] = path
    return out


def test_both_models_export_checked_and_the_consumer_without_tensorflow_matches_keras(trained, tmp_path):
    from sweep.physics.export import export_onnx
    from sweep.physics.notruth import event_counts
    from sweep.physics.scorers import load_model_fn
    from sweep.physics.simulate import SimulationParams, simulate_batch

    peaks = export_onnx(trained["lstm"], tmp_path / "peaks", threshold=0.6)
    clusters = export_onnx(trained["cnn"], tmp_path / "clusters")
    for d, folder in ((peaks, tmp_path / "peaks"), (clusters, tmp_path / "clusters")):
        assert sorted(p.name for p in folder.iterdir()) == ["deploy.json", "model.onnx"]
        assert d.check["inputs"] >= 1000 and d.check["max_diff"] <= 1e-5 and d.opset >= 13
        assert d.input_shape[0] is None and d.dt_ns == pytest.approx(1 / 1.2)
    assert peaks.inputs["before"] == 5 and peaks.inputs["after"] == 9 and peaks.threshold == 0.6
    assert peaks.inputs["normalization"] == D.WINDOW_NORMALIZATION and clusters.inputs["bins"] == 1024
    # the same waveforms through sweep's Keras path here and through sweep.deploy in a process
    # where TensorFlow cannot be imported
    p = SimulationParams()
    w = simulate_batch(p, 60, np.random.default_rng(4)).waveforms_mv
    np.save(tmp_path / "w.npy", w)
    keras_counts = event_counts(w, p, load_model_fn(str(trained["lstm"]), input_shape=(15, 1)),
                                load_model_fn(str(trained["cnn"]), input_shape=(1024, 1)), 0.6)
    script = f"""
import sys
sys.modules["tensorflow"] = sys.modules["keras"] = None
import json, numpy as np
import sweep.deploy as deploy
w = np.load({str(tmp_path / 'w.npy')!r})
finder, counter = deploy.load({str(tmp_path / 'peaks')!r}), deploy.load({str(tmp_path / 'clusters')!r})
wf, sample, score = finder.peaks(w, dt_ns={p.dt_ns!r})
counts = counter.counts(len(w), wf, sample, dt_ns={p.dt_ns!r})
print(json.dumps({{"peaks": np.bincount(wf, minlength=len(w)).tolist(), "counts": counts.tolist(),
                  "min_score": float(score.min()) if score.size else 1.0}}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["peaks"] == keras_counts["lstm_npeaks"].astype(int).tolist() and sum(got["peaks"]) > 0
    assert got["min_score"] >= 0.6
    assert np.max(np.abs(np.asarray(got["counts"]) - keras_counts["lstm_cnn"])) < 1e-4
    import sweep.deploy as deploy
    from sweep.core.errors import InputError

    with pytest.raises(InputError, match="sampled every 0.5 ns"):
        deploy.load(tmp_path / "peaks").peaks(w, dt_ns=0.5)
    # a model file changed after its check is refused
    (tmp_path / "clusters" / "model.onnx").write_bytes((tmp_path / "peaks" / "model.onnx").read_bytes())
    with pytest.raises(InputError, match="not the model exported and checked with this deploy.json"):
        deploy.load(tmp_path / "clusters")


def test_an_export_whose_check_fails_is_an_error_and_leaves_nothing(trained, tmp_path):
    from sweep.physics.export import export_onnx
    from sweep.physics.scorers import ModelError

    # a tolerance of 0: float32 arithmetic in another order always differs somewhere
    with pytest.raises(ModelError, match=r"ONNX Runtime and Keras differ by .* on \d+ held-out inputs \(allowed 0\)"):
        export_onnx(trained["lstm"], tmp_path / "peaks", tolerance=0.0)
    assert not (tmp_path / "peaks").exists() and not list(tmp_path.iterdir())
    trained_json = trained["lstm"].with_name("model.json")
    saved = trained_json.read_text()
    trained_json.unlink()
    try:
        with pytest.raises(ModelError, match="no training record beside it"):
            export_onnx(trained["lstm"], tmp_path / "peaks")
    finally:
        trained_json.write_text(saved)


def test_sweep_export_onnx_exports_a_sweep_s_best_run(trained, tmp_path, capsys):
    import shutil

    manifest = make_sweep(tmp_path, "syn", corrupt=0, missing=0)
    best = max(manifest["truth"], key=manifest["truth"].get)
    for name in ("model.keras", "model.json"):
        shutil.copy(trained["lstm"].with_name(name), tmp_path / "results" / "syn" / best / name)
    assert main(["--root", str(tmp_path), "export", "onnx", "syn", "--threshold", "0.9"]) == 0
    out = capsys.readouterr().out
    assert f"run {best} of syn: results/syn/onnx/{best}/model.onnx (opset" in out and "working point 0.9" in out
    assert (tmp_path / "results" / "syn" / "onnx" / best / "deploy.json").is_file()
    assert main(["--root", str(tmp_path), "export", "onnx", "syn", "--rank", "99"]) == 2
    assert "ranked run(s): no rank 99" in capsys.readouterr().err


def test_sweep_export_onnx_exports_a_chain_s_two_leaders_at_its_working_point(trained, tmp_path, capsys):
    import shutil

    record = json.loads((REPO / "tests" / "data" / "records" / "chain-done.json").read_text())
    record["stages"]["simulate"]["threshold"] = 0.8
    results = tmp_path / "results" / "tiny"
    results.mkdir(parents=True)
    for stage, kind in (("peaks", "lstm"), ("clusters", "cnn")):  # the leaders the chain kept, with their records
        shutil.copy(trained[kind], results / f"{stage}-leader.keras")
        shutil.copy(trained[kind].with_name("model.json"), results / f"{stage}-leader.json")
        record["stages"][stage]["leader"]["model"] = f"results/tiny/{stage}-leader.keras"
    (results / "chain.json").write_text(json.dumps(record))
    assert main(["--root", str(tmp_path), "export", "onnx", "tiny", "--rank", "1"]) == 2
    assert "tiny is a chain: it exports its two leaders" in capsys.readouterr().err
    assert main(["--root", str(tmp_path), "export", "onnx", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "the peaks leader of chain tiny: results/tiny/onnx/peaks/model.onnx" in out and "working point 0.8" in out
    assert "the clusters leader of chain tiny: results/tiny/onnx/clusters/model.onnx" in out
    deployed = {s: json.loads((results / "onnx" / s / "deploy.json").read_text()) for s in ("peaks", "clusters")}
    assert deployed["peaks"]["threshold"] == 0.8 and deployed["peaks"]["model"] == "lstm"
    assert deployed["clusters"]["model"] == "cnn" and "threshold" not in deployed["clusters"]
