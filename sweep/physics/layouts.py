"""Readers of the beam-test layouts the drift-chamber groups record, each to a
:class:`~sweep.physics.rawdata.RawFile` (samples as stored, no truth):

``drs4``
    The PSI DRS4 evaluation board's binary file (``.dat``, DRSOsc / drs_exam; the board manual's
    "binary data format"): ``DRS2`` header, a ``TIME`` block with, per board ``B#`` + serial and per
    channel ``C00n``, 1024 float32 cell widths (ns); then events: ``EHDR``, serial (uint32), date
    (7 uint16), range (int16, mV), per board ``B#`` + serial, ``T#`` + trigger cell, per channel
    ``C00n`` + scaler (int32) + 1024 uint16 codes, V = code/65536 − 0.5 + range/1000. The sampling
    is not uniform: the time of cell i is the sum of the widths from the trigger cell, each channel
    aligned on channel 1 at cell (1024 − trigger cell) mod 1024 (the manual's read_binary.cpp).
    The reader resamples each event linearly onto a uniform grid at the mean cell width (the file's
    sampling interval), sample k at k·dt after the first channel's trigger cell on every channel,
    and says how far the cells stray from it. Channels are numbered 1–4 on the first board, 5–8 on
    the second, …; a board's channels are aligned on its first one (older ``TIME``-first files
    without the ``DRS2`` header and the scaler words are read too).
``scope``
    Oscilloscope text exports, one file per channel and event: LeCroy ``C{n}--{name}--{event}.txt``
    (header lines, then ``Time,Ampl`` and a time (s) and amplitude (V) per line) and Tektronix
    ``tek{event}CH{n}.csv`` (header fields in the first columns — ``Sample Interval``, ``Vertical
    Units`` — and time and amplitude in columns 4–5 of every line). A folder is read whole.
``ihep``
    IHEP's beam-test ROOT files (littlepi/PeakFindingSemiDA): tree ``signal``, branch ``wf_i``
    (one waveform per entry, negative pulses, no truth, no sampling rate).
``wavedata``
    The Bari/Lecce CERN H8 2021–2022 files after conversion (bdanzi/drifttubes_offline_analysis):
    tree ``data``, branch ``x`` of class ``WaveData`` (a channel → 1024 uint16 samples map);
    read with PyROOT (the ``root`` wheel), see :func:`read_wavedata`.

Every reader raises :class:`~sweep.physics.readers.ReaderError` with the file (and event or line)
on a file that is not what it should be: a truncated DRS4 event, a channel of another length, a
ROOT file without its tree; never a traceback.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .rawdata import RawChannel, RawFile, check_samples
from .readers import ReaderError, open_root

LAYOUTS = ("wavedata", "drs4", "scope", "ihep")

# --------------------------------------------------------------------------------------------
# DRS4 binary
# --------------------------------------------------------------------------------------------

DRS4_CELLS = 1024
#: events resampled at a time
_CHUNK = 256


def _drs4_time_block(path: Path, data: bytes) -> tuple[list[tuple[int, list[tuple[int, np.ndarray]]]], int]:
    """The ``TIME`` block: [(board serial, [(channel 1-4, widths (1024,) ns)])], and where the first
    event starts."""
    pos = 0 if data[:4] == b"TIME" else 4
    if data[pos:pos + 4] != b"TIME":
        raise ReaderError(f"{path}: a DRS4 binary file has its TIME block at byte {pos}, found {data[pos:pos + 4]!r}")
    pos, boards = pos + 4, []
    while pos < len(data) and data[pos:pos + 4] != b"EHDR":
        tag = data[pos:pos + 2]
        if tag == b"B#":
            boards.append((int.from_bytes(data[pos + 2:pos + 4], "little"), []))
            pos += 4
        elif tag[:1] == b"C" and data[pos + 1:pos + 4].isdigit():
            if not boards:  # the oldest files have no board serials: one board
                boards.append((0, []))
            if pos + 4 + 4 * DRS4_CELLS > len(data):
                raise ReaderError(f"{path}: the TIME block ends inside channel {data[pos:pos + 4].decode()}'s widths")
            widths = np.frombuffer(data, "<f4", DRS4_CELLS, pos + 4).astype(np.float64)
            boards[-1][1].append((int(data[pos + 1:pos + 4]), widths))
            pos += 4 + 4 * DRS4_CELLS
        else:
            raise ReaderError(f"{path}: byte {pos}: expected a board (B#) or channel (C00n) header in the TIME "
                              f"block, found {data[pos:pos + 4]!r}")
    if not boards or not any(chs for _, chs in boards):
        raise ReaderError(f"{path}: the TIME block holds no channel")
    return boards, pos


def _resample(t: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Each row of ``y`` (sampled at the increasing times of the same row of ``t``) linearly
    interpolated at ``grid``, held at its end values outside (np.interp's rule), all rows in one
    np.interp: the rows are laid end to end on one time axis, each padded with its end values
    beyond the grid's ends so that no row reaches into the next."""
    n, m = t.shape
    lo = min(float(t[:, 0].min()), float(grid[0])) - 1.0
    hi = max(float(t[:, -1].max()), float(grid[-1])) + 1.0
    offset = np.arange(n)[:, None] * (hi - lo + 1.0)
    xp = np.concatenate([np.full((n, 1), lo), t, np.full((n, 1), hi)], axis=1) + offset
    fp = np.concatenate([y[:, :1], y, y[:, -1:]], axis=1)
    return np.interp((grid[None, :] + offset).ravel(), xp.ravel(), fp.ravel()).reshape(n, grid.size)


def read_drs4(path: str | Path) -> RawFile:
    """A DRS4 evaluation board binary file (see the module doc), resampled to uniform sampling.

    Raises:
        ReaderError: not a DRS4 binary file, a truncated or misaligned event (with its index and serial).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ReaderError(f"{path}: cannot read: {e.strerror or e}") from None
    if data[:4] == b"TIME":  # DRSOsc before 5.0: no DRS2 header, no scaler per channel
        version, scaler = "0", False
    elif data[:4] == b"DRS2":
        version, scaler = "2", True
    else:
        raise ReaderError(f"{path}: not a DRS4 evaluation board binary file (it starts with {data[:4]!r}, not DRS2 "
                          "or TIME" + ("; DRS8 is WaveDAQ's layout, which sweep does not read)" if data[:4] == b"DRS8"
                                       else ")"))
    boards, start = _drs4_time_block(path, data)
    # the range is written as an unsigned short of mV (0, 450 or 500): read as int16 it is the same
    fields: list[tuple] = [("ehdr", "S4"), ("serial", "<u4"), ("date", "<u2", 7), ("range", "<i2")]
    for b, (_, chs) in enumerate(boards):
        fields += [(f"b{b}", "S2"), (f"b{b}serial", "<u2"), (f"t{b}", "S2"), (f"t{b}cell", "<u2")]
        for c, _ in chs:
            fields += [(f"b{b}c{c}", "S4")] + ([(f"b{b}c{c}scaler", "<u4")] if scaler else []) + \
                [(f"b{b}c{c}codes", "<u2", DRS4_CELLS)]
    dtype = np.dtype(fields)
    body = len(data) - start
    n_events = body // dtype.itemsize
    if body % dtype.itemsize:
        raise ReaderError(f"{path}: event {n_events} (counting from 0) is truncated: {body % dtype.itemsize} of its "
                          f"{dtype.itemsize} bytes are there; the file was cut while it was written")
    if n_events == 0:
        raise ReaderError(f"{path}: the file holds no event")
    events = np.frombuffer(data, dtype, n_events, start)
    bad = np.nonzero(events["ehdr"] != b"EHDR")[0]
    if bad.size:
        raise ReaderError(f"{path}: event {int(bad[0])} does not start with EHDR: the file is not one of "
                          "fixed-size events of the channels its TIME block declares")
    channels: dict[int, RawChannel] = {}
    offset_v = events["range"].astype(np.float64) / 1000.0
    dts = [float(widths.mean()) for _, chs in boards for _, widths in chs]
    dt_ns = float(np.mean(dts))
    if max(dts) - min(dts) > 0.01 * dt_ns:
        raise ReaderError(f"{path}: the channels' mean cell widths differ ({min(dts):.4f}–{max(dts):.4f} ns): "
                          "they were not sampled at one rate")
    # sample k at k·dt after the first channel's trigger cell, on every channel and event
    grid = dt_ns * np.arange(DRS4_CELLS)
    for b, (_, chs) in enumerate(boards):
        tcell = events[f"t{b}cell"].astype(np.int64)
        if np.any(events[f"t{b}"] != b"T#") or np.any(tcell >= DRS4_CELLS):
            e = int(np.nonzero((events[f"t{b}"] != b"T#") | (tcell >= DRS4_CELLS))[0][0])
            raise ReaderError(f"{path}: event {e} (serial {int(events['serial'][e])}): board {b}'s trigger cell "
                              "header is not T# with a cell below 1024")
        out = {c: np.empty((n_events, DRS4_CELLS), np.float32) for c, _ in chs}
        for a in range(0, n_events, _CHUNK):  # pieces a cache holds: whole-file temporaries are slower
            piece = slice(a, min(a + _CHUNK, n_events))
            tc = tcell[piece]
            rows = np.arange(tc.size)
            # time of cell i: Σ widths from the trigger cell (read_binary.cpp); each channel aligned
            # on the board's first at cell (1024 − tcell) mod 1024
            ref_cell = (DRS4_CELLS - tc) % DRS4_CELLS
            roll = (np.arange(DRS4_CELLS)[None, :] + tc[:, None]) % DRS4_CELLS
            times_ref = None
            for c, widths in chs:
                t = np.zeros((tc.size, DRS4_CELLS))
                np.cumsum(widths[roll][:, :-1], axis=1, out=t[:, 1:])
                if times_ref is None:
                    times_ref = t[rows, ref_cell]
                t += (times_ref - t[rows, ref_cell])[:, None]
                out[c][piece] = _resample(t, events[f"b{b}c{c}codes"][piece].astype(np.float64), grid)
        for c, _ in chs:
            channels[c + 4 * b] = RawChannel(c + 4 * b, out[c], events["serial"].astype(np.int64), "offset16",
                                             offset_v=offset_v)
    spread = [(float(w.min()), float(w.max())) for _, chs in boards for _, w in chs]
    lo, hi = min(s[0] for s in spread), max(s[1] for s in spread)
    return RawFile(path, "drs4", channels, dt_ns, "the file's time calibration (mean cell width)",
                   notes=[(f"DRS4 cells {lo:.3f}–{hi:.3f} ns wide: each event resampled linearly onto a "
                           f"uniform {dt_ns:.4f} ns grid")],
                   run={"format": f"DRS{version}" if version != "0" else "TIME (before DRS 5.0)",
                        "boards": [s for s, _ in boards]})


def write_drs4(path: str | Path, codes: dict[int, np.ndarray], widths: dict[int, np.ndarray],
               trigger_cells: np.ndarray, range_mv: int = 0, board: int = 2345) -> Path:
    """Write a one-board DRS4 binary file (DRS2) of ``codes`` {channel 1-4: (events, 1024) uint16}
    with cell ``widths`` {channel: (1024,) ns} and per-event trigger cells; for the tests."""
    out = bytearray(b"DRS2TIME" + b"B#" + int(board).to_bytes(2, "little"))
    for c in sorted(codes):
        out += f"C{c:03d}".encode() + np.asarray(widths[c], "<f4").tobytes()
    n = len(next(iter(codes.values())))
    for e in range(n):
        out += b"EHDR" + np.uint32(e + 1).tobytes() + np.array([2022, 7, 14, 12, 0, 0, e % 1000], "<u2").tobytes()
        out += np.int16(range_mv).tobytes() + b"B#" + int(board).to_bytes(2, "little")
        out += b"T#" + np.uint16(trigger_cells[e]).tobytes()
        for c in sorted(codes):
            out += f"C{c:03d}".encode() + np.uint32(0).tobytes() + np.asarray(codes[c][e], "<u2").tobytes()
    Path(path).write_bytes(bytes(out))
    return Path(path)


# --------------------------------------------------------------------------------------------
# oscilloscope text exports
# --------------------------------------------------------------------------------------------

#: LeCroy C1--run--00012.txt / Tektronix tek0012CH1.csv: (channel, event) from the name
_LECROY = re.compile(r"^C(\d+)--.*?(\d+)\.(txt|csv)$", re.I)
_TEK = re.compile(r"^(?:tek|F)(\d+)CH(\d+)\.csv$", re.I)
_UNITS_V = {"v": 1.0, "mv": 1e-3, "uv": 1e-6}
_UNITS_S = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def _scope_file(path: Path) -> tuple[np.ndarray, np.ndarray, float | None]:
    """(times s, amplitudes V, the header's sample interval in s or None) of one export."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as e:
        raise ReaderError(f"{path}: cannot read: {e.strerror or e}") from None
    times, values, interval, volts, seconds = [], [], None, 1.0, 1.0
    data_started = False
    for number, line in enumerate(lines, 1):
        cells = [c.strip() for c in line.split(",")]
        key = cells[0].lower() if cells else ""
        if key == "sample interval" and len(cells) > 1:
            interval = _number(path, number, cells[1], "the sample interval")
        elif key == "vertical units" and len(cells) > 1:
            volts = _unit(path, number, cells[1], _UNITS_V, "vertical")
        elif key == "horizontal units" and len(cells) > 1:
            seconds = _unit(path, number, cells[1], _UNITS_S, "horizontal")
        if len(cells) >= 5 and cells[3] and cells[4]:  # Tektronix: columns 4-5 on every line
            t, v = _pair(cells[3], cells[4])
        elif len(cells) == 2:  # LeCroy and plain: time,amplitude after the "Time,Ampl" line
            if key == "time":
                data_started = True
                continue
            t, v = _pair(cells[0], cells[1])
            if t is None and data_started:
                raise ReaderError(f"{path}:{number}: expected a time and an amplitude, got {line.strip()!r}")
        else:
            continue
        if t is not None:
            times.append(t)
            values.append(v)
    if len(times) < 2:
        raise ReaderError(f"{path}: no time and amplitude columns found (a LeCroy export has them after its "
                          "Time,Ampl line, a Tektronix one in columns 4-5)")
    return np.asarray(times) * seconds, np.asarray(values) * volts, None if interval is None else interval * seconds


def _pair(a: str, b: str) -> tuple[float | None, float | None]:
    try:
        return float(a), float(b)
    except ValueError:
        return None, None


def _number(path: Path, line: int, text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ReaderError(f"{path}:{line}: {what} is not a number: {text!r}") from None


def _unit(path: Path, line: int, text: str, units: dict[str, float], what: str) -> float:
    if text.lower() not in units:
        raise ReaderError(f"{path}:{line}: {what} unit {text!r} is not one of {', '.join(units)}")
    return units[text.lower()]


def scope_files(paths: list[Path]) -> dict[tuple[int, int], Path]:
    """{(channel, event): file} of the exports among ``paths`` (folders are read whole).

    Raises:
        ReaderError: no export, or a name that says neither channel nor event.
    """
    found: dict[tuple[int, int], Path] = {}
    for p in paths:
        members = sorted(q for q in p.iterdir() if q.suffix.lower() in (".txt", ".csv")) if p.is_dir() else [p]
        for f in members:
            lecroy, tek = _LECROY.match(f.name), _TEK.match(f.name)
            if lecroy:
                key = (int(lecroy.group(1)), int(lecroy.group(2)))
            elif tek:
                key = (int(tek.group(2)), int(tek.group(1)))
            else:
                raise ReaderError(f"{f}: an oscilloscope export is named C<channel>--<name>--<event>.txt (LeCroy) "
                                  "or tek<event>CH<channel>.csv / F<event>CH<channel>.CSV (Tektronix): this name "
                                  "says neither")
            found[key] = f
    if not found:
        raise ReaderError(f"{', '.join(map(str, paths))}: no oscilloscope export (.txt, .csv) found")
    return found


def read_scope(paths: str | Path | list) -> RawFile:
    """Oscilloscope exports (files, or folders of them) as one run (see the module doc).

    Raises:
        ReaderError: a file without columns, events of different lengths or sampling, a channel
            without an event another one has, non-uniform times.
    """
    paths = [Path(p) for p in (paths if isinstance(paths, list) else [paths])]
    found = scope_files(paths)
    by_channel: dict[int, dict[int, np.ndarray]] = {}
    dts: list[tuple[float, Path]] = []
    from_header = False
    for (channel, event), f in sorted(found.items()):
        t, v, interval = _scope_file(f)
        steps = np.diff(t)
        dt = (t[-1] - t[0]) / (len(t) - 1)
        if dt <= 0 or np.max(np.abs(steps - dt)) > 0.05 * dt:
            raise ReaderError(f"{f}: the times are not evenly spaced (steps {steps.min():.4g}–{steps.max():.4g} s)")
        if interval is not None:
            from_header = True
            if abs(interval - dt) > 1e-3 * dt:
                raise ReaderError(f"{f}: its Sample Interval {interval:.6g} s disagrees with its times' "
                                  f"{dt:.6g} s")
        dts.append((dt * 1e9, f))
        by_channel.setdefault(channel, {})[event] = v
    ref_dt, ref_file = dts[0]
    for dt, f in dts:
        if abs(dt - ref_dt) > 1e-3 * ref_dt:
            raise ReaderError(f"{f}: sampled every {dt:.6g} ns, {ref_file} every {ref_dt:.6g} ns: one run, one rate")
    events = sorted({e for evs in by_channel.values() for e in evs})
    channels: dict[int, RawChannel] = {}
    for channel, evs in by_channel.items():
        missing = [e for e in events if e not in evs]
        if missing:
            raise ReaderError(f"channel {channel}: no export of event {missing[0]} (other channels have one)")
        lengths = {len(evs[e]) for e in events}
        if len(lengths) > 1:
            e = next(e for e in events if len(evs[e]) != len(evs[events[0]]))
            raise ReaderError(f"{found[(channel, e)]}: {len(evs[e])} samples, event {events[0]}'s "
                              f"{len(evs[events[0]])}: every event of a channel has the same length")
        samples = check_samples(found[(channel, events[0])], channel, np.stack([evs[e] for e in events]), "scope")
        channels[channel] = RawChannel(channel, samples, np.asarray(events, np.int64), "volts")
    lengths = {c.n_samples for c in channels.values()}
    if len(lengths) > 1:
        raise ReaderError(f"{paths[0]}: the channels hold {sorted(lengths)} samples: one run, one length")
    source = "the exports' Sample Interval" if from_header else "the exports' time column"
    return RawFile(paths[0], "scope", channels, float(np.mean([d for d, _ in dts])), source,
                   run={"files": len(found)})


def write_lecroy(folder: str | Path, channel: int, event: int, amplitude_v: np.ndarray, dt_s: float) -> Path:
    """Write a LeCroy-style export C{channel}--test--{event:05d}.txt; for the tests."""
    path = Path(folder) / f"C{channel}--test--{event:05d}.txt"
    n = len(amplitude_v)
    lines = ["LECROYWR8208HD,40001,Waveform", f"Segments,1,SegmentSize,{n}", "Segment,TrigTime,TimeSinceSegment1",
             "#1,14-Jul-2022 12:00:00,0", "Time,Ampl"]
    lines += [f"{(i - n // 4) * dt_s:.10e},{v:.6e}" for i, v in enumerate(amplitude_v)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_tektronix(folder: str | Path, channel: int, event: int, amplitude_v: np.ndarray, dt_s: float) -> Path:
    """Write a Tektronix-style export tek{event:04d}CH{channel}.csv; for the tests."""
    path = Path(folder) / f"tek{event:04d}CH{channel}.csv"
    n = len(amplitude_v)
    header = [f"Record Length,{n:.6e},", f"Sample Interval,{dt_s:.6e},", f"Trigger Point,{n // 4:.12e},", ",,",
              ",,", f"Source,CH{channel},", "Vertical Units,V,", "Vertical Scale,2.000000e-02,",
              "Vertical Offset,0.000000e+00,", "Horizontal Units,s,", f"Horizontal Scale,{dt_s * n / 10:.6e},",
              "Pt Fmt,Y,", "Yzero,0.000000e+00,", "Probe Atten,1.000000e+00,", "Model Number,MSO64,",
              "Serial Number,C012345,", "Firmware Version,1.0,"]
    lines = [(header[i] if i < len(header) else ",,") + f",{(i - n // 4) * dt_s:.10e},{v:.6e}"
             for i, v in enumerate(amplitude_v)]
    path.write_text("\n".join(lines) + "\n")
    return path


# --------------------------------------------------------------------------------------------
# ROOT: IHEP and WaveData
# --------------------------------------------------------------------------------------------


def read_ihep(path: str | Path, tree: str = "signal", branch: str = "wf_i") -> RawFile:
    """IHEP's beam-test ROOT file: one waveform per entry of ``tree``/``branch``, as channel 0.

    Raises:
        ReaderError: no such tree or branch, waveforms of different lengths (with the entry).
    """
    path = Path(path)
    with open_root(path) as f:
        if tree not in f:
            held = ", ".join(sorted(f.keys(cycle=False))) or "nothing"
            raise ReaderError(f"{path}: no tree {tree!r} (it holds {held})")
        t = f[tree]
        if branch not in t:
            raise ReaderError(f"{path}: tree {tree!r} has no branch {branch!r} (it has {', '.join(t.keys())})")
        wf = t[branch].array(library="np")
    arrays = [np.asarray(w, dtype=np.float64) for w in wf]
    if not arrays:
        raise ReaderError(f"{path}: tree {tree!r} holds no entry")
    n = len(arrays[0])
    for e, w in enumerate(arrays):
        if len(w) != n:
            raise ReaderError(f"{path}: entry {e} of {tree}/{branch} has {len(w)} samples, entry 0 {n}: "
                              "every waveform of a run has the same length")
    samples = check_samples(path, 0, np.stack(arrays), f"{tree}/{branch}")
    return RawFile(path, "ihep", {0: RawChannel(0, samples, np.arange(len(arrays), dtype=np.int64), None)},
                   None, "not in the file")


def detect_layout(path: str | Path) -> str:
    """The layout of ``path`` from its content: a folder or .txt/.csv is ``scope``, a file starting
    with DRS is ``drs4``, a ROOT file with tree ``data`` (branch ``x``) ``wavedata``, one with tree
    ``signal`` ``ihep``.

    Raises:
        ReaderError: none of these, with what the file holds.
    """
    path = Path(path)
    if path.is_dir() or path.suffix.lower() in (".txt", ".csv"):
        return "scope"
    if not path.is_file():
        raise ReaderError(f"{path}: no such file")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head[:3] == b"DRS":
        return "drs4"
    if head == b"root":
        with open_root(path) as f:
            names = set(f.keys(cycle=False))
            if "data" in names and "x" in f["data"]:
                return "wavedata"
            if "signal" in names:
                return "ihep"
            hint = " (a simulation with truth: sweep evaluate --input reads it)" if "sim" in names else ""
            raise ReaderError(f"{path}: a ROOT file of none of the beam-test layouts: trees {sorted(names)}{hint}; "
                              "expected data/x (wavedata) or signal/wf_i (ihep)")
    raise ReaderError(f"{path}: not a beam-test file sweep knows (a DRS4 .dat starts with DRS2, a ROOT file with "
                      f"'root'; this one with {head!r}); give --layout one of {', '.join(LAYOUTS)}")


#: the converter's split WaveData branch: the map's keys (channels) and values (the samples)
WAVEDATA_KEYS = "x/_chdata_x742/_chdata_x742.first"
WAVEDATA_VALUES = "x/_chdata_x742/_chdata_x742.second"
WAVEDATA_EVENT = "x/_evnum"


def _wavedata_baskets(path: Path, branch):
    """(first entry, decompressed bytes, entry byte offsets) of every basket of ``branch``, the one
    kept inside the TTree object included (the converter calls SetDirectory(0) before Write)."""
    for i in range(branch.num_baskets):
        start = int(branch.basket_entry_start_stop(i)[0])
        basket = branch.basket(i)
        offsets = basket.byte_offsets
        if offsets is None:
            raise ReaderError(f"{path}: {branch.object_path}: basket {i} has no entry offsets; not a WaveData map")
        yield start, np.asarray(basket.data, dtype=np.uint8), np.asarray(offsets, dtype=np.int64)


def _wavedata_entry(path: Path, data: np.ndarray, lo: int, hi: int, n_keys: int, event: int) -> list[np.ndarray]:
    """The vectors of one entry of the map's values: a 6-byte header (byte count, version), then
    per channel a big-endian int32 length and that many big-endian uint16 samples.

    Raises:
        ReaderError: an entry cut short, a negative length, or not one vector per key.
    """
    pos, out = lo + 6, []
    while pos < hi:
        if pos + 4 > hi:
            break
        length = int(data[pos:pos + 4].view(">i4")[0])
        if length < 0 or pos + 4 + 2 * length > hi:
            raise ReaderError(f"{path}: event {event}: a channel's samples run past the entry's end (length "
                              f"{length}): the file is damaged")
        out.append(data[pos + 4:pos + 4 + 2 * length].view(">u2").astype(np.uint16))
        pos += 4 + 2 * length
    if pos != hi or len(out) != n_keys:
        raise ReaderError(f"{path}: event {event}: {n_keys} channel numbers but {len(out)} sample vectors in the "
                          "channel map: the file is damaged")
    return out


def read_wavedata(path: str | Path) -> RawFile:
    """The Bari/Lecce converted beam-test file (see the module doc), with uproot alone: the map's
    keys are a plain branch; its values (``vector<uint16>`` per key, which uproot cannot interpret)
    are parsed from the decompressed baskets. Channels as the map holds them; a channel's events are
    those that hold it (the converter never clears the map, so a channel seen once stays).

    Raises:
        ReaderError: no tree ``data``, a branch ``x`` not written split (the converter's default),
            a damaged entry (with its event), a channel whose events differ in length.
    """
    path = Path(path)
    with open_root(path) as f:
        if "data" not in f:
            held = ", ".join(sorted(f.keys(cycle=False))) or "nothing"
            raise ReaderError(f"{path}: no tree 'data' (it holds {held}): not a converted WaveData file")
        t = f["data"]
        if WAVEDATA_KEYS not in t or WAVEDATA_VALUES not in t:
            raise ReaderError(f"{path}: tree data has no {WAVEDATA_KEYS}: its branch x was not written split (the "
                              "converter's default, split level 99), which is the layout sweep reads")
        keys = t[WAVEDATA_KEYS].array(library="np")
        events = (t[WAVEDATA_EVENT].array(library="np").astype(np.int64) if WAVEDATA_EVENT in t
                  else np.arange(len(keys), dtype=np.int64))
        header = {}
        for name in ("_runnum", "_beginTime", "_nuberOfX742Channels"):
            key = f"x/_runHeader/_runHeader.{name}"
            if key in t and t.num_entries:
                header[name.strip("_")] = int(t[key].array(library="np", entry_stop=1)[0])
        per_channel: dict[int, list[tuple[int, np.ndarray]]] = {}
        for start, data, offsets in _wavedata_baskets(path, t[WAVEDATA_VALUES]):
            for k in range(len(offsets) - 1):
                e = start + k
                if e >= len(keys):
                    break
                channels = np.asarray(keys[e], dtype=np.int64)
                vectors = _wavedata_entry(path, data, int(offsets[k]), int(offsets[k + 1]), channels.size,
                                          int(events[e]))
                for ch, v in zip(channels.tolist(), vectors, strict=True):
                    per_channel.setdefault(ch, []).append((e, v))
    if not per_channel:
        raise ReaderError(f"{path}: tree data holds no channel data")
    out: dict[int, RawChannel] = {}
    for ch, rows in sorted(per_channel.items()):
        n = rows[0][1].size
        bad = next((e for e, v in rows if v.size != n), None)
        if bad is not None:
            raise ReaderError(f"{path}: event {int(events[bad])}: channel {ch} holds "
                              f"{next(v.size for e, v in rows if e == bad)} samples, {n} in its first event")
        out[ch] = RawChannel(ch, np.stack([v for _, v in rows]), events[[e for e, _ in rows]], None)
    return RawFile(path, "wavedata", out, None, "not in the file", run=header)
