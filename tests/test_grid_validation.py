"""Every mistake in a grid file is reported with file, line, column, key and what was expected."""

import importlib
import pytest

from sweep.core.errors import GridError
from sweep.core.grid import load_grid
from sweep.core.expand import expand


def issues_of(path, root):
    with pytest.raises(GridError) as info:
        spec = load_grid(path, root)
        expand(spec)
    return info.value.issues


def one_issue(path, root):
    issues = issues_of(path, root)
    assert len(issues) == 1, [str(i) for i in issues]
    return issues[0]


def test_valid_base_grid(write_grid, tmp_path):
    from tests.conftest import BASE_GRID
    spec = load_grid(write_grid(BASE_GRID), tmp_path)
    assert spec.name == "t" and spec.model == "lstm"
    assert spec.fixed["batch_size"] == 150
    assert spec.fixed["dropout"] == [0.1, 0.1]  # default filled in
    assert spec.data.path == (tmp_path / "data/x.npz").resolve()
    assert len(expand(spec)) == 4


@pytest.mark.parametrize("text, line, key, expected", [
    # unknown top-level key, with a suggestion
    ("sweep: t\nmodel: lstm\ndata: {path: d.npz}\naxis:\n  optimizer: [adam]\n", 4, "axis",
     "did you mean 'axes'"),
    # unknown hyperparameter in params
    ("sweep: t\nmodel: lstm\ndata: {path: d.npz}\nparams:\n  batchsize: 10\n", 5, "params.batchsize",
     "did you mean 'batch_size'"),
    # unknown optimizer in an axis, with the position of the bad item
    ("sweep: t\nmodel: lstm\ndata: {path: d.npz}\naxes:\n  optimizer: [adam, adamm]\n", 5, "axes.optimizer[1]",
     "one of sgd, adam"),
    # unknown activation inside a pair
    ("sweep: t\nmodel: lstm\ndata: {path: d.npz}\naxes:\n  activations:\n    - [relu, sigmoidd]\n", 6,
     "axes.activations[0]", "did you mean 'sigmoid'"),
    # wrong type
    ("sweep: t\nmodel: lstm\ndata: {path: d.npz}\nparams:\n  batch_size: '150'\n", 5, "params.batch_size",
     "an integer from 1 to"),
    # batch out of range
    ("sweep: t\nmodel: lstm\ndata: {path: d.npz}\nparams:\n  batch_size: 0\n", 5, "params.batch_size",
     "an integer from 1 to"),
    # dropout out of [0, 1)
    ("sweep: t\nmodel: lstm\ndata: {path: d.npz}\nparams:\n  dropout: [0.1, 1.0]\n", 5, "params.dropout",
     "[0, 1)"),
    # topology of the wrong length
    ("sweep: t\nmodel: lstm\ndata: {path: d.npz}\naxes:\n  topology:\n    - [96, 128]\n", 6, "axes.topology[0]",
     "a list of 3 values, got 2"),
    # empty axis
    ("sweep: t\nmodel: lstm\ndata: {path: d.npz}\naxes:\n  optimizer: []\n", 5, "axes.optimizer", "empty axis"),
    # axis that is not a list
    ("sweep: t\nmodel: lstm\ndata: {path: d.npz}\naxes:\n  optimizer: adam\n", 5, "axes.optimizer",
     "expected a list"),
    # unknown loss
    ("sweep: t\nmodel: lstm\ndata: {path: d.npz}\nparams:\n  loss: crossentropy\n", 5, "params.loss",
     "binary_crossentropy"),
    # cpus < 1
    ("sweep: t\nmodel: lstm\ndata: {path: d.npz}\nresources:\n  request_cpus: 0\n", 5, "resources.request_cpus",
     "an integer from 1 to"),
    # memory with a bad unit
    ("sweep: t\nmodel: lstm\ndata: {path: d.npz}\nresources:\n  request_memory: 5 GX\n", 5,
     "resources.request_memory", "5000MB"),
    # runtime not a duration
    ("sweep: t\nmodel: lstm\ndata: {path: d.npz}\nresources:\n  runtime: two hours\n", 5, "resources.runtime",
     "2h"),
    # unknown model
    ("sweep: t\nmodel: lstmm\ndata: {path: d.npz}\n", 2, "model", "did you mean 'lstm'"),
    # bad sweep name (path traversal)
    ("sweep: ../etc\nmodel: lstm\ndata: {path: d.npz}\n", 1, "sweep", "sweep name"),
    # duplicate key
    ("sweep: t\nmodel: lstm\ndata: {path: d.npz}\nseed: 1\nseed: 2\n", 5, "seed", "more than once"),
    # a newline in a condor value must not add a submit command
    ('sweep: t\nmodel: lstm\ndata: {path: d.npz}\ncondor:\n  requirements: "true\\nexecutable = /bin/evil"\n', 5,
     "condor.requirements", "no line breaks"),
    # a quote in the accounting group
    ('sweep: t\nmodel: lstm\ndata: {path: d.npz}\ncondor:\n  accounting_group: a"b\n', 5,
     "condor.accounting_group", "group name"),
    # a space/comma in the data path would break transfer_input_files
    ("sweep: t\nmodel: lstm\ndata: {path: 'a, b.npz'}\n", 3, "data.path", "no spaces, commas"),
    # zip lists of different length
    ("sweep: t\nmodel: lstm\ndata: {path: d.npz}\nzip:\n  - epochs: [1, 2]\n    patience: [1]\n", 5, "zip[0]",
     "same length"),
    # exclude naming something not swept
    ("sweep: t\nmodel: lstm\ndata: {path: d.npz}\naxes:\n  optimizer: [adam, sgd]\nexclude:\n  - {optimiser: sgd}\n",
     7, "exclude[0].optimiser", "did you mean 'optimizer'"),
    # exclude value that is not in the axis
    (("sweep: t\nmodel: lstm\ndata: {path: d.npz}\naxes:\n  optimizer: [adam, sgd]\n"
      "exclude:\n  - {optimizer: rmsprop}\n"),
     7, "exclude[0].optimizer", "never match"),
    # a grid that expands to zero configurations
    ("sweep: t\nmodel: lstm\ndata: {path: d.npz}\naxes:\n  optimizer: [adam]\nexclude:\n  - {optimizer: adam}\n",
     6, "exclude", "zero configurations"),
    # parameter both fixed and swept
    ("sweep: t\nmodel: lstm\ndata: {path: d.npz}\nparams:\n  epochs: 5\naxes:\n  epochs: [1, 2]\n", 7, "axes.epochs",
     "both fixed"),
    # unknown ranking metric for the model
    ("sweep: t\nmodel: cnn\ndata: {path: d.npz}\nranking: [f1]\n", 4, "ranking[0]", "unknown metric"),
    # cnn filters / kernel_sizes mismatch
    ("sweep: t\nmodel: cnn\ndata: {path: d.npz}\nparams:\n  filters: [8, 16]\n  kernel_sizes: [3]\n", 6,
     "params.kernel_sizes", "same length"),
    # YAML syntax error
    ("sweep: t\nmodel: [lstm\ndata: {path: d.npz}\n", 3, "", "invalid YAML"),
    # sample must be >= 1
    ("sweep: t\nmodel: lstm\ndata: {path: d.npz}\nsample: 0\n", 4, "sample", "an integer from 1 to"),
])
def test_each_mistake_names_line_key_and_expectation(write_grid, tmp_path, text, line, key, expected):
    path = write_grid(text)
    issue = one_issue(path, tmp_path)
    assert issue.file == str(path)
    assert issue.line == line, str(issue)
    assert issue.column >= 1
    assert issue.key == key, str(issue)
    assert expected in issue.message, str(issue)
    text_form = str(issue)
    assert text_form.startswith(f"{path}:{line}:"), text_form


def test_several_errors_reported_together(write_grid, tmp_path):
    path = write_grid("""\
        sweep: t
        model: lstm
        data: {path: d.npz}
        params:
          batch_size: -1
          dropout: [0.5, 2]
        axes:
          optimizer: [adam, nope]
        resources:
          request_memory: lots
        """)
    issues = issues_of(path, tmp_path)
    keys = {i.key for i in issues}
    assert keys == {"params.batch_size", "params.dropout", "axes.optimizer[1]", "resources.request_memory"}
    assert sorted(i.line for i in issues) == [5, 6, 8, 10]


def test_missing_required_keys_and_file(tmp_path, write_grid):
    issues = issues_of(write_grid("description: nothing\n"), tmp_path)
    assert {i.key for i in issues} == {"sweep", "model", "data"}
    missing = issues_of(tmp_path / "nope.yaml", tmp_path)
    assert "file not found" in missing[0].message


def test_not_a_mapping(write_grid, tmp_path):
    issue = one_issue(write_grid("- a\n- b\n"), tmp_path)
    assert "must be a mapping" in issue.message


def test_cli_validate_reports_and_writes_nothing(write_grid, tmp_path, capsys):
    from sweep.cli import main

    path = write_grid("sweep: t\nmodel: lstm\ndata: {path: d.npz}\naxes:\n  optimizer: [adam, adamm]\n")
    code = main(["--root", str(tmp_path), "submit", str(path), "--local"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{path}:5:" in err and "axes.optimizer[1]" in err and "nothing was written" in err
    assert not (tmp_path / "jobs").exists() and not (tmp_path / "results").exists()


def test_units():
    from sweep.core.units import parse_duration_s, parse_memory_mb

    assert parse_memory_mb("5000MB") == 5000
    assert parse_memory_mb("5 GB") == 5120
    assert parse_memory_mb(2048) == 2048
    assert parse_memory_mb("512MiB") == 512
    assert parse_duration_s("2h") == 7200
    assert parse_duration_s(7200) == 7200
    assert parse_duration_s("7200") == 7200
    assert parse_duration_s("1h30m") == 5400
    assert parse_duration_s("45s") == 45
    for bad in ("", "h", "2 hours", True, -5):
        with pytest.raises(ValueError):
            parse_duration_s(bad)
    for bad in ("5 GX", "", "-1MB", None, 0):
        with pytest.raises(ValueError):
            parse_memory_mb(bad)


@pytest.mark.training
def test_vocabularies_match_keras():
    """The lists kept in the package (so the CLI needs no TensorFlow) are names Keras accepts."""
    keras = importlib.import_module("keras")
    from sweep.core import schema

    for name in schema.OPTIMIZERS:
        keras.optimizers.get(name)
    for name in schema.ACTIVATIONS:
        keras.activations.get(name)
    for name in set(schema.CLASSIFICATION_LOSSES) | set(schema.REGRESSION_LOSSES):
        keras.losses.get(name)


def test_shipped_grids_are_valid():
    from tests.conftest import REPO

    counts = {}
    for name in ("lstm", "cnn", "demo"):
        spec = load_grid(REPO / "grids" / f"{name}.yaml", REPO)
        counts[name] = len(expand(spec))
    assert counts == {"lstm": 36, "cnn": 16, "demo": 4}
    lstm = load_grid(REPO / "grids" / "lstm.yaml", REPO)
    assert lstm.resources.request_cpus == 4 and lstm.resources.request_memory_mb == 5000
    assert lstm.resources.runtime_s == 7200 and lstm.fixed["batch_size"] == 150


@pytest.mark.parametrize("text, key, expected", [
    ("sweep: t\nmodel: lstm\ndata:\n", "data", "expected a mapping with at least 'path'"),
    ('sweep: "a\\n"\nmodel: lstm\ndata: {path: d.npz}\n', "sweep", "sweep name"),
    ('sweep: t\nmodel: lstm\ndata: {path: "d.npz\\n"}\n', "data.path", "no spaces, commas"),
    ("sweep: t\nmodel: lstm\ndata: {path: d.npz}\nresources: {request_memory: .inf}\n", "resources.request_memory",
     "finite"),
    ("sweep: t\nmodel: lstm\ndata: {path: d.npz}\nresources: {runtime: '99999999999999999999d'}\n",
     "resources.runtime", "at most 10 years"),
    ("sweep: t\nmodel: lstm\ndata: {path: d.npz}\nranking: [[f1]]\n", "ranking[0]", "unknown metric"),
    ("sweep: t\nmodel: lstm\ndata: {path: d.npz}\nrepeats: 100000000000\n", "repeats", "an integer from 1 to 1,000"),
    (("sweep: t\nmodel: lstm\ndata: {path: d.npz}\nresources: {request_memory: 8GB}\n"
      "condor: {memory_escalation: {max_memory: 1GB}}\n"), "condor.memory_escalation.max_memory", "at least"),
    ("sweep: t\nmodel: lstm\ndata: {path: d.npz}\nparams: {learning_rate: .inf}\n", "params.learning_rate", "> 0"),
])
def test_edge_cases_found_in_review(write_grid, tmp_path, text, key, expected):
    issue = one_issue(write_grid(text), tmp_path)
    assert issue.key == key and expected in issue.message, str(issue)


def test_yaml_alias_tricks(write_grid, tmp_path):
    issue = one_issue(write_grid("sweep: t\nmodel: lstm\ndata: {path: d.npz}\nx: &a [*a]\n"), tmp_path)
    assert "refers to a value that contains it" in issue.message
    # nested aliases are built once, not expanded exponentially ("billion laughs"), and refused
    levels = "a: &a [1,1,1,1,1,1,1,1,1]\n" + "".join(
        f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True))
    issue = one_issue(write_grid(levels + "sweep: t\nmodel: lstm\ndata: {path: d.npz}\n"), tmp_path)
    assert "alias bomb" in issue.message and issue.line == 6, str(issue)


def test_zipped_cnn_blocks_of_different_depth_are_valid(write_grid, tmp_path):
    spec = load_grid(write_grid("sweep: t\nmodel: cnn\ndata: {path: d.npz}\nzip:\n"
                                "  - filters: [[8], [8, 16]]\n    kernel_sizes: [[3], [5, 3]]\n"), tmp_path)
    assert [r.params["filters"] for r in expand(spec)] == [[8], [8, 16]]


def test_the_sites_runtime_limit_is_checked_against_sweeps_own(write_grid, tmp_path):
    base = "sweep: t\nmodel: lstm\ndata: {path: d.npz}\naxes:\n  optimizer: [adam]\n"
    with pytest.raises(GridError) as err:
        load_grid(write_grid(base + "resources: {runtime: 2h}\ncondor: {max_runtime: 1h}\n"), tmp_path)
    (issue,) = err.value.issues
    assert issue.key == "condor.max_runtime" and issue.line == 7
    assert "expected at least resources.runtime (2h00m00s), got 1h00m00s" in issue.message
    load_grid(write_grid(base + "resources: {runtime: 1h}\ncondor: {max_runtime: 2h}\n"), tmp_path)  # fine
