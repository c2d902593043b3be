"""How well can ANY clusterizer count clusters in this simulator? And how far can dN/dx beat dE/dx?

    python bench/bench_cluster_limit.py [--train 40000] [--test 10000] [--tracks 1000] [--cells 100] [--fast]
        [--max-iter 300] [--smoke]

Issue 4 asks for a per-cell relative resolution <= 0.10 against the TRUE cluster count and a
track dN/dx >= 2x better than a truncated-mean dE/dx. This benchmark measures what the simulated
physics allows, independent of any neural network:

1. **Per cell**: a gradient-boosted regressor (scikit-learn) on features of PERFECT peak finding
   (a perfect classifier of the local-rise candidates, i.e. the best the LSTM could do; every
   distinct true electron peak; or even every electron's exact arrival time): the number
   of peaks, the histogram of the time gaps between consecutive peaks in units of the diffusion
   spread 0.26·√t, the first arrival and the time span. Its resolution is an estimate of the
   floor that a clusterizer fed with peak times can reach (a better model could go a little lower).
   ``--sources candidates-fine`` measures the same for the finer candidate finder (``slope``:
   rises against the local slope, sweep.physics.datasets.find_candidates) and what it costs
   (candidates per waveform).
2. **Per track**: the calibrated dN/dx resolution that such a per-cell estimator gives for
   ``cells`` cells, with ``noise/slope`` the per-cell spread of the estimate around its
   response (sigma_track^2 = 1/N + cells·(noise/slope)^2 / N^2, N = clusters per track).
3. **dE/dx**: the truncated mean (70 %) of the collected charge for the seed's cluster sizes (cut
   at 19) and with Fischle's 10.9/n² tail up to 1000 electrons, against dN/dx from the TRUE
   counts: the best ratio any counting method can reach.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sweep.core.metrics import regression_metrics  # noqa: E402 - after sys.path names the checkout
from sweep.physics import datasets as D  # noqa: E402 - after sys.path names the checkout
from sweep.physics import simulate as S  # noqa: E402 - after sys.path names the checkout
from sweep.physics.evaluate import dedx_truncated, response_slope  # noqa: E402 - after sys.path names the checkout

#: faster pulses and sampling, as in the later beam tests (rise 0.4-0.6 ns, fall 1-2.4 ns, 2 GS/s)
FAST_ELECTRONICS = {"pulse_tau_rise_ns": 0.5, "pulse_tau_fall_ns": 2.0, "sampling_rate_gsps": 2.0}

#: gap edges in units of 0.26·√t (the beam-test clusterization cut is 1)
GAP_EDGES = np.array([0, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 10, np.inf])


def features(n: int, wf: np.ndarray, t_ns: np.ndarray, t0_ns: float) -> np.ndarray:
    o = np.lexsort((t_ns, wf))
    wf, t = wf[o], t_ns[o]
    same = wf[1:] == wf[:-1]
    dt, w = (t[1:] - t[:-1])[same], wf[1:][same]
    g = dt / (0.26 * np.sqrt(np.maximum(t[1:][same] - t0_ns, 1.0)))
    k = np.searchsorted(GAP_EDGES, g, side="right") - 1
    nb = len(GAP_EDGES) - 1
    H = np.bincount(w * nb + k, minlength=n * nb).reshape(n, nb)
    first, last = np.full(n, np.nan), np.full(n, np.nan)
    if wf.size:  # sorted by (waveform, time): each waveform's first and last entries
        starts = np.flatnonzero(np.r_[True, wf[1:] != wf[:-1]])
        ends = np.r_[starts[1:] - 1, wf.size - 1]
        first[wf[starts]], last[wf[ends]] = t[starts], t[ends]
    return np.column_stack([np.bincount(wf, minlength=n), H, first - t0_ns, last - first])


#: what each finder costs: candidates per waveform and their signal fraction (filled by sample)
FINDER_COST: dict[str, list[float]] = {}


def sample(p: S.SimulationParams, n: int, seed: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    feats, counts = [], []
    for a in range(0, n, 2000):
        m = min(2000, n - a)
        b = S.simulate_batch(p, m, rng, render=source.startswith("candidates"))
        if source == "electrons":
            wf, t = b.electron_waveform.astype(np.int64), b.electron_time_ns
        else:
            wf, ps, tag = D.distinct_peaks(b.electron_waveform, b.electron_peak_sample, b.electron_tag)
            t = ps * p.dt_ns
            if source.startswith("candidates"):  # a perfect classifier of the finder's candidates
                if source == "candidates":  # sweep's local-rise finder
                    cw, cs, _ = D.peak_candidates(b.waveforms_mv, p.finder_threshold_rms)
                else:  # candidates-fine: the slope finder (rises against the local slope)
                    cw, cs, _ = D.peak_candidates(b.waveforms_mv, p.finder_threshold_rms, "slope")
                labels, _ = D.match_candidates(cw, cs, wf, ps, tag, p.tolerance_samples, p.n_samples)
                cost = FINDER_COST.setdefault(source, [0, 0, 0])
                cost[0] += m
                cost[1] += cw.size
                cost[2] += int((labels == 1).sum())
                wf, t = cw[labels == 1], cs[labels == 1] * p.dt_ns
        feats.append(features(m, wf, t, p.t0_ns))
        counts.append(b.n_clusters.astype(np.float64))
    return np.concatenate(feats), np.concatenate(counts)


def cell_figures(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Bias and resolution as `sweep evaluate` reports them (sweep.core.metrics, resolution =
    std((pred − true) / true)), the response slope and the spread around it over the slope."""
    m = regression_metrics(true, pred)
    slope = response_slope(pred, true)
    return {"rel_bias": m["rel_bias"], "rel_resolution": m["rel_resolution"], "slope": slope,
            "noise_over_slope": float((pred - slope * true).std() / slope)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=int, default=40000)
    ap.add_argument("--test", type=int, default=10000)
    ap.add_argument("--tracks", type=int, default=1000)
    ap.add_argument("--cells", type=int, default=100)
    ap.add_argument("--momentum", type=float, default=10.0)
    ap.add_argument("--fast", action="store_true", help="beam-test-like electronics: " + ", ".join(
        f"{k} {v}" for k, v in FAST_ELECTRONICS.items()))
    ap.add_argument("--sources", default=None,
                    help="what the per-cell estimator sees, comma-separated: candidates (a perfect classifier of "
                         "sweep's local-rise candidates), candidates-fine (of the slope finder), "
                         "peaks (every distinct true peak), electrons (every electron's time); default "
                         "candidates,peaks,electrons (--smoke: all four)")
    ap.add_argument("--max-iter", type=int, default=300, help="boosting iterations of the per-cell regressor")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes that run in seconds (CI: the script still works)")
    args = ap.parse_args()
    if args.smoke:  # every source (the slope finder too), both feature sets, both dE/dx variants
        args.train, args.test, args.tracks, args.cells, args.max_iter = 100, 50, 4, 5, 5
        args.sources = args.sources or "candidates,candidates-fine,peaks,electrons"
    args.sources = args.sources or "candidates,peaks,electrons"
    from sklearn.ensemble import HistGradientBoostingRegressor

    p = S.SimulationParams()
    if args.fast:
        p = p.replace(**FAST_ELECTRONICS)
    print(f"per cell (pions 4-180 GeV/c, {p.cell_size_cm} cm cell, pulse rise/fall {p.pulse_tau_rise_ns:g}/"
          f"{p.pulse_tau_fall_ns:g} ns, {p.sampling_rate_gsps:g} GS/s), {args.train} training / {args.test} "
          "test waveforms")
    n_track = {}
    for source in args.sources.split(","):
        t0 = time.perf_counter()
        X, y = sample(p, args.train, 1, source)
        Xt, yt = sample(p, args.test, 2, source)
        for label, cols in (("all features", slice(None)), ("peak count only", slice(0, 1))):
            m = HistGradientBoostingRegressor(max_iter=args.max_iter, random_state=0).fit(X[:, cols], y)
            f = cell_figures(m.predict(Xt[:, cols]), yt)
            if label == "all features":
                n_track[source] = f["noise_over_slope"]
            print(f"  perfect {source:9s} {label:16s}: bias {f['rel_bias']:+.4f}  resolution "
                  f"{f['rel_resolution']:.4f}  slope {f['slope']:.3f}  noise/slope {f['noise_over_slope']:.2f}"
                  f"  ({time.perf_counter() - t0:.0f} s)")
    print(f"  mean true clusters per cell {yt.mean():.2f}")
    for source, (wfs, cands, signal) in FINDER_COST.items():
        print(f"  finder of {source}: {cands / wfs:.1f} candidates per waveform (what the LSTM scores), "
              f"{signal / max(cands, 1):.3f} of them signal")

    print(f"\nper track ({args.tracks} tracks × {args.cells} cells, {args.momentum:g} GeV/c pions, "
          "truncated mean 70 %)")
    for label, size_max in (("cluster sizes cut at 19 (seed)", None), ("Fischle tail to 1000", 1000)):
        q = p.replace(momentum_min_gev=args.momentum, momentum_max_gev=args.momentum, cluster_size_max=size_max)
        T, C = args.tracks, args.cells
        b = S.simulate_batch(q, T * C, np.random.default_rng(3), render=False)
        charge = np.bincount(b.electron_waveform, weights=b.electron_gain, minlength=T * C).reshape(T, C)
        chord = b.tracks.chord_cm.reshape(T, C)
        dedx = dedx_truncated(chord, charge, 0.7)
        n = b.n_clusters.reshape(T, C).sum(axis=1)
        dndx = n / chord.sum(axis=1)
        N = float(n.mean())
        r_dedx, r_true = dedx.std() / dedx.mean(), dndx.std() / dndx.mean()
        print(f"  {label}: dE/dx {r_dedx:.4f};  dN/dx from the true counts {r_true:.4f} (Poisson "
              f"1/sqrt(N) {1 / math.sqrt(N):.4f}, N = {N:.0f}; dE/dx ratio {r_dedx / r_true:.2f})")
        for source, noise in n_track.items():
            r = math.sqrt(r_true**2 + C * noise**2 / N**2)
            print(f"    with the per-cell estimator on perfect {source:10s}: dN/dx {r:.4f} "
                  f"({r * math.sqrt(N):.2f}× Poisson, dE/dx ratio {r_dedx / r:.2f})")


if __name__ == "__main__":
    main()
