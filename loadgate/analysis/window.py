"""The analysis window: an interval of Unix seconds, and the ``START:END`` form users give it."""

from __future__ import annotations

import math
from dataclasses import dataclass

from loadgate.units import parse_duration

_WINDOW_FORM = (
    "START:END, each side an offset from the first sample (30s, 2m, 90) or a Unix time, "
    "either side may be empty (e.g. 30s:, :5m, 1764000000:1764000300)"
)


@dataclass(frozen=True)
class Window:
    """An analysis window in Unix seconds; both ends inclusive."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        """Length of the window in seconds."""
        return self.end - self.start


def parse_window(text: str, first: float, last: float) -> Window:
    """Window from ``"START:END"``; offsets count from ``first``; an empty side means first or last."""
    parts = text.split(":")
    if len(parts) != 2:
        raise ValueError(f"expected a window as {_WINDOW_FORM}; got {text!r}")

    def side(part: str, default: float) -> float:
        part = part.strip()
        if not part:
            return default
        try:
            if math.isfinite(float(part)) and float(part) > 1e9:  # a Unix time, not an offset
                return float(part)
        except ValueError:
            pass
        try:
            return first + parse_duration(part)
        except ValueError:
            raise ValueError(f"expected a window as {_WINDOW_FORM}; got {text!r}") from None

    start, end = side(parts[0], first), side(parts[1], last)
    if end < start:
        raise ValueError(f"window {text!r} ends before it starts ({end:.3f} < {start:.3f}); expected {_WINDOW_FORM}")
    return Window(float(start), float(end))
