"""The Python API (sweep.api, `import sweep`): handles on finished sweeps, searches and chains read
without writing anything, list hyperparameters kept as tuples, clear errors for what is not
there; `sweep.submit_grid` through the CLI's code; the how-to's examples run as doctests; and the
notebook in the docs executed by a real Jupyter kernel."""

from __future__ import annotations

import doctest
import json
import os
import subprocess
import sys

import pytest

import sweep
from sweep.core.errors import GridError, InputError, NotFoundError
from tests.conftest import REPO
from tests.hostile_outputs import snapshot
from tests.synthetic import make_search, make_sweep

DEMO_AXES = {"learning_rate": [0.001, 0.01], "topology": [[8, 1], [16, 8, 1]]}


@pytest.fixture
def project(tmp_path):
    """A project with a finished demo sweep (4 runs, list-valued topologies) and a finished
    two-objective search (12 trials)."""
    make_sweep(tmp_path, "demo", axes=DEMO_AXES, corrupt=0, missing=0)
    make_search(tmp_path, "search", trials=12)
    return tmp_path


def test_import_sweep_does_not_import_the_api_until_a_name_of_it_is_used():
    code = ("import sys, sweep; assert 'sweep.api' not in sys.modules and 'pandas' not in sys.modules; "
            "sweep.load; assert 'sweep.api' in sys.modules; print(sweep.__version__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == sweep.__version__
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        sweep.nothing  # noqa: B018


def test_a_sweep_handle_reads_results_status_history_roc_resources_and_the_best_model(project):
    demo = sweep.load("demo", root=project)
    table = demo.results()
    assert list(table["rank"]) == [1, 2, 3, 4] and table["f1"].is_monotonic_decreasing
    assert set(table["topology"]) == {(8, 1), (16, 8, 1)}  # tuples, not "[8,1]" text
    status = demo.status()
    assert status.counts == {"done": 4} and status.finished and len(status.runs) == 4
    assert status.best["run_id"] == table.iloc[0].run_id and status.best["metric"] == "f1"
    assert status.runs["epoch"].isna().all()  # nothing running: no live epoch
    best = table.iloc[0]
    history = demo.history(best.run_id)
    assert list(history["epoch"]) == [1, 2, 3, 4, 5, 6, 7, 8] and "val_f1" in history
    roc = demo.roc(best.run_id)
    assert list(roc.columns) == ["fpr", "tpr", "threshold"] and roc["fpr"].iloc[-1] == 1
    used = demo.resources()
    assert set(used["run_id"]) == set(table["run_id"])
    model = demo.best_model()
    assert (model.rank, model.run_id) == (1, best.run_id)
    assert model.path == project / "results" / "demo" / best.run_id / "model.keras" and model.path.is_file()
    assert model.result["f1"] == best.f1
    assert demo.best_model(rank=2).run_id == table.iloc[1].run_id


def test_reading_writes_nothing_takes_no_lock_and_touches_no_manifest(project):
    from sweep.collect.gather import collect

    before = snapshot(project)
    # what the CLI's collect does writes (the leaderboard CSV): the snapshot sees a change
    collect("demo", project)
    assert snapshot(project) != before
    (project / "results" / "demo" / "leaderboard.csv").unlink()
    (project / "results" / "demo" / "resources.csv").unlink(missing_ok=True)
    assert snapshot(project) == before
    demo, search = sweep.load("demo", root=project), sweep.load("search", root=project)
    run = demo.results().run_id[0]
    demo.status(), demo.history(run), demo.roc(run), demo.resources(), demo.best_model()
    search.results(), search.study(), search.status()
    assert snapshot(project) == before


def test_a_search_handle_gives_its_pareto_front_and_its_optuna_study(project):
    search = sweep.load("search", root=project)
    table = search.results()
    front = table[table["pareto"]]
    assert 2 <= len(front) < len(table)
    for _, row in table[~table["pareto"]].iterrows():  # each is beaten in both objectives by one of the front
        assert ((front["precision"] >= row.precision) & (front["recall"] >= row.recall)).any()
    study = search.study()
    assert len(study.trials) == 12 and len(study.best_trials) == len(front)
    assert sweep.load("demo", root=project).study.__doc__  # a grid sweep has no study:
    with pytest.raises(NotFoundError, match="'demo' is not a search"):
        sweep.load("demo", root=project).study()


def test_what_is_not_there_is_a_clear_error(project):
    with pytest.raises(NotFoundError, match=r"no sweep or chain 'nope' \(sweeps: demo, search\)"):
        sweep.load("nope", root=project)
    demo = sweep.load("demo", root=project)
    with pytest.raises(NotFoundError, match="sweep 'demo' has no run 'abc'"):
        demo.history("abc")
    with pytest.raises(NotFoundError, match="has 4 ranked run"):
        demo.best_model(rank=5)
    run = demo.results().run_id[0]
    os.unlink(project / "results" / "demo" / run / "roc.csv")
    with pytest.raises(NotFoundError, match="no readable roc.csv"):
        demo.roc(run)


def test_load_grid_validates_and_submit_refuses_what_it_cannot_run(tmp_path):
    spec = sweep.load_grid(REPO / "grids" / "demo.yaml", root=REPO)
    assert spec.name == "demo" and spec.model == "lstm"
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "grids" / "demo.yaml").read_text().replace("model: lstm", "model: transformer"))
    with pytest.raises(GridError, match="bad.yaml"):
        sweep.load_grid(bad, root=tmp_path)
    with pytest.raises(InputError, match="backend must be one of local, condor, auto, not 'slurm'"):
        sweep.submit_grid(REPO / "grids" / "demo.yaml", backend="slurm", root=tmp_path)
    with pytest.raises(InputError, match="is a pipeline file"):
        sweep.submit_grid(REPO / "grids" / "chain.yaml", root=tmp_path)
    assert not (tmp_path / "jobs").exists()


def test_the_how_to_examples_run_as_doctests(project):
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testfile(str(REPO / "docs" / "how-to" / "python-api.md"), module_relative=False,
                              globs={"project": str(project)}, optionflags=flags)
    assert result.attempted >= 8 and result.failed == 0, result


def test_the_notebook_in_the_docs_runs_on_a_real_kernel(project):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(REPO / "docs" / "how-to" / "explore-a-sweep.ipynb", as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(project)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # the learning curve and the Pareto front
    text = json.dumps([o.get("data", {}).get("text/plain", "") for o in outputs])
    assert "pareto" in text
