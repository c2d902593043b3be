"""From a grid file to rendered files on disk: the submit-side steps every backend shares.

Nothing is written until the grid has been validated, expanded and rendered completely in
memory; then each file is written atomically, the manifest last.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.version import __version__
from ..core.expand import RunSpec, expand
from ..core.grid import load_grid
from ..core.gridspec import GridChecks, GridSpec
from ..core.names import SweepPaths
from ..core.render import RenderedSweep, render_sweep
from ..core.errors import InputError
from ..fsutil import write_text_if_changed
from ..records.manifest import CodeRef, DatasetRef, ResourceRequest, RunEntry, dataset_ref, merge_runs, now, \
    read_manifest, updating
from . import codebundle
from .classads import check_expression


@dataclass
class Prepared:
    """A grid ready to submit, in memory: its spec, its runs, their rendered files, and the code
    archive every job takes along."""

    spec: GridSpec
    runs: list[RunSpec]
    rendered: RenderedSweep
    code: codebundle.CodeArchive  # sweep's code, transferred with every job
    provenance: dict[str, Any] = field(default_factory=dict)  # config.yaml's `provenance` (submit_provenance)


#: How long a git command may take before the submission goes on without what it would tell.
GIT_TIMEOUT_S = 5.0


def submit_provenance(root: Path) -> dict[str, Any]:
    """What the submit side knows of where a sweep's runs come from, for their config.yaml's
    `provenance` (the job copies it into run.json): this host, and when the project folder is a
    git checkout, its HEAD commit and whether tracked files changed since (`dirty`; untracked
    files are not counted, as with `git describe --dirty`). Without git, outside a checkout, or
    when git does not answer within GIT_TIMEOUT_S, there is no commit: nothing is guessed.
    Nothing is written (git's optional index refresh is turned off)."""
    found: dict[str, Any] = {"submit_host": socket.gethostname()}
    git = shutil.which("git")
    if git is None:
        return found
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0"}

    def ask(*args: str) -> str | None:
        try:
            proc = subprocess.run([git, "-C", str(root), *args], capture_output=True, text=True, env=env,
                                  timeout=GIT_TIMEOUT_S, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout if proc.returncode == 0 else None

    head = (ask("rev-parse", "--verify", "--quiet", "HEAD") or "").strip()
    if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", head):
        return found  # not a checkout, or one without a commit yet
    found["commit"] = head
    status = ask("status", "--porcelain", "--untracked-files=no")
    if status is not None:
        found["dirty"] = bool(status.strip())
    return found


def prepare(grid_path: str | os.PathLike, root: Path, checks: GridChecks | None = None) -> Prepared:
    """Validate, expand and render in memory; writes nothing.

    Args:
        grid_path: the grid file.
        root: the project folder.
        checks: the caller's checks of grid values (see sweep.core.gridspec.GridChecks); ClassAd
            expressions are always checked here (this stage knows HTCondor).

    Returns:
        The grid, its runs and their rendered files (with the memory earlier attempts needed).

    Raises:
        GridError: the grid is invalid.
        RenderError: a template problem or an unsafe value.
        ResultsError: the sweep's existing manifest is unreadable.
        InputError: data.url without the local copy of the dataset.
    """
    checks = checks or GridChecks()
    if checks.expression is None:
        checks = dataclasses.replace(checks, expression=check_expression)
    spec = load_grid(grid_path, root, checks=checks)
    runs = expand(spec) if spec.search is None else []  # a search grid's runs are its driver's trials
    code = codebundle.build()
    provenance = submit_provenance(root)
    return Prepared(spec, runs, _render(spec, runs, root, code, native_memory_retry=False, provenance=provenance),
                    code, provenance)


def for_native_memory_retry(prepared: Prepared, root: Path, disk: bool = False) -> Prepared:
    """The same grid and runs rendered for a schedd of 25.2 or newer (HTCondor's own memory
    retry; with `disk`, a schedd of 25.10 or newer: its disk retry too), without validating and
    expanding the grid again."""
    return dataclasses.replace(prepared, rendered=_render(prepared.spec, prepared.runs, root, prepared.code,
                                                                native_memory_retry=True, native_disk_retry=disk,
                                                                provenance=prepared.provenance))


def _render(spec: GridSpec, runs: list[RunSpec], root: Path, code: codebundle.CodeArchive, *,
            native_memory_retry: bool, provenance: dict[str, Any] | None = None,
            native_disk_retry: bool = False) -> RenderedSweep:
    """Render with what the sweep's manifest learnt (memory earlier attempts needed), for a
    dataset the jobs fetch from data.url the digest they check, and the submit side's provenance.

    Raises:
        RenderError: a template problem or an unsafe value.
        InputError: data.url without the local copy of the dataset.
    """
    manifest = read_manifest(SweepPaths(root.resolve()).jobs(spec.name))
    sha = None
    if spec.data.url:  # the jobs check that what they fetch is the grid's dataset
        if not spec.data.path.is_file():
            raise InputError(f"{spec.file}: data.url gives where the jobs fetch the dataset, and data.path "
                             f"({spec.data.path_text}) must be a local copy of it (its sha256 is the sweep's "
                             "identity, checked by every job): the file does not exist")
        sha = dataset_ref(spec.data.path, manifest.dataset if manifest else None).sha256
    return render_sweep(spec, runs, root, memory_mb=dict(manifest.learned_memory_mb) if manifest else {},
                        code_archive=code.name, native_memory_retry=native_memory_retry, dataset_sha256=sha,
                        provenance=provenance, native_disk_retry=native_disk_retry)


def write_rendered(prepared: Prepared, grid_path: str | os.PathLike, dataset: DatasetRef | None = None) -> Path:
    """Write jobs/<sweep>/ (wrapper, the runs' shared config.yaml and submit description, each named by
    its content, and the manifest); make results/<sweep>/.
    The manifest keeps the runs of earlier renders that this grid no longer has (in_grid false),
    and records `dataset` (path, sha256, size: what the runs submitted now train on).

    Returns:
        jobs/<sweep>/.
    """
    rendered, spec = prepared.rendered, prepared.spec
    jobs_dir = rendered.jobs_dir
    codebundle.write(prepared.code, jobs_dir)
    # only what changed; every run's own values travel in the DAG (core.render), not in files of their own
    write_text_if_changed(rendered.paths.wrapper(spec.name), rendered.wrapper_text, mode=0o755)
    write_text_if_changed(rendered.config_path, rendered.config_text)
    write_text_if_changed(rendered.submit_path, rendered.submit_text)
    rendered.results_dir.mkdir(parents=True, exist_ok=True)
    grid_text = Path(grid_path).read_bytes()
    spec = prepared.spec
    current = [RunEntry(run_id=r.run_id, config_id=r.config_id, name=r.name, repeat=r.repeat, seed=r.seed,
                        swept=r.swept) for r in prepared.runs]
    with updating(jobs_dir) as manifest:
        manifest.sweep, manifest.model, manifest.description = spec.name, spec.model, spec.description
        manifest.grid = str(Path(grid_path).resolve())
        manifest.grid_sha256 = hashlib.sha256(grid_text).hexdigest()
        manifest.rendered_at, manifest.sweep_version = now(), __version__
        manifest.ranking = [(m, d) for m, d in spec.ranking]
        manifest.swept = list(spec.swept)
        manifest.resources = ResourceRequest.of(spec.resources.as_dict())
        manifest.code = CodeRef(archive=prepared.code.name, sha256=prepared.code.sha256)
        manifest.runs = merge_runs(manifest.runs, current)
        if dataset is not None:
            manifest.dataset = dataset
    return jobs_dir
