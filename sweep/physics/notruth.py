"""The evaluation where there is no truth: beam-test data (`sweep evaluate --input tb.npz`, a
dataset of `sweep data import`).

Per run (file) and tube channel, each event's counts:

- ``lstm_npeaks``: the LSTM's peaks at its working point (candidates of the model's finder scoring at
  least the threshold, nearby ones merged as the track level does);
- ``deriv_npeaks``: DERIV's peaks at its default thresholds (:class:`~sweep.physics.deriv.DerivParams`:
  there is no truth to scan them on);
- ``lstm_sqrt_t`` / ``deriv_sqrt_t``: their peaks clusterized by the √t diffusion cut;
- ``lstm_expected`` (with a ``prior``): the expected number of true peaks among the LSTM's peaks,
  each weighed by its score's probability at that signal fraction
  (:func:`sweep.physics.tracklevel.expected_weights`; the simulated evaluation chooses the prior on
  calibration tracks and records it in its ``lstm_expected`` option);
- ``lstm_cnn``: the CNN's cluster count from the LSTM's peaks, histogrammed over the CNN's training
  window (its record's; a beam-test waveform of 1024 samples is shorter, its histogram ends early);
- ``charge``: the waveform's integral (mV·ns) over its samples above :data:`CHARGE_CUT` × its noise
  rms (that of its first :data:`~sweep.physics.beamtest.PEDESTAL_SAMPLES`): a zero-suppressed sum,
  as a whole-window integral would carry the pedestal's error × the window's length, for dE/dx.

What a beam-test analysis shows of them (:func:`evaluate_without_truth`):

- per run and channel, each count's **distribution** with a **Poisson fit** (its mean, the mean's
  standard error, χ²/ndf over the bins expecting ≥ 5 events, the tails merged) and the variance over the mean;
- with the runs' **track angles** (``angles``, one per file, degrees): each count's mean against
  1/cos α per channel. A count proportional to the path length in the tube scales as (1/cos α)^1:
  the fitted exponent (weighted least squares of ln mean on ln 1/cos α) and its error, and the ratio
  of the means of the widest and the straightest angle against the ratio 1/cos α predicts;
- **pseudo-tracks** of N hits (``hits``, default 5, 10, 20, 50) from consecutive events of one tube,
  as the beam-test analyses make them: per track dN/dx = mean count per cm of tube (per hit when the
  map gives no size) and dE/dx = the truncated mean of the charges (lowest ``truncation``, 70 %
  as in the track level); the relative resolution σ/μ over the tracks against N, with its error
  σ/μ / √(2(M − 1)) for M tracks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import clusterize, deriv
from . import datasets as D
from .scorers import load_model_fn
from .simulate import SimulationParams
from .tracklevel import expected_weights

#: pseudo-track lengths (hits) of the beam-test analyses
HITS = (5, 10, 20, 50)
#: the counts of each event, in the order tables show them
METHODS = ("lstm_npeaks", "lstm_sqrt_t", "lstm_expected", "lstm_cnn", "deriv_npeaks", "deriv_sqrt_t")
#: a Poisson fit's bins expect at least this many events (tails merged into the end bins)
MIN_EXPECTED = 5.0
#: the charge sums the samples above this many noise rms
CHARGE_CUT = 3.0


def event_counts(waveforms: np.ndarray, params: SimulationParams, peak_fn, cluster_fn, threshold: float,
                 seed: int = 0, cnn_window_ns: float | None = None,
                 prior: float | None = None) -> dict[str, np.ndarray]:
    """Per event counts of every method available (see the module doc), and ``charge``. The CNN's
    histograms span ``cnn_window_ns`` (its training's window; default the waveforms'); ``prior``
    (a signal fraction in (0, 1)) adds the expected count ``lstm_expected``."""
    from .evaluate import _cnn_counts, score_candidates

    from .beamtest import PEDESTAL_SAMPLES

    w = np.asarray(waveforms, dtype=np.float32)
    B = w.shape[0]
    noise = w[:, :PEDESTAL_SAMPLES].std(axis=1, keepdims=True)
    out: dict[str, np.ndarray] = {"charge": np.where(w > CHARGE_CUT * noise, w, 0).astype(np.float64).sum(axis=1)
                                  * params.dt_ns}
    dw, ds = deriv.find_peaks(w, deriv.DerivParams())
    out["deriv_npeaks"] = np.bincount(dw, minlength=B).astype(np.float64)
    out["deriv_sqrt_t"] = clusterize.count_clusters(B, dw, ds * params.dt_ns, t0_ns=params.t0_ns).astype(np.float64)
    if peak_fn is not None:
        cw, cs, sc = score_candidates(peak_fn, w, params)
        sel = sc >= threshold
        cw, cs, sc = cw[sel], cs[sel], sc[sel]
        keep = D.suppress_nearby(cw, cs, sc, params.tolerance_samples)
        cw, cs, sc = cw[keep], cs[keep], sc[keep]
        out["lstm_npeaks"] = np.bincount(cw, minlength=B).astype(np.float64)
        if prior is not None:
            out["lstm_expected"] = np.bincount(cw, weights=expected_weights(sc, prior), minlength=B)
        out["lstm_sqrt_t"] = clusterize.count_clusters(B, cw, cs * params.dt_ns,
                                                       t0_ns=params.t0_ns).astype(np.float64)
        if cluster_fn is not None:
            cnn_params = params if cnn_window_ns is None else params.replace(window_ns=cnn_window_ns)
            out["lstm_cnn"] = _cnn_counts(cluster_fn, B, cw, cs, cnn_params, np.random.default_rng(seed))
    return out


def _cnn_window(model: Any, data_window_ns: float) -> tuple[float, str | None]:
    """The window the CNN's histograms were made over in its training (its record's simulation),
    and a note when the data's is longer (its later peaks fall outside the CNN's view). Without a
    record: the data's window."""
    from .scorers import training_record

    record = training_record(model) if model is not None else None
    trained = (record.simulation or {}).get("window_ns") if record is not None else None
    if not trained:
        return data_window_ns, None
    trained = float(trained)
    if data_window_ns > trained * (1 + 1e-9):
        return trained, (f"warning: cluster model {model} was trained on {trained:g} ns windows, the data's are "
                         f"{data_window_ns:g} ns: peaks after {trained:g} ns are not given to it")
    return trained, None


def poisson_fit(counts: np.ndarray) -> dict[str, Any]:
    """The Poisson fit of per-event counts: mean (the maximum-likelihood λ) ± its standard error
    from the counts' own spread (√(λ/n) would understate it for overdispersed counts), χ² and ndf
    over integer bins expecting ≥ :data:`MIN_EXPECTED` events (tails merged into the end bins;
    counts rounded for the CNN's real-valued ones), variance ÷ mean (1 for a Poisson)."""
    from scipy import stats

    c = np.rint(np.asarray(counts, dtype=np.float64)).astype(np.int64)
    n = c.size
    if n == 0:
        return {"events": 0, "mean": math.nan, "mean_err": math.nan, "chi2": math.nan, "ndf": 0,
                "var_over_mean": math.nan}
    lam = float(np.mean(counts))
    spread = float(np.var(counts, ddof=1)) if n > 1 else max(lam, 0.0)
    out = {"events": int(n), "mean": lam, "mean_err": math.sqrt(spread / n),
           "var_over_mean": float(np.var(counts, ddof=1) / lam) if n > 1 and lam > 0 else math.nan}
    if lam <= 0:
        return {**out, "chi2": math.nan, "ndf": 0}
    k = np.arange(0, max(int(c.max()), int(lam + 10 * math.sqrt(lam) + 10)) + 1)
    expected = n * stats.poisson.pmf(k, lam)
    expected[-1] += n * stats.poisson.sf(k[-1], lam)  # the upper tail in the last bin
    observed = np.bincount(np.minimum(c, k[-1]), minlength=k.size).astype(np.float64)
    edges = _merged_bins(expected)
    e = np.add.reduceat(expected, edges)
    o = np.add.reduceat(observed, edges)
    ndf = e.size - 2  # the total and λ come from the data
    chi2 = float(np.sum((o - e) ** 2 / e)) if ndf > 0 else math.nan
    return {**out, "chi2": chi2, "ndf": int(max(ndf, 0))}


def _merged_bins(expected: np.ndarray) -> np.ndarray:
    """Start indexes of bins each expecting ≥ MIN_EXPECTED, merging from both tails inwards."""
    starts, acc = [0], 0.0
    for i, e in enumerate(expected):
        acc += e
        if acc >= MIN_EXPECTED and i + 1 < expected.size:
            starts.append(i + 1)
            acc = 0.0
    if len(starts) > 1 and expected[starts[-1]:].sum() < MIN_EXPECTED:
        starts.pop()  # the last bin is too small: merge it into the one before
    return np.asarray(starts, dtype=np.int64)


def angle_scaling(means: Sequence[float], errors: Sequence[float], angles_deg: Sequence[float]) -> dict[str, Any]:
    """How a count's mean scales with 1/cos α: the exponent b of mean ∝ (1/cos α)^b (weighted least
    squares of ln mean on ln 1/cos α; 1 for a count proportional to the path) with its error, and the
    ratio of the means at the widest and the straightest angle against 1/cos α's ratio."""
    m, e, a = (np.asarray(x, dtype=np.float64) for x in (means, errors, angles_deg))
    x = -np.log(np.cos(np.deg2rad(a)))
    y = np.log(m)
    sy = e / m
    out: dict[str, Any] = {"angles_deg": a.tolist(), "means": m.tolist(), "errors": e.tolist()}
    i, j = int(np.argmin(a)), int(np.argmax(a))
    out["ratio"] = float(m[j] / m[i])
    out["ratio_err"] = float(out["ratio"] * math.hypot(e[j] / m[j], e[i] / m[i]))
    out["expected_ratio"] = float(math.cos(math.radians(a[i])) / math.cos(math.radians(a[j])))
    if np.ptp(x) <= 0 or not np.all(np.isfinite(y)) or not np.all(sy > 0):
        return {**out, "exponent": math.nan, "exponent_err": math.nan}
    wgt = 1 / sy ** 2
    xm = np.sum(wgt * x) / np.sum(wgt)
    sxx = np.sum(wgt * (x - xm) ** 2)
    slope = float(np.sum(wgt * (x - xm) * (y - np.sum(wgt * y) / np.sum(wgt))) / sxx)
    out["exponent"], out["exponent_err"] = slope, float(1 / math.sqrt(sxx))
    return out


def pseudo_tracks(counts: dict[str, np.ndarray], tube_cm: float | None, hits: Sequence[int],
                  truncation: float) -> dict[str, Any]:
    """Resolutions of pseudo-tracks of N consecutive events (see the module doc): per N, per count
    and for dE/dx, σ/μ and its error, and the number of tracks; N with fewer than 2 tracks left out."""
    from .evaluate import truncated_mean

    per = tube_cm if tube_cm and math.isfinite(tube_cm) else 1.0
    out: dict[str, Any] = {"hits": [], "tracks": [], "unit": "per cm" if per != 1.0 else "per hit",
                           "resolution": {}, "resolution_err": {}}
    n_events = len(counts["charge"])
    for n in hits:
        m = n_events // int(n)
        if m < 2:
            continue
        out["hits"].append(int(n))
        out["tracks"].append(int(m))
        for key, values in counts.items():
            v = np.asarray(values[:m * n], dtype=np.float64).reshape(m, n)
            per_track = truncated_mean(v, truncation, axis=1) if key == "charge" else v.mean(axis=1) / per
            name = "dedx" if key == "charge" else key
            mu = float(np.mean(per_track))
            res = float(np.std(per_track, ddof=1) / mu) if mu > 0 else math.nan
            out["resolution"].setdefault(name, []).append(res)
            out["resolution_err"].setdefault(name, []).append(res / math.sqrt(2 * (m - 1)))
    return out


def evaluate_without_truth(data: dict[str, Any], peak_model: Any = None, cluster_model: Any = None, *,
                           threshold: float = 0.5, params: SimulationParams | dict | None = None,
                           angles: Sequence[float] | None = None, hits: Sequence[int] = HITS,
                           truncation: float = 0.7, seed: int = 0, input_path: str | None = None,
                           prior: float | None = None, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The evaluation of a beam-test dataset (:func:`sweep.physics.beamtest.read_dataset`'s dict).
    ``params`` give the √t clusterization's t0 and the candidate finder (the simulation's, which the
    models were trained on); the sampling is the data's. Returns the result (see the module doc)
    with ``groups`` (per run and channel), ``angles`` (per channel and count, when given),
    ``warnings`` and ``counts`` (per group, the per-event arrays, for the plots). ``prior`` (with a
    peak model) adds the expected count ``lstm_expected`` at that signal fraction.

    Raises:
        InputError: angles that are not one per file, or not in [0, 90); a prior not in (0, 1), or
            without a peak model.
        ModelError: a model that cannot be applied (:func:`sweep.physics.scorers.check_model`).
    """
    from ..core.errors import InputError
    from .scorers import check_model

    log = log or (lambda s: None)
    t_start = time.perf_counter()
    w = np.asarray(data["waveforms"], dtype=np.float32)
    dt = float(data["dt_ns"])
    files = data["meta"]["files"]
    p = SimulationParams.from_dict(params).replace(sampling_rate_gsps=1.0 / dt, window_ns=w.shape[1] * dt)
    if angles is not None and (len(angles) != len(files) or not all(0 <= a < 90 for a in angles)):
        raise InputError(f"--angles: one angle in [0, 90) degrees per file of the dataset ({len(files)}: "
                         f"{', '.join(Path(f['path']).name for f in files)}), got {list(angles)}")
    if prior is not None and not (0 < prior < 1 and peak_model is not None):
        raise InputError(f"--prior: the signal fraction in (0, 1) the peak model's scores are weighed at, with "
                         f"--peak-model; got {prior}" + ("" if peak_model is not None else " without a peak model"))
    where = input_path or "the beam-test dataset"
    warnings = check_model(peak_model, "peak model", dt, where, normalization=D.WINDOW_NORMALIZATION,
                           stats=D.input_stats(w) if peak_model is not None else None, finder=p.candidate_finder)
    warnings += check_model(cluster_model, "cluster model", dt, where)
    cnn_window, note = _cnn_window(cluster_model, p.window_ns)
    warnings += [note] if note else []
    peak_fn = load_model_fn(peak_model, input_shape=(D.WINDOW_LENGTH, 1))
    cluster_fn = load_model_fn(cluster_model, input_shape=(p.cluster_bins, 1))
    for line in warnings:
        log(line)
    groups, counts_by_group = [], []
    keys = sorted({(int(f), int(c)) for f, c in zip(data["file_index"], data["channel"], strict=True)})
    for f, ch in keys:
        rows = np.nonzero((data["file_index"] == f) & (data["channel"] == ch))[0]
        rows = rows[np.argsort(data["event"][rows], kind="stable")]  # consecutive events, in order
        tube = float(data["tube_cm"][rows[0]])
        counts = event_counts(w[rows], p, peak_fn, cluster_fn, threshold, seed, cnn_window_ns=cnn_window,
                              prior=prior)
        log(f"{Path(files[f]['path']).name} channel {ch}: {rows.size} events counted")
        group = {"file": files[f]["path"], "file_index": f, "channel": ch,
                 "tube_cm": tube if math.isfinite(tube) else None, "events": int(rows.size),
                 "angle_deg": None if angles is None else float(angles[f]),
                 "fits": {k: poisson_fit(v) for k, v in counts.items() if k != "charge"},
                 "pseudo_tracks": pseudo_tracks(counts, tube, hits, truncation)}
        groups.append(group)
        counts_by_group.append(counts)
    scaling: dict[str, Any] = {}
    if angles is not None and len(set(angles)) > 1:
        for ch in sorted({g["channel"] for g in groups}):
            mine = [g for g in groups if g["channel"] == ch]
            if len({g["angle_deg"] for g in mine}) < 2:
                continue
            scaling[str(ch)] = {k: angle_scaling([g["fits"][k]["mean"] for g in mine],
                                                 [g["fits"][k]["mean_err"] for g in mine],
                                                 [g["angle_deg"] for g in mine])
                                for k in mine[0]["fits"]}
    return {"input": input_path, "n_waveforms": int(w.shape[0]), "dt_ns": dt, "threshold": float(threshold),
            "prior": None if prior is None else float(prior),
            "models": {"peak": None if peak_model is None else str(peak_model),
                       "cluster": None if cluster_model is None else str(cluster_model)},
            "t0_ns": p.t0_ns, "deriv": deriv.DerivParams().to_dict(), "truncation": float(truncation),
            "groups": groups, "angles": scaling or None, "warnings": warnings,
            "seconds": time.perf_counter() - t_start, "counts": counts_by_group}


def evaluate_dataset(path: str | Path, out_dir: str | Path, *, plots: bool = True, **options: Any) -> dict[str, Any]:
    """:func:`evaluate_without_truth` of the beam-test dataset ``path``, its PNGs (:func:`draw`) and
    its record (``out_dir``/beamtest.json, :mod:`sweep.records.beamtest`) written; returns the result.

    Raises:
        ReaderError: not a beam-test dataset; and what :func:`evaluate_without_truth` raises.
    """
    from ..records.beamtest import BEAMTEST_EVALUATION, BeamTestEvaluation, write_beamtest_evaluation
    from .beamtest import read_dataset
    from .evaluate import _json_safe

    result = evaluate_without_truth(read_dataset(path), input_path=str(path), **options)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = draw(out, result) if plots else None
    record = {k: v for k, v in result.items() if k != "counts"}
    write_beamtest_evaluation(out, BeamTestEvaluation.from_json(
        {"schema_version": 1, **_json_safe({**record, "plots": files})}, out / BEAMTEST_EVALUATION))
    return result


def summary_lines(result: dict[str, Any]) -> list[str]:
    """The headline of a result: per run and channel each count's mean and χ²/ndf; per channel and
    count the angle scaling's exponent and ratio."""
    lines = []
    for g in result["groups"]:
        fits = ", ".join(f"{m} {f['mean']:.2f}" + (f" (χ²/ndf {f['chi2']:.0f}/{f['ndf']})" if f["ndf"] else "")
                         for m, f in g["fits"].items())
        angle = "" if g["angle_deg"] is None else f" at {g['angle_deg']:g}°"
        lines.append(f"{Path(g['file']).name} channel {g['channel']}{angle}: {g['events']} events; {fits}")
    for ch, per in (result["angles"] or {}).items():
        for m, s in per.items():
            lines.append(f"channel {ch} {m}: mean ∝ (1/cos α)^{s['exponent']:.3f} ± {s['exponent_err']:.3f}; "
                         f"ratio {s['ratio']:.3f} ± {s['ratio_err']:.3f} (1/cos α: {s['expected_ratio']:.3f})")
    return lines


def draw(out_dir: Path, result: dict[str, Any]) -> list[str]:
    """The PNGs of a result beside its record: per run and channel the count distributions with
    their Poisson fits; the means against 1/cos α; the pseudo-track resolutions against N. Returns
    the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy import stats

    files = []

    def save(fig, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=90)
        plt.close(fig)
        files.append(name)

    for i, (group, counts) in enumerate(zip(result["groups"], result["counts"], strict=True)):
        methods = [m for m in METHODS if m in counts]
        fig, axes = plt.subplots(1, len(methods), figsize=(3.2 * len(methods), 2.8), squeeze=False)
        for ax, m in zip(axes[0], methods, strict=True):
            c = np.rint(counts[m]).astype(int)
            fit = group["fits"][m]
            k = np.arange(max(c.max(), 1) + 2)
            ax.hist(c, bins=k - 0.5, histtype="step", color="k", label="data")
            ax.plot(k, fit["events"] * stats.poisson.pmf(k, fit["mean"]), "r-", lw=1,
                    label=f"Poisson λ={fit['mean']:.2f}\nχ²/ndf={fit['chi2']:.1f}/{fit['ndf']}")
            ax.set_xlabel(m)
            ax.legend(fontsize=6)
        fig.suptitle(f"{Path(group['file']).name} ch {group['channel']}", fontsize=8)
        save(fig, f"counts-{i}.png")
    if result.get("angles"):
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for ch, per in result["angles"].items():
            for m, s in per.items():
                a = np.asarray(s["angles_deg"])
                x = 1 / np.cos(np.deg2rad(a))
                ax.errorbar(x, np.asarray(s["means"]) / s["means"][int(np.argmin(a))],
                            yerr=np.asarray(s["errors"]) / s["means"][int(np.argmin(a))], fmt="o-", capsize=3,
                            label=f"ch {ch} {m}: b={s['exponent']:.2f}±{s['exponent_err']:.2f}")
        lim = np.array(ax.get_xlim())
        ax.plot(lim, lim, "k--", lw=0.8, label="1/cos α")
        ax.set_xlabel("1 / cos α")
        ax.set_ylabel("mean count ÷ mean at the straightest angle")
        ax.legend(fontsize=6)
        save(fig, "angles.png")
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for group in result["groups"]:
        pt = group["pseudo_tracks"]
        for name in ("lstm_cnn", "lstm_npeaks", "deriv_npeaks", "dedx"):
            if name in pt["resolution"]:
                ax.errorbar(pt["hits"], np.asarray(pt["resolution"][name]) * 100,
                            yerr=np.asarray(pt["resolution_err"][name]) * 100, fmt="o-", capsize=3,
                            label=f"{Path(group['file']).name} ch {group['channel']} {name}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    hits = sorted({n for g in result["groups"] for n in g["pseudo_tracks"]["hits"]})
    ax.set_xticks(hits, [str(n) for n in hits])
    ax.minorticks_off()
    ax.set_xlabel("hits per pseudo-track N")
    ax.set_ylabel("σ/μ (%)")
    ax.legend(fontsize=5)
    save(fig, "pseudo-tracks.png")
    return files
