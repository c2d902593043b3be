"""Readers of waveforms + truth from npz, HDF5 and ROOT files, all mapped to :class:`WaveformSet`.

A :class:`WaveformSet` holds what the simulator gives (:class:`sweep.physics.simulate.SimulationBatch`):
waveforms (mV), the truth electron peaks (time, sample, tag 1 primary / 2 secondary) in flat
arrays delimited per waveform by ``peak_offsets``, the true number of clusters and the momentum
per waveform, and optionally the collected charge (Σ G/<G> of the electrons).

Formats
-------

**npz (waveforms)**, written by :func:`write_npz`: keys ``waveforms`` (B, n) float32 mV,
``dt_ns`` 0-d, ``peak_offsets`` (B+1,) int64, ``peak_time_ns`` (P,) float64, ``peak_sample``
(P,) int64, ``peak_tag`` (P,) int8, ``n_clusters`` (B,) int32, ``momentum`` (B,) float32
(GeV/c), optional ``charge`` (B,) float32, ``meta`` 0-d JSON string with ``kind`` =
``"sweep-waveforms"``. :func:`read_npz` also accepts the simulator's *dataset* files
(``sweep data simulate``, kind ``sweep-cluster-counting``): these hold windows, not
waveforms, so the set has 0-sample waveforms and no peaks; ``n_clusters``, ``momentum`` and the
window arrays (in ``extra``) are filled.

**HDF5**, written by :func:`write_hdf5` (h5py), same names as datasets at the root of the file::

    /waveforms      float32 (B, n)   mV
    /n_clusters     int32   (B,)
    /momentum       float32 (B,)     GeV/c
    /charge         float32 (B,)     optional
    /peaks/offsets  int64   (B+1,)   peaks of waveform i are [offsets[i], offsets[i+1])
    /peaks/time_ns  float64 (P,)
    /peaks/sample   int64   (P,)     optional (default: rint(time_ns / dt_ns))
    /peaks/tag      int8    (P,)     1 primary, 2 secondary
    attributes of /: format = "sweep-waveforms", version = 1, dt_ns

**ROOT** (uproot), the layout of the public CEPC Garfield++ sample (DOI 10.57760/sciencedb.16322):
tree ``sim``, one entry per waveform, branches ``wf_i`` (waveform samples, variable or fixed
length), ``time`` (peak times: ns unless said otherwise; the public sample's are *sample indices*,
and whole numbers below the waveform length are refused until their unit is given), ``tag`` (0
noise, 1 primary, 2 secondary, one per
``time``), ``ncls`` (number of clusters), ``mom`` (momentum, GeV/c). Entries with tag 0 are not
truth peaks and are dropped. :func:`write_root` writes this layout (used by the tests). Another
file's names (``tree``, ``branches``: :data:`ROOT_BRANCHES`), time unit (:data:`TIME_UNITS`) and
amplitude unit (:data:`AMPLITUDE_UNITS`, or a factor) are reader options (`sweep evaluate --tree
--branch --time-unit --amplitude-unit --amplitude-scale`); :func:`read_waveforms` refuses an
option its file type does not take rather than ignoring it.

The sampling interval comes from the file when it says it (ROOT: a ``dt_ns`` branch in ns, or a
``sampling_rate`` branch; HDF5: a ``dt_ns`` or ``sampling_rate`` attribute), else from ``dt_ns``;
a file that says nothing and no ``dt_ns`` is an error, never an assumed 1.2 GS/s (an independent
toy at 1.5 GS/s put every truth time on the wrong sample that way). A sampling rate is read as
GS/s below 100, MS/s below 10^6, else Hz (digitizers run at 0.1-100 GS/s). A given ``dt_ns``
that disagrees with the file's is an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError
from ..records.base import RecordError
from ..records.untrusted import check_npz
from .simulate import offsets

#: the branches of the CEPC layout, by what they hold (read_root's ``branches`` renames them)
ROOT_BRANCHES = {"waveform": "wf_i", "time": "time", "tag": "tag", "clusters": "ncls", "momentum": "mom",
                 "dt_ns": "dt_ns", "sampling_rate": "sampling_rate"}
#: a file's time unit -> ns per unit ("sample": times are sample indices)
TIME_UNITS = {"ps": 1e-3, "ns": 1.0, "us": 1e3, "s": 1e9, "sample": None}
#: a file's amplitude unit -> mV per unit (the simulator's unit; the models do not depend on it)
AMPLITUDE_UNITS = {"uV": 1e-3, "mV": 1.0, "V": 1e3}

FORMAT_KIND = "sweep-waveforms"
#: The most samples a ROOT file's waveforms make once padded to the longest (float32: 4 GiB).
#: The CEPC sample's waveforms are a few thousand samples each; a file of waveforms of wildly
#: different lengths, or one absurd entry, would otherwise allocate entries x longest.
MAX_ROOT_SAMPLES = 1 << 30
FORMAT_VERSION = 1
DEFAULT_DT_NS = 1.0 / 1.2


class ReaderError(InputError):
    """A waveform file is missing, unreadable or not in the expected layout."""


def rate_to_dt_ns(rate: float) -> float:
    """The sampling interval (ns) of a sampling rate in GS/s (< 100), MS/s (< 10^6) or Hz.

    Raises:
        ReaderError: a rate that is not a positive finite number.
    """
    rate = float(rate)
    if not np.isfinite(rate) or rate <= 0:
        raise ReaderError(f"sampling rate {rate} is not a positive number")
    ghz = rate if rate < 100 else rate / 1e3 if rate < 1e6 else rate / 1e9
    return 1.0 / ghz


def resolve_dt_ns(path: Path, from_file: float | None, given: float | None, where: str) -> float:
    """The sampling interval: the file's, the caller's, and they must agree.

    Raises:
        ReaderError: neither says it, or they disagree (by more than 1e-6 relative).
    """
    if given is not None and (not np.isfinite(given) or given <= 0):
        raise ReaderError(f"--dt-ns must be a positive number of ns, got {given}")
    if from_file is not None and given is not None and abs(from_file - given) > 1e-6 * from_file:
        raise ReaderError(f"{path}: the file samples every {from_file:.6g} ns ({1 / from_file:.6g} GS/s, {where}) "
                          f"but --dt-ns {given:.6g} was given: drop --dt-ns, or fix the file")
    if from_file is not None:
        return float(from_file)
    if given is not None:
        return float(given)
    raise ReaderError(f"{path}: the file does not say its sampling interval (no {where}): give it with --dt-ns "
                      f"(e.g. --dt-ns {1 / 1.2:.6g} for 1.2 GS/s); sweep does not assume one")


@dataclass
class WaveformSet:
    """Waveforms and per-waveform truth, in the simulator's conventions."""

    waveforms_mv: np.ndarray  # (B, n) float32
    dt_ns: float
    peak_offsets: np.ndarray  # (B+1,) int64
    peak_time_ns: np.ndarray  # (P,) float64
    peak_sample: np.ndarray  # (P,) int64
    peak_tag: np.ndarray  # (P,) int8, 1 primary / 2 secondary
    n_clusters: np.ndarray  # (B,) int32
    momentum_gev: np.ndarray  # (B,) float32
    charge: np.ndarray | None = None  # (B,) float32, Σ G/<G>
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.waveforms_mv = np.asarray(self.waveforms_mv, dtype=np.float32)
        if self.waveforms_mv.ndim != 2:
            raise ReaderError(f"waveforms must be 2-D (B, n), got shape {self.waveforms_mv.shape}")
        B = self.waveforms_mv.shape[0]
        self.dt_ns = float(self.dt_ns)
        self.peak_offsets = np.asarray(self.peak_offsets, dtype=np.int64)
        self.peak_time_ns = np.asarray(self.peak_time_ns, dtype=np.float64)
        self.peak_sample = np.asarray(self.peak_sample, dtype=np.int64)
        self.peak_tag = np.asarray(self.peak_tag, dtype=np.int8)
        self.n_clusters = np.asarray(self.n_clusters, dtype=np.int32)
        self.momentum_gev = np.asarray(self.momentum_gev, dtype=np.float32)
        if self.charge is not None:
            self.charge = np.asarray(self.charge, dtype=np.float32)
        P = self.peak_time_ns.size
        if self.peak_offsets.shape != (B + 1,) or self.peak_offsets[0] != 0 or self.peak_offsets[-1] != P \
                or np.any(np.diff(self.peak_offsets) < 0):
            raise ReaderError(f"peak_offsets must be non-decreasing, length {B + 1}, from 0 to {P}")
        if self.peak_sample.size != P or self.peak_tag.size != P:
            raise ReaderError("peak_time_ns, peak_sample and peak_tag must have the same length")
        for name in ("n_clusters", "momentum_gev") + (("charge",) if self.charge is not None else ()):
            if getattr(self, name).shape != (B,):
                raise ReaderError(f"{name} must have shape ({B},), got {getattr(self, name).shape}")

    @property
    def n_waveforms(self) -> int:
        """B, the number of waveforms."""
        return int(self.waveforms_mv.shape[0])

    @property
    def n_samples(self) -> int:
        """n, the samples per waveform."""
        return int(self.waveforms_mv.shape[1])

    @property
    def peak_wf(self) -> np.ndarray:
        """(P,) waveform index of each truth peak."""
        return np.repeat(np.arange(self.n_waveforms, dtype=np.int64), np.diff(self.peak_offsets))

    def peaks(self, i: int) -> dict[str, np.ndarray]:
        """The truth peaks of waveform `i`: their time_ns, sample and tag."""
        sl = slice(self.peak_offsets[i], self.peak_offsets[i + 1])
        return {"time_ns": self.peak_time_ns[sl], "sample": self.peak_sample[sl], "tag": self.peak_tag[sl]}

    @classmethod
    def from_batch(cls, batch) -> WaveformSet:
        """From a :class:`sweep.physics.simulate.SimulationBatch` (truth peaks = its electrons)."""
        B = batch.n_waveforms
        charge = np.bincount(batch.electron_waveform, weights=batch.electron_gain, minlength=B)
        return cls(
            waveforms_mv=batch.waveforms_mv,
            dt_ns=batch.params.dt_ns,
            peak_offsets=batch.electron_offsets,
            peak_time_ns=batch.electron_time_ns,
            peak_sample=batch.electron_peak_sample,
            peak_tag=batch.electron_tag,
            n_clusters=batch.n_clusters,
            momentum_gev=batch.momentum_gev,
            charge=charge.astype(np.float32),
        )


# --------------------------------------------------------------------------------------------
# npz
# --------------------------------------------------------------------------------------------


def write_npz(path: str | Path, ws: WaveformSet) -> Path:
    """Write the waveforms and their truth as this module's npz layout (compressed; its folder made
    when missing), readable by :func:`read_npz`. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        "waveforms": ws.waveforms_mv, "dt_ns": np.float64(ws.dt_ns), "peak_offsets": ws.peak_offsets,
        "peak_time_ns": ws.peak_time_ns, "peak_sample": ws.peak_sample, "peak_tag": ws.peak_tag,
        "n_clusters": ws.n_clusters, "momentum": ws.momentum_gev,
        "meta": np.array(json.dumps({"kind": FORMAT_KIND, "format_version": FORMAT_VERSION})),
    }
    if ws.charge is not None:
        arrays["charge"] = ws.charge
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


def read_npz(path: str | Path) -> WaveformSet:
    """A waveform npz (:func:`write_npz`) or a simulator dataset npz (see the module doc)."""
    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"{path}: no such file")
    try:  # no zip bomb reaches numpy
        check_npz(path)
    except RecordError as exc:
        raise ReaderError(str(exc)) from None
    try:
        f = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - numpy's many failures all mean an unreadable file
        raise ReaderError(f"{path}: not a readable npz ({type(exc).__name__}: {exc})") from None
    with f:
        meta: dict[str, Any] = {}
        if "meta" in f.files:
            try:
                meta = json.loads(str(f["meta"][()]))
            except Exception:  # noqa: BLE001 - an unreadable 'meta' is read as none
                meta = {}
        kind = meta.get("kind")
        if kind == FORMAT_KIND:
            need = ["waveforms", "dt_ns", "peak_offsets", "peak_time_ns", "peak_sample", "peak_tag",
                    "n_clusters", "momentum"]
            missing = [k for k in need if k not in f.files]
            if missing:
                raise ReaderError(f"{path}: missing key(s) {missing}")
            return WaveformSet(f["waveforms"], float(f["dt_ns"]), f["peak_offsets"], f["peak_time_ns"],
                               f["peak_sample"], f["peak_tag"], f["n_clusters"], f["momentum"],
                               charge=f["charge"] if "charge" in f.files else None)
    if kind == "sweep-cluster-counting":
        from . import datasets

        try:
            a = datasets._load(path, tuple(datasets.ARRAY_KEYS))
        except datasets.DatasetError as exc:
            raise ReaderError(str(exc)) from None
        B = a["n_clusters"].size
        dt = float(meta.get("dt_ns", DEFAULT_DT_NS))
        extra = {k: a[k] for k in ("windows", "labels", "tags", "window_waveform", "balanced_index",
                                   "peak_inputs", "betagamma")}
        # format 2 stores these compactly (float16 / uint8); callers get float32 whatever the version
        extra["windows"] = extra["windows"].astype(np.float32)
        extra["peak_inputs"] = extra["peak_inputs"].astype(np.float32)
        return WaveformSet(np.zeros((B, 0), np.float32), dt, np.zeros(B + 1, np.int64), np.zeros(0),
                           np.zeros(0, np.int64), np.zeros(0, np.int8), a["n_clusters"], a["momentum"],
                           extra=extra)
    raise ReaderError(f"{path}: meta kind {kind!r} is neither {FORMAT_KIND!r} nor 'sweep-cluster-counting'")


# --------------------------------------------------------------------------------------------
# HDF5
# --------------------------------------------------------------------------------------------


def write_hdf5(path: str | Path, ws: WaveformSet) -> Path:
    """Write the waveforms and their truth in the HDF5 layout of the module docstring (its folder
    made when missing), readable by :func:`read_hdf5`. Returns the path."""
    import h5py

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as h:
        h.attrs["format"] = FORMAT_KIND
        h.attrs["version"] = FORMAT_VERSION
        h.attrs["dt_ns"] = ws.dt_ns
        h.create_dataset("waveforms", data=ws.waveforms_mv, compression="gzip", compression_opts=1)
        h.create_dataset("n_clusters", data=ws.n_clusters)
        h.create_dataset("momentum", data=ws.momentum_gev)
        if ws.charge is not None:
            h.create_dataset("charge", data=ws.charge)
        g = h.create_group("peaks")
        g.create_dataset("offsets", data=ws.peak_offsets)
        g.create_dataset("time_ns", data=ws.peak_time_ns)
        g.create_dataset("sample", data=ws.peak_sample)
        g.create_dataset("tag", data=ws.peak_tag)
    return path


def read_hdf5(path: str | Path, dt_ns: float | None = None, *, waveform_scale: float = 1.0,
              amplitude_unit: str | None = None) -> WaveformSet:
    """Read the HDF5 layout (module docstring); the sampling interval from the file or ``dt_ns``;
    waveforms in ``amplitude_unit`` or multiplied by ``waveform_scale`` to mV (:func:`amplitude_scale`).

    Raises:
        ReaderError: missing, unreadable, not the layout, or no (or a contradicting) sampling interval.
    """
    import h5py

    path = Path(path)
    scale = amplitude_scale(amplitude_unit, waveform_scale)
    if not path.is_file():
        raise ReaderError(f"{path}: no such file")
    try:
        h = h5py.File(path, "r")
    except Exception as exc:  # noqa: BLE001 - h5py's many failures all mean an unreadable file
        raise ReaderError(f"{path}: not a readable HDF5 file ({exc})") from None
    with h:
        missing = [k for k in ("waveforms", "n_clusters", "momentum", "peaks/offsets", "peaks/time_ns",
                               "peaks/tag") if k not in h]
        if missing:
            raise ReaderError(f"{path}: missing dataset(s) {missing}")
        known = (float(h.attrs["dt_ns"]) if "dt_ns" in h.attrs
                 else rate_to_dt_ns(h.attrs["sampling_rate"]) if "sampling_rate" in h.attrs else None)
        dt = resolve_dt_ns(path, known, dt_ns, "dt_ns or sampling_rate attribute")
        t = h["peaks/time_ns"][()]
        sample = h["peaks/sample"][()] if "peaks/sample" in h else np.rint(t / dt).astype(np.int64)
        return WaveformSet(h["waveforms"][()] * np.float32(scale), dt, h["peaks/offsets"][()], t, sample,
                           h["peaks/tag"][()],
                           h["n_clusters"][()], h["momentum"][()],
                           charge=h["charge"][()] if "charge" in h else None)


# --------------------------------------------------------------------------------------------
# ROOT (CEPC Garfield++ layout)
# --------------------------------------------------------------------------------------------


def write_root(path: str | Path, ws: WaveformSet, noise_times_ns: list[np.ndarray] | None = None,
               sampling_rate: float | None = None, *, tree: str = "sim",
               branches: dict[str, str] | None = None) -> Path:
    """Write ``ws`` as tree ``sim`` (branches wf_i, time, tag, ncls, mom); optional extra tag-0
    (noise) entries per waveform are appended to ``time``/``tag``; with ``sampling_rate`` (in the
    unit it is given) also a ``sampling_rate`` branch, as some digitizer files have. ``tree`` and
    ``branches`` (what -> name, see :data:`ROOT_BRANCHES`) write another file's names."""
    import awkward as ak
    import uproot

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    times, tags = [], []
    for i in range(ws.n_waveforms):
        pk = ws.peaks(i)
        t, g = pk["time_ns"], pk["tag"].astype(np.int32)
        if noise_times_ns is not None:
            extra = np.asarray(noise_times_ns[i], dtype=np.float64)
            t = np.concatenate([t, extra])
            g = np.concatenate([g, np.zeros(extra.size, np.int32)])
        times.append(t)
        tags.append(g)
    data = {
        "waveform": ak.Array([w.astype(np.float64) for w in ws.waveforms_mv]),
        "time": ak.Array([np.asarray(t, np.float64) for t in times]),
        "tag": ak.Array([np.asarray(g, np.int32) for g in tags]),
        "clusters": ws.n_clusters.astype(np.int32),
        "momentum": ws.momentum_gev.astype(np.float64),
    }
    if sampling_rate is not None:
        data["sampling_rate"] = np.full(ws.n_waveforms, float(sampling_rate))
    names = {**ROOT_BRANCHES, **(branches or {})}
    data = {names[k]: v for k, v in data.items()}
    with uproot.recreate(path) as f:  # a TTree (not an RNTuple), like the CEPC files
        t = f.mktree(tree, {k: v.type.content if isinstance(v, ak.Array) else v.dtype for k, v in data.items()})
        t.extend(data)
    return path


def _branch_names(branches: dict[str, str] | None) -> dict[str, str]:
    """The CEPC names with the caller's renames (what -> branch name).

    Raises:
        ReaderError: an unknown "what", or a name that is not a plain branch name.
    """
    names = dict(ROOT_BRANCHES)
    for what, name in (branches or {}).items():
        if what not in ROOT_BRANCHES:
            raise ReaderError(f"unknown branch role {what!r}: expected one of {', '.join(ROOT_BRANCHES)}")
        if not isinstance(name, str) or not name or len(name) > 200 or not name.isprintable() \
                or any(c in name for c in "/;\\ "):
            raise ReaderError(f"branch name for {what} must be a plain branch name, got {name!r}")
        names[what] = name
    return names


def open_root(path: Path):
    """The ROOT file ``path`` opened with uproot (a context manager, as uproot's).

    Raises:
        ReaderError: no such file, or not one uproot can read.
    """
    import uproot

    try:
        return uproot.open(path)
    except FileNotFoundError:
        raise ReaderError(f"{path}: no such file") from None
    except Exception as exc:  # noqa: BLE001 - uproot's many failures all mean a file that is not ROOT
        raise ReaderError(f"{path}: not a readable ROOT file ({type(exc).__name__}: {exc})") from None


def read_root(
    path: str | Path,
    dt_ns: float | None = None,
    *,
    tree: str = "sim",
    time_unit: str | None = None,
    entry_stop: int | None = None,
    waveform_scale: float = 1.0,
    amplitude_unit: str | None = None,
    branches: dict[str, str] | None = None,
) -> WaveformSet:
    """Read the CEPC layout, or another file's names for it (``tree``; ``branches``: what ->
    branch name, the keys of :data:`ROOT_BRANCHES`). Truth times are in ``time_unit`` (a key of
    :data:`TIME_UNITS`: ps, ns, us, s, or "sample" for sample indices); None reads them as ns
    unless every one is a whole number below the waveform length, which is what sample indices
    look like (the CEPC Garfield++ files' ``time``): that is refused until the unit is given,
    since read as ns every truth time would be off by the sampling interval. Waveforms are in
    ``amplitude_unit`` (uV, mV, V) or multiplied by ``waveform_scale`` to mV (e.g. the ADC LSB for
    counts), and padded with their last value to the longest one. The sampling interval from a
    dt_ns or sampling_rate branch, else ``dt_ns`` (module docstring).

    Raises:
        ReaderError: missing, unreadable, not the layout, an unknown unit or branch role, no
            (or a contradicting) sampling interval, or truth times that look like sample
            indices with no unit given.
    """
    import awkward as ak

    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"{path}: no such file")
    if time_unit is not None and time_unit not in TIME_UNITS:
        raise ReaderError(f"time unit must be one of {', '.join(TIME_UNITS)}, got {time_unit!r}")
    scale = amplitude_scale(amplitude_unit, waveform_scale)
    names = _branch_names(branches)
    with open_root(path) as f:
        if tree not in f:
            raise ReaderError(f"{path}: no tree {tree!r} (keys: {list(f.keys())}); name it with --tree")
        t = f[tree]
        need = {what: names[what] for what in ("waveform", "time", "tag", "clusters", "momentum")}
        missing = [f"{name} ({what})" for what, name in need.items() if name not in t.keys()]
        if missing:
            raise ReaderError(f"{path}: tree {tree!r} lacks branch(es) {', '.join(missing)} (it has "
                              f"{', '.join(t.keys()[:12])}); name them with --branch WHAT=NAME")
        arr = t.arrays(list(need.values()), entry_stop=entry_stop, library="ak")
        known, where = None, f"{names['dt_ns']} or {names['sampling_rate']} branch"
        for branch, convert in ((names["dt_ns"], float), (names["sampling_rate"], rate_to_dt_ns)):
            if branch in t.keys():
                values = np.unique(np.asarray(t[branch].array(entry_stop=entry_stop, library="np"), dtype=float))
                if values.size > 1:
                    raise ReaderError(f"{path}: branch {branch} varies between entries ({values[:4]}): one sampling "
                                      "interval per file is supported")
                if values.size:
                    known, where = convert(values[0]), f"its {branch} branch"
                break
    dt_ns = resolve_dt_ns(path, known, dt_ns, where)
    wf = arr[need["waveform"]]
    if wf.ndim < 2:
        raise ReaderError(f"{path}: {need['waveform']} is not an array branch")
    lengths = ak.to_numpy(ak.num(wf, axis=1)).astype(np.int64)
    B = lengths.size
    n = int(lengths.max()) if B else 0
    if B * n > MAX_ROOT_SAMPLES:  # one entry of a billion samples would make every row that long
        raise ReaderError(f"{path}: {B} waveforms padded to the longest ({n} samples) are {B * n} samples, more "
                          f"than the {MAX_ROOT_SAMPLES} read at once; read fewer entries (entry_stop)")
    if B and np.all(lengths == n):
        W = ak.to_numpy(wf).astype(np.float32).reshape(B, n)
    else:  # ragged: each row padded with its last sample (numpy throughout, never Python lists)
        flat = ak.to_numpy(ak.flatten(wf)).astype(np.float32)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        rows = np.repeat(np.arange(B), lengths)
        W = np.zeros((B, n), np.float32)
        W[rows, np.arange(flat.size) - np.repeat(starts, lengths)] = flat
        has = lengths > 0
        last = np.zeros(B, np.float32)
        last[has] = flat[starts[has] + lengths[has] - 1]
        pad = np.arange(n)[None, :] >= lengths[:, None]
        W[pad] = np.broadcast_to(last[:, None], (B, n))[pad]
    W *= np.float32(scale)
    time = arr[need["time"]]
    tag = arr[need["tag"]]
    keep = tag > 0
    time, tag = time[keep], tag[keep]
    counts = ak.to_numpy(ak.num(time, axis=1))
    tflat = ak.to_numpy(ak.flatten(time)).astype(np.float64)
    gflat = ak.to_numpy(ak.flatten(tag)).astype(np.int8)
    if time_unit is None:
        if tflat.size and np.all(tflat == np.rint(tflat)) and 0 <= tflat.min() and tflat.max() < n:
            raise ReaderError(
                f"{path}: the truth times of branch {need['time']!r} are whole numbers from {tflat.min():.0f} to "
                f"{tflat.max():.0f}, inside the waveforms' {n} samples: sample indices (as in the CEPC Garfield++ "
                "files) or ns? Say which: --time-unit sample or --time-unit ns (read_root(time_unit=...))")
        time_unit = "ns"
    if TIME_UNITS[time_unit] is None:
        sample = np.rint(tflat).astype(np.int64)
        tflat = tflat * float(dt_ns)
    else:
        tflat = tflat * TIME_UNITS[time_unit]
        sample = np.rint(tflat / float(dt_ns)).astype(np.int64)
    return WaveformSet(W, dt_ns, offsets(counts), tflat, sample, gflat,
                       ak.to_numpy(arr[need["clusters"]]).astype(np.int32),
                       ak.to_numpy(arr[need["momentum"]]).astype(np.float32))


def amplitude_scale(unit: str | None, scale: float = 1.0) -> float:
    """mV per unit of a file's amplitudes: from ``unit`` (a key of :data:`AMPLITUDE_UNITS`) or the
    factor ``scale`` (not both).

    Raises:
        ReaderError: an unknown unit, both given, or a factor that is not a positive number.
    """
    if unit is not None:
        if unit not in AMPLITUDE_UNITS:
            raise ReaderError(f"amplitude unit must be one of {', '.join(AMPLITUDE_UNITS)}, got {unit!r}")
        if scale != 1.0:
            raise ReaderError("give the amplitude unit or the amplitude scale, not both")
        return AMPLITUDE_UNITS[unit]
    scale = float(scale)
    if not np.isfinite(scale) or scale <= 0:
        raise ReaderError(f"amplitude scale must be a positive number (mV per unit of the file), got {scale}")
    return scale


#: the options each reader takes (read_waveforms refuses the others, rather than ignoring them)
READER_OPTIONS = {
    ".npz": (),
    ".h5": ("dt_ns", "waveform_scale", "amplitude_unit", "polarity"),
    ".root": ("dt_ns", "waveform_scale", "amplitude_unit", "tree", "time_unit", "branches", "entry_stop",
              "polarity"),
}
#: which way a file's pulses go; sweep's peak finding and noise estimate want them positive
POLARITIES = ("positive", "negative")
#: a file whose waveforms reach this many times further below their median than above it (the
#: median over its waveforms) has negative pulses: a positive pulse of a few σ already gives < 1
NEGATIVE_RATIO = 3.0


def looks_negative(waveforms: np.ndarray) -> tuple[bool, float]:
    """(whether the pulses look negative-going, the median over waveforms of (median − min) ÷
    (max − median)): positive pulses reach far above the median and the noise a little below it."""
    w = np.asarray(waveforms, dtype=np.float64)
    if not w.size:
        return False, 0.0
    med = np.median(w, axis=1)
    below, above = med - w.min(axis=1), w.max(axis=1) - med
    ratio = float(np.median(below / np.maximum(above, 1e-12 * np.maximum(below, 1.0))))
    return ratio > NEGATIVE_RATIO, ratio


def orient(ws: WaveformSet, polarity: str | None, path: str | Path) -> WaveformSet:
    """The waveforms with positive pulses: ``polarity`` "negative" flips them, "positive" keeps
    them; None keeps them unless they look negative (:func:`looks_negative`), which is an error
    that asks for the polarity (IHEP's beam-test files are negative: read as they are, the noise
    estimate would take the pulses for noise and the finder would look for rises in the tails).

    Raises:
        ReaderError: an unknown polarity, or negative-looking pulses with none given.
    """
    if polarity is not None and polarity not in POLARITIES:
        raise ReaderError(f"polarity must be one of {', '.join(POLARITIES)}, got {polarity!r}")
    if polarity is None:
        negative, ratio = looks_negative(ws.waveforms_mv)
        if negative:
            raise ReaderError(f"{path}: the pulses look negative-going (the waveforms reach {ratio:.1f}x further "
                              "below their median than above it, the median over waveforms): say --polarity "
                              "negative to read them flipped, or --polarity positive to read them as they are")
    elif polarity == "negative":
        ws.waveforms_mv = np.negative(ws.waveforms_mv)
    return ws


def read_waveforms(path: str | Path, **kw: Any) -> WaveformSet:
    """Dispatch on the suffix: .npz, .h5/.hdf5, .root; ``kw`` go to the reader, but ``polarity``
    (.h5, .root), which :func:`orient` applies to what it read.

    Raises:
        ReaderError: an unknown suffix, an option that file type does not take (an npz says its
            own units and sampling), or what the reader raises.
    """
    suffix = Path(path).suffix.lower()
    kind = ".h5" if suffix in (".h5", ".hdf5", ".hdf") else suffix
    if kind not in READER_OPTIONS:
        raise ReaderError(f"{path}: unknown waveform file type {suffix!r} (.npz, .h5, .hdf5, .root)")
    extra = sorted(k for k, v in kw.items() if v is not None and k not in READER_OPTIONS[kind])
    if extra:
        raise ReaderError(f"{path}: {', '.join(extra)} do(es) not apply to a {kind} file"
                          + (" (it says its own units and sampling)" if kind == ".npz" else ""))
    kw = {k: v for k, v in kw.items() if v is not None}
    if kind == ".npz":  # sweep's own: positive pulses
        return read_npz(path)
    polarity = kw.pop("polarity", None)
    return orient(read_hdf5(path, **kw) if kind == ".h5" else read_root(path, **kw), polarity, path)
