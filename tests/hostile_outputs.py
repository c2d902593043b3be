"""A corpus of hostile job outputs, and how sweep must take each.

What comes back from an execute node is untrusted input (issue 22): each case plants one bad
output in the run folder of the best run of a small finished sweep (tests.synthetic: the
manifest `sweep submit` writes and the files a job leaves), or in a chain step's folder. The
real `sweep collect` / `sweep report` / chain step code then reads it, and must: mark that run
invalid with a reason naming the file (and key), rank the others, not crash, not hang, show no
job text unescaped, and never read or touch anything outside the folder (a secret file outside
is never shown, copied or embedded; files outside are left as they were).

`{outside}` below is a folder beside the project holding SECRET_FILE (the "root-only file" a
planted symlink points to) and a valid metrics.json with a perfect score.

Used by tests/test_hostile_outputs.py (every case) and bench/bench_hostile_outputs.py (the
totals).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.synthetic import make_sweep

SWEEP = "syn"
SECRET = "root-only-secret-7f3a9c"
SECRET_FILE = "secret.txt"
BIG = 10 << 30  # a 10 GiB file (sparse: it takes no disk)
AXES = {"optimizer": ["adam", "sgd"], "learning_rate": [0.001, 0.01]}  # 4 runs


@dataclass(frozen=True)
class Case:
    """One hostile output: where it goes, and what the victim's reason must say."""

    kind: str  # values | types | records | size | symlinks | markup (collect, report) ; traversal (chain)
    name: str
    plant: Callable[[Path, Path], None]  # (the victim's run folder, the outside folder)
    fragment: str  # in the victim's reason
    file: str = ""  # the file the reason must name
    report: bool = False  # also run `sweep report` on it
    bounded: bool = False  # in a subprocess with a time and memory bound (a hang or a blow-up otherwise)
    failed: bool = False  # the victim is a failed run (no metrics.json): its job text is shown

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.name}"


# ------------------------------------------------------------------ helpers that plant

def metric(key: str, raw: str, where: str = "test") -> Callable[[Path, Path], None]:
    """metrics.json with `where`.`key` written as the raw JSON text `raw`."""
    def plant(run: Path, outside: Path) -> None:
        data = json.loads((run / "metrics.json").read_text())
        marker = "__HOSTILE__"
        if where:
            data[where][key] = marker
        else:
            data[key] = marker
        (run / "metrics.json").write_text(json.dumps(data).replace(json.dumps(marker), raw))
    return plant


def record(name: str, change: Callable[[dict], object]) -> Callable[[Path, Path], None]:
    """The record `name` with `change` applied to its object (change may return a replacement)."""
    def plant(run: Path, outside: Path) -> None:
        data = json.loads((run / name).read_text()) if (run / name).exists() else {}
        new = change(data)
        (run / name).write_text(json.dumps(data if new is None else new))
    return plant


def text(name: str, content: str | bytes) -> Callable[[Path, Path], None]:
    def plant(run: Path, outside: Path) -> None:
        path = run / name
        path.unlink(missing_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return plant


def sparse(name: str, size: int = BIG, head: bytes = b"") -> Callable[[Path, Path], None]:
    """`name` made `size` bytes long (sparse) after `head`."""
    def plant(run: Path, outside: Path) -> None:
        path = run / name
        path.write_bytes(head)
        os.truncate(path, size)
    return plant


def link(name: str, target: str = SECRET_FILE) -> Callable[[Path, Path], None]:
    """`name` a symlink to `target` in the outside folder."""
    def plant(run: Path, outside: Path) -> None:
        path = run / name
        path.unlink(missing_ok=True)
        path.symlink_to(outside / target)
    return plant


def fifo(name: str) -> Callable[[Path, Path], None]:
    def plant(run: Path, outside: Path) -> None:
        path = run / name
        path.unlink(missing_ok=True)
        os.mkfifo(path)
    return plant


def folder(name: str) -> Callable[[Path, Path], None]:
    def plant(run: Path, outside: Path) -> None:
        path = run / name
        path.unlink(missing_ok=True)
        path.mkdir()
        (path / "x").write_text("x")
    return plant


def failed_with(stderr: str | bytes = "", error: str | None = None) -> Callable[[Path, Path], None]:
    """The victim a failed run: no metrics.json, run.json failed (with `error`), stderr.txt."""
    def plant(run: Path, outside: Path) -> None:
        (run / "metrics.json").unlink()
        info = json.loads((run / "run.json").read_text())
        info.update(status="failed", exit_code=1, error=error if error is not None else "RuntimeError: it failed")
        (run / "run.json").write_text(json.dumps(info))
        if stderr:
            text("stderr.txt", stderr)(run, outside)
    return plant


def both(*plants: Callable[[Path, Path], None]) -> Callable[[Path, Path], None]:
    def plant(run: Path, outside: Path) -> None:
        for p in plants:
            p(run, outside)
    return plant


def run_folder_link(run: Path, outside: Path) -> None:
    """The run folder itself a symlink to a folder outside holding a perfect run."""
    import shutil

    elsewhere = outside / "planted-run"
    shutil.copytree(run, elsewhere)
    (elsewhere / "metrics.json").write_text((outside / "metrics.json").read_text())
    shutil.rmtree(run)
    run.symlink_to(elsewhere)


# ------------------------------------------------------------------ values: numbers a job never writes
VALUES = [
    Case("values", "f1-infinity", metric("f1", "Infinity"), "test.f1: expected a finite number", "metrics.json"),
    Case("values", "f1-minus-infinity", metric("f1", "-Infinity"), "test.f1: expected a finite number",
         "metrics.json"),
    Case("values", "auc-infinity", metric("auc", "Infinity"), "test.auc: expected a finite number", "metrics.json"),
    Case("values", "f1-1e400", metric("f1", "1e400"), "test.f1: expected a finite number", "metrics.json"),
    Case("values", "f1-nan", metric("f1", "NaN"), "test.f1 is NaN", "metrics.json"),
    Case("values", "f1-null", metric("f1", "null"), "lacks f1", "metrics.json"),
    Case("values", "f1-huge-integer", metric("f1", "1" + "0" * 400), "test.f1: expected a number of at most 64 bits",
         "metrics.json"),
    Case("values", "f1-4301-digits", metric("f1", "9" * 4301), "not JSON", "metrics.json"),
    Case("values", "validation-infinity", metric("loss", "Infinity", "validation"),
         "validation.loss: expected a finite number", "metrics.json"),
    Case("values", "train-seconds-infinity", metric("train_seconds", "Infinity", ""),
         "train_seconds: expected a finite number", "metrics.json"),
    Case("values", "n-params-huge", metric("n_params", "9" * 30, ""), "n_params: expected a number of at most 64 bits",
         "metrics.json"),
    Case("values", "run-json-duration-infinity", record("run.json", lambda d: d.update(duration_s=float("inf"))),
         "duration_s: expected a finite number", "run.json"),
]

# ------------------------------------------------------------------ types: a value of an odd type
TYPES = [
    Case("types", "f1-true", metric("f1", "true"), "test: expected an object of numbers", "metrics.json"),
    Case("types", "f1-string", metric("f1", '"0.99"'), "test: expected an object of numbers", "metrics.json"),
    Case("types", "f1-list", metric("f1", "[0.99]"), "test: expected an object of numbers", "metrics.json"),
    Case("types", "f1-object", metric("f1", '{"v": 0.99}'), "test: expected an object of numbers", "metrics.json"),
    Case("types", "test-a-list", record("metrics.json", lambda d: d.update(test=[0.9, 0.9])),
         "test: expected an object of numbers", "metrics.json"),
    Case("types", "test-a-string", record("metrics.json", lambda d: d.update(test="best")),
         "test: expected an object of numbers", "metrics.json"),
    Case("types", "best-epoch-string", record("metrics.json", lambda d: d.update(best_epoch="5")),
         "best_epoch: expected a whole number", "metrics.json"),
    Case("types", "best-epoch-negative", record("metrics.json", lambda d: d.update(best_epoch=-3)),
         "best_epoch: expected a whole number >= 0", "metrics.json"),
    Case("types", "split-a-number", record("metrics.json", lambda d: d.update(split=7)),
         "split: expected an object", "metrics.json"),
    Case("types", "dataset-sha-number", record("metrics.json", lambda d: d.update(
        dataset={"file": "d.npz", "sha256": 5, "size": 1})), "dataset.sha256: expected a string", "metrics.json"),
    Case("types", "run-json-status-bogus", record("run.json", lambda d: d.update(status="winner")),
         "status: expected one of", "run.json"),
    Case("types", "run-json-threads-string", record("run.json", lambda d: d.update(threads="all")),
         "threads: expected an object", "run.json"),
    Case("types", "run-json-exit-code-float", record("run.json", lambda d: d.update(exit_code=0.5)),
         "exit_code: expected a whole number", "run.json"),
    Case("types", "local-exit-returncode-string", record(".local-exit.json", lambda d: {"returncode": "0"}),
         "returncode", ".local-exit.json"),
]

# ------------------------------------------------------------------ records: not the record at all
RECORDS = [
    Case("records", "metrics-not-json", text("metrics.json", "{ not json"), "not JSON", "metrics.json"),
    Case("records", "metrics-empty", text("metrics.json", ""), "not JSON", "metrics.json"),
    Case("records", "metrics-a-list", text("metrics.json", "[1, 2]"), "expected a JSON object", "metrics.json"),
    Case("records", "metrics-not-utf8", text("metrics.json", b'{"test": {"f1": 0.9\xff}}'), "unreadable",
         "metrics.json"),
    Case("records", "metrics-newer", record("metrics.json", lambda d: d.update(schema_version=99)),
         "written by a newer sweep", "metrics.json"),
    Case("records", "metrics-deep", text("metrics.json", "[" * 100_000 + "]" * 100_000), "nested deeper",
         "metrics.json"),
    Case("records", "metrics-deep-object", text("metrics.json", '{"test": ' + '{"a": ' * 50 + "1" + "}" * 51),
         "nested deeper", "metrics.json"),
    Case("records", "run-json-not-json", text("run.json", "\x00\x01"), "not JSON", "run.json"),
    Case("records", "run-json-a-string", text("run.json", '"ok"'), "expected a JSON object", "run.json"),
]

# ------------------------------------------------------------------ size: unbounded reads
SIZE = [
    Case("size", "metrics-10GiB", sparse("metrics.json", head=b'{"test": {"f1": 1.0}} '), "larger than the 1 MiB",
         "metrics.json", bounded=True),
    Case("size", "metrics-2MiB-of-spaces", lambda run, outside: (run / "metrics.json").write_text(
        (run / "metrics.json").read_text() + " " * (2 << 20)), "larger than the 1 MiB", "metrics.json"),
    Case("size", "run-json-10GiB", sparse("run.json"), "larger than the 1 MiB", "run.json", bounded=True),
    Case("size", "history-10GiB", sparse("history.csv", head=b"epoch,loss\n1,"), "larger than the 8 MiB",
         "history.csv", report=True, bounded=True),
    Case("size", "roc-10GiB", sparse("roc.csv", head=b"fpr,tpr\n0,"), "larger than the 32 MiB", "roc.csv",
         report=True, bounded=True),
    Case("size", "model-10GiB", sparse("model.keras"), "larger than the 2 GiB", "model.keras", bounded=True),
    Case("size", "stderr-10GiB-failed", both(failed_with(), sparse("stderr.txt", head=b"x" * 100)), "job failed",
         "", bounded=True, failed=True),
]

# ------------------------------------------------------------------ symlinks and special files
SYMLINKS = [
    Case("symlinks", "metrics-to-a-perfect-run", link("metrics.json", "metrics.json"),
         "expected a regular file, got a symlink", "metrics.json"),
    Case("symlinks", "metrics-to-secret", link("metrics.json"), "expected a regular file, got a symlink",
         "metrics.json"),
    Case("symlinks", "run-json-to-secret", link("run.json"), "expected a regular file, got a symlink", "run.json"),
    Case("symlinks", "stderr-to-secret", link("stderr.txt"), "expected a regular file, got a symlink", "stderr.txt"),
    Case("symlinks", "stderr-to-secret-failed", both(failed_with(), link("stderr.txt")),
         "expected a regular file, got a symlink", "stderr.txt", failed=True),
    Case("symlinks", "history-to-secret", link("history.csv"), "expected a regular file, got a symlink",
         "history.csv", report=True),
    Case("symlinks", "roc-to-secret", link("roc.csv"), "expected a regular file, got a symlink", "roc.csv",
         report=True),
    Case("symlinks", "model-to-secret", link("model.keras"), "expected a regular file, got a symlink", "model.keras"),
    Case("symlinks", "model-json-to-secret", link("model.json"), "expected a regular file, got a symlink",
         "model.json"),
    Case("symlinks", "dangling", link("metrics.json", "nothing-here"), "expected a regular file, got a symlink",
         "metrics.json"),
    Case("symlinks", "run-folder-to-outside", run_folder_link, "expected a folder, got a symlink", ""),
    Case("symlinks", "stderr-a-fifo", fifo("stderr.txt"), "expected a regular file, got a named pipe", "stderr.txt",
         bounded=True),
    Case("symlinks", "metrics-a-fifo", fifo("metrics.json"), "expected a regular file, got a named pipe",
         "metrics.json", bounded=True),
    Case("symlinks", "history-a-fifo", fifo("history.csv"), "expected a regular file, got a named pipe",
         "history.csv", report=True, bounded=True),
    Case("symlinks", "metrics-a-folder", folder("metrics.json"), "expected a regular file, got a folder",
         "metrics.json"),
]

# ------------------------------------------------------------------ markup and escapes in job text
MARKUP = [
    Case("markup", "stderr-closing-tag", failed_with("KeyError: x\n[/]\n"), "job failed", failed=True, report=True),
    Case("markup", "stderr-style-tags", failed_with("[bold red blink]ALERT[/bold red blink] [link=file:///etc]x[/link]\n"),
         "job failed", failed=True),
    Case("markup", "stderr-ansi-clear", failed_with("\x1b[2J\x1b[H\x1b[31mfake prompt $ \n"), "job failed",
         failed=True),
    Case("markup", "stderr-osc8-link", failed_with("\x1b]8;;http://evil.example/\x07click\x1b]8;;\x07\n"),
         "job failed", failed=True),
    Case("markup", "stderr-osc-title", failed_with("\x1b]0;owned\x07\n"), "job failed", failed=True),
    Case("markup", "stderr-bidi", failed_with("error \u202eTXT.EXE\n"), "job failed", failed=True),
    Case("markup", "stderr-c1-csi", failed_with("x\u009b2J\n"), "job failed", failed=True),
    Case("markup", "stderr-carriage-return", failed_with("rank 1 \r\x1b[Krun ok\n"), "job failed", failed=True),
    Case("markup", "error-closing-tag", failed_with(error="KeyError: '[/]'"), "[/]", failed=True, report=True),
    Case("markup", "error-escape", failed_with(error="x\x1b[2J\x1b]0;t\x07y"), "\\x1b[2J", failed=True),
    Case("markup", "error-html", failed_with(error="<script>alert(1)</script>"), "<script>", failed=True,
         report=True),
    Case("markup", "error-newlines", failed_with(error="a\nsweep: all runs ok\n"), "\\n", failed=True),
]

CORPUS: list[Case] = VALUES + TYPES + RECORDS + SIZE + SYMLINKS + MARKUP


# ------------------------------------------------------------------ chain steps: step.json's output names

@dataclass(frozen=True)
class StepCase:
    """One hostile step.json (or output) in a chain step's folder."""

    name: str
    outputs: object  # step.json's "output"
    plant: Callable[[Path, Path], None] | None = None  # (the step folder, the outside folder)
    fragment: str = ""

    @property
    def id(self) -> str:
        return f"traversal:{self.name}"


STEPS = [
    StepCase("dotdot-to-secret", f"../../../../outside/{SECRET_FILE}", fragment="not a file name of the step's folder"),
    StepCase("dotdot", "..", fragment="not a file name of the step's folder"),
    StepCase("dot", ".", fragment="not a file name of the step's folder"),
    StepCase("empty", "", fragment="not a file name of the step's folder"),
    StepCase("absolute", "/etc/passwd", fragment="not a file name of the step's folder"),
    StepCase("subfolder", "sub/evaluation.json", fragment="not a file name of the step's folder"),
    StepCase("nul", "evaluation.json\x00x", fragment="not a file name of the step's folder"),
    StepCase("backslash", "..\\..\\secret.txt", fragment="not a file name of the step's folder"),
    StepCase("list-with-dotdot", ["evaluation.json", "../secret.txt"], fragment="not a file name of the step's folder"),
    StepCase("output-a-number", 5, fragment="output"),
    StepCase("symlink-to-secret", ["evaluation.json", "plot.png"],
             lambda step, outside: (step / "plot.png").symlink_to(outside / SECRET_FILE),
             "expected a regular file, got a symlink"),
    StepCase("fifo", ["evaluation.json", "plot.png"], lambda step, outside: os.mkfifo(step / "plot.png"),
             "expected a regular file, got a named pipe"),
    StepCase("folder", ["evaluation.json", "plot.png"], lambda step, outside: (step / "plot.png").mkdir(),
             "expected a regular file, got a folder"),
    StepCase("missing", ["evaluation.json", "plot.png"], None, "no such file"),
    StepCase("png-10GiB", ["evaluation.json", "plot.png"],
             lambda step, outside: os.truncate(_touch(step / "plot.png"), BIG), "larger than the 16 MiB"),
    StepCase("stderr-to-secret", "..", lambda step, outside: (step / "stderr.txt").symlink_to(outside / SECRET_FILE),
             "not a file name of the step's folder"),
]


def _touch(path: Path) -> Path:
    path.write_bytes(b"\x89PNG\r\n\x1a\n")
    return path


# ------------------------------------------------------------------ the project

def make_project(base: Path) -> tuple[Path, Path, str]:
    """A project with a finished 4-run sweep `syn`, the folder outside (the secret, a perfect
    metrics.json); returns (root, outside, the run id of the best run: the victim)."""
    root, outside = base / "project", base / "outside"
    root.mkdir(parents=True)
    outside.mkdir()
    manifest = make_sweep(root, SWEEP, axes=AXES, corrupt=0, missing=0)
    (outside / SECRET_FILE).write_text(SECRET + "\n")
    os.chmod(outside / SECRET_FILE, 0o600)
    truth = manifest["truth"]
    victim = max(truth, key=truth.get)
    perfect = json.loads((root / "results" / SWEEP / victim / "metrics.json").read_text())
    perfect["test"].update(f1=1.0, auc=1.0, eff_purity=1.0)
    (outside / "metrics.json").write_text(json.dumps(perfect))
    return root, outside, victim


def snapshot(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under `folder` (not following links): path -> (mode, size, content head)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            head = p.read_bytes()[:4096] if p.is_file() and not p.is_symlink() else b""
            out[str(p.relative_to(folder))] = (st.st_mode, st.st_size, head)
    return out
