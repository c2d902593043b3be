"""How should a peak finder's detections be counted? Each way, on the same tracks.

    python bench/bench_counting.py --model results/<sweep>/<run>/model.keras [--tracks 300]
        [--cells 100] [--momentum 10] [--bootstrap 400] [--smoke]

For pions and kaons of one momentum crossing ``--cells`` tubes of the default simulation, the
LSTM scores every candidate once (sweep.physics.evaluate.simulate_tracks, exactly as `sweep
evaluate` does) and its detections are counted every way the track level knows
(sweep.physics.tracklevel.count_options): as peaks at each threshold, as √t clusters, and as the
expected number of true peaks (``lstm_expected``: each detection weighed by its score's
probability at a prior signal fraction). Each way's option is chosen on *calibration* tracks (seeds
of their own) by the π/K separation; on the measured tracks it prints the dN/dx resolution
calibrated to the density, dE/dx ÷ dN/dx (dE/dx: the waveform charge's truncated mean, truncation
chosen on the calibration tracks), the π/K separation with its error, and, paired on the same
tracks (a bootstrap over tracks), each way's resolution and separation against the peak count's.
The paired figures are the ones that tell two ways apart: their separate errors share the tracks'
own fluctuation.

``--smoke`` uses a crude stand-in for the LSTM (a sigmoid of the rise around the candidate) at
tiny sizes, so CI checks the script runs without training a model.
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

from sweep.physics import evaluate as E  # noqa: E402 - after sys.path names the checkout
from sweep.physics import simulate as S  # noqa: E402 - after sys.path names the checkout
from sweep.physics import tracklevel as TL  # noqa: E402 - after sys.path names the checkout

SPECIES = ("pion", "kaon")
METHODS = ("lstm_npeaks", "lstm_sqrt_t", "lstm_expected")


def rise_stand_in(X: np.ndarray) -> np.ndarray:
    """A crude stand-in for an LSTM (smoke runs only): a sigmoid of the rise around the candidate."""
    x = X[:, :, 0]
    return 1.0 / (1.0 + np.exp(-np.clip(10.0 * (x[:, 7] - x[:, 4]) - 4.0, -50.0, 50.0)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="a peak finder's model.keras (required unless --smoke)")
    ap.add_argument("--tracks", type=int, default=300, help="tracks per species, for calibration and again to measure")
    ap.add_argument("--cells", type=int, default=100)
    ap.add_argument("--momentum", type=float, default=10.0)
    ap.add_argument("--bootstrap", type=int, default=400, help="resamplings of the measured tracks")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes and a stand-in scorer (CI: the script still runs)")
    args = ap.parse_args()
    if args.smoke:
        args.tracks, args.cells, args.bootstrap = 8, 10, 20
        scorer, label = rise_stand_in, "a stand-in scorer (smoke)"
    elif args.model is None:
        ap.error("--model is required (or --smoke)")
    else:
        scorer, label = E.load_model_fn(args.model, input_shape=(15, 1)), str(args.model)
    p = S.SimulationParams()
    T, C = args.tracks, args.cells
    t0 = time.perf_counter()
    thresholds = E.scan_thresholds(p, scorer, args.seed)
    sets = {}
    for role, tag in (("calibration", 0xCA1B), ("measured", 0x7AC5)):
        for j, sp in enumerate(SPECIES):
            counts, chord, charge = E.simulate_tracks(p, scorer, None, None, particle=sp, momentum_gev=args.momentum,
                                                      n_tracks=T, cells=C, seed=(args.seed, tag, j),
                                                      thresholds=thresholds)
            length = chord.sum(axis=1)
            sets[sp, role] = ({k: v.sum(axis=1) / length for k, v in counts.items()}, chord, charge["waveform"])
    print(f"{label}: {T} tracks per species × {C} tubes at {args.momentum:g} GeV/c, twice (calibration, "
          f"measurement), {len(thresholds)} thresholds; simulated and scored in {time.perf_counter() - t0:.0f} s")

    def dedx(sp: str, role: str, f: float) -> np.ndarray:
        _, chord, q = sets[sp, role]
        return TL.dedx_length_truncated(chord, q, f)

    trunc = max(TL.TRUNCATIONS, key=lambda f: E.separation_power(dedx("pion", "calibration", f),
                                                                 dedx("kaon", "calibration", f)))
    e_pi, e_k = dedx("pion", "measured", trunc), dedx("kaon", "measured", trunc)
    dedx_res = float(e_pi.std() / e_pi.mean())
    print(f"dE/dx (keep {trunc:.0%} of the length): resolution {dedx_res:.4f}, π/K "
          f"{E.separation_power(e_pi, e_k):.2f} ± {E.separation_error(e_pi, e_k):.2f} σ\n")
    cal = {sp: sets[sp, "calibration"][0] for sp in SPECIES}
    chosen, _ = TL.choose(cal, METHODS, E.separation_power)
    meas = {sp: sets[sp, "measured"][0] for sp in SPECIES}
    true_mean = float(meas["pion"]["truth"].mean())
    rng = np.random.default_rng(args.seed)
    draws = [(rng.integers(0, T, T), rng.integers(0, T, T)) for _ in range(args.bootstrap)]
    base = chosen.get("lstm_npeaks")
    print(f"{'count':14s} {'chosen on calibration':30s} {'dN/dx res.':>17s} {'dE/dx÷dN/dx':>12s} {'π/K σ':>13s} "
          f"{'res. ÷ peaks (paired)':>22s} {'Δσ vs peaks (paired)':>21s}")
    for method in METHODS:
        key = chosen.get(method)
        if key is None:
            print(f"{method:14s} (no option separates the calibration tracks)")
            continue
        resp = TL.density_response([(cal[sp][key], cal[sp]["truth"]) for sp in SPECIES])
        beta = resp["slope"]
        m_pi, m_k = meas["pion"][key], meas["kaon"][key]
        res = float(m_pi.std() / (beta * true_mean)) if beta > 0 else math.nan
        res_err = res * math.hypot(1 / math.sqrt(2 * (T - 1)), resp["slope_err"] / beta) if beta > 0 else math.nan
        sep, err = E.separation_power(m_pi, m_k), E.separation_error(m_pi, m_k)
        paired = ""
        if base is not None and key != base:
            # the ratio of resolutions, std / (β × true mean) each: the true mean cancels; each β is
            # the calibration's, so the resampling is the measured tracks' own fluctuation
            b_resp = TL.density_response([(cal[sp][base], cal[sp]["truth"]) for sp in SPECIES])
            ratios, dseps = [], []
            for i, k in draws:
                r_m = m_pi[i].std() / beta
                r_b = meas["pion"][base][i].std() / b_resp["slope"]
                ratios.append(r_m / r_b)
                dseps.append(E.separation_power(m_pi[i], m_k[k])
                             - E.separation_power(meas["pion"][base][i], meas["kaon"][base][k]))
            paired = (f"{np.mean(ratios):10.3f} ± {np.std(ratios):.3f}      "
                      f"{np.mean(dseps):+8.3f} ± {np.std(dseps):.3f}")
        print(f"{method:14s} {key:30s} {res:8.4f} ± {res_err:.4f} {dedx_res / res:8.3f}     "
              f"{sep:6.2f} ± {err:.2f}   {paired}")
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
