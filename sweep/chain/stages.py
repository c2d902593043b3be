"""The two-step chain's stages, in order: the peak finder's grid (or search) and its leader; the
clusterizer's dataset simulated with that leader's peaks; the clusterizer's grid (or search) on
it and its leader; the evaluation with both leaders.

Each stage records what it was made from (a content hash of its inputs) and what it made in
results/<chain>/chain.json. Running the chain again runs only what changed: a grid stage asks its
sweep for the runs without a valid result (the sweep's own run ids are content hashes of
configuration, data and seed, so a finished sweep submits nothing), the simulation and the
evaluation run again only when their inputs' hash differs (a new peak leader means a new
dataset, hence new clusterizer runs, hence a new evaluation). On a pool every grid stage's runs,
the simulation and the evaluation are HTCondor jobs (sweep.chain.steps), and the chain's own
process imports no TensorFlow; on this machine (--local) they are local jobs and processes; the
same code runs both.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core import names
from ..core.canonical import canonical_json
from ..core.errors import SweepError, printable
from ..core.grid import load_grid
from ..core.gridspec import GridChecks, GridSpec
from ..core.names import SweepPaths
from ..core.pipeline import AUTO, FROM_SIMULATE, SEPARATION, SHORTLIST_METRIC, STAGES, PipelineSpec
from ..core.render import relative_to_root
from ..fsutil import atomic_write_text, file_digest
from ..records.chain import CHAIN_RECORD, ChainRecord, Leader, StageEntry, read_chain, save_chain
from ..records.base import RecordError
from ..records.evaluation import EVALUATION
from ..records.untrusted import DATASET_LIMIT, MODEL_LIMIT, RECORD_LIMIT, copy_file, is_regular_file
from .steps import StepExecutor, StepRequest, output_limit

CHAIN_LOG = "chain.log"  # results/<chain>/chain.log: what the chain did, across runs and restarts
CLUSTERS_GRID = "clusters.yaml"  # jobs/<chain>/clusters.yaml: the clusterizer grid on the chain's dataset
EVALUATION_DIR = "evaluation"  # results/<chain>/evaluation/: evaluation.json and its PNGs


class ChainError(SweepError):
    """A stage cannot go on: a grid stage without a valid run, a clusters grid that is not a cnn grid."""


@dataclass
class ChainContext:
    """What the stages share: the pipeline, the project, how grids run, and where notes go."""

    spec: PipelineSpec
    root: Path
    run_grid: Callable[[GridSpec, Path], None]  # runs a grid's sweep (or search) to its end
    checks: GridChecks
    log: Callable[[str], None]
    #: runs the simulation and the evaluation: (the peak grid, the clusters grid) -> an executor
    steps: Callable[[list[GridSpec]], StepExecutor]

    @property
    def paths(self) -> SweepPaths:
        """The project's folders (its root resolved)."""
        return SweepPaths(self.root.resolve())

    @property
    def results(self) -> Path:
        """results/<chain>/."""
        return self.paths.results(self.spec.name)

    @property
    def jobs(self) -> Path:
        """jobs/<chain>/."""
        return self.paths.jobs(self.spec.name)


def clusters_sweep_name(chain: str) -> str:
    """The name of the sweep that trains a chain's clusterizer: <chain>-clusters."""
    return f"{chain}-clusters"


def inputs_hash(inputs: dict[str, Any]) -> str:
    """A step's inputs (JSON-able) as 16 hex digits of the SHA-256 of their canonical JSON: equal
    inputs, equal hash, so an unchanged step is not run again."""
    return hashlib.sha256(canonical_json(inputs).encode()).hexdigest()[:16]


def read_record(results: Path) -> ChainRecord:
    """results/<chain>/chain.json, or an empty record (none yet); a torn one is read from its
    previous version (sweep.records.chain.read_chain).

    Raises:
        RecordError (a ResultsError): torn without a usable previous version, not a chain
            record, or written by a newer sweep.
    """
    return read_chain(results)


def _save(ctx: ChainContext, record: ChainRecord, stage: str, entry: StageEntry) -> None:
    """Record a stage's entry (stamped with the time) and write the chain's record."""
    record.chain = ctx.spec.name
    record.pipeline = relative_to_root(Path(ctx.spec.file).resolve(), ctx.root)
    entry.at = time.strftime("%Y-%m-%dT%H:%M:%S")
    record.stages[stage] = entry
    save_chain(ctx.results, record)


def run_stages(ctx: ChainContext) -> ChainRecord:
    """Run the chain's four stages in order, each only as far as its inputs changed.

    Returns:
        The chain's record (as written to results/<chain>/chain.json).

    Raises:
        ChainError: a stage that cannot go on (said why); GridError: an invalid grid; what the
        stages' sweeps, the simulation and the evaluation raise.
    """
    ctx.results.mkdir(parents=True, exist_ok=True)
    ctx.jobs.mkdir(parents=True, exist_ok=True)
    record = read_record(ctx.results)
    try:
        peak_grid = load_grid(ctx.spec.peaks.grid, ctx.root, checks=ctx.checks)  # its model and name: checked
        ctx.log(f"stage peaks: sweep {peak_grid.name} ({ctx.spec.peaks.grid_text})")
        peaks = _grid_stage(ctx, record, "peaks", peak_grid, ctx.spec.peaks.grid, ctx.spec.peaks.leader,
                            shortlist=ctx.spec.peaks.shortlist, steps=lambda: ctx.steps([peak_grid]))
        # leader: separation chose the working point with the leader
        working_point = record.stages["peaks"].threshold if ctx.spec.peaks.shortlist else None
        # the simulation runs where and how the peak grid's jobs run; it asks for what both grids' do
        plain_cluster_grid = load_grid(ctx.spec.clusters.grid, ctx.root, checks=ctx.checks)
        data = _simulate_stage(ctx, record, peaks, peak_grid, ctx.steps([peak_grid, plain_cluster_grid]),
                               working_point)
        cluster_grid_path = write_clusters_grid(ctx, data)
        cluster_grid = load_grid(cluster_grid_path, ctx.root, checks=ctx.checks)
        ctx.log(f"stage clusters: sweep {cluster_grid.name} on {data['path']}")
        clusters = _grid_stage(ctx, record, "clusters", cluster_grid, cluster_grid_path, ctx.spec.clusters.leader)
        _evaluate_stage(ctx, record, peaks, clusters, data, ctx.steps([peak_grid, cluster_grid]))
    except Exception as exc:  # a stage that raised is failed in the record, with why (status shows it)
        for stage, entry in list(record.stages.items()):
            if entry.state == "running":
                _save(ctx, record, stage, dataclasses.replace(
                    entry, state="failed", reason=printable(f"{type(exc).__name__}: {exc}")[:300]))
        raise
    return record


def _grid_stage(ctx: ChainContext, record: ChainRecord, stage: str, grid: GridSpec, grid_path: Path,
                leader_metric: str | None, *, shortlist: int | None = None,
                steps: Callable[[], StepExecutor] | None = None) -> Leader:
    """Run the stage's sweep to its end, then keep its leader as results/<chain>/<stage>-leader.keras
    (with its training record beside it: later stages check what it was trained on). With a
    ``shortlist`` (peaks.leader: separation) the leader is chosen among the best runs by π/K
    separation, in a step job run by ``steps()`` (:func:`_choose_by_separation`)."""
    from ..collect.gather import collect
    from ..collect.leaderboard import best_runs

    previous = record.stage(stage)
    known = (previous.leader or previous.previous_leader) if previous else None  # a stage cut short keeps the latter
    _save(ctx, record, stage, StageEntry(state="running", sweep=grid.name, previous_leader=known))
    ctx.run_grid(grid, grid_path)
    board = collect(grid.name, ctx.root, write_csv=True)
    # the leader comes from the grid as it is now: runs of an earlier version of it still rank in
    # its leaderboard, but an edited stage must lead with what it trains now
    board.table = board.table[~board.table["run_id"].isin(board.outside_grid)]
    chosen = best_runs(board, shortlist or 1, SHORTLIST_METRIC if shortlist else leader_metric)
    if not chosen:
        _save(ctx, record, stage, StageEntry(state="failed", sweep=grid.name, reason="no valid run"))
        raise ChainError(f"stage {stage}: sweep {grid.name} has no valid run to lead the next stage "
                         f"({len(board.problems)} without a result); see `sweep collect {grid.name}`")
    extra: dict[str, Any] = {}
    if shortlist:
        assert steps is not None, "a shortlist is chosen among in a step job"
        index, metric, value, extra = _choose_by_separation(ctx, record, stage, grid, board, chosen, previous, steps)
        run_id = chosen[index][1]
        row = board.table[board.table["run_id"] == run_id].iloc[0].to_dict()
        source = ctx.results / f"{stage}-shortlist-{index + 1}.keras"
        info = source.with_suffix(".json")
    else:
        run_id = chosen[0][1]
        row = board.table[board.table["run_id"] == run_id].iloc[0].to_dict()
        metric = leader_metric or board.ranking[0][0]
        value = _number(row.get(metric))
        source = board.results_dir / run_id / names.MODEL
        info = source.with_name(names.MODEL_INFO)
        for old in ctx.results.glob(f"{stage}-shortlist-*"):  # of an earlier leader: separation
            old.unlink(missing_ok=True)
    target = ctx.results / f"{stage}-leader.keras"
    sha = _keep_model(stage, source, info, target)
    name = row.get("name")
    leader = Leader(run_id=run_id, name=None if name is None else str(name), metric=metric,
                    value=value, sha256=sha, model=relative_to_root(target, ctx.root),
                    metrics={m: _number(row.get(m)) for m, _ in board.ranking})
    changed = (known.sha256 if known else None) != sha
    _save(ctx, record, stage, StageEntry(state="done", sweep=grid.name, leader=leader, ranked=len(board.table),
                                         changed=changed, **extra))
    ctx.log(f"stage {stage}: leader {run_id} ({row.get('name')}), {metric} {leader.value}"
            f"{'' if changed else ' (unchanged)'}; {len(board.table)} ranked")
    return leader


def _keep_model(stage: str, source: Path, info: Path, target: Path) -> str:
    """Copy a model to ``target`` (a .keras file of results/<chain>/) with its training record
    ``info`` beside it (as target's .json), unless target holds it already; return its sha256.

    Raises:
        ChainError: the model cannot be read or copied.
    """
    tmp = target.with_name(f".{target.name}.tmp")
    record_path = target.with_suffix(".json")
    try:  # the run folder came from an execute node: never read through a symlink, bounded
        copy_file(source, tmp, MODEL_LIMIT)
        sha = file_digest(tmp)["sha256"]
        if not target.is_file() or file_digest(target)["sha256"] != sha:
            if is_regular_file(info):
                copy_file(info, record_path, RECORD_LIMIT)
            else:  # never the previous model's record beside this one
                record_path.unlink(missing_ok=True)
            tmp.replace(target)
    except (OSError, RecordError) as exc:
        raise ChainError(f"stage {stage}: the model {source} cannot be taken: {printable(str(exc))}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return sha


def _simulation_params(ctx: ChainContext, peak_grid: GridSpec) -> dict[str, Any]:
    """The chain's simulation parameters: the pipeline's simulate.params, else the peak grid's."""
    sim = ctx.spec.simulate
    return sim["params"] if sim["params"] is not None else dict((peak_grid.data.simulate or {}).get("params") or {})


def _calibration(ctx: ChainContext) -> dict[str, Any]:
    """The calibration tracks a working point (and a leader by separation) is chosen on: the
    evaluation's momentum and cells, simulate.calibration_tracks per species."""
    ev = ctx.spec.evaluate
    return {"momentum": ev["momentum"], "cells": ev["cells"], "tracks": ctx.spec.simulate["calibration_tracks"]}


def _choose_by_separation(ctx: ChainContext, record: ChainRecord, stage: str, grid: GridSpec, board: Any,
                          ranked: list, previous: StageEntry | None, steps: Callable[[], StepExecutor]
                          ) -> tuple[int, str, float | None, dict[str, Any]]:
    """peaks.leader: separation. Keep the shortlist (the best runs by natural F1) as
    results/<chain>/<stage>-shortlist-<k>.keras, then choose among them in a step job (sweep.job.step
    select: each one's detections counted on the same π/K calibration tracks) unless the same
    shortlist was chosen among before.

    Returns:
        (the leader's index in ``ranked``, the leader's metric, its value (σ), the stage entry's
        extra keys: inputs_hash, threshold (the working point chosen with it), shortlist, job).

    Raises:
        ChainError: a shortlisted model cannot be taken; the step's record is not a choice.
        StepError: the step job failed.
    """
    kept: list[tuple[str, Path, str]] = []
    for k, (_, run_id) in enumerate(ranked, start=1):
        source = board.results_dir / run_id / names.MODEL
        target = ctx.results / f"{stage}-shortlist-{k}.keras"
        kept.append((run_id, target, _keep_model(stage, source, source.with_name(names.MODEL_INFO), target)))
    for old in ctx.results.glob(f"{stage}-shortlist-*"):  # an earlier, longer shortlist's
        number = old.name.removeprefix(f"{stage}-shortlist-").split(".")[0]
        if not number.isdigit() or int(number) > len(kept):
            old.unlink(missing_ok=True)
    shas = [sha for _, _, sha in kept]
    settings = {"seed": ctx.spec.simulate["seed"], "params": _simulation_params(ctx, grid),
                "calibration": _calibration(ctx)}
    digest = inputs_hash({"shortlist": shas, **settings})
    extra: dict[str, Any] = {"inputs_hash": digest, "shortlist": [run_id for run_id, _, _ in kept]}
    if (previous is not None and previous.state == "done" and previous.inputs_hash == digest
            and previous.threshold is not None and previous.leader is not None and previous.leader.sha256 in shas):
        ctx.log(f"stage {stage}: the choice among its shortlist is unchanged (inputs {digest})")
        return (shas.index(previous.leader.sha256), SEPARATION, previous.leader.value,
                {**extra, "threshold": previous.threshold, "job": previous.job})
    cal = settings["calibration"]
    ctx.log(f"stage {stage}: choosing the leader among the best {len(kept)} by {SHORTLIST_METRIC} ("
            + ", ".join(run_id for run_id, _, _ in kept) + f") by their π/K separation on {cal['tracks']} pion and "
            f"kaon tracks of {cal['momentum']} GeV/c")
    files = [f for _, target, _ in kept for f in (target, target.with_suffix(".json")) if f.is_file()]
    request = StepRequest("select", digest, {"peak_models": [target.name for _, target, _ in kept],
                                             "request_cpus": grid.resources.request_cpus, "select": settings}, files)
    result, _ = steps().run(request, _on_submit(ctx, record, stage))
    for note in result.notes or []:
        ctx.log(note)
    index, threshold, seps = result.chosen, result.threshold, result.separations or []
    if index is None or not 0 <= index < len(kept):  # from the step's job: untrusted
        raise ChainError(f"stage {stage}: its choice's step.json names shortlisted model {index!r}, not one of "
                         f"0..{len(kept) - 1}")
    if threshold is None or not 0 < threshold <= 1:
        raise ChainError(f"stage {stage}: its choice's step.json gives the working point {threshold!r}, not a "
                         "threshold in (0, 1]")
    value = _number(seps[index]) if index < len(seps) else None
    running = record.stage(stage)
    return index, SEPARATION, value, {**extra, "threshold": threshold, "job": running.job if running else None}


def _number(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if f == f else None


def _leader_files(ctx: ChainContext, leader: Leader) -> list[Path]:
    """A leader's model and its training record (what a step job receives)."""
    model = ctx.root.resolve() / leader.model
    record = model.with_suffix(".json")
    return [model, record] if record.is_file() else [model]


def _on_submit(ctx: ChainContext, record: ChainRecord, stage: str):
    def noted(cluster: int) -> None:  # the stage's job, in its record (status shows it)
        _save(ctx, record, stage, dataclasses.replace(record.stages[stage], job=f"{cluster}.0"))
    return noted


def _simulate_stage(ctx: ChainContext, record: ChainRecord, peaks: Leader, peak_grid: GridSpec,
                    steps: StepExecutor, working_point: float | None = None) -> dict[str, Any]:
    """The clusterizer's dataset: a simulation whose cluster inputs are the peak leader's peaks,
    run as a step job (sweep.job.step) and moved to the pipeline's simulate.path. Its peaks are
    found at ``working_point`` when the leader was chosen with one, else at simulate.threshold."""
    sim = ctx.spec.simulate
    params = _simulation_params(ctx, peak_grid)
    ev = ctx.spec.evaluate
    auto = sim["threshold"] == AUTO and working_point is None
    given = working_point if working_point is not None else sim["threshold"]
    # auto: the working point is chosen on calibration tracks like the evaluation's
    calibration = _calibration(ctx) if auto else None
    inputs = {"peak_leader": peaks.sha256, "waveforms": sim["waveforms"], "seed": sim["seed"],
              "threshold": given, "params": params}
    if auto:
        inputs["calibration"] = calibration
    digest = inputs_hash(inputs)
    path: Path = sim["path"]
    previous = record.stage("simulate")
    out = {"path": sim["path_text"], "inputs_hash": digest, "params": params}
    if previous is not None and previous.inputs_hash == digest and previous.state == "done" and path.is_file() and \
            file_digest(path)["sha256"] == previous.sha256 and (previous.threshold is not None or not auto):
        ctx.log(f"stage simulate: {sim['path_text']} is unchanged (inputs {digest})")
        _save(ctx, record, "simulate", dataclasses.replace(previous, state="done", skipped=True))
        return {**out, "sha256": previous.sha256,
                "threshold": previous.threshold if previous.threshold is not None else given}
    _save(ctx, record, "simulate", StageEntry(state="running", inputs_hash=digest, path=sim["path_text"]))
    ctx.log(f"stage simulate: {sim['waveforms']} waveforms (seed {sim['seed']}), peaks by the peak leader "
            f"{peaks.run_id} at threshold {given}"
            + (f" (chosen on {sim['calibration_tracks']} pion and kaon tracks of {ev['momentum']} GeV/c)"
               if auto else " (chosen with the leader)" if working_point is not None else "")
            + f" -> {sim['path_text']}")
    model_files = _leader_files(ctx, peaks)
    request = StepRequest("simulate", digest, {
        "peak_model": model_files[0].name, "request_cpus": peak_grid.resources.request_cpus,
        "simulate": {"waveforms": sim["waveforms"], "seed": sim["seed"], "threshold": given,
                     "calibration": calibration, "params": params}}, model_files)
    result, folder = steps.run(request, _on_submit(ctx, record, "simulate"))
    for note in result.notes or []:
        ctx.log(note)
    if len(result.outputs) != 1:
        raise ChainError(f"stage simulate: its job's step.json names {len(result.outputs)} outputs, not its dataset")
    made = folder / result.outputs[0]  # a regular file of the step's folder (steps.outputs_problem)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:  # results/ and the dataset's folder may be different file systems; never through a symlink
        copy_file(made, tmp, DATASET_LIMIT)
        sha = file_digest(tmp)["sha256"]
        if sha != result.sha256:  # what came back is not what the job wrote
            raise ChainError(f"stage simulate: {made} has sha256 {sha[:16]}..., its job wrote "
                             f"{printable(str(result.sha256))[:16]}...")
        tmp.replace(path)
    except (OSError, RecordError) as exc:
        raise ChainError(f"stage simulate: its dataset {made} cannot be taken: {printable(str(exc))}") from None
    finally:
        tmp.unlink(missing_ok=True)
    threshold = result.threshold if auto else given
    if threshold is None or not 0 < threshold <= 1:  # from the step's job: untrusted
        raise ChainError(f"stage simulate: its job's step.json gives the working point {threshold!r}, not a "
                         "threshold in (0, 1]")
    running = record.stage("simulate")
    _save(ctx, record, "simulate", StageEntry(
        state="done", skipped=False, inputs_hash=digest, path=sim["path_text"], sha256=sha, waveforms=result.waveforms,
        mean_peaks=result.mean_peaks, mean_clusters=result.mean_clusters, threshold=threshold, seconds=result.seconds,
        host=result.host, job=running.job if running else None))
    made.unlink()  # after the record: a chain killed before it finds the step's dataset again
    return {**out, "sha256": sha, "threshold": threshold}


def write_clusters_grid(ctx: ChainContext, data: dict[str, Any]) -> Path:
    """jobs/<chain>/clusters.yaml: the pipeline's clusterizer grid with its sweep named
    <chain>-clusters and its data the chain's dataset (nothing else changed)."""
    import yaml

    from ..core.validation import read_text

    doc = yaml.safe_load(read_text(ctx.spec.clusters.grid, "grid file"))
    if not isinstance(doc, dict) or doc.get("model") != "cnn":
        raise ChainError(f"{ctx.spec.file}: clusters.grid {ctx.spec.clusters.grid_text} is not a cnn grid (model: "
                         f"{printable(str((doc or {}).get('model') if isinstance(doc, dict) else doc))[:40]})")
    keep = {k: v for k, v in (doc.get("data") or {}).items() if k not in ("path", "simulate", "url")}
    doc = {**doc, "sweep": clusters_sweep_name(ctx.spec.name), "data": {**keep, "path": data["path"]}}
    doc["description"] = (f"chain {ctx.spec.name}: {doc.get('description') or ctx.spec.clusters.grid_text} on the "
                          f"peak leader's peaks")
    path = ctx.jobs / CLUSTERS_GRID
    text = (f"# written by `sweep chain` from {ctx.spec.clusters.grid_text}: edit that file, not this one\n"
            + yaml.safe_dump(doc, sort_keys=False))
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        atomic_write_text(path, text)
    return path


def _evaluate_stage(ctx: ChainContext, record: ChainRecord, peaks: Leader, clusters: Leader, data: dict,
                    steps: StepExecutor) -> None:
    """Both leaders on fresh held-out waveforms, run as a step job; its evaluation.json and
    PNGs replace results/<chain>/evaluation/ at once."""
    ev = dict(ctx.spec.evaluate)
    if ev["threshold"] == FROM_SIMULATE:  # the CNN sees peaks found as in its training data
        ev["threshold"] = data["threshold"]
    cpus = ev.pop("request_cpus", None)  # where it runs, not what it computes: not an input
    runtime = ev.pop("runtime", None)  # how long it may run: not an input either
    inputs = {"peak_leader": peaks.sha256, "cluster_leader": clusters.sha256, "settings": ev,
              "params": data["params"]}
    digest = inputs_hash(inputs)
    out_dir = ctx.results / EVALUATION_DIR
    previous = record.stage("evaluate")
    if previous is not None and previous.inputs_hash == digest and previous.state == "done" and \
            (out_dir / EVALUATION).is_file():
        ctx.log(f"stage evaluate: unchanged (inputs {digest})")
        _save(ctx, record, "evaluate", dataclasses.replace(previous, state="done", skipped=True))
        return
    _save(ctx, record, "evaluate", StageEntry(state="running", inputs_hash=digest))
    ctx.log(f"stage evaluate: {ev['waveforms']} held-out waveforms (seed {ev['seed']}), {ev['tracks']} tracks x "
            f"{ev['cells']} cells, pi/K at {ev['separation_momenta']} GeV/c")
    peak_files, cluster_files = _leader_files(ctx, peaks), _leader_files(ctx, clusters)
    request = StepRequest("evaluate", digest, {
        "peak_model": peak_files[0].name, "cluster_model": cluster_files[0].name, "params": data["params"],
        "evaluate": dict(ev), **({"request_cpus": cpus} if cpus else {}),
        **({"runtime_s": runtime} if runtime else {})}, peak_files + cluster_files)
    result, folder = steps.run(request, _on_submit(ctx, record, "evaluate"))
    fresh = ctx.results / f".{EVALUATION_DIR}.new"
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir()
    for name in result.outputs:  # plain names of regular files in the step's folder (steps.outputs_problem)
        try:
            copy_file(folder / name, fresh / name, output_limit(name) or 0)
        except (OSError, RecordError) as exc:
            raise ChainError(f"stage evaluate: its output {folder / name} cannot be taken: "
                             f"{printable(str(exc))}") from None
    old = ctx.results / f".{EVALUATION_DIR}.old"
    shutil.rmtree(old, ignore_errors=True)
    if out_dir.exists():
        out_dir.rename(old)
    fresh.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)
    running = record.stage("evaluate")
    _save(ctx, record, "evaluate", StageEntry(
        state="done", skipped=False, inputs_hash=digest, output=relative_to_root(out_dir / EVALUATION, ctx.root),
        summary=result.summary or {}, warnings=result.warnings or [], seconds=result.seconds, host=result.host,
        job=running.job if running else None))
    ctx.log("stage evaluate: done")


def chain_record(root: Path, name: str) -> ChainRecord | None:
    """The record of chain `name` when it is a chain (results/<name>/chain.json, and not a sweep).

    Raises:
        RecordError (a ResultsError): the record was written by a newer sweep.
    """
    paths = SweepPaths(root.resolve())
    if (paths.jobs(name) / names.MANIFEST).is_file() or not (paths.results(name) / CHAIN_RECORD).is_file():
        return None
    return read_record(paths.results(name))


def stage_sweeps(record: ChainRecord, root: Path) -> list[str]:
    """The sweeps of a chain's grid stages that exist (a stage that failed before its sweep was
    rendered has none)."""
    paths = SweepPaths(root.resolve())
    return [e.sweep for s in ("peaks", "clusters") if (e := record.stage(s)) and e.sweep
            and (paths.jobs(e.sweep) / names.MANIFEST).is_file()]


def stage_lines(record: ChainRecord) -> list[str]:
    """One line per stage of a chain's record, for `sweep status` and `sweep collect`."""
    lines = []
    for stage in STAGES:
        entry = record.stage(stage)
        if not entry:
            lines.append(f"{stage:9s} not started")
            continue
        bits = [f"{stage:9s} {entry.state}{' (unchanged)' if entry.skipped else ''}"]
        if entry.sweep:
            bits.append(f"sweep {entry.sweep}")
        leader = entry.leader
        if leader:
            bits.append(f"leader {leader.run_id} {leader.name} ({leader.metric} {_fmt(leader.value)})")
        if entry.job:
            bits.append(f"job {entry.job}" + (f" on {entry.host}" if entry.host else ""))
        if stage == "simulate" and entry.path:
            bits.append(f"{entry.path}" + (f", {entry.waveforms} waveforms" if entry.waveforms else "")
                        + (f", peaks at threshold {entry.threshold:g}" if entry.threshold is not None else ""))
        if stage == "evaluate" and entry.summary:
            s = entry.summary
            bits.append(", ".join(f"{k} {_fmt(s[k])}" for k in SUMMARY_KEYS if k in s))
        if entry.reason:
            bits.append(str(entry.reason))
        lines.append(printable("; ".join(bits) + f"  [{entry.at}]"))
    return lines


#: The evaluation's headline figures shown per chain (sweep.physics.evaluate.summary's keys).
SUMMARY_KEYS = ("lstm_f1_natural", "lstm_eff_purity_peaks", "deriv_eff_purity_peaks",
                "clusters_lstm_cnn_rel_resolution", "clusters_lstm_cnn_rel_bias", "dedx_resolution",
                "dndx_lstm_cnn_resolution", "dndx_lstm_cnn_dedx_ratio", "dndx_lstm_cnn_density_slope",
                "dndx_lstm_sqrt_t_dedx_ratio", "dndx_lstm_npeaks_dedx_ratio", "dndx_lstm_expected_dedx_ratio")


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def print_chain_status(name: str, record: ChainRecord, root: Path, console) -> None:
    """`sweep status CHAIN`: its stages, the last line of its log, then each stage sweep's status."""
    from ..records.runs import tail
    from ..submit.status import print_status

    console.print(f"[bold]chain {name}[/]" + (f" (pipeline {printable(str(record.pipeline))})"
                                            if record.pipeline else ""))
    for line in stage_lines(record):
        console.print("  " + line, markup=False, highlight=False)
    last = tail(SweepPaths(root.resolve()).results(name) / CHAIN_LOG, 1)
    if last:
        console.print(f"  log: {printable(last[0])}", markup=False, highlight=False)
    for sweep in stage_sweeps(record, root):
        print_status(sweep, root, console)
