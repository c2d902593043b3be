"""Submit a sweep to an HTCondor schedd through the htcondor2 bindings.

Default: one DAG per submission whose nodes are the per-configuration submit files, with
RETRY, a CATEGORY throttle (condor.max_running), DAG-wide max_idle, and a FINAL node that runs
`sweep collect`. DAGMan runs on the schedd, so nothing of ours stays running on the submit
node. `use_dag=False` queues the configurations directly as one cluster (itemdata), with
max_retries in the job.

Never a duplicate, never a lost run: before submitting, the schedd is asked which runs of
the sweep are queued (node jobs carry +SweepRunId, DAGMan jobs +SweepSubmission, whose runs
the manifest lists); those are skipped. The manifest records a submission's intent before the
schedd sees it and its cluster id after, so an interrupted `sweep submit` is recognised by the
schedd query on the next one.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...core import names
from ...core.cost import start_order
from ...core.errors import BackendError
from ...core.names import OUTPUT_FILES, STDERR, STDOUT
from ...core.render import CHECKOUT, RenderedRun, RenderedSweep, dag_value, submit_string, submit_value
from ...core.states import RunState
from ...fsutil import atomic_write_text
from ..identity import own_folders, refuse_condor_as_root
from ...records.lock import check_lock
from ...records.runs import epoch_seconds
from ...records.manifest import Manifest, Submission, read_manifest, update_submission
from .base import Backend, SubmitReport

DEFAULT_RETRIES = 2
#: The POST script of every DAG node: what DAGMan makes of how the node's job ended ($RETURN).
#: A job that was removed (-1002: its runtime limit, memory escalation at its ceiling, or
#: condor_rm), that found its configuration unusable (exit 2) or whose interpreter cannot run it
#: (exit 3) would end the same way again: it is not retried (RETRY ... UNLESS-EXIT 2). Other
#: failures are.
POST_SCRIPT = f"""#!/bin/sh
# DAGMan POST script written by sweep: $1 is the node job's $RETURN
case "$1" in
  0) exit 0 ;;
  {"|".join(str(c) for c in names.JOB_EXIT_NEVER_RETRIED)}|-1002) exit {names.JOB_EXIT_BAD_INPUT} ;;
  *) exit 1 ;;
esac
"""


#: A folder holding this user's own IDTOKEN: when set, sweep authenticates with it (and only it).
IDTOKENS_VAR = "SWEEP_IDTOKENS_DIR"


def bindings():
    """htcondor2, set up for this process: with SWEEP_IDTOKENS_DIR set (a folder of the user's own
    IDTOKEN), authenticate with IDTOKENS from that folder, set in-process (an exported _CONDOR_*
    variable would leak into every job that copies the environment). sweep never runs as root
    (sweep.submit.identity): the token is always the user's own, read with the user's permissions."""
    import htcondor2

    tokens = os.environ.get(IDTOKENS_VAR)
    if tokens:
        htcondor2.param["SEC_CLIENT_AUTHENTICATION_METHODS"] = "IDTOKENS"
        htcondor2.param["SEC_TOKEN_DIRECTORY"] = tokens
    return htcondor2


def pool_name() -> str:
    """The pool the bindings are configured for: its collector and the CONDOR_CONFIG in use."""
    htcondor2 = bindings()
    host = htcondor2.param.get("COLLECTOR_HOST") or htcondor2.param.get("CONDOR_HOST") or "(no collector configured)"
    config = os.environ.get("CONDOR_CONFIG", "the default HTCondor configuration")
    return f"{host} (CONDOR_CONFIG={config})"


def connect(timeout: float = 10.0):
    """The schedd of the configured pool, once it has answered a query.

    Raises:
        BackendError: within `timeout` seconds, naming the pool that was tried.
    """
    htcondor2 = bindings()
    box: dict[str, Any] = {}

    def attempt() -> None:
        try:
            schedd = htcondor2.Schedd()
            schedd.query(constraint="false", projection=["ClusterId"])
            box["schedd"] = schedd
        except Exception as exc:  # noqa: BLE001 - any failure means unreachable
            box["error"] = exc

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout)
    if "schedd" in box:
        return box["schedd"]
    why = box.get("error") or f"no answer within {timeout:.0f}s"
    raise BackendError(f"cannot reach an HTCondor schedd in pool {pool_name()}: {why}")


#: Where HTCondor looks for its configuration when CONDOR_CONFIG is not set.
CONFIG_FILES = ("/etc/condor/condor_config", "/usr/local/etc/condor_config")


def configured_pool() -> str | None:
    """Where this machine's HTCondor configuration comes from, or None when it has none at all.

    A pool counts as configured when CONDOR_CONFIG names a file (not ONLY_ENV), when the
    environment sets a collector or central manager (_CONDOR_COLLECTOR_HOST, _CONDOR_CONDOR_HOST),
    or when one of HTCondor's default configuration files exists (CONFIG_FILES, ~condor/condor_config).
    """
    for key, value in os.environ.items():
        if key.upper() in ("_CONDOR_COLLECTOR_HOST", "_CONDOR_CONDOR_HOST") and value.strip():
            return f"{key}={value}"
    config = os.environ.get("CONDOR_CONFIG")
    if config is not None:
        return None if config.strip() in ("", "ONLY_ENV") else f"CONDOR_CONFIG={config}"
    candidates = list(CONFIG_FILES)
    try:
        candidates.append(str(Path(pwd.getpwnam("condor").pw_dir) / "condor_config"))
    except KeyError:
        pass
    return next((c for c in candidates if Path(c).is_file()), None)


#: The first HTCondor whose submit language has retry_request_memory(_increase, _max).
NATIVE_MEMORY_RETRY = (25, 2, 1)
#: The first HTCondor that retries a job evicted for exceeding its disk (retry_request_disk).
NATIVE_DISK_RETRY = (25, 10, 0)


def schedd_version(timeout: float = 5.0) -> tuple[int, int, int] | None:
    """The version of the pool's schedd (its CondorVersion, from the collector), or None when it
    cannot be told within `timeout` seconds (then sweep renders what every version understands)."""
    htcondor2 = bindings()
    box: dict[str, str] = {}

    def ask() -> None:
        try:
            box["text"] = str(htcondor2.Collector().locate(htcondor2.DaemonType.Schedd).get("CondorVersion", ""))
        except Exception:  # noqa: BLE001 - an unknown version is the safe answer
            pass

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(timeout)
    return parse_condor_version(box.get("text", ""))


def parse_condor_version(text: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) of a CondorVersion string such as '$CondorVersion: 23.9.6 2024-08-08 ... $'."""
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(g) for g in match.groups()) if match else None  # type: ignore[return-value]


def reachable(timeout: float = 5.0) -> bool:
    """Whether the schedd answers within `timeout` seconds."""
    try:
        connect(timeout)
        return True
    except BackendError:
        return False


# ----------------------------------------------------------------- ownership
def submitting_owner() -> str:
    """The Owner the schedd gives the jobs we submit: this user (sweep never runs as root)."""
    return pwd.getpwuid(os.geteuid()).pw_name


def dagman_path() -> str:
    """Where condor_dagman is: on PATH, else in the pool's BIN or SBIN folder.

    Raises:
        BackendError: it is in neither.
    """
    found = shutil.which("condor_dagman")
    if found:
        return found
    htcondor2 = bindings()
    for key in ("BIN", "SBIN"):
        folder = htcondor2.param.get(key)
        if folder and Path(folder, "condor_dagman").is_file():
            return str(Path(folder, "condor_dagman"))
    raise BackendError("condor_dagman not found (not on PATH, not in the pool's BIN); use --no-dag")


# ----------------------------------------------------------------- what is queued
QUEUE_PROJECTION = ["ClusterId", "ProcId", "JobStatus", names.ATTR_RUN, names.ATTR_SUBMISSION, names.ATTR_ROLE,
                    "HoldReason", "HoldReasonCode", "HoldReasonSubCode", "NumJobStarts", "PeriodicRelease",
                    "PeriodicRemove", "QDate", "EnteredCurrentStatus", "DAGManJobId", names.ATTR_LIVE]
#: A DAGMan job still idle this long after it was queued is one the schedd cannot start (it starts
#: scheduler-universe jobs within seconds): e.g. the job owner cannot enter the DAG's folder.
DAG_START_GRACE_S = 60


@dataclass
class QueueState:
    """A sweep's jobs in the schedd's queue."""

    jobs: dict[str, Any] = field(default_factory=dict)  # run id -> its live job ad
    pending: set[str] = field(default_factory=set)  # run ids in an active DAG, not submitted by DAGMan yet
    pending_in: dict[str, Submission] = field(default_factory=dict)  # such a run id -> its DAG's manifest entry
    active_dags: int = 0
    dag_problems: list[str] = field(default_factory=list)  # DAGs that are held or cannot start, with why

    def state(self, run_id: str) -> RunState | None:
        """A queued run's state (IDLE for one waiting in its DAG); None when it is not queued."""
        if run_id in self.jobs:
            return RunState.of_job_status(self.jobs[run_id].get("JobStatus"))
        return RunState.IDLE if run_id in self.pending else None


def sweep_constraint(sweep: str, manifest: Manifest | None, owner: str | None = None,
                     dag_clusters: set[int] = frozenset()) -> str | None:
    """The ClassAd constraint that selects this sweep's own jobs and nobody else's: the submitting
    owner's jobs named for the sweep AND belonging to what this sweep's manifest recorded (the
    clusters it was given, the node jobs of its DAGs, or a submission id it wrote before the
    schedd answered). None when the manifest recorded no HTCondor submission: nothing can be
    queued. Run ids and sweep names are the same for every user of a shipped grid, so the owner
    and the recorded clusters are what tell one user's jobs from a colleague's."""
    entries = [e for e in (manifest.submissions if manifest else []) if e.backend == names.BACKEND_HTCONDOR]
    ids = sorted({e.id for e in entries if e.id})
    clusters = sorted({e.cluster for e in entries if e.cluster is not None} | set(dag_clusters))
    if not ids and not clusters:
        return None
    owner = owner or submitting_owner()
    mine = [f"member(ClusterId, {{{', '.join(map(str, clusters))}}}) =?= true",
            f"member(DAGManJobId, {{{', '.join(map(str, clusters))}}}) =?= true",
            f"member({names.ATTR_SUBMISSION}, {{{', '.join(submit_string(i) for i in ids)}}}) =?= true"]
    # =?= : ClassAd == ignores case, and sweeps "LSTM" and "lstm" are different sweeps
    return (f"Owner =?= {submit_string(owner)} && {names.ATTR_SWEEP} =?= {submit_string(sweep)} && "
            f"({' || '.join(mine)})")


def sweep_queue(schedd, sweep: str, manifest: Manifest | None, requeue: set[str] = frozenset()) -> QueueState:
    """This sweep's own jobs in the queue (see sweep_constraint). Node jobs carry +SweepRunId;
    DAGMan jobs +SweepSubmission, whose runs the manifest lists. `requeue`: runs whose held job
    was just removed to run them again; their node has failed in its DAG (the POST script stops
    DAGMan from retrying a removed job), so they are not waiting in it."""
    queue = QueueState()
    dags = set()
    constraint = sweep_constraint(sweep, manifest)
    if constraint is None:
        return queue
    ads = list(schedd.query(constraint=constraint, projection=QUEUE_PROJECTION))
    # a DAG whose cluster the manifest has not recorded yet (submit was killed right after the
    # schedd took it): found by its submission id; its node jobs by their DAGManJobId
    recorded = {str(e.cluster) for e in (manifest.submissions if manifest else [])}
    found = {int(ad["ClusterId"]) for ad in ads if ad.get(names.ATTR_ROLE) == names.ROLE_DAGMAN
             and str(ad["ClusterId"]) not in recorded}
    if found:
        seen = {(ad["ClusterId"], ad["ProcId"]) for ad in ads}
        ads += [ad for ad in schedd.query(constraint=sweep_constraint(sweep, manifest, dag_clusters=found),
                                          projection=QUEUE_PROJECTION)
                if (ad["ClusterId"], ad["ProcId"]) not in seen]
    for ad in ads:
        state = RunState.of_job_status(ad.get("JobStatus"))
        if ad.get(names.ATTR_ROLE) == names.ROLE_DAGMAN:
            if not state.is_finished():
                dags.add(ad.get(names.ATTR_SUBMISSION))
                problem = _dag_problem(ad, state)
                if problem:
                    queue.dag_problems.append(problem)
        elif ad.get(names.ATTR_RUN) and not state.is_finished():
            # in the queue and not completed or removed: queued, whatever its status code (an
            # unknown code counts as queued: never submit a run twice)
            queue.jobs[ad[names.ATTR_RUN]] = ad
    for entry in manifest.submissions if manifest else []:
        if entry.id in dags:
            waiting = [r for r in entry.runs or [] if r not in queue.jobs and r not in requeue]
            queue.pending.update(waiting)
            queue.pending_in.update(dict.fromkeys(waiting, entry))
    queue.active_dags = len(dags)
    return queue


def _dag_problem(ad, state: RunState, now: float | None = None) -> str | None:
    """Why a DAGMan job that is in the queue does not run its DAG, or None while it does."""
    cluster = ad.get("ClusterId")
    if state is RunState.HELD:
        return f"DAG (cluster {cluster}) is held: {ad.get('HoldReason', 'no reason given')}"
    if state is RunState.IDLE:
        waited = (now or time.time()) - float(ad.get("QDate") or 0)
        if ad.get("QDate") and waited > DAG_START_GRACE_S:
            return (f"DAG (cluster {cluster}) has not started {waited:.0f}s after it was queued: the schedd "
                    "cannot start it (its SchedLog says why; can the job owner enter the DAG's folder?)")
    return None


def queued_runs(schedd, sweep: str, manifest: Manifest | None, requeue: set[str] = frozenset()
                ) -> dict[str, RunState | None]:
    """run id -> live state of the runs that are queued, running, held or waiting in a DAG."""
    queue = sweep_queue(schedd, sweep, manifest, requeue)
    return {run_id: queue.state(run_id) for run_id in [*queue.jobs, *queue.pending]}


# ----------------------------------------------------------------- the backend
def dag_text(sweep: RenderedSweep, runs: list[RenderedRun], submission: str, dag_dir: Path) -> str:
    """The DAG file of one submission of `runs` (its scripts and FINAL node's submit file are in
    `dag_dir`): a node per run, each naming the sweep's one submit description with the run's values as its
    VARS, the longest runs first, retries with the POST script, the FINAL collect node. Pure."""
    spec = sweep.spec
    retries = spec.condor.get("max_retries", DEFAULT_RETRIES)
    lines = [f"# sweep {spec.name}, submission {submission}: {len(runs)} runs (rendered by sweep)"]
    post = dag_dir / "post.sh"
    # the longest runs first (core/cost.py): listed first, and of the highest node priority, which
    # DAGMan submits first among the ready nodes and passes on to the schedd as the job's priority
    place = start_order([r.run for r in runs], spec.data.max_samples,
                        epoch_seconds(sweep.results_dir, (r.run.run_id for r in runs)))
    job_sub, post_line = submit_value(sweep.submit_path), f"/bin/sh {submit_value(post)} $RETURN"
    for r in sorted(runs, key=lambda r: place[r.run.run_id]):
        node = f"{names.DAG_NODE_PREFIX}{r.run.run_id}"
        lines.append(f"JOB {node} {job_sub}")
        # every node names the sweep's one submit description: its run's values are the node's VARS
        lines.append(f"VARS {node} " + " ".join(f'{k}="{dag_value(v)}"' for k, v in r.submit_vars.items()))
        lines.append(f"PRIORITY {node} {len(runs) - place[r.run.run_id]}")
        if retries:
            lines.append(f"SCRIPT POST {node} {post_line}")
            lines.append(f"RETRY {node} {retries} UNLESS-EXIT {names.JOB_EXIT_BAD_INPUT}")
        lines.append(f"CATEGORY {node} runs")
    if spec.condor.get("max_running"):
        lines.append(f"MAXJOBS runs {spec.condor['max_running']}")
    lines.append(f"FINAL collect {dag_dir / 'collect.sub'}")
    if spec.notify is not None and spec.notify.webhook is not None:
        # the FINAL node's POST script posts the summary to the webhook (read from the grid then:
        # the URL is in no file sweep writes) and exits as collect did
        lines.append(f"SCRIPT POST collect /bin/sh {submit_value(dag_dir / 'notify.sh')} $RETURN $DAG_STATUS "
                     "$FAILED_COUNT")
    lines.append("NODE_STATUS_FILE nodes.status 30")
    return "\n".join(lines) + "\n"


class HTCondorBackend(Backend):
    """Queues runs on the schedd (a DAG per submission, or one cluster); submit() returns once
    the schedd holds them."""

    name = names.BACKEND_HTCONDOR

    def __init__(self, use_dag: bool = True, schedd=None, connect_timeout: float = 10.0):
        self.use_dag = use_dag
        self._schedd = schedd
        self.connect_timeout = connect_timeout

    @property
    def schedd(self):
        """The schedd handle: the one given, else connected to on first use (a BackendError when it
        does not answer within connect_timeout, or when this process is root: HTCondor does not
        let root own jobs, and sweep never submits for another user, sweep.submit.identity)."""
        refuse_condor_as_root()
        if self._schedd is None:
            self._schedd = connect(self.connect_timeout)
        return self._schedd

    def native_memory_retry(self) -> bool:
        """Whether the schedd escalates memory by itself (retry_request_memory_*, 25.2.1 on)."""
        version = self.schedd_version()
        return version is not None and version >= NATIVE_MEMORY_RETRY

    def native_disk_retry(self) -> bool:
        """Whether the schedd also retries a job with more disk by itself (retry_request_disk, 25.10 on)."""
        version = self.schedd_version()
        return version is not None and version >= NATIVE_DISK_RETRY

    def schedd_version(self) -> tuple[int, int, int] | None:
        """The pool's schedd version (schedd_version()), asked once per backend."""
        if not hasattr(self, "_version"):
            self._version = schedd_version()
        return self._version

    def skip_queued(self, sweep: RenderedSweep, runs: list[RenderedRun],
                    requeue: set[str] = frozenset()) -> tuple[list[RenderedRun], dict]:
        """The runs not already queued. Called before anything is written."""
        queued = queued_runs(self.schedd, sweep.spec.name, read_manifest(sweep.jobs_dir), requeue)
        return [r for r in runs if r.run.run_id not in queued], queued

    def submit(self, sweep: RenderedSweep, runs: list[RenderedRun]) -> SubmitReport:
        schedd = self.schedd
        submission = uuid.uuid4().hex[:12]
        mode = "dag" if self.use_dag else "direct"
        run_ids = [r.run.run_id for r in runs]
        # intent first: if we are killed after the schedd accepted, the next submit finds the
        # jobs by +SweepSubmission / +SweepRunId; if before, nothing was queued
        update_submission(sweep.jobs_dir, submission, backend=self.name, mode=mode, runs=run_ids,
                          state="submitting", pool=pool_name(), owner=submitting_owner())
        own_folders(sweep.results_dir, (r.run.run_id for r in runs), top=sweep.paths.root)  # initialdir must exist
        if self.use_dag:
            details = self._submit_dag(schedd, sweep, runs, submission)
        else:
            details = self._submit_direct(schedd, sweep, runs, submission)
        update_submission(sweep.jobs_dir, submission, state="submitted", **details)
        # only now that the schedd holds the new jobs: an earlier attempt's outputs must not pass for
        # theirs (a job writes its outputs back no sooner than it ends, seconds from now at best)
        for r in runs:
            for name in OUTPUT_FILES:
                if name not in (STDOUT, STDERR):
                    (r.results_dir / name).unlink(missing_ok=True)
        return SubmitReport(backend=self.name, submitted=run_ids, details={"submission": submission, "mode": mode,
                                                                           **details})

    # -- DAG
    def _submit_dag(self, schedd, sweep: RenderedSweep, runs: list[RenderedRun], submission: str) -> dict:
        htcondor2 = bindings()
        spec = sweep.spec
        dag_dir = sweep.jobs_dir / names.DAGS_DIR / submission
        retries = spec.condor.get("max_retries", DEFAULT_RETRIES)
        atomic_write_text(dag_dir / "post.sh", POST_SCRIPT, mode=0o755)
        notify = spec.notify
        if notify is not None and notify.webhook is not None:
            atomic_write_text(dag_dir / "notify.sh", self._notify_script(sweep, dag_dir), mode=0o755)
        atomic_write_text(dag_dir / "collect.sub", self._collect_submit(sweep, dag_dir))
        dag_file = dag_dir / "sweep.dag"
        atomic_write_text(dag_file, dag_text(sweep, runs, submission, dag_dir))
        options: dict[str, Any] = {"dagman": dagman_path(), "batch-name": spec.name, "Force": True}
        if spec.condor.get("max_idle"):
            options["MaxIdle"] = spec.condor["max_idle"]
        sub = htcondor2.Submit.from_dag(str(dag_file), options)
        sub["initialdir"] = str(dag_dir)
        sub[f"+{names.ATTR_SWEEP}"] = submit_string(spec.name)
        sub[f"+{names.ATTR_SUBMISSION}"] = submit_string(submission)
        sub[f"+{names.ATTR_ROLE}"] = submit_string(names.ROLE_DAGMAN)
        if notify is not None and notify.email:  # HTCondor mails when the DAGMan job ends (or is held)
            sub["notification"] = notify.notification
            sub["notify_user"] = submit_value(notify.notify_user)
        check_lock(sweep.jobs_dir)  # fencing: the intent record was written under this lock, still ours?
        result = schedd.submit(sub)
        return {"cluster": result.cluster(), "dag": str(dag_file), "retries": retries}

    def _collect_submit(self, sweep: RenderedSweep, dag_dir: Path) -> str:
        root = sweep.paths.root
        pythonpath = f"PYTHONPATH={submit_value(CHECKOUT)} " if CHECKOUT else ""
        return "\n".join([
            "# FINAL node: rank the sweep when the DAG ends, whatever happened to its nodes",
            "universe = local",
            f"executable = {submit_value(sys.executable)}",
            # DAGMan fills in how the DAG ended: collect ranks what came back, then exits non-zero
            # when nodes failed (a FINAL node that succeeds would make the whole DAG succeed)
            (f'arguments = "-m sweep.cli --root {submit_value(root)} collect {submit_value(sweep.spec.name)} '
             '--dag-status $(DAG_STATUS) --failed-count $(FAILED_COUNT)"'),
            f'environment = "{pythonpath}TF_CPP_MIN_LOG_LEVEL=2"',
            f"initialdir = {submit_value(dag_dir)}",
            "output = collect.out",
            "error = collect.err",
            "log = collect.log",
            f"+{names.ATTR_SWEEP} = {submit_string(sweep.spec.name)}",
            f"+{names.ATTR_ROLE} = {submit_string(names.ROLE_COLLECT)}",
            "queue",
        ]) + "\n"

    def _notify_script(self, sweep: RenderedSweep, dag_dir: Path) -> str:
        """The FINAL node's POST script: `python -m sweep.collect.notify` with DAGMan's $RETURN,
        $DAG_STATUS and $FAILED_COUNT; what it did is appended to the DAG's notify.log."""
        pythonpath = f"PYTHONPATH={shlex.quote(str(CHECKOUT))} " if CHECKOUT else ""
        root = shlex.quote(str(sweep.paths.root))
        return "\n".join([
            "#!/bin/sh",
            "# DAGMan POST script of the FINAL node, written by sweep: posts the sweep's summary to the webhook",
            "# of its grid's notify block; exits 0 when collect did, else 1 (the DAG's result is collect's)",
            (f"{pythonpath}exec {shlex.quote(sys.executable)} -m sweep.collect.notify --root {root} "
             f"--sweep {shlex.quote(sweep.spec.name)} --log {shlex.quote(str(dag_dir / 'notify.log'))} \"$@\""),
        ]) + "\n"

    # -- direct: one cluster, itemdata
    def _submit_direct(self, schedd, sweep: RenderedSweep, runs: list[RenderedRun], submission: str) -> dict:
        htcondor2 = bindings()
        # the sweep's one description; each run's values are its item's (as a DAG node's VARS)
        base = dict(htcondor2.Submit(sweep.submit_text))
        retries = sweep.spec.condor.get("max_retries", DEFAULT_RETRIES)
        if retries:
            base["max_retries"] = str(retries)
            # an unusable config, or an interpreter that cannot run the job: retrying cannot help
            base["retry_until"] = " || ".join(f"ExitCode =?= {c}" for c in names.JOB_EXIT_NEVER_RETRIED)
        base[f"MY.{names.ATTR_SUBMISSION}"] = submit_string(submission)
        items = [dict(r.submit_vars) for r in runs]
        check_lock(sweep.jobs_dir)  # fencing: the intent record was written under this lock, still ours?
        result = schedd.submit(htcondor2.Submit(base), itemdata=iter(items))
        return {"cluster": result.cluster(), "jobs": result.num_procs()}
