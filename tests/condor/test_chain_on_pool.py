"""The two-step chain on a real personal HTCondor pool: `sweep chain --condor` submits one
local-universe job, whose stages submit and follow each grid's sweep as HTCondor jobs (real
Keras trainings), and the simulation with the LSTM leader and the evaluation of both leaders as
vanilla jobs of their own. The faults are real: the chain job is killed with SIGKILL while its
clusterizer sweep runs, and again while its evaluation job runs; the schedd starts it again each
time, and it goes on without losing or redoing a run or a step."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from tests.condor.owner import sweep_cli
from sweep.records.events import attempts_by_run, read_event_log

from test_search_on_pool import local_job_pid
from test_sweep_on_pool import condor_pool_schedd, wait_until
from tests.test_chain import pipeline


def chain_ad(name: str):
    ads = condor_pool_schedd().query(constraint=f'SweepName == "{name}" && SweepRole == "chain"',
                                     projection=["ClusterId", "JobStatus", "NumJobStarts"])
    return ads[0] if ads else None


def chain_pid(root: Path, name: str) -> int | None:
    """The running chain job's pid: the process whose command line is the chain job's."""
    return local_job_pid(root / "jobs" / name / "chain.yaml")


def stage_state(root: Path, name: str, stage: str) -> str | None:
    try:
        return json.loads((root / "results" / name / "chain.json").read_text())["stages"].get(stage, {}).get("state")
    except (OSError, ValueError, KeyError):
        return None


def test_a_chain_runs_on_the_pool_as_one_job_and_survives_being_killed(project, condor_pool, capsys):
    root = project
    # a run per grid (the kills are what is tested); the evaluation's job asks for both of the pool's cores
    path = pipeline(root, name="pool-chain", rates=(0.003,), evaluate_extra=", request_cpus: 2, runtime: 3h")
    condor_pool.prepare_dir(root)
    assert sweep_cli(root, "chain", str(path), "--condor", "--no-progress") == 0
    out = capsys.readouterr().out
    assert "the chain pool-chain is job" in out and "local universe" in out
    # a second chain job of the same chain is refused while the first is queued
    assert sweep_cli(root, "chain", str(path), "--condor", "--no-progress") == 1
    assert "already has its job in the queue" in capsys.readouterr().err

    wait_until(lambda: stage_state(root, "pool-chain", "clusters") == "running", 600, "the clusterizer stage")
    pid = wait_until(lambda: chain_pid(root, "pool-chain"), 30, "the chain job's process")
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: (chain_ad("pool-chain") or {}).get("NumJobStarts", 0) >= 2 or chain_ad("pool-chain") is None,
               120, "the schedd to start the chain job again")
    # killed again while its evaluation runs as a job of its own: the chain job started anew follows
    # that job (or takes its step.json, had it ended meanwhile) and submits no second one
    wait_until(lambda: stage_state(root, "pool-chain", "evaluate") == "running" and
               (json.loads((root / "results" / "pool-chain" / "chain.json").read_text())["stages"]["evaluate"]
                .get("job")), 600, "the evaluation job")
    pid = wait_until(lambda: chain_pid(root, "pool-chain"), 30, "the chain job's process")
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: chain_ad("pool-chain") is None, 900, "the chain to end")

    log = (root / "results" / "pool-chain" / "chain.log").read_text()
    # the restarted chain job either followed the queued evaluation job or took its step.json
    assert "step evaluate: following its job" in log or "step evaluate: its job had ended" in log, log
    assert log.count("starting on the pool") == 3 and log.rstrip().count("chain pool-chain finished") == 1, log
    record = json.loads((root / "results" / "pool-chain" / "chain.json").read_text())
    stages = record["stages"]
    assert [stages[s]["state"] for s in ("peaks", "simulate", "clusters", "evaluate")] == ["done"] * 4, stages
    assert record["jobs"] and record["jobs"][0]["owner"]
    # lost: none, doubled: none: each run of both sweeps is one job that started once
    for sweep in ("tiny-lstm", "pool-chain-clusters"):
        runs = attempts_by_run(read_event_log(root / "results" / sweep / "events.log"))
        assert len(runs) == 1 and all(len(jobs) == 1 and jobs[0].starts == 1 for jobs in runs.values()), \
            {r: [(j.job_id, j.starts, j.state) for j in jobs] for r, jobs in runs.items()}
    # the simulation and the evaluation were vanilla jobs of the pool, each submitted and started once
    steps = read_event_log(root / "results" / "pool-chain" / "steps" / "events.log")
    assert {f"{c}.{p}" for c, p in steps} == {stages["simulate"]["job"], stages["evaluate"]["job"]}, steps
    assert all(j.starts == 1 and j.exit_code == 0 for j in steps.values()), steps
    history = list(condor_pool_schedd().history(constraint='SweepName == "pool-chain" && SweepRole == "step"',
                                                projection=["JobUniverse", "SweepRunId", "RequestCpus",
                                                            "AllowedExecuteDuration"]))
    assert sorted(str(ad["SweepRunId"]).split("-")[0] for ad in history) == ["evaluate", "simulate"], history
    assert {int(ad["JobUniverse"]) for ad in history} == {5}  # vanilla, not the chain job's local universe
    # evaluate.request_cpus: its job asked for 2 CPUs and its TensorFlow used what the slot gave; the
    # simulation asks for the peak grid's 1
    assert {str(ad["SweepRunId"]).split("-")[0]: int(ad["RequestCpus"]) for ad in history} == \
        {"evaluate": 2, "simulate": 1}, history
    # evaluate.runtime: the evaluation may run 3 h; the simulation the grids' longest runtime (20m)
    assert {str(ad["SweepRunId"]).split("-")[0]: int(ad["AllowedExecuteDuration"]) for ad in history} == \
        {"evaluate": 3 * 3600, "simulate": 20 * 60}, history
    ev_step = json.loads((root / "results" / "pool-chain" / "steps" / f"evaluate-{stages['evaluate']['inputs_hash']}"
                          / "step.json").read_text())
    assert ev_step["threads"]["cpus"] == 2, ev_step["threads"]
    ev = json.loads((root / "results" / "pool-chain" / "evaluation" / "evaluation.json").read_text())
    assert "lstm_cnn" in ev["clusters"] and ev["tracks"]["n_tracks"] == 6
    # the clusterizer trained on the peaks of the LSTM leader the chain chose
    from sweep.physics.datasets import read_meta

    meta = read_meta(root / "data" / "pool-chain-cnn.npz")
    assert meta["cluster_input"]["peak_model"]["sha256"] == stages["peaks"]["leader"]["sha256"]
    assert sweep_cli(root, "status", "pool-chain") == 0
    out = capsys.readouterr().out
    assert "evaluate  done" in out and "pool-chain-clusters:" in out
