"""Validate + expand + render and write 10,000 configurations, with the results folders and the
DAG file the HTCondor backend writes before it submits. Target: ≤ 3 s; a submit that changes
nothing ≤ 1 s. Every run shares one job.sub and one config.yaml (its own values are its DAG
node's VARS, sweep.core.render), so the files written do not grow with the runs.

    python bench/bench_render.py [--configs 10000] [--trials 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GRID = """\
sweep: bench
model: lstm
data: {path: data/bench.npz}
params: {batch_size: 150, patience: 50}
axes:
  optimizer: [sgd, adam, rmsprop, nadam, adamax, adagrad, adadelta, adamw, lion, ftrl]
  learning_rate: [0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1]
  epochs: [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
  topology: [[32, 64, 1], [64, 64, 1], [96, 128, 1], [128, 96, 1], [128, 128, 1], [16, 32, 1], [48, 64, 1],
             [64, 128, 1], [96, 96, 1], [256, 128, 1]]
resources: {request_cpus: 4, request_memory: 5000MB, runtime: 2h}
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", type=int, default=10000)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes that run in seconds (CI: the script still works)")
    ap.add_argument("--dir", type=Path, default=Path(__file__).resolve().parents[1] / "build",
                    help="where to render (default: build/ in the project; /dev/shm shows the code's own cost)")
    args = ap.parse_args()
    if args.smoke:
        args.configs, args.trials = 20, 1
    totals = [one_trial(args.configs, args.dir) for _ in range(args.trials)]
    totals.sort()
    print(f"median total {totals[len(totals) // 2]:.3f}s, best {totals[0]:.3f}s over {len(totals)} trials "
          "(file writes on this VM vary a lot with other disk activity)")


def one_trial(configs: int, where: Path) -> float:
    from sweep.core.expand import expand
    from sweep.core.grid import load_grid
    from sweep.core.render import render_sweep
    from sweep.fsutil import atomic_write_text
    from sweep.submit import codebundle
    from sweep.submit.backends.htcondor import dag_text
    from sweep.submit.identity import own_folders
    from sweep.submit.prepare import Prepared, write_rendered

    where.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(dir=where))
    grid = root / "bench.yaml"
    grid.write_text(GRID + (f"sample: {configs}\n" if configs < 10000 else ""))
    t0 = time.perf_counter()
    spec = load_grid(grid, root)
    t1 = time.perf_counter()
    runs = expand(spec)
    t2 = time.perf_counter()
    code = codebundle.build()  # sweep's code, zipped once per content: every job transfers it
    rendered = render_sweep(spec, runs, root, code_archive=code.name)
    t3 = time.perf_counter()
    write_rendered(Prepared(spec, runs, rendered, code), grid)
    t4 = time.perf_counter()
    # what the HTCondor backend then writes before it hands the DAG to the schedd: every run's
    # results folder (its initialdir must exist) and the DAG file, a node and its VARS per run
    own_folders(rendered.results_dir, (r.run.run_id for r in rendered.runs), top=root)
    dag_dir = rendered.jobs_dir / "dags" / "bench"
    atomic_write_text(dag_dir / "sweep.dag", dag_text(rendered, rendered.runs, "bench", dag_dir))
    t5 = time.perf_counter()
    files = sum(1 for p in (root / "jobs" / "bench").rglob("*") if p.is_file())
    write_rendered(Prepared(spec, runs, rendered, code), grid)  # a submit that changes nothing: nothing rewritten
    t6 = time.perf_counter()
    print(f"{len(runs)} configurations: validate {t1 - t0:.3f}s, expand {t2 - t1:.3f}s, code archive + render "
          f"{t3 - t2:.3f}s, write {t4 - t3:.3f}s ({files} files in jobs/, the DAG's among them); results folders + "
          f"DAG {t5 - t4:.3f}s; total {t5 - t0:.3f}s (target ≤ 3 s); the same files again {t6 - t5:.3f}s "
          "(target ≤ 1 s)", flush=True)
    shutil.rmtree(root)
    return t5 - t0


if __name__ == "__main__":
    main()
