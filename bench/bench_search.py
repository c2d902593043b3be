"""Adaptive search against the full grid on the LSTM peak finder: how much CPU time a search
needs to reach the grid's best test F1, and the driver's own overhead per trial.

Part 1, the grid: every configuration of a 48-point space (4 optimizers x 4 learning rates x 3
topologies, same epochs and early stopping) trained for real with `sweep submit --local` on a
small simulated dataset. Its CPU time is the sum of the jobs' run time x CPUs (run.json's
duration, 1 CPU each).

Part 2, the searches, replayed on the grid's real results: the search space is the grid's, so a
trial's run id is the grid run's (sweep.core.expand.run_of_point) and its result, history and
run time are the grid run's; no training is faked, and none is repeated. Each search asks
Optuna for a trial, reports the run's real per-epoch val_f1 to the pruner epoch by epoch, and
stops it where the pruner says; a pruned trial is charged its run time minus the epochs it did
not train (conservatively: its start-up and test evaluation are still charged). A trial that
samples a point trained before costs nothing (sweep reuses the result); one that samples a point
pruned before trains it to its end and is charged all of it (as sweep's driver does). Sequential trials
(parallel 1: the pruner sees every earlier trial). For each seed: the CPU time until the best
test F1 is within --tolerance of the grid's best, and the best F1 within a third of the grid's
CPU time. Samplers: TPE + median pruner (sweep's default search) and random without pruning.

Part 3, the driver's overhead: a real `sweep search --local` of --overhead-trials trials on the
same data (Driver.summary.overhead_s: ask -> job started, and job ended -> result told).

    python bench/bench_search.py [--root DIR] [--seeds 7] [--epochs 8] [--waveforms 1500] [--smoke]

--smoke: a 2-point grid (2 optimizers, 1 rate, 1 topology; 1 epoch on 40 waveforms), 1 seed per
sampler and a 2-trial driver: every part runs, for real, in seconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

OPTIMIZERS = ["adam", "rmsprop", "nadam", "sgd"]
RATES = [3.0e-4, 1.0e-3, 3.0e-3, 1.0e-2]
TOPOLOGIES = [[32, 64, 1], [64, 64, 1], [96, 128, 1]]


#: windows each job reads (data.max_samples)
MAX_SAMPLES = 20000


def grid_text(epochs: int, waveforms: int, search: str = "") -> str:
    return (f"sweep: {'bench-search' if search else 'bench-grid'}\nmodel: lstm\nseed: 7\n"
            f"data: {{path: data/bench.npz, max_samples: {MAX_SAMPLES}, "
            f"simulate: {{waveforms: {waveforms}, seed: 1}}}}\n"
            f"params: {{epochs: {epochs}, patience: 3, batch_size: 150}}\n"
            f"axes:\n  optimizer: {json.dumps(OPTIMIZERS)}\n  learning_rate: {json.dumps(RATES)}\n"
            f"  topology: {json.dumps(TOPOLOGIES)}\n{search}"
            "resources: {request_cpus: 1, request_memory: 1500MB, runtime: 30m}\n")


def run_grid(root: Path, epochs: int, waveforms: int) -> dict:
    """Train the grid for real (once: an existing results folder is reused); its runs by run id."""
    from sweep.cli import main
    from sweep.core.grid import load_grid
    from sweep.core.expand import expand

    grid = root / "grid.yaml"
    grid.write_text(grid_text(epochs, waveforms))
    t0 = time.perf_counter()
    status = main(["--root", str(root), "submit", str(grid), "--local", "--no-progress", "--no-collect"])
    print(f"grid: {len(OPTIMIZERS) * len(RATES) * len(TOPOLOGIES)} configurations trained in "
          f"{time.perf_counter() - t0:.0f} s wall (exit {status})")
    runs = {}
    for run in expand(load_grid(grid, root)):
        folder = root / "results" / "bench-grid" / run.run_id
        metrics = json.loads((folder / "metrics.json").read_text())
        info = json.loads((folder / "run.json").read_text())
        rows = [line.split(",") for line in (folder / "history.csv").read_text().splitlines()]
        header, rows = rows[0], rows[1:]
        col = {name: i for i, name in enumerate(header)}
        runs[run.run_id] = {"f1": metrics["test"]["f1"], "cpu_s": float(info["duration_s"]) * 1,
                            "val_f1": [float(r[col["val_f1"]]) for r in rows],
                            "epoch_s": [float(r[col["seconds"]]) for r in rows], "params": run.params}
    return runs


def replay(spec, runs: dict, sampler: str, seed: int, grid_best: float, tolerance: float, budget: float,
           max_trials: int) -> dict:
    """One search on the grid's results: CPU time to reach grid_best - tolerance, best F1 in budget."""
    import dataclasses

    import optuna
    from optuna.trial import TrialState

    from sweep.core.expand import run_of_point
    from sweep.search import study as studies

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = dataclasses.replace(spec.search, sampler="tpe" if sampler == "tpe-median" else "random",
                                 pruner="median" if sampler == "tpe-median" else "none", seed=seed)
    spec = dataclasses.replace(spec, search=search)
    study = optuna.create_study(direction="maximize", sampler=studies.make_sampler(spec),
                                pruner=studies.make_pruner(spec))
    dists = studies.distributions(spec)
    spent, best, reached, best_in_budget, seen, pruned = 0.0, -1.0, None, -1.0, set(), 0
    pruned_ids: set[str] = set()  # pruned, never completed: trained to the end when proposed again
    completed: set[str] = set()
    for _ in range(max_trials):
        trial = study.ask(fixed_distributions=dists)
        run_id = run_of_point(spec, studies.point_of(spec, trial.params)).run_id
        run = runs[run_id]
        # sweep's driver trains a point pruned before and proposed again to its end: no pruner, full cost
        again = run_id in pruned_ids
        cost, stopped = run["cpu_s"], False
        if search.pruner != "none" and not again:
            for epoch, value in enumerate(run["val_f1"], start=1):
                trial.report(value, epoch)
                if trial.should_prune():
                    cost = run["cpu_s"] - sum(run["epoch_s"][epoch:])
                    stopped = True
                    break
        if run_id not in seen or again:  # a point trained before is reused: no cost
            spent += cost
        seen.add(run_id)
        if stopped:
            study.tell(trial, state=TrialState.PRUNED)
            pruned += 1
            if run_id not in completed:
                pruned_ids.add(run_id)
        else:
            study.tell(trial, run["f1"])
            completed.add(run_id)
            pruned_ids.discard(run_id)
            best = max(best, run["f1"])
            if spent <= budget:
                best_in_budget = max(best_in_budget, run["f1"])
        if reached is None and best >= grid_best - tolerance:
            reached = spent
        if reached is not None and spent > budget:
            break
    return {"cpu_to_reach": reached, "best_in_budget": best_in_budget, "pruned": pruned,
            "trials": len(study.trials)}


def driver_overhead(root: Path, epochs: int, waveforms: int, trials: int) -> list[float]:
    from sweep.core.grid import load_grid
    from sweep.search.driver import Driver
    from sweep.search.trials import LocalTrials

    grid = root / "search.yaml"
    grid.write_text(grid_text(2, waveforms, search=f"search: {{sampler: tpe, trials: {trials}, parallel: 2, "
                                                    "pruner: median, startup_trials: 2}\n"))
    spec = load_grid(grid, root)
    summary = Driver(spec, root, LocalTrials(spec), log=lambda m: None).run()
    return summary.overhead_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=None,
                        help="project folder, kept (default: a temporary one, removed at the end)")
    parser.add_argument("--seeds", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--waveforms", type=int, default=1500)
    parser.add_argument("--tolerance", type=float, default=0.003)
    parser.add_argument("--overhead-trials", type=int, default=6)
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes that run in seconds (CI: the script still works)")
    args = parser.parse_args()
    if args.smoke:
        global OPTIMIZERS, RATES, TOPOLOGIES, MAX_SAMPLES
        OPTIMIZERS, RATES, TOPOLOGIES, MAX_SAMPLES = OPTIMIZERS[:2], RATES[1:2], TOPOLOGIES[:1], 500
        args.seeds, args.epochs, args.waveforms, args.overhead_trials = 1, 1, 40, 2
    if args.root is None:  # a folder of its own, removed at the end (--root keeps one to look at)
        with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
            return measure(args, Path(tmp))
    args.root.mkdir(parents=True, exist_ok=True)
    return measure(args, args.root)


def measure(args: argparse.Namespace, root: Path) -> int:
    """The grid, the replayed searches and the driver's overhead, in the project folder `root`."""
    runs = run_grid(root, args.epochs, args.waveforms)
    grid_cpu = sum(r["cpu_s"] for r in runs.values())
    grid_best = max(r["f1"] for r in runs.values())
    print(f"grid: {len(runs)} runs, {grid_cpu:.0f} CPU s, best test F1 {grid_best:.4f}; "
          f"{sum(r['f1'] >= grid_best - args.tolerance for r in runs.values())} of them within {args.tolerance} of it")

    from sweep.core.grid import load_grid

    search_grid = root / "replay.yaml"
    search_grid.write_text(grid_text(args.epochs, args.waveforms, search="search: {trials: 48, startup_trials: 5, "
                                                                         "warmup_epochs: 2}\n"))
    spec = load_grid(search_grid, root)
    budget = grid_cpu / 3
    print(f"\n{'search':<11} {'seed':>4} {'CPU s to best-0.003':>20} {'x less':>7} {'best F1 at 1/3':>15} "
          f"{'pruned':>6} {'trials':>6}")
    for sampler in ("tpe-median", "random"):
        reached, bests = [], []
        for seed in range(args.seeds):
            r = replay(spec, runs, sampler, seed, grid_best, args.tolerance, budget, max_trials=400)
            reach = r["cpu_to_reach"]
            reached.append(reach if reach is not None else float("inf"))
            bests.append(r["best_in_budget"])
            print(f"{sampler:<11} {seed:>4} {reach if reach is not None else float('nan'):>20.0f} "
                  f"{grid_cpu / reach if reach else float('nan'):>7.2f} {r['best_in_budget']:>15.4f} "
                  f"{r['pruned']:>6} {r['trials']:>6}")
        med = statistics.median(reached)
        print(f"{sampler:<11} {'med':>4} {med:>20.0f} {grid_cpu / med if med else float('nan'):>7.2f} "
              f"{statistics.median(bests):>15.4f}   (grid: {grid_cpu:.0f} CPU s, best {grid_best:.4f})")
    if not args.overhead_trials:
        return 0
    overhead = sorted(driver_overhead(root, args.epochs, args.waveforms, args.overhead_trials))
    print(f"\ndriver overhead (real `sweep search --local`, {args.overhead_trials} trials): {len(overhead)} steps, "
          f"median {statistics.median(overhead) * 1000:.0f} ms, max {overhead[-1] * 1000:.0f} ms (target <= 1 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
