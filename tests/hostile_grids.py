"""A corpus of malformed and hostile grid files, and how each must be refused.

Each case is a grid file (text, or bytes for encodings) with the key its error must name and a
fragment of the message. `{outside}` in a text is a folder outside the project (it holds a
dataset and a template folder), `{root}` the project. The project holds `data/d.npz`, a
template folder `tpl/`, and symlinks `data/escape.npz` and `tpl_link` pointing outside.

Used by tests/test_hostile_grids.py (every case, in this process and a few in bounded
subprocesses) and bench/bench_hostile.py (every case in its own bounded process, with totals).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

BASE = "sweep: t\nmodel: lstm\ndata: {path: data/d.npz}\n"
CNN = "sweep: t\nmodel: cnn\ndata: {path: data/d.npz}\n"


@dataclass(frozen=True)
class Case:
    """One hostile grid: what it is, its content, and the refusal it must get."""

    kind: str  # the class of defect (the headings)
    name: str
    text: str | bytes
    key: str  # "" when the problem is the file itself (still with a line)
    fragment: str
    line: bool = True  # the message must give a line
    bounded: bool = False  # run with a memory and time bound (bombs, huge inputs)

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.name}"


def _q(value: str) -> str:
    """A YAML double-quoted scalar holding exactly value (JSON strings are YAML)."""
    return json.dumps(value)


def _bomb(levels: int = 9, width: int = 9) -> tuple[str, str]:
    """Anchors a..: each a list of `width` aliases of the one before ('billion laughs')."""
    names = [f"l{i}" for i in range(levels)]
    text = f"{names[0]}: &{names[0]} [{', '.join(['lol'] * width)}]\n"
    for prev, cur in pairwise(names):
        text += f"{cur}: &{cur} [{', '.join([f'*{prev}'] * width)}]\n"
    return text, names[-1]


# --------------------------------------------------------------- a value must not change the submit file
# Payloads appended to a valid value of each field that reaches a submit file or the wrapper.
PAYLOADS = {
    "newline": "\nexecutable = /bin/sh",
    "carriage-return": "\rexecutable = /bin/sh",
    "nel": "\u0085executable = /bin/sh",
    "line-separator": "\u2028executable = /bin/sh",
    "paragraph-separator": "\u2029executable = /bin/sh",
    "del": "\x7f",
    "escape": "\x1b[2J",
    "nul": "\x00",
    "trailing-backslash": " \\",
    "macro": "$(Cluster)",
    "env-macro": "$ENV(HOME)",
    "random-macro": "$RANDOM_INTEGER(1, 9)",
    "dollar-dollar": "$$(Memory)",
    "vertical-tab": "\x0bexecutable = /bin/sh",
    "form-feed": "\x0cexecutable = /bin/sh",
    "c1-csi": "\x9b2J",
}
FIELDS = {  # field -> (grid text with {v} for the value, key, valid value)
    "requirements": ("condor: {{requirements: {v}}}\n", "condor.requirements", 'OpSys == "LINUX"'),
    "accounting_group": ("condor: {{accounting_group: {v}}}\n", "condor.accounting_group", "group_fcc.user"),
    "container_image": ("condor: {{container_image: {v}}}\n", "condor.container_image", "docker://tensorflow/tf"),
    "python": ("condor: {{python: {v}}}\n", "condor.python", "/usr/bin/python3"),
    "environment": ("condor: {{environment: {{OMP_NUM_THREADS: {v}}}}}\n", "condor.environment.OMP_NUM_THREADS",
                    "1"),
    "cvmfs": ("condor: {{cvmfs: {v}}}\n", "condor.cvmfs", "/cvmfs/sft.cern.ch/lcg/views/LCG_106/x86/setup.sh"),
    "job_flavour": ("condor: {{job_flavour: {v}}}\n", "condor.job_flavour", "workday"),
    "site": ("site: {v}\n", "site", "recas"),
    "data_url": ("", "data.url", "osdf:///ospool/ap40/d.npz"),
    "data_path": ("", "data.path", "data/d.npz"),
    "templates": ("templates: {v}\n", "templates", "tpl"),
    "sweep_name": ("", "sweep", "t"),
}


def _injection_cases() -> list[Case]:
    out = []
    for field_name, (template, key, valid) in FIELDS.items():
        for payload_name, payload in PAYLOADS.items():
            value = _q(valid + payload)
            if field_name == "data_path":
                text = f"sweep: t\nmodel: lstm\ndata: {{path: {value}}}\n"
            elif field_name == "data_url":
                text = f"sweep: t\nmodel: lstm\ndata: {{path: data/d.npz, url: {value}}}\n"
            elif field_name == "sweep_name":
                text = f"sweep: {value}\nmodel: lstm\ndata: {{path: data/d.npz}}\n"
            else:
                text = BASE + template.format(v=value)
            out.append(Case("submit-structure", f"{field_name}+{payload_name}", text, key, ""))
    return out


STRUCTURE = [
    Case("submit-structure", "requirements-backslash-continues",
         BASE + "condor:\n  requirements: 'OpSys == \"LINUX\" \\'\n"
         "  accounting_group: group_fcc.user\n", "condor.requirements", "trailing backslash"),
    Case("submit-structure", "requirements-macro", BASE + "condor: {requirements: 'ClusterId == $(Cluster)'}\n",
         "condor.requirements", "submit macro"),
    Case("submit-structure", "requirements-unbalanced-quote",
         BASE + "condor: {requirements: 'OpSysAndVer == \"AlmaLinux9'}\n",
         "condor.requirements", "ClassAd"),
    Case("submit-structure", "requirements-unbalanced-paren", BASE + "condor: {requirements: '(Memory > 1024'}\n",
         "condor.requirements", "ClassAd"),
    Case("submit-structure", "requirements-escapes-its-parentheses",
         BASE + "condor: {requirements: 'True) || (True'}\n", "condor.requirements", "closes a '(' that"),
    Case("submit-structure", "data-url-plain-http", "sweep: t\nmodel: lstm\ndata: {path: data/d.npz, url: 'http://h/d.npz'}\n",
         "data.url", "data.allow_http: true"),
    Case("submit-structure", "requirements-empty", BASE + "condor: {requirements: ''}\n", "condor.requirements",
         "one-line ClassAd expression"),
    Case("submit-structure", "environment-name", BASE + "condor: {environment: {'A B': x}}\n",
         "condor.environment.A B", "variable name"),
]

# --------------------------------------------------------------- paths stay where they belong
PATHS = [
    Case("paths", "data-dotdot", "sweep: t\nmodel: lstm\ndata: {path: ../outside.npz}\n", "data.path",
         "outside the project"),
    Case("paths", "data-absolute", "sweep: t\nmodel: lstm\ndata: {path: {outside}/d.npz}\n", "data.path",
         "outside the project"),
    Case("paths", "data-etc-passwd", "sweep: t\nmodel: lstm\ndata: {path: /etc/passwd}\n", "data.path",
         "outside the project"),
    Case("paths", "data-symlink-out", "sweep: t\nmodel: lstm\ndata: {path: data/escape.npz}\n", "data.path",
         "outside the project"),
    Case("paths", "data-dot", "sweep: t\nmodel: lstm\ndata: {path: .}\n", "data.path", "got the folder"),
    Case("paths", "data-root", "sweep: t\nmodel: lstm\ndata: {path: /}\n", "data.path", "outside the project"),
    Case("paths", "data-folder", "sweep: t\nmodel: lstm\ndata: {path: data}\n", "data.path", "got the folder"),
    Case("paths", "data-300", "sweep: t\nmodel: lstm\ndata: {path: data/" + "x" * 300 + ".npz}\n", "data.path",
         "file system can hold"),
    Case("paths", "data-5000", "sweep: t\nmodel: lstm\ndata: {path: " + "/x" * 2500 + "}\n", "data.path",
         "file system can hold"),
    Case("paths", "data-simulate-outside",
         "sweep: t\nmodel: lstm\ndata: {path: ../sim.npz, simulate: {waveforms: 10}}\n", "data.path",
         "outside the project"),
    Case("paths", "templates-dotdot", BASE + "templates: ../tpl\n", "templates", "outside the project"),
    Case("paths", "templates-absolute", BASE + "templates: {outside}/tpl\n", "templates", "outside the project"),
    Case("paths", "templates-symlink-out", BASE + "templates: tpl_link\n", "templates", "outside the project"),
    Case("paths", "templates-300", BASE + "templates: " + "t" * 300 + "\n", "templates", "file system can hold"),
    Case("paths", "templates-a-file", BASE + "templates: data/d.npz\n", "templates", "expected a folder"),
    Case("paths", "python-dash-c", BASE + "condor: {python: -c}\n", "condor.python", "absolute path"),
    Case("paths", "python-relative", BASE + "condor: {python: ../../../bin/sh}\n", "condor.python",
         "absolute path"),
    Case("paths", "python-missing", BASE + "condor: {python: /no/such/python3}\n", "condor.python",
         "does not exist"),
    Case("paths", "site-dotdot", BASE + "site: ../../etc/passwd\n", "site", "expected a site profile name"),
    Case("paths", "site-absolute", BASE + "site: /etc/passwd\n", "site", "expected a site profile name"),
    Case("paths", "image-dotdot", BASE + "condor: {container_image: ../outside.sif}\n", "condor.container_image",
         "outside the project"),
    Case("paths", "image-symlink-out", BASE + "condor: {container_image: data/escape.npz}\n",
         "condor.container_image", "outside the project"),
    Case("paths", "cvmfs-relative", BASE + "condor: {cvmfs: setup.sh}\n", "condor.cvmfs", "absolute path"),
    Case("paths", "cvmfs-dotdot", BASE + "condor: {cvmfs: /cvmfs/../etc/profile}\n", "condor.cvmfs", "absolute path"),
    Case("paths", "url-file-scheme", "sweep: t\nmodel: lstm\ndata: {path: data/d.npz, url: 'file:///etc/passwd'}\n",
         "data.url", "URL HTCondor can fetch"),
    Case("paths", "url-second-input", "sweep: t\nmodel: lstm\ndata: {path: data/d.npz, url: 'osdf:///a,/etc/passwd'}\n",
         "data.url", "URL HTCondor can fetch"),
    Case("paths", "python-not-executable", BASE + "condor: {python: {root}/data/d.npz}\n", "condor.python",
         "not executable"),
]

# --------------------------------------------------------------- the validator must not hang, blow up or crash
_BOMB, _TOP = _bomb()
VALIDATOR = [
    # a list where a name is expected: `value in {...}` on a list raised TypeError (a traceback) once
    Case("validator", "flavour-a-list", BASE + "condor: {job_flavour: [auto]}\n", "condor.job_flavour",
         "expected one of"),
    Case("validator", "duration-a-mapping", BASE + "condor: {job_duration_category: {Long: 1}}\n",
         "condor.job_duration_category", "expected one of"),
    Case("validator", "site-a-list", BASE + "site: [recas]\n", "site", "expected a site profile name"),
    Case("validator", "bomb-in-sweep-name", _BOMB + f"sweep: *{_TOP}\nmodel: lstm\ndata: {{path: data/d.npz}}\n",
         "", "alias bomb", bounded=True),
    Case("validator", "bomb-in-axis", _BOMB + BASE + f"axes:\n  optimizer: *{_TOP}\n", "", "alias bomb",
         bounded=True),
    Case("validator", "bomb-in-simulate-params",
         _BOMB + "sweep: t\nmodel: lstm\n"
         f"data: {{path: data/new.npz, simulate: {{params: {{noise_rms_mv: *{_TOP}}}}}}}\n",
         "", "alias bomb", bounded=True),
    Case("validator", "small-bomb-message-is-bounded",
         _bomb(levels=4, width=9)[0] + "sweep: *l3\nmodel: lstm\ndata: {path: data/d.npz}\n", "sweep",
         "...", bounded=True),
    Case("validator", "axis-4000-values-one-repeated", BASE + "axes:\n  batch_size: ["
         + ", ".join(str(i) for i in range(1, 4000)) + ", 17]\n", "axes.batch_size[3999]",
         "value 17 appears twice in this axis (also at [16])",
         bounded=True),
    Case("validator", "axis-500000-values", BASE + "axes:\n  batch_size: ["
         + ", ".join(str(i) for i in range(1, 500_001)) + ", 1]\nsample: 10\n", "axes.batch_size[500000]",
         "appears twice in this axis (also at [0])", bounded=True),
    Case("validator", "nesting-400-block",
         BASE + "params:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(400)),
         "", "nesting deeper than", bounded=True),
    Case("validator", "nesting-1000-flow", BASE + "axes: {optimizer: " + "[" * 1000 + "]" * 1000 + "}\n", "",
         "nesting deeper than", bounded=True),
    Case("validator", "tag-on-sequence", BASE + "axes:\n  optimizer: !optimizers [adam, sgd]\n", "", "YAML tags"),
    Case("validator", "python-tag-on-sequence",
         BASE + "axes:\n  optimizer: !!python/object/apply:os.system [adam, sgd]\n",
         "", "!!python/object/apply:os.system"),
    Case("validator", "tag-on-scalar", BASE + "params: {optimizer: !!str adam}\n", "", "YAML tags"),
    Case("validator", "tag-on-mapping", BASE + "params: !!map {optimizer: adam}\n", "", "YAML tags"),
    Case("validator", "local-tag", BASE + "params: {optimizer: !local adam}\n", "", "YAML tags"),
    Case("validator", "self-alias", BASE + "axes: &a {optimizer: [*a]}\n", "", "contains it"),
    Case("validator", "merge-key", "defaults: &d {epochs: 3}\n" + BASE + "params:\n  <<: *d\n", "",
         "merge keys"),
    Case("validator", "complex-key", BASE + "params:\n  ? [a, b]\n  : 1\n", "", "plain name"),
    Case("validator", "huge-file", BASE + "description: '" + "x" * (65 << 20) + "'\n", "", "larger than",
         line=False, bounded=True),
]

# --------------------------------------------------------------- sane bounds
BOUNDS = [
    Case("bounds", "cpus-1e30", BASE + "resources: {request_cpus: 1000000000000000000000000000000}\n",
         "resources.request_cpus", "an integer from 1 to 1,024"),
    Case("bounds", "retries-1e30", BASE + "condor: {max_retries: 1000000000000000000000000000000}\n",
         "condor.max_retries", "an integer from 0 to 10"),
    Case("bounds", "memory-1000TB", BASE + "resources: {request_memory: 1000 TB}\n", "resources.request_memory",
         "at most 4 TB"),
    Case("bounds", "disk-1e30", BASE + "resources: {request_disk: 1000000000000000000000000000000}\n",
         "resources.request_disk", "finite size"),
    Case("bounds", "runtime-10-years", BASE + "resources: {runtime: 3650d}\n", "resources.runtime", "at most 720h"),
    Case("bounds", "max-runtime-10-years", BASE + "condor: {max_runtime: 3650d}\n", "condor.max_runtime",
         "at most 720h"),
    Case("bounds", "learning-rate-1e300", BASE + "params: {learning_rate: 1.0e+300}\n", "params.learning_rate",
         "≤ 10"),
    Case("bounds", "waveforms-1e12", "sweep: t\nmodel: lstm\ndata: {path: data/new.npz, simulate: "
         "{waveforms: 1000000000000}}\n", "data.simulate.waveforms", "an integer from 1 to 10,000,000"),
    Case("bounds", "seed-40-digits", BASE + "seed: 1234567890123456789012345678901234567890\n", "seed",
         "an integer from 0 to 4,294,967,295"),
    Case("bounds", "simulate-seed-40-digits", "sweep: t\nmodel: lstm\ndata: {path: data/new.npz, simulate: "
         "{seed: 1234567890123456789012345678901234567890}}\n", "data.simulate.seed", "4,294,967,295"),
    Case("bounds", "sample-more-than-grid", BASE + "axes: {optimizer: [adam, sgd]}\nsample: 100\n", "sample",
         "more than the grid's 2 points"),
    Case("bounds", "sample-1e30", BASE + "axes: {optimizer: [adam, sgd]}\nsample: 1000000000000000000000000000000\n",
         "sample", "an integer from 1 to 1,000,000"),
    Case("bounds", "ranking-repeated", BASE + "ranking: [f1, auc, f1]\n", "ranking[2]", "already ranked at [0]"),
    Case("bounds", "repeats-1e6", BASE + "repeats: 1000000\n", "repeats", "an integer from 1 to 1,000"),
    Case("bounds", "batch-size-1e12", BASE + "params: {batch_size: 1000000000000}\n", "params.batch_size",
         "an integer from 1 to 1,000,000"),
    Case("bounds", "epochs-1e9", BASE + "params: {epochs: 1000000000}\n", "params.epochs", "100,000"),
    Case("bounds", "units-1e9", BASE + "params: {topology: [1000000000, 1, 1]}\n", "params.topology", "65,536"),
    Case("bounds", "max-samples-1e30", "sweep: t\nmodel: lstm\ndata: {path: data/d.npz, max_samples: "
         "1000000000000000000000000000000}\n", "data.max_samples", "1,000,000,000"),
    Case("bounds", "releases-1e6", BASE + "condor: {memory_escalation: {releases: 1000000}}\n",
         "condor.memory_escalation.releases", "an integer from 1 to 10"),
    Case("bounds", "cnn-pool-5000", CNN + "params: {pool_size: 5000}\n", "params.pool_size",
         "an integer from 1 to 1,024"),
    Case("bounds", "cnn-8-blocks-of-pool-4", CNN + "params: {filters: [8, 8, 8, 8, 8, 8, 8, 8], "
         "kernel_sizes: [3, 3, 3, 3, 3, 3, 3, 3], pool_size: 4}\n", "params.filters", "below one sample"),
    Case("bounds", "cnn-swept-pool-too-big", CNN + "params: {filters: [8, 8, 8], kernel_sizes: [3, 3, 3]}\n"
         "axes: {pool_size: [2, 16]}\n", "axes.pool_size[1]", "below one sample"),
]

# --------------------------------------------------------------- positions that point at the right place
POSITIONS = [
    Case("positions", "swept-test-fraction", BASE + "axes:\n  test_fraction: [0.2, 0.95]\n", "axes.test_fraction[1]",
         "test_fraction < 0.9"),
    Case("positions", "zipped-test-fraction", BASE + "zip:\n  - test_fraction: [0.2, 0.95]\n    epochs: [1, 2]\n",
         "zip[0].test_fraction[1]", "test_fraction < 0.9"),
    Case("positions", "zip-too-large", BASE + "zip:\n  - batch_size: [" + ", ".join(str(i) for i in range(1, 1002))
         + "]\n    epochs: [" + ", ".join(str(i) for i in range(1, 1002)) + "]\n  - learning_rate: ["
         + ", ".join(f"0.{i:04d}" for i in range(1, 1002)) + "]\n    patience: ["
         + ", ".join(str(i) for i in range(1, 1002)) + "]\n", "zip[0]", "expands to 1,002,001 runs"),
    Case("positions", "aliased-value", "bad: &bad 0\n" + BASE + "params:\n  epochs: *bad\n", "params.epochs",
         "an alias of the value written at line 1"),
]

# --------------------------------------------------------------- messages a physicist understands, printed safely
MESSAGES = [
    Case("messages", "key-with-newline",
         BASE + "params: {\"x\\nexamples/ok.yaml: valid; sweep 'demo' expands to 4\": 1}\n",
         "params.x\\nexamples/ok.yaml: valid; sweep 'demo' expands to 4", "unknown key"),
    Case("messages", "key-with-ansi", BASE + "params: {\"\\e[2J\\e[31mcleared\": 1}\n",
         "params.\\x1b[2J\\x1b[31mcleared",
         "unknown key"),
    Case("messages", "key-with-osc", BASE + "params: {\"\\e]0;pwned\\a\": 1}\n", "params.\\x1b]0;pwned\\x07",
         "unknown key"),
    Case("messages", "key-with-bidi", BASE + "params: {\"epochs\\u202e\": 1}\n", "params.epochs\\u202e",
         "unknown key"),
    Case("messages", "value-with-ansi", BASE + "params: {optimizer: \"\\e[2Jadam\"}\n", "params.optimizer",
         "\\x1b[2Jadam"),
    Case("messages", "sexagesimal-sweep-name", "sweep: 12:30\nmodel: lstm\ndata: {path: data/d.npz}\n", "sweep",
         "got '12:30'"),
    Case("messages", "tab-indent", BASE + "params:\n\tepochs: 3\n", "", "a tab character"),
    Case("messages", "not-utf8", (BASE + "description: caf").encode() + b"\xe9\n", "", "is not UTF-8", ),
    Case("messages", "nul-byte", (BASE + "description: a").encode() + b"\x00\n", "", "control character U+0000"),
    Case("messages", "bel-byte", (BASE + "description: a").encode() + b"\x07\n", "", "control character U+0007"),
    Case("messages", "list-given-a-word", BASE + "params: {activations: relu}\n", "params.activations",
         "expected a list of 2 values"),
    Case("messages", "duplicate-key", BASE + "params: {epochs: 1, epochs: 2}\n", "params.epochs", "more than once"),
]

# --------------------------------------------------------------- search: blocks and intervals
SEARCH_BASE = BASE + "axes:\n  optimizer: [adam, sgd]\n"
SEARCH = [
    Case("search", "interval-without-search", BASE + "axes:\n  learning_rate: {low: 1.0e-4, high: 0.1}\n",
         "axes.learning_rate", "add a search: block"),
    Case("search", "interval-unknown-key", SEARCH_BASE + "  learning_rate: {low: 1.0e-4, high: 0.1, logg: true}\n"
         "search: {trials: 4}\n", "axes.learning_rate.logg", "unknown key 'logg'"),
    Case("search", "interval-missing-high", SEARCH_BASE + "  learning_rate: {low: 1.0e-4}\nsearch: {trials: 4}\n",
         "axes.learning_rate", "needs 'high'"),
    Case("search", "interval-reversed", SEARCH_BASE + "  learning_rate: {low: 0.1, high: 0.001}\nsearch: {trials: 4}\n",
         "axes.learning_rate.high", "expected high > low"),
    Case("search", "interval-log-from-zero", CNN + "axes:\n  dropout: {low: 0.0, high: 0.5, log: true}\n"
         "search: {trials: 4, objectives: mae}\n", "axes.dropout.low", "needs low > 0"),
    Case("search", "interval-of-an-unknown-parameter", SEARCH_BASE + "  learnin_rate: {low: 0.001, high: 0.1}\n"
         "search: {trials: 4}\n", "axes.learnin_rate", "did you mean 'learning_rate'"),
    Case("search", "interval-log-with-step", SEARCH_BASE + "  learning_rate: {low: 0.001, high: 0.1, log: true, "
         "step: 0.001}\nsearch: {trials: 4}\n", "axes.learning_rate.step", "cannot have a step"),
    Case("search", "interval-float-for-integers", SEARCH_BASE + "  batch_size: {low: 32.5, high: 256}\n"
         "search: {trials: 4}\n", "axes.batch_size.low", "takes integers"),
    Case("search", "interval-beyond-the-parameter", SEARCH_BASE + "  learning_rate: {low: 0.001, high: 50}\n"
         "search: {trials: 4}\n", "axes.learning_rate.high", "≤ 10"),
    Case("search", "interval-of-a-list-parameter", SEARCH_BASE + "  topology: {low: 1, high: 9}\n"
         "search: {trials: 4}\n", "axes.topology", "takes a list"),
    Case("search", "interval-log-bool", SEARCH_BASE + "  learning_rate: {low: 0.001, high: 0.1, log: \"yes\"}\n"
         "search: {trials: 4}\n", "axes.learning_rate.log", "true or false"),
    Case("search", "interval-steps-do-not-fit", SEARCH_BASE + "  learning_rate: {low: 0.001, high: 0.1, step: 0.03}\n"
         "search: {trials: 4}\n", "axes.learning_rate.step", "whole number of steps"),
    Case("search", "unknown-search-key", SEARCH_BASE + "search: {trials: 4, sampelr: tpe}\n", "search.sampelr",
         "did you mean 'sampler'"),
    Case("search", "unknown-sampler", SEARCH_BASE + "search: {sampler: tpee}\n", "search.sampler",
         "did you mean 'tpe'"),
    Case("search", "unknown-pruner", SEARCH_BASE + "search: {pruner: hyperbnd}\n", "search.pruner",
         "did you mean 'hyperband'"),
    Case("search", "zero-trials", SEARCH_BASE + "search: {trials: 0}\n", "search.trials", "an integer from 1"),
    Case("search", "huge-trials", SEARCH_BASE + "search: {trials: 10000000000}\n", "search.trials", "100,000"),
    Case("search", "more-parallel-than-trials", SEARCH_BASE + "search: {trials: 4, parallel: 9}\n",
         "search.parallel", "at most search.trials"),
    Case("search", "unknown-objective", SEARCH_BASE + "search: {objectives: [f1, eff_purty]}\n", "search.objectives[1]",
         "did you mean 'eff_purity'"),
    Case("search", "objective-of-the-other-model", SEARCH_BASE + "search: {objectives: mae}\n", "search.objectives",
         "expected a metric the lstm jobs write"),
    Case("search", "objective-twice", SEARCH_BASE + "search: {objectives: [f1, auc, f1]}\n", "search.objectives[2]",
         "named twice"),
    Case("search", "no-objectives", SEARCH_BASE + "search: {objectives: []}\n", "search.objectives",
         "a metric or a list of metrics"),
    Case("search", "pruning-several-objectives", SEARCH_BASE + "search: {objectives: [f1, auc], pruner: median}\n",
         "search.pruner", "use pruner: none"),
    Case("search", "cmaes-several-objectives", SEARCH_BASE + "search: {objectives: [f1, auc], sampler: cmaes}\n",
         "search.sampler", "optimises one objective"),
    Case("search", "grid-sampler-continuous", SEARCH_BASE + "  learning_rate: {low: 0.001, high: 0.1}\n"
         "search: {sampler: grid, trials: 4}\n", "search.sampler", "is continuous"),
    Case("search", "grid-sampler-more-trials-than-points", SEARCH_BASE + "search: {sampler: grid, trials: 5}\n",
         "search.trials", "space has 2 points"),
    Case("search", "search-with-zip", BASE + "zip:\n  - {optimizer: [adam], batch_size: [64]}\nsearch: {trials: 2}\n",
         "zip", "not used with search"),
    Case("search", "search-with-repeats", SEARCH_BASE + "repeats: 3\nsearch: {trials: 2}\n", "repeats",
         "not used with search"),
    Case("search", "search-with-sample", SEARCH_BASE + "sample: 3\nsearch: {trials: 2}\n", "sample",
         "not used with search"),
    Case("search", "search-not-a-mapping", SEARCH_BASE + "search: [tpe, 10]\n", "search", "expected a mapping"),
    Case("search", "search-seed-negative", SEARCH_BASE + "search: {seed: -1}\n", "search.seed", "an integer from 0"),
    Case("search", "search-retries-huge", SEARCH_BASE + "search: {retries: 1000}\n", "search.retries", "to 10"),
    Case("search", "interval-injection", SEARCH_BASE + "  learning_rate: {low: \"0.001\\nqueue 9\", high: 0.1}\n"
         "search: {trials: 4}\n", "axes.learning_rate.low", "expected a number"),
]

CORPUS: list[Case] = (_injection_cases() + STRUCTURE + PATHS + VALIDATOR + BOUNDS + POSITIONS + MESSAGES
                      + SEARCH)


def make_project(base: Path) -> tuple[Path, Path]:
    """The project and the outside folder every case refers to; returns (root, outside)."""
    root, outside = base / "project", base / "outside"
    for folder in (root / "data", root / "tpl", outside / "tpl"):
        folder.mkdir(parents=True, exist_ok=True)
    (root / "data" / "d.npz").write_bytes(b"a dataset")
    (outside / "d.npz").write_bytes(b"a dataset outside")
    (base / "outside.npz").write_bytes(b"next to the project")
    for folder in (root / "tpl", outside / "tpl"):
        for name in ("job.sub.j2", "run_job.sh.j2"):
            (folder / name).write_text("# a template\n")
    (root / "data" / "escape.npz").symlink_to(outside / "d.npz")
    (root / "tpl_link").symlink_to(outside / "tpl")
    return root, outside


def write_case(case: Case, root: Path, outside: Path) -> Path:
    """The case's grid file inside the project."""
    path = root / f"{case.name}.yaml"
    if isinstance(case.text, bytes):
        path.write_bytes(case.text)
    else:
        path.write_text(case.text.replace("{outside}", str(outside)).replace("{root}", str(root)), encoding="utf-8")
    return path
