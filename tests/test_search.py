"""Adaptive search without HTCondor: the search space from a grid, the trial's run identity, the
Pareto front, and real searches on the local backend (real Keras trainings, pruning through the
job's progress file, a driver killed with SIGKILL and run again). The hostile search: blocks are
in tests/hostile_grids.py; the pool's search in tests/condor/test_search_on_pool.py."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from sweep.cli import main
from sweep.core.expand import expand, run_of_point
from sweep.core.grid import load_grid, parse_grid
from sweep.core.gridspec import search_space_size
from sweep.core.ranking import pareto_front
from sweep.search import study as studies

REPO = Path(__file__).resolve().parents[1]


def search_text(dataset, sweep="s", axes=None, search="{sampler: random, trials: 4, parallel: 2}", epochs=4,
                max_samples=20000, model_params="topology: [32, 64, 1]"):
    axes = axes or "  learning_rate: {low: 1.0e-5, high: 3.0e-2, log: true}\n  optimizer: [adam, sgd]\n"
    return (f"sweep: {sweep}\nmodel: lstm\nseed: 5\ndata: {{path: {dataset}, max_samples: {max_samples}}}\n"
            f"params: {{{model_params}, epochs: {epochs}, patience: {epochs}}}\n"
            f"axes:\n{axes}search: {search}\n"
            "resources: {request_cpus: 1, request_memory: 1GB, runtime: 10m}\n")


def trials_of(root: Path, sweep: str):
    return studies.load_study(root / "results" / sweep / "study.journal", sweep).get_trials(deepcopy=False)


# ------------------------------------------------------------------ the space and the run identity

@pytest.mark.parametrize("grid", sorted((REPO / "grids").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_grid_validates(grid, capsys):
    assert main(["--root", str(REPO), "validate", str(grid)]) == 0
    out = capsys.readouterr().out
    is_pipeline = "chain" in yaml.safe_load(grid.read_text(encoding="utf-8"))  # chain.yaml, chain-large.yaml
    assert ("valid; chain" if is_pipeline else "valid; sweep") in out
    if grid.name == "search.yaml":
        assert "pruner median (on val_f1, from epoch 2)" in out and "sampler tpe, 12 trials, 2 at a time" in out


def test_validate_prints_the_search_space_and_its_size(tmp_path, capsys):
    grid = tmp_path / "g.yaml"
    grid.write_text(search_text("data/x.npz", axes="  optimizer: [adam, sgd, nadam]\n"
                                "  batch_size: {low: 64, high: 512, step: 64}\n",
                                search="{sampler: grid, trials: 24, parallel: 2, pruner: hyperband}"))
    assert main(["--root", str(tmp_path), "validate", str(grid)]) == 0
    out = capsys.readouterr().out
    assert "searches 2 hyperparameter(s) with Optuna" in out
    assert "batch_size: integers from 64 to 512, step 64" in out and "optimizer: one of 3 values" in out
    assert "space: 24 points; sampler grid, 24 trials, 2 at a time, pruner hyperband (on val_f1" in out
    grid.write_text(search_text("data/x.npz"))
    assert main(["--root", str(tmp_path), "validate", str(grid)]) == 0
    assert "space: continuous" in capsys.readouterr().out


def test_a_trial_of_a_grid_point_has_the_grid_run_s_id(tmp_path):
    """A search that samples a point a grid sweep trained finds it by its id (content hash)."""
    common = "sweep: s\nmodel: lstm\nseed: 5\ndata: {path: data/x.npz}\nparams: {epochs: 3}\n"
    grid = parse_grid(common + "axes:\n  optimizer: [adam, sgd]\n  batch_size: [64, 128]\n", "g", tmp_path)
    search = parse_grid(common + "axes:\n  optimizer: [adam, sgd]\n  batch_size: {low: 64, high: 128, step: 64}\n"
                        "search: {trials: 4}\n", "s", tmp_path)
    assert search_space_size(search) == 4
    by_point = {(r.params["optimizer"], r.params["batch_size"]): r for r in expand(grid)}
    for (optimizer, batch), run in by_point.items():
        trial_run = run_of_point(search, {"optimizer": optimizer, "batch_size": batch})
        assert (trial_run.run_id, trial_run.seed, trial_run.params) == (run.run_id, run.seed, run.params)


def test_list_values_of_a_search_space_round_trip_through_optuna(tmp_path):
    """Optuna's categorical choices hold scalars only: a CNN's lists are offered as JSON text and decoded."""
    spec = parse_grid("sweep: c\nmodel: cnn\ndata: {path: data/x.npz}\nparams: {kernel_sizes: [5, 3]}\n"
                      "axes:\n  filters: [[16, 32], [32, 64]]\n  dropout: {low: 0.0, high: 0.4, step: 0.1}\n"
                      "  head: [flatten, global_average]\nsearch: {trials: 3, objectives: [mae, rel_resolution]}\n",
                      "c", tmp_path)
    dists = studies.distributions(spec)
    assert dists["filters"].choices == ("[16,32]", "[32,64]")
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(6):
        trial = study.ask(fixed_distributions=dists)
        point = studies.point_of(spec, trial.params)
        assert point["filters"] in ([16, 32], [32, 64]) and point["head"] in ("flatten", "global_average")
        assert 0.0 <= point["dropout"] <= 0.4
        run_of_point(spec, point)  # a valid configuration


def test_pareto_front_matches_optuna_s_best_trials_and_a_hand_count():
    rows = [{"f1": 0.90, "auc": 0.95}, {"f1": 0.92, "auc": 0.93}, {"f1": 0.89, "auc": 0.94},  # 3rd: beaten by 1st
            {"f1": 0.92, "auc": 0.93}, {"f1": float("nan"), "auc": 0.99}, {"f1": 0.80, "auc": 0.97}]
    flags = pareto_front(rows, [("f1", "max"), ("auc", "max")])
    assert flags == [True, True, False, True, False, True]
    study = optuna.create_study(directions=["maximize", "maximize"])
    for r in rows:
        if r["f1"] == r["f1"]:
            study.add_trial(optuna.trial.create_trial(values=[r["f1"], r["auc"]]))
    front = sorted((t.values[0], t.values[1]) for t in study.best_trials)
    assert front == sorted((r["f1"], r["auc"]) for r, f in zip(rows, flags, strict=True) if f)
    assert pareto_front(rows[:2], [("f1", "max"), ("auc", "min")]) == [False, True]


def test_a_journal_of_another_space_is_refused(tmp_path, small_dataset, capsys):
    grid = tmp_path / "g.yaml"
    grid.write_text(search_text(small_dataset))
    spec = load_grid(grid, tmp_path)
    studies.open_study(spec, tmp_path)
    grid.write_text(search_text(small_dataset, axes="  optimizer: [adam, sgd, nadam]\n"))
    with pytest.raises(Exception, match="earlier version"):
        studies.open_study(load_grid(grid, tmp_path), tmp_path)
    # and `sweep search` says so before anything runs or is queued
    assert main(["--root", str(tmp_path), "search", str(grid), "--local", "--no-progress"]) == 2
    assert not (tmp_path / "jobs").exists()
    assert "earlier version" in capsys.readouterr().err


# ------------------------------------------------------------------ real searches on this machine

@pytest.mark.training
def test_a_local_search_prunes_through_the_progress_file_and_ranks_the_rest(tmp_path, small_dataset, capsys):
    grid = tmp_path / "g.yaml"
    # seed 77: the first two trials are adam at lr > 1e-3 (they learn), several later ones sgd at lr < 3e-4
    # (they do not): whatever order the trials end in, the pruner has bad trials to stop
    grid.write_text(search_text(small_dataset, sweep="local", epochs=4, max_samples=4000,
                                search="{sampler: random, trials: 6, parallel: 2, pruner: median, startup_trials: 2, "
                                       "warmup_epochs: 1, seed: 77}"))
    assert main(["--root", str(tmp_path), "search", str(grid), "--local", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "search local: " in out and "driver overhead per step" in out
    trials = trials_of(tmp_path, "local")
    assert len(trials) == 6 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    pruned = [t for t in trials if t.state is TrialState.PRUNED and not t.user_attrs.get("reused")]
    assert pruned, [(t.number, t.intermediate_values) for t in trials]
    for t in pruned:
        folder = tmp_path / "results" / "local" / t.user_attrs["run_id"]
        assert json.loads((folder / "run.json").read_text())["status"] == "pruned"
        assert "through file" in (folder / "stdout.txt").read_text()
        assert "pruned by the search's driver" in (folder / "stdout.txt").read_text()
        assert not (folder / "model.keras").exists()  # stopped: no model, no test metrics
    # the pruner has every epoch of each finished trial, also those the driver's polling missed
    for t in trials:
        if t.state is TrialState.COMPLETE and not t.user_attrs.get("reused"):
            metrics = json.loads((tmp_path / "results" / "local" / t.user_attrs["run_id"] / "metrics.json").read_text())
            assert sorted(t.intermediate_values) == list(range(1, metrics["epochs_run"] + 1)), t.number
    # each run trained once: one job start per run folder
    for t in trials:
        if not t.user_attrs.get("reused"):
            stdout = (tmp_path / "results" / "local" / t.user_attrs["run_id"] / "stdout.txt").read_text()
            assert stdout.count("sweep.job ") == 1
    board = (tmp_path / "results" / "local" / "leaderboard.csv").read_text().splitlines()
    assert "trial" in board[0]
    assert len(board) - 1 == len({t.user_attrs["run_id"] for t in trials if t.state is TrialState.COMPLETE})
    assert "pruned while training (not ranked)" in out
    assert main(["--root", str(tmp_path), "status", "local"]) == 0
    status = capsys.readouterr().out
    assert "search: sampler random, pruner median, 6 trials (local); driver: " in status
    assert "search local finished: " in status


@pytest.mark.training
def test_a_pruned_point_proposed_again_is_trained_to_its_end(tmp_path, small_dataset, capsys):
    grid = tmp_path / "g.yaml"
    # seed 15 proposes 0.005, 1e-6, 1e-6, 0.005: the second trial (a learning rate that cannot learn)
    # is pruned at one of its first epochs and stops at exactly that epoch, whatever the machine's load (a
    # local trial waits for its driver's verdict on every epoch); the third samples it again and trains it
    # to the end; the fourth samples the first point and reuses its result
    grid.write_text(search_text(small_dataset, sweep="again", epochs=4, max_samples=4000,
                                axes="  learning_rate: [0.005, 1.0e-6]\n",
                                search="{sampler: random, trials: 4, parallel: 1, pruner: median, startup_trials: 1, "
                                       "warmup_epochs: 1, seed: 15}"))
    assert main(["--root", str(tmp_path), "search", str(grid), "--local", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "was pruned before and is proposed again: trained to its end" in out, out
    trials = trials_of(tmp_path, "again")
    assert [t.params["learning_rate"] for t in trials] == [0.005, 1e-6, 1e-6, 0.005]
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.COMPLETE,
                                         TrialState.COMPLETE]
    assert trials[1].user_attrs["run_id"] == trials[2].user_attrs["run_id"] and trials[2].user_attrs[
        "trained_to_the_end"]
    assert trials[3].user_attrs.get("reused")
    judged = re.search(r"trial 1: pruned after epoch (\d+), its job is asked to stop", out)
    assert judged, out
    # stopped where its pruner said, not an epoch later (its job's values, all reported, end there)
    assert sorted(trials[1].intermediate_values) == list(range(1, int(judged.group(1)) + 1))
    assert int(judged.group(1)) < 4
    folder = tmp_path / "results" / "again" / trials[2].user_attrs["run_id"]
    info = json.loads((folder / "run.json").read_text())
    assert info["status"] == "ok" and (folder / "model.keras").exists()  # the full result replaced the pruned one


@pytest.mark.training
def test_a_multi_objective_search_marks_optuna_s_pareto_front_and_reuses_results(tmp_path, small_dataset, capsys):
    grid = tmp_path / "g.yaml"
    # 2 points, 4 trials; seed 0 samples sgd, adam, sgd, sgd: the last two sample a point trained already
    # and are told its result
    grid.write_text(search_text(small_dataset, sweep="pareto", epochs=2, max_samples=3000,
                                axes="  optimizer: [adam, sgd]\n",
                                search="{sampler: random, trials: 4, parallel: 1, seed: 0, "
                                       "objectives: [f1, auc, eff_purity]}"))
    assert main(["--root", str(tmp_path), "search", str(grid), "--local", "--no-progress"]) == 0
    trials = trials_of(tmp_path, "pareto")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    distinct = {t.user_attrs["run_id"] for t in trials}
    assert len(distinct) == 2 and sum(bool(t.user_attrs.get("reused")) for t in trials) == 2
    runs = [p for p in (tmp_path / "results" / "pareto").iterdir() if (p / "stdout.txt").exists()]
    assert len(runs) == len(distinct)  # a job for each distinct point only
    import pandas as pd

    board = pd.read_csv(tmp_path / "results" / "pareto" / "leaderboard.csv")
    study = studies.load_study(tmp_path / "results" / "pareto" / "study.journal", "pareto")
    front = {t.user_attrs["run_id"] for t in study.best_trials}
    assert set(board.loc[board["pareto"], "run_id"]) == front
    hand = pareto_front(board.to_dict("records"), [("f1", "max"), ("auc", "max"), ("eff_purity", "max")])
    assert list(board["pareto"]) == hand
    # the report names the sampler and pruner, draws the history and the front, says how to open the study
    assert main(["--root", str(tmp_path), "report", "pareto"]) == 0
    html = (tmp_path / "results" / "pareto" / "report.html").read_text()
    assert 'id="history"' in html and 'id="pareto"' in html and "sampler <b>random</b>, pruner <b>none</b>" in html
    assert "<code>sweep dashboard pareto</code>" in html
    # a search's failed trials are its driver's to retry: resubmit says so instead of doing nothing
    assert main(["--root", str(tmp_path), "resubmit", "pareto"]) == 2
    assert "is a search" in capsys.readouterr().err


@pytest.mark.training
def test_a_local_driver_killed_with_sigkill_resumes_without_losing_or_redoing_a_trial(tmp_path, small_dataset):
    grid = tmp_path / "g.yaml"
    grid.write_text(search_text(small_dataset, sweep="killed", epochs=3, max_samples=4000,
                                search="{sampler: random, trials: 5, parallel: 2, seed: 2}"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "sweep.cli", "--root", str(tmp_path), "search", str(grid), "--local",
               "--no-progress", "--no-collect"]
    driver = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = tmp_path / "results" / "killed" / "study.journal"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        # a trial has finished and others are training: kill the driver now (the journal exists a
        # moment before the driver has created its study in it: KeyError until then)
        if journal.exists() and _finished(tmp_path, "killed") >= 1 and _jobs_under(tmp_path):
            break
        time.sleep(0.5)
    finished_before = {t.number: t.user_attrs["run_id"] for t in trials_of(tmp_path, "killed") if t.state.is_finished()}
    assert finished_before
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    orphans = _jobs_under(tmp_path)  # the killed driver's jobs go on training with nobody to read them
    assert orphans
    left_running = [t.number for t in trials_of(tmp_path, "killed") if t.state is TrialState.RUNNING]
    # run again: it takes over the trials left running; their orphaned jobs are stopped, then run again
    again = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and set(orphans) & set(_jobs_under(tmp_path)):
        time.sleep(0.2)
    assert not set(orphans) & set(_jobs_under(tmp_path)), "an orphaned job went on next to its rerun"
    out, _ = again.communicate(timeout=400)
    assert again.returncode == 0, out
    # the trials the killed driver left running are taken over: an orphaned job is stopped and started
    # again, or, when it ended by itself before the rerun looked (a loaded machine), its result told
    restarted = out.count("an earlier driver's) is started again")
    told = out.count("its job ended while no driver ran")
    others = out.count("abandoned (the driver stopped while sampling it)") + out.count("resumed (nothing had been")
    assert 1 <= restarted + told and restarted <= len(orphans), out
    assert restarted + told + others <= len(left_running), (left_running, out)
    every = trials_of(tmp_path, "killed")
    # a kill inside study.ask leaves a trial without all its parameters: abandoned, not counted
    abandoned = [t for t in every if t.user_attrs.get("abandoned")]
    assert all(t.state is TrialState.FAIL and "run_id" not in t.user_attrs for t in abandoned), abandoned
    assert len(abandoned) == out.count("abandoned (the driver stopped while sampling it)") <= 1, out
    trials = [t for t in every if not t.user_attrs.get("abandoned")]
    assert sum(t.state is TrialState.COMPLETE for t in trials) == 5 and len(trials) == 5, \
        "; ".join(f"{t.number} {t.state.name} {t.user_attrs}" for t in every)  # none lost
    assert all(every[n].user_attrs["run_id"] == r and every[n].state is TrialState.COMPLETE
               for n, r in finished_before.items())
    for run_id in finished_before.values():  # finished before the kill: not trained again
        stdout = (tmp_path / "results" / "killed" / run_id / "stdout.txt").read_text()
        assert stdout.count("sweep.job ") == 1


def _finished(root: Path, sweep: str) -> int:
    """How many trials of the sweep's study have ended (0 while the study is not created yet)."""
    try:
        return sum(t.state.is_finished() for t in trials_of(root, sweep))
    except KeyError:
        return 0


def _jobs_under(folder: Path) -> list[int]:
    """The pids of job processes (python -m sweep.job) working in a folder under `folder`."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and b"sweep.job" in (proc / "cmdline").read_bytes() \
                    and str(folder) in os.readlink(proc / "cwd"):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def test_sweep_submit_on_a_search_grid_is_the_search(tmp_path, capsys):
    grid = tmp_path / "g.yaml"
    grid.write_text(search_text("data/x.npz"))
    assert main(["--root", str(tmp_path), "submit", str(grid), "--dry-run"]) == 0
    assert "is a search grid" in capsys.readouterr().out
    assert not (tmp_path / "jobs").exists()
    (tmp_path / "plain.yaml").write_text(search_text("data/x.npz").split("search:")[0].replace(
        "{low: 1.0e-5, high: 3.0e-2, log: true}", "[0.001, 0.01]"))
    assert main(["--root", str(tmp_path), "search", str(tmp_path / "plain.yaml"), "--local"]) == 2
    assert "has no search: block" in capsys.readouterr().err


def test_the_driver_log_escapes_what_it_did_not_write(tmp_path):
    """A hold reason or a job's error text is not the driver's: it reaches the terminal and
    results/<sweep>/driver/search.log escaped (no terminal control sequence, one line)."""
    from sweep.search.stage import driver_log

    spec = parse_grid(search_text("data/x.npz", sweep="esc"), "g", tmp_path)
    shown: list[str] = []
    note = driver_log(spec, tmp_path, shown.append)
    note("trial 0: its job is held (code 1): \x1b[2J\x1b]0;owned\x07 quota\nexecutable = /bin/sh")
    written = (tmp_path / "results" / "esc" / "driver" / "search.log").read_text()
    for text in (shown[0], written):
        assert "\x1b" not in text and "\x07" not in text and text.rstrip("\n").count("\n") == 0
        assert "quota" in text


def test_a_search_without_an_answering_schedd_fails_and_writes_nothing(tmp_path, small_dataset):
    """A pool whose schedd does not answer: `sweep search` never falls back to this machine."""
    config = tmp_path / "condor_config"
    config.write_text("COLLECTOR_HOST = 127.0.0.1:9\nCONDOR_HOST = 127.0.0.1:9\nSCHEDD_HOST = 127.0.0.1:9\n")
    grid = tmp_path / "g.yaml"
    grid.write_text(search_text(small_dataset, sweep="nopool"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("_CONDOR_")}
    env.update(CONDOR_CONFIG=str(config), PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "sweep.cli", "--root", str(tmp_path), "search", str(grid)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "127.0.0.1:9" in proc.stderr and "Nothing was written" in proc.stderr
    assert not (tmp_path / "jobs").exists() and not (tmp_path / "results").exists()


def test_a_trial_left_half_asked_by_a_killed_driver_is_abandoned_not_counted(tmp_path, small_dataset):
    """A driver killed inside study.ask leaves a RUNNING trial without all its parameters (seen in
    CI: the resumed driver crashed on it). The next driver abandons it (FAIL, not counted)."""
    from sweep.search.driver import Driver
    from sweep.search.trials import LocalTrials

    grid = tmp_path / "g.yaml"
    grid.write_text(search_text(small_dataset, sweep="half"))
    spec = load_grid(grid, tmp_path)
    study = studies.open_study(spec, tmp_path)
    study.ask()  # created, no parameter sampled yet: what a kill inside ask leaves
    driver = Driver(spec, tmp_path, LocalTrials(spec), log=lambda m: None)
    driver.study = study
    driver._resume()
    (trial,) = study.get_trials(deepcopy=False)
    assert trial.state is TrialState.FAIL and trial.user_attrs["abandoned"]
    assert driver._used() == 0 and not driver.active


def test_a_local_trial_waits_for_its_driver_s_verdict_on_each_epoch(tmp_path, monkeypatch):
    """The file channel's report returns once the driver has judged the epoch (progress.seen) or
    asked the job to stop; a driver that does not answer is waited for once, then never again."""
    import threading

    from sweep.job import progress
    from sweep.search.trials import LocalTrials, TrialJob

    channel = progress.FileChannel(tmp_path, log=lambda m: notes.append(m), prunable=True)
    notes: list[str] = []
    done = threading.Event()
    reporter = threading.Thread(target=lambda: (channel.report([0.5]), done.set()))
    reporter.start()
    assert not done.wait(0.5)  # reported, not yet judged: the job waits
    from sweep.records.progress import read_progress

    assert read_progress(tmp_path).values == [0.5]
    executor = LocalTrials.__new__(LocalTrials)  # its judged() needs no backend
    executor.judged(TrialJob("r", "pid:1", tmp_path), 1)
    assert done.wait(5) and not notes
    reporter.join()
    # the next epoch is answered by a stop request
    stop = threading.Thread(target=lambda: channel.report([0.5, 0.4]))
    stop.start()
    (tmp_path / "prune.request").write_text("pruned by the search's driver\n")
    stop.join(5)
    assert not stop.is_alive() and channel.stop_requested()
    # a silent driver: waited for up to the timeout once, then the job trains on without waiting
    (tmp_path / "prune.request").unlink()
    monkeypatch.setattr(progress, "VERDICT_TIMEOUT_S", 0.3)
    channel.report([0.5, 0.4, 0.3])
    assert channel.driver_silent and "did not judge epoch 3" in notes[0]
    channel.report([0.5, 0.4, 0.3, 0.2])  # at once
    assert len(notes) == 1
