"""Polling like a good neighbour: the event log is read incrementally (a real user log, appended
to as HTCondor does), and poll intervals back off while nothing changes."""

from __future__ import annotations

from sweep.core.states import RunState
from sweep.records.events import EventLogReader, latest_by_run
from sweep.submit.status import Backoff
from tests.synthetic import make_sweep, write_event_log


def test_the_event_log_is_read_incrementally(tmp_path):
    manifest = make_sweep(tmp_path, "inc", axes={"optimizer": ["adam", "sgd"]}, corrupt=0, missing=0)
    running = tuple(r["run_id"] for r in manifest["runs"])
    path = write_event_log(tmp_path, manifest, running=running)  # submitted and executing, not ended
    text = path.read_text()
    (tmp_path / "x" / "results" / "inc").mkdir(parents=True)
    full = write_event_log(tmp_path / "x", manifest)  # the same jobs, submitted, executed and terminated
    reader = EventLogReader(tmp_path / "results" / "inc" / "missing.log")
    assert reader.update() == {}  # a log that does not exist yet
    reader = EventLogReader(path)
    first = latest_by_run(reader.update())
    assert {r: j.state for r, j in first.items()} == {r: RunState.RUNNING for r in running}
    # HTCondor appends the terminate events: only they are read now
    terminated = "".join(chunk + "...\n" for chunk in full.read_text().split("...\n")
                         if chunk.lstrip().startswith("005"))
    path.write_text(text + terminated)
    second = latest_by_run(reader.update())
    assert {r: j.state for r, j in second.items()} == {r: RunState.DONE for r in running}
    assert all(j.starts == 1 for j in second.values())  # the execute events were not read twice
    assert latest_by_run(reader.update()) == second  # nothing new: nothing changes


def test_poll_intervals_back_off_while_nothing_changes_and_start_again_when_something_does():
    backoff = Backoff(2.0, cap=60.0)
    waits = [backoff.next("same") for _ in range(12)]
    assert waits[0] == 2.0 and waits[1] == 3.0 and waits == sorted(waits) and waits[-1] == 60.0
    assert backoff.next("changed") == 2.0
    assert backoff.next("changed") == 3.0


def test_what_a_poll_loop_watches_moves_when_the_sweep_s_logs_do(tmp_path):
    """`--wait` and `status --watch` ask the schedd again as soon as the sweep's event log or one
    of its DAGs' own logs (where DAGMan's end is written) is written, not after a back-off."""
    from sweep.submit.status import activity

    manifest = make_sweep(tmp_path, "act", axes={"optimizer": ["adam", "sgd"]}, corrupt=0, missing=0)
    assert activity(tmp_path, "act") == ()  # nothing submitted yet: nothing to watch
    log = write_event_log(tmp_path, manifest, running=tuple(r["run_id"] for r in manifest["runs"]))
    first = activity(tmp_path, "act")
    assert [name for name, _, _ in first] == ["events.log"]
    assert activity(tmp_path, "act") == first  # nothing written: nothing moved
    with log.open("a") as fh:
        fh.write("005 (001.000.000) 2026-12-03 07:00:00 Job terminated.\n...\n")
    second = activity(tmp_path, "act")
    assert second != first
    dag = tmp_path / "jobs" / "act" / "dags" / "0a1b2c" / "sweep.dag.dagman.log"
    dag.parent.mkdir(parents=True)
    dag.write_text("000 (007.000.000) 2026-12-03 07:00:00 Job submitted from host: <127.0.0.1>\n...\n")
    third = activity(tmp_path, "act")
    assert [name for name, _, _ in third] == ["events.log", "sweep.dag.dagman.log"] and third[0] == second[0]
    (tmp_path / "jobs" / "act" / "dags" / "0a1b2c" / "notes.txt").write_text("not a log")
    assert activity(tmp_path, "act") == third  # only the logs count
