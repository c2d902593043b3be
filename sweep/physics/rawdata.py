"""What a beam-test file holds, as its reader hands it over: per channel, the events' samples
as stored (ADC codes, volts or mV), the sampling interval and where it came from, and what the
layout itself says about the encoding of the samples. No truth, no labels.

The readers (:mod:`sweep.physics.layouts`) fill these; :mod:`sweep.physics.beamtest` turns them
into mV with positive pulses on a zero baseline (the simulator's conventions), says how, and
writes the project's beam-test dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .readers import ReaderError

#: how a file's samples become mV: "x742" (CAEN V1742, 12-bit codes over 1 V: 1000/4096 mV per
#: code), "offset16" (DRS4 and files converted from it or from oscilloscopes: 16-bit codes,
#: V = code/65536 − 0.5 (+ the DRS4 range, V)), "volts", "mV"
ENCODINGS = ("x742", "offset16", "volts", "mV")
#: the largest code of each integer encoding (a sample there, or at 0, is saturated)
FULL_SCALE = {"x742": 4095, "offset16": 65535}


@dataclass
class RawChannel:
    """One channel of one file: its events' samples as stored.

    ``samples`` (events, n) are codes or amplitudes in the unit ``encoding`` says; ``encoding``
    is None where the layout does not fix it (then it is detected from the codes, or given).
    ``offset_v`` (events,) is a per-event offset in volts the layout adds (the DRS4 range), or None.
    """

    channel: int
    samples: np.ndarray
    events: np.ndarray  # (events,) int64, the file's event numbers
    encoding: str | None
    offset_v: np.ndarray | None = None

    @property
    def n_events(self) -> int:
        """The number of events."""
        return int(self.samples.shape[0])

    @property
    def n_samples(self) -> int:
        """Samples per event (0 for no event)."""
        return int(self.samples.shape[1]) if self.samples.ndim == 2 else 0


@dataclass
class RawFile:
    """A beam-test file: its layout, its channels, and its sampling interval with its source
    (``dt_ns`` None: the file does not say it; the user must)."""

    path: Path
    layout: str
    channels: dict[int, RawChannel]
    dt_ns: float | None
    dt_source: str
    notes: list[str] = field(default_factory=list)
    run: dict = field(default_factory=dict)  # what the file says about its run (serials, dates)


def check_samples(path: Path, channel: int, samples: np.ndarray, where: str) -> np.ndarray:
    """``samples`` as a 2-D array of finite numbers.

    Raises:
        ReaderError: a ragged, empty or non-finite channel, with the file, channel and event.
    """
    a = np.asarray(samples)
    if a.ndim != 2:
        raise ReaderError(f"{path}: channel {channel}: expected (events, samples), got shape {a.shape} ({where})")
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a)
        if bad.any():
            event = int(np.nonzero(bad.any(axis=1))[0][0])
            raise ReaderError(f"{path}: channel {channel}, event index {event}: a sample is not a finite number "
                              f"({where})")
    return a
