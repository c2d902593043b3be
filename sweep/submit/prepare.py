"""From a grid file to rendered files on disk: the submit-side steps every backend shares.

Nothing is written until the grid has been validated, expanded and rendered completely in
memory; then each file is written atomically, the manifest last.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

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
    return Prepared(spec, runs, _render(spec, runs, root, code, native_memory_retry=False), code)


def for_native_memory_retry(prepared: Prepared, root: Path) -> Prepared:
    """The same grid and runs rendered for a schedd of 25.2 or newer (HTCondor's own memory
    retry), without validating and expanding the grid again."""
    return dataclasses.replace(prepared, rendered=_render(prepared.spec, prepared.runs, root, prepared.code,
                                                                native_memory_retry=True))


def _render(spec: GridSpec, runs: list[RunSpec], root: Path, code: codebundle.CodeArchive, *,
            native_memory_retry: bool) -> RenderedSweep:
    """Render with what the sweep's manifest learnt (memory earlier attempts needed) and, for a
    dataset the jobs fetch from data.url, the digest they check.

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
                        code_archive=code.name, native_memory_retry=native_memory_retry, dataset_sha256=sha)


def write_rendered(prepared: Prepared, grid_path: str | os.PathLike, dataset: DatasetRef | None = None) -> Path:
    """Write jobs/<sweep>/ (wrapper, per-run config.yaml and job.sub, manifest); make results/<sweep>/.
    The manifest keeps the runs of earlier renders that this grid no longer has (in_grid false),
    and records `dataset` (path, sha256, size: what the runs submitted now train on).

    Returns:
        jobs/<sweep>/.
    """
    rendered, spec = prepared.rendered, prepared.spec
    jobs_dir = rendered.jobs_dir
    codebundle.write(prepared.code, jobs_dir)
    write_text_if_changed(rendered.paths.wrapper(spec.name), rendered.wrapper_text, mode=0o755)
    for r in rendered.runs:  # only what changed: a resubmission of 20,000 runs rewrites nothing else
        write_text_if_changed(r.config_path, r.config_text)
        write_text_if_changed(r.submit_path, r.submit_text)
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
