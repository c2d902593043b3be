"""The job carries its own code (an archive of the package) and says at once, with exit status 3,
when its interpreter cannot run it; the submit side refuses such a condor.python before queueing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from sweep.cli import main
from sweep.core import names
from sweep.job import envcheck
from sweep.submit import codebundle
from sweep.submit.backends import htcondor

REPO = Path(__file__).resolve().parents[1]
#: An interpreter without numpy or TensorFlow: Debian's own Python (the venv's base).
BARE_PYTHON = "/usr/bin/python3"


def _bare_python_lacks_numpy() -> bool:
    return subprocess.run([BARE_PYTHON, "-I", "-c", "import numpy"], capture_output=True).returncode != 0


def test_archive_holds_the_whole_package_and_is_deterministic():
    first, second = codebundle.build(), codebundle.build()
    assert first.sha256 == second.sha256 and first.name == f"sweep-code-{first.sha256[:16]}.zip"
    with zipfile.ZipFile(__import__("io").BytesIO(first.data)) as zf:
        names = set(zf.namelist())
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}  # no build time inside
    package = REPO / "sweep"
    expected = {f"sweep/{p.relative_to(package).as_posix()}" for p in package.rglob("*.py")
                if "__pycache__" not in p.parts}
    assert names == expected and "sweep/job/runner.py" in names


def test_job_imports_its_code_from_the_archive_alone(tmp_path):
    """With the archive first on the path, run from a folder away from the checkout, sweep (and
    the job's record of where its code came from) is the archive's."""
    archive = codebundle.write(codebundle.build(), tmp_path)
    program = ("import json, sweep, sweep.job.runner as r; from sweep.records.base import plain; "
               "print(sweep.__file__); "
               "print(json.dumps(plain(r.code_origin())))")
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(archive)})
    assert proc.returncode == 0, proc.stderr
    location, origin = proc.stdout.splitlines()
    assert location.startswith(str(archive) + "/sweep/")
    assert json.loads(origin) == {"archive": archive.name, "sha256": codebundle.build().sha256,
                                  "loaded_from": str(archive)}


@pytest.mark.skipif(not Path(BARE_PYTHON).is_file(), reason="needs Debian's /usr/bin/python3")
def test_an_interpreter_without_tensorflow_ends_the_job_with_exit_3(tmp_path):
    assert _bare_python_lacks_numpy(), "the test needs an interpreter without numpy"
    archive = codebundle.write(codebundle.build(), tmp_path)
    (tmp_path / "config.yaml").write_text("sweep: s\n")
    proc = subprocess.run([BARE_PYTHON, "-m", "sweep.job", "config.yaml"], capture_output=True, text=True,
                          cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(archive)})
    assert proc.returncode == names.JOB_EXIT_ENVIRONMENT == envcheck.EXIT_ENVIRONMENT == 3
    (line,) = proc.stderr.strip().splitlines()  # one line, no traceback
    assert line.startswith("environment: no module named numpy") and "no module named tensorflow" in line
    info = json.loads((tmp_path / "run.json").read_text())
    assert info == {"schema_version": 1, "status": "failed", "exit_code": 3, "error": line}


def _wrapper(tmp_path: Path, python: str) -> Path:
    from sweep.core.expand import expand
    from sweep.core.grid import parse_grid
    from sweep.core.render import render_sweep

    spec = parse_grid(f"sweep: w\nmodel: lstm\ndata: {{path: d.npz}}\ncondor: {{python: {python}}}\n", "w.yaml",
                      tmp_path)
    rendered = render_sweep(spec, expand(spec), tmp_path, code_archive="sweep-code-x.zip")
    path = tmp_path / "run_job.sh"
    path.write_text(rendered.wrapper_text)
    return path


def test_the_wrapper_says_when_the_interpreter_is_not_on_the_node(tmp_path):
    python = tmp_path / "python3"
    shutil.copy(sys.executable, python)  # exists and is executable at validation...
    wrapper = _wrapper(tmp_path, str(python))
    python.unlink()  # ...but not on the execute node
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    proc = subprocess.run(["/bin/sh", str(wrapper), "config.yaml"], capture_output=True, text=True, cwd=scratch)
    assert proc.returncode == 3 and proc.stderr.startswith(f"environment: no interpreter {python} on ")
    assert (json.loads((scratch / "run.json").read_text())["error"]
            == f"environment: no interpreter {python} on this node")


def test_the_wrapper_runs_the_code_archive_its_job_received_whatever_this_render_names(tmp_path):
    """A DAG still running from an earlier render transfers that render's code archive, and runs
    the wrapper as it is now (one file per sweep): the wrapper must put the archive it finds in the
    scratch folder on the path, not the one of the newest render."""
    python = tmp_path / "show.sh"  # stands in for the interpreter: prints the path the wrapper set
    python.write_text('#!/bin/sh\necho "$PYTHONPATH"\n')
    python.chmod(0o755)
    wrapper = _wrapper(tmp_path, str(python))  # rendered for sweep-code-x.zip
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "sweep-code-older.zip").write_bytes(b"PK")  # what the earlier render's job.sub transferred
    proc = subprocess.run(["/bin/sh", str(wrapper), "config.yaml"], capture_output=True, text=True, cwd=scratch,
                          env={**os.environ, "PYTHONPATH": ""})
    assert proc.returncode == 0 and proc.stdout.split(":")[0].strip() == str(scratch / "sweep-code-older.zip")


def test_the_dag_does_not_retry_an_environment_failure(tmp_path):
    post = tmp_path / "post.sh"
    post.write_text(htcondor.POST_SCRIPT)
    results = {code: subprocess.run(["/bin/sh", str(post), str(code)]).returncode for code in (0, 1, 2, 3, -1002, 137)}
    assert results == {0: 0, 1: 1, 2: 2, 3: 2, -1002: 2, 137: 1}  # 2: DAGMan's UNLESS-EXIT, no retry


@pytest.mark.skipif(not Path(BARE_PYTHON).is_file(), reason="needs Debian's /usr/bin/python3")
def test_submit_refuses_a_condor_python_without_tensorflow_before_queueing(tmp_path, small_dataset, capsys):
    assert _bare_python_lacks_numpy()
    from tests.conftest import grid_text

    grid = tmp_path / "bare.yaml"
    grid.write_text(grid_text(small_dataset, sweep="bare", extra=f"condor: {{python: {BARE_PYTHON}}}\n"))
    assert main(["--root", str(tmp_path), "submit", str(grid), "--local", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"condor.python {BARE_PYTHON} cannot run the jobs (environment: no module named numpy" in err
    assert not (tmp_path / "jobs").exists() and not (tmp_path / "results").exists()


def test_each_job_transfers_only_its_models_arrays(small_dataset, tmp_path):
    """The per-model file holds the model's arrays as they are in the dataset, the others empty;
    it is a dataset file the loaders read, it stands for the dataset it was cut from (the run's
    identity does not change with how the data travelled), and it is cut again only when the
    dataset changes."""
    import numpy as np

    from sweep.physics import datasets

    target = tmp_path / "small.lstm.npz"
    first = datasets.write_model_file(small_dataset, "lstm", target)
    assert first["written"] and first["size"] < first["source_size"]
    with np.load(small_dataset) as full, np.load(target) as cut:
        for key in datasets.MODEL_KEYS["lstm"]:
            assert np.array_equal(full[key], cut[key]), key
        for key in datasets.MODEL_KEYS["cnn"]:
            assert cut[key].size == 0 and cut[key].dtype == full[key].dtype
    X, y, _ = datasets.load_peak_windows(target, True, None, 3)
    X0, y0, _ = datasets.load_peak_windows(small_dataset, True, None, 3)
    assert np.array_equal(X, X0) and np.array_equal(y, y0)
    source = datasets.dataset_identity(small_dataset)
    assert datasets.dataset_identity(target) == source and source["file"] == small_dataset.name
    assert datasets.write_model_file(small_dataset, "lstm", target)["written"] is False  # unchanged: kept
    cnn = datasets.write_model_file(small_dataset, "cnn", tmp_path / "small.cnn.npz")
    X, y = datasets.load_cluster_dataset(tmp_path / "small.cnn.npz", None, 0)
    assert X.shape[1:] == (1024, 1) and y.size == 600 and cnn["size"] < cnn["source_size"]


def test_a_dataset_read_in_place_is_not_transferred(tmp_path):
    import htcondor2

    from sweep.core.expand import expand
    from sweep.core.grid import parse_grid
    from sweep.core.render import render_sweep

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "d.npz").write_bytes(b"x")
    for transfer, inputs, file in ((True, 2, "d.lstm.npz"), (False, 1, "d.npz")):
        spec = parse_grid(f"sweep: t\nmodel: lstm\ndata: {{path: data/d.npz, transfer: {str(transfer).lower()}}}\n",
                          "t.yaml", tmp_path)
        (run,) = render_sweep(spec, expand(spec), tmp_path).runs
        assert len(htcondor2.Submit(run.submit_text)["transfer_input_files"].split(",")) == inputs
        assert f"file: \"{file}\"" in run.config_text
        assert f"path: \"{tmp_path.resolve()}/data/d.npz\"" in run.config_text


def test_jobs_hand_their_checkpoint_to_htcondor_every_ten_minutes_unless_told_otherwise(tmp_path):
    import htcondor2

    from sweep.core.expand import expand
    from sweep.core.grid import parse_grid
    from sweep.core.render import render_sweep

    for condor, every in (("", "600"), ("condor: {checkpoint_every: 30m, environment: {A: b}}\n", "1800"),
                          ("condor: {checkpoint_every: false}\n", None)):
        spec = parse_grid("sweep: t\nmodel: lstm\ndata: {path: d.npz}\n" + condor, "t.yaml", tmp_path)
        (run,) = render_sweep(spec, expand(spec), tmp_path).runs
        submit = htcondor2.Submit(run.submit_text)
        if every is None:
            assert "checkpoint_exit_code" not in submit and "SWEEP_CHECKPOINT" not in run.submit_text
        else:
            assert submit["checkpoint_exit_code"] == "85" and submit["transfer_checkpoint_files"] == "checkpoint"
            assert f"SWEEP_CHECKPOINT_EVERY_S={every}" in submit["environment"]
        if "A: b" in condor:  # the grid's own environment is kept beside it
            assert submit["environment"] == '"A=b SWEEP_CHECKPOINT_EVERY_S=1800"'


def _view(folder: Path, python: str) -> Path:
    """A stand-in for an LCG view on CVMFS: a setup script that puts a python3 first on PATH and,
    as the real views do, sets PYTHONPATH (sweep's code must still come first)."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python3").write_text(f'#!/bin/sh\nexec {python} "$@"\n')
    (bin_dir / "python3").chmod(0o755)
    setup = folder / "setup.sh"
    setup.write_text(f'PATH={bin_dir}:$PATH\nexport PATH\nPYTHONPATH={folder}/lib/python3.11/site-packages\n'
                     'export PYTHONPATH\nunset_variable_read="$SOME_UNSET_VARIABLE"\nfalse\n')
    return setup


@pytest.mark.training
def test_a_cvmfs_setup_script_gives_the_jobs_their_python(tmp_path, small_dataset):
    """condor.cvmfs for real: the wrapper sources the script (which reads unset variables and ends
    on a failed command, as setup scripts do), runs its python3, with sweep's code from the archive."""
    from tests.conftest import grid_text

    setup = _view(tmp_path / "view", sys.executable)
    grid = tmp_path / "view.yaml"
    grid.write_text(grid_text(small_dataset, sweep="view", axes="  optimizer: [adam]\n", epochs=1, max_samples=600,
                              extra=f"condor: {{cvmfs: {setup}}}\n"))
    assert main(["--root", str(tmp_path), "submit", str(grid), "--local", "--no-progress"]) == 0
    (info_path,) = (tmp_path / "results" / "view").glob("*/run.json")
    info = json.loads(info_path.read_text())
    assert info["status"] == "ok" and info["interpreter"]["executable"] == sys.executable
    assert info["code"]["loaded_from"].startswith(str(tmp_path / "jobs" / "view" / "sweep-code-"))


@pytest.mark.skipif(not Path(BARE_PYTHON).is_file(), reason="needs Debian's /usr/bin/python3")
def test_a_cvmfs_view_without_tensorflow_is_refused_before_queueing(tmp_path, small_dataset, capsys):
    from tests.conftest import grid_text

    setup = _view(tmp_path / "view", BARE_PYTHON)
    grid = tmp_path / "bare.yaml"
    grid.write_text(grid_text(small_dataset, sweep="bare", extra=f"condor: {{cvmfs: {setup}}}\n"))
    assert main(["--root", str(tmp_path), "submit", str(grid), "--local", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"the setup script condor.cvmfs {setup} cannot run the jobs (environment: no module named numpy" in err
    assert not (tmp_path / "jobs").exists()


def test_a_cvmfs_script_missing_on_the_node_ends_the_job_as_environment(tmp_path):
    from sweep.core.expand import expand
    from sweep.core.grid import parse_grid
    from sweep.core.render import render_sweep

    spec = parse_grid("sweep: w\nmodel: lstm\ndata: {path: d.npz}\ncondor: {cvmfs: /cvmfs/nowhere/setup.sh}\n",
                      "w.yaml", tmp_path)
    wrapper = tmp_path / "run_job.sh"
    wrapper.write_text(render_sweep(spec, expand(spec), tmp_path, code_archive="c.zip").wrapper_text)
    proc = subprocess.run(["/bin/sh", str(wrapper), "config.yaml"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 3 and proc.stderr.startswith("environment: no setup script /cvmfs/nowhere/setup.sh on ")
    assert json.loads((tmp_path / "run.json").read_text())["exit_code"] == 3


@pytest.mark.training
def test_a_job_that_fetched_another_copy_of_the_dataset_stops_with_exit_2(tmp_path, small_dataset):
    """data.url: the local backend reads data.path (the same content) and trains; a job whose
    fetched copy differs from the sweep's dataset (a stale cache) stops at once, not retried."""
    from tests.conftest import grid_text

    data = grid_text(small_dataset, sweep="url", axes="  optimizer: [adam]\n", epochs=1, max_samples=600)
    data = data.replace(f"path: {small_dataset},", f"path: {small_dataset}, url: 'osdf:///ospool/x/{small_dataset.name}',")
    grid = tmp_path / "url.yaml"
    grid.write_text(data)
    assert main(["--root", str(tmp_path), "submit", str(grid), "--local", "--no-progress"]) == 0
    (config,) = (tmp_path / "jobs" / "url").glob("configs/*/config.yaml")  # what the runs share
    text = config.read_text()
    from sweep.fsutil import file_digest

    sha = file_digest(small_dataset)["sha256"]
    assert f'sha256: "{sha}"' in text
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "config.yaml").write_text(text.replace(sha, "0" * 64))
    proc = subprocess.run([sys.executable, "-m", "sweep.job", "config.yaml", *_run_argument(tmp_path)],
                          capture_output=True, text=True,
                          cwd=scratch, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == names.JOB_EXIT_BAD_INPUT
    info = json.loads((scratch / "run.json").read_text())
    assert "is not the sweep's" in info["error"] and "differs from data.path" in info["error"]


def test_the_oldest_python_a_job_accepts_is_the_package_s(monkeypatch):
    """The job's own code needs what the package requires (enum.StrEnum is 3.11): an older
    interpreter is refused by the environment check, with one line, not by an ImportError."""
    import tomllib

    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=" + ".".join(map(str, envcheck.OLDEST_PYTHON))
    monkeypatch.setattr(envcheck.sys, "version_info", (3, 10, 14, "final", 0))
    monkeypatch.setattr(envcheck.sys, "version", "3.10.14 (main)")
    assert "Python 3.10.14 is older than 3.11" in envcheck.problems()


def _run_argument(root):
    """The --run argument the local backend gave the sweep's one job (its run.json's argv)."""
    (record,) = (root / "results" / "url").glob("*/run.json")
    argv = json.loads(record.read_text())["argv"]
    return argv[argv.index("--run"):argv.index("--run") + 2]
