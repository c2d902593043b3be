"""Job trainer throughput: sweep's trainer against a naive `model.fit` on NumPy arrays.

The naive baseline is how the seed study trained: model.fit(X, y, validation_split=0.3,
shuffle=True) with TensorFlow's default threads. sweep's trainer is the real code path of a
job (training.train: tf.data pipeline, per-epoch validation metrics, EarlyStopping with best
weights). Each variant runs in a fresh process, variants alternate back to back, and the
median of --repeats runs is reported (the machines are noisy). Same model (LSTM [96,128,1]),
batch size 150, data, split sizes and epochs for all.

    python bench/bench_trainer.py [--windows 60000] [--epochs 2] [--repeats 3] [--smoke]
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PARAMS = {"optimizer": "adam", "learning_rate": 0.001, "topology": [96, 128, 1], "activations": ["relu", "sigmoid"],
          "dropout": [0.1, 0.1], "batch_size": 150, "patience": 50, "train_fraction": 0.7, "test_fraction": 0.2,
          "loss": "binary_crossentropy", "threshold": 0.5}

VARIANTS = {
    # name: (description, env)
    "naive": ("model.fit on NumPy arrays, TF default threads (seed study)", {}),
    "naive-tfdata": ("hand-built tf.data (no autotune, prefetch 2) + fit, TF default threads", {}),
    "sweep-1cpu": ("sweep trainer, 1 CPU given (intra 1, inter 1)", {"SWEEP_CPUS": "1"}),
    "sweep-2cpu": ("sweep trainer, 2 CPUs given (intra 2, inter 2)", {"SWEEP_CPUS": "2"}),
    "sweep-i1e2": ("sweep trainer, intra 1 / inter 2",
                   {"SWEEP_CPUS": "2", "SWEEP_INTRA_OP": "1", "SWEEP_INTER_OP": "2"}),
    "sweep-1cpu-spe32": ("sweep trainer, 1 CPU, steps_per_execution 32",
                         {"SWEEP_CPUS": "1", "SWEEP_STEPS_PER_EXECUTION": "32"}),
    "sweep-2cpu-spe32": ("sweep trainer, 2 CPUs, steps_per_execution 32",
                         {"SWEEP_CPUS": "2", "SWEEP_STEPS_PER_EXECUTION": "32"}),
}


def worker(variant: str, data: str, epochs: int, windows: int) -> dict:
    from sweep.job import resources

    if variant.startswith("sweep"):
        cpus, _ = resources.allocated_cpus(None)
        intra, inter = resources.thread_settings(cpus)
        resources.apply_before_import(intra, inter)
    import tensorflow as tf

    if variant.startswith("sweep"):
        if intra:
            tf.config.threading.set_intra_op_parallelism_threads(intra)
        if inter:
            tf.config.threading.set_inter_op_parallelism_threads(inter)
    import numpy as np

    from sweep.core.metrics import classification_metrics
    from sweep.job import training
    from sweep.job.models import build_lstm

    config = {"model": "lstm", "params": {**PARAMS, "epochs": epochs}, "seed": 1, "sweep": "bench", "run_id": "bench",
              "config_id": "bench", "data": {"path": data, "file": Path(data).name, "balanced": True,
                                              "max_samples": windows, "seed": 0}}
    if variant.startswith("sweep"):
        with tempfile.TemporaryDirectory() as out:
            m = training.train(config, Path(data), Path(out), log=lambda *_: None)
        test = m.test or {}
        return {"seconds": m.train_seconds, "windows_per_s": m.train_samples_per_second,
                "f1": test.get("f1"), "auc": test.get("auc")}

    import keras

    keras.utils.set_random_seed(1)
    x, y, groups = training.load_data("lstm", config["data"], Path(data))
    tr, va, te, _ = training.split_by_waveform(groups, PARAMS["test_fraction"], PARAMS["train_fraction"], 0)
    fit = np.concatenate([tr, va])  # train + validation, split by validation_split
    x_fit, y_fit = x[fit], y[fit]
    model = build_lstm(PARAMS)
    model.compile(optimizer=keras.optimizers.Adam(0.001), loss="binary_crossentropy", metrics=["accuracy"])
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=50, restore_best_weights=True)
    t0 = time.perf_counter()
    if variant == "naive":
        model.fit(x_fit, y_fit, batch_size=150, epochs=epochs, validation_split=0.3, shuffle=True, verbose=0,
                  callbacks=[stop])
    else:
        n_val = int(len(x_fit) * 0.3)
        x_t, y_t, x_v, y_v = x_fit[:-n_val], y_fit[:-n_val], x_fit[-n_val:], y_fit[-n_val:]
        opts = tf.data.Options()
        opts.autotune.enabled = False
        train_ds = (tf.data.Dataset.from_tensor_slices((x_t, y_t)).shuffle(len(x_t), seed=1)
                    .batch(150).prefetch(2).with_options(opts))
        val_ds = tf.data.Dataset.from_tensor_slices((x_v, y_v)).batch(4096).prefetch(2).with_options(opts)
        model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=0, callbacks=[stop])
    seconds = time.perf_counter() - t0
    n_train = len(x_fit) - int(len(x_fit) * 0.3)
    m = classification_metrics(y[te], model.predict(x[te], batch_size=4096, verbose=0).ravel())
    return {"seconds": round(seconds, 3), "windows_per_s": round(n_train * epochs / seconds, 1),
            "f1": m["f1"], "auc": m["auc"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--windows", type=int, default=60000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--variants", default="naive,naive-tfdata,sweep-1cpu,sweep-2cpu,sweep-i1e2")
    ap.add_argument("--data", default=None, help="dataset (default: simulated into a temp folder)")
    ap.add_argument("--waveforms", type=int, default=None,
                    help="waveforms simulated for the default dataset (default: max(500, windows / 35))")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes that run in seconds (CI: the script still works)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker, args.data, args.epochs, args.windows)), flush=True)
        return
    if args.smoke:  # one variant per code path of the worker: fit on arrays, hand-built tf.data, sweep's trainer
        args.windows, args.epochs, args.repeats, args.waveforms = 500, 1, 1, 40
        args.variants = "naive,naive-tfdata,sweep-1cpu"

    data = args.data
    if data is None:
        from sweep.physics.datasets import simulate_to_file

        tmp = tempfile.mkdtemp(prefix="bench-trainer-")
        atexit.register(shutil.rmtree, tmp, True)
        data = str(Path(tmp) / "bench.npz")
        simulate_to_file(data, args.waveforms or max(500, args.windows // 35), seed=3)
    variants = args.variants.split(",")
    results: dict[str, list[dict]] = {v: [] for v in variants}
    for r in range(args.repeats):
        for v in variants:  # back to back, alternating, each in a fresh process
            env = {**os.environ, **VARIANTS[v][1], "TF_CPP_MIN_LOG_LEVEL": "3"}
            proc = subprocess.run([sys.executable, __file__, "--worker", v, "--data", data, "--epochs",
                                   str(args.epochs), "--windows", str(args.windows)], env=env, capture_output=True,
                                  text=True)
            line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
            if proc.returncode or not line:
                sys.exit(f"{v} failed:\n{proc.stderr[-3000:]}")
            results[v].append(json.loads(line[0][7:]))
            print(f"run {r + 1} {v:13s} {results[v][-1]}", flush=True)
    base = statistics.median(x["windows_per_s"] for x in results["naive"]) if "naive" in results else None
    print(f"\nLSTM [96,128,1], batch 150, {args.windows} windows (70% of 80% train), {args.epochs} epochs, "
          f"median of {args.repeats}; CPUs: {os.cpu_count()}")
    print(f"{'variant':14s} {'windows/s':>10s} {'range':>19s} {'× naive':>8s} {'test F1':>8s} {'test AUC':>8s}  what")
    for v in variants:
        w = [x["windows_per_s"] for x in results[v]]
        med = statistics.median(w)
        ratio = f"{med / base:.2f}" if base else "-"
        f1 = statistics.median(x["f1"] for x in results[v])
        auc = statistics.median(x["auc"] for x in results[v])
        print(f"{v:14s} {med:10.0f} {min(w):9.0f}-{max(w):<9.0f} {ratio:>8s} {f1:8.4f} {auc:8.4f}  {VARIANTS[v][0]}")


if __name__ == "__main__":
    main()
