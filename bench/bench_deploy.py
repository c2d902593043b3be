"""The reference consumer of an exported model (sweep.deploy: numpy + ONNX Runtime) against
the same steps with the Keras models (sweep's scorers), on the same waveforms: waveforms per second
from raw waveforms to peaks (LSTM at its working point) and cluster counts (CNN), and whether they
agree. Prints its figures; asserts nothing.

    python bench/bench_deploy.py [--waveforms 1000] [--repeats 3] [--peak-model M.keras]
                                 [--cluster-model C.keras] [--smoke]

Without models it trains a small pair first (a minute); --smoke: tiny sizes (CI: the script still works).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def small_models(folder: Path, waveforms: int, epochs: int) -> tuple[Path, Path]:
    """An LSTM and a CNN trained for `epochs` on `waveforms` simulated waveforms, with their records."""
    import keras

    from sweep.fsutil import file_digest
    from sweep.job.models import build_cnn, build_lstm
    from sweep.job.training import training_record
    from sweep.physics import datasets as D

    data = folder / "train.npz"
    D.simulate_to_file(data, waveforms, 11)
    paths = []
    for kind in ("lstm", "cnn"):
        if kind == "lstm":
            X, y = D.load_peak_dataset(data, seed=0, max_samples=20000)
            model = build_lstm({"topology": [32, 64, 1], "activations": ["relu", "sigmoid"], "dropout": [0.0, 0.0]})
            model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy")
        else:
            X, y = D.load_cluster_dataset(data)
            model = build_cnn({"filters": [8, 8], "kernel_sizes": [5, 3], "dense_units": [16], "activation": "relu",
                               "pool_size": 2, "dropout": 0.0, "head": "flatten"})
            model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
        model.fit(X, y, epochs=epochs, batch_size=256, verbose=0)
        path = folder / kind / "model.keras"
        path.parent.mkdir()
        model.save(path)
        record = training_record({"model": kind, "run_id": kind, "sweep": "bench"}, data, file_digest(data)["sha256"])
        path.with_name("model.json").write_text(json.dumps(record.to_json()))
        paths.append(path)
    return paths[0], paths[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--waveforms", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--peak-model", type=Path, default=None)
    ap.add_argument("--cluster-model", type=Path, default=None)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes that run in seconds (CI: the script still works)")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    import numpy as np

    import sweep.deploy as deploy
    from sweep.physics import datasets as D
    from sweep.physics.evaluate import _cnn_counts, score_candidates
    from sweep.physics.export import export_onnx
    from sweep.physics.scorers import load_model_fn
    from sweep.physics.simulate import SimulationParams, simulate_batch

    train_waveforms, epochs = (60, 1) if args.smoke else (600, 3)
    if args.smoke:
        args.waveforms, args.repeats = 20, 1
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
        tmp = Path(tmp)
        if args.peak_model is None or args.cluster_model is None:
            print(f"training a small LSTM and CNN on {train_waveforms} waveforms, {epochs} epoch(s)", flush=True)
            args.peak_model, args.cluster_model = small_models(tmp, train_waveforms, epochs)
        exported = {}
        for name, model in (("peaks", args.peak_model), ("clusters", args.cluster_model)):
            t = time.perf_counter()
            d = export_onnx(model, tmp / "onnx" / name, threshold=args.threshold)
            exported[name] = d
            print(f"export {name}: {time.perf_counter() - t:.1f} s, opset {d.opset}, "
                  f"{(tmp / 'onnx' / name / 'model.onnx').stat().st_size / 1024:.0f} KiB, "
                  f"max |Δ| {d.check['max_abs_diff']:.2g} on {d.check['inputs']} held-out inputs", flush=True)
        p = SimulationParams().replace(candidate_finder=exported["peaks"].inputs["candidate_finder"])
        w = simulate_batch(p, args.waveforms, np.random.default_rng(5)).waveforms_mv
        finder, counter = deploy.load(tmp / "onnx" / "peaks"), deploy.load(tmp / "onnx" / "clusters")
        peak_fn = load_model_fn(str(args.peak_model), input_shape=(15, 1))
        cluster_fn = load_model_fn(str(args.cluster_model), input_shape=(p.cluster_bins, 1))
        times: dict[str, list[float]] = {"onnx": [], "keras": []}
        for _ in range(args.repeats):  # interleaved
            t = time.perf_counter()
            wf, sample, _ = finder.peaks(w, p.dt_ns)
            onnx_counts = counter.counts(len(w), wf, sample, p.dt_ns)
            times["onnx"].append(time.perf_counter() - t)
            t = time.perf_counter()  # the same steps, Keras scoring
            cw, cs, sc = score_candidates(peak_fn, w, p)
            keep = sc >= args.threshold
            cw, cs, sc = cw[keep], cs[keep], sc[keep]
            merged = D.suppress_nearby(cw, cs, sc, p.tolerance_samples)
            kw, ks = cw[merged], cs[merged]
            keras_counts = _cnn_counts(cluster_fn, len(w), kw, ks, p, np.random.default_rng(0))
            times["keras"].append(time.perf_counter() - t)
        same = np.array_equal(np.sort(wf * 100000 + sample), np.sort(kw * 100000 + ks))
        print(f"{args.waveforms} waveforms, {len(wf)} peaks, median of {args.repeats}: ONNX Runtime "
              f"{args.waveforms / statistics.median(times['onnx']):.0f} waveforms/s, Keras "
              f"{args.waveforms / statistics.median(times['keras']):.0f} waveforms/s; the same peaks: {same}; "
              f"CNN counts max |Δ| {np.max(np.abs(onnx_counts - keras_counts)):.2g}")


if __name__ == "__main__":
    main()
