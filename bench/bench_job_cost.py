"""A job's fixed cost by phase: what `python -m sweep.job` spends besides training (issue 27).

Runs the demo grid's larger LSTM ([96, 128, 1], 8 epochs, one CPU, 20,000 balanced windows of
1,500 simulated waveforms; ~200,000 natural-mix windows scored at the end) as real jobs, each in
a fresh process, in two variants, interleaved (before, now, before, now, ...) so that a machine's
changing load hits both alike:

* ``before``: sweep's code as of commit --before (default: BEFORE, the commit issue 27's work on
  the job's evaluation and imports started from), taken out of git with `git archive`;
* ``now``: this checkout's code.

Where git cannot give --before's code (no git, a shallow clone), only ``now`` is measured.

Both read the same config.yaml: the run's whole configuration (RenderedRun.config_text), which a
job reads without ``--run``. Per variant, the median of --repeats runs of each phase's CPU seconds
(from run.json's `phases`), the process's CPU seconds (its own and its threads', from the
parent's rusage), the fixed cost = process CPU − training CPU, and `exit` (after main returned).
The machine's load averages are printed before and after. No figure is asserted; the target is
≤ 5 s. The variants' test metrics (metrics.json's `test`: precision, recall, F1, accuracy, AUC,
efficiency×purity, their counts, and the natural_* metrics) are compared run by run: a change of
speed must not change them.

    python bench/bench_job_cost.py [--repeats 3] [--before REV] [--dir DIR] [--smoke]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: the commit issue 27's evaluation and start-up work started from: the default `before`
BEFORE = "ecaa84af74afeea8fb91c56e92cfd7b162195ad4"
#: how each variant's interpreter starts the job (both from their own copy of sweep, by PYTHONPATH)
JOB = ["-m", "sweep.job", "config.yaml"]
PHASES = ["startup", "data", "model", "training", "checkpoints", "evaluation", "output"]
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


def job_config(folder: Path, waveforms: int, windows: int, epochs: int) -> str:
    """Simulate the dataset and render the grid's one run in memory; returns its whole
    configuration as a config.yaml's text (what a job reads without --run)."""
    from sweep.physics.datasets import simulate_to_file
    from sweep.submit.prepare import prepare

    data = folder / "data.npz"
    simulate_to_file(str(data), waveforms, seed=1)
    grid = folder / "cost.yaml"
    grid.write_text(GRID.format(data=data, windows=windows, epochs=epochs))
    return prepare(grid, folder).rendered.runs[0].config_text


def code_of(rev: str, folder: Path) -> Path | None:
    """sweep's code as of git revision `rev`, unpacked into `folder` (read from git; the
    checkout is not touched); returns the folder to put on PYTHONPATH, or None (and says why)
    where git cannot give it (no git, not a checkout, a shallow clone without that commit)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", rev, "sweep"],
                                 capture_output=True, check=True, timeout=120).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        detail = (getattr(exc, "stderr", b"") or b"").decode(errors="replace").strip()
        print(f"before: no code of {rev} from git ({detail or exc}); measuring `now` only")
        return None
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        # git's own archive of this repository; the "data" filter where Python has it (3.11.4+)
        tar.extractall(folder, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    return folder


def run_job(code: Path, config_text: str, folder: Path) -> tuple[dict[str, float], dict]:
    """One job of the code in `code`, in a fresh folder: its phases' CPU seconds and the
    process's, and its metrics.json."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(config_text, encoding="utf-8")
    env = {**os.environ, "SWEEP_CPUS": "1", "PYTHONPATH": str(code), "TF_CPP_MIN_LOG_LEVEL": "3"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, *JOB], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=1800)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{code}: the job failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    phases = json.loads((folder / "run.json").read_text())["phases"]
    process = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    metrics = json.loads((folder / "metrics.json").read_text())
    return {"process": process, **{name: p["cpu_s"] for name, p in phases.items()}}, metrics


def compared(a: dict, b: dict) -> tuple[int, float]:
    """(how many of the test metrics differ, the largest absolute difference) between two
    metrics.json's `test` and natural counts."""
    ta, tb = dict(a.get("test") or {}), dict(b.get("test") or {})
    for key in ("natural_windows", "natural_waveforms"):
        ta[key], tb[key] = (a.get("split") or {}).get(key), (b.get("split") or {}).get(key)
    differ, largest = 0, 0.0
    for key in sorted(set(ta) | set(tb)):
        x, y = ta.get(key), tb.get(key)
        if isinstance(x, (int, float)) and isinstance(y, (int, float)):
            if x == y or (math.isnan(x) and math.isnan(y)):
                continue
            largest = max(largest, abs(x - y))
        elif x == y:
            continue
        differ += 1
    return differ, largest


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} CPUs)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--before", default=BEFORE, help="the git revision of the `before` variant (default: %(default)s)")
    ap.add_argument("--dir", type=Path, default=None, help="working folder (default: a temporary one, removed)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes that run in seconds (CI: the script still works)")
    args = ap.parse_args()
    waveforms, windows, epochs = (60, 1000, 1) if args.smoke else (1500, 20_000, 8)
    repeats = 1 if args.smoke else args.repeats
    os.environ.setdefault("SWEEP_ALLOW_ROOT", "1")  # root on its own temporary files, the local way
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench-job-cost-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        config_text = job_config(work, waveforms, windows, epochs)
        before = code_of(args.before, work / "before-code")
        code = {"before": before, "now": REPO} if before is not None else {"now": REPO}
        print(f"before: {args.before if before is not None else '-'}; now: {REPO}")
        print(f"start: {load()}", flush=True)
        results: dict[str, list[dict[str, float]]] = {v: [] for v in code}
        metrics: dict[str, list[dict]] = {v: [] for v in code}
        for r in range(repeats):
            for variant, where in code.items():  # interleaved, each in a fresh process
                phases, m = run_job(where, config_text, work / f"{variant}-{r}")
                results[variant].append(phases)
                metrics[variant].append(m)
        print(f"end:   {load()}")
        print(f"job fixed cost, CPU seconds, median of {repeats} ({waveforms} waveforms, {windows} windows, "
              f"{epochs} epoch(s), 1 CPU)")
        names = ["process", *PHASES]
        print(f"{'variant':8s} " + " ".join(f"{n:>11s}" for n in names) + f" {'fixed':>8s} {'exit':>6s}")
        for variant, rows in results.items():
            med = {n: statistics.median(row.get(n, 0.0) for row in rows) for n in names}
            # per run, then the median: the phases of one run add up to its process
            fixed = statistics.median(row["process"] - row.get("training", 0.0) for row in rows)
            exit_s = statistics.median(row["process"] - sum(row.get(n, 0.0) for n in PHASES)  # after main returned
                                       for row in rows)
            print(f"{variant:8s} " + " ".join(f"{med[n]:11.2f}" for n in names) + f" {fixed:8.2f} {exit_s:6.2f}")
        n_test = metrics["now"][0].get("n_test")
        natural = (metrics["now"][0].get("split") or {}).get("natural_windows")
        for r in range(repeats if "before" in metrics else 0):
            differ, largest = compared(metrics["before"][r], metrics["now"][r])
            print(f"test metrics, run {r + 1} ({n_test} test windows, {natural} natural): "
                  + ("identical" if not differ else f"{differ} differ (largest difference {largest:.3g})"))
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
