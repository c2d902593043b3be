"""A search grid as an Optuna study: its space as distributions, its sampler and pruner, and the
study stored in results/<sweep>/study.journal (JournalFileBackend, written by the driver only).

Optuna is the library here: sweep writes no sampler and no pruner of its own. What is sweep's
is the translation: a grid's lists become categorical distributions (a value Optuna cannot hold,
such as a CNN's list of filters, is offered as its JSON text and decoded back), its intervals
float or int distributions, and a trial's parameters become a run whose id is their content hash.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from ..core.canonical import canonical_json
from ..core.errors import InputError
from ..core.gridspec import GridSpec
from ..core.names import STUDY_JOURNAL, SweepPaths
from ..records.study import load_study, storage  # load_study: also what readers import from here

#: What a study remembers of its grid (user attributes): a restarted driver, or a later
#: `sweep search`, refuses a journal made for another space.
ATTR_SPACE = "sweep_space_sha256"
ATTR_SAMPLER = "sweep_sampler"
ATTR_PRUNER = "sweep_pruner"
ATTR_OBJECTIVES = "sweep_objectives"
#: Trial user attributes.
ATTR_RUN = "run_id"
ATTR_JOB = "job"  # "cluster.proc" on a pool, "pid:<pid>" here
ATTR_RETRY_OF = "retry_of"  # the failed trial whose parameters this trial tries again
ATTR_ATTEMPT = "attempt"  # 0 for a sampled point, k for its k-th retry
ATTR_REUSED = "reused"  # the run's result existed: no job ran for this trial
ATTR_FAIL_REASON = "fail_reason"
ATTR_ABANDONED = "abandoned"  # created by study.ask, then its driver was killed before it had its parameters
ATTR_UNPRUNED = "trained_to_the_end"  # a point pruned before, proposed again: not pruned this time


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _offered(value: Any) -> Any:
    """A grid value as Optuna holds it: itself, or its JSON text for a list or mapping."""
    return value if _scalar(value) else canonical_json(value)


def distributions(spec: GridSpec) -> dict[str, BaseDistribution]:
    """The search space: each list a categorical distribution, each interval a float or int one."""
    space: dict[str, BaseDistribution] = {}
    for d in spec.dimensions:
        space[d.names[0]] = CategoricalDistribution([_offered(v[0]) for v in d.values])
    for r in spec.ranges.values():
        if r.integer:
            space[r.name] = IntDistribution(int(r.low), int(r.high), log=r.log, step=int(r.step or 1))
        else:
            space[r.name] = FloatDistribution(float(r.low), float(r.high), log=r.log,
                                              step=None if r.step is None else float(r.step))
    return space


def point_of(spec: GridSpec, params: dict[str, Any]) -> dict[str, Any]:
    """A trial's parameters as the grid's values (a list offered as its JSON text decoded back).

    Raises:
        KeyError: a parameter of the space is missing (a trial of another space).
    """
    point = {}
    for d in spec.dimensions:
        name, value = d.names[0], params[d.names[0]]
        point[name] = next((v[0] for v in d.values
                            if _offered(v[0]) == value and type(_offered(v[0])) is type(value)), value)
    for name in spec.ranges:
        point[name] = params[name]
    return point


def space_sha256(spec: GridSpec) -> str:
    """A digest of what makes a study's trials comparable: the space, the fixed parameters, the
    model, the data reference, the objectives (a journal made for another is refused)."""
    import hashlib

    space = {k: repr(v) for k, v in distributions(spec).items()}
    what = {"model": spec.model, "fixed": spec.fixed, "space": space, "data": spec.data.path_text,
            "seed": spec.seed, "objectives": [list(o) for o in spec.search.objectives]}
    return hashlib.sha256(canonical_json(what).encode()).hexdigest()


def check_journal(spec: GridSpec, root: Path) -> None:
    """Refuse, before a driver is queued, a journal that holds this sweep's study for another
    version of the grid (reads only).

    Raises:
        InputError: as open_study.
    """
    path = journal_path(spec, root)
    if not path.is_file():
        return
    try:
        known = load_study(path, spec.name).user_attrs.get(ATTR_SPACE)
    except KeyError:
        return
    if known is not None and known != space_sha256(spec):
        raise InputError(f"{path} holds the study of an earlier version of {spec.file} (its space, fixed "
                         "parameters, data or objectives changed): give the grid a new sweep name, or move the "
                         "journal away to start over")


def max_epochs(spec: GridSpec) -> int:
    """The largest number of epochs a trial can train: the pruners' resource."""
    if "epochs" in spec.ranges:
        return int(spec.ranges["epochs"].high)
    for d in spec.dimensions:
        if "epochs" in d.names:
            return max(int(v[0]) for v in d.values)
    return int(spec.fixed.get("epochs", 1))


def sampler_seed(seed: int, trials_so_far: int) -> int:
    """The sampler's seed: search.seed for a new study; for a study a restarted driver resumes,
    one derived from it and the trials it holds (the same seed would replay the first proposals,
    which are results already: the trials would be told them again instead of exploring)."""
    if trials_so_far == 0:
        return seed
    import hashlib

    return int.from_bytes(hashlib.sha256(f"{seed}:{trials_so_far}".encode()).digest()[:4], "little")


def make_sampler(spec: GridSpec, trials_so_far: int = 0) -> optuna.samplers.BaseSampler:
    """Optuna's sampler named by search.sampler, seeded by search.seed (see sampler_seed)."""
    s = spec.search
    s = dataclasses.replace(s, seed=sampler_seed(s.seed, trials_so_far))
    if s.sampler == "random":
        return optuna.samplers.RandomSampler(seed=s.seed)
    if s.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=s.seed, n_startup_trials=s.startup_trials,
                                          multivariate=True, constant_liar=True)
    if s.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=s.seed, n_startup_trials=s.startup_trials,
                                            warn_independent_sampling=False)
    if s.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=s.seed)
    if s.sampler == "grid":
        space = distributions(spec)
        grid = {}
        for name, dist in space.items():
            if isinstance(dist, CategoricalDistribution):
                grid[name] = list(dist.choices)
            elif isinstance(dist, IntDistribution) and not dist.log:
                grid[name] = list(range(dist.low, dist.high + 1, dist.step))
            elif isinstance(dist, FloatDistribution) and dist.step is not None:
                steps = int(round((dist.high - dist.low) / dist.step))
                grid[name] = [dist.low + k * dist.step for k in range(steps + 1)]
            else:
                raise InputError(f"{spec.file}: search.sampler grid needs lists or integer intervals; "
                                 f"'{name}' is continuous (give it a step, or list its values)")
        return optuna.samplers.GridSampler(grid, seed=s.seed)
    raise InputError(f"unknown sampler {s.sampler}")  # pragma: no cover - the grid validator refuses it


def make_pruner(spec: GridSpec) -> optuna.pruners.BasePruner:
    """Optuna's pruner named by search.pruner; epochs are the resource."""
    s = spec.search
    if s.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=s.startup_trials, n_warmup_steps=s.warmup_epochs)
    if s.pruner == "successive_halving":  # asynchronous (ASHA): what parallel trials on a pool need
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, s.warmup_epochs))
    if s.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, s.warmup_epochs), max_resource=max_epochs(spec))
    return optuna.pruners.NopPruner()


def journal_path(spec: GridSpec, root: Path) -> Path:
    """results/<sweep>/study.journal."""
    return SweepPaths(root.resolve()).results(spec.name) / STUDY_JOURNAL


def open_study(spec: GridSpec, root: Path, *, create: bool = True) -> optuna.Study:
    """The grid's study (created on first use), with its sampler and pruner.

    Raises:
        InputError: the journal holds a study of another space (the grid's axes, fixed
            parameters, data or objectives changed): its trials would not be comparable.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = journal_path(spec, root)
    s = spec.search
    directions = ["maximize" if d == "max" else "minimize" for _, d in s.objectives]
    store = storage(path)
    known_studies = {st.study_name: st.n_trials for st in optuna.get_all_study_summaries(store)}
    study = optuna.create_study(storage=store, study_name=spec.name, load_if_exists=True, directions=directions,
                                sampler=make_sampler(spec, known_studies.get(spec.name, 0)), pruner=make_pruner(spec))
    digest = space_sha256(spec)
    known = study.user_attrs.get(ATTR_SPACE)
    if known is None and create:
        study.set_user_attr(ATTR_SPACE, digest)
        study.set_user_attr(ATTR_SAMPLER, s.sampler)
        study.set_user_attr(ATTR_PRUNER, s.pruner)
        study.set_user_attr(ATTR_OBJECTIVES, [list(o) for o in s.objectives])
    elif known is not None and known != digest:
        raise InputError(f"{path} holds the study of an earlier version of {spec.file} (its space, fixed "
                         "parameters, data or objectives changed): its trials are not comparable with this grid's. "
                         "Give the grid a new sweep name, or move the journal away to start over")
    return study
