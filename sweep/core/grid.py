"""Read and validate a grid file into a GridSpec.

Every mistake is collected (not just the first) and reported with file, line, column and key
path, before anything is written anywhere. Expansion into configurations is in expand.py.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from . import names, schema, units, yamlpos
from .canonical import canonical_json
from .errors import GridError, GridIssue, printable

#: Refused unread: a grid is a few kilobytes; this leaves room for generated axes of ~1M values.
MAX_GRID_BYTES = 64 << 20


@dataclass(frozen=True)
class GridChecks:
    """Checks of grid values that need knowledge the pure core does not have, handed in by the
    stage that has it. Each takes the value and raises ValueError (or TypeError, KeyError) saying
    what is wrong; the validator reports it with the grid's file, line and key."""

    #: data.simulate.params (a mapping): sweep.physics.datastep.check_params
    simulation: Callable[[dict], None] | None = None
    #: ClassAd expressions such as condor.requirements: sweep.submit.classads.check_expression
    expression: Callable[[str], None] | None = None
    #: Folders outside the project the user allowed datasets to be read from (never written).
    data_roots: tuple[Path, ...] = field(default_factory=lambda: roots_from_environment("SWEEP_DATA_ROOTS"))
    #: Folders outside the project the user allowed template folders to come from.
    template_roots: tuple[Path, ...] = field(default_factory=lambda: roots_from_environment("SWEEP_TEMPLATE_ROOTS"))


def roots_from_environment(variable: str) -> tuple[Path, ...]:
    """The absolute folders listed in an environment variable (separated by ':'); relative
    entries are ignored, since what they would mean depends on where sweep runs."""
    text = os.environ.get(variable, "")
    return tuple(Path(p).resolve() for p in text.split(os.pathsep) if p and os.path.isabs(p))


def _inside(path: Path, folder: Path) -> bool:
    """Whether `path` is `folder` or below it (both resolved: the project root and the allowed roots are)."""
    return path.is_relative_to(folder)


@dataclass(frozen=True)
class Resources:
    """What each job asks for, in HTCondor's units (MB, seconds)."""

    request_cpus: int
    request_memory_mb: int
    request_disk_mb: int
    runtime_s: int
    request_gpus: int = 0
    gpus_minimum_memory_mb: int | None = None  # each GPU's own memory, at least (HTCondor's GPUs_GlobalMemoryMb)

    def as_dict(self) -> dict[str, int]:
        """The resources as the manifest and each job's config.yaml record them (GPU keys only
        when GPUs are asked for)."""
        out = {"request_cpus": self.request_cpus, "request_memory_mb": self.request_memory_mb,
               "request_disk_mb": self.request_disk_mb, "runtime_s": self.runtime_s}
        if self.request_gpus:
            out["request_gpus"] = self.request_gpus
            if self.gpus_minimum_memory_mb:
                out["gpus_minimum_memory_mb"] = self.gpus_minimum_memory_mb
        return out


@dataclass(frozen=True)
class DataSpec:
    """The grid's dataset: where it is, how it is sampled, how to simulate it when missing."""

    path: Path  # absolute
    path_text: str  # as written in the grid (part of the configuration's identity)
    balanced: bool
    max_samples: int | None
    simulate: dict | None  # {"waveforms": int, "seed": int, "params": dict} or None
    #: HTCondor transfers the arrays the model needs (a per-model file in jobs/<sweep>/data/); false:
    #: the job reads `path` in place (a shared file system the execute nodes see at that path)
    transfer: bool = True
    #: Where the jobs fetch the dataset from instead (osdf://, root://, https://: HTCondor's
    #: transfer plugins): a copy of `path`, which stays the sweep's identity; the job checks that
    #: what it received has the sha256 of `path`
    url: str | None = None


@dataclass(frozen=True)
class Site:
    """The site profile a grid names (`site: recas`): where it is, and which settings it gave."""

    name: str
    file: str
    description: str
    shared_filesystem: bool
    #: "section.key" of each setting the profile gave and the grid did not override
    gave: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dimension:
    """One axis of the product: a single parameter, or several coupled by `zip`."""

    names: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]  # one tuple per point, aligned with names
    path: tuple  # where it is declared (for error messages)


@dataclass(frozen=True)
class Range:
    """A search axis over an interval (search grids only): Optuna samples it."""

    name: str
    low: float | int
    high: float | int
    log: bool
    step: float | int | None
    integer: bool  # the parameter takes integers (units, batch_size, epochs, ...)
    path: tuple  # where it is declared

    def size(self) -> int | None:
        """How many values it can take; None for a continuum."""
        if self.integer:
            return int(self.high - self.low) // int(self.step or 1) + 1
        if self.step is not None:
            return int(round((self.high - self.low) / self.step)) + 1
        return None

    def describe(self) -> str:
        """The interval in words, e.g. "numbers from 0.0001 to 0.1, log scale"."""
        kind = "integers" if self.integer else "numbers"
        extra = ", log scale" if self.log else ""
        extra += f", step {self.step}" if self.step is not None else ""
        return f"{kind} from {self.low} to {self.high}{extra}"


@dataclass(frozen=True)
class SearchSpec:
    """The grid's search: block: how Optuna explores the space of the axes."""

    sampler: str  # sweep.core.schema.SAMPLERS
    trials: int
    parallel: int
    pruner: str  # sweep.core.schema.PRUNERS
    objectives: tuple[tuple[str, str], ...]  # (test metric, "max" | "min")
    seed: int
    retries: int  # how many times a failed trial's parameters are tried again
    startup_trials: int  # random trials before the sampler models, and before the pruner prunes
    warmup_epochs: int  # the pruner prunes no trial before this epoch
    #: (history column the pruner watches, its direction): from the first objective
    prune_on: tuple[str, str] = ("val_loss", "min")

    @property
    def multi_objective(self) -> bool:
        """Several objectives: a Pareto front, no pruning."""
        return len(self.objectives) > 1


@dataclass
class GridSpec:
    """A validated grid file: everything expand() and render_sweep() need."""

    file: str
    name: str
    model: str
    description: str
    seed: int
    data: DataSpec
    fixed: dict[str, Any]  # every hyperparameter not swept, defaults filled in
    dimensions: list[Dimension]
    exclude: list[dict[str, Any]]
    sample: int | None
    repeats: int
    resources: Resources
    condor: dict[str, Any]
    ranking: list[tuple[str, str]]  # (metric, "max" | "min")
    templates: Path | None
    located: yamlpos.Located = field(repr=False, default=None)  # type: ignore[assignment]
    #: What is allowed but probably not meant (printed by the CLI before it goes on).
    warnings: list[str] = field(default_factory=list)
    #: The project folder the grid was validated against (its paths resolve there).
    root: Path | None = None
    #: The site profile the grid named, if any (its settings are merged into resources/condor/data).
    site: Site | None = None
    #: A search grid's intervals (axes given as {low, high}); its lists are the dimensions.
    ranges: dict[str, Range] = field(default_factory=dict)
    #: The search: block; None for a grid run point by point.
    search: SearchSpec | None = None

    @property
    def swept(self) -> list[str]:
        """The swept hyperparameters, in the order the grid declares them (a search's ranges last)."""
        return [n for d in self.dimensions for n in d.names] + list(self.ranges)


def search_space_size(spec: GridSpec) -> int | None:
    """How many distinct points a search grid's space holds; None when a range is continuous."""
    total = count_points(spec)
    for r in spec.ranges.values():
        size = r.size()
        if size is None:
            return None
        total *= size
    return total


def describe_search(spec: GridSpec) -> list[str]:
    """Lines that say what a search grid explores and how (`sweep validate`)."""
    s = spec.search
    if s is None:
        return []
    lines = []
    for d in spec.dimensions:
        lines.append(f"  {d.names[0]}: one of {len(d.values)} values ({', '.join(show(v[0], 30) for v in d.values[:6])}"
                     + (", ..." if len(d.values) > 6 else "") + ")")
    for r in spec.ranges.values():
        lines.append(f"  {r.name}: {r.describe()}")
    size = search_space_size(spec)
    objectives = ", ".join(f"{m} ({'higher' if d == 'max' else 'lower'} is better)" for m, d in s.objectives)
    lines.append(f"  space: {'continuous' if size is None else f'{size:,} points'}; sampler {s.sampler}, "
                 f"{s.trials} trials, {s.parallel} at a time, pruner {s.pruner}"
                 + (f" (on {s.prune_on[0]}, from epoch {s.warmup_epochs})" if s.pruner != "none" else "")
                 + f"; objective{'s' if s.multi_objective else ''} {objectives}; seed {s.seed}")
    return lines


def merged_settings(spec: GridSpec) -> list[tuple[str, Any, str]]:
    """(setting, value, where it comes from: "grid", "site <name>" or "default") of the grid's
    resources, condor and data-transfer settings after the site profile was merged: what
    `sweep submit --dry-run --show` prints."""
    gave = set(spec.site.gave) if spec.site else set()
    written = spec.located.data if spec.located is not None and isinstance(spec.located.data, dict) else {}

    def origin(section: str, key: str) -> str:
        if f"{section}.{key}" in gave:
            return f"site {spec.site.name}"  # type: ignore[union-attr]
        mine = written.get(section)
        return "grid" if isinstance(mine, dict) and key in mine else "default"

    rows: list[tuple[str, Any, str]] = []
    res = spec.resources
    for key, value in (("request_cpus", res.request_cpus), ("request_memory", f"{res.request_memory_mb} MB"),
                       ("request_disk", f"{res.request_disk_mb} MB"), ("runtime", units.format_duration(res.runtime_s)),
                       ("request_gpus", res.request_gpus)):
        rows.append((f"resources.{key}", value, origin("resources", key)))
    if res.gpus_minimum_memory_mb:
        rows.append(("resources.gpus_minimum_memory", f"{res.gpus_minimum_memory_mb} MB",
                     origin("resources", "gpus_minimum_memory")))
    for key in sorted(spec.condor):
        rows.append((f"condor.{key}", spec.condor[key], origin("condor", key)))
    rows.append(("data.transfer", spec.data.transfer, origin("data", "transfer")))
    if spec.data.url:
        rows.append(("data.url", spec.data.url, "grid"))
    return rows


def count_points(spec: GridSpec) -> int:
    """How many points the grid's product has, before exclusion, sampling and repeats."""
    total = 1
    for d in spec.dimensions:
        total *= len(d.values)
    return total


def load_grid(path: str | os.PathLike, root: str | os.PathLike | None = None, *,
              checks: GridChecks | None = None) -> GridSpec:
    """Read and validate a grid file.

    Args:
        path: the grid file.
        root: the project folder; relative paths inside the grid resolve against it (default:
            the current folder).
        checks: what the stages check for the core (simulation parameters, ClassAd expressions);
            without them only the values' shape is checked here, and the stage that uses a value
            checks it before anything is written.

    Returns:
        The validated grid.

    Raises:
        GridError: with every problem found, each with file, line, column and key.
    """
    path = Path(path)
    return parse_grid(read_text(path, "grid file"), str(path), Path(root) if root else Path.cwd(), checks=checks)


def parse_grid(text: str, file: str, root: Path, *, checks: GridChecks | None = None) -> GridSpec:
    """Validate a grid given as text (`file` names it in messages); see :func:`load_grid`."""
    located = load_yaml(text, file, "grid file")
    return Validator(file, located, root, checks or GridChecks()).run()


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of a grid file or site profile (`what`), read once it is known to be small.

    Raises:
        GridError: missing, a folder, unreadable, too large or not UTF-8 (with the byte's position).
    """
    shown = str(path)
    try:
        if path.stat().st_size > MAX_GRID_BYTES:
            raise GridError([GridIssue(shown, 0, 0, "", f"the file is larger than {MAX_GRID_BYTES >> 20} MB: "
                                       f"a {what} is a few lines of YAML")])
        raw = path.read_bytes()
    except FileNotFoundError:
        raise GridError([GridIssue(shown, 0, 0, "", "file not found")]) from None
    except IsADirectoryError:
        raise GridError([GridIssue(shown, 0, 0, "", f"is a folder, expected a {what}")]) from None
    except OSError as exc:
        raise GridError([GridIssue(shown, 0, 0, "", f"cannot read: {exc.strerror or exc}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _line_column(raw, exc.start)
        raise GridError([GridIssue(shown, line, column, "", f"byte 0x{raw[exc.start]:02x} is not UTF-8: a {what} "
                                   "must be UTF-8 text (save it as UTF-8)")]) from None
    return text


def load_yaml(text: str, file: str, what: str) -> yamlpos.Located:
    """The document of a grid file or site profile (`what`), with the positions of its values.

    Raises:
        GridError: the YAML is invalid, too deep or an alias bomb, with line and column.
    """
    try:
        located = yamlpos.load(text)
    except yamlpos.YamlProblem as exc:
        raise GridError([GridIssue(file, exc.line, exc.column, "", exc.message)]) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, BEL, ...)
        line, column = _line_column(text, exc.position)
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        raise GridError([GridIssue(file, line, column, "", f"the control character {char} is not allowed in a "
                                   f"{what} (only text, tabs inside quotes, and line breaks)")]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        lines = text.splitlines()
        if "maximum nesting depth" in problem:  # libyaml's own limit, beyond ours
            problem = yamlpos.TOO_DEEP
        elif mark and mark.line < len(lines) and lines[mark.line][mark.column:mark.column + 1] == "\t":
            problem = "a tab character: YAML indents with spaces only (replace the tab with spaces)"
        raise GridError([GridIssue(file, line, col, "", f"invalid YAML: {problem}")]) from None
    except yaml.YAMLError as exc:
        raise GridError([GridIssue(file, 0, 0, "", f"invalid YAML: {exc}")]) from None
    except RecursionError:  # pragma: no cover - the nesting limit is checked before composing
        raise GridError([GridIssue(file, 0, 0, "", "nesting too deep")]) from None
    return located


def _line_column(data: str | bytes, offset: int) -> tuple[int, int]:
    """1-based line and column of a character (or byte) offset into a file's text (or bytes)."""
    newline = b"\n" if isinstance(data, bytes) else "\n"
    return data.count(newline, 0, offset) + 1, offset - (data.rfind(newline, 0, offset) + 1) + 1


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word)[:100], [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close and close[0] != str(word) else ""


class Validator:
    """Walks a located YAML document (a grid file, a site profile, a pipeline file), collecting
    every problem as a GridIssue with the file, line, column and key path of the value."""

    def __init__(self, file: str, located: yamlpos.Located, root: Path, checks: GridChecks):
        self.file = file
        self.located = located
        self.root = root.resolve()
        self.checks = checks
        self.issues: list[GridIssue] = []
        self.site: Site | None = None
        self.has_search = False
        self.ranges: dict[str, Range] = {}

    # -- reporting
    def error(self, path: tuple, message: str, at_key: bool = False) -> None:
        """Record an issue at `path` (the position of its key when `at_key`, else of its value),
        saying when the value is an alias and when the setting came from the site profile."""
        line, col = self.located.where(path, prefer_key=at_key)
        anchor = None if at_key else self.located.anchor_of(path)
        if anchor is not None and anchor != (line, col):
            message += f" (an alias of the value written at line {anchor[0]}, column {anchor[1]})"
        if self.site is not None and ".".join(str(p) for p in path[:2]) in self.site.gave:
            message += f" (a setting of the site profile {self.site.file}; override it in the grid)"
        self.issues.append(GridIssue(self.file, line, col, yamlpos.format_path(path), message))

    def check(self, path: tuple, value: Any, check: schema.Check, what: str = "") -> bool:
        """Whether `value` passes `check`; when not, an issue "<what>expected ..., got ..." is
        recorded at `path`, with a "did you mean" for a near miss of a check's choices."""
        why = check(value)
        if why is None:
            return True
        hint = ""
        choices = getattr(check, "choices", None) or getattr(getattr(check, "item", None), "choices", None)
        if choices:
            bad = value if isinstance(value, str) else next(
                (v for v in (value if isinstance(value, list) else []) if v not in choices), None)
            if isinstance(bad, str):
                hint = _suggest(bad, choices)
        self.error(path, f"{what}expected {why}, got {show(value)}{hint}")
        return False

    def mapping(self, path: tuple, value: Any, allowed: tuple[str, ...] | None) -> dict:
        """The mapping at `path` ({} when absent or not a mapping, which is recorded), each key not
        in `allowed` recorded as unknown (None: any key)."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(path, f"expected a mapping (key: value lines), got {show(value)}")
            return {}
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    self.error(path + (key,), f"unknown key '{key}'{_suggest(key, allowed)} "
                               f"(allowed: {', '.join(allowed)})", at_key=True)
        return value

    # -- the walk
    def duplicate_keys(self) -> None:
        """A key given twice in one mapping is an issue (YAML keeps only the last, silently)."""
        for dup_path, (line, col) in self.located.duplicates:
            self.issues.append(GridIssue(self.file, line, col, yamlpos.format_path(dup_path),
                                         "key appears more than once (YAML keeps only the last)"))

    def run(self) -> GridSpec:
        """The validated grid.

        Raises:
            GridError: with every issue found.
        """
        self.duplicate_keys()
        doc = self.located.data
        if not isinstance(doc, dict):
            self.error((), f"a grid file must be a mapping of keys such as {', '.join(schema.REQUIRED_TOP_LEVEL)}"
                       f"; got {show(doc)}")
            raise GridError(self.issues)
        self.mapping((), doc, schema.TOP_LEVEL_KEYS)
        for key in schema.REQUIRED_TOP_LEVEL:
            if key not in doc:
                self.issues.append(GridIssue(self.file, 1, 1, key, "required key is missing"))

        name = doc.get("sweep", "")
        if "sweep" in doc and not (isinstance(name, str) and schema.SWEEP_NAME_RE.fullmatch(name)):
            self.error(("sweep",), "expected a sweep name of letters, digits, '_', '.', '-' "
                       f"(starting with a letter or digit, at most 64), got {show(name)}")
        description = doc.get("description", "") or ""
        if not isinstance(description, str):
            self.error(("description",), f"expected text, got {show(description)}")
            description = ""

        model = doc.get("model")
        if "model" in doc and model not in schema.MODELS:
            self.check(("model",), model, schema.one_of(schema.MODELS))
            model = None
        seed = doc.get("seed", 0)
        if not self.check(("seed",), seed, schema.int_at_least(0, schema.MAX_SEED)):
            seed = 0

        if "site" in doc:
            doc = self._with_site(doc)
        self.has_search = doc.get("search") is not None
        data = self._data(doc.get("data"))
        params_spec = schema.PARAMS_BY_MODEL.get(model) if model else None
        fixed = self._params(doc.get("params"), params_spec)
        dimensions = self._dimensions(doc, params_spec, fixed)
        search = None
        if self.has_search:
            for key, why in schema.NOT_IN_SEARCH.items():
                if key in doc and not (key == "repeats" and doc[key] == 1):
                    self.error((key,), f"not used with search: {why}", at_key=True)
            search = self._search(doc.get("search"), model, seed)
        exclude = self._exclude(doc.get("exclude"), dimensions)
        sample = doc.get("sample")
        if sample is not None and not self.check(("sample",), sample, schema.int_at_least(1, schema.MAX_RUNS)):
            sample = None
        repeats = doc.get("repeats", 1)
        if not self.check(("repeats",), repeats, schema.int_at_least(1, schema.MAX_REPEATS)):
            repeats = 1
        resources = self._resources(doc.get("resources"))
        condor = self._condor(doc.get("condor"))
        ranking = self._ranking(doc.get("ranking"), model)
        templates = self._templates(doc.get("templates"))

        if self.issues:
            raise GridError(self.issues)

        if params_spec is not None:
            swept = {n for d in dimensions for n in d.names} | set(self.ranges)
            for pname, param in params_spec.items():
                if pname not in fixed and pname not in swept:
                    fixed[pname] = param.default
        spec = GridSpec(file=self.file, name=name, model=model, description=description, seed=seed,
                        data=data, fixed=fixed, dimensions=dimensions, exclude=exclude, sample=sample,
                        repeats=repeats, resources=resources, condor=condor, ranking=ranking,
                        templates=templates, located=self.located, root=self.root, site=self.site,
                        ranges=self.ranges, search=search)
        self._cross_checks(spec)
        self._case_twin(spec)
        if self.issues:
            raise GridError(self.issues)
        return spec

    def _with_site(self, doc: dict) -> dict:
        """The grid document with its site profile's settings under the grid's own: resources and
        condor key by key (condor.environment variable by variable), data.transfer. The profile
        is validated on its own first, so its mistakes name its file and line."""
        name = doc["site"]
        if not (isinstance(name, str) and schema.SITE_NAME_RE.fullmatch(name)):
            self.error(("site",), f"expected a site profile name of lower-case letters, digits, '_', '-', got {show(name)}")
            return doc
        folders = (self.root / names.SITES_DIR, names.shipped_folder(names.SITES_DIR))
        found = next((f / f"{name}.yaml" for f in folders if (f / f"{name}.yaml").is_file()), None)
        if found is None:
            known = sorted({p.stem for f in folders if f.is_dir() for p in f.glob("*.yaml")})
            self.error(("site",), f"no site profile '{name}' (looked for {name}.yaml in {folders[0]} and in sweep's "
                       f"own {folders[1]}){_suggest(name, known)} (known: {', '.join(known) or 'none'})")
            return doc
        shown = str(found)
        try:  # read and parsed as a grid file is, with the same limits and positions
            located = load_yaml(read_text(found, "site profile"), shown, "site profile")
        except GridError as exc:
            self.issues.extend(exc.issues)
            return doc
        profile = Validator(shown, located, self.root, self.checks)
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
        profile._resources(pdoc.get("resources"))
        profile._condor(pdoc.get("condor"))
        if profile.issues:
            self.issues.extend(profile.issues)
            return doc
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
        self.site = Site(name=name, file=shown, description=description if isinstance(description, str) else "",
                         shared_filesystem=shared, gave=tuple(gave))
        return merged

    def _case_twin(self, spec: GridSpec) -> None:
        """A sweep whose name differs from an existing sweep folder only by case: on a
        case-insensitive file system both would write the same folders (refused); elsewhere they
        are two sweeps that a copy to such a system would merge (a warning)."""
        jobs = self.root / names.JOBS_DIR
        try:
            folders = [e.name for e in os.scandir(jobs) if e.is_dir()]
        except OSError:
            return
        twins = [n for n in folders if n != spec.name and n.casefold() == spec.name.casefold()]
        if not twins:
            return
        same_folder = (jobs / spec.name).exists() and spec.name not in folders
        text = f"sweep '{spec.name}' differs only by case from the existing sweep folder {jobs / twins[0]}"
        if same_folder:
            self.error(("sweep",), text + ": this file system does not tell them apart, so the two sweeps would "
                       "share (and overwrite) their folders; choose another name")
        else:
            spec.warnings.append(printable(text + "; on a case-insensitive file system they would be one sweep"))

    def _data(self, value: Any) -> DataSpec:
        data = self.mapping(("data",), value, schema.DATA_KEYS)
        path_text = data.get("path", "")
        path = Path()
        if value is None and "data" in (self.located.data or {}):
            self.error(("data",), "expected a mapping with at least 'path' (the dataset file, e.g. data/demo.npz)",
                       at_key=True)
        elif isinstance(value, dict) and "path" not in data:
            self.error(("data",), "required key 'path' is missing (the dataset file, e.g. data/demo.npz)")
        elif "path" in data:
            if not (isinstance(path_text, str) and schema.SAFE_PATH_RE.fullmatch(path_text)):
                self.error(("data", "path"), "expected a file path made of letters, digits and _ . / : + @ = - "
                           f"(no spaces, commas, quotes or newlines), got {show(path_text)}")
            else:
                path = self._project_path(("data", "path"), path_text, "dataset", self.checks.data_roots,
                                          "SWEEP_DATA_ROOTS") or Path()
        balanced = data.get("balanced", True)
        if not isinstance(balanced, bool):
            self.error(("data", "balanced"), f"expected true or false, got {show(balanced)}")
        transfer = data.get("transfer", True)
        if not isinstance(transfer, bool):
            self.error(("data", "transfer"), f"expected true or false, got {show(transfer)}")
            transfer = True
        url = data.get("url")
        if url is not None:
            scheme = url.partition("://")[0] if isinstance(url, str) else ""
            if not (isinstance(url, str) and "://" in url and scheme in schema.DATA_URL_SCHEMES
                    and len(url) <= 1024 and schema.SAFE_PATH_RE.fullmatch(url)):
                self.error(("data", "url"), f"expected a URL HTCondor can fetch ({', '.join(s + '://' for s in schema.DATA_URL_SCHEMES)}) "
                           f"made of letters, digits and _ . / : + @ = -, got {show(url)}")
                url = None
            elif not transfer:
                self.error(("data", "url"), "data.url is where HTCondor fetches the dataset for each job, and "
                           "data.transfer: false says the jobs read it in place: give one or the other")
        max_samples = data.get("max_samples")
        if max_samples is not None:
            self.check(("data", "max_samples"), max_samples, schema.int_at_least(1, schema.MAX_SAMPLES))
        simulate = None
        if "simulate" in data:
            sim = self.mapping(("data", "simulate"), data["simulate"], schema.SIMULATE_KEYS)
            simulate = {"waveforms": sim.get("waveforms", 2000), "seed": sim.get("seed", 1),
                        "params": sim.get("params") or {}}
            self.check(("data", "simulate", "waveforms"), simulate["waveforms"],
                       schema.int_at_least(1, schema.MAX_WAVEFORMS))
            self.check(("data", "simulate", "seed"), simulate["seed"], schema.int_at_least(0, schema.MAX_SEED))
            if not isinstance(simulate["params"], dict):
                self.error(("data", "simulate", "params"), f"expected a mapping, got {show(simulate['params'])}")
            else:
                self._simulation_params(simulate["params"])
        if simulate is not None and path != Path() and not _inside(path, self.root):
            self.error(("data", "path"), f"data.simulate writes the dataset, and sweep writes only inside the project "
                       f"({self.root}): give a path inside it, or simulate elsewhere with `sweep data simulate` "
                       "and drop data.simulate")
        return DataSpec(path=path, path_text=str(path_text), transfer=transfer, url=url,
                        balanced=bool(balanced), max_samples=max_samples, simulate=simulate)

    def _simulation_params(self, params: dict) -> None:
        if self.checks.simulation is None:
            return
        try:
            self.checks.simulation(params)
        except (ValueError, TypeError, KeyError) as exc:
            self.error(("data", "simulate", "params"), f"invalid simulation parameters: {exc}")

    def _params(self, value: Any, spec: dict | None) -> dict:
        params = self.mapping(("params",), value, tuple(spec) if spec else None)
        fixed = {}
        for key, val in params.items():
            if spec is None or key not in spec:
                continue  # unknown keys reported by mapping(); unknown model reported already
            if self.check(("params", key), val, spec[key].check):
                fixed[key] = val
        return fixed

    def _axis_values(self, path: tuple, name: Any, values: Any, spec: dict | None) -> list | None:
        if spec is not None and name not in spec:
            self.error(path, f"unknown hyperparameter '{name}'{_suggest(name, spec)} "
                       f"(known: {', '.join(spec)})", at_key=True)
            return None
        if not isinstance(values, list):
            self.error(path, f"expected a list of values to sweep, got {show(values)} "
                       f"(write [{show(values)}] or move it to params)")
            return None
        if not values:
            self.error(path, "empty axis: expected at least one value")
            return None
        ok = True
        if spec is not None:
            for i, v in enumerate(values):
                ok &= self.check(path + (i,), v, spec[name].check)
        first: dict[str, int] = {}
        for i, v in enumerate(values):
            j = first.setdefault(canonical_json(v), i)
            if j != i:
                self.error(path + (i,), f"value {show(v)} appears twice in this axis (also at [{j}])")
                ok = False
        return values if ok else None

    def _dimensions(self, doc: dict, spec: dict | None, fixed: dict) -> list[Dimension]:
        dims: list[Dimension] = []
        seen: dict[str, tuple] = {}

        def claim(name: str, path: tuple) -> bool:
            fixed_names = doc.get("params") if isinstance(doc.get("params"), dict) else {}
            if name in fixed_names:
                self.error(path, f"'{name}' is both fixed in params and swept; keep one", at_key=True)
                return False
            if name in seen:
                self.error(path, f"'{name}' is swept twice (also at {yamlpos.format_path(seen[name])})",
                           at_key=True)
                return False
            seen[name] = path
            return True

        axes = self.mapping(("axes",), doc.get("axes"), None)
        for name, values in axes.items():
            path = ("axes", name)
            if isinstance(values, dict):  # an interval: search grids only
                found = self._range(path, name, values, spec)
                if found is not None and claim(name, path):
                    self.ranges[name] = found
                continue
            vals = self._axis_values(path, name, values, spec)
            if vals is not None and claim(name, path):
                dims.append(Dimension((name,), tuple((v,) for v in vals), path))

        groups = doc.get("zip")
        if groups is not None and not isinstance(groups, list):
            self.error(("zip",), "expected a list of groups, each a mapping of parameters to equally "
                       "long lists that vary together")
            groups = []
        for g, group in enumerate(groups or []):
            gpath = ("zip", g)
            group = self.mapping(gpath, group, None)
            if not group:
                self.error(gpath, "empty zip group: expected parameters mapped to equally long lists")
                continue
            lists, ok = {}, True
            for name, values in group.items():
                vals = self._axis_values(gpath + (name,), name, values, spec)
                ok &= vals is not None and claim(name, gpath + (name,))
                if vals is not None:
                    lists[name] = vals
            lengths = {n: len(v) for n, v in lists.items()}
            if ok and len(set(lengths.values())) > 1:
                self.error(gpath, "zip lists must have the same length, got "
                           + ", ".join(f"{n}: {k}" for n, k in lengths.items()))
                ok = False
            if ok:
                names = tuple(lists)
                dims.append(Dimension(names, tuple(zip(*(lists[n] for n in names))), gpath))
        return dims

    def _range(self, path: tuple, name: Any, value: dict, spec: dict | None) -> Range | None:
        """An axis written as {low, high[, log][, step]}: an interval Optuna samples."""
        if not self.has_search:
            self.error(path, "an interval {low, high} is searched, not swept: add a search: block (sampler, "
                       "trials, objectives), or list the values to sweep")
            return None
        if spec is not None and name not in spec:
            self.error(path, f"unknown hyperparameter '{name}'{_suggest(name, spec)} (known: {', '.join(spec)})",
                       at_key=True)
            return None
        self.mapping(path, value, schema.RANGE_KEYS)
        ok = True
        for key in ("low", "high"):
            if key not in value:
                self.error(path, f"an interval needs '{key}' (e.g. {{low: 1e-4, high: 1e-2, log: true}})")
                ok = False
        if not ok or (set(value) - set(schema.RANGE_KEYS)):
            return None
        low, high, log, step = value["low"], value["high"], value.get("log", False), value.get("step")
        param = spec[name] if spec is not None else None
        integer = bool(getattr(param.check, "integer", False)) if param else False
        number = schema.int_at_least(-2**62) if integer else (lambda v: None if schema.is_number(v) else "a number")
        if param is not None and isinstance(param.default, list):
            self.error(path, f"'{name}' takes a list ({param.help}): an interval cannot sample it; search its "
                       "values as a list of choices instead")
            return None
        for key, v in (("low", low), ("high", high)):
            why = number(v)
            if why:
                self.error(path + (key,), f"expected {'an integer' if integer else 'a number'} ('{name}' takes "
                           f"{'integers' if integer else 'numbers'}), got {show(v)}")
                ok = False
            elif param is not None:
                ok &= self.check(path + (key,), v, param.check, f"'{name}': ")
        if not isinstance(log, bool):
            self.error(path + ("log",), f"expected true or false, got {show(log)}")
            ok = False
        if step is not None:
            why = number(step) or (None if step > 0 else "> 0")
            if why:
                self.error(path + ("step",), f"expected a step > 0{' (an integer)' if integer else ''}, got {show(step)}")
                ok = False
            elif log is True and not (integer and step == 1):
                self.error(path + ("step",), "a log-scale interval cannot have a step (Optuna samples it continuously)")
                ok = False
        if not ok:
            return None
        if not low < high:
            self.error(path + ("high",), f"expected high > low ({show(low)}), got {show(high)} (a single value "
                       "belongs in params)")
            return None
        if log and low <= 0:
            self.error(path + ("low",), f"a log-scale interval needs low > 0, got {show(low)}")
            return None
        if step is not None and not integer and abs(round((high - low) / step) * step - (high - low)) > 1e-9 * abs(step):
            self.error(path + ("step",), f"the interval {low}..{high} is not a whole number of steps of {step}")
            return None
        return Range(name=name, low=low, high=high, log=log, step=None if integer and step == 1 else step,
                     integer=integer, path=path)

    def _search(self, value: Any, model: str | None, grid_seed: int) -> SearchSpec | None:
        """The search: block (Optuna's sampler, pruner, objectives, budget)."""
        block = self.mapping(("search",), value, schema.SEARCH_KEYS)
        if value is not None and not isinstance(value, dict):
            return None
        ok = True

        def pick(key: str, check: schema.Check, default: Any) -> Any:
            nonlocal ok
            v = block.get(key, default)
            if not self.check(("search", key), v, check):
                ok = False
                return default
            return v

        sampler = pick("sampler", schema.one_of(schema.SAMPLERS), "tpe")
        trials = pick("trials", schema.int_at_least(1, schema.MAX_TRIALS), 20)
        parallel = pick("parallel", schema.int_at_least(1, schema.MAX_PARALLEL_TRIALS), min(4, trials))
        pruner = pick("pruner", schema.one_of(schema.PRUNERS), "none")
        seed = pick("seed", schema.int_at_least(0, schema.MAX_SEED), grid_seed)
        retries = pick("retries", schema.int_at_least(0, schema.MAX_RETRIES), 2)
        startup = pick("startup_trials", schema.int_at_least(0, schema.MAX_TRIALS), min(5, max(1, trials // 4)))
        warmup = pick("warmup_epochs", schema.int_at_least(0, schema.MAX_EPOCHS), 1)
        if parallel > trials:
            self.error(("search", "parallel"), f"expected at most search.trials ({trials}) trials at a time, got {parallel}")
            ok = False
        known = schema.metrics_for(model) if model else {}
        raw = block.get("objectives", schema.DEFAULT_RANKING.get(model or "", ["f1"])[:1])
        names_ = [raw] if isinstance(raw, str) else raw
        objectives: list[tuple[str, str]] = []
        if not isinstance(names_, list) or not names_:
            self.error(("search", "objectives"), f"expected a metric or a list of metrics to optimise (e.g. f1, "
                       f"or [f1, auc, eff_purity]), got {show(raw)}")
            ok = False
            names_ = []
        for i, m in enumerate(names_):
            where = ("search", "objectives") if isinstance(raw, str) else ("search", "objectives", i)
            if not isinstance(m, str) or (known and m not in known):
                self.error(where, f"expected a metric the {model or ''} jobs write ({', '.join(known)}), got "
                           f"{show(m)}{_suggest(m, known) if isinstance(m, str) else ''}")
                ok = False
            elif m in (o for o, _ in objectives):
                self.error(where, f"objective '{m}' is named twice")
                ok = False
            else:
                objectives.append((m, known.get(m, "max")))
        if ok and len(objectives) > 1 and pruner != "none":
            self.error(("search", "pruner"), f"pruning compares one value per epoch: with {len(objectives)} "
                       "objectives use pruner: none (Optuna prunes single-objective studies only)")
            ok = False
        if ok and len(objectives) > 1 and sampler not in schema.MULTI_OBJECTIVE_SAMPLERS:
            self.error(("search", "sampler"), f"the {sampler} sampler optimises one objective; with "
                       f"{len(objectives)} use one of {', '.join(schema.MULTI_OBJECTIVE_SAMPLERS)}")
            ok = False
        if ok and sampler == "grid":
            continuous = [r.name for r in self.ranges.values() if not r.integer and r.step is None]
            continuous += [r.name for r in self.ranges.values() if r.integer and r.log]
            if continuous:
                self.error(("search", "sampler"), f"the grid sampler tries every point, and {', '.join(continuous)} "
                           "is continuous: give it a step (or list its values), or use another sampler")
                ok = False
        if not ok:
            return None
        column = schema.validation_column(model, objectives[0][0]) if model else ("val_loss", "min")
        return SearchSpec(sampler=sampler, trials=trials, parallel=parallel, pruner=pruner,
                          objectives=tuple(objectives), seed=seed, retries=retries, startup_trials=startup,
                          warmup_epochs=warmup, prune_on=column)

    def _exclude(self, value: Any, dims: list[Dimension]) -> list[dict]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(("exclude",), "expected a list of mappings, each naming swept parameters and the "
                       "values whose combination is dropped")
            return []
        values_of = {n: [p[i] for p in d.values] for d in dims for i, n in enumerate(d.names)}
        rules = []
        for r, rule in enumerate(value):
            rpath = ("exclude", r)
            rule = self.mapping(rpath, rule, None)
            if not rule:
                self.error(rpath, "empty exclude rule: expected e.g. {optimizer: sgd, epochs: 50}")
                continue
            ok = True
            for name, v in rule.items():
                if name not in values_of:
                    self.error(rpath + (name,), f"'{name}' is not swept; exclude rules may only name swept "
                               f"parameters ({', '.join(values_of) or 'none'}){_suggest(name, values_of)}",
                               at_key=True)
                    ok = False
                elif not any(canonical_json(v) == canonical_json(w) for w in values_of[name]):
                    self.error(rpath + (name,), f"{show(v)} is not one of the swept values of '{name}' "
                               f"({', '.join(show(w) for w in values_of[name])}); the rule would never match")
                    ok = False
            if ok:
                rules.append(rule)
        return rules

    def _resources(self, value: Any) -> Resources:
        res = {**schema.DEFAULT_RESOURCES, **self.mapping(("resources",), value, schema.RESOURCE_KEYS)}
        out = {"request_cpus": 1, "request_memory_mb": 2048, "request_disk_mb": 1024, "runtime_s": 7200}
        if self.check(("resources", "request_cpus"), res["request_cpus"], schema.int_at_least(1, schema.MAX_CPUS)):
            out["request_cpus"] = res["request_cpus"]
        for key, field_name, parse, high, fmt in (
                ("request_memory", "request_memory_mb", units.parse_memory_mb, schema.MAX_MEMORY_MB, _mb),
                ("request_disk", "request_disk_mb", units.parse_memory_mb, schema.MAX_DISK_MB, _mb),
                ("runtime", "runtime_s", units.parse_duration_s, schema.MAX_RUNTIME_S, units.format_duration)):
            try:
                out[field_name] = _bounded(parse(res[key]), high, fmt)
            except ValueError as exc:
                self.error(("resources", key), str(exc))
        if "request_gpus" in res and self.check(("resources", "request_gpus"), res["request_gpus"],
                                                schema.int_at_least(0, schema.MAX_GPUS)):
            out["request_gpus"] = res["request_gpus"]
        if "gpus_minimum_memory" in res:
            if not out.get("request_gpus"):
                self.error(("resources", "gpus_minimum_memory"), "gpus_minimum_memory applies to the GPUs a job "
                           "asks for: set resources.request_gpus too")
            else:
                try:
                    out["gpus_minimum_memory_mb"] = _bounded(units.parse_memory_mb(res["gpus_minimum_memory"]),
                                                             schema.MAX_MEMORY_MB, _mb)
                except ValueError as exc:
                    self.error(("resources", "gpus_minimum_memory"), str(exc))
        return Resources(**out)

    def _condor(self, value: Any) -> dict:
        condor = dict(self.mapping(("condor",), value, schema.CONDOR_KEYS))
        for key in ("requirements",):
            if key in condor:
                v = condor[key]
                if not isinstance(v, str) or not v.strip() or schema.CONTROL_CHARS_RE.search(v):
                    self.error(("condor", key), "expected a one-line ClassAd expression (no line breaks or "
                               f"control characters), got {show(v)}")
                elif v.rstrip().endswith("\\"):
                    self.error(("condor", key), f"a trailing backslash continues the submit file's line: HTCondor "
                               f"would join the next submit command into the expression, got {show(v)}")
                elif schema.SUBMIT_MACRO_RE.search(v):
                    macro = schema.SUBMIT_MACRO_RE.search(v).group(0)
                    self.error(("condor", key), f"'{macro}...' is a submit macro HTCondor would expand in the "
                               f"submit file; write the expression without it, got {show(v)}")
                elif self.checks.expression is not None:
                    try:
                        self.checks.expression(v)
                    except (ValueError, TypeError) as exc:
                        self.error(("condor", key), f"expected a ClassAd expression, got {show(v)}: {exc}")
        if "accounting_group" in condor and not (isinstance(condor["accounting_group"], str)
                                                 and schema.ACCOUNTING_GROUP_RE.fullmatch(condor["accounting_group"])):
            self.error(("condor", "accounting_group"), "expected a group name of letters, digits, '_', '.', "
                       f"'@', '-', got {show(condor['accounting_group'])}")
        for key in ("container_image", "python", "cvmfs"):
            if key in condor and not (isinstance(condor[key], str) and schema.SAFE_PATH_RE.fullmatch(condor[key])
                                      and len(condor[key]) <= 1024):
                self.error(("condor", key), "expected a path or image reference made of letters, digits and "
                           f"_ . / : + @ = - (no spaces, quotes or newlines), got {show(condor[key])}")
                condor.pop(key)
        if "container_image" in condor and "cvmfs" in condor:
            self.error(("condor", "cvmfs"), "condor.cvmfs (a setup script sourced on the execute node) and "
                       "condor.container_image (an image that holds the software) are two ways to get TensorFlow: "
                       "give one")
        if "container_image" in condor:
            condor["container_image"] = self._container_image(condor["container_image"])
        if "python" in condor:
            # inside a container or after a setup script, the interpreter is the execute side's: the
            # job checks it when it starts (exit 3); here only its shape is checked
            self._interpreter(condor["python"], exists=not ({"container_image", "cvmfs"} & set(condor)))
        if "cvmfs" in condor:
            text = condor["cvmfs"]
            if not os.path.isabs(text) or ".." in text.split("/"):
                self.error(("condor", "cvmfs"), "expected the absolute path of a setup script to source, e.g. "
                           f"/cvmfs/sft.cern.ch/lcg/views/LCG_106/x86_64-el9-gcc13-opt/setup.sh, got {show(text)}")
        if "transfer_container" in condor and not isinstance(condor["transfer_container"], bool):
            self.error(("condor", "transfer_container"), "expected true or false (false: the execute nodes read the "
                       f"image where it is, on a shared file system), got {show(condor['transfer_container'])}")
        for key, choices in (("job_flavour", schema.JOB_FLAVOURS), ("job_duration_category",
                                                                     schema.JOB_DURATION_CATEGORIES)):
            if key in condor and not (isinstance(condor[key], str) and (condor[key] == "auto" or condor[key] in choices)):
                self.check(("condor", key), condor[key], schema.one_of(("auto", *choices)))
                condor.pop(key)
        if "max_runtime" in condor and condor["max_runtime"] != "auto":  # auto: resources.runtime
            try:
                condor["max_runtime"] = _bounded(units.parse_duration_s(condor["max_runtime"]), schema.MAX_RUNTIME_S,
                                                 units.format_duration)
            except ValueError as exc:
                self.error(("condor", "max_runtime"), str(exc))
        for key, low, high in (("max_retries", 0, schema.MAX_RETRIES), ("max_running", 1, schema.MAX_JOBS_AT_ONCE),
                               ("max_idle", 1, schema.MAX_JOBS_AT_ONCE)):
            if key in condor:
                self.check(("condor", key), condor[key], schema.int_at_least(low, high))
        if "checkpoint_every" in condor:  # a duration, or false: no checkpoint exits (the job still resumes locally)
            if condor["checkpoint_every"] is False:
                condor["checkpoint_every"] = None
            else:
                try:
                    condor["checkpoint_every"] = _bounded(units.parse_duration_s(condor["checkpoint_every"]),
                                                          schema.MAX_RUNTIME_S, units.format_duration)
                except ValueError as exc:
                    self.error(("condor", "checkpoint_every"), f"{exc}, or false")
        if "memory_escalation" in condor:
            condor["memory_escalation"] = self._memory_escalation(condor["memory_escalation"])
        if "environment" in condor:
            env = self.mapping(("condor", "environment"), condor["environment"], None)
            for k, v in env.items():
                if not (isinstance(k, str) and schema.ENV_NAME_RE.fullmatch(k)):
                    self.error(("condor", "environment", k), f"expected a variable name, got {show(k)}",
                               at_key=True)
                if not (isinstance(v, (str, int, float)) and not isinstance(v, bool)
                        and schema.SAFE_PATH_RE.fullmatch(str(v))):
                    self.error(("condor", "environment", k), "expected a value of letters, digits and "
                               f"_ . / : + @ = - (no spaces or quotes), got {show(v)}")
            condor["environment"] = {str(k): str(v) for k, v in env.items()}
        return condor

    def _memory_escalation(self, value: Any) -> dict | None:
        """`true`, `false`, or {max_memory: 16 GB, releases: 2}: after a memory hold the job is
        released with 1.5x the memory it used, up to max_memory, at most `releases` times."""
        path = ("condor", "memory_escalation")
        if value is False or value is None:
            return None
        opts = {} if value is True else self.mapping(path, value, schema.MEMORY_ESCALATION_KEYS)
        if value is not True and not isinstance(value, dict):
            return None
        out = {"max_mb": None, "releases": 2}
        if "max_memory" in opts:
            try:
                out["max_mb"] = _bounded(units.parse_memory_mb(opts["max_memory"]), schema.MAX_MEMORY_MB, _mb)
            except ValueError as exc:
                self.error(path + ("max_memory",), str(exc))
        if "releases" in opts and self.check(path + ("releases",), opts["releases"],
                                             schema.int_at_least(1, schema.MAX_RELEASES)):
            out["releases"] = opts["releases"]
        return out

    def _ranking(self, value: Any, model: str | None) -> list[tuple[str, str]]:
        if model is None:
            return []
        metrics = schema.metrics_for(model)
        if value is None:
            return [(m, metrics[m]) for m in schema.DEFAULT_RANKING[model]]
        if not isinstance(value, list) or not value:
            self.error(("ranking",), f"expected a non-empty list of metrics from: {', '.join(metrics)}")
            return []
        out = []
        for i, m in enumerate(value):
            if not isinstance(m, str) or m not in metrics:
                self.error(("ranking", i), f"unknown metric {show(m)} for model '{model}'"
                           f"{_suggest(m, metrics)} (known: {', '.join(metrics)})")
            elif m in value[:i]:
                self.error(("ranking", i), f"metric '{m}' is already ranked at [{value.index(m)}]: "
                           "a metric ranks once (the next ones break its ties)")
            else:
                out.append((m, metrics[m]))
        return out

    def _templates(self, value: Any) -> Path | None:
        if value is None:
            return None
        if not (isinstance(value, str) and schema.SAFE_PATH_RE.fullmatch(value)):
            self.error(("templates",), f"expected a folder path, got {show(value)}")
            return None
        folder = self._project_path(("templates",), value, "template folder", self.checks.template_roots,
                                    "SWEEP_TEMPLATE_ROOTS", folder=True)
        if folder is None:
            return None
        missing = [n for n in ("job.sub.j2", "run_job.sh.j2") if not (folder / n).is_file()]
        if missing:
            self.error(("templates",), f"template folder {folder} lacks {', '.join(missing)}")
            return None
        return folder

    def _project_path(self, key: tuple, text: str, what: str, roots: tuple[Path, ...], roots_variable: str | None,
                      folder: bool = False) -> Path | None:
        """The resolved path (symlinks followed) of a grid path, when it stays inside the project or
        under one of the roots the user allowed explicitly (in `roots_variable`; None: no root may
        be allowed, a pipeline's paths); None (with the error recorded) otherwise."""
        if len(text) > 1024 or any(len(part.encode()) > 255 for part in text.split("/")):
            self.error(key, f"expected a {what} path the file system can hold (names of at most 255 bytes, "
                       f"at most 1024 in all), got {show(text)} ({len(text):,} characters)")
            return None
        try:
            path = (self.root / text).resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop
            self.error(key, f"cannot resolve the {what} path {show(text)}: {exc}")
            return None
        allowed = [r for r in roots if _inside(path, r)]
        if not _inside(path, self.root) and not allowed:
            also = (f" or under {', '.join(str(r) for r in roots)}" if roots else "" if roots_variable is None else
                    f" (to read one from elsewhere, name the folder that holds it in {roots_variable})")
            self.error(key, f"the {what} {show(text)} is {path}, outside the project {self.root}: a {what} must be "
                       f"inside the project{also}")
            return None
        if folder and path.exists() and not path.is_dir():
            self.error(key, f"expected a folder, got the file {path}")
            return None
        if not folder and path.is_dir():
            self.error(key, f"expected a {what} file, got the folder {path}")
            return None
        return path

    def _container_image(self, text: str) -> str:
        """condor.container_image: an image Apptainer pulls (docker://, oras://, osdf://), kept as
        written; or a .sif file or unpacked image folder, resolved to an absolute path (a relative
        one inside the project; an absolute one, such as /cvmfs/unpacked.cern.ch/..., as the user
        wrote it) that must exist here unless it is on /cvmfs."""
        scheme, sep, _ = text.partition("://")
        if sep:
            if scheme not in schema.CONTAINER_URL_SCHEMES:
                self.error(("condor", "container_image"), f"expected an image reference ({', '.join(s + '://' for s in schema.CONTAINER_URL_SCHEMES)}) "
                           f"or the path of a .sif file or image folder, got {show(text)}")
            return text
        if os.path.isabs(text):
            if ".." in text.split("/"):
                self.error(("condor", "container_image"), f"expected a path without '..', got {show(text)}")
            elif not text.startswith("/cvmfs/") and not os.path.exists(text):
                self.error(("condor", "container_image"), f"the image {text} does not exist")
            return text
        try:
            path = (self.root / text).resolve()
        except (OSError, RuntimeError) as exc:
            self.error(("condor", "container_image"), f"cannot resolve the image path {show(text)}: {exc}")
            return text
        if not _inside(path, self.root):
            self.error(("condor", "container_image"), f"the image {show(text)} is {path}, outside the project "
                       f"{self.root}: a relative image path stays inside the project (write an image elsewhere "
                       "by its absolute path)")
        elif not path.exists():
            self.error(("condor", "container_image"), f"the image {path} does not exist")
        return str(path)

    def _interpreter(self, text: str, exists: bool = True) -> None:
        """condor.python: an absolute path to an existing executable (the jobs run it); inside a
        container or a CVMFS view (exists=False) only its shape can be checked here."""
        if not os.path.isabs(text) or ".." in text.split("/"):
            self.error(("condor", "python"), f"expected the absolute path of a Python interpreter, got {show(text)}")
        elif exists and not (os.path.isfile(text) and os.access(text, os.X_OK)):
            self.error(("condor", "python"), f"expected an executable Python interpreter, but {text} "
                       f"{'is not executable' if os.path.isfile(text) else 'does not exist'}")

    def _cross_checks(self, spec: GridSpec) -> None:
        """Checks that need the whole configuration (per model constraints)."""
        if spec.search is not None and spec.search.sampler == "grid":
            size = search_space_size(spec)
            if size is not None and spec.search.trials > size:
                self.error(("search", "trials"), f"the grid sampler's space has {size:,} points: expected at most "
                           f"{size:,} trials, got {spec.search.trials:,}")
        if spec.model == "cnn" and count_points(spec) <= schema.MAX_RUNS:  # else the product is refused below
            filters = _values_of(spec, "filters")
            kernels = _values_of(spec, "kernel_sizes")
            if any(len(f) != len(k) for f, k in _combinations(spec, "filters", "kernel_sizes")):
                path = next((d.path for d in spec.dimensions if {"filters", "kernel_sizes"} & set(d.names)),
                            ("params", "kernel_sizes"))
                self.error(path, "filters and kernel_sizes must have the same length (one kernel size per "
                           f"Conv1D block); got filters {filters} and kernel_sizes {kernels}")
        escalation = spec.condor.get("memory_escalation")
        if escalation and escalation.get("max_mb") and escalation["max_mb"] < spec.resources.request_memory_mb:
            self.error(("condor", "memory_escalation", "max_memory"),
                       f"expected at least request_memory ({spec.resources.request_memory_mb} MB), got "
                       f"{escalation['max_mb']} MB")
        self._site_limits(spec)
        site_limit = spec.condor.get("max_runtime")
        if isinstance(site_limit, int) and site_limit < spec.resources.runtime_s:
            self.error(("condor", "max_runtime"),
                       f"expected at least resources.runtime ({units.format_duration(spec.resources.runtime_s)}), got "
                       f"{units.format_duration(site_limit)}: the site would stop every job before sweep's own "
                       "runtime limit, which then never applies; lower resources.runtime or raise max_runtime")
        points = count_points(spec)
        total = points * spec.repeats
        if total > schema.MAX_RUNS:
            if spec.repeats > 1:
                where = ("repeats",)
            else:  # the dimension with the most values: the one to shorten
                where = max(spec.dimensions, key=lambda d: len(d.values)).path if spec.dimensions else ("axes",)
            self.error(where, f"the grid expands to {total:,} runs (including repeats); at most "
                       f"{schema.MAX_RUNS:,} are allowed: use sample: N or fewer values", at_key=True)
        if spec.sample is not None and spec.sample > points:
            self.error(("sample",), f"sample: {spec.sample:,} is more than the grid's {points:,} points: remove "
                       "sample to run every point, or ask for fewer")
        for where, value in _where_values(spec, "test_fraction"):
            if value >= 0.9:
                self.error(where, f"expected test_fraction < 0.9 so something is left to train on, got {value}")
        if spec.model == "cnn" and total <= schema.MAX_RUNS:
            self._cnn_output_length(spec)

    def _site_limits(self, spec: GridSpec) -> None:
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
                    longest = max(limits, key=limits.get)
                    self.error(("resources", "runtime"), f"resources.runtime {units.format_duration(runtime)} is longer "
                               f"than {site} allows ({longest}: {units.format_duration(limits[longest])}): lower it "
                               "(the jobs checkpoint every epoch, so a shorter limit with retries loses little)")
                else:
                    condor[key] = fits[0]
            elif limits[condor[key]] < runtime:
                self.error(("condor", key), f"{condor[key]} allows {units.format_duration(limits[condor[key]])}, less than "
                           f"resources.runtime ({units.format_duration(runtime)}): the site would stop every job "
                           "first; use auto or a longer one")
        if spec.site is not None and not spec.site.shared_filesystem:
            where = f"the site '{spec.site.name}' has no shared file system ({spec.site.file})"
            if not spec.data.transfer:
                self.error(("data", "transfer"), f"{where}: the execute nodes cannot read the dataset in place; "
                           "leave data.transfer true, or give data.url")
            if not {"python", "container_image", "cvmfs"} & set(condor):
                self.error(("condor",), f"{where}: this machine's Python is not on its execute nodes; say where "
                           "TensorFlow comes from with condor.container_image or condor.cvmfs", at_key=True)

    def _cnn_output_length(self, spec: GridSpec) -> None:
        """The clusterizer's input (1024 samples) must keep at least one sample through its
        pooling: MaxPooling1D(p) after each block divides the length by p (Conv1D pads 'same')."""
        for (filters, pool), where in _pairs_with_place(spec, "filters", "pool_size"):
            length = schema.CNN_INPUT_LENGTH
            for _ in filters:
                length //= pool
            if length < 1:
                self.error(where, f"{len(filters)} blocks with pool_size {pool} shrink the {schema.CNN_INPUT_LENGTH}-"
                           f"sample input below one sample ({schema.CNN_INPUT_LENGTH} / {pool}^{len(filters)} < 1): "
                           "use fewer blocks or a smaller pool_size")
                return


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


def _combinations(spec: GridSpec, a: str, b: str) -> list[tuple]:
    """The (a, b) value pairs that really occur: rows of a zip group holding both, else all pairs."""
    for d in spec.dimensions:
        if a in d.names and b in d.names:
            i, j = d.names.index(a), d.names.index(b)
            return [(p[i], p[j]) for p in d.values]
    return [(x, y) for x in _values_of(spec, a) for y in _values_of(spec, b)]


def _where_values(spec: GridSpec, name: str) -> list[tuple[tuple, Any]]:
    """Each value a parameter takes, with the grid path where it is written (params or an axis)."""
    if name in spec.fixed:
        return [(("params", name), spec.fixed[name])]
    for d in spec.dimensions:
        if name in d.names:
            i = d.names.index(name)
            return [((*d.path, name, k) if len(d.names) > 1 else (*d.path, k), p[i]) for k, p in enumerate(d.values)]
    if name in spec.ranges:  # a search interval: its ends (the checks are monotone in the value)
        r = spec.ranges[name]
        return [((*r.path, "low"), r.low), ((*r.path, "high"), r.high)]
    return []


def _pairs_with_place(spec: GridSpec, a: str, b: str) -> list[tuple[tuple, tuple]]:
    """The (a, b) value pairs that occur, each with the grid path of the swept one (or of a)."""
    for d in spec.dimensions:
        if a in d.names and b in d.names:
            i, j = d.names.index(a), d.names.index(b)
            return [((p[i], p[j]), (*d.path, a, k)) for k, p in enumerate(d.values)]
    pairs = []
    for wa, x in _where_values(spec, a):
        for wb, y in _where_values(spec, b):
            pairs.append(((x, y), wa if wa[0] != "params" or wb[0] == "params" else wb))
    return pairs


def _values_of(spec: GridSpec, name: str) -> list:
    if name in spec.fixed:
        return [spec.fixed[name]]
    for d in spec.dimensions:
        if name in d.names:
            i = d.names.index(name)
            return [p[i] for p in d.values]
    if name in spec.ranges:
        return [spec.ranges[name].low, spec.ranges[name].high]
    return []


def show(value: Any, limit: int = 60) -> str:
    """A bounded preview of a value: at most `limit` characters, computed without walking more of
    the value than it shows (an alias bomb shares its lists; expanding them would take gigabytes).
    Escaping of unprintable characters happens where the message is printed (GridIssue)."""
    out: list[str] = []
    budget = [limit + 1]

    def put(text: str) -> bool:
        out.append(text[:budget[0]])
        budget[0] -= len(text)
        return budget[0] > 0

    def walk(v: Any, depth: int) -> bool:
        if depth > 8:
            return put("...")
        if isinstance(v, list):
            if not put("["):
                return False
            for i, item in enumerate(v):
                if (i and not put(", ")) or not walk(item, depth + 1):
                    return False
            return put("]")
        if isinstance(v, dict):
            if not put("{"):
                return False
            for i, (k, item) in enumerate(v.items()):
                if (i and not put(", ")) or not walk(k, depth + 1) or not put(": ") or not walk(item, depth + 1):
                    return False
            return put("}")
        return put(repr(v) if not isinstance(v, str) else repr(v[:limit + 2]))

    walk(value, 0)
    text = "".join(out)
    return text if len(text) <= limit else text[:limit - 3] + "..."
