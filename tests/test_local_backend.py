"""The local backend end to end: real training jobs, packing onto cores, failures, reruns, collect."""

import importlib
import json
import os
import shutil
import sys

import pandas as pd
import pytest

import sweep
from sweep.cli import main
from tests.conftest import grid_text


def submit(tmp_path, grid, *extra):
    return main(["--root", str(tmp_path), "submit", str(grid), "--local", "--no-progress", *extra])


@pytest.mark.training
def test_two_configurations_end_to_end(tmp_path, small_dataset, capsys):
    importlib.import_module("tensorflow")
    grid = tmp_path / "g.yaml"
    grid.write_text(grid_text(small_dataset))
    assert submit(tmp_path, grid) == 0
    out = capsys.readouterr().out
    assert "2 of 2 runs finished, 0 failed" in out and "ranked by f1" in out

    board = pd.read_csv(tmp_path / "results" / "e2e" / "leaderboard.csv")
    assert list(board["rank"]) == [1, 2]
    assert sorted(board["optimizer"]) == ["adam", "rmsprop"]
    assert board["f1"].iloc[0] >= board["f1"].iloc[1]  # ranked by F1, descending
    for run_id in board["run_id"]:
        folder = tmp_path / "results" / "e2e" / run_id
        assert {"metrics.json", "history.csv", "roc.csv", "model.keras", "run.json", "stdout.txt"} <= {
            p.name for p in folder.iterdir()}
        assert json.loads((folder / ".local-exit.json").read_text())["returncode"] == 0
        assert not (tmp_path / "jobs" / "e2e" / "data").exists()  # local jobs read the dataset in place: no copy
        code = json.loads((tmp_path / "jobs" / "e2e" / "sweep.json").read_text())["code"]
        info = json.loads((folder / "run.json").read_text())
        assert {k: info["code"][k] for k in code} == code  # sweep's code from the archive
        assert info["code"]["loaded_from"] == str(tmp_path / "jobs" / "e2e" / code["archive"])
        assert info["device"]["trained_on"] == "CPU" and info["interpreter"]["executable"] == sys.executable
        # where the job's time went: every phase of a full training, in order (that they fit in the
        # job's own time is checked against the local backend's measure of it, below)
        assert list(info["phases"]) == ["startup", "data", "model", "training", "checkpoints", "evaluation",
                                        "output"]
        assert info["phases"]["training"]["cpu_s"] > 0

    assert main(["--root", str(tmp_path), "collect", "e2e"]) == 0
    out = capsys.readouterr().out
    assert "where each job's time went" in out and "training efficiency " in out and "allocated to 2 job(s)" in out
    resources = pd.read_csv(tmp_path / "results" / "e2e" / "resources.csv")
    assert {"startup_s", "training_s", "training_cpu_s", "evaluation_s"} <= set(resources.columns)
    for row in resources.to_dict("records"):  # a job's wall time is its whole process's: its phases fit in it
        phases = json.loads((tmp_path / "results" / "e2e" / row["run_id"] / "run.json").read_text())["phases"]
        assert row["wall_s"] == json.loads((tmp_path / "results" / "e2e" / row["run_id"] / ".local-exit.json")
                                           .read_text())["wall_s"]
        assert row["wall_s"] >= sum(p["wall_s"] for p in phases.values())

    assert main(["--root", str(tmp_path), "status", "e2e"]) == 0
    assert "e2e: 2 done" in capsys.readouterr().out
    assert main(["--root", str(tmp_path), "status", "e2e", "--watch", "--interval", "0.1"]) == 0  # ends: all done
    assert "e2e: 2 done" in capsys.readouterr().out

    # a second submit of the same grid runs nothing: every configuration has a valid result
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "results" / "e2e").glob("*/metrics.json")}
    assert submit(tmp_path, grid) == 0
    assert "nothing to submit" in capsys.readouterr().out
    assert stamps == {p: p.stat().st_mtime_ns for p in stamps}
    # the Python API submits through the same code (nothing to run again) and reads what the jobs wrote
    handle = sweep.submit_grid(grid, backend="local", root=tmp_path)
    assert stamps == {p: p.stat().st_mtime_ns for p in stamps}
    table = handle.results()
    assert list(table["run_id"]) == list(board["run_id"]) and list(table["f1"]) == pytest.approx(list(board["f1"]))
    best = handle.best_model()
    assert best.path == tmp_path / "results" / "e2e" / board["run_id"][0] / "model.keras"
    assert best.info is not None and best.info.model == "lstm"  # the job's own model.json
    assert len(handle.history(best.run_id)) == table["epochs_run"].iloc[0]
    assert handle.status().counts == {"done": 2}

    # a corrupt metrics file is reported, not a crash, and that run becomes resubmittable
    victim = next(iter(stamps))
    victim.write_text("{not json")
    assert main(["--root", str(tmp_path), "collect", "e2e"]) == 0
    out = capsys.readouterr().out
    assert "unreadable metrics.json" in out and "1 of 2 runs ranked" in out
    assert main(["--root", str(tmp_path), "submit", str(grid), "--dry-run"]) == 0
    assert "would submit 1" in capsys.readouterr().out


def _templates(tmp_path, wrapper_body):
    folder = tmp_path / "tpl"
    folder.mkdir(exist_ok=True)
    from sweep.core.render import BUILTIN_TEMPLATES

    (folder / "job.sub.j2").write_text((BUILTIN_TEMPLATES / "job.sub.j2").read_text())
    (folder / "run_job.sh.j2").write_text("#!/bin/sh\n" + wrapper_body)
    return folder


def test_failures_are_reported_with_exit_status_and_stderr(tmp_path, small_dataset, capsys):
    # a real job script (the user's own wrapper template) that fails
    _templates(tmp_path, "echo 'Traceback: boom in layer 3' >&2\nexit 3\n")
    grid = tmp_path / "g.yaml"
    grid.write_text(grid_text(small_dataset, sweep="fails", extra="templates: tpl\n"))
    assert submit(tmp_path, grid) == 1  # every run failed
    out = capsys.readouterr().out
    assert "0 of 2 runs finished, 2 failed" in out
    assert "exit status 3" in out and "boom in layer 3" in out
    assert "0 of 2 runs ranked" in out
    assert main(["--root", str(tmp_path), "status", "fails"]) == 0
    assert "fails: 2 failed" in capsys.readouterr().out


def test_runtime_limit_kills_a_job_and_collect_says_so(tmp_path, small_dataset, capsys):
    _templates(tmp_path, "sleep 60\n")
    grid = tmp_path / "g.yaml"
    grid.write_text(grid_text(small_dataset, sweep="slow", axes="  optimizer: [adam]\n").replace(
        "runtime: 10m", "runtime: 2s") + "templates: tpl\n")
    assert submit(tmp_path, grid) == 1
    out = capsys.readouterr().out
    assert "runtime limit exceeded" in out


def test_jobs_are_packed_onto_the_cores(tmp_path, small_dataset):
    # each job records when it started and ended; 4 one-CPU jobs on 2 cores -> 2 at a time
    _templates(tmp_path, "date +%s.%N > start; sleep 1.5; date +%s.%N > end\n")
    grid = tmp_path / "g.yaml"
    grid.write_text(grid_text(small_dataset, sweep="pack", axes="  optimizer: [adam, sgd, rmsprop, nadam]\n")
                    + "templates: tpl\n")
    main(["--root", str(tmp_path), "submit", str(grid), "--local", "--no-progress", "--cpus", "2", "--no-collect"])
    spans = []
    for folder in (tmp_path / "results" / "pack").iterdir():
        if folder.is_dir():
            spans.append((float((folder / "start").read_text()), float((folder / "end").read_text())))
    assert len(spans) == 4
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    level, peak = 0, 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    assert peak == 2


def test_interrupted_job_leaves_no_result_that_passes_as_valid(tmp_path, small_dataset):
    """A killed job (no run.json/metrics.json) is 'failed', and a rerun clears stale outputs first."""
    from sweep.records.runs import read_run

    folder = tmp_path / "results" / "x" / "abc"
    folder.mkdir(parents=True)
    (folder / "stderr.txt").write_text("Killed\n")
    (folder / "run.json").write_text(json.dumps({"status": "running"}))
    outcome = read_run(tmp_path / "results" / "x", "abc", ["f1"])
    assert outcome.state == "failed" and "did not finish" in outcome.reason
    assert read_run(tmp_path / "results" / "x", "nothing", ["f1"]).state == "missing"
    os.remove(folder / "run.json")


def _plain_submit(tmp_path, small_dataset, condor_config: str, sweep: str, axes: str = "  optimizer: [adam]\n"):
    """`sweep submit GRID` (no --local, no --condor) in a process whose HTCondor configuration is
    CONDOR_CONFIG=condor_config and nothing else."""
    import subprocess
    import sys

    from tests.conftest import REPO

    _templates(tmp_path, "echo '{\"status\": \"ok\"}' > run.json\n")
    grid = tmp_path / "g.yaml"
    grid.write_text(grid_text(small_dataset, sweep=sweep, axes=axes, extra="templates: tpl\n"))
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("_CONDOR_")}
    env.update(CONDOR_CONFIG=condor_config, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "sweep.cli", "--root", str(tmp_path), "submit", str(grid),
                           "--no-progress", "--no-collect"], env=env, capture_output=True, text=True, timeout=120)


def test_submit_without_any_pool_runs_locally_and_says_so(tmp_path, small_dataset):
    proc = _plain_submit(tmp_path, small_dataset, "ONLY_ENV", "nopool")  # no configuration file, no collector
    assert proc.returncode == 0, proc.stderr
    assert "no HTCondor pool is configured on this machine" in proc.stdout
    assert "local: 1 of 1 runs finished" in proc.stdout

    # a sweep that has been on a pool is never run here behind its back, even without a configuration
    manifest_path = tmp_path / "jobs" / "nopool" / "sweep.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["submissions"].append({"id": "abc", "backend": "htcondor", "runs": [], "state": "submitted"})
    manifest_path.write_text(json.dumps(manifest))
    before = sorted(p.name for p in (tmp_path / "results" / "nopool").iterdir())
    proc = _plain_submit(tmp_path, small_dataset, "ONLY_ENV", "nopool", axes="  optimizer: [adam, sgd]\n")
    assert proc.returncode == 1 and "this sweep has runs on the pool" in proc.stderr, proc.stdout + proc.stderr
    assert "--local" not in proc.stderr and "local:" not in proc.stdout
    assert sorted(p.name for p in (tmp_path / "results" / "nopool").iterdir()) == before


def test_a_configured_pool_that_does_not_answer_stops_a_plain_submit(tmp_path, small_dataset):
    """A pool is configured but its schedd does not answer (e.g. it is restarting): falling back
    to this machine would train runs the pool may still hold. Fail, name the pool, write nothing."""
    (tmp_path / "condor_config").write_text("COLLECTOR_HOST = 127.0.0.1:9\nSCHEDD_HOST = 127.0.0.1:9\n")
    proc = _plain_submit(tmp_path, small_dataset, str(tmp_path / "condor_config"), "deadpool")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "cannot reach an HTCondor schedd" in proc.stderr and "127.0.0.1:9" in proc.stderr
    assert "Nothing was written" in proc.stderr and "retry when the schedd answers" in proc.stderr
    assert "local:" not in proc.stdout and "Traceback" not in proc.stderr
    assert not (tmp_path / "jobs").exists() and not (tmp_path / "results").exists()


def test_an_old_local_failure_does_not_outlive_a_good_run(tmp_path):
    from sweep.records.runs import read_run

    folder = tmp_path / "abc"
    folder.mkdir()
    (folder / ".local-exit.json").write_text(json.dumps({"returncode": 1}))  # an earlier local attempt
    (folder / "run.json").write_text(json.dumps({"status": "ok", "exit_code": 0}))
    (folder / "metrics.json").write_text(json.dumps({"test": {"f1": 0.9, "auc": 0.9, "eff_purity": 0.8}}))
    assert read_run(tmp_path, "abc", ["f1"]).ok


QUICK = ("cat > metrics.json <<EOF\n"
         "{\"test\": {\"f1\": 0.9, \"auc\": 0.95, \"eff_purity\": 0.8}, \"best_epoch\": 1}\nEOF\n"
         "echo '{\"status\": \"ok\", \"exit_code\": 0}' > run.json\n")


def test_a_narrowed_grid_keeps_the_runs_it_no_longer_has(tmp_path, small_dataset, capsys):
    """The manifest keeps every run it has recorded: narrowing a grid from 3 configurations to 1
    does not make collect, status or report forget the other two results."""
    _templates(tmp_path, QUICK)
    grid = tmp_path / "g.yaml"
    grid.write_text(grid_text(small_dataset, sweep="narrow", axes="  optimizer: [adam, sgd, rmsprop]\n",
                              extra="templates: tpl\n"))
    assert submit(tmp_path, grid, "--no-collect") == 0
    grid.write_text(grid_text(small_dataset, sweep="narrow", axes="  optimizer: [adam]\n", extra="templates: tpl\n"))
    assert submit(tmp_path, grid, "--no-collect") == 0
    capsys.readouterr()
    manifest = json.loads((tmp_path / "jobs" / "narrow" / "sweep.json").read_text())
    assert len(manifest["runs"]) == 3
    assert [r.get("in_grid", True) for r in manifest["runs"]] == [True, False, False]
    assert main(["--root", str(tmp_path), "collect", "narrow"]) == 0
    out = capsys.readouterr().out
    assert "3 of 3 runs ranked" in out and "2 ranked run(s) are not in the sweep's current grid" in out
    assert main(["--root", str(tmp_path), "status", "narrow"]) == 0
    assert "narrow: 3 done" in capsys.readouterr().out
    # another narrowing: the old runs stay; one of them loses its result: it is no longer counted
    grid.write_text(grid_text(small_dataset, sweep="narrow", axes="  optimizer: [nadam]\n", extra="templates: tpl\n"))
    assert submit(tmp_path, grid, "--no-collect") == 0
    capsys.readouterr()
    assert main(["--root", str(tmp_path), "collect", "narrow"]) == 0
    assert "4 of 4 runs ranked" in capsys.readouterr().out
    shutil.rmtree(tmp_path / "results" / "narrow" / manifest["runs"][1]["run_id"])
    assert main(["--root", str(tmp_path), "collect", "narrow"]) == 0
    out = capsys.readouterr().out
    assert "3 of 3 runs ranked" in out and "without a valid result" not in out


@pytest.mark.training
def test_a_run_trained_on_another_version_of_the_dataset_is_stale(tmp_path, small_dataset, capsys):
    """The dataset's content is part of what a result means: each run records the sha256 of the
    file it trained on; regenerating the file makes collect mark the old results stale and the
    next submit train them again."""
    import hashlib

    from sweep.physics.datasets import simulate_to_file

    (tmp_path / "data").mkdir()
    data = tmp_path / "data" / "x.npz"
    shutil.copy(small_dataset, data)
    grid = tmp_path / "g.yaml"
    grid.write_text(grid_text("data/x.npz", sweep="stale", axes="  optimizer: [adam]\n", epochs=1, max_samples=1500))
    assert submit(tmp_path, grid, "--no-collect") == 0
    sha = hashlib.sha256(data.read_bytes()).hexdigest()
    (run_dir,) = [p for p in (tmp_path / "results" / "stale").iterdir() if p.is_dir()]
    for name in ("metrics.json", "run.json"):
        assert json.loads((run_dir / name).read_text())["dataset"]["sha256"] == sha
    manifest = json.loads((tmp_path / "jobs" / "stale" / "sweep.json").read_text())
    assert manifest["dataset"]["sha256"] == sha and manifest["dataset"]["size"] == data.stat().st_size
    assert submit(tmp_path, grid, "--no-collect") == 0
    assert "nothing to submit" in capsys.readouterr().out

    simulate_to_file(data, 600, seed=12)  # a new version of the file (e.g. a new --peak-model)
    new_sha = hashlib.sha256(data.read_bytes()).hexdigest()
    assert new_sha != sha
    assert main(["--root", str(tmp_path), "collect", "stale"]) == 0
    out = capsys.readouterr().out
    assert "0 of 1 runs ranked" in out and "stale" in out and "trained on another version" in out
    assert submit(tmp_path, grid, "--no-collect") == 0
    out = capsys.readouterr().out
    assert "1 run(s) were trained on another version of data/x.npz" in out and "1 of 1 runs finished" in out
    assert json.loads((run_dir / "metrics.json").read_text())["dataset"]["sha256"] == new_sha
    assert main(["--root", str(tmp_path), "collect", "stale"]) == 0
    assert "1 of 1 runs ranked" in capsys.readouterr().out
