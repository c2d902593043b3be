"""The job's own code: a zip of the sweep package that travels with every job, so that an
execute node needs neither the submit node's checkout nor sweep installed (Python imports a
package straight from a zip on its path). Built once per content (its name carries its hash),
deterministically (sorted entries, fixed timestamps), so the same code gives the same archive
and a resubmission with unchanged code transfers the same file and rewrites nothing.

It holds the Python sources of the whole package (a few hundred KB), not only what
`python -m sweep.job` imports: the job's import graph changes with the code, and a missing
module on a worker is a worse failure than a few extra kilobytes.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..core.names import CODE_ARCHIVE_PREFIX, PACKAGE_DIR
from ..fsutil import atomic_file

_EPOCH = (1980, 1, 1, 0, 0, 0)  # zip's earliest timestamp: entries carry no build time


@dataclass(frozen=True)
class CodeArchive:
    """The archive's bytes, their sha256, and the file name it goes by (in jobs/<sweep>/ and in
    the job's scratch folder)."""

    data: bytes
    sha256: str

    @property
    def name(self) -> str:
        """sweep-code-<the first 16 hex digits of its sha256>.zip."""
        return f"{CODE_ARCHIVE_PREFIX}{self.sha256[:16]}.zip"


_cache: dict[tuple, CodeArchive] = {}


def build(package_dir: Path = PACKAGE_DIR) -> CodeArchive:
    """The archive of the package's .py files (cached per process by their sizes and mtimes)."""
    files = sorted(p for p in package_dir.rglob("*.py") if "__pycache__" not in p.parts)
    stats = [p.stat() for p in files]
    key = tuple((str(p), st.st_size, st.st_mtime_ns) for p, st in zip(files, stats, strict=True))
    if key in _cache:
        return _cache[key]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            info = zipfile.ZipInfo(f"{package_dir.name}/{path.relative_to(package_dir).as_posix()}", _EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
    data = buffer.getvalue()
    archive = CodeArchive(data, hashlib.sha256(data).hexdigest())
    _cache.clear()
    _cache[key] = archive
    return archive


def write(archive: CodeArchive, folder: Path) -> Path:
    """The archive in `folder`, written only when absent (its name is its content). Older
    archives stay: jobs still queued from an earlier render transfer theirs by path.

    Returns:
        Its path.
    """
    path = folder / archive.name
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_file(path, "wb", permissions=0o644) as fh:
            fh.write(archive.data)
    return path
