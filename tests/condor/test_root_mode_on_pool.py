"""The exploit of the old root mode, on the pool (issue 22, "Critical: root mode").

As the job owner: `mv results/S/driver d.old && ln -s /etc results/S/driver`; the next root `sweep
search` (the documented way to resume) handed the link's target over to the owner (os.chown on
the top folder, os.walk through the link) and copied root's tokens into it. Here a folder of
root's outside the project stands in for /etc. sweep now becomes the owner before it touches a
file, and refuses a symbolic link where it expects its own folder, naming it.
"""
from __future__ import annotations

import os

from tests.condor.owner import run_sweep
from test_search_on_pool import search_grid
from test_sweep_on_pool import condor_pool_schedd


def test_a_link_planted_where_the_driver_s_folder_was_leaves_what_it_points_to_alone(project, condor_pool):
    etc = condor_pool.root / f"etc-{project.name}"  # root's, outside the project: /etc
    (etc / "ssh").mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (etc / "ssh" / "sshd_config").write_text("PermitRootLogin no\n")
    before = {p: (p.lstat().st_uid, p.lstat().st_gid) for p in [etc, *etc.rglob("*")]}
    sweep = "pool-planted"
    g = search_grid(project, sweep, "{sampler: random, trials: 1, parallel: 1, seed: 1}", epochs=1)
    # the owner's doing: results/<sweep>/driver is a link to root's folder
    driver = project / "results" / sweep / "driver"
    driver.parent.mkdir(parents=True)
    driver.symlink_to(etc)
    uid, gid = condor_pool.owner_ids()
    for path in (project / "results", driver.parent, driver):
        os.chown(path, uid, gid, follow_symlinks=False)
    try:
        proc = run_sweep(project, "search", str(g), "--condor", "--no-progress", timeout=300)
        after = {p: (p.lstat().st_uid, p.lstat().st_gid) for p in [etc, *etc.rglob("*")]}
        assert after == before, "what the link points to changed hands"
        assert proc.returncode != 0, proc.stdout + proc.stderr
        err = " ".join(proc.stderr.split())
        assert f"{driver} is a symbolic link" in err and "Traceback" not in proc.stderr, err
        assert not condor_pool_schedd().query(f'SweepName =?= "{sweep}"', projection=["ClusterId"])
    finally:
        condor_pool.tool("condor_rm", "-constraint", f'SweepName =?= "{sweep}"')


def test_the_driver_runs_as_the_owner_with_the_owner_s_own_token_and_no_copy(project, condor_pool):
    """The driver's environment names the owner's own token folder (no copy of any token in the
    sweep's folders), and every file sweep wrote is the owner's (nothing is handed over: sweep
    ran as the owner throughout)."""
    sweep = "pool-owned"
    g = search_grid(project, sweep, "{sampler: random, trials: 1, parallel: 1, seed: 3}", epochs=1)
    try:
        proc = run_sweep(project, "search", str(g), "--condor", "--no-progress", timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        submit = (project / "jobs" / sweep / "driver.sub").read_text()
        assert f"SWEEP_IDTOKENS_DIR={condor_pool.owner_tokens_dir}" in submit and "_CONDOR_SEC" not in submit
        assert not list((project / "results").rglob("tokens"))
        uid = condor_pool.owner_ids()[0]
        foreign = [p for p in (project / "jobs", project / "results") for p in [p, *p.rglob("*")]
                   if p.lstat().st_uid != uid]
        assert not foreign, foreign
        ads = condor_pool_schedd().query(f'SweepName =?= "{sweep}" && SweepRole =?= "driver"', projection=["Owner"])
        assert [ad["Owner"] for ad in ads] in ([condor_pool.job_owner], [])
    finally:
        condor_pool.tool("condor_rm", "-constraint", f'SweepName =?= "{sweep}"')
