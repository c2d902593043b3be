"""A pipeline file: the two-step chain (peak finder → its peaks → clusterizer → evaluation) as
one validated spec. Pure: reads YAML, checks shapes and paths, and says what each stage takes;
the stages themselves (sweep.chain) run grids, the simulation and the evaluation.

    chain: idea                  # names results/<chain>/ (its record, evaluation, report)
    peaks:
      grid: grids/chain-lstm.yaml   # a peak-finder grid (model lstm), or a search grid
      leader: f1                    # the metric that picks the leader (default: the grid's ranking), or
                                    # separation: the best π/K separation on calibration tracks among
      shortlist: 3                  # the best 3 runs by natural_f1 (with leader: separation only)
    simulate:                    # the clusterizer's dataset, its peaks found by the peak leader
      waveforms: 3000
      seed: 11
      threshold: auto               # the leader's working point: auto (chosen on π/K calibration
                                    # tracks) or a score threshold in (0, 1]
      calibration_tracks: 100       # per species, for auto (at evaluate's momentum and cells)
      params: {}                    # simulation parameters (default: the peak grid's)
      path: data/idea-cnn.npz       # default data/<chain>-cnn.npz
    clusters:
      grid: grids/chain-cnn.yaml    # a clusterizer grid (model cnn): its data is the simulation's
      leader: mae
    evaluate:                    # sweep evaluate with both leaders, on fresh held-out waveforms
      waveforms: 2000
      seed: 20241
      tracks: 100
      cells: 100
      momentum: 10
      separation_momenta: [3, 10]
      separation_tracks: 50
      threshold: simulate          # the CNN's LSTM threshold: the one its data was made at
      request_cpus: 8              # the evaluation's job (default: the peak grid's request_cpus)
      runtime: 4h                  # the evaluation's job runs at most this long (default: the longest
                                   # runtime of the chain's grids; 1,000 tracks per point take ~1 h of 2 cores)

Errors name the file, line and key as a grid's do (a GridError).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import schema, units, yamlpos
from .errors import GridError, GridIssue
from .grid import load_grid
from .gridspec import GridChecks
from .validation import Validator, load_yaml, read_text, show  # read and reported as a grid file is

PIPELINE_KEYS = ("chain", "description", "peaks", "simulate", "clusters", "evaluate")
STAGE_KEYS = ("grid", "leader")
PEAKS_KEYS = (*STAGE_KEYS, "shortlist")
#: peaks.leader: the peak leader is the shortlisted run whose peaks separate π from K best on the
#: calibration tracks (sweep.physics.evaluate.choose_peak_leader), its working point chosen with it
SEPARATION = "separation"
#: what the shortlist of peaks.leader: separation is ranked by (what a peak finder meets in use)
SHORTLIST_METRIC = "natural_f1"
DEFAULT_SHORTLIST = 3
MAX_SHORTLIST = 10
SIMULATE_KEYS = ("waveforms", "seed", "threshold", "calibration_tracks", "params", "path")
#: simulate.threshold: the working point is chosen on π/K calibration tracks
#: (sweep.physics.evaluate.choose_working_point)
AUTO = "auto"
#: evaluate.threshold: the threshold the simulate stage made the clusterizer's data at
FROM_SIMULATE = "simulate"
EVALUATE_KEYS = ("waveforms", "seed", "tracks", "cells", "momentum", "separation_momenta", "separation_tracks",
                 "threshold", "request_cpus", "runtime")
#: The stages, in the order they run; each one's inputs are made by the ones before it.
STAGES = ("peaks", "simulate", "clusters", "evaluate")
EVALUATE_DEFAULTS = {"waveforms": 1000, "seed": 20241, "tracks": 100, "cells": 100, "momentum": 10.0,
                     "separation_momenta": [3.0, 10.0], "separation_tracks": 50, "threshold": "simulate"}
MAX_TRACKS = 100_000


def _duration(value: Any) -> str | None:
    """A check: a duration as a grid's runtime is written (2h, 90m, seconds), at most 30 days."""
    try:
        seconds = units.parse_duration_s(value)
    except ValueError:
        return units.DURATION_HELP
    return None if seconds <= schema.MAX_RUNTIME_S else f"{units.DURATION_HELP}, at most 30 days"


@dataclass(frozen=True)
class GridStage:
    """A grid (or search grid) stage and how its leader is chosen."""

    grid: Path  # resolved, inside the project
    grid_text: str  # as written in the pipeline file (for messages)
    leader: str | None  # a metric of the stage's model, SEPARATION (peaks); None: the grid's own ranking
    shortlist: int | None = None  # leader SEPARATION: how many runs (the best by SHORTLIST_METRIC) compete


@dataclass(frozen=True)
class PipelineSpec:
    """A validated pipeline file: the chain's name, its two grid stages, the simulation between
    them and the evaluation after them (paths resolved inside the project)."""

    name: str
    file: str
    root: Path
    peaks: GridStage
    clusters: GridStage
    simulate: dict[str, Any]  # waveforms, seed, threshold, params (None: the peak grid's), path (resolved)
    evaluate: dict[str, Any]  # EVALUATE_KEYS, defaults filled in
    description: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)  # the document, for the record's hash


def looks_like_pipeline(path: str | Path) -> bool:
    """Whether a YAML file is a pipeline (a top-level `chain:` key) rather than a grid; False when
    it cannot be read (the grid validator then says why)."""
    import re

    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(1 << 16)
    except OSError:
        return False
    return re.search(r"(?m)^chain[ \t]*:", head) is not None


def load_pipeline(path: str | Path, root: str | Path | None = None, *,
                  checks: GridChecks | None = None) -> PipelineSpec:
    """Read and validate a pipeline file.

    Args:
        path: the pipeline file.
        root: the project folder (relative paths resolve against it; default the current folder).
        checks: the stages' checks (simulation parameters: the physics').

    Returns:
        The validated pipeline.

    Raises:
        GridError: every problem found, each with file, line, column and key.
    """
    path = Path(path)
    text = read_text(path, "pipeline file")
    located = load_yaml(text, str(path), "pipeline file")
    return _PipelineValidator(str(path), located, Path(root) if root else Path.cwd(), checks or GridChecks()).spec()


def describe_pipeline(spec: PipelineSpec, checks: GridChecks | None = None) -> str:
    """One line for `sweep validate`: the chain's stages, their sweeps and sizes.

    Raises:
        GridError: a stage's grid became invalid since the pipeline was loaded.
    """
    from .expand import expand

    parts = []
    for stage in (spec.peaks, spec.clusters):
        grid = load_grid(stage.grid, spec.root, checks=checks)
        size = (f"searches {grid.search.trials} trials" if grid.search is not None
                else f"{len({r.config_id for r in expand(grid)})} configurations")
        leader = (f"π/K separation among the best {stage.shortlist} by {SHORTLIST_METRIC}" if stage.shortlist
                  else stage.leader or grid.ranking[0][0])
        parts.append(f"{stage.grid_text} (sweep {grid.name}, {grid.model}, {size}, leader by {leader})")
    return (f"{spec.file}: valid; chain '{spec.name}': peaks {parts[0]} -> simulate {spec.simulate['waveforms']} "
            f"waveforms with the peak leader -> clusters {parts[1]} -> evaluate {spec.evaluate['waveforms']} "
            f"waveforms, {spec.evaluate['tracks']} tracks (`sweep chain {spec.file}`)")


class _PipelineValidator(Validator):
    def __init__(self, file: str, located: yamlpos.Located, root: Path, checks: GridChecks):
        super().__init__(file, located, root)
        self.checks = checks

    def spec(self) -> PipelineSpec:
        self.duplicate_keys()
        doc = self.located.data
        if not isinstance(doc, dict):
            raise GridError([GridIssue(self.file, 1, 1, "", "expected a pipeline: a mapping with chain, peaks, "
                                       f"simulate, clusters and evaluate, got {show(doc)}")])
        self.mapping((), doc, PIPELINE_KEYS)
        for key in ("chain", "peaks", "simulate", "clusters"):
            if key not in doc:
                self.error((), f"missing required key '{key}'")
        name = doc.get("chain")
        if "chain" in doc and not (isinstance(name, str) and schema.SWEEP_NAME_RE.fullmatch(name)):
            self.error(("chain",), "expected a chain name of letters, digits, '_', '.', '-' (at most 64, starting "
                       f"with a letter or digit), got {show(name)}")
            name = None
        description = doc.get("description", "")
        if not isinstance(description, str):
            self.error(("description",), f"expected text, got {show(description)}")
        self.sweeps: dict[str, str] = {}
        peaks = self._stage("peaks", doc.get("peaks"), "lstm")
        clusters = self._stage("clusters", doc.get("clusters"), "cnn")
        if name and self.sweeps.get("peaks") in (name, f"{name}-clusters"):
            self.error(("chain",), f"the chain and its peak-finder sweep are both named '{self.sweeps['peaks']}': give "
                       "the chain another name (results/<chain>/ holds the chain's own files)")
        simulate = self._simulate(doc.get("simulate"), name)
        if peaks is not None and peaks.shortlist and simulate["threshold"] != AUTO:
            self.error(("simulate", "threshold"), f"peaks.leader: {SEPARATION} chooses the leader and its working "
                       f"point together on calibration tracks: expected '{AUTO}', got {show(simulate['threshold'])}")
        evaluate = self._evaluate(doc.get("evaluate"))
        if self.issues:
            raise GridError(self.issues)
        # a missing or invalid chain name or stage is an issue, raised above
        assert name is not None and peaks is not None and clusters is not None
        return PipelineSpec(name=name, file=self.file, root=self.root, peaks=peaks, clusters=clusters,
                            simulate=simulate, evaluate=evaluate, description=description or "", raw=doc)

    def _stage(self, key: str, value: Any, model: str) -> GridStage | None:
        if value is None:
            if key in self.located.data:  # `peaks:` with nothing after it (a missing key is reported apart)
                self.error((key,), f"expected a mapping with grid (the {model} grid or search grid of this stage) "
                           "and optionally leader, got nothing")
            return None
        stage = self.mapping((key,), value, PEAKS_KEYS if model == "lstm" else STAGE_KEYS)
        if "grid" not in stage:
            self.error((key,), f"missing required key 'grid' (the {model} grid or search grid of this stage)")
            return None
        text = stage["grid"]
        if not isinstance(text, str) or not text:
            self.error((key, "grid"), f"expected the path of a grid file, got {show(text)}")
            return None
        grid = self.project_path((key, "grid"), text, "grid", (), None)
        if grid is not None and not grid.is_file():
            self.error((key, "grid"), f"no grid file {show(text)} ({grid})")
            grid = None
        if grid is not None:  # the grid itself, with its own positions
            try:
                spec = load_grid(grid, self.root, checks=self.checks)
            except GridError as exc:
                self.issues.extend(exc.issues)
                grid = None
            else:
                if spec.model != model:
                    self.error((key, "grid"), f"{show(text)} is a {spec.model} grid; the {key} stage trains the "
                               f"{'peak finder' if model == 'lstm' else 'clusterizer'} ({model})")
                    grid = None
                else:
                    self.sweeps[key] = spec.name
        leader = stage.get("leader")
        metrics = schema.metrics_for(model)
        separation = model == "lstm" and leader == SEPARATION
        if leader is not None and not separation and not (isinstance(leader, str) and leader in metrics):
            extra = f", or '{SEPARATION}'" if model == "lstm" else ""
            self.error((key, "leader"), f"expected a metric the {model} jobs write ({', '.join(metrics)}){extra}, got "
                       f"{show(leader)}")
            leader = None
        shortlist = DEFAULT_SHORTLIST if separation else None
        if "shortlist" in stage:
            if not separation:
                said = "not given" if stage.get("leader") is None else show(stage.get("leader"))
                self.error((key, "shortlist"), f"a shortlist is what leader: {SEPARATION} chooses among; "
                           f"{key}.leader is {said}")
            elif self.check((key, "shortlist"), stage["shortlist"], schema.int_at_least(2, MAX_SHORTLIST)):
                shortlist = stage["shortlist"]
        return GridStage(grid=grid, grid_text=text, leader=leader, shortlist=shortlist) if grid is not None else None

    def _simulate(self, value: Any, name: str | None) -> dict[str, Any]:
        sim = self.mapping(("simulate",), value, SIMULATE_KEYS)
        out: dict[str, Any] = {"params": None, "threshold": AUTO, "calibration_tracks": 100}
        if "waveforms" not in sim and value is not None:
            self.error(("simulate",), "missing required key 'waveforms' (how many waveforms the clusterizer's "
                       "dataset simulates)")
        for key, check in (("waveforms", schema.int_at_least(10, schema.MAX_WAVEFORMS)),
                           ("seed", schema.int_at_least(0, schema.MAX_SEED))):
            if key in sim and self.check(("simulate", key), sim[key], check):
                out[key] = sim[key]
        out.setdefault("seed", 1)
        if "threshold" in sim and self.check(("simulate", "threshold"), sim["threshold"], schema.number_or(
                AUTO, schema.number_in(0, 1, low_open=True, high_open=False))):
            out["threshold"] = AUTO if sim["threshold"] == AUTO else float(sim["threshold"])
        if "calibration_tracks" in sim and self.check(("simulate", "calibration_tracks"), sim["calibration_tracks"],
                                                      schema.int_at_least(2, MAX_TRACKS)):
            out["calibration_tracks"] = sim["calibration_tracks"]
        if "params" in sim:
            params = sim["params"]
            if not isinstance(params, dict):
                self.error(("simulate", "params"), f"expected a mapping of simulation parameters, got {show(params)}")
            elif self.checks.simulation is not None:
                try:
                    self.checks.simulation(params)
                    out["params"] = params
                except ValueError as exc:
                    self.error(("simulate", "params"), str(exc))
            else:
                out["params"] = params
        text = sim.get("path", f"data/{name or 'chain'}-cnn.npz")
        if not isinstance(text, str) or not text.endswith(".npz"):
            self.error(("simulate", "path"), f"expected the path of an .npz dataset file, got {show(text)}")
        else:
            out["path"] = self.project_path(("simulate", "path"), text, "dataset", (), None)
            out["path_text"] = text
        return out

    def _evaluate(self, value: Any) -> dict[str, Any]:
        ev = self.mapping(("evaluate",), value, EVALUATE_KEYS)
        out = dict(EVALUATE_DEFAULTS)
        checks = {"waveforms": schema.int_at_least(10, schema.MAX_WAVEFORMS),
                  "seed": schema.int_at_least(0, schema.MAX_SEED),
                  "tracks": schema.int_at_least(0, MAX_TRACKS), "cells": schema.int_at_least(1, 10_000),
                  "momentum": schema.number_in(0, 1e6, low_open=True),
                  "separation_tracks": schema.int_at_least(0, MAX_TRACKS),
                  "threshold": schema.number_or(FROM_SIMULATE, schema.number_in(0, 1, low_open=True,
                                                                                 high_open=False)),
                  "separation_momenta": schema.list_of(schema.number_in(0, 1e6, low_open=True)),
                  "request_cpus": schema.int_at_least(1, 1024), "runtime": _duration}
        for key, check in checks.items():
            if key in ev and self.check(("evaluate", key), ev[key], check):
                out[key] = ev[key]
        if "runtime" in out:  # kept in seconds: what the step job's allowed_execute_duration takes
            out["runtime"] = units.parse_duration_s(out["runtime"])
        if out["tracks"] == 1 or out["separation_tracks"] == 1:
            self.error(("evaluate",), "tracks and separation_tracks must be 0 (skip) or at least 2 (a spread)")
        return out
