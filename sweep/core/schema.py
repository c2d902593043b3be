"""What a grid file may contain: top-level keys, hyperparameters per model, vocabularies.

The vocabularies mirror Keras 3's names so that a typo is caught before submission without
importing TensorFlow on the submit node (tests check them against Keras in the job env).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MODELS = ("lstm", "cnn")
CNN_HEADS = ("flatten", "global_average")

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "nadam", "adamax", "adagrad", "adadelta", "ftrl", "lion")
ACTIVATIONS = ("relu", "selu", "sigmoid", "tanh", "elu", "gelu", "silu", "swish", "softplus", "softsign",
               "leaky_relu", "relu6", "hard_sigmoid", "exponential", "linear", "mish")
CLASSIFICATION_LOSSES = ("binary_crossentropy", "binary_focal_crossentropy", "mean_squared_error", "mse",
                         "hinge", "squared_hinge")
REGRESSION_LOSSES = ("mean_squared_error", "mse", "mean_absolute_error", "mae", "huber", "log_cosh",
                     "mean_squared_logarithmic_error", "msle")

# Metrics each model's job writes (metrics.json keys) and their ranking direction.
CLASSIFIER_METRICS = {"f1": "max", "auc": "max", "eff_purity": "max", "precision": "max", "recall": "max",
                      "accuracy": "max", "loss": "min",
                      # on every candidate window of the test waveforms (the natural mix), not the balanced set
                      "natural_precision": "max", "natural_recall": "max", "natural_f1": "max",
                      "natural_eff_purity": "max", "natural_auc": "max"}
REGRESSOR_METRICS = {"mae": "min", "mse": "min", "abs_bias": "min", "rel_resolution": "min",
                     "bias": "min", "rel_bias": "min", "resolution": "min", "loss": "min"}
DEFAULT_RANKING = {"lstm": ["f1", "auc", "eff_purity"], "cnn": ["mae"]}


def metrics_for(model: str) -> dict[str, str]:
    """The metrics a model's job writes, each with its ranking direction ("max" or "min")."""
    return CLASSIFIER_METRICS if model == "lstm" else REGRESSOR_METRICS


# ---------------------------------------------------------------- bounds
# What a real pool could ever satisfy, and what a model could ever use: beyond these a value is a
# typo (an extra digit, a unit forgotten), refused at validation instead of queued.
MAX_CPUS = 1024
MAX_MEMORY_MB = 4 << 20  # 4 TB
MAX_DISK_MB = 64 << 20  # 64 TB
MAX_RUNTIME_S = 30 * 86400  # 30 days
MAX_RETRIES = 10
MAX_JOBS_AT_ONCE = 100_000  # condor.max_running / max_idle
MAX_RELEASES = 10  # memory escalation releases
MAX_SEED = 2**32 - 1  # what NumPy, TensorFlow and Keras all accept
MAX_WAVEFORMS = 10_000_000  # about 1.5 h of simulation at 2,000 waveforms/s
MAX_SAMPLES = 1_000_000_000
MAX_REPEATS = 1000
MAX_EPOCHS = 100_000
MAX_UNITS = 65_536  # units, filters, dense units of one layer
CNN_INPUT_LENGTH = 1024  # the clusterizer's input: peak times histogrammed in 1024 bins

# ---------------------------------------------------------------- value checks
# Each check returns None when fine, else the "expected ..." text.
Check = Callable[[Any], "str | None"]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    """Whether v is a finite int or float (not a bool, not NaN or infinity)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def int_at_least(low: int, high: int | None = None) -> Check:
    """A check that accepts integers >= low (and <= high, when given; not bools)."""
    def check(v: Any) -> str | None:
        if _is_int(v) and v >= low and (high is None or v <= high):
            return None
        return f"an integer ≥ {low}" if high is None else f"an integer from {low:,} to {high:,}"
    check.integer = True  # type: ignore[attr-defined]  # a search range over it samples integers
    return check


def number_in(low: float, high: float, low_open: bool = False, high_open: bool = True) -> Check:
    """A check that accepts finite numbers in the interval (default [low, high))."""
    lo, hi = ("(" if low_open else "["), (")" if high_open else "]")

    def check(v: Any) -> str | None:
        ok = is_number(v) and (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
        return None if ok else f"a number in {lo}{low}, {high}{hi}"
    return check


def number_or(word: str, number: Check) -> Check:
    """A check that accepts the string `word` or what `number` accepts."""
    def check(v: Any) -> str | None:
        why = None if v == word else number(v)
        return None if why is None else f"{why}, or {word!r}"
    return check


def positive_number(v: Any) -> str | None:
    """A check: finite numbers > 0."""
    return None if is_number(v) and v > 0 else "a number > 0"


def learning_rate(v: Any) -> str | None:
    """A check: a learning rate, > 0 and at most 10 (beyond that no optimizer converges)."""
    return None if is_number(v) and 0 < v <= 10 else "a number > 0 and ≤ 10"


def one_of(choices: tuple[str, ...]) -> Check:
    """A check that accepts one of the strings (and knows them, for "did you mean")."""
    def check(v: Any) -> str | None:
        return None if isinstance(v, str) and v in choices else "one of " + ", ".join(choices)
    check.choices = choices  # type: ignore[attr-defined]  # used for "did you mean"
    return check


def list_of(item: Check, length: int | None = None, min_length: int = 1) -> Check:
    """A check that accepts lists (of exactly `length`, or at least `min_length`) whose items pass `item`."""
    def check(v: Any) -> str | None:
        shape = f"a list of {length}" if length else f"a list of at least {min_length}"
        if not isinstance(v, list):
            return f"{shape} values"
        if (length is not None and len(v) != length) or len(v) < min_length:
            return f"{shape} values, got {len(v)}"
        for x in v:
            why = item(x)
            if why:
                return f"{shape} values, each {why}"
        return None
    check.item = item  # type: ignore[attr-defined]  # its choices, for "did you mean"
    return check


@dataclass(frozen=True)
class Param:
    """One hyperparameter: its check, default and what it means."""

    check: Check
    default: Any
    help: str
    # A parameter added after grids were in use: at its default it stays out of the configuration
    # id, so existing configurations keep their ids (and seeds) and are not rerun.
    omit_default_from_id: bool = False


COMMON_PARAMS: dict[str, Param] = {
    "optimizer": Param(one_of(OPTIMIZERS), "adam", "Keras optimizer name"),
    "learning_rate": Param(learning_rate, 0.001, "optimizer learning rate"),
    "batch_size": Param(int_at_least(1, 1_000_000), 150, "mini-batch size"),
    "epochs": Param(int_at_least(1, MAX_EPOCHS), 50, "maximum number of epochs"),
    "patience": Param(int_at_least(0, MAX_EPOCHS), 50, "EarlyStopping patience on val_loss (best weights restored)"),
    "train_fraction": Param(number_in(0, 1, low_open=True), 0.7,
                            "fraction of the non-test data used for training; the rest validates"),
    "test_fraction": Param(number_in(0, 1, low_open=True), 0.2, "fraction held out for the final test metrics"),
}

LSTM_PARAMS: dict[str, Param] = {
    **COMMON_PARAMS,
    "topology": Param(list_of(int_at_least(1, MAX_UNITS), length=3), [96, 128, 1],
                      "[LSTM units, Dense units, Dense units] as in the seed study"),
    "activations": Param(list_of(one_of(ACTIVATIONS), length=2), ["relu", "sigmoid"],
                         "activations of the two hidden Dense layers"),
    "dropout": Param(list_of(number_in(0, 1), length=2), [0.1, 0.1], "dropout after each hidden Dense layer"),
    "loss": Param(one_of(CLASSIFICATION_LOSSES), "binary_crossentropy", "training loss"),
    "threshold": Param(number_in(0, 1, low_open=True), 0.5, "decision threshold for precision/recall/F1"),
}

CNN_PARAMS: dict[str, Param] = {
    **COMMON_PARAMS,
    "batch_size": Param(int_at_least(1, 1_000_000), 250, "mini-batch size"),
    "optimizer": Param(one_of(OPTIMIZERS), "rmsprop", "Keras optimizer name"),
    "filters": Param(list_of(int_at_least(1, MAX_UNITS)), [16, 32], "Conv1D filters per block"),
    "kernel_sizes": Param(list_of(int_at_least(1, CNN_INPUT_LENGTH)), [5, 3],
                          "Conv1D kernel size per block (same length as filters)"),
    "pool_size": Param(int_at_least(1, CNN_INPUT_LENGTH), 4, "MaxPooling1D size after each block"),
    "convs_per_block": Param(int_at_least(1, 16), 1, "Conv1D layers per block before its pooling",
                             omit_default_from_id=True),
    "head": Param(one_of(CNN_HEADS), "flatten",
                  "flatten (keeps where a feature sits) or global_average (a count summed over the window)",
                  omit_default_from_id=True),
    "dense_units": Param(list_of(int_at_least(1, MAX_UNITS), min_length=0), [64],
                         "hidden Dense layers before the output"),
    "activation": Param(one_of(ACTIVATIONS), "relu", "activation of Conv1D and hidden Dense layers"),
    "dropout": Param(number_in(0, 1), 0.1, "dropout after each hidden Dense layer"),
    "loss": Param(one_of(REGRESSION_LOSSES), "mse", "training loss"),
}

PARAMS_BY_MODEL = {"lstm": LSTM_PARAMS, "cnn": CNN_PARAMS}


# ---------------------------------------------------------------- top-level sections
TOP_LEVEL_KEYS = ("sweep", "description", "model", "seed", "site", "data", "params", "axes", "zip", "exclude",
                  "sample", "repeats", "resources", "condor", "ranking", "templates", "search", "notify")
REQUIRED_TOP_LEVEL = ("sweep", "model", "data")
DATA_KEYS = ("path", "balanced", "max_samples", "simulate", "transfer", "url", "allow_http")
SIMULATE_KEYS = ("waveforms", "seed", "params")
RESOURCE_KEYS = ("request_cpus", "request_memory", "request_disk", "runtime", "request_gpus", "gpus_minimum_memory")
DEFAULT_RESOURCES = {"request_cpus": 1, "request_memory": "2 GB", "request_disk": "1 GB", "runtime": "2h"}
CONDOR_KEYS = ("requirements", "accounting_group", "max_runtime", "container_image", "transfer_container", "python",
               "cvmfs", "job_flavour", "job_duration_category", "max_retries", "max_running", "max_idle",
               "environment", "memory_escalation", "checkpoint_every", "io_proxy")
MAX_GPUS = 64
# A site profile (sites/<name>.yaml): defaults for the sections a grid can override.
SITE_KEYS = ("description", "shared_filesystem", "condor", "resources", "data")
SITE_DATA_KEYS = ("transfer",)
SITE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# CERN batch: +JobFlavour names a wall-time limit (seconds); `auto` picks the shortest that holds
# the grid's runtime.
JOB_FLAVOURS = {"espresso": 20 * 60, "microcentury": 3600, "longlunch": 2 * 3600, "workday": 8 * 3600,
                "tomorrow": 86400, "testmatch": 3 * 86400, "nextweek": 7 * 86400}
# OSPool: +JobDurationCategory and the wall time each allows.
JOB_DURATION_CATEGORIES = {"Medium": 20 * 3600, "Long": 40 * 3600}
# Where HTCondor can fetch an input from by itself (file-transfer plugins): data.url.
DATA_URL_SCHEMES = ("osdf", "pelican", "stash", "root", "https", "http", "s3")
# What container_image may name besides a file: an image HTCondor (Apptainer) pulls.
CONTAINER_URL_SCHEMES = ("docker", "oras", "osdf", "pelican", "library")
MEMORY_ESCALATION_KEYS = ("max_memory", "releases")

# ---------------------------------------------------------------- notifications (notify:)
NOTIFY_KEYS = ("email", "on", "webhook")
#: What notify.on may name: the sweep ended (whatever its result), it ended with failed runs (or
#: its DAGMan job was held for a problem), its DAGMan job was held.
NOTIFY_EVENTS = ("complete", "error", "held")
DEFAULT_NOTIFY_ON = ("complete",)
#: HTCondor's `notification` for the DAGMan job (and a driver job) by the events asked for: the
#: least of Complete, Error, Always that mails on every one of them (Always also mails when the
#: job is released or removed). HTCondor has one setting per job, so a set maps to one value.
NOTIFICATION_BY_EVENTS = {frozenset({"complete"}): "Complete", frozenset({"error"}): "Error"}
NOTIFICATION_OTHERWISE = "Always"
MAX_EMAILS = 10
MAX_EMAIL_CHARS = 254  # RFC 5321's limit on a forward path
#: A plausible e-mail address that goes into a submit description as it is: no spaces, quotes,
#: commas, line breaks or submit macros; a domain with a dot-separated host name.
EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$")
WEBHOOK_SCHEMES = ("https", "http")
MAX_WEBHOOK_CHARS = 2048

# ---------------------------------------------------------------- adaptive search (search:)
SEARCH_KEYS = ("sampler", "trials", "parallel", "pruner", "objectives", "seed", "retries", "startup_trials",
               "warmup_epochs")
#: Optuna's samplers by the name a grid gives them; which take several objectives.
SAMPLERS = ("tpe", "random", "cmaes", "nsga2", "grid")
MULTI_OBJECTIVE_SAMPLERS = ("tpe", "random", "nsga2", "grid")
#: Optuna's pruners (epochs are the resource); pruning needs a single objective.
PRUNERS = ("none", "median", "successive_halving", "hyperband")
RANGE_KEYS = ("low", "high", "log", "step")
#: The keys of an axis that is not swept by a list; what they mean instead.
NOT_IN_SEARCH = {"zip": "coupled values (zip) are not part of a search space: sweep one of them, fix the others",
                 "exclude": "exclude rules drop grid points; a search samples its space instead",
                 "sample": "sample draws grid points; a search's size is search.trials",
                 "repeats": "repeats run a grid point several times; a search's trials are told their seeded "
                            "result once"}
MAX_TRIALS = 100_000
MAX_PARALLEL_TRIALS = 10_000
#: The per-epoch validation column of each metric (history.csv, the job's progress reports): what
#: a pruner compares while a trial trains. A metric without one is pruned on val_loss.
VALIDATION_COLUMNS = {"lstm": ("val_loss", "val_accuracy", "val_precision", "val_recall", "val_f1", "val_auc",
                               "val_eff_purity"),
                      "cnn": ("val_loss", "val_mse", "val_mae", "val_bias", "val_rel_bias", "val_resolution",
                              "val_rel_resolution")}


def validation_column(model: str, metric: str) -> tuple[str, str]:
    """(the history column a pruner watches for a test metric, its direction "max" | "min")."""
    column = f"val_{metric}"
    if column in VALIDATION_COLUMNS.get(model, ()):
        return column, metrics_for(model).get(metric, "max")
    return "val_loss", "min"


# Guard against grids that expand beyond what a pool (or this process) can take.
MAX_RUNS = 1_000_000

# A sweep name becomes a folder name and an HTCondor batch name.
SWEEP_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# What may not appear in a submit-file value: anything a reader of the file might take for a line
# break or control (Unicode Cc, which holds DEL and NEL U+0085, and the separators Zl U+2028 and
# Zp U+2029 that Python's splitlines() breaks on).
CONTROL_CHARS_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Submit-language macros that HTCondor expands in a value: $(X), $$(X), $ENV(X), $RANDOM_INTEGER(..),
# $INT(..), $Fpdnxb(..) ...
SUBMIT_MACRO_RE = re.compile(r"\$+[A-Za-z_]*\(")
# Accounting group / container image / python path: conservative character sets.
ACCOUNTING_GROUP_RE = re.compile(r"^[A-Za-z0-9_.@-]+$")
SAFE_PATH_RE = re.compile(r"^[A-Za-z0-9_./:+@=-]+$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
