"""A sweep's manifest, jobs/<sweep>/sweep.json: its runs, its submissions, the memory its runs
needed. The submit stage writes it, status, collect and resubmit read it. Every write replaces
the file atomically, and every read-modify-write holds the sweep's lock (records.lock), so two
commands at once cannot lose each other's entries.

`runs` keeps every run the sweep has ever recorded: a run that the current grid no longer has
is marked ``"in_grid": false`` (its results stay rankable), never dropped.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

from ..core.errors import ResultsError
from ..core.names import BACKEND_HTCONDOR, JOBS_DIR, MANIFEST, SweepPaths
from ..fsutil import atomic_write_json
from .lock import sweep_lock


def now() -> str:
    """The current UTC time as the manifest records it (ISO 8601, seconds)."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def read_manifest(jobs_dir: Path) -> dict[str, Any] | None:
    """The manifest in `jobs_dir`, or None when there is none.

    Raises:
        ResultsError: when the file exists but cannot be read as JSON.
    """
    path = jobs_dir / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path}: unreadable sweep manifest: {exc}") from None


def load_manifest(root: Path, sweep: str) -> dict[str, Any]:
    """The manifest of sweep `sweep` under the project folder `root`.

    Raises:
        ResultsError: when the project has no such sweep, or its manifest is unreadable.
    """
    paths = SweepPaths(root.resolve())
    manifest = read_manifest(paths.jobs(sweep))
    if manifest is None:
        raise ResultsError(f"no sweep '{sweep}' under {paths.root / JOBS_DIR} (run `sweep submit GRID` first)")
    return manifest


def save_manifest(jobs_dir: Path, manifest: dict[str, Any]) -> None:
    """Replace the manifest in `jobs_dir` atomically (the caller holds the sweep's lock when it
    read the manifest it is saving)."""
    atomic_write_json(jobs_dir / MANIFEST, manifest)


def in_grid(entry: dict[str, Any]) -> bool:
    """Whether a manifest run belongs to the grid the sweep was last rendered from."""
    return entry.get("in_grid", True) is not False


def merge_runs(old: list[dict[str, Any]], current: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The current grid's runs, then every earlier run it no longer has, marked in_grid false."""
    ids = {r["run_id"] for r in current}
    return [*({k: v for k, v in r.items() if k != "in_grid"} for r in current),
            *({**r, "in_grid": False} for r in old if r["run_id"] not in ids)]


def list_sweeps(root: Path) -> list[str]:
    """The names of the sweeps under `root`/jobs/ (those with a manifest), sorted."""
    jobs = root.resolve() / JOBS_DIR
    return sorted(p.name for p in jobs.iterdir() if (p / MANIFEST).is_file()) if jobs.is_dir() else []


def record_submission(jobs_dir: Path, entry: dict[str, Any]) -> None:
    """Add a finished submission (the local backend's) under a new id."""
    update_submission(jobs_dir, uuid.uuid4().hex[:12], entry)


def update_submission(jobs_dir: Path, submission: str, fields: dict[str, Any]) -> None:
    """Create or update the manifest entry of one submission (by its id), atomically."""
    with sweep_lock(jobs_dir):
        manifest = read_manifest(jobs_dir) or {}
        entries = manifest.setdefault("submissions", [])
        entry = next((e for e in entries if e.get("id") == submission), None)
        if entry is None:
            entry = {"id": submission, "at": now()}
            entries.append(entry)
        entry.update(fields)
        save_manifest(jobs_dir, manifest)


def remember_memory(jobs_dir: Path, learned: dict[str, int]) -> None:
    """Keep the memory runs needed after memory holds: the next render starts them there."""
    known = (read_manifest(jobs_dir) or {}).get("learned_memory_mb", {})
    if all(known.get(k, 0) >= v for k, v in learned.items()):
        return  # nothing new: no lock, no write
    with sweep_lock(jobs_dir):
        manifest = read_manifest(jobs_dir) or {}
        known = manifest.setdefault("learned_memory_mb", {})
        for run_id, mb in learned.items():
            known[run_id] = max(known.get(run_id, 0), mb)
        save_manifest(jobs_dir, manifest)


def on_pool(manifest: dict[str, Any]) -> bool:
    """Whether any submission of the sweep went to HTCondor."""
    return any(s.get("backend") == BACKEND_HTCONDOR for s in manifest.get("submissions", []))
