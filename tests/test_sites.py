"""Site profiles and where a job's software comes from: every shipped profile renders a submit
file htcondor2.Submit parses, grid settings override a profile's, the choices made from the
runtime (+JobFlavour, +JobDurationCategory), native memory retry for a 25.2+ schedd against the
release expressions, GPUs, CVMFS setup scripts, containers and data URLs; and each mistake in
them is refused with the file, line and key."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from sweep.core.errors import GridError
from sweep.core.expand import expand
from sweep.core.grid import load_grid
from sweep.core.gridspec import merged_settings
from sweep.core.render import render_sweep, submit_commands
from sweep.submit.backends.htcondor import parse_condor_version

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.stem for p in (REPO / "sites").glob("*.yaml"))

BASE = """\
sweep: s
model: lstm
data: {path: data/d.npz}
axes:
  optimizer: [adam, sgd]
resources: {request_cpus: 2, request_memory: 3GB, runtime: RUNTIME}
"""


def grid(runtime: str = "90m", extra: str = "") -> str:
    return BASE.replace("RUNTIME", runtime) + extra


def render(write_grid, root: Path, text: str, **kwargs):
    spec = load_grid(write_grid(text), root)
    return spec, render_sweep(spec, expand(spec), root, **kwargs)


def problems(write_grid, root: Path, text: str) -> list:
    with pytest.raises(GridError) as info:
        load_grid(write_grid(text), root)
    return info.value.issues


# the environment each profile needs from the grid (ospool and cern have no shared file system)
NEEDS = {"ospool": "condor: {container_image: 'docker://tensorflow/tensorflow:2.18.0'}\n",
         "cern": "condor: {cvmfs: /cvmfs/sft.cern.ch/lcg/views/LCG_106/x86_64-el9-gcc13-opt/setup.sh}\n"}


def test_sweep_ships_the_four_profiles_the_sites_need():
    assert SHIPPED == ["cern", "local-pool", "ospool", "recas"]


@pytest.mark.parametrize("site", SHIPPED)
def test_every_shipped_profile_renders_a_submit_file_htcondor_parses(write_grid, tmp_path, site):
    htcondor2 = importlib.import_module("htcondor2")
    spec, sweep = render(write_grid, tmp_path, grid(extra=f"site: {site}\n" + NEEDS.get(site, "")),
                         code_archive="sweep-code-0.zip")
    assert spec.site.name == site and spec.site.file == str(REPO / "sites" / f"{site}.yaml")
    for run in sweep.runs:
        sub = htcondor2.Submit(run.submit_text)
        assert sub["request_cpus"] == "2" and sub["allowed_execute_duration"] == "5400"
        inputs = sub["transfer_input_files"]
        assert inputs.count(", ") == (1 if site == "recas" else 2)  # config, code (+ the model's arrays)
        if site == "recas":  # shared /lustrehome: the job reads the dataset in place
            assert "/jobs/s/data/" not in inputs
        if site == "cern":
            assert sub["MY.JobFlavour"] == '"longlunch"' and sub["MY.MaxRuntime"] == "5400"
        if site == "ospool":
            assert sub["MY.JobDurationCategory"] == '"Medium"'
            assert sub["container_image"] == "docker://tensorflow/tensorflow:2.18.0"
            assert "SWEEP_CHECKPOINT_EVERY_S=300" in sub["environment"]  # checkpoints often: preemptible slots
        if site == "local-pool":
            assert not {"MY.JobFlavour", "MY.JobDurationCategory", "container_image"} & set(sub.keys())


@pytest.mark.parametrize("runtime, flavour", [("15m", "espresso"), ("20m", "espresso"), ("21m", "microcentury"),
                                              ("3h", "workday"), ("30h", "testmatch"), ("7d", "nextweek")])
def test_the_cern_flavour_is_the_shortest_that_holds_the_runtime(write_grid, tmp_path, runtime, flavour):
    spec, sweep = render(write_grid, tmp_path, grid(runtime, "site: cern\n" + NEEDS["cern"]))
    assert submit_commands(sweep.runs[0].submit_text)["+jobflavour"] == f'"{flavour}"'


def test_a_runtime_no_flavour_holds_is_refused_at_the_runtime(write_grid, tmp_path):
    (issue,) = problems(write_grid, tmp_path, grid("8d", "site: cern\n" + NEEDS["cern"]))
    assert issue.key == "resources.runtime" and issue.line == 6 and "nextweek" in issue.message


def test_a_grid_setting_overrides_the_profile_and_the_show_says_where_each_comes_from(write_grid, tmp_path):
    text = grid("3h", "site: cern\ncondor:\n  job_flavour: tomorrow\n  cvmfs: /cvmfs/x/setup.sh\n"
                "  environment: {A: '1'}\n")
    spec, sweep = render(write_grid, tmp_path, text)
    commands = submit_commands(sweep.runs[0].submit_text)
    assert commands["+jobflavour"] == '"tomorrow"' and commands["+maxruntime"] == "10800"
    origins = {key: origin for key, _, origin in merged_settings(spec)}
    assert origins["condor.job_flavour"] == "grid" and origins["condor.max_runtime"] == "site cern"
    assert origins["data.transfer"] == "site cern" and origins["resources.request_memory"] == "grid"
    assert origins["resources.request_disk"] == "default"


def test_a_flavour_shorter_than_the_runtime_is_refused(write_grid, tmp_path):
    (issue,) = problems(write_grid, tmp_path, grid("3h", "condor: {job_flavour: longlunch}\n"))
    assert issue.key == "condor.job_flavour" and "less than resources.runtime" in issue.message


def test_a_project_profile_comes_before_the_shipped_one_and_its_mistakes_name_its_file(write_grid, tmp_path):
    (tmp_path / "sites").mkdir()
    (tmp_path / "sites" / "recas.yaml").write_text("description: ours\ncondor:\n  max_retries: 7\n")
    spec, sweep = render(write_grid, tmp_path, grid(extra="site: recas\n"))
    assert spec.site.file == str(tmp_path / "sites" / "recas.yaml") and spec.condor["max_retries"] == 7
    assert spec.data.transfer  # the shipped recas profile's data.transfer: false is not in ours
    (tmp_path / "sites" / "mine.yaml").write_text("condor:\n  max_retries: many\n  flavour: x\n")
    issues = problems(write_grid, tmp_path, grid(extra="site: mine\n"))
    mine = str(tmp_path / "sites" / "mine.yaml")
    assert {(i.file, i.line, i.key) for i in issues} == {(mine, 2, "condor.max_retries"), (mine, 3, "condor.flavour")}


def test_an_unknown_site_lists_the_known_ones(write_grid, tmp_path):
    (issue,) = problems(write_grid, tmp_path, grid(extra="site: rekas\n"))
    assert issue.key == "site" and issue.line == 7 and "did you mean 'recas'" in issue.message
    (issue,) = problems(write_grid, tmp_path, grid(extra="site: ../../etc/passwd\n"))
    assert issue.key == "site" and "expected a site profile name" in issue.message


def test_a_site_without_a_shared_file_system_needs_an_environment_and_transferred_data(write_grid, tmp_path):
    issues = problems(write_grid, tmp_path, grid(extra="site: ospool\n"))
    assert [i.key for i in issues] == ["condor"] and "container_image or condor.cvmfs" in issues[0].message
    text = BASE.replace("RUNTIME", "1h").replace("{path: data/d.npz}", "{path: data/d.npz, transfer: false}")
    issues = problems(write_grid, tmp_path, text + "site: ospool\n" + NEEDS["ospool"])
    assert [i.key for i in issues] == ["data.transfer"] and "no shared file system" in issues[0].message


def test_a_setting_the_profile_gave_is_named_as_the_profile_s(write_grid, tmp_path):
    (tmp_path / "sites").mkdir()
    (tmp_path / "sites" / "short.yaml").write_text("condor:\n  max_runtime: 10m\n")
    (issue,) = problems(write_grid, tmp_path, grid("1h", "site: short\n"))
    assert issue.key == "condor.max_runtime" and "site profile" in issue.message and "short.yaml" in issue.message


# ---------------------------------------------------------------- memory escalation, natively
ESCALATION = "condor: {memory_escalation: {max_memory: 12GB}}\n"


def test_a_25_2_schedd_gets_native_memory_retry_and_older_ones_the_expressions(write_grid, tmp_path):
    htcondor2 = importlib.import_module("htcondor2")
    _, native = render(write_grid, tmp_path, grid(extra=ESCALATION), native_memory_retry=True)
    _, old = render(write_grid, tmp_path, grid(extra=ESCALATION))
    new_sub, old_sub = htcondor2.Submit(native.runs[0].submit_text), htcondor2.Submit(old.runs[0].submit_text)
    assert new_sub["request_memory"] == "3072MB"
    assert new_sub["retry_request_memory_increase"] == "RequestMemory * 3 / 2"
    assert new_sub["retry_request_memory_max"] == "12288MB"
    assert new_sub["periodic_remove"] == "HoldReasonCode =?= 47" and "periodic_release" not in new_sub.keys()
    assert "retry_request_memory_max" not in old_sub.keys() and "MemoryUsage * 3 / 2" in old_sub["request_memory"]
    assert "HoldReasonCode =?= 34" in old_sub["periodic_release"]


@pytest.mark.parametrize("text, version", [("$CondorVersion: 23.9.6 2024-08-08 BuildID: 742617 PackageID: 23.9.6-1 $",
                                             (23, 9, 6)),
                                            ("$CondorVersion: 25.12.2 2026-10-01 $", (25, 12, 2)), ("", None)])
def test_the_schedd_version_is_read_from_its_condor_version(text, version):
    assert parse_condor_version(text) == version


# ---------------------------------------------------------------- GPUs
def test_gpus_are_requested_with_their_minimum_memory(write_grid, tmp_path):
    htcondor2 = importlib.import_module("htcondor2")
    text = grid().replace("runtime: 90m}", "runtime: 90m, request_gpus: 1, gpus_minimum_memory: 16GB}")
    spec, sweep = render(write_grid, tmp_path, text)
    sub = htcondor2.Submit(sweep.runs[0].submit_text)
    assert sub["request_gpus"] == "1" and sub["gpus_minimum_memory"] == "16384"
    assert spec.resources.as_dict()["request_gpus"] == 1
    _, cpu_only = render(write_grid, tmp_path, grid())
    assert "request_gpus" not in htcondor2.Submit(cpu_only.runs[0].submit_text).keys()


def test_gpu_memory_without_gpus_is_refused(write_grid, tmp_path):
    (issue,) = problems(write_grid, tmp_path,
                        grid().replace("runtime: 90m}", "runtime: 90m, gpus_minimum_memory: 8GB}"))
    assert issue.key == "resources.gpus_minimum_memory" and "request_gpus" in issue.message
    (issue,) = problems(write_grid, tmp_path, grid().replace("runtime: 90m}", "runtime: 90m, request_gpus: -1}"))
    assert issue.key == "resources.request_gpus"


# ---------------------------------------------------------------- where TensorFlow comes from
def test_a_cvmfs_setup_script_is_sourced_before_sweep_s_code_goes_on_the_path(write_grid, tmp_path):
    setup = "/cvmfs/sft.cern.ch/lcg/views/LCG_106/x86_64-el9-gcc13-opt/setup.sh"
    _, sweep = render(write_grid, tmp_path, grid(extra=f"condor: {{cvmfs: {setup}}}\n"), code_archive="code.zip")
    wrapper = sweep.wrapper_text
    assert wrapper.index(f". {setup} >/dev/null") < wrapper.index('PYTHONPATH="$CODE')  # the view sets PYTHONPATH
    assert "PY=python3" in wrapper and not sweep.shared_interpreter


def test_a_container_s_python_is_its_own_and_a_relative_image_is_the_project_s(write_grid, tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "tf.sif").write_bytes(b"sif")
    spec, sweep = render(write_grid, tmp_path, grid(extra="site: recas\ncondor: {container_image: images/tf.sif}\n"))
    commands = submit_commands(sweep.runs[0].submit_text)
    assert commands["container_image"] == str(tmp_path.resolve() / "images" / "tf.sif")
    assert commands["transfer_container"] == "false"  # recas: read in place from /lustrehome
    assert "PY=python3" in sweep.wrapper_text


@pytest.mark.parametrize("condor, key, words", [
    ("{cvmfs: lcg/setup.sh}", "condor.cvmfs", "absolute path"),
    ("{cvmfs: '/cvmfs/x/$(HOME)/setup.sh'}", "condor.cvmfs", "letters, digits"),
    ("{cvmfs: /cvmfs/x/setup.sh, container_image: 'docker://tf'}", "condor.cvmfs", "give one"),
    ("{container_image: 'http://example.org/tf.sif'}", "condor.container_image", "image reference"),
    ("{container_image: ../outside.sif}", "condor.container_image", "outside the project"),
    ("{container_image: images/missing.sif}", "condor.container_image", "does not exist"),
    ("{transfer_container: maybe}", "condor.transfer_container", "true or false"),
    ("{job_flavour: lunch}", "condor.job_flavour", "longlunch"),
    ("{job_duration_category: Short}", "condor.job_duration_category", "Medium"),
    ("{python: python3}", "condor.python", "absolute path"),
])
def test_each_environment_mistake_names_its_key_and_line(write_grid, tmp_path, condor, key, words):
    (issue,) = problems(write_grid, tmp_path, grid(extra=f"condor: {condor}\n"))
    assert issue.key == key and issue.line == 7 and words in issue.message, issue


def test_a_python_inside_a_container_is_not_looked_for_on_this_machine(write_grid, tmp_path):
    spec, sweep = render(write_grid, tmp_path,
                         grid(extra="condor: {container_image: 'docker://tf', python: /opt/conda/bin/python}\n"))
    assert "PY=/opt/conda/bin/python" in sweep.wrapper_text


# ---------------------------------------------------------------- data from a URL
def test_a_data_url_is_what_each_job_transfers_and_the_config_carries_the_sha_it_checks(write_grid, tmp_path):
    text = grid().replace("{path: data/d.npz}", "{path: data/d.npz, url: 'osdf:///ospool/ap40/data/me/d.npz'}")
    spec, sweep = render(write_grid, tmp_path, text, dataset_sha256="ab" * 32)
    commands = submit_commands(sweep.runs[0].submit_text)
    assert "osdf:///ospool/ap40/data/me/d.npz" in commands["transfer_input_files"]
    assert "/jobs/s/data/" not in commands["transfer_input_files"]
    assert 'file: "d.npz"' in sweep.runs[0].config_text and f'sha256: "{"ab" * 32}"' in sweep.runs[0].config_text


@pytest.mark.parametrize("data, words", [
    ("{path: data/d.npz, url: 'ftp://host/d.npz'}", "URL HTCondor can fetch"),
    ("{path: data/d.npz, url: 'osdf:///a, /etc/passwd'}", "URL HTCondor can fetch"),
    ("{path: data/d.npz, url: 'https://h/d.npz', transfer: false}", "one or the other"),
])
def test_a_bad_data_url_is_refused(write_grid, tmp_path, data, words):
    (issue,) = problems(write_grid, tmp_path, grid().replace("{path: data/d.npz}", data))
    assert issue.key == "data.url" and issue.line == 3 and words in issue.message


def test_a_data_url_without_the_local_copy_is_refused_before_anything_is_written(write_grid, tmp_path, capsys):
    from sweep.cli import main

    text = grid().replace("{path: data/d.npz}", "{path: data/d.npz, url: 'osdf:///ospool/x/d.npz'}")
    assert main(["--root", str(tmp_path), "submit", str(write_grid(text)), "--local", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "data.path (data/d.npz) must be a local copy of it" in err and "Traceback" not in err
    assert not (tmp_path / "jobs").exists()


def test_an_oversized_site_profile_is_refused_unread(write_grid, tmp_path):
    (tmp_path / "sites").mkdir()
    with open(tmp_path / "sites" / "big.yaml", "wb") as fh:
        fh.truncate(65 << 20)  # sparse: 65 MB on paper
    (issue,) = problems(write_grid, tmp_path, grid(extra="site: big\n"))
    assert issue.file.endswith("sites/big.yaml") and "larger than" in issue.message


def test_a_prepared_sweep_is_rendered_again_for_a_25_2_schedd_without_validating_again(write_grid, tmp_path):
    from sweep.submit.prepare import for_native_memory_retry, prepare

    prepared = prepare(write_grid(grid(extra=ESCALATION)), tmp_path)
    native = for_native_memory_retry(prepared, tmp_path)
    assert native.spec is prepared.spec and native.runs is prepared.runs and native.code is prepared.code
    assert [r.run.run_id for r in native.rendered.runs] == [r.run.run_id for r in prepared.rendered.runs]
    for old, new in zip(prepared.rendered.runs, native.rendered.runs, strict=True):
        assert "retry_request_memory_max" in submit_commands(new.submit_text)
        assert "retry_request_memory_max" not in submit_commands(old.submit_text)
        assert new.config_text == old.config_text
