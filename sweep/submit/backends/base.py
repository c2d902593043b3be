"""The backend interface, in the spirit of submitit's executors: one call, submit()."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ...core.render import RenderedRun, RenderedSweep


@dataclass
class SubmitReport:
    """What a backend did with the runs it was given."""

    backend: str  # sweep.core.names.BACKEND_LOCAL | BACKEND_HTCONDOR
    submitted: list[str] = field(default_factory=list)  # run ids handed to the backend
    details: dict = field(default_factory=dict)  # backend-specific (cluster ids, exit codes, ...)


class Backend(Protocol):
    """Where runs execute. `name` is what the manifest records (sweep.core.names.BACKEND_*)."""

    name: str

    def submit(self, sweep: RenderedSweep, runs: list[RenderedRun]) -> SubmitReport:
        """Start (or queue) some runs of a rendered sweep whose files are already on disk.

        Args:
            sweep: the rendered sweep (its wrapper and paths).
            runs: the runs to start; each run's outputs go to its results_dir.

        Returns:
            The report: which runs were handed over, with backend details (the local backend
            returns when they have ended, with their exit codes; HTCondor once they are queued,
            with the cluster).

        Raises:
            BackendError: the backend cannot take the runs (e.g. the schedd refused them).
        """
        ...
