"""A chain's simulation and evaluation as jobs: on a pool each is one vanilla job on an execute
node (so the submit node runs nothing but the chain's small local-universe job), here
(--local) the same job body in a process of its own. Either way the step runs the peak grid's
job wrapper (its interpreter, setup script or container) with sweep's code archive, and writes
its outputs flat in results/<chain>/steps/<stage>-<inputs hash>/ with step.json (sweep.job.step); the
stage then takes them from there.

A step is run at most once for its inputs: its job carries +SweepRunId "<stage>-<inputs hash>",
a restarted chain job follows the queued job of that id instead of submitting another, and a
step whose job ended while no chain job was running is taken from its step.json.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from ..core import names
from ..core.errors import BackendError, printable
from ..core.gridspec import GridSpec
from ..core.names import ROLE_STEP, STDERR, STEP_DATASET, STEP_RESULT, SweepPaths
from ..core.render import condor_context, render_wrapper, submit_string, submit_value
from ..fsutil import atomic_write_text, write_text_if_changed
from ..records.base import NewerRecordError, RecordError
from ..records.evaluation import EVALUATION
from ..records.runs import tail
from ..records.step import StepRecord, read_step
from ..records.untrusted import DATASET_LIMIT, EVALUATION_LIMIT, PNG_LIMIT, open_untrusted

# jobs/<chain>/steps/ (wrapper, code, <stage>-<hash>/config.yaml and step.sub); results/<chain>/steps/<stage>-<hash>/
STEPS_DIR = "steps"
STEP_EVENTS = "events.log"  # results/<chain>/steps/events.log: the step jobs' event log
STEP_WRAPPER = "run_step.sh"


class StepError(BackendError):
    """A step job that did not give its outputs: it failed (its error), was removed, or vanished."""


@dataclass
class StepRequest:
    """One step to run: its stage, its inputs' hash, what its config.yaml says, and the files it
    needs beside it (the leaders and their training records)."""

    stage: str  # simulate | evaluate
    digest: str
    config: dict[str, Any]
    inputs: list[Path] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        """<stage>-<inputs hash>: the step's run id, its folders' name and its job's sweep run id."""
        return f"{self.stage}-{self.digest}"


class StepExecutor(Protocol):
    """Where a chain's steps (its simulation and its evaluation) run: here, or as jobs of the pool."""

    def run(self, request: StepRequest, on_submit: Callable[[int], None] | None = None
            ) -> tuple[StepRecord, Path]:
        """Run the step to its end; on a pool, `on_submit(cluster)` is called once its job is known.

        Returns:
            Its step.json (status done) and the folder its outputs are in.

        Raises:
            StepError: the step failed, or its job was removed.
        """
        ...


def step_folders(root: Path, chain: str, request: StepRequest) -> tuple[Path, Path]:
    """(jobs/<chain>/steps/<stage>-<inputs hash>/, results/<chain>/steps/<stage>-<inputs hash>/):
    one pair per step and inputs, so a job of earlier inputs never reads or writes this one's."""
    paths = SweepPaths(root.resolve())
    return paths.jobs(chain) / STEPS_DIR / request.run_id, paths.results(chain) / STEPS_DIR / request.run_id


def _clear_stage(root: Path, chain: str, request: StepRequest) -> None:
    """Remove the stage's folders of other inputs (an earlier chain's; their jobs are gone)."""
    paths = SweepPaths(root.resolve())
    for base in (paths.jobs(chain) / STEPS_DIR, paths.results(chain) / STEPS_DIR):
        for old in base.glob(f"{request.stage}-*"):
            if old.is_dir() and old.name != request.run_id:
                shutil.rmtree(old, ignore_errors=True)


def _read_step(folder: Path) -> tuple[StepRecord | None, str | None]:
    """(the step.json in `folder`, None), (None, None) when it is absent, or (None, why it cannot
    be used: unreadable or not a step.json, with the key and what was expected).

    Raises:
        NewerRecordError: it was written by a newer sweep.
    """
    try:
        return read_step(folder), None
    except NewerRecordError:
        raise
    except RecordError as exc:
        return None, str(exc)


def finished_step(folder: Path, request: StepRequest, result: StepRecord | None = None) -> StepRecord | None:
    """The step.json in `folder` (or `result`, read from it already) when it is this request's
    and done (a step that ended while no chain job followed it), else None.

    Raises:
        NewerRecordError: the step.json was written by a newer sweep.
    """
    result = _read_step(folder)[0] if result is None else result
    if result is None or result.inputs_hash != request.digest or result.status != "done":
        return None
    return result if outputs_problem(folder, result) is None else None


def output_limit(name: str) -> int | None:
    """The most bytes a step's output may have (records.untrusted's limits), or None for a name
    that is no output a step makes (its dataset, evaluation.json, PNGs)."""
    if name == STEP_DATASET:
        return DATASET_LIMIT
    if name == EVALUATION:
        return EVALUATION_LIMIT
    if name.endswith(".png"):
        return PNG_LIMIT
    return None


def _plain_name(name: str) -> bool:
    return (name not in ("", ".", "..") and not any(c in name for c in "/\\\0") and name.isprintable()
            and len(name.encode()) <= 255)


def outputs_problem(folder: Path, result: StepRecord) -> str | None:
    """Why the outputs step.json names cannot be taken, or None when every one can.

    step.json comes from an execute node: each output must be a plain file name of the step's
    folder (no path, no "..", no separator), of a kind a step makes, and a regular file there
    (never a symlink, a pipe or a folder) within its size limit. Nothing is read but each file's
    status.
    """
    for name in result.outputs:
        shown = printable(name)[:100]
        if not _plain_name(name):
            return f"{STEP_RESULT}: output {shown!r} is not a file name of the step's folder"
        limit = output_limit(name)
        if limit is None:
            return (f"{STEP_RESULT}: output {shown!r} is not an output a step makes ({STEP_DATASET}, {EVALUATION}, "
                    "PNGs)")
        try:
            with open_untrusted(folder / name, limit):
                pass
        except FileNotFoundError:
            return f"{STEP_RESULT}: output {shown!r}: no such file in {folder}"
        except RecordError as exc:
            return f"{shown}: {exc.detail}"
    return None


def _prepare(root: Path, chain: str, request: StepRequest, grid: GridSpec) -> tuple[Path, Path, Path, Path]:
    """Write the step's config.yaml, the wrapper and the code archive under jobs/<chain>/steps/,
    and empty its results folder of an earlier step's files.

    Returns:
        (config.yaml, the wrapper, the code archive, the results folder).
    """
    from ..submit import codebundle

    jobs_dir, folder = step_folders(root, chain, request)
    _clear_stage(root, chain, request)
    steps_dir = jobs_dir.parent
    code = codebundle.write(codebundle.build(), steps_dir)
    wrapper = steps_dir / STEP_WRAPPER
    write_text_if_changed(wrapper, render_wrapper(grid, code, chain), mode=0o755)
    config = jobs_dir / names.CONFIG_FILE
    text = (f"# step {request.stage} of chain {chain}, read by `python -m sweep.job config.yaml` (sweep.job.step)\n"
            + yaml.safe_dump({**request.config, "step": request.stage, "chain": chain,
                              "inputs_hash": request.digest}, sort_keys=False))
    jobs_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(config, text)
    if folder.is_dir():  # never an earlier step's outputs taken for this one's
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return config, wrapper, code, folder


def step_resources(grids: list[GridSpec]) -> dict[str, int]:
    """What a step job asks for: the peak grid's CPUs, and the largest memory, disk and runtime
    of the chain's grids (the evaluation holds both leaders; simulating with the peak leader is
    a training job's load)."""
    return {"request_cpus": grids[0].resources.request_cpus,
            "request_memory_mb": max(g.resources.request_memory_mb for g in grids),
            "request_disk_mb": max(g.resources.request_disk_mb for g in grids),
            "runtime_s": max(g.resources.runtime_s for g in grids)}


def step_submit_text(chain: str, request: StepRequest, grid: GridSpec, resources: dict[str, int], *,
                     wrapper: Path, config: Path, code: Path, folder: Path, event_log: Path) -> str:
    """The step job's submit description: a vanilla job like the peak grid's (its requirements,
    accounting group, container and environment), every input transferred, its outputs back
    into `folder`.

    Raises:
        RenderError: a path that a submit file cannot carry.
    """
    condor = condor_context(grid.condor)
    inputs = ", ".join(submit_value(p) for p in (config, code, *request.inputs))
    lines = [
        f"# step {request.stage} of the chain {chain} (rendered by sweep): runs on an execute node like the",
        f"# jobs of sweep {grid.name}, with the chain's leaders transferred; its outputs come back to {folder.name}/",
        "universe = vanilla",
        f"executable = {submit_value(wrapper)}",
        "arguments = config.yaml",
        f"initialdir = {submit_value(folder)}",
        "should_transfer_files = YES",
        "when_to_transfer_output = ON_EXIT",
        f"transfer_input_files = {inputs}",
        "output = stdout.txt",
        "error = stderr.txt",
        f"log = {submit_value(event_log)}",
        f"request_cpus = {resources['request_cpus']}",
        f"request_memory = {resources['request_memory_mb']}MB",
        f"request_disk = {resources['request_disk_mb']}MB",
        "# held for running past its runtime limit (evaluate.runtime, else the grids' longest): removed",
        f"allowed_execute_duration = {resources['runtime_s']}",
        "periodic_remove = HoldReasonCode =?= 47",
    ]
    if condor.get("max_runtime"):
        lines.append(f"+MaxRuntime = {condor['max_runtime']}")
    for key, attr in (("job_flavour", "+JobFlavour"), ("job_duration_category", "+JobDurationCategory")):
        if condor.get(key):
            lines.append(f"{attr} = {submit_string(condor[key])}")
    for key in ("requirements", "accounting_group", "container_image"):
        if condor.get(key):
            lines.append(f"{key} = {submit_value(condor[key])}")
    if condor.get("container_image") and condor.get("transfer_container") is False:
        lines.append("transfer_container = false")
    if condor.get("environment"):
        lines.append(f"environment = {submit_string(condor['environment'])}")
    lines += [
        f"batch_name = {submit_value(chain)}",
        f"+{names.ATTR_SWEEP} = {submit_string(chain)}",
        f"+{names.ATTR_ROLE} = {submit_string(ROLE_STEP)}",
        f"+{names.ATTR_RUN} = {submit_string(request.run_id)}",
        f"submit_event_notes = sweep-step {submit_value(request.run_id)}",
        "queue",
    ]
    return "\n".join(lines) + "\n"


def _step_result(folder: Path, request: StepRequest, ended: str) -> StepRecord:
    """The step.json of a step whose job or process ended (`ended`: how, for the message).

    Raises:
        StepError: it is missing, unreadable, or says the step failed (with its error and
            stderr's last line).
        NewerRecordError: it was written by a newer sweep.
    """
    written, problem = _read_step(folder)
    if written is not None and written.status == "done" and written.inputs_hash == request.digest:
        said = outputs_problem(folder, written)
        if said is None:
            return written
    else:
        said = written.error if written is not None else problem
    if not said:  # the last line of its error output (never through a symlink, bounded)
        last = tail(folder / STDERR, 1)
        said = last[0] if last else "no step.json and no error output came back"
    raise StepError(f"step {request.stage} ({ended}) failed: {printable(str(said))[:300]}; see "
                    f"{folder}/{STDERR}")


class LocalSteps(StepExecutor):
    """Steps here (--local): the peak grid's wrapper in a process of its own, in the step's
    results folder with its inputs copied beside it (what HTCondor would transfer)."""

    def __init__(self, root: Path, chain: str, grid: GridSpec, cpus: int | None = None,
                 log: Callable[[str], None] | None = None):
        self.root, self.chain, self.grid, self.cpus = root, chain, grid, cpus
        self.log = log or (lambda line: None)

    def run(self, request: StepRequest, on_submit: Callable[[int], None] | None = None
            ) -> tuple[StepRecord, Path]:
        config, wrapper, _code, folder = _prepare(self.root, self.chain, request, self.grid)
        for path in (config, *request.inputs):
            shutil.copyfile(path, folder / path.name)
        env = {**os.environ, "SWEEP_CPUS": str(self.cpus or os.cpu_count() or 1)}
        self.log(f"step {request.stage}: running here in a process of its own (its output: {folder}/stdout.txt)")
        started = time.monotonic()
        with open(folder / "stdout.txt", "wb") as out, open(folder / "stderr.txt", "wb") as err:
            code = subprocess.call(["/bin/sh", str(wrapper), names.CONFIG_FILE], cwd=folder, env=env,
                                   stdout=out, stderr=err)
        for path in (config, *request.inputs):  # the copies; the outputs stay
            (folder / path.name).unlink(missing_ok=True)
        self.log(f"step {request.stage}: ended (exit {code}) after {time.monotonic() - started:.0f} s")
        return _step_result(folder, request, f"exit {code}"), folder


class PoolSteps(StepExecutor):
    """Steps as vanilla jobs of the pool, submitted by the chain job and followed through their
    event log (polls that back off from 2 to 30 s while nothing changes)."""

    def __init__(self, root: Path, chain: str, schedd, grids: list[GridSpec], log: Callable[[str], None]):
        from ..submit.backends import htcondor

        self.root, self.chain, self.schedd, self.grids, self.log = root, chain, schedd, grids, log
        self.owner = htcondor.submitting_owner()
        self.event_log = SweepPaths(root.resolve()).results(chain) / STEPS_DIR / STEP_EVENTS

    def _queued_steps(self) -> dict[str, list[int]]:
        """This owner's queued step jobs of this chain: run id -> clusters.

        Raises:
            BackendError: the schedd does not answer.
        """
        constraint = (f"Owner =?= {submit_string(self.owner)} && {names.ATTR_SWEEP} =?= {submit_string(self.chain)} "
                      f"&& {names.ATTR_ROLE} =?= {submit_string(ROLE_STEP)} && JobStatus =!= 3 && JobStatus =!= 4")
        try:
            ads = list(self.schedd.query(constraint=constraint, projection=["ClusterId", names.ATTR_RUN]))
        except Exception as exc:  # noqa: BLE001 - the bindings raise several kinds; all mean no answer
            raise BackendError(f"the schedd does not answer: {printable(str(exc))[:200]}") from None
        out: dict[str, list[int]] = {}
        for ad in ads:
            out.setdefault(str(ad.get(names.ATTR_RUN)), []).append(int(ad["ClusterId"]))
        return out

    def _remove_stale(self, request: StepRequest, queued: dict[str, list[int]]) -> None:
        """Remove this stage's queued jobs of other inputs (`queued`: :meth:`_queued_steps`; a
        chain killed before its inputs changed): their result would be another chain's, and they
        would hold a slot for nothing."""
        from ..submit.backends import htcondor

        stale = [c for run_id, clusters in queued.items()
                 if run_id.startswith(f"{request.stage}-") and run_id != request.run_id for c in clusters]
        if not stale:
            return
        try:
            self.schedd.act(htcondor.bindings().JobAction.Remove, [f"{c}.0" for c in stale],
                            reason=f"sweep chain {self.chain}: the {request.stage} step's inputs changed")
        except Exception as exc:  # noqa: BLE001 - the bindings raise several kinds; all mean not removed
            raise BackendError(f"cannot remove the stale {request.stage} jobs {stale}: "
                               f"{printable(str(exc))[:200]}") from None
        self.log(f"step {request.stage}: removed its jobs of earlier inputs ({', '.join(f'{c}.0' for c in stale)})")

    def run(self, request: StepRequest, on_submit: Callable[[int], None] | None = None
            ) -> tuple[StepRecord, Path]:
        """`on_submit(cluster)` is called once the step's job is known: submitted now, or queued
        before (the chain records it)."""
        _, folder = step_folders(self.root, self.chain, request)
        queued = self._queued_steps()  # one query: this step's job, and the stage's stale ones
        cluster = max(queued[request.run_id]) if queued.get(request.run_id) else None
        if cluster is not None:
            self.log(f"step {request.stage}: following its job {cluster}.0, queued before this chain job started")
        else:
            done = finished_step(folder, request)
            if done is not None:
                self.log(f"step {request.stage}: its job had ended (step.json of {done.finished})")
                return done, folder
            cluster = self._submit(request, queued)
        if on_submit:
            on_submit(cluster)
        self._follow(request, cluster)
        return _step_result(folder, request, f"job {cluster}.0"), folder

    def _submit(self, request: StepRequest, queued: dict[str, list[int]]) -> int:
        from ..submit.backends import htcondor

        self._remove_stale(request, queued)
        config, wrapper, code, folder = _prepare(self.root, self.chain, request, self.grids[0])
        self.event_log.parent.mkdir(parents=True, exist_ok=True)
        resources = step_resources(self.grids)
        if request.config.get("request_cpus"):  # the step's own (evaluate.request_cpus)
            resources["request_cpus"] = int(request.config["request_cpus"])
        if request.config.get("runtime_s"):  # the step's own (evaluate.runtime)
            resources["runtime_s"] = int(request.config["runtime_s"])
        text = step_submit_text(self.chain, request, self.grids[0], resources, wrapper=wrapper,
                                config=config, code=code, folder=folder, event_log=self.event_log)
        atomic_write_text(config.with_name("step.sub"), text)
        try:
            cluster = self.schedd.submit(htcondor.bindings().Submit(text)).cluster()
        except Exception as exc:  # noqa: BLE001 - the bindings raise several kinds; all mean refused
            raise BackendError(f"the schedd refused the {request.stage} job: {printable(str(exc))[:300]}") from None
        self.log(f"step {request.stage}: job {cluster}.0 ({request.run_id}) submitted to {htcondor.pool_name()}")
        return cluster

    def _follow(self, request: StepRequest, cluster: int) -> None:
        """Until the job's end is in the event log.

        Raises:
            StepError: it was removed, or it left the queue with no end in its log.
        """
        from ..core.states import RunState
        from ..records.events import RUNTIME_HOLD_CODES, EventLogReader
        from ..submit.status import Backoff

        reader, backoff, holds, gone = EventLogReader(self.event_log), Backoff(2.0, cap=30.0), 0, 0
        try:
            while True:
                job = reader.update().get((cluster, 0))
                state = job.state if job else None
                if state in (RunState.DONE, RunState.FAILED):
                    how = f"exit {job.exit_code}" if job.exit_code is not None else f"signal {job.signal}"
                    self.log(f"step {request.stage}: job {cluster}.0 ended ({how}) after {job.wall_s or 0:.0f} s")
                    return
                if state is RunState.REMOVED:
                    if any(h.code in RUNTIME_HOLD_CODES for h in job.holds):
                        knob = ("evaluate.runtime in the pipeline file" if request.stage == "evaluate"
                                else "resources.runtime in the chain's grids")
                        raise StepError(f"step {request.stage}: its job {cluster}.0 ran past its runtime limit and "
                                        f"was removed ({printable(job.holds[-1].reason)[:200]}): give it more time "
                                        f"with {knob}")
                    raise StepError(f"step {request.stage}: its job {cluster}.0 was removed "
                                    f"({printable(job.removed_reason or 'no reason given')[:200]})")
                if job and len(job.holds) > holds:
                    holds = len(job.holds)
                    self.log(f"step {request.stage}: job {cluster}.0 is held (code {job.holds[-1].code}): "
                             f"{printable(job.holds[-1].reason)[:200]}; release it or remove it")
                try:  # a job that left the queue with no end in its log (a log lost): not waited for forever
                    gone = gone + 1 if self._left(cluster) else 0
                except BackendError as exc:
                    self.log(f"step {request.stage}: {exc} (asking again)")
                if gone >= 3:
                    raise StepError(f"step {request.stage}: its job {cluster}.0 left the queue and its end is "
                                    f"not in {self.event_log}")
                time.sleep(backoff.next((state, holds)))
        finally:
            reader.close()

    def _left(self, cluster: int) -> bool:
        try:
            ads = list(self.schedd.query(constraint=f"ClusterId == {int(cluster)}", projection=["JobStatus"]))
        except Exception as exc:  # noqa: BLE001 - the bindings raise several kinds; all mean no answer
            raise BackendError(f"the schedd does not answer: {printable(str(exc))[:200]}") from None
        return not ads
