"""Where a job's time goes: wall and CPU seconds of each phase of this start of the job.

Phases, in order: ``startup`` (the interpreter, sweep and TensorFlow imported, from the process's
start), ``data`` (the dataset read, cut and split), ``model`` (built and compiled, or restored from a
checkpoint), ``training`` (the epochs, with their validation pass; the checkpoints written between
epochs are not in it), ``checkpoints``, ``evaluation`` (test predictions, metrics, ROC) and
``output`` (history, model and its record written). CPU seconds are the whole process's (every
thread), so ``training``'s CPU over the cores the job was given is how busy it kept them. Each
epoch's wall seconds are in the history (history.csv, ``seconds``).

The runner writes them into run.json (records.runinfo.Phase); collect sums them per sweep.
Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

from ..records.runinfo import PHASES, Phase


def since_process_start() -> float | None:
    """Wall seconds since this process started (Linux: /proc/self/stat), or None where unknown."""
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime", encoding="ascii") as fh:
            uptime = float(fh.read().split()[0])
        return max(0.0, uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


class PhaseClock:
    """Wall and CPU seconds per phase, added up (a phase may be timed in several pieces)."""

    def __init__(self) -> None:
        self._seconds: dict[str, tuple[float, float]] = {}

    def add(self, name: str, wall_s: float, cpu_s: float) -> None:
        """Add seconds to phase `name` (one of records.runinfo.PHASES)."""
        if name not in PHASES:
            raise ValueError(f"unknown phase {name!r}")
        wall, cpu = self.spent(name)
        self._seconds[name] = (wall + max(0.0, wall_s), cpu + max(0.0, cpu_s))

    def spent(self, name: str) -> tuple[float, float]:
        """Wall and CPU seconds of phase `name` so far."""
        wall, cpu = self._seconds.get(name, (0.0, 0.0))
        return wall, cpu

    @contextlib.contextmanager
    def phase(self, name: str, excluding: str | None = None) -> Iterator[None]:
        """Time the block as (part of) phase `name`, less what phase `excluding` gained inside it
        (the checkpoints written between the epochs of ``training``)."""
        wall, cpu = time.perf_counter(), time.process_time()
        inner_wall, inner_cpu = self.spent(excluding) if excluding else (0.0, 0.0)
        try:
            yield
        finally:
            gained_wall, gained_cpu = self.spent(excluding) if excluding else (0.0, 0.0)
            self.add(name, time.perf_counter() - wall - (gained_wall - inner_wall),
                     time.process_time() - cpu - (gained_cpu - inner_cpu))

    def startup_done(self) -> None:
        """Record ``startup``: from the process's start to now (CPU: since it started), less the
        phases timed meanwhile (the dataset's digest, read before TensorFlow is imported)."""
        wall = since_process_start()
        if wall is None:  # not Linux: the start-up of the interpreter is not known; CPU still is
            wall = 0.0
        self.add("startup", wall - sum(w for w, _ in self._seconds.values()),
                 time.process_time() - sum(c for _, c in self._seconds.values()))

    def phases(self) -> dict[str, Phase]:
        """The phases timed so far, in PHASES order."""
        return {name: Phase(wall_s=round(self._seconds[name][0], 3), cpu_s=round(self._seconds[name][1], 3))
                for name in PHASES if name in self._seconds}
