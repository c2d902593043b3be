"""`sweep chain PIPELINE`: the two-step chain as one job of the pool, or here.

On a pool the chain is one job in HTCondor's local universe, like a search's driver: it runs on
the submit node under the schedd (log out if you like), the schedd starts it again if it is
killed, and it runs the stages of sweep.chain.stages in order; each grid stage's runs are the
sweep's own HTCondor DAG (or a search's trials), which it submits and follows. The stages are
idempotent, so a restarted chain job goes on where the killed one was: a sweep submits only the
runs without a result that are not queued, the simulation and the evaluation (each a vanilla job
on an execute node, sweep.chain.steps) run again only for new inputs, and a restarted chain job
follows their queued job instead of submitting another. With --local (or no pool at all) the same
stages run here with the local backend.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from rich.markup import escape

from ..core import names
from ..core.errors import BackendError, printable
from ..core.grid import load_grid
from ..core.gridspec import GridChecks, GridSpec
from ..core.names import SweepPaths
from ..core.pipeline import PipelineSpec, load_pipeline
from ..core.render import job_interpreter, submit_value
from ..fsutil import atomic_write_text
from ..submit.identity import own_folder, refuse_condor_as_root
from ..records.chain import ChainJob, save_chain
from ..records.lock import sweep_lock
from ..search.stage import (appending_log, connect_patiently, driver_environment, driver_jobs,
                            local_universe_submit_text)
from ..submit.stage import CONDOR, LOCAL, SubmitOptions, check_interpreter, submit_grid, unreachable_hint
from .steps import LocalSteps, PoolSteps
from .stages import CHAIN_LOG, ChainContext, ChainError, read_record, run_stages, stage_lines

FROZEN_PIPELINE = "chain.yaml"  # jobs/<chain>/chain.yaml: the pipeline the chain job reads
CHAIN_SUBMIT = "chain.sub"  # jobs/<chain>/chain.sub: the local-universe chain job
CHAIN_JOB_DIR = "job"  # results/<chain>/job/: the chain job's output, error and event log


@dataclass
class ChainOptions:
    """What `sweep chain` was asked: the pipeline file, the project root, where to run ("auto": the
    pool when one is configured, else here; "local"; "condor"), a progress display, and the CPUs
    the local runs may use (None: all)."""

    pipeline: Path
    root: Path
    mode: str = "auto"  # auto | local | condor
    progress: bool = True
    cpus: int | None = None


def chain_log(spec: PipelineSpec, root: Path, echo):
    """Each line, time-stamped, to `echo` and appended to results/<chain>/chain.log."""
    return appending_log(SweepPaths(root.resolve()).results(spec.name) / CHAIN_LOG, echo)


def start_chain(options: ChainOptions, console, *, checks: GridChecks, make_dataset) -> str:
    """Validate the pipeline and its grids, then run the chain here or submit its job.

    Returns:
        "done" (ran here to its end) or "submitted" (the chain job is queued).

    Raises:
        GridError: the pipeline or a grid; ChainError: a stage that cannot go on (local);
        BackendError: --condor without a schedd that answers (nothing written), or a chain job of
        this chain already queued.
    """
    from ..submit.backends import htcondor

    spec = load_pipeline(options.pipeline, options.root, checks=checks)
    if (SweepPaths(options.root.resolve()).jobs(spec.name) / names.MANIFEST).is_file():
        raise ChainError(f"{options.pipeline}: the project already has a sweep named '{spec.name}' "
                         f"(jobs/{spec.name}/): "
                         "give the chain another name (status, collect and report would show that sweep)")
    grids = [load_grid(spec.peaks.grid, options.root, checks=checks),
             load_grid(spec.clusters.grid, options.root, checks=checks)]
    for grid in grids:  # the jobs' interpreter, before anything runs
        check_interpreter(grid, job_interpreter(grid)[0], console)
    local = options.mode == LOCAL or (options.mode == "auto" and htcondor.configured_pool() is None)
    if local:
        if options.mode == "auto":
            console.print("[yellow]no HTCondor pool is configured on this machine: the chain runs here with the "
                          "local backend (--local says so, --condor insists on a pool)[/]")
        note = chain_log(spec, options.root, lambda line: console.print(escape(line), highlight=False))
        note(f"chain {spec.name} starting here (pid {os.getpid()}, local backend)")
        ctx = ChainContext(spec, options.root, _local_runner(options, console, checks, make_dataset), checks, note,
                           lambda grids: LocalSteps(options.root, spec.name, grids[0], options.cpus, note))
        record = _run_and_tell(ctx, spec, options.root, note)
        note(f"chain {spec.name} finished")
        for line in stage_lines(record):
            console.print(line, markup=False, highlight=False)
        return "done"
    try:
        schedd = htcondor.connect(timeout=5 if options.mode == "auto" else 10)
    except BackendError as exc:
        raise BackendError(f"{exc}. Nothing was written: {unreachable_hint(False)}") from None
    jobs_dir = SweepPaths(options.root.resolve()).jobs(spec.name)
    jobs_dir.mkdir(parents=True, exist_ok=True)
    with sweep_lock(jobs_dir):
        queued = driver_jobs(schedd, spec.name, role=names.ROLE_CHAIN)
        if queued:
            raise BackendError(f"chain '{spec.name}' already has its job in the queue (job {queued[0]}); follow it "
                               f"with `sweep status {spec.name}`, or remove it first")
        cluster = submit_chain_job(schedd, spec, options.root)
    console.print(f"htcondor: the chain {spec.name} is job {cluster}.0 in the local universe on "
                  f"{htcondor.pool_name()}: it runs its stages (peaks, simulate, clusters, evaluate) one after the "
                  f"other as jobs of the pool. Log out if you like; follow with `sweep status {spec.name}`, then "
                  f"`sweep report {spec.name}`")
    return "submitted"


def _local_runner(options: ChainOptions, console, checks: GridChecks, make_dataset):
    def run(grid: GridSpec, path: Path) -> None:
        if grid.search is not None:
            from ..search.stage import SearchOptions, run_local

            note = make_dataset(grid, options.progress, False)
            if note:
                console.print(note)
            run_local(grid, SearchOptions(grid=path, root=options.root, mode=LOCAL, progress=options.progress,
                                          cpus=options.cpus), console)
            return
        submit_grid(SubmitOptions(grid=path, root=options.root, mode=LOCAL, progress=options.progress,
                                  cpus=options.cpus), console, checks=checks, make_dataset=make_dataset)
    return run


def _pool_runner(root: Path, schedd, console, checks: GridChecks, make_dataset, log):
    def run(grid: GridSpec, path: Path) -> None:
        if grid.search is not None:
            from ..search.driver import Driver
            from ..search.trials import HTCondorTrials

            note = make_dataset(grid, False, True)
            if note:
                log(note)
            summary = Driver(grid, root, HTCondorTrials(grid, schedd=schedd), log=log).run()
            log(f"search {grid.name}: {summary.line()}")
            return
        from ..submit.status import wait_for

        submit_grid(SubmitOptions(grid=path, root=root, mode=CONDOR, progress=False), console, checks=checks,
                    make_dataset=make_dataset)
        status = wait_for(grid.name, root)
        log(f"sweep {grid.name}: " + ", ".join(f"{n} {state}" for state, n in sorted(status.counts().items())))
    return run


def chain_submit_text(spec: PipelineSpec, root: Path, env: dict[str, str]) -> str:
    """The chain job's submit description (:func:`sweep.search.stage.local_universe_submit_text`)."""
    paths = SweepPaths(root.resolve())
    frozen = paths.jobs(spec.name) / FROZEN_PIPELINE
    return local_universe_submit_text(
        root, spec.name, names.ROLE_CHAIN, f"chain {submit_value(frozen)} --driver",
        paths.results(spec.name) / CHAIN_JOB_DIR, "chain", env,
        heading=f"the two-step chain {spec.name}: runs its stages, each a sweep of the pool",
        resume="its stages go on where they were")


def submit_chain_job(schedd, spec: PipelineSpec, root: Path) -> int:
    """Freeze the pipeline, write jobs/<chain>/chain.sub and queue it; returns the cluster.

    Raises:
        BackendError: this process is root (sweep.submit.identity), or the schedd refused the job.
        SweepError: results/<chain>/<job folder> (or a folder above it) is a symbolic link.
    """
    from ..submit.backends import htcondor

    refuse_condor_as_root()
    paths = SweepPaths(root.resolve())
    jobs_dir, results = paths.jobs(spec.name), paths.results(spec.name)
    job_dir = own_folder(results / CHAIN_JOB_DIR, top=paths.root)
    frozen = jobs_dir / FROZEN_PIPELINE
    if Path(spec.file).resolve() != frozen.resolve():
        shutil.copyfile(spec.file, frozen)
    text = chain_submit_text(spec, root, driver_environment(job_dir))
    atomic_write_text(jobs_dir / CHAIN_SUBMIT, text)
    try:
        result = schedd.submit(htcondor.bindings().Submit(text))
    except Exception as exc:  # noqa: BLE001 - the bindings raise several kinds; all mean refused
        raise BackendError(f"the schedd refused the chain job: {printable(str(exc))[:300]}") from None
    cluster = result.cluster()
    # in the chain's record (jobs/<chain>/ holds no sweep manifest: the chain is not a sweep)
    record = read_record(results)
    record.jobs = [*(record.jobs or []), ChainJob(cluster=cluster, owner=htcondor.submitting_owner(),
                                                  submitted=time.strftime("%Y-%m-%dT%H:%M:%S"))]
    record.chain = spec.name
    save_chain(results, record)
    return cluster


def run_chain_job(pipeline: Path, root: Path, console, *, checks: GridChecks, make_dataset) -> int:
    """The chain job's body (`sweep chain <frozen pipeline> --driver`): the stages on the pool."""
    spec = load_pipeline(pipeline, root, checks=checks)
    note = chain_log(spec, root, lambda line: print(line, flush=True))
    note(f"chain {spec.name} starting on the pool (pid {os.getpid()})")
    schedd = connect_patiently(note, "the chain")
    ctx = ChainContext(spec, root, _pool_runner(root, schedd, console, checks, make_dataset, note), checks, note,
                       lambda grids: PoolSteps(root, spec.name, schedd, grids, note))
    record = _run_and_tell(ctx, spec, root, note)
    note(f"chain {spec.name} finished")
    for line in stage_lines(record):
        note(line)
    return 0


def _run_and_tell(ctx: ChainContext, spec: PipelineSpec, root: Path, note):
    """run_stages(ctx), then the chain's end posted to the webhook of each of its grids' notify
    blocks (once per URL) that asks for it: complete, or error when a stage could not go on (the
    ChainError is raised on). Each grid's own sweep or search tells its own end as well."""
    try:
        record = run_stages(ctx)
    except ChainError as exc:
        _tell_chain(spec, root, None, str(exc), note)
        raise
    _tell_chain(spec, root, record, None, note)
    return record


def _tell_chain(spec: PipelineSpec, root: Path, record, problem: str | None, note) -> None:
    """The chain's end posted to its grids' webhooks; whatever goes wrong here is logged, never
    raised (the chain's own result, or its error, stands)."""
    try:
        _post_chain(spec, root, record, problem, note)
    except Exception as exc:  # noqa: BLE001 - a notification never changes how the chain ended
        note(f"notify: the chain's summary was not sent ({type(exc).__name__}: {exc})")


def _post_chain(spec: PipelineSpec, root: Path, record, problem: str | None, note) -> None:
    from ..collect.notify import envelope, grid_notify, post

    failed = problem is not None
    webhooks = []
    for grid in (spec.peaks.grid, spec.clusters.grid):
        notify = grid_notify(grid, root, note)
        if notify is not None and notify.posts(failed) and notify.webhook not in webhooks:
            webhooks.append(notify.webhook)
    if not webhooks:
        return
    paths = SweepPaths(root.resolve())
    body = {**envelope(spec.name, "chain"), "status": "error" if failed else "complete",
            "stages": stage_lines(record if record is not None else read_record(paths.results(spec.name))),
            "problem": problem, "report_command": f"sweep --root {paths.root} report {spec.name}"}
    for url in webhooks:
        post(url, body, note)
