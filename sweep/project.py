"""From a grid file to rendered files on disk: the submit-side steps every backend shares.

Nothing is written until the grid has been validated, expanded and rendered completely in
memory; then each file is written atomically.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .core.errors import SweepError
from .core.expand import RunSpec, expand
from .core.grid import GridSpec, load_grid
from .core.render import RenderedSweep, SweepPaths, render_sweep
from .fsutil import atomic_write_json, atomic_write_text

MANIFEST = "sweep.json"


@dataclass
class Prepared:
    spec: GridSpec
    runs: list[RunSpec]
    rendered: RenderedSweep


def prepare(grid_path: str | os.PathLike, root: Path) -> Prepared:
    """Validate, expand and render in memory. Raises GridError / SweepError; writes nothing."""
    spec = load_grid(grid_path, root)
    runs = expand(spec)
    learned = (read_manifest(sweep_paths(root).jobs(spec.name)) or {}).get("learned_memory_mb", {})
    rendered = render_sweep(spec, runs, root, memory_mb=learned)
    return Prepared(spec, runs, rendered)


def write_rendered(prepared: Prepared, grid_path: str | os.PathLike) -> Path:
    """Write jobs/<sweep>/ (wrapper, per-run config.yaml and job.sub, manifest); make results/<sweep>/."""
    rendered, spec = prepared.rendered, prepared.spec
    jobs_dir = rendered.jobs_dir
    atomic_write_text(rendered.paths.wrapper(spec.name), rendered.wrapper_text, mode=0o755)
    for r in rendered.runs:
        atomic_write_text(r.config_path, r.config_text)
        atomic_write_text(r.submit_path, r.submit_text)
    rendered.results_dir.mkdir(parents=True, exist_ok=True)
    grid_text = Path(grid_path).read_bytes()
    manifest = read_manifest(jobs_dir) or {}
    manifest.update({
        "sweep": spec.name,
        "model": spec.model,
        "description": spec.description,
        "grid": str(Path(grid_path).resolve()),
        "grid_sha256": hashlib.sha256(grid_text).hexdigest(),
        "rendered_at": _now(),
        "sweep_version": __version__,
        "ranking": [list(r) for r in spec.ranking],
        "swept": spec.swept,
        "resources": {"request_cpus": spec.resources.request_cpus,
                      "request_memory_mb": spec.resources.request_memory_mb,
                      "request_disk_mb": spec.resources.request_disk_mb,
                      "runtime_s": spec.resources.runtime_s},
        "runs": [{"run_id": r.run_id, "config_id": r.config_id, "name": r.name, "repeat": r.repeat,
                  "seed": r.seed, "swept": r.swept} for r in prepared.runs],
    })
    manifest.setdefault("submissions", [])
    manifest.setdefault("learned_memory_mb", {})
    atomic_write_json(jobs_dir / MANIFEST, manifest)
    return jobs_dir


def record_submission(jobs_dir: Path, entry: dict[str, Any]) -> None:
    """Add a finished submission (the local backend's) under a new id."""
    update_submission(jobs_dir, uuid.uuid4().hex[:12], entry)


def update_submission(jobs_dir: Path, submission: str, fields: dict[str, Any]) -> None:
    """Create or update the manifest entry of one submission (by its id), atomically."""
    manifest = read_manifest(jobs_dir) or {}
    entries = manifest.setdefault("submissions", [])
    entry = next((e for e in entries if e.get("id") == submission), None)
    if entry is None:
        entry = {"id": submission, "at": _now()}
        entries.append(entry)
    entry.update(fields)
    atomic_write_json(jobs_dir / MANIFEST, manifest)


def remember_memory(jobs_dir: Path, learned: dict[str, int]) -> None:
    """Keep the memory runs needed after memory holds: the next render starts them there."""
    manifest = read_manifest(jobs_dir) or {}
    known = manifest.setdefault("learned_memory_mb", {})
    if all(known.get(k, 0) >= v for k, v in learned.items()):
        return
    for run_id, mb in learned.items():
        known[run_id] = max(known.get(run_id, 0), mb)
    atomic_write_json(jobs_dir / MANIFEST, manifest)


def read_manifest(jobs_dir: Path) -> dict[str, Any] | None:
    path = jobs_dir / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SweepError(f"{path}: unreadable sweep manifest: {exc}") from None


def ensure_dataset(spec: GridSpec, progress: bool = True) -> str | None:
    """Simulate the grid's dataset if it is missing and the grid says how. Returns a note."""
    if spec.data.path.is_file():
        return None
    if not spec.data.simulate:
        raise SweepError(f"dataset {spec.data.path_text} ({spec.data.path}) does not exist; create it with "
                         "`sweep data simulate` or add data.simulate to the grid")
    from .data.simulate import simulate_to_file

    sim = spec.data.simulate
    summary = simulate_to_file(spec.data.path, sim["waveforms"], sim["seed"], sim["params"], progress=progress)
    return (f"simulated {spec.data.path_text}: {summary.get('n_waveforms')} waveforms, "
            f"{summary.get('n_windows')} windows in {summary.get('seconds', 0):.1f}s")


def sweep_paths(root: Path) -> SweepPaths:
    return SweepPaths(root.resolve())


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
