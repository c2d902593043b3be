"""Reading what comes back from an execute node: bounded, never through a symlink, values checked.

Every file a job returns (metrics.json, run.json, step.json, progress.json, model.json,
evaluation.json, stderr.txt, history.csv, roc.csv, PNGs, model.keras) is untrusted input: on a
pool with machines you do not run, the execute node writes it; in root mode the job owner can
replace it with anything, a symlink to a root-only file included. Each reader here:

- opens the file with ``O_NOFOLLOW`` from its folder, itself opened with ``O_NOFOLLOW``
  (neither the file nor the run folder may be a symlink), and ``O_NONBLOCK`` (a FIFO planted as
  stderr.txt does not hang the reader), then refuses anything but a regular file;
- reads at most the file's limit (the constants below, each with why it is that size): a larger
  file is refused, not read;
- for JSON, refuses Infinity and whole numbers beyond 64 bits (neither is ever written by a
  job; either would rank first or crash a number format), and nesting deeper than a record has.

Each refusal is an :class:`UntrustedFileError` (a RecordError) naming the file and what was
expected, so the run it belongs to becomes invalid with that reason and the others go on.

Standard library only (the job imports the record modules that import this one).
"""

from __future__ import annotations

import errno
import math
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .base import JsonObject, RecordError, parse_object

#: A job's JSON record (metrics.json, run.json, step.json, model.json, progress.json, the local
#: exit record). The largest sweep writes is a pruned trial's metrics.json or a progress.json with
#: one value per epoch (about 25 bytes each: 10,000 epochs is 250 KB) or a run.json with its argv
#: and package versions (a few KB). 1 MiB is four times the largest and small enough to read and
#: parse in milliseconds for every run of a 10,000-run sweep.
RECORD_LIMIT = 1 << 20
#: evaluation.json (a chain's evaluation step): per-level figures and π/K separation per momentum,
#: about 20 KB for the largest evaluation the chain settings allow. 8 MiB leaves room for finer
#: momentum scans and stays a fraction of a second to parse.
EVALUATION_LIMIT = 8 << 20
#: history.csv: one line per epoch of about 20 columns (about 400 bytes): 10,000 epochs are 4 MB.
HISTORY_LIMIT = 8 << 20
#: roc.csv: one line (fpr, tpr, threshold; about 40 bytes) per distinct score on the test split,
#: at most one per test window; the largest datasets sweep simulates have a few hundred thousand
#: test windows (about 12 MB). Drawing more points than that is no better a figure.
ROC_LIMIT = 32 << 20
#: A PNG the chain's evaluation makes (a figure at 90-150 dpi: 50-300 KB). 16 MiB is far above
#: any figure and bounds the report page, which embeds each as base64.
PNG_LIMIT = 16 << 20
#: A chain's simulated dataset (the simulate step's npz): measured 6.9 MB per 1,000 waveforms
#: (compressed), so the 10,000,000 waveforms a chain may simulate (schema.MAX_WAVEFORMS) are
#: about 70 GB; 80 GiB.
DATASET_LIMIT = 80 << 30
#: The end of stderr.txt that collect, status and the chain show (the last few lines of a
#: traceback): 8 KiB, whatever the file's size (the rest is never read).
TAIL_BYTES = 8192
#: model.keras copied into best/ or as a chain's leader: the largest model the grids allow is a
#: few MB of weights; 2 GiB is the size beyond which a Keras file is not a model sweep trained.
MODEL_LIMIT = 2 << 30
#: JSON nesting a record may have (the deepest record, evaluation.json, nests 5 levels); beyond
#: it Python's parser would recurse until it fails.
MAX_DEPTH = 32
#: The largest whole number a record may hold (64 bits): sizes, pids, seeds and counts fit; a
#: larger one cannot be formatted as a number (an OverflowError in collect's table).
MAX_INTEGER = 2**63
#: Files copied or read by chunks.
_CHUNK = 1 << 20


class UntrustedFileError(RecordError):
    """A job's file that is not read: a symlink, not a regular file, larger than its limit, or
    JSON with values no job writes. The message names the file and what was expected."""


def size_words(n: int) -> str:
    """A size in bytes as words: "10 GiB", "1 MiB", "512 bytes"."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


@contextmanager
def open_untrusted(path: str | Path, limit: int | None = None) -> Iterator[tuple[int, int]]:
    """A job's file opened for reading without following a symlink: (file descriptor, size).

    The folder is opened with O_NOFOLLOW|O_DIRECTORY and the file from it with O_NOFOLLOW|O_NONBLOCK;
    anything but a regular file is refused before a byte is read.

    Args:
        path: the file (its folder is the run's or the step's folder).
        limit: the most bytes the file may have (None: any size, for a copy made by chunks).

    Yields:
        (fd, size in bytes); the descriptor is closed when the block ends.

    Raises:
        FileNotFoundError: the file (or its folder) does not exist.
        UntrustedFileError: the file or its folder is a symlink, the file is not a regular file,
            is larger than `limit`, or cannot be opened.
    """
    parent, name = os.path.split(os.fspath(path))
    try:
        folder = os.open(parent or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UntrustedFileError(parent, "expected a folder, got a symlink or a file: not followed") from None
        raise UntrustedFileError(path, f"unreadable: {exc.strerror}") from None
    try:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder)
        except FileNotFoundError:
            raise
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UntrustedFileError(path, "expected a regular file, got a symlink: not followed") from None
            raise UntrustedFileError(path, f"unreadable: {exc.strerror}") from None
    finally:
        os.close(folder)
    try:
        st = os.fstat(fd)
        problem = stat_problem(st, limit)
        if problem is not None:
            raise UntrustedFileError(path, problem)
        os.set_blocking(fd, True)
        yield fd, st.st_size
    finally:
        os.close(fd)


def stat_problem(st: os.stat_result, limit: int | None) -> str | None:
    """Why a job's file with status `st` (lstat: not followed) is not read: a symlink, not a
    regular file, or larger than `limit` bytes; None when it may be read."""
    if stat.S_ISLNK(st.st_mode):
        return "expected a regular file, got a symlink: not followed"
    if not stat.S_ISREG(st.st_mode):
        return f"expected a regular file, got {file_kind(st.st_mode)}: not read"
    if limit is not None and st.st_size > limit:
        return f"{size_words(st.st_size)}, larger than the {size_words(limit)} such a file may have: not read"
    return None


def file_kind(mode: int) -> str:
    """What a file that is not a regular file is, in words ("a named pipe"), from its st_mode."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def _read_fd(fd: int, limit: int, path: Path) -> bytes:
    """At most `limit` bytes; a file that grew past it while read is refused."""
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = os.read(fd, min(_CHUNK, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise UntrustedFileError(path, f"larger than the {size_words(limit)} such a file may have: not read")


def read_bytes(path: str | Path, limit: int) -> bytes | None:
    """A job's file, whole, or None when it does not exist.

    Raises:
        UntrustedFileError: a symlink, not a regular file, or larger than `limit` bytes.
    """
    path = Path(path)
    try:
        with open_untrusted(path, limit) as (fd, _):
            return _read_fd(fd, limit, path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UntrustedFileError(path, f"unreadable: {exc.strerror}") from None


def read_text(path: str | Path, limit: int) -> str | None:
    """A job's text file (UTF-8, undecodable bytes replaced), or None when it does not exist.

    Raises:
        UntrustedFileError: a symlink, not a regular file, or larger than `limit` bytes.
    """
    data = read_bytes(path, limit)
    return None if data is None else data.decode("utf-8", errors="replace")


def read_tail(path: str | Path, size: int = TAIL_BYTES) -> bytes | None:
    """The last `size` bytes of a job's file (whatever its size), or None when it does not exist.

    Raises:
        UntrustedFileError: a symlink or not a regular file.
    """
    path = Path(path)
    try:
        with open_untrusted(path) as (fd, length):
            os.lseek(fd, max(0, length - size), os.SEEK_SET)
            return _read_fd(fd, size, path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UntrustedFileError(path, f"unreadable: {exc.strerror}") from None


def copy_file(source: str | Path, target: str | Path, limit: int = MODEL_LIMIT) -> None:
    """Copy a job's file (never through a symlink, at most `limit` bytes) to `target`, which
    is created or truncated (never through a symlink either).

    Raises:
        FileNotFoundError: `source` does not exist.
        UntrustedFileError: `source` is a symlink, not a regular file, or larger than `limit`;
            `target` is a symlink.
        OSError: `target` cannot be written.
    """
    source = Path(source)
    with open_untrusted(source, limit) as (fd, _), open(_create(Path(target)), "wb") as out:
        total = 0
        while chunk := os.read(fd, _CHUNK):
            total += len(chunk)
            if total > limit:
                raise UntrustedFileError(source, f"larger than the {size_words(limit)} such a file may have")
            out.write(chunk)


def _create(target: Path) -> int:
    """`target` created or truncated for writing, never through a symlink (a descriptor)."""
    try:
        return os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UntrustedFileError(target, "expected a regular file or nothing, got a symlink: not written") from None
        raise


def is_regular_file(path: str | Path) -> bool:
    """Whether `path` is a regular file itself (not a symlink to one) in a folder that is not a
    symlink."""
    try:
        with open_untrusted(path):
            return True
    except (OSError, UntrustedFileError):
        return False


def _suspect(value: Any, depth: int = 1) -> bool:
    """Whether :func:`_check_values` would refuse something (no key built: the common case fast)."""
    if isinstance(value, float):
        return value in (math.inf, -math.inf)
    if isinstance(value, int):
        return not isinstance(value, bool) and not -MAX_INTEGER <= value < MAX_INTEGER
    if isinstance(value, dict):
        return depth > MAX_DEPTH or any(_suspect(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return depth > MAX_DEPTH or any(_suspect(v, depth + 1) for v in value)
    return False


def _check_values(path: Path, value: Any, key: str = "", depth: int = 1) -> None:
    """Refuse Infinity (as JSON's parser reads Infinity, -Infinity and 1e400), whole numbers
    beyond 64 bits and nesting deeper than MAX_DEPTH, naming the dotted key."""
    if isinstance(value, float) and math.isinf(value):
        raise UntrustedFileError(path, f"expected a finite number, NaN or null, got {value!r}", key)
    if isinstance(value, int) and not isinstance(value, bool):
        if not -MAX_INTEGER <= value < MAX_INTEGER:
            raise UntrustedFileError(path, f"expected a number of at most 64 bits, got one of {len(str(value))} "
                                     "digits", key)
    elif isinstance(value, (dict, list)):
        if depth > MAX_DEPTH:
            raise UntrustedFileError(path, f"nested deeper than the {MAX_DEPTH} levels a record may have", key)
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for k, v in items:
            _check_values(path, v, (f"{key}.{k}" if key else str(k)) if isinstance(value, dict) else f"{key}[{k}]",
                          depth + 1)


def load_object(path: str | Path, limit: int = RECORD_LIMIT) -> JsonObject | None:
    """The JSON object of a job's record, or None when the file does not exist.

    Read as :func:`read_bytes` reads (never through a symlink, at most `limit` bytes); NaN is
    taken (a metric not computed), Infinity (or 1e400) is not, nor whole numbers beyond 64 bits nor nesting
    deeper than MAX_DEPTH.

    Raises:
        UntrustedFileError: a symlink, not a regular file, larger than `limit`, or holding
            values no job writes (the key named).
        RecordError: not UTF-8, not JSON, or not a JSON object.
    """
    path = Path(path)
    data = read_bytes(path, limit)
    if data is None:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(path, f"unreadable: {exc}") from None
    try:
        obj = parse_object(path, text)
    except RecursionError:
        raise UntrustedFileError(path, f"nested deeper than the {MAX_DEPTH} levels a record may have: "
                                 "not read") from None
    if _suspect(obj):  # rarely: then again, naming the key
        _check_values(path, obj)
    return obj


#: An npz's arrays decompressed, against its size on disk. sweep's datasets measured 1.9 for the
#: whole archive (waveforms compress little; the most compressible member, 117); a zip bomb is
#: about 1,000. 64, plus NPZ_ALLOWANCE for small files of mostly repeated values, refuses bombs
#: and no dataset sweep writes.
NPZ_RATIO = 64
#: What any npz may decompress to whatever its size (a small dataset of constant arrays).
NPZ_ALLOWANCE = 256 << 20
#: Arrays an npz may hold (sweep's datasets have 10 to 20).
NPZ_MEMBERS = 256


def check_npz(path: str | Path) -> None:
    """Refuse an npz whose arrays would decompress to far more than its size (a zip bomb)
    before numpy reads any: its central directory is read, nothing is decompressed. A file
    that is not a zip archive is left to numpy to refuse (with its own words).

    Args:
        path: the npz (a dataset that may have come from a chain's simulation step).

    Raises:
        UntrustedFileError: more than NPZ_MEMBERS arrays, or more than NPZ_RATIO times its size
            (plus NPZ_ALLOWANCE) once decompressed.
    """
    import zipfile

    path = Path(path)
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            with zipfile.ZipFile(fh) as archive:
                infos = archive.infolist()
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return
    if len(infos) > NPZ_MEMBERS:
        raise UntrustedFileError(path, f"{len(infos)} arrays, more than the {NPZ_MEMBERS} a dataset may hold: not read")
    unpacked = sum(i.file_size for i in infos)
    if unpacked > NPZ_RATIO * size + NPZ_ALLOWANCE:
        raise UntrustedFileError(path, f"its arrays would decompress to {size_words(unpacked)} from "
                                 f"{size_words(size)} (more than {NPZ_RATIO} times: a zip bomb?): not read")
