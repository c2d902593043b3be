"""The records sweep writes and reads back (sweep.records): typed models with a schema version.

* every record round-trips through its model, and the files of today's format (schema version
  0, tests/data/records/, written by main's code) are migrated without losing a value;
* a record written by a newer sweep is refused with a message that says to upgrade sweep, and
  the CLI says it without a traceback;
* what comes back from an execute node is untrusted: hostile values are errors that name the
  file, the key and what was expected, or reasons a run is not valid, never a traceback;
* each record's file is written by its one owner module (read with `ast`, nothing imported; the
  checker is first tried on a copy of the package with planted second writers);
* the registry lists every record; the records import only the standard library (`mypy --strict
  sweep/records`: tests/test_types.py).
"""

from __future__ import annotations

import ast
import copy
import importlib
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sweep.core.errors import ResultsError
from sweep.records import RECORDS
from sweep.records.base import RecordError
from sweep.records.registry import RecordKind
from tests.conftest import REPO

DATA = REPO / "tests" / "data" / "records"
KINDS = {r.kind: r for r in RECORDS}


def model_of(kind: RecordKind) -> Any:
    module, _, name = kind.model.rpartition(".")
    return getattr(importlib.import_module(module), name)


def kind_of(fixture: Path) -> RecordKind:
    """The record kind of a fixture file: its name starts with the kind."""
    (kind,) = [k for k in RECORDS if fixture.stem == k.kind or fixture.stem.startswith(k.kind + "-")]
    return kind


FIXTURES = sorted(DATA.glob("*.json"))


# ------------------------------------------------------------------ round trips and migrations
def _same(old: Any, new: Any, where: str = "") -> list[str]:
    """Where `new` (read and written again) differs from `old` (today's file). A null of today's
    file may be left out (null and absent are the same to every reader); NaN equals NaN."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k, v in old.items():
            if k not in new:
                if v is not None and not (k == "previous_leader" and v == {}):
                    out.append(f"{where}{k}: lost")
                continue
            out += _same(v, new[k], f"{where}{k}.")
        out += [f"{where}{k}: added" for k in new if k not in old and k != "schema_version"]
        return out
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"{where}: {len(old)} items became {len(new)}"]
        return [d for i, (a, b) in enumerate(zip(old, new, strict=True)) for d in _same(a, b, f"{where}[{i}].")]
    if isinstance(old, float) and isinstance(new, float) and math.isnan(old) and math.isnan(new):
        return []
    return [] if old == new and type(old) is type(new) else [f"{where}: {old!r} became {new!r}"]


def test_the_fixtures_are_today_s_format_and_cover_every_record():
    assert FIXTURES
    for path in FIXTURES:
        assert "schema_version" not in json.loads(path.read_text()), path.name
    assert {kind_of(p).kind for p in FIXTURES} == set(KINDS)


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.name)
def test_a_file_of_today_s_format_is_migrated_without_losing_a_value(fixture):
    kind = kind_of(fixture)
    model = model_of(kind)
    old = json.loads(fixture.read_text())
    record = model.from_json(copy.deepcopy(old), fixture)
    new = record.to_json()
    assert new["schema_version"] == kind.schema_version and list(new)[0] == "schema_version"
    added = {"early_stopping"} if kind.kind == "checkpoint" and "early_stopping" not in old else set()
    assert [d for d in _same(old, new) if d.split(":")[0].split(".")[-1] not in added] == [], fixture.name
    # the current version reads back to the same record, and writes the same file
    again = model.from_json(json.loads(json.dumps(new)), fixture)
    assert again == record or _nan_equal(again, record)
    assert json.dumps(again.to_json()) == json.dumps(new)


def _nan_equal(a: Any, b: Any) -> bool:
    return json.dumps(a.to_json(), sort_keys=True) == json.dumps(b.to_json(), sort_keys=True)


def test_today_s_files_read_as_the_code_expects(tmp_path):
    """A few values read through the models, as the readers use them."""
    from sweep.core.states import RunState
    from sweep.records.chain import ChainRecord
    from sweep.records.checkpoint import CheckpointState
    from sweep.records.manifest import Manifest
    from sweep.records.metrics import Metrics
    from sweep.records.runinfo import RunInfo
    from sweep.records.step import StepRecord

    m = Manifest.from_json(json.loads((DATA / "manifest-pool.json").read_text()))
    assert m.on_pool and [s.mode for s in m.submissions] == [None, "dag", "direct", None]
    assert m.submissions[1].cluster == 1234 and m.submissions[1].retries == 2 and m.submissions[3].role == "driver"
    assert m.learned_memory_mb and m.resources is not None and m.resources.request_memory_mb > 0
    narrowed = Manifest.from_json(json.loads((DATA / "manifest-narrowed.json").read_text()))
    assert [r.in_grid for r in narrowed.runs] == [True, False, False, False]
    search = Manifest.from_json(json.loads((DATA / "manifest-search.json").read_text()))
    assert search.search is not None and search.search.objectives == [("f1", "max")] and search.runs[0].trials == [0]
    chain = ChainRecord.from_json(json.loads((DATA / "chain-done.json").read_text()))
    assert {s.state for s in chain.stages.values()} == {"done"} and chain.stages["peaks"].leader is not None
    failed = ChainRecord.from_json(json.loads((DATA / "chain-failed.json").read_text()))
    assert failed.stages["peaks"].previous_leader is None  # today's {} is none
    pool = ChainRecord.from_json(json.loads((DATA / "chain-pool.json").read_text()))
    assert pool.jobs and pool.jobs[0].cluster == 4321
    step = StepRecord.from_json(json.loads((DATA / "step-evaluate.json").read_text()))
    assert step.status == "done" and step.outputs and step.summary
    assert StepRecord.from_json(json.loads((DATA / "step-simulate.json").read_text())).outputs == ["dataset.npz"]
    assert RunInfo.from_json(json.loads((DATA / "run-pruned.json").read_text())).status is RunState.PRUNED
    resumed = RunInfo.from_json(json.loads((DATA / "run-resumed.json").read_text()))
    assert resumed.resumed_from_epoch and resumed.threads and resumed.threads.intra_op is not None
    assert RunInfo.from_json(json.loads((DATA / "run-wrapper.json").read_text())).exit_code == 3
    pruned = Metrics.from_json(json.loads((DATA / "metrics-pruned.json").read_text()))
    assert pruned.test is None and pruned.pruned is not None and pruned.pruned.values
    standin = Metrics.from_json(json.loads((DATA / "metrics-standin.json").read_text()))
    assert standin.test == {"f1": 0.9, "auc": 0.95, "eff_purity": 0.8} and standin.best_epoch == 1
    state = CheckpointState.from_json({"key": "run1:sha-old", "epochs_done": 3, "rows": []})
    assert state.early_stopping.wait == 0 and state.early_stopping.best is None  # before early_stopping was kept


def test_a_stand_in_job_s_files_still_make_a_valid_result(tmp_path):
    """Files of today's format (a stand-in job of the pool tests, an old job) are valid results."""
    from sweep.records.runs import read_run

    folder = tmp_path / "abc"
    folder.mkdir()
    shutil.copy(DATA / "run-standin.json", folder / "run.json")
    shutil.copy(DATA / "metrics-standin.json", folder / "metrics.json")
    shutil.copy(DATA / "local-exit-ok.json", folder / ".local-exit.json")
    outcome = read_run(tmp_path, "abc", ["f1", "auc"])
    assert outcome.ok and outcome.exit_code == 0 and outcome.metrics is not None and outcome.metrics.best_epoch == 1


def test_the_writers_write_the_current_version(tmp_path):
    from sweep.core.states import RunState
    from sweep.records import manifest as m
    from sweep.records.runinfo import RunInfo, read_run_info, write_run_info

    m.update_submission(tmp_path, "s1", backend="local", runs=["r1"])
    data = json.loads((tmp_path / "sweep.json").read_text())
    assert data["schema_version"] == m.SCHEMA_VERSION and data["submissions"][0]["runs"] == ["r1"]
    with pytest.raises(TypeError):  # a field the manifest does not have
        m.update_submission(tmp_path, "s1", colour="red")
    write_run_info(tmp_path, RunInfo(status=RunState.OK, exit_code=0, job_starts=None))
    assert json.loads((tmp_path / "run.json").read_text()) == {"schema_version": 1, "status": "ok", "exit_code": 0}
    assert read_run_info(tmp_path) == RunInfo(status=RunState.OK, exit_code=0)


# ------------------------------------------------------------------ newer versions are refused
@pytest.mark.parametrize("kind", RECORDS, ids=lambda k: k.kind)
def test_a_record_of_a_newer_sweep_is_refused_with_a_clear_message(kind, tmp_path):
    model = model_of(kind)
    fixture = next(p for p in FIXTURES if kind_of(p) is kind)
    data = {**json.loads(fixture.read_text()), "schema_version": kind.schema_version + 1}
    with pytest.raises(ResultsError) as e:
        model.from_json(data, tmp_path / kind.file)
    assert str(e.value) == (f"{tmp_path / kind.file}: written by a newer sweep (schema_version "
                            f"{kind.schema_version + 1}; this sweep reads up to {kind.schema_version}): "
                            "upgrade sweep to read it")


def test_the_cli_refuses_a_newer_manifest_without_a_traceback(tmp_path, capsys):
    from sweep.cli import main
    from tests.synthetic import make_sweep

    make_sweep(tmp_path, "syn", axes={"optimizer": ["adam", "sgd"]}, corrupt=0, missing=0)
    path = tmp_path / "jobs" / "syn" / "sweep.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "schema_version": 7}))
    for command in (["status", "syn"], ["collect", "syn"], ["report", "syn"]):
        assert main(["--root", str(tmp_path), *command]) == 1, command
        err = capsys.readouterr().err
        assert "written by a newer sweep (schema_version 7; this sweep reads up to 1): upgrade sweep" in err, err
        assert str(path) in err.replace("\n", "") and "Traceback" not in err


def test_an_unreadable_manifest_says_so_as_before(tmp_path):
    from sweep.records.manifest import read_manifest

    (tmp_path / "sweep.json").write_text("{ torn")
    with pytest.raises(ResultsError, match=r"sweep.json: unreadable sweep manifest: not JSON: Expecting property name"):
        read_manifest(tmp_path)


def test_a_run_whose_metrics_a_newer_sweep_wrote_is_not_ranked_and_says_why(tmp_path):
    from sweep.core.states import RunState
    from sweep.records.runs import read_run

    folder = tmp_path / "abc"
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps({"schema_version": 5, "test": {"f1": 0.9}}))
    outcome = read_run(tmp_path, "abc", ["f1"])
    assert outcome.state is RunState.CORRUPT
    assert outcome.reason == ("unreadable metrics.json: written by a newer sweep (schema_version 5; this sweep "
                              "reads up to 1): upgrade sweep to read it")


def test_a_lock_held_by_a_newer_sweep_is_not_judged(tmp_path):
    from sweep.core.errors import LockedError
    from sweep.core.names import LOCK_FILE
    from sweep.records.lock import sweep_lock

    (tmp_path / LOCK_FILE).write_text(json.dumps({"schema_version": 9, "host": "h", "pid": 1}))
    with pytest.raises(ResultsError, match="written by a newer sweep"):
        with sweep_lock(tmp_path, timeout=1):
            pass
    (tmp_path / LOCK_FILE).write_text("")  # being written: judged by its age, as before
    with pytest.raises(LockedError, match="busy"):
        with sweep_lock(tmp_path, timeout=0.2):
            pass


# ------------------------------------------------------------------ hostile values
HOSTILE = [
    ("run", {"status": "done"}, "status: expected one of running, ok, failed, pruned, got 'done'"),
    ("run", {"status": 1}, "status: expected one of running, ok, failed, pruned, got 1"),
    ("run", {"status": "ok", "exit_code": "0"}, "exit_code: expected a whole number, got '0'"),
    ("run", {"status": "ok", "exit_code": True}, "exit_code: expected a whole number, got True"),
    ("run", {"status": "ok", "pid": -4}, "pid: expected a whole number >= 0, got -4"),
    ("run", {"status": "ok", "threads": {"cpus": "two"}}, "threads.cpus: expected a whole number >= 0, got 'two'"),
    ("run", {"status": "ok", "dataset": {"file": "d", "sha256": 5, "size": 1}}, "dataset.sha256: expected a string"),
    ("run", {"status": "ok", "software": {"numpy": 2}}, "software: expected an object of strings"),
    ("run", {"status": "ok", "argv": "python"}, "argv: expected a list of strings, got 'python'"),
    ("run", {"schema_version": "1", "status": "ok"}, "schema_version: expected a whole number >= 0, got '1'"),
    ("run", {"schema_version": -1, "status": "ok"}, "schema_version: expected a whole number >= 0, got -1"),
    ("run", {"schema_version": 1.5, "status": "ok"}, "schema_version: expected a whole number >= 0, got 1.5"),
    ("metrics", {"test": {"f1": "0.9"}}, "test: expected an object of numbers"),
    ("metrics", {"test": [0.9]}, "test: expected an object of numbers, got a list"),
    ("metrics", {"test": {"f1": 0.9}, "best_epoch": -1}, "best_epoch: expected a whole number >= 0, got -1"),
    ("metrics", {"pruned": {"at_epoch": 2, "column": "val_f1", "values": ["x"]}},
     "pruned.values: expected a list of numbers"),
    ("metrics", {"pruned": {"at_epoch": 2}}, "pruned.column: expected a string, got nothing"),
    ("metrics", {"split": {"by": 3}}, "split.by: expected a string, got 3"),
    ("step", {"status": "done", "output": 7}, "output: expected a list of strings, got 7"),
    ("step", {"status": "finished"}, "status: expected one of running, done, failed, got 'finished'"),
    ("step", {"status": "done", "waveforms": 1e9}, "waveforms: expected a whole number >= 0, got 1000000000.0"),
    ("progress", {"values": "0.5,0.6"}, "values: expected a list of numbers, got '0.5,0.6'"),
    ("model", {"model": "lstm", "dt_ns": 0}, "dt_ns: expected a finite number > 0, got 0"),
    ("model", {"model": "lstm", "dt_ns": "0.83"}, "dt_ns: expected a finite number, got '0.83'"),
    ("model", {"model": "lstm", "input": {"window": 0}}, "input.window: expected a whole number >= 1, got 0"),
    ("checkpoint", {"key": "k", "epochs_done": "3"}, "epochs_done: expected a whole number >= 0, got '3'"),
    ("checkpoint", {"key": "k", "epochs_done": 3, "rows": [1, 2]}, "rows: expected a list of objects"),
    ("manifest", {"runs": [{"run_id": "a", "config_id": "a", "name": "n", "seed": "7"}]},
     "runs[0].seed: expected a whole number, got '7'"),
    ("manifest", {"submissions": [{"id": "x", "cluster": "12"}]},
     "submissions[0].cluster: expected a whole number >= 0"),
    ("manifest", {"learned_memory_mb": {"r": -5}}, "learned_memory_mb: expected an object of whole numbers >= 0"),
    ("chain", {"stages": {"peaks": {"state": "done", "leader": {"run_id": "r"}}}},
     "stages.peaks.leader.metric: expected a string, got nothing"),
    ("chain", {"stages": {"peaks": "done"}}, "stages: expected an object of objects"),
]


@pytest.mark.parametrize("kind, data, message", HOSTILE, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(HOSTILE)])
def test_a_hostile_value_is_an_error_that_names_the_file_the_key_and_what_was_expected(kind, data, message, tmp_path):
    path = tmp_path / KINDS[kind].file
    with pytest.raises(RecordError) as e:
        model_of(KINDS[kind]).from_json(data, path)
    assert str(e.value).startswith(f"{path}: {message}"), str(e.value)


@pytest.mark.parametrize("name, text, reason", [
    ("metrics.json", '{"test": {"f1": "high"}}', "unreadable metrics.json: test: expected an object of numbers"),
    ("metrics.json", "[1, 2]", "unreadable metrics.json: expected a JSON object, got a list"),
    ("metrics.json", "{ not json", "unreadable metrics.json: not JSON: Expecting property name"),
    ("metrics.json", b"\xff\xfe{}", "unreadable metrics.json: unreadable: 'utf-8' codec can't decode"),
    ("run.json", '{"status": "failed", "exit_code": "3\\u001b[2J"}', ("no metrics.json; run.json problem: unreadable "
                                                                      "run.json: exit_code: expected a whole number, "
                                                                      "got '3\\x1b[2J'")),
])
def test_a_run_folder_with_hostile_records_gives_a_reason_never_a_traceback(tmp_path, name, text, reason):
    from sweep.records.runs import read_run

    folder = tmp_path / "abc"
    folder.mkdir()
    (folder / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    outcome = read_run(tmp_path, "abc", ["f1"])
    assert not outcome.ok and outcome.reason.startswith(reason), outcome.reason


def test_a_step_json_cannot_point_the_chain_outside_its_folder(tmp_path):
    from sweep.chain.steps import StepError, StepRequest, _step_result, finished_step

    request = StepRequest("simulate", "0123456789abcdef", {})
    (tmp_path / "dataset.npz").write_bytes(b"x")
    record = {"schema_version": 1, "step": "simulate", "inputs_hash": request.digest, "status": "done"}
    for output in ("../../../etc/passwd", "/etc/passwd", ["dataset.npz", "../x"]):
        (tmp_path / "step.json").write_text(json.dumps({**record, "output": output}))
        assert finished_step(tmp_path, request) is None, output
    (tmp_path / "step.json").write_text(json.dumps({**record, "output": "dataset.npz"}))
    assert finished_step(tmp_path, request).outputs == ["dataset.npz"]
    (tmp_path / "step.json").write_text(json.dumps({**record, "status": "done", "pid": "me"}))
    with pytest.raises(StepError, match=r"step.json: pid: expected a whole number >= 0, got 'me'"):
        _step_result(tmp_path, request, "exit 0")


def test_a_model_s_hostile_training_record_is_refused_as_an_unusable_model(tmp_path):
    from sweep.core.errors import InputError
    from sweep.physics.scorers import check_model

    model = tmp_path / "m.keras"
    model.with_suffix(".json").write_text(json.dumps({"model": "lstm", "dt_ns": -1}))
    with pytest.raises(InputError, match=r"m.keras: its training record cannot be used: .*m.json: dt_ns: expected a "
                                         r"finite number > 0, got -1"):
        check_model(model, "peak model", 1.0, "the simulation")


# ------------------------------------------------------------------ one writer per record
WRITE_CALLS = {"atomic_write_json", "atomic_write_text", "write_text_if_changed", "atomic_file", "atomic_write_with",
               "write_text", "write_bytes"}


def _is_write(call: ast.Call) -> bool:
    """A call that writes a file: sweep's atomic writers, Path.write_text/bytes, open() and
    Path.open() with a mode that writes, os.open() with O_WRONLY, O_RDWR or O_CREAT. (Copies,
    shutil.copy*, keep a record's bytes: they are not writes of it.)"""
    f = call.func
    name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
    if name in WRITE_CALLS:
        return True
    if name != "open":
        return False
    if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "os":
        flags = call.args[1] if len(call.args) > 1 else None
        return flags is not None and any(isinstance(n, ast.Attribute) and n.attr in ("O_WRONLY", "O_RDWR", "O_CREAT")
                                         for n in ast.walk(flags))
    position = 0 if isinstance(f, ast.Attribute) else 1  # Path.open(mode) / open(path, mode)
    mode = call.args[position] if len(call.args) > position else next(
        (k.value for k in call.keywords if k.arg == "mode"), None)
    return isinstance(mode, ast.Constant) and isinstance(mode.value, str) and any(c in mode.value for c in "wax+")


def _spellings(trees: dict[str, ast.Module]) -> dict[str, set[str]]:
    """file name -> the names that spell it anywhere in the package: `NAME = "file"` and the
    aliases of such names (`STATE = CHECKPOINT_STATE`)."""
    assigned: list[tuple[str, ast.expr]] = []
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                assigned.append((node.targets[0].id, node.value))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                assigned.append((node.target.id, node.value))
    out: dict[str, set[str]] = {}
    for name, value in assigned:
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            out.setdefault(value.value, set()).add(name)
    changed = True
    while changed:
        changed = False
        for name, value in assigned:
            ref = value.id if isinstance(value, ast.Name) else value.attr if isinstance(value, ast.Attribute) else None
            for names in out.values():
                if ref in names and name not in names:
                    names.add(name)
                    changed = True
    return out


def _mentions(node: ast.AST, file: str, names: set[str]) -> bool:
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and n.id in names or isinstance(n, ast.Attribute) and n.attr in names:
            return True
        if (isinstance(n, ast.Constant) and isinstance(n.value, str)
                and (n.value == file or n.value.endswith("/" + file))):
            return True
    return False


def _scopes(tree: ast.Module) -> list[list[ast.AST]]:
    """The nodes of each scope (the module, each function), without those of nested functions."""
    out = []
    for scope in [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))]:
        stack, nodes = list(ast.iter_child_nodes(scope)), []
        while stack:
            node = stack.pop()
            nodes.append(node)
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                stack.extend(ast.iter_child_nodes(node))
        out.append(nodes)
    return out


def record_writers(package_dir: Path, files: list[str]) -> dict[str, dict[str, list[int]]]:
    """file name -> module (path relative to the package's parent) -> lines of the write calls
    whose target mentions the file: by name, by a name that spells it, or through a variable of
    the same function assigned from such an expression (`path = folder / NAME`)."""
    trees = {str(p.relative_to(package_dir.parent)): ast.parse(p.read_text(encoding="utf-8"))
             for p in sorted(package_dir.rglob("*.py"))}
    spelt = _spellings(trees)
    found: dict[str, dict[str, list[int]]] = {f: {} for f in files}
    for module, tree in trees.items():
        for body in _scopes(tree):
            for file in files:
                names = set(spelt.get(file, ()))
                for n in body:  # local names holding the file's path
                    if isinstance(n, ast.Assign) and _mentions(n.value, file, names):
                        names |= {t.id for t in n.targets if isinstance(t, ast.Name)}
                for n in body:
                    if isinstance(n, ast.Call) and _is_write(n) and _mentions(n, file, names):
                        found[file].setdefault(module, []).append(n.lineno)
    return {f: {m: sorted(set(lines)) for m, lines in mods.items()} for f, mods in found.items()}


def _module_path(module: str) -> str:
    """sweep.records.manifest -> sweep/records/manifest.py"""
    return module.replace(".", "/") + ".py"


PLANTED = {
    "sweep/collect/gather.py": "\n\ndef _second(folder):\n    atomic_write_json(folder / RUN_INFO, {})\n",
    "sweep/submit/status.py": ("\n\ndef _second(folder):\n    target = folder / names.MANIFEST\n"
                               "    with open(target, 'w') as fh:\n        json.dump({}, fh)\n"),
    "sweep/search/trials.py": "\n\ndef _second(folder):\n    (folder / 'progress.json').write_text('{}')\n",
    "sweep/chain/report.py": "\n\ndef _second(folder):\n    os.open(folder / CHAIN_RECORD, os.O_WRONLY | os.O_CREAT)\n",
    "sweep/job/runner.py": ("\n\ndef _second(folder):\n    with (folder / STATE).open(mode='a') as fh:\n"
                            "        fh.write('')\n"),
}


def test_the_writer_checker_finds_each_planted_second_writer(tmp_path):
    shutil.copytree(REPO / "sweep", tmp_path / "sweep", ignore=shutil.ignore_patterns("__pycache__"))
    for module, text in PLANTED.items():
        with open(tmp_path / module, "a", encoding="utf-8") as fh:
            fh.write(text)
    found = record_writers(tmp_path / "sweep", [r.file for r in RECORDS])
    owner = {r.file: _module_path(r.owner) for r in RECORDS}
    extra = {f: sorted(set(mods) - {owner[f]}) for f, mods in found.items()}
    assert {f: m for f, m in extra.items() if m} == {
        "run.json": ["sweep/collect/gather.py"], "sweep.json": ["sweep/submit/status.py"],
        "progress.json": ["sweep/search/trials.py"], "chain.json": ["sweep/chain/report.py"],
        "state.json": ["sweep/job/runner.py"]}


def test_each_record_is_written_by_its_one_owner_module():
    found = record_writers(REPO / "sweep", [r.file for r in RECORDS])
    for kind in RECORDS:
        assert list(found[kind.file]) == [_module_path(kind.owner)], (kind.kind, found[kind.file])


def test_the_job_wrapper_writes_the_run_record_of_the_current_version(tmp_path):
    """The job wrapper (a shell script: no Python yet) is the one writer of run.json outside
    sweep.records.runinfo: it writes what write_failed_run writes, at the current version."""
    from sweep.core.expand import expand
    from sweep.core.grid import parse_grid
    from sweep.core.render import render_sweep
    from sweep.records import runinfo

    python = tmp_path / "python3"
    quoted = tmp_path / 'my "py\\thon'  # a quote and a backslash: the record stays JSON
    for extra, error in (("condor: {cvmfs: /cvmfs/nowhere/setup.sh}", ("environment: no setup script "
                                                                       "/cvmfs/nowhere/setup.sh on this node")),
                         (f"condor: {{python: {python}}}", f"environment: no interpreter {python} on this node"),
                         # the submit side's own interpreter (no condor.python: not a grid's value, so not held to
                         # its rule) may sit in a folder whose name holds a quote
                         ("", f"environment: no interpreter {quoted} on this node")):
        for interpreter in (python, quoted):
            shutil.copy(sys.executable, interpreter)  # exists and is executable at validation, not on the node
        spec = parse_grid(f"sweep: w\nmodel: lstm\ndata: {{path: d.npz}}\n{extra}\n", "w.yaml", tmp_path)
        wrapper = tmp_path / "run_job.sh"
        wrapper.write_text(render_sweep(spec, expand(spec), tmp_path, code_archive="c.zip",
                                        python=None if extra else str(quoted)).wrapper_text)
        python.unlink()
        quoted.unlink()
        proc = subprocess.run(["/bin/sh", str(wrapper), "config.yaml"], capture_output=True, cwd=tmp_path)
        assert proc.returncode == 3
        assert json.loads((tmp_path / "run.json").read_text())["schema_version"] == runinfo.SCHEMA_VERSION
        written = (tmp_path / "run.json").read_text()
        runinfo.write_failed_run(tmp_path, 3, error)
        assert json.loads(written) == json.loads((tmp_path / "run.json").read_text())


# ------------------------------------------------------------------ the registry, imports, types
def test_the_registry_lists_every_record_module_and_its_version():
    owners = {k.owner for k in RECORDS}
    assert len(owners) == len(RECORDS) and len({k.file for k in RECORDS}) == len(RECORDS)
    for path in sorted((REPO / "sweep" / "records").glob("*.py")):
        module = importlib.import_module(f"sweep.records.{path.stem}" if path.stem != "__init__" else "sweep.records")
        if hasattr(module, "SCHEMA_VERSION"):
            assert module.__name__ in owners, f"{module.__name__} has a SCHEMA_VERSION but is not in RECORDS"
    for kind in RECORDS:
        module = importlib.import_module(kind.owner)
        assert module.SCHEMA_VERSION == kind.schema_version >= 1, kind.kind
        model = model_of(kind)
        assert hasattr(model, "to_json") and hasattr(model, "from_json"), kind.kind
        assert set(module.MIGRATIONS) == set(range(kind.schema_version)), kind.kind  # a step from every older one
        assert kind.description and kind.path.endswith(kind.file) or kind.file in kind.path
        for reader in kind.readers:
            assert (REPO / _module_path(reader)).is_file(), reader


def test_the_records_import_only_the_standard_library():
    """The job imports its records before it knows whether numpy is installed (and
    sweep.job's __main__ writes run.json through them when it is not)."""
    blocked = ["numpy", "yaml", "tensorflow", "keras", "pandas", "scipy", "htcondor2", "classad2", "optuna", "jinja2",
               "rich", "sklearn", "matplotlib", "h5py"]
    modules = [f"sweep.records.{p.stem}" for p in sorted((REPO / "sweep" / "records").glob("*.py"))
               if p.stem != "__init__"]
    code = (f"import sys\nfor m in {blocked!r}:\n    sys.modules[m] = None\n"
            f"import importlib\nfor m in {modules!r}:\n    importlib.import_module(m)\n"
            "import sweep.records\nassert len(sweep.records.RECORDS) > 10\nprint('ok')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_a_job_whose_interpreter_lacks_numpy_writes_a_current_run_json(tmp_path):
    """sweep.job's __main__ with numpy, yaml and TensorFlow missing: exit 3 and a run.json of
    the current version, written through sweep.records.runinfo."""
    from sweep.records.runinfo import SCHEMA_VERSION, read_run_info

    code = ("import runpy, sys\nfor m in ('numpy', 'yaml', 'tensorflow', 'keras', 'sklearn'):\n"
            "    sys.modules[m] = None\n"
            "sys.argv = ['sweep.job', 'config.yaml']\nrunpy.run_module('sweep.job', run_name='__main__')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 3, proc.stderr
    data = json.loads((tmp_path / "run.json").read_text())
    assert data["schema_version"] == SCHEMA_VERSION and data["status"] == "failed" and data["exit_code"] == 3
    assert "no module named numpy" in data["error"] and read_run_info(tmp_path).error == data["error"]
    assert not list(tmp_path.glob(".*tmp"))


def test_the_records_say_what_they_do():
    """Every public function, class and method of sweep.records has a docstring (what it takes,
    returns and raises where the name does not say it)."""
    from tests.test_layout import undocumented

    missing = {path: names for path, names in undocumented(REPO / "sweep").items()
               if path.startswith("sweep/records/")}
    assert not missing, missing
