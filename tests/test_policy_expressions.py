"""The job policy in a rendered submit file, evaluated with HTCondor's own ClassAd engine
(classad2) against job ads as the schedd would see them: which holds are released with more
memory, which jobs are removed, what memory a released job asks for. Only memory holds (34, and
21/102 under HOLD_IF_MEMORY_EXCEEDED) are escalated; a SystemPolicy hold (26, an administrator's
SYSTEM_PERIODIC_HOLD) or a user's hold (1) is left to the user."""

from __future__ import annotations

import classad2
import htcondor2
import pytest

from sweep.core.expand import expand
from sweep.core.grid import load_grid
from sweep.core.render import render_sweep
from sweep.records.events import is_memory_hold

GRID = """\
sweep: p
model: lstm
data: {path: data/d.npz}
axes:
  optimizer: [adam]
resources: {request_memory: 1000MB, runtime: 1h}
condor:
  memory_escalation: {max_memory: 4000MB, releases: 2}
"""


def _policy(write_grid, tmp_path, text=GRID):
    spec = load_grid(write_grid(text), tmp_path)
    (run,) = render_sweep(spec, expand(spec), tmp_path).runs
    sub = htcondor2.Submit(run.submit_text)
    policy = {k: classad2.ExprTree(sub[k]) for k in ("periodic_release", "periodic_remove") if k in sub}
    if not sub["request_memory"].endswith("MB"):  # an expression (escalation), not a plain size
        policy["request_memory"] = classad2.ExprTree(sub["request_memory"])
    return policy


def held(code, subcode=0, starts=1, usage=None):
    ad = {"JobStatus": 5, "HoldReasonCode": code, "HoldReasonSubCode": subcode, "NumJobStarts": starts}
    if usage is not None:
        ad["MemoryUsage"] = usage
    return classad2.ClassAd(ad)


@pytest.mark.parametrize("code, subcode, released", [
    (34, 0, True), (34, 102, True), (21, 102, True),  # memory holds
    (26, 0, False), (26, 102, False),  # SystemPolicy: an administrator's periodic hold
    (1, 0, False), (21, 0, False), (12, 0, False), (47, 0, False),  # user, other policy, transfer, runtime
])
def test_only_memory_holds_are_released(write_grid, tmp_path, code, subcode, released):
    policy = _policy(write_grid, tmp_path)
    assert policy["periodic_release"].eval(held(code, subcode)) is released
    assert is_memory_hold(code, subcode) is released


def test_escalation_stops_after_its_releases_and_removes(write_grid, tmp_path):
    policy = _policy(write_grid, tmp_path)
    assert policy["periodic_release"].eval(held(34, 102, starts=2)) is True
    assert policy["periodic_release"].eval(held(34, 102, starts=3)) is False
    assert policy["periodic_remove"].eval(held(34, 102, starts=3)) is True
    assert policy["periodic_remove"].eval(held(34, 102, starts=2)) is False
    assert policy["periodic_remove"].eval(held(47)) is True  # the runtime limit
    assert policy["periodic_remove"].eval(held(26, starts=5)) is False  # an admin's hold stays for the user
    assert policy["periodic_remove"].eval(held(1, starts=5)) is False


def test_a_released_job_asks_for_more_memory_up_to_the_ceiling(write_grid, tmp_path):
    request = _policy(write_grid, tmp_path)["request_memory"]
    assert request.eval(classad2.ClassAd({})) == 1000  # first start: the grid's request
    assert request.eval(held(34, usage=2000)) == 3000  # 1.5 x what it used
    assert request.eval(held(34, usage=500)) == 1000  # never below the request
    assert request.eval(held(34, usage=9000)) == 4000  # never above max_memory


def test_without_escalation_only_the_runtime_limit_removes(write_grid, tmp_path):
    policy = _policy(write_grid, tmp_path, GRID.replace("  memory_escalation: {max_memory: 4000MB, releases: 2}\n",
                                                         "  max_retries: 1\n"))
    assert "periodic_release" not in policy
    assert policy["periodic_remove"].eval(held(47)) is True
    assert policy["periodic_remove"].eval(held(34, 102)) is False
