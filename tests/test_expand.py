"""Expansion: product, zip, exclude, sample, repeats; ids stable and unique."""

import pytest

from sweep.core.errors import GridError
from sweep.core.expand import expand
from sweep.core.grid import load_grid

GRID = """\
sweep: t
model: lstm
seed: 3
data: {path: d.npz}
axes:
  optimizer: [sgd, adam, rmsprop]
  topology:
    - [96, 128, 1]
    - [128, 96, 1]
zip:
  - epochs: [50, 100]
    patience: [10, 20]
"""


def runs_of(write_grid, tmp_path, text, name="g.yaml"):
    return expand(load_grid(write_grid(text, name), tmp_path))


def test_product_and_zip(write_grid, tmp_path):
    runs = runs_of(write_grid, tmp_path, GRID)
    assert len(runs) == 3 * 2 * 2
    pairs = {(r.params["epochs"], r.params["patience"]) for r in runs}
    assert pairs == {(50, 10), (100, 20)}  # zipped, not crossed
    assert len({r.config_id for r in runs}) == len(runs)
    assert all(r.params["batch_size"] == 150 for r in runs)  # default filled
    assert runs[0].name == "sgd-96x128x1-50-10"


def test_exclude(write_grid, tmp_path):
    runs = runs_of(write_grid, tmp_path,
                   GRID + "exclude:\n  - {optimizer: sgd, epochs: 50}\n  - {topology: [128, 96, 1]}\n")
    assert len(runs) == 3 * 1 * 2 - 1
    assert not any(r.params["optimizer"] == "sgd" and r.params["epochs"] == 50 for r in runs)
    assert all(r.params["topology"] == [96, 128, 1] for r in runs)


def test_ids_are_stable_and_content_based(write_grid, tmp_path):
    a = runs_of(write_grid, tmp_path, GRID, "a.yaml")
    # same content written differently (other axis order, comments, resources changed) -> same ids
    reordered = GRID.replace("sweep: t", "# comment\nsweep: t") + "resources: {request_memory: 9GB}\n"
    b = runs_of(write_grid, tmp_path, reordered, "b.yaml")
    assert {r.config_id for r in a} == {r.config_id for r in b}
    # a changed hyperparameter or base seed changes the id
    c = runs_of(write_grid, tmp_path, GRID.replace("seed: 3", "seed: 4"), "c.yaml")
    assert not ({r.config_id for r in a} & {r.config_id for r in c})
    d = runs_of(write_grid, tmp_path, GRID + "params: {dropout: [0.2, 0.2]}\n", "d.yaml")
    assert not ({r.config_id for r in a} & {r.config_id for r in d})
    # the same point keeps its id when the grid grows
    e = runs_of(write_grid, tmp_path, GRID.replace("[sgd, adam, rmsprop]", "[sgd, adam, rmsprop, nadam]"), "e.yaml")
    assert {r.config_id for r in a} < {r.config_id for r in e}


def test_sample_is_seeded_subset(write_grid, tmp_path):
    full = runs_of(write_grid, tmp_path, GRID, "full.yaml")
    s1 = runs_of(write_grid, tmp_path, GRID + "sample: 5\n", "s1.yaml")
    s2 = runs_of(write_grid, tmp_path, GRID + "sample: 5\n", "s2.yaml")
    assert len(s1) == 5 and [r.run_id for r in s1] == [r.run_id for r in s2]
    assert {r.run_id for r in s1} <= {r.run_id for r in full}
    other = runs_of(write_grid, tmp_path, GRID.replace("seed: 3", "seed: 5") + "sample: 5\n", "s3.yaml")
    assert [r.name for r in other] != [r.name for r in s1]
    everything = runs_of(write_grid, tmp_path, GRID + f"sample: {len(full)}\n", "s4.yaml")
    assert {r.run_id for r in everything} == {r.run_id for r in full}
    with pytest.raises(GridError, match=f"sample: 500 is more than the grid's {len(full)} points"):
        runs_of(write_grid, tmp_path, GRID + "sample: 500\n", "s5.yaml")


def test_repeats_share_config_id_with_distinct_seeds(write_grid, tmp_path):
    one = runs_of(write_grid, tmp_path, GRID, "one.yaml")
    three = runs_of(write_grid, tmp_path, GRID + "repeats: 3\n", "three.yaml")
    assert len(three) == 3 * len(one)
    first = [r for r in three if r.config_id == one[0].config_id]
    assert [r.run_id for r in first] == [one[0].run_id, one[0].run_id + "-r1", one[0].run_id + "-r2"]
    assert len({r.seed for r in first}) == 3
    assert first[0].seed == one[0].seed  # repeat 0 unchanged when repeats grows
    assert len({r.run_id for r in three}) == len(three)


CNN_GRID = """\
sweep: c
model: cnn
seed: 2024
data: {path: d.npz}
axes:
  optimizer: [rmsprop, adam]
"""


def test_parameters_added_later_keep_existing_ids(write_grid, tmp_path):
    """convs_per_block and head came after CNN grids were in use: at their defaults they stay out
    of the id, so a resubmitted grid finds its finished runs (ids pinned from before they existed);
    set to anything else they are part of it."""
    runs = runs_of(write_grid, tmp_path, CNN_GRID)
    assert {r.params["head"] for r in runs} == {"flatten"} and {r.params["convs_per_block"] for r in runs} == {1}
    assert sorted(r.config_id for r in runs) == ["24e6b5bb0276", "2c46a38086fd"]
    explicit = runs_of(write_grid, tmp_path, CNN_GRID + "params: {head: flatten, convs_per_block: 1}\n", "e.yaml")
    assert {r.config_id for r in explicit} == {r.config_id for r in runs}
    other = runs_of(write_grid, tmp_path, CNN_GRID + "params: {head: global_average}\n", "o.yaml")
    assert not ({r.config_id for r in other} & {r.config_id for r in runs})


def test_sampling_keeps_its_choice_when_an_axis_grows(write_grid, tmp_path):
    """Adding a value must not reshuffle a sampled sweep (its finished runs would be dropped and
    new ones trained): an old point is in the new sample only if it was in the old one, and the
    old sample loses only the places that new points take."""
    old = runs_of(write_grid, tmp_path, GRID + "sample: 5\n", "old.yaml")
    grown = GRID.replace("[sgd, adam, rmsprop]", "[sgd, adam, rmsprop, nadam, adamax]")
    new = runs_of(write_grid, tmp_path, grown + "sample: 5\n", "new.yaml")
    full_old = {r.config_id for r in runs_of(write_grid, tmp_path, GRID, "full.yaml")}
    old_ids, new_ids = {r.config_id for r in old}, {r.config_id for r in new}
    assert len(new_ids) == 5
    assert (new_ids & full_old) <= old_ids
    assert len(old_ids - new_ids) == len(new_ids - full_old)  # only new points took places
    assert len(new_ids & old_ids) >= 2  # with 12 of 20 points old, most of the old choice stays
