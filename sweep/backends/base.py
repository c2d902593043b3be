"""The backend interface, in the spirit of submitit's executors: one call, submit()."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..core.render import RenderedRun, RenderedSweep


@dataclass
class SubmitReport:
    backend: str
    submitted: list[str] = field(default_factory=list)  # run ids handed to the backend
    details: dict = field(default_factory=dict)  # backend-specific (cluster ids, exit codes, ...)


class Backend(Protocol):
    name: str

    def submit(self, sweep: RenderedSweep, runs: list[RenderedRun]) -> SubmitReport:
        """Start (or queue) the given runs of a rendered sweep; outputs go to each run's results_dir."""
        ...
