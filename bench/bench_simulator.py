"""Throughput of the toy waveform simulator on one core.

    python bench/bench_simulator.py [--waveforms 4096] [--batch-size 256] [--repeat 3] [--file-waveforms 2000] [--smoke]

Prints waveforms/s for (a) the simulation alone (truth + rendering + noise + ADC) and (b) the
full ``simulate_to_file`` path (simulation, peak-finding windows, labels, clusterization
histograms, compressed atomic write). Target: >= 2,000 waveforms/s on one core.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402 - after the thread limits above, read by numpy when imported
import sys  # noqa: E402 - after the thread limits above, read by numpy when imported
import tempfile  # noqa: E402 - after the thread limits above, read by numpy when imported
import time  # noqa: E402 - after the thread limits above, read by numpy when imported
from pathlib import Path  # noqa: E402 - after the thread limits above, read by numpy when imported

import numpy as np  # noqa: E402 - after the thread limits above, read by numpy when imported

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's sweep, as the other benches

from sweep.physics import datasets as D  # noqa: E402 - after sys.path names the checkout
from sweep.physics import simulate as S  # noqa: E402 - after sys.path names the checkout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--waveforms", type=int, default=4096)
    ap.add_argument("--batch-size", type=int, default=D.DEFAULT_BATCH_SIZE)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--file-waveforms", type=int, default=2000, help="waveforms written by simulate_to_file")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes that run in seconds (CI: the script still works)")
    args = ap.parse_args()
    if args.smoke:  # two batches in each path
        args.waveforms, args.batch_size, args.repeat, args.file_waveforms = 64, 32, 1, 64

    pinned = ""
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        pinned = f" (pinned to CPU {cpu})"

    p = S.SimulationParams()
    S.simulate_batch(p, 64, np.random.default_rng(0))  # warm-up: lazy imports, pulse tables

    best = float("inf")
    for r in range(args.repeat):
        rng = np.random.default_rng(r)
        t0 = time.perf_counter()
        done = 0
        while done < args.waveforms:
            m = min(args.batch_size, args.waveforms - done)
            S.simulate_batch(p, m, rng)
            done += m
        best = min(best, time.perf_counter() - t0)
    sim_rate = args.waveforms / best

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.npz"
        n_file = args.file_waveforms
        summary = D.simulate_to_file(path, n_file, seed=1, batch_size=args.batch_size)
        size_mb = path.stat().st_size / 1e6
    file_rate = n_file / summary["seconds"]

    print(f"one core{pinned}, numpy {np.__version__}, {p.n_samples} samples/waveform")
    print(f"simulate_batch   : {sim_rate:10,.0f} waveforms/s  (best of {args.repeat} x {args.waveforms})")
    print(f"simulate_to_file : {file_rate:10,.0f} waveforms/s  ({n_file} waveforms in "
          f"{summary['seconds']:.2f} s, {size_mb:.1f} MB)")
    print(f"  windows {summary['n_windows']:,}  signal fraction {summary['signal_fraction']:.3f}  "
          f"balanced {summary['n_balanced']:,}  mean clusters {summary['mean_clusters']:.2f}")
    print("target >= 2,000 waveforms/s:", "OK" if min(sim_rate, file_rate) >= 2000 else "MISSED")


if __name__ == "__main__":
    main()
