"""The execute side of a chain's step jobs: the clusterizer's dataset simulated with the peak
leader's peaks, or the evaluation of both leaders, run on an execute node by the same wrapper
and entry point as a training job (`python -m sweep.job config.yaml`, with a config.yaml whose
`step` names the step: sweep.job's __main__ hands it here).

Everything the step needs travels with it: config.yaml, the leaders (`.keras` with their
training records) and sweep's code. Everything it makes is written flat in its scratch folder,
which HTCondor transfers back: `dataset.npz` (simulate), `evaluation.json` and its PNGs
(evaluate), and always `step.json`, which says how it ended.

Exit status: 0 done; 1 the step failed; 2 an unusable configuration or input (step.json says which).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import InputError, SweepError
from ..core.names import CHAIN_STEPS, STEP_DATASET
from ..core.pipeline import AUTO
from ..fsutil import file_digest
from ..records.evaluation import EVALUATION
from ..records.runinfo import Threads
from ..records.step import StepRecord, write_step

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def step_main(argv: list[str]) -> int | None:
    """`python -m sweep.job config.yaml` when config.yaml is a step's (it names a `step`): run it
    in the current folder and return its exit status; None for a run's config (or one the
    training job reports as unusable)."""
    if not argv or argv[0].startswith("-"):
        return None
    try:
        config = yaml.safe_load(Path(argv[0]).read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return None
    if not isinstance(config, dict) or "step" not in config:
        return None
    return run_step(config, Path.cwd())


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def run_step(config: dict[str, Any], out_dir: Path) -> int:
    """Run the step `config` describes in `out_dir` (the scratch folder, which holds its inputs).

    Args:
        config: the step's config.yaml: `step` (select | simulate | evaluate), `chain`,
            `inputs_hash`, `peak_model` (select: `peak_models`; evaluate: also `cluster_model`):
            file names in `out_dir`, and the step's settings (`select`, `simulate` or `evaluate`).
        out_dir: where it reads its inputs and writes its outputs and step.json.

    Returns:
        The exit status (step.json records it and why).
    """
    step = config.get("step")
    record = StepRecord(step=_text(step), chain=_text(config.get("chain")),
                        inputs_hash=_text(config.get("inputs_hash")), status="running", started=_now(),
                        host=socket.gethostname(), pid=os.getpid())
    t_start = time.perf_counter()

    def finish(status: str, code: int, error: str | None = None) -> int:
        from .runner import software_versions

        record.status, record.exit_code, record.finished = status, code, _now()
        record.seconds, record.software = round(time.perf_counter() - t_start, 1), software_versions()
        if error:
            record.error = error
            print(f"sweep step {step}: {error}", file=sys.stderr)
        write_step(out_dir, record)
        return code

    if step not in CHAIN_STEPS:
        return finish("failed", EXIT_BAD_INPUT, f"unknown step {str(step)[:40]!r} (expected one of {CHAIN_STEPS})")
    from . import resources

    cpus, source = resources.allocated_cpus(config.get("request_cpus"))
    resources.apply_before_import(*resources.thread_settings(cpus))
    record.threads = Threads(cpus=cpus, cpus_source=source)
    print(f"sweep step {step} of chain {config.get('chain')}: {cpus} CPU(s) from {source}", flush=True)
    try:
        if step == "select":
            _select(config, out_dir, record)
        elif step == "simulate":
            _simulate(config, out_dir, record)
        else:
            _evaluate(config, out_dir, record)
    except (InputError, SweepError, ValueError, KeyError, OSError) as exc:
        return finish("failed", EXIT_BAD_INPUT, f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - any other failure: recorded with its traceback
        traceback.print_exc()
        return finish("failed", EXIT_FAILED, f"{type(exc).__name__}: {exc}")
    return finish("done", EXIT_OK)


def _model(config: dict, key: str, out_dir: Path) -> Path:
    name = str(config[key])
    if Path(name).name != name:  # a file of the scratch folder, never a path elsewhere
        raise InputError(f"{key} must be a file name in the job's folder, got {name[:80]!r}")
    path = out_dir / name
    if not path.is_file():
        raise InputError(f"{key} {name} was not transferred with the job")
    return path


def _text(value: Any) -> str | None:
    """A config value as the record keeps it: a string, or None."""
    return None if value is None else str(value)


def _select(config: dict, out_dir: Path, record: StepRecord) -> None:
    """Choose the peak leader among the shortlisted models (`peak_models`, best first) by the π/K
    separation of their detections on calibration tracks; `record` gets the choice, each model's
    separation and the chosen one's working point."""
    from ..physics.datasets import WINDOW_LENGTH
    from ..physics.evaluate import choose_peak_leader
    from ..physics.scorers import load_model_fn
    from ..physics.simulate import SimulationParams

    names = config["peak_models"]
    if not isinstance(names, list) or not names:
        raise InputError(f"peak_models must be a list of the shortlisted models' file names, got {str(names)[:80]!r}")
    s = config["select"]
    cal = s["calibration"]
    scorers = [load_model_fn(_model({"peak_model": n}, "peak_model", out_dir), input_shape=(WINDOW_LENGTH, 1))
               for n in names]
    choice = choose_peak_leader(SimulationParams.from_dict(s["params"]), scorers, momentum_gev=float(cal["momentum"]),
                                cells=int(cal["cells"]), n_tracks=int(cal["tracks"]), seed=int(s["seed"]))
    seps = [None if not math.isfinite(v) else round(float(v), 4) for v in choice["separations"]]
    record.chosen, record.separations, record.threshold = int(choice["chosen"]), seps, float(choice["threshold"])
    record.notes = [f"peak leader: shortlisted model {choice['chosen'] + 1} of {len(names)}, chosen on "
                    f"{int(cal['tracks'])} pions and {int(cal['tracks'])} kaons of {float(cal['momentum']):g} GeV/c x "
                    f"{int(cal['cells'])} cells by their separation ("
                    + ", ".join("none" if v is None else f"{v:.2f}" for v in seps)
                    + f" sigma); working point {choice['threshold']:g}, best count {choice['option']}"]
    record.python = platform.python_version()
    print(record.notes[0], flush=True)


def _simulate(config: dict, out_dir: Path, record: StepRecord) -> None:
    """Simulate the clusterizer's dataset into `out_dir`; `record` gets what was made."""
    from ..physics.datasets import simulate_to_file

    s = config["simulate"]
    path = out_dir / STEP_DATASET
    model = _model(config, "peak_model", out_dir)
    threshold, notes = s["threshold"], []
    if threshold == AUTO:  # the working point, chosen on calibration tracks of its own
        from ..physics.datasets import WINDOW_LENGTH
        from ..physics.evaluate import choose_working_point
        from ..physics.scorers import load_model_fn
        from ..physics.simulate import SimulationParams

        cal = s["calibration"]
        scorer = load_model_fn(model, input_shape=(WINDOW_LENGTH, 1))
        wp = choose_working_point(SimulationParams.from_dict(s["params"]), scorer,
                                  momentum_gev=float(cal["momentum"]), cells=int(cal["cells"]),
                                  n_tracks=int(cal["tracks"]), seed=int(s["seed"]))
        threshold = wp["threshold"]
        notes.append(f"working point {threshold:g}, chosen on {wp['tracks']} pions and {wp['tracks']} kaons of "
                     f"{wp['momentum_gev']:g} GeV/c x {wp['cells']} cells by their separation ("
                     + ", ".join(f"{t}: {v:.2f}" for t, v in wp["separation_by_threshold"].items())
                     + f" sigma; best count {wp['option']})")
        print(notes[-1], flush=True)
    summary = simulate_to_file(path, s["waveforms"], s["seed"], s["params"], peak_model=model,
                               peak_threshold=float(threshold))
    for note in summary.get("notes", []):
        print(note, flush=True)
    record.output, record.sha256, record.waveforms = (STEP_DATASET, file_digest(path)["sha256"],
                                                      int(summary["n_waveforms"]))
    record.mean_peaks, record.mean_clusters = _number(summary.get("mean_peaks")), _number(summary.get("mean_clusters"))
    record.notes = notes + [str(n) for n in summary.get("notes", [])]
    record.threshold, record.python = float(threshold), platform.python_version()


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _evaluate(config: dict, out_dir: Path, record: StepRecord) -> None:
    """Evaluate both leaders into `out_dir`; `record` gets what was made."""
    from ..physics.evaluate import evaluate

    ev = config["evaluate"]
    result = evaluate(_model(config, "peak_model", out_dir), _model(config, "cluster_model", out_dir),
                      out_dir=out_dir, n_waveforms=ev["waveforms"], seed=ev["seed"], params=config["params"],
                      lstm_threshold=ev["threshold"], n_tracks=ev["tracks"], cells=ev["cells"],
                      momentum_gev=float(ev["momentum"]), separation_momenta=tuple(ev["separation_momenta"]),
                      separation_tracks=ev["separation_tracks"], log=lambda line: print(line, flush=True))
    files = sorted(p.name for p in out_dir.iterdir() if p.name == EVALUATION or p.suffix == ".png")
    record.output, record.summary = files, result["summary"]
    record.warnings, record.evaluate_seconds = [str(w) for w in result.get("warnings", [])], round(result["seconds"], 1)
