"""`sweep collect` options on realistic synthetic result folders: --by, --top, --filter, every
--format, --output, repeats aggregated per configuration, the best/ folder, and the parameter
sensitivity."""

from __future__ import annotations

import argparse
import io
import json
import math
import statistics
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sweep import cli
from sweep.collect.gather import collect
from sweep.core.errors import SweepError
from sweep.collect.sensitivity import analyse
from sweep.collect.leaderboard import aggregate, copy_best, export, select
from tests.synthetic import make_sweep

AXES = {"optimizer": ["adam", "sgd", "rmsprop"], "learning_rate": [0.0001, 0.001, 0.01],
        "topology": [[32, 64, 1], [96, 128, 1]]}


@pytest.fixture
def swept(tmp_path):
    """18 configurations, one failed, one corrupt metrics.json, one never ran."""
    manifest = make_sweep(tmp_path, "syn", axes=AXES, failed=1, corrupt=1, missing=1, seed=3)
    return tmp_path, manifest


def run_cli(root: Path, *argv: str, capsys=None) -> tuple[int, str, str]:
    code = cli.main(["--root", str(root), *argv])
    out, err = capsys.readouterr() if capsys else ("", "")
    return code, out, err


def test_default_ranking_is_test_metric_at_best_epoch(swept):
    root, manifest = swept
    board = collect("syn", root)
    assert len(board.table) == len(manifest["runs"]) - 3
    assert {p.state for p in board.problems} == {"failed", "corrupt", "missing"}
    f1 = list(board.table["f1"])
    assert f1 == sorted(f1, reverse=True)
    for row in board.table.head(5).to_dict("records"):
        metrics = json.loads((root / "results" / "syn" / row["run_id"] / "metrics.json").read_text())
        assert row["f1"] == metrics["test"]["f1"]  # the test split, with the best epoch's weights
        assert row["best_epoch"] == metrics["best_epoch"]


def test_by_top_and_direction(swept):
    root, _ = swept
    board = collect("syn", root, write_csv=False)
    sel = select(board, by="auc", top=5)
    assert len(sel.frame) == 5 and list(sel.frame["rank"]) == [1, 2, 3, 4, 5]
    assert list(sel.frame["auc"]) == sorted(board.table["auc"], reverse=True)[:5]
    by_time = select(board, by="train_seconds")  # not a metric: higher first
    assert list(by_time.frame["train_seconds"]) == sorted(board.table["train_seconds"], reverse=True)
    by_loss = select(board, by="learning_rate")
    assert by_loss.frame["learning_rate"].iloc[0] == 0.01
    with pytest.raises(SweepError, match="--by nope: no such column"):
        select(board, by="nope")


def test_regressor_by_is_ascending(tmp_path):
    make_sweep(tmp_path, "cnn", model="cnn", axes={"optimizer": ["adam", "rmsprop"], "dropout": [0.0, 0.1, 0.2]},
               score=lambda s, rng: 1.0 + s["dropout"] + rng.random() * 0.01, corrupt=0, missing=0)
    board = collect("cnn", tmp_path, write_csv=False)
    for metric in ("mae", "rel_resolution", "abs_bias"):
        values = list(select(board, by=metric).frame[metric])
        assert values == sorted(values), metric


def test_filter(swept, capsys):
    root, _ = swept
    board = collect("syn", root, write_csv=False)
    sel = select(board, where='optimizer == "adam" and learning_rate >= 0.001')
    assert set(sel.frame["optimizer"]) == {"adam"} and sel.frame["learning_rate"].min() >= 0.001
    assert list(sel.frame["rank"]) == list(range(1, len(sel.frame) + 1)) and len(sel.frame) == 4
    assert select(board, where='topology == "[32,64,1]"').frame["topology"].eq("[32,64,1]").all()
    assert select(board, where='optimizer == "nothing"').frame.empty
    for bad in ("optimizer ==", "f1", "no_such_column > 1", "import os"):
        with pytest.raises(SweepError, match="--filter"):
            select(board, where=bad)
    code, out, err = run_cli(root, "collect", "syn", "--filter", "optimizer == ", capsys=capsys)
    assert code == 1 and "--filter" in err and "Traceback" not in err + out


@pytest.mark.parametrize("fmt", ["csv", "json", "markdown", "latex", "table"])
def test_every_format_parses_back(swept, fmt, capsys):
    root, _ = swept
    out_file = root / f"board.{fmt}"
    code, _, _ = run_cli(root, "collect", "syn", "--by", "auc", "--top", "6", "--format", fmt, "--output",
                         str(out_file), capsys=capsys)
    assert code == 0
    text = out_file.read_text()
    expected = list(select(collect("syn", root, write_csv=False), by="auc", top=6).frame["run_id"])
    if fmt == "csv":
        frame = pd.read_csv(io.StringIO(text))
        assert list(frame["run_id"]) == expected and list(frame["rank"]) == list(range(1, 7))
        assert frame["auc"].is_monotonic_decreasing
    elif fmt == "json":
        data = json.loads(text)
        assert [r["run_id"] for r in data["rows"]] == expected
        assert data["ranking"][0] == ["auc", "max"] and data["aggregated"] is False
    elif fmt == "markdown":
        lines = text.splitlines()
        header = [c.strip() for c in lines[0].strip("|").split("|")]
        assert header[:2] == ["rank", "run_id"] and "f1" in header and "auc" in header
        assert set(lines[1].replace("|", "").replace("-", "").replace(":", "")) == set()
        assert len(lines) == 2 + 6 and expected[0] in lines[2]
    elif fmt == "latex":
        assert "\\begin{tabular}" in text and "\\end{tabular}" in text
        body = text.split("\\midrule")[1].split("\\bottomrule")[0].strip().splitlines()
        assert len(body) == 6 and all(line.endswith("\\\\") for line in body)
        assert "run\\_id" in text and "eff\\_purity" in text
    else:
        assert expected[0] in text and "ranked by auc" in text
    assert not list(root.glob(".board*")), "temporary file left behind"


def test_format_to_stdout_and_from_suffix(swept, capsys):
    root, _ = swept
    code, out, _ = run_cli(root, "collect", "syn", "--format", "csv", "--top", "3", "--best", "0", capsys=capsys)
    assert code == 0 and len(pd.read_csv(io.StringIO(out))) == 3
    code, _, _ = run_cli(root, "collect", "syn", "--output", str(root / "x.json"), capsys=capsys)
    assert code == 0 and len(json.loads((root / "x.json").read_text())["rows"]) == 15


def test_repeats_aggregated_per_configuration(tmp_path, capsys):
    manifest = make_sweep(tmp_path, "rep", axes=AXES, repeats=3, corrupt=1, missing=1, seed=7)
    board = collect("rep", tmp_path, write_csv=False)
    assert board.repeats == 3
    agg = aggregate(board)
    truth = manifest["truth"]
    corrupt_or_missing = {r["run_id"] for r in manifest["runs"][-2:]}
    for row in agg.to_dict("records"):
        values = [truth[r["run_id"]] for r in manifest["runs"]
                  if r["config_id"] == row["config_id"] and r["run_id"] not in corrupt_or_missing]
        assert row["f1"] == pytest.approx(statistics.mean(values), abs=1e-12)
        if len(values) > 1:
            assert row["f1_std"] == pytest.approx(statistics.stdev(values), abs=1e-12)
        else:
            assert math.isnan(row["f1_std"])
        assert row["repeats"] == f"{len(values)}/3"
    last = manifest["runs"][-1]["config_id"]
    assert agg.set_index("config_id").loc[last, "repeats"] == "1/3"
    sel = select(board)
    assert sel.aggregated and len(sel.frame) == 18 and list(sel.frame["f1"]) == sorted(sel.frame["f1"], reverse=True)
    per_run = select(board, per_run=True)
    assert not per_run.aggregated and len(per_run.frame) == 54 - 2
    code, out, _ = run_cli(tmp_path, "collect", "rep", "--format", "csv", "--best", "0", capsys=capsys)
    frame = pd.read_csv(io.StringIO(out))
    assert {"config_id", "repeats", "f1", "f1_std"} <= set(frame.columns) and len(frame) == 18
    code, out, _ = run_cli(tmp_path, "collect", "rep", "--top", "2", capsys=capsys)
    assert "3/3" in out and "±" in out and "mean ± std over 3 repeats" in out


def test_best_folder_replaced_atomically(swept, capsys):
    root, _ = swept
    code, out, _ = run_cli(root, "collect", "syn", capsys=capsys)
    assert code == 0 and "best 3 model(s) copied" in out
    best = root / "results" / "syn" / "best"
    board = collect("syn", root, write_csv=False)
    expected = [f"{r}-{run}" for r, run in zip(board.table["rank"][:3], board.table["run_id"][:3], strict=True)]
    assert sorted(p.name for p in best.iterdir() if p.is_dir()) == sorted(expected)
    for name in expected:
        run_id = name.split("-", 1)[1]
        files = {p.name for p in (best / name).iterdir()}
        assert files == {"model.keras", "config.yaml", "metrics.json"}
        assert ((best / name / "model.keras").read_bytes()
                == (root / "results/syn" / run_id / "model.keras").read_bytes())
        config = yaml.safe_load((best / name / "config.yaml").read_text())  # the run's whole configuration
        assert config["run_id"] == run_id and config["sweep"] == "syn"
        entry = next(r for r in json.loads((root / "jobs/syn/sweep.json").read_text())["runs"] if r["run_id"] == run_id)
        assert config["params"] == dict(sorted(entry["swept"].items())) and config["seed"] == entry["seed"]
    code, _, _ = run_cli(root, "collect", "syn", "--best", "1", "--by", "auc", capsys=capsys)
    top_auc = select(board, by="auc", top=1).frame["run_id"][0]
    assert [p.name for p in best.iterdir() if p.is_dir()] == [f"1-{top_auc}"]
    assert not [p for p in (root / "results" / "syn").iterdir() if p.name.startswith(".best")]


def test_best_with_repeats_takes_the_best_repeat(tmp_path):
    make_sweep(tmp_path, "rep", axes=AXES, repeats=3, corrupt=0, missing=0, seed=1)
    board = collect("rep", tmp_path, write_csv=False)
    best = copy_best(board, 2)
    sel = select(board, top=2)
    for rank_, config, run in zip(sel.frame["rank"], sel.frame["config_id"], sel.frame["best_run_id"], strict=True):
        repeats = board.table[board.table["config_id"] == config]
        assert run == repeats.sort_values("f1", ascending=False)["run_id"].iloc[0]
        assert (best / f"{rank_}-{run}" / "model.keras").is_file()


def test_collect_called_from_submit_without_new_options(swept, capsys):
    root, _ = swept  # `sweep submit --local` calls cmd_collect with the submit parser's arguments
    args = argparse.Namespace(root=root, sweep="syn", top=2, no_collect=False)
    assert cli.cmd_collect(args) == 0
    assert "ranked by f1" in capsys.readouterr().out


def test_output_needs_one_sweep(swept, capsys):
    root, _ = swept
    make_sweep(root, "other", axes={"optimizer": ["adam", "sgd"]}, corrupt=0, missing=0)
    code, _, err = run_cli(root, "collect", "--output", str(root / "x.csv"), capsys=capsys)
    assert code == 1 and "--output needs one sweep" in err


def test_sensitivity_finds_the_knob_that_drives_the_metric(tmp_path):
    # the optimizer drives the metric here; learning rate and topology are noise
    effect = {"adam": 0.95, "sgd": 0.75, "rmsprop": 0.85}
    make_sweep(tmp_path, "opt", axes=AXES, corrupt=0, missing=0,
               score=lambda s, rng: effect[s["optimizer"]] + rng.gauss(0, 0.005))
    board = collect("opt", tmp_path, write_csv=False)
    sens = analyse(board.table, board.swept, "f1", "max")
    assert sens.top() == "optimizer"
    assert sens.importance.iloc[0]["share"] > 0.8
    marg = sens.marginals["optimizer"].set_index("value")
    assert marg.loc["adam", "mean"] == pytest.approx(0.95, abs=0.01) and marg.loc["adam", "count"] == 6
    assert sens.marginals["learning_rate"]["value"].tolist() == [0.0001, 0.001, 0.01]
    # and with the default synthetic score it is the learning rate
    make_sweep(tmp_path, "lr", axes=AXES, corrupt=0, missing=0)
    board = collect("lr", tmp_path, write_csv=False)
    assert analyse(board.table, board.swept, "f1", "max").top() == "learning_rate"
    # deterministic: the same importance twice
    again = analyse(board.table, board.swept, "f1", "max").importance
    assert again.equals(analyse(board.table, board.swept, "f1", "max").importance)


def test_sensitivity_with_few_runs_skips_importance(tmp_path):
    make_sweep(tmp_path, "few", axes={"optimizer": ["adam", "sgd", "rmsprop"]}, corrupt=0, missing=0)
    board = collect("few", tmp_path, write_csv=False)
    sens = analyse(board.table, board.swept, "f1", "max")
    assert sens.importance is None and any("at least 4" in n for n in sens.notes)
    assert len(sens.marginals["optimizer"]) == 3
    assert analyse(board.table.head(0), board.swept, "f1").importance is None


def test_export_empty_selection(swept):
    root, _ = swept
    board = collect("syn", root, write_csv=False)
    sel = select(board, where='optimizer == "none"')
    assert json.loads(export(board, sel, "json"))["rows"] == []
    assert export(board, sel, "markdown").startswith("| rank |")
    assert pd.read_csv(io.StringIO(export(board, sel, "csv"))).empty


# ------------------------------------------------------------------ hostile --filter and CSV cells

@pytest.mark.parametrize("attack", [
    "f1.__class__.__init__.__globals__['sys'].modules['os'].system('touch {mark}') == 0",
    "f1.to_csv('{mark}') == 0",
    "__import__('os').system('touch {mark}') == 0",
    "optimizer.str.len() > 3",
    "@root == 1",
    "f1 > 0.5; import os",
    "lambda: 1",
    "[x for x in f1]",
])
def test_a_filter_runs_no_python(swept, capsys, attack):
    """--filter is a small grammar of column comparisons, not pandas' Python engine: attribute
    access, calls, subscripts and anything else is refused with the position, and nothing runs
    (pandas' engine wrote files and ran shell commands from a filter)."""
    root, _ = swept
    mark = root / "pwned"
    expr = attack.format(mark=mark)
    code, out, err = run_cli(root, "collect", "syn", "--filter", expr, capsys=capsys)
    assert code == 1 and "--filter" in err and "Traceback" not in err + out, err
    assert not mark.exists()


def test_the_documented_filters_still_work(swept):
    root, _ = swept
    board = collect("syn", root, write_csv=False)
    table = board.table
    cases = {
        'optimizer == "adam" and f1 > 0.9': (table["optimizer"] == "adam") & (table["f1"] > 0.9),
        "optimizer != 'sgd' or not (learning_rate < 0.001)":
            (table["optimizer"] != "sgd") | ~(table["learning_rate"] < 0.001),
        'optimizer in ["adam", "sgd"] & f1 >= 0.5': table["optimizer"].isin(["adam", "sgd"]) & (table["f1"] >= 0.5),
        'optimizer not in ("adam",)': ~table["optimizer"].isin(["adam"]),
        "learning_rate * 10 <= 0.01 + 0": table["learning_rate"] * 10 <= 0.01,
        "-f1 < -0.5": -table["f1"] < -0.5,
        "`f1` > 1e-3": table["f1"] > 1e-3,
        "f1 > auc or True": table["f1"] == table["f1"],
    }
    for where, mask in cases.items():
        got = set(select(board, where=where).frame["run_id"])
        assert got == set(table[mask]["run_id"]), where


def test_a_csv_export_neutralizes_formulas_in_text_cells_only(swept):
    """A text cell that a spreadsheet would run as a formula (=, +, -, @, tab, CR first) is
    prefixed with a quote; numbers, negative ones included, stay numbers."""
    import csv
    import dataclasses

    root, _ = swept
    board = collect("syn", root, write_csv=False)
    sel = select(board, top=6)
    hostile = ["=HYPERLINK(\"http://x\",\"y\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\t=1", "adam"]
    frame = sel.frame.assign(optimizer=hostile, learning_rate=[-0.5, -1e-3, 0.0, 1.0, -2.0, 3.0])
    frame = frame.rename(columns={"name": "=header"})
    text = export(board, dataclasses.replace(sel, frame=frame), "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["optimizer"] for r in rows] == ["'" + h for h in hostile[:5]] + ["adam"]
    assert [float(r["learning_rate"]) for r in rows] == [-0.5, -1e-3, 0.0, 1.0, -2.0, 3.0]
    assert "'=header" in rows[0]


def test_collect_s_own_leaderboard_csv_neutralizes_formulas(tmp_path):
    """leaderboard.csv, which collect writes on every run (not only `--format csv`), goes through
    the same neutralization: a text value that a spreadsheet would run is written quoted."""
    import csv

    make_sweep(tmp_path, "syn", axes={"optimizer": ["=HYPERLINK(\"http://x\",\"y\")", "adam"],
                                      "learning_rate": [0.01, 0.001]}, corrupt=0, missing=0, seed=3)
    board = collect("syn", tmp_path)
    rows = list(csv.DictReader(io.StringIO(board.csv_path.read_text())))
    assert sorted(r["optimizer"] for r in rows) == sorted(["'=HYPERLINK(\"http://x\",\"y\")"] * 2 + ["adam"] * 2)
    assert sorted(float(r["learning_rate"]) for r in rows) == [0.001, 0.001, 0.01, 0.01]
