"""Provenance a result can be checked against (issue 26): run.json records where a run comes from
(the project's git commit and whether it was dirty, the submit host, the HTCondor versions of the
job's and the machine's ads) and the sha256 of every output its job returns; `sweep collect`
checks them and does not rank a run whose files changed since; the report shows the leaders'."""

import hashlib
import importlib
import json
import shutil
import socket
import subprocess

import pytest

from sweep.cli import main
from sweep.collect.gather import collect
from sweep.core.states import RunState
from sweep.records.base import RecordError
from sweep.records.runinfo import DIGESTED, Provenance, RunInfo, read_run_info
from tests.conftest import grid_text
from tests.synthetic import make_sweep

GIT = shutil.which("git")


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _record_digests(results, run_id, provenance=None) -> dict:
    """What the job does last: the sha256 of each output it wrote, in its run.json."""
    folder = results / run_id
    info = json.loads((folder / "run.json").read_text())
    info["outputs"] = {name: _sha256(folder / name) for name in DIGESTED if (folder / name).is_file()}
    if provenance:
        info["provenance"] = provenance
    (folder / "run.json").write_text(json.dumps(info))
    return info


def _flip_one_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _synthetic(tmp_path):
    axes = {"optimizer": ["adam", "sgd", "rmsprop"], "learning_rate": [0.001, 0.01]}
    manifest = make_sweep(tmp_path, axes=axes, corrupt=0, missing=0)
    results = tmp_path / "results" / "syn"
    return manifest, results


# ------------------------------------------------------------------ the record
def test_run_json_reads_back_its_provenance_and_digests(tmp_path):
    info = RunInfo(status=RunState.OK, provenance=Provenance(commit="a" * 40, dirty=False, submit_host="submit01",
                                                             submit_condor="24.0.1", execute_condor="23.9.6"),
                   outputs={"model.keras": "0" * 64, "metrics.json": "f" * 64})
    data = info.to_json()
    assert data["provenance"] == {"commit": "a" * 40, "dirty": False, "submit_host": "submit01",
                                  "submit_condor": "24.0.1", "execute_condor": "23.9.6"}
    back = RunInfo.from_json(json.loads(json.dumps(data)))
    assert back.provenance == info.provenance and back.outputs == info.outputs
    # an older run.json has neither: nothing to check
    assert RunInfo.from_json({"schema_version": 1, "status": "ok"}).outputs is None


@pytest.mark.parametrize("outputs, key", [({"../../etc/passwd": "0" * 64}, "outputs"),
                                          ({"model.keras": "not a digest"}, "outputs.model.keras"),
                                          ({"model.keras": 5}, "outputs")])
def test_outputs_name_only_the_job_s_files_with_real_digests(outputs, key):
    """run.json comes back from an execute node: collect opens only the outputs it knows."""
    with pytest.raises(RecordError) as err:
        RunInfo.from_json({"schema_version": 1, "status": "ok", "outputs": outputs})
    assert err.value.key == key


def test_the_job_reads_the_htcondor_versions_of_its_ads(tmp_path, monkeypatch):
    from sweep.job.runner import ad_condor_version, run_provenance

    job_ad, machine_ad = tmp_path / ".job.ad", tmp_path / ".machine.ad"
    job_ad.write_text('ClusterId = 12\nCondorVersion = "$CondorVersion: 24.0.1 2024-08-08 BuildID: 7 $"\n')
    machine_ad.write_text('Cpus = 1\ncondorversion = "$CondorVersion: 23.9.6 2024-07-01 BuildID: 1 $"\n')
    monkeypatch.delenv("_CONDOR_JOB_AD", raising=False)
    monkeypatch.delenv("_CONDOR_MACHINE_AD", raising=False)
    assert ad_condor_version("_CONDOR_JOB_AD") is None  # the local backend: no ads
    assert run_provenance({"run_id": "r"}) is None
    monkeypatch.setenv("_CONDOR_JOB_AD", str(job_ad))
    monkeypatch.setenv("_CONDOR_MACHINE_AD", str(machine_ad))
    found = run_provenance({"provenance": {"commit": "b" * 40, "dirty": True, "submit_host": "s", "extra": 1}})
    assert found == Provenance(commit="b" * 40, dirty=True, submit_host="s", submit_condor="24.0.1",
                               execute_condor="23.9.6")
    # a hand-edited config.yaml: values of the wrong type are not copied
    assert run_provenance({"provenance": {"commit": 5, "dirty": "yes"}}).commit is None
    monkeypatch.setenv("_CONDOR_MACHINE_AD", str(tmp_path / "gone"))
    assert ad_condor_version("_CONDOR_MACHINE_AD") is None


# ------------------------------------------------------------------ the submit side
@pytest.mark.skipif(GIT is None, reason="git is not installed")
def test_the_submit_side_tells_the_commit_and_whether_the_checkout_is_dirty(tmp_path, monkeypatch):
    from sweep.submit.prepare import submit_provenance

    assert submit_provenance(tmp_path) == {"submit_host": socket.gethostname()}  # not a checkout: no commit
    head = _git_project(tmp_path)
    assert submit_provenance(tmp_path) == {"submit_host": socket.gethostname(), "commit": head, "dirty": False}
    (tmp_path / "notes.txt").write_text("untracked\n")  # not counted, as with git describe --dirty
    assert submit_provenance(tmp_path)["dirty"] is False
    (tmp_path / "README").write_text("changed\n")
    assert submit_provenance(tmp_path) == {"submit_host": socket.gethostname(), "commit": head, "dirty": True}
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))  # no git on this machine: nothing guessed
    assert submit_provenance(tmp_path) == {"submit_host": socket.gethostname()}


def test_provenance_does_not_change_a_run_s_identity(write_grid, tmp_path):
    """A new commit renders the same runs (ids come from the parameters), only config.yaml's
    provenance differs."""
    from sweep.core.expand import expand
    from sweep.core.grid import load_grid
    from sweep.core.render import render_sweep

    (tmp_path / "d.npz").write_bytes(b"")
    spec = load_grid(write_grid("sweep: p\nmodel: lstm\ndata: {path: d.npz}\naxes: {optimizer: [adam, sgd]}\n"),
                     tmp_path)
    plain = render_sweep(spec, expand(spec), tmp_path)
    marked = render_sweep(spec, expand(spec), tmp_path, provenance={"submit_host": "s", "commit": "c" * 40,
                                                                    "dirty": False})
    assert [r.run.run_id for r in plain.runs] == [r.run.run_id for r in marked.runs]
    import yaml

    config = yaml.safe_load(marked.runs[0].config_text)
    assert config["provenance"] == {"submit_host": "s", "commit": "c" * 40, "dirty": False}
    assert "provenance" not in yaml.safe_load(plain.runs[0].config_text)


# ------------------------------------------------------------------ collect
def test_collect_does_not_rank_a_run_whose_model_changed_and_names_the_file(tmp_path, capsys):
    manifest, results = _synthetic(tmp_path)
    runs = [r["run_id"] for r in manifest["runs"]]
    for run_id in runs[1:]:  # the first is a run of an older sweep: no digests
        _record_digests(results, run_id, {"commit": "d" * 40, "dirty": True, "submit_host": "submit01",
                                          "submit_condor": "24.0.1", "execute_condor": "23.9.6"})
    board = collect("syn", tmp_path, write_csv=False, read_only=True)
    assert len(board.table) == len(runs) and not board.problems
    assert board.provenance[runs[0]]["files"] == "unverified"
    assert {board.provenance[r]["files"] for r in runs[1:]} == {"verified"}
    assert board.provenance[runs[1]]["commit"] == "d" * 40 and board.provenance[runs[1]]["dirty"] is True

    best = board.table.iloc[0]["run_id"]
    if best == runs[0]:  # the tampered run is a verified one
        best = board.table.iloc[1]["run_id"]
    model = results / best / "model.keras"
    original = model.read_bytes()
    _flip_one_byte(model)
    board = collect("syn", tmp_path, write_csv=False, read_only=True)
    assert best not in set(board.table["run_id"]) and best not in board.provenance
    (problem,) = board.problems
    assert problem.run_id == best and problem.state is RunState.CORRUPT and problem.modified == ["model.keras"]
    assert problem.verified is False and "modified since its job wrote it: model.keras" in problem.reason

    assert main(["--root", str(tmp_path), "collect", "syn"]) == 0
    out = capsys.readouterr().out
    assert best in out and "modified since its job" in out
    assert best not in (results / "leaderboard.csv").read_text()

    model.write_bytes(original)  # restored: the job's result again
    board = collect("syn", tmp_path, write_csv=False, read_only=True)
    assert not board.problems and board.provenance[best]["files"] == "verified"

    # a removed output and a symlinked one are changes too
    (results / best / "history.csv").unlink()
    metrics = results / best / "metrics.json"
    moved = tmp_path / "metrics.json"
    metrics.rename(moved)
    metrics.symlink_to(moved)
    (problem,) = collect("syn", tmp_path, write_csv=False, read_only=True).problems
    assert problem.run_id == best and problem.state is RunState.CORRUPT and "metrics.json" in problem.reason


def test_the_report_shows_where_the_leaders_come_from(tmp_path):
    pytest.importorskip("matplotlib")
    from sweep.collect.report_html import write_report

    manifest, results = _synthetic(tmp_path)
    runs = [r["run_id"] for r in manifest["runs"]]
    for run_id in runs:
        _record_digests(results, run_id, {"commit": "e" * 40, "dirty": True, "submit_host": "submit.example.org",
                                          "submit_condor": "24.0.1", "execute_condor": "23.9.6"})
    board = collect("syn", tmp_path, write_csv=False, read_only=True)
    tampered = board.table.iloc[-1]["run_id"]
    _flip_one_byte(results / tampered / "model.keras")
    html = write_report("syn", tmp_path, top=2).read_text()
    table = html.split('id="provenance-table"')[1].split("</table>")[0]
    assert table.count("<tr>") == 3  # header and the 2 leaders
    assert "e" * 12 + " + dirty" in table and "submit.example.org" in table and "24.0.1" in table
    assert "23.9.6" in table and "node01" in table and "verified" in table
    assert "1 run(s) whose files changed since their job wrote them are not ranked" in html
    assert tampered in html.split('id="failures-table"')[1]


# ------------------------------------------------------------------ a real job
def _git_project(root) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "HOME": str(root), "PATH": "/usr/bin:/bin"}
    (root / ".gitignore").write_text("/jobs/\n/results/\n")
    (root / "README").write_text("project\n")
    for args in (["init", "-q"], ["add", "README", ".gitignore"], ["commit", "-q", "-m", "project"]):
        subprocess.run([GIT, "-C", str(root), *args], check=True, env=env, capture_output=True)
    return subprocess.run([GIT, "-C", str(root), "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.mark.training
@pytest.mark.skipif(GIT is None, reason="git is not installed")
def test_a_real_job_records_its_provenance_and_collect_catches_a_modified_model(tmp_path, small_dataset, capsys):
    importlib.import_module("tensorflow")
    head = _git_project(tmp_path)
    grid = tmp_path / "g.yaml"
    grid.write_text(grid_text(small_dataset, sweep="prov", axes="  optimizer: [adam]\n", epochs=1))
    assert main(["--root", str(tmp_path), "submit", str(grid), "--local", "--no-progress"]) == 0
    capsys.readouterr()
    (run_id,) = [r["run_id"] for r in json.loads((tmp_path / "jobs" / "prov" / "sweep.json").read_text())["runs"]]
    folder = tmp_path / "results" / "prov" / run_id
    info = read_run_info(folder)
    assert info.status is RunState.OK
    # the grid is untracked: the checkout is clean (tracked files unchanged since the commit)
    assert info.provenance == Provenance(commit=head, dirty=False, submit_host=socket.gethostname())
    assert set(info.outputs) == {"model.keras", "model.json", "metrics.json", "history.csv", "roc.csv"}
    for name, digest in info.outputs.items():
        assert _sha256(folder / name) == digest, name

    model = folder / "model.keras"
    original = model.read_bytes()
    _flip_one_byte(model)
    assert main(["--root", str(tmp_path), "collect", "prov"]) == 0
    out = capsys.readouterr().out
    assert run_id in out and "modified since its job" in out
    board = collect("prov", tmp_path, write_csv=False, read_only=True)
    assert board.table.empty and [p.modified for p in board.problems] == [["model.keras"]]

    model.write_bytes(original)
    board = collect("prov", tmp_path, write_csv=False, read_only=True)
    assert list(board.table["run_id"]) == [run_id] and board.provenance[run_id]["files"] == "verified"
    assert board.provenance[run_id]["commit"] == head  # the leader's commit, for the report
