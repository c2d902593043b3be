"""Collect and rank 10,000 synthetic finished runs (target ≤ 5 s), then write the HTML report of
a 1,000-run sweep (target ≤ 30 s). Each run folder holds what a real job leaves: metrics.json,
history.csv, roc.csv, run.json, model.keras, stdout.txt; and the sweep's HTCondor job event log
(results/<sweep>/events.log: submit, execute and terminate events with Partitionable Resources)
unless --no-event-log.

    python bench/bench_collect.py [--runs 10000] [--report-runs 1000] [--repeats 1] [--smoke]

Exit status 1 when a target is missed (not with --smoke: a smoke run checks that the script
works, not how fast).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sweep.collect.gather import collect
from sweep.collect.leaderboard import copy_best, export, select
from tests.synthetic import make_sweep, write_event_log

AXES = {"optimizer": ["adam", "sgd", "rmsprop", "nadam"], "learning_rate": [0.0001, 0.001, 0.01],
        "batch_size": [64, 150, 256, 512], "topology": [[32, 64, 1], [96, 128, 1], [128, 96, 1]],
        "patience": [5, 10, 20, 50]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--report-runs", type=int, default=1_000)
    ap.add_argument("--repeats", type=int, default=1, help="repeats per configuration (runs = configs × repeats)")
    ap.add_argument("--no-event-log", action="store_true", help="no HTCondor job event log (local backend case)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes that run in seconds (CI: the script still works)")
    args = ap.parse_args()
    if args.smoke:  # repeats 2: the aggregated leaderboard too
        args.runs, args.report_runs, args.repeats = 24, 10, 2
    tmp = Path(tempfile.mkdtemp(prefix="bench-collect-"))
    ok = True
    try:
        t0 = time.perf_counter()
        manifest = make_sweep(tmp, "big", axes=AXES, limit=args.runs // args.repeats, repeats=args.repeats,
                              corrupt=3, missing=3, failed=3, epochs=20)
        log = "" if args.no_event_log else (
            f" and an event log of {write_event_log(tmp, manifest).stat().st_size >> 20} MiB")
        print(f"wrote {args.runs} synthetic runs{log} in {time.perf_counter() - t0:.1f}s (setup, not timed)")

        t0 = time.perf_counter()
        board = collect("big", tmp)
        t_collect = time.perf_counter() - t0
        t0 = time.perf_counter()
        sel = select(board, by="auc", top=20, where='optimizer == "adam"')
        text = export(board, sel, "json") + export(board, select(board), "csv")
        t_select = time.perf_counter() - t0
        t0 = time.perf_counter()
        copy_best(board, 3)
        t_best = time.perf_counter() - t0
        total = t_collect + t_select + t_best
        print(f"collect {len(board.table)} ranked + {len(board.problems)} problems of {board.total} runs: "
              f"{t_collect:.2f}s; select/filter/export: {t_select:.2f}s ({len(text) // 1024} KiB); "
              f"best/ copy: {t_best:.2f}s; total {total:.2f}s (target ≤ 5 s) {'OK' if total <= 5 else 'SLOW'}")
        ok &= total <= 5

        from sweep.collect.report_html import write_report

        # smoke: two swept parameters (the figures per parameter are most of the report's time)
        axes = {k: AXES[k] for k in ("optimizer", "learning_rate")} if args.smoke else AXES
        manifest = make_sweep(tmp, "mid", axes=axes, limit=args.report_runs, corrupt=2, missing=2, failed=2, epochs=30)
        if not args.no_event_log:
            write_event_log(tmp, manifest)
        t0 = time.perf_counter()
        path = write_report("mid", tmp, top=3)
        t_report = time.perf_counter() - t0
        print(f"report of {args.report_runs} runs: {t_report:.2f}s (target ≤ 30 s) {'OK' if t_report <= 30 else 'SLOW'}"
              f"; {path.stat().st_size // 1024} KiB HTML, "
              f"{sum(p.stat().st_size for p in (path.parent / 'report').glob('*.png')) // 1024} KiB of PNGs")
        ok &= t_report <= 30
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok or args.smoke else 1


if __name__ == "__main__":
    sys.exit(main())
