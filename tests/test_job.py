"""The execute-side job: the seed's model, real Keras training on small data, its output files."""

import json
import subprocess
import sys

import pytest

from sweep.submit.prepare import prepare, write_rendered
from tests.conftest import grid_text


@pytest.mark.training
@pytest.mark.parametrize("topology, expected", [([96, 128, 1], 50_179), ([32, 64, 1], 6_531), ([128, 96, 1], 79_043)])
def test_lstm_parameter_counts_equal_the_seed(topology, expected):
    from sweep.job.models import build_lstm

    model = build_lstm({"topology": topology, "activations": ["relu", "selu"], "dropout": [0.1, 0.1]})
    assert model.count_params() == expected
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["LSTM", "Flatten", "Dense", "Dropout", "Dense", "Dropout", "Dense"]
    assert model.layers[-1].activation.__name__ == "sigmoid"


@pytest.mark.training
def test_cnn_takes_1024_peak_time_arrays():
    from sweep.core.schema import CNN_PARAMS
    from sweep.job.models import build_cnn

    params = {k: p.default for k, p in CNN_PARAMS.items()}
    model = build_cnn(params)
    assert model.input_shape == (None, 1024, 1) and model.output_shape == (None, 1)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Conv1D", "MaxPooling1D", "Conv1D", "MaxPooling1D", "Flatten", "Dense", "Dropout", "Dense"]


@pytest.mark.training
def test_cnn_blocks_and_global_average_head():
    from sweep.core.schema import CNN_PARAMS
    from sweep.job.models import build_cnn

    params = {**{k: p.default for k, p in CNN_PARAMS.items()}, "filters": [8, 16], "kernel_sizes": [7, 5],
              "convs_per_block": 2, "pool_size": 2, "head": "global_average", "dense_units": [32]}
    model = build_cnn(params)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Conv1D", "Conv1D", "MaxPooling1D", "Conv1D", "Conv1D", "MaxPooling1D",
                     "GlobalAveragePooling1D", "Dense", "Dropout", "Dense"]
    # conv weights (k·in·out + out) + dense 16→32 + 32→1: independent of the input length
    convs = (7 * 1 * 8 + 8) + (7 * 8 * 8 + 8) + (5 * 8 * 16 + 16) + (5 * 16 * 16 + 16)
    assert model.count_params() == convs + (16 * 32 + 32) + (32 + 1)
    assert build_cnn(params, length=2048).count_params() == model.count_params()


def _render_one(tmp_path, dataset, extra=""):
    grid = tmp_path / "g.yaml"
    grid.write_text(grid_text(dataset, axes="  optimizer: [adam]\n", extra=extra))
    prepared = prepare(grid, tmp_path)
    write_rendered(prepared, grid)
    return prepared.rendered.runs[0]


def _run_job(run, env_extra=None):
    """The run's job as a backend starts it: the sweep's config.yaml and the run's --run argument."""
    run.results_dir.mkdir(parents=True, exist_ok=True)
    (run.results_dir / "config.yaml").write_text(run.config_path.read_text())
    return _run_in(run.results_dir, env_extra, ["--run", run.config_argument])


def _run_in(folder, env_extra=None, arguments=()):
    """`python -m sweep.job config.yaml [arguments]` in `folder`, as the local backend runs it (1 CPU)."""
    import os

    env = {**os.environ, "SWEEP_CPUS": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "sweep.job", "config.yaml", *arguments], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, small_dataset):
    """One real job of the demo-sized grid, trained once for the tests that only read what it left
    (a TensorFlow process start and a training each: shared, not repeated per assertion)."""
    root = tmp_path_factory.mktemp("trained")
    run = _render_one(root, small_dataset)
    proc = _run_job(run)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (root / "job.stderr").write_text(proc.stderr)  # for the test of what the job imports and prints
    return run


@pytest.mark.training
def test_job_trains_and_writes_every_output(trained_run, small_dataset):
    import keras

    run = trained_run
    out = run.results_dir
    metrics = json.loads((out / "metrics.json").read_text())
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "ok" and info["exit_code"] == 0
    assert info["seed"] == run.run.seed and info["run_id"] == run.run.run_id
    assert {"python", "tensorflow", "keras", "numpy", "sweep"} <= set(info["software"])
    assert info["threads"] == {"cpus": 1, "cpus_source": "SWEEP_CPUS (local backend)", "intra_op": 1, "inter_op": 1}
    assert metrics["n_params"] == 6_531
    assert metrics["epochs_run"] == 2 and 1 <= metrics["best_epoch"] <= 2
    assert metrics["n_train"] + metrics["n_val"] + metrics["n_test"] == 5000
    test = metrics["test"]
    assert set(test) >= {"precision", "recall", "f1", "accuracy", "auc", "eff_purity"}
    assert test["auc"] > 0.8 and test["f1"] > 0.6, test  # it learned something in 2 epochs
    assert test["eff_purity"] == pytest.approx(test["precision"] * test["recall"])
    history = (out / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,loss,accuracy,precision,recall,f1,eff_purity,val_loss")
    assert len(history) == 3
    roc = (out / "roc.csv").read_text().splitlines()
    assert roc[0] == "fpr,tpr,threshold" and len(roc) > 10
    model = keras.models.load_model(out / "model.keras")
    assert model.count_params() == 6_531
    # beside the model: what it was trained on (checked where it is applied)
    from sweep.physics.datasets import read_meta

    record = json.loads((out / "model.json").read_text())
    meta = read_meta(small_dataset)
    assert record["dt_ns"] == meta["dt_ns"] and record["n_samples"] == meta["n_samples"]
    assert record["dataset"]["sha256"] == metrics["dataset"]["sha256"] and record["simulation"] == meta["params"]
    assert record["input"]["window"] == 15 and record["model"] == "lstm"
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]  # atomic writes left nothing behind


@pytest.mark.training
def test_the_job_imports_tensorflow_quietly_and_without_pandas_or_scikit_learn(trained_run):
    # TensorFlow and Keras import both only to take their objects as inputs, which sweep never
    # passes (about 1.2 s of CPU of every job); the job's stderr is the user's, not TensorFlow's
    root = next(p for p in trained_run.results_dir.parents if (p / "job.stderr").is_file())
    stderr = (root / "job.stderr").read_text()
    software = json.loads((trained_run.results_dir / "run.json").read_text())["software"]
    assert "tensorflow" in software and "sklearn" not in software
    assert "oneDNN" not in stderr and "cpu_feature_guard" not in stderr and "absl::InitializeLog" not in stderr


@pytest.mark.training
def test_same_seed_gives_identical_results(trained_run, tmp_path):
    """The same configuration trained again, in another folder: the same test metrics."""
    import shutil

    again = tmp_path / "again"
    again.mkdir()
    shutil.copy(trained_run.results_dir / "config.yaml", again / "config.yaml")
    second = _run_in(again, None, ["--run", trained_run.config_argument])
    assert second.returncode == 0, second.stderr[-2000:]
    a = json.loads((trained_run.results_dir / "metrics.json").read_text())["test"]
    b = json.loads((again / "metrics.json").read_text())["test"]
    assert a == b


def test_missing_dataset_fails_cleanly(tmp_path, small_dataset):
    """A job without its dataset ends with exit 2 and why, before TensorFlow is started."""
    run = _render_one(tmp_path, small_dataset)
    config = run.config_path.read_text().replace(str(small_dataset), str(tmp_path / "gone.npz"))
    config = config.replace("file: small.npz", "file: gone.npz")
    run.config_path.write_text(config)
    proc = _run_job(run)
    assert proc.returncode == 2
    info = json.loads((run.results_dir / "run.json").read_text())
    assert info["status"] == "failed" and "dataset not found" in info["error"]
    assert "device" not in info  # TensorFlow (which says the device) was never started
    assert not (run.results_dir / "metrics.json").exists()


def test_bad_config_file_fails_with_exit_2(tmp_path):
    (tmp_path / "config.yaml").write_text("just: [a, list\n")
    proc = subprocess.run([sys.executable, "-m", "sweep.job", "config.yaml"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "failed"


def test_cpus_from_htcondor_machine_ad(tmp_path, monkeypatch):
    from sweep.job.resources import allocated_cpus, thread_settings

    ad = tmp_path / ".machine.ad"
    ad.write_text('Cpus = 3\nMemory = 2048\nName = "slot1_1@host"\n')
    monkeypatch.delenv("SWEEP_CPUS", raising=False)
    monkeypatch.setenv("_CONDOR_MACHINE_AD", str(ad))
    assert allocated_cpus(8) == (3, "HTCondor machine ad (Cpus)")
    monkeypatch.delenv("_CONDOR_MACHINE_AD")
    assert allocated_cpus(4) == (4, "config request_cpus")
    assert thread_settings(1) == (1, 1) and thread_settings(4) == (4, 2)


@pytest.mark.training
def test_the_peak_finder_is_tested_on_waveforms_it_never_trained_on(trained_run, small_dataset):
    """Windows of one waveform overlap and share its noise: the split is by waveform, the same
    test waveforms for every run of a sweep (the data seed), and the natural-mix metrics score
    every candidate window of those test waveforms."""
    import numpy as np

    from sweep.job.training import split_by_waveform
    from sweep.physics.datasets import load_peak_windows

    x, y, groups = load_peak_windows(small_dataset, balanced=True, max_samples=5000, seed=5)
    tr, va, te, counts = split_by_waveform(groups, 0.2, 0.7, seed=5)
    assert sorted(np.concatenate([tr, va, te]).tolist()) == list(range(len(x)))  # every window, once
    train_wf, val_wf, test_wf = (set(groups[i].tolist()) for i in (tr, va, te))
    assert not (test_wf & train_wf) and not (test_wf & val_wf) and not (train_wf & val_wf)
    assert counts["test_waveforms"] == len(test_wf) == round(0.2 * len(set(groups.tolist())))
    # the same data seed gives the same test waveforms, whatever the run; another seed others
    assert set(groups[split_by_waveform(groups, 0.2, 0.7, seed=5)[2]].tolist()) == test_wf
    assert set(groups[split_by_waveform(groups, 0.2, 0.7, seed=6)[2]].tolist()) != test_wf
    # what a per-window split of the shuffled windows (the earlier way) gave: every test waveform also trained
    n_test = round(len(x) * 0.2)
    assert len(set(groups[:n_test].tolist()) & set(groups[n_test:].tolist())) > 0.9 * len(set(groups[:n_test].tolist()))

    metrics = json.loads((trained_run.results_dir / "metrics.json").read_text())
    split = metrics["split"]
    assert split["by"] == "waveform"
    assert (split["train_waveforms"], split["val_waveforms"], split["test_waveforms"]) == (
        counts["train_waveforms"], counts["val_waveforms"], counts["test_waveforms"])  # the job split as above
    assert (metrics["n_train"], metrics["n_val"], metrics["n_test"]) == (len(tr), len(va), len(te))
    assert split["natural_waveforms"] == split["test_waveforms"] and split["natural_windows"] > metrics["n_test"]
    assert 0.02 < split["natural_signal_fraction"] < 0.2  # the natural mix is mostly noise
    test = metrics["test"]
    assert {"natural_precision", "natural_recall", "natural_f1", "natural_eff_purity"} <= set(test)
    assert test["natural_precision"] < test["precision"]  # the same finder keeps more noise in the natural mix
