"""data.url: the jobs fetch the dataset from a server sweep does not run. What they fetched is
checked against the sha256 the submit side computed from data.path (the config carries it), never
against what the fetched file says of itself; and plain http:// is refused unless the grid says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sweep.core.errors import InputError, RenderError
from sweep.core.expand import expand
from sweep.core.grid import load_grid
from sweep.core.render import render_sweep
from sweep.fsutil import file_digest
from sweep.physics.datasets import dataset_identity, write_model_file

REPO = Path(__file__).resolve().parents[1]

GRID = """\
sweep: u
model: lstm
data: {{path: data/d.npz, {data}}}
axes:
  optimizer: [adam]
"""


def _forged(small_dataset: Path, folder: Path) -> tuple[Path, str]:
    """A file that is not the sweep's dataset but whose metadata says it was cut from it (what a
    compromised cache or server can serve), and the sweep's real sha256."""
    forged = folder / small_dataset.name
    write_model_file(small_dataset, "cnn", forged)  # other arrays; meta: subset_of the real dataset
    sha = file_digest(small_dataset)["sha256"]
    assert file_digest(forged)["sha256"] != sha and dataset_identity(forged)["sha256"] == sha  # it lies
    return forged, sha


def test_a_fetched_file_cannot_vouch_for_itself(tmp_path, small_dataset):
    from sweep.job.runner import received_dataset

    forged, sha = _forged(small_dataset, tmp_path)
    data = {"file": forged.name, "path": str(small_dataset), "url": f"https://h/{forged.name}", "sha256": sha}
    with pytest.raises(InputError, match="is not the sweep's"):
        received_dataset(data, forged)
    # the real copy passes, and without data.url a per-model file still stands for its source
    assert received_dataset({**data, "file": "x"}, small_dataset).sha256 == sha
    assert received_dataset({"file": forged.name, "path": str(small_dataset)}, forged).sha256 == sha


def test_a_fetched_dataset_without_the_submit_side_digest_is_refused(tmp_path, small_dataset):
    from sweep.job.runner import received_dataset

    data = {"file": small_dataset.name, "path": str(small_dataset), "url": "https://h/d.npz"}
    with pytest.raises(InputError, match="sha256"):
        received_dataset(data, small_dataset)


@pytest.mark.training
def test_a_job_given_a_forged_copy_stops_with_exit_2(tmp_path, small_dataset):
    """The job process itself: a fetched file whose metadata claims the sweep's digest is refused
    before training (exit 2, never retried)."""
    from sweep.core import names
    from tests.conftest import grid_text
    from sweep.cli import main

    text = grid_text(small_dataset, sweep="url", axes="  optimizer: [adam]\n", epochs=1, max_samples=600)
    text = text.replace(f"path: {small_dataset},", f"path: {small_dataset}, url: 'osdf:///ospool/x/{small_dataset.name}',")
    (tmp_path / "url.yaml").write_text(text)
    assert main(["--root", str(tmp_path), "submit", str(tmp_path / "url.yaml"), "--dry-run"]) == 0
    assert main(["--root", str(tmp_path), "submit", str(tmp_path / "url.yaml"), "--local", "--no-progress",
                 "--no-collect"]) == 0
    (config,) = (tmp_path / "jobs" / "url").glob("configs/*/config.yaml")  # what the runs share
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    _forged(small_dataset, scratch)
    (scratch / "config.yaml").write_text(config.read_text())
    proc = subprocess.run([sys.executable, "-m", "sweep.job", "config.yaml", *_run_argument(tmp_path)],
                          capture_output=True, text=True,
                          cwd=scratch, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    info = json.loads((scratch / "run.json").read_text())
    assert proc.returncode == names.JOB_EXIT_BAD_INPUT, proc.stderr[-2000:]
    assert "is not the sweep's" in info["error"]


def test_rendering_a_data_url_without_the_digest_is_refused(write_grid, tmp_path):
    """Every job that fetches the dataset checks it: a render without the digest (the search
    driver's trials had none) is an error, not jobs that check nothing."""
    spec = load_grid(write_grid(GRID.format(data="url: 'osdf:///ospool/x/d.npz'")), tmp_path)
    with pytest.raises(RenderError, match="sha256"):
        render_sweep(spec, expand(spec), tmp_path)
    (run,) = render_sweep(spec, expand(spec), tmp_path, dataset_sha256="ab" * 32).runs
    assert f'sha256: "{"ab" * 32}"' in run.config_text


def test_plain_http_needs_the_grid_to_say_so(write_grid, tmp_path):
    from sweep.core.errors import GridError

    grid = write_grid(GRID.format(data="url: 'http://h/d.npz'"))
    with pytest.raises(GridError) as exc:
        load_grid(grid, tmp_path)
    (issue,) = exc.value.issues
    assert issue.key == "data.url" and issue.line == 3
    assert "http://" in issue.message and "data.allow_http: true" in issue.message
    spec = load_grid(write_grid(GRID.format(data="url: 'http://h/d.npz', allow_http: true")), tmp_path)
    assert spec.data.url == "http://h/d.npz"
    with pytest.raises(GridError) as exc:
        load_grid(write_grid(GRID.format(data="url: 'http://h/d.npz', allow_http: 'yes'")), tmp_path)
    (issue,) = [i for i in exc.value.issues if i.key == "data.allow_http"]
    assert issue.line == 3 and "expected true or false" in issue.message
    with pytest.raises(GridError) as exc:
        load_grid(write_grid(GRID.format(data="allow_http: true")), tmp_path)
    (issue,) = exc.value.issues
    assert issue.key == "data.allow_http" and "data.url" in issue.message


def _run_argument(root):
    """The --run argument the local backend gave the sweep's one job (its run.json's argv)."""
    (record,) = (root / "results" / "url").glob("*/run.json")
    argv = json.loads(record.read_text())["argv"]
    return argv[argv.index("--run"):argv.index("--run") + 2]
