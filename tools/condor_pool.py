#!/usr/bin/env python3
"""A personal, loopback-only HTCondor pool for sweep's tests and demo.

CLI::

    tools/condor-pool install [--suite SUITE]  # make condor binaries available (cached)
    tools/condor-pool start  [--root DIR] [--cpus N] [--memory-mb MB] [--timeout S] [--suite SUITE]
    tools/condor-pool status [--root DIR]     # exit 0 when running and ready, 1 otherwise
    tools/condor-pool env    [--root DIR]     # eval "$(tools/condor-pool env)"
    tools/condor-pool stop   [--root DIR]     # idempotent; kills every process of the pool

DIR defaults to ``<repo>/.condor-pool``; all pool state lives in ``DIR/local``
(wiped on each start), the config in ``DIR/condor_config``.

Where the binaries come from (``install()``), first match wins:

1. ``$SWEEP_CONDOR_PREFIX`` set: a private prefix there (built if missing).
2. ``condor_master`` already on PATH or in /usr/sbin: used as is.
3. Debian 13+ as root: ``apt-get install -y condor`` (``htcondor`` is a transitional
   dummy package for it).
4. Otherwise (Debian 12): Debian 13's ``condor`` package and its whole library closure
   (libc6 included) are fetched with ``apt-get download`` using a PRIVATE apt state
   (/etc/apt and dpkg's database untouched), unpacked with ``dpkg -x`` into
   ``~/.cache/sweep/condor-prefix-<suite>`` and every condor ELF is ``patchelf``-ed onto
   the prefix's own loader and libraries (as root with a private ~, e.g. /root mode
   700, the default is /var/cache/sweep/condor-prefix-<suite>: DAGMan runs the
   prefix's condor_dagman as the unprivileged job owner). Needs ``apt-get``,
   ``dpkg-deb`` and ``patchelf``. A marker file is written only once patching
   finished, so a half-built prefix is never reused; a file lock serialises concurrent installs.
   ``$SWEEP_CONDOR_SUITE`` picks another suite (``sid`` has 25.x daemons).

``--suite SUITE`` (``install_suite(suite)``) skips 1-3: SUITE's prefix, built when missing, e.g.
a 25.x pool beside a Debian 13 (23.9) one: ``tools/condor-pool start --suite sid --root DIR``.
Two pools coexist when their roots differ: each has its own LOCAL_DIR (locks, sockets, procd
pipe, spool), a free collector port, no shared port.

Python API (standard library only; ``htcondor2`` is imported only by ``client_setup``)::

    inst = install(suite=None, prefix=None, log=print) -> Install
    inst = install_suite(suite, log=print) -> Install   # that suite's private prefix, always
        Install.kind ("system"|"prefix"), .release_dir, .bin_dir, .sbin_dir,
        .libexec_dir, .version()
    pool = Pool(root=None, *, cpus=None, memory_mb=4096, job_owner=None, installation=None)
        pool.root, .local_dir, .config_path, .bin_dir, .sbin_dir, .dagman_path,
        .job_owner (str; as root a dedicated user, DEFAULT_OWNER, created with useradd
        when missing; else the current user), .token_path, .owner_tokens_dir
        pool.start(timeout=60) -> Pool    # idempotent when already running
        pool.wait_ready(timeout=60)       # schedd + slot visible in the collector
        pool.stop(timeout=30)             # idempotent; returns the pids it had to signal
        pool.is_running() -> bool ; pool.status() -> dict ; pool.pids() -> list[int]
        pool.env() -> dict                # CONDOR_CONFIG, PATH (+ SWEEP_CONDOR_POOL)
        pool.tool_env() -> dict           # os.environ minus _CONDOR_*, plus env()
        pool.tool(name, *args, timeout=30, check=False) -> CompletedProcess  # condor_* CLI
        pool.prepare_dir(path) -> Path    # mkdir; as root chown -R to the job owner
        pool.master_pid() -> int|None ; pool.log_tail(lines=25) -> str ; pool.cpus, .memory_mb
        pool.mail_log -> Path            # what the pool's MAIL recorded (nothing is sent)
    client_setup(pool) -> htcondor2 module

Authentication: daemons and the pool's own CLI tools use FS. A Python client must
use IDTOKENS: the PyPI ``htcondor`` 25.x bindings fail FS authentication against Debian
13's 23.9 daemons. ``start`` creates two IDTOKENs for ``job_owner``: the owner's own,
in ``owner_tokens_dir`` (``LOCAL_DIR/user-tokens.<owner>.d``, the owner's, mode 700),
which sweep run as the owner uses (``SWEEP_IDTOKENS_DIR``); and, for this process's
own queries (a test harness as root: root may not own jobs), one in
``LOCAL_DIR/user-tokens.d/submitter``, root's. ``client_setup(pool)`` therefore sets ``CONDOR_CONFIG`` (+PATH) in
``os.environ``, calls ``htcondor2.reload_config()`` and then sets
``htcondor2.param["SEC_CLIENT_AUTHENTICATION_METHODS"] = "IDTOKENS"`` IN-PROCESS.
Do not export ``_CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS`` instead: exported
``_CONDOR_*`` variables leak into DAGMan (getenv) which runs as the job owner and has
no token. Call ``client_setup`` again after any later ``reload_config()``.
Job folders (initialdir, user log) must be writable by the job owner: use
``pool.prepare_dir``. DAGMan: pass ``{"dagman": pool.dagman_path}`` to
``Submit.from_dag`` (or have ``pool.env()["PATH"]`` on PATH), set the returned
Submit's ``initialdir`` to the DAG's folder (its Iwd is otherwise the cwd at *submit*
time) and call ``pool.prepare_dir(dag_dir)`` again after ``from_dag`` wrote its files.

The pool never changes host settings: no kernel tuning, no cgroups, no /etc files,
sockets bound to 127.0.0.1 only, collector on a free port chosen at start.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import getpass
import io
import json
import os
import pwd
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ROOT = REPO_ROOT / ".condor-pool"
DEFAULT_SUITE = "trixie"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
MARKER = ".sweep-condor-prefix-complete"
MASTER_PID_FILE = "master.pid"
TOKEN_NAME = "submitter"
#: The job owner of a pool started by root: a dedicated unprivileged user (created when missing).
DEFAULT_OWNER = "sweeptest"


def ensure_user(name: str) -> pwd.struct_passwd:
    """The local user `name`, created when missing (root only): a system account of its own,
    with its own group and home (/home/<name>), no login shell: a dedicated job owner.

    Raises:
        PoolError: it is missing and cannot be created, or it is root or nobody.
    """
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        r = subprocess.run([useradd, "--system", "--user-group", "--create-home", "--home-dir", f"/home/{name}",
                            "--shell", "/usr/sbin/nologin", name], capture_output=True, text=True)
        if r.returncode != 0:
            raise PoolError(f"could not create the job owner {name}: {r.stderr.strip()}") from None
        pw = pwd.getpwnam(name)
    if pw.pw_uid == 0 or pw.pw_name == "nobody":
        raise PoolError(f"the job owner {name} must be a dedicated unprivileged user")
    return pw

__all__ = ["Install", "Pool", "PoolError", "InstallError", "install", "install_suite", "find_install",
           "client_setup", "DEFAULT_ROOT"]


class PoolError(RuntimeError):
    """The pool could not be started, queried or stopped."""


class InstallError(PoolError):
    """The HTCondor binaries could not be made available."""


def _log_default(msg: str) -> None:
    print(f"[condor-pool] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# installation
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Install:
    """Where a usable set of HTCondor binaries lives."""

    kind: str          # "system" or "prefix"
    release_dir: Path  # the directory holding bin/ sbin/ libexec/condor (…/usr)

    @property
    def bin_dir(self) -> Path:
        return self.release_dir / "bin"

    @property
    def sbin_dir(self) -> Path:
        return self.release_dir / "sbin"

    @property
    def libexec_dir(self) -> Path:
        return self.release_dir / "libexec" / "condor"

    @property
    def lib_dir(self) -> Path:
        return self.release_dir / "lib" / "condor"

    def version(self) -> str:
        out = subprocess.run([str(self.bin_dir / "condor_version")], capture_output=True,
                             text=True, timeout=30, env=_clean_env())
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout else "?"


def _debian_version() -> str:
    try:
        return Path("/etc/debian_version").read_text().strip()
    except OSError:
        return ""


def _debian_major() -> int | None:
    v = _debian_version()
    if not v:
        return None
    head = v.split(".")[0]
    if head.isdigit():
        return int(head)
    return 99 if "/sid" in v or v.startswith(("trixie", "forky", "sid")) else None


def _traversable_by_all(path: Path) -> bool:
    """Whether every existing directory on the way to ``path`` has o+x."""
    for d in [path, *path.parents]:
        if d.exists() and not d.stat().st_mode & 0o001:
            return False
    return True


def default_prefix(suite: str | None = None, *, from_env: bool = True) -> Path:
    """$SWEEP_CONDOR_PREFIX, else ~/.cache/sweep/condor-prefix-<suite>; as root when ~ is
    private (e.g. /root is 700) /var/cache/sweep/condor-prefix-<suite> instead, because
    DAGMan runs the prefix's condor_dagman as the unprivileged job owner. `from_env=False`:
    the suite's own prefix whatever $SWEEP_CONDOR_PREFIX says (see ``install_suite``)."""
    suite = suite or os.environ.get("SWEEP_CONDOR_SUITE") or DEFAULT_SUITE
    env = os.environ.get("SWEEP_CONDOR_PREFIX") if from_env else None
    if env:
        return Path(env).expanduser().resolve()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sweep"
    if os.geteuid() == 0 and not _traversable_by_all(cache):
        cache = Path("/var/cache/sweep")
    return (cache / f"condor-prefix-{suite}").resolve()


def _system_master() -> Path | None:
    found = shutil.which("condor_master")
    if not found and Path("/usr/sbin/condor_master").exists():
        found = "/usr/sbin/condor_master"
    return Path(found).resolve() if found else None


def _prefix_complete(prefix: Path) -> bool:
    return (prefix / MARKER).is_file() and (prefix / "usr" / "sbin" / "condor_master").is_file()


def find_install() -> Install | None:
    """The installation ``install()`` would use, without installing anything."""
    if os.environ.get("SWEEP_CONDOR_PREFIX"):
        p = default_prefix()
        return Install("prefix", p / "usr") if _prefix_complete(p) else None
    master = _system_master()
    if master:
        return Install("system", master.parent.parent)
    p = default_prefix()
    return Install("prefix", p / "usr") if _prefix_complete(p) else None


def install(*, suite: str | None = None, prefix: str | Path | None = None,
            log=_log_default) -> Install:
    """Make the HTCondor binaries available (idempotent, cached); see module docstring."""
    suite = suite or os.environ.get("SWEEP_CONDOR_SUITE") or DEFAULT_SUITE
    if prefix is None and not os.environ.get("SWEEP_CONDOR_PREFIX"):
        master = _system_master()
        if master:
            return Install("system", master.parent.parent)
        major = _debian_major()
        if major is not None and major >= 13 and os.geteuid() == 0 and shutil.which("apt-get"):
            return _apt_install_system(log)
    p = Path(prefix).expanduser().resolve() if prefix else default_prefix(suite)
    return _build_prefix(p, suite, log)


def install_suite(suite: str, log=_log_default) -> Install:
    """Debian `suite`'s HTCondor in its own private prefix (built once, cached), whatever else is
    installed: ``condor-pool --suite sid`` (25.x daemons) on a host whose pool runs Debian 13's
    23.9, e.g. a second pool beside the tests' own. $SWEEP_CONDOR_PREFIX is used only when
    $SWEEP_CONDOR_SUITE names the same suite (it is then that suite's prefix)."""
    same = os.environ.get("SWEEP_CONDOR_SUITE") == suite and os.environ.get("SWEEP_CONDOR_PREFIX")
    return _build_prefix(default_prefix(suite, from_env=bool(same)), suite, log)


def _apt_install_system(log) -> Install:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "condor"]
    log("Debian 13+: " + " ".join(cmd))
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, text=True)
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    master = _system_master()
    if r.returncode != 0 or not master:
        raise InstallError("apt-get install condor failed:\n" + (r.stdout + r.stderr)[-3000:])
    return Install("system", master.parent.parent)


def _dpkg_arch() -> str:
    try:
        return subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "amd64"


def _run(cmd: list[str], what: str, **kw) -> subprocess.CompletedProcess:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    except OSError as e:
        raise InstallError(f"{what}: cannot run {cmd[0]}: {e}") from e
    if r.returncode != 0:
        raise InstallError(f"{what} failed (rc={r.returncode}): {' '.join(cmd[:3])} ...\n"
                           + (r.stdout + r.stderr)[-3000:])
    return r


def _elf_info(path: Path) -> tuple[bool, bool] | None:
    """(is_dynamic, has_interpreter) for an ELF file, None when not ELF."""
    try:
        with open(path, "rb") as f:
            hdr = f.read(64)
            if len(hdr) < 64 or hdr[:4] != b"\x7fELF":
                return None
            is64 = hdr[4] == 2
            end = "<" if hdr[5] == 1 else ">"
            if is64:
                phoff, = struct.unpack_from(end + "Q", hdr, 32)
                phentsize, phnum = struct.unpack_from(end + "HH", hdr, 54)
            else:
                phoff, = struct.unpack_from(end + "I", hdr, 28)
                phentsize, phnum = struct.unpack_from(end + "HH", hdr, 42)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return None
    types = {struct.unpack_from(end + "I", table, i * phentsize)[0] for i in range(phnum)}
    return (2 in types, 3 in types)  # PT_DYNAMIC, PT_INTERP


def _build_prefix(prefix: Path, suite: str, log) -> Install:
    if _prefix_complete(prefix):
        return Install("prefix", prefix / "usr")
    if not prefix.parent.exists():
        prefix.parent.mkdir(parents=True, exist_ok=True)
        prefix.parent.chmod(0o755)
    lock_path = prefix.parent / (prefix.name + ".lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building the same prefix
        if _prefix_complete(prefix):
            return Install("prefix", prefix / "usr")
        for tool in ("apt-get", "apt-cache", "dpkg-deb", "patchelf"):
            if not shutil.which(tool):
                hint = " (apt-get install -y patchelf)" if tool == "patchelf" else ""
                raise InstallError(f"building the HTCondor prefix needs `{tool}` on PATH{hint}")
        t0 = time.time()
        log(f"building HTCondor prefix {prefix} from Debian {suite} (one-off, ~30 s)")
        if prefix.exists():
            shutil.rmtree(prefix)
        work = Path(tempfile.mkdtemp(prefix=prefix.name + ".build-", dir=prefix.parent))
        try:
            _fetch_extract_patch(prefix, suite, work, log)
        except BaseException:
            shutil.rmtree(prefix, ignore_errors=True)
            raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
        inst = Install("prefix", prefix / "usr")
        ver = inst.version()
        if not ver.startswith("$CondorVersion"):
            shutil.rmtree(prefix, ignore_errors=True)
            raise InstallError(f"patched condor_version does not run in {prefix}")
        (prefix / MARKER).write_text(json.dumps(
            {"suite": suite, "version": ver, "built": time.strftime("%Y-%m-%dT%H:%M:%S"),
             "seconds": round(time.time() - t0, 1)}, indent=1) + "\n")
        log(f"prefix ready in {time.time() - t0:.1f} s: {ver}")
        return inst


def _fetch_extract_patch(prefix: Path, suite: str, work: Path, log) -> None:
    arch = _dpkg_arch()
    a = work / "apt"
    debs = work / "debs"
    for d in ("lists/partial", "cache/archives/partial", "state", "prefs.d"):
        (a / d).mkdir(parents=True, exist_ok=True)
    debs.mkdir()
    (a / "sources.list").write_text(f"deb {DEBIAN_MIRROR} {suite} main\n")
    (a / "state" / "status").write_text("")  # empty dpkg status: apt resolves the closure
    opts = []
    for k, v in [("Dir::Etc::SourceList", a / "sources.list"),
                 ("Dir::Etc::SourceParts", "/dev/null"),
                 ("Dir::Etc::Preferences", "/dev/null"),
                 ("Dir::Etc::PreferencesParts", a / "prefs.d"),
                 ("Dir::State", a / "state"), ("Dir::State::Lists", a / "lists"),
                 ("Dir::State::status", a / "state" / "status"), ("Dir::Cache", a / "cache"),
                 ("APT::Architecture", arch), ("APT::Architectures::", arch),
                 ("Debug::NoLocking", "1"), ("APT::Install-Recommends", "0"),
                 ("APT::Sandbox::User", "root" if os.geteuid() == 0 else getpass.getuser())]:
        opts += ["-o", f"{k}={v}"]
    _run(["apt-get", *opts, "-qq", "update"], f"apt-get update ({suite}, private state)")
    show = _run(["apt-cache", *opts, "show", "--no-all-versions", "condor"],
                "apt-cache show condor").stdout
    depends = next((ln[len("Depends:"):] for ln in show.splitlines()
                    if ln.startswith("Depends:")), "")
    libs = set()
    for dep in depends.split(","):
        name = dep.split("|")[0].split("(")[0].strip().split(":")[0]
        if name.startswith("lib") and not name.startswith(
                ("libboost-python", "libpython", "libjs-", "libdate-manip")):
            libs.add(name)
    libs |= {"zlib1g", "libsystemd0"}  # dlopen()ed
    sim = _run(["apt-get", *opts, "install", "-s", *sorted(libs)], "apt-get install -s").stdout
    pkgs = ["condor"] + sorted({ln.split()[1] for ln in sim.splitlines() if ln.startswith("Inst ")})
    log(f"downloading {len(pkgs)} packages")
    _run(["apt-get", *opts, "-qq", "download", *pkgs], "apt-get download", cwd=debs)
    deb_files = sorted(debs.glob("*.deb"))
    prefix.mkdir(parents=True)
    for deb in deb_files:
        _run(["dpkg-deb", "-x", str(deb), str(prefix)], f"dpkg-deb -x {deb.name}")
    (prefix / "packages.txt").write_text("\n".join(d.name for d in deb_files) + "\n")

    triplet = {"amd64": "x86_64-linux-gnu",
               "arm64": "aarch64-linux-gnu"}.get(arch, f"{arch}-linux-gnu")
    lib_dirs = [prefix / "usr/lib", prefix / "usr/lib" / triplet, prefix / "lib" / triplet]
    loader = None
    for d in lib_dirs:
        for cand in sorted(d.glob("ld-linux*.so.*")):
            if cand.is_file() and not cand.is_symlink():
                loader = cand
                break
        if loader:
            break
    if loader is None:
        raise InstallError(f"no dynamic loader found in {prefix}")
    rpath = ":".join(str(d) for d in lib_dirs)

    condor_deb = next((d for d in deb_files if d.name.startswith("condor_")), None)
    if condor_deb is None:
        raise InstallError("condor .deb was not downloaded")
    tar_bytes = _run_bytes(["dpkg-deb", "--fsys-tarfile", str(condor_deb)])
    n_exe = n_lib = 0
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tf:
        names = [m.name for m in tf.getmembers() if m.isreg()]
    for name in names:
        f = prefix / name.lstrip("./")
        if f.is_symlink() or not f.is_file():
            continue
        info = _elf_info(f)
        if info is None or not info[0]:
            continue  # not ELF, or static
        if info[1]:
            _run(["patchelf", "--set-interpreter", str(loader), "--force-rpath", "--set-rpath",
                  rpath, str(f)], f"patchelf {f.name}")
            n_exe += 1
        else:
            _run(["patchelf", "--force-rpath", "--set-rpath", rpath, str(f)], f"patchelf {f.name}")
            n_lib += 1
    log(f"patched {n_exe} executables and {n_lib} shared objects")


def _run_bytes(cmd: list[str]) -> bytes:
    r = subprocess.run(cmd, capture_output=True)
    if r.returncode != 0:
        raise InstallError(f"{' '.join(cmd)} failed: {r.stderr.decode(errors='replace')[-2000:]}")
    return r.stdout


# --------------------------------------------------------------------------------------
# the pool
# --------------------------------------------------------------------------------------
CONFIG_TEMPLATE = """\
## Personal HTCondor pool written by sweep's tools/condor_pool.py -- regenerated on start.
## Everything lives under {root}; loopback only; host settings untouched.
RELEASE_DIR = {release}
LOCAL_DIR   = {local}
BIN     = $(RELEASE_DIR)/bin
SBIN    = $(RELEASE_DIR)/sbin
LIB     = $(RELEASE_DIR)/lib/condor
LIBEXEC = $(RELEASE_DIR)/libexec/condor
SHARE   = $(RELEASE_DIR)/share/condor
ETC     = $(LOCAL_DIR)/etc
RUN     = $(LOCAL_DIR)/run
LOG     = $(LOCAL_DIR)/log
LOCK    = $(LOCAL_DIR)/lock
SPOOL   = $(LOCAL_DIR)/spool
EXECUTE = $(LOCAL_DIR)/execute
CRED_STORE_DIR = $(LOCAL_DIR)/cred_dir
LOCAL_CONFIG_FILE =
LOCAL_CONFIG_DIR  =
REQUIRE_LOCAL_CONFIG_FILE = false
# keep security material out of /etc/condor and ~/.condor
SEC_PASSWORD_DIRECTORY     = $(LOCAL_DIR)/passwords.d
SEC_TOKEN_SYSTEM_DIRECTORY = $(LOCAL_DIR)/tokens.d
SEC_TOKEN_DIRECTORY        = $(LOCAL_DIR)/user-tokens.d
SEC_KNOWN_HOSTS            = $(LOCAL_DIR)/known_hosts
# FS-auth rendezvous dirs (normally /tmp); mode 1777
FS_LOCAL_DIR               = $(LOCAL_DIR)/fsauth
# mail HTCondor sends (a job's `notification`) is recorded, never sent: MAIL_SCRIPT appends
# each one (its arguments, then its text) to $(LOCAL_DIR)/mail.log
MAIL     = $(LOCAL_DIR)/mail.sh
# empty: a SENDMAIL set takes the place of MAIL
SENDMAIL =
{ids}
# never touch the host: no kernel tuning (sysctls, /etc/sysctl.d), no cgroups
ENABLE_KERNEL_TUNING = FALSE
LINUX_KERNEL_TUNING_SCRIPT =
BASE_CGROUP =
# only the curl plugin (the python plugins need modules the host python may lack)
FILETRANSFER_PLUGINS = $(LIBEXEC)/curl_plugin

use ROLE: Personal
CONDOR_HOST         = 127.0.0.1
COLLECTOR_HOST      = 127.0.0.1:{port}
NETWORK_INTERFACE   = 127.0.0.1
BIND_ALL_INTERFACES = FALSE
DAEMON_LIST = MASTER COLLECTOR NEGOTIATOR SCHEDD STARTD
USE_SHARED_PORT = false
COLLECTOR_NAME = sweep-personal-pool

# one partitionable slot
NUM_CPUS = {cpus}
MEMORY   = {memory}
NUM_SLOTS = 1
NUM_SLOTS_TYPE_1 = 1
SLOT_TYPE_1 = cpus=100%, memory=100%, disk=100%
SLOT_TYPE_1_PARTITIONABLE = TRUE
START = TRUE
SUSPEND = FALSE
PREEMPT = FALSE
KILL = FALSE
WANT_SUSPEND = FALSE
WANT_VACATE = FALSE

# loopback pool of one user: authentication required, any authenticated local identity
# may do anything.  FS for daemons and local tools; IDTOKENS for Python clients (root
# submits as the unprivileged job owner; 25.x bindings fail FS against 23.x daemons).
SEC_DEFAULT_AUTHENTICATION = REQUIRED
SEC_DEFAULT_AUTHENTICATION_METHODS = FS, IDTOKENS
SEC_CLIENT_AUTHENTICATION_METHODS  = FS, IDTOKENS
ALLOW_READ          = *
ALLOW_WRITE         = *
ALLOW_DAEMON        = *
ALLOW_ADMINISTRATOR = *
ALLOW_ADVERTISE     = *
ALLOW_NEGOTIATOR    = *
ALLOW_CONFIG        = *

# fast cycles for a test pool
UPDATE_INTERVAL = 2
POLLING_INTERVAL = 2
NEGOTIATOR_INTERVAL = 2
NEGOTIATOR_CYCLE_DELAY = 2
NEGOTIATOR_MIN_INTERVAL = 1
SCHEDD_INTERVAL = 5
# the schedd evaluates periodic_hold/_release/_remove every N s (default 60, backing off to 1200):
# a memory hold would wait up to a minute for its release, a runtime-limit hold for its removal
PERIODIC_EXPR_INTERVAL = 2
MAX_PERIODIC_EXPR_INTERVAL = 5
# a submit makes the schedd advertise + ask for a negotiation at most every N s (default 5)
SCHEDD_MIN_INTERVAL = 1
# procd samples /proc every N s (default 60): short jobs would report ~zero usage
PROCD_MAX_SNAPSHOT_INTERVAL = 1
STARTER_UPDATE_INTERVAL = 2
STARTER_INITIAL_UPDATE_INTERVAL = 1
SHADOW_QUEUE_UPDATE_INTERVAL = 2
STARTD_CRON_JOBLIST =
SINGULARITY = /bin/false
# DAGMan treats "node log in /tmp" as fatal under the default DAGMAN_USE_STRICT=1
DAGMAN_USE_STRICT = 0
# DAGMan polls its node logs every N s (default 5)
DAGMAN_USER_LOG_SCAN_INTERVAL = 1
STARTER_ALLOW_RUNAS_OWNER = TRUE

# memory policy: a job whose measured MemoryUsage exceeds RequestMemory goes on hold
use POLICY: HOLD_IF_MEMORY_EXCEEDED
"""

#: The pool's MAIL: HTCondor runs it as `MAIL -s SUBJECT [-f FROM] ADDRESS...` with the text
#: on stdin; it records both in the mail log and sends nothing.
MAIL_SCRIPT = """#!/bin/sh
# the personal pool's MAIL (tools/condor_pool.py): records what HTCondor asks it to send
{{ printf 'MAIL'; for a in "$@"; do printf ' %s' "$a"; done; printf '\\n'; /bin/cat; printf '\\n.\\n'; }} >> {log}
"""
MAIL_LOG = "mail.log"

LOCAL_SUBDIRS = ("etc", "run", "log", "lock", "spool", "execute", "cred_dir",
                 "passwords.d", "tokens.d", "user-tokens.d", "fsauth")


def _clean_env(extra: dict | None = None) -> dict:
    """os.environ without CONDOR_CONFIG and _CONDOR_* (they would reconfigure our daemons)."""
    env = {k: v for k, v in os.environ.items()
           if k != "CONDOR_CONFIG" and not k.upper().startswith("_CONDOR_")}
    env.update(extra or {})
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, session id, start time in ticks) of a process, None when gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = raw[raw.rfind(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[3]), int(rest[19])


def _alive(pid: int) -> bool:
    st = _proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def _own_ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        st = _proc_stat(pid)
        if st is None:
            break
        pid = st[1]
    return pids


class Pool:
    """A personal HTCondor pool rooted at ``root`` (see module docstring)."""

    def __init__(self, root: str | Path | None = None, *, cpus: int | None = None,
                 memory_mb: int = 4096, job_owner: str | None = None,
                 installation: Install | None = None):
        self.root = Path(root or DEFAULT_ROOT).expanduser().resolve()
        self.local_dir = self.root / "local"
        self.config_path = self.root / "condor_config"
        self.cpus = int(cpus or len(os.sched_getaffinity(0)) or 1)
        self.memory_mb = int(memory_mb)
        if job_owner is None:
            job_owner = DEFAULT_OWNER if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        self.job_owner = job_owner
        self._install = installation
        self._proc: subprocess.Popen | None = None

    # ---- paths -----------------------------------------------------------------------
    @property
    def installation(self) -> Install:
        if self._install is None:
            release = self._config_value("RELEASE_DIR")
            if release:
                kind = "prefix" if (Path(release).parent / MARKER).exists() else "system"
                self._install = Install(kind, Path(release))
            else:
                self._install = find_install()
            if self._install is None:
                raise PoolError("HTCondor is not installed: run `tools/condor-pool install`")
        return self._install

    @property
    def bin_dir(self) -> Path:
        return self.installation.bin_dir

    @property
    def sbin_dir(self) -> Path:
        return self.installation.sbin_dir

    @property
    def dagman_path(self) -> Path:
        return self.bin_dir / "condor_dagman"

    @property
    def token_path(self) -> Path:
        return self.local_dir / "user-tokens.d" / TOKEN_NAME

    @property
    def owner_tokens_dir(self) -> Path:
        """The job owner's own IDTOKEN folder (the owner's, mode 700): SWEEP_IDTOKENS_DIR."""
        return self.local_dir / f"user-tokens.{self.job_owner}.d"

    @property
    def mail_log(self) -> Path:
        """What the pool's MAIL recorded: one entry per mail, `MAIL ARGS...`, the text, then `.`."""
        return self.local_dir / MAIL_LOG

    @property
    def master_log(self) -> Path:
        return self.local_dir / "log" / "MasterLog"

    def _config_value(self, key: str) -> str | None:
        try:
            for line in self.config_path.read_text().splitlines():
                k, sep, v = line.partition("=")
                if sep and k.strip() == key:
                    return v.strip()
        except OSError:
            pass
        return None

    # ---- environment -----------------------------------------------------------------
    def env(self) -> dict:
        """Variables a client of this pool needs: CONDOR_CONFIG, PATH, SWEEP_CONDOR_POOL."""
        path = os.environ.get("PATH", "/usr/bin:/bin")
        parts = [str(self.bin_dir), str(self.sbin_dir)]
        rest = [p for p in path.split(os.pathsep) if p and p not in parts]
        return {"CONDOR_CONFIG": str(self.config_path),
                "PATH": os.pathsep.join(parts + rest),
                "SWEEP_CONDOR_POOL": str(self.root)}

    def tool_env(self) -> dict:
        """A full environment for subprocesses using this pool (no inherited _CONDOR_*)."""
        return _clean_env(self.env())

    def tool(self, name: str, *args: str, timeout: float = 30,
             check: bool = False) -> subprocess.CompletedProcess:
        """Run one of the pool's condor_* command-line tools against this pool."""
        exe = self.bin_dir / name
        if not exe.exists():
            exe = self.sbin_dir / name
        r = subprocess.run([str(exe), *args], capture_output=True, text=True,
                           timeout=timeout, env=self.tool_env())
        if check and r.returncode != 0:
            raise PoolError(f"{name} {' '.join(args)} failed: {(r.stdout + r.stderr)[-2000:]}")
        return r

    def owner_ids(self) -> tuple[int, int]:
        pw = pwd.getpwnam(self.job_owner)
        return pw.pw_uid, pw.pw_gid

    def prepare_dir(self, path: str | Path) -> Path:
        """Create ``path`` (mode 755) so that the job owner can write in it.

        As root, ``path`` and everything already below it is chowned to the job owner
        (call it again after writing files there, e.g. after ``Submit.from_dag``), through
        directory descriptors (os.fwalk, fchown, O_NOFOLLOW): a symbolic link is never
        followed, and ``path`` itself being one is a PoolError naming it.
        Raises PoolError when the job owner cannot traverse an existing parent
        directory (nothing outside ``path`` is chmod-ed).
        """
        p = Path(path).absolute()
        created = [d for d in (p, *p.parents) if not d.exists()]
        p.mkdir(parents=True, exist_ok=True)
        for d in created:
            os.chmod(d, 0o755)
        if os.geteuid() != 0 or self.job_owner == "root":
            return p
        uid, gid = self.owner_ids()
        for parent in p.parents:
            if not parent.stat().st_mode & 0o001:
                raise PoolError(f"job owner {self.job_owner} cannot enter {parent} (mode "
                                f"{parent.stat().st_mode & 0o7777:o}); put job folders "
                                f"elsewhere, e.g. under {self.root} or /tmp")
        # through descriptors, never following a link: the folder may hold what the owner planted
        # (a link to /etc where a folder was), and root must not chown through it
        try:
            fd = os.open(p, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError as e:
            raise PoolError(f"{p} is not a folder (a symbolic link?): {e.strerror}; remove it") from None
        try:
            os.fchown(fd, uid, gid)
            for _top, dirs, files, dir_fd in os.fwalk(".", dir_fd=fd, follow_symlinks=False):
                for name in dirs + files:
                    os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)
        finally:
            os.close(fd)
        return p

    # ---- lifecycle -------------------------------------------------------------------
    def _read_pidfile(self) -> tuple[int, int] | None:
        try:
            parts = (self.local_dir / MASTER_PID_FILE).read_text().split()
            return int(parts[0]), int(parts[1])
        except (OSError, ValueError, IndexError):
            return None

    def master_pid(self) -> int | None:
        """The pid of this pool's running condor_master, else None."""
        rec = self._read_pidfile()
        if not rec:
            return None
        st = _proc_stat(rec[0])
        if st is None or st[0] in ("Z", "X") or st[3] != rec[1]:
            return None
        return rec[0]

    def is_running(self) -> bool:
        return self.master_pid() is not None

    def write_config(self) -> Path:
        ids = "# not root: daemons and jobs run as the current user"
        if os.geteuid() == 0:
            ids = ("# root on a host without a `condor` account: daemons run as root,\n"
                   "# jobs as their (unprivileged) owner\nCONDOR_IDS = 0.0")
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(CONFIG_TEMPLATE.format(
            root=self.root, release=self.installation.release_dir, local=self.local_dir,
            ids=ids, port=_free_port(), cpus=self.cpus, memory=self.memory_mb))
        return self.config_path

    def start(self, timeout: float = 60) -> Pool:
        """Install if needed, write the config, start condor_master, wait until ready."""
        if self.is_running():
            self.wait_ready(timeout)
            return self
        if self._install is None:
            self._install = install()
        if os.geteuid() == 0:
            ensure_user(self.job_owner)
        if os.geteuid() == 0 and self.job_owner != "root" and not (
                _traversable_by_all(self.dagman_path.parent)
                and self.dagman_path.stat().st_mode & 0o001):
            raise PoolError(f"the job owner {self.job_owner} cannot run {self.dagman_path} "
                            "(DAGMan runs as the job owner): put the prefix in a world-"
                            "readable place, e.g. SWEEP_CONDOR_PREFIX=/var/cache/sweep/"
                            "condor-prefix-trixie")
        self.stop()  # leftovers of a crashed earlier run with the same root
        self.write_config()
        if self.local_dir.exists():
            shutil.rmtree(self.local_dir)
        for d in LOCAL_SUBDIRS:
            (self.local_dir / d).mkdir(parents=True, exist_ok=True)
        for d in ("passwords.d", "tokens.d", "user-tokens.d"):
            os.chmod(self.local_dir / d, 0o700)
        os.chmod(self.local_dir / "fsauth", 0o1777)
        mail = self.local_dir / "mail.sh"
        mail.write_text(MAIL_SCRIPT.format(log=shlex.quote(str(self.mail_log))))
        os.chmod(mail, 0o755)
        # HTCondor runs MAIL with the job owner's privileges (the schedd for a scheduler-universe
        # job such as DAGMan, the shadow for the others): the log is the pool's, writable by any
        self.mail_log.touch()
        os.chmod(self.mail_log, 0o666)
        os.chmod(self.local_dir, 0o755)
        os.chmod(self.root, self.root.stat().st_mode | 0o055)
        out = open(self.local_dir / "master.stdout", "wb")
        self._proc = subprocess.Popen(
            [str(self.sbin_dir / "condor_master"), "-f"], stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT, env=self.tool_env(),
            start_new_session=True, cwd=str(self.local_dir))  # setsid: own session
        out.close()
        st = _proc_stat(self._proc.pid)
        (self.local_dir / MASTER_PID_FILE).write_text(
            f"{self._proc.pid} {st[3] if st else 0}\n")
        try:
            self._create_token(timeout)
            self.create_token(self.job_owner)
            self.wait_ready(timeout)
        except BaseException:
            tail = self.log_tail()
            self.stop()
            if isinstance(sys.exc_info()[1], PoolError):
                raise PoolError(f"{sys.exc_info()[1]}\n{tail}") from None
            raise
        return self

    def _create_token(self, timeout: float) -> None:
        """IDTOKEN for the job owner; the collector makes the POOL signing key on startup."""
        key = self.local_dir / "passwords.d" / "POOL"
        deadline = time.time() + timeout
        while not (key.exists() and key.stat().st_size > 0):
            if not self.is_running():
                raise PoolError("condor_master exited during startup")
            if time.time() > deadline:
                raise PoolError(f"no POOL signing key after {timeout:.0f} s")
            time.sleep(0.1)
        uid_domain = self.tool("condor_config_val", "UID_DOMAIN", check=True).stdout.strip()
        self.tool("condor_token_create", "-identity", f"{self.job_owner}@{uid_domain}",
                  "-token", TOKEN_NAME, check=True)
        if not self.token_path.exists():
            raise PoolError(f"condor_token_create wrote no {self.token_path}")

    def create_token(self, user: str) -> Path:
        """An IDTOKEN for a local user, in a folder of its own (LOCAL_DIR/user-tokens.<user>.d,
        mode 700, the user's when we are root), for sweep run as that user (SWEEP_IDTOKENS_DIR=
        <folder>). Returns the folder."""
        folder = self.local_dir / f"user-tokens.{user}.d"
        folder.mkdir(mode=0o700, exist_ok=True)
        uid_domain = self.tool("condor_config_val", "UID_DOMAIN", check=True).stdout.strip()
        token = self.tool("condor_token_create", "-identity", f"{user}@{uid_domain}", check=True).stdout.strip()
        if not token:
            raise PoolError(f"condor_token_create printed no token for {user}")
        path = folder / TOKEN_NAME
        path.write_text(token + "\n")
        path.chmod(0o600)
        if os.geteuid() == 0:
            pw = pwd.getpwnam(user)
            for p in (folder, path):
                os.chown(p, pw.pw_uid, pw.pw_gid, follow_symlinks=False)
        return folder

    def _visible(self) -> tuple[bool, bool]:
        try:
            s = self.tool("condor_status", "-schedd", "-af", "Name", timeout=10)
            t = self.tool("condor_status", "-startd", "-af", "Name", timeout=10)
        except subprocess.TimeoutExpired:
            return False, False
        return (s.returncode == 0 and bool(s.stdout.strip()),
                t.returncode == 0 and bool(t.stdout.strip()))

    def wait_ready(self, timeout: float = 60) -> None:
        """Block until the schedd and the slot are in the collector (PoolError on timeout)."""
        deadline = time.time() + timeout
        while True:
            if not self.is_running():
                raise PoolError(f"condor_master of {self.root} is not running")
            schedd, slot = self._visible()
            if schedd and slot:
                return
            if time.time() > deadline:
                raise PoolError(f"pool {self.root} not ready after {timeout:.0f} s "
                                f"(schedd visible: {schedd}, slot visible: {slot})")
            time.sleep(0.25)

    def log_tail(self, lines: int = 25) -> str:
        out = []
        for p in (self.local_dir / "master.stdout", self.master_log):
            try:
                text = p.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            out.append(f"---- tail of {p} ----\n" + "\n".join(text))
        return "\n".join(out)

    def pids(self) -> list[int]:
        """Every live process belonging to this pool: the master's session (daemons),
        condor_* processes configured with our config, and jobs in our EXECUTE dir."""
        rec = self._read_pidfile()
        sid, t0 = rec if rec else (None, 0)
        cfg = f"CONDOR_CONFIG={self.config_path}".encode()
        scratch = f"_CONDOR_SCRATCH_DIR={self.local_dir / 'execute'}/".encode()
        skip = _own_ancestors()
        found: set[int] = set()
        parent: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in skip:
                continue
            pid = int(entry)
            st = _proc_stat(pid)
            if st is None or st[0] in ("Z", "X"):
                continue
            parent[pid] = st[1]
            if sid is not None and st[2] == sid and st[3] >= t0:
                found.add(pid)  # the master and whatever stayed in its session
                continue
            try:  # daemons call setsid() themselves: recognise them by their config
                env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                continue
            if (comm.startswith("condor_") and cfg in env) or any(
                    e.startswith(scratch) for e in env):
                found.add(pid)
        # plus every descendant of those (job children, helpers)
        changed = True
        while changed:
            changed = False
            for pid, ppid in parent.items():
                if pid not in found and ppid in found:
                    found.add(pid)
                    changed = True
        return sorted(found)

    def stop(self, timeout: float = 30) -> list[int]:
        """condor_off -master, then SIGTERM/SIGKILL whatever of the pool is left."""
        pid = self.master_pid()
        if pid is not None and self.config_path.exists():
            try:
                self.tool("condor_off", "-master", timeout=10)
            except (subprocess.TimeoutExpired, PoolError, OSError):
                pass
            deadline = time.time() + timeout
            while self._master_alive(pid) and time.time() < deadline:
                time.sleep(0.2)
        signalled = []
        for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
            left = self.pids()
            if not left:
                break
            for p in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(p, sig)
            signalled += [p for p in left if p not in signalled]
            deadline = time.time() + wait
            while time.time() < deadline and any(_alive(p) for p in left):
                if self._proc is not None:
                    self._proc.poll()
                time.sleep(0.1)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=1)
            self._proc = None
        left = self.pids()
        if left:
            raise PoolError(f"processes of pool {self.root} survived SIGKILL: {left}")
        with contextlib.suppress(FileNotFoundError):
            (self.local_dir / MASTER_PID_FILE).unlink()
        return signalled

    def _master_alive(self, pid: int) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            return self._proc.poll() is None
        return _alive(pid)

    def status(self) -> dict:
        pid = self.master_pid()
        d = {"root": str(self.root), "config": str(self.config_path), "running": pid is not None,
             "master_pid": pid, "job_owner": self.job_owner}
        try:
            inst = self.installation
            d.update(install=inst.kind, release_dir=str(inst.release_dir))
        except PoolError:
            d.update(install=None)
        if pid is not None:
            schedd, slot = self._visible()
            d.update(schedd_visible=schedd, slot_visible=slot, ready=schedd and slot,
                     collector=self._config_value("COLLECTOR_HOST"),
                     processes=len(self.pids()))
            r = self.tool("condor_status", "-af", "Name", "Cpus", "Memory", timeout=10)
            d["slots"] = r.stdout.strip().splitlines()
        else:
            d["ready"] = False
        return d


def client_setup(pool: Pool):
    """Point this process's htcondor2 bindings at ``pool`` and authenticate with IDTOKENS.

    Sets CONDOR_CONFIG and PATH in ``os.environ`` (so subprocesses and DAGMan find the
    pool and condor_dagman), calls ``htcondor2.reload_config()`` and then sets
    ``htcondor2.param["SEC_CLIENT_AUTHENTICATION_METHODS"] = "IDTOKENS"`` in-process
    (never as an exported _CONDOR_ variable, which would leak into DAGMan). As root
    this makes the client act as ``pool.job_owner`` (root may not own jobs).
    Returns the htcondor2 module.
    """
    import htcondor2

    for k in [k for k in os.environ if k.upper().startswith("_CONDOR_")]:
        del os.environ[k]
    os.environ.update(pool.env())
    htcondor2.reload_config()
    htcondor2.param["SEC_CLIENT_AUTHENTICATION_METHODS"] = "IDTOKENS"
    return htcondor2


def as_job_owner(pool: Pool, fn) -> int:
    """Call ``fn()`` as ``pool.job_owner`` with its own IDTOKEN folder (SWEEP_IDTOKENS_DIR): here
    when this process is not root; as root in a forked child that drops root for good first
    (setgroups, setgid, setuid), so that sweep code called in-process never runs as root. Returns
    the exit status (0 when ``fn`` returned; SystemExit's code; 1 on an exception, printed)."""
    os.environ["SWEEP_IDTOKENS_DIR"] = str(pool.owner_tokens_dir)
    if os.geteuid() != 0:
        fn()
        return 0
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            # the drop the sweep command makes (fn runs sweep code, so sweep is importable here)
            from sweep.submit.identity import ALLOW_ROOT_VAR, OWNER_VAR, run_as_owner

            os.environ[OWNER_VAR] = pool.job_owner
            os.environ.pop(ALLOW_ROOT_VAR, None)
            run_as_owner([])
            fn()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:  # noqa: BLE001 - the child reports any failure, then exits
            import traceback

            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------
def _shell_quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="condor-pool", description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["install", "start", "stop", "status", "env"])
    ap.add_argument("--root", default=os.environ.get("SWEEP_CONDOR_POOL") or str(DEFAULT_ROOT),
                    help="pool directory (default: $SWEEP_CONDOR_POOL or <repo>/.condor-pool)")
    ap.add_argument("--cpus", type=int, default=None, help="slot CPUs (default: all cores)")
    ap.add_argument("--memory-mb", type=int, default=4096, help="slot memory in MB")
    ap.add_argument("--job-owner", default=None,
                    help=f"job owner (default as root: {DEFAULT_OWNER}, a dedicated user created when missing)")
    ap.add_argument("--timeout", type=float, default=60, help="seconds to wait for readiness")
    ap.add_argument("--suite", default=None,
                    help="install/start: Debian SUITE's condor in a private prefix whatever is installed "
                         "(sid: 25.x daemons); give the new pool its own --root")
    a = ap.parse_args(argv)
    pool = Pool(a.root, cpus=a.cpus, memory_mb=a.memory_mb, job_owner=a.job_owner)
    t0 = time.time()
    try:
        if a.suite and a.command in ("install", "start"):
            pool = Pool(a.root, cpus=a.cpus, memory_mb=a.memory_mb, job_owner=a.job_owner,
                        installation=install_suite(a.suite))
        if a.command == "install":
            inst = pool.installation if a.suite else install()
            print(f"{inst.kind}: {inst.release_dir} ({inst.version()}) in {time.time() - t0:.1f} s")
        elif a.command == "start":
            was = pool.is_running()
            pool.start(timeout=a.timeout)
            print(f"pool {'already running' if was else 'ready'} in {time.time() - t0:.1f} s: "
                  f"{pool.root} (master pid {pool.master_pid()})")
            print(f'use it with: eval "$({REPO_ROOT}/tools/condor-pool env --root {pool.root})"')
        elif a.command == "stop":
            killed = pool.stop()
            print(f"pool {pool.root} stopped in {time.time() - t0:.1f} s"
                  + (f" (signalled {len(killed)} processes)" if killed else ""))
        elif a.command == "status":
            st = pool.status()
            print(json.dumps(st, indent=1))
            return 0 if st.get("ready") else 1
        elif a.command == "env":
            for k, v in pool.env().items():
                if k == "PATH":
                    print(f'export PATH={_shell_quote(f"{pool.bin_dir}:{pool.sbin_dir}")}:"$PATH"')
                else:
                    print(f"export {k}={_shell_quote(v)}")
            # sweep authenticates with the owner's own token; as root it becomes the owner first
            print(f"export SWEEP_IDTOKENS_DIR={_shell_quote(str(pool.owner_tokens_dir))}")
            if os.geteuid() == 0:
                print(f"export SWEEP_JOB_OWNER={_shell_quote(pool.job_owner)}")
    except PoolError as e:
        print(f"condor-pool {a.command}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
