"""`sweep throttle SWEEP N`: change how many node jobs a sweep's running DAG(s) may have submitted
at once, without stopping them.

DAGMan takes the new limit through its command socket (htcondor2.DAGMan(cluster).throttle(
max_nodes=N), the DAG-wide MaxJobs): the schedd hands the bindings the DAG's contact address and
secret, and only the DAG's owner gets them. That needs a schedd (and its condor_dagman) of HTCondor
25.10 or newer; on an older schedd the command is refused and names the version. The limit holds
for the DAG's life: nodes already submitted run on, and no new node is submitted while N or more
are. A grid's condor.max_running (the DAG file's CATEGORY throttle) still applies beside it: the
lower of the two wins.

Only the sweep's own DAGs are touched: the submitting owner's DAGMan jobs that the sweep's manifest
recorded (sweep.submit.backends.htcondor.sweep_constraint), not finished.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core import names
from ..core.errors import BackendError, InputError
from ..records.manifest import load_manifest, on_pool

#: The first HTCondor whose DAGMan takes new throttles while it runs (htcondor2.DAGMan.throttle).
DAGMAN_THROTTLE = (25, 10, 0)


@dataclass
class Throttled:
    """One DAG whose limit was changed: its DAGMan job's cluster and the limit DAGMan reports."""

    cluster: int
    max_jobs: int | None


def throttle(sweep: str, root: Path, max_jobs: int, *, write: Callable[[str], Any] = print) -> list[Throttled]:
    """Set the DAG-wide limit of node jobs (MaxJobs) of every running DAG of `sweep` to `max_jobs`.

    Returns:
        The DAGs changed, with the limit each now reports.

    Raises:
        ResultsError: no such sweep under `root`.
        InputError: the sweep has no HTCondor submission, or no DAG of it is running.
        BackendError: the schedd cannot be reached, is older than DAGMAN_THROTTLE, or a DAGMan
            refused or did not answer.
    """
    manifest = load_manifest(root, sweep)
    if not on_pool(manifest):
        raise InputError(f"sweep {sweep} was never submitted to HTCondor: there is no DAG to throttle")
    from .backends.htcondor import bindings, connect, pool_name, schedd_version, sweep_constraint

    schedd = connect(timeout=10)
    version = schedd_version()
    if version is None or version < DAGMAN_THROTTLE:
        shown = ".".join(map(str, version)) if version else "an unknown version"
        raise BackendError(f"the schedd of pool {pool_name()} runs HTCondor {shown}: changing a running DAG's "
                           f"limit needs {'.'.join(map(str, DAGMAN_THROTTLE))} or newer (DAGMan's command "
                           "socket, htcondor2.DAGMan); set condor.max_running in the grid for its next submission")
    constraint = sweep_constraint(sweep, manifest)
    ads = [] if constraint is None else schedd.query(
        constraint=f'({constraint}) && {names.ATTR_ROLE} =?= "{names.ROLE_DAGMAN}" && JobStatus =?= 2',
        projection=["ClusterId", "JobStatus"])
    if not ads:
        raise InputError(f"sweep {sweep} has no running DAG (a DAG that is idle, held or done cannot be throttled; "
                         f"`sweep status {sweep}` says where it stands)")
    htcondor2 = bindings()
    # DAGMan runs as the user, with the schedd host's configuration: it cannot check an IDTOKEN (the
    # pool's signing key is not the user's to read), and the user's own processes on one host know
    # each other by FS. The schedd only hands DAGMan's address and secret to the DAG's owner.
    methods = str(htcondor2.param.get("SEC_CLIENT_AUTHENTICATION_METHODS") or "")
    if methods and "FS" not in [m.strip().upper() for m in methods.split(",")]:
        htcondor2.param["SEC_CLIENT_AUTHENTICATION_METHODS"] = f"{methods}, FS"
    done = []
    for ad in sorted(ads, key=lambda a: a["ClusterId"]):
        cluster = int(ad["ClusterId"])
        try:
            answer = htcondor2.DAGMan(cluster).throttle(max_nodes=max_jobs)
        except Exception as exc:  # noqa: BLE001 - the bindings' failure, named with the DAG
            raise BackendError(f"DAG (cluster {cluster}) of sweep {sweep}: the throttle did not reach DAGMan: "
                               f"{exc}") from None
        if isinstance(answer, str):  # DAGMan's or the schedd's refusal, as text
            raise BackendError(f"DAG (cluster {cluster}) of sweep {sweep} refused the new limit: {answer}")
        reported = answer.get("DAGMan_MaxJobs")
        done.append(Throttled(cluster, int(reported) if isinstance(reported, int) else None))
        write(f"DAG (cluster {cluster}) of sweep {sweep}: at most {reported} node jobs submitted at once")
    return done
