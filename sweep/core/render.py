"""Render submit files, job configurations and the job wrapper from Jinja templates.

Pure: returns text keyed by path; writing happens in the submit stage (sweep.submit.prepare).
Jinja runs with StrictUndefined, so a template that names something we do not provide fails
loudly. Values that land in a submit file pass through filters that refuse anything able to
start a new submit command (newlines, control characters) or to break out of a quoted string.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from .version import __version__
from . import names, runconfig
from .errors import RenderError, printable
from .expand import RunSpec
from .gridspec import GridSpec
from .names import SweepPaths
from .schema import CONTROL_CHARS_RE, SAFE_PATH_RE, SUBMIT_MACRO_RE

#: The default templates: the checkout's templates/ (the copy users edit), or the wheel's copy.
BUILTIN_TEMPLATES = names.shipped_folder("templates")
#: What the job wrapper and the DAG's collect node put on PYTHONPATH: the checkout, for execute
#: nodes that share its file system; nothing for an installed sweep (PYTHONPATH=site-packages
#: would put every package of this Python ahead of the standard library of another one).
CHECKOUT = None if names.INSTALLED else names.PACKAGE_ROOT


def to_yaml(value: dict[str, Any], indent: str = "") -> str:
    """Block YAML for a configuration: nested mappings as blocks, everything else as JSON, which
    is valid YAML flow syntax. Ten times faster than yaml.dump (its representer is pure Python),
    which matters when a sweep renders thousands of configurations."""
    lines = []
    for key, item in value.items():
        if isinstance(item, dict) and item:
            lines.append(f"{indent}{key}:\n{to_yaml(item, indent + '  ')}")
        else:
            lines.append(f"{indent}{key}: {_flow(item)}\n")
    return "".join(lines)


def _flow(value: Any) -> str:
    """A value as YAML flow text that PyYAML (YAML 1.1, what the job reads with) parses back to
    the same value. JSON's 1e-06 is not a float to YAML 1.1, which needs a dot in the mantissa
    (1.0e-06): written as JSON, a learning rate of 1e-6 reached the job as the string '1e-06'."""
    if isinstance(value, float) and not isinstance(value, bool):
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_flow(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


class SubmitMacro(str):
    """A submit macro, ``$(name)``, that HTCondor fills in for each run from the DAG's VARS (or a
    direct submission's item data). It is sweep's own text, so the quoting filters pass it as it is."""


class UnsafeValueError(RenderError):
    """A value that could change the structure of a submit file or a shell line."""


def submit_value(value: Any) -> str:
    """The value as text for an unquoted submit-file value.

    Raises:
        UnsafeValueError: when it holds a line break or control character (which could add a
            submit command), ends in a backslash (HTCondor would join the next line to it), or
            holds a submit macro such as $(Cluster) or $ENV(HOME) (HTCondor would expand it).
    """
    if isinstance(value, SubmitMacro):
        return str(value)
    text = str(value)
    shown = printable(text[:80])
    if CONTROL_CHARS_RE.search(text):
        raise UnsafeValueError(f"refusing to write {shown!r} into a submit file: it contains a line break or "
                               "control character that could add a submit command")
    if text.rstrip().endswith("\\"):
        raise UnsafeValueError(f"refusing to write {shown!r} into a submit file: a trailing backslash would join "
                               "the next submit command to it")
    if SUBMIT_MACRO_RE.search(text):
        raise UnsafeValueError(f"refusing to write {shown!r} into a submit file: HTCondor would expand its "
                               "submit macro ($(...), $ENV(...), $RANDOM_...)")
    return text


def submit_string(value: Any) -> str:
    """The value as a double-quoted submit-file (ClassAd) string.

    Raises:
        UnsafeValueError: when it holds a control character, a quote or a backslash.
    """
    text = submit_value(value)
    if isinstance(value, SubmitMacro):
        return f'"{text}"'
    if '"' in text or "\\" in text or "'" in text:
        raise UnsafeValueError(f"refusing to write {text!r} as a quoted submit-file string: it contains a quote "
                               "or backslash")
    return f'"{text}"'


#: What a run's submit macro may take (dag_value).
_VAR_VALUE = re.compile(r"[A-Za-z0-9_.+=-]*")


def dag_value(value: str) -> str:
    """`value` as it goes between the quotes of a DAG file's ``VARS node macro="value"`` and into a
    submit macro: only letters, digits and ``_ . + - =`` (what render_sweep gives a run: ids,
    names, numbers, core.runconfig's text), so nothing needs escaping and nothing can end the
    quotes, add a DAG or submit command, or expand as a macro.

    Raises:
        UnsafeValueError: any other character.
    """
    if not _VAR_VALUE.fullmatch(value):
        raise UnsafeValueError(f"refusing {printable(value[:80])!r} as a DAG's VARS value: only letters, digits "
                               "and _ . + - = are given to a run's submit macros")
    return value


def shell_quote(value: Any) -> str:
    """The value quoted for /bin/sh (after the submit_value check)."""
    return shlex.quote(submit_value(value))


#: What job.sub may use of a run (the template's ``run.<key>``) and the submit macro each one is.
#: The description is rendered once per sweep; the DAG's VARS give every node its values, which
#: are letters, digits and ``_ . + - =`` only (run ids, names, numbers, core.runconfig's text).
RUN_MACROS = {"run_id": "sweep_run_id", "config_id": "sweep_config_id", "name": "sweep_run_name",
              "seed": "sweep_seed", "repeat": "sweep_repeat", "request_memory_mb": "sweep_memory_mb",
              "config": "sweep_run_config"}
#: A search trial's Optuna trial number (+SweepTrial).
TRIAL_MACRO = "sweep_trial"


@dataclass(frozen=True)
class SweepFiles:
    """The files every run of a sweep shares: its one submit description (with the run macros)
    and the shared part of every run's configuration."""

    submit_path: Path  # jobs/<sweep>/job-<digest>.sub (names.SweepPaths.submit_description)
    submit_text: str
    config_path: Path  # jobs/<sweep>/configs/<digest>/config.yaml, transferred to every job
    config: dict[str, Any]  # the shared part (core.runconfig)
    config_text: str


#: The first line of a run's whole configuration as a config.yaml (RenderedRun.config_text, a best run's copy).
RESOLVED_HEADER = "# Resolved configuration of one run, read by `python -m sweep.job config.yaml`.\n"
#: The first line of a sweep's config.yaml.
CONFIG_HEADER = ("# What every run of the sweep shares; `python -m sweep.job config.yaml --run <the run's part>` "
                 "reads it.\n")


@dataclass
class RenderedRun:
    """One run: where its results go, its own part of its configuration, and the values the
    sweep's submit macros take for it (nothing of its own is written: it travels in the DAG)."""

    run: RunSpec
    results_dir: Path
    part: dict[str, Any]  # the run's own part of its configuration (core.runconfig.run_part)
    submit_vars: dict[str, str]  # submit macro -> value: the DAG node's VARS, a submission's item data
    files: SweepFiles = field(repr=False)

    @property
    def config_argument(self) -> str:
        """The text of the job's ``--run`` argument (core.runconfig.encode of `part`)."""
        return self.submit_vars[RUN_MACROS["config"]]

    @property
    def config(self) -> dict[str, Any]:
        """The run's whole configuration, as its job works with it."""
        return runconfig.merge(self.files.config, self.part)

    @property
    def config_text(self) -> str:
        """The run's whole configuration as a config.yaml that the job reads without ``--run``
        (sweep reproduce, tests)."""
        return RESOLVED_HEADER + to_yaml(self.config)

    @property
    def submit_text(self) -> str:
        """The sweep's job.sub with this run's macros filled in: what HTCondor makes of it for this
        run's job (to show and to check; the file on disk keeps the macros)."""
        text = self.files.submit_text
        for macro, value in self.submit_vars.items():
            text = text.replace(f"$({macro})", value)
        return text

    @property
    def config_path(self) -> Path:
        """The shared config.yaml every job receives (SweepFiles.config_path)."""
        return self.files.config_path

    @property
    def submit_path(self) -> Path:
        """The sweep's one submit description (SweepFiles.submit_path)."""
        return self.files.submit_path


@dataclass
class RenderedSweep:
    """A sweep's files as text: the wrapper, the shared submit description and configuration,
    and every run's values; nothing written yet."""

    spec: GridSpec
    paths: SweepPaths
    wrapper_text: str
    files: SweepFiles
    runs: list[RenderedRun]
    #: the archive of sweep's code each job transfers (None: the jobs need the checkout)
    code_archive: str | None = None
    #: the interpreter the jobs run, and whether it is this machine's (the shared one)
    python: str = ""
    shared_interpreter: bool = True

    @property
    def jobs_dir(self) -> Path:
        """jobs/<sweep>/."""
        return self.paths.jobs(self.spec.name)

    @property
    def results_dir(self) -> Path:
        """results/<sweep>/."""
        return self.paths.results(self.spec.name)

    @property
    def submit_path(self) -> Path:
        """jobs/<sweep>/job-<digest>.sub."""
        return self.files.submit_path

    @property
    def submit_text(self) -> str:
        """job.sub's text, with the run macros."""
        return self.files.submit_text

    @property
    def config_path(self) -> Path:
        """jobs/<sweep>/configs/<digest>/config.yaml."""
        return self.files.config_path

    @property
    def config_text(self) -> str:
        """config.yaml's text: the shared part of every run's configuration."""
        return self.files.config_text


def make_environment(template_dir: Path | None) -> jinja2.Environment:
    """Jinja for the job files: the grid's own template folder (`template_dir`, None: none)
    first, then the built-in one."""
    search = [str(template_dir)] if template_dir else []
    search.append(str(BUILTIN_TEMPLATES))
    # no HTML escaping: a value reaches these files through the quoting filters below
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(search), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                             autoescape=False)  # noqa: S701 - submit files and shell scripts, not HTML
    env.filters["submit_value"] = submit_value
    env.filters["submit_string"] = submit_string
    env.filters["shell_quote"] = shell_quote
    return env


def shared_config(spec: GridSpec, dataset_sha256: str | None = None,
                  provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """The part of a run's configuration every run of the grid `spec` shares (config.yaml):
    the model, the fixed hyperparameters, data, resources, ranking; a dataset fetched from
    data.url with the digest to check it against; the submit side's `provenance`."""
    config: dict[str, Any] = {
        "sweep": spec.name,
        "model": spec.model,
        "params": dict(spec.fixed),
        "swept": list(spec.swept),
        "data": {"path": str(spec.data.path),
                 "file": (spec.data.url.rstrip("/").rsplit("/", 1)[-1] if spec.data.url
                          else names.transfer_data_name(spec.data.path, spec.model) if spec.data.transfer
                          else spec.data.path.name),
                 "balanced": spec.data.balanced,
                 "max_samples": spec.data.max_samples, "seed": spec.seed},
        "resources": spec.resources.as_dict(),
        "ranking": [list(r) for r in spec.ranking],
        "grid": spec.file,
        "sweep_version": __version__,
    }
    if spec.data.url:  # what the job fetched, and the digest it must have
        config["data"].update(url=spec.data.url, sha256=dataset_sha256)
    if provenance:
        config["provenance"] = provenance
    return config


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


#: The interpreter a job runs inside a container or after a setup script (condor.cvmfs), unless
#: condor.python names one: whatever that environment puts first on PATH.
ENVIRONMENT_PYTHON = "python3"


def job_interpreter(spec: GridSpec, default: str | None = None) -> tuple[str, bool]:
    """(the interpreter the jobs run, whether it is the submit node's own): condor.python; else
    python3 from the container or the setup script's PATH; else `default` or this Python."""
    if spec.condor.get("python"):
        return spec.condor["python"], False
    if spec.condor.get("container_image") or spec.condor.get("cvmfs"):
        return ENVIRONMENT_PYTHON, False
    return default or sys.executable, True


def memory_cap_mb(spec: GridSpec) -> int:
    """The most memory (MB) a job of the grid `spec` asks for after memory holds:
    condor.memory_escalation.max_memory, by default 4x resources.request_memory (also without
    memory_escalation, for the memory a resubmission learnt from a hold). What a hold teaches
    comes from the execute node's report of the job's peak, which sweep does not trust."""
    escalation = spec.condor.get("memory_escalation") or {}
    return int(escalation.get("max_mb") or 4 * spec.resources.request_memory_mb)


#: HTCondor's own disk retry (retry_request_disk, a schedd of 25.10 or newer) asks for 1.5x the
#: request at each eviction for disk, up to this many times resources.request_disk.
DISK_RETRY_CAP = 4


def disk_cap_mb(spec: GridSpec) -> int:
    """The most disk (MB) a job of the grid `spec` asks for after evictions for exceeding its disk
    (HTCondor's own retry_request_disk): DISK_RETRY_CAP x resources.request_disk."""
    return DISK_RETRY_CAP * spec.resources.request_disk_mb


def render_sweep(spec: GridSpec, runs: list[RunSpec], root: Path, python: str | None = None,
                 memory_mb: dict[str, int] | None = None, code_archive: str | None = None,
                 native_memory_retry: bool = False, dataset_sha256: str | None = None,
                 trials: dict[str, int] | None = None, provenance: dict[str, Any] | None = None,
                 native_disk_retry: bool = False) -> RenderedSweep:
    """Render the sweep's files in memory: the wrapper, one submit description for every run
    (job.sub, with the run macros of RUN_MACROS), the shared part of every run's configuration
    (config.yaml), and each run's values of the macros (its own part of its configuration among
    them, core.runconfig). The template is rendered once, whatever the number of runs.

    Args:
        spec: the validated grid.
        runs: its runs (from expand).
        root: the project folder; every path in the files is under it.
        python: the execute side's interpreter (default: the grid's condor.python, else this one).
        memory_mb: per-run request_memory learnt from earlier attempts (1.5x the peak an execute
            node reported at a memory hold), used where it is larger than the grid's request, and
            at most memory_cap_mb(spec).
        code_archive: the file name, in jobs/<sweep>/, of the archive of sweep's code that each
            job transfers and runs (sweep.submit.codebundle); without it the wrapper puts the
            checkout on the job's path, and the job runs only where the checkout is visible.
        native_memory_retry: memory escalation by HTCondor's retry_request_memory_* (a schedd
            of 25.2 or newer) instead of release expressions.
        native_disk_retry: with native_memory_retry, also HTCondor's retry_request_disk (a schedd
            of 25.10 or newer): a job evicted for exceeding its disk runs again with 1.5x its
            request, at most disk_cap_mb(spec).
        dataset_sha256: the dataset's digest, which a job that fetches it from data.url checks.
        trials: a search's runs: run id -> Optuna trial number (+SweepTrial; every run of a
            search needs one). With a pruner the jobs report its value after each epoch (their
            part's `progress`) and talk to the driver by chirp (want_io_proxy, which no grid's
            job is given; condor.io_proxy: false forbids it and the validator refuses it with a
            pruner).
        provenance: what the submit side knows of where the runs come from (the project's git
            commit and whether it was dirty, the submit host: sweep.submit.prepare), written as
            config.yaml's `provenance` for the job to copy into run.json. Not part of a run's
            identity (its ids come from its parameters, sweep.core.expand).

    Returns:
        The sweep's files as text, with the paths they go to, and every run's values.

    Raises:
        RenderError: on a template problem, an unsafe value, a project folder whose path
            HTCondor files cannot carry, data.url without dataset_sha256, or a search's run
            without its trial number.
    """
    memory_mb = memory_mb or {}
    trials = trials or {}
    if spec.data.url and not (isinstance(dataset_sha256, str) and re.fullmatch(r"[0-9a-f]{64}", dataset_sha256)):
        # every job that fetches the dataset checks what it got against this digest
        raise RenderError(f"{spec.file}: data.url ({spec.data.url}) needs the sha256 of data.path for the jobs to "
                          f"check what they fetch; got {dataset_sha256!r}")
    paths = SweepPaths(root.resolve())
    if not SAFE_PATH_RE.fullmatch(str(paths.root)):
        # the root's paths go into submit files, DAG files and transfer lists, which split on spaces/commas
        raise RenderError(f"the project folder {paths.root} has characters HTCondor files cannot carry (spaces, "
                          "commas, quotes): use a folder path of letters, digits and _ . / : + @ = -")
    env = make_environment(spec.templates)
    python, shared = job_interpreter(spec, python)
    search = spec.search
    # chirp (want_io_proxy) only where sweep needs it: a pruned search's per-epoch reports
    io_proxy = (search is not None and search.pruner != "none" and spec.condor.get("io_proxy", True) is not False)
    jobs_dir, results_dir = paths.jobs(spec.name), paths.results(spec.name)
    code_path = str(jobs_dir / code_archive) if code_archive else ""
    config = shared_config(spec, dataset_sha256, provenance)
    config_text = CONFIG_HEADER + to_yaml(config)
    config_path = paths.shared_config(spec.name, _sha256(config_text))
    try:
        submit_template = env.get_template("job.sub.j2")
        wrapper_text = _render_wrapper(env, spec, python, code_path, spec.name)
        escalation = spec.condor.get("memory_escalation")
        cap_mb = memory_cap_mb(spec)
        if escalation:
            escalation = {**escalation, "native": native_memory_retry, "max_mb": cap_mb,
                          # RequestDisk is in KiB: what retry_request_disk's expression compares with
                          "disk_max_kb": disk_cap_mb(spec) * 1024 if native_memory_retry and native_disk_retry
                          else None}
        # what HTCondor transfers: the model's arrays (the data step writes them), or nothing when
        # the job reads the dataset in place on a shared file system
        transfer = paths.transfer_data(spec.name, spec.data.path, spec.model) if spec.data.transfer else None
        initialdir = SubmitMacro(f"{results_dir}/$({RUN_MACROS['run_id']})")
        submit_text = submit_template.render(
            run={key: SubmitMacro(f"$({macro})") for key, macro in RUN_MACROS.items()},
            paths={"wrapper": str(paths.wrapper(spec.name)), "config": str(config_path),
                   "data": spec.data.url or (str(transfer) if transfer else ""), "code": code_path,
                   "initialdir": initialdir, "event_log": str(paths.event_log(spec.name))},
            trial=SubmitMacro(f"$({TRIAL_MACRO})") if search is not None else None, io_proxy=io_proxy,
            memory_escalation=escalation, sweep={"name": spec.name, "model": spec.model},
            resources=spec.resources, condor=condor_context(spec.condor), version=__version__)
    except jinja2.TemplateError as exc:
        where = f" ({exc.filename}:{exc.lineno})" if isinstance(exc, jinja2.TemplateSyntaxError) else ""
        raise RenderError(f"template error{where}: {exc}") from None
    _require_sweep_lines(submit_text, submit_template.filename, spec.name, {"log": str(paths.event_log(spec.name)),
                                                                            "initialdir": initialdir})
    if spec.condor.get("io_proxy") is False and "want_io_proxy" in submit_commands(submit_text):
        raise RenderError(f"{submit_template.filename}: the rendered submit file sets want_io_proxy, which the "
                          "grid forbids (condor.io_proxy: false): remove it from the template")
    files = SweepFiles(submit_path=paths.submit_description(spec.name, _sha256(submit_text)), submit_text=submit_text,
                       config_path=config_path, config=config, config_text=config_text)
    rendered = []
    for run in runs:
        trial = trials.get(run.run_id)
        if search is not None and trial is None:
            raise RenderError(f"run {run.run_id} of the search {spec.name} has no trial number to render it with")
        progress = {"column": search.prune_on[0], "trial": trial} if io_proxy and search is not None else None
        part = runconfig.part_of(run, progress)
        values = {"run_id": run.run_id, "config_id": run.config_id, "name": run.name, "seed": run.seed,
                  "repeat": run.repeat, "config": runconfig.encode(part),
                  "request_memory_mb": max(spec.resources.request_memory_mb, min(memory_mb.get(run.run_id, 0), cap_mb))}
        submit_vars = {RUN_MACROS[key]: str(value) for key, value in values.items()}
        if trial is not None:
            submit_vars[TRIAL_MACRO] = str(int(trial))
        try:  # by construction never: ids are hex, names are readable_name's, the part is base64
            for value in submit_vars.values():
                dag_value(value)
        except UnsafeValueError as exc:
            raise UnsafeValueError(f"run {run.run_id}: {exc}") from None
        rendered.append(RenderedRun(run=run, results_dir=results_dir / run.run_id, part=part,
                                    submit_vars=submit_vars, files=files))
    return RenderedSweep(spec=spec, paths=paths, wrapper_text=wrapper_text, files=files, runs=rendered,
                         code_archive=code_archive, python=python, shared_interpreter=shared)


def _render_wrapper(env: jinja2.Environment, spec: GridSpec, python: str, code_path: str, label: str) -> str:
    return env.get_template("run_job.sh.j2").render(
        python=python, package_root=str(CHECKOUT or ""), code_archive=code_path,
        code_archive_prefix=names.CODE_ARCHIVE_PREFIX, cvmfs=spec.condor.get("cvmfs") or "", sweep=label,
        version=__version__)


def render_wrapper(spec: GridSpec, code_archive: Path, label: str) -> str:
    """The job wrapper (run_job.sh.j2) of a grid's jobs, for another job that must run where and
    how they run (a chain's simulation and evaluation jobs): the grid's interpreter, setup
    script and templates, sweep's code from `code_archive` (transferred with the job).

    Raises:
        RenderError: a template problem.
    """
    python, _ = job_interpreter(spec)
    try:
        return _render_wrapper(make_environment(spec.templates), spec, python, str(code_archive), label)
    except jinja2.TemplateError as exc:
        raise RenderError(f"template error: {exc}") from None


_SUBMIT_LINE = re.compile(r"^\s*([+A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*?)\s*$")


def submit_commands(text: str) -> dict[str, str]:
    """The `key = value` commands of a submit description, keys lower-cased, MY.X spelt +X."""
    out = {}
    for line in text.splitlines():
        m = _SUBMIT_LINE.match(line)
        if m and not line.lstrip().startswith("#"):
            key = m.group(1).lower()
            out["+" + key[3:] if key.startswith("my.") else key] = m.group(2)
    return out


def _require_sweep_lines(text: str, template: str | None, sweep: str, paths: dict[str, str]) -> None:
    """The submit description must keep what sweep relies on: the sweep's event log (collect,
    status, memory escalation read it), each run's results folder, the attributes and note that
    tie a job to its sweep and run (duplicate detection, status), and the run's part of its
    configuration in the job's arguments. A user template that drops one would break those
    silently.

    Raises:
        RenderError: naming the template and what is missing or changed.
    """
    commands = submit_commands(text)
    run_id = f"$({RUN_MACROS['run_id']})"
    wanted = {"log": paths["log"], "initialdir": paths["initialdir"],
              f"+{names.ATTR_SWEEP.lower()}": f'"{sweep}"', f"+{names.ATTR_RUN.lower()}": f'"{run_id}"'}
    problems = [f"{key} = {value}" for key, value in wanted.items() if commands.get(key) != value]
    if f"{names.RUN_NOTE_PREFIX} {run_id}" not in commands.get("submit_event_notes", ""):
        problems.append(f"submit_event_notes = {names.RUN_NOTE_PREFIX} {run_id}")
    if names.ATTR_RUN.lower() not in re.split(r"[\s,]+", commands.get("job_ad_information_attrs", "").lower()):
        problems.append(f"job_ad_information_attrs = {names.ATTR_RUN}")
    if f"--run $({RUN_MACROS['config']})" not in commands.get("arguments", ""):
        problems.append(f"arguments = {names.CONFIG_FILE} --run $({RUN_MACROS['config']})")
    if "batch_name" not in commands:
        problems.append(f"batch_name = {sweep}")
    if problems:
        names_ = {"+sweepname": f"+{names.ATTR_SWEEP}", "+sweeprunid": f"+{names.ATTR_RUN}"}
        shown = [names_.get(p.split(" = ")[0], p.split(" = ")[0]) + " = " + p.split(" = ", 1)[1] for p in problems]
        raise RenderError(f"{template}: the rendered submit description lacks what sweep relies on: "
                          + "; ".join(shown) + " (keep these lines from templates/job.sub.j2)")


#: A job hands its checkpoint to HTCondor (exit 85: spooled, restarted in place) every 10 minutes
#: by default: the restart costs a few seconds of imports, an eviction loses at most that much.
DEFAULT_CHECKPOINT_EVERY_S = 600


def condor_context(condor: dict[str, Any]) -> dict[str, Any]:
    """What the submit templates use of a grid's `condor:` block (requirements, accounting
    group, container, flavours, checkpointing) with its environment as one submit-file string,
    and requirements in parentheses (one clause, whatever HTCondor appends to it)."""
    ctx = {k: condor.get(k) for k in ("requirements", "accounting_group", "max_runtime", "container_image",
                                      "transfer_container", "job_flavour", "job_duration_category")}
    if ctx["requirements"]:  # one operand of the `&& (...)` HTCondor appends, whatever the text holds
        ctx["requirements"] = f"({str(ctx['requirements']).strip()})"
    env = dict(condor.get("environment") or {})
    every = condor.get("checkpoint_every", DEFAULT_CHECKPOINT_EVERY_S)
    ctx["checkpoint"] = every is not None
    if every is not None:  # how often the job hands its checkpoint to HTCondor (sweep.job.checkpoint)
        env["SWEEP_CHECKPOINT_EVERY_S"] = str(every)
    ctx["environment"] = " ".join(f"{k}={v}" for k, v in sorted(env.items()))
    return ctx


def relative_to_root(path: Path, root: Path) -> str:
    """`path` relative to `root` for messages (absolute when it is elsewhere)."""
    try:
        return os.path.relpath(path, root)
    except ValueError:  # pragma: no cover - different drives
        return str(path)
