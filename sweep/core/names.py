"""Every file, folder and job-attribute name that more than one stage agrees on, in one place.

The submit stage writes `jobs/<sweep>/`, the job writes its outputs, HTCondor (or the local
backend) brings them back to `results/<sweep>/<run-id>/`, and collect and status read them: each
of those names is spelt once, here. :class:`SweepPaths` builds the paths of a project from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .schema import SWEEP_NAME_RE

# ------------------------------------------------------------------ the project's folders
SITES_DIR = "sites"  # sites/<name>.yaml: the project's own site profiles (before the shipped ones)
JOBS_DIR = "jobs"  # jobs/<sweep>/: what `sweep submit` renders
RESULTS_DIR = "results"  # results/<sweep>/: what the jobs and `sweep collect` write



def check_sweep_name(text: str) -> str:
    """A sweep or chain name given outside a grid (the command line), held to the rule a grid's
    `sweep:` and a pipeline's `chain:` follow (schema.SWEEP_NAME_RE): it becomes a folder name
    under jobs/ and results/, so no separator, no '..', nothing that starts with '.' or '-'.

    Args:
        text: the name as given.

    Returns:
        The name, unchanged.

    Raises:
        ValueError: saying what a name may hold and what was given.
    """
    if not SWEEP_NAME_RE.fullmatch(text):
        raise ValueError("expected a sweep name of letters, digits, '_', '.', '-' that starts with a letter or "
                         f"digit (at most 64 characters; no '/', no '..'), as in a grid's `sweep:`, got {text!r}")
    return text


# ------------------------------------------------------------------ jobs/<sweep>/
MANIFEST = "sweep.json"  # runs, grid hash, submissions, learnt memory
WRAPPER = "run_job.sh"  # the HTCondor executable
# ------------------------------------------------------------------ the job's exit statuses
# What the job process (sweep.job) exits with, read by the DAG's POST script, direct submissions'
# retry_until and `sweep status`. (sweep/job/envcheck.py, which runs as a plain script, spells 3.)
JOB_EXIT_BAD_INPUT = 2  # an unusable configuration or dataset
JOB_EXIT_ENVIRONMENT = 3  # an interpreter that cannot run the job
JOB_EXIT_CHECKPOINT = 85  # checkpoint/ written: HTCondor spools it and starts the job again
#: Exit statuses a retry cannot cure: the same job on the same kind of node ends the same way.
JOB_EXIT_NEVER_RETRIED = (JOB_EXIT_BAD_INPUT, JOB_EXIT_ENVIRONMENT)

CHECKPOINT_DIR = "checkpoint"  # in a job's scratch folder: what a resumed job goes on from
TRANSFER_DATA_DIR = "data"  # jobs/<sweep>/data/: what each job's data transfer holds (per model)
CODE_ARCHIVE_PREFIX = "sweep-code-"  # jobs/<sweep>/sweep-code-<sha256[:16]>.zip: the job's own code
CONFIG_FILE = "config.yaml"  # what a sweep's runs share (jobs/<sweep>/configs/<digest>/), transferred to each job
#: jobs/<sweep>/configs/<digest>/config.yaml: every version of what a sweep's runs share, and
#: jobs/<sweep>/job-<digest>.sub: every version of its one submit description. Named by their
#: content (the first DIGEST_LENGTH hex digits of its sha256) and never rewritten: a DAG still
#: running when the grid is rendered again keeps submitting what it was submitted with.
CONFIGS_DIR = "configs"
DIGEST_LENGTH = 16
DAGS_DIR = "dags"  # jobs/<sweep>/dags/<submission>/
LOCK_FILE = ".sweep.lock"  # held by the one sweep command that decides and writes (records.lock)

# ------------------------------------------------------------------ results/<sweep>/
EVENT_LOG = "events.log"  # the sweep's HTCondor job event log
LEADERBOARD = "leaderboard.csv"
RESOURCES = "resources.csv"
BEST_DIR = "best"  # best/<rank>-<run-id>/
BEST_INDEX = "best.json"
REPORT = "report.html"
REPORT_DIR = "report"  # the report's PNGs

# ------------------------------------------------------------------ results/<sweep>/<run-id>/
METRICS = "metrics.json"  # test metrics at the best epoch (written last: its presence means "trained")
RUN_INFO = "run.json"  # run id, seed, versions, host, threads, exit status
HISTORY = "history.csv"
ROC = "roc.csv"
MODEL = "model.keras"
MODEL_INFO = "model.json"  # beside model.keras: what the model was trained on (checked where it is applied)
STDOUT = "stdout.txt"
STDERR = "stderr.txt"
LOCAL_RECORD = ".local-exit.json"  # the local backend's exit record (HTCondor's is the event log)
# A search trial's channel to its driver on the local backend (on a pool: job attributes by chirp)
PROGRESS_FILE = "progress.json"  # written by the job after each epoch: the pruner's values so far
PRUNE_REQUEST = "prune.request"  # written by the driver: the job stops at the end of its epoch
PROGRESS_SEEN = "progress.seen"  # written by a local driver: how many epochs it has judged (the job waits for it)

# ------------------------------------------------------------------ results/<sweep>/ of a search
STUDY_JOURNAL = "study.journal"  # the Optuna study (JournalFileBackend), written by the driver only
DRIVER_DIR = "driver"  # results/<sweep>/driver/: the driver job's log, output and lock
DRIVER_SUBMIT = "driver.sub"  # jobs/<sweep>/driver.sub: the local-universe driver job
DRIVER_LOG = "search.log"  # results/<sweep>/driver/search.log: what the driver did, across its restarts
FROZEN_GRID = "search.yaml"  # jobs/<sweep>/search.yaml: the grid the driver reads (frozen at `sweep search`)

#: What an attempt leaves in its results folder: cleared before a rerun so that an earlier
#: attempt's files cannot pass for the new result.
OUTPUT_FILES = (METRICS, RUN_INFO, HISTORY, ROC, MODEL, MODEL_INFO, STDOUT, STDERR, LOCAL_RECORD, PROGRESS_FILE,
                PRUNE_REQUEST, PROGRESS_SEEN)
#: The files `sweep collect` copies into best/<rank>-<run-id>/ (with the run's CONFIG_FILE).
BEST_FILES = (MODEL, MODEL_INFO, METRICS)

# ------------------------------------------------------------------ backends (as the manifest records them)
BACKEND_LOCAL = "local"
BACKEND_HTCONDOR = "htcondor"

# ------------------------------------------------------------------ HTCondor job attributes
ATTR_SWEEP = "SweepName"  # every job of a sweep (nodes, DAGMan, the FINAL collect node)
ATTR_RUN = "SweepRunId"  # a run's job
ATTR_CONFIG = "SweepConfigId"
ATTR_SUBMISSION = "SweepSubmission"  # the DAGMan job of one submission, and direct-mode jobs
ATTR_ROLE = "SweepRole"  # "dagman" | "collect"
ROLE_DAGMAN = "dagman"
ROLE_COLLECT = "collect"
ROLE_DRIVER = "driver"  # a search's driver job (local universe)
ROLE_CHAIN = "chain"  # a two-step chain's job (local universe, sweep.chain)
ROLE_STEP = "step"  # a chain's simulation or evaluation job (vanilla, sweep.chain.steps -> sweep.job.step)
CHAIN_STEPS = ("select", "simulate", "evaluate")  # what the chain runs as step jobs
STEP_RESULT = "step.json"  # what a step job writes in every case: how it ended, what it made
STEP_DATASET = "dataset.npz"  # the simulation step's dataset, before the chain moves it into place
ATTR_TRIAL = "SweepTrial"  # a search trial's job: the Optuna trial number
# set by the trial's job through chirp after each epoch: the pruner's values so far, "v1,v2,..."
ATTR_PROGRESS = "SweepProgress"
#: A job's live line (records.progress.format_live), by chirp's delayed update: the starter takes
#: only attributes named Chirp* by default (CHIRP_DELAYED_UPDATE_PREFIX)
ATTR_LIVE = "ChirpSweepLive"
ATTR_PRUNE = "SweepPrune"  # set true by the driver (condor_qedit); the job reads it through chirp
#: A run's job is tied to its run in the event log by its submit note: "sweep-run <run id>"
#: (submit_event_notes, direct jobs) or DAGMan's "DAG Node: <DAG_NODE_PREFIX><run id>" (HTCondor
#: 25.x: a ClassAd note, DAGNodeName = "<DAG_NODE_PREFIX><run id>", and no submit_event_notes),
#: and by the SweepRunId of the job ad information events (job_ad_information_attrs), which every
#: version writes.
RUN_NOTE_PREFIX = "sweep-run"
DAG_NODE_PREFIX = "n"


@dataclass(frozen=True)
class SweepPaths:
    """Where a project's sweeps live: everything under one root folder."""

    root: Path

    def jobs(self, sweep: str) -> Path:
        """jobs/<sweep>/: the rendered files and the manifest."""
        return self.root / JOBS_DIR / sweep

    def results(self, sweep: str) -> Path:
        """results/<sweep>/: the runs' outputs, the event log and what collect writes."""
        return self.root / RESULTS_DIR / sweep

    def manifest(self, sweep: str) -> Path:
        """jobs/<sweep>/sweep.json."""
        return self.jobs(sweep) / MANIFEST

    def event_log(self, sweep: str) -> Path:
        """results/<sweep>/events.log: the sweep's one HTCondor job event log."""
        return self.results(sweep) / EVENT_LOG

    def transfer_data(self, sweep: str, dataset: Path, model: str) -> Path:
        """jobs/<sweep>/data/<dataset stem>.<model>.npz: the arrays of the dataset that the model's
        jobs read, the file HTCondor transfers to each of them."""
        return self.jobs(sweep) / TRANSFER_DATA_DIR / transfer_data_name(dataset, model)

    def wrapper(self, sweep: str) -> Path:
        """jobs/<sweep>/run_job.sh: the jobs' executable."""
        return self.jobs(sweep) / WRAPPER

    def shared_config(self, sweep: str, sha256: str) -> Path:
        """jobs/<sweep>/configs/<digest>/config.yaml: the version of what the sweep's runs share
        whose text has this sha256."""
        return self.jobs(sweep) / CONFIGS_DIR / sha256[:DIGEST_LENGTH] / CONFIG_FILE

    def submit_description(self, sweep: str, sha256: str) -> Path:
        """jobs/<sweep>/job-<digest>.sub: the version of the sweep's submit description whose text
        has this sha256."""
        return self.jobs(sweep) / f"job-{sha256[:DIGEST_LENGTH]}.sub"


def transfer_data_name(dataset: Path, model: str) -> str:
    """The file name of a dataset's arrays for one model: <stem>.<model>.npz."""
    return f"{dataset.stem}.{model}.npz"


# ------------------------------------------------------------------ shipped with sweep
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # sweep/
PACKAGE_ROOT = PACKAGE_DIR.parent  # the folder that holds sweep/: a checkout, or site-packages
#: Installed from a wheel: the default templates and site profiles are package data (built from
#: the checkout's templates/ and sites/).
INSTALLED = (PACKAGE_DIR / "templates" / "job.sub.j2").is_file()


def shipped_folder(name: str) -> Path:
    """The folder sweep ships under `name` (templates, sites): the checkout's copy, the one
    users read and edit, or the wheel's package-data copy of it."""
    return PACKAGE_DIR / name if INSTALLED else PACKAGE_ROOT / name
