"""Real jobs on the personal HTCondor pool from tools/condor_pool.py."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import htcondor2

PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3")

JOB = """\
import os, sys, time
mb, secs = int(sys.argv[1]), float(sys.argv[2])
blob = bytearray(mb * 2**20)
for i in range(0, len(blob), 4096):
    blob[i] = 1
if len(sys.argv) > 3:
    with open(sys.argv[3], "w") as f:
        f.write(str(os.getpid()))
t0 = time.time()
while time.time() - t0 < secs:
    if len(sys.argv) > 3:
        time.sleep(0.2)
print("uid", os.getuid(), "mb", mb)
"""

PARTITIONABLE_FIELDS = ("CpusUsage", "RequestCpus", "Cpus",
                        "MemoryUsage", "RequestMemory", "Memory")


def _submit(job_dir: Path, arguments: str, request_memory: str = "128MB", **extra):
    script = job_dir / "job.py"
    script.write_text(JOB)
    script.chmod(0o644)
    desc = {
        "universe": "vanilla",
        "executable": PYTHON,
        "transfer_executable": "false",
        "arguments": arguments,
        "transfer_input_files": str(script),
        "should_transfer_files": "YES",
        "when_to_transfer_output": "ON_EXIT",
        "initialdir": str(job_dir),
        "output": "job_$(item).out",
        "error": "job_$(item).err",
        "log": str(job_dir / "jobs.log"),
        "request_cpus": "1",
        "request_memory": request_memory,
        "request_disk": "10MB",
    }
    desc.update(extra)
    return htcondor2.Submit(desc)


def _follow(log: Path, until, timeout: float):
    """Read the user log without blocking until until(events) is true; return all events."""
    deadline = time.time() + timeout
    events = []
    while time.time() < deadline:
        if log.exists():
            jel = htcondor2.JobEventLog(str(log))
            events = list(jel.events(stop_after=0))
            jel.close()
            if until(events):
                return events
        time.sleep(0.5)
    pytest.fail(f"timeout after {timeout} s; events: {[(e.type.name, e.proc) for e in events]}")


def test_pool_is_up(condor_pool):
    coll = htcondor2.Collector()
    schedds = coll.query(htcondor2.AdType.Schedd, projection=["Name", "CondorVersion"])
    slots = coll.query(htcondor2.AdType.Startd,
                       projection=["Name", "Cpus", "Memory", "PartitionableSlot"])
    assert len(schedds) == 1, schedds
    assert "$CondorVersion:" in schedds[0]["CondorVersion"]
    assert len(slots) == 1 and slots[0]["PartitionableSlot"] is True
    assert slots[0]["Cpus"] == condor_pool.cpus == len(os.sched_getaffinity(0))
    assert slots[0]["Memory"] == condor_pool.memory_mb
    assert condor_pool.is_running() and condor_pool.token_path.exists()
    assert condor_pool.dagman_path.exists()
    env = condor_pool.env()
    assert env["CONDOR_CONFIG"] == str(condor_pool.config_path) == os.environ["CONDOR_CONFIG"]
    assert env["PATH"].split(os.pathsep)[0] == str(condor_pool.bin_dir)
    cfg = condor_pool.config_path.read_text()
    for line in ("NETWORK_INTERFACE   = 127.0.0.1", "BIND_ALL_INTERFACES = FALSE",
                 "ENABLE_KERNEL_TUNING = FALSE", "use POLICY: HOLD_IF_MEMORY_EXCEEDED"):
        assert line in cfg


def test_two_job_cluster_completes(condor_pool, condor_job_dir):
    sub = _submit(condor_job_dir, "job.py $(mb) $(secs)")
    items = [{"item": "a", "mb": "20", "secs": "3"}, {"item": "b", "mb": "40", "secs": "3"}]
    result = htcondor2.Schedd().submit(sub, itemdata=iter(items))
    cluster = result.cluster()
    assert result.num_procs() == 2

    def done(events):
        bad = [e for e in events if e.type in (htcondor2.JobEventType.JOB_HELD,
                                               htcondor2.JobEventType.JOB_ABORTED)]
        assert not bad, [dict(e) for e in bad]
        return sum(e.type == htcondor2.JobEventType.JOB_TERMINATED for e in events) == 2

    events = _follow(condor_job_dir / "jobs.log", done, timeout=90)
    terminated = [e for e in events if e.type == htcondor2.JobEventType.JOB_TERMINATED]
    assert {e.cluster for e in terminated} == {cluster}
    assert sorted(e.proc for e in terminated) == [0, 1]
    for ev in terminated:
        assert ev["TerminatedNormally"] is True
        assert ev["ReturnValue"] == 0
        missing = [k for k in PARTITIONABLE_FIELDS if k not in ev]
        assert not missing, f"missing {missing} in {dict(ev)}"
        assert ev["RequestCpus"] == 1 and ev["Cpus"] == 1
        assert ev["RequestMemory"] == 128 and ev["Memory"] == 128
        assert ev["MemoryUsage"] > 0  # PROCD_MAX_SNAPSHOT_INTERVAL = 1 sees short jobs
    for item in ("a", "b"):
        out = (condor_job_dir / f"job_{item}.out").read_text()
        uid = condor_pool.owner_ids()[0] if os.geteuid() == 0 else os.geteuid()
        assert f"uid {uid} " in out
    hist = []
    for _ in range(20):
        hist = list(htcondor2.Schedd().history(constraint=f"ClusterId == {cluster}",
                                               projection=["Owner", "ExitCode"], match=2))
        if len(hist) == 2:
            break
        time.sleep(0.5)
    assert [(a["Owner"], a["ExitCode"]) for a in hist] == [(condor_pool.job_owner, 0)] * 2


def test_memory_hog_is_held(condor_pool, condor_job_dir):
    sub = _submit(condor_job_dir, "job.py 300 60", request_memory="64MB")
    cluster = htcondor2.Schedd().submit(sub, itemdata=iter([{"item": "hog"}])).cluster()
    try:
        events = _follow(condor_job_dir / "jobs.log",
                         lambda evs: any(e.type == htcondor2.JobEventType.JOB_HELD for e in evs),
                         timeout=90)
        held = next(e for e in events if e.type == htcondor2.JobEventType.JOB_HELD)
        print(f"held: {held.get('HoldReasonCode')}/{held.get('HoldReasonSubCode')} "
              f"{held.get('HoldReason')}", file=sys.stderr)
        # POLICY: HOLD_IF_MEMORY_EXCEEDED on 23.9 daemons: code 21, subcode 102
        assert held["HoldReasonCode"] in (21, 34), dict(held)
        assert "memory" in held["HoldReason"].lower(), dict(held)
        ads = htcondor2.Schedd().query(constraint=f"ClusterId == {cluster}",
                                       projection=["JobStatus", "HoldReasonCode", "MemoryUsage"])
        assert ads and ads[0]["JobStatus"] == 5  # held
    finally:
        htcondor2.Schedd().act(htcondor2.JobAction.Remove, f"ClusterId == {cluster}")


def _pool_processes(pool, master_pid: int) -> list[tuple[int, str]]:
    """Independent /proc scan: condor_* processes of this pool and its jobs."""
    cfg = f"CONDOR_CONFIG={pool.config_path}".encode()
    execute = str(pool.local_dir / "execute").encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            comm = Path(f"/proc/{entry}/comm").read_text().strip()
            env = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if fields[0] == "Z":
            continue
        ours = comm.startswith("condor_") and cfg in env.split(b"\0")
        if int(fields[3]) == master_pid or ours or execute in env:
            found.append((int(entry), comm))
    return found


def test_dag_runs_as_job_owner(condor_pool, condor_job_dir):
    """A 2-node DAG via Submit.from_dag: DAGMan (FS auth as the job owner) must not
    inherit the client's in-process IDTOKENS setting."""
    d = condor_job_dir
    (d / "job.py").write_text(JOB)
    for node in ("A", "B"):
        (d / f"{node}.sub").write_text(
            f"executable = {PYTHON}\ntransfer_executable = false\narguments = job.py 5 0\n"
            f"transfer_input_files = job.py\nshould_transfer_files = YES\n"
            f"output = {node}.out\nerror = {node}.err\nlog = nodes.log\n"
            "request_cpus = 1\nrequest_memory = 64MB\nrequest_disk = 10MB\nqueue\n")
    (d / "two.dag").write_text("JOB A A.sub\nJOB B B.sub\nPARENT A CHILD B\n")
    cwd = os.getcwd()
    os.chdir(d)
    try:
        dag_sub = htcondor2.Submit.from_dag("two.dag", {"force": True,
                                                        "dagman": str(condor_pool.dagman_path)})
    finally:
        os.chdir(cwd)
    condor_pool.prepare_dir(d)  # from_dag wrote files as root: hand them to the owner
    # the DAGMan job's Iwd is the cwd at *submit* time unless initialdir is set
    dag_sub["initialdir"] = str(d)
    schedd = htcondor2.Schedd()
    cluster = schedd.submit(dag_sub).cluster()
    deadline = time.time() + 90
    while time.time() < deadline and schedd.query(constraint=f"ClusterId == {cluster}",
                                                  projection=["JobStatus"]):
        time.sleep(0.5)
    hist = list(schedd.history(constraint=f"ClusterId == {cluster}",
                               projection=["ExitCode", "Owner", "DAG_NodesDone"], match=1))
    out = d / "two.dag.dagman.out"
    tail = out.read_text()[-1500:] if out.exists() else ""
    assert hist and hist[0]["ExitCode"] == 0, (hist, tail)
    assert hist[0]["Owner"] == condor_pool.job_owner
    assert (d / "A.out").exists() and (d / "B.out").exists(), tail


@pytest.mark.parametrize("how", ["graceful", "master_killed"])
def test_stop_leaves_no_process(condor_pool, condor_pool_module, how):
    """A second, private pool with a running job: stop() must leave nothing behind,
    also when condor_master was SIGKILLed and its daemons and the job are orphans."""
    root = Path(tempfile.mkdtemp(prefix="sweep-condor-stop-"))
    root.chmod(0o755)
    pool = condor_pool_module.Pool(root, cpus=1, memory_mb=512,
                                   installation=condor_pool.installation)
    try:
        t0 = time.time()
        pool.start(timeout=90)
        t_start = time.time() - t0
        master = pool.master_pid()
        assert master and len(pool.pids()) >= 5  # master procd collector negotiator schedd startd
        # submit to the second pool with its own CLI tools (FS auth as the current user is
        # refused for root, so use the submitter token: condor_submit reads it from
        # SEC_TOKEN_DIRECTORY)
        job_dir = pool.prepare_dir(root / "jobs" / "sleeper")
        (job_dir / "job.py").write_text(JOB)
        (job_dir / "job.sub").write_text(
            f"executable = {PYTHON}\ntransfer_executable = false\n"
            f"arguments = job.py 10 300 {job_dir / 'pid'}\n"
            f"transfer_input_files = {job_dir / 'job.py'}\nshould_transfer_files = YES\n"
            f"initialdir = {job_dir}\nlog = {job_dir / 'job.log'}\n"
            "request_cpus = 1\nrequest_memory = 64MB\nrequest_disk = 10MB\nqueue\n")
        env = pool.tool_env()
        env["_CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS"] = "IDTOKENS"
        r = subprocess.run([str(pool.bin_dir / "condor_submit"), str(job_dir / "job.sub")],
                           capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        deadline = time.time() + 60
        while not (job_dir / "pid").exists() and time.time() < deadline:
            time.sleep(0.3)
        assert (job_dir / "pid").exists(), "job did not start on the second pool"
        job_pid = int((job_dir / "pid").read_text())
        assert job_pid in pool.pids()
        before = _pool_processes(pool, master)
        assert len(before) >= 7, before  # daemons + starter + job
        if how == "master_killed":
            os.kill(master, signal.SIGKILL)
            time.sleep(0.5)
            assert not pool.is_running()
            assert len(_pool_processes(pool, master)) >= 6  # orphans: daemons, starter, job
        t1 = time.time()
        pool.stop()
        t_stop = time.time() - t1
        assert _pool_processes(pool, master) == []
        assert pool.pids() == [] and not pool.is_running()
        assert not os.path.exists(f"/proc/{job_pid}") or \
            Path(f"/proc/{job_pid}/stat").read_text().split(") ")[1][0] == "Z"
        pool.stop()  # idempotent
        print(f"second pool ({how}): start {t_start:.1f} s, stop with a running job {t_stop:.1f} s",
              file=sys.stderr)
    finally:
        pool.stop()
        shutil.rmtree(root, ignore_errors=True)
    assert condor_pool.is_running()  # the session pool is untouched
