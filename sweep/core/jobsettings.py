"""The sections of a grid that say how and where each job runs: resources, condor, and the site
profile (sites/<name>.yaml, `site: recas`) that gives defaults for both; and the checks of those
settings against one another, the runtime and the site (the `auto` flavours, a site without a
shared file system). A site profile is read and validated as a grid file is, so its mistakes
name its own file and line.

Each function is given the Validator of the document it reads, which records the issues.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable
from typing import Any

from . import names, schema, units
from .errors import GridError
from .gridspec import GridChecks, GridSpec, NotifySpec, Resources, Site
from .validation import Validator, inside, load_yaml, read_text, show, suggest


def with_site(v: Validator, doc: dict[str, Any], checks: GridChecks) -> tuple[dict[str, Any], Site | None]:
    """The grid document `doc` (validated by `v`) with the settings of the site profile it
    names under the grid's own: resources and condor key by key (condor.environment variable
    by variable), data.transfer; and the Site. The profile is validated on its own first (with
    `checks`), so its mistakes name its file and line; when it cannot be used, the issues are
    recorded on `v` and the result is (doc, None)."""
    name = doc["site"]
    if not (isinstance(name, str) and schema.SITE_NAME_RE.fullmatch(name)):
        v.error(("site",), f"expected a site profile name of lower-case letters, digits, '_', '-', got {show(name)}")
        return doc, None
    folders = (v.root / names.SITES_DIR, names.shipped_folder(names.SITES_DIR))
    found = next((f / f"{name}.yaml" for f in folders if (f / f"{name}.yaml").is_file()), None)
    if found is None:
        known = sorted({p.stem for f in folders if f.is_dir() for p in f.glob("*.yaml")})
        v.error(("site",), f"no site profile '{name}' (looked for {name}.yaml in {folders[0]} and in sweep's "
                f"own {folders[1]}){suggest(name, known)} (known: {', '.join(known) or 'none'})")
        return doc, None
    shown = str(found)
    try:  # read and parsed as a grid file is, with the same limits and positions
        located = load_yaml(read_text(found, "site profile"), shown, "site profile")
    except GridError as exc:
        v.issues.extend(exc.issues)
        return doc, None
    profile = Validator(shown, located, v.root)
    pdoc = located.data if located.data is not None else {}
    if not isinstance(pdoc, dict):
        profile.error((), f"a site profile must be a mapping of {', '.join(schema.SITE_KEYS)}; got {show(pdoc)}")
        pdoc = {}
    profile.mapping((), pdoc, schema.SITE_KEYS)
    description = pdoc.get("description", "")
    if not isinstance(description, str):
        profile.error(("description",), f"expected text, got {show(description)}")
    shared = pdoc.get("shared_filesystem", True)
    if not isinstance(shared, bool):
        profile.error(("shared_filesystem",), f"expected true or false (whether the execute nodes see the "
                      f"submit node's files at the same paths), got {show(shared)}")
    pdata = profile.mapping(("data",), pdoc.get("data"), schema.SITE_DATA_KEYS)
    if not isinstance(pdata.get("transfer", True), bool):
        profile.error(("data", "transfer"), f"expected true or false, got {show(pdata['transfer'])}")
    resources_section(profile, pdoc.get("resources"))
    condor_section(profile, pdoc.get("condor"), checks)
    if profile.issues:
        v.issues.extend(profile.issues)
        return doc, None
    merged, gave = dict(doc), []
    for section in ("resources", "condor"):
        mine, theirs = doc.get(section), pdoc.get(section) or {}
        if mine is not None and not isinstance(mine, dict):
            continue  # the grid's own mistake, reported when the section is read
        mine = mine or {}
        out = {**theirs, **mine}
        if section == "condor" and isinstance(mine.get("environment"), dict) and theirs.get("environment"):
            out["environment"] = {**theirs["environment"], **mine["environment"]}
        gave += [f"{section}.{k}" for k in theirs if k not in mine]
        if out:
            merged[section] = out
    if "transfer" in pdata and isinstance(doc.get("data"), dict) and "transfer" not in doc["data"]:
        merged["data"] = {**doc["data"], "transfer": pdata["transfer"]}
        gave.append("data.transfer")
    site = Site(name=name, file=shown, description=description if isinstance(description, str) else "",
                shared_filesystem=shared, gave=tuple(gave))
    return merged, site


def resources_section(v: Validator, value: Any) -> Resources:
    """The resources: section `value` (None: absent) with the defaults filled in, each problem
    recorded on `v` (a wrong value keeps its default)."""
    res = {**schema.DEFAULT_RESOURCES, **v.mapping(("resources",), value, schema.RESOURCE_KEYS)}
    out = {"request_cpus": 1, "request_memory_mb": 2048, "request_disk_mb": 1024, "runtime_s": 7200}
    if v.check(("resources", "request_cpus"), res["request_cpus"], schema.int_at_least(1, schema.MAX_CPUS)):
        out["request_cpus"] = res["request_cpus"]
    for key, field_name, parse, high, fmt in (
            ("request_memory", "request_memory_mb", units.parse_memory_mb, schema.MAX_MEMORY_MB, _mb),
            ("request_disk", "request_disk_mb", units.parse_memory_mb, schema.MAX_DISK_MB, _mb),
            ("runtime", "runtime_s", units.parse_duration_s, schema.MAX_RUNTIME_S, units.format_duration)):
        try:
            out[field_name] = _bounded(parse(res[key]), high, fmt)
        except ValueError as exc:
            v.error(("resources", key), str(exc))
    if "request_gpus" in res and v.check(("resources", "request_gpus"), res["request_gpus"],
                                         schema.int_at_least(0, schema.MAX_GPUS)):
        out["request_gpus"] = res["request_gpus"]
    if "gpus_minimum_memory" in res:
        if not out.get("request_gpus"):
            v.error(("resources", "gpus_minimum_memory"), "gpus_minimum_memory applies to the GPUs a job "
                    "asks for: set resources.request_gpus too")
        else:
            try:
                out["gpus_minimum_memory_mb"] = _bounded(units.parse_memory_mb(res["gpus_minimum_memory"]),
                                                         schema.MAX_MEMORY_MB, _mb)
            except ValueError as exc:
                v.error(("resources", "gpus_minimum_memory"), str(exc))
    return Resources(**out)

def condor_section(v: Validator, value: Any, checks: GridChecks) -> dict[str, Any]:
    """The condor: section `value` (None: absent) with its values normalised (durations in
    seconds, the container image's path resolved, memory_escalation as {max_mb, releases},
    environment values as text); `checks.expression` checks condor.requirements. Each problem
    is recorded on `v`; a key whose value cannot be used is dropped."""
    condor = dict(v.mapping(("condor",), value, schema.CONDOR_KEYS))
    for key in ("requirements",):
        if key in condor:
            expr = condor[key]
            if not isinstance(expr, str) or not expr.strip() or schema.CONTROL_CHARS_RE.search(expr):
                v.error(("condor", key), "expected a one-line ClassAd expression (no line breaks or "
                        f"control characters), got {show(expr)}")
            elif expr.rstrip().endswith("\\"):
                v.error(("condor", key), f"a trailing backslash continues the submit file's line: HTCondor "
                        f"would join the next submit command into the expression, got {show(expr)}")
            elif found := schema.SUBMIT_MACRO_RE.search(expr):
                macro = found.group(0)
                v.error(("condor", key), f"'{macro}...' is a submit macro HTCondor would expand in the "
                        f"submit file; write the expression without it, got {show(expr)}")
            elif checks.expression is not None:
                try:
                    checks.expression(expr)
                except (ValueError, TypeError) as exc:
                    v.error(("condor", key), f"expected a ClassAd expression, got {show(expr)}: {exc}")
    if "accounting_group" in condor and not (isinstance(condor["accounting_group"], str)
                                             and schema.ACCOUNTING_GROUP_RE.fullmatch(condor["accounting_group"])):
        v.error(("condor", "accounting_group"), "expected a group name of letters, digits, '_', '.', "
                f"'@', '-', got {show(condor['accounting_group'])}")
    for key in ("container_image", "python", "cvmfs"):
        if key in condor and not (isinstance(condor[key], str) and schema.SAFE_PATH_RE.fullmatch(condor[key])
                                  and len(condor[key]) <= 1024):
            v.error(("condor", key), "expected a path or image reference made of letters, digits and "
                    f"_ . / : + @ = - (no spaces, quotes or newlines), got {show(condor[key])}")
            condor.pop(key)
    if "container_image" in condor and "cvmfs" in condor:
        v.error(("condor", "cvmfs"), "condor.cvmfs (a setup script sourced on the execute node) and "
                "condor.container_image (an image that holds the software) are two ways to get TensorFlow: "
                "give one")
    if "container_image" in condor:
        condor["container_image"] = _container_image(v, condor["container_image"])
    if "python" in condor:
        # inside a container or after a setup script, the interpreter is the execute side's: the
        # job checks it when it starts (exit 3); here only its shape is checked
        _interpreter(v, condor["python"], exists=not ({"container_image", "cvmfs"} & set(condor)))
    if "cvmfs" in condor:
        text = condor["cvmfs"]
        if not os.path.isabs(text) or ".." in text.split("/"):
            v.error(("condor", "cvmfs"), "expected the absolute path of a setup script to source, e.g. "
                    f"/cvmfs/sft.cern.ch/lcg/views/LCG_106/x86_64-el9-gcc13-opt/setup.sh, got {show(text)}")
    if "io_proxy" in condor and not isinstance(condor["io_proxy"], bool):
        v.error(("condor", "io_proxy"), "expected true or false (false: no job of this grid is given HTCondor's "
                f"chirp I/O proxy, want_io_proxy), got {show(condor['io_proxy'])}")
        condor.pop("io_proxy")
    if "transfer_container" in condor and not isinstance(condor["transfer_container"], bool):
        v.error(("condor", "transfer_container"), "expected true or false (false: the execute nodes read the "
                f"image where it is, on a shared file system), got {show(condor['transfer_container'])}")
    for key, choices in (("job_flavour", schema.JOB_FLAVOURS), ("job_duration_category",
                                                                schema.JOB_DURATION_CATEGORIES)):
        if key in condor and not (isinstance(condor[key], str) and (condor[key] == "auto" or condor[key] in choices)):
            v.check(("condor", key), condor[key], schema.one_of(("auto", *choices)))
            condor.pop(key)
    if "max_runtime" in condor and condor["max_runtime"] != "auto":  # auto: resources.runtime
        try:
            condor["max_runtime"] = _bounded(units.parse_duration_s(condor["max_runtime"]), schema.MAX_RUNTIME_S,
                                             units.format_duration)
        except ValueError as exc:
            v.error(("condor", "max_runtime"), str(exc))
    for key, low, high in (("max_retries", 0, schema.MAX_RETRIES), ("max_running", 1, schema.MAX_JOBS_AT_ONCE),
                           ("max_idle", 1, schema.MAX_JOBS_AT_ONCE)):
        if key in condor:
            v.check(("condor", key), condor[key], schema.int_at_least(low, high))
    if "checkpoint_every" in condor:  # a duration, or false: no checkpoint exits (the job still resumes locally)
        if condor["checkpoint_every"] is False:
            condor["checkpoint_every"] = None
        else:
            try:
                condor["checkpoint_every"] = _bounded(units.parse_duration_s(condor["checkpoint_every"]),
                                                      schema.MAX_RUNTIME_S, units.format_duration)
            except ValueError as exc:
                v.error(("condor", "checkpoint_every"), f"{exc}, or false")
    if "memory_escalation" in condor:
        condor["memory_escalation"] = _memory_escalation(v, condor["memory_escalation"])
    if "environment" in condor:
        env = v.mapping(("condor", "environment"), condor["environment"], None)
        for k, val in env.items():
            if not (isinstance(k, str) and schema.ENV_NAME_RE.fullmatch(k)):
                v.error(("condor", "environment", k), f"expected a variable name, got {show(k)}",
                        at_key=True)
            if not (isinstance(val, (str, int, float)) and not isinstance(val, bool)
                    and schema.SAFE_PATH_RE.fullmatch(str(val))):
                v.error(("condor", "environment", k), "expected a value of letters, digits and "
                        f"_ . / : + @ = - (no spaces or quotes), got {show(val)}")
        condor["environment"] = {str(k): str(val) for k, val in env.items()}
    return condor

def notify_section(v: Validator, value: Any) -> NotifySpec | None:
    """The notify: block `value` (None: absent, nobody is told) as a NotifySpec, each problem
    recorded on `v`: the addresses HTCondor mails (notify_user), the events it mails on (`on`),
    and the webhook the sweep's end is posted to."""
    if value is None:
        return None
    if isinstance(value, dict) and True in value and "on" not in value:
        # `on:` as a YAML 1.1 reader (PyYAML's safe_load, then safe_dump: `true:`) leaves it
        value = {("on" if k is True else k): val for k, val in value.items()}
    block = v.mapping(("notify",), value, schema.NOTIFY_KEYS)
    if not isinstance(value, dict):
        return None
    if not block:
        v.error(("notify",), "expected email, webhook or both (an empty notify: block tells nobody)")
        return None
    emails: list[str] = []
    raw = block.get("email")
    if raw is not None:
        listed = raw if isinstance(raw, list) else [raw]
        if not listed or len(listed) > schema.MAX_EMAILS:
            v.error(("notify", "email"), f"expected an e-mail address or a list of 1 to {schema.MAX_EMAILS}, "
                    f"got {show(raw)}")
        for i, address in enumerate(listed[:schema.MAX_EMAILS]):
            where = ("notify", "email", i) if isinstance(raw, list) else ("notify", "email")
            if not (isinstance(address, str) and len(address) <= schema.MAX_EMAIL_CHARS
                    and schema.EMAIL_RE.fullmatch(address)):
                v.error(where, "expected an e-mail address such as name@example.org (letters, digits and "
                        "_ . % + - before the @, a host name after it; no spaces, quotes, commas or line breaks: "
                        f"it goes into the DAG job's notify_user), got {show(address)}")
            elif address not in emails:
                emails.append(address)
    on: tuple[str, ...] = schema.DEFAULT_NOTIFY_ON
    if "on" in block:
        raw_on = block["on"]
        events = raw_on if isinstance(raw_on, list) else [raw_on]
        if v.check(("notify", "on"), events, schema.list_of(schema.one_of(schema.NOTIFY_EVENTS))):
            on = tuple(e for e in schema.NOTIFY_EVENTS if e in events)
    webhook = block.get("webhook")
    if webhook is not None:
        why = webhook_problem(webhook)
        if why:
            v.error(("notify", "webhook"), f"{why}, got {show(webhook)}")
            webhook = None
    if "held" in on and raw is None and "on" in block:
        v.error(("notify", "on"), "held is told by HTCondor's mail about the DAGMan job, and notify.email names "
                "nobody: add an address, or drop held (the webhook is posted when the sweep ends)")
    elif "on" in block and raw is None and webhook is None and "webhook" not in block:
        v.error(("notify", "on"), "notify.on says when to tell, but the block names nobody: add notify.email "
                "or notify.webhook")
    return NotifySpec(email=tuple(emails), on=on, webhook=webhook)


def webhook_problem(url: Any) -> str | None:
    """Why `url` cannot be a notify.webhook ("expected ..."), or None: an http:// or https:// URL
    with a host, at most schema.MAX_WEBHOOK_CHARS characters, of printable characters without
    spaces, and without user:password@ (a credential in the URL would be copied wherever the URL
    goes: logs, shell history, the grid in a repository)."""
    schemes = " or ".join(s + "://" for s in schema.WEBHOOK_SCHEMES)
    if not isinstance(url, str) or not url:
        return f"expected an {schemes} URL"
    if len(url) > schema.MAX_WEBHOOK_CHARS:
        return f"expected a URL of at most {schema.MAX_WEBHOOK_CHARS:,} characters ({len(url):,} given)"
    if schema.CONTROL_CHARS_RE.search(url) or any(c.isspace() for c in url) or not url.isascii():
        return "expected a URL without spaces, line breaks or non-ASCII characters (percent-encode them)"
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        return f"expected a URL: {exc}"
    if parts.scheme not in schema.WEBHOOK_SCHEMES:
        return f"expected an {schemes} URL (the webhook is an HTTP POST)"
    if "@" in parts.netloc:
        return ("a webhook URL may not hold credentials (user:password@): they would be copied wherever the URL "
                "goes; use a URL whose path carries the service's token, and keep the grid private")
    if not parts.hostname:
        return f"expected an {schemes} URL with a host name"
    return None


def _memory_escalation(v: Validator, value: Any) -> dict[str, int | None] | None:
    """`true`, `false`, or {max_memory: 16 GB, releases: 2}: after a memory hold the job is
    released with 1.5x the memory it used, up to max_memory, at most `releases` times."""
    path = ("condor", "memory_escalation")
    if value is False or value is None:
        return None
    opts = {} if value is True else v.mapping(path, value, schema.MEMORY_ESCALATION_KEYS)
    if value is not True and not isinstance(value, dict):
        return None
    out = {"max_mb": None, "releases": 2}
    if "max_memory" in opts:
        try:
            out["max_mb"] = _bounded(units.parse_memory_mb(opts["max_memory"]), schema.MAX_MEMORY_MB, _mb)
        except ValueError as exc:
            v.error(path + ("max_memory",), str(exc))
    if "releases" in opts and v.check(path + ("releases",), opts["releases"],
                                      schema.int_at_least(1, schema.MAX_RELEASES)):
        out["releases"] = opts["releases"]
    return out


def _container_image(v: Validator, text: str) -> str:
    """condor.container_image: an image Apptainer pulls (docker://, oras://, osdf://), kept as
    written; or a .sif file or unpacked image folder, resolved to an absolute path (a relative
    one inside the project; an absolute one, such as /cvmfs/unpacked.cern.ch/..., as the user
    wrote it) that must exist here unless it is on /cvmfs."""
    scheme, sep, _ = text.partition("://")
    if sep:
        if scheme not in schema.CONTAINER_URL_SCHEMES:
            v.error(("condor", "container_image"), "expected an image reference "
                    f"({', '.join(s + '://' for s in schema.CONTAINER_URL_SCHEMES)}) "
                    f"or the path of a .sif file or image folder, got {show(text)}")
        return text
    if os.path.isabs(text):
        if ".." in text.split("/"):
            v.error(("condor", "container_image"), f"expected a path without '..', got {show(text)}")
        elif not text.startswith("/cvmfs/") and not os.path.exists(text):
            v.error(("condor", "container_image"), f"the image {text} does not exist")
        return text
    try:
        path = (v.root / text).resolve()
    except (OSError, RuntimeError) as exc:
        v.error(("condor", "container_image"), f"cannot resolve the image path {show(text)}: {exc}")
        return text
    if not inside(path, v.root):
        v.error(("condor", "container_image"), f"the image {show(text)} is {path}, outside the project "
                f"{v.root}: a relative image path stays inside the project (write an image elsewhere "
                "by its absolute path)")
    elif not path.exists():
        v.error(("condor", "container_image"), f"the image {path} does not exist")
    return str(path)

def _interpreter(v: Validator, text: str, exists: bool = True) -> None:
    """condor.python: an absolute path to an existing executable (the jobs run it); inside a
    container or a CVMFS view (exists=False) only its shape can be checked here."""
    if not os.path.isabs(text) or ".." in text.split("/"):
        v.error(("condor", "python"), f"expected the absolute path of a Python interpreter, got {show(text)}")
    elif exists and not (os.path.isfile(text) and os.access(text, os.X_OK)):
        v.error(("condor", "python"), f"expected an executable Python interpreter, but {text} "
                f"{'is not executable' if os.path.isfile(text) else 'does not exist'}")


def check_settings(v: Validator, spec: GridSpec) -> None:
    """Check the grid's resources and condor settings (`spec`, the grid validated by `v`) against
    one another, the runtime and the site, recording each problem on `v`: memory escalation up
    to less than the memory asked for, a pruned search whose grid forbids the I/O proxy, a
    flavour or duration category shorter than the runtime, what a site without a shared file
    system cannot do, a site runtime limit below sweep's own.
    Settings chosen from the runtime (`auto`) are set in `spec.condor`."""
    escalation = spec.condor.get("memory_escalation")
    if escalation and escalation.get("max_mb") and escalation["max_mb"] < spec.resources.request_memory_mb:
        v.error(("condor", "memory_escalation", "max_memory"),
                f"expected at least request_memory ({spec.resources.request_memory_mb} MB), got "
                f"{escalation['max_mb']} MB")
    if spec.condor.get("io_proxy") is False and spec.search is not None and spec.search.pruner != "none":
        v.error(("condor", "io_proxy"), f"a search with pruner {spec.search.pruner} reports each epoch to its driver "
                "and reads its verdict through chirp, which needs the I/O proxy on a pool: set search.pruner: none "
                "(no pruning), or drop condor.io_proxy: false")
    _site_limits(v, spec)
    site_limit = spec.condor.get("max_runtime")
    if isinstance(site_limit, int) and site_limit < spec.resources.runtime_s:
        v.error(("condor", "max_runtime"),
                f"expected at least resources.runtime ({units.format_duration(spec.resources.runtime_s)}), got "
                f"{units.format_duration(site_limit)}: the site would stop every job before sweep's own "
                "runtime limit, which then never applies; lower resources.runtime or raise max_runtime")


def _site_limits(v: Validator, spec: GridSpec) -> None:
    """Settings chosen from the runtime (`auto`), and what a site without a shared file
    system cannot do."""
    runtime = spec.resources.runtime_s
    condor = spec.condor
    if condor.get("max_runtime") == "auto":  # +MaxRuntime: the site stops the job where sweep would
        condor["max_runtime"] = runtime
    for key, limits, site in (("job_flavour", schema.JOB_FLAVOURS, "CERN's +JobFlavour"),
                              ("job_duration_category", schema.JOB_DURATION_CATEGORIES,
                               "the OSPool's +JobDurationCategory")):
        if key not in condor:
            continue
        if condor[key] == "auto":
            fits = [name for name, limit in sorted(limits.items(), key=lambda kv: kv[1]) if limit >= runtime]
            if not fits:
                longest = max(limits, key=lambda name: limits[name])
                v.error(("resources", "runtime"), f"resources.runtime {units.format_duration(runtime)} is longer "
                        f"than {site} allows ({longest}: {units.format_duration(limits[longest])}): lower it "
                        "(the jobs checkpoint every epoch, so a shorter limit with retries loses little)")
            else:
                condor[key] = fits[0]
        elif limits[condor[key]] < runtime:
            v.error(("condor", key), f"{condor[key]} allows {units.format_duration(limits[condor[key]])}, less than "
                    f"resources.runtime ({units.format_duration(runtime)}): the site would stop every job "
                    "first; use auto or a longer one")
    if spec.site is not None and not spec.site.shared_filesystem:
        where = f"the site '{spec.site.name}' has no shared file system ({spec.site.file})"
        if not spec.data.transfer:
            v.error(("data", "transfer"), f"{where}: the execute nodes cannot read the dataset in place; "
                    "leave data.transfer true, or give data.url")
        if not {"python", "container_image", "cvmfs"} & set(condor):
            v.error(("condor",), f"{where}: this machine's Python is not on its execute nodes; say where "
                    "TensorFlow comes from with condor.container_image or condor.cvmfs", at_key=True)


def _mb(mb: int) -> str:
    return f"{mb:,} MB" if mb < 1 << 20 else f"{mb / (1 << 20):g} TB"


def _bounded(value: int, high: int, fmt: Callable[[int], str]) -> int:
    """value, when at most high.

    Raises:
        ValueError: saying the bound (written by `fmt`), beyond which no pool could satisfy the request.
    """
    if value > high:
        raise ValueError(f"expected at most {fmt(high)} (what a real pool could ever give), got {fmt(value)}")
    return value
