"""Two-step evaluation on fresh, held-out simulated waveforms: peaks, clusters, tracks.

``evaluate(peak_model, cluster_model, ...)`` simulates ``n_waveforms`` waveforms with its own
seed and computes

* **peak level** on the natural mix (every local-rise candidate of :mod:`sweep.physics.datasets`
  scored, the mix is a few to ~10 % signal):

  - *window level* (as in training): precision/recall/F1/AUC/eff×purity of the LSTM scores
    against the window labels (± ``tolerance_samples``), also on a balanced subset;
  - *peak level* (LSTM and DERIV on the same footing): purity = detections with a true electron
    peak within ± k samples / detections, efficiency = distinct true peaks with a detection
    within ± k / distinct true peaks (:func:`sweep.physics.deriv.match_detections`). DERIV's
    figure is the best point (largest eff×purity) of its threshold scan, after the time-walk
    offset calibration; the LSTM's is at ``lstm_threshold`` (the scan over thresholds is also
    stored);

* **cluster level**: predicted vs TRUE number of primary clusters (bias, relative resolution …,
  :func:`sweep.core.metrics.regression_metrics`) for the CNN on the (1024,) encoding of the
  LSTM-detected peaks, the classical √t clusterization of the LSTM peaks and of the DERIV peaks,
  and (reference) the √t clusterization of the true peaks;

* **track level** (:mod:`sweep.physics.tracklevel`): ``n_tracks`` tracks of fixed momentum each
  crossing ``track_cells`` cells; per track dN/dx = Σ counted clusters / Σ chord, dE/dx = the
  length-weighted truncated mean of the charge integrated from each digitised waveform. The LSTM
  counts its peaks, their √t clusters, and the expected number of true peaks among its detections
  (``lstm_expected``, each weighed by its score's probability). Every choice (the LSTM's working
  point, peaks or √t clusters, the √t reference and scale, the expected count's prior, dE/dx's
  truncation) is made by the π/K separation on calibration tracks (pions and kaons of the same
  momentum, seeds of their own), where each method's response to the cluster *density* is fitted
  too (offset α, slope β between the species' means). Resolution = std(dN/dx) / (β × mean true
  dN/dx), with its statistical error; compared with the Poisson limit 1/√N and with dE/dx. A
  per-cell calibration is not used: with chords that vary it rewards an estimator that measures
  the chord, not the density.

* **π/K separation**: at each of ``separation_momenta``, ``separation_tracks`` pions and kaons
  crossing ``cells`` cells; |Δmean| / mean σ of dN/dx (each method with the track level's
  choices; the ratio does not depend on an affine response) and of the truncated-mean dE/dx; each
  method's calibrated density response between the species, checked away from where it was fitted.

Writes ``evaluation.json`` and PNGs (matplotlib, Agg) into ``out_dir``. TensorFlow/Keras are
imported only when a model *path* is given; callables ``f(X) -> scores`` work without them
(the tests use them).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError
from ..core.metrics import classification_metrics, regression_metrics
from ..records.evaluation import EVALUATION, Evaluation, write_evaluation
from . import clusterize, deriv
from . import tracklevel as TL
from . import datasets as D
from .scorers import Scorer, load_model_fn  # load_model_fn: also part of this module's API
from .simulate import SimulationParams, simulate_batch

DEFAULT_LSTM_THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


def truth_peaks(batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct true electron peaks (waveform, sample, tag) of a simulation batch."""
    return D.distinct_peaks(batch.electron_waveform, batch.electron_peak_sample, batch.electron_tag)


def score_candidates(scorer: Scorer, waveforms: np.ndarray, p: SimulationParams,
                     chunk: int = 500_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every candidate of ``waveforms`` (``p.candidate_finder``) and its score: ``(wf, sample, score)``."""
    cw, cs, scale = D.peak_candidates(waveforms, p.finder_threshold_rms, p.candidate_finder)
    scores = np.zeros(cw.size, dtype=np.float64)
    for a in range(0, cw.size, chunk):
        X = D.extract_windows(waveforms, cw[a:a + chunk], cs[a:a + chunk], scale)[:, :, None]
        scores[a:a + chunk] = np.asarray(scorer(X), dtype=np.float64).ravel()
    return cw, cs, scores


def peak_level(det_wf, det_sample, true_wf, true_sample, tolerance: int, n_samples: int) -> dict[str, Any]:
    """The peak level of detections (waveform, sample) against the true peaks: the counts,
    efficiency, purity, eff_purity and f1 of :func:`sweep.physics.deriv.match_detections`, without
    its per-detection labels."""
    r = deriv.match_detections(det_wf, det_sample, true_wf, true_sample, tolerance, n_samples)
    r.pop("labels")
    return r


def _rel_resolution(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    m = float(np.mean(x)) if x.size else math.nan
    return float(np.std(x) / m) if x.size > 1 and m else math.nan


def response_slope(counted: np.ndarray, true: np.ndarray) -> float:
    """Least-squares slope of counted vs true clusters per cell (1 for the truth itself)."""
    t = np.asarray(true, dtype=np.float64)
    c = np.asarray(counted, dtype=np.float64)
    v = float(np.var(t))
    return float(np.mean((t - t.mean()) * (c - c.mean())) / v) if v > 0 else math.nan


def truncated_mean(values: np.ndarray, fraction: float, axis: int = -1) -> np.ndarray:
    """Mean of the lowest ``fraction`` of ``values`` along ``axis`` (at least one value)."""
    v = np.sort(np.asarray(values, dtype=np.float64), axis=axis)
    k = max(1, int(round(fraction * v.shape[axis])))
    return np.take(v, np.arange(k), axis=axis).mean(axis=axis)


def _cnn_counts(cluster_fn: Scorer, n_waveforms: int, det_wf, det_sample, p: SimulationParams,
                rng: np.random.Generator) -> np.ndarray:
    X = D.cluster_inputs(n_waveforms, det_wf, det_sample, p.dt_ns, p.window_ns, p.cluster_bins, 0.0, rng)
    return np.asarray(cluster_fn(X[:, :, None]), dtype=np.float64).ravel()


def _json_safe(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _json_safe(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_json_safe(v) for v in o]
    if isinstance(o, np.ndarray):
        return _json_safe(o.tolist())
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (float, np.floating)):
        f = float(o)
        return f if math.isfinite(f) else None
    return o


# --------------------------------------------------------------------------------------------
# The three levels
# --------------------------------------------------------------------------------------------


def evaluate_peaks(batch, peak_fn: Scorer | None, *, lstm_threshold: float = 0.5,
                   deriv_grid: Sequence[deriv.DerivParams] | None = None, scan_waveforms: int | None = None,
                   lstm_thresholds: Sequence[float] = DEFAULT_LSTM_THRESHOLDS, seed: int = 0
                   ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Peak-level metrics of the LSTM (if given) and DERIV. Returns (metrics, detections) where
    detections maps method → (wf, sample) and carries the scores for the plots."""
    p = batch.params
    w = batch.waveforms_mv
    B, n = w.shape
    tol = p.tolerance_samples
    tw, ts, tt = truth_peaks(batch)
    out: dict[str, Any] = {"n_waveforms": B, "tolerance_samples": tol,
                           "true_peaks_per_waveform": tw.size / B if B else 0.0}
    det: dict[str, Any] = {}
    if peak_fn is not None:
        t0 = time.perf_counter()
        cw, cs, sc = score_candidates(peak_fn, w, p)
        labels, _ = D.match_candidates(cw, cs, tw, ts, tt, tol, n)
        win = classification_metrics(labels, sc, lstm_threshold)
        bi = D.balanced_index(labels, seed)
        bal = classification_metrics(labels[bi], sc[bi], lstm_threshold)
        pos = sc >= lstm_threshold
        lvl = peak_level(cw[pos], cs[pos], tw, ts, tol, n)
        curve = []
        for thr in lstm_thresholds:
            m = sc >= thr
            curve.append({"threshold": float(thr), **peak_level(cw[m], cs[m], tw, ts, tol, n)})
        out["lstm"] = {
            "threshold": lstm_threshold,
            "candidates_per_waveform": cw.size / B if B else 0.0,
            "signal_fraction": float(labels.mean()) if labels.size else 0.0,
            "window_natural": win,
            "window_balanced": bal,
            "peak": lvl,
            "peak_vs_threshold": curve,
            "seconds": time.perf_counter() - t0,
        }
        det["lstm"] = (cw[pos], cs[pos])
        det["_lstm_scores"] = (labels, sc)
    # DERIV: calibrate the time-walk offset and scan thresholds on the first scan_waveforms
    t0 = time.perf_counter()
    m = B if scan_waveforms is None else min(B, int(scan_waveforms))
    in_scan = tw < m
    offset = deriv.calibrate_offset(w[:m], tw[in_scan], ts[in_scan], tol)
    grid = list(deriv_grid) if deriv_grid is not None else deriv.threshold_grid()
    grid = [g.replace(offset_samples=offset) for g in grid]
    scan = deriv.threshold_scan(w[:m], tw[in_scan], ts[in_scan], tol, grid)
    best = scan["best"]
    bp = deriv.DerivParams(**{k: best[k] for k in ("n1", "n2", "n3", "n4", "noise_samples", "offset_samples")})
    dw, ds = deriv.find_peaks(w, bp)
    out["deriv"] = {"offset_samples": offset, "best_params": bp.to_dict(),
                    "peak": peak_level(dw, ds, tw, ts, tol, n), "scan": scan["points"],
                    "scan_waveforms": m, "seconds": time.perf_counter() - t0}
    det["deriv"] = (dw, ds)
    det["_deriv_params"] = bp
    if peak_fn is not None:
        out["lstm_minus_deriv_eff_purity"] = out["lstm"]["peak"]["eff_purity"] - out["deriv"]["peak"]["eff_purity"]
    return out, det


def count_methods(batch, det: dict[str, Any], cluster_fn: Scorer | None, rng: np.random.Generator
                  ) -> dict[str, np.ndarray]:
    """Per waveform cluster counts of each available method (plus 'truth_peaks_sqrt_t')."""
    p = batch.params
    B = batch.n_waveforms
    counts: dict[str, np.ndarray] = {}
    tw, ts, _ = truth_peaks(batch)
    counts["truth_peaks_sqrt_t"] = clusterize.count_clusters(B, tw, ts * p.dt_ns, t0_ns=p.t0_ns)
    for name in ("lstm", "deriv"):
        if name in det:
            w_, s_ = det[name]
            counts[f"{name}_sqrt_t"] = clusterize.count_clusters(B, w_, s_ * p.dt_ns, t0_ns=p.t0_ns)
    if cluster_fn is not None and "lstm" in det:
        counts["lstm_cnn"] = _cnn_counts(cluster_fn, B, *det["lstm"], p, rng)
    return counts


def evaluate_clusters(batch, det: dict[str, Any], cluster_fn: Scorer | None, seed: int = 0) -> tuple[dict, dict]:
    """The cluster level of a batch: (method -> regression metrics of its per-waveform counts against
    the true cluster counts, method -> those counts), for every method :func:`count_methods` has
    with the detections `det` (and the clusterizer `cluster_fn`, when given)."""
    counts = count_methods(batch, det, cluster_fn, np.random.default_rng(seed))
    true = batch.n_clusters.astype(np.float64)
    return {k: regression_metrics(true, v) for k, v in counts.items()}, counts


#: the counting methods of the track level (see :mod:`sweep.physics.tracklevel` for their options)
TRACK_METHODS = ("truth", "truth_peaks_npeaks", "truth_peaks_sqrt_t", "deriv_npeaks", "deriv_sqrt_t",
                 "lstm_npeaks", "lstm_sqrt_t", "lstm_expected", "lstm_cnn")
#: the LSTM counts a working point is chosen by: those of hard detections, which are what the CNN
#: is given (the expected count weighs every detection above the threshold by its score instead)
WORKING_POINT_METHODS = ("lstm_npeaks", "lstm_sqrt_t")
#: the count of the CNN's own input peaks (the LSTM's detections at the CNN's threshold)
CNN_INPUT = "lstm_cnn_input"
#: the species whose tracks calibrate the density response and make every choice
CALIBRATION_PARTICLES = ("pion", "kaon")


def simulate_tracks(params: SimulationParams, peak_fn: Scorer | None, cluster_fn: Scorer | None,
                    deriv_params: deriv.DerivParams | None, *, particle: str, momentum_gev: float, n_tracks: int,
                    cells: int, seed: Sequence[int], cnn_threshold: float = 0.5,
                    thresholds: Sequence[float] = TL.THRESHOLDS, keys: set[str] | None = None,
                    chunk_waveforms: int = 1000) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray]]:
    """``n_tracks`` tracks of one particle and momentum crossing ``cells`` cells each.

    Returns ``(counts, chord_cm, charge)``: counts maps every counting option
    (:func:`sweep.physics.tracklevel.count_options`: the LSTM at each of ``thresholds``, DERIV, the
    true peaks; peaks and √t clusters), ``lstm_cnn`` (the CNN on the LSTM's detections at
    ``cnn_threshold``, the threshold its training data was made at) and ``truth`` to the
    (n_tracks, cells) count per cell; ``keys`` keeps only those. chord is (n_tracks, cells);
    charge maps "waveform" (:func:`sweep.physics.tracklevel.waveform_charge`) and "truth"
    (Σ G/<G> of the electrons) to (n_tracks, cells). ``deriv_params`` None counts no DERIV peaks."""
    p = params.replace(particle=particle, momentum_min_gev=float(momentum_gev),
                       momentum_max_gev=float(momentum_gev), fixed_betagamma=None)
    total = int(n_tracks) * int(cells)
    rng = np.random.default_rng(np.random.SeedSequence(list(seed)))
    per: dict[str, list[np.ndarray]] = {}
    chords: list[np.ndarray] = []
    charges: dict[str, list[np.ndarray]] = {"waveform": [], "truth": []}
    want = (lambda k: True) if keys is None else keys.__contains__
    for a in range(0, total, chunk_waveforms):
        m = min(chunk_waveforms, total - a)
        b = simulate_batch(p, m, rng)
        w = b.waveforms_mv
        counts: dict[str, np.ndarray] = {"truth": b.n_clusters.astype(np.float64)}
        tw, ts, _ = truth_peaks(b)
        counts.update(TL.count_options(m, "truth_peaks", tw, ts, w, p))
        if deriv_params is not None:
            counts.update(TL.count_options(m, "deriv", *deriv.find_peaks(w, deriv_params), w, p))
        if peak_fn is not None:
            cw, cs, sc = score_candidates(peak_fn, w, p)
            counts.update(TL.count_options(m, "lstm", cw, cs, w, p, score=sc, thresholds=thresholds))
            if cluster_fn is not None:
                keep = sc >= cnn_threshold
                counts["lstm_cnn"] = _cnn_counts(cluster_fn, m, cw[keep], cs[keep], p, rng)
        for k, v in counts.items():
            if want(k):
                per.setdefault(k, []).append(np.asarray(v, dtype=np.float64))
        chords.append(b.tracks.path_cm)
        charges["waveform"].append(TL.waveform_charge(w, p))
        charges["truth"].append(np.bincount(b.electron_waveform, weights=b.electron_gain, minlength=m))
    shape = (int(n_tracks), int(cells))
    counts_out = {k: np.concatenate(v).reshape(shape) for k, v in per.items()}
    return (counts_out, np.concatenate(chords).reshape(shape),
            {k: np.concatenate(v).reshape(shape) for k, v in charges.items()})


#: quantiles of a peak model's candidate scores added to the thresholds it is scanned at
SCORE_QUANTILES = (0.5, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995)
PILOT_WAVEFORMS = 100


def scan_thresholds(params: SimulationParams, peak_fn: Scorer, seed: int,
                    base: Sequence[float] = TL.THRESHOLDS) -> tuple[float, ...]:
    """The thresholds a peak model's working point is chosen among: ``base`` below its highest
    score, and the :data:`SCORE_QUANTILES` of its candidates' scores on a pilot simulation of its
    own (:data:`PILOT_WAVEFORMS` waveforms, 4 significant digits). A model whose scores never reach
    0.8 (a sigmoid bottleneck before the output caps them) still gets a scan over its own range."""
    b = simulate_batch(params, PILOT_WAVEFORMS, np.random.default_rng([int(seed), 0x9170]))
    _, _, scores = score_candidates(peak_fn, b.waveforms_mv, params)
    if scores.size == 0:
        return tuple(base)
    top = float(scores.max())
    quantiles = {float(f"{q:.4g}") for q in np.quantile(scores, SCORE_QUANTILES)}
    return tuple(sorted({float(t) for t in base if t <= top} | {q for q in quantiles if 0 < q <= 1}))


def choose_working_point(params: SimulationParams, peak_fn: Scorer, *, momentum_gev: float, cells: int,
                         n_tracks: int, seed: int, thresholds: Sequence[float] | None = None) -> dict[str, Any]:
    """The LSTM threshold whose detections separate pions from kaons best, on calibration tracks.

    ``n_tracks`` pions and as many kaons of ``momentum_gev`` cross ``cells`` cells (seeds of their
    own); at each of ``thresholds`` the LSTM's hard detections (:data:`WORKING_POINT_METHODS`,
    what the CNN is given) are counted as peaks and as √t clusters
    (every reference and scale); a threshold's figure is the best π/K separation of those counts.
    Returns ``{"threshold", "separation_by_threshold" {threshold: σ}, "option" (the count that
    gave it), "tracks", "cells", "momentum_gev"}``. ``thresholds`` default: :func:`scan_thresholds`.

    Raises:
        InputError: no threshold's detections separate the calibration tracks (the model finds
            nothing at any of them).
    """
    if thresholds is None:
        thresholds = scan_thresholds(params, peak_fn, seed)
    cal: dict[str, dict[str, np.ndarray]] = {}
    for j, particle in enumerate(CALIBRATION_PARTICLES):
        c, ch, _ = simulate_tracks(params, peak_fn, None, None, particle=particle, momentum_gev=momentum_gev,
                                   n_tracks=n_tracks, cells=cells, seed=(int(seed), 0x3A7, j), thresholds=thresholds)
        cal[particle] = _track_dndx(c, ch)
    best: dict[float, tuple[float, str]] = {}
    for key in cal["pion"]:
        option = TL.parse_option(key)
        thr = option["threshold"]
        if thr is None or option["method"] not in WORKING_POINT_METHODS:
            continue
        sep = separation_power(cal["pion"][key], cal["kaon"][key])
        if math.isfinite(sep) and (thr not in best or sep > best[thr][0]):
            best[thr] = (sep, key)
    if not best:
        raise InputError(f"the peak model's detections separate nothing at any threshold of {list(thresholds)} on "
                         "the calibration tracks: it finds no peaks there")
    threshold = max(best, key=lambda t: best[t][0])
    return {"threshold": float(threshold), "option": best[threshold][1],
            "separation_by_threshold": {f"{t:g}": s for t, (s, _) in sorted(best.items())},
            "tracks": int(n_tracks), "cells": int(cells), "momentum_gev": float(momentum_gev)}


def choose_peak_leader(params: SimulationParams, peak_fns: Sequence[Scorer], *, momentum_gev: float, cells: int,
                       n_tracks: int, seed: int) -> dict[str, Any]:
    """The peak model (of a shortlist) whose detections separate pions from kaons best, on calibration
    tracks: :func:`choose_working_point` for each, on the same tracks (the same seed), so the
    models are compared on equal terms; its working point is chosen with it.

    Returns ``{"chosen": index into peak_fns, "threshold", "option", "separations" [each model's
    best σ, NaN where it separates nothing], "working_points" [each one's choose_working_point,
    None where it separates nothing]}``.

    Raises:
        InputError: no model of the shortlist separates the calibration tracks.
        ValueError: an empty shortlist.
    """
    if not peak_fns:
        raise ValueError("the shortlist of peak models is empty")
    points: list[dict[str, Any] | None] = []
    for fn in peak_fns:
        try:
            points.append(choose_working_point(params, fn, momentum_gev=momentum_gev, cells=cells,
                                               n_tracks=n_tracks, seed=seed))
        except InputError:  # this one finds nothing at any threshold: it cannot lead
            points.append(None)
    separations = [max(p["separation_by_threshold"].values()) if p else math.nan for p in points]
    if all(p is None for p in points):
        raise InputError(f"none of the {len(peak_fns)} shortlisted peak models separates the calibration tracks "
                         "at any threshold: they find no peaks there")
    chosen = max((i for i, p in enumerate(points) if p is not None), key=lambda i: separations[i])
    return {"chosen": chosen, "threshold": points[chosen]["threshold"], "option": points[chosen]["option"],
            "separations": separations, "working_points": points}


def _track_dndx(counts: dict[str, np.ndarray], chord: np.ndarray) -> dict[str, np.ndarray]:
    length = chord.sum(axis=1)
    return {k: v.sum(axis=1) / length for k, v in counts.items()}


def default_choices(lstm_threshold: float, truncation: float = 0.7) -> dict[str, Any]:
    """What is counted when there are no calibration tracks to choose on: the LSTM at
    ``lstm_threshold``, the √t clusterization chained to the previous peak at 0.26 ns^½ (the
    literature's starting values) and dE/dx truncated at ``truncation``."""
    options = {}
    for method in TRACK_METHODS:
        if method.endswith("_sqrt_t"):
            options[method] = TL.option_key(method, lstm_threshold if method.startswith("lstm") else None,
                                            "previous", clusterize.DIFFUSION_CUT_NS_SQRT_NS)
        elif method.endswith("_npeaks"):
            options[method] = TL.option_key(method, lstm_threshold if method.startswith("lstm") else None)
        elif method.endswith("_expected"):  # the scores taken as the probabilities they are trained to be
            options[method] = TL.option_key(method, lstm_threshold, prior=0.5)
        else:
            options[method] = method
    return {"options": options, "truncation": float(truncation), "responses": {}}


def evaluate_tracks(params: SimulationParams, peak_fn: Scorer | None, cluster_fn: Scorer | None,
                    deriv_params: deriv.DerivParams | None, *, n_tracks: int, cells: int, momentum_gev: float,
                    seed: int, lstm_threshold: float = 0.5, truncation: float | None = None,
                    chunk_waveforms: int = 1000, calibration_tracks: int | None = None,
                    keep: dict[tuple[str, float], tuple] | None = None) -> dict[str, Any]:
    """dN/dx of each counting method against truncated-mean dE/dx for ``n_tracks`` tracks of
    ``params.particle`` crossing ``cells`` cells, every choice made on calibration tracks.

    Calibration: ``calibration_tracks`` (default ``n_tracks``) pions and as many kaons of the same
    momentum, seeds of their own. On them each method's option (LSTM working point, peaks or √t
    clusters, the √t reference and scale) and dE/dx's truncation (unless ``truncation`` fixes it)
    are chosen by the π/K separation they give, and each method's density response (offset α,
    slope β) is fitted (:func:`sweep.physics.tracklevel.density_response`). On the measured tracks:
    resolution = std(dN/dx) / (β × mean true dN/dx), with its statistical error (the spread's and
    β's), the mean calibrated dN/dx over the true one, and dE/dx ÷ dN/dx. The CNN (``lstm_cnn``)
    sees the LSTM's detections at ``lstm_threshold``, the threshold its training data was made at;
    ``deriv_params`` None leaves DERIV out. ``keep`` (a dict) receives the measured tracks,
    ``{(particle, momentum): (counts, chord, charge)}`` as :func:`simulate_tracks` returns them, for
    :func:`evaluate_separation` to use again (``reuse``)."""
    t0 = time.perf_counter()
    n_cal = int(n_tracks if calibration_tracks is None else calibration_tracks)
    scanned = scan_thresholds(params, peak_fn, seed) if peak_fn is not None else TL.THRESHOLDS
    thresholds = tuple(sorted(set(scanned) | {float(lstm_threshold)}))
    common = dict(cells=cells, momentum_gev=momentum_gev, cnn_threshold=lstm_threshold, thresholds=thresholds,
                  chunk_waveforms=chunk_waveforms)
    cal: dict[str, dict[str, np.ndarray]] = {}
    cal_true: dict[str, np.ndarray] = {}
    cal_dedx: dict[str, dict[float, np.ndarray]] = {}
    for j, particle in enumerate(CALIBRATION_PARTICLES):
        c, ch, q = simulate_tracks(params, peak_fn, cluster_fn, deriv_params, particle=particle, n_tracks=n_cal,
                                   seed=(int(seed), 0xCA1B, j), **common)
        cal[particle] = _track_dndx(c, ch)
        cal_true[particle] = cal[particle]["truth"]
        cal_dedx[particle] = {f: TL.dedx_length_truncated(ch, q["waveform"], f) for f in TL.TRUNCATIONS}
    chosen, separations = TL.choose(cal, TRACK_METHODS, separation_power)
    own_peaks = TL.option_key("lstm_npeaks", float(lstm_threshold))
    if "lstm_cnn" in chosen and own_peaks in cal["pion"]:
        # what the CNN must beat to earn its place: a calibrated count of its own input peaks
        chosen[CNN_INPUT] = own_peaks
    scan = {m: separations[TL.parse_option(key)["method"]] for m, key in chosen.items()}
    trunc_scan = {f: separation_power(cal_dedx["pion"][f], cal_dedx["kaon"][f]) for f in TL.TRUNCATIONS}
    trunc = float(truncation) if truncation is not None else max(trunc_scan, key=trunc_scan.get)
    responses = {m: TL.density_response([(cal[sp][k], cal_true[sp]) for sp in CALIBRATION_PARTICLES])
                 for m, k in chosen.items()}

    per, chord, charge = simulate_tracks(params, peak_fn, cluster_fn, deriv_params, particle=params.particle,
                                         n_tracks=n_tracks, seed=(int(seed), 0x7AC5), keys=set(chosen.values()),
                                         **common)
    if keep is not None:
        keep[(params.particle, float(momentum_gev))] = (per, chord, charge)
    length = chord.sum(axis=1)
    true_n = per["truth"].sum(axis=1)
    true = true_n / length
    N = float(true_n.mean())
    poisson = 1.0 / math.sqrt(N) if N > 0 else math.nan
    spread_err = 1.0 / math.sqrt(2 * max(n_tracks - 1, 1))

    def dedx_entry(q: np.ndarray, f: float, source: str) -> dict[str, Any]:
        v = TL.dedx_length_truncated(chord, q, f)
        r = _rel_resolution(v)
        return {"truncation": f, "source": source, "resolution": r, "resolution_err": r * spread_err, "values": v}

    dedx = dedx_entry(charge["waveform"], trunc, "waveform")
    dedx["truncation_scan"] = {f"{f:g}": s for f, s in trunc_scan.items()}
    out: dict[str, Any] = {
        "n_tracks": int(n_tracks), "cells": int(cells), "momentum_gev": float(momentum_gev),
        "particle": params.particle, "track_length_cm": float(length.mean()),
        "mean_true_clusters": N, "mean_true_dndx": float(np.mean(true)), "poisson_limit": poisson,
        "dedx": dedx, "dedx_truth_charge": dedx_entry(charge["truth"], trunc, "truth charge"),
        "dndx": {},
    }
    for method, key in chosen.items():
        est = per[key].sum(axis=1) / length
        resp = responses[method]
        beta = resp["slope"]
        ok = math.isfinite(beta) and beta > 1e-9
        res = float(np.std(est) / (beta * np.mean(true))) if ok else math.nan  # no response: no resolution
        err = res * math.hypot(spread_err, resp["slope_err"] / beta) if ok else math.nan
        out["dndx"][method] = {
            "option": key, "choice": TL.parse_option(key),
            "calibration_separation": scan[method][key],
            "response": resp,
            "resolution": res, "resolution_err": err,
            "resolution_raw": _rel_resolution(est),
            "mean_counted": float(per[key].sum(axis=1).mean()),
            "counted_over_true": float(np.mean((est - resp["offset"]) / beta) / np.mean(true)) if ok else math.nan,
            # the mean's own error and β's: (m − α)/β = (m − m̄_cal)/β + t̄_cal moves by (m − m̄_cal) δβ/β²
            "counted_over_true_err": (math.hypot(np.std(est) / math.sqrt(len(est)) / beta,
                                                 (np.mean(est) - resp["mean_counted"]) * resp["slope_err"] / beta**2)
                                      / np.mean(true)) if ok else math.nan,
            "ratio_to_poisson": res / poisson if poisson else math.nan,
            "dedx_over_dndx": dedx["resolution"] / res if res else math.nan,
            "dedx_over_dndx_err": (dedx["resolution"] / res * math.hypot(err / res, spread_err)
                                   if res and math.isfinite(res) else math.nan),
            "values": est,
        }
    out["calibration"] = {"tracks": n_cal, "particles": list(CALIBRATION_PARTICLES),
                          "momentum_gev": float(momentum_gev), "chosen_by": "pi/K separation on calibration tracks",
                          "options": chosen, "truncation": trunc, "responses": responses, "scan": scan}
    out["seconds"] = time.perf_counter() - t0
    return out


def separation_power(a: np.ndarray, b: np.ndarray) -> float:
    """|mean(a) − mean(b)| / ((std(a) + std(b)) / 2): how many σ apart two particle species are.
    Invariant under an affine response (a counter with slope ε and an offset separates as well
    as its calibrated version). Two constant samples: infinite when their values differ, NaN (no
    figure: a count that found nothing) when they are equal."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    width = 0.5 * (a.std() + b.std())
    if width > 0:
        return float(abs(a.mean() - b.mean()) / width)
    return math.inf if a.mean() != b.mean() else math.nan


def separation_error(a: np.ndarray, b: np.ndarray) -> float:
    """Statistical error of :func:`separation_power` for Gaussian samples: the error of the mean
    difference and that of the mean width (each σ to 1/√(2(n−1))), added in quadrature."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    na, nb = a.size, b.size
    width = 0.5 * (a.std() + b.std())
    if width <= 0 or na < 2 or nb < 2:
        return math.nan
    s = abs(a.mean() - b.mean()) / width
    err_diff = math.sqrt(a.var() / na + b.var() / nb) / width
    err_width = 0.5 * math.sqrt(a.var() / (2 * (na - 1)) + b.var() / (2 * (nb - 1))) / width
    return float(math.hypot(err_diff, s * err_width))


def evaluate_separation(params: SimulationParams, peak_fn: Scorer | None, cluster_fn: Scorer | None,
                        deriv_params: deriv.DerivParams, *, momenta_gev: Sequence[float], n_tracks: int,
                        cells: int, seed: int, choices: dict[str, Any], lstm_threshold: float = 0.5,
                        particles: tuple[str, str] = ("pion", "kaon"),
                        reuse: dict[tuple[str, float], tuple] | None = None,
                        calibration_tracks: int | None = None) -> dict[str, Any]:
    """π/K separation (σ) at each momentum: dN/dx of every counting method and truncated-mean
    dE/dx, from ``n_tracks`` tracks per species crossing ``cells`` cells.

    ``choices`` are the track level's (``evaluate_tracks(...)["calibration"]``: each method's
    option, the truncation, the density responses) or :func:`default_choices`. With responses,
    each method's calibrated dN/dx is checked where it was not fitted: ``calibrated[method]``
    holds, per momentum, its mean over the true dN/dx for each species and its density response
    (Δ calibrated dN/dx / Δ true dN/dx between the species, 1 for an unbiased counter) with its
    statistical error.

    **Calibrated at each momentum.** A count is not linear in the cluster density (clusters that
    bunch within the pulse's width are lost more often in a denser track), so a line fitted at one
    momentum does not carry to another: fitted at 10 GeV/c, the π/K density response at 3 GeV/c
    was 1.08–1.16 ± 0.01. The density response is therefore fitted at every momentum on
    calibration pions and kaons of that momentum (``calibration_tracks`` per species, default
    ``n_tracks``; seeds of their own, never the measured tracks), as an analysis calibrates its
    dN/dx(βγ) curve with identified particles; at the track level's own momentum the track level's
    fit is used again (``calibration_momenta`` says which fit each momentum used). The separations
    themselves do not depend on it (an affine calibration cannot change them).

    ``reuse`` (what :func:`evaluate_tracks` kept) gives tracks of a species and
    momentum already measured with the same options: the first ``n_tracks`` of them are used
    instead of simulating as many again (``reused`` lists them), the costliest part of an
    evaluation being the LSTM's scoring of every candidate."""
    t0 = time.perf_counter()
    momenta = [float(m) for m in momenta_gev]
    if len(set(momenta)) != len(momenta) or any(not m > 0 for m in momenta):
        raise ValueError(f"separation momenta must be distinct and > 0, got {momenta}")
    if int(n_tracks) < 2:
        raise ValueError(f"the separation needs at least 2 tracks per species, got {n_tracks}")
    options: dict[str, str] = dict(choices["options"])
    truncation = float(choices["truncation"])
    responses = {m: r for m, r in (choices.get("responses") or {}).items() if m != "truth"}
    thresholds = tuple(sorted({t for t in (TL.parse_option(k)["threshold"] for k in options.values())
                               if t is not None})) or TL.THRESHOLDS
    out: dict[str, Any] = {"particles": list(particles), "momenta_gev": momenta,
                           "n_tracks": int(n_tracks), "cells": int(cells), "truncation": truncation,
                           "options": options, "dedx": [], "dedx_err": [], "dndx": {}, "dndx_err": {},
                           "reused": []}
    if responses:
        out["calibrated"] = {k: {"counted_over_true": [], "density_slope": [], "density_slope_err": []}
                             for k in responses}
        out["calibration_momenta"] = {}
    n_cal = int(n_tracks if calibration_tracks is None else calibration_tracks)
    fitted_at = choices.get("momentum_gev")
    for mom in momenta:
        at_mom = responses
        if responses and (fitted_at is None or not math.isclose(float(fitted_at), mom)) and n_cal >= 2:
            at_mom = _responses_at(params, peak_fn, cluster_fn, deriv_params, momentum_gev=mom, n_tracks=n_cal,
                                   cells=cells, seed=seed, lstm_threshold=lstm_threshold, thresholds=thresholds,
                                   options={m: options[m] for m in responses if m in options})
            out["calibration_momenta"][f"{mom:g}"] = {"source": "calibration tracks at this momentum",
                                                     "tracks": n_cal, "particles": list(CALIBRATION_PARTICLES)}
        elif responses:
            out["calibration_momenta"][f"{mom:g}"] = {"source": "the track level's calibration tracks",
                                                     "tracks": choices.get("tracks"),
                                                     "particles": list(CALIBRATION_PARTICLES)}
        values: dict[str, list[np.ndarray]] = {}
        for j, particle in enumerate(particles):
            given = (reuse or {}).get((particle, mom))
            if given is not None and given[1].shape == (given[1].shape[0], int(cells)) \
                    and given[1].shape[0] >= int(n_tracks) and set(options.values()) <= set(given[0]):
                per, chord, charge = ({k: v[:n_tracks] for k, v in given[0].items()}, given[1][:n_tracks],
                                      {k: v[:n_tracks] for k, v in given[2].items()})
                out["reused"].append(f"{particle} at {mom:g} GeV/c")
            else:
                # seeded by the momentum's value (in MeV/c), not its place in the list: "10" alone
                # gives the same tracks as "3,10,30"
                per, chord, charge = simulate_tracks(
                    params, peak_fn, cluster_fn, deriv_params, particle=particle, momentum_gev=mom,
                    n_tracks=n_tracks, cells=cells, seed=(int(seed), 0x5E9A, int(round(mom * 1000)), j),
                    cnn_threshold=lstm_threshold, thresholds=thresholds, keys=set(options.values()))
            dndx = _track_dndx(per, chord)
            values.setdefault("dedx", []).append(TL.dedx_length_truncated(chord, charge["waveform"], truncation))
            for method, key in options.items():
                if key in dndx:
                    values.setdefault(method, []).append(dndx[key])
        for method, resp in at_mom.items():
            if method not in values or method not in out["calibrated"]:
                continue
            (ca, cb), (ta, tb) = values[method], values["truth"]
            beta, alpha = resp["slope"], resp["offset"]
            entry = out["calibrated"][method]
            if not (math.isfinite(beta) and beta > 1e-9):
                entry["counted_over_true"].append([math.nan, math.nan])
                entry["density_slope"].append(math.nan)
                entry["density_slope_err"].append(math.nan)
                continue
            ca, cb = (ca - alpha) / beta, (cb - alpha) / beta
            entry["counted_over_true"].append([float(ca.mean() / ta.mean()), float(cb.mean() / tb.mean())])
            dt = float(tb.mean() - ta.mean())
            entry["density_slope"].append(float((cb.mean() - ca.mean()) / dt) if dt else math.nan)
            # the estimator's own scatter about the truth, track by track, over the true difference
            err = math.sqrt(np.var(ca - ta) / ca.size + np.var(cb - tb) / cb.size) / abs(dt) if dt else math.nan
            entry["density_slope_err"].append(float(err))
        dedx = values.pop("dedx")
        out["dedx"].append(separation_power(*dedx))
        out["dedx_err"].append(separation_error(*dedx))
        for k, (a, b) in values.items():
            out["dndx"].setdefault(k, []).append(separation_power(a, b))
            out["dndx_err"].setdefault(k, []).append(separation_error(a, b))
    out["seconds"] = time.perf_counter() - t0
    return out


def _responses_at(params: SimulationParams, peak_fn: Scorer | None, cluster_fn: Scorer | None,
                  deriv_params: deriv.DerivParams | None, *, momentum_gev: float, n_tracks: int, cells: int,
                  seed: int, lstm_threshold: float, thresholds: Sequence[float],
                  options: dict[str, str]) -> dict[str, dict[str, float]]:
    """Each method's density response (tracklevel.density_response) fitted on calibration pions
    and kaons of one momentum, with the methods' chosen options; seeded apart from the track
    level's calibration tracks and from every measured track."""
    cal: dict[str, dict[str, np.ndarray]] = {}
    for j, particle in enumerate(CALIBRATION_PARTICLES):
        c, ch, _ = simulate_tracks(params, peak_fn, cluster_fn, deriv_params, particle=particle,
                                   momentum_gev=momentum_gev, n_tracks=n_tracks, cells=cells,
                                   seed=(int(seed), 0xCA1B, int(round(momentum_gev * 1000)), j),
                                   cnn_threshold=lstm_threshold, thresholds=thresholds,
                                   keys=set(options.values()) | {"truth"})
        cal[particle] = _track_dndx(c, ch)
    return {m: TL.density_response([(cal[sp][k], cal[sp]["truth"]) for sp in CALIBRATION_PARTICLES])
            for m, k in options.items() if k in cal["pion"]}


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------


def _plots(out_dir: Path, result: dict, det: dict, counts: dict, true_n: np.ndarray, tracks: dict | None,
           separation: dict | None = None) -> list[str]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    files: list[str] = []

    def save(fig, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)
        files.append(name)

    peaks = result["peaks"]
    fig, ax = plt.subplots(figsize=(6, 5))
    scan = peaks["deriv"]["scan"]
    ax.scatter([q["efficiency"] for q in scan], [q["purity"] for q in scan], s=8, alpha=0.5, label="DERIV scan")
    b = peaks["deriv"]["peak"]
    ax.scatter([b["efficiency"]], [b["purity"]], marker="*", s=150, c="C1",
               label=f"DERIV best (eff×pur {b['eff_purity']:.3f})")
    if "lstm" in peaks:
        cur = [q for q in peaks["lstm"]["peak_vs_threshold"] if q["n_detected"] > 0]
        ax.plot([q["efficiency"] for q in cur], [q["purity"] for q in cur], "-o", ms=3, c="C2",
                label="LSTM vs threshold")
        q = peaks["lstm"]["peak"]
        ax.scatter([q["efficiency"]], [q["purity"]], marker="*", s=150, c="C3",
                   label=f"LSTM @ {peaks['lstm']['threshold']} (eff×pur {q['eff_purity']:.3f})")
    ax.set_xlabel("efficiency (true peaks found)")
    ax.set_ylabel("purity (detections matched)")
    ax.set_title(f"peak level, natural mix, ± {peaks['tolerance_samples']} samples")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save(fig, "peaks.png")

    if "_lstm_scores" in det:
        from ..core.metrics import roc_points

        labels, sc = det["_lstm_scores"]
        if 0 < labels.sum() < labels.size:
            r = roc_points(labels, sc)
            fig, ax = plt.subplots(figsize=(5, 5))
            ax.plot(r["fpr"], r["tpr"])
            ax.plot([0, 1], [0, 1], "k:", lw=0.8)
            ax.set_xlabel("false positive rate")
            ax.set_ylabel("true positive rate")
            ax.set_title(f"LSTM windows, natural mix (AUC {peaks['lstm']['window_natural']['auc']:.4f})")
            save(fig, "roc.png")

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for k, v in counts.items():
        d = np.asarray(v, dtype=np.float64) - true_n
        ax.hist(d, bins=np.arange(-25.5, 25.5, 1.0), histtype="step",
                label=f"{k}: bias {d.mean():+.2f}, σ {d.std():.2f}")
    ax.set_xlabel("counted − true clusters per cell")
    ax.set_ylabel("waveforms")
    ax.legend(fontsize=7)
    save(fig, "clusters.png")

    if tracks is not None:
        fig, ax = plt.subplots(figsize=(6, 4.5))
        v = np.asarray(tracks["dedx"]["values"])
        ax.hist(v / v.mean(), bins=30, histtype="step", label=f"dE/dx trunc. {tracks['dedx']['truncation']:.0%}: "
                f"{tracks['dedx']['resolution']:.2%}")
        for k, d in tracks["dndx"].items():
            v = np.asarray(d["values"])
            beta = d["response"]["slope"]
            if math.isfinite(beta) and beta > 1e-9 and math.isfinite(d["resolution"]):
                x = 1.0 + (v - v.mean()) / (beta * tracks["mean_true_dndx"])
                ax.hist(x, bins=30, histtype="step", label=f"dN/dx {k}: {d['resolution']:.2%}")
        ax.set_xlabel("value / mean (dN/dx: calibrated to the true dN/dx)")
        ax.set_ylabel("tracks")
        ax.set_title(f"{tracks['cells']} cells, {tracks['momentum_gev']:g} GeV/c {tracks['particle']}; "
                     f"Poisson {tracks['poisson_limit']:.2%}")
        ax.legend(fontsize=7)
        save(fig, "tracks.png")

    if separation is not None:
        fig, ax = plt.subplots(figsize=(6, 4.5))
        mom = separation["momenta_gev"]
        ax.errorbar(mom, separation["dedx"], yerr=separation["dedx_err"], fmt="k--o", capsize=3,
                    label="dE/dx (truncated mean)")
        for k, v in separation["dndx"].items():
            ax.errorbar(mom, v, yerr=separation["dndx_err"][k], fmt="-o", capsize=3, label=f"dN/dx {k}")
        ax.set_xscale("log")
        ax.set_xlabel("momentum (GeV/c)")
        ax.set_ylabel("π/K separation (σ)")
        ax.set_title(f"{separation['cells']} cells, {separation['n_tracks']} tracks per species")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        save(fig, "separation.png")
    return files


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


class WaveformSetView:
    """A :class:`sweep.physics.readers.WaveformSet` seen as a simulation batch (what the peak and
    cluster levels read): params with the file's sampling, waveforms and truth peaks."""

    def __init__(self, ws, params: SimulationParams):
        n = ws.n_samples
        self.params = params.replace(sampling_rate_gsps=1.0 / ws.dt_ns, window_ns=n * ws.dt_ns)
        self.waveforms_mv = ws.waveforms_mv
        self.electron_waveform = ws.peak_wf
        self.electron_peak_sample = ws.peak_sample
        self.electron_tag = ws.peak_tag
        self.n_clusters = ws.n_clusters

    @property
    def n_waveforms(self) -> int:
        """The number of waveforms (as a simulation batch has it)."""
        return int(self.waveforms_mv.shape[0])


def evaluate(
    peak_model: Any = None,
    cluster_model: Any = None,
    *,
    out_dir: str | Path | None = None,
    n_waveforms: int = 1000,
    seed: int = 20241,
    params: SimulationParams | dict | None = None,
    lstm_threshold: float = 0.5,
    deriv_grid: Sequence[deriv.DerivParams] | None = None,
    scan_waveforms: int | None = 500,
    n_tracks: int = 100,
    cells: int = 100,
    momentum_gev: float = 10.0,
    truncation: float | None = None,
    separation_momenta: Sequence[float] = (3.0, 10.0, 30.0),
    separation_tracks: int = 50,
    plots: bool = True,
    input_path: str | Path | None = None,
    read_options: dict[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the three-level evaluation; returns the result dict (also written as JSON if
    ``out_dir``). ``peak_model``/``cluster_model``: a .keras path, a Keras model or a callable.
    ``n_tracks=0`` skips the track level; ``separation_tracks`` pions and as many kaons per
    momentum in ``separation_momenta`` give the π/K separation (0 skips it). ``input_path`` (npz/HDF5/ROOT, see
    :mod:`sweep.physics.readers`; ``read_options`` go to the reader) evaluates the peak and cluster
    levels on the waveforms of that file instead of a fresh simulation (no track level); the
    simulation ``params`` still give the tolerance, the candidate threshold (in noise units) and t0."""
    log = log or (lambda s: None)
    t_start = time.perf_counter()
    p = SimulationParams.from_dict(params)
    peak_fn = load_model_fn(peak_model, input_shape=(D.WINDOW_LENGTH, 1))
    cluster_fn = load_model_fn(cluster_model, input_shape=(p.cluster_bins, 1))
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xE7A1]))
    if input_path is not None:
        from .readers import read_waveforms

        ws = read_waveforms(input_path, **(read_options or {}))
        if ws.n_samples < 32:
            raise InputError(f"{input_path}: holds no waveforms (a training dataset file?)")
        log(f"read {ws.n_waveforms} waveforms of {ws.n_samples} samples from {input_path}")
        batch = WaveformSetView(ws, p)
        n_waveforms, n_tracks, separation_tracks = ws.n_waveforms, 0, 0
    else:
        log(f"simulating {n_waveforms} held-out waveforms (seed {seed})")
        batch = simulate_batch(p, int(n_waveforms), rng)
    # a model applied to inputs made otherwise than its training's finds nothing, silently
    from .scorers import check_model

    where = "the simulation" if input_path is None else str(input_path)
    dt_here = p.dt_ns if input_path is None else ws.dt_ns
    warnings = check_model(peak_model, "peak model", dt_here, where, normalization=D.WINDOW_NORMALIZATION,
                           stats=D.input_stats(batch.waveforms_mv) if peak_model is not None else None,
                           finder=p.candidate_finder)
    warnings += check_model(cluster_model, "cluster model", dt_here, where)
    for line in warnings:
        log(line)
    peaks, det = evaluate_peaks(batch, peak_fn, lstm_threshold=lstm_threshold, deriv_grid=deriv_grid,
                                scan_waveforms=scan_waveforms, seed=seed)
    log("peak level done")
    clusters, counts = evaluate_clusters(batch, det, cluster_fn, seed=seed)
    log("cluster level done")
    tracks = None
    measured: dict[tuple[str, float], tuple] = {}  # the track level's tracks, for the separation again
    if n_tracks and cells:
        log(f"track level: {n_tracks} tracks × {cells} cells at {momentum_gev} GeV/c")
        tracks = evaluate_tracks(p, peak_fn, cluster_fn, det["_deriv_params"], n_tracks=int(n_tracks),
                                 cells=int(cells), momentum_gev=momentum_gev, truncation=truncation,
                                 seed=seed, lstm_threshold=lstm_threshold, keep=measured)
    separation = None
    if separation_tracks and cells and len(separation_momenta):
        log(f"π/K separation: {separation_tracks} tracks per species at {list(separation_momenta)} GeV/c")
        separation = evaluate_separation(p, peak_fn, cluster_fn, det["_deriv_params"],
                                         momenta_gev=separation_momenta, n_tracks=int(separation_tracks),
                                         cells=int(cells), seed=seed, lstm_threshold=lstm_threshold,
                                         choices=tracks["calibration"] if tracks else
                                         default_choices(lstm_threshold, 0.7 if truncation is None else truncation),
                                         reuse=measured,
                                         calibration_tracks=tracks["calibration"]["tracks"] if tracks else None)
        measured.clear()
    result: dict[str, Any] = {
        "seed": int(seed), "n_waveforms": int(n_waveforms),
        "input": None if input_path is None else str(input_path),
        "models": {"peak": None if peak_model is None else str(peak_model) if isinstance(peak_model, (str, Path))
                   else "callable", "cluster": None if cluster_model is None
                   else str(cluster_model) if isinstance(cluster_model, (str, Path)) else "callable"},
        "params": p.to_dict(),
        "peaks": peaks,
        "clusters": clusters,
        "tracks": tracks,
        "separation": separation,
        "warnings": warnings,
    }
    result["summary"] = summary(result)
    result["verdicts"] = TL.verdicts(tracks, separation)
    for line in result["verdicts"]:
        log(line)
    result["seconds"] = time.perf_counter() - t_start
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        if plots:
            result["plots"] = _plots(out, result, det, counts, batch.n_clusters.astype(np.float64), tracks,
                                     separation)
        record = {k: v for k, v in result.items() if k != "verdicts"}  # made again from the levels when read
        write_evaluation(out, Evaluation.from_json(_json_safe({**record, "tracks": _strip_values(tracks)}),
                                                   out / EVALUATION))
    return result


def _strip_values(tracks: dict | None) -> dict | None:
    if tracks is None:
        return None
    t = dict(tracks)
    t["dedx"] = {k: v for k, v in tracks["dedx"].items() if k != "values"}
    t["dndx"] = {m: {k: v for k, v in d.items() if k != "values"} for m, d in tracks["dndx"].items()}
    return t


def summary(result: dict) -> dict[str, Any]:
    """The headline figures (flat) of an evaluation result."""
    s: dict[str, Any] = {}
    pk = result["peaks"]
    if "lstm" in pk:
        s["lstm_f1_balanced"] = pk["lstm"]["window_balanced"]["f1"]
        s["lstm_auc_balanced"] = pk["lstm"]["window_balanced"]["auc"]
        s["lstm_f1_natural"] = pk["lstm"]["window_natural"]["f1"]
        s["lstm_eff_purity_windows_natural"] = pk["lstm"]["window_natural"]["eff_purity"]
        s["lstm_eff_purity_peaks"] = pk["lstm"]["peak"]["eff_purity"]
        best = max(pk["lstm"]["peak_vs_threshold"], key=lambda q: q["eff_purity"], default=None)
        if best is not None:
            s["lstm_eff_purity_peaks_best_threshold"] = best["eff_purity"]
            s["lstm_best_threshold"] = best["threshold"]
    s["deriv_eff_purity_peaks"] = pk["deriv"]["peak"]["eff_purity"]
    if "lstm" in pk:
        s["lstm_minus_deriv"] = s["lstm_eff_purity_peaks"] - s["deriv_eff_purity_peaks"]
    for k, m in result["clusters"].items():
        s[f"clusters_{k}_rel_bias"] = m["rel_bias"]
        s[f"clusters_{k}_rel_resolution"] = m["rel_resolution"]
    tr = result.get("tracks")
    if tr:
        s["poisson_limit"] = tr["poisson_limit"]
        s["dedx_resolution"] = tr["dedx"]["resolution"]
        s["dedx_truncation"] = tr["dedx"]["truncation"]
        for k, d in tr["dndx"].items():
            s[f"dndx_{k}_resolution"] = d["resolution"]
            s[f"dndx_{k}_dedx_ratio"] = d["dedx_over_dndx"]
            if k != "truth":
                s[f"dndx_{k}_density_slope"] = d["response"]["slope"]
                s[f"dndx_{k}_option"] = d["option"]
    sep = result.get("separation")
    if sep:
        for i, mom in enumerate(sep["momenta_gev"]):
            s[f"pi_k_sigma_dedx_{mom:g}gev"] = sep["dedx"][i]
            for k, v in sep["dndx"].items():
                s[f"pi_k_sigma_dndx_{k}_{mom:g}gev"] = v[i]
            for k, c in (sep.get("calibrated") or {}).items():
                s[f"pi_k_density_slope_{k}_{mom:g}gev"] = c["density_slope"][i]
    # records take finite numbers or null: a separation of 0/0 (identical tracks) is no figure
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in s.items()}


def format_summary(s: dict[str, Any]) -> str:
    """An evaluation's summary as text: one "name value" line per entry, floats to 4 decimals."""
    return "\n".join(f"{k:42s} {v:.4f}" if isinstance(v, float) else f"{k:42s} {v}" for k, v in s.items())
