"""sweep never runs as root (issue 22, "Critical: root mode").

Started as root, the command line either becomes the job owner named by SWEEP_JOB_OWNER (a
dedicated unprivileged user) before it touches a file, or refuses and names the command to use.
The exploits of the old root mode are written here as they were found: a job wrapper in a folder
the owner writes, run by root; the token directory (or root's current folder) copied to the
driver; a symbolic link where sweep expects its own folder. The /etc exploit itself (a planted
link under results/, then a root `sweep search` on the pool) is in tests/condor/test_root_mode_on_pool.py.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import grid_text

REPO = Path(__file__).resolve().parents[1]
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="what sweep does when started as root")
OWNER = "sweeptest"


def _pool_tool():
    if "condor_pool" not in sys.modules:
        spec = importlib.util.spec_from_file_location("condor_pool", REPO / "tools" / "condor_pool.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["condor_pool"] = module
        spec.loader.exec_module(module)
    return sys.modules["condor_pool"]


@pytest.fixture
def owner():
    """The dedicated job owner (created by the pool tool when missing)."""
    return _pool_tool().ensure_user(OWNER)


@pytest.fixture
def owner_project(owner, small_dataset):
    """A project folder of the owner's, with the dataset in data/ (outside root's private tmp)."""
    folder = Path(tempfile.mkdtemp(prefix="sweep-root-mode-"))
    (folder / "data").mkdir()
    shutil.copy(small_dataset, folder / "data" / "small.npz")
    for base, dirs, files in os.walk(folder):
        for name in [base, *(os.path.join(base, n) for n in dirs + files)]:
            os.chown(name, owner.pw_uid, owner.pw_gid, follow_symlinks=False)
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def sweep_as_root(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("SWEEP_ALLOW_ROOT", "SWEEP_JOB_OWNER")}
    clean.update(env)
    return subprocess.run([sys.executable, "-m", "sweep.cli", "--root", str(root), *args], env=clean, cwd=REPO,
                          capture_output=True, text=True, timeout=300)


@as_root
def test_root_without_a_job_owner_is_refused_with_the_command_to_use(tmp_path):
    grid = tmp_path / "g.yaml"
    grid.write_text(grid_text("data/x.npz", sweep="refused"))
    proc = sweep_as_root(tmp_path, "submit", str(grid), "--local")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    err = " ".join(proc.stderr.split())
    assert "sweep does not run as root" in err and "runuser -u OWNER -- sweep" in err, err
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "jobs").exists() and not (tmp_path / "results").exists()


@as_root
@pytest.mark.parametrize("name", ["nobody", "root", "no-such-user-here"])
def test_root_and_shared_identities_cannot_own_a_sweep(tmp_path, name):
    proc = sweep_as_root(tmp_path, "status", SWEEP_JOB_OWNER=name)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"the job owner '{name}'" in proc.stderr and "Traceback" not in proc.stderr


@as_root
def test_root_with_a_job_owner_runs_the_owner_s_wrapper_as_the_owner_never_as_root(owner, owner_project):
    """Exploit: a job wrapper in a folder the owner can write (templates, the rendered
    run_job.sh, the code archive), run by a root `sweep submit/resubmit --local`. Now sweep becomes
    the owner first: the wrapper runs as the owner, and everything sweep wrote is the owner's."""
    tpl = owner_project / "tpl"
    tpl.mkdir()
    from sweep.core.render import BUILTIN_TEMPLATES

    (tpl / "job.sub.j2").write_text((BUILTIN_TEMPLATES / "job.sub.j2").read_text())
    (tpl / "run_job.sh.j2").write_text("#!/bin/sh\nid -u > uid.txt\nexit 3\n")
    grid = owner_project / "g.yaml"
    grid.write_text(grid_text("data/small.npz", sweep="whoami", axes="  optimizer: [adam]\n",
                              extra="templates: tpl\n"))
    for path in (tpl, *tpl.iterdir(), grid):
        os.chown(path, owner.pw_uid, owner.pw_gid)
    proc = sweep_as_root(owner_project, "submit", str(grid), "--local", "--no-progress", SWEEP_JOB_OWNER=OWNER)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the wrapper exits 3: the run failed
    (uid,) = [int(p.read_text()) for p in (owner_project / "results" / "whoami").glob("*/uid.txt")]
    assert uid == owner.pw_uid
    written = [p for p in owner_project.rglob("*") if p.lstat().st_uid != owner.pw_uid]
    assert not written, f"written as another user than the owner: {written}"


@as_root
def test_the_search_driver_is_given_no_copy_of_any_token(tmp_path, monkeypatch):
    """Exploit: the driver's environment copied every file of the token directory into the
    owner's folder (with HTCondor's default configuration that setting is empty: root's current
    folder was copied). Now nothing is copied: the driver, run as the same user, reads that user's
    own token where it is (SWEEP_IDTOKENS_DIR, passed on as a path)."""
    from sweep.search.stage import driver_environment

    secrets_dir = tmp_path / "cwd"
    secrets_dir.mkdir()
    (secrets_dir / "root-secret").write_text("root's\n")
    monkeypatch.chdir(secrets_dir)
    monkeypatch.setenv("SWEEP_JOB_OWNER", "daemon")  # the old root mode's owner
    monkeypatch.delenv("SWEEP_IDTOKENS_DIR", raising=False)
    driver_dir = tmp_path / "results" / "s" / "driver"
    driver_dir.mkdir(parents=True)
    env = driver_environment(driver_dir)
    assert not any(driver_dir.rglob("*")), list(driver_dir.rglob("*"))
    assert not any("TOKEN" in k for k in env), env
    own = tmp_path / "my-tokens"
    monkeypatch.setenv("SWEEP_IDTOKENS_DIR", str(own))
    env = driver_environment(driver_dir)
    assert env["SWEEP_IDTOKENS_DIR"] == str(own) and not any(driver_dir.rglob("*"))


def test_a_symlink_where_sweep_expects_its_own_folder_is_refused(tmp_path):
    from sweep.core.errors import SweepError
    from sweep.submit.identity import own_folder

    outside = tmp_path / "etc"
    outside.mkdir()
    project = tmp_path / "project"
    (project / "results" / "s").mkdir(parents=True)
    (project / "results" / "s" / "driver").symlink_to(outside)
    with pytest.raises(SweepError, match=r"results/s/driver is a symbolic link"):
        own_folder(project / "results" / "s" / "driver", top=project)
    (project / "results" / "t").symlink_to(outside)
    with pytest.raises(SweepError, match=r"results/t is a symbolic link"):
        own_folder(project / "results" / "t" / "driver", top=project)
    assert not any(outside.iterdir())
    assert own_folder(project / "results" / "u" / "driver", top=project).is_dir()


def test_the_htcondor_backend_refuses_root(monkeypatch):
    from sweep.core.errors import BackendError
    from sweep.submit.backends import htcondor

    monkeypatch.setattr(os, "geteuid", lambda: 0)
    with pytest.raises(BackendError, match="root may not own HTCondor jobs"):
        _ = htcondor.HTCondorBackend(schedd=object()).schedd


@as_root
def test_the_pool_tool_never_chowns_through_a_link_the_owner_planted(owner, tmp_path):
    """The pool tool (tests, the demo) is the one place where root still hands folders to the
    owner: a link planted where its project folder was, or inside it, leaves the target alone."""
    tool = _pool_tool()
    pool = tool.Pool(Path(tempfile.mkdtemp(prefix="sweep-root-mode-pool-")), job_owner=OWNER)
    pool.root.chmod(0o755)
    try:
        etc = pool.root / "etc"
        (etc / "sub").mkdir(parents=True)
        (etc / "passwd").write_text("root:x:0:0\n")
        project = pool.prepare_dir(pool.root / "project")
        (project / "inside").symlink_to(etc)
        pool.prepare_dir(project)
        assert (project / "inside").lstat().st_uid == owner.pw_uid
        os.rename(project, pool.root / "project.old")
        (pool.root / "project").symlink_to(etc)
        with pytest.raises(tool.PoolError, match="project is not a folder"):
            pool.prepare_dir(pool.root / "project")
        assert {p.lstat().st_uid for p in [etc, *etc.rglob("*")]} == {0}
    finally:
        shutil.rmtree(pool.root, ignore_errors=True)


def test_a_symlink_among_a_sweeps_run_folders_is_refused_and_never_followed(tmp_path):
    """own_folders (every run's results folder before a pool submit): a link planted where a run's
    folder goes, or where the sweep's folder is, is refused by name; nothing is made through it."""
    from sweep.core.errors import SweepError
    from sweep.submit.identity import own_folders

    project, elsewhere = tmp_path / "p", tmp_path / "elsewhere"
    elsewhere.mkdir()
    results = project / "results" / "s"
    results.mkdir(parents=True)
    (results / "b").symlink_to(elsewhere)
    with pytest.raises(SweepError, match=r"results/s/b is a symbolic link"):
        own_folders(results, ["a", "b", "c"], top=project)
    assert (results / "a").is_dir() and not list(elsewhere.iterdir())
    (results / "b").unlink()
    own_folders(results, ["a", "b", "c"], top=project)  # made, and made again: nothing to do
    own_folders(results, ["a", "b", "c"], top=project)
    assert sorted(p.name for p in results.iterdir()) == ["a", "b", "c"]
    linked = project / "results" / "t"
    linked.symlink_to(elsewhere)
    with pytest.raises(SweepError, match="symbolic link"):
        own_folders(linked, ["a"], top=project)
    assert not list(elsewhere.iterdir())
