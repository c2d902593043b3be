"""A grid as sweep uses it once validated (grid.py makes one from a grid file): the GridSpec and
its parts (data, resources, site, axes, search), the checks the stages hand the validator
(GridChecks), and what is derived from a GridSpec without reading anything: its size, the
description of its search, where each merged setting comes from.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import schema, units, yamlpos
from .validation import show


@dataclass(frozen=True)
class GridChecks:
    """Checks of grid values that need knowledge the pure core does not have, handed in by the
    stage that has it. Each takes the value and raises ValueError (or TypeError, KeyError) saying
    what is wrong; the validator reports it with the grid's file, line and key."""

    #: data.simulate.params (a mapping): sweep.physics.datastep.check_params
    simulation: Callable[[dict[str, Any]], None] | None = None
    #: ClassAd expressions such as condor.requirements: sweep.submit.classads.check_expression
    expression: Callable[[str], None] | None = None
    #: Folders outside the project the user allowed datasets to be read from (never written).
    data_roots: tuple[Path, ...] = field(default_factory=lambda: roots_from_environment("SWEEP_DATA_ROOTS"))
    #: Folders outside the project the user allowed template folders to come from.
    template_roots: tuple[Path, ...] = field(default_factory=lambda: roots_from_environment("SWEEP_TEMPLATE_ROOTS"))


def roots_from_environment(variable: str) -> tuple[Path, ...]:
    """The absolute folders listed in an environment variable (separated by ':'); relative
    entries are ignored, since what they would mean depends on where sweep runs."""
    text = os.environ.get(variable, "")
    return tuple(Path(p).resolve() for p in text.split(os.pathsep) if p and os.path.isabs(p))


@dataclass(frozen=True)
class Resources:
    """What each job asks for, in HTCondor's units (MB, seconds)."""

    request_cpus: int
    request_memory_mb: int
    request_disk_mb: int
    runtime_s: int
    request_gpus: int = 0
    gpus_minimum_memory_mb: int | None = None  # each GPU's own memory, at least (HTCondor's GPUs_GlobalMemoryMb)

    def as_dict(self) -> dict[str, int]:
        """The resources as the manifest and each job's config.yaml record them (GPU keys only
        when GPUs are asked for)."""
        out = {"request_cpus": self.request_cpus, "request_memory_mb": self.request_memory_mb,
               "request_disk_mb": self.request_disk_mb, "runtime_s": self.runtime_s}
        if self.request_gpus:
            out["request_gpus"] = self.request_gpus
            if self.gpus_minimum_memory_mb:
                out["gpus_minimum_memory_mb"] = self.gpus_minimum_memory_mb
        return out


@dataclass(frozen=True)
class DataSpec:
    """The grid's dataset: where it is, how it is sampled, how to simulate it when missing."""

    path: Path  # absolute
    path_text: str  # as written in the grid (part of the configuration's identity)
    balanced: bool
    max_samples: int | None
    simulate: dict[str, Any] | None  # {"waveforms": int, "seed": int, "params": dict} or None
    #: HTCondor transfers the arrays the model needs (a per-model file in jobs/<sweep>/data/); false:
    #: the job reads `path` in place (a shared file system the execute nodes see at that path)
    transfer: bool = True
    #: Where the jobs fetch the dataset from instead (osdf://, root://, https://: HTCondor's
    #: transfer plugins): a copy of `path`, which stays the sweep's identity; the job checks that
    #: what it received has the sha256 of `path`
    url: str | None = None


@dataclass(frozen=True)
class Site:
    """The site profile a grid names (`site: recas`): where it is, and which settings it gave."""

    name: str
    file: str
    description: str
    shared_filesystem: bool
    #: "section.key" of each setting the profile gave and the grid did not override
    gave: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dimension:
    """One axis of the product: a single parameter, or several coupled by `zip`."""

    names: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]  # one tuple per point, aligned with names
    path: yamlpos.KeyPath  # where it is declared (for error messages)


@dataclass(frozen=True)
class Range:
    """A search axis over an interval (search grids only): Optuna samples it."""

    name: str
    low: float | int
    high: float | int
    log: bool
    step: float | int | None
    integer: bool  # the parameter takes integers (units, batch_size, epochs, ...)
    path: yamlpos.KeyPath  # where it is declared

    def size(self) -> int | None:
        """How many values it can take; None for a continuum."""
        if self.integer:
            return int(self.high - self.low) // int(self.step or 1) + 1
        if self.step is not None:
            return int(round((self.high - self.low) / self.step)) + 1
        return None

    def describe(self) -> str:
        """The interval in words, e.g. "numbers from 0.0001 to 0.1, log scale"."""
        kind = "integers" if self.integer else "numbers"
        extra = ", log scale" if self.log else ""
        extra += f", step {self.step}" if self.step is not None else ""
        return f"{kind} from {self.low} to {self.high}{extra}"


@dataclass(frozen=True)
class SearchSpec:
    """The grid's search: block: how Optuna explores the space of the axes."""

    sampler: str  # sweep.core.schema.SAMPLERS
    trials: int
    parallel: int
    pruner: str  # sweep.core.schema.PRUNERS
    objectives: tuple[tuple[str, str], ...]  # (test metric, "max" | "min")
    seed: int
    retries: int  # how many times a failed trial's parameters are tried again
    startup_trials: int  # random trials before the sampler models, and before the pruner prunes
    warmup_epochs: int  # the pruner prunes no trial before this epoch
    #: (history column the pruner watches, its direction): from the first objective
    prune_on: tuple[str, str] = ("val_loss", "min")

    @property
    def multi_objective(self) -> bool:
        """Several objectives: a Pareto front, no pruning."""
        return len(self.objectives) > 1


@dataclass(frozen=True)
class NotifySpec:
    """The grid's notify: block: who HTCondor mails and when, and where the end's summary is posted."""

    email: tuple[str, ...] = ()  # notify_user (HTCondor mails nobody without it: notification Never)
    on: tuple[str, ...] = ("complete",)  # sweep.core.schema.NOTIFY_EVENTS
    #: an http(s) URL without credentials; read from the grid file when the sweep ends, never
    #: written into a submit file or any other file sweep writes
    webhook: str | None = None

    @property
    def notification(self) -> str:
        """HTCondor's `notification` for the DAGMan job (or a driver job): Never without an address,
        else the least of Complete, Error, Always that mails on every event of `on`."""
        if not self.email:
            return "Never"
        return schema.NOTIFICATION_BY_EVENTS.get(frozenset(self.on), schema.NOTIFICATION_OTHERWISE)

    @property
    def notify_user(self) -> str:
        """HTCondor's `notify_user`: the addresses, separated by commas (HTCondor splits on them)."""
        return ",".join(self.email)

    def posts(self, failed: bool) -> bool:
        """Whether the webhook is posted for an end with (`failed`) or without failed runs."""
        return self.webhook is not None and ("complete" in self.on or (failed and "error" in self.on))


@dataclass
class GridSpec:
    """A validated grid file: everything expand() and render_sweep() need."""

    file: str
    name: str
    model: str
    description: str
    seed: int
    data: DataSpec
    fixed: dict[str, Any]  # every hyperparameter not swept, defaults filled in
    dimensions: list[Dimension]
    exclude: list[dict[str, Any]]
    sample: int | None
    repeats: int
    resources: Resources
    condor: dict[str, Any]
    ranking: list[tuple[str, str]]  # (metric, "max" | "min")
    templates: Path | None
    located: yamlpos.Located | None = field(repr=False, default=None)  # the document, with positions
    #: What is allowed but probably not meant (printed by the CLI before it goes on).
    warnings: list[str] = field(default_factory=list)
    #: The project folder the grid was validated against (its paths resolve there).
    root: Path | None = None
    #: The site profile the grid named, if any (its settings are merged into resources/condor/data).
    site: Site | None = None
    #: A search grid's intervals (axes given as {low, high}); its lists are the dimensions.
    ranges: dict[str, Range] = field(default_factory=dict)
    #: The search: block; None for a grid run point by point.
    search: SearchSpec | None = None
    #: The notify: block; None: nobody is told (the default).
    notify: NotifySpec | None = None

    @property
    def swept(self) -> list[str]:
        """The swept hyperparameters, in the order the grid declares them (a search's ranges last)."""
        return [n for d in self.dimensions for n in d.names] + list(self.ranges)


def search_space_size(spec: GridSpec) -> int | None:
    """How many distinct points a search grid's space holds; None when a range is continuous."""
    total = count_points(spec)
    for r in spec.ranges.values():
        size = r.size()
        if size is None:
            return None
        total *= size
    return total


def describe_search(spec: GridSpec) -> list[str]:
    """Lines that say what a search grid explores and how (`sweep validate`)."""
    s = spec.search
    if s is None:
        return []
    lines = []
    for d in spec.dimensions:
        lines.append(f"  {d.names[0]}: one of {len(d.values)} values ({', '.join(show(v[0], 30) for v in d.values[:6])}"
                     + (", ..." if len(d.values) > 6 else "") + ")")
    for r in spec.ranges.values():
        lines.append(f"  {r.name}: {r.describe()}")
    size = search_space_size(spec)
    objectives = ", ".join(f"{m} ({'higher' if d == 'max' else 'lower'} is better)" for m, d in s.objectives)
    lines.append(f"  space: {'continuous' if size is None else f'{size:,} points'}; sampler {s.sampler}, "
                 f"{s.trials} trials, {s.parallel} at a time, pruner {s.pruner}"
                 + (f" (on {s.prune_on[0]}, from epoch {s.warmup_epochs})" if s.pruner != "none" else "")
                 + f"; objective{'s' if s.multi_objective else ''} {objectives}; seed {s.seed}")
    return lines


def merged_settings(spec: GridSpec) -> list[tuple[str, Any, str]]:
    """(setting, value, where it comes from: "grid", "site <name>" or "default") of the grid's
    resources, condor and data-transfer settings after the site profile was merged: what
    `sweep submit --dry-run --show` prints."""
    site = spec.site
    gave = set(site.gave) if site else set()
    written = spec.located.data if spec.located is not None and isinstance(spec.located.data, dict) else {}

    def origin(section: str, key: str) -> str:
        if site is not None and f"{section}.{key}" in gave:
            return f"site {site.name}"
        mine = written.get(section)
        return "grid" if isinstance(mine, dict) and key in mine else "default"

    rows: list[tuple[str, Any, str]] = []
    res = spec.resources
    for key, value in (("request_cpus", res.request_cpus), ("request_memory", f"{res.request_memory_mb} MB"),
                       ("request_disk", f"{res.request_disk_mb} MB"), ("runtime", units.format_duration(res.runtime_s)),
                       ("request_gpus", res.request_gpus)):
        rows.append((f"resources.{key}", value, origin("resources", key)))
    if res.gpus_minimum_memory_mb:
        rows.append(("resources.gpus_minimum_memory", f"{res.gpus_minimum_memory_mb} MB",
                     origin("resources", "gpus_minimum_memory")))
    for key in sorted(spec.condor):
        rows.append((f"condor.{key}", spec.condor[key], origin("condor", key)))
    rows.append(("data.transfer", spec.data.transfer, origin("data", "transfer")))
    if spec.data.url:
        rows.append(("data.url", spec.data.url, "grid"))
    return rows


def count_points(spec: GridSpec) -> int:
    """How many points the grid's product has, before exclusion, sampling and repeats."""
    total = 1
    for d in spec.dimensions:
        total *= len(d.values)
    return total
