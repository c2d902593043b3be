"""Where a run stands: one vocabulary for the schedd, the job event log, the run folder, `sweep
status`, `sweep collect` and `sweep resubmit`.

A run's *job* moves through IDLE → RUNNING → DONE / FAILED / REMOVED (HELD on the way); its
*result folder* is OK, MISSING, CORRUPT or FAILED. DONE and OK are different facts on purpose:
a job can end with exit status 0 and still leave an unusable metrics.json.
"""

from __future__ import annotations

from enum import StrEnum


class RunState(StrEnum):
    """A run's state; the value is what the tables and files show."""

    NOT_RUN = "not run"  # nothing known: never submitted, or no trace anywhere yet
    UNKNOWN = "unknown"  # submitted to a pool whose schedd does not answer now: it may be running
    IDLE = "idle"  # queued, or waiting in its DAG
    RUNNING = "running"  # running, transferring its output, or suspended
    HELD = "held"
    DONE = "done"  # the job ended with exit status 0 (status: it has a valid result)
    FAILED = "failed"  # the job ended badly, or its run.json says it failed
    REMOVED = "removed"  # removed from the queue (by a person, or by the runtime limit)
    OK = "ok"  # result folder: a valid result
    MISSING = "missing"  # result folder: nothing came back (yet)
    CORRUPT = "corrupt"  # result folder: outputs came back but cannot be used
    STALE = "stale"  # result folder: a valid result, trained on another version of the dataset
    PRUNED = "pruned"  # a search trial its driver stopped early (partial history, no test metrics)

    def is_live(self) -> bool:
        """In the queue: it may still change without anyone acting."""
        return self in _LIVE

    def is_finished(self) -> bool:
        """Ended, well or badly: it changes only if someone reruns it."""
        return self in _FINISHED

    def is_success(self) -> bool:
        """The job ended well, or the folder holds a valid result."""
        return self in (RunState.DONE, RunState.OK)

    def needs_rerun(self) -> bool:
        """What `sweep resubmit --failed` reruns: ended without a result, or stuck in a hold."""
        return self in _RERUN

    @classmethod
    def of_job_status(cls, status: int | None) -> RunState:
        """The state of a job from its ClassAd JobStatus (1 idle … 7 suspended)."""
        return _JOB_STATUS.get(int(status or 0), cls.NOT_RUN)


_LIVE = frozenset({RunState.IDLE, RunState.RUNNING, RunState.HELD})
_FINISHED = frozenset({RunState.DONE, RunState.OK, RunState.FAILED, RunState.CORRUPT, RunState.REMOVED,
                       RunState.STALE, RunState.PRUNED})
_RERUN = frozenset({RunState.FAILED, RunState.CORRUPT, RunState.HELD, RunState.REMOVED, RunState.STALE})
# HTCondor's JobStatus codes; transferring output (6) and suspended (7) still hold a slot
_JOB_STATUS = {1: RunState.IDLE, 2: RunState.RUNNING, 3: RunState.REMOVED, 4: RunState.DONE, 5: RunState.HELD,
               6: RunState.RUNNING, 7: RunState.RUNNING}
