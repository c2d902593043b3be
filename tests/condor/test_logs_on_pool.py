"""`sweep logs --follow` on a real pool: a running job's output through condor_tail, its events as
they come, and what it wrote after condor_tail's last poll from the file transferred back."""

from __future__ import annotations

import subprocess
import sys

from tests.condor.owner import REPO, owner_env, run_sweep
from tests.condor.test_sweep_on_pool import grid, job_templates, wait_until

SLOW_JOB = r"""#!/bin/sh
for i in $(seq 10); do echo "epoch $i"; sleep 1; done
printf 'title \033]0;pwned\007 done\n'
printf 'no newline at the end'
cat > metrics.json <<EOF
{"test": {"f1": 0.9, "auc": 0.95, "eff_purity": 0.8}, "best_epoch": 1, "epochs_run": 1}
EOF
"""

# show_logs as the job owner (sweep never runs as root: run_as_owner switches first), each line
# with whether the job had ended (its terminate event in the log) when it was written
FOLLOW = """
import sys
from pathlib import Path
from sweep.submit.identity import run_as_owner
run_as_owner([])
from sweep.records.events import latest_by_run, read_event_log
from sweep.records.manifest import load_manifest
from sweep.submit.logs import show_logs
root = Path(sys.argv[1])
run_id = load_manifest(root, "pool-logs").runs[0].run_id
log = root / "results" / "pool-logs" / "events.log"
def write(line):
    job = latest_by_run(read_event_log(log)).get(run_id)
    print(("ENDED " if job is not None and job.ended is not None else "LIVE  ") + line, flush=True)
sys.exit(show_logs("pool-logs", root, run_id, follow=True, write=write))
"""


def test_logs_follows_a_job_running_on_the_pool_until_it_ends(project):
    g = grid(project, "pool-logs", axes="  optimizer: [adam]\n", extra=job_templates(project, SLOW_JOB))
    done = run_sweep(project, "submit", str(g), "--condor", "--no-progress")
    assert done.returncode == 0, done.stdout + done.stderr

    def running():
        from sweep.records.events import latest_by_run, read_event_log

        jobs = latest_by_run(read_event_log(project / "results" / "pool-logs" / "events.log"))
        return any(j.started is not None for j in jobs.values())

    wait_until(running, 120, "the job to start")
    proc = subprocess.run([sys.executable, "-c", FOLLOW, str(project)], env=owner_env(), cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    body = [line[6:] for line in lines]
    assert any(line.startswith("LIVE  epoch ") for line in lines), lines  # followed while it ran
    first = body.index(next(b for b in body if b.startswith("stdout.txt of running job ")))
    output = [b for b in body[first + 1:] if not b.startswith("[event]")]
    tail = ["title \\x1b]0;pwned\\x07 done", "no newline at the end"]
    assert output[-2:] == tail  # written after condor_tail's last poll: from the file transferred back
    epochs = output[:-2]
    assert epochs == [f"epoch {i}" for i in range(int(epochs[0].split()[1]), 11)], lines  # in order, none twice
    assert any(b.startswith("[event] ") and b.endswith("terminated: exit 0") for b in body)
