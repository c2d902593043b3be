"""Hostile and malformed grid files (the corpus in tests/hostile_grids.py): each is refused with
file, line and key, exit status 2, no traceback and nothing written; no value changes the
structure of a submit file; paths stay inside the project unless the user allows a folder."""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from sweep.cli import main
from tests.hostile_grids import CORPUS, Case, make_project, write_case

REPO = Path(__file__).resolve().parents[1]
MEMORY_BOUND = 2 << 30  # bytes of address space a validation may use
TIME_BOUND_S = 120  # a validation still running after this is a hang


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(autouse=True)
def no_allowed_roots(monkeypatch):
    monkeypatch.delenv("SWEEP_DATA_ROOTS", raising=False)
    monkeypatch.delenv("SWEEP_TEMPLATE_ROOTS", raising=False)


def _check_refusal(case: Case, path: Path, status: int, output: str, root: Path) -> None:
    assert status == 2, f"{case.id}: exit {status}\n{output}"
    assert "Traceback" not in output, output
    lines = output.strip().splitlines()
    assert lines and lines[0].endswith("in the grid file; nothing was written:"), output
    assert all(line.startswith(f"{path}") for line in lines[1:]), output
    if case.line:
        assert re.search(re.escape(str(path)) + r":\d+:\d+:", output), f"{case.id}: no line in {output!r}"
    if case.key:
        assert f" {case.key}:" in output, f"{case.id}: key {case.key!r} not in {output!r}"
    assert case.fragment in output, f"{case.id}: {case.fragment!r} not in {output!r}"
    assert all(c.isprintable() or c in "\n " for c in output), f"{case.id}: unescaped output {output!r}"
    assert not (root / "jobs").exists() and not (root / "results").exists()


@pytest.mark.parametrize("case", [c for c in CORPUS if not c.bounded], ids=lambda c: c.id)
def test_hostile_grid_is_refused_with_its_place(case, project, capsys):
    root, outside = project
    path = write_case(case, root, outside)
    status = main(["--root", str(root), "validate", str(path)])
    out = capsys.readouterr()
    _check_refusal(case, path, status, out.out + out.err, root)


def _bounded():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BOUND, MEMORY_BOUND))


@pytest.mark.parametrize("case", [c for c in CORPUS if c.bounded], ids=lambda c: c.id)
def test_bombs_and_huge_grids_stay_within_bounds(case, project):
    """Alias bombs, huge axes, deep nesting: refused in a process limited to 2 GB of address
    space, before the hang bound (a blow-up fails with MemoryError or a kill, a hang with the
    timeout)."""
    root, outside = project
    path = write_case(case, root, outside)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "sweep.cli", "--root", str(root), "validate", str(path)],
                          capture_output=True, text=True, env=env, preexec_fn=_bounded, timeout=TIME_BOUND_S)
    _check_refusal(case, path, proc.returncode, proc.stdout + proc.stderr, root)


def test_corpus_covers_every_class():
    kinds = {c.kind for c in CORPUS}
    assert kinds == {"submit-structure", "paths", "validator", "bounds", "positions", "messages", "search"}
    assert len({c.id for c in CORPUS}) == len(CORPUS) >= 200


# ------------------------------------------------------------------ what must still be accepted

TRICKY_REQUIREMENTS = [
    'OpSys == "LINUX"',
    'TARGET.Arch == "X86_64" && (Memory >= 1024 || Cpus > 2)',
    'regexp("^slot1@", Name) && OpSysAndVer =?= "AlmaLinux9"',
    'stringListMember("fcc", "atlas,fcc,cms") && Name =!= "log = /tmp/x"',
    'HasSingularity && !isUndefined(GPUs_Capability)',
    'Machine != "wn-01.recas.ba.infn.it" && TotalDisk > 100 * 1024',
]


@pytest.mark.parametrize("requirements", TRICKY_REQUIREMENTS)
def test_valid_values_reach_the_submit_file_unchanged(requirements, project):
    """htcondor2 parses the rendered file back: the requirements hold exactly the grid's value (in
    parentheses: one clause of what HTCondor appends), and the commands sweep depends on are there."""
    import htcondor2

    from sweep.submit.prepare import prepare

    root, outside = project
    grid = root / "tricky.yaml"
    grid.write_text("sweep: tricky\nmodel: lstm\ndata: {path: data/d.npz}\naxes: {optimizer: [adam, sgd]}\n"
                    f"condor:\n  requirements: {_yaml_quote(requirements)}\n  accounting_group: group_fcc.user\n"
                    "  environment: {OMP_NUM_THREADS: 1}\n")
    prepared = prepare(grid, root)
    for r in prepared.rendered.runs:
        submit = htcondor2.Submit(r.submit_text)
        assert submit["requirements"] == f"({requirements})"
        assert submit["accounting_group"] == "group_fcc.user"
        assert submit["MY.SweepRunId"] == f'"{r.run.run_id}"' and submit["MY.SweepName"] == '"tricky"'
        assert submit["log"].endswith("events.log") and submit["output"] == "stdout.txt"
        inputs = [p.strip() for p in submit["transfer_input_files"].split(",")]
        assert inputs == [str(r.config_path), str(prepared.rendered.jobs_dir / "data" / "d.lstm.npz"),
                          str(prepared.rendered.jobs_dir / prepared.code.name)]


def _yaml_quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def test_yaml_1_2_numbers_and_text(project):
    """1e-3 is a number (YAML 1.1 would give the text '1e-3'); 12:30 stays text (not 750)."""
    from sweep.core.grid import load_grid

    root, _ = project
    grid = root / "numbers.yaml"
    grid.write_text("sweep: numbers\nmodel: lstm\ndata: {path: data/d.npz}\ndescription: 12:30\n"
                    "params: {learning_rate: 1e-3}\naxes: {batch_size: [1E2, 2e2]}\n")
    with pytest.raises(Exception, match=r"axes.batch_size\[0\]: expected an integer"):
        load_grid(grid, root)  # 1E2 is the float 100.0, not an integer: said, not silently cast
    grid.write_text(grid.read_text().replace("[1E2, 2e2]", "[100, 200]"))
    spec = load_grid(grid, root)
    assert spec.fixed["learning_rate"] == 0.001 and spec.description == "12:30"


def test_a_folder_outside_is_read_only_when_allowed(project, monkeypatch):
    from sweep.core.errors import GridError
    from sweep.core.grid import load_grid

    root, outside = project
    grid = root / "allowed.yaml"
    grid.write_text(f"sweep: allowed\nmodel: lstm\ndata: {{path: {outside}/d.npz}}\ntemplates: {outside}/tpl\n")
    with pytest.raises(GridError) as info:
        load_grid(grid, root)
    assert {i.key for i in info.value.issues} == {"data.path", "templates"}
    assert "SWEEP_DATA_ROOTS" in str(info.value) and "SWEEP_TEMPLATE_ROOTS" in str(info.value)
    monkeypatch.setenv("SWEEP_DATA_ROOTS", str(outside))
    monkeypatch.setenv("SWEEP_TEMPLATE_ROOTS", f"relative/ignored:{outside}")
    spec = load_grid(grid, root)
    assert spec.data.path == outside / "d.npz" and spec.templates == outside / "tpl"
    # read, never written: a dataset sweep would simulate must be inside the project
    grid.write_text(f"sweep: allowed\nmodel: lstm\ndata: {{path: {outside}/new.npz, simulate: {{waveforms: 10}}}}\n")
    with pytest.raises(GridError, match="writes only inside the project"):
        load_grid(grid, root)


def test_a_sweep_name_differing_only_by_case(project, capsys):
    """Refused where the file system folds case (both names would share one folder); a
    warning elsewhere."""
    root, _ = project
    (root / "jobs" / "demo").mkdir(parents=True)
    try:
        grid = root / "upper.yaml"
        grid.write_text("sweep: DEMO\nmodel: lstm\ndata: {path: data/d.npz}\n")
        status = main(["--root", str(root), "validate", str(grid)])
        out = capsys.readouterr()
        folds_case = (root / "jobs" / "DEMO").exists()
        if folds_case:
            assert status == 2 and "differs only by case" in out.out + out.err
        else:
            assert status == 0 and "warning: sweep 'DEMO' differs only by case" in out.err
    finally:
        (root / "jobs" / "demo").rmdir()
        (root / "jobs").rmdir()
