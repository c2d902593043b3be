"""The hostile job-output corpus (tests/hostile_outputs.py): each case planted in the best run of
its own small finished sweep, then `sweep collect` (and `sweep report` where the case says so) in
a process bounded to 2 GB of address space and 120 s, with the totals issue 22 asks for.

    python bench/bench_hostile_outputs.py [--jobs 2] [--per-class N] [--smoke]

Prints per class and in all: cases; the run marked invalid with a reason naming the file (and
the others still ranked); ranked anyway; invalid without the file named; tracebacks or a
non-zero exit; hangs or memory blow-ups; job text printed unescaped; the secret outside shown,
copied or embedded, or a file outside changed. Then the slowest case and the largest peak memory.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from corpus import (  # noqa: E402 - bench/, beside
    bounded_sweep, first_of_each_class, outcomes_by_class, print_unexpected, run_cases, slowest_and_peak)
from tests.hostile_outputs import CORPUS, SECRET, SWEEP, Case, make_project, snapshot  # noqa: E402 - after sys.path
COLUMNS = ["invalid, file named", "ranked anyway", "file not named", "traceback or exit", "hang or blow-up",
           "unescaped", "leak or change"]
LABELS = ["clean", "ranked", "no file", "crash", "hang/blow-up", "unescaped", "leak"]


def _sweep(root: Path, *args: str) -> tuple[int | None, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "COLUMNS": "200"}
    status, out, _ = bounded_sweep(root, list(args), env)
    return status, out


def _leaked(root: Path) -> bool:
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            p = Path(dirpath) / name
            if not p.is_symlink() and p.is_file() and p.stat().st_size < 64 << 20 and SECRET.encode() in p.read_bytes():
                return True
    return False


def classify(case: Case, base: Path) -> tuple[str, float]:
    """(outcome, seconds) of one case in its own project under `base`."""
    from sweep.collect.gather import collect

    root, outside, victim = make_project(base)
    case.plant(root / "results" / SWEEP / victim, outside)
    before = snapshot(outside)
    t0 = time.perf_counter()
    outputs = []
    for command in (["collect", SWEEP], ["report", SWEEP]) if case.report else (["collect", SWEEP],):
        status, out = _sweep(root, *command)
        if status is None or status < 0 or "MemoryError" in out:
            return "hang or blow-up", time.perf_counter() - t0
        if status != 0 or "Traceback" in out:
            return "traceback or exit", time.perf_counter() - t0
        outputs.append(out)
    seconds = time.perf_counter() - t0
    if any(not all(c.isprintable() or c in "\n " for c in out) for out in outputs):
        return "unescaped", seconds
    if any(SECRET in out for out in outputs) or _leaked(root) or snapshot(outside) != before:
        return "leak or change", seconds
    board = collect(SWEEP, root, write_csv=False)
    if victim in set(board.table["run_id"]):
        return "ranked anyway", seconds
    problem = next((p for p in board.problems if p.run_id == victim), None)
    if problem is None or case.fragment not in problem.reason or (case.file and case.file not in problem.reason):
        return "file not named", seconds
    if len(board.table) != 3:
        return "ranked anyway", seconds  # the others no longer rank
    return "invalid, file named", seconds


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--per-class", type=int, default=None, help="the first N cases of each class (default: all)")
    ap.add_argument("--smoke", action="store_true", help="one case per class (CI: the script still works)")
    args = ap.parse_args()
    if args.smoke:
        args.per_class = 1
    results = run_cases(first_of_each_class(CORPUS, args.per_class), args.jobs, "sweep-hostile-outputs-", classify)
    by_kind = outcomes_by_class(results, "cases")
    print(f"{'class':10s}{'cases':>8s}" + "".join(f"{c:>14s}" for c in LABELS))
    for kind, counts in by_kind.items():
        print(f"{kind:10s}{counts['cases']:8d}" + "".join(f"{counts.get(c, 0):14d}" for c in COLUMNS))
    print(slowest_and_peak(results, "case"))
    print_unexpected(results, "invalid, file named")
    return 0 if by_kind["all"]["invalid, file named"] == by_kind["all"]["cases"] else 1


if __name__ == "__main__":
    sys.exit(main())
