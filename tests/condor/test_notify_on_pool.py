"""A grid's notify: block on a real personal pool: the schedd mails notify.email when the DAGMan
job ends (the pool's MAIL is a script that records what it is asked to send, tools/condor_pool.py),
and the DAG's FINAL node posts the summary to a webhook served by this test on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

from tests.condor.owner import sweep_cli
from tests.condor.test_sweep_on_pool import QUICK_JOB, grid, job_templates, wait_until
from tests.test_notify import SECRET, Receiver


def test_the_dag_job_is_mailed_and_the_final_node_posts_the_webhook(project, condor_pool, capsys):
    with Receiver() as hook:
        notify = f"notify: {{email: sweeper@example.org, on: [complete], webhook: '{hook.url}'}}\n"
        g = grid(project, "pool-notify", axes="  optimizer: [adam]\n",
                 extra=job_templates(project, QUICK_JOB.format(extra="")) + notify)
        assert sweep_cli(project, "submit", str(g), "--condor", "--wait", "--wait-timeout", "240",
                         "--no-progress") == 0
        capsys.readouterr()
        manifest = json.loads((project / "jobs" / "pool-notify" / "sweep.json").read_text())
        cluster = manifest["submissions"][-1]["cluster"]
        ((path, _, body),) = wait_until(lambda: hook.posts, 120, "the FINAL node's webhook post")
    assert path == f"/hook/{SECRET}"
    assert body["sweep"] == "pool-notify" and body["status"] == "complete" and body["dag_status"] == 0
    assert body["counts"] == {"ok": 1} and body["best"]["metric"] == "f1" and body["best"]["value"] == 0.9
    def mailed() -> str:  # the log also holds the schedd's own mail (its restart report)
        text = condor_pool.mail_log.read_text()
        return text if f"Job {cluster}.0" in text else ""

    mail = wait_until(mailed, 120, "the schedd's mail about the DAGMan job")
    (entry,) = [e for e in mail.split("\n.\n") if f"Job {cluster}.0" in e]
    args = entry.splitlines()[0]
    assert args.startswith("MAIL -s ") and args.endswith(" sweeper@example.org"), args
    dag_dir = Path(manifest["submissions"][-1]["dag"]).parent
    assert "posted to the webhook at http://127.0.0.1" in (dag_dir / "notify.log").read_text()
    for f in (project / "jobs" / "pool-notify").rglob("*"):  # the URL is in no file sweep wrote
        assert not f.is_file() or SECRET.encode() not in f.read_bytes(), f
