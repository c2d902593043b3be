"""The submit stage: a grid (or a sweep's failed runs) to jobs on a backend. What `sweep submit`
and `sweep resubmit` do, the CLI only parses their arguments.

The order matters and never changes: validate, expand and render in memory; choose the backend
(an unreachable pool writes nothing); then, holding the sweep's lock (records.lock: no other
command decides for this sweep meanwhile), ask the schedd what is queued; make the dataset (the
data step, given by the caller: this stage does not know the simulator); write the files; submit;
record the submission.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.markup import escape

from ..core.errors import BackendError, InputError, NotFoundError, printable
from ..core.gridspec import GridChecks, GridSpec, merged_settings
from ..core.names import BACKEND_HTCONDOR, BACKEND_LOCAL, PACKAGE_DIR, SweepPaths
from ..core.render import relative_to_root
from ..core.states import RunState
from ..records.lock import sweep_lock
from ..records.manifest import DatasetRef, Manifest, dataset_ref, load_manifest, on_pool, read_manifest, \
    record_submission
from ..records.base import RecordError
from ..records.localexit import read_local_exit
from ..records.runs import mark_stale, read_run
from .prepare import for_native_memory_retry, prepare, write_rendered
from .status import running_here, sweep_status, wait_for

#: The data step (sweep.physics.datastep.ensure_dataset): (grid, show progress, whether the jobs
#: receive their data by transfer) -> a note of what it made, or None. Raises NotFoundError when
#: the file is missing and the grid does not say how to make it.
DataStep = Callable[[GridSpec, bool, bool], "str | None"]

AUTO, LOCAL, CONDOR = "auto", "local", "condor"


@dataclass
class SubmitOptions:
    """What `sweep submit` was asked to do."""

    grid: Path
    root: Path
    mode: str = AUTO  # AUTO: HTCondor when a schedd answers, else this machine | LOCAL | CONDOR
    dry_run: bool = False
    show: bool = False  # with dry_run: print the first submit file
    use_dag: bool = True
    force: bool = False  # rerun configurations that have a valid result
    only: set[str] = field(default_factory=set)  # resubmit: just these runs (and force them)
    requeue: set[str] = field(default_factory=set)  # resubmit: runs whose held jobs it just removed
    cpus: int | None = None  # local: cores to pack the jobs onto
    progress: bool = True
    wait: bool = False  # htcondor: the caller waits for the end


@dataclass
class SubmitOutcome:
    """What happened, and what the caller does next."""

    sweep: str
    follow: str | None = None  # "collect" (local runs ended) | "wait" (wait, then collect) | "search" | None
    all_failed: bool = False  # every local run failed


def submit_grid(options: SubmitOptions, console, *, checks: GridChecks | None = None,
                make_dataset: DataStep | None = None) -> SubmitOutcome:
    """Render a grid's runs and submit those without a valid result that are not queued.

    Args:
        options: the grid, the project folder and how to submit.
        console: a rich Console for progress and what was done.
        checks: the caller's checks of grid values (simulation parameters: the physics').
        make_dataset: the data step, run after the backend is chosen and before any file is written.

    Returns:
        The sweep and what the caller does next.

    Raises:
        InputError: a pipeline file (chain:), not a grid.
        GridError, RenderError: the grid cannot be rendered (nothing written).
        BackendError: --condor (or a resubmission to a pool) without a reachable schedd, or a
            schedd that refused the jobs.
        NotFoundError: the dataset is missing and the grid does not say how to make it.
    """
    from ..core.pipeline import looks_like_pipeline

    if looks_like_pipeline(options.grid):
        raise InputError(f"{options.grid} is a pipeline file (chain:), not a grid: run it with "
                         f"`sweep chain {options.grid}`")
    root = options.root
    prepared = prepare(options.grid, root, checks=checks)
    spec, rendered = prepared.spec, prepared.rendered
    if spec.search is not None:  # an adaptive search: its driver submits the trials (sweep.search)
        return SubmitOutcome(spec.name, follow="search")
    for warning in spec.warnings:  # already escaped for the terminal
        from rich.markup import escape

        console.print(f"[yellow]warning:[/] {escape(warning)}")
    manifest = read_manifest(rendered.jobs_dir)
    dataset = _dataset(spec, manifest)  # None while the file does not exist (the data step makes it)
    stale: list = []
    if options.only:
        todo = [r for r in rendered.runs if r.run.run_id in options.only]
        if len(todo) < len(options.only):
            console.print(f"[yellow]{len(options.only) - len(todo)} run(s) to resubmit are no longer in "
                          f"{options.grid} (the grid changed); they are left as they are[/]")
    else:
        todo, stale = _to_submit(rendered.runs, rendered.results_dir, spec, dataset, options.force)
    done = len(rendered.runs) - len(todo)
    _say_stale(console, spec, stale)
    if options.dry_run:
        console.print(f"[bold]dry run[/]: sweep '{spec.name}' has {len(rendered.runs)} runs; {done} already have a "
                      f"valid result; would submit {len(todo)} (nothing written)")
        for r in todo:
            console.print(f"  {r.run.run_id}  {r.run.name}")
        if options.show:
            _show_settings(console, spec)
        if todo and options.show:
            console.rule(f"{relative_to_root(rendered.submit_path, root)} (every run's; each run's VARS fill it in)")
            # the file byte for byte: print() would fold long lines to the console's width, and a
            # folded `transfer_input_files = …` no longer parses
            console.out(rendered.submit_text, highlight=False, end="")
            console.rule(f"the values of run {todo[0].run.run_id}")
            console.out("".join(f"{k} = {v}\n" for k, v in todo[0].submit_vars.items()), highlight=False, end="")
            console.rule(f"{relative_to_root(rendered.config_path, root)} (what every run shares)")
            console.out(rendered.config_text, highlight=False, end="")
        return SubmitOutcome(spec.name)
    check_interpreter(spec, rendered.python, console)
    # before writing anything: an unreachable pool writes nothing
    backend = choose_backend(options, console, on_pool(manifest))
    if (backend.name == BACKEND_HTCONDOR and spec.condor.get("memory_escalation")
            and backend.native_memory_retry()):
        # a schedd of 25.2 or newer escalates memory by itself: the same runs, rendered for it
        prepared = for_native_memory_retry(prepared, root, disk=backend.native_disk_retry())
        wanted = {r.run.run_id for r in todo}
        todo = [r for r in prepared.rendered.runs if r.run.run_id in wanted]
    with sweep_lock(rendered.jobs_dir):  # query -> decide -> submit -> record, one command at a time
        return _submit_locked(options, console, prepared, todo, done, backend, make_dataset, dataset)


def _show_settings(console, spec: GridSpec) -> None:
    """The grid's settings after its site profile was merged, each with where it comes from."""
    site = spec.site
    console.rule("settings" + (f" (site {site.name}: {site.file})" if site else ""))
    if site and site.description:
        console.print(f"site {site.name}: {site.description}", markup=False)
    for key, value, origin in merged_settings(spec):
        console.print(f"  {key:<34} {printable(str(value))[:200]:<40}  [{origin}]", markup=False)
    if spec.condor.get("memory_escalation"):
        console.print("  memory escalation is rendered as release expressions here; a schedd of HTCondor 25.2 or newer "
                      "gets retry_request_memory_increase/_max at submit", markup=False)


def _submit_locked(options: SubmitOptions, console, prepared, todo: list, done: int, backend,
                   make_dataset: DataStep | None, dataset: DatasetRef | None) -> SubmitOutcome:
    root = options.root
    spec, rendered = prepared.spec, prepared.rendered
    skipped = {}
    if backend.name == BACKEND_HTCONDOR:
        todo, skipped = backend.skip_queued(rendered, todo, requeue=options.requeue)
    elif backend.name == BACKEND_LOCAL:
        todo, skipped = _skip_running_here(rendered, todo)
    if make_dataset is not None:
        # the per-model file HTCondor transfers; local jobs read the dataset where it is
        note = make_dataset(spec, options.progress, backend.name == BACKEND_HTCONDOR)
        if note:
            console.print(note)
    if dataset is None and spec.data.path.is_file() and not options.only:
        # the data step has just made the file: results trained on an earlier version are stale
        dataset = _dataset(spec, None)
        _, stale = _to_submit([r for r in rendered.runs if r not in todo and r.run.run_id not in skipped],
                              rendered.results_dir, spec, dataset, False)
        if stale and backend.name == BACKEND_HTCONDOR:
            stale, more = backend.skip_queued(rendered, stale)
            skipped.update(more)
        _say_stale(console, spec, stale)
        todo, done = todo + stale, done - len(stale)
    elif dataset is None and spec.data.path.is_file():
        dataset = _dataset(spec, None)
    jobs_dir = write_rendered(prepared, options.grid, dataset=dataset)
    console.print(f"rendered {len(rendered.runs)} runs into {relative_to_root(jobs_dir, root)}/ "
                  f"({done} already done, {len(skipped)} queued or running, {len(todo)} to submit)")
    if not todo:
        console.print("nothing to submit: every configuration has a valid result or is queued (use --force to "
                      "rerun finished ones)")
        # what is queued is this sweep's: wait for it
        return SubmitOutcome(spec.name, follow="wait" if skipped and options.wait else None)
    report = backend.submit(rendered, todo)
    if report.backend == BACKEND_LOCAL:
        record_submission(jobs_dir, backend=report.backend, runs=report.submitted)
        codes = report.details.get("exit_codes", {})
        failed = sum(1 for c in codes.values() if c != 0)
        console.print(f"local: {len(codes) - failed} of {len(codes)} runs finished, {failed} failed")
        return SubmitOutcome(spec.name, follow="collect", all_failed=bool(failed) and failed == len(codes))
    from .backends.htcondor import pool_name

    d = report.details
    what = f"DAG (cluster {d['cluster']})" if d["mode"] == "dag" else f"cluster {d['cluster']}"
    console.print(f"htcondor: submitted {len(report.submitted)} runs to {pool_name()} as {what}; "
                  f"follow with `sweep status {spec.name}`")
    return SubmitOutcome(spec.name, follow="wait" if options.wait else None)


def check_interpreter(spec: GridSpec, python: str, console) -> None:
    """The jobs' interpreter must be able to run them (TensorFlow, Keras, numpy, scikit-learn at
    usable versions), checked before anything is queued wherever this machine can see it: the
    shared interpreter (this Python), condor.python, or python3 after condor.cvmfs's setup
    script. sweep.job.envcheck, run as a script by that interpreter, imports nothing heavy
    (milliseconds). What only the execute nodes have (a container's Python, a CVMFS view not
    mounted here) is checked by each job when it starts (exit 3, never retried).

    Raises:
        InputError: naming the environment and what it lacks; nothing has been written.
    """
    condor = spec.condor
    # the job's own check, run as a script by that interpreter (this process never imports the job)
    script = str(PACKAGE_DIR / "job" / "envcheck.py")
    setup = condor.get("cvmfs")
    if condor.get("container_image"):
        what, command = f"the container image {condor['container_image']}", None
    elif setup:
        what = f"the setup script condor.cvmfs {setup}"
        # the script's path and the interpreter are arguments, never part of the shell's text
        command = (["/bin/sh", "-c", '. "$1" >/dev/null 2>&1; exec "$2" -I "$3"', "sh", setup, python, script]
                   if os.path.isfile(setup) else None)
    else:
        what = f"condor.python {python}" if condor.get("python") else f"this machine's interpreter {python}"
        command = [python, "-I", script]
    if command is None:
        console.print(f"[dim]{escape(what)} is not visible on this machine: each job checks its environment when "
                      "it starts (exit 3, 'environment', never retried)[/]")
        return
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InputError(f"{what} cannot be run here: {exc}") from None
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise InputError(f"{what} cannot run the jobs ({printable(why[:300])}); nothing was queued: install what it "
                         "lacks, or say where TensorFlow comes from (condor.python, condor.cvmfs, "
                         "condor.container_image)")


def _dataset(spec: GridSpec, manifest: Manifest | None) -> DatasetRef | None:
    """The grid's dataset as the manifest records it: path and content digest (sha256, size);
    None while the file does not exist. The manifest's earlier digest is reused while the file's
    size and modification time are unchanged (a large file is read once)."""
    if not spec.data.path.is_file():
        return None
    return dataset_ref(spec.data.path, manifest.dataset if manifest is not None else None)


def _to_submit(runs: list, results_dir: Path, spec: GridSpec, dataset: DatasetRef | None, force: bool
               ) -> tuple[list, list]:
    """(the runs to submit, those of them that have a valid result trained on another version of
    the dataset). Without --force a run with a valid, current result is not submitted again."""
    required = [m for m, _ in spec.ranking]
    todo, stale = [], []
    for r in runs:
        outcome = mark_stale(read_run(results_dir, r.run.run_id, required), dataset.sha256 if dataset else None)
        if force or not outcome.ok:
            todo.append(r)
            if outcome.state is RunState.STALE:
                stale.append(r)
    return todo, stale


def _skip_running_here(rendered, todo: list) -> tuple[list, dict[str, str]]:
    """(the local runs to start, run id -> why not for the others): a run whose job an earlier
    command started here still runs (that command was killed, its job lives on in a session of its
    own: the local backend's start record names the process, and it is the same process) is not
    started again beside it, even with --force."""
    keep, skipped = [], {}
    for r in todo:
        try:
            local = read_local_exit(rendered.results_dir / r.run.run_id)
        except RecordError:
            local = None
        if running_here(local):
            skipped[r.run.run_id] = "its job still runs here (started by an earlier command)"
        else:
            keep.append(r)
    return keep, skipped


def _say_stale(console, spec: GridSpec, stale: list) -> None:
    if stale:
        console.print(f"[yellow]{len(stale)} run(s) were trained on another version of {spec.data.path_text} "
                      "(its content changed since): they are run again[/]")


def choose_backend(options: SubmitOptions, console, sweep_on_pool: bool = False):
    """The backend for a submission. LOCAL and CONDOR as asked. AUTO: this machine only when no
    HTCondor pool is configured at all and the sweep has never been on one; otherwise the pool,
    whose schedd must answer within 5 s. Falling back to this machine is never silent, and never
    happens for a sweep whose runs may be queued on a pool (they would run twice).

    Raises:
        BackendError: the pool's schedd does not answer (nothing has been written), with how to retry.
    """
    from .backends.local import LocalBackend

    if options.mode == LOCAL:
        return LocalBackend(cpus=options.cpus, progress=options.progress)
    from .backends import htcondor

    configured = htcondor.configured_pool()
    if options.mode == AUTO and configured is None and not sweep_on_pool:
        console.print("[yellow]no HTCondor pool is configured on this machine (no CONDOR_CONFIG, no "
                      f"{' or '.join(htcondor.CONFIG_FILES)}): running on this machine with the local backend "
                      "(--local says so, --condor insists on a pool)[/]")
        return LocalBackend(cpus=options.cpus, progress=options.progress)
    try:
        schedd = htcondor.connect(timeout=5 if options.mode == AUTO else 10)
    except BackendError as exc:
        raise BackendError(f"{exc}. Nothing was written: {unreachable_hint(sweep_on_pool)}") from None
    console.print(f"using the HTCondor backend: schedd of {htcondor.pool_name()}")
    return htcondor.HTCondorBackend(use_dag=options.use_dag, schedd=schedd)


def unreachable_hint(sweep_on_pool: bool) -> str:
    """How to go on when the schedd does not answer. A sweep that lives on a pool must not be
    run here as well: its queued runs would run twice."""
    retry = "retry when the schedd answers (`condor_q` tells)"
    if sweep_on_pool:
        return f"{retry}; this sweep has runs on the pool, so it is not run on this machine"
    return f"{retry}, or run the sweep on this machine with --local"


def resubmit(sweep: str, options: SubmitOptions, console, warnings=None, *, failed_only: bool = False,
             checks: GridChecks | None = None, make_dataset: DataStep | None = None
             ) -> SubmitOutcome:
    """Rerun a sweep's failed, held and removed runs (and, unless failed_only, those never run),
    from the grid file the sweep was rendered from. Held jobs are removed from the queue first.

    Args:
        sweep: the sweep's name.
        options: as for submit_grid (grid and only are filled in here); mode AUTO means where
            the sweep ran before.
        console: for what is done; warnings: for warnings (default: console).

    Returns:
        As submit_grid; no follow-up when there is nothing to rerun.

    Raises:
        ResultsError: no such sweep.
        BackendError: the sweep lives on a pool whose schedd does not answer (rerunning blind
            could duplicate queued jobs).
        NotFoundError: the sweep's grid file is gone.
    """
    warnings = warnings or console
    manifest = load_manifest(options.root, sweep)  # no such sweep: an error before anything is locked or written
    if manifest.search is not None:
        raise InputError(f"sweep '{sweep}' is a search: its driver tries failed trials again by itself "
                         f"(search.retries); `sweep search {printable(manifest.grid or 'GRID')}` resumes a "
                         "search whose driver has stopped")
    with sweep_lock(SweepPaths(options.root.resolve()).jobs(sweep)):
        return _resubmit_locked(sweep, options, console, warnings, failed_only, checks, make_dataset)


def _resubmit_locked(sweep: str, options: SubmitOptions, console, warnings, failed_only: bool,
                     checks: GridChecks | None, make_dataset: DataStep | None) -> SubmitOutcome:
    manifest = load_manifest(options.root, sweep)
    pool = on_pool(manifest)
    status = sweep_status(sweep, options.root, query_schedd=True)
    if pool and status.schedd is None and options.mode != LOCAL:
        # without the schedd we cannot tell held or queued jobs from lost ones: rerunning could duplicate
        raise BackendError(f"cannot resubmit sweep '{sweep}' without its schedd ({status.pool_note})")
    grid = Path(manifest.grid or "")
    if not manifest.grid or not grid.is_file():
        raise NotFoundError(f"the sweep's grid file {grid} is gone; submit the grid again instead")
    if hashlib.sha256(grid.read_bytes()).hexdigest() != manifest.grid_sha256:
        warnings.print(f"[yellow]{grid} changed since it was submitted: runs are matched by id, "
                       "and configurations that changed are new runs (submit the grid for those)[/]")
    runs = [r.run_id for r in status.runs
            if r.state.needs_rerun() or (not failed_only and r.state is RunState.NOT_RUN)]
    if not runs:
        console.print(f"nothing to resubmit in sweep '{sweep}'")
        return SubmitOutcome(sweep)
    removed = status.remove_held(runs)
    for r in removed:
        console.print(f"removed held job {r.job_id} of run {r.run_id} from the queue ({r.detail}); it is submitted "
                      "again with the grid's current request")
    mode = CONDOR if options.mode == CONDOR or (pool and options.mode != LOCAL) else options.mode
    return submit_grid(SubmitOptions(grid=grid, root=options.root, mode=mode, use_dag=options.use_dag,
                                     force=True, only=set(runs), requeue={r.run_id for r in removed},
                                     cpus=options.cpus, progress=options.progress, wait=options.wait),
                       console, checks=checks, make_dataset=make_dataset)


def wait(sweep: str, root: Path, console, timeout: float | None = None) -> None:
    """Wait until the sweep is finished, then print its counts.

    Raises:
        BackendError: not finished after `timeout` seconds.
    """
    status = wait_for(sweep, root, timeout=timeout)
    counts = status.counts()
    console.print(f"{sweep}: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
