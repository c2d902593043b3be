"""Rendering: submit files parse with htcondor2.Submit, carry the requests, refuse injections."""

import hashlib
import importlib
import re
import stat

import pytest

from sweep.core.errors import SweepError
from sweep.core.expand import expand
from sweep.core.grid import load_grid
from sweep.core.render import render_sweep, submit_string, submit_value

GRID = """\
sweep: r
model: lstm
data: {path: data/d.npz}
axes:
  optimizer: [adam, sgd]
resources:
  request_cpus: 4
  request_memory: 5000MB
  request_disk: 2 GB
  runtime: 2h
condor:
  requirements: 'OpSysAndVer == "AlmaLinux9" && Arch == "X86_64"'
  accounting_group: group_fcc.user
  max_runtime: 3h
  container_image: /cvmfs/unpacked.cern.ch/registry.hub.docker.com/library/python:3.11
  max_retries: 2
  environment: {MY_FLAG: "1"}
"""


def rendered(write_grid, tmp_path, text=GRID):
    spec = load_grid(write_grid(text), tmp_path)
    return render_sweep(spec, expand(spec), tmp_path)


def test_submit_files_parse_with_htcondor2(write_grid, tmp_path):
    htcondor2 = importlib.import_module("htcondor2")
    sweep = rendered(write_grid, tmp_path)
    assert len(sweep.runs) == 2
    for run in sweep.runs:
        sub = htcondor2.Submit(run.submit_text)
        assert sub["request_cpus"] == "4"
        assert sub["request_memory"] == "5000MB"
        assert sub["request_disk"] == "2048MB"
        assert sub["allowed_execute_duration"] == "7200"
        assert sub["MY.MaxRuntime"] == "10800"
        assert sub["requirements"] == '(OpSysAndVer == "AlmaLinux9" && Arch == "X86_64")'
        assert sub["accounting_group"] == "group_fcc.user"
        assert sub["container_image"].startswith("/cvmfs/")
        assert "max_retries" not in sub.keys()  # retries belong to the DAG (or the backend in --no-dag mode)
        assert sub["periodic_remove"] == "HoldReasonCode =?= 47"
        assert sub["batch_name"] == "r"
        assert sub["MY.SweepRunId"] == f'"{run.run.run_id}"'
        assert sub["log"] == str(tmp_path.resolve() / "results" / "r" / "events.log")
        assert sub["initialdir"] == str(tmp_path.resolve() / "results" / "r" / run.run.run_id)
        assert sub["executable"] == str(tmp_path.resolve() / "jobs" / "r" / "run_job.sh")
        # the model's arrays (jobs/<sweep>/data/), not the whole dataset
        assert sub["transfer_input_files"].split(", ")[:2] == [
            str(run.config_path), str(tmp_path.resolve() / "jobs" / "r" / "data" / "d.lstm.npz")]
        assert sub["environment"] == '"MY_FLAG=1 SWEEP_CHECKPOINT_EVERY_S=600"'  # the grid's, and the checkpoint period


def test_config_text_is_the_resolved_configuration(write_grid, tmp_path):
    import yaml

    sweep = rendered(write_grid, tmp_path)
    config = yaml.safe_load(sweep.runs[0].config_text)
    assert config["run_id"] == sweep.runs[0].run.run_id
    assert config["params"]["optimizer"] == "adam"
    assert config["params"]["topology"] == [96, 128, 1]
    assert config["data"]["file"] == "d.lstm.npz"  # the transferred per-model file; "path" is the dataset
    assert config["resources"]["request_cpus"] == 4


def test_no_value_can_add_a_submit_command():
    with pytest.raises(SweepError):
        submit_value("true\nexecutable = /bin/sh")
    with pytest.raises(SweepError):
        submit_value("a\rb")
    with pytest.raises(SweepError):
        submit_string('x" && +Evil = "1')
    assert submit_string("demo") == '"demo"'


def test_user_template_folder_and_strict_undefined(write_grid, tmp_path):
    folder = tmp_path / "mytemplates"
    folder.mkdir()
    keep = ("log = {{ paths.event_log }}\ninitialdir = {{ paths.initialdir }}\nbatch_name = {{ sweep.name }}\n"
            "+SweepName = \"{{ sweep.name }}\"\n+SweepRunId = \"{{ run.run_id }}\"\n"
            "submit_event_notes = sweep-run {{ run.run_id }}\n"
            "job_ad_information_attrs = SweepRunId\narguments = config.yaml --run {{ run.config }}\n")  # see below
    (folder / "job.sub.j2").write_text("executable = {{ paths.wrapper }}\n+Site = \"bari\"\n" + keep + "queue\n")
    (folder / "run_job.sh.j2").write_text('#!/bin/sh\nexec {{ python }} -m sweep.job "$@"\n')
    sweep = rendered(write_grid, tmp_path, GRID + "templates: mytemplates\n")
    assert '+Site = "bari"' in sweep.runs[0].submit_text
    (folder / "job.sub.j2").write_text("executable = {{ paths.wrapper }}\nrequest_gpus = {{ resources.gpus }}\n" + keep
                                       + "queue\n")
    with pytest.raises(SweepError, match="gpus"):
        rendered(write_grid, tmp_path, GRID + "templates: mytemplates\n")


def test_written_files(write_grid, tmp_path):
    """A sweep's jobs/ folder holds one submit description and one config.yaml, whatever its number
    of runs: each run's own values travel in the DAG (its VARS), not in files of their own."""
    from sweep.submit.prepare import prepare, write_rendered

    path = write_grid(GRID)
    prepared = prepare(path, tmp_path)
    jobs_dir = write_rendered(prepared, path)
    wrapper = jobs_dir / "run_job.sh"
    assert wrapper.stat().st_mode & stat.S_IXUSR
    (submit,) = jobs_dir.glob("job-*.sub")  # named by their content (core.names)
    (config,) = jobs_dir.glob("configs/*/config.yaml")
    assert submit.read_text() == prepared.rendered.submit_text and submit == prepared.rendered.submit_path
    assert config.read_text() == prepared.rendered.config_text and config == prepared.rendered.config_path
    assert hashlib.sha256(config.read_bytes()).hexdigest().startswith(config.parent.name)
    assert hashlib.sha256(submit.read_bytes()).hexdigest()[:16] == submit.stem.removeprefix("job-")
    assert f"transfer_input_files    = {config}," in submit.read_text()
    assert not any((jobs_dir / run.run_id).exists() for run in prepared.runs)
    assert (tmp_path / "results" / "r").is_dir()
    manifest = (jobs_dir / "sweep.json").read_text()
    assert prepared.runs[0].run_id in manifest


def test_each_run_reaches_its_job_whole_through_its_vars(write_grid, tmp_path):
    """job.sub keeps the run macros; a run's VARS fill them in, and its --run text merged with the
    shared config.yaml is exactly the configuration it had as a file of its own."""
    import shlex

    import yaml

    from sweep.core import runconfig

    htcondor2 = importlib.import_module("htcondor2")
    spec = load_grid(write_grid(GRID + "params: {learning_rate: 1.0e-6, dropout: [0.1, 0.2]}\n"), tmp_path)
    sweep = render_sweep(spec, expand(spec), tmp_path)
    assert "$(sweep_run_id)" in sweep.submit_text and sweep.runs[0].run.run_id not in sweep.submit_text
    shared = yaml.safe_load(sweep.config_text)
    assert "run_id" not in shared and shared["params"]["learning_rate"] == 1e-6
    for run in sweep.runs:
        arguments = shlex.split(htcondor2.Submit(run.submit_text)["arguments"])
        assert arguments[:2] == ["config.yaml", "--run"] and len(arguments) == 3
        config = runconfig.merge(shared, runconfig.decode(arguments[2]))
        r = run.run
        assert ((config["run_id"], config["config_id"], config["name"], config["repeat"], config["seed"])
                == (r.run_id, r.config_id, r.name, r.repeat, r.seed))
        assert config["sweep"] == spec.name and config["model"] == spec.model and config["swept"] == list(spec.swept)
        assert config["params"] == run.run.params and list(config["params"]) == list(run.run.params)
        assert config == yaml.safe_load(run.config_text)
        assert set(run.submit_vars) >= {"sweep_run_id", "sweep_config_id", "sweep_seed", "sweep_run_config",
                                        "sweep_memory_mb"}
        assert "$(" not in run.submit_text


@pytest.mark.parametrize("text", ["", "!!!", "e30", "W10", "eyJ4IjoxfQ", "eyJwYXJhbXMiOjF9", "x" * 70000])
def test_a_run_part_that_is_not_ours_is_refused(text):
    """The job's --run text: what runconfig.encode writes, and nothing else (empty, not base64,
    '{}' is fine, a list, an unknown key, params not a mapping, too long)."""
    from sweep.core import runconfig

    if text == "e30":  # {}: an empty part is a part
        assert runconfig.decode(text) == {}
        return
    with pytest.raises(ValueError, match="--run"):
        runconfig.decode(text)


def test_memory_escalation_expressions(write_grid, tmp_path):
    htcondor2 = importlib.import_module("htcondor2")
    spec = load_grid(write_grid(GRID + "  memory_escalation: {max_memory: 8 GB, releases: 3}\n"), tmp_path)
    runs = expand(spec)
    sweep = render_sweep(spec, runs, tmp_path, memory_mb={runs[0].run_id: 6000})
    first, second = (htcondor2.Submit(r.submit_text) for r in sweep.runs)
    assert first["request_memory"].startswith("ifThenElse(isUndefined(MemoryUsage), 6000,")  # remembered
    assert second["request_memory"].startswith("ifThenElse(isUndefined(MemoryUsage), 5000,")
    assert "8192" in second["request_memory"]
    assert "NumJobStarts <= 3" in second["periodic_release"]
    assert "HoldReasonCode =?= 1 " not in second["periodic_release"]  # never a user's hold


@pytest.mark.parametrize("escalation, cap", [
    ("  memory_escalation: {max_memory: 8 GB}\n", 8192),
    ("  memory_escalation: true\n", 20000),  # its default max_memory: 4x request_memory
    ("", 20000),  # without escalation, what a hold taught is capped the same way
])
@pytest.mark.parametrize("native", [False, True])
def test_the_memory_a_hold_taught_is_capped_by_max_memory(write_grid, tmp_path, escalation, cap, native):
    """A job held for memory teaches 1.5x its peak, which the execute node reports: a node that
    claims terabytes must not make the next submission ask for them. The request is at most
    condor.memory_escalation.max_memory (default 4x resources.request_memory), never below the
    grid's own request."""
    htcondor2 = importlib.import_module("htcondor2")
    spec = load_grid(write_grid(GRID + escalation), tmp_path)
    runs = expand(spec)
    sweep = render_sweep(spec, runs, tmp_path, memory_mb={runs[0].run_id: 50_000_000, runs[1].run_id: 6000},
                         native_memory_retry=native)
    first, second = (htcondor2.Submit(r.submit_text) for r in sweep.runs)
    for submit, wanted in ((first, cap), (second, 6000)):
        text = submit["request_memory"]
        start = re.match(r"(?:ifThenElse\(isUndefined\(MemoryUsage\), )?(\d+)", text)
        assert start is not None and int(start.group(1)) == wanted, text
        assert "50000000" not in text


@pytest.mark.parametrize("drop", ["log", "initialdir", "+SweepName", "+SweepRunId", "submit_event_notes", "batch_name",
                                  "arguments"])
def test_a_user_template_that_drops_what_sweep_relies_on_is_refused(write_grid, tmp_path, drop):
    from sweep.core.render import BUILTIN_TEMPLATES

    folder = tmp_path / "mytemplates"
    folder.mkdir()
    lines = (BUILTIN_TEMPLATES / "job.sub.j2").read_text().splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith(drop + " ")]
    assert len(kept) == len(lines) - 1
    (folder / "job.sub.j2").write_text("".join(kept))
    (folder / "run_job.sh.j2").write_text((BUILTIN_TEMPLATES / "run_job.sh.j2").read_text())
    with pytest.raises(SweepError, match="mytemplates/job.sub.j2: the rendered submit description "
                                         f"lacks .*{re.escape(drop)} ="):
        rendered(write_grid, tmp_path, GRID + "templates: mytemplates\n")


def test_a_user_template_that_points_the_log_elsewhere_is_refused(write_grid, tmp_path):
    from sweep.core.render import BUILTIN_TEMPLATES

    folder = tmp_path / "mytemplates"
    folder.mkdir()
    text = (BUILTIN_TEMPLATES / "job.sub.j2").read_text().replace("{{ paths.event_log | submit_value }}", "my.log")
    (folder / "job.sub.j2").write_text(text)
    (folder / "run_job.sh.j2").write_text((BUILTIN_TEMPLATES / "run_job.sh.j2").read_text())
    with pytest.raises(SweepError, match="lacks what sweep relies on: log = .*events.log"):
        rendered(write_grid, tmp_path, GRID + "templates: mytemplates\n")


def test_rendering_again_rewrites_nothing_and_a_change_makes_new_versions(write_grid, tmp_path):
    """A render that changes nothing writes nothing; one that changes what the runs share writes a
    new config.yaml and submit description beside the old ones, which stay as they were: a DAG
    still running from the earlier render keeps submitting what it was submitted with."""
    from sweep.submit.prepare import prepare, write_rendered

    path = write_grid(GRID)
    jobs_dir = write_rendered(prepare(path, tmp_path), path)
    files = [p for p in jobs_dir.rglob("*") if p.is_file() and p.name != "sweep.json"]
    assert len(files) == 4  # the wrapper, the code archive, config.yaml and the submit description (two runs)
    stamps = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files}
    write_rendered(prepare(path, tmp_path), path)
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files} == stamps  # nothing changed, nothing written
    path.write_text(GRID.replace("request_memory: 5000MB", "request_memory: 6000MB"))
    write_rendered(prepare(path, tmp_path), path)
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files} == stamps  # the old versions are untouched
    new = sorted(p.name for p in jobs_dir.rglob("*")
                 if p.is_file() and not p.name.startswith("sweep.json") and p not in stamps)
    assert len(new) == 2 and new[0] == "config.yaml" and new[1].startswith("job-")  # resources; a new path
    assert (jobs_dir / "run_job.sh").stat().st_mode & 0o777 == 0o755


def test_the_job_reads_back_every_number_the_grid_gave(write_grid, tmp_path):
    """config.yaml is read by PyYAML (YAML 1.1), for which JSON's 1e-06 is a string: a learning
    rate of 1e-6 used to reach the job as '1e-06' and crash it (found by a search trial)."""
    import yaml

    text = ("sweep: r\nmodel: cnn\ndata: {path: data/d.npz}\nparams: {dropout: 1.0e-7, kernel_sizes: [5, 3]}\n"
            "axes:\n  learning_rate: [1e-6, 0.001, 3.0e-9, 2]\n")
    for run in rendered(write_grid, tmp_path, text).runs:
        config = yaml.safe_load(run.config_text)
        assert config["params"]["learning_rate"] == run.run.params["learning_rate"]
        assert isinstance(config["params"]["learning_rate"], (int, float))
        assert config["params"]["dropout"] == 1e-7 and isinstance(config["params"]["dropout"], float)


@pytest.mark.parametrize("columns", ["40", "400"])
def test_show_prints_the_submit_file_byte_for_byte_whatever_the_width(write_grid, tmp_path, capsys, monkeypatch,
                                                                        columns):
    """`sweep submit --dry-run --show` prints the file sweep would submit, not a copy wrapped to the
    terminal: a long line (the code archive's path) folded in two no longer parses."""
    from sweep.cli import main

    htcondor2 = importlib.import_module("htcondor2")
    deep = tmp_path / ("a-rather-long-project-folder-name-" * 3)
    deep.mkdir()
    monkeypatch.setenv("COLUMNS", columns)
    grid = deep / "g.yaml"
    grid.write_text(GRID)
    assert main(["--root", str(deep), "submit", str(grid), "--dry-run", "--show"]) == 0
    out = capsys.readouterr().out
    shown = out[out.index("# HTCondor submit description"):]
    shown = shown[:shown.index("\nqueue\n") + len("\nqueue\n")]  # then the first run's values, config.yaml
    lines = shown.splitlines()
    assert lines[-1] == "queue" and max(map(len, lines)) > max(int(columns), 160)  # long lines shown whole
    assert all(line.split(" = ")[0].strip() or not line for line in lines)  # no folded continuation
    transfer = next(line for line in lines if line.startswith("transfer_input_files"))
    assert transfer.endswith(".zip") and transfer.count(str(deep)) == 3  # config, data cut, code archive
    sub = htcondor2.Submit(shown)  # what was shown parses
    assert sub["transfer_input_files"] == transfer.split("=", 1)[1].strip()
    # `sweep validate` counts in good English
    one = deep / "one.yaml"
    one.write_text(GRID.replace("optimizer: [adam, sgd]", "optimizer: [adam]"))
    assert main(["--root", str(deep), "validate", str(one)]) == 0
    assert "expands to 1 configuration\n" in capsys.readouterr().out


def test_the_dag_gives_every_node_the_one_submit_description_and_its_run_s_vars(write_grid, tmp_path):
    from sweep.submit.backends.htcondor import dag_text

    spec = load_grid(write_grid(GRID), tmp_path)
    sweep = render_sweep(spec, expand(spec), tmp_path)
    text = dag_text(sweep, sweep.runs, "s1", tmp_path / "dag")
    jobs = re.findall(r"^JOB (\S+) (\S+)$", text, re.M)
    assert sorted(node for node, _ in jobs) == sorted(f"n{r.run.run_id}" for r in sweep.runs)
    assert {path for _, path in jobs} == {str(sweep.submit_path)}
    for r in sweep.runs:
        (line,) = re.findall(rf"^VARS n{r.run.run_id} (.*)$", text, re.M)
        assert dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', line)) == r.submit_vars


@pytest.mark.parametrize("value", ['a" b="c', "a\\", "$(HOME)", "x\nJOB evil /bin/sh", "a b", "a/../b"])
def test_a_vars_value_that_could_escape_its_quotes_or_expand_is_refused(value):
    from sweep.core.render import UnsafeValueError, dag_value

    with pytest.raises(UnsafeValueError):
        dag_value(value)
    assert dag_value("0123abcd-r1") == "0123abcd-r1" and dag_value("eyJh_-=") == "eyJh_-="
