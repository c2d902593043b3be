"""A sweep's ranked runs exported to experiment trackers, from the run folders on the submit node
(jobs never talk to a tracking server):

* TensorBoard: results/<sweep>/tensorboard/, one folder per ranked run (its run id) with the
  per-epoch scalars of its history.csv and its test metrics, and the HParams plugin's experiment
  (the swept hyperparameters against the test metrics: its table and parallel coordinates).
  Written with tensorboard's own record writer and protos: no TensorFlow is imported.
* MLflow (the optional extra ``sweep[mlflow]``): a parent run per sweep, a nested child per ranked
  run with its hyperparameters, per-epoch metrics, tags and model, into a local SQLite store.

Everything read from a run folder came from an execute node: read bounded, never through a
symlink (records.untrusted), numeric columns only, non-finite values skipped, and only names
both trackers take.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import shlex
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import InputError, NotFoundError, ResultsError
from ..core.names import HISTORY, MODEL, MODEL_INFO, SweepPaths
from ..fsutil import atomic_folder
from ..records.base import RecordError
from ..records.manifest import Manifest, load_manifest
from ..records.metrics import read_metrics
from ..records.runinfo import read_run_info
from ..records.runs import read_table
from ..records.untrusted import HISTORY_LIMIT, MODEL_LIMIT, RECORD_LIMIT, copy_file
from .gather import collect

#: results/<sweep>/tensorboard/: the TensorBoard export's log folder
TENSORBOARD_DIR = "tensorboard"
#: results/<sweep>/mlflow.db and mlflow-artifacts/: the MLflow export's default store
MLFLOW_DB = "mlflow.db"
MLFLOW_ARTIFACTS = "mlflow-artifacts"
#: In an export's log folder: says that the folder is one sweep wrote, which a re-export replaces
#: (a folder without it is never replaced: --out pointed at something else).
EXPORT_MARKER = ".sweep-tensorboard-export"
#: The most history.csv columns exported (a job writes about 20); the rest are left out.
MAX_COLUMNS = 256
#: The most epochs one run exports (history.csv's limit allows about 20,000 lines).
MAX_EPOCH = 1_000_000
#: A name both trackers take as a scalar tag, an MLflow metric, parameter or tag key.
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/ ]{0,199}")
#: Prefix of the tags this export sets on its MLflow runs.
TAG_PREFIX = "sweep."
#: MLflow's limits on one log_batch call.
_BATCH_METRICS, _BATCH_PARAMS = 1000, 100


@dataclass(frozen=True)
class TrackingExport:
    """What an export wrote: for which tool, where (a folder, or a tracking URI), how many
    ranked runs, and the command line that opens it."""

    tool: str  # "tensorboard" | "mlflow"
    location: str
    runs: int
    command: str


@dataclass
class _Run:
    """One ranked run as the exports need it."""

    rank: int
    run_id: str
    config_id: str
    name: str
    folder: Path
    hparams: dict[str, bool | float | int | str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    history: dict[int, dict[str, float]] = field(default_factory=dict)  # epoch -> column -> value
    test: dict[str, float] = field(default_factory=dict)
    started: float | None = None  # seconds since the epoch
    finished: float | None = None
    dataset_sha256: str | None = None

    @property
    def last_step(self) -> int:
        """The step the test metrics are written at: the last epoch of the history (0 without)."""
        return max(self.history, default=0)


# ------------------------------------------------------------------ reading the sweep

def _ranked_runs(sweep: str, root: Path) -> tuple[Manifest, list[tuple[str, str]], list[_Run]]:
    """The manifest, the ranking and the ranked runs (best first) with what their folders hold.

    Raises:
        ResultsError: no such sweep, an unreadable manifest, or no ranked run.
    """
    board = collect(sweep, root, write_csv=False, read_only=True)
    manifest = load_manifest(root, sweep)
    entries = {e.run_id: e for e in manifest.runs}
    results = SweepPaths(root.resolve()).results(sweep)
    runs = []
    for row in board.table.itertuples(index=False):
        run_id = str(row.run_id)
        entry = entries.get(run_id)
        if entry is None:
            continue
        run = _Run(rank=int(row.rank), run_id=run_id, config_id=entry.config_id, name=entry.name,
                   folder=results / run_id)
        for key in board.swept:
            value = entry.swept.get(key)
            if value is None or not _NAME_RE.fullmatch(key):
                continue
            run.hparams[key] = _hparam_value(value)
            run.params[key] = str(run.hparams[key])
        run.history = read_history(run.folder / HISTORY)
        try:
            metrics = read_metrics(run.folder)
        except RecordError:
            metrics = None
        if metrics is not None:
            run.test = {k: float(v) for k, v in (metrics.test or {}).items() if _NAME_RE.fullmatch(k)
                        and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
            run.dataset_sha256 = metrics.dataset.sha256 if metrics.dataset is not None else None
        try:
            info = read_run_info(run.folder)
        except RecordError:
            info = None
        if info is not None:
            run.started, run.finished = _seconds(info.started), _seconds(info.finished)
            if run.dataset_sha256 is None and info.dataset is not None:
                run.dataset_sha256 = info.dataset.sha256
        if run.dataset_sha256 is None and manifest.dataset is not None:
            run.dataset_sha256 = manifest.dataset.sha256
        runs.append(run)
    if not runs:
        raise ResultsError(f"sweep {sweep} has no ranked run: nothing to export (`sweep collect {sweep}` says why)")
    return manifest, list(board.ranking), runs


def _hparam_value(value: Any) -> bool | float | int | str:
    """A swept value as a tracker takes it: a bool, number or text as it is, a list as collect's
    leaderboard writes it ("[32,64,1]"), anything else as its text."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float) and math.isfinite(value):
        return value
    if isinstance(value, list | tuple):
        return "[" + ",".join(str(v) for v in value) + "]"
    return str(value)


def _seconds(text: str | None) -> float | None:
    """An ISO 8601 time as seconds since the epoch (None when absent or not a time)."""
    if not text:
        return None
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.timestamp()


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_history(path: Path) -> dict[int, dict[str, float]]:
    """A run's history.csv (an execute node's file) as epoch -> column -> value.

    Read by records.runs.read_table (bounded, never through a symlink, a repeated column's first);
    only the first MAX_COLUMNS columns whose names both trackers take, only finite numbers (other
    cells are left out), only rows whose epoch is a whole number from 0 to MAX_EPOCH (a repeated
    epoch: its last row).

    Args:
        path: results/<sweep>/<run id>/history.csv.

    Returns:
        The epochs in order; empty when the file is absent, unusable or has no epoch column.
    """
    table = read_table(path, HISTORY_LIMIT)
    if not table or "epoch" not in table:
        return {}
    columns = [name for name in list(table)[:MAX_COLUMNS] if name != "epoch" and _NAME_RE.fullmatch(name)]
    out: dict[int, dict[str, float]] = {}
    for i, epoch in enumerate(table["epoch"]):
        if not math.isfinite(epoch) or epoch != int(epoch) or not 0 <= epoch <= MAX_EPOCH:
            continue
        out[int(epoch)] = {name: v for name in columns if math.isfinite(v := table[name][i])}
    return dict(sorted(out.items()))


# ------------------------------------------------------------------ TensorBoard

def export_tensorboard(sweep: str, root: Path, out: Path | None = None) -> TrackingExport:
    """Write a TensorBoard log folder of the sweep's ranked runs.

    One folder per ranked run, named by its run id, holds the run's per-epoch scalars (every
    numeric column of its history.csv, step = epoch), its test metrics as ``test/<metric>`` at
    its last epoch, and the HParams plugin's session (its swept hyperparameters; repeats of a
    configuration share a session group); the folder itself holds the plugin's experiment (the
    swept hyperparameters and the test metrics, ranking metrics first). No TensorFlow is imported.

    A previous export is replaced whole: the new one is built in a temporary folder beside it and
    swapped in, so curves are never doubled and a reader never sees half an export.

    Args:
        sweep: the sweep's name.
        root: the project folder.
        out: the log folder (default results/<sweep>/tensorboard). An existing one is replaced
            only if an export wrote it.

    Returns:
        The TrackingExport: the folder, the runs written, ``tensorboard --logdir <folder>``.

    Raises:
        ResultsError: no such sweep, an unreadable manifest, or no ranked run.
        InputError: `out` is a file, or a folder this export did not write (left as it is).
        LinkedPathError: `out` is a symbolic link.
    """
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
    from tensorboard.plugins.hparams import summary_v2 as hp

    _, ranking, runs = _ranked_runs(sweep, root)
    target = Path(out) if out is not None else SweepPaths(root.resolve()).results(sweep) / TENSORBOARD_DIR
    if target.exists() and not target.is_symlink():
        if not target.is_dir() or (any(target.iterdir()) and not (target / EXPORT_MARKER).is_file()):
            raise InputError(f"{target} is not a TensorBoard export of sweep's (no {EXPORT_MARKER}): "
                             "not replaced; choose another --out")
    now = time.time()
    hparams = [hp.HParam(name, _domain(hp, [r.hparams[name] for r in runs if name in r.hparams]))
               for name in dict.fromkeys(k for r in runs for k in r.hparams)]
    ranked = [m for m, _ in ranking]
    tests = sorted({k for r in runs for k in r.test}, key=lambda k: (k not in ranked, ranked.index(k)
                                                                    if k in ranked else 0, k))
    metrics = [hp.Metric(f"test/{k}", display_name=f"{k} (test)",
                         description=f"test {k}" + (f", ranked {dict(ranking)[k]}" if k in ranked else ""))
               for k in tests]

    def event(step: int, wall: float, summary: Any) -> Any:
        return event_pb2.Event(wall_time=wall, step=step, summary=summary)

    with atomic_folder(target) as tmp:
        (tmp / EXPORT_MARKER).write_text(f"sweep {sweep}: `sweep export tensorboard` replaces this folder\n")
        _write_events(tmp, event_pb2, now, [event(0, now, hp.hparams_config_pb(hparams, metrics, now))])
        for run in runs:
            start = run.started if run.started is not None else now
            events = [event(0, start, hp.hparams_pb(_fit(run.hparams, hparams), trial_id=run.config_id,
                                                    start_time_secs=start))]
            elapsed = 0.0
            for epoch, values in run.history.items():
                elapsed += values.get("seconds", 0.0) if values.get("seconds", 0.0) > 0 else 1.0
                summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=k, simple_value=v)
                                                     for k, v in values.items()])
                events.append(event(epoch, start + elapsed, summary))
            end = run.finished if run.finished is not None else start + elapsed
            if run.test:
                events.append(event(run.last_step, end, summary_pb2.Summary(value=[
                    summary_pb2.Summary.Value(tag=f"test/{k}", simple_value=v) for k, v in run.test.items()])))
            done = plugin_data_pb2.HParamsPluginData(session_end_info=plugin_data_pb2.SessionEndInfo(
                status=api_pb2.STATUS_SUCCESS, end_time_secs=end))
            events.append(event(run.last_step, end, summary_pb2.Summary(value=[summary_pb2.Summary.Value(
                tag=metadata.SESSION_END_INFO_TAG, metadata=metadata.create_summary_metadata(done),
                tensor=metadata.NULL_TENSOR)])))
            _write_events(tmp / run.run_id, event_pb2, start, events)
    return TrackingExport("tensorboard", str(target), len(runs),
                          f"tensorboard --logdir {shlex.quote(str(target))}")


def _domain(hp: Any, values: list) -> Any:
    """The HParams domain of one hyperparameter's values: the distinct values, all numbers,
    all booleans, or (mixed kinds) all as text; None without values."""
    if not values:
        return None
    if all(isinstance(v, bool) for v in values):
        return hp.Discrete(sorted(set(values)))
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return hp.Discrete(sorted({float(v) for v in values}))
    return hp.Discrete(sorted({str(v) for v in values}))


def _fit(values: dict[str, Any], hparams: list) -> dict[str, Any]:
    """A run's hyperparameters in the kind of their domain (text where the domain is text)."""
    kinds = {h.name: h.domain.dtype for h in hparams if h.domain is not None}
    return {k: (str(v) if kinds.get(k) is str else float(v) if kinds.get(k) is float else v)
            for k, v in values.items()}


def _write_events(folder: Path, event_pb2: Any, wall: float, events: Iterable[Any]) -> None:
    """One TensorBoard event file in `folder`: the file version record, then `events`."""
    from tensorboard.summary.writer.record_writer import RecordWriter

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"events.out.tfevents.{int(wall)}.sweep", "wb") as fh:
        writer = RecordWriter(fh)
        writer.write(event_pb2.Event(wall_time=wall, file_version="brain.Event:2").SerializeToString())
        for ev in events:
            writer.write(ev.SerializeToString())


# ------------------------------------------------------------------ MLflow

def export_mlflow(sweep: str, root: Path, store: str | None = None) -> TrackingExport:
    """Export the sweep's ranked runs to an MLflow tracking store.

    The experiment is named after the sweep. In it, a parent run named after the sweep (params:
    model, ranking) and a nested child run per ranked run (named by the run's name) with: its
    swept hyperparameters as params (a list as its text, "[32,64,1]"), every numeric column of
    its history.csv as a metric per epoch (step = epoch), its test metrics as ``test/<metric>``,
    the tags sweep.run_id, sweep.config_id, sweep.dataset_sha256, sweep.rank, sweep.sweep, and
    its model.keras and model.json as artifacts (under ``model/``).

    A re-export replaces the previous one: once the new runs are written, the runs an earlier
    export left in the experiment (tagged sweep.sweep = the sweep) are deleted (MLflow's
    deletion: hidden from the UI and searches; ``mlflow gc`` removes them for good), so no run
    is doubled. Should the export fail halfway, its own runs are deleted and the earlier ones stay.

    Args:
        sweep: the sweep's name.
        root: the project folder.
        store: the tracking URI (default ``sqlite:///<root>/results/<sweep>/mlflow.db``). The
            artifacts of a new experiment go to results/<sweep>/mlflow-artifacts unless the store
            is a tracking server (http, https), which keeps its own.

    Returns:
        The TrackingExport: the tracking URI, the child runs written, and
        ``mlflow ui --backend-store-uri <store>``.

    Raises:
        ResultsError: no such sweep, an unreadable manifest, or no ranked run.
        NotFoundError: the mlflow package is not installed.
    """
    manifest, ranking, runs = _ranked_runs(sweep, root)
    try:
        from mlflow.entities import Param, RunTag
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise NotFoundError("the MLflow export needs the mlflow package: pip install 'sweep[mlflow]'") from None
    results = SweepPaths(root.resolve()).results(sweep)
    uri = store or f"sqlite:///{results / MLFLOW_DB}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(sweep)
    if experiment is None:
        local = not uri.startswith(("http://", "https://", "databricks"))
        artifacts = (results / MLFLOW_ARTIFACTS).as_uri() if local else None
        experiment_id = client.create_experiment(sweep, artifact_location=artifacts)
    else:
        experiment_id = experiment.experiment_id
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment_id)
    earlier = [r.info.run_id for r in _search_all(client, experiment_id, f"tags.`{TAG_PREFIX}sweep` = '{sweep}'")]
    starts = [r.started for r in runs if r.started is not None]
    first = int((min(starts) if starts else time.time()) * 1000)  # the parent spans its children
    made: list[str] = []
    try:
        parent = client.create_run(experiment_id, start_time=first, run_name=sweep,
                                   tags={f"{TAG_PREFIX}sweep": sweep, f"{TAG_PREFIX}model": manifest.model})
        made.append(parent.info.run_id)
        parent_tags = [RunTag(f"{TAG_PREFIX}grid_sha256", manifest.grid_sha256 or "")]
        if manifest.dataset is not None:
            parent_tags.append(RunTag(f"{TAG_PREFIX}dataset_sha256", manifest.dataset.sha256))
        client.log_batch(parent.info.run_id, params=[
            Param("model", manifest.model), Param("ranking", ",".join(f"{m}:{d}" for m, d in ranking)),
            Param("runs", str(len(runs)))], tags=parent_tags)
        with tempfile.TemporaryDirectory(prefix=".mlflow-staging-", dir=results) as staging:
            for run in runs:
                made.append(_mlflow_child(client, experiment_id, parent.info.run_id, sweep, run, Path(staging)))
        client.set_terminated(parent.info.run_id, "FINISHED")
    except BaseException:
        for run_id in made:
            try:
                client.delete_run(run_id)
            except Exception:  # noqa: BLE001 - the export's own error is the one to report
                pass
        raise
    for run_id in earlier:
        client.delete_run(run_id)
    return TrackingExport("mlflow", uri, len(runs), f"mlflow ui --backend-store-uri {shlex.quote(uri)}")


def _search_all(client: Any, experiment_id: str, query: str) -> list:
    """Every active run of the experiment that `query` selects (all pages)."""
    found, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string=query, max_results=1000, page_token=token)
        found.extend(page)
        token = page.token
        if not token:
            return found


def _mlflow_child(client: Any, experiment_id: str, parent_id: str, sweep: str, run: _Run, staging: Path) -> str:
    """Log one ranked run as a child of the sweep's parent run; its MLflow run id."""
    from mlflow.entities import Metric, Param
    start = int((run.started if run.started is not None else time.time()) * 1000)
    tags = {"mlflow.parentRunId": parent_id, f"{TAG_PREFIX}sweep": sweep, f"{TAG_PREFIX}run_id": run.run_id,
            f"{TAG_PREFIX}config_id": run.config_id, f"{TAG_PREFIX}rank": str(run.rank)}
    if run.dataset_sha256:
        tags[f"{TAG_PREFIX}dataset_sha256"] = run.dataset_sha256
    child = client.create_run(experiment_id, start_time=start, run_name=run.name[:250], tags=tags)
    child_id = child.info.run_id
    metrics, elapsed = [], 0.0
    for epoch, values in run.history.items():
        elapsed += values.get("seconds", 0.0) if values.get("seconds", 0.0) > 0 else 1.0
        stamp = start + int(elapsed * 1000)
        metrics.extend(Metric(k, v, stamp, epoch) for k, v in values.items())
    end = int(run.finished * 1000) if run.finished is not None else start + int(elapsed * 1000)
    metrics.extend(Metric(f"test/{k}", v, end, run.last_step) for k, v in run.test.items())
    params = [Param(k, v) for k, v in run.params.items()]
    for i in range(0, len(params), _BATCH_PARAMS):
        client.log_batch(child_id, params=params[i:i + _BATCH_PARAMS])
    for i in range(0, len(metrics), _BATCH_METRICS):
        client.log_batch(child_id, metrics=metrics[i:i + _BATCH_METRICS])
    folder = staging / run.run_id
    folder.mkdir()
    for name, limit in ((MODEL, MODEL_LIMIT), (MODEL_INFO, RECORD_LIMIT)):
        try:
            copy_file(run.folder / name, folder / name, limit)
        except (FileNotFoundError, RecordError):
            continue  # absent, a symlink, not a regular file or too large: not exported
        client.log_artifact(child_id, str(folder / name), artifact_path="model")
    shutil.rmtree(folder, ignore_errors=True)
    client.set_terminated(child_id, "FINISHED", end_time=max(end, start))
    return child_id
