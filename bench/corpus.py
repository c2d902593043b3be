"""What the hostile-corpus benches share (bench_hostile.py: grids; bench_hostile_outputs.py: job
outputs): a `sweep` command in a process bounded in memory and time, the first cases of each
class, the cases run side by side each in its own folder, their outcomes counted per class, the
cases without the expected outcome, and the slowest case with the largest peak memory of any
command.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

#: each command's bounds: a blow-up or a hang is an outcome, not a stuck benchmark
MEMORY_BOUND = 2 << 30
TIME_BOUND_S = 120


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BOUND, MEMORY_BOUND))


def bounded_sweep(root: Path, args: list[str], env: dict[str, str]) -> tuple[int | None, str, float]:
    """`sweep --root ROOT ARGS` in a process of at most MEMORY_BOUND bytes of address space and
    TIME_BOUND_S seconds: (exit status, or None when it ran out of time; its output, stdout and
    stderr together; seconds)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "sweep.cli", "--root", str(root), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, preexec_fn=_limit)
    try:
        out, _ = proc.communicate(timeout=TIME_BOUND_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None, "", time.perf_counter() - t0
    return proc.returncode, out, time.perf_counter() - t0


def first_of_each_class(corpus: list[Any], per_class: int | None) -> list[Any]:
    """The first `per_class` cases of each `kind` (all of them when None), in corpus order."""
    chosen, seen = [], Counter()
    for case in corpus:
        if per_class is None or seen[case.kind] < per_class:
            chosen.append(case)
            seen[case.kind] += 1
    return chosen


def run_cases(cases: list[Any], jobs: int, prefix: str,
              classify: Callable[[Any, Path], tuple[str, float]]) -> list[tuple[Any, str, float]]:
    """(case, outcome, seconds) of each case, `jobs` at a time, each classified in a folder of its
    own (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        def one(i_case: tuple[int, Any]) -> tuple[Any, str, float]:
            i, case = i_case
            return case, *classify(case, Path(tmp) / str(i))

        with ThreadPoolExecutor(jobs) as pool:
            return list(pool.map(one, enumerate(cases)))


def outcomes_by_class(results: list[tuple[Any, str, float]], count: str) -> dict[str, Counter]:
    """Per class of case (in the order first met), then "all": how many cases (under the key
    `count`) and how many had each outcome."""
    by_class: dict[str, Counter] = defaultdict(Counter)
    for case, outcome, _ in results:
        for kind in (case.kind, "all"):
            by_class[kind].update({count: 1, outcome: 1})
    return {kind: by_class[kind] for kind in [k for k in by_class if k != "all"] + ["all"]}


def print_unexpected(results: list[tuple[Any, str, float]], expected: str) -> None:
    """A line for each case whose outcome is not `expected`."""
    for case, outcome, _ in results:
        if outcome != expected:
            print(f"  {case.id}: {outcome}")


def slowest_and_peak(results: list[tuple[Any, str, float]], what: str) -> str:
    """The line naming the slowest case and the largest peak memory of any command run."""
    slow = max(results, key=lambda r: r[2])
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return (f"slowest {what}: {slow[0].id} in {slow[2]:.1f} s; largest peak memory of any command: {peak_mb:.0f} MB "
            f"(bounds {TIME_BOUND_S} s, {MEMORY_BOUND >> 30} GB of address space)")
