"""Records that decide what is submitted survive a crash or power cut (sweep.fsutil's durable
writes, sweep.records.base's recovery): the manifest and chain.json are fsynced (file, then
folder) and keep their previous version, which is read, with a warning, when the file is torn;
the bulk rendered files are never fsynced. The system calls are observed with strace on real
processes; a torn file is made the way a crash leaves one (cut short, or zero-filled)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from sweep.core.errors import ResultsError
from sweep.records.chain import ChainRecord, StageEntry, read_chain, save_chain
from sweep.records.manifest import Manifest, Submission, read_manifest, save_manifest, update_submission
from tests.conftest import REPO


def _strace(tmp_path, code: str, *args: str) -> list[str]:
    """The fsync and rename calls (with the paths of their descriptors) of `code` run by a real
    interpreter in the project's folder, in order."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed")
    out = tmp_path / "strace.txt"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([strace, "-f", "-qq", "-e", "signal=none", "-y", "-o", str(out),
                           "-e", "trace=fsync,fdatasync,rename,renameat,renameat2",
                           sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=300,
                          cwd=REPO)
    if proc.returncode != 0 and "ptrace" in proc.stderr:
        pytest.skip(f"strace cannot trace here: {proc.stderr.strip()[:200]}")
    assert proc.returncode == 0, proc.stderr
    return [line.split(None, 1)[1] for line in out.read_text().splitlines() if " " in line]


SAVE = """
import sys
from pathlib import Path
from sweep.records.manifest import update_submission
update_submission(Path(sys.argv[1]), "s1", backend="htcondor", runs=["r1"], state="submitting")
"""


def test_the_intent_record_is_fsynced_file_then_folder_before_it_is_trusted(tmp_path):
    jobs = tmp_path / "jobs" / "s"
    jobs.mkdir(parents=True)
    calls = _strace(tmp_path, SAVE, str(jobs))
    file_sync = next((i for i, c in enumerate(calls) if re.match(r"fsync\(\d+<.*/\.sweep\.json\.\w+\.tmp>\)", c)),
                     None)
    renamed = next(i for i, c in enumerate(calls) if c.startswith("rename") and c.endswith('"sweep.json") = 0'))
    dir_sync = next((i for i, c in enumerate(calls) if re.match(rf"fsync\(\d+<{re.escape(str(jobs))}>\)", c)
                     and i > renamed), None)
    assert file_sync is not None and dir_sync is not None and file_sync < renamed < dir_sync, calls
    assert json.loads((jobs / "sweep.json").read_text())["submissions"][0]["state"] == "submitting"


RENDER = """
import sys
sys.argv = ["bench_render.py", "--smoke", "--dir", sys.argv[1]]
sys.path.insert(0, "bench")
import bench_render
bench_render.main()
"""


def test_the_bulk_rendered_files_are_never_fsynced(tmp_path):
    calls = _strace(tmp_path, RENDER, str(tmp_path / "render"))
    synced = [c for c in calls if c.startswith(("fsync", "fdatasync"))]
    bulk = [c for c in synced if re.search(r"(config\.yaml|job\.sub|run_job\.sh|\.zip)", c)]
    assert not bulk, bulk
    # the manifest and the lock, file and folder, for each of the bench's two writes: not one per file
    assert 0 < len(synced) <= 12, synced


def _torn(path) -> None:
    """Cut the file short, as a crash before its blocks reached the disk leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_torn_manifest_is_read_from_its_previous_version_with_a_warning(tmp_path, capsys):
    save_manifest(tmp_path, Manifest(sweep="s", submissions=[Submission(id="a", at="t")]))
    save_manifest(tmp_path, Manifest(sweep="s", submissions=[Submission(id="a", at="t"), Submission(id="b", at="t")]))
    _torn(tmp_path / "sweep.json")
    manifest = read_manifest(tmp_path)
    assert [s.id for s in manifest.submissions] == ["a"]  # the version before the last write
    err = capsys.readouterr().err
    assert "sweep.json is torn" in err and "sweep.json.prev" in err and "may be lost" in err
    # the next write under the lock replaces the torn file, and the good previous version stays
    update_submission(tmp_path, "c", backend="htcondor", runs=["r"])
    assert [s.id for s in read_manifest(tmp_path).submissions] == ["a", "c"]
    assert [s["id"] for s in json.loads((tmp_path / "sweep.json.prev").read_text())["submissions"]] == ["a"]


def test_a_zero_filled_manifest_without_a_previous_version_is_a_clear_error(tmp_path):
    (tmp_path / "sweep.json").write_bytes(b"\0" * 512)
    with pytest.raises(ResultsError) as err:
        read_manifest(tmp_path)
    assert str(tmp_path / "sweep.json") in str(err.value) and "unreadable sweep manifest" in str(err.value)


def test_the_cli_reads_a_torn_manifest_with_a_warning_and_no_traceback(tmp_path, capsys):
    from sweep.cli import main
    from tests.synthetic import make_sweep

    make_sweep(tmp_path, "syn", axes={"optimizer": ["adam", "sgd"]}, corrupt=0, missing=0)
    jobs = tmp_path / "jobs" / "syn"
    save_manifest(jobs, read_manifest(jobs))  # written by this sweep: its previous version is kept
    _torn(jobs / "sweep.json")
    assert main(["--root", str(tmp_path), "status", "syn"]) == 0
    err = capsys.readouterr().err
    assert "sweep.json is torn" in err and "Traceback" not in err


def test_a_torn_chain_record_is_recovered_never_taken_for_an_empty_one(tmp_path, capsys):
    save_chain(tmp_path, ChainRecord(chain="c", stages={"peaks": StageEntry(state="done", sweep="p")}))
    save_chain(tmp_path, ChainRecord(chain="c", stages={"peaks": StageEntry(state="done", sweep="p"),
                                                        "simulate": StageEntry(state="running")}))
    _torn(tmp_path / "chain.json")
    record = read_chain(tmp_path)
    assert record.chain == "c" and record.stage("peaks").state == "done"  # not an empty record
    assert "chain.json is torn" in capsys.readouterr().err
    (tmp_path / "chain.json.prev").write_bytes(b"")  # no usable previous version either
    with pytest.raises(ResultsError) as err:
        read_chain(tmp_path)
    assert str(tmp_path / "chain.json") in str(err.value) and "chain.json.prev" in str(err.value)
