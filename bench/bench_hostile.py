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
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.hostile_grids import CORPUS, Case, make_project, write_case  # noqa: E402 - after sys.path names the checkout

MEMORY_BOUND = 2 << 30
TIME_BOUND_S = 120


def _limit():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BOUND, MEMORY_BOUND))


def classify(case: Case, root: Path, outside: Path) -> tuple[str, float]:
    """(outcome, seconds) of one case."""
    path = write_case(case, root, outside)
    # no SWEEP_* setting of this process but SWEEP_ALLOW_ROOT (root validating in root's own folders)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWEEP_") or k == "SWEEP_ALLOW_ROOT"}
    env.update(PYTHONPATH=str(REPO), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "sweep.cli", "--root", str(root), "validate", str(path)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                preexec_fn=_limit)
        out, _ = proc.communicate(timeout=TIME_BOUND_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return "hang or blow-up", time.perf_counter() - t0
    seconds = time.perf_counter() - t0
    if "Traceback" in out or "MemoryError" in out:
        return ("hang or blow-up" if "MemoryError" in out else "traceback"), seconds
    if proc.returncode < 0:
        return "hang or blow-up", seconds
    if proc.returncode == 0:
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
    corpus, seen = [], Counter()
    for case in CORPUS:
        if args.per_class is None or seen[case.kind] < args.per_class:
            corpus.append(case)
            seen[case.kind] += 1
    with tempfile.TemporaryDirectory(prefix="sweep-hostile-") as tmp:
        results = []
        base = Path(tmp)

        def one(i_case):
            i, case = i_case
            root, outside = make_project(base / str(i))  # its own project: no case sees another's files
            return case, *classify(case, root, outside)

        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(one, enumerate(corpus)))
        by_kind: dict[str, Counter] = defaultdict(Counter)
        for case, outcome, _ in results:
            by_kind[case.kind].update(files=1, **{outcome: 1})
            by_kind["all"].update(files=1, **{outcome: 1})
        columns = ["files", "refused cleanly", "refused without position", "refused, other message", "traceback",
                   "hang or blow-up", "wrongly accepted"]
        labels = ["files", "clean", "no position", "other text", "traceback", "hang/blow-up", "accepted"]
        print(f"{'class':18s}" + "".join(f"{c:>13s}" for c in labels))
        for kind in [k for k in by_kind if k != "all"] + ["all"]:
            print(f"{kind:18s}" + "".join(f"{by_kind[kind].get(c, 0):13d}" for c in columns))
        slow = max(results, key=lambda r: r[2])
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"slowest validation: {slow[0].id} in {slow[2]:.1f} s; largest peak memory of any: {peak_mb:.0f} MB "
              f"(bounds {TIME_BOUND_S} s, {MEMORY_BOUND >> 30} GB of address space)")
        for case, outcome, _ in results:
            if outcome != "refused cleanly":
                print(f"  {case.id}: {outcome}")
        bad = sum(by_kind["all"].get(c, 0) for c in columns[2:])
        return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
