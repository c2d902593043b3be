"""Counting clusters along tracks, and the choices behind a count, made on calibration tracks.

A track crosses ``cells`` cells; each counting method gives a count per cell, the track's dN/dx
is Σ counts / Σ chords. Every free choice of a method is an *option* here, counted side by side:

* the LSTM's working point: its threshold, from :data:`THRESHOLDS` and the quantiles of the
  model's own scores (:func:`sweep.physics.evaluate.scan_thresholds`; the literature cuts at
  0.95–0.96 on the natural mix of candidates, where only a few % are signal; a classifier trained
  on balanced windows and cut at 0.5 there has a purity of ~0.77);
* what is counted from the detected peaks: the peaks themselves (after non-maximum suppression
  within ± the matching tolerance, :func:`sweep.physics.datasets.suppress_nearby`), or the
  clusters of the √t clusterization (:mod:`sweep.physics.clusterize`) with each reference peak and
  each scale of :data:`SCALES`;
* the *expected* number of true peaks among the LSTM's detections (``lstm_expected``): each
  detection weighs the probability that it is a true peak, its score corrected from the balanced
  classes it was trained on to the signal fraction :data:`PRIORS` of the candidates it meets
  (:func:`expected_weights`). A hard cut counts a detection scoring 0.96 and one scoring 0.999 the
  same and drops one at 0.94 entirely; when the probabilities are right, their sum is the
  least-mean-square-error estimate of the true count given the scores, and it moves a peak finder
  towards a perfect classifier's dN/dx (measured: 1.28 → 1.32 × dE/dx on the same 300 tracks per
  species, ``bench/bench_counting.py``);
* dE/dx's truncation: the fraction of the track length kept, from :data:`TRUNCATIONS`.

:func:`choose` picks each method's option by the π/K separation it gives on *calibration* tracks
(pions and kaons of the measured momentum, seeds of their own), never on the measured tracks: the
figure that matters for particle identification, and one that no affine response can fake.

**Calibration to the density.** A per-cell calibration (counted against true clusters cell by
cell) is wrong when chords vary: across cells the true count follows the chord, so an estimator
that only measures the chord (the time span of the peaks, say) gets a large slope and looks
Poisson-perfect, while it does not respond to the cluster *density* at all. :func:`density_response`
fits the response to the density instead: the means of the track dN/dx of two species (or more
groups) against their mean true dN/dx (offset α, slope β = Δ counted / Δ true). A method's
resolution is then std(dN/dx) / (β × mean true dN/dx): the spread in units of the true density.

**dE/dx from the waveform.** :func:`waveform_charge` integrates the digitised waveform above its
pedestal over the drift-time gate of the cell (ADC saturation and noise included), in units of one
electron at mean gain; :func:`dedx_length_truncated` is the truncated mean as analyses with
varying path lengths do it: cells sorted by charge per cm, the lowest ``fraction`` of the track
*length* kept, dE/dx = Σ charge / Σ length over those (a short chord weighs what it measures).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import clusterize
from . import datasets as D
from .simulate import SimulationParams, drift_time_ns, pulse_response

#: the LSTM thresholds counted side by side, with the model's own score quantiles
#: (sweep.physics.evaluate.scan_thresholds): the working point is chosen among them
THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99)
#: √t clusterization scales (ns^½) tried; 0.26 is one electron's diffusion spread, the
#: beam-test analysis tunes 0.24–0.25
SCALES = (0.15, 0.2, 0.26, 0.35, 0.5)
#: dE/dx truncations tried: the fraction of the track length kept (70 % is the usual default)
TRUNCATIONS = (0.5, 0.6, 0.7, 0.8, 0.9)
#: the signal fractions among the candidates a peak model's scores are corrected to (Bayes' prior
#: shift, :func:`expected_weights`): a model trained on balanced windows meets 2–8 % signal in use
#: (the natural mix of slope candidates holds 2.6–2.8 %; chosen on calibration tracks like every
#: option), and 0.5 leaves the scores as they are (a model trained on the natural mix already gives
#: its probabilities)
PRIORS = (0.02, 0.05, 0.1, 0.2, 0.5)
#: the pulse maximum is searched this many samples after the detected sample (the steepest rise)
AMPLITUDE_SAMPLES = 4


def option_key(method: str, threshold: float | None = None, reference: str | None = None,
               scale: float | None = None, prior: float | None = None) -> str:
    """The name of one counting option: ``lstm_sqrt_t@0.95/largest/0.26``,
    ``lstm_expected@0.9/prior=0.05``, ``deriv_npeaks``…"""
    key = method if threshold is None else f"{method}@{threshold:g}"
    if prior is not None:
        return f"{key}/prior={prior:g}"
    return key if reference is None else f"{key}/{reference}/{scale:g}"


def parse_option(key: str) -> dict[str, Any]:
    """The method and choices an :func:`option_key` names."""
    head, *rest = key.split("/")
    method, _, thr = head.partition("@")
    out: dict[str, Any] = {"method": method, "threshold": float(thr) if thr else None}
    if rest and rest[0].startswith("prior="):
        out["prior"] = float(rest[0].removeprefix("prior="))
    elif rest:
        out["reference"], out["scale"] = rest[0], float(rest[1])
    return out


def expected_weights(score: np.ndarray, prior: float) -> np.ndarray:
    """Each detection's probability of being a true peak among candidates of which a fraction
    ``prior`` is signal, from a score trained on balanced classes (Bayes: the odds s / (1 − s)
    times prior / (1 − prior)). ``prior`` 0.5 returns the scores themselves (clipped to [0, 1])."""
    s = np.clip(np.asarray(score, dtype=np.float64), 0.0, 1.0)
    if prior == 0.5:
        return s
    r = prior / (1.0 - prior)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(s >= 1.0, 1.0, s * r / (s * r + 1.0 - s))


def peak_amplitudes(waveforms: np.ndarray, wf: np.ndarray, sample: np.ndarray) -> np.ndarray:
    """Each detected peak's amplitude: the waveform's maximum over the sample and the
    :data:`AMPLITUDE_SAMPLES` after it (a detection sits on the rising edge)."""
    w = np.asarray(waveforms)
    if np.size(wf) == 0:
        return np.zeros(0)
    cols = np.minimum(np.asarray(sample)[:, None] + np.arange(AMPLITUDE_SAMPLES + 1), w.shape[1] - 1)
    return w[np.asarray(wf)[:, None], np.maximum(cols, 0)].max(axis=1).astype(np.float64)


def count_options(n_waveforms: int, method: str, wf: np.ndarray, sample: np.ndarray, waveforms: np.ndarray,
                  params: SimulationParams, *, score: np.ndarray | None = None,
                  thresholds: Sequence[float] | None = None) -> dict[str, np.ndarray]:
    """Per-waveform counts of every option of one method's detections.

    ``score`` (with ``thresholds``) is the LSTM's: each threshold keeps the detections scoring at
    least it. Detections are thinned by non-maximum suppression within ± the matching tolerance
    (ranked by score, or by amplitude without one), then counted as peaks and as √t clusters for
    every reference and scale; with a score, also as the expected number of true peaks
    (``<method>_expected``) for every prior of :data:`PRIORS`. Returns option key →
    (n_waveforms,) float64 counts."""
    wf = np.asarray(wf, dtype=np.int64)
    sample = np.asarray(sample, dtype=np.int64)
    amp = peak_amplitudes(waveforms, wf, sample)
    rank = amp if score is None else np.asarray(score, dtype=np.float64)
    out: dict[str, np.ndarray] = {}
    for thr in ([None] if score is None else thresholds or THRESHOLDS):
        sel = np.ones(wf.size, dtype=bool) if thr is None else rank >= thr
        w, s, a = wf[sel], sample[sel], amp[sel]
        keep = D.suppress_nearby(w, s, rank[sel], params.tolerance_samples)
        w, s, a = w[keep], s[keep], a[keep]
        out[option_key(f"{method}_npeaks", thr)] = np.bincount(w, minlength=n_waveforms).astype(np.float64)
        if score is not None:
            kept_score = rank[sel][keep]
            for prior in PRIORS:
                out[option_key(f"{method}_expected", thr, prior=prior)] = np.bincount(
                    w, weights=expected_weights(kept_score, prior), minlength=n_waveforms)
        t = s * params.dt_ns
        for ref in clusterize.REFERENCES:
            counts = clusterize.count_clusters_scales(n_waveforms, w, t, SCALES, params.t0_ns, ref, a)
            for k, c in zip(SCALES, counts, strict=True):
                out[option_key(f"{method}_sqrt_t", thr, ref, k)] = c.astype(np.float64)
    return out


def integration_gate_ns(params: SimulationParams) -> tuple[float, float]:
    """The gate over which :func:`waveform_charge` integrates: from 5 ns before t0 to the cell's
    longest drift (its corner), plus five diffusion widths and eight pulse fall times."""
    r_max = params.half_cell_cm * (1.0 if params.cell_shape == "tube" else math.sqrt(2.0))
    t_max = float(drift_time_ns(params, r_max))
    tail = 5 * params.diffusion_ns_sqrt_ns * math.sqrt(t_max) + 8 * max(pulse_response(params).taus_ns)
    return params.t0_ns - 5.0, min(params.t0_ns + t_max + tail, params.window_ns)


def waveform_charge(waveforms: np.ndarray, params: SimulationParams) -> np.ndarray:
    """(B,) charge of each waveform in units of one electron at mean gain: the integral of the
    waveform above its pedestal (median of the samples before the gate) over
    :func:`integration_gate_ns`, divided by one mean-gain pulse's integral."""
    w = np.asarray(waveforms, dtype=np.float64)
    dt = params.dt_ns
    lo, hi = integration_gate_ns(params)
    i_lo, i_hi = max(int(lo / dt), 1), min(int(math.ceil(hi / dt)), w.shape[1])
    pedestal = np.median(w[:, :i_lo], axis=1)
    resp = pulse_response(params)
    one = params.single_electron_peak_mv * sum(c * t for c, t in zip(resp.coefficients, resp.taus_ns, strict=True))
    return (w[:, i_lo:i_hi].sum(axis=1) - pedestal * (i_hi - i_lo)) * dt / one


def dedx_length_truncated(chord: np.ndarray, charge: np.ndarray, fraction: float) -> np.ndarray:
    """Per track (rows): Σ charge / Σ chord over the cells of lowest charge per cm that make up the
    lowest ``fraction`` of the track length (a cell is kept when the length before it is below
    the fraction). Cells without a chord are left out."""
    L = np.asarray(chord, dtype=np.float64)
    q = np.asarray(charge, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(L > 0, q / np.where(L > 0, L, 1.0), np.inf)
    o = np.argsort(r, axis=1)
    qs, Ls = np.take_along_axis(q, o, 1), np.take_along_axis(L, o, 1)
    before = np.cumsum(Ls, axis=1) - Ls
    keep = (before < fraction * Ls.sum(axis=1, keepdims=True)) & (Ls > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (qs * keep).sum(axis=1) / (Ls * keep).sum(axis=1)


def density_response(groups: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """The response of a track estimator to the true density, from groups of tracks of different
    densities (species, momenta): ``groups`` = [(estimate per track, true dN/dx per track), …].
    Least-squares line through the groups' means: estimate ≈ offset + slope × true, the slope's
    statistical error from the groups' standard errors, and the mean of the groups' means. Needs
    ≥ 2 groups of ≥ 2 tracks."""
    m_est = np.array([np.mean(e) for e, _ in groups])
    m_true = np.array([np.mean(t) for _, t in groups])
    se = np.array([np.std(e) / math.sqrt(max(len(e), 1)) for e, _ in groups])
    dx = m_true - m_true.mean()
    sxx = float(np.sum(dx**2))
    if len(groups) < 2 or sxx <= 0:
        return {"offset": math.nan, "slope": math.nan, "slope_err": math.nan, "mean_counted": math.nan}
    slope = float(np.sum(dx * (m_est - m_est.mean())) / sxx)
    return {"offset": float(m_est.mean() - slope * m_true.mean()), "slope": slope,
            "slope_err": float(math.sqrt(np.sum((dx / sxx) ** 2 * se**2))), "mean_counted": float(m_est.mean())}


def choose(calibration: dict[str, dict[str, np.ndarray]], methods: Sequence[str],
           separation: Callable[[np.ndarray, np.ndarray], float]) -> tuple[dict[str, str], dict[str, dict[str, float]]]:
    """Each method's option with the largest π/K separation on the calibration tracks.

    ``calibration`` maps "pion" and "kaon" to option key → per-track dN/dx. Returns ``(chosen,
    separations)``: method → chosen option key, and method → option key → its separation (every
    option of the method, NaN included). A method is absent from ``chosen`` when it has no option,
    or none with a separation (NaN: an option that counted nothing, as a threshold above every
    score does)."""
    chosen: dict[str, str] = {}
    separations: dict[str, dict[str, float]] = {}
    for method in methods:
        seps = {k: separation(calibration["pion"][k], calibration["kaon"][k])
                for k in calibration["pion"] if parse_option(k)["method"] == method}
        separations[method] = seps
        valid = {k: s for k, s in seps.items() if not math.isnan(s)}
        if valid:
            chosen[method] = max(valid, key=valid.get)
    return chosen, separations


#: the methods that are reconstructions (the others use the simulation's truth)
RECONSTRUCTED = ("deriv_npeaks", "deriv_sqrt_t", "lstm_npeaks", "lstm_sqrt_t", "lstm_expected", "lstm_cnn",
                 "lstm_cnn_input")


def verdicts(tracks: dict[str, Any] | None, separation: dict[str, Any] | None) -> list[str]:
    """What an evaluation says, in sentences with their statistical errors: the best
    reconstructed dN/dx against dE/dx at the track level, whether the CNN beats a calibrated count
    of its own input peaks, and the π/K separation of dN/dx against dE/dx at each momentum.
    ``tracks`` and ``separation`` are an evaluation's (evaluation.json's) levels, or None."""
    out: list[str] = []

    def finite(*xs: Any) -> bool:
        return all(isinstance(x, (int, float)) and math.isfinite(x) for x in xs)

    if tracks:
        dndx, dedx = tracks.get("dndx") or {}, tracks.get("dedx") or {}
        rec = {m: d for m, d in dndx.items()
               if m in RECONSTRUCTED and finite(d.get("resolution"), d.get("resolution_err"))}
        if rec and finite(dedx.get("resolution")):
            m, d = min(rec.items(), key=lambda kv: kv[1]["resolution"])
            ratio, err = d.get("dedx_over_dndx"), d.get("dedx_over_dndx_err")
            if finite(ratio, err):
                word = ("better" if ratio > 1 + 2 * err else "worse" if ratio < 1 - 2 * err
                        else "no better, within errors,")
                out.append(f"dN/dx ({m}, {d.get('option')}) is {ratio:.2f} ± {err:.2f} × dE/dx's resolution: "
                           f"{word} than dE/dx (truncated {dedx.get('truncation'):.0%}) at "
                           f"{tracks.get('momentum_gev'):g} GeV/c over {tracks.get('cells')} cells "
                           f"({d['resolution']:.2%} ± {d['resolution_err']:.2%} against {dedx['resolution']:.2%}; "
                           "every choice made on calibration tracks)")
        cnn, own = dndx.get("lstm_cnn"), dndx.get("lstm_cnn_input")
        if cnn and own and finite(cnn.get("resolution"), cnn.get("resolution_err"), own.get("resolution"),
                                  own.get("resolution_err")):
            diff = own["resolution"] - cnn["resolution"]
            sigma = math.hypot(cnn["resolution_err"], own["resolution_err"])
            if diff > 2 * sigma:
                word = "beats"
            elif diff < -2 * sigma:
                word = "does worse than"
            else:
                word = "does not beat (within 2σ)"
            out.append(f"The CNN {word} a calibrated count of its own input peaks: dN/dx resolution "
                       f"{cnn['resolution']:.2%} ± {cnn['resolution_err']:.2%} against {own['resolution']:.2%} ± "
                       f"{own['resolution_err']:.2%} ({own.get('option')})")
    if separation:
        for i, mom in enumerate(separation.get("momenta_gev") or []):
            d, derr = separation["dedx"][i], separation["dedx_err"][i]
            rec = {m: (v[i], separation["dndx_err"][m][i]) for m, v in separation.get("dndx", {}).items()
                   if m in RECONSTRUCTED and finite(v[i], separation["dndx_err"][m][i])}
            if not rec or not finite(d, derr):
                continue
            m, (sep, err) = max(rec.items(), key=lambda kv: kv[1][0])
            sigma = math.hypot(err, derr)
            word = "better than" if sep - d > sigma else "worse than" if d - sep > sigma else "no better than"
            out.append(f"π/K at {mom:g} GeV/c: dN/dx ({m}) separates by {sep:.2f} ± {err:.2f} σ, {word} dE/dx's "
                       f"{d:.2f} ± {derr:.2f} σ (difference {sep - d:+.2f} ± {sigma:.2f})")
    return out
