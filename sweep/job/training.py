"""Train one configuration and write its results (runs inside the job process only).

Input pipeline: a hand-built tf.data pipeline (in-memory tensors, per-epoch reshuffle,
batch, prefetch(2), autotune off). In TensorFlow 2.21 `fit` on NumPy arrays builds its own
pipeline whose autotune thread sometimes stalls the start of an epoch for seconds; the
explicit pipeline avoids that and trains the same model on the same batches.

Validation: after each epoch the validation split is predicted once; the loss and every
metric (precision, recall, F1, accuracy, ROC AUC, efficiency×purity, or MSE/MAE/bias) come
from those predictions, and EarlyStopping (restore best weights) watches that val_loss.
Final metrics are on a held-out test split, with the best epoch's weights.

Splits without leakage: the peak finder's windows are split by *waveform* (windows of one
waveform overlap and share its noise), with the sweep's data seed, so that every run of a sweep
tests on the same waveforms and none of them feeds training. Next to the metrics on the
(balanced) test windows, as the seed study reports them, the `natural_*` metrics score every
candidate window of the test waveforms: the mix a physicist applies the finder to.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError
from ..core.metrics import classification_metrics, regression_metrics, roc_points
from ..core.names import HISTORY, MODEL, ROC
from ..core.schema import DEFAULT_RANKING, validation_column
from ..fsutil import atomic_write_text, atomic_write_with
from ..physics import datasets
from ..records.metrics import Metrics, Pruned, Split
from ..records.modelinfo import ModelInfo, ModelInput, TrainedOn, write_model_info
from . import checkpoint
from .phases import PhaseClock

CLASSIFIER_HISTORY = ["epoch", "loss", "accuracy", "precision", "recall", "f1", "eff_purity",
                      "val_loss", "val_accuracy", "val_precision", "val_recall", "val_f1", "val_auc",
                      "val_eff_purity", "seconds"]
REGRESSOR_HISTORY = ["epoch", "loss", "mae", "val_loss", "val_mse", "val_mae", "val_bias", "val_rel_bias",
                     "val_resolution", "val_rel_resolution", "seconds"]


STEPS_PER_EXECUTION = 1

#: Windows per step of every prediction pass (validation after each epoch, test, natural mix). Not
#: Keras's default 32 (thousands of steps of Python overhead), nor one large batch: the LSTM's
#: per-step activations of 2,048 windows (2,048 × 4 × units float32) stay in the core's caches,
#: where 8,192 spill them; on the demo grid's LSTM, the natural mix (~200,000 windows) takes
#: about 8 % less CPU than at 8,192 (issue 27). The scores are the same numbers at any batch size
#: (checked on that model from 256 to 8,192: identical), so the metrics do not change with it.
PREDICT_BATCH = 2048


def resolve_data_path(data: dict[str, Any], cwd: Path) -> Path:
    """The dataset: transferred into the scratch folder by HTCondor, else the submit-side path.

    Raises:
        DatasetError: neither exists.
    """
    local = cwd / data["file"]
    if local.is_file():
        return local
    path = Path(data["path"])
    if path.is_file():
        return path
    raise datasets.DatasetError(f"dataset not found: neither {local} nor {path} exists")


#: At most this many natural-mix windows are scored for the natural_* test metrics (whole waveforms).
NATURAL_MAX_WINDOWS = 300_000


def load_data(model: str, data: dict[str, Any], path: Path):
    """(X, y, waveform of each sample) of the model's dataset, shuffled by the sweep's data seed.
    A clusterizer sample is one waveform, so its waveform is its own index.

    Raises:
        DatasetError: the file is unreadable or not a dataset.
    """
    if model == "lstm":
        return datasets.load_peak_windows(path, balanced=data.get("balanced", True),
                                          max_samples=data.get("max_samples"), seed=data.get("seed", 0))
    x, y = datasets.load_cluster_dataset(path, max_samples=data.get("max_samples"), seed=data.get("seed", 0))
    return x, y, np.arange(len(x), dtype=np.int64)


def split_by_waveform(groups: np.ndarray, test_fraction: float, train_fraction: float, seed: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """Train / validation / test sample indices such that no waveform is in two of them.

    The waveforms are shuffled with the sweep's data `seed` (so every run of a sweep has the same
    test waveforms); the first `test_fraction` of them test, `train_fraction` of the rest train,
    the others validate. Returns the three index arrays (in the loader's order) and the number of
    waveforms of each.

    Raises:
        InputError: too few waveforms for the fractions.
    """
    waveforms = np.unique(groups)
    n = waveforms.size
    n_test = max(1, int(round(n * test_fraction)))
    n_train = max(1, int(round((n - n_test) * train_fraction)))
    if n - n_test - n_train < 1:
        raise InputError(f"{n} waveforms are too few for test_fraction {test_fraction} and "
                         f"train_fraction {train_fraction}")
    order = waveforms[np.random.default_rng(np.random.SeedSequence([int(seed), 0x5117])).permutation(n)]
    part = np.empty(n, dtype=np.int8)  # 0 test, 1 train, 2 validation, aligned with `waveforms`
    part[np.searchsorted(waveforms, order[:n_test])] = 0
    part[np.searchsorted(waveforms, order[n_test:n_test + n_train])] = 1
    part[np.searchsorted(waveforms, order[n_test + n_train:])] = 2
    of_sample = part[np.searchsorted(waveforms, groups)]
    te, tr, va = (np.flatnonzero(of_sample == k) for k in (0, 1, 2))
    if not (te.size and tr.size and va.size):
        raise InputError(f"{len(groups)} samples of {n} waveforms leave a split empty")
    return tr, va, te, {"test_waveforms": n_test, "train_waveforms": n_train, "val_waveforms": n - n_test - n_train,
                        "test_waveform_ids": order[:n_test]}


def make_train_dataset(x, y, batch_size: int, seed: int, skip_batches: int = 0):
    """The training batches of every epoch, one after another: one seeded shuffle per epoch,
    repeated; a resumed job skips the batches it has already trained on, so it sees the same
    batches in the same order as a job that never stopped."""
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    options.deterministic = True
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True).batch(batch_size).repeat()
    if skip_batches:
        ds = ds.skip(skip_batches)
    return ds.prefetch(2).with_options(options)


def _epoch_callback(model_kind: str, x_val, y_val, loss_name: str, threshold: float, rows: list, log):
    import keras

    loss_fn = keras.losses.get(loss_name)
    y_val_col = y_val.reshape(-1, 1).astype("float32")

    class EpochMetrics(keras.callbacks.Callback):
        """Validation loss and metrics from one prediction pass per epoch (logged for EarlyStopping)."""

        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs if logs is not None else {}
            pred = self.model.predict(x_val, batch_size=PREDICT_BATCH, verbose=0)
            logs["val_loss"] = float(np.mean(keras.ops.convert_to_numpy(loss_fn(y_val_col, pred))))
            row = {"epoch": epoch + 1, "loss": float(logs.get("loss", math.nan))}
            if model_kind == "lstm":
                p, r = float(logs.get("precision", math.nan)), float(logs.get("recall", math.nan))
                row.update(accuracy=float(logs.get("accuracy", math.nan)), precision=p, recall=r,
                           f1=2 * p * r / (p + r) if p + r else 0.0, eff_purity=p * r)
                val = classification_metrics(y_val, pred, threshold)
                row.update({f"val_{k}": val[k] for k in ("accuracy", "precision", "recall", "f1", "auc",
                                                          "eff_purity")})
            else:
                row["mae"] = float(logs.get("mae", math.nan))
                val = regression_metrics(y_val, pred)
                row.update({f"val_{k}": val[k] for k in ("mse", "mae", "bias", "rel_bias", "resolution",
                                                          "rel_resolution")})
            row["val_loss"] = logs["val_loss"]
            row["seconds"] = round(time.perf_counter() - self._t0, 3)
            rows.append(row)
            shown = ("val_f1", "val_auc", "val_eff_purity") if model_kind == "lstm" else ("val_mae", "val_bias")
            log(f"epoch {epoch + 1}: loss {row['loss']:.4f} val_loss {row['val_loss']:.4f} "
                + " ".join(f"{k} {row[k]:.4f}" for k in shown) + f" ({row['seconds']:.1f}s)")

    return EpochMetrics()


def _progress_callback(channel, column: str, rows: list, pruned: dict, log, epochs: int):
    """Every run's live line after each epoch; a search trial's reports to its driver, and its stop
    when pruned (not after its last epoch: the training is done, and its test metrics are worth
    more than a stop)."""
    import keras

    from ..records.progress import Live

    started = time.perf_counter()

    def number(value) -> float | None:
        return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None

    class Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            last = rows[-1] if rows else {}
            live = Live(epoch=min(epoch + 1, epochs), epochs=epochs, metric=column, value=number(last.get(column)),
                        loss=number(last.get("loss")), val_loss=number(last.get("val_loss")),
                        elapsed_s=round(time.perf_counter() - started, 1))
            try:
                channel.report([float(r.get(column, math.nan)) for r in rows], live)
                stop = channel.prunable and channel.stop_requested()
            except Exception as exc:  # noqa: BLE001 - a lost channel must not lose the training
                log(f"progress: cannot report ({type(exc).__name__}: {exc}); training on")
                return
            if stop and len(rows) >= epochs:
                log(f"pruned by the search's driver after its last epoch ({len(rows)}): finishing the run")
            elif stop:
                pruned.update(at_epoch=len(rows), value=rows[-1].get(column) if rows else None)
                log(f"pruned by the search's driver after epoch {len(rows)}: stopping")
                self.model.stop_training = True

    return Progress()


def train(config: dict[str, Any], data_path: Path, out_dir: Path, log=print,
          dataset_sha256: str = "", clock: PhaseClock | None = None) -> Metrics:
    """Train the run `config` describes on `data_path`, writing its history, ROC, model and
    training record into `out_dir` (its checkpoint too, while it trains). `clock` gets the
    seconds of each phase (data, model, training, checkpoints, evaluation, output); each epoch's
    are in the history's `seconds` column.

    Returns:
        Its metrics (the runner adds what it knows of the job and writes metrics.json): the test
        metrics at the best epoch, or for a trial its pruner stopped, where it stopped.

    Raises:
        InputError, DatasetError: an unusable configuration or dataset.
        checkpoint.CheckpointExit: time to hand the checkpoint to HTCondor.
    """
    import keras

    from .models import build, make_optimizer

    clock = clock if clock is not None else PhaseClock()
    model_kind, params, seed = config["model"], config["params"], int(config["seed"])
    keras.utils.set_random_seed(seed)
    with clock.phase("data"):
        x, y, groups = load_data(model_kind, config["data"], data_path)
        tr, va, te, waveforms = split_by_waveform(groups, params["test_fraction"], params["train_fraction"],
                                                  int(config["data"].get("seed", 0)))
    test_waveforms = waveforms.pop("test_waveform_ids")
    log(f"data {data_path.name}: {len(x)} samples -> train {tr.size}, validation {va.size}, test {te.size} "
        f"({waveforms['train_waveforms']}, {waveforms['val_waveforms']}, {waveforms['test_waveforms']} waveforms)")

    rows: list[dict] = []
    with clock.phase("model"):
        key = f"{config['run_id']}:{dataset_sha256}"  # a checkpoint is only good for the same run on the same data
        state = checkpoint.load(out_dir, key)
        best_weights, initial_epoch = None, 0
        if state:  # an evicted, preempted or restarted job: go on after its last finished epoch
            model, best_weights = checkpoint.restore(out_dir, state)
            rows.extend(state.rows)
            initial_epoch = state.epochs_done
            log(f"resuming after epoch {initial_epoch} from {checkpoint.folder(out_dir).name}/")
        else:
            model = build(model_kind, params)
            if model_kind == "lstm":
                metrics = ["accuracy", keras.metrics.Precision(name="precision"), keras.metrics.Recall(name="recall")]
            else:
                metrics = ["mae"]
            # several steps per call into the compiled graph: fewer Python round trips, the same updates
            steps = int(os.environ.get("SWEEP_STEPS_PER_EXECUTION", STEPS_PER_EXECUTION))
            model.compile(optimizer=make_optimizer(params["optimizer"], params.get("learning_rate")),
                          loss=params["loss"], metrics=metrics, steps_per_execution=steps)
    resumed = initial_epoch if state else None
    threshold = float(params.get("threshold", 0.5))
    epoch_metrics = _epoch_callback(model_kind, x[va], y[va], params["loss"], threshold, rows, log)
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", mode="min", patience=params["patience"],
                                            restore_best_weights=True)
    saver = checkpoint.make_callback(out_dir, key, rows, stopper, checkpoint.every_seconds(), state,
                                      best_weights, clock)
    callbacks = [epoch_metrics, stopper, saver]
    pruned: dict[str, Any] = {}
    from .progress import open_channel

    channel = open_channel(config, out_dir, log)
    if channel is not None:  # every run's live line; a search trial's driver may stop it at the end of an epoch
        # a grid run watches its first ranking metric (a config without one: the model's default)
        first = (config.get("ranking") or [[DEFAULT_RANKING[model_kind][0]]])[0][0]
        column = config["progress"]["column"] if channel.prunable else validation_column(model_kind, str(first))[0]
        log(f"progress: reporting {column} after each epoch through {channel.kind}"
            + (" (pruned by the search's driver)" if channel.prunable else ""))
        callbacks.append(_progress_callback(channel, column, rows, pruned, log, int(params["epochs"])))
    steps_per_epoch = math.ceil(tr.size / params["batch_size"])
    t0 = time.perf_counter()
    with clock.phase("training", excluding="checkpoints"):
        model.fit(make_train_dataset(x[tr], y[tr], params["batch_size"], seed, initial_epoch * steps_per_epoch),
                  epochs=params["epochs"], initial_epoch=initial_epoch, steps_per_epoch=steps_per_epoch,
                  callbacks=callbacks, shuffle=False, verbose=0)  # the pipeline shuffles
    train_seconds = time.perf_counter() - t0
    if pruned:  # no test metrics: a pruned trial is not ranked (its history says how far it got)
        with clock.phase("output"):
            _write_history(out_dir / HISTORY, rows,
                           CLASSIFIER_HISTORY if model_kind == "lstm" else REGRESSOR_HISTORY)
            shutil.rmtree(checkpoint.folder(out_dir), ignore_errors=True)
        column = config["progress"]["column"]
        return Metrics(run_id=str(config["run_id"]), config_id=str(config["config_id"]), model=model_kind,
                       pruned=Pruned(at_epoch=pruned["at_epoch"], value=pruned["value"], column=column,
                                     values=[float(r.get(column, math.nan)) for r in rows]),
                       epochs_run=len(rows),
                       validation={k[4:]: v for k, v in rows[-1].items() if k.startswith("val_")} if rows else {},
                       train_seconds=round(train_seconds, 3), resumed_from_epoch=resumed)
    best_epoch = int(stopper.best_epoch) + 1 if rows else 0

    natural = {}
    with clock.phase("evaluation"):
        test_pred = model.predict(x[te], batch_size=PREDICT_BATCH, verbose=0).ravel()
        if model_kind == "lstm":
            test = classification_metrics(y[te], test_pred, threshold)
            test.update(_natural_metrics(model, data_path, test_waveforms, threshold, natural))
            roc = roc_points(y[te], test_pred)
            columns = CLASSIFIER_HISTORY
        else:
            test = regression_metrics(y[te], test_pred)
            columns = REGRESSOR_HISTORY
    with clock.phase("output"):
        if model_kind == "lstm":
            atomic_write_text(out_dir / ROC, "fpr,tpr,threshold\n" + "".join(
                f"{f:.6g},{t:.6g},{h:.6g}\n"
                for f, t, h in zip(roc["fpr"], roc["tpr"], roc["threshold"], strict=True)))
        _write_history(out_dir / HISTORY, rows, columns)
        _save_model(model, out_dir / MODEL)
        write_model_info(out_dir, training_record(config, data_path, dataset_sha256))
        shutil.rmtree(checkpoint.folder(out_dir), ignore_errors=True)  # done: nothing to resume or transfer
    best_row = rows[best_epoch - 1] if best_epoch else {}
    n_windows = tr.size * len(rows)
    return Metrics(
        run_id=str(config["run_id"]),
        config_id=str(config["config_id"]),
        model=model_kind,
        test=test,
        validation={k[4:]: v for k, v in best_row.items() if k.startswith("val_")},
        best_epoch=best_epoch,
        epochs_run=len(rows),
        stopped_early=len(rows) < params["epochs"],
        threshold=threshold if model_kind == "lstm" else None,
        n_train=int(tr.size), n_val=int(va.size), n_test=int(te.size),
        split=Split(by="waveform", **waveforms, **natural),
        n_params=int(model.count_params()),
        train_seconds=round(train_seconds, 3),
        train_samples_per_second=round(n_windows / train_seconds, 1) if train_seconds > 0 else None,
        resumed_from_epoch=resumed,
    )


def _natural_metrics(model, data_path: Path, test_waveforms: np.ndarray, threshold: float, info: dict) -> dict:
    """precision, recall, F1 and efficiency×purity on every candidate window of the test
    waveforms (the natural mix, a few to ~10 % signal), as natural_*; `info` gets the counts."""
    x, y, used = datasets.natural_windows(data_path, test_waveforms, NATURAL_MAX_WINDOWS)
    info.update(natural_windows=int(len(y)), natural_waveforms=int(used),
                natural_signal_fraction=float(y.mean()) if len(y) else 0.0)
    if not len(y):
        return {}
    pred = model.predict(x, batch_size=PREDICT_BATCH, verbose=0).ravel()
    m = classification_metrics(y, pred, threshold)
    return {f"natural_{k}": m[k] for k in ("precision", "recall", "f1", "eff_purity", "auc")}


def training_record(config: dict[str, Any], data_path: Path, dataset_sha256: str) -> ModelInfo:
    """What a model was trained on, written beside it (model.json) and checked where it is applied
    (sweep evaluate, sweep data simulate --peak-model): the sampling interval and waveform length,
    the inputs' layout and normalization, the simulation's parameters, the dataset's digest.

    Raises:
        DatasetError: the dataset's metadata cannot be read.
    """
    meta = datasets.read_meta(data_path)
    if config["model"] == "lstm":
        inputs = ModelInput(window=datasets.WINDOW_LENGTH, before=datasets.WINDOW_BEFORE,
                            normalization=datasets.window_normalization(meta),
                            finder=(meta.get("finder") or {}).get("name", "rise"), input_stats=meta.get("input_stats"))
    else:
        inputs = ModelInput(cluster_input=meta.get("cluster_input"))
    return ModelInfo(model=str(config["model"]), run_id=str(config["run_id"]), sweep=str(config["sweep"]),
                     dataset=TrainedOn(file=(meta.get("subset_of") or {}).get("file", data_path.name),
                                       sha256=dataset_sha256),
                     dt_ns=meta.get("dt_ns"), n_samples=meta.get("n_samples"), simulation=meta.get("params"),
                     input=inputs)


def _write_history(path: Path, rows: list[dict], columns: list[str]) -> None:
    lines = [",".join(columns)]
    for row in rows:
        lines.append(",".join(_fmt(row.get(c, "")) for c in columns))
    atomic_write_text(path, "\n".join(lines) + "\n")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def _save_model(model, path: Path) -> None:
    atomic_write_with(path, model.save, mode=0o644)
