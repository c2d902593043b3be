"""The floors: how far can dN/dx beat dE/dx in this simulator, with perfect peak finding of each kind?

    python bench/bench_cluster_limit.py [--tracks 500] [--cells 100] [--momentum 10]
        [--finders rise,slope,bump,bump0,d2] [--params FILE.yaml] [--preset NAME] [--smoke]

For pions and kaons of one momentum crossing ``--cells`` cells (the simulator's defaults: round
1.5 cm tubes at random impact parameters, Fischle's cluster sizes with the δ tail to 300), every
source of peak times is counted exactly as `sweep evaluate` counts (sweep.physics.tracklevel):

* ``truth``: the true number of clusters per cell (the Poisson floor of counting);
* ``every true peak``: each distinct true electron peak (what a perfect peak finder could give);
* ``perfect <finder>``: a perfect classifier of a candidate finder's candidates (the floor of an
  LSTM on that finder: it can only keep or drop what the finder proposes); ``bump0`` is IHEP's
  ``find_bump`` without a threshold, ``bump`` the same with the 1 σ threshold on the rise, ``d2``
  the bends of the second difference (the Bari/Lecce DERIV algorithm's peak condition);

each as a peak count and as √t clusters (every reference and scale), the option chosen by the π/K
separation on *calibration* tracks (seeds of their own), then measured on other tracks: the π/K
separation (σ) with its statistical error, the dN/dx resolution calibrated to the density
(std / (β × mean true dN/dx), β = the density response between the species), the per-cell
resolution of the calibrated count against the true one, and the candidates per waveform the LSTM
would have to score. dE/dx is the length-weighted truncated mean of the charge integrated from each
digitised waveform (truncation chosen on the calibration tracks too); ``dE/dx ÷ dN/dx`` is the
ratio of resolutions and ``sep ÷ dE/dx's`` the ratio of separations (the figure for PID).
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

from sweep.physics import datasets as D  # noqa: E402 - after sys.path names the checkout
from sweep.physics import simulate as S  # noqa: E402 - after sys.path names the checkout
from sweep.physics import tracklevel as TL  # noqa: E402 - after sys.path names the checkout
from sweep.physics.evaluate import separation_error, separation_power, truth_peaks  # noqa: E402

SPECIES = ("pion", "kaon")


def counts_of(p: S.SimulationParams, particle: str, n_cells: int, seed: int, finders: list[str],
              cost: dict[str, list[float]]) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Per-cell counts of every option of every source, the chords and the waveform charges."""
    rng = np.random.default_rng([seed, SPECIES.index(particle)])
    q = p.replace(particle=particle)
    per: dict[str, list[np.ndarray]] = {}
    chords, charges = [], []
    for a in range(0, n_cells, 1000):
        m = min(1000, n_cells - a)
        b = S.simulate_batch(q, m, rng)
        w = b.waveforms_mv
        tw, ts, tt = truth_peaks(b)
        out = {"truth": b.n_clusters.astype(np.float64)}
        out.update(TL.count_options(m, "every_true_peak", tw, ts, w, q))
        for finder in finders:
            thr = 0.0 if finder == "bump0" else q.finder_threshold_rms
            cw, cs, _ = D.peak_candidates(w, thr, "bump" if finder == "bump0" else finder)
            labels, _ = D.match_candidates(cw, cs, tw, ts, tt, q.tolerance_samples, q.n_samples)
            c = cost.setdefault(finder, [0, 0])
            c[0] += m
            c[1] += cw.size
            out.update(TL.count_options(m, f"perfect_{finder}", cw[labels == 1], cs[labels == 1], w, q))
        for k, v in out.items():
            per.setdefault(k, []).append(v)
        chords.append(b.tracks.chord_cm)
        charges.append(TL.waveform_charge(w, q))
    return ({k: np.concatenate(v) for k, v in per.items()}, np.concatenate(chords), np.concatenate(charges))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", type=int, default=500, help="tracks per species, for calibration and again to measure")
    ap.add_argument("--cells", type=int, default=100)
    ap.add_argument("--momentum", type=float, default=10.0)
    ap.add_argument("--finders", default="rise,slope,bump,bump0,d2")
    ap.add_argument("--params", type=Path, help="a YAML mapping of simulation parameters")
    ap.add_argument("--preset", choices=sorted(S.ELECTRONICS_PRESETS), help="an electronics preset")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes that run in seconds (CI: the script still works)")
    args = ap.parse_args()
    if args.smoke:
        args.tracks, args.cells = 6, 10
    import yaml

    given = yaml.safe_load(args.params.read_text()) if args.params else {}
    if args.preset:
        given = {"electronics_preset": args.preset, **given}
    p = S.SimulationParams.from_dict(given).replace(momentum_min_gev=args.momentum, momentum_max_gev=args.momentum)
    finders = [f for f in args.finders.split(",") if f]
    T, C = args.tracks, args.cells
    print(f"{T} tracks per species × {C} cells at {args.momentum:g} GeV/c, twice (calibration, measurement); "
          f"{p.cell_shape} cells of {p.cell_size_cm} cm, cluster sizes to {p.cluster_size_max}, pulse "
          f"{p.pulse_tau_rise_ns:g}/{p.pulse_tau_fall_ns:g} ns, {p.sampling_rate_gsps:g} GS/s, "
          f"noise {p.noise_rms_mv:g} mV")
    t0 = time.perf_counter()
    cost: dict[str, list[float]] = {}
    sets = {(sp, role): counts_of(p, sp, T * C, seed, finders, cost)
            for role, seed in (("calibration", 1), ("measured", 2)) for sp in SPECIES}
    print(f"simulated and counted in {time.perf_counter() - t0:.0f} s")

    def dndx(sp: str, role: str, key: str) -> np.ndarray:
        c, chord, _ = sets[sp, role]
        return c[key].reshape(T, C).sum(axis=1) / chord.reshape(T, C).sum(axis=1)

    # dE/dx: the truncation with the best separation on the calibration tracks
    def dedx(sp: str, role: str, f: float) -> np.ndarray:
        _, chord, q = sets[sp, role]
        return TL.dedx_length_truncated(chord.reshape(T, C), q.reshape(T, C), f)

    trunc = max(TL.TRUNCATIONS, key=lambda f: separation_power(dedx("pion", "calibration", f),
                                                               dedx("kaon", "calibration", f)))
    e_pi, e_k = dedx("pion", "measured", trunc), dedx("kaon", "measured", trunc)
    dedx_sep, dedx_err = separation_power(e_pi, e_k), separation_error(e_pi, e_k)
    dedx_res = float(e_pi.std() / e_pi.mean())
    print(f"\ndE/dx (waveform charge, keep {trunc:.0%} of the length, chosen on calibration): resolution "
          f"{dedx_res:.4f}, π/K {dedx_sep:.2f} ± {dedx_err:.2f} σ")
    n_true = sets["pion", "measured"][0]["truth"].reshape(T, C).sum(axis=1).mean()
    print(f"Poisson limit 1/√N: {1 / math.sqrt(n_true):.4f} (N = {n_true:.0f} clusters per track)\n")
    cal = {sp: {k: dndx(sp, "calibration", k) for k in sets[sp, "calibration"][0]} for sp in SPECIES}
    sources = ["truth", "every_true_peak", *(f"perfect_{f}" for f in finders)]
    print(f"{'source':22s} {'chosen on calibration':34s} {'per cell':>9s} {'dN/dx res.':>17s} {'β':>6s} "
          f"{'dE/dx÷dN/dx':>12s} {'π/K σ':>13s} {'sep÷dE/dx':>10s} {'cand./wf':>9s}")
    for source in sources:
        methods = ["truth"] if source == "truth" else [f"{source}_npeaks", f"{source}_sqrt_t"]
        chosen, separations = TL.choose(cal, methods, separation_power)
        key = max(chosen.values(), key=lambda k: separations[TL.parse_option(k)["method"]][k])
        resp = TL.density_response([(cal[sp][key], cal[sp]["truth"]) for sp in SPECIES])
        m_pi, m_k = dndx("pion", "measured", key), dndx("kaon", "measured", key)
        t_pi = dndx("pion", "measured", "truth")
        res = float(m_pi.std() / (resp["slope"] * t_pi.mean()))
        res_err = res * math.hypot(1 / math.sqrt(2 * (T - 1)), resp["slope_err"] / resp["slope"])
        sep, err = separation_power(m_pi, m_k), separation_error(m_pi, m_k)
        # per cell: the count calibrated on calibration cells (affine), its spread about the true count
        cc = np.concatenate([sets[sp, "calibration"][0][key] for sp in SPECIES])
        ct = np.concatenate([sets[sp, "calibration"][0]["truth"] for sp in SPECIES])
        slope = float(np.polyfit(ct, cc, 1)[0])
        mc, mt = sets["pion", "measured"][0][key], sets["pion", "measured"][0]["truth"]
        per_cell = float(np.std((mc - (cc.mean() - slope * ct.mean())) / slope - mt) / mt.mean())
        cands = cost.get(source.removeprefix("perfect_"))
        print(f"{source:22s} {key:34s} {per_cell:9.3f} {res:8.4f} ± {res_err:.4f} {resp['slope']:6.3f} "
              f"{dedx_res / res:6.2f} ± {dedx_res / res * res_err / res:.2f} {sep:6.2f} ± {err:.2f} "
              f"{sep / dedx_sep:10.2f} {'' if not cands else f'{cands[1] / cands[0]:9.0f}'}")
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
