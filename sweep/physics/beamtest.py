"""Beam-test files into the simulator's conventions, and what they hold (`sweep data inspect`,
`sweep data import`).

A reader (:mod:`sweep.physics.layouts`) hands over the samples as stored; :func:`prepare` then
decides, per channel, and says how it decided:

- the **role** of each channel, from a channel map (``channels.yaml`` next to the data, or
  ``--channel-map``): a tube and its size in cm, a trigger, or a channel to ignore;
- the **encoding** of the samples (what the layout fixes, else detected from the codes: every code
  ≤ 4095 is a CAEN V1742's 12 bits, larger ones are 16-bit offset codes; or given);
- the **sampling interval** (from the file where it says it, else given; a given one that
  contradicts the file's is an error);
- the **pedestal** and **noise** (median and rms of each event's first :data:`PEDESTAL_SAMPLES`
  samples, before the pulses of a triggered drift signal, as the groups' analyses do);
- the **polarity** (given, or ``auto``: the pulses go the way the waveform reaches further from its
  pedestal, when that is :data:`POLARITY_RATIO` times further and the samples are skewed that way by
  :data:`POLARITY_SKEW` or more; otherwise the polarity is unclear and must be given);
- **flags**: saturated events (a sample at the code range's end), empty channels (no event, or
  flat).

The waveforms come out in mV, pedestal subtracted, pulses positive. :func:`import_files` writes the
tube channels to the project's beam-test dataset (:data:`DATASET_KIND`, an npz written by this
module only): ``waveforms`` (N, n) float32 mV, ``dt_ns``, per waveform ``file_index`` (into the
meta's files), ``channel``, ``event``, ``pedestal_mv`` and ``tube_cm`` (NaN: not in the map), and
``meta`` (JSON: kind, version, and per file its layout, sampling and per channel role, tube size,
encoding, polarity with how each was decided). No labels: there is no truth in a beam test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..fsutil import atomic_write_with
from .layouts import LAYOUTS, detect_layout, read_drs4, read_ihep, read_scope, read_wavedata
from .rawdata import ENCODINGS, FULL_SCALE, RawChannel, RawFile
from .readers import ReaderError, rate_to_dt_ns

DATASET_KIND = "sweep-beamtest"
DATASET_VERSION = 1
#: each event's first samples, which measure its pedestal and noise: IHEP's noise estimate takes
#: the first 50 (littlepi/PeakFindingSemiDA), Bari's baseline the first 25 ns after 5 bins (30–50
#: samples at 1.2–2 GS/s); a simulated waveform's first electron comes at t0 = 100 ns (120 samples)
PEDESTAL_SAMPLES = 50
#: auto polarity: how many times further one way than the other the waveforms must reach (median
#: over events), and how skewed the same way they must be; noise alone gives ≈ 1 and ≈ 0. A real
#: DRS4 file (pydrs4's test.dat: 35 mV pulses in 5 mV rms noise) gives 2.0 and −1.2
POLARITY_RATIO = 1.5
POLARITY_SKEW = 0.5
#: the events the polarity is judged on, at most (a median over them)
POLARITY_EVENTS = 1000
ROLES = ("tube", "trigger", "ignore")
CHANNEL_MAP_NAME = "channels.yaml"


@dataclass(frozen=True)
class ChannelRole:
    """What a channel is: a tube (``tube_cm`` its size, None when the map does not say), a trigger,
    or ignored."""

    role: str
    tube_cm: float | None = None

    def describe(self) -> str:
        """"tube 1.5 cm", "tube" (size not mapped), "trigger" or "ignore"."""
        if self.role == "tube":
            return f"tube {self.tube_cm:g} cm" if self.tube_cm is not None else "tube"
        return self.role


@dataclass
class Channel:
    """One channel, decided: its waveforms in mV (pedestal 0, pulses positive) and how each
    choice was made."""

    channel: int
    role: ChannelRole
    role_source: str
    waveforms_mv: np.ndarray  # (events, n) float32
    events: np.ndarray
    pedestal_mv: np.ndarray  # (events,) in the file's orientation
    noise_mv: float
    encoding: str
    encoding_source: str
    polarity: str  # positive, negative or unclear
    polarity_source: str
    saturated_events: int

    @property
    def empty(self) -> bool:
        """No event, or every event flat."""
        return self.waveforms_mv.shape[0] == 0 or not np.any(np.ptp(self.waveforms_mv, axis=1) > 0)

    def flags(self) -> list[str]:
        """What `sweep data inspect` flags: empty, saturated in how many events."""
        out = ["empty"] if self.empty else []
        if self.saturated_events:
            out.append(f"saturated in {self.saturated_events} of {self.waveforms_mv.shape[0]} events")
        return out


@dataclass
class Run:
    """A file read and decided: its channels and its sampling interval with where it came from."""

    path: Path
    layout: str
    dt_ns: float
    dt_source: str
    channels: dict[int, Channel]
    notes: list[str]
    map_source: str
    run: dict


# --------------------------------------------------------------------------------------------
# the channel map
# --------------------------------------------------------------------------------------------


def load_channel_map(path: str | Path) -> dict[int, ChannelRole]:
    """A channel map file::

        channels:
          0: {tube: 1.0}    # a drift tube of 1 cm
          1: {tube: 2.0}
          12: trigger
          13: ignore

    Raises:
        ReaderError: a file that is not such a map, with its line and the key.
    """
    from ..core.yamlpos import load

    path = Path(path)
    try:
        doc = load(path.read_text())
    except OSError as e:
        raise ReaderError(f"{path}: cannot read the channel map: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise ReaderError(f"{path}:{(mark.line + 1) if mark else 1}: not YAML: {getattr(e, 'problem', e)}") from None

    def fail(key: tuple, message: str) -> ReaderError:
        line, col = doc.where(key)
        return ReaderError(f"{path}:{line}:{col}: {'.'.join(map(str, key)) or 'the map'}: {message}")

    data = doc.data
    if not isinstance(data, dict) or set(data) != {"channels"} or not isinstance(data["channels"], dict) \
            or not data["channels"]:
        raise fail((), "expected one key, channels, mapping channel numbers to {tube: SIZE_CM}, trigger or ignore")
    roles: dict[int, ChannelRole] = {}
    for ch, what in data["channels"].items():
        key = ("channels", ch)
        if isinstance(ch, bool) or not isinstance(ch, int) or ch < 0:
            raise fail(key, f"a channel is a whole number ≥ 0, got {ch!r}")
        if what in ("trigger", "ignore"):
            roles[ch] = ChannelRole(what)
        elif isinstance(what, dict) and set(what) == {"tube"}:
            size = what["tube"]
            if size is not None and (isinstance(size, bool) or not isinstance(size, (int, float)) or not
                                     0 < size < 100):
                raise fail(key + ("tube",), f"the tube's size in cm (0 < size < 100), got {size!r}")
            roles[ch] = ChannelRole("tube", None if size is None else float(size))
        else:
            raise fail(key, f"expected {{tube: SIZE_CM}}, trigger or ignore, got {what!r}")
    return roles


def find_channel_map(paths: list[Path], given: Path | None) -> tuple[dict[int, ChannelRole] | None, str]:
    """The channel map given, else ``channels.yaml`` beside the first file (in it, for a folder),
    else None; with where it came from."""
    if given is not None:
        return load_channel_map(given), str(given)
    first = paths[0]
    beside = (first if first.is_dir() else first.parent) / CHANNEL_MAP_NAME
    if beside.is_file():
        return load_channel_map(beside), str(beside)
    return None, f"no channel map (no {CHANNEL_MAP_NAME} beside the data): every channel taken for a tube"


# --------------------------------------------------------------------------------------------
# reading and deciding
# --------------------------------------------------------------------------------------------


def read_raw(path: str | Path | list, layout: str | None = None) -> RawFile:
    """``path`` read by its layout's reader (``layout`` None: detected, :func:`detect_layout`).

    Raises:
        ReaderError: an unknown layout, or what the reader raises.
    """
    paths = [Path(p) for p in (path if isinstance(path, list) else [path])]
    layout = layout or detect_layout(paths[0])
    if layout not in LAYOUTS:
        raise ReaderError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if layout == "scope":
        return read_scope(paths)
    if len(paths) > 1:
        raise ReaderError(f"a {layout} file is read one at a time, got {len(paths)}")
    readers = {"drs4": read_drs4, "ihep": read_ihep, "wavedata": read_wavedata}
    return readers[layout](paths[0])


def _encoding(path: Path, raw: RawChannel, given: str | None, file_top: float, codes: bool) -> tuple[str, str]:
    """The channel's encoding and how it was decided (see the module doc): detected from the
    largest code of the file's channels of codes (``file_top``), one digitizer's encoding for all;
    ``codes``: the channel's samples are whole numbers ≥ 0 (:func:`_codes`).

    Raises:
        ReaderError: an unknown encoding, or one the codes or the layout contradict.
    """
    if given is not None and given not in ENCODINGS:
        raise ReaderError(f"encoding must be one of {', '.join(ENCODINGS)}, got {given!r}")
    if raw.encoding is not None:
        if given is not None and given != raw.encoding:
            raise ReaderError(f"{path}: the layout stores {raw.encoding} samples, --encoding {given} contradicts it")
        return raw.encoding, "the layout's"
    s = raw.samples
    whole = s.size == 0 or codes
    top = float(s.max()) if s.size else 0.0
    if given is not None:
        if given in FULL_SCALE and (not whole or top > FULL_SCALE[given]):
            raise ReaderError(f"{path}: channel {raw.channel}: --encoding {given} takes whole codes 0–"
                              f"{FULL_SCALE[given]}, the file holds {top:g}" + ("" if whole else " and fractions"))
        return given, "given"
    if not whole:
        raise ReaderError(f"{path}: channel {raw.channel}: the samples are not ADC codes (fractions, or below 0) "
                          "and the layout does not say their unit: give --encoding volts or mV")
    if file_top <= FULL_SCALE["x742"]:
        return "x742", f"detected: every code of the file ≤ {FULL_SCALE['x742']} (12 bits)"
    return "offset16", f"detected: the file's codes reach {file_top:.0f}, beyond 12 bits"


def to_mv(raw: RawChannel, encoding: str) -> np.ndarray:
    """The channel's samples in mV (see :data:`~sweep.physics.rawdata.ENCODINGS`), float32 (16-bit
    codes and their interpolations are exact to well below a code)."""
    s = np.asarray(raw.samples, dtype=np.float32)
    if encoding == "x742":
        return s * np.float32(1000.0 / 4096.0)
    if encoding == "offset16":
        offset = np.float32(0.0) if raw.offset_v is None else raw.offset_v[:, None].astype(np.float32)
        return (s / np.float32(65536.0) - np.float32(0.5) + offset) * np.float32(1000.0)
    return s * np.float32(1000.0) if encoding == "volts" else s


def polarity_of(waveforms_mv: np.ndarray, noise_mv: float) -> tuple[str, str]:
    """(positive, negative or unclear; why) of pedestal-subtracted waveforms: how much further they
    reach below their pedestal than above it (median over events), and the sign of their skew; both
    medians over at most :data:`POLARITY_EVENTS` events spread over the run."""
    w = np.asarray(waveforms_mv)
    if w.shape[0] > POLARITY_EVENTS:
        w = w[np.linspace(0, w.shape[0] - 1, POLARITY_EVENTS).astype(np.int64)]
    w = w.astype(np.float64)
    if not w.size:
        return "unclear", "no event"
    below, above = np.maximum(-w.min(axis=1), 0.0), np.maximum(w.max(axis=1), 0.0)
    floor = max(noise_mv, 1e-9)
    ratio = float(np.median((below + floor) / (above + floor)))
    d = w - w.mean(axis=1, keepdims=True)
    sd = d.std(axis=1)
    skew = float(np.median((d ** 3).mean(axis=1) / np.maximum(sd, 1e-12) ** 3))
    if ratio >= POLARITY_RATIO and skew <= -POLARITY_SKEW:
        return "negative", f"auto: {ratio:.1f}x further below the pedestal than above, skew {skew:+.1f}"
    if ratio <= 1 / POLARITY_RATIO and skew >= POLARITY_SKEW:
        return "positive", f"auto: {1 / ratio:.1f}x further above the pedestal than below, skew {skew:+.1f}"
    return "unclear", f"auto: below/above the pedestal {ratio:.2f}, skew {skew:+.1f}"


def prepare(raw: RawFile, *, dt_ns: float | None = None, sampling_rate: float | None = None,
            polarity: str = "auto", encoding: str | None = None,
            channel_map: dict[int, ChannelRole] | None = None, map_source: str = "") -> Run:
    """Decide each channel of ``raw`` (see the module doc); ``polarity`` (auto, positive, negative)
    and ``encoding`` apply to its tubes (a trigger's polarity is always found, as it is).

    Raises:
        ReaderError: no sampling interval, or one that contradicts the file's; an encoding the
            codes contradict; a map that names a channel the file lacks.
    """
    if polarity not in ("auto", "positive", "negative"):
        raise ReaderError(f"polarity must be auto, positive or negative, got {polarity!r}")
    if sampling_rate is not None:
        given = rate_to_dt_ns(sampling_rate)
        if dt_ns is not None and abs(given - dt_ns) > 1e-6 * dt_ns:
            raise ReaderError(f"--sampling-rate {sampling_rate} and --dt-ns {dt_ns} disagree")
        dt_ns = given
    if raw.dt_ns is not None:
        if dt_ns is not None and abs(raw.dt_ns - dt_ns) > 1e-3 * raw.dt_ns:
            raise ReaderError(f"{raw.path}: the file samples every {raw.dt_ns:.6g} ns ({1 / raw.dt_ns:.4g} GS/s, "
                              f"{raw.dt_source}) but {dt_ns:.6g} ns was given: drop the option, or fix the file")
        dt, dt_source = raw.dt_ns, raw.dt_source
    elif dt_ns is not None:
        dt, dt_source = float(dt_ns), "given"
    else:
        raise ReaderError(f"{raw.path}: a {raw.layout} file does not say its sampling rate: give it with "
                          "--sampling-rate (GS/s: 1, 1.2, 1.5 or 2 in the beam tests), sweep does not assume one")
    if channel_map is not None:
        missing = sorted(set(channel_map) - set(raw.channels))
        if missing:
            raise ReaderError(f"{raw.path}: the channel map ({map_source}) names channel(s) {missing} the file does "
                              f"not hold (it holds {sorted(raw.channels)})")
    channels: dict[int, Channel] = {}
    codes = {ch: _codes(rc) for ch, rc in raw.channels.items()}  # one pass over each channel's samples
    file_top = max((float(rc.samples.max()) for ch, rc in raw.channels.items() if rc.encoding is None and codes[ch]),
                   default=0.0)
    for ch, rc in sorted(raw.channels.items()):
        if channel_map is None:
            role, role_source = ChannelRole("tube"), "no map"
        elif ch in channel_map:
            role, role_source = channel_map[ch], "map"
        else:
            role, role_source = ChannelRole("ignore"), "not in the map"
        tube = role.role == "tube"
        if tube or rc.encoding is not None or codes[ch]:
            enc, enc_source = _encoding(raw.path, rc, encoding if tube else None, file_top, codes[ch])
        else:  # a trigger or ignored channel of floats in a layout that does not say their unit
            enc, enc_source = "mV", "as stored (not a tube)"
        mv = to_mv(rc, enc)
        n_ped = min(PEDESTAL_SAMPLES, mv.shape[1]) if mv.ndim == 2 else 0
        head = mv[:, :n_ped] if n_ped else np.zeros((mv.shape[0], 1))
        pedestal = np.median(head, axis=1) if mv.size else np.zeros(0)
        noise = float(np.median(head.std(axis=1))) if mv.size else 0.0
        w = (mv - pedestal[:, None]) if mv.size else mv
        found, why = polarity_of(w, noise)
        if tube and polarity != "auto":
            pol, pol_source = polarity, f"given ({why.replace('auto: ', 'auto would say: ')}: {found})"
        else:
            pol, pol_source = found, why
        if pol == "negative":
            w = -w
        saturated = 0
        if enc in FULL_SCALE and rc.samples.size:
            s = rc.samples
            saturated = int(np.count_nonzero(np.any((s <= 0) | (s >= FULL_SCALE[enc]), axis=1)))
        channels[ch] = Channel(ch, role, role_source, np.asarray(w, np.float32), rc.events, pedestal, noise,
                               enc, enc_source, pol, pol_source, saturated)
    return Run(raw.path, raw.layout, dt, dt_source, channels, list(raw.notes), map_source, dict(raw.run))


def _codes(rc: RawChannel) -> bool:
    s = rc.samples
    return bool(s.size) and bool(np.all(s == np.rint(s))) and float(s.min()) >= 0


def describe(run: Run) -> str:
    """What `sweep data inspect` prints of one file: the file, then a line per channel."""
    events = {c.waveforms_mv.shape[0] for c in run.channels.values()}
    lines = [(f"{run.path}: {run.layout}, {len(run.channels)} channel(s), "
              f"{'/'.join(map(str, sorted(events)))} event(s)"),
             f"  sampling {run.dt_ns:.4f} ns ({1 / run.dt_ns:.4g} GS/s) from {run.dt_source}",
             f"  channels: {run.map_source}"]
    lines += [f"  note: {n}" for n in run.notes]
    for ch, c in run.channels.items():
        flags = c.flags()
        lines.append(f"  ch {ch:>3}  {c.role.describe():<14} {c.waveforms_mv.shape[0]:>6} events x "
                     f"{c.waveforms_mv.shape[1] if c.waveforms_mv.ndim == 2 else 0} samples  "
                     f"polarity {c.polarity} ({c.polarity_source})  encoding {c.encoding} ({c.encoding_source})  "
                     f"pedestal {float(np.median(c.pedestal_mv)) if c.pedestal_mv.size else 0:.2f} mV  "
                     f"noise {c.noise_mv:.3f} mV rms" + (f"  [{'; '.join(flags)}]" if flags else ""))
    return "\n".join(lines)


def inspect(paths: list[Path], *, layout: str | None = None, channel_map: Path | None = None,
            **options: Any) -> list[Run]:
    """Each file (a folder of oscilloscope exports counts as one) read and decided.

    Raises:
        ReaderError: what :func:`read_raw`, :func:`find_channel_map` or :func:`prepare` raise.
    """
    roles, source = find_channel_map(paths, channel_map)
    groups = _groups(paths, layout)
    return [prepare(read_raw(group, lay), channel_map=roles, map_source=source, **options) for lay, group in groups]


def _groups(paths: list[Path], layout: str | None) -> list[tuple[str, list[Path]]]:
    """The files grouped into runs: all oscilloscope exports together, every other file alone."""
    scope = [p for p in paths if (layout or detect_layout(p)) == "scope"]
    others = [(layout or detect_layout(p), [p]) for p in paths if p not in scope]
    return ([("scope", scope)] if scope else []) + others


def import_files(paths: list[Path], out: Path, *, layout: str | None = None, channel_map: Path | None = None,
                 **options: Any) -> dict:
    """Read ``paths`` and write their tube channels to ``out`` (the dataset of the module doc),
    whole or not at all. Returns a summary: waveforms, files, per file and channel what was decided.

    Raises:
        ReaderError: what :func:`inspect` raises; a tube whose polarity is unclear; files of different
            sampling or sample counts; no tube at all; ``out`` not an .npz.
    """
    if out.suffix != ".npz":
        raise ReaderError(f"{out}: the beam-test dataset is an .npz file")
    runs = inspect(paths, layout=layout, channel_map=channel_map, **options)
    blocks, files = [], []
    for i, run in enumerate(runs):
        meta_channels = {}
        for ch, c in run.channels.items():
            meta_channels[str(ch)] = {"role": c.role.role, "tube_cm": c.role.tube_cm, "encoding": c.encoding,
                                      "encoding_source": c.encoding_source, "polarity": c.polarity,
                                      "polarity_source": c.polarity_source, "noise_mv": round(c.noise_mv, 4),
                                      "saturated_events": c.saturated_events}
            if c.role.role != "tube":
                continue
            if c.empty:
                raise ReaderError(f"{run.path}: channel {ch} is empty: map it as ignore")
            if c.polarity == "unclear":
                raise ReaderError(f"{run.path}: channel {ch}: its polarity is unclear ({c.polarity_source}): give "
                                  "--polarity, or map the channel as ignore if it holds no signal")
            blocks.append((i, ch, c))
        files.append({"path": str(run.path), "layout": run.layout, "dt_ns": run.dt_ns, "dt_source": run.dt_source,
                      "notes": run.notes, "channel_map": run.map_source, "run": run.run, "channels": meta_channels})
    if not blocks:
        raise ReaderError(f"{', '.join(map(str, paths))}: no tube channel to import (every channel is a trigger or "
                          "ignored)")
    dts = {round(r.dt_ns, 6) for r in runs}
    if len(dts) > 1:
        raise ReaderError(f"the files are sampled at different intervals ({sorted(dts)} ns): import each rate "
                          "to a dataset of its own")
    lengths = {c.waveforms_mv.shape[1] for _, _, c in blocks}
    if len(lengths) > 1:
        raise ReaderError(f"the tubes hold waveforms of {sorted(lengths)} samples: import each length to a dataset "
                          "of its own")
    arrays = {
        "waveforms": np.concatenate([c.waveforms_mv for _, _, c in blocks]).astype(np.float32),
        "dt_ns": np.float64(runs[0].dt_ns),
        "file_index": np.concatenate([np.full(len(c.events), i, np.int32) for i, _, c in blocks]),
        "channel": np.concatenate([np.full(len(c.events), ch, np.int32) for _, ch, c in blocks]),
        "event": np.concatenate([c.events for _, _, c in blocks]).astype(np.int64),
        "pedestal_mv": np.concatenate([c.pedestal_mv for _, _, c in blocks]).astype(np.float32),
        "tube_cm": np.concatenate([np.full(len(c.events), np.nan if c.role.tube_cm is None else c.role.tube_cm,
                                           np.float32) for _, _, c in blocks]),
        "meta": np.array(json.dumps({"kind": DATASET_KIND, "format_version": DATASET_VERSION, "files": files})),
    }

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_with(out, write)
    return {"out": str(out), "waveforms": int(arrays["waveforms"].shape[0]),
            "samples": int(arrays["waveforms"].shape[1]), "dt_ns": runs[0].dt_ns, "runs": runs}


def is_dataset(path: str | Path) -> bool:
    """Whether ``path`` is an npz whose meta says it is a beam-test dataset (False for anything
    else, readable or not: its own reader says what is wrong with it)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return "meta" in z.files and json.loads(str(z["meta"])).get("kind") == DATASET_KIND
    except (OSError, ValueError, AttributeError):
        return False


def read_dataset(path: str | Path) -> dict[str, Any]:
    """A beam-test dataset written by :func:`import_files`: its arrays and its meta (dict).

    Raises:
        ReaderError: not such a dataset (another kind, a newer version, missing arrays).
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise ReaderError(f"{path}: not a readable npz: {e}") from None
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except (KeyError, ValueError):
        raise ReaderError(f"{path}: not a beam-test dataset (no meta)") from None
    if meta.get("kind") != DATASET_KIND:
        raise ReaderError(f"{path}: a {meta.get('kind')!r} file, not a beam-test dataset ({DATASET_KIND})")
    if meta.get("format_version", 0) > DATASET_VERSION:
        raise ReaderError(f"{path}: dataset version {meta['format_version']} is newer than this sweep reads "
                          f"({DATASET_VERSION}): update sweep")
    need = {"waveforms", "dt_ns", "file_index", "channel", "event", "pedestal_mv", "tube_cm"}
    if need - set(arrays):
        raise ReaderError(f"{path}: the beam-test dataset lacks {sorted(need - set(arrays))}")
    return {**arrays, "meta": meta}
