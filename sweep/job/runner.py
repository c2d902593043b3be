"""The job process: read config.yaml, pin threads, train, write results and run.json.

Exit status: 0 trained; 1 training failed; 2 unusable configuration or dataset; 3 an interpreter
that cannot run the job (sweep.job.envcheck, checked by __main__). run.json is written in every
case (atomically), so the collector can say what happened; it is written last, and for a run that
trained it holds the sha256 of each output (records.runinfo.DIGESTED), which `sweep collect`
checks, and where the run comes from (config.yaml's `provenance`, the HTCondor ads' versions). A
config.yaml that names a `step` is a chain's simulation or evaluation job instead (sweep.job.step,
chosen by __main__).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import socket
import sys
import traceback
from pathlib import Path
from typing import Any

import yaml

from ..core.version import __version__
from ..core import runconfig
from ..core.errors import InputError
from ..core.names import JOB_EXIT_BAD_INPUT
from ..core.states import RunState
from ..fsutil import file_digest
from ..physics.tfimport import import_tensorflow
from ..records.metrics import write_metrics
from ..records.runinfo import (DIGESTED, CodeOrigin, DatasetIdentity, Device, Interpreter, Provenance, RunInfo,
                                Threads, write_run_info)
from . import resources
from .phases import PhaseClock

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, JOB_EXIT_BAD_INPUT
REQUIRED = ("sweep", "model", "run_id", "config_id", "seed", "params", "data")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def software_versions() -> dict[str, str]:
    """module -> version: Python, sweep, and those of TensorFlow, Keras, numpy and scikit-learn that
    this process has imported ("?" for one without __version__)."""
    versions = {"python": platform.python_version(), "sweep": __version__}
    for module in ("tensorflow", "keras", "numpy", "sklearn"):
        mod = sys.modules.get(module)
        if mod is not None:
            versions[module] = getattr(mod, "__version__", "?")
    return versions


def code_origin() -> CodeOrigin:
    """Where this job's sweep code came from: the archive the submit node shipped with the job
    (its sha256), or a folder (a checkout or site-packages, when run without the archive)."""
    location = Path(__file__).parent.parent.parent  # the archive (zipimport) or the folder holding sweep/
    if location.suffix == ".zip" and location.is_file():
        return CodeOrigin(archive=location.name, sha256=file_digest(location)["sha256"], loaded_from=str(location))
    return CodeOrigin(folder=str(location))


def training_device(tf) -> Device:
    """What TensorFlow trains on: the first GPU it sees (HTCondor hands a job the GPUs it was
    given, through CUDA_VISIBLE_DEVICES), else the CPU; with the GPUs' names."""
    gpus = tf.config.list_physical_devices("GPU")
    names = []
    for gpu in gpus:
        try:
            names.append(tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name))
        except (ValueError, RuntimeError):  # pragma: no cover - no details for this device
            names.append(gpu.name)
    return Device(trained_on="GPU:0" if gpus else "CPU", gpus=names,
                  cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"))


def job_starts() -> int | None:
    """How many times HTCondor has started this job, this start included (restarts after a
    checkpoint exit are not starts); None outside HTCondor. The job ad the starter hands over
    (_CONDOR_JOB_AD) counts the starts before this one (real pool: 1 in a job's second start)."""
    path = os.environ.get("_CONDOR_JOB_AD")
    if not path:
        return None
    try:
        for line in Path(path).read_text(errors="replace").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "NumJobStarts":
                return int(value.strip()) + 1
    except (OSError, ValueError):
        return None
    return None


def ad_condor_version(variable: str) -> str | None:
    """The HTCondor version ("23.9.6") of the ClassAd file the starter names in the environment
    variable `variable` (_CONDOR_JOB_AD: the HTCondor that queued the job; _CONDOR_MACHINE_AD:
    the execute node's), from its CondorVersion; None outside HTCondor or when the ad has none."""
    path = os.environ.get(variable)
    if not path:
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition("=")
                if key.strip().lower() == "condorversion":
                    match = re.search(r"\d+\.\d+\.\d+", value)
                    return match.group(0) if match else None
    except OSError:
        return None
    return None


def run_provenance(config: dict[str, Any]) -> Provenance | None:
    """Where this run comes from: what the submit side put in config.yaml's `provenance` (the
    project's git commit and whether it was dirty, the submit host), and the HTCondor versions of
    the job's and the machine's ads; None when nothing is known."""
    given = config.get("provenance")
    given = given if isinstance(given, dict) else {}

    def text(key: str) -> str | None:
        value = given.get(key)
        return value[:200] if isinstance(value, str) and value else None

    dirty = given.get("dirty")
    found = Provenance(commit=text("commit"), dirty=dirty if isinstance(dirty, bool) else None,
                       submit_host=text("submit_host"), submit_condor=ad_condor_version("_CONDOR_JOB_AD"),
                       execute_condor=ad_condor_version("_CONDOR_MACHINE_AD"))
    return found if any(v is not None for v in vars(found).values()) else None


def output_digests(folder: Path) -> dict[str, str] | None:
    """output name -> the sha256 of its content, for each output of DIGESTED the job wrote into
    `folder` (called once they are final, before run.json is written); None when there is none."""
    digests = {}
    for name in DIGESTED:
        path = folder / name
        if path.is_symlink() or not path.is_file():
            continue
        try:
            digests[name] = file_digest(path)["sha256"]
        except OSError:  # pragma: no cover - vanished while read: nothing to vouch for
            continue
    return digests or None


def load_config(path: Path, run: str | None = None) -> dict[str, Any]:
    """The run's configuration: config.yaml, merged with the run's own part when `run` (the text
    of the job's --run argument, sweep.core.runconfig) is given.

    Raises:
        OSError: it cannot be read; yaml.YAMLError: it is not YAML; ValueError: it is not a mapping,
        `run` is not a run's part, or the result lacks a key of REQUIRED.
    """
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a mapping")
    if run is not None:
        config = runconfig.merge(config, runconfig.decode(run))
    missing = [k for k in REQUIRED if k not in config]
    if missing:
        raise ValueError(f"{path}: missing keys {', '.join(missing)}")
    return config


def received_dataset(data: dict[str, Any], data_path: Path) -> DatasetIdentity:
    """The identity of the dataset a job is about to train on, checked.

    A dataset fetched from data.url comes from a server sweep does not run: its identity is the
    sha256 of the bytes received, compared with the digest the submit side computed from
    data.path (the config's data.sha256); what the file's own metadata says (a per-model file's
    `subset_of`) is not believed. Without data.url the file came from the submit side (HTCondor's
    transfer or a shared file system), and a per-model file stands for the dataset it was cut from.

    Args:
        data: the config's data section (file, path; url and sha256 when fetched).
        data_path: the file the job found (training.resolve_data_path).

    Returns:
        The dataset's file name, sha256 and size.

    Raises:
        InputError: a fetched dataset without the submit side's sha256, or one whose bytes differ.
        OSError: the file cannot be read.
    """
    from ..physics.datasets import dataset_identity

    expected = data.get("sha256")
    if data.get("url"):
        if not expected:
            raise InputError(f"the dataset comes from data.url ({data['url']}) but the configuration carries no "
                             "sha256 to check it against (render the sweep again with `sweep submit`)")
        digest = file_digest(data_path)
        identity = {"file": data_path.name, "sha256": digest["sha256"], "size": digest["size"]}
    else:
        identity = dataset_identity(data_path)
    dataset = DatasetIdentity(file=identity["file"], sha256=identity["sha256"], size=identity["size"])
    if expected and dataset.sha256 != expected:
        # fetched from data.url: a copy (or a cache of one) that is not the sweep's dataset
        raise InputError(f"the dataset this job received ({data_path.name}, sha256 "
                         f"{dataset.sha256[:16]}...) is not the sweep's (sha256 {expected[:16]}...): "
                         "the copy at data.url differs from data.path; upload the current file")
    return dataset


def main(argv: list[str] | None = None) -> int:
    """`python -m sweep.job CONFIG [--run PART] [--output-dir DIR]`: train the run CONFIG describes
    (with PART, the run's own part of it: CONFIG is then what the sweep's runs share); its results
    and run.json go to DIR (default: the current folder).

    Returns:
        The exit status: 0 trained (or stopped by a search's pruner), 1 training failed, 2 an
        unusable configuration or dataset, checkpoint.CHECKPOINT_EXIT_CODE when HTCondor is to save
        the checkpoint and start the job again.
    """
    parser = argparse.ArgumentParser(prog="python -m sweep.job", description=__doc__)
    parser.add_argument("config", type=Path, help="the run's config.yaml (a sweep's: what its runs share)")
    parser.add_argument("--run", default=None, help="the run's own part of its configuration (sweep.core.runconfig)")
    parser.add_argument("--output-dir", type=Path, default=Path.cwd(),
                        help="where results go (default: the current folder, HTCondor's scratch folder)")
    args = parser.parse_args(argv)
    out_dir = args.output_dir
    clock = PhaseClock()
    record = RunInfo(status=RunState.RUNNING, started=_now(), host=socket.gethostname(), pid=os.getpid(),
                     argv=list(sys.argv))

    def finish(status: RunState, code: int, error: str | None = None) -> int:
        record.status, record.exit_code, record.finished = status, code, _now()
        record.software = software_versions()
        record.phases = clock.phases() or None
        if status in (RunState.OK, RunState.PRUNED):  # its outputs are final: what collect checks them against
            record.outputs = output_digests(out_dir)
        if error:
            record.error = error
        try:
            start = dt.datetime.fromisoformat(record.started or "")
            record.duration_s = (dt.datetime.fromisoformat(record.finished) - start).total_seconds()
        except ValueError:  # pragma: no cover
            pass
        write_run_info(out_dir, record)
        return code

    try:
        config = load_config(args.config, args.run)
        record.config_sha256 = file_digest(args.config)["sha256"]  # which version of it (core.names)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        print(f"sweep.job: cannot use {args.config}: {exc}", file=sys.stderr)
        return finish(RunState.FAILED, EXIT_BAD_INPUT, f"bad configuration: {exc}")
    record.run_id, record.config_id, record.sweep = (str(config["run_id"]), str(config["config_id"]),
                                                     str(config["sweep"]))
    record.seed, record.model, record.code = config["seed"], str(config["model"]), code_origin()
    record.interpreter = Interpreter(executable=sys.executable, prefix=sys.prefix)
    record.provenance = run_provenance(config)

    cpus, source = resources.allocated_cpus(config.get("resources", {}).get("request_cpus"))
    intra, inter = resources.thread_settings(cpus)
    resources.apply_before_import(intra, inter)
    record.threads = Threads(cpus=cpus, cpus_source=source, intra_op=intra, inter_op=inter)
    print(f"sweep.job {config['run_id']} ({config.get('name', '')}): {cpus} CPU(s) from {source}; "
          f"TensorFlow intra-op {intra}, inter-op {inter}", flush=True)

    from . import training  # imports numpy; TensorFlow comes in with keras below

    try:
        # the inputs first: a job given the wrong dataset (or none) ends before TensorFlow starts
        with clock.phase("data"):
            data_path = training.resolve_data_path(config["data"], Path.cwd())
            # what this run was trained on (the dataset a per-model file was cut from): a later submit
            # reruns the run when the dataset has changed
            dataset = record.dataset = received_dataset(config["data"], data_path)
        if data_path.parent == Path.cwd():
            dataset.transferred_bytes = data_path.stat().st_size
            if config["data"].get("url"):  # by a transfer plugin on the execute node, not through the schedd
                dataset.fetched_from = config["data"]["url"]

        tf = import_tensorflow()  # quietly, and without pandas and scikit-learn (physics/tfimport.py)

        if intra:
            tf.config.threading.set_intra_op_parallelism_threads(intra)
        if inter:
            tf.config.threading.set_inter_op_parallelism_threads(inter)
        record.device = training_device(tf)
        clock.startup_done()
        metrics = training.train(config, data_path, out_dir, log=lambda m: print(m, flush=True),
                                 dataset_sha256=dataset.sha256, clock=clock)
        metrics.software = software_versions()
        metrics.threads = record.threads
        metrics.dataset = dataset
        with clock.phase("output"):
            write_metrics(out_dir, metrics)
    except training.checkpoint.CheckpointExit as exc:  # HTCondor saves checkpoint/ and starts the job again
        print(f"sweep.job: {exc}; exit {training.checkpoint.CHECKPOINT_EXIT_CODE} for HTCondor to save it",
              flush=True)
        return training.checkpoint.CHECKPOINT_EXIT_CODE
    except InputError as exc:  # an unusable dataset (or any input error): exit 2, which is never retried
        print(f"sweep.job: {exc}", file=sys.stderr)
        return finish(RunState.FAILED, EXIT_BAD_INPUT, str(exc))
    except Exception as exc:  # noqa: BLE001 - any training failure is reported, not hidden
        traceback.print_exc()
        return finish(RunState.FAILED, EXIT_FAILED, f"{type(exc).__name__}: {exc}")
    if metrics.pruned is not None:  # a search trial its driver stopped: exit 0, no test metrics
        record.pruned_at_epoch = metrics.pruned.at_epoch
        record.job_starts = job_starts()
        return finish(RunState.PRUNED, EXIT_OK)
    record.best_epoch = metrics.best_epoch
    record.job_starts = job_starts()
    record.resumed_from_epoch = metrics.resumed_from_epoch
    return finish(RunState.OK, EXIT_OK)
