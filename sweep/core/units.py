"""Memory and duration values as users write them in grid files."""

from __future__ import annotations

import math
import re

_MEMORY_UNITS_MB = {
    "": 1.0, "m": 1.0, "mb": 1.0, "mib": 1.0,
    "k": 1 / 1024, "kb": 1 / 1024, "kib": 1 / 1024,
    "g": 1024.0, "gb": 1024.0, "gib": 1024.0,
    "t": 1024.0**2, "tb": 1024.0**2, "tib": 1024.0**2,
}
_MEMORY_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$")
_DURATION_RE = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*d)?\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*"
                          r"(?:(\d+(?:\.\d+)?)\s*m(?:in)?)?\s*(?:(\d+(?:\.\d+)?)\s*s)?\s*$")

MEMORY_HELP = "a size in MB (integer) or with a unit, e.g. 5000MB, 5 GB, 512MiB"
DURATION_HELP = "seconds (integer) or a duration such as 2h, 90m, 1h30m, 45s"


def parse_memory_mb(value: object) -> int:
    """Megabytes (HTCondor's unit, 1 MB = 1024 KiB as HTCondor counts it) of a size as written.

    Args:
        value: an integer (MB, as in HTCondor's request_memory) or text with a unit (5 GB, 512MiB).

    Returns:
        Whole megabytes, at least 1.

    Raises:
        ValueError: with the expected form, for anything else (also bools, NaN, absurd sizes).
    """
    if isinstance(value, bool):
        raise ValueError(f"expected {MEMORY_HELP}, got {value!r}")
    if isinstance(value, (int, float)):
        mb = float(value)
    elif isinstance(value, str):
        m = _MEMORY_RE.match(value)
        unit = m.group(2).lower() if m else None
        if not m or unit not in _MEMORY_UNITS_MB:
            raise ValueError(f"expected {MEMORY_HELP}, got {value!r}")
        mb = float(m.group(1)) * _MEMORY_UNITS_MB[unit]
    else:
        raise ValueError(f"expected {MEMORY_HELP}, got {type(value).__name__}")
    if not math.isfinite(mb) or mb > 1 << 40:
        raise ValueError(f"expected {MEMORY_HELP} (a finite size), got {value!r}")
    if mb < 1:
        raise ValueError(f"expected at least 1 MB, got {value!r}")
    return int(round(mb))


def parse_duration_s(value: object) -> int:
    """Whole seconds of a duration as written: an integer (seconds) or text such as 2h, 1h30m.

    Raises:
        ValueError: with the expected form, for anything else or beyond 10 years.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected {DURATION_HELP}, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            seconds = float(text)
        else:
            m = _DURATION_RE.match(text)
            if not m or not any(m.groups()):
                raise ValueError(f"expected {DURATION_HELP}, got {value!r}")
            d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
            seconds = d * 86400 + h * 3600 + mi * 60 + s
    else:
        raise ValueError(f"expected {DURATION_HELP}, got {type(value).__name__}")
    if not math.isfinite(seconds) or seconds > 10 * 365 * 86400:
        raise ValueError(f"expected {DURATION_HELP} (at most 10 years), got {value!r}")
    if seconds < 1:
        raise ValueError(f"expected at least 1 second, got {value!r}")
    return int(round(seconds))


def format_duration(seconds: float | None) -> str:
    """`seconds` written as 1h02m03s / 4m05s / 6s; "-" for None."""
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h{m:02d}m{s:02d}s"
    if m:
        return f"{m}m{s:02d}s"
    return f"{s}s"
