"""Makespan of a grid of unequal jobs on a personal HTCondor pool: longest first against submission order.

    python bench/bench_makespan.py [--repeats 3] [--dir DIR] [--keep] [--smoke]     (as root, or as the job owner)

What it measures: a 16-configuration LSTM peak-finder grid (topologies 16x32x1, 20x32x1, 24x32x1,
32x64x1 x epochs 2, 3, 4, 6; written smallest first, as people write grids, so the grid's last
configuration is its costliest) whose jobs' predicted training costs (sweep/core/cost.py) differ by
up to 11x, each training for roughly 10 s to 60 s at 1 CPU (no early stopping; 3,500 simulated
waveforms, max_samples 120000, a short test split so that the test metrics stay a few seconds), is
submitted to a personal pool of one partitionable slot of 2 CPUs (two 1-CPU jobs at a time;
tools/condor_pool.py) through the public API, ``sweep.api.submit_grid(grid, backend="condor",
wait=True)``, in two orders:

* longest first: sweep's default, the DAG lists its nodes by sweep.core.cost.start_order and gives
  the costliest the highest node PRIORITY;
* submission order: the same, but with ``sweep.submit.backends.htcondor.start_order`` replaced,
  inside the bench's submitting process only, by a function that returns the grid's own order (first
  configuration first, with the highest priority), so the DAG lists and prioritises its nodes as
  the grid has them: what a submitter that does not order by cost gives.

Makespan: from the first node job's submit event to the last node job's terminate event in the
sweep's event log (results/<sweep>/events.log; 1 s resolution), i.e. the first submit to the last
job end (the FINAL collect node after it is not counted). Printed per order and repeat: the
makespan, the wall clock from the submit_grid call to the last job end, the jobs' total wall time
and how many slots they kept busy on average, the lower bound max(longest job, total / 2), and the
order the jobs started in (by predicted cost rank, 1 = costliest); then per order the median
makespan and the median of makespan / lower bound (which the machine's other load, slowing every job
alike, moves less than the makespan itself), and the improvement of longest first. The two orders
are interleaved (alternating which goes first), --repeats times each, each sweep in a project folder
of its own, the pool idle in between.

The pool lives in a fresh folder under --dir (default: the system's temporary folder), stopped and
removed at the end, also when the run fails or gets a SIGTERM (--keep: leave the folder, its logs).
As root, the sweeps are submitted by a forked child that has become the pool's job owner
(tools/condor_pool.py as_job_owner; HTCondor does not let root own jobs). --smoke: 2 tiny
configurations, one sweep per order (about a minute).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GRID = """\
sweep: {name}
model: lstm
description: bench_makespan, jobs of unequal size
seed: 7
data:
  path: data/makespan.npz
  balanced: true
  max_samples: {samples}
params:
  batch_size: 150
  dropout: [0.1, 0.1]
  activations: [relu, sigmoid]
  patience: 100                    # no early stopping: every job trains all its epochs
  train_fraction: 0.75
  test_fraction: 0.05              # the test metrics score every window of the test waveforms: kept short
  optimizer: adam
axes:
  topology: [{topologies}]
  epochs: [{epochs}]
resources:
  request_cpus: 1
  request_memory: 1800MB
  request_disk: 500MB
  runtime: 30m
condor:
  max_retries: 0
ranking: [f1, auc, eff_purity]
"""
#: the full size: 4 x 4 configurations, predicted costs 1x to ~11x, ~10 s to ~60 s of training each
FULL = {"topologies": [[16, 32, 1], [20, 32, 1], [24, 32, 1], [32, 64, 1]], "epochs": [2, 3, 4, 6],
        "waveforms": 3500, "samples": 120000}
SMOKE = {"topologies": [[8, 8, 1]], "epochs": [1, 2], "waveforms": 40, "samples": 500}
ORDERS = ("longest first", "submission order")


def _sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")  # the pool is still stopped and removed (finally)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def submit(project: Path, grid: Path, order: str) -> None:
    """Submit the grid and wait for its end (as the job owner); the times to project/timing.json."""
    from sweep.api import submit_grid

    if order == "submission order":
        import sweep.submit.backends.htcondor as htcondor_backend

        if not hasattr(htcondor_backend, "start_order"):
            raise SystemExit("sweep.submit.backends.htcondor has no start_order any more: update the bench")

        def grid_order(runs, *_, **__):  # the grid's own order: first configuration first (whatever else
            # start_order is given: the grid's samples, measured epoch times)
            return {run.run_id: place for place, run in enumerate(runs)}

        htcondor_backend.start_order = grid_order
    t0 = time.time()
    submit_grid(grid, backend="condor", wait=True, root=project)
    (project / "timing.json").write_text(json.dumps({"called": t0, "returned": time.time()}))


def measure(project: Path, name: str) -> dict:
    """The sweep's makespan and its jobs, from its event log and run folders."""
    from sweep.core.cost import predicted_cost
    from sweep.core.expand import expand
    from sweep.core.grid import load_grid
    from sweep.core.names import RUN_INFO, SweepPaths
    from sweep.records.events import read_event_log

    jobs = [j for j in read_event_log(SweepPaths(project).event_log(name)).values() if j.run_id]
    timing = json.loads((project / "timing.json").read_text())
    spec = load_grid(project / f"{name}.yaml", project)
    runs = {r.run_id: r for r in expand(spec)}
    if len(jobs) != len(runs) or any(j.ended is None or j.started is None for j in jobs):
        raise SystemExit(f"{name}: {len(jobs)} jobs in the event log for {len(runs)} runs, or some did not end")
    failed = [j.run_id for j in jobs if j.exit_code != 0]
    if failed:
        raise SystemExit(f"{name}: jobs failed: {failed} (see {project})")
    info = {}
    for run_id in runs:
        record = json.loads((SweepPaths(project).results(name) / run_id / RUN_INFO).read_text())
        info[run_id] = record.get("phases", {}).get("training", {}).get("wall_s")
    cost = {r: predicted_cost(runs[r].model, runs[r].params, spec.data.max_samples) for r in runs}
    rank = {r: i + 1 for i, r in enumerate(sorted(runs, key=lambda r: -cost[r]))}
    first, last = min(j.submitted for j in jobs), max(j.ended for j in jobs)
    walls = [j.ended - j.started for j in jobs]
    started = [rank[j.run_id] for j in sorted(jobs, key=lambda j: (j.started, j.cluster))]
    return {"makespan": last - first, "wall_clock": last - timing["called"], "total": sum(walls),
            "bound": max(max(walls), sum(walls) / 2), "started": started,
            "training": {runs[r].name: info[r] for r in runs}, "cost": {runs[r].name: cost[r] for r in runs}}


def wait_idle(timeout: float = 180) -> None:
    """Until the queue is empty (the DAG's FINAL node, DAGMan itself, gone) and the slot whole again."""
    import htcondor2

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queued = htcondor2.Schedd().query(constraint="true", projection=["ClusterId"])
        slots = htcondor2.Collector().query(htcondor2.AdType.Startd, projection=["SlotType"])
        if not queued and all(ad.get("SlotType") == "Partitionable" for ad in slots):
            return
        time.sleep(1)
    raise SystemExit(f"the pool's queue is not empty {timeout:.0f} s after the sweep ended")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3, help="interleaved sweeps per order (the median is reported)")
    ap.add_argument("--dir", type=Path, default=None,
                    help="where the pool's folder is made (default: the system's temporary folder); the job "
                         "owner must reach it")
    ap.add_argument("--keep", action="store_true", help="keep the pool's folder (its logs) after the run")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one sweep per order (CI: the script still works)")
    args = ap.parse_args()
    size = SMOKE if args.smoke else FULL
    if args.smoke:
        args.repeats = 1
    spec = importlib.util.spec_from_file_location("condor_pool", REPO / "tools" / "condor_pool.py")
    cp = importlib.util.module_from_spec(spec)
    sys.modules["condor_pool"] = cp  # dataclasses look their module up while the class is built
    spec.loader.exec_module(cp)
    if args.dir:
        args.dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="sweep-makespan-", dir=args.dir))
    root.chmod(0o755)  # the job owner must be able to traverse it
    pool = cp.Pool(root / "pool", cpus=2, memory_mb=4096)
    signal.signal(signal.SIGTERM, _sigterm)
    began = time.perf_counter()
    try:
        pool.start(timeout=120)
        cp.client_setup(pool)
        from sweep.physics.datasets import simulate_to_file

        data = root / "makespan.npz"
        simulate_to_file(data, size["waveforms"], 1)
        topologies = ", ".join(str(t) for t in size["topologies"])
        epochs = ", ".join(str(e) for e in size["epochs"])
        print(f"pool of 2 x 1-CPU slots ready; grid: topology [{topologies}] x epochs [{epochs}] = "
              f"{len(size['topologies']) * len(size['epochs'])} configurations, {size['waveforms']} waveforms, "
              f"max_samples {size['samples']}; load average {load()}", flush=True)
        results: dict[str, list[dict]] = {order: [] for order in ORDERS}
        for i in range(args.repeats):
            for order in (ORDERS if i % 2 == 0 else tuple(reversed(ORDERS))):
                name = f"makespan-{'longest' if order == ORDERS[0] else 'grid'}-{i + 1}"
                project = root / name
                (project / "data").mkdir(parents=True)
                shutil.copy(data, project / "data" / "makespan.npz")
                grid = project / f"{name}.yaml"
                grid.write_text(GRID.format(name=name, samples=size["samples"], topologies=topologies, epochs=epochs))
                pool.prepare_dir(project)
                before = load()
                status = cp.as_job_owner(pool, functools.partial(submit, project, grid, order))
                if status:
                    raise SystemExit(f"{name}: the submission failed ({status})")
                r = measure(project, name)
                results[order].append(r)
                print(f"  {order:16s} #{i + 1}: makespan {r['makespan']:4d} s (wall clock from the submit call "
                      f"{r['wall_clock']:.0f} s); jobs' total {r['total']} s, {r['total'] / r['makespan']:.2f} slots "
                      f"busy on average; lower bound {r['bound']:.0f} s; started (cost rank, 1 = costliest): "
                      f"{r['started']}  [load {before} -> {load()}]", flush=True)
                wait_idle()
        costs = results[ORDERS[0]][0]["cost"]
        smallest = min(costs.values())
        trained = {n: statistics.median(r["training"][n] for rs in results.values() for r in rs) for n in costs}
        print("configurations (grid order): predicted cost relative to the smallest / median training wall s: "
              + ", ".join(f"{n} {costs[n] / smallest:.1f}x/{trained[n]:.0f}s" for n in costs))
        medians, over_bound = {}, {}
        for order, rs in results.items():
            medians[order] = statistics.median(r["makespan"] for r in rs)
            over_bound[order] = statistics.median(r["makespan"] / r["bound"] for r in rs)
            # over the lower bound: what the order costs, less the drift of the jobs' own speed (a loaded machine)
            over = [r["makespan"] / r["bound"] for r in rs]
            print(f"{order:16s} makespan median {medians[order]:.0f} s of {[r['makespan'] for r in rs]}; "
                  f"slots busy {statistics.median(r['total'] / r['makespan'] for r in rs):.2f}; lower bound "
                  f"{statistics.median(r['bound'] for r in rs):.0f} s; makespan / lower bound median "
                  f"{statistics.median(over):.3f} of [{', '.join(f'{x:.3f}' for x in over)}]")
        saved = medians[ORDERS[1]] - medians[ORDERS[0]]
        print(f"improvement of longest first over submission order (medians): {saved:+.0f} s, "
              f"{saved / medians[ORDERS[1]]:+.1%} of the submission-order makespan (ratio "
              f"{medians[ORDERS[1]] / medians[ORDERS[0]]:.3f}); over the lower bound: "
              f"{over_bound[ORDERS[1]] / over_bound[ORDERS[0]] - 1:+.1%}; {args.repeats} repeat(s) per order, "
              f"{time.perf_counter() - began:.0f} s in all; load average {load()}")
    finally:
        pool.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
