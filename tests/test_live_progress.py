"""Live progress: every job reports its epoch after each one (records.progress.Live), a local one
in progress.json, a pool's as ChirpSweepLive (tests/condor/test_sweep_on_pool.py follows one on
the personal pool); `sweep status` shows a line per running job and the best so far, and
`--json` gives the same to scripts. What a job reports is untrusted: a line that is not one is
dropped, never shown."""

from __future__ import annotations

import json
import threading

import pytest

from sweep.cli import main
from sweep.core.states import RunState
from sweep.records.base import RecordError
from sweep.records.progress import Live, Progress, format_live, parse_live, read_progress, write_progress
from sweep.submit.status import progress_lines, sweep_status
from tests.conftest import grid_text
from tests.synthetic import make_sweep


def test_a_live_line_survives_the_job_attribute_and_a_bad_one_is_dropped(tmp_path):
    live = Live(epoch=3, epochs=30, metric="val_f1", value=0.8123456, loss=0.41, val_loss=0.45, elapsed_s=80.04)
    text = format_live(live)
    assert text == "epoch=3;epochs=30;metric=val_f1;value=0.812346;loss=0.41;val_loss=0.45;elapsed_s=80.0"
    back = parse_live(text)
    assert back == Live(3, 30, "val_f1", 0.812346, 0.41, 0.45, 80.0)
    assert back.text() == "epoch 3/30, val_f1 0.8123, loss 0.41/0.45, 1m20s, ETA ≤ 12m00s"
    for bad in ("", None, 7, "epoch=31;epochs=30;metric=val_f1;elapsed_s=1", "epoch=1;epochs=30;metric=val_f1",
                "epoch=1;epochs=30;metric=[red]x;elapsed_s=1", "epoch=1;epoch=2;epochs=3;metric=m;elapsed_s=1",
                "epoch=1;epochs=3;metric=m;elapsed_s=1;rm=-rf", "epoch=1;epochs=3;metric=m;value=nan;elapsed_s=1",
                "epoch=1;epochs=3;metric=m;elapsed_s=-4", "x" * 600,
                "epoch=1;epochs=1000000;metric=val_f1;elapsed_s=1e305"):  # an ETA of inf: refused
        assert parse_live(bad) is None, bad
    # progress.json: a trial's values and the live line; a version-1 file (values only) still reads
    write_progress(tmp_path, [0.5, 0.6], back)
    assert read_progress(tmp_path) == Progress([0.5, 0.6], back)
    (tmp_path / "progress.json").write_text(json.dumps({"schema_version": 1, "values": [0.5]}))
    assert read_progress(tmp_path) == Progress([0.5], None)
    # a local job's progress.json is as untrusted as a pool job's attribute: no terminal escapes in a name
    (tmp_path / "progress.json").write_text(json.dumps({"schema_version": 2, "values": [0.5], "live": {
        "epoch": 1, "epochs": 3, "metric": "\x1b]0;pwned\x07\x1b[2J", "elapsed_s": 1.0}}))
    with pytest.raises(RecordError, match="live.metric: expected a column name"):
        read_progress(tmp_path)


def test_status_shows_the_best_finished_run_so_far(tmp_path, capsys):
    manifest = make_sweep(tmp_path, "syn", corrupt=0, missing=0)
    status = sweep_status("syn", tmp_path, query_schedd=False)
    best_id = max(manifest["truth"], key=manifest["truth"].get)
    assert (status.best.run_id, status.best.metric) == (best_id, "f1")
    assert status.best.value == pytest.approx(manifest["truth"][best_id], abs=1e-6)
    assert main(["--root", str(tmp_path), "status", "syn", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["best"]["run_id"] == best_id and out["counts"] == {"done": len(manifest["runs"])}
    assert out["finished"] and {r["state"] for r in out["runs"]} == {"done"}
    # a search: its first objective decides, as collect ranks it (not the grid's ranking)
    from tests.synthetic import make_search

    make_search(tmp_path, "srch", trials=6)
    manifest_path = tmp_path / "jobs" / "srch" / "sweep.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["ranking"] = [["recall", "max"], ["precision", "max"]]  # the grid's ranking, not the search's
    manifest_path.write_text(json.dumps(manifest))
    best = sweep_status("srch", tmp_path, query_schedd=False).best
    import sweep

    table = sweep.load("srch", root=tmp_path).results()
    assert best.metric == "precision" and best.value == pytest.approx(table["precision"].max())


@pytest.mark.training
def test_a_local_run_shows_its_epochs_while_it_trains(tmp_path, small_dataset, capsys):
    grid = tmp_path / "g.yaml"
    grid.write_text(grid_text(small_dataset, sweep="live", axes="  optimizer: [adam]\n", epochs=30))
    done = threading.Event()
    codes = []

    def submit():
        try:
            codes.append(main(["--root", str(tmp_path), "submit", str(grid), "--local", "--no-progress",
                               "--no-collect"]))
        finally:
            done.set()

    worker = threading.Thread(target=submit)
    worker.start()
    epochs_seen, lines, api_epochs = set(), [], []
    while not done.wait(0.05):
        try:
            status = sweep_status("live", tmp_path)
        except Exception:  # noqa: BLE001 - the manifest is not written yet
            continue
        for run in status.runs:
            if run.state is RunState.RUNNING and run.live is not None:
                epochs_seen.add(run.live.epoch)
                assert run.live.epochs == 30 and run.live.metric == "val_f1"
                lines += progress_lines(status)
                if not api_epochs:  # the Python API's status gives the same running epoch
                    import sweep

                    api_epochs = list(sweep.load("live", root=tmp_path).status().runs["epoch"].dropna())
    worker.join()
    assert codes == [0]
    assert len(epochs_seen) >= 3, epochs_seen  # at least three distinct epochs before it ended
    assert len(api_epochs) == 1 and 1 <= api_epochs[0] <= 30, api_epochs
    assert any(line.startswith("  running adam: epoch ") and "val_f1 " in line for line in lines), lines
    capsys.readouterr()
    # it ended: the last live line stays in progress.json, the run is done and is the best so far
    progress = read_progress(tmp_path / "results" / "live" / status.runs[0].run_id)
    assert progress.live is not None and progress.live.epoch == len(progress.values) >= max(epochs_seen)
    assert main(["--root", str(tmp_path), "status", "live", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["counts"] == {"done": 1} and out["best"]["metric"] == "f1"


def test_a_local_job_left_running_by_a_killed_command_is_running_and_never_started_twice(tmp_path, small_dataset,
                                                                                         capsys):
    """`sweep submit --local` killed: its job lives on (a session of its own). Its start record
    names the process and when it started: status shows it running, a new submit (even --force)
    does not start it beside it; a record whose pid another process took since is not running."""
    import os
    import socket
    import subprocess

    from sweep.records.localexit import LocalExit, read_local_exit, write_local_exit
    from sweep.records.lock import process_start_time
    from sweep.submit.prepare import prepare
    from sweep.submit.status import running_here

    grid = tmp_path / "g.yaml"
    grid.write_text(grid_text(small_dataset, sweep="orphan", axes="  optimizer: [adam]\n"))
    (run,) = prepare(grid, tmp_path).rendered.runs
    folder = tmp_path / "results" / "orphan" / run.run.run_id
    folder.mkdir(parents=True)
    job = subprocess.Popen(["sleep", "60"], start_new_session=True)  # the orphaned job's process
    try:
        record = LocalExit(returncode=None, cpus=1, pid=job.pid, host=socket.gethostname(),
                           started=process_start_time(job.pid))
        write_local_exit(folder, record)
        assert running_here(record)
        # the same pid, another process (a reboot, or the pid taken since): not running
        assert not running_here(LocalExit(returncode=None, pid=job.pid, host=socket.gethostname(), started="1"))
        assert not running_here(LocalExit(returncode=None, pid=os.getpid(), host="elsewhere", started=None))
        assert main(["--root", str(tmp_path), "submit", str(grid), "--local", "--no-progress", "--force",
                     "--no-collect"]) == 0
        out = capsys.readouterr().out
        assert "1 queued or running, 0 to submit" in out, out
        # untouched: the job was not started again (the backend would have rewritten its start record)
        assert job.poll() is None and read_local_exit(folder) == record
        assert not (folder / "run.json").exists()
        status = sweep_status("orphan", tmp_path)
        assert [r.state for r in status.runs] == [RunState.RUNNING]
    finally:
        job.kill()
        job.wait()
    assert [r.state for r in sweep_status("orphan", tmp_path).runs] != [RunState.RUNNING]
