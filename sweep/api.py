"""sweep from Python: a handle on a sweep, its grid, and submitting it, for notebooks and scripts.

The CLI calls the same stage functions with the same data step (:func:`data_step`).
Every reader here is read-only: it takes no lock, writes no file and touches no manifest, so a
notebook can look at a sweep while its jobs run and while ``sweep collect`` writes.

The handle's methods name what they read (docs/how-to/python-api.md has the whole tour):

* ``status()``      where each run stands (manifest, run folders, event log; the schedd's live
                    states only when asked);
* ``results()``     the ranked table, list hyperparameters as tuples;
* ``history(run)``  a run's per-epoch history; ``roc(run)`` its ROC curve;
* ``resources()``   what each job used against what it asked;
* ``best_model()``  the n-th best run's model file and its training record;
* ``study()``       a search's Optuna study; ``evaluation()`` a chain's evaluation.

This module is above the stages (it imports submit, collect, search and chain, and physics for
the data step); nothing of sweep imports it but the root package's lazy names and the CLI.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .core.errors import NotFoundError, ResultsError
from .core.names import HISTORY, MANIFEST, MODEL, ROC, SweepPaths
from .records.untrusted import HISTORY_LIMIT, ROC_LIMIT

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from .collect.gather import Leaderboard
    from .core.gridspec import GridSpec
    from .records.evaluation import Evaluation
    from .records.modelinfo import ModelInfo

#: submit_grid()'s backends: this machine, the HTCondor pool, or the pool when a schedd answers
BACKENDS = ("local", "condor", "auto")


def data_step() -> dict[str, Any]:
    """What the physics gives the submit and search stages (which do not import the simulator):
    the checks of simulation parameters and ClassAd expressions, and the data step that makes a
    grid's dataset. Keyword arguments of submit_grid, resubmit and start_search."""
    from .core.gridspec import GridChecks
    from .physics import datastep
    from .submit.classads import check_expression

    return {"checks": GridChecks(simulation=datastep.check_params, expression=check_expression),
            "make_dataset": datastep.ensure_dataset}


def load_grid(path: str | os.PathLike[str], root: str | os.PathLike[str] = ".") -> GridSpec:
    """A grid file, validated as ``sweep validate`` does (simulation parameters and ClassAd
    expressions included).

    Args:
        path: the grid file.
        root: the project folder its relative paths resolve against.

    Returns:
        The validated grid (sweep.core.gridspec.GridSpec): its name, model, axes, resources.

    Raises:
        GridError: every problem found, each with file, line, column and key.
        InputError: the file cannot be read.
    """
    from .core.grid import load_grid as load

    return load(path, root, checks=data_step()["checks"])


@dataclass(frozen=True)
class Status:
    """Where a sweep's runs stand: `counts` (state -> runs, e.g. {"done": 3, "held": 1}), `runs`
    (one row per run: run_id, name, state, detail, job_id, starts, and for a running job its
    last epoch: epoch, epochs, metric, value, elapsed_s, eta_s), `note` (what was not seen: an
    unreachable schedd), `finished` (no run queued or running) and `best` (the best finished run
    so far: run_id, name, metric, value; None before one)."""

    counts: dict[str, int]
    runs: pd.DataFrame
    note: str
    finished: bool
    best: dict[str, Any] | None = None


@dataclass(frozen=True)
class BestModel:
    """The n-th best run's model: its rank, run id, model file, the training record beside it
    (what it was trained on; None when the run wrote none) and its row of results()."""

    rank: int
    run_id: str
    path: Path
    info: ModelInfo | None
    result: dict[str, Any]


class _Handle:
    """What a sweep's and a chain's handles share: the name, the project folder, its paths."""

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.root = root
        self.paths = SweepPaths(root)

    def __repr__(self) -> str:
        return f"sweep.load({self.name!r}, root={str(self.root)!r})"

    @property
    def results_dir(self) -> Path:
        """results/<name>/: what the jobs, collect and the chain write."""
        return self.paths.results(self.name)


class Sweep(_Handle):
    """A handle on one sweep (or search) of a project, as ``sweep.load`` gives it. Every method
    reads the sweep's files afresh: call it again to see what changed."""

    def objectives(self) -> list[tuple[str, str]]:
        """What the sweep ranks by: a search's objectives, else the grid's ranking, as (metric,
        "max" | "min") pairs, the first deciding.

        Raises:
            ResultsError: no such sweep, or an unreadable manifest.
        """
        from .records.manifest import load_manifest

        manifest = load_manifest(self.root, self.name)
        pairs = manifest.search.objectives if manifest.search is not None else manifest.ranking
        return [(str(m), str(d)) for m, d in pairs]

    def _board(self) -> Leaderboard:
        from .collect.gather import collect

        return collect(self.name, self.root, write_csv=False, read_only=True)

    def status(self, query_schedd: bool = False) -> Status:
        """Where each run stands, from the manifest, the run folders and the event log.

        Args:
            query_schedd: also ask the sweep's schedd for live states (an unreachable one is a
                note, not an error). Off by default: a notebook need not reach the pool.

        Returns:
            Status (counts by state, one row per run).

        Raises:
            ResultsError: no such sweep, or an unreadable manifest.
        """
        import pandas as pd

        from .submit.status import sweep_status

        found = sweep_status(self.name, self.root, query_schedd=query_schedd)
        live_columns = ["epoch", "epochs", "metric", "value", "elapsed_s", "eta_s"]
        rows = []
        for r in found.runs:
            row = {"run_id": r.run_id, "name": r.name, "state": str(r.state), "detail": r.detail,
                   "job_id": r.job_id, "starts": r.starts}
            live = r.as_json().get("live", {})
            rows.append({**row, **{k: live.get(k) for k in live_columns}})
        counts = {str(state): n for state, n in found.counts().items()}
        columns = ["run_id", "name", "state", "detail", "job_id", "starts", *live_columns]
        return Status(counts=counts, runs=pd.DataFrame(rows, columns=columns), note=found.pool_note,
                      finished=found.finished, best=vars(found.best) if found.best is not None else None)

    def results(self) -> pd.DataFrame:
        """The ranked table as ``sweep collect`` ranks it: one row per valid run (rank, run_id,
        config_id, name, repeat, the swept hyperparameters — lists as tuples —, the test metrics,
        best_epoch, epochs_run, resources used; ``pareto`` for a multi-objective search).

        Raises:
            ResultsError: no such sweep, or an unreadable manifest.
        """
        return self._board().table.copy()

    def resources(self) -> pd.DataFrame | None:
        """What each job used (CPUs, memory, wall time, phases) against what it asked; None when no
        run has a record of it.

        Raises:
            ResultsError: no such sweep, or an unreadable manifest.
        """
        board = self._board()
        return None if board.resources is None else board.resources.copy()

    def _run_folder(self, run: str) -> Path:
        from .records.manifest import load_manifest

        if load_manifest(self.root, self.name).run(run) is None:
            raise NotFoundError(f"sweep {self.name!r} has no run {run!r} (run ids: sweep.load(...).results().run_id)")
        return self.results_dir / run

    def _table(self, run: str, file: str, limit: int) -> pd.DataFrame:
        import pandas as pd

        from .records.runs import read_table

        path = self._run_folder(run) / file
        table = read_table(path, limit)
        if table is None:
            raise NotFoundError(f"{path}: no readable {file} (absent, not a regular file, over "
                                f"{limit >> 20} MiB, or not CSV)")
        return pd.DataFrame(table)

    def history(self, run: str) -> pd.DataFrame:
        """A run's per-epoch history (history.csv: epoch, losses, metrics), numbers only (NaN
        where the job wrote something else).

        Raises:
            NotFoundError: no such run, or no readable history.csv.
        """
        return self._table(run, HISTORY, HISTORY_LIMIT)

    def roc(self, run: str) -> pd.DataFrame:
        """A peak finder's ROC curve on its test set (roc.csv: fpr, tpr, threshold).

        Raises:
            NotFoundError: no such run, or no readable roc.csv (a clusterizer has none).
        """
        return self._table(run, ROC, ROC_LIMIT)

    def best_model(self, rank: int = 1, by: str | None = None) -> BestModel:
        """The model of the run ranked `rank` (1 = best; with repeats, the best repeat of the
        rank-th configuration), by the sweep's ranking or by the metric `by`.

        Raises:
            NotFoundError: fewer ranked runs than `rank`, or the run has no model file.
            ResultsError: no such sweep, or an unknown metric.
        """
        from .collect.leaderboard import best_runs
        from .records.modelinfo import read_model_info

        if rank < 1:
            raise ResultsError(f"rank must be 1 or more, not {rank}")
        board = self._board()
        chosen = best_runs(board, rank, by)
        if len(chosen) < rank:
            raise NotFoundError(f"sweep {self.name!r} has {len(chosen)} ranked run(s), no rank {rank}")
        position, run_id = chosen[rank - 1]
        path = self.results_dir / run_id / MODEL
        if not path.is_file() or path.is_symlink():
            raise NotFoundError(f"{path}: the run ranked {rank} has no model file")
        row = board.table.loc[board.table["run_id"] == run_id]
        result = row.iloc[0].to_dict() if len(row) else {}
        return BestModel(rank=position, run_id=run_id, path=path, info=read_model_info(path), result=result)

    def study(self) -> optuna.Study:
        """A search's Optuna study, read from its journal (the driver is its only writer).

        Raises:
            NotFoundError: the sweep is not a search, or its journal is gone.
        """
        from .records.manifest import load_manifest
        from .records.study import load_study

        search = load_manifest(self.root, self.name).search
        journal = Path(search.journal) if search is not None and search.journal else None
        if journal is None or not journal.is_file():
            raise NotFoundError(f"sweep {self.name!r} is not a search with a study journal")
        try:
            return load_study(journal, self.name)
        except KeyError:
            raise NotFoundError(f"{journal}: holds no study {self.name!r}") from None


class Chain(_Handle):
    """A handle on a two-step chain: its record (stages, leaders) and its evaluation."""

    def record(self) -> Any:
        """The chain's record (sweep.records.chain.ChainRecord: stages, their sweeps and leaders).

        Raises:
            ResultsError: the record cannot be read.
        """
        from .records.chain import read_chain

        return read_chain(self.results_dir)

    def sweep(self, stage: str) -> Sweep:
        """The handle of a grid stage's sweep ("peaks" or "clusters").

        Raises:
            NotFoundError: the chain has no such stage, or its sweep was never rendered.
        """
        entry = self.record().stage(stage)
        name = getattr(entry, "sweep", None)
        if not name or not (self.paths.jobs(name)).is_dir():
            raise NotFoundError(f"chain {self.name!r} has no sweep for stage {stage!r}")
        return Sweep(name, self.root)

    def evaluation(self) -> Evaluation:
        """The chain's evaluation with both leaders (evaluation.json: peak, cluster and track
        levels, π/K separation, summary).

        Raises:
            NotFoundError: the chain has not been evaluated yet.
            ResultsError: the record cannot be read.
        """
        from .chain.stages import EVALUATION_DIR
        from .records.evaluation import read_evaluation

        folder = self.results_dir / EVALUATION_DIR
        found = read_evaluation(folder)
        if found is None:
            raise NotFoundError(f"chain {self.name!r} has no evaluation yet ({folder})")
        return found


def load(name: str, root: str | os.PathLike[str] = ".") -> Sweep | Chain:
    """A handle on the sweep, search or chain `name` of the project at `root`.

    Returns:
        A Sweep (a grid's sweep or a search), or a Chain.

    Raises:
        NotFoundError: the project has no sweep or chain of that name (the ones it has are named).
    """
    from .chain.stages import chain_record
    from .records.manifest import list_sweeps

    project = Path(root).resolve()
    paths = SweepPaths(project)
    if (paths.jobs(name) / MANIFEST).is_file():
        return Sweep(name, project)
    if chain_record(project, name) is not None:
        return Chain(name, project)
    known = list_sweeps(project)
    raise NotFoundError(f"{project}: no sweep or chain {name!r}"
                        + (f" (sweeps: {', '.join(known)})" if known else " (no sweep yet)"))


def submit_grid(grid: str | os.PathLike[str], backend: str = "local", wait: bool = False,
           root: str | os.PathLike[str] = ".", *, force: bool = False, cpus: int | None = None,
           progress: bool = False) -> Sweep:
    """Submit a grid as ``sweep submit`` does, through the same code: its runs without a valid
    result are rendered and run here ("local", to their end) or queued on the pool ("condor";
    "auto": the pool when a schedd answers, else here). A search grid runs its driver (here with
    "local", queued on the pool otherwise). (Not ``sweep.submit``: that name is the submit stage's
    package.)

    Args:
        grid: the grid file.
        backend: "local", "condor" or "auto".
        wait: with "condor", wait until every run has ended.
        root: the project folder.
        force: rerun configurations that already have a valid result.
        cpus: local runs: the cores to pack them onto (default: all of this machine's).
        progress: show rich's progress display.

    Returns:
        The sweep's handle.

    Raises:
        InputError: an unknown backend, or a pipeline file (run it with ``sweep chain``).
        GridError, RenderError: the grid (nothing written).
        BackendError: "condor" without a reachable schedd, or a schedd that refused the jobs.
    """
    from rich.console import Console

    from .core.errors import InputError
    from .submit.stage import SubmitOptions
    from .submit.stage import submit_grid as submit_stage
    from .submit.stage import wait as wait_for_end

    if backend not in BACKENDS:
        raise InputError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    grid, project = Path(grid), Path(root).resolve()
    console = Console(highlight=False, quiet=not progress)
    step = data_step()
    options = SubmitOptions(grid=grid, root=project, mode=backend, force=force, cpus=cpus, progress=progress,
                            wait=wait)
    outcome = submit_stage(options, console, **step)
    if outcome.follow == "search":
        from .search.stage import SearchOptions, start_search

        start_search(SearchOptions(grid=grid, root=project, mode=backend, progress=progress, cpus=cpus), console,
                     **step)
    elif outcome.follow == "wait":
        wait_for_end(outcome.sweep, project, console)
    return Sweep(outcome.sweep, project)
