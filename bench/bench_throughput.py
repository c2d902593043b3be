"""Sweep throughput on one machine: configurations finished per hour for the demo grid.

Seed setup: every job asks for 4 CPUs and TensorFlow picks its own threads (one job at a time
on a 2-core machine: the local backend caps a request to the machine's cores). sweep's default:
1 CPU per job with TensorFlow pinned to it, jobs packed onto the cores (two at a time here).
Same grid, data and epochs; the local backend runs both.

    python bench/bench_throughput.py [--grid grids/demo.yaml] [--repeats 3]
    python bench/bench_throughput.py --waveforms 15000 --max-samples 200000 --epochs 3 --repeats 3  # realistic size
    python bench/bench_throughput.py --smoke      # tiny sizes, ~30 s: the script still works

With --waveforms the dataset is simulated (seeded) into build/ (--dir) at that size instead of
data/demo.npz; --max-samples and --epochs replace the grid's, --configs samples that many of its
configurations (the grid's sample:). The sweeps run in temporary folders under --dir.

The two setups are interleaved (seed, sweep, then sweep, seed, ...: a drift in the machine's load
hits both alike), --repeats times each. Printed per setup: every repeat's makespan, their median
and the configurations per hour at the median, the ratio to the seed setup, and the training
efficiency (training core-seconds ÷ allocated core-seconds: the `training` phase's CPU seconds of
every job's run.json over each job's wall_s × cpus from the local backend's .local-exit.json; a
job given 2 cores that keeps only 1 busy scores 50% at best), per repeat and pooled over all of
them, with the per-job medians of each phase's wall seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


DATA = REPO / "data" / "demo.npz"
SEED = "seed setup (4 CPUs/job, TF default threads)"
MINE = "sweep default (1 CPU/job, pinned)"


def run(grid_text: str, name: str, env: dict, cpus: int, where: Path) -> dict:
    """One sweep of the grid on the local backend: its makespan and, per job, its wall seconds,
    its CPUs and its phases (run.json)."""
    from sweep.core.names import LOCAL_RECORD, RUN_INFO
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
    # where each job's time went: its whole run (imports, data, training, test metrics, model) and
    # the training loop alone; the makespan against the jobs' total / cores says how evenly they packed
    jobs = []
    for r in prepared.rendered.runs:
        info = json.loads((r.results_dir / RUN_INFO).read_text())
        ended = json.loads((r.results_dir / LOCAL_RECORD).read_text())
        jobs.append({"name": r.run.name, "wall_s": ended["wall_s"], "cpus": ended["cpus"],
                     "phases": info.get("phases") or {}})
    total = sum(j["wall_s"] for j in jobs)
    allocated = sum(j["wall_s"] * j["cpus"] for j in jobs)
    training = sum(j["phases"].get("training", {}).get("cpu_s", 0.0) for j in jobs)
    per_job = ", ".join(f"{j['name']} {j['wall_s']:.0f}/{j['phases'].get('training', {}).get('wall_s', 0):.0f}"
                        for j in jobs)
    print(f"  {name}: makespan {seconds:.0f} s; jobs' total {total:.0f} s ({total / seconds:.2f} busy at once); "
          f"training efficiency {training / allocated:.0%}; per job wall/train s: {per_job}  "
          f"[load {load()}]", flush=True)
    shutil.rmtree(root)
    return {"seconds": seconds, "jobs": jobs, "allocated": allocated, "training": training}


def load() -> str:
    """The 1-, 5- and 15-minute load averages, as uptime prints them."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", default=str(REPO / "grids" / "demo.yaml"))
    ap.add_argument("--repeats", type=int, default=3, help="interleaved sweeps of each setup (the median is reported)")
    ap.add_argument("--waveforms", type=int, default=None, help="simulate a dataset of this many waveforms")
    ap.add_argument("--max-samples", type=int, default=None, help="the grid's data.max_samples instead")
    ap.add_argument("--epochs", type=int, default=None, help="the grid's epochs instead")
    ap.add_argument("--configs", type=int, default=None, help="sample this many of the grid's configurations")
    ap.add_argument("--dir", type=Path, default=REPO / "build",
                    help="where the sweeps run and a --waveforms dataset is written (default: build/ in the project)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes that run in seconds (CI: the script still works)")
    args = ap.parse_args()
    if args.smoke:  # both setups, one configuration each, twice (the interleaving and the median)
        args.waveforms, args.max_samples, args.epochs, args.configs, args.repeats = 40, 500, 1, 1, 2
    args.dir.mkdir(parents=True, exist_ok=True)
    global DATA
    text = Path(args.grid).read_text()
    if args.max_samples:
        text = re.sub(r"max_samples: \d+", f"max_samples: {args.max_samples}", text)
    if args.epochs:
        text = re.sub(r"epochs: \d+", f"epochs: {args.epochs}", text)
    if args.configs:
        text = re.sub(r"(?m)^sample: .*\n?", "", text) + f"sample: {args.configs}\n"  # the grid's own replaced
    from sweep.physics.datasets import simulate_to_file

    if args.waveforms:
        DATA = args.dir / f"throughput-{args.waveforms}.npz"
        if not DATA.exists():
            t0 = time.perf_counter()
            simulate_to_file(DATA, args.waveforms, 1)
            print(f"simulated {args.waveforms} waveforms in {time.perf_counter() - t0:.0f} s", flush=True)
    elif not DATA.exists():
        simulate_to_file(DATA, 1500, 1)
    setups = {SEED: (re.sub(r"request_cpus: \d+", "request_cpus: 4", text), "seed",
                     {"SWEEP_INTRA_OP": "0", "SWEEP_INTER_OP": "0"}),
              MINE: (re.sub(r"request_cpus: \d+", "request_cpus: 1", text), "mine", {})}
    cpus = len(os.sched_getaffinity(0))
    print(f"load average at the start: {load()}", flush=True)
    results: dict[str, list[dict]] = {label: [] for label in setups}
    for i in range(args.repeats):  # interleaved, alternating which goes first
        for label in (list(setups) if i % 2 == 0 else list(reversed(setups))):
            grid_text, name, env = setups[label]
            results[label].append(run(grid_text, name, env, cpus, args.dir))
    from sweep.core.expand import expand
    from sweep.core.grid import parse_grid

    configs = len(expand(parse_grid(text, "demo", REPO)))
    print(f"demo grid: {configs} configurations on {cpus} cores ({DATA.name}, "
          f"max_samples {args.max_samples or 'as in the grid'}, epochs {args.epochs or 'as in the grid'}), "
          f"{args.repeats} interleaved repeat(s) per setup; load average at the end: {load()}")
    base = None
    for label, runs in results.items():
        secs = [r["seconds"] for r in runs]
        mid = statistics.median(secs)
        per_hour = configs * 3600 / mid
        base = base or per_hour
        efficiency = [r["training"] / r["allocated"] for r in runs]
        pooled = sum(r["training"] for r in runs) / sum(r["allocated"] for r in runs)
        print(f"{label:45s} median {mid:7.1f} s of [{', '.join(f'{s:.1f}' for s in secs)}]  -> "
              f"{per_hour:6.0f} configurations/hour  ({per_hour / base:.2f}x)")
        jobs = [j for r in runs for j in r["jobs"]]
        names = [p for p in ("startup", "data", "model", "training", "checkpoints", "evaluation", "output")
                 if any(p in j["phases"] for j in jobs)]
        phases = ", ".join(f"{p} {statistics.median(j['phases'][p]['wall_s'] for j in jobs if p in j['phases']):.1f}"
                           for p in names)
        train_cpu = statistics.median(j["phases"]["training"]["cpu_s"] for j in jobs if "training" in j["phases"])
        wall, job_cpus = statistics.median(j["wall_s"] for j in jobs), statistics.median(j["cpus"] for j in jobs)
        print(f"{'':45s} training efficiency median {statistics.median(efficiency):.0%} of "
              f"[{', '.join(f'{e:.0%}' for e in efficiency)}], pooled {pooled:.0%}; per job (median of {len(jobs)}): "
              f"wall {wall:.1f} s on {job_cpus:g} CPU(s); phases wall s: {phases}; training CPU s {train_cpu:.1f}")


if __name__ == "__main__":
    main()
