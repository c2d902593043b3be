"""The two-step chain (`sweep chain`) on this machine: a pipeline file's errors with their
positions, a real chain (real LSTM and CNN trainings, the simulation with the LSTM leader, the
evaluation with both leaders) run to its end, run again (nothing is redone), and run after its
peak grid changed (everything downstream is redone); status, collect and the report of a chain.
The same stages on a real pool: tests/condor/test_chain_on_pool.py."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from sweep.cli import _grid_checks, main
from sweep.core.errors import GridError
from sweep.core.pipeline import load_pipeline
from tests.hostile_grids import _BOMB, _TOP


#: The learning rates each grid of the test chain sweeps (one run each where two are not needed).
RATES = (0.003, 0.001)


def peak_grid(root: Path, epochs: int = 3, sweep: str = "tiny-lstm", rates: tuple[float, ...] = RATES) -> Path:
    path = root / "grids" / "l.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"sweep: {sweep}\nmodel: lstm\nseed: 3\ndata: {{path: data/small.npz, max_samples: 6000}}\n"
                    f"params: {{epochs: {epochs}, patience: 3, batch_size: 128, topology: [16, 16, 1]}}\n"
                    f"axes:\n  learning_rate: [{', '.join(map(str, rates))}]\n"
                    "resources: {request_cpus: 1, request_memory: 1500MB, runtime: 20m}\n")
    return path


def cluster_grid(root: Path, rates: tuple[float, ...] = RATES) -> Path:
    path = root / "grids" / "c.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text("sweep: tiny-cnn\nmodel: cnn\nseed: 3\ndata: {path: data/truth.npz, simulate: {waveforms: 50}}\n"
                    "params: {epochs: 3, patience: 2, batch_size: 64, filters: [8, 8], kernel_sizes: [5, 3], "
                    f"dense_units: [16]}}\naxes:\n  learning_rate: [{', '.join(map(str, rates))}]\n"
                    "resources: {request_cpus: 1, request_memory: 1500MB, runtime: 20m}\nranking: [mae]\n")
    return path


def pipeline(root: Path, name: str = "tiny", extra: str = "", rates: tuple[float, ...] = RATES,
             peaks_extra: str = "", evaluate_extra: str = "") -> Path:
    peak_grid(root, rates=rates)
    cluster_grid(root, rates=rates)
    path = root / "chain.yaml"
    path.write_text(f"chain: {name}\npeaks: {{grid: grids/l.yaml{peaks_extra}}}\nsimulate: {{waveforms: 200, seed: 5, "
                    "calibration_tracks: 10}\n"
                    "clusters: {grid: grids/c.yaml, leader: mae}\n"
                    "evaluate: {waveforms: 60, tracks: 6, cells: 10, separation_momenta: [3, 10], "
                    f"separation_tracks: 6{evaluate_extra}}}\n" + extra)
    return path


@pytest.fixture
def chain_project(tmp_path, small_dataset):
    (tmp_path / "data").mkdir()
    shutil.copy(small_dataset, tmp_path / "data" / "small.npz")
    return tmp_path


# ------------------------------------------------------------------ the pipeline file


@pytest.mark.parametrize("text, where, message", [
    ("chain: t\npeeks: {grid: grids/l.yaml}\n", ":2:1: peeks:", "unknown key 'peeks'; did you mean 'peaks'?"),
    ("chain: t\npeaks: {grid: ../outside.yaml}\n", ":2:15: peaks.grid:", "outside the project"),
    ("chain: t\npeaks: {grid: grids/c.yaml}\n", ":2:15: peaks.grid:",
     "is a cnn grid; the peaks stage trains the peak finder"),
    ("chain: t\npeaks: {grid: grids/l.yaml, leader: mae}\n", ":2:37: peaks.leader:", "expected a metric the lstm jobs"),
    ("chain: t\nsimulate: {waveforms: 100, threshold: 1.5}\n", ":2:39: simulate.threshold:",
     "expected a number in (0, 1], or 'auto'"),
    ("chain: t\nsimulate: {waveforms: 100, path: /etc/passwd.npz}\n", ":2:34: simulate.path:", "outside the project"),
    ("chain: t\nsimulate: {waveforms: 100, params: {noise_rms: 2}}\n", ":2:36: simulate.params:",
     "did you mean 'noise_rms_mv'"),
    ("chain: \"t\\nqueue 100\"\n", ":1:8: chain:", "expected a chain name of letters"),
    ("chain: tiny-lstm\npeaks: {grid: grids/l.yaml}\n", ":1:8: chain:", "both named 'tiny-lstm'"),
    ("chain: t\nevaluate: {tracks: 1, separation_momenta: [3, -1]}\n", ":2:43: evaluate.separation_momenta:",
     "expected a list of at least 1 values, each a number in (0"),
    ("chain: t\nevaluate: {tracks: 1}\n", ":2:11: evaluate:", "must be 0 (skip) or at least 2"),
    ("chain: t\nevaluate: {runtime: 2 hours}\n", ":2:21: evaluate.runtime:",
     "expected seconds (integer) or a duration such as 2h, 90m"),
    ("chain: t\nevaluate: {runtime: 40d}\n", ":2:21: evaluate.runtime:", "at most 30 days"),
    ("chain: t\npeaks:\nsimulate: {waveforms: 100}\nclusters: {grid: grids/c.yaml}\n", ":2:7: peaks:",
     "expected a mapping with grid (the lstm grid or search grid of this stage) and optionally leader, got nothing"),
    (_BOMB + f"chain: *{_TOP}\n", ":6:10:", "an alias bomb?"),
    ("chain: t\npeaks: {grid: grids/l.yaml, shortlist: 3}\n", ":2:40: peaks.shortlist:",
     "a shortlist is what leader: separation chooses among; peaks.leader is not given"),
    ("chain: t\npeaks: {grid: grids/l.yaml, leader: separation, shortlist: 1}\n", ":2:60: peaks.shortlist:",
     "expected an integer from 2 to 10, got 1"),
    ("chain: t\nclusters: {grid: grids/c.yaml, leader: separation}\n", ":2:40: clusters.leader:",
     "expected a metric the cnn jobs write"),
    ("chain: t\npeaks: {grid: grids/l.yaml, leader: separation}\nsimulate: {waveforms: 100, threshold: 0.9}\n",
     ":3:39: simulate.threshold:", ("chooses the leader and its working point together on calibration tracks: "
                                    "expected 'auto', got 0.9")),
])
def test_a_pipeline_file_s_errors_name_file_line_and_key(tmp_path, text, where, message):
    peak_grid(tmp_path)
    cluster_grid(tmp_path)
    path = tmp_path / "chain.yaml"
    path.write_text(text)
    with pytest.raises(GridError) as e:
        load_pipeline(path, tmp_path, checks=_grid_checks())
    shown = str(e.value)
    assert f"{path}{where}" in shown and message in shown, shown


def test_a_pipeline_is_validated_with_its_grids_and_is_not_a_grid(chain_project, capsys):
    path = pipeline(chain_project)
    assert main(["--root", str(chain_project), "validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "valid; chain 'tiny': peaks grids/l.yaml (sweep tiny-lstm, lstm, 2 configurations, leader by f1)" in out
    assert "clusters grids/c.yaml (sweep tiny-cnn, cnn, 2 configurations, leader by mae)" in out
    spec = load_pipeline(pipeline(chain_project, peaks_extra=", leader: separation"), chain_project,
                         checks=_grid_checks())
    assert spec.peaks.leader == "separation" and spec.peaks.shortlist == 3 and spec.clusters.shortlist is None
    assert main(["--root", str(chain_project), "validate", str(path)]) == 0
    assert "leader by π/K separation among the best 3 by natural_f1)" in capsys.readouterr().out
    path = pipeline(chain_project)
    (chain_project / "grids" / "c.yaml").write_text((chain_project / "grids" / "c.yaml").read_text()
                                                    .replace("ranking: [mae]", "ranking: [mea]"))
    assert main(["--root", str(chain_project), "validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert re.search(r"grids/c\.yaml:\d+:\d+: ranking\[0\]: unknown metric 'mea'", err), err  # the grid's own position
    assert main(["--root", str(chain_project), "submit", str(path)]) == 2
    assert "is a pipeline file (chain:), not a grid: run it with `sweep chain" in capsys.readouterr().err
    assert not (chain_project / "jobs").exists() and not (chain_project / "results").exists()


# ------------------------------------------------------------------ a real chain here


def _record(root: Path, name: str = "tiny") -> dict:
    return json.loads((root / "results" / name / "chain.json").read_text())


@pytest.mark.training
def test_a_chain_runs_here_then_reruns_only_what_changed(chain_project, capsys):
    root = chain_project
    path = pipeline(root, rates=(0.003,))  # one run per grid: choosing among runs is the sweeps' own (tested there)
    args = ["--root", str(root), "chain", str(path), "--local", "--no-progress"]
    assert main(args) == 0
    capsys.readouterr()
    record = _record(root)
    stages = record["stages"]
    assert [stages[s]["state"] for s in ("peaks", "simulate", "clusters", "evaluate")] == ["done"] * 4
    peaks, clusters = stages["peaks"]["leader"], stages["clusters"]["leader"]
    # the leaders are kept with their training records; the clusterizer's data are the peak leader's peaks
    leader = root / peaks["model"]
    assert leader.name == "peaks-leader.keras"
    assert json.loads(leader.with_suffix(".json").read_text())["model"] == "lstm"
    from sweep.physics.datasets import read_meta

    meta = read_meta(root / "data" / "tiny-cnn.npz")
    assert meta["cluster_input"]["source"] == "peak model"
    assert meta["cluster_input"]["peak_model"]["sha256"] == peaks["sha256"]
    grid = (root / "jobs" / "tiny" / "clusters.yaml").read_text()
    assert "sweep: tiny-clusters" in grid and "path: data/tiny-cnn.npz" in grid and "simulate" not in grid
    assert stages["clusters"]["sweep"] == "tiny-clusters" and clusters["metric"] == "mae"
    ev = json.loads((root / "results" / "tiny" / "evaluation" / "evaluation.json").read_text())
    assert ev["models"]["peak"].endswith("peaks-leader.keras")
    assert ev["models"]["cluster"].endswith("clusters-leader.keras")
    assert "lstm_cnn" in ev["clusters"] and ev["tracks"]["n_tracks"] == 6 and ev["separation"]["momenta_gev"] == [3, 10]
    # the same through the Python API's chain handle
    import sweep

    chain = sweep.load("tiny", root=root)
    assert chain.evaluation().models.cluster == ev["models"]["cluster"] and chain.evaluation().tracks["n_tracks"] == 6
    assert chain.record().stage("clusters").leader.metric == "mae"
    assert list(chain.sweep("clusters").results()["run_id"]) == [clusters["run_id"]]
    # threshold auto: the working point was chosen on calibration tracks, the data made at it, and the
    # evaluation's CNN fed peaks found at the same threshold
    chosen = stages["simulate"]["threshold"]
    sim_step = json.loads((root / "results" / "tiny" / "steps" / f"simulate-{stages['simulate']['inputs_hash']}"
                           / "step.json").read_text())
    assert 0 < chosen <= 1 and sim_step["threshold"] == chosen and "working point" in sim_step["notes"][0]
    assert meta["cluster_input"]["peak_threshold"] == chosen, meta["cluster_input"]
    assert ev["tracks"]["dndx"]["lstm_cnn_input"]["option"] == f"lstm_npeaks@{chosen:g}"
    # the simulation and the evaluation ran as steps: the peak grid's wrapper in processes of their
    # own (as a pool's execute node runs them), whose outputs were moved out of their folders
    for stage in ("simulate", "evaluate"):
        step = json.loads((root / "results" / "tiny" / "steps" / f"{stage}-{stages[stage]['inputs_hash']}"
                           / "step.json").read_text())
        assert step["status"] == "done" and step["exit_code"] == 0 and step["pid"] != os.getpid(), step
        assert step["inputs_hash"] == stages[stage]["inputs_hash"]
        assert "tensorflow" in step["software"], step["software"]
    step_folder = root / "results" / "tiny" / "steps" / f"simulate-{stages['simulate']['inputs_hash']}"
    # the dataset moved to data/, the leader's copies gone
    assert sorted(p.name for p in step_folder.iterdir()) == ["stderr.txt", "stdout.txt", "step.json"]
    assert (root / "jobs" / "tiny" / "steps" / "run_step.sh").is_file()

    # again: nothing is trained, simulated or evaluated twice
    data_mtime = (root / "data" / "tiny-cnn.npz").stat().st_mtime_ns
    ev_mtime = (root / "results" / "tiny" / "evaluation" / "evaluation.json").stat().st_mtime_ns
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("0 to submit") == 2 and "tiny-cnn.npz is unchanged" in out and "stage evaluate: unchanged" in out
    assert (root / "data" / "tiny-cnn.npz").stat().st_mtime_ns == data_mtime
    assert (root / "results" / "tiny" / "evaluation" / "evaluation.json").stat().st_mtime_ns == ev_mtime
    assert _record(root)["stages"]["peaks"]["changed"] is False

    # the peak grid changes (two runs now) and its leader is the one whose peaks separate π from K
    # best on calibration tracks: a new leader, hence a new dataset, new clusterizer runs, a new evaluation
    peak_grid(root, epochs=2, rates=(0.003, 0.001))
    path.write_text(path.read_text().replace("peaks: {grid: grids/l.yaml}",
                                             "peaks: {grid: grids/l.yaml, leader: separation, shortlist: 2}"))
    assert main(args) == 0
    out = capsys.readouterr().out
    again = _record(root)["stages"]
    assert again["peaks"]["changed"] is True and again["peaks"]["leader"]["run_id"] != peaks["run_id"]
    assert again["simulate"]["skipped"] is False and again["simulate"]["sha256"] != stages["simulate"]["sha256"]
    assert "2 to submit" in out and again["clusters"]["leader"]["sha256"] != clusters["sha256"]
    assert again["evaluate"]["skipped"] is False
    # chosen in a step job among both runs (best natural F1 first), each counted on the same calibration
    # tracks; its working point chosen with it is the one the clusterizer's data was made at
    chosen = again["peaks"]
    assert chosen["leader"]["metric"] == "separation" and len(chosen["shortlist"]) == 2
    select = json.loads((root / "results" / "tiny" / "steps" / f"select-{chosen['inputs_hash']}" / "step.json")
                        .read_text())
    assert select["status"] == "done" and select["pid"] != os.getpid() and len(select["separations"]) == 2
    seps = [-1 if v is None else v for v in select["separations"]]
    assert chosen["shortlist"][select["chosen"]] == chosen["leader"]["run_id"] and \
        seps[select["chosen"]] == max(seps) == chosen["leader"]["value"]
    assert 0 < chosen["threshold"] <= 1 and again["simulate"]["threshold"] == chosen["threshold"] == select["threshold"]
    for k in (1, 2):  # the shortlist, kept with its training records
        assert (root / "results" / "tiny" / f"peaks-shortlist-{k}.keras").is_file()
        assert (root / "results" / "tiny" / f"peaks-shortlist-{k}.json").is_file()
    assert "peak leader: shortlisted model" in out and "(chosen with the leader)" in out
    # one folder per stage: the earlier inputs' steps were cleared when the new ones ran
    assert sorted(p.name for p in (root / "results" / "tiny" / "steps").iterdir()) == \
        sorted([f"{s}-{again[s]['inputs_hash']}" for s in ("simulate", "evaluate")]
               + [f"select-{chosen['inputs_hash']}"])
    # and again: the choice is not made twice
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "the choice among its shortlist is unchanged" in out and "stage evaluate: unchanged" in out
    assert _record(root)["stages"]["peaks"]["leader"] == chosen["leader"]
    assert (root / "results" / "tiny" / "evaluation" / "evaluation.json").stat().st_mtime_ns != ev_mtime

    # status, collect and the report know the chain
    assert main(["--root", str(root), "status", "tiny"]) == 0
    out = capsys.readouterr().out
    for stage in ("peaks", "simulate", "clusters", "evaluate"):
        assert re.search(rf"^\s+{stage}\s+done", out, re.M), out
    assert "tiny-lstm:" in out and "tiny-clusters:" in out
    assert main(["--root", str(root), "collect", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "leader" in out and "tiny-lstm" in out and "tiny-clusters" in out
    assert main(["--root", str(root), "report", "tiny"]) == 0
    html = (root / "results" / "tiny" / "report.html").read_text()
    for part in ("Peak level", "Cluster level", "Track level", "π/K separation", "Leaderboard of stage peaks",
                 "Leaderboard of stage clusters", "lstm_cnn"):
        assert part in html, part
    assert (root / "results" / "tiny-lstm" / "report.html").is_file()
    _renders(root / "results" / "tiny" / "report.html", root)


def _renders(path: Path, work: Path) -> None:
    """The chain's report in a real headless Chromium: its tables and images are in the DOM."""
    from tests.test_report import _browser, _chromium

    binary = _chromium()
    assert binary, "chromium is not installed: this test needs it (scripts/setup.sh installs it)"
    dom = _browser(binary, work / "chromium-profile", "--virtual-time-budget=5000", "--dump-dom", path.as_uri())
    assert "<h1>Two-step chain tiny</h1>" in dom.stdout, dom.stderr[-2000:]
    assert dom.stdout.count("<table") >= 6 and dom.stdout.count("data:image/png;base64,") >= 3


def test_a_chain_named_like_a_sweep_of_the_project_is_refused(chain_project, capsys):
    path = pipeline(chain_project, name="other")
    (chain_project / "jobs" / "other").mkdir(parents=True)
    (chain_project / "jobs" / "other" / "sweep.json").write_text("{}")
    assert main(["--root", str(chain_project), "chain", str(path), "--local", "--no-progress"]) == 1
    assert "already has a sweep named 'other'" in capsys.readouterr().err
    assert not (chain_project / "results").exists()


def test_a_chain_whose_peak_stage_cannot_run_stops_there_and_writes_nothing_after_it(chain_project, capsys):
    root = chain_project
    path = pipeline(root)
    (root / "grids" / "l.yaml").write_text((root / "grids" / "l.yaml").read_text()
                                           .replace("data/small.npz", "data/missing.npz"))
    assert main(["--root", str(root), "chain", str(path), "--local", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "data/missing.npz" in err and "Traceback" not in err
    assert not (root / "data" / "tiny-cnn.npz").exists() and not (root / "jobs" / "tiny" / "clusters.yaml").exists()
    peaks = _record(root)["stages"]["peaks"]
    assert peaks["state"] == "failed" and "data/missing.npz" in peaks["reason"]
    assert main(["--root", str(root), "status", "tiny"]) == 0
    assert re.search(r"peaks\s+failed; sweep tiny-lstm; NotFoundError: dataset data/missing.npz",
                     capsys.readouterr().out)


@pytest.mark.parametrize("model, message", [
    ("gone.keras", "peak_model gone.keras was not transferred with the job"),
    ("../../../etc/passwd", "peak_model must be a file name in the job's folder"),
])
def test_a_step_that_fails_says_why_in_its_own_process_and_hands_back_nothing(chain_project, model, message):
    """The step's body in its own process (the peak grid's wrapper, as --local runs it) refuses a
    model that was not sent with it, or a path out of its folder: exit 2, step.json says why,
    and the chain hears it as a StepError with that line."""
    from sweep.chain.steps import LocalSteps, StepError, StepRequest
    from sweep.core.grid import load_grid

    root = chain_project
    peak_grid(root)
    grid = load_grid(root / "grids" / "l.yaml", root)
    request = StepRequest("simulate", "0123456789abcdef", {
        "peak_model": model, "simulate": {"waveforms": 10, "seed": 1, "threshold": 0.5, "params": {}}})
    with pytest.raises(StepError) as err:
        LocalSteps(root, "t", grid).run(request)
    assert message in str(err.value) and "exit 2" in str(err.value), err.value
    folder = root / "results" / "t" / "steps" / "simulate-0123456789abcdef"
    step = json.loads((folder / "step.json").read_text())
    assert step["status"] == "failed" and step["exit_code"] == 2 and message in step["error"]
    assert not (folder / "dataset.npz").exists()
