"""Run a sweep's jobs on this machine, as HTCondor would run them on a pool.

Each job runs the rendered wrapper in results/<sweep>/<run-id>/ (HTCondor's initialdir, where
it would transfer the outputs back), with the sweep's config.yaml copied in as HTCondor transfers
it and the run's own part of its configuration as an argument, as job.sub gives it,
stdout/stderr to stdout.txt/stderr.txt, and its runtime limit enforced. Jobs are packed onto
the machine's cores and memory by their request_cpus and request_memory: a job starts when
what it asked for is free, so two 1-CPU jobs share a 2-core laptop.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass

from ...core.cost import start_order
from ...core.names import BACKEND_LOCAL, CONFIG_FILE, OUTPUT_FILES, STDERR, STDOUT
from ...core.render import RenderedRun, RenderedSweep
from ...records.localexit import LocalExit, write_local_exit
from ...records.lock import process_start_time
from ...records.runs import epoch_seconds
from .base import Backend, SubmitReport


def machine_cpus() -> int:
    """The cores this process may use (its CPU affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


def machine_memory_mb() -> int:
    """MemAvailable of /proc/meminfo, in MB (a huge number where it cannot be read)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except OSError:  # pragma: no cover
        pass
    return 1 << 20


@dataclass
class _Running:
    run: RenderedRun
    proc: subprocess.Popen
    started: float
    cpus: int
    memory_mb: int
    deadline: float


class LocalBackend(Backend):
    """Runs the jobs here, as HTCondor would on a pool; submit() returns when all have ended."""

    name = BACKEND_LOCAL

    def __init__(self, cpus: int | None = None, memory_mb: int | None = None, progress: bool = True,
                 poll_s: float = 0.2):
        self.cpus = cpus or machine_cpus()
        self.memory_mb = memory_mb or machine_memory_mb()
        self.progress = progress
        self.poll_s = poll_s

    def _start(self, sweep: RenderedSweep, run: RenderedRun) -> _Running:
        folder = run.results_dir
        folder.mkdir(parents=True, exist_ok=True)
        for name in OUTPUT_FILES:
            (folder / name).unlink(missing_ok=True)
        shutil.copyfile(sweep.config_path, folder / CONFIG_FILE)  # HTCondor's input transfer
        res = sweep.spec.resources
        cpus = min(res.request_cpus, self.cpus)
        env = {**os.environ, "SWEEP_CPUS": str(cpus), "OMP_NUM_THREADS": str(cpus)}
        with open(folder / STDOUT, "wb") as out, open(folder / STDERR, "wb") as err:
            # the job's arguments, as job.sub gives them on a pool
            proc = subprocess.Popen(["/bin/sh", str(sweep.paths.wrapper(sweep.spec.name)), CONFIG_FILE,
                                     "--run", run.config_argument],
                                    cwd=folder, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env,
                                    start_new_session=True)
        # started, not ended: `sweep status` sees the job running while this process lives
        try:
            write_local_exit(folder, LocalExit(returncode=None, cpus=cpus, pid=proc.pid, host=socket.gethostname(),
                                               started=process_start_time(proc.pid)))
        except BaseException:  # not yet among the running jobs the caller stops: stop it here
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        now = time.monotonic()
        return _Running(run, proc, now, cpus, min(res.request_memory_mb, self.memory_mb), now + res.runtime_s)

    @staticmethod
    def _kill(job: _Running) -> None:
        try:
            os.killpg(job.proc.pid, signal.SIGTERM)
            try:
                job.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(job.proc.pid, signal.SIGKILL)
                job.proc.wait()
        except ProcessLookupError:
            pass

    @staticmethod
    def _record(job: _Running, returncode: int, reason: str | None = None) -> None:
        if reason is None and returncode < 0:
            reason = f"killed by signal {signal.Signals(-returncode).name}"
        write_local_exit(job.run.results_dir, LocalExit(returncode=returncode, reason=reason,
                                                        wall_s=round(time.monotonic() - job.started, 3), cpus=job.cpus))

    def submit(self, sweep: RenderedSweep, runs: list[RenderedRun]) -> SubmitReport:
        report = SubmitReport(backend=self.name, submitted=[r.run.run_id for r in runs])
        exit_codes: dict[str, int] = {}
        place = start_order([r.run for r in runs], sweep.spec.data.max_samples,
                            epoch_seconds(sweep.results_dir, (r.run.run_id for r in runs)))
        pending = sorted(runs, key=lambda r: place[r.run.run_id])  # the longest first (core/cost.py)
        running: list[_Running] = []
        free_cpus, free_mem = self.cpus, self.memory_mb
        progress = _Progress(len(runs), sweep.spec.name, enabled=self.progress)
        try:
            with progress:
                while pending or running:
                    # first fit: start every pending run that fits what is free (a run larger than the
                    # whole machine starts alone, capped to the machine)
                    for run in list(pending):
                        res = sweep.spec.resources
                        need_cpu, need_mem = min(res.request_cpus, self.cpus), min(res.request_memory_mb,
                                                                                    self.memory_mb)
                        if (need_cpu <= free_cpus and need_mem <= free_mem) or not running:
                            job = self._start(sweep, run)
                            running.append(job)
                            pending.remove(run)
                            free_cpus -= job.cpus
                            free_mem -= job.memory_mb
                            progress.update(len(running), len(exit_codes))
                    time.sleep(self.poll_s)
                    for job in list(running):
                        code = job.proc.poll()
                        reason = None
                        if code is None and time.monotonic() > job.deadline:
                            self._kill(job)
                            code = job.proc.returncode
                            reason = (f"runtime limit exceeded: ran longer than "
                                      f"{sweep.spec.resources.runtime_s}s and was killed")
                        if code is None:
                            continue
                        self._record(job, code, reason)
                        exit_codes[job.run.run.run_id] = code
                        running.remove(job)
                        free_cpus += job.cpus
                        free_mem += job.memory_mb
                        progress.advance(job.run.run, code, len(running), len(exit_codes))
        except BaseException:
            for job in running:  # Ctrl-C or an error here: leave no job behind
                self._kill(job)
                self._record(job, job.proc.returncode if job.proc.returncode is not None else -15,
                             "interrupted: sweep submit was stopped")
            raise
        report.details["exit_codes"] = exit_codes
        return report


class _Progress:
    """A rich progress bar (or nothing when not wanted / not a terminal)."""

    def __init__(self, total: int, sweep: str, enabled: bool):
        self.enabled = enabled
        self.total = total
        self.sweep = sweep
        self._progress = None

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.fields[status]}"), TimeElapsedColumn())
            self._progress.__enter__()
            self._task = self._progress.add_task(f"{self.sweep} (local)", total=self.total, status="")
        return self

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def update(self, running: int, done: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, status=f"running {running}")

    def advance(self, run, code: int, running: int, done: int) -> None:
        if self._progress is not None:
            state = "ok" if code == 0 else f"exit {code}"
            self._progress.console.log(f"{run.run_id} {run.name}: {state}")
            self._progress.update(self._task, advance=1, status=f"running {running}")
