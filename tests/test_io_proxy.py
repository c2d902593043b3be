"""want_io_proxy lets whatever runs on the execute node read, write and delete the submitting
user's files on the submit node through chirp, for as long as the job runs. sweep asks for it only
where it needs it (a pruned search trial reports each epoch and reads the driver's verdict through
chirp), says so in the submit file, and a grid can forbid it (condor.io_proxy: false)."""

from __future__ import annotations

import pytest

from sweep.core.errors import GridError
from sweep.core.expand import run_of_point
from sweep.core.grid import parse_grid
from sweep.core.render import render_sweep, submit_commands

COMMON = ("sweep: s\nmodel: lstm\nseed: 5\ndata: {path: data/x.npz}\nparams: {epochs: 3}\n"
          "axes:\n  optimizer: [adam, sgd]\n  batch_size: {low: 64, high: 128, step: 64}\n")


def _trial_submit(tmp_path, text: str) -> tuple[dict[str, str], str]:
    spec = parse_grid(text, "s.yaml", tmp_path)
    run = run_of_point(spec, {"optimizer": "adam", "batch_size": 64})
    (rendered,) = render_sweep(spec, [run], tmp_path, trials={run.run_id: 0}).runs
    return submit_commands(rendered.submit_text), rendered.submit_text


@pytest.mark.parametrize("search", ["search: {trials: 4, pruner: none}\n",
                                    "search: {trials: 4, objectives: [f1, auc]}\n"])
def test_a_trial_that_reports_nothing_gets_no_io_proxy(tmp_path, search):
    commands, _ = _trial_submit(tmp_path, COMMON + search)
    assert "want_io_proxy" not in commands
    assert commands["+sweeptrial"] == "0"  # still tied to its Optuna trial


def test_a_pruned_trial_gets_the_io_proxy_and_the_file_says_what_it_exposes(tmp_path):
    commands, text = _trial_submit(tmp_path, COMMON + "search: {trials: 4, pruner: median}\n")
    assert commands["want_io_proxy"] == "true"
    assert "delete any file the submitting user can" in text and "condor.io_proxy: false" in text


def test_a_grid_jobs_get_no_io_proxy(tmp_path):
    spec = parse_grid("sweep: g\nmodel: lstm\ndata: {path: data/x.npz}\naxes:\n  optimizer: [adam]\n", "g.yaml",
                      tmp_path)
    from sweep.core.expand import expand

    (rendered,) = render_sweep(spec, expand(spec), tmp_path).runs
    assert "want_io_proxy" not in submit_commands(rendered.submit_text)


def test_a_grid_can_forbid_the_io_proxy(tmp_path):
    commands, _ = _trial_submit(tmp_path, COMMON + "search: {trials: 4}\ncondor: {io_proxy: false}\n")
    assert "want_io_proxy" not in commands


def test_forbidding_the_io_proxy_to_a_pruned_search_is_an_error_with_its_line(tmp_path):
    with pytest.raises(GridError) as exc:
        parse_grid(COMMON + "search: {trials: 4, pruner: median}\ncondor: {io_proxy: false}\n", "s.yaml", tmp_path)
    (issue,) = exc.value.issues
    assert issue.key == "condor.io_proxy" and issue.line == 10
    assert "pruner: none" in issue.message and "chirp" in issue.message


def test_io_proxy_takes_true_or_false(tmp_path):
    with pytest.raises(GridError) as exc:
        parse_grid(COMMON + "search: {trials: 4}\ncondor: {io_proxy: 'no'}\n", "s.yaml", tmp_path)
    (issue,) = exc.value.issues
    assert issue.key == "condor.io_proxy" and "expected true or false" in issue.message


def test_a_user_template_cannot_give_the_io_proxy_a_grid_forbids(tmp_path):
    """A copy of an older job.sub.j2 that sets want_io_proxy for every trial is refused when the
    grid says condor.io_proxy: false, naming the template."""
    from sweep.core.errors import RenderError
    from sweep.core.render import BUILTIN_TEMPLATES

    folder = tmp_path / "mytemplates"
    folder.mkdir()
    text = (BUILTIN_TEMPLATES / "job.sub.j2").read_text().replace("+SweepTrial             = {{ trial }}\n",
                                                                   "+SweepTrial = {{ trial }}\nwant_io_proxy = true\n")
    (folder / "job.sub.j2").write_text(text)
    (folder / "run_job.sh.j2").write_text((BUILTIN_TEMPLATES / "run_job.sh.j2").read_text())
    with pytest.raises(RenderError, match="mytemplates/job.sub.j2.*want_io_proxy.*condor.io_proxy: false"):
        _trial_submit(tmp_path, COMMON + "search: {trials: 4}\ncondor: {io_proxy: false}\ntemplates: mytemplates\n")
    commands, _ = _trial_submit(tmp_path, COMMON + "search: {trials: 4}\ntemplates: mytemplates\n")
    assert commands["want_io_proxy"] == "true"  # the user's own template, the grid not forbidding it
