"""Synthetic finished sweeps for tests and benchmarks: the manifest `sweep submit` writes
(jobs/<sweep>/sweep.json, the shared config.yaml) and the files each job leaves in
results/<sweep>/<run-id>/ (metrics.json, history.csv, roc.csv, run.json, model.keras), with
metrics driven by chosen hyperparameters. No TensorFlow, no HTCondor.

Not part of the package: the tests import it as ``tests.synthetic`` (or ``synthetic``), the
benchmarks after putting the checkout on sys.path.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sweep.core.states import RunState
from sweep.job.training import CLASSIFIER_HISTORY, REGRESSOR_HISTORY

DEFAULT_AXES = {"optimizer": ["adam", "sgd", "rmsprop"], "learning_rate": [0.0001, 0.001, 0.01],
                "batch_size": [64, 150, 256], "topology": [[32, 64, 1], [96, 128, 1]]}
LR_EFFECT = {0.0001: 0.70, 0.001: 0.85, 0.01: 0.95}
OPT_EFFECT = {"adam": 0.01, "sgd": -0.01, "rmsprop": 0.0}


def default_score(swept: dict[str, Any], rng: random.Random) -> float:
    """f1 driven by the learning rate (strongly), the optimizer (weakly), noise; batch size and
    topology do nothing."""
    lr = swept.get("learning_rate", 0.001)
    base = LR_EFFECT.get(lr, 0.8 + 0.05 * math.log10(lr / 0.001))
    return min(0.999, base + OPT_EFFECT.get(swept.get("optimizer"), 0.0) + rng.gauss(0, 0.004))


def _run_id(sweep: str, i: int) -> str:
    return hashlib.sha256(f"{sweep}/{i}".encode()).hexdigest()[:12]


def make_sweep(root: Path, sweep: str = "syn", model: str = "lstm", axes: dict[str, list] | None = None,
               repeats: int = 1, limit: int | None = None, score: Callable | None = None,
               corrupt: int = 1, missing: int = 1, failed: int = 0, epochs: int = 8, seed: int = 0,
               model_bytes: int = 2048, roc_points: int = 50) -> dict[str, Any]:
    """Write a finished sweep under root. The last `missing` runs have no folder, the `corrupt`
    before them an unreadable metrics.json, the `failed` before those a failed run.json.
    Returns the manifest (with "truth": run_id -> the score written)."""
    axes = DEFAULT_AXES if axes is None else axes
    score = score or default_score
    rng = random.Random(seed)
    names = list(axes)
    points = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(axes[n] for n in names))]
    if limit is not None:
        points = (points * (limit // max(1, len(points)) + 1))[:limit] if limit > len(points) else points[:limit]
    runs = []
    for i, swept in enumerate(points):
        config_id = _run_id(sweep, i)
        for k in range(repeats):
            run_id = config_id if k == 0 else f"{config_id}-r{k}"
            name = "_".join(f"{n}={_short(swept[n])}" for n in names) + (f"-r{k}" if k else "")
            runs.append({"run_id": run_id, "config_id": config_id, "name": name, "repeat": k,
                         "seed": seed * 1000 + i * 10 + k, "swept": swept})
    ranking = [["f1", "max"], ["auc", "max"], ["eff_purity", "max"]] if model == "lstm" else [["mae", "min"]]
    manifest = {"sweep": sweep, "model": model, "description": "synthetic", "grid": f"grids/{sweep}.yaml",
                "grid_sha256": "0" * 64, "rendered_at": "2026-01-01T00:00:00+00:00", "sweep_version": "test",
                "ranking": ranking, "swept": names,
                "resources": {"request_cpus": 2, "request_memory_mb": 4096, "request_disk_mb": 1024,
                              "runtime_s": 7200},
                "runs": runs, "submissions": [{"at": "2026-01-01T00:00:00+00:00", "backend": "local",
                                               "runs": [r["run_id"] for r in runs]}],
                "learned_memory_mb": {}}
    jobs = root / "jobs" / sweep
    results = root / "results" / sweep
    jobs.mkdir(parents=True, exist_ok=True)
    results.mkdir(parents=True, exist_ok=True)
    (jobs / "sweep.json").write_text(json.dumps(manifest, indent=2))
    n = len(runs)
    missing_ids = {r["run_id"] for r in runs[n - missing:]} if missing else set()
    corrupt_ids = {r["run_id"] for r in runs[n - missing - corrupt:n - missing]} if corrupt else set()
    failed_ids = ({r["run_id"] for r in runs[n - missing - corrupt - failed:n - missing - corrupt]}
                  if failed else set())
    payload = bytes(rng.getrandbits(8) for _ in range(min(model_bytes, 4096))) * max(1, model_bytes // 4096)
    truth = {}
    # what every run shares (sweep.core.render's config.yaml, named by its digest); each run's own
    # part is its manifest entry
    shared = f"sweep: {sweep}\nmodel: {model}\nparams: {{}}\n"
    shared_path = jobs / "configs" / hashlib.sha256(shared.encode()).hexdigest()[:16] / "config.yaml"
    shared_path.parent.mkdir(parents=True)
    shared_path.write_text(shared)
    for r in runs:
        if r["run_id"] in missing_ids:
            continue
        out = results / r["run_id"]
        out.mkdir(exist_ok=True)
        value = score(r["swept"], rng)
        truth[r["run_id"]] = value
        _write_run(out, r, model, value, epochs, rng, payload, roc_points,
                   corrupt=r["run_id"] in corrupt_ids, failed=r["run_id"] in failed_ids)
    manifest["truth"] = truth
    return manifest


def _short(value: Any) -> str:
    return "x".join(map(str, value)) if isinstance(value, list) else str(value)


def _write_run(out: Path, r: dict, model: str, value: float, epochs: int, rng: random.Random, payload: bytes,
               roc_points: int, corrupt: bool, failed: bool) -> None:
    duration = 60 + 240 * rng.random()
    info = {"status": "failed" if failed else "ok", "started": "2026-01-01T00:00:00+00:00", "host": "node01",
            "pid": 1, "run_id": r["run_id"], "config_id": r["config_id"], "sweep": "syn", "seed": r["seed"],
            "model": model, "threads": {"cpus": 2, "cpus_source": "test", "intra_op": 2, "inter_op": 1},
            "exit_code": 1 if failed else 0, "finished": "2026-01-01T00:05:00+00:00", "duration_s": duration}
    if not failed:  # where the job's time went (sweep/job/phases.py), 2 CPUs training at 1.8
        fixed = {"startup": 4.0, "data": 1.0, "model": 0.5, "checkpoints": 1.0, "evaluation": 2.0, "output": 0.5}
        info["phases"] = {name: {"wall_s": wall, "cpu_s": wall} for name, wall in fixed.items()}
        training = duration - sum(fixed.values()) - 1.0
        info["phases"]["training"] = {"wall_s": training, "cpu_s": 1.8 * training}
    if failed:
        info["error"] = "RuntimeError: synthetic failure"
        (out / "stderr.txt").write_text("Traceback (most recent call last):\nRuntimeError: synthetic failure\n")
    (out / "run.json").write_text(json.dumps(info))
    if failed:
        return
    best = max(1, epochs - 2)
    if model == "lstm":
        p = min(0.999, value + 0.01)
        rec = min(0.999, value * value / p) if p else 0.0
        auc = min(0.9999, 0.5 + value / 2 + 0.02)
        test = {"precision": p, "recall": rec, "f1": value, "accuracy": value + 0.01, "auc": auc,
                "eff_purity": p * rec, "tp": 900, "fp": 50, "fn": 60, "tn": 990}
        rows = []
        for e in range(1, epochs + 1):
            g = 1 - math.exp(-e / 2)
            tr = {"loss": 0.7 - 0.4 * g, "accuracy": 0.5 + (value - 0.45) * g, "precision": 0.5 + (p - 0.45) * g,
                  "recall": 0.5 + (rec - 0.45) * g}
            tr["f1"] = 2 * tr["precision"] * tr["recall"] / (tr["precision"] + tr["recall"])
            tr["eff_purity"] = tr["precision"] * tr["recall"]
            row = {"epoch": e, **tr, **{f"val_{k}": v - 0.01 for k, v in tr.items()},
                   "val_auc": 0.5 + (auc - 0.5) * g, "seconds": 3.2}
            row["val_loss"] = tr["loss"] + 0.02
            rows.append(row)
        columns = CLASSIFIER_HISTORY
        # a concave ROC curve with the wanted area: tpr = fpr^a has AUC 1/(1+a)
        a = (1 - auc) / auc
        pts = [i / (roc_points - 1) for i in range(roc_points)]
        (out / "roc.csv").write_text("fpr,tpr,threshold\n" + "".join(
            f"{f:.6g},{f ** a:.6g},{1 - f:.6g}\n" for f in pts))
    else:
        test = {"mse": value * value * 1.3, "mae": value, "bias": value / 10, "abs_bias": value / 10,
                "rel_bias": value / 300, "resolution": value * 1.2, "rel_resolution": value / 25,
                "mean_true": 30.0, "mean_pred": 30.0 + value / 10}
        rows = []
        for e in range(1, epochs + 1):
            g = math.exp(-e / 3)
            m = value * (1 + 2 * g)
            rows.append({"epoch": e, "loss": m * m, "mae": m, "val_loss": m * m * 1.1, "val_mse": m * m * 1.1,
                         "val_mae": m * 1.05, "val_bias": m / 10, "val_rel_bias": m / 300, "val_resolution": m,
                         "val_rel_resolution": m / 25, "seconds": 1.5})
        columns = REGRESSOR_HISTORY
    (out / "history.csv").write_text(",".join(columns) + "\n" + "".join(
        ",".join(f"{row.get(c, ''):.6g}" if isinstance(row.get(c), float) else str(row.get(c, "")) for c in columns)
        + "\n" for row in rows))
    metrics = {"run_id": r["run_id"], "config_id": r["config_id"], "model": model, "test": test,
               "validation": {}, "best_epoch": best, "epochs_run": epochs, "stopped_early": False,
               "threshold": 0.5 if model == "lstm" else None, "n_train": 7000, "n_val": 3000, "n_test": 2500,
               "n_params": 6531, "train_seconds": duration - 10, "train_samples_per_second": 20000.0}
    (out / "metrics.json").write_text("{ not json" if corrupt else json.dumps(metrics))
    (out / "model.keras").write_bytes(payload)
    (out / "stdout.txt").write_text(f"sweep.job {r['run_id']}: done\n")


def fake_attempts(manifest: dict, seed: int = 0) -> dict:
    """Per run, one finished HTCondor attempt with used/requested resources (what collect reads
    from the job event log), for runs that have a result."""
    from sweep.records.events import JobRecord

    rng = random.Random(seed)
    out = {}
    for i, r in enumerate(manifest["runs"]):
        if r["run_id"] not in manifest.get("truth", {}):
            continue
        wall = 60 + 240 * rng.random()
        job = JobRecord(cluster=100, proc=i, run_id=r["run_id"], state=RunState.DONE, starts=1, exit_code=0,
                        wall_s=wall, cpu_s=wall * (1.0 + 0.5 * rng.random()), peak_memory_mb=800 + 900 * rng.random())
        job.resources = {"CpusUsage": 1.0 + 0.5 * rng.random(), "RequestCpus": 2, "Cpus": 2,
                         "MemoryUsage": job.peak_memory_mb, "RequestMemory": 4096, "Memory": 4096,
                         "DiskUsage": 50_000, "RequestDisk": 1_048_576, "Disk": 1_048_576}
        out[r["run_id"]] = [job]
    return out


def write_event_log(root: Path, manifest: dict, seed: int = 0, running: tuple[str, ...] = ()) -> Path:
    """results/<sweep>/events.log in HTCondor's user log format: per run with a result, one job
    (submit with the run's note, execute, terminate with Partitionable Resources), as the
    collector reads it with htcondor2.JobEventLog; the `running` runs only submitted and executing."""
    import time as _time

    rng = random.Random(seed)
    t0 = 1767225600

    def ts(t: float) -> str:
        return _time.strftime("%Y-%m-%d %H:%M:%S", _time.gmtime(t))

    chunks = []
    for i, r in enumerate(manifest["runs"]):
        job = f"({100 + i // 1000}.{i % 1000:03d}.000)"
        if r["run_id"] in running:
            chunks.append(f"000 {job} {ts(t0)} Job submitted from host: <127.0.0.1:9618>\n    sweep-run {r['run_id']}\n"
                          f"...\n001 {job} {ts(t0 + 5)} Job executing on host: <127.0.0.1:9618>\n...\n")
            continue
        if r["run_id"] not in manifest.get("truth", {}):
            continue
        wall, cpus_used, mem = int(60 + 240 * rng.random()), 1.0 + 0.5 * rng.random(), int(800 + 900 * rng.random())
        cpu = int(wall * cpus_used)
        usage = f"Usr 0 {cpu // 3600:02d}:{cpu % 3600 // 60:02d}:{cpu % 60:02d}, Sys 0 00:00:00"
        idle = "Usr 0 00:00:00, Sys 0 00:00:00"
        chunks.append(
            f"000 {job} {ts(t0)} Job submitted from host: <127.0.0.1:9618>\n    sweep-run {r['run_id']}\n...\n"
            f"001 {job} {ts(t0 + 5)} Job executing on host: <127.0.0.1:9618>\n...\n"
            f"005 {job} {ts(t0 + 5 + wall)} Job terminated.\n\t(1) Normal termination (return value 0)\n"
            f"\t\t{usage}  -  Run Remote Usage\n\t\t{idle}  -  Run Local Usage\n"
            f"\t\t{usage}  -  Total Remote Usage\n\t\t{idle}  -  Total Local Usage\n"
            "\t0  -  Run Bytes Sent By Job\n\t0  -  Run Bytes Received By Job\n"
            "\t0  -  Total Bytes Sent By Job\n\t0  -  Total Bytes Received By Job\n"
            "\tPartitionable Resources :    Usage  Request Allocated\n"
            f"\t   Cpus                 : {cpus_used:8.2f}        2         2\n"
            "\t   Disk (KB)            :       50  1048576   1048576\n"
            f"\t   Memory (MB)          : {mem:8d}     4096      4096\n...\n")
    path = root / "results" / manifest["sweep"] / "events.log"
    path.write_text("".join(chunks))
    return path


def make_search(root: Path, sweep: str = "search", trials: int = 12, seed: int = 0) -> dict[str, Any]:
    """Write a finished two-objective search (precision and recall, traded off by a threshold-like
    `bias` hyperparameter) under root: a synthetic sweep whose manifest has the search block the
    driver records, whose runs carry their trial numbers, and whose study journal (written through
    sweep.records.study, as the driver writes it) holds one completed trial per run.
    Returns the manifest."""
    import optuna

    from sweep.records.study import storage

    rng = random.Random(seed)
    biases = [round(-0.08 + 0.16 * i / max(1, trials - 1), 4) for i in range(trials)]
    lrs = [round(10 ** rng.uniform(-4, -2), 6) for _ in range(trials)]
    manifest = make_sweep(root, sweep, axes={"learning_rate": lrs, "bias": biases}, corrupt=0, missing=0,
                          seed=seed)
    # make_sweep crosses the axes: keep the diagonal, one run per trial
    jobs, results = root / "jobs" / sweep, root / "results" / sweep
    keep = [r for r in manifest["runs"] if manifest["swept"] and lrs.index(r["swept"]["learning_rate"])
            == biases.index(r["swept"]["bias"])]
    for r in manifest["runs"]:
        if r not in keep:
            for folder in (results / r["run_id"],):
                for f in folder.iterdir():
                    f.unlink()
                folder.rmdir()
    journal = results / "study.journal"
    manifest["runs"] = keep
    manifest["ranking"] = [["precision", "max"], ["recall", "max"]]
    manifest["search"] = {"sampler": "tpe", "pruner": "none", "objectives": [["precision", "max"], ["recall", "max"]],
                          "trials": trials, "parallel": 2, "seed": seed, "journal": str(journal), "prune_on": [],
                          "backend": "local"}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=sweep, storage=storage(journal), directions=["maximize", "maximize"])
    distributions = {"learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True),
                     "bias": optuna.distributions.FloatDistribution(-0.08, 0.08)}
    for number, r in enumerate(keep):
        r["trials"] = [number]
        metrics_path = results / r["run_id"] / "metrics.json"
        metrics = json.loads(metrics_path.read_text())
        f1, bias = metrics["test"]["f1"], r["swept"]["bias"]
        metrics["test"].update(precision=min(0.999, f1 + bias), recall=min(0.999, f1 - bias))
        metrics_path.write_text(json.dumps(metrics))
        study.add_trial(optuna.trial.create_trial(params=dict(r["swept"]), distributions=distributions,
                                                  values=[metrics["test"]["precision"], metrics["test"]["recall"]]))
    (jobs / "sweep.json").write_text(json.dumps({k: v for k, v in manifest.items() if k != "truth"}, indent=2))
    return manifest
