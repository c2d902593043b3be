"""Read and validate a grid file into a GridSpec (gridspec.py): the grid's own sections (sweep,
model, data, params, axes and zip, search, exclude, sample, repeats, ranking, templates) and the
checks that need the whole grid; the resources, condor and site sections are read by
jobsettings.py, the file itself by validation.py.

Every mistake is collected (not just the first) and reported with file, line, column and key
path, before anything is written anywhere. Expansion into configurations is in expand.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import names, schema, yamlpos
from .canonical import canonical_json
from .errors import GridError, GridIssue, printable
from .gridspec import (DataSpec, Dimension, GridChecks, GridSpec, Range, SearchSpec, Site, count_points,
                       search_space_size)
from .jobsettings import check_settings, condor_section, notify_section, resources_section, with_site
from .validation import Validator, inside, load_yaml, read_text, show, suggest

#: A model's hyperparameters by name (schema.PARAMS_BY_MODEL's values).
ModelParams = dict[str, schema.Param]


def load_grid(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None, *,
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
    """Validate a grid given as text.

    Args:
        text: the grid file's text.
        file: the name messages give the file.
        root, checks: as for :func:`load_grid` (`root` is required here).

    Returns:
        The validated grid.

    Raises:
        GridError: with every problem found, each with file, line, column and key.
    """
    located = load_yaml(text, file, "grid file")
    return _GridValidator(file, located, root, checks or GridChecks()).run()


class _GridValidator(Validator):
    """Validates one grid file's document (see :class:`Validator` for `file`, `located` and
    `root`) with the stages' `checks` into a GridSpec: :meth:`run`."""

    def __init__(self, file: str, located: yamlpos.Located, root: Path, checks: GridChecks):
        super().__init__(file, located, root)
        self.checks = checks
        self.site: Site | None = None  # the site profile the grid names, once merged
        self.has_search = False
        self.ranges: dict[str, Range] = {}

    def origin_note(self, path: yamlpos.KeyPath) -> str:
        """Names the site profile when the setting at `path` is one it gave (the grid did not)."""
        if self.site is not None and ".".join(str(p) for p in path[:2]) in self.site.gave:
            return f" (a setting of the site profile {self.site.file}; override it in the grid)"
        return ""

    def run(self) -> GridSpec:
        """The validated grid.

        Returns:
            The GridSpec, defaults filled in and the site profile's settings merged.

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
            doc, self.site = with_site(self, doc, self.checks)
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
        resources = resources_section(self, doc.get("resources"))
        condor = condor_section(self, doc.get("condor"), self.checks)
        ranking = self._ranking(doc.get("ranking"), model)
        templates = self._templates(doc.get("templates"))
        notify = notify_section(self, doc.get("notify"))

        if self.issues:
            raise GridError(self.issues)
        assert model is not None  # a missing or unknown model is an issue, raised above

        if params_spec is not None:
            swept = {n for d in dimensions for n in d.names} | set(self.ranges)
            for pname, param in params_spec.items():
                if pname not in fixed and pname not in swept:
                    fixed[pname] = param.default
        spec = GridSpec(file=self.file, name=name, model=model, description=description, seed=seed,
                        data=data, fixed=fixed, dimensions=dimensions, exclude=exclude, sample=sample,
                        repeats=repeats, resources=resources, condor=condor, ranking=ranking,
                        templates=templates, located=self.located, root=self.root, site=self.site,
                        ranges=self.ranges, search=search, notify=notify)
        self._cross_checks(spec)
        self._case_twin(spec)
        if self.issues:
            raise GridError(self.issues)
        return spec

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
                path = self.project_path(("data", "path"), path_text, "dataset", self.checks.data_roots,
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
                self.error(("data", "url"), "expected a URL HTCondor can fetch "
                           f"({', '.join(s + '://' for s in schema.DATA_URL_SCHEMES)}) "
                           f"made of letters, digits and _ . / : + @ = -, got {show(url)}")
                url = None
            elif not transfer:
                self.error(("data", "url"), "data.url is where HTCondor fetches the dataset for each job, and "
                           "data.transfer: false says the jobs read it in place: give one or the other")
            elif scheme == "http" and data.get("allow_http") is not True:
                # the jobs check the sha256 of what they fetch, but a plain-text transfer can be
                # altered or read on the way: it is the grid's explicit choice, not a default
                self.error(("data", "url"), "an http:// URL is fetched unencrypted and can be altered on the way; "
                           "use https:// (or osdf://, pelican://), or say data.allow_http: true to accept it, "
                           f"got {show(url)}")
        allow_http = data.get("allow_http", False)
        if not isinstance(allow_http, bool):
            self.error(("data", "allow_http"), "expected true or false (whether data.url may be a plain http:// "
                       f"URL), got {show(allow_http)}")
        elif allow_http and url is None and "url" not in data:
            self.error(("data", "allow_http"), "data.allow_http applies to data.url, which this grid does not give")
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
        if simulate is not None and path != Path() and not inside(path, self.root):
            self.error(("data", "path"), f"data.simulate writes the dataset, and sweep writes only inside the project "
                       f"({self.root}): give a path inside it, or simulate elsewhere with `sweep data simulate` "
                       "and drop data.simulate")
        return DataSpec(path=path, path_text=str(path_text), transfer=transfer, url=url,
                        balanced=bool(balanced), max_samples=max_samples, simulate=simulate)

    def _simulation_params(self, params: dict[str, Any]) -> None:
        if self.checks.simulation is None:
            return
        try:
            self.checks.simulation(params)
        except (ValueError, TypeError, KeyError) as exc:
            self.error(("data", "simulate", "params"), f"invalid simulation parameters: {exc}")

    def _params(self, value: Any, spec: ModelParams | None) -> dict[str, Any]:
        params = self.mapping(("params",), value, tuple(spec) if spec else None)
        fixed = {}
        for key, val in params.items():
            if spec is None or key not in spec:
                continue  # unknown keys reported by mapping(); unknown model reported already
            if self.check(("params", key), val, spec[key].check):
                fixed[key] = val
        return fixed

    def _axis_values(self, path: yamlpos.KeyPath, name: Any, values: Any, spec: ModelParams | None) -> list[Any] | None:
        if spec is not None and name not in spec:
            self.error(path, f"unknown hyperparameter '{name}'{suggest(name, spec)} "
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

    def _dimensions(self, doc: dict[str, Any], spec: ModelParams | None, fixed: dict[str, Any]) -> list[Dimension]:
        dims: list[Dimension] = []
        seen: dict[str, yamlpos.KeyPath] = {}

        def claim(name: str, path: yamlpos.KeyPath) -> bool:
            written = doc.get("params")
            fixed_names = written if isinstance(written, dict) else {}
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
                dims.append(Dimension(names, tuple(zip(*(lists[n] for n in names), strict=True)), gpath))
        return dims

    def _range(self, path: yamlpos.KeyPath, name: Any, value: dict[Any, Any], spec: ModelParams | None) -> Range | None:
        """An axis written as {low, high[, log][, step]}: an interval Optuna samples."""
        if not self.has_search:
            self.error(path, "an interval {low, high} is searched, not swept: add a search: block (sampler, "
                       "trials, objectives), or list the values to sweep")
            return None
        if spec is not None and name not in spec:
            self.error(path, f"unknown hyperparameter '{name}'{suggest(name, spec)} (known: {', '.join(spec)})",
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
                self.error(path + ("step",),
                           f"expected a step > 0{' (an integer)' if integer else ''}, got {show(step)}")
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
        if (step is not None and not integer
                and abs(round((high - low) / step) * step - (high - low)) > 1e-9 * abs(step)):
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
            self.error(("search", "parallel"),
                       f"expected at most search.trials ({trials}) trials at a time, got {parallel}")
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
                           f"{show(m)}{suggest(m, known) if isinstance(m, str) else ''}")
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

    def _exclude(self, value: Any, dims: list[Dimension]) -> list[dict[str, Any]]:
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
                               f"parameters ({', '.join(values_of) or 'none'}){suggest(name, values_of)}",
                               at_key=True)
                    ok = False
                elif not any(canonical_json(v) == canonical_json(w) for w in values_of[name]):
                    self.error(rpath + (name,), f"{show(v)} is not one of the swept values of '{name}' "
                               f"({', '.join(show(w) for w in values_of[name])}); the rule would never match")
                    ok = False
            if ok:
                rules.append(rule)
        return rules

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
                           f"{suggest(m, metrics)} (known: {', '.join(metrics)})")
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
        folder = self.project_path(("templates",), value, "template folder", self.checks.template_roots,
                                   "SWEEP_TEMPLATE_ROOTS", folder=True)
        if folder is None:
            return None
        missing = [n for n in ("job.sub.j2", "run_job.sh.j2") if not (folder / n).is_file()]
        if missing:
            self.error(("templates",), f"template folder {folder} lacks {', '.join(missing)}")
            return None
        return folder

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
        check_settings(self, spec)
        points = count_points(spec)
        total = points * spec.repeats
        if total > schema.MAX_RUNS:
            where: yamlpos.KeyPath
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


def _combinations(spec: GridSpec, a: str, b: str) -> list[tuple[Any, Any]]:
    """The (a, b) value pairs that really occur: rows of a zip group holding both, else all pairs."""
    for d in spec.dimensions:
        if a in d.names and b in d.names:
            i, j = d.names.index(a), d.names.index(b)
            return [(p[i], p[j]) for p in d.values]
    return [(x, y) for x in _values_of(spec, a) for y in _values_of(spec, b)]


def _where_values(spec: GridSpec, name: str) -> list[tuple[yamlpos.KeyPath, Any]]:
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


def _pairs_with_place(spec: GridSpec, a: str, b: str) -> list[tuple[tuple[Any, Any], yamlpos.KeyPath]]:
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


def _values_of(spec: GridSpec, name: str) -> list[Any]:
    if name in spec.fixed:
        return [spec.fixed[name]]
    for d in spec.dimensions:
        if name in d.names:
            i = d.names.index(name)
            return [p[i] for p in d.values]
    if name in spec.ranges:
        return [spec.ranges[name].low, spec.ranges[name].high]
    return []
