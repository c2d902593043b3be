"""Run `sweep` on the personal pool the way a user does: as the job owner.

sweep never runs as root. When the tests run as root, each command is started as root with
SWEEP_JOB_OWNER naming the pool's dedicated owner, so the command line itself becomes that user
before it touches a file (the path an administrator takes); otherwise it runs as the current
user. Either way it authenticates with the owner's own IDTOKEN (SWEEP_IDTOKENS_DIR) and runs in
a subprocess, whose output is copied to this process's stdout/stderr (capsys sees it).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: The session's pool, set by the condor_pool fixture.
POOL = None
#: Variables of this (root) process that a command run as the owner must not inherit.
DROPPED = ("SWEEP_ALLOW_ROOT", "SWEEP_JOB_OWNER", "SWEEP_IDTOKENS_DIR")


def owner_env(extra: dict | None = None, pool=None) -> dict:
    """The environment of a sweep command run as the job owner of `pool` (default: the session's)."""
    pool = pool or POOL
    assert pool is not None, "the condor_pool fixture sets the pool first"
    env = {k: v for k, v in os.environ.items() if k not in DROPPED and not k.upper().startswith("_CONDOR_")}
    env.update(pool.env())
    env["SWEEP_IDTOKENS_DIR"] = str(pool.owner_tokens_dir)
    if os.geteuid() == 0:
        env["SWEEP_JOB_OWNER"] = pool.job_owner
    env.update(extra or {})
    return env


def sweep_command(root: Path, *args: str) -> list[str]:
    """The command line of `sweep --root ROOT ARGS`."""
    return [sys.executable, "-m", "sweep.cli", "--root", str(root), *args]


def run_sweep(root: Path, *args: str, env: dict | None = None, timeout: float = 1200,
              pool=None) -> subprocess.CompletedProcess:
    """`sweep --root ROOT ARGS` as the job owner; its output captured (text)."""
    # cwd: the checkout, which only root writes (python -m puts the cwd first on sys.path)
    return subprocess.run(sweep_command(root, *args), env=owner_env(env, pool), cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def popen_sweep(root: Path, *args: str, env: dict | None = None, pool=None, **kwargs) -> subprocess.Popen:
    """`sweep --root ROOT ARGS` as the job owner, started in the background."""
    return subprocess.Popen(sweep_command(root, *args), env=owner_env(env, pool), cwd=REPO, **kwargs)


def sweep_cli(root: Path, *args: str, env: dict | None = None) -> int:
    """`sweep --root ROOT ARGS` as the job owner; prints its output here; returns its exit status."""
    proc = run_sweep(root, *args, env=env)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    return proc.returncode
