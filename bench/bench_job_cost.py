"""A job's fixed cost by phase: what `python -m sweep.job` spends besides training (issue 27).

Runs the demo grid's larger LSTM ([96, 128, 1], 8 epochs, one CPU, 20,000 balanced windows of
1,500 simulated waveforms) as real jobs, each in a fresh process, in two variants back to back:

* ``now``: the job as it is;
* ``before``: the job as it was before issue 27's changes to its start and end: TensorFlow
  imported along with pandas and scikit-learn, and the interpreter's full teardown at exit.

Per variant, the median of --repeats runs of each phase's CPU seconds (from run.json's
`phases`), the process's CPU seconds (its own and its threads', from the parent's rusage), and
the fixed cost = process CPU − training CPU. No figure is asserted; the target is ≤ 5 s.

    python bench/bench_job_cost.py [--repeats 3] [--dir DIR] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: how each variant starts the job: the interpreter's arguments (the same runner; `before` undoes the two changes)
VARIANTS = {
    "now": ["-m", "sweep.job", "config.yaml"],
    "before": ["-c", ("import sys; import sweep.physics.tfimport as t; t.NOT_WITH_TENSORFLOW = (); "
                      "from sweep.job.runner import main; sys.exit(main(['config.yaml']))")],
}
GRID = """\
sweep: cost
model: lstm
seed: 7
data: {{path: {data}, balanced: true, max_samples: {windows}}}
params: {{topology: [96, 128, 1], batch_size: 150, dropout: [0.1, 0.1], activations: [relu, sigmoid],
         epochs: {epochs}, patience: 3, train_fraction: 0.7, test_fraction: 0.2, optimizer: adam}}
axes:
  learning_rate: [0.001]
resources: {{request_cpus: 1, request_memory: 2GB, runtime: 1h}}
"""


def job_config(folder: Path, waveforms: int, windows: int, epochs: int) -> Path:
    """Simulate the dataset and render the grid's one run; returns its config.yaml."""
    from sweep.physics.datasets import simulate_to_file
    from sweep.submit.prepare import prepare, write_rendered

    data = folder / "data.npz"
    simulate_to_file(str(data), waveforms, seed=1)
    grid = folder / "cost.yaml"
    grid.write_text(GRID.format(data=data, windows=windows, epochs=epochs))
    prepared = prepare(grid, folder)
    write_rendered(prepared, grid)
    return prepared.rendered.runs[0].config_path


def run_job(variant: str, config: Path, folder: Path) -> dict[str, float]:
    """One job of `variant` in a fresh folder: its phases' CPU seconds and the process's."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.copy(config, folder / "config.yaml")
    env = {**os.environ, "SWEEP_CPUS": "1", "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, *VARIANTS[variant]], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=1800)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{variant}: the job failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    phases = json.loads((folder / "run.json").read_text())["phases"]
    process = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"process": process, **{name: p["cpu_s"] for name, p in phases.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None, help="working folder (default: a temporary one, removed)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes that run in seconds (CI: the script still works)")
    args = ap.parse_args()
    waveforms, windows, epochs = (60, 1000, 1) if args.smoke else (1500, 20_000, 8)
    repeats = 1 if args.smoke else args.repeats
    os.environ.setdefault("SWEEP_ALLOW_ROOT", "1")  # root on its own temporary files, the local way
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench-job-cost-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        config = job_config(work, waveforms, windows, epochs)
        results: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
        for r in range(repeats):
            for variant in VARIANTS:  # back to back, alternating, each in a fresh process
                results[variant].append(run_job(variant, config, work / f"{variant}-{r}"))
        print(f"job fixed cost, CPU seconds, median of {repeats} ({waveforms} waveforms, {windows} windows, "
              f"{epochs} epoch(s), 1 CPU)")
        names = ["process", "startup", "data", "model", "training", "checkpoints", "evaluation", "output"]
        print(f"{'variant':8s} " + " ".join(f"{n:>11s}" for n in names) + f" {'fixed':>8s} {'exit':>6s}")
        for variant, rows in results.items():
            med = {n: statistics.median(row.get(n, 0.0) for row in rows) for n in names}
            fixed = med["process"] - med["training"]
            exit_s = med["process"] - sum(med[n] for n in names[1:])  # after main returned: teardown
            print(f"{variant:8s} " + " ".join(f"{med[n]:11.2f}" for n in names) + f" {fixed:8.2f} {exit_s:6.2f}")
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
