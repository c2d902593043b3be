"""`sweep status` when the schedd of a sweep's pool does not answer (e.g. while it restarts):
a run without a result is "unknown", with the event log's last word, never "not run" (which
would invite a resubmission of a run that is still running)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO
from tests.synthetic import make_sweep, write_event_log


def test_status_without_the_schedd_says_unknown_with_the_event_logs_last_word(tmp_path):
    manifest = make_sweep(tmp_path, "offline", axes={"optimizer": ["adam", "sgd", "rmsprop"]}, corrupt=0, missing=2)
    running, never = [r["run_id"] for r in manifest["runs"][1:]]
    write_event_log(tmp_path, manifest, running=(running,))
    path = tmp_path / "jobs" / "offline" / "sweep.json"
    data = json.loads(path.read_text())
    data["submissions"] = [{"id": "s1", "backend": "htcondor", "mode": "dag", "state": "submitted",
                            "runs": [r["run_id"] for r in manifest["runs"]]}]
    path.write_text(json.dumps(data))
    (tmp_path / "condor_config").write_text("COLLECTOR_HOST = 127.0.0.1:9\nSCHEDD_HOST = 127.0.0.1:9\n")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("_CONDOR_")}
    env.update(CONDOR_CONFIG=str(tmp_path / "condor_config"), PYTHONPATH=str(REPO), COLUMNS="200")
    proc = subprocess.run([sys.executable, "-m", "sweep.cli", "--root", str(tmp_path), "status", "offline"],
                          env=env, capture_output=True, text=True, timeout=120)
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr
    assert "offline: 1 done, 2 unknown" in out and "not run" not in out, out
    assert "live state unavailable" in out
    assert running in out and "event log: running (job 100.1)" in out, out
    assert never in out and "no event yet" in out


def test_a_run_that_dagman_will_retry_is_not_called_failed():
    """A node job that failed while its DAG has attempts left is "retrying (attempt k of n)";
    one that exited 2 (unusable configuration) or was removed is not retried: it has ended."""
    from sweep.core.states import RunState
    from sweep.records.events import JobRecord
    from sweep.submit.status import dag_wait

    def job(state, code=None, cluster=11):
        return JobRecord(cluster=cluster, proc=0, state=state, exit_code=code)

    assert dag_wait(False, [], 2) == "waiting in its DAG"
    assert dag_wait(False, [job(RunState.RUNNING)], 2) == "waiting in its DAG"
    assert dag_wait(False, [job(RunState.FAILED, 4)], 2) == "retrying (attempt 2 of 3) after exit 4"
    assert dag_wait(False, [job(RunState.FAILED, 4), job(RunState.FAILED, 4, 12)], 2).startswith("retrying (attempt 3")
    assert dag_wait(False, [job(RunState.FAILED, 4)] * 3, 2) is None  # no attempts left
    assert dag_wait(False, [job(RunState.FAILED, 2)], 2) is None  # exit 2: never retried
    assert dag_wait(False, [job(RunState.FAILED, 3)], 2) is None  # exit 3, the environment: never retried
    assert dag_wait(False, [job(RunState.REMOVED)], 2) is None  # removed (runtime limit): never retried
    assert dag_wait(True, [job(RunState.DONE, 0)], 2) is None
