"""Queue 1,000 configurations into a real (personal) HTCondor pool: time until the schedd has
accepted all of them, sweep's htcondor2 submission (one cluster, itemdata) against a loop of
`condor_submit` over the same rendered submit files. Target: ≤ 10 s and ≥ 20× faster.

    python bench/bench_condor_submit.py [--configs 1000] [--loop 1000] [--pool-dir DIR] [--keep] [--smoke]

Starts its own pool under build/bench-pool (--pool-dir; tools/condor_pool.py) and stops it and
removes its folder at the end (--keep: leave the folder, e.g. for its logs), also when it fails
or gets a SIGTERM. Under 100 configurations, the grid's sample: draws them.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GRID = """\
sweep: bench-submit
model: lstm
data: {{path: data/none.npz}}
axes:
  learning_rate: [{lrs}]
  epochs: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
  optimizer: [adam, sgd, rmsprop, nadam, adamax, adagrad, adadelta, adamw, lion, ftrl]
resources: {{request_cpus: 1, request_memory: 64MB, request_disk: 10MB, runtime: 10m}}
"""


def _sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")  # the pool is still stopped and removed (finally)


def measure(pool, project: Path, args) -> None:
    """Submit with sweep, then with a loop of condor_submit, and print both (as the job owner)."""
    from sweep.submit.backends.htcondor import HTCondorBackend, connect
    from sweep.submit.prepare import prepare, write_rendered

    lrs = ", ".join(str(0.0001 * (i + 1)) for i in range(max(1, args.configs // 100)))
    grid = project / "bench.yaml"
    grid.write_text(GRID.format(lrs=lrs) + (f"sample: {args.configs}\n" if args.configs < 100 else ""))
    prepared = prepare(grid, project)
    write_rendered(prepared, grid)
    runs = prepared.rendered.runs
    schedd = connect()
    t0 = time.perf_counter()
    report = HTCondorBackend(use_dag=False, schedd=schedd).submit(prepared.rendered, runs)
    sweep_s = time.perf_counter() - t0
    accepted = len(schedd.query(constraint=f"ClusterId == {report.details['cluster']}", projection=["ProcId"]))
    print(f"sweep (htcondor2, one cluster with itemdata): {len(runs)} jobs accepted in {sweep_s:.2f}s "
          f"({accepted} in the queue)")
    schedd.act(__import__("htcondor2").JobAction.Remove, f"ClusterId == {report.details['cluster']}")

    env = {k: v for k, v in pool.tool_env().items()}
    env["_CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS"] = "IDTOKENS"  # the job owner's own token
    env["_CONDOR_SEC_TOKEN_DIRECTORY"] = str(pool.owner_tokens_dir)
    submit = str(pool.bin_dir / "condor_submit")
    n = min(args.loop, len(runs))
    t0 = time.perf_counter()
    for r in runs[:n]:
        proc = subprocess.run([submit, "-terse", str(r.submit_path)], env=env, capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"condor_submit failed: {proc.stderr}")
    loop_s = time.perf_counter() - t0
    per_job = loop_s / n
    print(f"loop of condor_submit: {n} jobs in {loop_s:.2f}s ({per_job * 1000:.0f} ms each"
          + (f", {per_job * len(runs):.1f}s extrapolated to {len(runs)}" if n < len(runs) else "") + ")")
    print(f"speed-up: {per_job * len(runs) / sweep_s:.1f}x (target ≥ 20x; sweep target ≤ 10 s)")
    schedd.act(__import__("htcondor2").JobAction.Remove, 'SweepName == "bench-submit"')


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", type=int, default=1000)
    ap.add_argument("--loop", type=int, default=1000, help="condor_submit calls in the baseline loop")
    ap.add_argument("--pool-dir", type=Path, default=REPO / "build" / "bench-pool",
                    help="the pool's folder (default: build/bench-pool in the project); the job owner must reach it")
    ap.add_argument("--keep", action="store_true", help="keep the pool's folder (its logs) after the run")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes that run in seconds (CI: the script still works)")
    args = ap.parse_args()
    if args.smoke:
        args.configs, args.loop = 4, 2
    spec = importlib.util.spec_from_file_location("condor_pool", REPO / "tools" / "condor_pool.py")
    cp = importlib.util.module_from_spec(spec)
    sys.modules["condor_pool"] = cp  # dataclasses look their module up while the class is built
    spec.loader.exec_module(cp)
    root = args.pool_dir.resolve()
    pool = cp.Pool(root, memory_mb=2048)
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        t0 = time.perf_counter()
        pool.start(timeout=120)
        print(f"pool ready in {time.perf_counter() - t0:.1f}s")
        cp.client_setup(pool)
        project = pool.prepare_dir(root / "project")
        # sweep never runs as root: the measurement runs as the pool's job owner
        status = cp.as_job_owner(pool, lambda: measure(pool, project, args))
        if status:
            sys.exit(status)
    finally:
        pool.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
