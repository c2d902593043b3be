"""Where a job's time goes (issue 27): the phases a job records in run.json, read back as
untrusted input, and the sweep's training efficiency that collect makes of them."""

import json

import pytest

from sweep.collect.gather import _time_use
from sweep.job.phases import PhaseClock
from sweep.records.base import RecordError
from sweep.records.runinfo import PHASES, Phase, RunInfo


def test_phases_round_trip_through_run_json_in_their_order():
    info = RunInfo.from_json({"schema_version": 1, "status": "ok", "phases": {
        "output": {"wall_s": 0.5, "cpu_s": 0.4}, "startup": {"wall_s": 3.2, "cpu_s": 3.3},
        "training": {"wall_s": 20, "cpu_s": 19.5}}})
    assert list(info.phases) == ["startup", "training", "output"]
    assert info.phases["training"] == Phase(wall_s=20, cpu_s=19.5)
    assert RunInfo.from_json(json.loads(json.dumps(info.to_json()))) == info
    assert "phases" not in RunInfo.from_json({"schema_version": 1, "status": "ok"}).to_json()  # older files


@pytest.mark.parametrize("phases, key, expected", [
    ({"mining": {"wall_s": 1, "cpu_s": 1}}, "phases", "expected only the phases startup, data, model"),
    ({"data": {"wall_s": -1, "cpu_s": 1}}, "phases.data.wall_s", "a finite number >= 0"),
    ({"data": {"wall_s": 1, "cpu_s": float("inf")}}, "phases.data.cpu_s", "a finite number >= 0"),
    ({"data": {"wall_s": 1}}, "phases.data.cpu_s", "got nothing"),
    ({"data": [1, 2]}, "phases", "an object of objects"),
])
def test_phases_from_an_execute_node_are_checked(phases, key, expected):
    # run.json comes back from an execute node: a phase sweep does not know, or a time that is
    # not a finite number >= 0, is refused with the file and the key named
    with pytest.raises(RecordError) as caught:
        RunInfo.from_json({"schema_version": 1, "status": "ok", "phases": phases}, "results/s/r/run.json")
    assert caught.value.key == key and expected in str(caught.value)
    assert "results/s/r/run.json" in str(caught.value)


def test_the_clock_adds_pieces_and_leaves_checkpoints_out_of_training():
    clock = PhaseClock()
    clock.add("data", 1.0, 0.5)
    clock.add("data", 2.0, 1.5)
    with clock.phase("training", excluding="checkpoints"):
        clock.add("checkpoints", 1e6, 1e6)  # written between two epochs: not training's
    phases = clock.phases()
    assert list(phases) == ["data", "training", "checkpoints"]
    assert phases["data"] == Phase(wall_s=3.0, cpu_s=2.0)
    assert phases["training"].wall_s < 1e6 and phases["checkpoints"].wall_s == 1e6
    with pytest.raises(ValueError, match="unknown phase"):
        clock.add("coffee", 1, 1)


def test_training_efficiency_is_training_core_seconds_over_allocated_ones():
    usage = [
        # 1 CPU for 100 s: 50 CPU s of training
        {"wall_s": 100.0, "cpus_requested": 1, "training_cpu_s": 50.0, "startup_s": 5.0, "training_s": 60.0,
         "queue_s": 3},
        # 2 CPUs for 100 s: 150 CPU s of training
        {"wall_s": 100.0, "cpus_requested": 2, "training_cpu_s": 150.0, "startup_s": 5.0, "training_s": 80.0,
         "queue_s": 40},
        {"wall_s": 10.0, "cpus_requested": 1},  # no phases (an older job): left out
    ]
    use = _time_use(usage)
    assert use.runs == 2 and use.allocated_core_s == 300.0 and use.training_core_s == 200.0
    assert use.training_efficiency == pytest.approx(2 / 3)
    assert use.phase_core_s == {"startup": 15.0, "training": 220.0}  # wall x CPUs
    text = use.sentence()
    assert text.startswith("training efficiency 67%: of the ")
    assert "startup 5%" in text and "outside sweep's Python (wrapper, exit, transfers) 22%" in text
    assert "of the 5m00s of core time allocated to 2 job(s), training kept 3m20s busy" in text
    assert text.endswith("; queue wait (not allocated): median 40s")
    assert _time_use([{"wall_s": 10.0, "cpus_requested": 1}]) is None
    assert set(PHASES) >= set(use.phase_core_s)


def test_the_cpus_a_job_kept_busy_agree_with_its_cpu_efficiency():
    # a short job ends before HTCondor samples its CPU use (CpusUsage 0): the resources table said
    # "CPUs 0.00 / 1" beside "CPU eff. 80 %"; its CPU time over its run time is what it kept busy
    from sweep.collect.gather import _resources
    from sweep.records.events import JobRecord
    from sweep.records.runs import RunOutcome
    from sweep.core.states import RunState

    job = JobRecord(cluster=1, proc=0, run_id="r", state=RunState.DONE, starts=1, cpu_s=8.0, wall_s=10.0,
                    resources={"CpusUsage": 0.0, "RequestCpus": 1, "MemoryUsage": 300, "RequestMemory": 1024})
    usage = _resources([job], RunOutcome(run_id="r", state=RunState.OK))
    assert usage["cpus_used"] == pytest.approx(0.8) and usage["cpu_efficiency"] == pytest.approx(0.8)
    job.cpu_s = None  # no CPU time known: HTCondor's own figure
    assert _resources([job], RunOutcome(run_id="r", state=RunState.OK))["cpus_used"] == 0.0
