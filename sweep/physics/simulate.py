"""Fast toy simulator of IDEA drift-chamber waveforms for cluster counting.

Garfield++ is not available, so this module is the stand-in. One track per waveform:

1. **Track**: particle (default pion) with momentum uniform in [4, 180] GeV/c; βγ = p/m.
2. **Cluster density** λ(βγ) in clusters/cm: the Delphes ``TrkUtil::Nclusters`` table for
   He 90 / iC4H10 10, interpolated with a cubic spline in log βγ (clamped outside the table).
3. **Geometry**: a cell of side (square) or diameter (tube) ``cell_size_cm`` with the sense wire at
   its centre. The track has a random impact parameter b (uniform in [0, R], R = half cell) and
   angle φ (uniform in ±``track_angle_max_deg``), which set the chord length L through the cell.
   Default: a round tube of 1.5 cm (the beam-test tubes of 1, 1.5 and 2 cm, where the literature
   measured dN/dx ~2× better than dE/dx), L = 2√(R² − b²): chords vary from cell to cell as they do
   for tracks crossing a real chamber. ``cell_shape: square`` with ``track_angle_max_deg: 0`` is the
   seed study's geometry (every chord 1.5 cm: no path-length spread).
4. **Clusters**: N ~ Poisson(λ·L), positions uniform along the chord (= exponential spacings);
   drift distance to the wire r = √(b² + s²).
5. **Cluster size**: Fischle et al. (NIM A301, 1991), n = 1..19 from the table, then the δ-electron
   tail ``cluster_size_tail_percent``/n² (10.9/n² %) up to ``cluster_size_max`` = 300 electrons by
   default (mean 1.82 electrons): a cluster of 300 electrons holds ~10 keV (W ≈ 35 eV in He 90 / iC4H10 10),
   and a δ-electron of ~10 keV has a range of ~0.6 cm in this gas at NTP, the size of the half
   cell: larger ones leave the cell or are not one cluster. The tail gives the total charge its
   Landau tail (dE/dx's truncated mean is then better than its plain mean, as in every gas).
   ``cluster_size_max: 19`` is the seed study's cut distribution (mean 1.53).
6. **Drift**: t(r) = Σ_k c_k r^(k+1) (ns, r in cm; default 200 r + 200 r², i.e. 262 ns for 0.75 cm,
   ~50 µm/ns at the wire, ~20 µm/ns at 0.75 cm). Every electron of a cluster gets an independent
   Gaussian time spread σ = 0.26·√(t/ns) ns, so secondaries sit close to their primary. The earliest
   electron of a cluster is tagged *primary* (tag 1), the others *secondary* (tag 2).
7. **Gain**: Polya with θ = 0.5 (a Gamma(1+θ) distribution of G/⟨G⟩).
8. **Pulse**: single-electron current ∝ e^(−t/τf) − e^(−t/τr) (τr 1 ns, τf 7 ns), optionally convolved
   with an electronics response (fall 9 and 25 ns, rise 3 ns). The response is a sum of exponentials,
   so it is rendered *exactly* at sub-sample arrival times with first-order IIR filters
   (``np.bincount`` deposits + ``scipy.signal.lfilter`` along the time axis) – fast and vectorised.
   Pulses are positive-going; the peak amplitude of an electron at mean gain is
   ``single_electron_peak_mv``.
9. **Noise / digitisation**: AR(1)-coloured Gaussian noise (1 mV rms, 1 ns correlation time), a
   baseline of 50 mV (small per-waveform jitter), a 12-bit ADC over [0, 1000] mV.
10. **Sampling**: 1.2 GS/s, a 2000 ns window (2400 samples).

Truth: electron arrival times (ns, sample), the *peak sample* of each electron (the sample at
which the local-rise finder of :mod:`sweep.physics.datasets` fires for that electron's pulse alone,
i.e. its steepest rise; see :meth:`PulseResponse.peak_sample`), tags, cluster indices, n_clusters;
per track particle, momentum, βγ, impact parameter, chord.

Reproducible: everything is drawn from a ``numpy.random.Generator``. scipy is imported lazily, so
importing this module costs only numpy. Turning a simulation into the two training datasets and
their file is :mod:`sweep.physics.datasets` (``simulate_to_file``).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

from ..core.errors import InputError

# --------------------------------------------------------------------------------------------
# Published numbers (kept here: the project must not read ../shared at run time)
# --------------------------------------------------------------------------------------------

#: Particle masses in GeV/c².
PARTICLE_MASSES_GEV: dict[str, float] = {
    "electron": 0.000510999,
    "muon": 0.105658,
    "pion": 0.139570,
    "kaon": 0.493677,
    "proton": 0.938272,
}

#: Delphes TrkUtil::Nclusters (He 90 / iC4H10 10): βγ knots ...
DELPHES_BETAGAMMA: tuple[float, ...] = (
    0.5, 0.8, 1.0, 2.0, 3.0, 4.0, 5.0, 8.0, 10.0, 12.0, 15.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0,
)
#: ... and clusters/cm at those knots (constant 16.98 above βγ = 1000).
DELPHES_CLUSTERS_PER_CM: tuple[float, ...] = (
    42.94, 23.6, 18.97, 12.98, 12.2, 12.13, 12.24, 12.73, 13.03, 13.29, 13.63, 14.08, 15.56, 16.43,
    16.8, 16.95, 16.98,
)
#: Fischle et al., NIM A301 (1991): P(n) in % for n = 1..19 (tail 10.9/n² beyond, see
#: FISCHLE_TAIL_PERCENT and SimulationParams.cluster_size_max).
FISCHLE_CLUSTER_SIZE_PERCENT: tuple[float, ...] = (
    76.6, 12.5, 4.6, 2.0, 1.2, 0.75, 0.50, 0.36, 0.25, 0.19, 0.14, 0.10, 0.08, 0.06, 0.048, 0.043,
    0.038, 0.034, 0.030,
)
#: Fischle tail: P(n) = this / n² in % for n beyond the table.
FISCHLE_TAIL_PERCENT = 10.9


#: the candidate finders of sweep.physics.datasets.FINDER_RULES (kept here: datasets imports this module)
CANDIDATE_FINDERS = ("rise", "slope", "bump", "d2")


#: Front ends and digitisers by what they model: ``electronics_preset: NAME`` in a parameters mapping
#: sets these values; keys given beside it win. Each with where its numbers come from.
ELECTRONICS_PRESETS: dict[str, dict[str, Any]] = {
    # the seed study's 1.2 GS/s (2000 ns window -> 2400 samples) with the 1 ns / 7 ns single-electron
    # pulse of k4RecTracker's drift-chamber digitisers: this simulator's defaults
    "seed": {"pulse_tau_rise_ns": 1.0, "pulse_tau_fall_ns": 7.0, "sampling_rate_gsps": 1.2, "adc_bits": 12},
    # the beam-test front ends (CERN H8 2021-22 tubes read by V1742 / DRS4 at 2 GS/s): templates with a
    # rise of 0.4-0.6 ns and a fall of 1.0-2.4 ns
    "fast_front_end": {"pulse_tau_rise_ns": 0.5, "pulse_tau_fall_ns": 2.0, "sampling_rate_gsps": 2.0,
                       "adc_bits": 12},
    # key4hep k4RecTracker DCHdigi_v03 (2026): waveforms sampled every 0.5 ns by a 12-bit ADC, 1/7 ns pulse
    "dchdigi_v03": {"pulse_tau_rise_ns": 1.0, "pulse_tau_fall_ns": 7.0, "sampling_rate_gsps": 2.0, "adc_bits": 12},
}
PRESET_KEY = "electronics_preset"


class ParameterError(ValueError, InputError):
    """A simulation parameter is unknown or has an invalid value."""


def _p(default: Any, kind: str, doc: str, **kw: Any) -> Any:
    return field(default=default, metadata={"kind": kind, "doc": doc, **kw})


#: parameters that no longer exist -> why (a parameters file that sets one gets this, not "unknown")
REMOVED_PARAMETERS = {
    "window_scale_mv": "the peak finder's windows are divided by each waveform's own noise rms since dataset "
                       "format 3 (sweep.physics.datasets.noise_rms), whatever the amplitude unit; remove it",
}


@dataclass(frozen=True)
class SimulationParams:
    """All knobs of the toy simulator and of the dataset building (flat, YAML/CLI friendly).

    Build from a mapping with :meth:`from_dict` (unknown keys are rejected) and serialise with
    :meth:`to_dict`. Lists are stored as tuples so that instances are hashable.
    """

    # --- track ---------------------------------------------------------------------------
    particle: str = _p("pion", "str", "particle type (electron, muon, pion, kaon, proton)")
    momentum_min_gev: float = _p(4.0, "float", "lower edge of the uniform momentum range, GeV/c")
    momentum_max_gev: float = _p(180.0, "float", "upper edge of the uniform momentum range, GeV/c")
    fixed_betagamma: float | None = _p(None, "optfloat", "if set, every track has this βγ")
    # --- gas / ionisation ------------------------------------------------------------------
    gas: str = _p("He 90% / iC4H10 10%", "str", "gas mixture (label only)")
    cluster_density_betagamma: tuple[float, ...] = _p(DELPHES_BETAGAMMA, "floats", "βγ knots")
    cluster_density_per_cm: tuple[float, ...] = _p(
        DELPHES_CLUSTERS_PER_CM, "floats", "clusters/cm at the knots"
    )
    cluster_density_scale: float = _p(1.0, "float", "multiplies the cluster density")
    cluster_size_percent: tuple[float, ...] = _p(
        FISCHLE_CLUSTER_SIZE_PERCENT, "floats", "P(n) for n = 1..len, renormalised"
    )
    cluster_size_max: int | None = _p(
        300, "optint",
        "largest cluster size (300: a ~10 keV delta electron, whose range is the half cell; null: the "
        "table's length, no tail, the seed's 19); beyond the table P(n) = cluster_size_tail_percent / n²",
    )
    cluster_size_tail_percent: float = _p(
        FISCHLE_TAIL_PERCENT, "float",
        "tail coefficient (% × n²), in the units of cluster_size_percent before renormalising",
    )
    # --- cell geometry ---------------------------------------------------------------------
    cell_size_cm: float = _p(1.5, "float", "cell side (square) or diameter (tube), cm")
    cell_shape: str = _p("tube", "str", "'tube' (round, the beam tests' drift tubes) or 'square'")
    track_angle_max_deg: float = _p(0.0, "float", "track angle uniform in ± this (0 = perpendicular)")
    impact_parameter_max_fraction: float = _p(1.0, "float", "b uniform in [0, this × half cell]")
    fixed_impact_parameter_cm: float | None = _p(None, "optfloat", "if set, every track has this b")
    track_dip_max_deg: float = _p(0.0, "float", "dip (angle out of the plane across the wire) uniform in "
                                  "[0, this]: the path and its clusters × 1/cos, as a beam test's inclined tube")
    # --- drift -------------------------------------------------------------------------------
    xt_coefficients_ns: tuple[float, ...] = _p(
        (200.0, 200.0), "floats", "drift time t = Σ c_k r^(k+1), ns with r in cm"
    )
    diffusion_ns_sqrt_ns: float = _p(0.26, "float", "time spread σ = this × √(t/ns) ns")
    t0_ns: float = _p(100.0, "float", "arrival time of a zero-drift electron in the window, ns")
    # --- gain --------------------------------------------------------------------------------
    gain_mean: float = _p(2.0e5, "float", "mean gas gain (label; amplitudes scale with G/<G>)")
    gain_polya_theta: float = _p(0.5, "float", "Polya θ (0 = exponential)")
    single_electron_peak_mv: float = _p(10.0, "float", "pulse peak of one electron at mean gain, mV")
    # --- pulse -------------------------------------------------------------------------------
    pulse_tau_rise_ns: float = _p(1.0, "float", "single-electron pulse rise constant, ns")
    pulse_tau_fall_ns: float = _p(7.0, "float", "single-electron pulse fall constant, ns")
    electronics: bool = _p(False, "bool", "convolve with the electronics response")
    electronics_tau_fall_ns: tuple[float, ...] = _p((9.0, 25.0), "floats", "electronics fall, ns")
    electronics_fall_weights: tuple[float, ...] = _p((0.7, 0.3), "floats", "weights of the falls")
    electronics_tau_rise_ns: float = _p(3.0, "float", "electronics rise constant, ns")
    # --- noise and digitisation ----------------------------------------------------------------
    noise_rms_mv: float = _p(1.0, "float", "noise rms, mV")
    noise_correlation_ns: float = _p(1.0, "float", "AR(1) noise correlation time, ns (0 = white)")
    baseline_mv: float = _p(50.0, "float", "baseline, mV")
    baseline_jitter_mv: float = _p(0.5, "float", "per-waveform Gaussian baseline jitter, mV")
    adc_bits: int = _p(12, "int", "ADC resolution, bits")
    adc_min_mv: float = _p(0.0, "float", "ADC range low edge, mV")
    adc_max_mv: float = _p(1000.0, "float", "ADC range high edge, mV")
    # --- sampling ------------------------------------------------------------------------------
    sampling_rate_gsps: float = _p(1.2, "float", "sampling rate, GS/s")
    window_ns: float = _p(2000.0, "float", "acquisition window, ns")
    # --- dataset building (sweep.physics.datasets) ----------------------------------------------
    finder_threshold_rms: float = _p(
        1.0, "float", "candidate needs wf[i]-wf[i-1] > this × the waveform's estimated noise rms (0: > 0)"
    )
    candidate_finder: str = _p(
        "slope", "str", "how peak candidates are found: 'rise' (d[i] > threshold at a local maximum of d: the "
        "steepest point of a rising edge), 'slope' (d[i] rises by more than the threshold over the lowest of the 3 "
        "differences before it: also pulses on an earlier pulse's falling tail; about 2x the candidates) or 'bump' "
        "(IHEP's find_bump: d[i] > d[i+1], with finder_threshold_rms 0 exactly IHEP's rule; several candidates per "
        "pulse, thinned by non-maximum suppression when counted) or 'd2' (where a rise bends over: local maxima of "
        "minus the second difference, DERIV's peak condition; at the pulse's top, a sample after the arrival)"
    )
    tolerance_samples: int = _p(1, "int", "a candidate is signal if a true peak is within ± this")
    peak_time_smear_samples: float = _p(1.0, "float", "Gaussian smearing of truth peak times")
    cluster_bins: int = _p(1024, "int", "bins of the clusterization histogram over the window")

    # ------------------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _coerce(f.name, f.metadata["kind"], getattr(self, f.name)))
        self._validate()

    def _validate(self) -> None:
        def bad(key: str, why: str) -> ParameterError:
            return ParameterError(f"simulation parameter {key!r}: {why} (got {getattr(self, key)!r})")

        if self.particle not in PARTICLE_MASSES_GEV:
            raise bad("particle", f"must be one of {sorted(PARTICLE_MASSES_GEV)}")
        if not self.momentum_min_gev > 0:
            raise bad("momentum_min_gev", "must be > 0")
        if not self.momentum_max_gev >= self.momentum_min_gev:
            raise bad("momentum_max_gev", "must be >= momentum_min_gev")
        if self.fixed_betagamma is not None and not self.fixed_betagamma > 0:
            raise bad("fixed_betagamma", "must be > 0 or null")
        bg, dens = self.cluster_density_betagamma, self.cluster_density_per_cm
        if len(bg) < 4 or len(bg) != len(dens):
            raise bad("cluster_density_per_cm", "needs >= 4 values, as many as cluster_density_betagamma")
        if min(bg) <= 0 or any(b2 <= b1 for b1, b2 in pairwise(bg)):
            raise bad("cluster_density_betagamma", "must be positive and strictly increasing")
        if min(dens) < 0:
            raise bad("cluster_density_per_cm", "must be >= 0")
        if not self.cluster_density_scale >= 0:
            raise bad("cluster_density_scale", "must be >= 0")
        if not self.cluster_size_percent or min(self.cluster_size_percent) < 0 or sum(self.cluster_size_percent) <= 0:
            raise bad("cluster_size_percent", "must be non-negative with a positive sum")
        if self.cluster_size_max is not None and not 1 <= self.cluster_size_max <= 100_000:
            raise bad("cluster_size_max", "must be in [1, 100000] or null")
        if not self.cluster_size_tail_percent >= 0:
            raise bad("cluster_size_tail_percent", "must be >= 0")
        if not self.cell_size_cm > 0:
            raise bad("cell_size_cm", "must be > 0")
        if self.cell_shape not in ("square", "tube"):
            raise bad("cell_shape", "must be 'square' or 'tube'")
        if self.candidate_finder not in CANDIDATE_FINDERS:
            raise bad("candidate_finder", f"must be one of {', '.join(repr(f) for f in CANDIDATE_FINDERS)}")
        if not 0 <= self.track_angle_max_deg <= 90:
            raise bad("track_angle_max_deg", "must be in [0, 90]")
        if not 0 <= self.track_dip_max_deg <= 80:
            raise bad("track_dip_max_deg", "must be in [0, 80] (a path 5.8 times the chord at most)")
        if not 0 <= self.impact_parameter_max_fraction <= 1:
            raise bad("impact_parameter_max_fraction", "must be in [0, 1]")
        if self.fixed_impact_parameter_cm is not None and not 0 <= self.fixed_impact_parameter_cm <= self.half_cell_cm:
            raise bad("fixed_impact_parameter_cm", "must be in [0, cell_size_cm / 2] or null")
        if not self.xt_coefficients_ns or min(self.xt_coefficients_ns) < 0 or max(self.xt_coefficients_ns) <= 0:
            raise bad("xt_coefficients_ns", "must be non-negative with at least one > 0")
        for key in ("diffusion_ns_sqrt_ns", "t0_ns", "noise_rms_mv", "noise_correlation_ns",
                    "baseline_jitter_mv", "finder_threshold_rms", "peak_time_smear_samples"):
            if not getattr(self, key) >= 0:
                raise bad(key, "must be >= 0")
        for key in ("gain_mean", "single_electron_peak_mv", "pulse_tau_rise_ns", "pulse_tau_fall_ns",
                    "electronics_tau_rise_ns", "sampling_rate_gsps", "window_ns"):
            if not getattr(self, key) > 0:
                raise bad(key, "must be > 0")
        if not self.gain_polya_theta > -1:
            raise bad("gain_polya_theta", "must be > -1")
        if not self.pulse_tau_fall_ns > self.pulse_tau_rise_ns:
            raise bad("pulse_tau_fall_ns", "must be > pulse_tau_rise_ns")
        if (not self.electronics_tau_fall_ns or min(self.electronics_tau_fall_ns) <= 0
                or len(self.electronics_fall_weights) != len(self.electronics_tau_fall_ns)
                or min(self.electronics_fall_weights) < 0 or sum(self.electronics_fall_weights) <= 0):
            raise bad("electronics_fall_weights",
                      "needs one non-negative weight per electronics_tau_fall_ns (positive sum), taus > 0")
        if not 1 <= self.adc_bits <= 16:
            raise bad("adc_bits", "must be in [1, 16]")
        if not self.adc_max_mv > self.adc_min_mv:
            raise bad("adc_max_mv", "must be > adc_min_mv")
        if not self.adc_min_mv <= self.baseline_mv <= self.adc_max_mv:
            raise bad("baseline_mv", "must lie inside the ADC range")
        if self.n_samples < 32:
            raise bad("window_ns", "gives fewer than 32 samples")
        if self.tolerance_samples < 0:
            raise bad("tolerance_samples", "must be >= 0")
        if self.cluster_bins < 1:
            raise bad("cluster_bins", "must be >= 1")

    # ------------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> SimulationParams:
        """Build from a mapping (e.g. YAML); missing keys take defaults, unknown keys raise.
        ``electronics_preset: NAME`` (:data:`ELECTRONICS_PRESETS`) first sets that preset's values;
        the mapping's other keys win over it. The result holds the values, not the preset's name."""
        if d is None:
            return cls()
        if isinstance(d, SimulationParams):
            return d
        if not isinstance(d, dict):
            raise ParameterError(f"simulation parameters must be a mapping, got {type(d).__name__}")
        if PRESET_KEY in d:
            preset = d[PRESET_KEY]
            if not isinstance(preset, str) or preset not in ELECTRONICS_PRESETS:
                raise ParameterError(f"simulation parameter {PRESET_KEY!r}: must be one of "
                                     f"{', '.join(ELECTRONICS_PRESETS)} (got {preset!r})")
            d = {**ELECTRONICS_PRESETS[preset], **{k: v for k, v in d.items() if k != PRESET_KEY}}
        removed = [k for k in d if k in REMOVED_PARAMETERS]
        if removed:
            raise ParameterError("; ".join(f"simulation parameter {k!r} was removed: {REMOVED_PARAMETERS[k]}"
                                           for k in removed))
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in d if k not in names]
        if unknown:
            parts = []
            for k in unknown:
                close = difflib.get_close_matches(str(k), names, n=1)
                parts.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise ParameterError(
                "unknown simulation parameter(s): " + ", ".join(parts)
                + "; valid keys are: " + ", ".join([PRESET_KEY, *names])
            )
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-serialisable dict (tuples become lists); ``from_dict`` inverts it."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    def replace(self, **changes: Any) -> SimulationParams:
        """Copy with some fields changed (validated)."""
        return SimulationParams.from_dict({**self.to_dict(), **changes})

    # --- derived quantities ------------------------------------------------------------------
    @property
    def dt_ns(self) -> float:
        """The sampling interval, ns (1 / sampling_rate_gsps)."""
        return 1.0 / self.sampling_rate_gsps

    @property
    def n_samples(self) -> int:
        """Samples per waveform: window_ns at sampling_rate_gsps, rounded."""
        return int(round(self.window_ns * self.sampling_rate_gsps))

    @property
    def half_cell_cm(self) -> float:
        """Half the cell side: the largest impact parameter, cm."""
        return 0.5 * self.cell_size_cm

    @property
    def mass_gev(self) -> float:
        """The particle's mass, GeV/c²."""
        return PARTICLE_MASSES_GEV[self.particle]

    @property
    def adc_lsb_mv(self) -> float:
        """One ADC count, mV: the ADC range over 2^adc_bits."""
        return (self.adc_max_mv - self.adc_min_mv) / (2**self.adc_bits)


def _coerce(name: str, kind: str, v: Any) -> Any:
    def err(what: str) -> ParameterError:
        return ParameterError(f"simulation parameter {name!r}: expected {what}, got {v!r}")

    def num(x: Any) -> float:
        if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
            raise err("a number")
        x = float(x)
        if not math.isfinite(x):
            raise err("a finite number")
        return x

    if kind == "float":
        return num(v)
    if kind == "optfloat":
        return None if v is None else num(v)
    if kind == "optint" and v is None:
        return None
    if kind in ("int", "optint"):
        if isinstance(v, bool):
            raise err("an integer")
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return int(v)
        if not isinstance(v, (int, np.integer)):
            raise err("an integer")
        return int(v)
    if kind == "bool":
        if not isinstance(v, (bool, np.bool_)):
            raise err("true or false")
        return bool(v)
    if kind == "str":
        if not isinstance(v, str):
            raise err("a string")
        return v
    if kind == "floats":
        if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
            raise err("a list of numbers")
        return tuple(num(x) for x in v)
    raise AssertionError(kind)  # pragma: no cover


# --------------------------------------------------------------------------------------------
# Physics building blocks
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _density_spline(knots: tuple[float, ...], values: tuple[float, ...]):
    from scipy.interpolate import CubicSpline

    return CubicSpline(np.log(np.asarray(knots)), np.asarray(values))


def cluster_density_per_cm(params: SimulationParams, betagamma: np.ndarray | float) -> np.ndarray:
    """Clusters/cm at ``betagamma``: cubic spline in log βγ through the table, clamped outside."""
    knots, vals = params.cluster_density_betagamma, params.cluster_density_per_cm
    bg = np.clip(np.asarray(betagamma, dtype=np.float64), knots[0], knots[-1])
    lam = _density_spline(knots, vals)(np.log(bg))
    return np.maximum(lam, 0.0) * params.cluster_density_scale


def cluster_size_probabilities(params: SimulationParams) -> np.ndarray:
    """P(n) for n = 1..cluster_size_max, normalised to 1: the table, then the 1/n² tail (a
    ``cluster_size_max`` shorter than the table cuts the table there)."""
    return _cluster_size_probabilities(*_size_key(params))


def _size_key(params: SimulationParams) -> tuple[tuple[float, ...], int, float]:
    table = params.cluster_size_percent
    n_max = len(table) if params.cluster_size_max is None else params.cluster_size_max
    return table, n_max, params.cluster_size_tail_percent


@functools.lru_cache(maxsize=32)
def _cluster_size_probabilities(table: tuple[float, ...], n_max: int, tail_percent: float) -> np.ndarray:
    p = np.asarray(table[:n_max], dtype=np.float64)
    if n_max > len(table):
        n = np.arange(len(table) + 1, n_max + 1, dtype=np.float64)
        p = np.concatenate([p, tail_percent / (n * n)])
    if not p.sum() > 0:
        raise ParameterError("cluster sizes: the table cut at cluster_size_max has no probability")
    p = p / p.sum()
    p.setflags(write=False)
    return p


def sample_cluster_sizes(params: SimulationParams, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` cluster sizes (electrons per cluster, >= 1) from the Fischle distribution."""
    cdf = _cluster_size_cdf(*_size_key(params))
    return (np.searchsorted(cdf, rng.random(n), side="right") + 1).astype(np.int32)


@functools.lru_cache(maxsize=32)
def _cluster_size_cdf(table: tuple[float, ...], n_max: int, tail_percent: float) -> np.ndarray:
    cdf = np.cumsum(_cluster_size_probabilities(table, n_max, tail_percent))
    cdf[-1] = 1.0
    cdf.setflags(write=False)
    return cdf


def drift_time_ns(params: SimulationParams, r_cm: np.ndarray | float) -> np.ndarray:
    """Nonlinear x–t relation t(r) = Σ_k c_k r^(k+1) (monotonic since c_k >= 0)."""
    r = np.asarray(r_cm, dtype=np.float64)
    t = np.zeros_like(r)
    for c in reversed(params.xt_coefficients_ns):  # Horner: r (c0 + r (c1 + ...))
        t = (t + c) * r
    return t


def _chords(params: SimulationParams, b: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Entry/exit positions s along the track (s = 0 at closest approach to the wire)."""
    R = params.half_cell_cm
    if params.cell_shape == "tube":
        h = np.sqrt(np.maximum(R * R - b * b, 0.0))
        return -h, h
    # square cell [-R, R]²; track points p(s) = b n + s d, d = (cos φ, sin φ), n = (-sin φ, cos φ)
    c, s = np.cos(phi), np.sin(phi)
    lo = np.full_like(b, -np.inf)
    hi = np.full_like(b, np.inf)
    for p0, dp in ((-b * s, c), (b * c, s)):  # x(s) = p0 + s dp must lie in [-R, R]
        ok = np.abs(dp) > 1e-12
        dps = np.where(ok, dp, 1.0)
        a1, a2 = (-R - p0) / dps, (R - p0) / dps
        lo = np.where(ok, np.maximum(lo, np.minimum(a1, a2)), lo)
        hi = np.where(ok, np.minimum(hi, np.maximum(a1, a2)), hi)
    hi = np.maximum(hi, lo)
    return lo, hi


@dataclass
class Tracks:
    """Per-track truth (arrays of length n_tracks)."""

    particle: str
    momentum_gev: np.ndarray
    betagamma: np.ndarray
    impact_parameter_cm: np.ndarray
    angle_rad: np.ndarray
    s_in_cm: np.ndarray
    s_out_cm: np.ndarray
    dip_rad: np.ndarray | None = None  # the angle out of the plane across the wire (None: 0)

    @property
    def chord_cm(self) -> np.ndarray:
        """Each track's chord across the cell, in the plane across the wire, cm (s_out − s_in)."""
        return self.s_out_cm - self.s_in_cm

    @property
    def path_cm(self) -> np.ndarray:
        """Each track's path in the cell, cm: the chord ÷ cos(dip). Its clusters spread along the
        wire as well; seen across the wire they lie on the chord, at the same drift distances."""
        return self.chord_cm if self.dip_rad is None else self.chord_cm / np.cos(self.dip_rad)


def sample_tracks(params: SimulationParams, n: int, rng: np.random.Generator) -> Tracks:
    """Momentum, βγ, impact parameter, angle and chord of ``n`` tracks."""
    m = params.mass_gev
    p = rng.uniform(params.momentum_min_gev, params.momentum_max_gev, n)
    if params.fixed_betagamma is not None:
        bg = np.full(n, params.fixed_betagamma)
        p = bg * m
    else:
        bg = p / m
    phi = np.deg2rad(params.track_angle_max_deg) * rng.uniform(-1.0, 1.0, n)
    b = params.impact_parameter_max_fraction * params.half_cell_cm * rng.random(n)
    if params.fixed_impact_parameter_cm is not None:
        b = np.full(n, params.fixed_impact_parameter_cm)
    s_in, s_out = _chords(params, b, phi)
    # drawn only when asked for: every simulation without a dip keeps its random stream
    dip = np.deg2rad(params.track_dip_max_deg) * rng.random(n) if params.track_dip_max_deg > 0 else None
    return Tracks(params.particle, p, bg, b, phi, s_in, s_out, dip)


def polya_gain(params: SimulationParams, n: int, rng: np.random.Generator) -> np.ndarray:
    """G/<G> for ``n`` avalanches: Polya(θ) = Gamma(shape 1+θ, mean 1)."""
    k = 1.0 + params.gain_polya_theta
    return rng.gamma(k, 1.0 / k, n)


# --------------------------------------------------------------------------------------------
# Pulse response (sum of exponentials) and its rendering
# --------------------------------------------------------------------------------------------

_N_PHASES = 256


@dataclass(frozen=True)
class PulseResponse:
    """Response to one electron at mean gain: Σ_k c_k e^(−t/τ_k) for t >= 0, peak = 1."""

    coefficients: tuple[float, ...]
    taus_ns: tuple[float, ...]
    peak_time_ns: float
    dt_ns: float
    finder_offsets: tuple[int, ...]  # per sub-sample phase bin, see peak_sample()

    def __call__(self, t_ns: np.ndarray) -> np.ndarray:
        t = np.asarray(t_ns, dtype=np.float64)
        v = np.zeros_like(t)
        for c, tau in zip(self.coefficients, self.taus_ns, strict=True):
            v += c * np.exp(-np.maximum(t, 0.0) / tau)
        return np.where(t >= 0, v, 0.0)

    def first_sample(self, t_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First sample at or after arrival (i0 = ceil(t/dt)) and u0 = i0·dt − t in [0, dt)."""
        t = np.asarray(t_ns, dtype=np.float64)
        i0 = np.ceil(t / self.dt_ns - 1e-9).astype(np.int64)
        u0 = np.clip(i0 * self.dt_ns - t, 0.0, self.dt_ns * (1 - 1e-12))
        return i0, u0

    def peak_sample(self, t_ns: np.ndarray) -> np.ndarray:
        """Sample at which the local-rise finder fires for an isolated, noise-free pulse.

        That is the sample i maximising wf[i] − wf[i−1] (steepest rise): i0 or i0 + 1 for the
        default 1/7 ns pulse at 1.2 GS/s, i.e. ~1–2 samples after arrival (the pulse maximum
        itself comes ~2.3 ns after arrival).
        """
        i0, u0 = self.first_sample(t_ns)
        j = np.minimum((u0 / self.dt_ns * _N_PHASES).astype(np.int64), _N_PHASES - 1)
        return i0 + np.asarray(self.finder_offsets, dtype=np.int64)[j]


@functools.lru_cache(maxsize=32)
def pulse_response(params: SimulationParams) -> PulseResponse:
    """The (normalised) single-electron response of ``params``, with its finder-offset table."""
    comps = [(1.0, params.pulse_tau_fall_ns), (-1.0, params.pulse_tau_rise_ns)]
    if params.electronics:
        w = params.electronics_fall_weights
        h = list(zip(w, params.electronics_tau_fall_ns, strict=True)) + [(-sum(w), params.electronics_tau_rise_ns)]
        out: dict[float, float] = {}
        for ca, a in comps:
            for cb, b in h:
                if abs(a - b) < 1e-4 * max(a, b):  # avoid the degenerate t·e^(−t/τ) case
                    b = b * (1 + 1e-4)
                # e^(−t/a) ⊗ e^(−t/b) = ab/(b−a) (e^(−t/b) − e^(−t/a))
                k = a * b / (b - a)
                out[b] = out.get(b, 0.0) + ca * cb * k
                out[a] = out.get(a, 0.0) - ca * cb * k
        comps = [(c, tau) for tau, c in out.items() if c != 0.0]
    taus = np.array([tau for _, tau in comps])
    coef = np.array([c for c, _ in comps])
    t = np.linspace(0.0, 12.0 * taus.max(), 400_001)
    v = (coef[:, None] * np.exp(-t[None, :] / taus[:, None])).sum(0)
    ipk = int(np.argmax(v))
    coef = coef / v[ipk]
    dt = params.dt_ns
    # finder-offset table: for an arrival u0 before sample i0, where is max(wf[i] − wf[i−1])?
    m = np.arange(int(np.ceil((t[ipk] + 4 * taus.min()) / dt)) + 3)
    u0 = (np.arange(_N_PHASES) + 0.5) / _N_PHASES * dt
    tt = u0[:, None] + m[None, :] * dt
    vals = (coef[:, None, None] * np.exp(-tt[None] / taus[:, None, None])).sum(0)
    diffs = np.diff(np.concatenate([np.zeros((_N_PHASES, 1)), vals], axis=1), axis=1)
    offsets = tuple(int(x) for x in np.argmax(diffs, axis=1))
    return PulseResponse(tuple(coef.tolist()), tuple(taus.tolist()), float(t[ipk]), dt, offsets)


def render_waveforms(
    params: SimulationParams,
    n_waveforms: int,
    electron_waveform: np.ndarray,
    electron_time_ns: np.ndarray,
    electron_amplitude: np.ndarray,
    rng: np.random.Generator,
    *,
    noise: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Digitised waveforms from electron arrivals.

    ``electron_amplitude`` is in units of the mean-gain pulse (G/<G>). Returns
    ``(waveforms_mv float32 (B, n), adc int16 (B, n))``. With ``noise=False`` no noise and no
    baseline jitter are added (the baseline and the ADC are kept). Electrons arriving outside
    the window are ignored (those before it contribute nothing).
    """
    from scipy.signal import lfilter

    B, n, dt = int(n_waveforms), params.n_samples, params.dt_ns
    resp = pulse_response(params)
    wf = np.asarray(electron_waveform, dtype=np.int64)
    i0, u0 = resp.first_sample(electron_time_ns)
    ok = (i0 >= 0) & (i0 < n) & (wf >= 0) & (wf < B)
    flat = wf[ok] * n + i0[ok]
    amp = np.asarray(electron_amplitude, dtype=np.float64)[ok] * params.single_electron_peak_mv
    u0 = u0[ok]
    v = np.zeros((B, n))
    if flat.size:
        for c, tau in zip(resp.coefficients, resp.taus_ns, strict=True):
            x = np.bincount(flat, weights=amp * (c * np.exp(-u0 / tau)), minlength=B * n)
            v += lfilter([1.0], [1.0, -math.exp(-dt / tau)], x.reshape(B, n), axis=1)
    baseline = np.full((B, 1), params.baseline_mv)
    if noise and params.noise_rms_mv > 0:
        z = rng.standard_normal((B, n))
        if params.noise_correlation_ns > 0:  # stationary AR(1) with unit variance
            r = math.exp(-dt / params.noise_correlation_ns)
            z[:, 1:] *= math.sqrt(1.0 - r * r)
            z = lfilter([1.0], [1.0, -r], z, axis=1)
        v += params.noise_rms_mv * z
    if noise and params.baseline_jitter_mv > 0:
        baseline = baseline + params.baseline_jitter_mv * rng.standard_normal((B, 1))
    v += baseline
    lsb = params.adc_lsb_mv
    adc = np.clip(np.rint((v - params.adc_min_mv) / lsb), 0, 2**params.adc_bits - 1).astype(np.int16)
    mv = (adc * np.float32(lsb) + np.float32(params.adc_min_mv)).astype(np.float32)
    return mv, adc


# --------------------------------------------------------------------------------------------
# Full event simulation
# --------------------------------------------------------------------------------------------


@dataclass
class SimulationBatch:
    """Waveforms and truth of a batch of tracks (one track per waveform).

    Per-cluster and per-electron arrays are flat; ``cluster_offsets`` / ``electron_offsets``
    (length B+1) delimit each waveform's entries. Within a waveform clusters are ordered by the
    arrival of their primary, electrons by arrival time.
    """

    params: SimulationParams
    waveforms_mv: np.ndarray  # (B, n) float32
    adc: np.ndarray  # (B, n) int16
    tracks: Tracks
    n_clusters: np.ndarray  # (B,) int32
    cluster_offsets: np.ndarray  # (B+1,) int64
    cluster_time_ns: np.ndarray  # (C,) arrival of the cluster's primary electron
    cluster_drift_cm: np.ndarray  # (C,) distance of the ionisation point to the wire
    cluster_size: np.ndarray  # (C,) int32
    electron_offsets: np.ndarray  # (B+1,) int64
    electron_waveform: np.ndarray  # (E,) int32
    electron_time_ns: np.ndarray  # (E,) float64, arrival time in the window
    electron_sample: np.ndarray  # (E,) int64, floor(t / dt)
    electron_peak_sample: np.ndarray  # (E,) int64, where the finder fires for this pulse alone
    electron_tag: np.ndarray  # (E,) int8, 1 primary / 2 secondary
    electron_cluster: np.ndarray  # (E,) int32, cluster index within its waveform
    electron_gain: np.ndarray  # (E,) G/<G>

    @property
    def n_waveforms(self) -> int:
        """B, the number of waveforms."""
        return int(self.waveforms_mv.shape[0])

    @property
    def momentum_gev(self) -> np.ndarray:
        """(B,) each waveform's track momentum, GeV/c."""
        return self.tracks.momentum_gev

    @property
    def betagamma(self) -> np.ndarray:
        """(B,) each waveform's track βγ."""
        return self.tracks.betagamma

    def electrons(self, i: int) -> dict[str, np.ndarray]:
        """Truth electrons of waveform ``i``."""
        sl = slice(self.electron_offsets[i], self.electron_offsets[i + 1])
        return {
            "time_ns": self.electron_time_ns[sl],
            "sample": self.electron_sample[sl],
            "peak_sample": self.electron_peak_sample[sl],
            "tag": self.electron_tag[sl],
            "cluster": self.electron_cluster[sl],
            "gain": self.electron_gain[sl],
        }


def offsets(counts) -> np.ndarray:
    """(n+1,) int64 start offsets of n consecutive groups of the given sizes: group i is
    ``[offsets[i], offsets[i+1])`` of the flat arrays."""
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(np.asarray(counts, dtype=np.int64), out=out[1:])
    return out


def simulate_batch(
    params: SimulationParams | dict | None,
    n_waveforms: int,
    rng: np.random.Generator | int | None = None,
    *,
    noise: bool = True,
    render: bool = True,
) -> SimulationBatch:
    """Simulate ``n_waveforms`` tracks, their clusters, electrons and digitised waveforms.

    ``rng`` may be a Generator or a seed. ``noise=False`` renders noise-free waveforms;
    ``render=False`` skips the waveforms entirely (truth only; arrays of shape (B, 0)).
    """
    p = SimulationParams.from_dict(params)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    B = int(n_waveforms)
    if B < 0:
        raise ValueError(f"n_waveforms must be >= 0, got {n_waveforms}")
    resp = pulse_response(p)

    tracks = sample_tracks(p, B, rng)
    lam = cluster_density_per_cm(p, tracks.betagamma) * tracks.path_cm
    ncl = rng.poisson(lam).astype(np.int64)
    C = int(ncl.sum())
    cl_wf = np.repeat(np.arange(B, dtype=np.int64), ncl)
    s = tracks.s_in_cm[cl_wf] + rng.random(C) * tracks.chord_cm[cl_wf]
    r = np.hypot(tracks.impact_parameter_cm[cl_wf], s)
    t_drift = drift_time_ns(p, r)
    size = sample_cluster_sizes(p, C, rng)

    E = int(size.sum())
    el_cl = np.repeat(np.arange(C, dtype=np.int64), size)
    td = t_drift[el_cl]
    t_el = p.t0_ns + td + p.diffusion_ns_sqrt_ns * np.sqrt(td) * rng.standard_normal(E)
    gain = polya_gain(p, E, rng)

    # primary = earliest electron of each cluster
    order = np.lexsort((t_el, el_cl))
    first = order[offsets(size)[:-1]]
    tag = np.full(E, 2, dtype=np.int8)
    tag[first] = 1
    cl_time = t_el[first]

    # order clusters within a waveform by their arrival, electrons by arrival time
    corder = np.lexsort((cl_time, cl_wf))
    cl_off = offsets(ncl)
    cl_local = np.empty(C, dtype=np.int64)
    cl_local[corder] = np.arange(C) - cl_off[cl_wf[corder]]
    el_wf = cl_wf[el_cl]
    eorder = np.lexsort((t_el, el_wf))

    if render:
        mv, adc = render_waveforms(p, B, el_wf, t_el, gain, rng, noise=noise)
    else:
        mv, adc = np.zeros((B, 0), dtype=np.float32), np.zeros((B, 0), dtype=np.int16)

    t_sorted = t_el[eorder]
    return SimulationBatch(
        params=p,
        waveforms_mv=mv,
        adc=adc,
        tracks=tracks,
        n_clusters=ncl.astype(np.int32),
        cluster_offsets=cl_off,
        cluster_time_ns=cl_time[corder],
        cluster_drift_cm=r[corder],
        cluster_size=size[corder],
        electron_offsets=offsets(np.bincount(el_wf, minlength=B)),
        electron_waveform=el_wf[eorder].astype(np.int32),
        electron_time_ns=t_sorted,
        electron_sample=np.floor(t_sorted / p.dt_ns).astype(np.int64),
        electron_peak_sample=resp.peak_sample(t_sorted),
        electron_tag=tag[eorder],
        electron_cluster=cl_local[el_cl[eorder]].astype(np.int32),
        electron_gain=gain[eorder],
    )
