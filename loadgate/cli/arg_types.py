"""The argparse types of ``loadgate``'s flags: each checks one kind of value and says what it expected."""

from __future__ import annotations

import argparse
from typing import Callable

from loadgate.units import parse_duration, parse_rate


def duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def positive(convert: Callable[[str], float], what: str) -> Callable[[str], float]:
    """An argparse type: ``convert(text)`` that must be > 0, else 'expected WHAT > 0, got …'."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or value <= 0:
            raise argparse.ArgumentTypeError(f"expected {what} > 0, got {text!r}")
        return value

    return parse


positive_int = positive(int, "a whole number")


def rate(text: str) -> float:
    """An argparse type: iterations per second from ``200/s``, ``12000/m``, ``3600/h`` or a bare number."""
    try:
        value = parse_rate(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a rate of iterations > 0; give one like 200/s, 12000/m or 3600/h"
        )
    return value


def pool(text: str) -> int:
    """An argparse type: the open model's pool of users."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a pool of users; give a whole number of users > 0, "
            "like 2000 (enough for the rate times an iteration's duration)"
        )
    return value


positive_float = positive(float, "a number")


def date(text: str) -> float:
    """``2026-01-15`` (midnight UTC) or an ISO time (UTC unless it says otherwise) -> Unix seconds."""
    import datetime as dt

    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date like 2026-01-15 or 2026-01-15T12:00:00Z, got {text!r}"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)).timestamp()


def tolerance(text: str) -> float:
    from loadgate.history.compare import parse_tolerance

    try:
        return parse_tolerance(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def outcomes(text: str) -> tuple[str, ...]:
    from loadgate.gate.notify_spec import parse_on

    try:
        return parse_on(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            f"{e}; expected a comma-separated list of fail, warn, inconclusive, pass, recovered, regressed, resources"
        ) from None
