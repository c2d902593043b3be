"""sweep on a real personal HTCondor pool: DAG and direct submission, status, resources from the
event log, and the faults (non-zero exit + retries, memory hold + escalation, condor_rm,
interrupted submit, runtime limit, unreachable schedd).

Jobs are real HTCondor jobs. The end-to-end test trains real Keras models; the fault tests use
small job scripts (the grid's own `templates:` folder, a real feature) so that each fault can be
caused for real in seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

import pandas as pd
import pytest

from tests.condor.owner import popen_sweep, run_sweep, sweep_cli
from tests.conftest import RUN_PART_SH, wait_until

REPO = Path(__file__).resolve().parents[2]
BUILTIN = REPO / "templates"

# a stand-in job that writes a valid result quickly
QUICK_JOB = r"""#!/bin/sh
set -e
{extra}
cat > metrics.json <<EOF
{{"test": {{"f1": 0.9, "auc": 0.95, "eff_purity": 0.8}}, "best_epoch": 1, "epochs_run": 1}}
EOF
echo '{{"status": "ok", "exit_code": 0}}' > run.json
"""


def grid(root: Path, sweep: str, axes: str = "  optimizer: [adam, sgd]\n", extra: str = "", runtime: str = "10m",
         memory: str = "1GB", data: str = "data/small.npz", params: str = "") -> Path:
    path = root / f"{sweep}.yaml"
    path.write_text(f"sweep: {sweep}\nmodel: lstm\nseed: 5\ndata: {{path: {data}, max_samples: 3000}}\n"
                    f"params: {{topology: [32, 64, 1], epochs: 2, patience: 5, learning_rate: 0.005{params}}}\n"
                    f"axes:\n{axes}"
                    f"resources: {{request_cpus: 1, request_memory: {memory}, request_disk: 200MB, "
                    f"runtime: {runtime}}}\n"
                    + extra)
    return path


def job_templates(root: Path, body: str) -> str:
    folder = root / "tpl"
    folder.mkdir(exist_ok=True)
    shutil.copy(BUILTIN / "job.sub.j2", folder / "job.sub.j2")
    (folder / "run_job.sh.j2").write_text(body)
    return "templates: tpl\n"


def events(root: Path, sweep: str):
    from sweep.records.events import attempts_by_run, read_event_log

    return attempts_by_run(read_event_log(root / "results" / sweep / "events.log"))


def test_dag_sweep_trains_real_models_and_collects(project, condor_pool, capsys):
    g = grid(project, "pool-e2e")
    code = sweep_cli(project, "submit", str(g), "--condor", "--wait", "--wait-timeout", "400", "--no-progress")
    out = capsys.readouterr().out
    assert code == 0, out
    assert "htcondor: submitted 2 runs" in out and "DAG" in out
    board = pd.read_csv(project / "results" / "pool-e2e" / "leaderboard.csv")
    assert len(board) == 2 and board["f1"].iloc[0] >= board["f1"].iloc[1]
    assert "right-sizing for the next sweep" in out
    # where the jobs' time went, their wait in the queue apart
    assert "training efficiency " in out and "queue wait (not allocated): median " in out

    # the FINAL node ran `sweep collect` on the schedd's side
    manifest = json.loads((project / "jobs" / "pool-e2e" / "sweep.json").read_text())
    sub = manifest["submissions"][-1]
    assert sub["state"] == "submitted" and sub["mode"] == "dag"
    # the longest runs first: every node has its priority (core/cost.py), which DAGMan accepted
    dag = Path(sub["dag"]).read_text()
    assert sorted(line.split()[2] for line in dag.splitlines() if line.startswith("PRIORITY ")) == ["1", "2"]
    final_out = wait_until(lambda: (Path(sub["dag"]).parent / "collect.out").read_text()
                           if (Path(sub["dag"]).parent / "collect.out").exists() else "", 60, "the FINAL node")
    assert "ranked by f1" in final_out

    # resources from the event log, cross-checked against the schedd's history
    records = events(project, "pool-e2e")
    assert set(records) == set(board["run_id"])
    for run_id, jobs in records.items():
        job = jobs[-1]
        assert job.state == "done" and job.exit_code == 0
        assert job.resources["RequestCpus"] == 1 and job.resources["Cpus"] >= 1
        assert job.resources["RequestMemory"] == 1024
        assert job.peak_memory_mb and 50 < job.peak_memory_mb < 1024  # TensorFlow + a small LSTM
        assert job.wall_s and job.wall_s > 1
        info = json.loads((project / "results" / "pool-e2e" / run_id / "run.json").read_text())
        assert info["threads"]["cpus_source"] == "HTCondor machine ad (Cpus)" and info["threads"]["intra_op"] == 1
        # the job ran sweep's code from the archive it transferred, not from the checkout
        manifest = json.loads((project / "jobs" / "pool-e2e" / "sweep.json").read_text())
        assert info["code"] == {"archive": manifest["code"]["archive"], "sha256": manifest["code"]["sha256"],
                                "loaded_from": info["code"]["loaded_from"]}
        loaded = Path(info["code"]["loaded_from"])  # the copy HTCondor put in the job's scratch folder
        assert loaded.name == manifest["code"]["archive"] and loaded.parent.parent == condor_pool.local_dir / "execute"
        assert info["device"]["trained_on"] == "CPU" and info["interpreter"]["executable"] == sys.executable
        # it received the LSTM's arrays only, and reports the dataset they were cut from
        cut = project / "jobs" / "pool-e2e" / "data" / "small.lstm.npz"
        assert info["dataset"]["sha256"] == manifest["dataset"]["sha256"] and info["dataset"]["file"] == "small.npz"
        assert info["dataset"]["transferred_bytes"] == cut.stat().st_size < manifest["dataset"]["size"]
    schedd = condor_pool_schedd()
    job = next(iter(records.values()))[-1]
    history = wait_until(lambda: list(schedd.history(constraint=f"ClusterId == {job.cluster}",
                                                     projection=["RequestMemory", "ExitCode", "RemoteWallClockTime"],
                                                     match=1)), 30, "schedd history")
    assert history[0]["ExitCode"] == 0 and int(history[0]["RequestMemory"]) == job.resources["RequestMemory"]

    # the same grid again: nothing to submit
    assert sweep_cli(project, "submit", str(g), "--condor", "--no-progress") == 0
    assert "nothing to submit" in capsys.readouterr().out


def condor_pool_schedd():
    from sweep.submit.backends.htcondor import connect

    return connect()


def test_direct_submission_retries_then_reports_failure(project, capsys):
    # exit 4, a failure a retry may cure (2 and 3, bad input and environment, are never retried)
    extra = job_templates(project, "#!/bin/sh\necho \"attempt on $(hostname)\"\necho 'ValueError: boom' >&2\nexit 4\n")
    g = grid(project, "pool-fail", axes="  optimizer: [adam]\n", extra=extra + "condor: {max_retries: 1}\n")
    assert sweep_cli(project, "submit", str(g), "--condor", "--no-dag", "--wait", "--wait-timeout", "180",
                     "--no-progress") == 0
    out = capsys.readouterr().out
    assert "job failed with exit status 4 after 2 start(s)" in out and "ValueError: boom" in out, out
    (jobs,) = events(project, "pool-fail").values()
    assert len(jobs) == 1 and jobs[0].starts == 2 and jobs[0].exit_code == 4
    assert sweep_cli(project, "status", "pool-fail") == 0
    assert "1 failed" in capsys.readouterr().out


def test_dag_retries_a_failing_node(project, capsys):
    extra = job_templates(project, "#!/bin/sh\nexit 4\n")
    g = grid(project, "pool-dagretry", axes="  optimizer: [adam]\n", extra=extra + "condor: {max_retries: 1}\n")
    assert sweep_cli(project, "submit", str(g), "--condor", "--wait", "--wait-timeout", "240", "--no-progress") == 0
    (jobs,) = events(project, "pool-dagretry").values()
    assert [j.exit_code for j in jobs] == [4, 4]  # the node ran, failed, was retried once by DAGMan
    assert "job failed with exit status 4" in capsys.readouterr().out


def test_memory_hold_is_escalated_and_remembered(project, condor_pool, capsys):
    hog = QUICK_JOB.format(extra=f"{sys.executable} -c \"b = bytearray(300 * 1024 * 1024); import time; "
                                 "b[::4096] = b'x' * len(b[::4096]); time.sleep(6)\"")
    extra = job_templates(project, hog)
    g = grid(project, "pool-mem", axes="  optimizer: [adam]\n", memory="120MB",
             extra=extra + "condor: {memory_escalation: {max_memory: 1GB, releases: 2}}\n")
    assert sweep_cli(project, "submit", str(g), "--condor", "--no-dag", "--wait", "--wait-timeout", "240",
                     "--no-progress") == 0
    (jobs,) = events(project, "pool-mem").values()
    job = jobs[-1]
    assert job.holds, "the job was never held for memory"
    from sweep.records.events import is_memory_hold

    assert is_memory_hold(job.holds[0].code, job.holds[0].subcode), job.holds[0]
    assert job.state == "done" and job.starts >= 2
    assert job.resources["RequestMemory"] > 300  # rerun with 1.5x what it used
    manifest = json.loads((project / "jobs" / "pool-mem" / "sweep.json").read_text())
    (learned,) = manifest["learned_memory_mb"].values()
    assert learned > 300
    # the next render starts at the remembered value
    assert sweep_cli(project, "submit", str(g), "--dry-run", "--show", "--force") == 0
    shown = capsys.readouterr().out  # the submit description, then the run's values (its VARS)
    assert "ifThenElse(isUndefined(MemoryUsage), $(sweep_memory_mb)," in shown
    assert f"\nsweep_memory_mb = {learned}\n" in shown


def test_condor_rm_is_reported_removed_and_resubmittable(project, condor_pool, capsys):
    extra = job_templates(project, "#!/bin/sh\nsleep 300\n")
    g = grid(project, "pool-rm", axes="  optimizer: [adam]\n", extra=extra)
    assert sweep_cli(project, "submit", str(g), "--condor", "--no-dag", "--no-progress") == 0
    wait_until(lambda: any(j.state == "running" for jobs in events(project, "pool-rm").values() for j in jobs),
               120, "the job to start")
    (jobs,) = events(project, "pool-rm").values()
    rm = condor_pool.tool("condor_rm", jobs[0].job_id)
    assert rm.returncode == 0, rm.stderr
    wait_until(lambda: events(project, "pool-rm") and next(iter(events(project, "pool-rm").values()))[-1].state
               == "removed", 60, "the removal")
    capsys.readouterr()
    assert sweep_cli(project, "status", "pool-rm") == 0
    assert "1 removed" in capsys.readouterr().out
    assert sweep_cli(project, "resubmit", "pool-rm", "--failed", "--no-dag", "--no-progress") == 0
    assert "submitted 1 runs" in capsys.readouterr().out
    schedd = condor_pool_schedd()
    queued = schedd.query(constraint='SweepName == "pool-rm"', projection=["ClusterId", "JobStatus"])
    assert len(queued) == 1 and queued[0]["ClusterId"] != jobs[0].cluster
    condor_pool.tool("condor_rm", str(queued[0]["ClusterId"]))


def test_interrupted_submit_then_resubmit_runs_everything_once(project, condor_pool, capsys):
    extra = job_templates(project, QUICK_JOB.format(extra="sleep 2"))
    g = grid(project, "pool-int", axes="  optimizer: [adam, sgd, rmsprop, nadam]\n", extra=extra)
    proc = popen_sweep(project, "submit", str(g), "--condor", "--no-progress", stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    time.sleep(2.5)  # somewhere in validation, rendering or submission
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert sweep_cli(project, "submit", str(g), "--condor", "--wait", "--wait-timeout", "240",
                     "--no-progress") == 0
    # one more submit after everything finished: nothing to do
    assert sweep_cli(project, "submit", str(g), "--condor", "--no-progress") == 0
    assert "nothing to submit" in capsys.readouterr().out
    records = events(project, "pool-int")
    assert len(records) == 4
    assert all(len(jobs) == 1 and jobs[0].starts == 1 for jobs in records.values()), {
        k: [(j.job_id, j.starts, j.state) for j in v] for k, v in records.items()}


def test_runtime_limit_ends_a_long_job(project, capsys):
    extra = job_templates(project, "#!/bin/sh\nsleep 300\n")
    g = grid(project, "pool-slow", axes="  optimizer: [adam]\n", runtime="5s", extra=extra)
    assert sweep_cli(project, "submit", str(g), "--condor", "--no-dag", "--wait", "--wait-timeout", "180",
                     "--no-progress") == 0
    out = capsys.readouterr().out
    (jobs,) = events(project, "pool-slow").values()
    assert jobs[-1].holds and jobs[-1].holds[0].code in (46, 47), jobs[-1].holds
    assert jobs[-1].state == "removed"
    assert "removed" in out and "duration" in out.lower()


def test_unreachable_schedd_fails_fast_and_writes_nothing(project):
    config = project / "condor_config"
    config.write_text("COLLECTOR_HOST = 127.0.0.1:9\nCONDOR_HOST = 127.0.0.1:9\nSCHEDD_HOST = 127.0.0.1:9\n")
    g = grid(project, "nopool")
    # (the timeout only keeps a hang from stalling the suite: tests never time things)
    proc = run_sweep(project, "submit", str(g), "--condor", env={"CONDOR_CONFIG": str(config)}, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "127.0.0.1:9" in proc.stderr and "--local" in proc.stderr
    assert not (project / "jobs").exists() and not (project / "results").exists()


def test_dag_throttle_runs_at_most_max_running_at_once(project):
    extra = job_templates(project, QUICK_JOB.format(extra="sleep 1"))
    g = grid(project, "pool-throttle", axes="  optimizer: [adam, sgd, rmsprop]\n",
             extra=extra + "condor: {max_running: 1}\n")
    assert sweep_cli(project, "submit", str(g), "--condor", "--wait", "--wait-timeout", "240", "--no-progress") == 0
    dag = next((project / "jobs" / "pool-throttle" / "dags").iterdir()) / "sweep.dag"
    assert "MAXJOBS runs 1" in dag.read_text()
    spans = sorted((j.started, j.ended) for jobs in events(project, "pool-throttle").values() for j in jobs)
    assert len(spans) == 3
    assert all(later[0] >= earlier[1] for earlier, later in pairwise(spans)), spans  # one after another


def test_simultaneous_submits_of_one_grid_queue_each_run_once(project, condor_pool):
    """Two `sweep submit` of the same grid started at the same moment: one decides and submits,
    the other waits for the sweep's lock, then finds every run queued. Six pairs, every pair a
    fresh sweep: each must end with exactly one DAG."""
    extra = job_templates(project, QUICK_JOB.format(extra="sleep 30"))
    schedd = condor_pool_schedd()
    doubled = []
    for pair in range(6):
        name = f"pool-race{pair}"
        g = grid(project, name, axes="  optimizer: [adam, sgd]\n", extra=extra)
        procs = [popen_sweep(project, "submit", str(g), "--condor", "--no-progress", stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True) for _ in range(2)]
        outs = [p.communicate(timeout=120)[0] for p in procs]
        assert all(p.returncode == 0 for p in procs), outs
        dagmans = schedd.query(constraint=f'SweepName =?= "{name}" && SweepRole =?= "dagman"',
                               projection=["ClusterId"])
        submissions = json.loads((project / "jobs" / name / "sweep.json").read_text())["submissions"]
        if len(dagmans) != 1 or len(submissions) != 1:
            doubled.append((name, len(dagmans), len(submissions), outs))
        assert sum("nothing to submit" in o for o in outs) == 1, outs
        for ad in dagmans:
            condor_pool.tool("condor_rm", str(ad["ClusterId"]))
    assert not doubled, doubled


def test_two_owners_with_the_same_grid_see_and_touch_only_their_own_jobs(condor_pool, condor_pool_module,
                                                                          condor_job_dir, small_dataset):
    """Colleagues on one schedd run the same shipped grid: same sweep name, same run ids. Owner A
    (the pool's job owner) and owner B (another dedicated user, its own IDTOKEN) submit it from two
    checkouts, each as themselves. B must not skip A's queued runs, B's status counts only B's
    jobs, and B's resubmit never removes A's held jobs."""
    if os.geteuid() != 0:
        pytest.fail("the two-owner test needs root (it acts as two users with their own IDTOKENs)", pytrace=False)
    a_user, b_user = condor_pool.job_owner, "sweeptest-b"
    b = condor_pool_module.ensure_user(b_user)
    tokens_b = condor_pool.create_token(b_user)
    projects = {}
    for who in ("a", "b"):
        folder = condor_job_dir / who
        (folder / "data").mkdir(parents=True)
        shutil.copy(small_dataset, folder / "data" / "small.npz")
        # never matched: the jobs stay idle in the queue for as long as the test looks at them
        grid(folder, "shared", axes="  optimizer: [adam, sgd]\n", extra="condor: {requirements: 'False'}\n")
        condor_pool.prepare_dir(folder)
        projects[who] = folder
    for base, dirs, files in os.walk(projects["b"]):
        for name in [base, *(os.path.join(base, n) for n in dirs + files)]:
            os.chown(name, b.pw_uid, b.pw_gid)
    as_b = {"SWEEP_JOB_OWNER": b_user, "SWEEP_IDTOKENS_DIR": str(tokens_b)}

    def sweep(who: str, *args: str) -> str:
        proc = run_sweep(projects[who], *args, env=as_b if who == "b" else None, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    out_a = sweep("a", "submit", str(projects["a"] / "shared.yaml"), "--condor", "--no-dag", "--no-progress")
    assert "0 queued or running, 2 to submit" in out_a
    out_b = sweep("b", "submit", str(projects["b"] / "shared.yaml"), "--condor", "--no-dag", "--no-progress")
    assert "0 queued or running, 2 to submit" in out_b, out_b  # A's queued runs are not B's
    schedd = condor_pool_schedd()
    owners = sorted(str(ad["Owner"]) for ad in schedd.query('SweepName =?= "shared"', projection=["Owner"]))
    assert owners == sorted([a_user, a_user, b_user, b_user])

    condor_pool.tool("condor_hold", "-constraint", f'Owner == "{a_user}" && SweepName =?= "shared"', check=True)
    assert "shared: 2 idle" in sweep("b", "status", "shared")  # not A's held jobs
    assert "shared: 2 held" in sweep("a", "status", "shared")
    sweep("b", "resubmit", "shared", "--failed", "--no-dag", "--no-progress", "--no-collect")
    left = schedd.query(f'Owner == "{a_user}" && SweepName =?= "shared"', projection=["JobStatus"])
    assert [int(ad["JobStatus"]) for ad in left] == [5, 5]  # A's held jobs are still there, still held
    # A again: its own two runs are queued (held), nothing new is submitted
    assert "2 queued or running, 0 to submit" in sweep("a", "submit", str(projects["a"] / "shared.yaml"), "--condor",
                                                       "--no-dag", "--no-progress")
    condor_pool.tool("condor_rm", "-constraint", 'SweepName =?= "shared"', check=True)


def _dagman_exit(project: Path, sweep: str) -> int:
    """The exit code of the sweep's (last) DAGMan job, from the schedd's history."""
    manifest = json.loads((project / "jobs" / sweep / "sweep.json").read_text())
    cluster = manifest["submissions"][-1]["cluster"]
    schedd = condor_pool_schedd()
    (ad,) = wait_until(lambda: list(schedd.history(constraint=f"ClusterId == {cluster}", projection=["ExitCode"],
                                                   match=1)), 60, "the DAGMan job in the history")
    return int(ad["ExitCode"])


def test_a_dag_with_a_failed_node_ends_as_a_failure(project, capsys):
    """The FINAL node collects whatever happened, and (given $(DAG_STATUS) and $(FAILED_COUNT))
    exits non-zero when nodes failed: a DAG whose FINAL node succeeds counts as successful."""
    body = ("#!/bin/sh\n" + RUN_PART_SH + "if printf %s \"$part\" | grep -q sgd; then echo 'boom' >&2; exit 4; fi\n"
            + QUICK_JOB.format(extra=""))
    extra = job_templates(project, body) + "condor: {max_retries: 0}\n"
    g = grid(project, "pool-dagfail", axes="  optimizer: [adam, sgd]\n", extra=extra)
    assert sweep_cli(project, "submit", str(g), "--condor", "--wait", "--wait-timeout", "240", "--no-progress") == 0
    capsys.readouterr()
    manifest = json.loads((project / "jobs" / "pool-dagfail" / "sweep.json").read_text())
    dag_dir = Path(manifest["submissions"][-1]["dag"]).parent
    final_out = wait_until(lambda: (dag_dir / "collect.out").read_text() if (dag_dir / "collect.out").exists() else "",
                           60, "the FINAL node")
    assert "1 of 2 runs ranked" in final_out  # collected anyway
    assert "the DAG ended with status 2: 1 node(s) failed" in (dag_dir / "collect.err").read_text()
    assert _dagman_exit(project, "pool-dagfail") != 0

    ok = grid(project, "pool-dagok", axes="  optimizer: [adam]\n",
              extra=job_templates(project, QUICK_JOB.format(extra="")))
    assert sweep_cli(project, "submit", str(ok), "--condor", "--wait", "--wait-timeout", "240", "--no-progress") == 0
    assert _dagman_exit(project, "pool-dagok") == 0


def test_status_says_why_a_dag_does_not_run(project, condor_pool, capsys):
    """A DAGMan job that is held (or that the schedd cannot start) is shown as an error, not as
    an active DAG that will finish some day."""
    extra = job_templates(project, QUICK_JOB.format(extra="sleep 60"))
    g = grid(project, "pool-dagheld", axes="  optimizer: [adam]\n", extra=extra)
    assert sweep_cli(project, "submit", str(g), "--condor", "--no-progress") == 0
    cluster = json.loads((project / "jobs" / "pool-dagheld" / "sweep.json").read_text())["submissions"][-1]["cluster"]
    condor_pool.tool("condor_hold", str(cluster), check=True)
    capsys.readouterr()
    assert sweep_cli(project, "status", "pool-dagheld") == 0
    out = capsys.readouterr().out
    assert f"DAG (cluster {cluster}) is held" in out, out
    condor_pool.tool("condor_rm", "-constraint", 'SweepName =?= "pool-dagheld"', check=True)


def test_a_dag_does_not_retry_a_job_removed_for_its_runtime_limit(project):
    """The same job would hit the same limit again: removed once, not retried (RETRY would have
    rerun it max_retries times, each time for the whole limit)."""
    extra = job_templates(project, "#!/bin/sh\nsleep 300\n") + "condor: {max_retries: 2}\n"
    g = grid(project, "pool-dagslow", axes="  optimizer: [adam]\n", runtime="5s", extra=extra)
    assert sweep_cli(project, "submit", str(g), "--condor", "--wait", "--wait-timeout", "240", "--no-progress") == 0
    (jobs,) = events(project, "pool-dagslow").values()
    assert len(jobs) == 1, [(j.job_id, j.state) for j in jobs]
    assert jobs[0].state == "removed" and jobs[0].holds[0].code in (46, 47)


def test_resubmit_of_a_memory_held_run_in_an_active_dag_runs_it_again_with_the_current_request(project, condor_pool,
                                                                                               capsys):
    """A DAG node held for memory (no escalation): `resubmit --failed` removes the held job, says
    so, and queues the run again, with the request the grid asks for now (not DAGMan's retry of
    the same request, which would be held again)."""
    # adam's job needs 300 MB (held at 120 MB until someone acts); sgd's ends at once
    hog = QUICK_JOB.format(extra=RUN_PART_SH + "printf %s \"$part\" | grep -q sgd || " + sys.executable
                           + " -c \"b = bytearray(300 * 1024 * 1024); "
                             "import time; b[::4096] = b'x' * len(b[::4096]); time.sleep(6)\"")
    extra = job_templates(project, hog) + "condor: {max_retries: 2}\n"
    g = grid(project, "pool-memdag", axes="  optimizer: [adam, sgd]\n", memory="120MB", extra=extra)
    assert sweep_cli(project, "submit", str(g), "--condor", "--no-progress") == 0

    def held_and_done():
        states = sorted(str(jobs[-1].state) for jobs in events(project, "pool-memdag").values())
        return states == ["done", "held"]
    wait_until(held_and_done, 120, "adam's memory hold and sgd's end")
    g.write_text(g.read_text().replace("request_memory: 120MB", "request_memory: 1GB"))
    capsys.readouterr()
    assert sweep_cli(project, "resubmit", "pool-memdag", "--failed", "--no-progress", "--wait", "--wait-timeout",
                     "240", "--no-collect") == 0
    out = capsys.readouterr().out
    assert "removed held job" in out and "htcondor: submitted" in out and "nothing to submit" not in out, out
    records = events(project, "pool-memdag")
    finals = {run: jobs[-1] for run, jobs in records.items()}
    assert all(j.state == "done" for j in finals.values()), {r: (j.job_id, j.state) for r, j in finals.items()}
    assert any(j.resources.get("RequestMemory") == 1024 for j in finals.values())


@pytest.mark.parametrize("mode", ["dag", "no-dag"])
def test_an_interpreter_the_worker_cannot_run_ends_the_job_as_environment_without_retries(project, capsys, mode):
    """condor.python passes the submit node's check but is not there for the job: this test's own
    virtual environment named through /proc/self/cwd, which is the checkout for `sweep submit`
    (tests/condor/owner.py runs it there) and the job's scratch folder for the job, stands for an
    interpreter that only some nodes have. The job ends at once with exit 3, the DAG does not
    retry it, collect says 'environment'."""
    python = Path("/proc/self/cwd") / Path(sys.prefix).relative_to(REPO) / "bin" / "python"
    extra = f"condor: {{max_retries: 2, python: {python}}}\n"
    name = f"pool-noenv-{mode}"
    g = grid(project, name, axes="  optimizer: [adam]\n", extra=extra)
    assert sweep_cli(project, "submit", str(g), "--condor", "--wait", "--wait-timeout", "240", "--no-progress",
                     *(["--no-dag"] if mode == "no-dag" else [])) == 0
    (jobs,) = events(project, name).values()
    assert [j.exit_code for j in jobs] == [3] and jobs[0].starts == 1  # one attempt: not retried
    out = capsys.readouterr().out
    assert "job failed (exit 3): environment:" in out, out  # collect's reason column
    (run_id,) = events(project, name)
    info = json.loads((project / "results" / name / run_id / "run.json").read_text())
    assert info["error"] == f"environment: no interpreter {python} on this node"


def test_a_job_whose_starter_is_killed_resumes_at_its_last_checkpointed_epoch(project, condor_pool, capsys):
    """Checkpoint exits every epoch (checkpoint_every 1s): HTCondor spools checkpoint/ each time.
    The starter killed once epoch 2 is done: the job starts again from the spooled checkpoint,
    history.csv has every epoch once, run.json says where it resumed."""
    import signal

    epochs = 4  # checkpointed twice, killed, resumed, and at least one epoch left to train after the kill
    g = grid(project, "pool-resume", axes="  optimizer: [adam]\n",
             extra="condor: {checkpoint_every: 1s, max_retries: 0}\n")
    g.write_text(g.read_text().replace("epochs: 2, patience: 5", f"epochs: {epochs}, patience: 50"))
    assert sweep_cli(project, "submit", str(g), "--condor", "--no-progress") == 0

    def checkpointed_twice():
        for state in (condor_pool.local_dir / "execute").glob("dir_*/checkpoint/state.json"):
            try:
                if json.loads(state.read_text())["epochs_done"] >= 2:
                    return True
            except (OSError, ValueError):
                pass
        return False

    wait_until(checkpointed_twice, 240, "a job with 2 checkpointed epochs", interval=0.2)
    killed = 0
    for pid in condor_pool.pids():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if Path(argv[0].decode()).name == "condor_starter" and b"-classad" not in argv:
                os.kill(pid, signal.SIGKILL)
                killed += 1
        except (OSError, IndexError):
            pass
    assert killed == 1
    assert sweep_cli(project, "status", "pool-resume", "--watch", "--interval", "2") == 0
    (run_id,) = events(project, "pool-resume")
    folder = project / "results" / "pool-resume" / run_id
    history = pd.read_csv(folder / "history.csv")
    assert list(history["epoch"]) == list(range(1, epochs + 1))  # each epoch once
    info = json.loads((folder / "run.json").read_text())
    assert info["status"] == "ok" and 1 <= info["resumed_from_epoch"] < epochs and info["job_starts"] == 2
    (jobs,) = events(project, "pool-resume").values()
    assert [j.starts for j in jobs] == [2]  # started, killed, started again (checkpoint exits are no starts)
    assert not (folder / "checkpoint").exists()


def test_the_pool_s_schedd_version_decides_the_memory_escalation_rendering(condor_pool):
    """The tests' pool runs HTCondor 23.9: no native retry_request_memory, so the expressions."""
    from sweep.submit.backends.htcondor import HTCondorBackend, schedd_version

    version = schedd_version()
    assert version is not None and version[:2] == (23, 9)
    assert HTCondorBackend().native_memory_retry() is False


def test_a_checkout_the_job_owner_cannot_read_runs_the_demo_grid_with_a_site_python(project, condor_pool):
    """The issue's setting: the checkout behind a folder only the submitting user (the job owner)
    can enter (what an execute node without the submit node's files would not see), TensorFlow from a 'site' virtual
    environment elsewhere that the owner can read (standing in for CVMFS or a container), and no
    sweep in it: the demo grid (its two small topologies' configurations) runs to a ranked
    leaderboard with condor.python set, each job on the code archive it was sent, in its own
    scratch folder."""
    import sysconfig

    locked = condor_pool.root / f"locked-{project.name}"
    checkout = locked / "checkout"
    for name in ("sweep", "templates", "sites"):
        shutil.copytree(REPO / name, checkout / name, ignore=shutil.ignore_patterns("__pycache__"))
    condor_pool.prepare_dir(locked)  # the owner's own, private
    locked.chmod(0o700)
    site = condor_pool.root / f"site-{project.name}" / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(site)], check=True)
    site_python = site / "bin" / "python"
    purelib = Path(subprocess.run([str(site_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    # TensorFlow and the rest from this venv's packages: a .pth names the folder (the .pth files in
    # it, such as the editable install of this checkout, are not read), so the site has no sweep
    (purelib / "tensorflow-site.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    assert subprocess.run([str(site_python), "-c", "import sweep"], capture_output=True, cwd="/").returncode != 0

    demo = (REPO / "grids" / "demo.yaml").read_text()
    demo = demo.replace("path: data/demo.npz", "path: data/small.npz")
    demo = demo.replace("max_samples: 20000", "max_samples: 3000")
    demo = demo.replace("epochs: 8", "epochs: 2").replace("  simulate:\n    waveforms: 1500\n    seed: 1\n", "")
    demo = demo.replace("    - [96, 128, 1]\n", "")  # 2 configurations: one job per slot of the pool
    grid_file = project / "demo-site.yaml"
    grid_file.write_text(demo.replace("sweep: demo", "sweep: demo-site") + f"condor: {{python: {site_python}}}\n")

    def sweep_here(*args: str) -> subprocess.CompletedProcess:
        # the submit side runs the locked checkout
        return run_sweep(project, *args, env={"PYTHONPATH": str(checkout)}, timeout=600)

    done = sweep_here("submit", str(grid_file), "--condor", "--no-dag", "--wait", "--wait-timeout", "500",
                      "--no-progress")
    assert done.returncode == 0, done.stdout + done.stderr
    board = pd.read_csv(project / "results" / "demo-site" / "leaderboard.csv")
    assert list(board["rank"]) == [1, 2] and board["f1"].notna().all()
    assert board["f1"].is_monotonic_decreasing
    code = json.loads((project / "jobs" / "demo-site" / "sweep.json").read_text())["code"]
    for run_id in board["run_id"]:
        info = json.loads((project / "results" / "demo-site" / run_id / "run.json").read_text())
        assert info["status"] == "ok" and info["code"]["sha256"] == code["sha256"]
        loaded = Path(info["code"]["loaded_from"])  # the archive HTCondor put in the job's scratch folder
        assert loaded.parent.name.startswith("dir_") and loaded.parent.parent == condor_pool.local_dir / "execute"
        assert info["interpreter"]["prefix"] == str(site)
    (jobs,) = {len(j) for j in events(project, "demo-site").values()}
    assert jobs == 1  # each run ran once
    resources = pd.read_csv(project / "results" / "demo-site" / "resources.csv")
    assert (resources["input_mb"] > 0).all()  # the model's arrays, the archive and the config, by HTCondor


def test_a_dataset_given_by_url_is_fetched_by_htcondor_and_checked_by_the_job(project, condor_pool, tmp_path, capsys):
    """data.url for real: the pool's curl plugin fetches the dataset from a local web server (as
    it would from osdf:// or https://); the job trains on it. Served a different file under the
    same name (a stale cache), the job stops with exit 2, which the DAG does not retry."""
    import functools
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(project / "data" / "small.npz", served / "small.npz")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/small.npz"
    try:
        g = grid(project, "pool-url", axes="  optimizer: [adam]\n")
        # allow_http: the server is on the loopback (the grid must say so: http:// is refused otherwise)
        g.write_text(g.read_text().replace("data: {path: data/small.npz,",
                                           f"data: {{path: data/small.npz, url: '{url}', allow_http: true,"))
        assert sweep_cli(project, "submit", str(g), "--condor", "--wait", "--wait-timeout", "300", "--no-progress") == 0
        (run_id,) = events(project, "pool-url")
        info = json.loads((project / "results" / "pool-url" / run_id / "run.json").read_text())
        assert info["status"] == "ok" and info["dataset"]["transferred_bytes"] == (served / "small.npz").stat().st_size
        assert not (project / "jobs" / "pool-url" / "data").exists()  # no per-model cut: the URL is what travels
        resources = pd.read_csv(project / "results" / "pool-url" / "resources.csv")
        size = (served / "small.npz").stat().st_size
        # the schedd carried the config and the code, not the dataset: the plugin fetched it on the node
        assert 0 < resources["input_mb"].iloc[0] * 1e6 < size and round(resources["fetched_mb"].iloc[0] * 1e6) == size
        assert info["dataset"]["fetched_from"] == url

        from sweep.physics.datasets import simulate_to_file

        simulate_to_file(served / "small.npz", 200, seed=99)  # the copy at the URL is no longer the sweep's
        capsys.readouterr()
        assert sweep_cli(project, "submit", str(g), "--condor", "--force", "--wait", "--wait-timeout", "300",
                         "--no-progress") == 0  # as for any sweep on a pool: the leaderboard says what failed
        out = capsys.readouterr().out
        assert "is not the sweep's" in out, out
        jobs = events(project, "pool-url")[run_id]
        assert [j.exit_code for j in jobs][-1] == 2 and len(jobs) == 2  # the second submission's one attempt
    finally:
        server.shutdown()


def test_a_running_grid_job_shows_its_epochs_in_status_before_it_ends(project):
    """Live progress on a pool: a 30-epoch grid run's job sends its epoch as ChirpSweepLive by
    chirp's delayed update (no I/O proxy: a grid job is not given one), and `sweep status --watch
    --json` shows at least three distinct epochs of it before it ends."""
    g = project / "live.yaml"
    g.write_text("sweep: live-pool\nmodel: lstm\nseed: 5\ndata: {path: data/small.npz, max_samples: 10000}\n"
                 "params: {topology: [64, 64, 1], epochs: 30, patience: 30, learning_rate: 0.002}\n"
                 "axes:\n  optimizer: [adam]\n"
                 "resources: {request_cpus: 1, request_memory: 1GB, request_disk: 200MB, runtime: 10m}\n")
    assert sweep_cli(project, "submit", str(g), "--condor", "--no-progress") == 0
    (sub,) = (project / "jobs" / "live-pool").glob("job-*.sub")  # the sweep's one submit description
    assert "want_io_proxy" not in sub.read_text()  # live lines need no I/O proxy
    watcher = popen_sweep(project, "status", "live-pool", "--watch", "--json", "--interval", "0.5",
                          stdout=subprocess.PIPE, text=True)
    epochs, last = set(), None
    try:
        for line in watcher.stdout:
            last = json.loads(line)
            for run in last["runs"]:
                if run["state"] == "running" and "live" in run:
                    live = run["live"]
                    assert live["epochs"] == 30 and live["metric"] == "val_f1" and 1 <= live["epoch"] <= 30
                    epochs.add(live["epoch"])
        assert watcher.wait(timeout=300) == 0
    finally:
        if watcher.poll() is None:
            watcher.kill()
    assert last is not None and last["finished"] and last["counts"] == {"done": 1}, last
    assert len(epochs) >= 3, epochs
    assert last["best"]["metric"] == "f1"
