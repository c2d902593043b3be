"""How many cells does the CNN clusterizer need to beat a count of its own input peaks?

    python bench/bench_cnn_data.py [--sizes 2500,5000,10000,20000,40000] [--test 5000]
        [--inputs perfect_slope|true_peaks] [--epochs 40] [--smoke]

The chain's CNN regresses a cell's TRUE number of clusters from the histogram of the peaks it is
given. Whatever it learns must beat the plain count of those peaks (calibrated), or it has not
earned its place. This bench simulates cells with the simulator's defaults (round tubes, the δ
tail, a mix of momenta as `sweep data simulate` makes), gives the CNN the best peaks an LSTM could
give (``perfect_slope``: a perfect classifier of the default finder's candidates; ``true_peaks``:
every distinct true peak), trains grids/chain-cnn.yaml's first network (filters [16, 32], kernels
[5, 3], pool 4, dense [32], dropout 0.1, Adam 1e-3, batch 64, early stopping on 10 % of the
training cells) on the first N cells for each size N, and measures on the same held-out cells:

* the CNN's R² against the true count (1 − MSE / var(true)) and its rms error;
* the best count of the same peaks (as peaks after non-maximum suppression, or √t clusters of
  every reference and scale, each with a least-squares line to the true count fitted on the N
  training cells): its R² and rms error on the held-out cells.

R² is the per-cell information a track's dN/dx sums (issue 23: per-cell R² 1 → 2.04 % for 100
cells, 0.59 → 2.66 %, 0.44 → 3.08 %). Training cells are the chain's `simulate.waveforms` (80 % of
them train, 20 % validate in a sweep's split).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sweep.physics import datasets as D  # noqa: E402 - after sys.path names the checkout
from sweep.physics import simulate as S  # noqa: E402 - after sys.path names the checkout
from sweep.physics import tracklevel as TL  # noqa: E402 - after sys.path names the checkout
from sweep.physics.evaluate import truth_peaks  # noqa: E402 - after sys.path names the checkout

CNN = {"filters": [16, 32], "kernel_sizes": [5, 3], "pool_size": 4, "dense_units": [32], "dropout": 0.1,
       "activation": "relu"}


def cells(p: S.SimulationParams, n: int, seed: int,
          inputs: str) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(histograms (n, bins) float32, true clusters (n,), {count option: (n,) count}) of n cells."""
    rng = np.random.default_rng(seed)
    hists, true, counts = [], [], {}
    for a in range(0, n, 1000):
        m = min(1000, n - a)
        b = S.simulate_batch(p, m, rng)
        w = b.waveforms_mv
        tw, ts, tt = truth_peaks(b)
        if inputs == "true_peaks":
            pw, ps, _ = D.distinct_peaks(tw, ts, tt)
        else:
            cw, cs, _ = D.peak_candidates(w, p.finder_threshold_rms, p.candidate_finder)
            labels, _ = D.match_candidates(cw, cs, tw, ts, tt, p.tolerance_samples, w.shape[1])
            pw, ps = cw[labels == 1], cs[labels == 1]
        hists.append(D.cluster_inputs(m, pw, ps, p.dt_ns, p.window_ns, p.cluster_bins,
                                      p.peak_time_smear_samples, rng))
        true.append(b.n_clusters.astype(np.float64))
        for k, v in TL.count_options(m, "input", pw, ps, w, p).items():
            counts.setdefault(k, []).append(np.asarray(v, dtype=np.float64))
    return np.concatenate(hists), np.concatenate(true), {k: np.concatenate(v) for k, v in counts.items()}


def r2(pred: np.ndarray, true: np.ndarray) -> float:
    return float(1.0 - np.mean((pred - true) ** 2) / np.var(true))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="2500,5000,10000,20000,40000", help="training cells, comma-separated")
    ap.add_argument("--test", type=int, default=5000, help="held-out cells")
    ap.add_argument("--inputs", choices=("perfect_slope", "true_peaks"), default="perfect_slope")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes that run in seconds (CI: the script still works)")
    args = ap.parse_args()
    if args.smoke:
        args.sizes, args.test, args.epochs = "40,80", 40, 1
    sizes = sorted(int(s) for s in args.sizes.split(",") if s)
    p = S.SimulationParams()
    t0 = time.perf_counter()
    X, y, counts = cells(p, sizes[-1], 1, args.inputs)
    Xt, yt, counts_t = cells(p, args.test, 2, args.inputs)
    print(f"{sizes[-1]} training and {args.test} held-out cells ({p.cell_shape} cells, {args.inputs} as the CNN's "
          f"inputs: {counts['input_npeaks'].mean():.1f} peaks for {y.mean():.1f} clusters per cell), simulated in "
          f"{time.perf_counter() - t0:.0f} s")

    from sweep.physics.tfimport import import_keras

    keras = import_keras()
    from sweep.job.models import build_cnn

    print(f"{'cells':>7s} {'CNN R²':>7s} {'rms':>6s} {'epochs':>6s} {'s':>5s}   {'best count of its inputs':32s} "
          f"{'R²':>6s} {'rms':>6s}   CNN − count (R²)")
    for n in sizes:
        # the count: each option's line to the true count on the n training cells, the best on them
        fits = {k: np.polyfit(v[:n], y[:n], 1) for k, v in counts.items() if np.std(v[:n]) > 0}
        best = max(fits, key=lambda k: r2(np.polyval(fits[k], counts[k][:n]), y[:n]))
        count_pred = np.polyval(fits[best], counts_t[best])
        keras.utils.set_random_seed(7)
        model = build_cnn(CNN, p.cluster_bins)
        model.layers[-1].bias.assign(np.array([y[:n].mean()], dtype=np.float32))
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        n_val = max(n // 10, 1)
        t1 = time.perf_counter()
        hist = model.fit(X[n_val:n, :, None], y[n_val:n], batch_size=64, epochs=args.epochs, verbose=0,
                         validation_data=(X[:n_val, :, None], y[:n_val]),
                         callbacks=[keras.callbacks.EarlyStopping(patience=6, restore_best_weights=True)])
        pred = model.predict(Xt[:, :, None], batch_size=1024, verbose=0).ravel()
        cnn_r2, count_r2 = r2(pred, yt), r2(count_pred, yt)
        # the difference's error: both on the same cells, so the paired spread of the squared errors
        paired = ((count_pred - yt) ** 2 - (pred - yt) ** 2) / np.var(yt)
        print(f"{n:7d} {cnn_r2:7.3f} {np.sqrt(np.mean((pred - yt) ** 2)):6.2f} {len(hist.history['loss']):6d} "
              f"{time.perf_counter() - t1:5.0f}   {best:32s} {count_r2:6.3f} "
              f"{np.sqrt(np.mean((count_pred - yt) ** 2)):6.2f}   {cnn_r2 - count_r2:+.3f} ± "
              f"{paired.std() / np.sqrt(paired.size):.3f}")
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
