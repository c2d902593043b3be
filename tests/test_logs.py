"""`sweep logs` (sweep.submit.logs): a finished run's output, job events and hold history; what is
refused (a symlinked output, an unknown run, a run that never started); and following a job the
real local backend is running, until it ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sweep.core.errors import InputError, ResultsError
from sweep.submit.logs import show_logs
from tests.conftest import grid_text, wait_until
from tests.synthetic import make_sweep, write_event_log

REPO = Path(__file__).resolve().parents[1]


def _show(root: Path, run_id: str, sweep: str = "syn", **kwargs) -> list[str]:
    lines: list[str] = []
    assert show_logs(sweep, root, run_id, write=lines.append, **kwargs) == 0
    return lines


def _held_and_released(log: Path, run_id: str) -> None:
    """A second attempt of `run_id`: submitted, executing, held for memory, released (HTCondor's
    user log format, as the shadow writes it)."""
    with open(log, "a") as fh:
        fh.write(f"000 (200.000.000) 2026-01-02 00:00:00 Job submitted from host: <127.0.0.1:9618>\n"
                 f"    sweep-run {run_id}\n...\n"
                 "001 (200.000.000) 2026-01-02 00:00:05 Job executing on host: <127.0.0.1:9618>\n...\n"
                 "012 (200.000.000) 2026-01-02 00:01:00 Job was held.\n"
                 "\tmemory usage exceeded request_memory \x1b]0;pwned\x07\n\tCode 34 Subcode 102\n...\n"
                 "013 (200.000.000) 2026-01-02 00:02:00 Job was released.\n\tvia periodic_release\n...\n")


def test_a_finished_run_shows_its_output_events_and_holds(tmp_path):
    manifest = make_sweep(tmp_path, failed=1)
    log = write_event_log(tmp_path, manifest)
    run_id = manifest["runs"][0]["run_id"]
    _held_and_released(log, run_id)
    folder = tmp_path / "results" / "syn" / run_id
    (folder / "stderr.txt").write_text("warning: slow\nred \x1b[31mtext\r\n")

    out = _show(tmp_path, run_id)
    text = "\n".join(out)
    assert out[0].startswith(f"run {run_id} (") and out[0].endswith("of sweep syn")
    events = [line.strip() for line in out[out.index("job events (results/syn/events.log):") + 1:]
              if line.startswith("  ")][:7]
    assert [e.split("  ", 1)[1] for e in events] == [
        "job 100.0 submitted", "job 100.0 executing on <127.0.0.1:9618>", "job 100.0 terminated: exit 0",
        "job 200.0 submitted", "job 200.0 executing on <127.0.0.1:9618>",
        "job 200.0 held (34/102): memory usage exceeded request_memory \\x1b]0;pwned\\x07",
        "job 200.0 released: via periodic_release"]
    assert "hold history: 1 hold(s)" in out
    assert any("job 200.0 held (memory) (34/102)" in line and line.endswith("; released") for line in out)
    assert out[-2:] == [f"stdout.txt (results/syn/{run_id}/stdout.txt, {len(f'sweep.job {run_id}: done') + 1} bytes):",
                        f"sweep.job {run_id}: done"]
    assert "\x1b" not in text and "\x07" not in text

    err = _show(tmp_path, run_id, stream="err")
    assert err[-2:] == ["warning: slow", "red \\x1b[31mtext"]  # escaped; the \r of a CRLF line dropped

    # a failed run of the local backend: its stderr and how its process ended
    failed = [r["run_id"] for r in manifest["runs"] if r["run_id"] in manifest["truth"]][-2]
    folder = tmp_path / "results" / "syn" / failed
    (folder / "stderr.txt").write_text("Traceback (most recent call last):\nRuntimeError: boom\n")
    (folder / ".local-exit.json").write_text(json.dumps({"returncode": 1, "wall_s": 12.0, "cpus": 1}))
    err = _show(tmp_path, failed, stream="err")
    assert "local job ended: exit 1 after 12s" in err and err[-1] == "RuntimeError: boom"


def test_only_the_end_of_a_long_output_is_read(tmp_path):
    manifest = make_sweep(tmp_path)
    run_id = manifest["runs"][0]["run_id"]
    out_file = tmp_path / "results" / "syn" / run_id / "stdout.txt"
    out_file.write_text("".join(f"line {i:06d}\n" for i in range(20000)))  # 240 KB
    out = _show(tmp_path, run_id)
    assert out[-1] == "line 019999" and "line 000000" not in out
    assert any(line.startswith("[... the first ") and "the whole file: results/syn/" in line for line in out)


def test_a_symlinked_output_is_not_followed(tmp_path):
    manifest = make_sweep(tmp_path)
    run_id = manifest["runs"][0]["run_id"]
    secret = tmp_path / "secret.txt"
    secret.write_text("the key\n")
    out_file = tmp_path / "results" / "syn" / run_id / "stdout.txt"
    out_file.unlink()
    out_file.symlink_to(secret)
    out = _show(tmp_path, run_id)
    assert "the key" not in "\n".join(out)
    assert out[-1] == "stdout.txt: not shown: expected a regular file, got a symlink: not followed"
    os.mkfifo(tmp_path / "results" / "syn" / run_id / "stderr.txt")  # a named pipe does not hang the reader
    assert _show(tmp_path, run_id, stream="err")[-1].startswith("stderr.txt: not shown: expected a regular file, "
                                                               "got a named pipe")


def test_unknown_sweep_run_and_a_run_that_never_started_are_errors(tmp_path):
    manifest = make_sweep(tmp_path, missing=1)
    with pytest.raises(ResultsError, match="no sweep 'nope'"):
        show_logs("nope", tmp_path, "0" * 12)
    with pytest.raises(ResultsError, match="sweep 'syn' has no run '000000000000'"):
        show_logs("syn", tmp_path, "0" * 12)
    never = manifest["runs"][-1]["run_id"]  # no folder, no job event
    with pytest.raises(ResultsError, match="no output yet: the run has not started"):
        show_logs("syn", tmp_path, never)
    with pytest.raises(InputError, match="expected stream 'out' or 'err'"):
        show_logs("syn", tmp_path, manifest["runs"][0]["run_id"], stream="both")
    # a run whose job was queued (an event) but wrote nothing yet: its events, and no output
    log = write_event_log(tmp_path, manifest, running=(never,))
    assert log.is_file()
    out = _show(tmp_path, never)
    assert any(line.endswith("submitted") for line in out)
    assert out[-1] == f"stdout.txt: none in results/syn/{never}/ (not written, or not transferred back)"


def _templates(root: Path, body: str) -> None:
    from sweep.core.render import BUILTIN_TEMPLATES

    folder = root / "tpl"
    folder.mkdir(exist_ok=True)
    (folder / "job.sub.j2").write_text((BUILTIN_TEMPLATES / "job.sub.j2").read_text())
    (folder / "run_job.sh.j2").write_text("#!/bin/sh\n" + body)


# a job that writes its output over several seconds, a line with terminal escapes, then a valid result
SLOW_JOB = r"""for i in 1 2 3 4 5 6 7 8; do echo "epoch $i"; sleep 0.5; done
printf 'title \033]0;pwned\007 done\n'
printf 'no newline at the end'
cat > metrics.json <<EOF
{"test": {"f1": 0.9, "auc": 0.95, "eff_purity": 0.8}, "best_epoch": 1, "epochs_run": 1}
EOF
"""


def _ended(folder: Path) -> bool:
    """The local backend has written how the job ended (it writes its record when the job starts
    too, without an exit status, where it records its process)."""
    try:
        return json.loads((folder / ".local-exit.json").read_text()).get("returncode") is not None
    except (OSError, ValueError):
        return False


def test_follow_prints_a_running_local_job_s_output_until_it_ends(tmp_path, small_dataset):
    _templates(tmp_path, SLOW_JOB)
    grid = tmp_path / "g.yaml"
    grid.write_text(grid_text(small_dataset, sweep="live", axes="  optimizer: [adam]\n") + "templates: tpl\n")
    # `sweep submit --local` in its own process, as a user runs it in another terminal
    proc = subprocess.Popen([sys.executable, "-m", "sweep.cli", "--root", str(tmp_path), "submit", str(grid),
                             "--local", "--no-progress", "--no-collect"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        out_file = wait_until(lambda: next((tmp_path / "results" / "live").glob("*/stdout.txt"), None), 120,
                              "the local job to start", interval=0.05)
        folder = out_file.parent
        seen_running: list[str] = []  # lines written while the job had not ended
        lines: list[str] = []

        def write(line: str) -> None:
            if not _ended(folder):
                seen_running.append(line)
            lines.append(line)

        assert show_logs("live", tmp_path, folder.name, follow=True, write=write, interval=0.1) == 0
        assert _ended(folder)  # it returned once the job had ended
        assert proc.wait(timeout=120) == 0, proc.stdout.read() if proc.stdout else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert any(line.startswith("epoch ") for line in seen_running), lines  # followed while it ran
    start = lines.index(f"stdout.txt (results/live/{folder.name}/stdout.txt; the local job is running):")
    body = lines[start + 1:]
    assert body == [*(f"epoch {i}" for i in range(1, 9)), "title \\x1b]0;pwned\\x07 done", "no newline at the end",
                    "(the local job ended: exit 0)"]
    # once it has ended, the same view without --follow reads the finished file
    again = _show(tmp_path, folder.name, sweep="live")
    assert again[-1] == "no newline at the end" and "local job ended: exit 0 after " in "\n".join(again)


def test_the_cli_shows_a_run_s_logs_and_refuses_an_unknown_run(tmp_path, capsys):
    from sweep.cli import main
    from tests.synthetic import make_sweep

    manifest = make_sweep(tmp_path, "cli", corrupt=0, missing=0)
    run = manifest["runs"][0]["run_id"]
    assert main(["--root", str(tmp_path), "logs", "cli", run]) == 0
    assert f"sweep.job {run}: done" in capsys.readouterr().out
    assert main(["--root", str(tmp_path), "logs", "cli", "nope"]) == 1
    assert "nope" in capsys.readouterr().err
