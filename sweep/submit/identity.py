"""Who sweep runs as: never root.

A sweep's folders, its jobs and the driver of a search belong to one user, the job owner
(HTCondor does not let root own jobs). So when `sweep` is started as root it becomes that user
before it reads an argument or touches a file: ``SWEEP_JOB_OWNER`` names the owner, a dedicated
unprivileged account (not root, not ``nobody``, which every root-run service on a machine
shares); sweep then drops root for good (supplementary groups, group, user) and from there on
works, submits and authenticates to the schedd as that user, with that user's own IDTOKEN
(``SWEEP_IDTOKENS_DIR``) or FS authentication. Without ``SWEEP_JOB_OWNER`` it refuses and prints
the command to use instead (``runuser -u OWNER -- sweep ...``). ``SWEEP_ALLOW_ROOT=1`` lets root
use sweep on root's own files without any other user involved: the local backend only (the
HTCondor backend refuses root, :func:`refuse_condor_as_root`).
"""

from __future__ import annotations

import os
import pwd
import shlex
import stat
from collections.abc import Iterable
from pathlib import Path

from ..core.errors import BackendError, SweepError

#: The job owner root switches to.
OWNER_VAR = "SWEEP_JOB_OWNER"
#: Root on its own files, local backend only.
ALLOW_ROOT_VAR = "SWEEP_ALLOW_ROOT"
#: Names and uids every root-run service on a machine may share: never a sweep's owner.
SHARED_NAMES = frozenset({"nobody", "nfsnobody", "nogroup"})
SHARED_UIDS = frozenset({65534, 4294967294, 4294967295})


class RootRefused(SweepError):
    """sweep was started as root and will not run as root (no job owner named, or one that
    cannot be a sweep's owner)."""


def dedicated_owner(name: str) -> pwd.struct_passwd:
    """The account `name`, when it can own a sweep: it exists, is not root (uid 0) and is not an
    identity shared by a machine's services (``nobody``).

    Raises:
        RootRefused: it cannot, with why.
    """
    try:
        owner = pwd.getpwnam(name)
    except KeyError:
        raise RootRefused(f"the job owner '{name}' ({OWNER_VAR}) is not a user of this machine") from None
    if owner.pw_uid == 0:
        raise RootRefused(f"the job owner '{name}' ({OWNER_VAR}) is root (uid 0): name an unprivileged user")
    if owner.pw_name in SHARED_NAMES or owner.pw_uid in SHARED_UIDS:
        raise RootRefused(f"the job owner '{name}' ({OWNER_VAR}) is an identity every root-run service on this "
                          "machine shares: create a dedicated user for the sweep's jobs (useradd)")
    return owner


def run_as_owner(argv: list[str]) -> pwd.struct_passwd | None:
    """Called first by the command line, before it parses `argv` or touches a file. Not root:
    nothing to do (None). Root with ``SWEEP_JOB_OWNER``: become that user for good (setgroups to
    its groups, setgid, setuid; HOME, USER, LOGNAME set to its own) and return its entry. Root with
    ``SWEEP_ALLOW_ROOT=1`` and no owner: stay root (None; the HTCondor backend will refuse).

    Raises:
        RootRefused: root with neither, naming the command to use; an owner that cannot own a
            sweep (:func:`dedicated_owner`); a drop that did not hold.
    """
    if os.geteuid() != 0:
        return None
    name = os.environ.get(OWNER_VAR, "").strip()
    if not name:
        if os.environ.get(ALLOW_ROOT_VAR) == "1":
            return None
        command = shlex.join(["runuser", "-u", "OWNER", "--", "sweep", *argv])
        raise RootRefused("sweep does not run as root (root may not own HTCondor jobs, and a sweep's folders are "
                          "its job owner's): run it as the user who owns the sweep, e.g. "
                          f"`{command}`, or set {OWNER_VAR}=OWNER (a dedicated unprivileged user) and sweep becomes "
                          "that user before it touches a file")
    owner = dedicated_owner(name)
    os.setgroups(os.getgrouplist(owner.pw_name, owner.pw_gid))
    os.setgid(owner.pw_gid)
    os.setuid(owner.pw_uid)
    if os.getuid() != owner.pw_uid or os.geteuid() != owner.pw_uid or os.getegid() != owner.pw_gid:
        raise RootRefused(f"could not become the job owner '{name}'")
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:  # pragma: no cover - the kernel did not drop the saved uid
        raise RootRefused(f"switching to the job owner '{name}' left a way back to root: stopped")
    os.environ.update(HOME=owner.pw_dir, USER=owner.pw_name, LOGNAME=owner.pw_name)
    return owner


def refuse_condor_as_root() -> None:
    """Root (``SWEEP_ALLOW_ROOT``) may not use the HTCondor backend: HTCondor does not let root
    own jobs, and sweep no longer submits for another user.

    Raises:
        BackendError: when this process is root.
    """
    if os.geteuid() == 0:
        raise BackendError("root may not own HTCondor jobs: run sweep as the job owner "
                           f"(`runuser -u OWNER -- sweep ...`, or {OWNER_VAR}=OWNER)")


def own_folder(path: Path, top: Path | None = None) -> Path:
    """`path`, a folder sweep writes (made with its parents when missing), checked to be a real
    folder: a symbolic link there, or at any folder between `top` (the project, not checked) and
    it, planted by whoever else can write the parent, is refused, so that nothing sweep writes or
    changes ends up elsewhere. Returns `path`.

    Raises:
        SweepError: naming the symbolic link (or the file) found where a folder should be.
    """
    path = Path(path)
    chain = [path]
    if top is not None and Path(top) in path.parents:
        chain = [p for p in reversed(path.parents) if Path(top) in p.parents] + [path]
    for folder in chain:
        if folder.is_symlink():
            raise SweepError(f"{folder} is a symbolic link where sweep expects a folder it wrote: remove it "
                             "(sweep does not follow links inside its own folders)")
        if folder.exists() and not folder.is_dir():
            raise SweepError(f"{folder} is not a folder (sweep expects a folder it wrote there): remove it")
    path.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or not path.is_dir():
        raise SweepError(f"{path} is a symbolic link where sweep expects a folder it wrote: remove it")
    return path


def own_folders(parent: Path, names: Iterable[str], top: Path | None = None) -> None:
    """:func:`own_folder` for many folders of one `parent` (every run's results folder, which
    HTCondor needs as its initialdir before a submit): `parent` and the folders between `top` and
    it are checked once; each folder is then made, or checked to be a real folder, by one or two
    system calls relative to the parent's descriptor (own_folder's per-path checks took 3 s for
    10,000 runs on a loaded 2-core machine, against 0.65 s for the bare mkdirs).

    Raises:
        SweepError: naming the symbolic link (or the file) found where a folder should be.
    """
    own_folder(parent, top)
    fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for name in names:
            try:
                os.mkdir(name, dir_fd=fd)
            except FileExistsError:
                if not stat.S_ISDIR(os.lstat(name, dir_fd=fd).st_mode):  # a link or a file: not ours
                    raise SweepError(f"{parent / name} is a symbolic link or a file where sweep expects a folder "
                                     "it wrote: remove it (sweep does not follow links inside its own folders)"
                                     ) from None
    finally:
        os.close(fd)
