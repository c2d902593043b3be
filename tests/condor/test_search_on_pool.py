"""Adaptive search on a real personal HTCondor pool: the driver is a real local-universe job, the
trials real Keras trainings, pruning goes through chirp, and the faults are real (the driver
killed with SIGKILL and restarted by the schedd, a trial's job held with condor_hold).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from optuna.trial import TrialState

from tests.condor.owner import sweep_cli
from sweep.records.events import attempts_by_run, read_event_log

from test_sweep_on_pool import condor_pool_schedd, wait_until


def search_grid(root: Path, sweep: str, search: str, epochs: int = 4, max_samples: int = 4000) -> Path:
    path = root / f"{sweep}.yaml"
    path.write_text(
        f"sweep: {sweep}\nmodel: lstm\nseed: 5\ndata: {{path: data/small.npz, max_samples: {max_samples}}}\n"
        f"params: {{topology: [32, 64, 1], epochs: {epochs}, patience: {epochs}}}\n"
        "axes:\n  learning_rate: {low: 1.0e-5, high: 3.0e-2, log: true}\n  optimizer: [adam, sgd]\n"
        f"search: {search}\n"
        # 1.5 GB: these LSTMs peak at 0.85-0.95 GB, and a CI run once saw one held over a 1 GB request
        # (memory holds make a retried trial: not what these tests are about)
        "resources: {request_cpus: 1, request_memory: 1500MB, request_disk: 200MB, runtime: 10m}\n")
    path.chmod(0o644)
    return path


def study_trials(root: Path, sweep: str):
    from sweep.search.study import load_study

    return load_study(root / "results" / sweep / "study.journal", sweep).get_trials(deepcopy=False)


def driver_ad(sweep: str):
    ads = condor_pool_schedd().query(constraint=f'SweepName == "{sweep}" && SweepRole == "driver"',
                                     projection=["ClusterId", "JobStatus", "NumJobStarts", "JobPid"])
    return ads[0] if ads else None


def driver_pid(root: Path, sweep: str) -> int | None:
    """The running driver's pid: the process whose command line is the driver's (local universe)."""
    return local_job_pid(root / "jobs" / sweep / "search.yaml")


def local_job_pid(frozen: Path) -> int | None:
    """The pid of sweep's local-universe job (a search driver, a chain) that runs `frozen --driver`."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if str(frozen).encode() in cmd and b"--driver" in cmd:
                return int(proc.name)
    return None


def test_a_search_prunes_through_chirp_and_survives_its_driver_killed(project, condor_pool, capsys):
    sweep = "pool-search"
    g = search_grid(project, sweep, "{sampler: random, trials: 6, parallel: 2, pruner: median, startup_trials: 2, "
                                    "warmup_epochs: 1, seed: 77}")
    assert sweep_cli(project, "search", str(g), "--condor", "--no-progress") == 0
    out = capsys.readouterr().out
    assert "search driver of sweep 'pool-search' is job" in out and "local universe" in out
    # the driver runs under the schedd, not under this process: kill it in the middle of the search
    wait_until(lambda: sum(t.state.is_finished() for t in study_trials(project, sweep)) >= 2
               if (project / "results" / sweep / "study.journal").exists() else False, 240, "two finished trials")
    before = {t.number: t.state for t in study_trials(project, sweep)}
    pid = wait_until(lambda: driver_pid(project, sweep), 30, "the driver's process")
    os.kill(pid, signal.SIGKILL)
    # the schedd starts it again (on_exit_remove: killed by a signal), and it resumes from the journal
    wait_until(lambda: (driver_ad(sweep) or {}).get("NumJobStarts", 0) >= 2 or driver_ad(sweep) is None, 120,
               "the schedd to restart the driver")
    wait_until(lambda: driver_ad(sweep) is None, 480, "the search to end")
    log = (project / "results" / sweep / "driver" / "search.log").read_text()
    assert log.count("starting (pid") == 2, log  # started, killed, started again
    assert "finished: " in log

    every = study_trials(project, sweep)
    # a kill that lands inside study.ask leaves a trial without all its parameters: abandoned by the
    # restarted driver (FAIL, nothing started for it) and not counted against search.trials
    abandoned = [t for t in every if t.user_attrs.get("abandoned")]
    assert all(t.state is TrialState.FAIL and "run_id" not in t.user_attrs for t in abandoned), abandoned
    assert len(abandoned) <= 1 and (not abandoned or "abandoned (the driver stopped while sampling it)" in log), log
    trials = [t for t in every if not t.user_attrs.get("abandoned")]
    # lost: none (every trial ended; those finished before the kill kept their state)
    assert len(trials) == 6 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials), \
        "; ".join(f"{t.number} {t.state.name} {t.user_attrs}" for t in every) + "\n" + log
    assert all(every[n].state == s for n, s in before.items() if s.is_finished())
    # doubled: none (each run's job ran once; a trial that sampled a point already trained reused it)
    runs = attempts_by_run(read_event_log(project / "results" / sweep / "events.log"))
    jobs_of = {t.user_attrs["run_id"]: t for t in trials if not t.user_attrs.get("reused")}
    assert set(runs) == set(jobs_of)
    assert all(len(jobs) == 1 and jobs[0].starts == 1 for jobs in runs.values()), \
        {r: [(j.job_id, j.starts, j.state) for j in jobs] for r, jobs in runs.items()}
    # the pruner has every epoch of each finished trial, also those the driver's polling missed
    for t in trials:
        if t.state is TrialState.COMPLETE and not t.user_attrs.get("reused"):
            metrics = json.loads((project / "results" / sweep / t.user_attrs["run_id"] / "metrics.json").read_text())
            assert sorted(t.intermediate_values) == list(range(1, metrics["epochs_run"] + 1)), t.number
    # pruned through chirp while training: the job waited for each epoch's verdict (progress.seen, read
    # through chirp), read prune.request and stopped at the epoch its pruner judged, not later
    pruned = [t for t in trials if t.state is TrialState.PRUNED and not t.user_attrs.get("reused")]
    assert pruned, [(t.number, t.state, t.intermediate_values) for t in trials]
    for t in pruned:
        folder = project / "results" / sweep / t.user_attrs["run_id"]
        info = json.loads((folder / "run.json").read_text())
        assert info["status"] == "pruned" and 1 <= info["pruned_at_epoch"] < 4, info
        stdout = (folder / "stdout.txt").read_text()
        assert "through chirp" in stdout and "pruned by the search's driver" in stdout
        assert len(t.intermediate_values) == info["pruned_at_epoch"], (t.intermediate_values, info)
    # collect ranks the completed trials and lists the pruned ones apart with the epoch they reached
    assert sweep_cli(project, "collect", sweep) == 0
    out = capsys.readouterr().out
    assert "pruned while training (not ranked)" in out and "sampler random, pruner median" in out
    board = (project / "results" / sweep / "leaderboard.csv").read_text().splitlines()
    assert len(board) - 1 == len({t.user_attrs["run_id"] for t in trials if t.state is TrialState.COMPLETE})


def test_a_held_trial_is_failed_with_its_reason_and_tried_again(project, condor_pool, capsys):
    sweep = "pool-search-hold"
    g = search_grid(project, sweep, "{sampler: random, trials: 2, parallel: 2, pruner: none, retries: 1, seed: 4}",
                    epochs=2, max_samples=3000)
    assert sweep_cli(project, "search", str(g), "--condor", "--no-progress") == 0
    schedd = condor_pool_schedd()
    first = wait_until(lambda: schedd.query(constraint=f'SweepName == "{sweep}" && SweepTrial == 0',
                                            projection=["ClusterId", "ProcId"]), 120, "trial 0's job")
    job = f"{first[0]['ClusterId']}.{first[0]['ProcId']}"
    hold = condor_pool.tool("condor_hold", "-reason", "disk quota of the test", job)  # a real hold (code 1)
    assert hold.returncode == 0, hold.stderr
    wait_until(lambda: driver_ad(sweep) is None, 300, "the search to end")
    trials = study_trials(project, sweep)
    failed = trials[0]
    assert failed.state is TrialState.FAIL
    assert "held" in failed.user_attrs["fail_reason"] and "disk quota of the test" in failed.user_attrs["fail_reason"]
    retry = [t for t in trials if t.user_attrs.get("retry_of") == 0]
    assert len(retry) == 1 and retry[0].params == failed.params and retry[0].state is TrialState.COMPLETE
    assert sum(t.state is TrialState.COMPLETE for t in trials) == 2  # the retry does not count against trials
    # the held job is gone from the queue: nothing left behind
    assert not schedd.query(constraint=f'SweepName == "{sweep}"', projection=["ClusterId"])
    runs = attempts_by_run(read_event_log(project / "results" / sweep / "events.log"))
    held = runs[failed.user_attrs["run_id"]]
    # (its hold is in the log when the shadow wrote it before the removal; the driver may remove the job first)
    assert held[0].state == "removed" and len(held) == 2 and held[1].state == "done"
    assert sweep_cli(project, "collect", sweep) == 0


@pytest.fixture(autouse=True)
def _no_driver_left(condor_pool):
    """A failed test must not leave a driver that goes on submitting."""
    yield
    condor_pool.tool("condor_rm", "-constraint", 'SweepRole == "driver" || SweepTrial =!= undefined')
