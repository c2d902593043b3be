"""Atomic file writes: write a temporary file beside the target, then rename over it.

A reader (the collector, a resubmission) sees either the old file or the complete new one,
never half of one, even when the writer is killed part-way.

Hostile folders. The temporary file has an unpredictable name (random, as tempfile.mkstemp
makes them) and is created with O_EXCL | O_NOFOLLOW: a link planted under any name the writer
could pick is never opened, let alone truncated. Its permissions are set on the descriptor
(fchmod), never by path. Every step (create, fchmod, rename, fsync) acts on one folder, held
open by a descriptor, so a folder swapped for a link half-way cannot redirect the rename. A
symbolic link where the file itself should be is refused (:class:`LinkedPathError`, naming
it): sweep replaces the files it writes, so a link there was planted or made by hand, and
neither writing through it nor silently replacing it is right. Links in the folders above the
file are the caller's (a project's data/ may be a link to a larger disk) and are followed.

Durability. By default there is no fsync: this guards against killed processes, not power loss,
and fsync per file made rendering 10,000 jobs 3x slower. The few records that decide what is
submitted (the manifest, chain.json, the lock) are written with ``durable=True``: the file is
fsynced before the rename and its folder after it, and with ``keep_previous=True`` the version
it replaces stays beside it as ``<name>.prev`` (a hard link, no copy), so a record torn by a
crash on a file system that reorders writes is recovered from it (sweep.records.base).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from .core.errors import SweepError

#: A file's path, as every function here takes it.
PathArg = str | os.PathLike[str]

#: The suffix of the previous version of a record written with keep_previous.
PREVIOUS_SUFFIX = ".prev"

_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class LinkedPathError(SweepError, OSError):
    """A symbolic link where sweep writes a file or folder of its own (named in the message).
    It is an OSError too: a writer that handles a failed write handles this one."""


def _linked(path: Path, what: str = "file") -> LinkedPathError:
    return LinkedPathError(f"{path} is a symbolic link where sweep writes a {what} of its own; it neither writes "
                           "through a link nor replaces one: remove the link (and find out who made it)")


def _open_folder(folder: Path) -> int:
    """A descriptor of `folder` (made, with its parents, when missing)."""
    try:
        return os.open(folder, _DIR_FLAGS)
    except FileNotFoundError:
        folder.mkdir(parents=True, exist_ok=True)
        return os.open(folder, _DIR_FLAGS)


def _refuse_link(dir_fd: int, name: str, path: Path) -> None:
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise _linked(path)


def _create_temp(dir_fd: int, name: str) -> tuple[int, str]:
    """A new temporary file beside `name` in the folder `dir_fd`: (its descriptor, its name)."""
    while True:
        tmp = f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, _TMP_FLAGS, 0o666, dir_fd=dir_fd), tmp  # the umask applies, as for any new file
        except FileExistsError:  # 48 random bits taken: someone's file, or a planted link; another name
            continue


def _looks_whole(dir_fd: int, name: str) -> bool:
    """Whether the JSON file `name` looks whole: it begins with { or [ and ends with } or ]
    (and white space). A file torn by a crash is cut short or filled with zeros."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return False
    try:
        size = os.fstat(fd).st_size
        head, tail = os.pread(fd, 64, 0).lstrip(), os.pread(fd, 64, max(0, size - 64)).rstrip()
    finally:
        os.close(fd)
    return head[:1] in (b"{", b"[") and tail[-1:] in (b"}", b"]")


def _keep_previous(dir_fd: int, name: str) -> None:
    """Make the current `name` (if any, and if it looks whole: a torn file never replaces a good
    previous version) also `name`.prev: a hard link under a temporary name, renamed over the old
    .prev (best effort: a file system without hard links keeps none)."""
    if not _looks_whole(dir_fd, name):
        return
    tmp = f".{name}.{secrets.token_hex(6)}.prev"
    try:
        os.link(name, tmp, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return
    try:
        os.replace(tmp, name + PREVIOUS_SUFFIX, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError:
        os.unlink(tmp, dir_fd=dir_fd)


@contextmanager
def atomic_file(path: PathArg, mode: str = "w", permissions: int | None = None, *, durable: bool = False,
                keep_previous: bool = False) -> Iterator[IO[Any]]:
    """Open a temporary file beside `path` (yielded); on success it replaces `path`, on an error
    it is removed and `path` is left as it was.

    Args:
        path: the file to replace; its folder is made when missing.
        mode: "w" (text, UTF-8) or "wb".
        permissions: the file's mode bits (set on the descriptor); None: 0o666 less the umask.
        durable: fsync the file before the rename and its folder after it (records that decide
            what is submitted; never the bulk rendered files).
        keep_previous: keep the version it replaces as `path`.prev, when that looks whole (a JSON
            file: it begins with { or [ and ends with } or ]; see the module's docstring).

    Yields:
        The open file.

    Raises:
        LinkedPathError: `path` is a symbolic link (nothing is written).
        OSError: the folder or the file cannot be written.
    """
    path = Path(path)
    name = path.name
    dir_fd = _open_folder(path.parent)
    try:
        _refuse_link(dir_fd, name, path)
        fd, tmp = _create_temp(dir_fd, name)
        try:
            with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as fh:
                if permissions is not None:
                    os.fchmod(fh.fileno(), permissions)
                yield fh
                if durable:
                    fh.flush()
                    os.fsync(fh.fileno())
            if keep_previous:
                _keep_previous(dir_fd, name)
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dir_fd)
            except FileNotFoundError:
                pass
            raise
        if durable:
            os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_text(path: PathArg, text: str, mode: int | None = None, *, durable: bool = False,
                      keep_previous: bool = False) -> None:
    """Write `text` (UTF-8) to `path` atomically, with permissions `mode` when given (durable and
    keep_previous: as for :func:`atomic_file`).

    Raises:
        LinkedPathError: `path` is a symbolic link (nothing is written).
        OSError: the folder or the file cannot be written.
    """
    with atomic_file(path, "w", permissions=mode, durable=durable, keep_previous=keep_previous) as fh:
        fh.write(text)


def write_text_if_changed(path: PathArg, text: str, mode: int | None = None) -> bool:
    """Write `text` atomically unless the file already holds exactly it (and has `mode`).
    Returns whether it wrote. A submit that changes nothing rewrites nothing: with 20,000
    rendered files, reading is several times faster than replacing. A link is never read.

    Raises:
        LinkedPathError: `path` is a symbolic link (nothing is written).
        OSError: the folder or the file cannot be written.
    """
    data = text.encode("utf-8")
    try:
        st = os.lstat(path)
        if (stat.S_ISREG(st.st_mode) and st.st_size == len(data)
                and (mode is None or (st.st_mode & 0o7777) == mode)):
            with open(path, "rb", opener=_nofollow) as fh:
                if fh.read() == data:
                    return False
    except OSError:
        pass
    atomic_write_text(path, text, mode=mode)
    return True


def _nofollow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW)


def atomic_write_json(path: PathArg, data: Any, *, durable: bool = False, keep_previous: bool = False) -> None:
    """Write `data` as indented JSON to `path` atomically (numpy values and paths as JSON values;
    durable and keep_previous: as for :func:`atomic_file`).

    Raises:
        LinkedPathError: `path` is a symbolic link (nothing is written).
        OSError: the folder or the file cannot be written.
    """
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n",
                      durable=durable, keep_previous=keep_previous)


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays without importing numpy here
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def file_digest(path: PathArg, known: dict[str, Any] | None = None) -> dict[str, Any]:
    """{"sha256", "size", "mtime_ns"} of a file's content. `known` (an earlier digest of the same
    path) is returned as it is when the file's size and modification time have not changed, so a
    large dataset is read once, not at every command.

    Raises:
        OSError: the file cannot be read.
    """
    st = os.stat(path)
    if known and known.get("size") == st.st_size and known.get("mtime_ns") == st.st_mtime_ns and known.get("sha256"):
        return {"sha256": known["sha256"], "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {"sha256": digest.hexdigest(), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def temp_path_beside(path: PathArg, suffix: str = "") -> Path:
    """A fresh temporary name in the target's folder (for writers that need a file name)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def atomic_write_with(path: PathArg, write: Callable[[Path], None], mode: int | None = None) -> None:
    """`write(tmp)` fills a temporary file beside `path` (for writers that need a file name, such
    as Keras' model.save); on success it replaces `path` (with `mode`, set on a descriptor opened
    without following links), on an error it is removed and `path` is left as it was.

    Raises:
        LinkedPathError: `path` is a symbolic link, or `write` left one (nothing is replaced).
        OSError: the file cannot be written; whatever `write` raises.
    """
    path = Path(path)
    tmp = temp_path_beside(path)
    try:
        if path.is_symlink():
            raise _linked(path)
        write(tmp)
        if mode is not None:
            try:
                fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError as exc:
                if tmp.is_symlink():
                    raise _linked(tmp) from None
                raise exc
            try:
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_folder(target: PathArg) -> Iterator[Path]:
    """Build a folder's new content in a temporary sibling (yielded), then swap it in by renames,
    so a reader never sees a half-written folder. On an error the old folder stays. The sibling
    has an unpredictable name (tempfile.mkdtemp).

    Raises:
        LinkedPathError: `target` is a symbolic link (nothing is built or replaced).
    """
    target = Path(target)
    if target.is_symlink():
        raise _linked(target, "folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    old = target.parent / f".{target.name}.{secrets.token_hex(6)}.old"
    try:
        yield tmp
        if target.is_symlink():
            raise _linked(target, "folder")
        if target.exists():
            os.rename(target, old)
        os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
