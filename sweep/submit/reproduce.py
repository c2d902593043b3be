"""`sweep reproduce SWEEP RUN`: a folder holding what one run's job received, to run it again here.

What a job receives is its scratch folder: the sweep's config.yaml, the sweep's code archive, the
wrapper (run_job.sh) and, where the sweep transfers its data, the arrays cut for the model, and
its own part of its configuration as an argument (sweep.core.runconfig). The folder made here
holds copies of those, with the run's part merged into config.yaml (from the sweep's manifest,
which records every run's ids, seed and swept values, and the version of the shared part its job
read: run.json's config_sha256), so that `/bin/sh run_job.sh config.yaml` in it runs the
same code on the same data with the same seed (the same batches in the same order), as the local
backend runs a job: the first thing anyone debugging a failed job wants. Two things differ, and
are said: a search trial's progress reporting to its driver is left out of config.yaml (no driver
listens here), and a dataset the job read in place (the local backend, a shared file system) is
read in place again, not copied.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..core import runconfig
from ..core.errors import ResultsError
from ..core.names import CONFIG_FILE, CONFIGS_DIR, SweepPaths
from ..core.render import to_yaml
from ..fsutil import atomic_write_text
from ..records.runinfo import recorded_config_sha256
from ..records.manifest import load_manifest


@dataclass
class Reproduction:
    """The folder made for one run, the command that runs it there, and what differs from its job."""

    folder: Path
    command: str
    notes: list[str] = field(default_factory=list)


def reproduce(root: Path, sweep: str, run_id: str, folder: Path | None = None) -> Reproduction:
    """Copy what run `run_id` of `sweep` received into `folder` (default: reproduce/<sweep>/<run-id>
    under `root`).

    Returns:
        The Reproduction.

    Raises:
        ResultsError: no such sweep or run, a file the job received is gone, or `folder` exists
            and is not empty (nothing is written then).
    """
    paths = SweepPaths(root.resolve())
    manifest = load_manifest(root, sweep)
    entry = manifest.run(run_id)
    if entry is None:
        raise ResultsError(f"sweep '{sweep}' has no run '{run_id}' (`sweep collect {sweep}` lists its runs)")
    jobs = paths.jobs(sweep)
    found = runconfig.whole(jobs / CONFIGS_DIR, recorded_config_sha256(paths.results(sweep) / run_id), entry)
    if found is None:
        raise ResultsError(f"{jobs}: the sweep's configuration is gone; `sweep submit` renders it again")
    config, shared_path, exact = found
    if manifest.code is None or not (jobs / manifest.code.archive).is_file():
        raise ResultsError(f"{jobs}: the sweep's code archive is gone; `sweep submit` makes it again")
    inputs = {paths.wrapper(sweep).name: paths.wrapper(sweep), manifest.code.archive: jobs / manifest.code.archive}
    notes = [] if exact else [(f"its job's own version of the sweep's config.yaml is not known or gone: the "
                               f"newest stands in ({shared_path.parent.name})")]
    data = config.get("data", {})
    cut = paths.jobs(sweep) / "data" / str(data.get("file", ""))
    if data.get("file") and cut.is_file():
        inputs[cut.name] = cut
    elif Path(str(data.get("path", ""))).is_file():
        notes.append(f"the dataset is read in place, as the job read it: {data['path']}")
    else:
        raise ResultsError(f"run '{run_id}': the dataset its job received is not here ({cut.name} in "
                           f"{cut.parent}, or {data.get('path')})")
    missing = [str(source) for source in inputs.values() if not source.is_file()]
    if missing:
        raise ResultsError(f"run '{run_id}': {missing[0]} is gone; `sweep submit` renders it again")
    if entry.trials:
        notes.append("a search trial: its progress reporting to the search's driver is left out")

    folder = folder if folder is not None else paths.root / "reproduce" / sweep / run_id
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ResultsError(f"{folder} exists and is not empty: give another --dir, or remove it")
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in inputs.items():
        shutil.copy2(source, folder / name)
    atomic_write_text(folder / CONFIG_FILE, to_yaml(config))
    cpus = int(config.get("resources", {}).get("request_cpus", 1) or 1)
    command = f"cd {folder} && SWEEP_CPUS={cpus} /bin/sh run_job.sh {CONFIG_FILE}"
    return Reproduction(folder=folder, command=command, notes=notes)
