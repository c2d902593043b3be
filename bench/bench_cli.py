"""`sweep --help` wall time (the CLI must not import TensorFlow). Target ≤ 0.5 s.

    python bench/bench_cli.py [--runs 7]
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ap = argparse.ArgumentParser()
ap.add_argument("--runs", type=int, default=7, help="timed `sweep --help` runs")
ap.add_argument("--smoke", action="store_true", help="tiny sizes that run in seconds (CI: the script still works)")
args = ap.parse_args()
if args.smoke:
    args.runs = 1

sweep = Path(sys.executable).parent / "sweep"
times = []
for _ in range(args.runs):
    t0 = time.perf_counter()
    subprocess.run([str(sweep), "--help"], check=True, capture_output=True)
    times.append(time.perf_counter() - t0)
out = subprocess.run([sys.executable, "-X", "importtime", "-m", "sweep.cli", "--help"], capture_output=True, text=True)
heavy = [m for m in ("tensorflow", "keras", "htcondor2", "pandas", "sklearn") if f" {m}" in out.stderr]
print(f"sweep --help: median {statistics.median(times) * 1000:.0f} ms, min {min(times) * 1000:.0f} ms "
      f"over {len(times)} runs (target ≤ 500 ms); heavy modules imported: {heavy or 'none'}")
