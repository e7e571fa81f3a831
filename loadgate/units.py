"""Parsing of durations ("30s", "5m", "1h30m", "90") used by flags and the ``load:`` block."""

from __future__ import annotations

import re

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | int | float) -> float:
    """Seconds from ``"90"``, ``"30s"``, ``"5m"``, ``"1h30m"``, ``"250ms"``; a bare number is seconds.

    Raises ValueError with the expected form; callers add where the value came from.
    """
    if isinstance(text, bool):
        raise ValueError(f"expected a duration like 30s, 5m or 1h30m, got {text!r}")
    if isinstance(text, (int, float)):
        if text < 0:
            raise ValueError(f"expected a duration >= 0, got {text!r}")
        return float(text)
    s = str(text).strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise ValueError(f"expected a duration like 30s, 5m or 1h30m, got {text!r}")
    return total


def format_duration(seconds: float) -> str:
    """Short human form: 75 -> '1m15s', 0.5 -> '0.5s'."""
    if seconds < 60:
        return f"{seconds:g}s"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    out = (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{s}s" if s else "")
    return out or "0s"


_RATE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|m|h|min|sec|second|minute|hour))?\s*$")
_RATE_PER = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0}


def parse_rate(text: str | int | float) -> float:
    """Per second from ``"200/s"``, ``"12000/m"``, ``"3600/h"`` or a bare number (per second).

    Raises ValueError with the expected form; callers add where the value came from.
    """
    if isinstance(text, bool):
        raise ValueError(f"expected a rate like 200/s or 12000/m, got {text!r}")
    if isinstance(text, (int, float)):
        if text < 0:
            raise ValueError(f"expected a rate >= 0, got {text!r}")
        return float(text)
    m = _RATE_RE.match(str(text).lower())
    if not m:
        raise ValueError(f"expected a rate like 200/s or 12000/m, got {text!r}")
    return float(m.group(1)) / _RATE_PER[m.group(2) or "s"]
