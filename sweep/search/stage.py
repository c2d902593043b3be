"""`sweep search GRID`: start a search grid's driver.

On a pool the driver is one job in HTCondor's local universe: it runs on the submit node under
the schedd, survives logout, and is started again by the schedd if it is killed (it exits by a
signal; an exit status of its own ends it). `sweep search` validates the grid, checks the jobs'
interpreter, makes the dataset, freezes a copy of the grid (the driver reads that copy, so an
edit of the grid file during the search changes nothing), submits the driver and returns.
With --local (or no pool at all) the same driver runs in the foreground with the local executor.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.markup import escape

from ..core import names
from ..core.errors import BackendError, InputError, printable
from ..core.grid import load_grid
from ..core.gridspec import GridChecks, GridSpec, NotifySpec
from ..core.names import DRIVER_DIR, DRIVER_LOG, DRIVER_SUBMIT, FROZEN_GRID, SweepPaths
from ..core.render import CHECKOUT, job_interpreter, relative_to_root, submit_string, submit_value
from ..core.schema import SAFE_PATH_RE
from ..fsutil import atomic_write_text
from ..submit.identity import own_folder, refuse_condor_as_root
from ..records.lock import sweep_lock
from ..records.manifest import on_pool, read_manifest, update_submission
from ..submit.stage import check_interpreter, unreachable_hint

#: The driver tries this many times (30 s apart) to reach the schedd before it gives up.
CONNECT_ATTEMPTS = 20


@dataclass
class SearchOptions:
    """What `sweep search` was asked: the grid, the project root, where to run ("auto": the pool
    when one is configured or the sweep was submitted to one, else here; "local"; "condor"), a
    progress display, and the CPUs local trials may use (None: all of this machine's)."""

    grid: Path
    root: Path
    mode: str = "auto"  # auto | local | condor (sweep.submit.stage's AUTO, LOCAL, CONDOR)
    progress: bool = True
    cpus: int | None = None


def load_search_grid(grid: Path, root: Path, checks: GridChecks | None) -> GridSpec:
    """The grid, which must have a search: block.

    Raises:
        GridError: invalid grid; InputError: a grid without search:.
    """
    spec = load_grid(grid, root, checks=checks)
    if spec.search is None:
        raise InputError(f"{grid} has no search: block; run its grid with `sweep submit {grid}`")
    return spec


def start_search(options: SearchOptions, console, *, checks: GridChecks | None = None, make_dataset=None) -> str:
    """Validate, then run the driver here (local) or submit it to the pool.

    Returns:
        "done" when the search ran here to its end, "submitted" when the driver job is queued.

    Raises:
        GridError, InputError: the grid; BackendError: --condor (or a sweep on a pool) without a
        schedd that answers (nothing written), or a driver of this sweep already queued.
    """
    from ..submit.backends import htcondor

    spec = load_search_grid(options.grid, options.root, checks)
    for warning in spec.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    from .study import check_journal

    check_journal(spec, options.root)
    python, _ = job_interpreter(spec)
    check_interpreter(spec, python, console)
    jobs_dir = SweepPaths(options.root.resolve()).jobs(spec.name)
    manifest = read_manifest(jobs_dir)
    local = options.mode == "local" or (options.mode == "auto" and htcondor.configured_pool() is None
                                        and not on_pool(manifest))
    if local:
        if options.mode == "auto":
            console.print("[yellow]no HTCondor pool is configured on this machine: the search runs here with the "
                          "local backend (--local says so, --condor insists on a pool)[/]")
        if make_dataset is not None:
            note = make_dataset(spec, options.progress, False)
            if note:
                console.print(note)
        run_local(spec, options, console)
        return "done"
    try:
        schedd = htcondor.connect(timeout=5 if options.mode == "auto" else 10)
    except BackendError as exc:
        raise BackendError(f"{exc}. Nothing was written: {unreachable_hint(on_pool(manifest))}") from None
    with sweep_lock(jobs_dir):
        running = driver_jobs(schedd, spec.name)
        if running:
            raise BackendError(f"sweep '{spec.name}' already has a search driver in the queue (job "
                               f"{running[0]}); follow it with `sweep status {spec.name}`, or remove it first")
        if make_dataset is not None:
            note = make_dataset(spec, options.progress, True)
            if note:
                console.print(note)
        cluster = submit_driver(schedd, spec, options.grid, options.root)
    console.print(f"htcondor: the search driver of sweep '{spec.name}' is job {cluster}.0 in the local universe on "
                  f"{htcondor.pool_name()}: it runs {spec.search.trials} trials, {spec.search.parallel} at a time. "
                  f"Log out if you like; follow with `sweep status {spec.name}` and "
                  f"`sweep collect {spec.name}`")
    return "submitted"


def driver_jobs(schedd, sweep: str, role: str = names.ROLE_DRIVER) -> list[str]:
    """This owner's queued driver jobs of the sweep ("cluster.proc"): a search's driver, or with
    `role` another local-universe job of sweep's (a chain's)."""
    from ..submit.backends.htcondor import submitting_owner

    constraint = (f"Owner =?= {submit_string(submitting_owner())} && {names.ATTR_SWEEP} =?= {submit_string(sweep)} "
                  f"&& {names.ATTR_ROLE} =?= {submit_string(role)} && JobStatus =!= 3 && JobStatus =!= 4")
    try:
        ads = schedd.query(constraint=constraint, projection=["ClusterId", "ProcId"])
    except Exception as exc:  # noqa: BLE001 - the bindings raise several kinds; all mean no answer
        raise BackendError(f"the schedd does not answer: {exc}") from None
    return [f"{ad['ClusterId']}.{ad['ProcId']}" for ad in ads]


def driver_environment(driver_dir: Path) -> dict[str, str]:
    """What the driver's process needs that a local-universe job does not inherit: the checkout
    on PYTHONPATH (without an installed sweep), this pool's CONDOR_CONFIG when it is not the
    default, and SWEEP_IDTOKENS_DIR when the user authenticates with an IDTOKEN of their own: the
    job runs as the same user, who reads the same token where it is (no token is copied, and no
    other token is ever given to the job).

    Raises:
        BackendError: a path that a submit file's environment cannot carry.
    """
    env = {"TF_CPP_MIN_LOG_LEVEL": "2"}
    if SAFE_PATH_RE.fullmatch(str(driver_dir)):  # matplotlib's cache: the owner may have no home (a chain plots)
        env["MPLCONFIGDIR"] = str(driver_dir / "matplotlib")
    if CHECKOUT:
        env["PYTHONPATH"] = str(CHECKOUT)
    if os.environ.get("CONDOR_CONFIG"):
        env["CONDOR_CONFIG"] = os.environ["CONDOR_CONFIG"]
    from ..submit.backends.htcondor import IDTOKENS_VAR

    if os.environ.get(IDTOKENS_VAR):
        env[IDTOKENS_VAR] = os.environ[IDTOKENS_VAR]
    for key, value in env.items():
        if not SAFE_PATH_RE.fullmatch(value):
            raise BackendError(f"{key}={printable(value)[:200]} cannot be passed to the search driver's job "
                               "(spaces, quotes or commas in a path): use a path of letters, digits and "
                               "_ . / : + @ = -")
    return env


def local_universe_submit_text(root: Path, name: str, role: str, command: str, initialdir: Path, stem: str,
                               env: dict[str, str], heading: str, resume: str, notify: NotifySpec | None = None) -> str:
    """The submit description of one of sweep's own jobs in the local universe (a search's driver,
    a chain's job): `python -m sweep.cli --root ROOT COMMAND` on the submit node, restarted by the
    schedd when it is killed (ExitBySignal), ended by an exit status of its own.

    Args:
        root: the project; name: the sweep or chain (+SweepName); role: its +SweepRole.
        command: the rest of the command line (its values already submit_value-quoted).
        initialdir: its folder; stem: its output, error and event log are stem.out/.err/.log.
        env: its environment (driver_environment); heading: the file's first comment;
        resume: how it goes on after a restart (a comment).
        notify: the grid's notify block: HTCondor mails its addresses about the job (`notification`,
            `notify_user`); its webhook is posted by the job itself, never written here.
    """
    environment = " ".join(f"{k}={submit_value(v)}" for k, v in sorted(env.items()))
    return "\n".join([
        f"# {heading} (rendered by sweep)",
        "universe = local",
        f"executable = {submit_value(sys.executable)}",
        f'arguments = "-m sweep.cli --root {submit_value(SweepPaths(root.resolve()).root)} {command}"',
        f'environment = "{environment}"',
        f"initialdir = {submit_value(initialdir)}",
        f"output = {stem}.out",
        f"error = {stem}.err",
        f"log = {stem}.log",
        f"# killed (kill -9, a reboot of the submit node): the schedd starts it again, and {resume};",
        "# an exit of its own (0: done, else an error it printed) ends it",
        "on_exit_remove = ExitBySignal =?= false",
        f"+{names.ATTR_SWEEP} = {submit_string(name)}",
        f"+{names.ATTR_ROLE} = {submit_string(role)}",
        *([f"notification = {notify.notification}", f"notify_user = {submit_value(notify.notify_user)}"]
          if notify is not None and notify.email else []),
        "queue",
    ]) + "\n"


def driver_submit_text(spec: GridSpec, root: Path, env: dict[str, str]) -> str:
    """The driver's submit description (:func:`local_universe_submit_text`)."""
    paths = SweepPaths(root.resolve())
    frozen = paths.jobs(spec.name) / FROZEN_GRID
    return local_universe_submit_text(
        root, spec.name, names.ROLE_DRIVER, f"search {submit_value(frozen)} --driver",
        paths.results(spec.name) / DRIVER_DIR, "driver", env,
        heading=f"the search driver of sweep {spec.name}: owns results/{spec.name}/study.journal",
        resume="it resumes from the journal", notify=spec.notify)


def connect_patiently(note, what: str):
    """The schedd, tried CONNECT_ATTEMPTS times 30 s apart: a schedd that is restarting must not
    end a local-universe job of sweep's (`what`: "the search", "the chain", for the log).

    Raises:
        BackendError: it did not answer any of those times.
    """
    from ..submit.backends import htcondor

    for attempt in range(CONNECT_ATTEMPTS):
        try:
            return htcondor.connect(timeout=30)
        except BackendError as exc:
            if attempt == CONNECT_ATTEMPTS - 1:
                raise
            note(f"{exc}; trying again in 30 s (the schedd must not end {what})")
            time.sleep(30)


def submit_driver(schedd, spec: GridSpec, grid: Path, root: Path) -> int:
    """Freeze the grid, write jobs/<sweep>/driver.sub and queue it; returns the cluster.

    Raises:
        BackendError: this process is root (sweep.submit.identity), or the schedd refused the job.
        SweepError: results/<sweep>/driver (or a folder above it) is a symbolic link.
    """
    from ..submit.backends import htcondor

    refuse_condor_as_root()
    paths = SweepPaths(root.resolve())
    jobs_dir = paths.jobs(spec.name)
    driver_dir = own_folder(paths.results(spec.name) / DRIVER_DIR, top=paths.root)
    frozen = jobs_dir / FROZEN_GRID
    if Path(grid).resolve() != frozen.resolve():
        shutil.copyfile(grid, frozen)
    text = driver_submit_text(spec, root, driver_environment(driver_dir))
    atomic_write_text(jobs_dir / DRIVER_SUBMIT, text)
    bindings = htcondor.bindings()
    try:
        result = schedd.submit(bindings.Submit(text))
    except Exception as exc:  # noqa: BLE001 - the bindings raise several kinds; all mean refused
        raise BackendError(f"the schedd refused the search driver: {printable(str(exc))[:300]}") from None
    cluster = result.cluster()
    update_submission(jobs_dir, f"driver-{cluster}", backend=names.BACKEND_HTCONDOR, role=names.ROLE_DRIVER,
                      cluster=cluster, grid=str(Path(grid).resolve()), state="submitted",
                      owner=htcondor.submitting_owner())
    return cluster


def run_driver(grid: Path, root: Path, log=print) -> int:
    """The driver job's body (`sweep search <frozen grid> --driver`): the search on the pool."""
    from .driver import Driver
    from .trials import HTCondorTrials

    spec = load_search_grid(grid, root, None)
    note = driver_log(spec, root, lambda line: log(line, flush=True))
    note(f"driver of sweep {spec.name} starting (pid {os.getpid()})")
    schedd = connect_patiently(note, "the search")
    summary = Driver(spec, root, HTCondorTrials(spec, schedd=schedd), log=note).run()
    note(f"search {spec.name} finished: {summary.line()}")
    _collect_quietly(spec.name, root, note)
    return 0


def driver_log(spec: GridSpec, root: Path, echo):
    """The driver's log: each line, time-stamped, to `echo` and appended to
    results/<sweep>/driver/search.log (a job's output file is truncated when the schedd restarts
    it; `sweep status` shows the last line)."""
    return appending_log(SweepPaths(root.resolve()).results(spec.name) / DRIVER_DIR / DRIVER_LOG, echo)


def appending_log(path: Path, echo):
    """A log function: each line, time-stamped and printable, to `echo` and appended to `path`
    (kept across restarts of a local-universe job, whose output file the schedd truncates)."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def note(message: str, **_) -> None:
        # printable: a hold reason or a job's error text reaches the terminal and the log unescaped otherwise
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {printable(message)}"
        echo(line)
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    return note


def run_local(spec: GridSpec, options: SearchOptions, console) -> None:
    """The driver in the foreground with the local executor, with a progress bar."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ..submit.backends.local import machine_cpus
    from .driver import Driver
    from .trials import LocalTrials

    cpus = options.cpus or machine_cpus()
    fits = max(1, cpus // spec.resources.request_cpus)
    if spec.search.parallel > fits:
        console.print(f"[yellow]search.parallel is {spec.search.parallel}, but this machine's {cpus} core(s) fit "
                      f"{fits} trial(s) of {spec.resources.request_cpus} CPU(s) at a time: the trials share them[/]")
    executor = LocalTrials(spec, cpus=cpus)
    total = spec.search.trials
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("{task.fields[line]}"), TimeElapsedColumn(), console=console,
                  disable=not options.progress, transient=False) as bar:
        task = bar.add_task(f"search {spec.name}", total=total, line="")

        def show(summary, running: int) -> None:
            done = summary.complete + summary.pruned + summary.failed
            bar.update(task, completed=min(done, total), line=f"{summary.line()}; {running} running")

        log = driver_log(spec, options.root, lambda line: bar.console.print(line, markup=False, highlight=False))
        log(f"driver of sweep {spec.name} starting here (pid {os.getpid()}, local backend)")
        summary = Driver(spec, options.root, executor, log=log, progress=show).run()
        log(f"search {spec.name} finished: {summary.line()}")
    console.print(f"search {spec.name}: {summary.line()}", markup=False)
    if summary.overhead_s:
        overhead = sorted(summary.overhead_s)
        console.print(f"driver overhead per step (ask -> started, result -> told): median "
                      f"{overhead[len(overhead) // 2] * 1000:.0f} ms, max {overhead[-1] * 1000:.0f} ms", markup=False)


def _collect_quietly(sweep: str, root: Path, log) -> None:
    """Write the leaderboard when the search ends (the physicist comes back to it)."""
    from ..collect.gather import collect

    try:
        board = collect(sweep, root, write_csv=True)
        log(f"leaderboard written to {relative_to_root(board.results_dir / names.LEADERBOARD, root)} "
            f"({len(board.table)} ranked trials)", flush=True)
    except Exception as exc:  # noqa: BLE001 - the search is done; collect can be run again by hand
        log(f"collect failed ({type(exc).__name__}: {exc}); run `sweep collect {sweep}`", flush=True)
