"""A job killed after epoch k resumes from its checkpoint at epoch k+1: history.csv has every
epoch once, and the result equals that of a job that never stopped (same batches in the same
order, same optimizer and random-seed state)."""

from __future__ import annotations

import pytest

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from tests.conftest import grid_text

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 4  # killed once 2 are checkpointed: at least one left to train after the kill


def _config(tmp_path: Path, small_dataset: Path) -> Path:
    from sweep.submit.prepare import prepare

    grid = tmp_path / "resume.yaml"
    grid.write_text(grid_text(small_dataset, sweep="resume", axes="  optimizer: [adam]\n", epochs=EPOCHS,
                              max_samples=3000).replace("patience: 5", "patience: 50"))
    (run,) = prepare(grid, tmp_path).rendered.runs
    return run


def _job(folder: Path, config_text: str) -> subprocess.Popen:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(config_text)
    env = {**os.environ, "PYTHONPATH": str(REPO), "SWEEP_CPUS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("_CONDOR_JOB_AD", None)
    return subprocess.Popen([sys.executable, "-m", "sweep.job", "config.yaml"], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.training
def test_a_killed_job_resumes_at_its_last_epoch_and_ends_as_a_straight_one(tmp_path, small_dataset):
    run = _config(tmp_path, small_dataset)
    straight = _job(tmp_path / "straight", run.config_text)
    out, _ = straight.communicate(timeout=600)
    assert straight.returncode == 0, out

    resumed_dir = tmp_path / "resumed"
    first = _job(resumed_dir, run.config_text)
    state = resumed_dir / "checkpoint" / "state.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # SIGKILL once epoch 2 is checkpointed: a real kill, mid-training
        if state.is_file() and json.loads(state.read_text())["epochs_done"] >= 2:
            break
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    done = json.loads(state.read_text())["epochs_done"]
    assert 2 <= done < EPOCHS
    second = _job(resumed_dir, run.config_text)
    out, _ = second.communicate(timeout=600)
    assert second.returncode == 0, out
    assert f"resuming after epoch {done} from checkpoint/" in out

    a = pd.read_csv(tmp_path / "straight" / "history.csv")
    b = pd.read_csv(resumed_dir / "history.csv")
    assert list(b["epoch"]) == list(range(1, EPOCHS + 1))  # each epoch once
    ma = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    mb = json.loads((resumed_dir / "metrics.json").read_text())
    assert mb["resumed_from_epoch"] == done and "resumed_from_epoch" not in ma
    # the same batches, weights, optimizer and dropout state: equal up to float rounding
    diff = (a["val_loss"] - b["val_loss"]).abs().max()
    assert diff < 1e-4, (a["val_loss"].tolist(), b["val_loss"].tolist())
    assert abs(ma["test"]["f1"] - mb["test"]["f1"]) < 1e-3 and abs(ma["test"]["auc"] - mb["test"]["auc"]) < 1e-4
    assert not (resumed_dir / "checkpoint").exists()  # finished: nothing to resume, nothing to transfer back


@pytest.mark.training
def test_a_checkpoint_of_another_run_or_of_older_data_is_not_resumed(tmp_path):
    from sweep.job import checkpoint

    ckpt = tmp_path / "checkpoint"
    ckpt.mkdir()
    (ckpt / "model.keras").write_bytes(b"a model")
    (ckpt / "state.json").write_text(json.dumps({"key": "run1:sha-old", "epochs_done": 3, "rows": []}))
    assert checkpoint.load(tmp_path, "run1:sha-old").epochs_done == 3
    assert checkpoint.load(tmp_path, "run1:sha-new") is None  # the dataset changed: train from epoch 1
    assert checkpoint.load(tmp_path, "run2:sha-old") is None
    (ckpt / "state.json").write_text("{torn")
    assert checkpoint.load(tmp_path, "run1:sha-old") is None


@pytest.mark.training
def test_inside_htcondor_the_checkpoint_is_written_only_when_it_is_handed_over(tmp_path, monkeypatch):
    """An HTCondor job's scratch folder is gone after an eviction: only what it hands over with
    exit 85 is kept, so it writes its checkpoint then and not after every epoch. Outside HTCondor
    (the local backend), a killed job resumes in the same folder: every epoch."""
    import keras
    import numpy as np

    from sweep.job import checkpoint

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((8, 2), dtype="float32"), np.zeros((8,), dtype="float32")

    def fit(folder, every_s, epochs=3):
        folder.mkdir()
        stopper = keras.callbacks.EarlyStopping(patience=10)
        saver = checkpoint.make_callback(folder, "run:sha", [], stopper, every_s, None, None)
        model.fit(x, y, epochs=epochs, callbacks=[stopper, saver], verbose=0)
        state = checkpoint.load(folder, "run:sha")
        return state.epochs_done if state else None

    monkeypatch.setenv("_CONDOR_JOB_AD", str(tmp_path / ".job.ad"))
    assert fit(tmp_path / "not-due", 3600.0) is None  # never due: nothing written
    with pytest.raises(checkpoint.CheckpointExit):
        fit(tmp_path / "due", 0.0)  # due after the first epoch: written, then handed over
    assert checkpoint.load(tmp_path / "due", "run:sha").epochs_done == 1
    monkeypatch.delenv("_CONDOR_JOB_AD")
    assert fit(tmp_path / "local", None) == 3  # every epoch
