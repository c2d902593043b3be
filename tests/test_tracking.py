"""`sweep export tensorboard` and `sweep export mlflow` (sweep.collect.tracking), each export opened
by the tracker's own tool: the real TensorBoard server (its scalars and HParams HTTP API, as its
frontend asks them) and MLflow's client on the SQLite store. The sweep is a finished synthetic one
(tests/synthetic.py: real record files, no TensorFlow)."""

from __future__ import annotations

import csv
import json
import os
import queue
import re
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from sweep.collect.gather import collect
from sweep.collect.tracking import (EXPORT_MARKER, MLFLOW_ARTIFACTS, MLFLOW_DB, TENSORBOARD_DIR, export_mlflow,
                                    export_tensorboard, read_history)
from sweep.core.errors import InputError, NotFoundError, ResultsError
from tests.conftest import REPO
from tests.synthetic import make_sweep

SWEEP = "trk"
AXES = {"optimizer": ["adam", "sgd"], "learning_rate": [0.001, 0.01], "topology": [[32, 64, 1]]}
EPOCHS = 4
DATASET_SHA256 = "ab" * 32


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, list[str]]:
    """A finished sweep of 4 configurations × 2 repeats (one run corrupt, one missing: 6 ranked),
    its manifest naming a dataset, each run with a model.json; (root, the ranked run ids)."""
    root = tmp_path / "project"
    make_sweep(root, SWEEP, axes=AXES, repeats=2, epochs=EPOCHS)
    path = root / "jobs" / SWEEP / "sweep.json"
    manifest = json.loads(path.read_text())
    manifest["dataset"] = {"path": str(root / "data" / "gone.npz"), "sha256": DATASET_SHA256, "size": 1,
                           "mtime_ns": 0}
    path.write_text(json.dumps(manifest))
    for run in (root / "results" / SWEEP).iterdir():
        if (run / "model.keras").is_file():
            (run / "model.json").write_text(json.dumps({"model": "lstm", "run_id": run.name, "sweep": SWEEP}))
    ranked = [str(r) for r in collect(SWEEP, root, write_csv=False).table["run_id"]]
    assert len(ranked) == 6
    return root, ranked


def _history(root: Path, run_id: str) -> dict[str, list[tuple[int, float]]]:
    """history.csv as the job wrote it: column -> [(epoch, value)]."""
    with open(root / "results" / SWEEP / run_id / "history.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {c: [(int(r["epoch"]), float(r[c])) for r in rows] for c in rows[0] if c != "epoch"}


def _tree(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------ TensorBoard

class TensorBoard:
    """The real `tensorboard` server on a free port of 127.0.0.1, its temporary files in `tmp`."""

    def __init__(self, logdir: Path, tmp: Path):
        tmp.mkdir(exist_ok=True)
        # --load_fast=false: TensorBoard's own Python loader (the Rust data server is optional)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--port", "0", "--host",
             "127.0.0.1", "--load_fast=false"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            cwd=tmp, env={**os.environ, "TMPDIR": str(tmp)})
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        self.url = self._address()
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _drain(self) -> None:
        for line in self.process.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def _address(self) -> str:
        while True:
            try:
                line = self.lines.get(timeout=120)
            except queue.Empty:
                raise AssertionError("tensorboard printed no address:\n" + "".join(self.output)) from None
            if line is None:
                raise AssertionError("tensorboard ended:\n" + "".join(self.output))
            self.output.append(line)
            found = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
            if found:
                return found.group(1)

    def get(self, path: str, body: dict | None = None):
        """GET (or POST `body` as JSON, as the HParams frontend does) and parse the answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        with self.opener.open(request, timeout=60) as answer:
            return json.loads(answer.read())

    def wait_for_runs(self, runs: set[str]) -> None:
        """Until TensorBoard's first load of the log folder lists every run."""
        for _ in range(600):
            if runs <= set(self.get("/data/runs")):
                return
            try:
                self.process.wait(timeout=0.2)
                raise AssertionError("tensorboard ended:\n" + "".join(self.output))
            except subprocess.TimeoutExpired:
                pass
        raise AssertionError(f"tensorboard never listed {sorted(runs)}: {self.get('/data/runs')}")

    def close(self) -> None:
        """Stop it (SIGTERM: it removes its own .tensorboard-info record)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def test_tensorboard_export_opened_by_tensorboard(project, tmp_path):
    root, ranked = project
    # the first export in a process of its own: the collect stage never imports TensorFlow
    code = ("import sys; from pathlib import Path; from sweep.collect.tracking import export_tensorboard; "
            f"export_tensorboard({SWEEP!r}, Path({str(root)!r})); "
            "assert not {'tensorflow', 'keras'} & set(sys.modules), 'TensorFlow imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    # a re-export replaces the first: one point per epoch, not two
    export = export_tensorboard(SWEEP, root)
    logdir = root / "results" / SWEEP / TENSORBOARD_DIR
    assert export.location == str(logdir) and export.runs == len(ranked)
    assert export.command == f"tensorboard --logdir {logdir}"
    assert sorted(p.name for p in logdir.iterdir() if p.is_dir()) == sorted(ranked)
    assert all(len(list((logdir / run).iterdir())) == 1 for run in ranked)  # one event file per run
    assert not [p for p in logdir.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left

    board = TensorBoard(logdir, tmp_path / "tensorboard-tmp")
    try:
        board.wait_for_runs(set(ranked))
        tags = board.get("/data/plugin/scalars/tags")
        for run in ranked:
            history = _history(root, run)
            assert set(history) | {"test/f1", "test/auc", "test/eff_purity"} <= set(tags[run])
            for column, points in history.items():
                curve = board.get(f"/data/plugin/scalars/scalars?run={run}&tag={column}")
                assert [step for _, step, _ in curve] == [epoch for epoch, _ in points] == list(range(1, EPOCHS + 1))
                assert [v for _, _, v in curve] == pytest.approx([v for _, v in points], rel=1e-6)
        experiment = board.get("/data/plugin/hparams/experiment", {"experimentName": ""})
        hparams = {h["name"]: h for h in experiment["hparamInfos"]}
        assert set(hparams) == set(AXES)
        assert hparams["optimizer"]["domainDiscrete"] == ["adam", "sgd"]
        assert hparams["learning_rate"]["type"] == "DATA_TYPE_FLOAT64"
        metrics = [m["name"]["tag"] for m in experiment["metricInfos"]]
        assert metrics[:3] == ["test/f1", "test/auc", "test/eff_purity"]  # the ranking first
        groups = board.get("/data/plugin/hparams/session_groups", {
            "experimentName": "", "allowedStatuses": ["STATUS_SUCCESS", "STATUS_UNKNOWN"], "colParams": [],
            "startIndex": 0, "sliceSize": 100})["sessionGroups"]
        manifest = json.loads((root / "jobs" / SWEEP / "sweep.json").read_text())
        entries = {r["run_id"]: r for r in manifest["runs"]}
        sessions = {s["name"]: (g, s) for g in groups for s in g["sessions"]}
        assert set(sessions) == set(ranked)  # the HParams table: every ranked run
        for run in ranked:
            group, session = sessions[run]
            assert group["name"] == entries[run]["config_id"]  # repeats of a configuration: one group
            swept = entries[run]["swept"]
            assert group["hparams"] == {"optimizer": swept["optimizer"], "learning_rate": swept["learning_rate"],
                                        "topology": "[32,64,1]"}
            f1 = json.loads((root / "results" / SWEEP / run / "metrics.json").read_text())["test"]["f1"]
            value = {m["name"]["tag"]: m["value"] for m in session["metricValues"]}["test/f1"]
            assert value == pytest.approx(f1, rel=1e-6)
            assert session["status"] == "STATUS_SUCCESS"
    finally:
        board.close()
    assert not list((tmp_path / "tensorboard-tmp" / ".tensorboard-info").glob("*"))


def test_tensorboard_export_replaces_only_its_own_folder(project, tmp_path):
    root, _ = project
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match=EXPORT_MARKER):
        export_tensorboard(SWEEP, root, out=foreign)
    assert _tree(foreign) == {"notes.txt": 7}
    export = export_tensorboard(SWEEP, root, out=tmp_path / "tb")
    assert (tmp_path / "tb" / EXPORT_MARKER).is_file() and export.location == str(tmp_path / "tb")


def test_history_read_as_untrusted(tmp_path):
    (tmp_path / "history.csv").write_text(
        "epoch,loss,note,bad\x1bname,val_loss,loss\n"
        "1,0.5,x,1,inf,9\n"
        "2,nan,y,2,0.4,9\n"
        "2.5,0.1,z,3,0.3,9\n"
        "3,0.25\n")
    assert read_history(tmp_path / "history.csv") == {1: {"loss": 0.5}, 2: {"val_loss": 0.4}, 3: {"loss": 0.25}}
    link = tmp_path / "linked"
    link.mkdir()
    (link / "history.csv").symlink_to(tmp_path / "history.csv")
    assert read_history(link / "history.csv") == {}
    (tmp_path / "no-epoch.csv").write_text("loss\n0.5\n")
    assert read_history(tmp_path / "no-epoch.csv") == {}
    assert read_history(tmp_path / "absent.csv") == {}


# ------------------------------------------------------------------ MLflow

def test_mlflow_export_opened_by_mlflow(project):
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    root, ranked = project
    results = root / "results" / SWEEP
    export_mlflow(SWEEP, root)
    export = export_mlflow(SWEEP, root)  # a re-export replaces the first: no run doubled
    uri = f"sqlite:///{results / MLFLOW_DB}"
    assert (export.location, export.runs) == (uri, len(ranked))
    assert export.command == f"mlflow ui --backend-store-uri {uri}"

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(SWEEP)
    assert experiment.artifact_location == (results / MLFLOW_ARTIFACTS).as_uri()
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and len(runs) == 1 + len(ranked)
    parent = parents[0]
    assert parent.info.run_name == SWEEP and parent.info.status == "FINISHED"
    assert parent.data.params["model"] == "lstm"
    assert parent.data.params["ranking"] == "f1:max,auc:max,eff_purity:max"
    deleted = client.search_runs([experiment.experiment_id], run_view_type=ViewType.DELETED_ONLY, max_results=1000)
    assert len(deleted) == 1 + len(ranked)  # the first export's runs

    manifest = json.loads((root / "jobs" / SWEEP / "sweep.json").read_text())
    entries = {r["run_id"]: r for r in manifest["runs"]}
    children = {r.data.tags["sweep.run_id"]: r for r in runs if r is not parent}
    assert set(children) == set(ranked)
    for rank, run_id in enumerate(ranked, start=1):
        child = children[run_id]
        entry = entries[run_id]
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.run_name == entry["name"] and child.info.status == "FINISHED"
        assert child.data.tags["sweep.config_id"] == entry["config_id"]
        assert child.data.tags["sweep.rank"] == str(rank)
        assert child.data.tags["sweep.dataset_sha256"] == DATASET_SHA256
        assert child.data.params == {"optimizer": entry["swept"]["optimizer"],
                                     "learning_rate": str(entry["swept"]["learning_rate"]), "topology": "[32,64,1]"}
        for column, points in _history(root, run_id).items():
            logged = client.get_metric_history(child.info.run_id, column)
            assert sorted((m.step, m.value) for m in logged) == points  # one point per epoch, exact
        test = json.loads((results / run_id / "metrics.json").read_text())["test"]
        assert child.data.metrics["test/f1"] == test["f1"]
        artifacts = {a.path: a.file_size for a in client.list_artifacts(child.info.run_id, "model")}
        assert artifacts == {"model/model.keras": (results / run_id / "model.keras").stat().st_size,
                             "model/model.json": (results / run_id / "model.json").stat().st_size}
    assert not [p for p in results.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_mlflow_missing_is_a_clean_error(project, monkeypatch):
    root, _ = project
    for name in ("mlflow", "mlflow.entities", "mlflow.tracking"):
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    before = _tree(root)
    with pytest.raises(NotFoundError, match=re.escape("pip install 'sweep[mlflow]'")):
        export_mlflow(SWEEP, root)
    assert _tree(root) == before


@pytest.mark.parametrize("export", [export_tensorboard, export_mlflow])
def test_unknown_sweep_writes_nothing(project, export):
    root, _ = project
    before = _tree(root)
    with pytest.raises(ResultsError, match="no sweep 'nope'"):
        export("nope", root)
    assert _tree(root) == before and not (root / "results" / "nope").exists()


def test_the_cli_exports_and_says_how_to_open_it(project, capsys):
    from sweep.cli import main

    root, ranked = project
    assert main(["--root", str(root), "export", "tensorboard", SWEEP]) == 0
    out = capsys.readouterr().out
    assert f"{len(ranked)} ranked run(s) exported for tensorboard" in out
    assert f"open it with: tensorboard --logdir {root / 'results' / SWEEP / 'tensorboard'}" in out
    assert main(["--root", str(root), "export", "mlflow", "nope"]) == 1
    assert "nope" in capsys.readouterr().err
