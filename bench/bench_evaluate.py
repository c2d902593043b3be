"""The two-step reconstruction against the classical baseline, on held-out simulated data.

1. trains (or loads) the seed study's best LSTM peak finder (adam, [96, 128, 1], dropout 0.1/0.1,
   relu/sigmoid, batch 150) on the balanced windows of a fresh simulation (seed 1);
2. trains (or loads) a CNN clusterizer on the (1024,) encoding of the *LSTM-detected* peaks of
   another simulation (seed 2), regressing the TRUE number of clusters;
3. runs :func:`sweep.physics.evaluate.evaluate` on held-out waveforms (seed 20241): LSTM F1/AUC on the
   balanced set, LSTM vs DERIV eff×purity on the natural mix, cluster bias/resolution, and
   dN/dx vs dE/dx resolution vs the Poisson limit for tracks crossing 100 cells.

Targets (issue 4): LSTM F1 ≥ 0.95 and AUC ≥ 0.99 (balanced); LSTM eff×purity ≥ DERIV's best
+ 0.05; dN/dx ≥ 1.3× better than dE/dx (issue 23; the 2× of issue 4 is beyond this toy, see bench_cluster_limit).

    python bench/bench_evaluate.py [--train-waveforms 16000] [--epochs 8] [--cnn-waveforms 24000]
        [--eval-waveforms 2000] [--tracks 300] [--cells 100] [--out bench/out/evaluate]
        [--peak-model M.keras] [--cluster-model C.keras] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

LSTM = {"topology": [96, 128, 1], "activations": ["relu", "sigmoid"], "dropout": [0.1, 0.1]}
# Two Conv1D per block and a global-average head: the count is a sum of local patterns (gaps between
# peaks on the scale of the diffusion spread); 12.2 % per cell on perfect peaks after 12 epochs,
# where the seed-like [16, 32] / pool 4 / flatten net stays near 18 % on LSTM peaks.
CNN = {"filters": [32, 64, 64], "kernel_sizes": [7, 5, 3], "convs_per_block": 2, "pool_size": 2,
       "head": "global_average", "dense_units": [64], "dropout": 0.0, "activation": "relu"}


def train_lstm(n_waveforms: int, epochs: int, out: Path, log) -> Path:
    import keras

    from sweep.physics.datasets import load_peak_dataset
    from sweep.physics.datasets import simulate_to_file
    from sweep.job.models import build_lstm
    from sweep.job.training import make_train_dataset

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "train.npz"
        s = simulate_to_file(data, n_waveforms, seed=1)
        log(f"LSTM training data: {s['n_balanced']} balanced windows from {n_waveforms} waveforms")
        X, y = load_peak_dataset(data, balanced=True, seed=0)
    n_val = len(X) // 10
    keras.utils.set_random_seed(1)
    model = build_lstm(LSTM)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
    t0 = time.perf_counter()
    # the job's training pipeline repeats without end (a resumed job skips into it): epochs are counted in steps
    model.fit(make_train_dataset(X[n_val:], y[n_val:], 150, 1), epochs=epochs, verbose=2,
              steps_per_epoch=math.ceil((len(X) - n_val) / 150),
              validation_data=(X[:n_val], y[:n_val]),
              callbacks=[keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True)])
    log(f"LSTM trained in {time.perf_counter() - t0:.0f} s")
    path = out / "lstm.keras"
    model.save(path)
    return path


def train_cnn(peak_model: Path, n_waveforms: int, epochs: int, out: Path, log) -> Path:
    import keras

    from sweep.physics.datasets import load_cluster_dataset
    from sweep.physics.datasets import simulate_to_file
    from sweep.job.models import build_cnn

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        # what `sweep data simulate --peak-model lstm.keras` writes: the histograms of the peaks
        # the LSTM keeps (threshold 0.5), labelled with the TRUE number of clusters
        data = Path(tmp) / "cnn.npz"
        simulate_to_file(data, n_waveforms, seed=2, peak_model=peak_model)
        X, y = load_cluster_dataset(data, seed=0)
    log(f"CNN training data: {len(X)} LSTM-detected encodings ({time.perf_counter() - t0:.0f} s)")
    keras.utils.set_random_seed(2)
    model = build_cnn(CNN)
    # start the output at the mean count (the output bias would otherwise need ~10^3 steps to get there)
    model.layers[-1].bias.assign(np.array([y.mean()], dtype=np.float32))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", metrics=["mae"])
    n_val = len(X) // 10
    log(f"CNN: predicting the mean gives MAE {np.abs(y[:n_val] - y[n_val:].mean()).mean():.3f}")
    t0 = time.perf_counter()
    model.fit(X[n_val:], y[n_val:], batch_size=128, epochs=epochs, verbose=2, validation_data=(X[:n_val], y[:n_val]),
              callbacks=[keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=2),
                         keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True)])
    log(f"CNN trained in {time.perf_counter() - t0:.0f} s")
    path = out / "cnn.keras"
    model.save(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-waveforms", type=int, default=16000)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--cnn-waveforms", type=int, default=24000)
    ap.add_argument("--cnn-epochs", type=int, default=25)
    ap.add_argument("--eval-waveforms", type=int, default=2000)
    ap.add_argument("--tracks", type=int, default=300)
    ap.add_argument("--cells", type=int, default=100)
    ap.add_argument("--momentum", type=float, default=10.0)
    ap.add_argument("--separation-tracks", type=int, default=50, help="π/K: tracks per species and momentum")
    ap.add_argument("--peak-model", type=Path, default=None, help="load instead of training")
    ap.add_argument("--cluster-model", type=Path, default=None, help="load instead of training")
    ap.add_argument("--no-cnn", action="store_true", help="skip the CNN clusterizer")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "evaluate")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes that run in seconds (CI: the script still works)")
    args = ap.parse_args()
    if args.smoke:  # both models trained (1 epoch each), every part of the evaluation
        args.train_waveforms, args.epochs, args.cnn_waveforms, args.cnn_epochs = 40, 1, 40, 1
        args.eval_waveforms, args.tracks, args.cells, args.separation_tracks = 40, 4, 5, 2
    args.out.mkdir(parents=True, exist_ok=True)

    def log(s: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {s}", flush=True)

    peak = args.peak_model or train_lstm(args.train_waveforms, args.epochs, args.out, log)
    cluster = None if args.no_cnn else (args.cluster_model or train_cnn(peak, args.cnn_waveforms, args.cnn_epochs,
                                                                         args.out, log))
    from sweep.physics.evaluate import evaluate, format_summary

    r = evaluate(peak, cluster, out_dir=args.out, n_waveforms=args.eval_waveforms, n_tracks=args.tracks,
                 cells=args.cells, momentum_gev=args.momentum, separation_tracks=args.separation_tracks, log=log)
    s = r["summary"]
    print(format_summary(s))
    tr = r["tracks"]
    # best reconstructed method (the truth and the √t clusterization of true peaks are references)
    best_dndx = min((d["resolution"], k) for k, d in tr["dndx"].items()
                    if not k.startswith("truth")) if tr else None
    print("\n--- targets (issue 4) ---")
    checks = [
        ("LSTM F1 (balanced) >= 0.95", s["lstm_f1_balanced"], s["lstm_f1_balanced"] >= 0.95),
        ("LSTM AUC (balanced) >= 0.99", s["lstm_auc_balanced"], s["lstm_auc_balanced"] >= 0.99),
        ("LSTM - DERIV eff×purity (peaks) >= 0.05", s["lstm_minus_deriv"], s["lstm_minus_deriv"] >= 0.05),
    ]
    if "clusters_lstm_cnn_rel_bias" in s:
        cnn_bias, cnn_res = s["clusters_lstm_cnn_rel_bias"], s["clusters_lstm_cnn_rel_resolution"]
        checks += [("CNN |bias| per cell < 0.01", abs(cnn_bias), abs(cnn_bias) < 0.01),
                   ("CNN relative resolution per cell <= 0.10", cnn_res, cnn_res <= 0.10)]
    if best_dndx:
        res, k = best_dndx
        d = tr["dndx"][k]
        checks += [
            (f"dE/dx / dN/dx[{k}] >= 1.3 (issue 23)", d["dedx_over_dndx"], d["dedx_over_dndx"] >= 1.3),
            (f"(info) dN/dx[{k}] / Poisson 1/sqrt(N)", d["ratio_to_poisson"], d["ratio_to_poisson"] <= 1.15),
        ]
        t = tr["dndx"]["truth"]
        print(f"reference: true cluster counts give dN/dx {t['resolution']:.4f} ± {t['resolution_err']:.4f} "
              f"(Poisson {tr['poisson_limit']:.4f}), dE/dx {tr['dedx']['resolution']:.4f} "
              f"± {tr['dedx']['resolution_err']:.4f}; {tr['n_tracks']} tracks × {tr['cells']} cells")
        for k, d in tr["dndx"].items():
            print(f"  dN/dx {k:20s} {d['option']:32s} {d['resolution']:.4f} ± {d['resolution_err']:.4f} "
                  f"(raw {d['resolution_raw']:.4f}, density response {d['response']['slope']:.3f}, "
                  f"counted/true {d['counted_over_true']:.3f}, /Poisson {d['ratio_to_poisson']:.2f}, "
                  f"dE/dx ratio {d['dedx_over_dndx']:.2f})")
    sep = r.get("separation")
    if sep:
        print("π/K separation (σ):", ", ".join(
            f"{m:g} GeV/c: dE/dx {sep['dedx'][i]:.2f}, " + ", ".join(f"{k} {v[i]:.2f}" for k, v in sep["dndx"].items())
            for i, m in enumerate(sep["momenta_gev"])))
    for line in r.get("verdicts", []):
        print(line)
    for name, v, ok in checks:
        print(f"{'PASS' if ok else 'MISS'}  {name}: {v:.4f}")
    (args.out / "bench_summary.json").write_text(json.dumps(
        {"summary": s, "checks": [{"name": n, "value": v, "ok": bool(o)} for n, v, o in checks]}, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
