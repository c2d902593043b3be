"""Hostile job outputs (the corpus in tests/hostile_outputs.py): each makes its run invalid with a
reason naming the file (and key), the other runs still rank, `sweep collect` and `sweep report`
exit 0 without a traceback, job text is printed as escaped text, nothing outside the run folder
is shown, copied or changed; a chain step's output names stay inside the step's folder."""

from __future__ import annotations

import base64
import os
import resource
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from sweep.cli import main
from tests.hostile_outputs import CORPUS, SECRET, STEPS, SWEEP, Case, StepCase, make_project, snapshot

REPO = Path(__file__).resolve().parents[1]
MEMORY_BOUND = 2 << 30  # bytes of address space `sweep collect` may use on a hostile output
TIME_BOUND_S = 120  # a collect still running after this is a hang


def _secret_forms() -> list[bytes]:
    """The secret as it would appear if read: as is, and base64 (embedded in a page) at each alignment."""
    raw = SECRET.encode()
    forms = [raw]
    for shift in range(3):
        enc = base64.b64encode(b"\0" * shift + raw + b"\n")
        forms.append(enc[4 * ((shift + 2) // 3) + 4:-8])  # the middle, whatever precedes it
    return forms


def _leaks(folder: Path) -> list[str]:
    """Files under `folder` (not followed through links) that hold the secret."""
    found = []
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            p = Path(dirpath) / name
            if p.is_symlink() or not p.is_file() or p.stat().st_size > 64 << 20:
                continue
            data = p.read_bytes()
            if any(f in data for f in _secret_forms()):
                found.append(str(p))
    return found


def _run(args: list[str], bounded: bool, capsys) -> tuple[int, str]:
    if not bounded:
        status = main(args)
        out = capsys.readouterr()
        return status, out.out + out.err
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "sweep.cli", *args], capture_output=True, text=True, env=env,
                          preexec_fn=_bounded, timeout=TIME_BOUND_S)
    return proc.returncode, proc.stdout + proc.stderr


def _bounded():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BOUND, MEMORY_BOUND))


def _check(case: Case, root: Path, outside: Path, victim: str, before: dict, status: int, output: str) -> None:
    assert "Traceback" not in output, f"{case.id}:\n{output}"
    assert status == 0, f"{case.id}: exit {status}\n{output}"
    assert all(c.isprintable() or c in "\n " for c in output), f"{case.id}: unescaped output {output!r}"
    assert SECRET not in output, f"{case.id}: the secret was shown"
    from sweep.collect.gather import collect

    board = collect(SWEEP, root, write_csv=False)
    ranked = set(board.table["run_id"])
    assert victim not in ranked, f"{case.id}: the hostile run was ranked"
    assert len(ranked) == 3, f"{case.id}: the other runs no longer rank: {ranked}"
    problem = next((p for p in board.problems if p.run_id == victim), None)
    assert problem is not None, f"{case.id}: not listed as a run without a valid result"
    assert case.fragment in problem.reason, f"{case.id}: {case.fragment!r} not in {problem.reason!r}"
    if case.file:
        assert case.file in problem.reason, f"{case.id}: {case.file} not named in {problem.reason!r}"
    assert problem.reason.isprintable(), f"{case.id}: {problem.reason!r}"
    assert all(line.isprintable() for line in problem.stderr_tail), f"{case.id}: {problem.stderr_tail!r}"
    assert victim[:12] in output, f"{case.id}: the run is not in the output"
    assert not _leaks(root), f"{case.id}: the secret is in {_leaks(root)}"
    assert snapshot(outside) == before, f"{case.id}: a file outside the run folder changed"


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.id)
def test_hostile_output_makes_its_run_invalid(case, tmp_path, capsys):
    root, outside, victim = make_project(tmp_path)
    case.plant(root / "results" / SWEEP / victim, outside)
    before = snapshot(outside)
    status, output = _run(["--root", str(root), "collect", SWEEP], case.bounded, capsys)
    _check(case, root, outside, victim, before, status, output)
    if case.report:
        status, output = _run(["--root", str(root), "report", SWEEP], case.bounded, capsys)
        assert status == 0 and "Traceback" not in output, f"{case.id}: report: exit {status}\n{output}"
        page = (root / "results" / SWEEP / "report.html").read_text()
        assert victim in page and case.fragment.replace("<", "&lt;").replace(">", "&gt;") in page, \
            f"{case.id}: the report does not list the run with its reason"
        assert "<script>alert" not in page, f"{case.id}: job text as HTML"
        assert not _leaks(root), f"{case.id}: the secret is in {_leaks(root)}"
        assert snapshot(outside) == before, f"{case.id}: a file outside the run folder changed"


@pytest.mark.parametrize("case", [c for c in CORPUS if c.kind == "markup"], ids=lambda c: c.id)
def test_sweep_status_prints_job_text_as_text(case, tmp_path, capsys):
    """`sweep status` shows a failed run's reason (its run.json error): as text, escaped."""
    root, outside, victim = make_project(tmp_path)
    case.plant(root / "results" / SWEEP / victim, outside)
    status = main(["--root", str(root), "status", SWEEP])
    out = capsys.readouterr()
    output = out.out + out.err
    assert status == 0 and "Traceback" not in output, output
    assert all(c.isprintable() or c in "\n " for c in output), f"{case.id}: unescaped output {output!r}"
    assert victim in output and "failed" in output


# ------------------------------------------------------------------ chain steps

@pytest.mark.parametrize("case", STEPS, ids=lambda c: c.id)
def test_a_step_output_stays_in_the_step_folder(case: StepCase, tmp_path):
    """The chain takes a step's outputs only as regular files named in its own folder: a name
    that leads elsewhere, a symlink, a pipe, a folder or an oversized file is a StepError naming
    it, and nothing outside is read (the secret is not in the message) or changed."""
    import json

    from sweep.chain.steps import StepError, StepRequest, _step_result, finished_step

    base = tmp_path
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET + "\n")
    request = StepRequest("evaluate", "0123456789abcdef", {})
    step = base / "project" / "results" / "chain" / "steps" / request.run_id
    step.mkdir(parents=True)
    (step / "evaluation.json").write_text(json.dumps({"seed": 1, "n_waveforms": 2, "models": {}}))
    (step / "step.json").write_text(json.dumps({
        "schema_version": 1, "step": "evaluate", "chain": "chain", "inputs_hash": request.digest, "status": "done",
        "output": case.outputs}))
    if case.plant:
        case.plant(step, outside)
    before = snapshot(outside)
    assert finished_step(step, request) is None, f"{case.id}: taken as a finished step"
    with pytest.raises(StepError) as info:
        _step_result(step, request, "exit 0")
    message = str(info.value)
    assert case.fragment in message, f"{case.id}: {case.fragment!r} not in {message!r}"
    assert message.isprintable() and SECRET not in message, f"{case.id}: {message!r}"
    assert snapshot(outside) == before


def test_a_step_stderr_symlink_is_not_read(tmp_path):
    """A failed step's message quotes stderr.txt's last line, never through a symlink."""
    import json

    from sweep.chain.steps import StepError, StepRequest, _step_result

    (tmp_path / "secret.txt").write_text(SECRET + "\n")
    request = StepRequest("simulate", "0123456789abcdef", {})
    step = tmp_path / "step"
    step.mkdir()
    (step / "stderr.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(StepError) as info:
        _step_result(step, request, "exit 1")
    assert SECRET not in str(info.value) and "stderr.txt" in str(info.value)
    (step / "stderr.txt").unlink()
    (step / "stderr.txt").write_text("Traceback\nValueError: [/] \x1b[2J bad\n")
    (step / "step.json").write_text(json.dumps({"status": "failed", "error": "x\x1b]0;t\x07"}))
    with pytest.raises(StepError) as info:
        _step_result(step, request, "exit 1")
    assert str(info.value).isprintable() and "\\x1b" in str(info.value)


# ------------------------------------------------------------------ what must still be accepted

def test_a_clean_sweep_ranks_every_run(tmp_path, capsys):
    root, _, victim = make_project(tmp_path)
    assert main(["--root", str(root), "collect", SWEEP]) == 0
    from sweep.collect.gather import collect

    board = collect(SWEEP, root, write_csv=False)
    assert len(board.table) == 4 and not board.problems and board.table["run_id"].iloc[0] == victim
    assert (root / "results" / SWEEP / "best" / f"1-{victim}" / "model.keras").is_file()


def test_nan_in_a_metric_that_does_not_rank_is_kept(tmp_path):
    """NaN (a metric not computed: AUC on one class) is a value a job writes; outside the
    ranking it does not make the run invalid."""
    from sweep.collect.gather import collect
    from tests.hostile_outputs import metric

    root, _, victim = make_project(tmp_path)
    metric("natural_f1", "NaN")(root / "results" / SWEEP / victim, tmp_path)
    board = collect(SWEEP, root, write_csv=False)
    assert len(board.table) == 4 and board.table["run_id"].iloc[0] == victim


# ------------------------------------------------------------------ the corpus

def test_corpus_totals(capsys):
    """Every class of the issue is in the corpus, each case once; the totals are printed."""
    kinds = Counter(c.kind for c in CORPUS)
    assert set(kinds) == {"values", "types", "records", "size", "symlinks", "markup"}
    assert len({c.id for c in CORPUS}) == len(CORPUS)
    assert len({c.id for c in STEPS}) == len(STEPS)
    total = len(CORPUS) + len(STEPS)
    with capsys.disabled():
        print("\nhostile job outputs: " + ", ".join(f"{k} {n}" for k, n in kinds.items())
              + f", traversal {len(STEPS)}; {total} cases, {sum(c.report for c in CORPUS)} also through "
              f"`sweep report`, {sum(c.bounded for c in CORPUS)} in a bounded process")
    assert total >= 80


# ------------------------------------------------------------------ datasets: zip bombs, ROOT arrays

def _bomb(path: Path, unpacked: int) -> Path:
    """An npz whose 'windows' array is `unpacked` bytes of zeros (about unpacked / 1000 on disk)
    beside a valid 'meta'."""
    import io
    import zipfile

    import numpy as np

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        buf = io.BytesIO()
        np.save(buf, np.array('{"kind": "x"}'))
        z.writestr("meta.npy", buf.getvalue())
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (unpacked,)})
        with z.open("windows.npy", "w", force_zip64=True) as member:
            member.write(header.getvalue())
            chunk = bytes(1 << 20)
            for _ in range(unpacked >> 20):
                member.write(chunk)
    return path


def test_a_zip_bomb_dataset_is_refused_before_numpy_reads_it(tmp_path):
    """A chain's dataset comes from its simulation step: an npz that decompresses to a thousand
    times its size is refused, naming the file, before any array is read."""
    from sweep.core.errors import InputError
    from sweep.physics import datasets, readers

    bomb = _bomb(tmp_path / "dataset.npz", 400 << 20)
    assert bomb.stat().st_size < 2 << 20
    for read in (datasets.read_meta, readers.read_npz):
        with pytest.raises(InputError) as info:
            read(bomb)
        assert str(bomb) in str(info.value) and "zip bomb" in str(info.value), str(info.value)


def test_a_real_dataset_is_not_taken_for_a_bomb(tmp_path):
    from sweep.physics.datasets import read_meta, simulate_to_file

    simulate_to_file(tmp_path / "d.npz", 40, 1)
    assert read_meta(tmp_path / "d.npz")["kind"]


def _ragged_root(path: Path, rows: list[list[float]]) -> Path:
    import awkward as ak
    import numpy as np
    import uproot

    n = len(rows)
    data = {"wf_i": ak.Array([np.asarray(r, np.float64) for r in rows]),
            "time": ak.Array([np.asarray([1.0], np.float64)] * n), "tag": ak.Array([np.asarray([1], np.int32)] * n),
            "ncls": np.ones(n, np.int32), "mom": np.ones(n, np.float64)}
    with uproot.recreate(path) as f:
        t = f.mktree("sim", {k: v.type.content if isinstance(v, ak.Array) else v.dtype for k, v in data.items()})
        t.extend(data)
    return path


def test_ragged_root_waveforms_are_padded_with_numpy(tmp_path, monkeypatch):
    """Waveforms of different lengths: each row padded with its last sample (as before, without
    Python lists); entries x longest beyond MAX_ROOT_SAMPLES is refused with what to do."""
    import numpy as np

    from sweep.physics import readers

    path = _ragged_root(tmp_path / "r.root", [[1, 2, 3], [4], [], [5, 6]])
    ws = readers.read_root(path, dt_ns=1.0, time_unit="ns")
    assert np.array_equal(ws.waveforms_mv, np.array([[1, 2, 3], [4, 4, 4], [0, 0, 0], [5, 6, 6]], np.float32))
    monkeypatch.setattr(readers, "MAX_ROOT_SAMPLES", 11)
    with pytest.raises(readers.ReaderError, match="4 waveforms padded to the longest .3 samples. are 12 samples"):
        readers.read_root(path, dt_ns=1.0, time_unit="ns")


# ------------------------------------------------------------------ the chain's report

@pytest.mark.parametrize("plant", ["symlink", "fifo", "oversized", "odd-figures"])
def test_the_chain_report_shows_no_planted_file(plant, tmp_path):
    """results/<chain>/evaluation/ holds what the evaluation step returned: a PNG that is a
    symlink to a secret, a pipe or over its limit is not embedded (the page says why), and
    figures of an unexpected form are said on the page instead of stopping it."""
    import json

    from sweep.chain.report import write_chain_report
    from sweep.records.chain import ChainRecord, save_chain

    root = tmp_path / "project"
    results = root / "results" / "c"
    evaluation = results / "evaluation"
    evaluation.mkdir(parents=True)
    save_chain(results, ChainRecord(chain="c"))
    (tmp_path / "secret.txt").write_text(SECRET + "\n")
    record = {"seed": 1, "n_waveforms": 10, "models": {}, "peaks": {}, "clusters": {}}
    if plant == "odd-figures":
        record.update(peaks={"lstm": 5}, clusters={"x": [1]}, tracks={"dedx": "high"})
    (evaluation / "evaluation.json").write_text(json.dumps(record))
    png = evaluation / "peaks.png"
    if plant == "symlink":
        png.symlink_to(tmp_path / "secret.txt")
    elif plant == "fifo":
        os.mkfifo(png)
    elif plant == "oversized":
        png.write_bytes(b"\x89PNG")
        os.truncate(png, 10 << 30)
    page = write_chain_report("c", root).read_text()
    assert not any(f.decode() in page for f in _secret_forms())
    if plant == "odd-figures":
        assert "evaluation.json: its figures are not of the form this sweep reads" in page
    else:
        assert "peaks.png not shown: " in page


def test_a_copy_never_writes_through_a_planted_symlink(tmp_path):
    """untrusted.copy_file (the chain's leader record, its dataset, best/): a target that is a
    symlink is refused, naming it, and the file it points to is left as it was."""
    from sweep.records.untrusted import UntrustedFileError, copy_file

    (tmp_path / "model.json").write_text("{}")
    (tmp_path / "victim").write_text("keep")
    (tmp_path / "leader.json").symlink_to(tmp_path / "victim")
    with pytest.raises(UntrustedFileError, match="leader.json: expected a regular file or nothing, got a symlink"):
        copy_file(tmp_path / "model.json", tmp_path / "leader.json")
    assert (tmp_path / "victim").read_text() == "keep"
