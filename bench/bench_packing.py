"""Why two jobs side by side on this machine's two cores do not train twice as fast as one, and
which packing (jobs per node x threads per job) gives the most configurations per hour.

Part 1, the machine: a compute-bound loop (pure Python), a cache-resident single-threaded matrix
product (the vector units) and a streaming copy of 256 MB arrays (memory bandwidth), each run
alone pinned to CPU 0, then as two copies pinned to CPU 0 and CPU 1 at once. Aggregate scaling
near 2.0 means two independent cores; near 1.0-1.3 means the two virtual CPUs share a physical
core (host hyper-threads) or, for the copy, a memory bus.

Part 2, the trainer: sweep's real job trainer (bench/bench_trainer.py's worker: LSTM
[96,128,1], batch 150) as one 1-CPU job alone, two 1-CPU jobs side by side (pinned to a core
each), and one 2-CPU job; the figure that decides the packing is the aggregate windows/s, median
of --repeats.

    python bench/bench_packing.py [--windows 40000] [--epochs 2] [--repeats 2] [--smoke]
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRAINER = REPO / "bench" / "bench_trainer.py"

#: each kernel's work is divided by {scale} (1: the sizes in the names; --smoke: 1000)
KERNELS = {
    "python-loop": "def f():\n s = 0\n for i in range(12_000_000 // {scale}):\n  s += i * i\n return s\n",
    "matmul-1thread": ("import numpy as np\na = np.random.rand(256, 256).astype(np.float32)\n"
                       "def f():\n for _ in range(max(1, 3000 // {scale})):\n  a @ a\n"),
    "copy-256MB": ("import numpy as np\nsrc = np.ones((32 << 20) // {scale})\ndst = np.empty_like(src)\n"
                   "def f():\n for _ in range(max(1, 40 // {scale})):\n  np.copyto(dst, src)\n"),
}


def kernel(name: str, scale: int = 1) -> float:
    """Seconds for one call of the kernel (after one warm-up call), in this process."""
    scope: dict = {}
    exec(KERNELS[name].format(scale=scale), scope)  # noqa: S102 - the benchmark's own fixed kernels
    scope["f"]()
    t0 = time.perf_counter()
    scope["f"]()
    return time.perf_counter() - t0


def spawn(argv: list[str], cpus: set[int], env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                                 "MKL_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
                            preexec_fn=lambda: os.sched_setaffinity(0, cpus))


def result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate()
    line = [x for x in out.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not line:
        sys.exit(f"a worker failed:\n{err[-3000:]}")
    return json.loads(line[0][7:])


def machine(repeats: int, scale: int = 1) -> None:
    print("part 1: the machine (seconds per kernel call; scaling = 2 x alone / pair)")
    for name in KERNELS:
        alone, pair = [], []
        for _ in range(repeats):
            argv = [sys.executable, __file__, "--kernel", name, "--kernel-scale", str(scale)]
            alone.append(result(spawn(argv, {0}))["seconds"])
            procs = [spawn(argv, {0}), spawn(argv, {1})]
            pair.append(max(result(p)["seconds"] for p in procs))
        a, p = statistics.median(alone), statistics.median(pair)
        print(f"  {name:15s} alone {a:6.2f} s   two at once {p:6.2f} s   aggregate scaling {2 * a / p:4.2f}x")


def trainer(windows: int, epochs: int, repeats: int, waveforms: int | None = None) -> None:
    from sweep.physics.datasets import simulate_to_file

    tmp = tempfile.mkdtemp(prefix="bench-packing-")
    atexit.register(shutil.rmtree, tmp, True)
    data = str(Path(tmp) / "packing.npz")
    simulate_to_file(data, waveforms or max(500, windows // 35), seed=3)
    base = [sys.executable, str(TRAINER), "--data", data, "--epochs", str(epochs), "--windows", str(windows),
            "--worker"]
    rows: dict[str, list[float]] = {"1 job x 1 CPU, alone": [], "2 jobs x 1 CPU, side by side": [],
                                    "1 job x 2 CPUs": []}
    for r in range(repeats):
        one = result(spawn(base + ["sweep-1cpu"], {0}, {"SWEEP_CPUS": "1"}))["windows_per_s"]
        procs = [spawn(base + ["sweep-1cpu"], {c}, {"SWEEP_CPUS": "1"}) for c in (0, 1)]
        two = sum(result(p)["windows_per_s"] for p in procs)
        wide = result(spawn(base + ["sweep-2cpu"], {0, 1}, {"SWEEP_CPUS": "2"}))["windows_per_s"]
        for key, value in zip(rows, (one, two, wide), strict=True):
            rows[key].append(value)
        print(f"  run {r + 1}: alone {one:.0f}, side by side {two:.0f} (sum), 2-CPU job {wide:.0f} windows/s",
              flush=True)
    alone = statistics.median(rows["1 job x 1 CPU, alone"])
    print(f"part 2: the trainer, LSTM [96,128,1], {windows} windows, {epochs} epochs, median of {repeats}")
    for key, values in rows.items():
        med = statistics.median(values)
        print(f"  {key:30s} {med:8.0f} windows/s (node total)   {med / alone:4.2f}x one job alone")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--windows", type=int, default=40000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--waveforms", type=int, default=None,
                    help="waveforms simulated for the trainer's dataset (default: max(500, windows / 35))")
    ap.add_argument("--skip-trainer", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes that run in seconds (CI: the script still works)")
    ap.add_argument("--kernel", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--kernel-scale", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.kernel:
        print("RESULT " + json.dumps({"seconds": kernel(args.kernel, args.kernel_scale)}), flush=True)
        return
    if args.smoke:  # both parts, every kernel and packing, 1/1000 of each kernel's work
        args.windows, args.epochs, args.repeats, args.waveforms, args.kernel_scale = 500, 1, 1, 40, 1000
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("needs two CPUs")
    sys.path.insert(0, str(REPO))
    print(f"CPUs: {sorted(os.sched_getaffinity(0))}; "
          f"{Path('/proc/cpuinfo').read_text().count('processor')} in /proc/cpuinfo")
    machine(args.repeats, args.kernel_scale)
    if not args.skip_trainer:
        trainer(args.windows, args.epochs, args.repeats, args.waveforms)


if __name__ == "__main__":
    main()
