"""The longest runs first (issue 27): each run's predicted cost, and the order both backends start
runs in."""

from sweep.cli import main
from sweep.core.cost import cnn_operations, lstm_operations, predicted_cost, start_order
from sweep.core.expand import expand
from sweep.core.grid import parse_grid
from sweep.core.schema import CNN_PARAMS
from tests.conftest import grid_text
from tests.test_local_backend import _templates


def test_the_lstm_s_operations_follow_its_layers():
    # [32, 64, 1]: the LSTM's 4352 parameters run once per sample of the 15-sample window, the
    # dense layers' 2179 once (4352 + 2179 = 6531, the seed's count, which tests/test_job.py checks
    # against Keras)
    assert lstm_operations({"topology": [32, 64, 1]}) == 15 * 4352 + 2179
    assert lstm_operations({"topology": [96, 128, 1]}) == 15 * 37_632 + (50_179 - 37_632)


def test_the_cnn_s_operations_follow_its_layers():
    params = {**{k: p.default for k, p in CNN_PARAMS.items()}, "filters": [8, 16], "kernel_sizes": [7, 5],
              "convs_per_block": 2, "pool_size": 2, "head": "global_average", "dense_units": [32]}
    convs = 1024 * 7 * 1 * 8 + 1024 * 7 * 8 * 8 + 512 * 5 * 8 * 16 + 512 * 5 * 16 * 16
    assert cnn_operations(params) == convs + 16 * 32 + 32
    flatten = {**params, "head": "flatten"}
    assert cnn_operations(flatten) == convs + 16 * 256 * 32 + 32  # every position of the last block


def test_the_costliest_runs_start_first_and_equal_ones_keep_their_order(tmp_path):
    text = grid_text(tmp_path / "x.npz", axes="  topology: [[32, 64, 1], [96, 128, 1]]\n  epochs: [2, 8]\n"
                     "  optimizer: [adam, sgd]\n")
    spec = parse_grid(text.replace("topology: [32, 64, 1], epochs: 2, ", ""), "g.yaml", tmp_path)
    runs = expand(spec)
    place = start_order(runs, spec.data.max_samples)
    ordered = sorted(runs, key=lambda run: place[run.run_id])
    costs = [predicted_cost(run.model, run.params, spec.data.max_samples) for run in ordered]
    assert costs == sorted(costs, reverse=True)
    assert (ordered[0].params["topology"], ordered[0].params["epochs"]) == ([96, 128, 1], 8)
    assert (ordered[-1].params["topology"], ordered[-1].params["epochs"]) == ([32, 64, 1], 2)
    # adam and sgd cost the same: they stay in the grid's order
    assert [run.params["optimizer"] for run in ordered] == ["adam", "sgd"] * 4


def test_the_local_backend_starts_the_longest_run_first(tmp_path, small_dataset):
    # one CPU: the runs start one after another; each job (the user's wrapper template) writes its
    # name where the next can add its own
    _templates(tmp_path, "grep '^name:' config.yaml >> ../started.txt\n")
    grid = tmp_path / "g.yaml"
    text = grid_text(small_dataset, sweep="order", axes="  topology: [[32, 64, 1], [64, 64, 1], [96, 128, 1]]\n")
    grid.write_text(text.replace("topology: [32, 64, 1], ", "") + "templates: tpl\n")
    main(["--root", str(tmp_path), "submit", str(grid), "--local", "--no-progress", "--cpus", "1", "--no-collect"])
    started = (tmp_path / "results" / "order" / "started.txt").read_text().split()
    assert [line.strip('"') for line in started if line != "name:"] == ["96x128x1", "64x64x1", "32x64x1"]
