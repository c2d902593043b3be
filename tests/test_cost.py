"""The longest runs first (issue 27): each run's predicted cost, and the order both backends start
runs in."""

from sweep.cli import main
from sweep.core.cost import cnn_operations, lstm_operations, predicted_cost, start_order
from sweep.core.expand import expand
from sweep.core.grid import parse_grid
from sweep.core.schema import CNN_PARAMS
from tests.conftest import RUN_PART_SH, grid_text
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
    name = "sed 's/.*\"name\":\"\\([^\"]*\\)\".*/\\1/'"  # the run's name, from its --run part
    _templates(tmp_path, RUN_PART_SH + f"printf '%s\\n' \"$part\" | {name} >> ../started.txt\n")
    grid = tmp_path / "g.yaml"
    text = grid_text(small_dataset, sweep="order", axes="  topology: [[32, 64, 1], [64, 64, 1], [96, 128, 1]]\n")
    grid.write_text(text.replace("topology: [32, 64, 1], ", "") + "templates: tpl\n")
    main(["--root", str(tmp_path), "submit", str(grid), "--local", "--no-progress", "--cpus", "1", "--no-collect"])
    started = (tmp_path / "results" / "order" / "started.txt").read_text().split()
    assert started == ["96x128x1", "64x64x1", "32x64x1"]


def test_measured_epochs_reorder_the_runs_and_put_the_others_in_seconds(tmp_path):
    """A sweep whose runs ran before (a resubmission after failures or evictions): the measured
    seconds of an epoch replace the prediction, and the median measured/predicted ratio puts the
    unmeasured runs on the same scale."""
    text = grid_text(tmp_path / "x.npz", axes="  topology: [[32, 64, 1], [64, 64, 1], [96, 128, 1]]\n")
    spec = parse_grid(text.replace("topology: [32, 64, 1], ", ""), "g.yaml", tmp_path)
    small, middle, large = sorted(expand(spec), key=lambda r: predicted_cost(r.model, r.params, 1))
    runs = [small, middle, large]
    def order(place):
        return [r.run_id for r in sorted(runs, key=lambda r: place[r.run_id])]

    assert order(start_order(runs, None)) == [large.run_id, middle.run_id, small.run_id]
    per_epoch = {r.run_id: predicted_cost(r.model, r.params, 1) / r.params["epochs"] for r in runs}
    # the large model runs as predicted (x 1e-6 s), the middle one 20x slower than that: the middle
    # one goes first, and the unmeasured small one, scaled by the median ratio (10.5e-6), passes the
    # large one (its prediction is ~2.4x smaller, its scale 10.5x larger)
    assert 2 < per_epoch[large.run_id] / per_epoch[small.run_id] < 10.5
    measured = {large.run_id: 1e-6 * per_epoch[large.run_id], middle.run_id: 20e-6 * per_epoch[middle.run_id]}
    assert order(start_order(runs, None, measured)) == [middle.run_id, small.run_id, large.run_id]
    # what is not a positive finite number is not a measure
    junk = {small.run_id: float("nan"), middle.run_id: -1.0, large.run_id: float("inf")}
    assert start_order(runs, None, junk) == start_order(runs, None)


def test_epoch_seconds_reads_what_earlier_attempts_left_and_nothing_else(tmp_path):
    from sweep.records.runs import epoch_seconds

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "history.csv").write_text("epoch,loss,seconds\n1,0.5,4.0\n2,0.4,2.0\n3,0.3,3.0\n")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "history.csv").write_text("epoch,loss,seconds\n1,0.5,nan\n2,0.4,-1\n")  # nothing usable
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "history.csv").symlink_to(tmp_path / "a" / "history.csv")  # planted: never followed
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "history.csv").write_text("not,a\ncsv")
    assert epoch_seconds(tmp_path, ["a", "b", "c", "d", "missing"]) == {"a": 3.0}


def test_epochs_outweigh_layers_for_the_small_peak_finders(tmp_path):
    """Measured on the makespan bench's grid: a 6-epoch 16x32x1 LSTM trained 24 s, a 2-epoch 32x64x1
    one 12 s. The multiply-adds alone (3x per epoch) put the short one first; with the per-sample
    overhead the long one starts first."""
    from sweep.core.cost import OVERHEAD_PER_SAMPLE

    text = grid_text(tmp_path / "x.npz", axes="  topology: [[16, 32, 1], [32, 64, 1]]\n  epochs: [2, 6]\n")
    spec = parse_grid(text.replace("topology: [32, 64, 1], epochs: 2, ", ""), "g.yaml", tmp_path)
    runs = {(tuple(r.params["topology"]), r.params["epochs"]): r for r in expand(spec)}
    small_long, large_short = runs[((16, 32, 1), 6)], runs[((32, 64, 1), 2)]
    place = start_order(list(runs.values()), spec.data.max_samples)
    assert place[small_long.run_id] < place[large_short.run_id]
    # what the layers alone say: the other way round
    assert lstm_operations(small_long.params) * 6 < lstm_operations(large_short.params) * 2
    assert OVERHEAD_PER_SAMPLE > lstm_operations(large_short.params)
