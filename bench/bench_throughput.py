"""Sweep throughput on one machine: configurations finished per hour for the demo grid.

Seed setup: every job asks for 4 CPUs and TensorFlow picks its own threads (one job at a time
on a 2-core machine). sweep's default: 1 CPU per job with TensorFlow pinned to it, jobs packed
onto the cores (two at a time here). Same grid, data and epochs; the local backend runs both.

    python bench/bench_throughput.py [--grid grids/demo.yaml] [--repeats 1]
    python bench/bench_throughput.py --waveforms 15000 --max-samples 200000 --epochs 3   # realistic job size

With --waveforms the dataset is simulated (seeded) into build/ (--dir) at that size instead of
data/demo.npz; --max-samples and --epochs replace the grid's, --configs samples that many of its
configurations (the grid's sample:). The sweeps run in temporary folders under --dir.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


DATA = REPO / "data" / "demo.npz"


def run(grid_text: str, name: str, env: dict, cpus: int, where: Path) -> float:
    from sweep.physics.datastep import ensure_dataset
    from sweep.submit.backends.local import LocalBackend
    from sweep.submit.prepare import prepare, write_rendered

    root = Path(tempfile.mkdtemp(dir=where))
    (root / "data").mkdir()
    shutil.copy(DATA, root / "data" / "demo.npz")
    grid = root / f"{name}.yaml"
    grid.write_text(grid_text)
    prepared = prepare(grid, root)
    ensure_dataset(prepared.spec, progress=False)
    write_rendered(prepared, grid)
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        t0 = time.perf_counter()
        report = LocalBackend(cpus=cpus, progress=False).submit(prepared.rendered, prepared.rendered.runs)
        seconds = time.perf_counter() - t0
    finally:
        os.environ.clear()
        os.environ.update(saved)
    failed = [k for k, v in report.details["exit_codes"].items() if v]
    if failed:
        sys.exit(f"{name}: runs failed: {failed} (see {root})")
    import json

    # where each job's time went: its whole run (imports, data, training, test metrics, model) and
    # the training loop alone; the makespan against the jobs' total / cores says how evenly they packed
    jobs = []
    for r in prepared.rendered.runs:
        info = json.loads((r.results_dir / "run.json").read_text())
        metrics = json.loads((r.results_dir / "metrics.json").read_text())
        jobs.append((r.run.name, info["duration_s"], metrics["train_seconds"]))
    total = sum(j[1] for j in jobs)
    per_job = ", ".join(f"{n} {d:.0f}/{t:.0f}" for n, d, t in jobs)
    print(f"  {name}: makespan {seconds:.0f} s; jobs' total {total:.0f} s ({total / seconds:.2f} busy at once); "
          f"per job run/train s: {per_job}", flush=True)
    shutil.rmtree(root)
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", default=str(REPO / "grids" / "demo.yaml"))
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--waveforms", type=int, default=None, help="simulate a dataset of this many waveforms")
    ap.add_argument("--max-samples", type=int, default=None, help="the grid's data.max_samples instead")
    ap.add_argument("--epochs", type=int, default=None, help="the grid's epochs instead")
    ap.add_argument("--configs", type=int, default=None, help="sample this many of the grid's configurations")
    ap.add_argument("--dir", type=Path, default=REPO / "build",
                    help="where the sweeps run and a --waveforms dataset is written (default: build/ in the project)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes that run in seconds (CI: the script still works)")
    args = ap.parse_args()
    if args.smoke:  # both setups, one configuration each
        args.waveforms, args.max_samples, args.epochs, args.configs, args.repeats = 40, 500, 1, 1, 1
    args.dir.mkdir(parents=True, exist_ok=True)
    global DATA
    text = Path(args.grid).read_text()
    if args.max_samples:
        text = re.sub(r"max_samples: \d+", f"max_samples: {args.max_samples}", text)
    if args.epochs:
        text = re.sub(r"epochs: \d+", f"epochs: {args.epochs}", text)
    if args.configs:
        text += f"sample: {args.configs}\n"
    from sweep.physics.datasets import simulate_to_file

    if args.waveforms:
        DATA = args.dir / f"throughput-{args.waveforms}.npz"
        if not DATA.exists():
            t0 = time.perf_counter()
            simulate_to_file(DATA, args.waveforms, 1)
            print(f"simulated {args.waveforms} waveforms in {time.perf_counter() - t0:.0f} s", flush=True)
    elif not DATA.exists():
        simulate_to_file(DATA, 1500, 1)
    n = len(re.findall(r"^\s+- \[", text, re.M)) * 2  # informational only
    seed = re.sub(r"request_cpus: \d+", "request_cpus: 4", text)
    mine = re.sub(r"request_cpus: \d+", "request_cpus: 1", text)
    cpus = len(os.sched_getaffinity(0))
    results = {"seed setup (4 CPUs/job, TF default threads)": [], "sweep default (1 CPU/job, pinned)": []}
    for _ in range(args.repeats):
        results["seed setup (4 CPUs/job, TF default threads)"].append(
            run(seed, "seed", {"SWEEP_INTRA_OP": "0", "SWEEP_INTER_OP": "0"}, cpus, args.dir))
        results["sweep default (1 CPU/job, pinned)"].append(run(mine, "mine", {}, cpus, args.dir))
    from sweep.core.expand import expand
    from sweep.core.grid import parse_grid

    configs = len(expand(parse_grid(text, "demo", REPO)))
    print(f"demo grid: {configs} configurations on {cpus} cores ({DATA.name}, "
          f"max_samples {args.max_samples or 'as in the grid'}, epochs {args.epochs or 'as in the grid'})")
    base = None
    for label, secs in results.items():
        best = min(secs)
        per_hour = configs * 3600 / best
        base = base or per_hour
        print(f"{label:45s} {best:7.1f} s  -> {per_hour:6.0f} configurations/hour  ({per_hour / base:.2f}x)")
    del n


if __name__ == "__main__":
    main()
