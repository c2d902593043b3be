"""Beam-test layouts (sweep.physics.layouts) and what sweep makes of them (sweep.physics.beamtest,
`sweep data inspect`, `sweep data import`): small files of each layout written here with known
pulses, read back sample by sample, time by time, with the polarity, encoding and channel map
decided as they should be; and bad files refused with the file and the event, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sweep.cli import main
from sweep.physics import layouts
from sweep.physics.beamtest import import_files, inspect, load_channel_map, read_dataset
from sweep.physics.readers import ReaderError

#: the known pulses: at PULSE_NS after the trigger, AMPLITUDE_MV high, rise and fall in ns
PULSE_NS, AMPLITUDE_MV, RISE, FALL = 120.0, 40.0, 1.0, 6.0


def pulse_mv(t_ns: np.ndarray, at: float, amplitude: float = AMPLITUDE_MV) -> np.ndarray:
    """A drift-tube-like pulse (difference of exponentials, peak ``amplitude``) starting at ``at``."""
    x = np.clip(np.asarray(t_ns) - at, 0, None)
    shape = np.exp(-x / FALL) - np.exp(-x / RISE)
    peak = (FALL / RISE) ** (RISE / (RISE - FALL)) * (1 - RISE / FALL)  # the shape's maximum
    return amplitude * shape / peak


def _cell_times(widths: np.ndarray, tcell: int) -> np.ndarray:
    """The DRS4 manual's time of each cell read out from trigger cell ``tcell`` (pydrs4's form)."""
    return np.r_[0.0, np.cumsum(np.roll(widths, -tcell))[:-1]]


def drs4_file(path: Path, n_events: int = 6, seed: int = 1, negative: bool = True) -> dict:
    """A DRS4 file of channels 1 and 2 with non-uniform cells (mean 0.5 ns): channel 1 holds one
    pulse per event at a known time, channel 2 the same pulse 30 ns later; codes = volts around a
    pedestal of −2 mV. Returns the truth."""
    rng = np.random.default_rng(seed)
    widths = {c: (w := rng.uniform(0.35, 0.65, 1024)) * (0.5 / w.mean()) for c in (1, 2)}
    tcells = rng.integers(0, 1024, n_events)
    at = rng.uniform(80, 300, n_events)
    sign = -1 if negative else 1
    codes = {c: np.empty((n_events, 1024), np.uint16) for c in (1, 2)}
    for e, tc in enumerate(tcells):
        ref_cell = (1024 - tc) % 1024
        t1 = _cell_times(widths[1], tc)
        for c, delay in ((1, 0.0), (2, 30.0)):
            t = _cell_times(widths[c], tc)
            t += t1[ref_cell] - t[ref_cell]  # aligned on channel 1, as the manual's reader does
            mv = -2.0 + sign * pulse_mv(t, at[e] + delay) + rng.normal(0, 0.3, 1024)
            codes[c][e] = np.clip(np.round((mv / 1000 + 0.5) * 65536), 0, 65535)
    layouts.write_drs4(path, codes, widths, tcells)
    return {"at": at, "widths": widths, "tcells": tcells}


def test_a_drs4_file_reads_back_its_pulses_on_a_uniform_grid_with_times_aligned_across_channels(tmp_path):
    path = tmp_path / "run12.dat"
    truth = drs4_file(path)
    [run] = inspect([path])
    assert run.layout == "drs4" and run.dt_ns == pytest.approx(0.5, rel=1e-6)
    assert "time calibration" in run.dt_source and "resampled" in run.notes[0]
    assert sorted(run.channels) == [1, 2]
    grid = 0.5 * np.arange(1024)
    for ch, delay in ((1, 0.0), (2, 30.0)):
        c = run.channels[ch]
        assert c.polarity == "negative" and c.polarity_source.startswith("auto")
        assert c.encoding == "offset16" and c.saturated_events == 0 and not c.flags()
        assert list(c.events) == list(range(1, 7))  # the events' serials
        assert np.median(c.pedestal_mv) == pytest.approx(-2.0, abs=0.1) and c.noise_mv == pytest.approx(0.3, abs=0.1)
        for e in range(6):  # flipped, on a zero pedestal: the pulse where it was, to the interpolation's
            # error on its 1 ns rise (a cell up to 0.65 ns wide): the best time shift is within 0.1 ns
            shifts = np.arange(-2, 2, 0.02)
            errors = [np.max(np.abs(c.waveforms_mv[e] - pulse_mv(grid + s, truth["at"][e] + delay))) for s in shifts]
            best = int(np.argmin(errors))
            assert abs(shifts[best]) < 0.1 and errors[best] < 4.0, (ch, e, shifts[best], errors[best])


def test_a_drs4_file_cut_while_written_or_of_another_layout_is_refused_with_its_event(tmp_path, capsys):
    path = tmp_path / "cut.dat"
    drs4_file(path, n_events=3)
    data = path.read_bytes()
    path.write_bytes(data[:-100])
    with pytest.raises(ReaderError, match=r"cut\.dat: event 2 \(counting from 0\) is truncated"):
        inspect([path])
    # a file whose events are not of the size its TIME block declares: the first bad event is named
    bad = bytearray(data)
    start = 8 + 4 + 2 * (4 + 4096)
    event = 24 + 8 + 2 * (4 + 4 + 2048)  # header, board and trigger cell, two channels
    bad[start + event:start + event + 4] = b"XXXX"  # the second event's EHDR
    path.write_bytes(bytes(bad))
    with pytest.raises(ReaderError, match="event 1 does not start with EHDR"):
        inspect([path])
    path.write_bytes(b"DRS8" + data[4:])
    assert main(["--root", str(tmp_path), "data", "inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert "DRS8 is WaveDAQ's layout" in err and "Traceback" not in err


def test_a_sampling_rate_given_against_the_file_s_is_an_error_and_one_the_file_lacks_is_required(tmp_path):
    path = tmp_path / "run.dat"
    drs4_file(path, n_events=2)
    with pytest.raises(ReaderError, match=r"samples every 0\.5 ns \(2 GS/s.*but 1 ns was given"):
        inspect([path], sampling_rate=1.0)
    [run] = inspect([path], sampling_rate=2.0)
    assert run.dt_ns == pytest.approx(0.5)


# ------------------------------------------------------------------ oscilloscopes


@pytest.mark.parametrize("writer", [layouts.write_lecroy, layouts.write_tektronix])
def test_oscilloscope_exports_read_back_per_channel_and_event(tmp_path, writer):
    dt_s, n = 4e-10, 2000
    t = np.arange(n) * dt_s * 1e9
    at = {0: 150.0, 1: 220.0, 2: 410.0}
    for event, when in at.items():
        writer(tmp_path, 1, event, (5.0 + pulse_mv(t, when)) / 1000, dt_s)  # positive, 5 mV pedestal
        writer(tmp_path, 3, event, -pulse_mv(t, when + 10, 300) / 1000, dt_s)  # a negative trigger
    [run] = inspect([tmp_path])
    assert run.layout == "scope" and run.dt_ns == pytest.approx(0.4, rel=1e-6)
    assert run.dt_source == ("the exports' Sample Interval" if writer is layouts.write_tektronix
                             else "the exports' time column")
    assert sorted(run.channels) == [1, 3] and list(run.channels[1].events) == [0, 1, 2]
    tube, trigger = run.channels[1], run.channels[3]
    assert tube.polarity == "positive" and trigger.polarity == "negative" and tube.encoding == "volts"
    assert np.median(tube.pedestal_mv) == pytest.approx(5.0, abs=1e-3)
    for e, when in at.items():
        assert np.max(np.abs(tube.waveforms_mv[e] - pulse_mv(t, when))) < 1e-3
    # a map beside the data: channel 3 is the trigger, not imported
    (tmp_path / "channels.yaml").write_text("channels:\n  1: {tube: 1.5}\n  3: trigger\n")
    out = tmp_path / "tb.npz"
    summary = import_files([tmp_path], out)
    assert summary["waveforms"] == 3
    data = read_dataset(out)
    assert list(data["channel"]) == [1, 1, 1] and list(data["event"]) == [0, 1, 2]
    assert np.allclose(data["tube_cm"], 1.5) and float(data["dt_ns"]) == pytest.approx(0.4)
    assert data["meta"]["files"][0]["channels"]["3"]["role"] == "trigger"


def test_oscilloscope_exports_that_do_not_fit_together_are_refused(tmp_path):
    dt_s = 4e-10
    wave = np.zeros(100)
    layouts.write_lecroy(tmp_path, 1, 0, wave, dt_s)
    layouts.write_lecroy(tmp_path, 1, 1, np.zeros(120), dt_s)
    with pytest.raises(ReaderError, match=r"C1--test--00001\.txt: 120 samples, event 0's 100"):
        inspect([tmp_path])
    (tmp_path / "C1--test--00001.txt").unlink()
    layouts.write_lecroy(tmp_path, 2, 1, wave, dt_s)
    with pytest.raises(ReaderError, match="channel 1: no export of event 1"):
        inspect([tmp_path])
    (tmp_path / "C2--test--00001.txt").unlink()
    layouts.write_lecroy(tmp_path, 2, 0, wave, 5e-10)
    with pytest.raises(ReaderError, match="sampled every 0.5 ns.*every 0.4 ns: one run, one rate"):
        inspect([tmp_path])
    (tmp_path / "C2--test--00000.txt").unlink()
    (tmp_path / "C1--test--00000.txt").write_text("LECROY,1,Waveform\nTime,Ampl\n0.0,1.0\n1e-9,oops\n")
    with pytest.raises(ReaderError, match=r"C1--test--00000\.txt:4: expected a time and an amplitude, got '1e-9,oops'"):
        inspect([tmp_path])
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ReaderError, match="this name says neither"):
        inspect([tmp_path])


# ------------------------------------------------------------------ IHEP's ROOT files


def ihep_file(path: Path, waveforms: np.ndarray) -> Path:
    import awkward as ak
    import uproot

    with uproot.recreate(path) as f:
        f["signal"] = {"wf_i": ak.Array([list(map(float, w)) for w in waveforms])}
    return path


def test_an_ihep_file_needs_its_rate_and_unit_and_has_negative_pulses(tmp_path):
    t = np.arange(800) * 0.5
    rng = np.random.default_rng(4)
    at = rng.uniform(50, 300, 5)
    wf = np.stack([-pulse_mv(t, a) + rng.normal(0, 0.5, t.size) for a in at])
    path = ihep_file(tmp_path / "11_ch5_sig.root", wf)
    with pytest.raises(ReaderError, match="does not say its sampling rate: give it with --sampling-rate"):
        inspect([path])
    with pytest.raises(ReaderError, match="not ADC codes.*give --encoding volts or mV"):
        inspect([path], sampling_rate=2)
    [run] = inspect([path], sampling_rate=2, encoding="mV")
    c = run.channels[0]
    assert run.layout == "ihep" and run.dt_source == "given" and c.polarity == "negative"
    assert c.encoding_source == "given" and np.allclose(c.waveforms_mv + c.pedestal_mv[:, None] * 0,
                                                        -(wf - c.pedestal_mv[:, None]), atol=1e-4)
    # given polarity wins, and says what auto would have said
    [run] = inspect([path], sampling_rate=2, encoding="mV", polarity="positive")
    assert run.channels[0].polarity == "positive" and "auto would say" in run.channels[0].polarity_source
    # whole codes: x742 (12 bits) or offset16 detected from them; saturation flagged
    codes = np.clip(np.round(2000 - wf / (1000 / 4096)), 0, 4095)
    codes[2, 100] = 4095
    [run] = inspect([ihep_file(tmp_path / "codes.root", codes)], sampling_rate=2)
    c = run.channels[0]
    assert c.encoding == "x742" and "every code of the file ≤ 4095" in c.encoding_source and c.saturated_events == 1
    assert c.flags() == ["saturated in 1 of 5 events"]
    [run] = inspect([ihep_file(tmp_path / "codes16.root", codes * 16)], sampling_rate=2)
    assert run.channels[0].encoding == "offset16"
    with pytest.raises(ReaderError, match="--encoding x742 takes whole codes 0–4095, the file holds 65520"):
        inspect([tmp_path / "codes16.root"], sampling_rate=2, encoding="x742")


def test_root_files_of_no_beam_test_layout_or_ragged_are_refused(tmp_path):
    import uproot

    with uproot.recreate(tmp_path / "other.root") as f:
        f["events"] = {"x": np.arange(3.0)}
    with pytest.raises(ReaderError, match=r"other\.root: a ROOT file of none of the beam-test layouts: trees \['event"):
        inspect([tmp_path / "other.root"])
    path = ihep_file(tmp_path / "ragged.root", [np.zeros(10), np.zeros(10), np.zeros(9)])
    with pytest.raises(ReaderError, match="entry 2 of signal/wf_i has 9 samples, entry 0 10"):
        inspect([path], sampling_rate=2)
    (tmp_path / "junk.dat").write_bytes(b"\x00" * 64)
    with pytest.raises(ReaderError, match="not a beam-test file sweep knows"):
        inspect([tmp_path / "junk.dat"])


# ------------------------------------------------------------------ the channel map and the import


@pytest.mark.parametrize("text, message", [
    ("channels: {1: {tube: 0}}\n", r":1:\d+: channels\.1\.tube: the tube's size in cm"),
    ("channels:\n  1: {tube: 1.5}\n  2: scope\n", r":3:6: channels\.2: expected \{tube: SIZE_CM\}, trigger or ignore"),
    ("channels:\n  one: trigger\n", r":2:\d+: channels\.one: a channel is a whole number"),
    ("tubes: {1: trigger}\n", r":1:1: the map: expected one key, channels"),
    ("channels: [1\n", r":\d+: not YAML"),
])
def test_a_channel_map_s_mistakes_name_line_and_key(tmp_path, text, message):
    path = tmp_path / "channels.yaml"
    path.write_text(text)
    with pytest.raises(ReaderError, match=message):
        load_channel_map(path)


def test_import_writes_the_tubes_whole_or_nothing_and_says_what_it_decided(tmp_path, capsys):
    path = tmp_path / "run.dat"
    drs4_file(path, n_events=4)
    out = tmp_path / "data" / "tb.npz"
    # a map naming a channel the file lacks, and a tube of noise only: refused, nothing written
    (tmp_path / "channels.yaml").write_text("channels:\n  1: {tube: 1.0}\n  4: trigger\n")
    assert main(["--root", str(tmp_path), "data", "import", str(path), "--out", str(out)]) == 2
    assert "names channel(s) [4] the file does not hold (it holds [1, 2])" in capsys.readouterr().err
    assert not out.exists()
    (tmp_path / "channels.yaml").write_text("channels:\n  1: {tube: 1.0}\n  2: {tube: 2.0}\n")
    assert main(["--root", str(tmp_path), "data", "import", str(path), "--out", str(out), "--sampling-rate", "2"]) == 0
    printed = capsys.readouterr().out
    assert "polarity negative (auto:" in printed and "encoding offset16 (the layout's)" in printed
    assert f"{out}: 8 waveforms of 1024 samples every 0.5000 ns" in printed
    data = read_dataset(out)
    assert list(data["channel"]) == [1] * 4 + [2] * 4 and list(data["tube_cm"]) == [1.0] * 4 + [2.0] * 4
    assert data["waveforms"].dtype == np.float32 and np.all(data["waveforms"].max(axis=1) > 30)
    meta = data["meta"]
    assert meta["kind"] == "sweep-beamtest" and meta["files"][0]["channels"]["1"]["polarity"] == "negative"
    assert "resampled" in meta["files"][0]["notes"][0]
    # not an npz, and a dataset of another kind
    assert main(["--root", str(tmp_path), "data", "import", str(path), "--out", str(tmp_path / "tb.h5")]) == 2
    assert "is an .npz file" in capsys.readouterr().err
    np.savez(tmp_path / "other.npz", meta=np.array(json.dumps({"kind": "sweep-waveforms"})))
    with pytest.raises(ReaderError, match="a 'sweep-waveforms' file, not a beam-test dataset"):
        read_dataset(tmp_path / "other.npz")


# ------------------------------------------------------------------ WaveData (Bari/Lecce, CERN H8)

CONVERTER_FILE = Path(__file__).parent / "data" / "wavedata-converter-run07.root"


def converter_wave(event: int, channel: int) -> np.ndarray:
    """The codes tests/data/wavedata-converter-run07.root holds (its raw input, made up to check every
    sample): a ramp per event and channel."""
    return ((channel * 4096 + event * 7 + np.arange(1024) * 3) % 65536).astype(np.uint16)


def test_a_file_written_by_the_groups_own_converter_reads_back_every_code(tmp_path):
    # the converter built from bdanzi/drifttubes_offline_analysis's sources wrote it (20 events of
    # channels 0-3 and 12-15, map order 12, 3, 15, 2, …; its last baskets inside the tree object)
    raw = layouts.read_wavedata(CONVERTER_FILE)
    assert raw.layout == "wavedata" and raw.dt_ns is None and raw.run["runnum"] == 91
    assert sorted(raw.channels) == [0, 1, 2, 3, 12, 13, 14, 15]
    for ch, c in raw.channels.items():
        assert list(c.events) == list(range(20)) and c.encoding is None
        for e in range(20):
            assert np.array_equal(c.samples[e], converter_wave(e, ch)), (ch, e)
    [run] = inspect([CONVERTER_FILE], sampling_rate=1.2)
    assert run.dt_source == "given" and run.dt_ns == pytest.approx(1 / 1.2)
    # one digitizer, one encoding: codes past 12 bits on channel 15 make every channel offset16
    assert {c.encoding for c in run.channels.values()} == {"offset16"}


def wavedata_file(path: Path, codes: np.ndarray, channels: list[int], events: list[int]) -> Path:
    """A WaveData file written by PyROOT (tests/wavedata_writer.py) in a process of its own."""
    import subprocess
    import sys

    import importlib.util

    if importlib.util.find_spec("ROOT") is None:  # the `root` wheel of the test extras; imported by the writer
        pytest.fail("PyROOT (the `root` wheel: pip install root, or bash scripts/setup.sh) is needed to write a "
                    "WaveData file; it is not installed", pytrace=False)
    data = path.with_suffix(".npz")
    np.savez(data, codes=codes, channels=np.asarray(channels), events=np.asarray(events))
    done = subprocess.run([sys.executable, str(Path(__file__).parent / "wavedata_writer.py"), str(path), str(data)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and path.is_file(), done.stdout + done.stderr
    return path


def test_a_wavedata_file_written_by_pyroot_is_read_with_its_map_and_flipped_pulses(tmp_path):
    rng = np.random.default_rng(9)
    t = np.arange(1024) / 1.2  # 1.2 GS/s
    at = rng.uniform(100, 400, 8)
    mv_per_code = 1000 / 4096
    codes = np.empty((8, 3, 1024), np.uint16)
    for e in range(8):  # x742 codes around 3000, the tubes' pulses negative, a NIM-like trigger
        for c, size in enumerate((1.0, 2.0)):
            mv = -pulse_mv(t, at[e] + 20 * size, 30 * size) + rng.normal(0, 0.5, t.size)
            codes[e, c] = np.round(3000 + mv / mv_per_code)
        codes[e, 2] = np.where((t > 50) & (t < 80), 1000, 3000)
    path = wavedata_file(tmp_path / "run_131.root", codes, [0, 1, 12], list(range(100, 108)))
    (tmp_path / "channels.yaml").write_text("channels:\n  0: {tube: 1.0}\n  1: {tube: 2.0}\n  12: trigger\n")
    assert main(["--root", str(tmp_path), "data", "inspect", str(path)]) == 2  # no sampling rate in the file
    [run] = inspect([path], sampling_rate=1.2)
    assert run.layout == "wavedata" and sorted(run.channels) == [0, 1, 12]
    for ch, size in ((0, 1.0), (1, 2.0)):
        c = run.channels[ch]
        assert c.role.describe() == f"tube {size:g} cm" and c.polarity == "negative" and c.encoding == "x742"
        assert list(c.events) == list(range(100, 108))
        assert np.median(c.pedestal_mv) == pytest.approx(3000 * mv_per_code, abs=0.5)
        for e in range(8):  # the codes' rounding (0.24 mV) and the noise over the pedestal's estimate
            expected = pulse_mv(t, at[e] + 20 * size, 30 * size)
            assert np.max(np.abs(c.waveforms_mv[e] - expected)) < 2.5, (ch, e)
    assert run.channels[12].role.role == "trigger" and run.channels[12].polarity == "negative"
    out = tmp_path / "tb.npz"
    assert import_files([path], out, sampling_rate=1.2)["waveforms"] == 16
    data = read_dataset(out)
    assert sorted(set(data["channel"])) == [0, 1] and float(data["dt_ns"]) == pytest.approx(1 / 1.2)


def test_a_wavedata_file_damaged_or_unsplit_is_refused_with_its_event(tmp_path):
    data = bytearray(CONVERTER_FILE.read_bytes())
    (tmp_path / "cut.root").write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(ReaderError, match=r"cut\.root"):
        inspect([tmp_path / "cut.root"], sampling_rate=1.2)
    import uproot

    with uproot.recreate(tmp_path / "flat.root") as f:  # a tree data without the converter's split map
        f["data"] = {"x": np.arange(3, dtype=np.int32)}
    with pytest.raises(ReaderError, match="was not written split"):
        layouts.read_wavedata(tmp_path / "flat.root")
