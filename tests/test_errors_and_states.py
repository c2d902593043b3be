"""One error base and one run-state vocabulary: every error sweep defines is a SweepError with
its exit status, the grid validator checks simulation parameters through the check the physics
hands it (file, line and key, nothing written), and RunState says where a run stands."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import sweep
from sweep.cli import EXIT_STATUS, main
from sweep.core.errors import GridError, InputError, SweepError
from sweep.core.grid import load_grid
from sweep.core.gridspec import GridChecks
from sweep.core.states import RunState
from sweep.physics.datastep import check_params

SIM_GRID = """\
sweep: t
model: lstm
data:
  path: data/x.npz
  simulate:
    waveforms: 10
    params:
      noise_rms_mv: -1
axes:
  optimizer: [adam]
"""


def _sweep_exceptions() -> list[type]:
    found = []
    for info in pkgutil.walk_packages(sweep.__path__, "sweep."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        found += [obj for _, obj in inspect.getmembers(module, inspect.isclass)
                  if issubclass(obj, BaseException) and obj.__module__ == info.name]
    return found


def test_every_error_sweep_defines_is_a_sweep_error_with_one_exit_status():
    errors = _sweep_exceptions()
    assert len(errors) >= 10, errors  # GridError … ParameterError, ModelError, UnsafeValueError
    assert [e for e in errors if not issubclass(e, SweepError)] == []
    table = dict(EXIT_STATUS)
    for error in errors:
        first = next(code for kind, code in EXIT_STATUS if issubclass(error, kind))
        assert first == (2 if issubclass(error, (GridError, InputError)) else 1), error
    assert table[SweepError] == 1


def test_simulation_parameters_are_checked_with_the_physics_check(write_grid, tmp_path, capsys):
    grid = write_grid(SIM_GRID)
    load_grid(grid, tmp_path)  # the core alone checks only that params is a mapping
    with pytest.raises(GridError) as err:
        load_grid(grid, tmp_path, checks=GridChecks(simulation=check_params))
    (issue,) = err.value.issues
    assert (issue.line, issue.key) == (8, "data.simulate.params") and "noise_rms_mv" in issue.message
    for argv in (["validate", str(grid)], ["submit", str(grid), "--local", "--no-progress"]):
        assert main(["--root", str(tmp_path), *argv]) == 2
        out = capsys.readouterr().err
        assert f"{grid}:8:" in out and "noise_rms_mv" in out and "Traceback" not in out
    assert not (tmp_path / "jobs").exists() and not (tmp_path / "data").exists()


def test_an_error_message_is_printed_as_it_is(tmp_path, capsys):
    """Error messages are not rich markup: a --filter holding [/x] is shown, not a crash."""
    from tests.synthetic import make_sweep

    make_sweep(tmp_path, "syn", axes={"optimizer": ["adam", "sgd"]}, corrupt=0, missing=0)
    assert main(["--root", str(tmp_path), "collect", "syn", "--filter", "f1 > [/x]"]) == 1
    err = capsys.readouterr().err
    assert "error: --filter 'f1 > [/x]'" in err and "Traceback" not in err


def test_run_states():
    assert [RunState.of_job_status(c) for c in (1, 2, 3, 4, 5, 6, 7, None, 99)] == [
        RunState.IDLE, RunState.RUNNING, RunState.REMOVED, RunState.DONE, RunState.HELD, RunState.RUNNING,
        RunState.RUNNING, RunState.NOT_RUN, RunState.NOT_RUN]
    assert {s for s in RunState if s.is_live()} == {RunState.IDLE, RunState.RUNNING, RunState.HELD}
    assert {s for s in RunState if s.needs_rerun()} == {RunState.FAILED, RunState.CORRUPT, RunState.HELD,
                                                        RunState.REMOVED, RunState.STALE}
    assert not RunState.UNKNOWN.is_finished() and not RunState.UNKNOWN.needs_rerun()  # it may be running
    assert not any(s.is_live() and s.is_finished() for s in RunState)
    assert RunState.OK.is_success() and RunState.DONE.is_success() and not RunState.CORRUPT.is_success()
    # the values are what tables, run.json and resources.csv show
    assert f"{RunState.NOT_RUN}" == "not run" and RunState("corrupt") is RunState.CORRUPT


@pytest.mark.parametrize("command", ["collect", "status", "report", "resubmit"])
@pytest.mark.parametrize("name", ["../other/jobs/syn", "..", ".", "a/b", "/etc", "syn/..", "-x", "a\\b", "x" * 65,
                                  "sy\nn", ""])
def test_a_sweep_name_on_the_command_line_is_checked_like_a_grid_s(tmp_path, capsys, command, name):
    """A sweep name from the command line is a folder name under jobs/ and results/: it follows
    the rule a grid's `sweep:` follows (no separators, no '..'), checked before any file is read,
    as a usage error (exit 2) that says what a name may hold."""
    from tests.synthetic import make_sweep

    make_sweep(tmp_path / "other", "syn", axes={"optimizer": ["adam", "sgd"]}, corrupt=0, missing=0)
    (tmp_path / "p" / "jobs").mkdir(parents=True)  # with the folders there, '../..' reached the other
    (tmp_path / "p" / "results").mkdir()  # project: collect read its manifest and wrote its leaderboard.csv
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(SystemExit) as exc:  # argparse's usage error
        main(["--root", str(tmp_path / "p"), command, name] if not name.startswith("-")
             else ["--root", str(tmp_path / "p"), command, "--", name])
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    assert "expected a sweep name of letters, digits" in err and "Traceback" not in err, err
    assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing read, nothing written


def test_a_good_sweep_name_still_reaches_the_command(tmp_path, capsys):
    from tests.synthetic import make_sweep

    make_sweep(tmp_path, "syn.v2-a_1", axes={"optimizer": ["adam", "sgd"]}, corrupt=0, missing=0)
    assert main(["--root", str(tmp_path), "collect", "syn.v2-a_1", "--best", "0"]) == 0
