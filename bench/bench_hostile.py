"""The hostile-grid corpus (tests/hostile_grids.py), each file validated by `sweep validate` in its
own process bounded to 2 GB of address space and 120 s, with the totals the hostile-grids issue
asks for.

    python bench/bench_hostile.py [--jobs 2] [--per-class N] [--smoke]

Prints per class and in all: files; refused cleanly (exit 2, file + line + key, the expected
message, nothing written); refused without a position; tracebacks; hangs or memory blow-ups;
wrongly accepted; the slowest validation and the largest peak memory.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from corpus import (  # noqa: E402 - bench/, beside
    bounded_sweep, first_of_each_class, outcomes_by_class, print_unexpected, run_cases, slowest_and_peak)
from tests.hostile_grids import CORPUS, Case, make_project, write_case  # noqa: E402 - after sys.path names the checkout


def classify(case: Case, folder: Path) -> tuple[str, float]:
    """(outcome, seconds) of one case, in its own project in `folder`."""
    root, outside = make_project(folder)  # its own project: no case sees another's files
    path = write_case(case, root, outside)
    # no SWEEP_* setting of this process but SWEEP_ALLOW_ROOT (root validating in root's own folders)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWEEP_") or k == "SWEEP_ALLOW_ROOT"}
    env.update(PYTHONPATH=str(REPO), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    status, out, seconds = bounded_sweep(root, ["validate", str(path)], env)
    if status is None:
        return "hang or blow-up", seconds
    if "Traceback" in out or "MemoryError" in out:
        return ("hang or blow-up" if "MemoryError" in out else "traceback"), seconds
    if status < 0:
        return "hang or blow-up", seconds
    if status == 0:
        return "wrongly accepted", seconds
    positioned = re.search(re.escape(str(path)) + r":\d+:\d+:", out) is not None
    keyed = not case.key or f" {case.key}:" in out
    if (positioned or not case.line) and keyed and case.fragment in out and not (root / "jobs").exists():
        return "refused cleanly", seconds
    return "refused without position" if not positioned else "refused, other message", seconds


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--per-class", type=int, default=None, help="the first N files of each class (default: all)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes that run in seconds (CI: the script still works)")
    args = ap.parse_args()
    if args.smoke:
        args.per_class = 2
    results = run_cases(first_of_each_class(CORPUS, args.per_class), args.jobs, "sweep-hostile-", classify)
    by_kind = outcomes_by_class(results, "files")
    columns = ["files", "refused cleanly", "refused without position", "refused, other message", "traceback",
               "hang or blow-up", "wrongly accepted"]
    labels = ["files", "clean", "no position", "other text", "traceback", "hang/blow-up", "accepted"]
    print(f"{'class':18s}" + "".join(f"{c:>13s}" for c in labels))
    for kind, counts in by_kind.items():
        print(f"{kind:18s}" + "".join(f"{counts.get(c, 0):13d}" for c in columns))
    print(slowest_and_peak(results, "validation"))
    print_unexpected(results, "refused cleanly")
    bad = sum(by_kind["all"].get(c, 0) for c in columns[2:])
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
