"""`sweep report`: the static HTML page and its PNGs, on synthetic result folders; and the page
rendered by a headless Chromium (required: the test fails when chromium is not installed)."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

import sweep.collect.gather
from sweep import cli
from sweep.collect.report_html import write_report
from tests.synthetic import fake_attempts, make_sweep, write_event_log

AXES = {"optimizer": ["adam", "sgd", "rmsprop"], "learning_rate": [0.0001, 0.001, 0.01],
        "topology": [[32, 64, 1], [96, 128, 1]]}
IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def _with_event_log(monkeypatch, manifest):
    """What collect would read from the HTCondor job event log: used/requested per job."""
    attempts = fake_attempts(manifest)
    monkeypatch.setattr(sweep.collect.gather, "_event_log_attempts", lambda path: attempts)


@pytest.fixture
def lstm_report(tmp_path, monkeypatch):
    manifest = make_sweep(tmp_path, "syn", axes=AXES, failed=1, corrupt=1, missing=1, seed=5)
    _with_event_log(monkeypatch, manifest)
    code = cli.main(["--root", str(tmp_path), "report", "syn", "--top", "3"])
    assert code == 0
    return tmp_path, manifest, tmp_path / "results" / "syn" / "report.html"


def _decode_all(html: str) -> list[Image.Image]:
    images = []
    for data in IMG.findall(html):
        img = Image.open(io.BytesIO(base64.b64decode(data, validate=True)))
        img.load()
        assert img.format == "PNG" and img.width > 100 and img.height > 100
        images.append(img)
    return images


def test_lstm_report(lstm_report):
    root, manifest, path = lstm_report
    html = path.read_text()
    assert html.startswith("<!DOCTYPE html>") and "</html>" in html
    images = _decode_all(html)
    folder = root / "results" / "syn" / "report"
    pngs = sorted(p.name for p in folder.glob("*.png"))
    assert pngs == sorted(["curves.png", "roc.png", "parallel.png", "metric_vs_params.png", "importance.png",
                           "resources.png"])
    assert len(images) == len(pngs)
    for p in folder.glob("*.png"):
        with Image.open(p) as img:
            img.load()
            assert img.width > 100
    # the leaderboard, best first, and the best runs highlighted
    board = sweep.collect.gather.collect("syn", root, write_csv=False)
    best = board.table["run_id"].iloc[0]
    assert 'id="leaderboard-table"' in html and html.index(best) < html.index('id="curves"')
    assert html.count('<tr class="best">') == 3
    # failures, sensitivity, resources with advice
    for p in board.problems:
        assert p.run_id in html
    assert "synthetic failure" in html and "unreadable metrics.json" in html
    assert "most important: <b>learning_rate</b>" in html
    assert "Right-sizing for the next sweep" in html and 'id="resources-table"' in html
    # where the jobs' time went: each run's phases and the sweep's training efficiency
    assert 'id="phases-table"' in html and "Training efficiency " in html and "training_s" in html
    assert "AUC" in html
    assert not any("http://" in src or "https://" in src for src in re.findall(r'src="([^"]+)"', html))


def test_report_is_rebuilt_without_leftovers(lstm_report):
    root, _, path = lstm_report
    write_report("syn", root, top=1)
    results = root / "results" / "syn"
    assert (results / "report" / "curves.png").is_file()
    assert not [p for p in results.iterdir() if p.name.startswith(".report") or p.name.endswith(".tmp")]


def test_cnn_report_uses_regression_metrics_and_no_roc(tmp_path):
    make_sweep(tmp_path, "cnn", model="cnn", axes={"optimizer": ["adam", "rmsprop"], "dropout": [0.0, 0.1, 0.2],
                                                   "pool_size": [2, 4]},
               score=lambda s, rng: 1.0 + 2 * s["dropout"] + rng.gauss(0, 0.01), corrupt=1, missing=0)
    path = write_report("cnn", tmp_path, top=2)
    html = path.read_text()
    folder = tmp_path / "results" / "cnn" / "report"
    assert not (folder / "roc.png").exists() and (folder / "curves.png").is_file()
    assert "ranked by mae (lower is better)" in html and "most important: <b>dropout</b>" in html
    assert "No memory measurements" in html  # no event log: run.json gives only the run time
    _decode_all(html)


def test_report_with_a_real_event_log(tmp_path):
    manifest = make_sweep(tmp_path, "ev", axes={"optimizer": ["adam", "sgd"], "learning_rate": [0.001, 0.01]},
                          corrupt=1, missing=1)
    write_event_log(tmp_path, manifest)
    board = sweep.collect.gather.collect("ev", tmp_path, write_csv=False)
    ok = board.resources[board.resources["state"] == "ok"]
    assert len(ok) == 2 and ok["memory_used_mb"].between(800, 1700).all() and (ok["cpus_requested"] == 2).all()
    assert board.advice is not None and board.advice.requested_memory_mb == 4096
    html = write_report("ev", tmp_path).read_text()
    assert f"request_memory: {board.advice.suggested_memory_mb}MB" in html
    _decode_all(html)


def test_report_of_a_tiny_sweep(tmp_path):
    make_sweep(tmp_path, "tiny", axes={"optimizer": ["adam", "sgd"]}, corrupt=0, missing=1)
    html = write_report("tiny", tmp_path).read_text()
    assert "importance skipped" in html and "at least 4" in html
    _decode_all(html)


def _chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"),
                      shutil.which("google-chrome")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _browser(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync", "--no-first-run",
                           f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_report_renders_in_headless_chromium(lstm_report, tmp_path_factory):
    binary = _chromium()
    assert binary, ("chromium is not installed: this test needs it (Debian: apt-get install -y chromium; "
                    "scripts/setup.sh installs it)")
    _, _, path = lstm_report
    work = tmp_path_factory.mktemp("chromium")
    shot = work / "shot.png"
    run = _browser(binary, work / "profile1", f"--screenshot={shot}", "--window-size=1280,2000", path.as_uri())
    assert shot.is_file(), run.stderr[-2000:]
    with Image.open(shot) as img:
        img.load()
        assert img.size == (1280, 2000)
        colours = img.convert("RGB").resize((64, 100)).getcolors(maxcolors=100_000)
        assert colours is not None and len(colours) > 50, "the screenshot is (almost) blank"
    dom = _browser(binary, work / "profile2", "--virtual-time-budget=10000", "--dump-dom", path.as_uri())
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body, dom.stderr[-2000:]
    n_images = len(IMG.findall(path.read_text()))
    assert f'data-images-loaded="{n_images}/{n_images}"' in body.group(0), body.group(0)
    assert 'data-images-ok="true"' in body.group(0)


def test_an_empty_roc_curve_is_not_drawn(tmp_path):
    # a peak finder tested on one class only writes roc.csv's header alone (core.metrics.roc_points):
    # nothing to draw, so no figure claims a curve (before: an empty plot with an AUC in its legend)
    from sweep.collect.report_html import roc_figure

    (tmp_path / "r1").mkdir()
    (tmp_path / "r1" / "roc.csv").write_text("fpr,tpr,threshold\n")
    assert roc_figure([(1, "r1")], tmp_path, None) is None
    (tmp_path / "r2").mkdir()
    (tmp_path / "r2" / "roc.csv").write_text("fpr,tpr,threshold\n0,0,1\n0.5,0.9,0.5\n1,1,0\n")
    assert roc_figure([(1, "r1"), (2, "r2")], tmp_path, None) is not None
