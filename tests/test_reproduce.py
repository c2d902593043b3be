"""`sweep reproduce`: one run's job, as it received it, in a folder of its own, run again here."""

import subprocess

import pytest

from sweep.cli import main
from tests.conftest import grid_text
from tests.test_local_backend import _templates


def _run(command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=300)


def _only_run(root, sweep):
    return next(p.name for p in (root / "results" / sweep).iterdir() if p.is_dir())


def test_a_failed_job_is_reproduced_here_and_fails_the_same_way(tmp_path, small_dataset, capsys):
    # the user's own wrapper template fails: its copy in the folder fails alike
    _templates(tmp_path, "echo 'Traceback: boom in layer 3' >&2\nexit 3\n")
    grid = tmp_path / "g.yaml"
    grid.write_text(grid_text(small_dataset, sweep="fails", axes="  optimizer: [adam]\n", extra="templates: tpl\n"))
    assert main(["--root", str(tmp_path), "submit", str(grid), "--local", "--no-progress", "--no-collect"]) == 1
    run = _only_run(tmp_path, "fails")
    capsys.readouterr()
    assert main(["--root", str(tmp_path), "reproduce", "fails", run]) == 0
    out = capsys.readouterr().out
    folder = tmp_path / "reproduce" / "fails" / run
    assert f"what its job received is in {folder}" in out and "the dataset is read in place" in out
    names = {p.name for p in folder.iterdir()}
    assert {"config.yaml", "run_job.sh"} <= names and any(n.startswith("sweep-code-") for n in names)
    command = out.splitlines()[-1].strip()
    assert command == f"cd {folder} && SWEEP_CPUS=1 /bin/sh run_job.sh config.yaml"
    again = _run(command)
    assert again.returncode == 3 and "boom in layer 3" in again.stderr
    # the folder is never written over
    assert main(["--root", str(tmp_path), "reproduce", "fails", run]) == 1
    assert "exists and is not empty" in capsys.readouterr().err


@pytest.mark.training
def test_a_real_job_that_failed_on_its_data_fails_again_with_the_same_error(tmp_path, small_dataset, capsys):
    # two windows cannot be split into training, validation and test waveforms: the job stops with
    # exit 2 and says why; the reproduction, with the job's own code archive, says the same
    grid = tmp_path / "g.yaml"
    grid.write_text(grid_text(small_dataset, sweep="tiny", axes="  optimizer: [adam]\n", max_samples=2))
    assert main(["--root", str(tmp_path), "submit", str(grid), "--local", "--no-progress", "--no-collect"]) == 1
    run = _only_run(tmp_path, "tiny")
    first = (tmp_path / "results" / "tiny" / run / "stderr.txt").read_text()
    capsys.readouterr()
    assert main(["--root", str(tmp_path), "reproduce", "tiny", run, "--dir", str(tmp_path / "here")]) == 0
    out = capsys.readouterr().out
    again = _run(out.splitlines()[-1].strip())
    error = [line for line in first.splitlines() if line.startswith("sweep.job:")]
    assert again.returncode == 2 and error and error[-1] in again.stderr, (first, again.stderr)
    assert "newest stands in" not in out
    # the grid is rendered again with another request: the reproduction is still of what the job
    # read (run.json's config_sha256 names that version of the shared config.yaml) ...
    from sweep.submit.prepare import prepare, write_rendered

    grid.write_text(grid.read_text().replace("request_memory: 1GB", "request_memory: 3GB"))
    write_rendered(prepare(grid, tmp_path), grid)
    versions = sorted((tmp_path / "jobs" / "tiny" / "configs").glob("*/config.yaml"), key=lambda p: p.stat().st_mtime)
    assert len(versions) == 2
    assert main(["--root", str(tmp_path), "reproduce", "tiny", run, "--dir", str(tmp_path / "exact")]) == 0
    assert "newest stands in" not in capsys.readouterr().out
    assert "request_memory_mb: 1024" in (tmp_path / "exact" / "config.yaml").read_text()
    # ... and when that version is gone, the newest stands in, and the user is told
    versions[0].unlink()
    assert main(["--root", str(tmp_path), "reproduce", "tiny", run, "--dir", str(tmp_path / "newest")]) == 0
    assert "the newest stands in" in capsys.readouterr().out
    assert "request_memory_mb: 3072" in (tmp_path / "newest" / "config.yaml").read_text()


def test_an_unknown_run_or_sweep_is_a_clear_error_and_writes_nothing(tmp_path, small_dataset, capsys):
    _templates(tmp_path, "exit 0\n")
    grid = tmp_path / "g.yaml"
    grid.write_text(grid_text(small_dataset, sweep="s", axes="  optimizer: [adam]\n", extra="templates: tpl\n"))
    main(["--root", str(tmp_path), "submit", str(grid), "--local", "--no-progress", "--no-collect"])
    capsys.readouterr()
    assert main(["--root", str(tmp_path), "reproduce", "s", "0123456789ab"]) == 1
    assert "sweep 's' has no run '0123456789ab'" in capsys.readouterr().err
    assert main(["--root", str(tmp_path), "reproduce", "nope", "0123456789ab"]) == 1
    assert "no sweep 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:  # a run id is a plain name, checked as the command is read
        main(["--root", str(tmp_path), "reproduce", "s", "../../etc"])
    assert refused.value.code == 2 and "no '/', no '..'" in capsys.readouterr().err
    assert not (tmp_path / "reproduce").exists()
