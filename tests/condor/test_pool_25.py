"""sweep on a real HTCondor 25.x pool (Debian sid's condor, the ``condor_pool_25`` fixture): what
only a 25.x schedd does, for real. A job that exceeds its memory is retried by HTCondor itself with
1.5x its request and stops, held, at the maximum (retry_request_memory_increase/_max); a 25.10+
schedd also takes retry_request_disk; `sweep throttle` changes a running DAG's limit through
DAGMan's command socket. One pool start, a few short jobs (the grid's own `templates:` folder).

The rendering for either side of each version line, and the refusal of `sweep throttle` by an
older schedd, are checked without a pool (a fake version).
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

from tests.condor.owner import run_sweep
from tests.condor.test_sweep_on_pool import QUICK_JOB, events, grid, job_templates, wait_until


@pytest.fixture
def project25(condor_pool_25, small_dataset, request) -> Path:
    """A project folder the 25.x pool's job owner owns, with the dataset in data/."""
    path = condor_pool_25.root / "jobs" / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:80]
    if path.exists():
        shutil.rmtree(path)
    condor_pool_25.prepare_dir(path / "data")
    shutil.copy(small_dataset, path / "data" / "small.npz")
    condor_pool_25.prepare_dir(path)
    return path


def sweep25(pool, root: Path, *args: str, expect: int = 0) -> str:
    proc = run_sweep(root, *args, pool=pool, timeout=300)
    assert proc.returncode == expect, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def queue(constraint: str, projection: list[str]):
    import htcondor2

    return htcondor2.Schedd().query(constraint=constraint, projection=projection)


def jobs_in(event_log: Path):
    """Every job of a job event log (by cluster and proc: see the xfail test below for why not by run)."""
    from sweep.records.events import read_event_log

    return list(read_event_log(event_log).values())


def evictions(event_log: Path) -> list[tuple[int, int, int]]:
    """(code, subcode, memory request in MB) of each eviction in a job event log (its text form:
    the evict event's Partitionable Resources table has the request the job ran with)."""
    out = []
    for block in event_log.read_text().split("...\n"):
        head = re.match(r"004 \(.*Job was evicted\. Code (\d+) Subcode (\d+)", block.strip())
        memory = re.search(r"^\s*Memory \(MB\)\s*:\s*\d+\s+(\d+)\s+\d+", block, re.M)
        if head and memory:
            out.append((int(head.group(1)), int(head.group(2)), int(memory.group(1))))
    return out


def test_the_25_pool_s_schedd_is_25_and_gets_the_native_escalation(condor_pool_25):
    from sweep.submit.backends.htcondor import HTCondorBackend, schedd_version

    version = schedd_version()
    assert version is not None and version >= (25, 10, 0), version
    backend = HTCondorBackend()
    assert backend.native_memory_retry() and backend.native_disk_retry()


def test_a_memory_hog_is_retried_by_htcondor_with_1_5x_and_stops_held_at_the_maximum(condor_pool_25, project25):
    """request 120 MB, max 200 MB, the job uses ~300 MB: the startd evicts it for its memory (21/102)
    and the schedd itself runs it again with 180 MB (1.5x), then 200 MB (the maximum, not 270), then
    holds it there. sweep rendered no release expressions: HTCondor did it all."""
    hog = QUICK_JOB.format(extra=f"{sys.executable} -c \"b = bytearray(300 * 1024 * 1024); import time; "
                                 "b[::4096] = b'x' * len(b[::4096]); time.sleep(6)\"")
    extra = job_templates(project25, hog)
    g = grid(project25, "pool25-mem", axes="  optimizer: [adam]\n", memory="120MB",
             extra=extra + "condor: {memory_escalation: {max_memory: 200MB}}\n")
    sweep25(condor_pool_25, project25, "submit", str(g), "--condor", "--no-dag", "--no-progress")
    (sub,) = (project25 / "jobs" / "pool25-mem").glob("job-*.sub")  # rendered for 25.x only: one version
    text = sub.read_text()
    assert "retry_request_memory_increase = RequestMemory * 3 / 2" in text
    assert "retry_request_memory_max = 200MB" in text
    assert "retry_request_disk      = min({ RequestDisk * 3 / 2, 819200 })" in text  # 4 x 200 MB in KiB
    assert "periodic_release" not in text and "isUndefined(MemoryUsage)" not in text
    mine = 'SweepName =?= "pool25-mem"'
    (ad,) = wait_until(lambda: [a for a in queue(mine, ["JobStatus", "RequestMemory", "HoldReasonCode",
                                                        "HoldReasonSubCode", "TransformOnEvict", "ClusterId"])
                                if a.get("JobStatus") == 5], 180, "the job held at its maximum")
    try:
        assert ad["RequestMemory"] == 200 and (ad["HoldReasonCode"], ad["HoldReasonSubCode"]) == (21, 102), ad
        # the schedd took the disk retry too: both requests are transformed on an eviction
        assert set(ad["TransformOnEvict"].split()) == {"RequestDisk", "RequestMemory"}, ad
        log = project25 / "results" / "pool25-mem" / "events.log"
        assert [m for _, _, m in evictions(log)] == [120, 180, 200], log.read_text()[-3000:]
        assert all((c, s) == (21, 102) for c, s, _ in evictions(log))
        (job,) = jobs_in(log)
        assert job.state == "held" and job.holds and job.holds[-1].code == 21, job
        assert "1 held" in sweep25(condor_pool_25, project25, "status", "pool25-mem")
    finally:
        condor_pool_25.tool("condor_rm", str(ad["ClusterId"]))
    wait_until(lambda: not queue(mine, ["ClusterId"]), 60, "the removal")


def test_throttle_changes_a_running_dag_s_limit(condor_pool_25, project25):
    """Four nodes, max_running 2 (the DAG file's category): the first two run together, held back by
    a gate file. `sweep throttle SWEEP 1` tells the running DAGMan MaxJobs = 1; the gate opens and
    the other two run one after the other."""
    gate = project25 / "gate"
    body = QUICK_JOB.format(extra=f"while [ ! -e {gate} ]; do sleep 0.3; done\nsleep 3")
    extra = job_templates(project25, body)
    g = grid(project25, "pool25-thr", axes="  optimizer: [adam, sgd, rmsprop, nadam]\n",
             extra=extra + "condor: {max_running: 2}\n")
    sweep25(condor_pool_25, project25, "submit", str(g), "--condor", "--no-progress")
    mine = 'SweepName =?= "pool25-thr"'
    try:
        wait_until(lambda: len([a for a in queue(mine + " && SweepRunId =!= undefined", ["JobStatus"])
                                if a.get("JobStatus") == 2]) == 2, 120, "two nodes running")
        out = sweep25(condor_pool_25, project25, "throttle", "pool25-thr", "1")
        assert re.search(r"DAG \(cluster \d+\) of sweep pool25-thr: at most 1 node jobs submitted at once", out), out
        gate.touch()
        wait_until(lambda: not queue(mine, ["ClusterId"]), 180, "the DAG to end")
    finally:
        gate.touch()
        for ad in queue(mine, ["ClusterId"]):
            condor_pool_25.tool("condor_rm", str(ad["ClusterId"]))
    jobs = jobs_in(project25 / "results" / "pool25-thr" / "events.log")
    spans = sorted((j.started, j.ended) for j in jobs)
    assert len(spans) == 4 and all(j.state == "done" for j in jobs), spans
    first, second, third, fourth = spans
    assert second[0] < first[1]  # before the throttle: two at once
    assert third[0] >= max(first[1], second[1]) and fourth[0] >= third[1], spans  # after it: one at a time
    dagman_out = next((project25 / "jobs" / "pool25-thr" / "dags").iterdir()) / "sweep.dag.dagman.out"
    assert "Setting DAGMan throttles" in dagman_out.read_text()


def test_throttle_of_a_sweep_without_a_running_dag_says_so(condor_pool_25, project25):
    extra = job_templates(project25, QUICK_JOB.format(extra=""))
    g = grid(project25, "pool25-none", axes="  optimizer: [adam]\n", extra=extra)
    sweep25(condor_pool_25, project25, "submit", str(g), "--condor", "--no-dag", "--no-progress")
    out = sweep25(condor_pool_25, project25, "throttle", "pool25-none", "3", expect=2)
    assert "sweep pool25-none has no running DAG" in out
    log = project25 / "results" / "pool25-none" / "events.log"
    wait_until(lambda: log.exists() and any(j.state == "done" for j in jobs_in(log)), 120, "the job to end")


def test_the_25_event_log_ties_each_job_to_its_run(condor_pool_25, project25):
    """HTCondor 25.x writes a submit event's notes as a ClassAd ([ JobBatchName = ... ], no
    submit_event_notes): the job's SweepRunId in its job ad information events ties it to its run."""
    extra = job_templates(project25, QUICK_JOB.format(extra=""))
    g = grid(project25, "pool25-notes", axes="  optimizer: [adam]\n", extra=extra)
    sweep25(condor_pool_25, project25, "submit", str(g), "--condor", "--no-dag", "--no-progress")
    log = project25 / "results" / "pool25-notes" / "events.log"
    wait_until(lambda: log.exists() and any(j.state == "done" for j in jobs_in(log)), 120, "the job to end")
    assert len(events(project25, "pool25-notes")) == 1


# ---------------------------------------------------------------- without a pool (fake versions)
def test_throttle_is_refused_by_a_schedd_older_than_25_10_naming_its_version(tmp_path, monkeypatch):
    from sweep.core.errors import BackendError
    from sweep.records.manifest import update_submission
    from sweep.submit import throttle as throttle_mod
    from sweep.submit.backends import htcondor

    update_submission(tmp_path / "jobs" / "old", "abc123", backend="htcondor", mode="dag", runs=["r1"],
                      state="submitted", cluster=7)
    monkeypatch.setattr(htcondor, "connect", lambda timeout=10: object())
    monkeypatch.setattr(htcondor, "schedd_version", lambda timeout=5.0: (23, 9, 6))
    with pytest.raises(BackendError, match=r"runs HTCondor 23\.9\.6: changing a running DAG's limit needs 25\.10\.0 "
                                           r"or newer"):
        throttle_mod.throttle("old", tmp_path, 2)


@pytest.mark.parametrize(("version", "disk"), [((25, 2, 1), False), ((25, 9, 9), False), ((25, 10, 0), True),
                                               ((25, 14, 1), True)])
def test_retry_request_disk_is_rendered_beside_memory_for_a_25_10_schedd(version, disk, monkeypatch):
    from sweep.submit.backends import htcondor

    monkeypatch.setattr(htcondor, "schedd_version", lambda timeout=5.0: version)
    backend = htcondor.HTCondorBackend()
    assert backend.native_memory_retry() and backend.native_disk_retry() is disk


def _render(write_grid, root: Path, native: bool, disk: bool) -> str:
    from sweep.core.expand import expand
    from sweep.core.grid import load_grid
    from sweep.core.render import render_sweep

    spec = load_grid(write_grid("sweep: s\nmodel: lstm\ndata: {path: data/d.npz}\naxes:\n  optimizer: [adam]\n"
                                "resources: {request_memory: 1GB, request_disk: 200MB}\n"
                                "condor: {memory_escalation: {max_memory: 2GB}}\n"), root)
    rendered = render_sweep(spec, expand(spec), root, native_memory_retry=native, native_disk_retry=disk)
    return rendered.runs[0].submit_text


@pytest.mark.parametrize(("native", "disk"), [(True, True), (True, False), (False, True), (False, False)])
def test_the_submit_file_has_retry_request_disk_only_with_native_memory_retry_and_a_25_10_schedd(
        write_grid, tmp_path, native, disk):
    import htcondor2

    text = _render(write_grid, tmp_path, native, disk)
    assert ("retry_request_disk" in text) is (native and disk)
    assert ("retry_request_memory_max = 2048MB" in text) is native
    sub = htcondor2.Submit(text)  # parses either way
    if native and disk:
        assert sub["retry_request_disk"] == "min({ RequestDisk * 3 / 2, 819200 })"  # 4 x 200 MB, in KiB
