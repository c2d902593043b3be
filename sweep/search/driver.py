"""The search driver: owns the Optuna study, turns its trials into jobs and their results into
what it tells the study.

One driver per sweep (a lock in results/<sweep>/driver/). It asks Optuna for a trial, renders the
trial's files from the same templates as a grid run (resources, memory escalation, runtime
limit, portable environment), starts its job through an executor (sweep.search.trials), reports
the job's per-epoch values to the pruner, and tells the study how the trial ended:

- COMPLETE with the test metrics of its result folder (the objectives);
- PRUNED when the pruner stopped it (the job exits at the end of an epoch; removed only if it
  does not within PRUNE_GRACE_S); a pruned point the sampler proposes again is trained to its end;
- FAIL with the reason when its job failed, was removed, or was held for a reason sweep does
  not release (the job is removed): its parameters are enqueued again, at most search.retries
  times. Memory holds under memory escalation are left to it.

A trial's run id is the content hash of its parameters: a trial that samples a point whose
result exists is told that result without a job. Nothing the driver knows lives only in its
memory: a restarted driver (the schedd restarts a killed one) rebuilds its view from the
journal (trials and their jobs), the queue and the result folders, so no finished trial is lost
and none is run twice.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.trial import TrialState

from ..core.version import __version__
from ..core.errors import BackendError, InputError
from ..core.expand import run_of_point
from ..core.gridspec import GridSpec
from ..core.names import DRIVER_DIR, HISTORY, SweepPaths
from ..core.render import render_sweep
from ..core.states import RunState
from ..fsutil import write_text_if_changed
from ..records.lock import sweep_lock
from ..records.manifest import CodeRef, ResourceRequest, RunEntry, SearchInfo, dataset_ref, now, read_manifest, updating
from ..records.metrics import Metrics
from ..records.runs import mark_stale, read_run
from ..submit import codebundle
from . import study as studies
from .trials import TrialExecutor, TrialJob

#: A job asked to stop is removed if it has not ended this long after (it should end within an epoch).
PRUNE_GRACE_S = 300.0
#: Polling: from this interval, 1.5x longer while nothing changes, up to the cap.
POLL_START_S, POLL_CAP_S = 1.0, 5.0
#: How often the driver looks at its executor's cheap activity signal between polls.
ACTIVITY_TICK_S = 0.1


@dataclass
class Active:
    """A run being trained, and the trials waiting for it (more than one when two trials sample
    the same point while it trains)."""

    job: TrialJob
    trials: list[int]
    prune_asked: float | None = None
    reported: int = 0  # epochs already reported to the study
    judged: int = 0  # epochs the job has been told are judged (it waits for that after each report)
    no_prune: bool = False  # a point pruned before, proposed again: trained to its end


@dataclass
class Summary:
    """Where a search stands: its trials complete, pruned and failed (counted in the study), the
    points reused (trained before: told their result, no job) and the jobs submitted, the best
    result so far as text, and the driver's overhead per trial."""

    complete: int = 0
    pruned: int = 0
    failed: int = 0
    reused: int = 0
    submitted: int = 0
    best: str = "-"
    overhead_s: list[float] = field(default_factory=list)  # per trial: ask -> submitted, result -> told

    def line(self) -> str:
        """One line: "3 complete, 1 pruned, 0 failed[, 2 reused]; best f1 0.9312 (trial 4)"."""
        return (f"{self.complete} complete, {self.pruned} pruned, {self.failed} failed"
                + (f", {self.reused} reused" if self.reused else "") + f"; best {self.best}")


class Driver:
    """Runs a search grid's study to its end with an executor (HTCondorTrials or LocalTrials)."""

    def __init__(self, spec: GridSpec, root: Path, executor: TrialExecutor, log=print, progress=None,
                 poll_cap_s: float = POLL_CAP_S):
        if spec.search is None:
            raise InputError(f"{spec.file} has no search: block")
        self.spec, self.root, self.executor, self.log = spec, root.resolve(), executor, log
        self.paths = SweepPaths(self.root)
        self.progress = progress  # callable(summary, running) for a progress bar, or None
        self.poll_cap_s = poll_cap_s
        self.study: optuna.Study | None = None
        self.active: dict[str, Active] = {}  # run id -> its job
        self.summary = Summary()
        self.code = codebundle.build()
        self.native = False
        self.dists = studies.distributions(spec)
        self.dataset_sha256: str | None = None

    # ------------------------------------------------------------ files
    def _write_base(self) -> None:
        """jobs/<sweep>/: the code archive, the wrapper and the manifest (runs added per trial)."""
        spec = self.spec
        jobs_dir = self.paths.jobs(spec.name)
        if spec.data.path.is_file():  # the digest a trial that fetches data.url checks what it got against
            known = read_manifest(jobs_dir)
            self.dataset_sha256 = dataset_ref(spec.data.path, known.dataset if known else None).sha256
        rendered = render_sweep(spec, [], self.root, code_archive=self.code.name, dataset_sha256=self.dataset_sha256)
        codebundle.write(self.code, jobs_dir)
        write_text_if_changed(self.paths.wrapper(spec.name), rendered.wrapper_text, mode=0o755)
        self.paths.results(spec.name).mkdir(parents=True, exist_ok=True)
        with updating(jobs_dir) as manifest:
            s = spec.search
            objectives = [(m, d) for m, d in s.objectives]
            ranking = objectives + [(m, d) for m, d in spec.ranking if m not in dict(objectives)]
            manifest.sweep, manifest.model, manifest.description = spec.name, spec.model, spec.description
            manifest.grid = manifest.grid or str(Path(spec.file).resolve())
            manifest.rendered_at, manifest.sweep_version = now(), __version__
            manifest.ranking, manifest.swept = ranking, list(spec.swept)
            manifest.resources = ResourceRequest.of(spec.resources.as_dict())
            manifest.code = CodeRef(archive=self.code.name, sha256=self.code.sha256)
            manifest.search = SearchInfo(sampler=s.sampler, pruner=s.pruner, objectives=objectives, trials=s.trials,
                                         parallel=s.parallel, seed=s.seed,
                                         journal=str(studies.journal_path(spec, self.root)),
                                         prune_on=list(s.prune_on), backend=self.executor.name)
            if spec.data.path.is_file():  # what the trials train on (a result of another version is stale)
                manifest.dataset = dataset_ref(spec.data.path, manifest.dataset)
                self.dataset_sha256 = manifest.dataset.sha256

    def _render(self, run, trial: int):
        manifest = read_manifest(self.paths.jobs(self.spec.name))
        rendered = render_sweep(self.spec, [run], self.root,
                                memory_mb=dict(manifest.learned_memory_mb) if manifest else {},
                                code_archive=self.code.name, native_memory_retry=self.native,
                                trials={run.run_id: trial}, dataset_sha256=self.dataset_sha256)
        r = rendered.runs[0]
        write_text_if_changed(rendered.config_path, rendered.config_text)
        write_text_if_changed(rendered.submit_path, rendered.submit_text)
        with updating(rendered.jobs_dir) as manifest:
            entry = manifest.run(run.run_id)
            if entry is None:
                entry = RunEntry(run_id=run.run_id, config_id=run.config_id, name=run.name, repeat=0, seed=run.seed,
                                 swept=run.swept)
                manifest.runs.append(entry)
            entry.trials = entry.trials if entry.trials is not None else []
            if trial not in entry.trials:
                entry.trials.append(trial)
        return rendered, r

    # ------------------------------------------------------------ the study
    def _trial(self, number: int) -> optuna.Trial:
        frozen = self.study.get_trials(deepcopy=False)[number]
        return optuna.trial.Trial(self.study, frozen._trial_id)

    def _tell(self, number: int, values=None, state=None) -> None:
        """study.tell, which the grid sampler follows with study.stop() once its grid is used up
        (meant for study.optimize; the tell itself is stored first): the driver stops by its budget."""
        try:
            self.study.tell(number, values, state=state)
        except RuntimeError as exc:
            if "Study.stop" not in str(exc):
                raise

    def _used(self) -> int:
        """Trials that count against search.trials: all but the failed ones tried again and those
        abandoned half-asked by a driver that was killed."""
        trials = self.study.get_trials(deepcopy=False)
        retried = {t.user_attrs.get(studies.ATTR_RETRY_OF) for t in trials}
        return sum(1 for t in trials if not (t.state is TrialState.FAIL and (
            t.number in retried or t.user_attrs.get(studies.ATTR_ABANDONED))))

    def _outcome(self, run_id: str):
        """The run folder's outcome; a result trained on another version of the dataset is STALE."""
        outcome = read_run(self.paths.results(self.spec.name), run_id, [m for m, _ in self.spec.search.objectives])
        return mark_stale(outcome, self.dataset_sha256)

    def _epoch_values(self, run_id: str, metrics: Metrics) -> list[float]:
        """A finished run's value of the pruner's column at each epoch: a pruned run keeps them in
        its metrics, a complete one in its history.csv (nothing without a pruner)."""
        if self.spec.search.pruner == "none":
            return []
        if metrics.pruned is not None:
            return [float(v) for v in metrics.pruned.values]
        try:
            with open(self.paths.results(self.spec.name) / run_id / HISTORY, newline="") as f:
                rows = list(csv.DictReader(f))
        except OSError:
            return []
        column = self.spec.search.prune_on[0]
        out = []
        for row in rows:
            try:
                out.append(float(row.get(column) or "nan"))
            except ValueError:
                out.append(math.nan)
        return out

    def _objectives(self, metrics: Metrics) -> list[float] | None:
        test = metrics.test or {}
        values = [test.get(m) for m, _ in self.spec.search.objectives]
        if any(not isinstance(v, (int, float)) or math.isnan(v) for v in values):
            return None
        return [float(v) for v in values]

    def _fail(self, number: int, reason: str) -> None:
        """Tell FAIL with the reason; enqueue its parameters again while retries are left."""
        frozen = self.study.get_trials(deepcopy=False)[number]
        if frozen.state.is_finished():
            return
        self._trial(number).set_user_attr(studies.ATTR_FAIL_REASON, reason[:500])
        self._tell(number, state=TrialState.FAIL)
        attempt = int(frozen.user_attrs.get(studies.ATTR_ATTEMPT, 0))
        if attempt < self.spec.search.retries:
            self.study.enqueue_trial(frozen.params, user_attrs={studies.ATTR_RETRY_OF: number,
                                                                studies.ATTR_ATTEMPT: attempt + 1})
            self.log(f"trial {number} failed ({reason}); its parameters are tried again "
                     f"(retry {attempt + 1} of {self.spec.search.retries})")
        else:
            self.log(f"trial {number} failed ({reason}); no retries left")

    def _report(self, number: int, values: list[float], already: int) -> int:
        """Report the epochs not yet reported; return how many are now (none without a pruner:
        Optuna takes intermediate values of single-objective studies only)."""
        if self.spec.search.pruner == "none" or self.spec.search.multi_objective:
            return max(already, len(values))
        trial = self._trial(number)
        known = self.study.get_trials(deepcopy=False)[number].intermediate_values
        for epoch, value in enumerate(values, start=1):
            if epoch > already and epoch not in known and not math.isnan(value):
                trial.report(value, epoch)
        return max(already, len(values))

    def _finish(self, run_id: str, trials: list[int], t_seen: float | None = None) -> None:
        """Tell the trials of a run whose job has ended (or whose result existed) how it ended."""
        outcome = self._outcome(run_id)
        for number in trials:
            frozen = self.study.get_trials(deepcopy=False)[number]
            if frozen.state.is_finished():
                continue
            if outcome.state is RunState.OK and (values := self._objectives(outcome.metrics)) is not None:
                # every epoch's value, also those the polling missed (a short job, a busy schedd): the
                # pruner compares later trials with the complete curves of the finished ones
                self._report(number, self._epoch_values(run_id, outcome.metrics), 0)
                self._tell(number, values if len(values) > 1 else values[0])
            elif outcome.state is RunState.PRUNED:
                self._report(number, self._epoch_values(run_id, outcome.metrics), 0)
                self._tell(number, state=TrialState.PRUNED)
            else:
                self._fail(number, outcome.reason or f"no valid result ({outcome.state})")
        if t_seen is not None:
            self.summary.overhead_s.append(time.perf_counter() - t_seen)

    # ------------------------------------------------------------ starting trials
    def _start(self, number: int, params: dict) -> None:
        t0 = time.perf_counter()
        point = studies.point_of(self.spec, params)
        run = run_of_point(self.spec, point)
        self._trial(number).set_user_attr(studies.ATTR_RUN, run.run_id)
        if run.run_id in self.active:  # the same point is training for another trial: wait for it
            self.active[run.run_id].trials.append(number)
            return
        outcome = self._outcome(run.run_id)
        if outcome.state is RunState.OK:  # trained before: its result, no job
            self._trial(number).set_user_attr(studies.ATTR_REUSED, True)
            self.summary.reused += 1
            self._render(run, number)  # the manifest lists it, so collect ranks it with the others
            self._finish(run.run_id, [number])
            return
        # a point pruned before that the sampler proposes again is trained to its end: its pruned
        # result says nothing of its final value, and reusing it would shut the point out for good
        again = outcome.state is RunState.PRUNED or bool(
            self.study.get_trials(deepcopy=False)[number].user_attrs.get(studies.ATTR_UNPRUNED))
        if again:
            self._trial(number).set_user_attr(studies.ATTR_UNPRUNED, True)
            self.log(f"trial {number}: run {run.run_id} was pruned before and is proposed again: trained to its end")
        rendered, r = self._render(run, number)
        job = self.executor.start(rendered, r)
        self._trial(number).set_user_attr(studies.ATTR_JOB, job.job)
        self.active[run.run_id] = Active(job, [number], no_prune=again)
        self.summary.submitted += 1
        self.summary.overhead_s.append(time.perf_counter() - t0)
        self.log(f"trial {number}: run {run.run_id} ({run.name}) -> job {job.job}")

    def _ask(self) -> bool:
        """Ask the study for a trial (an enqueued retry first) and start it; False when its job
        could not be submitted (the trial is failed, its parameters enqueued again)."""
        trial = self.study.ask(fixed_distributions=self.dists)
        try:
            self._start(trial.number, trial.params)
        except BackendError as exc:
            self._fail(trial.number, f"could not be submitted: {exc}")
            return False
        return True

    def _waiting(self) -> int:
        return len(self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))

    def _fill(self) -> None:
        """Start trials until search.parallel run or the budget is spent (enqueued retries go first)."""
        while len(self.active) < self.spec.search.parallel:
            if not self._waiting() and self._used() >= self.spec.search.trials:
                return
            if not self._ask():
                time.sleep(self.poll_cap_s)  # the schedd refused: do not burn the retries at once
                return

    # ------------------------------------------------------------ resume
    def _resume(self) -> None:
        """Take over the trials an earlier driver left RUNNING."""
        for frozen in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            number, run_id = frozen.number, frozen.user_attrs.get(studies.ATTR_RUN)
            if run_id is None and set(frozen.params) != set(self.dists):
                # the driver stopped inside study.ask, before every parameter was sampled: nothing was
                # started for it and it has no point to start; it does not count against search.trials
                self._trial(number).set_user_attr(studies.ATTR_ABANDONED, True)
                self._trial(number).set_user_attr(studies.ATTR_FAIL_REASON, "the driver stopped while asking for it")
                self._tell(number, state=TrialState.FAIL)
                self.log(f"trial {number}: abandoned (the driver stopped while sampling it)")
                continue
            if run_id is None:  # asked, then the driver stopped: nothing was started for it
                self.log(f"trial {number}: resumed (nothing had been started)")
                self._start(number, frozen.params)
                continue
            if run_id in self.active:
                self.active[run_id].trials.append(number)
                continue
            live = self.executor.find(run_id)
            if live is not None:
                self.active[run_id] = Active(live, [number], reported=len(frozen.intermediate_values),
                                             no_prune=bool(frozen.user_attrs.get(studies.ATTR_UNPRUNED)))
                self.log(f"trial {number}: following its job {live.job} again")
                continue
            outcome = self._outcome(run_id)
            job = frozen.user_attrs.get(studies.ATTR_JOB) or ""
            if outcome.state in (RunState.OK, RunState.PRUNED):
                self.log(f"trial {number}: its job ended while no driver ran ({outcome.state})")
                self._finish(run_id, [number])
            elif job.startswith("pid:"):
                # this machine's job of a driver that was killed: it may still be training, with nobody
                # to read it; stop it and start the trial again (not a failure of the trial)
                from .trials import kill_orphan

                kill_orphan(int(job[4:]))
                self.log(f"trial {number}: its job (pid {job[4:]}, an earlier driver's) is started again")
                self._start(number, frozen.params)
            elif outcome.state in (RunState.FAILED, RunState.CORRUPT):
                self.log(f"trial {number}: its job ended while no driver ran ({outcome.state})")
                self._finish(run_id, [number])
            elif job:
                self._fail(number, f"its job {job} left the queue without a result")
            else:
                self._start(number, frozen.params)

    # ------------------------------------------------------------ the loop
    def _step(self) -> bool:
        """Look at every active job once; act. Returns whether anything changed."""
        changed = False
        try:
            seen = self.executor.observe([a.job for a in self.active.values()])
        except BackendError as exc:
            self.log(f"{exc}; trying again")
            return False
        t_seen = time.perf_counter()
        for run_id, obs in seen.items():
            act = self.active[run_id]
            lead = act.trials[0]
            if len(obs.values) > act.reported:
                act.reported = self._report(lead, obs.values, act.reported)
                changed = True
                if (act.prune_asked is None and self.spec.search.pruner != "none" and not act.no_prune
                        and self._trial(lead).should_prune()):
                    self.log(f"trial {lead}: pruned after epoch {act.reported}, its job is asked to stop "
                             f"({self.spec.search.prune_on[0]} {obs.values[act.reported - 1]:.4g})")
                    try:
                        self.executor.request_prune(act.job)
                        act.prune_asked = time.monotonic()
                    except BackendError as exc:
                        self.log(f"{exc}; asking again next time")
            if obs.live and act.reported > act.judged:  # a job that waits for the verdict goes on (or stops)
                try:
                    self.executor.judged(act.job, act.reported)
                    act.judged = act.reported
                except BackendError as exc:
                    self.log(f"{exc}; telling it again next time")
            if not obs.live:
                del self.active[run_id]
                self._finish(run_id, act.trials, t_seen)
                changed = True
            elif obs.hold:
                if self._remove(run_id, obs.hold, f"trial {lead}: its job {act.job.job} is {obs.hold}: removed"):
                    for number in act.trials:
                        self._fail(number, obs.hold)
                    changed = True
            elif act.prune_asked is not None and time.monotonic() - act.prune_asked > PRUNE_GRACE_S:
                if self._remove(run_id, "pruned", f"trial {lead}: its job did not stop within {PRUNE_GRACE_S:.0f}s "
                                "of being pruned: removed"):
                    for number in act.trials:
                        self._tell(number, state=TrialState.PRUNED)
                    changed = True
        return changed

    def _remove(self, run_id: str, reason: str, note: str) -> bool:
        """Remove an active run's job and stop following it; False (the job stays followed, the
        removal is tried again next time) when the schedd refuses."""
        try:
            self.executor.remove(self.active[run_id].job, reason)
        except BackendError as exc:
            self.log(f"{exc}; trying again")
            return False
        self.log(note)
        del self.active[run_id]
        return True

    def _best(self) -> str:
        trials = [t for t in self.study.get_trials(deepcopy=False) if t.state is TrialState.COMPLETE]
        if not trials:
            return "-"
        objectives = self.spec.search.objectives
        if len(objectives) > 1:
            return f"{len(self.study.best_trials)} on the Pareto front"
        metric, direction = objectives[0]
        best = (max if direction == "max" else min)(trials, key=lambda t: t.value)
        return f"{metric} {best.value:.4f} (trial {best.number})"

    def _count(self) -> None:
        trials = self.study.get_trials(deepcopy=False)
        self.summary.complete = sum(1 for t in trials if t.state is TrialState.COMPLETE)
        self.summary.pruned = sum(1 for t in trials if t.state is TrialState.PRUNED)
        self.summary.failed = sum(1 for t in trials if t.state is TrialState.FAIL)
        self.summary.best = self._best()

    def _pause(self, delay: float) -> None:
        """Sleep `delay` seconds, or less when a job reports or ends meanwhile (executor.activity):
        a local trial waits for the verdict on each epoch, so the driver answers within a tick."""
        jobs = [a.job for a in self.active.values()]
        before = self.executor.activity(jobs)
        until = time.monotonic() + delay
        while time.monotonic() < until:
            time.sleep(min(ACTIVITY_TICK_S, max(0.0, until - time.monotonic())))
            if before is not None and self.executor.activity(jobs) != before:
                return

    def run(self) -> Summary:
        """Run the study until search.trials trials have ended.

        Raises:
            LockedError: another driver runs this sweep's search; LockLostError (a LockedError):
                this driver lost its lock while it ran (it stops at its next step).
            InputError: the journal belongs to another version of the grid.
        """
        driver_dir = self.paths.results(self.spec.name) / DRIVER_DIR
        with sweep_lock(driver_dir, timeout=5.0) as lock:
            self.study = studies.open_study(self.spec, self.root)
            self.native = self.executor.native_memory_retry()
            self._write_base()
            self._resume()
            delay = POLL_START_S
            try:
                while True:
                    lock.check()  # fencing: a driver that lost its lock asks and submits nothing more
                    self._fill()
                    if not self.active:
                        if not self._waiting() and self._used() >= self.spec.search.trials:
                            break
                        continue  # every trial asked was told at once (reused results, refusals): ask again
                    changed = self._step()
                    self._count()
                    if self.progress is not None:
                        self.progress(self.summary, len(self.active))
                    delay = POLL_START_S if changed else min(self.poll_cap_s, delay * 1.5)
                    self._pause(delay)
            finally:
                self.executor.close()
            self._count()
        if self.spec.notify is not None:  # the grid's webhook, when its notify.on asks for this end
            from ..collect.notify import tell_end

            s = self.summary
            tell_end(self.spec.notify, self.spec.name, self.root, kind="search", failed=s.failed > 0, log=self.log,
                     extra={"trials": {"complete": s.complete, "pruned": s.pruned, "failed": s.failed,
                                       "reused": s.reused}, "best_text": s.best})
        return self.summary



