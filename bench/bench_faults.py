"""Fault scenarios on a real (personal) HTCondor pool: does any run get lost, or queued twice?

    python bench/bench_faults.py [--kills 30] [--pairs 10] [--outages 3] [--dir DIR] [--smoke]   (as root)

* kill: `sweep submit --condor` SIGKILLed at a random moment (0 to 3 s, somewhere in start-up,
  validation, rendering, the schedd query, the DAG submission or the manifest update), then
  submitted again to completion;
* pairs: two `sweep submit --condor` of one grid started at the same moment;
* outage: the schedd restarted, a plain `sweep submit` at once (it must fail and write nothing),
  then again when the schedd answers;
* starter: the condor_starter of every running job SIGKILLed; the jobs run again and end.

Each sweep has 4 runs (--runs). Except for the starter scenario its jobs never match a slot
(requirements False), so the queue holds still while it is counted: per run, the node or direct
jobs of the sweep that are queued (the schedd's own view, not sweep's). Lost: a run with none;
doubled: a run with two or more. Prints the counts of every scenario (targets: 0 lost, 0 doubled).

The pool lives in a fresh folder under --dir (default: the system's temporary folder), stopped and
removed at the end, also when the run fails or gets a SIGTERM.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GRID = """\
sweep: {name}
model: lstm
data: {{path: data/none.npz, transfer: false}}  # the jobs never read it
axes:
  optimizer: [{optimizers}]
resources: {{request_cpus: 1, request_memory: 64MB, request_disk: 10MB, runtime: 10m}}
templates: tpl
condor: {{requirements: '{requirements}', max_retries: 0}}
"""
OPTIMIZERS = ["adam", "sgd", "rmsprop", "nadam", "adamax", "adagrad", "adadelta", "adamw", "lion", "ftrl"]
QUICK = """#!/bin/sh
{extra}
cat > metrics.json <<EOF
{{"test": {{"f1": 0.9, "auc": 0.95, "eff_purity": 0.8}}, "best_epoch": 1}}
EOF
echo '{{"status": "ok", "exit_code": 0}}' > run.json
"""


def _sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")  # the pool is still stopped and removed (finally)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=30)
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--outages", type=int, default=3)
    ap.add_argument("--runs", type=int, default=4, help=f"runs per sweep (at most {len(OPTIMIZERS)})")
    ap.add_argument("--job-seconds", type=int, default=8, help="how long each job that runs sleeps")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dir", type=Path, default=None,
                    help="where the pool's folder is made (default: the system's temporary folder); the job "
                         "owner must reach it")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes that run in seconds (CI: the script still works)")
    args = ap.parse_args()
    if args.smoke:  # every scenario once, 2 runs per sweep
        args.kills, args.pairs, args.outages, args.runs, args.job_seconds = 1, 1, 1, 2, 5
    n_runs = args.runs
    if os.geteuid() != 0:
        print("bench_faults needs root (the personal pool's job owner is another user)", file=sys.stderr)
        return 2
    spec = importlib.util.spec_from_file_location("condor_pool", REPO / "tools" / "condor_pool.py")
    cp = importlib.util.module_from_spec(spec)
    sys.modules["condor_pool"] = cp
    spec.loader.exec_module(cp)
    if args.dir:
        args.dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="sweep-faults-", dir=args.dir))
    root.chmod(0o755)
    pool = cp.Pool(root, memory_mb=2048)
    signal.signal(signal.SIGTERM, _sigterm)
    rng = random.Random(args.seed)
    try:
        pool.start(timeout=120)
        cp.client_setup(pool)
        from sweep.submit.backends.htcondor import connect

        project = pool.prepare_dir(root / "project")
        (project / "data").mkdir()
        (project / "data" / "none.npz").write_bytes(b"not read: the jobs never run")
        (project / "tpl").mkdir()
        shutil.copy(REPO / "templates" / "job.sub.j2", project / "tpl" / "job.sub.j2")
        (project / "tpl" / "run_job.sh.j2").write_text(QUICK.format(extra=f"sleep {args.job_seconds}"))
        pool.prepare_dir(project)
        # sweep never runs as root: started as root, each command becomes the pool's job owner first
        env = {**os.environ, "PYTHONPATH": str(REPO), "SWEEP_JOB_OWNER": pool.job_owner,
               "SWEEP_IDTOKENS_DIR": str(pool.owner_tokens_dir)}
        env.pop("SWEEP_ALLOW_ROOT", None)
        os.chdir(REPO)  # the commands' folder (python -m reads it first): root's checkout, not a project
        schedd = connect()
        totals = {}

        def grid(name: str, requirements: str = "False") -> Path:
            path = project / f"{name}.yaml"
            path.write_text(GRID.format(name=name, requirements=requirements,
                                        optimizers=", ".join(OPTIMIZERS[:n_runs])))
            return path

        def submit(path: Path, *extra: str) -> subprocess.Popen:
            return subprocess.Popen([sys.executable, "-m", "sweep.cli", "--root", str(project), "submit", str(path),
                                     "--no-progress", *extra], env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)

        def copies(name: str) -> Counter:
            """Queued jobs per run once every DAG of the sweep has submitted its nodes."""
            last, stable = None, 0
            for _ in range(60):
                ads = list(schedd.query(f'SweepName =?= "{name}"', projection=["SweepRunId", "SweepRole",
                                                                               "JobStatus"]))
                live = Counter(str(a["SweepRunId"]) for a in ads if a.get("SweepRunId") and int(a["JobStatus"]) != 3)
                dags = sum(1 for a in ads if a.get("SweepRole") == "dagman" and int(a["JobStatus"]) == 2)
                state = (tuple(sorted(live.items())), dags)
                stable = stable + 1 if state == last else 0
                last = state
                if stable >= 3 and sum(live.values()) >= n_runs:
                    return live
                time.sleep(0.5)
            return live

        def say(text: str) -> None:
            print(text, flush=True)

        def score(kind: str, name: str) -> None:
            manifest = project / "jobs" / name / "sweep.json"
            runs = [r["run_id"] for r in json.loads(manifest.read_text())["runs"]] if manifest.is_file() else []
            if not runs:  # nothing recorded: every run of the grid is lost
                runs = ["(unrecorded)"] * n_runs
            have = copies(name)
            lost = sum(1 for r in runs if have.get(r, 0) == 0)
            doubled = sum(1 for r in runs if have.get(r, 0) > 1)
            t = totals.setdefault(kind, Counter())
            t.update(trials=1, runs=len(runs), lost=lost, doubled=doubled)
            say(f"  {name}: {dict(have)}")
            clear(name)

        def clear(name: str) -> None:
            """Remove the sweep's jobs and wait until they have left the queue: a removed DAG still
            runs its FINAL node, and a schedd restarted meanwhile would wait for it in its graceful
            shutdown (up to SHUTDOWN_GRACEFUL_TIMEOUT), accepting jobs it does not start."""
            pool.tool("condor_rm", "-constraint", f'SweepName =?= "{name}"')
            for _ in range(240):
                if not list(schedd.query(f'SweepName =?= "{name}"', projection=["ClusterId"])):
                    return
                time.sleep(0.5)
            say(f"  {name}: jobs still in the queue 120 s after condor_rm")

        for i in range(args.kills):
            name = f"kill{i}"
            g = grid(name)
            proc = submit(g, "--condor")
            time.sleep(rng.uniform(0.0, 3.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            again = submit(g, "--condor")
            again.communicate(timeout=180)
            score("kill", name)
        for i in range(args.pairs):
            name = f"pair{i}"
            g = grid(name)
            procs = [submit(g, "--condor") for _ in range(2)]
            outs = [p.communicate(timeout=180)[0] for p in procs]
            if not (project / "jobs" / name / "sweep.json").is_file():
                say("  neither submit recorded the sweep:\n" + "\n".join(outs))
            score("pairs", name)
        for i in range(args.outages):
            name = f"outage{i}"
            g = grid(name)
            say(f"{name}: restarting the schedd")
            pool.tool("condor_restart", "-daemon", "schedd")
            out = submit(g).communicate(timeout=180)[0]
            # a plain submit: the pool is configured
            say(f"  plain submit during the restart: {out.strip().splitlines()[-1] if out.strip() else '(nothing)'}")
            t = totals.setdefault("outage", Counter())
            say(f"  {out.strip()}")
            refused = "cannot reach" in out and not (project / "jobs" / name).exists()
            t.update(refused=int(refused), answered_in_time=int(f"submitted {n_runs} runs" in out))
            for _ in range(120):
                try:
                    connect(timeout=2)
                    break
                except Exception:  # noqa: BLE001 - the schedd is restarting: any failure means "not yet"
                    time.sleep(1)
            schedd = connect()
            submit(g).communicate(timeout=180)
            score("outage", name)

        from sweep.records.events import attempts_by_run, read_event_log

        def running_jobs(name: str, at_least: int = 1) -> int:
            for _ in range(240):
                ads = [a for a in schedd.query(f'SweepName =?= "{name}" && JobStatus == 2',
                                               projection=["SweepRunId"]) if a.get("SweepRunId")]
                if len(ads) >= at_least:
                    return len(ads)
                time.sleep(0.5)
            return 0

        def ended_once(kind: str, name: str, **extra: int) -> None:
            """Wait for the sweep to end; per run, how many of its jobs ended well, and its result."""
            subprocess.run([sys.executable, "-m", "sweep.cli", "--root", str(project), "status", name, "--watch",
                            "--interval", "2"], env=env, capture_output=True, timeout=600)
            attempts = attempts_by_run(read_event_log(project / "results" / name / "events.log"))
            ended = {r: sum(1 for j in jobs if str(j.state) == "done") for r, jobs in attempts.items()}
            runs = [r["run_id"] for r in json.loads((project / "jobs" / name / "sweep.json").read_text())["runs"]]
            results = sum(1 for r in runs if (project / "results" / name / r / "metrics.json").is_file())
            totals[kind] = Counter(trials=1, runs=len(runs), results=results, **extra,
                                   restarts=sum(j.starts - 1 for jobs in attempts.values() for j in jobs),
                                   lost=sum(1 for r in runs if ended.get(r, 0) == 0),
                                   doubled=sum(1 for r in runs if ended.get(r, 0) > 1))

        # the starter of every running job killed: the job runs again, the run ends once
        name = "starter"
        say(f"starter: {n_runs} jobs that run, their starters killed")
        submit(grid(name, requirements="True"), "--condor").communicate(timeout=180)
        running = running_jobs(name)
        time.sleep(2)
        killed = 0
        for p in pool.pids():
            try:  # the job's starter, not the startd's `condor_starter -classad` probe
                argv = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
                if Path(argv[0].decode()).name == "condor_starter" and b"-classad" not in argv:
                    os.kill(p, signal.SIGKILL)
                    killed += 1
            except (OSError, IndexError):  # it ended in the meantime
                pass
        say(f"  killed {killed} condor_starter of {running} running jobs")
        ended_once("starter", name, starters_killed=killed)

        # the schedd restarted while jobs run: status says "unknown", never "not run"; each run ends once
        name = "restart"
        say(f"restart: the schedd restarted under {n_runs} jobs that run")
        submit(grid(name, requirements="True"), "--condor").communicate(timeout=180)
        running_jobs(name)
        pool.tool("condor_restart", "-daemon", "schedd")
        time.sleep(0.5)
        out = subprocess.run([sys.executable, "-m", "sweep.cli", "--root", str(project), "status", name],
                             env=env, capture_output=True, text=True, timeout=120).stdout
        rows = [line for line in out.splitlines() if "│" in line]  # the table's run rows, not its summary line
        say(f"  status during the restart: {sum(' unknown ' in r for r in rows)} runs unknown, "
            f"{sum('not run' in r for r in rows)} not run")
        for _ in range(120):
            try:
                schedd = connect(timeout=2)
                break
            except Exception:  # noqa: BLE001 - the schedd is restarting: any failure means "not yet"
                time.sleep(1)
        ended_once("restart", name, said_not_run=int("not run" in out))
        for kind, t in totals.items():
            print(f"{kind:8s} " + ", ".join(f"{k} {v}" for k, v in t.items()))
        bad = sum(t.get("lost", 0) + t.get("doubled", 0) + t.get("said_not_run", 0) for t in totals.values())
        print("runs lost or doubled:", bad, "(target 0)")
        return 0 if bad == 0 else 1
    finally:
        pool.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
