"""Headroom and the bracket of a capacity: how far the capacity a search found is from the declared peak.

A search claims capacity only from a step that passed (``max_users``) and knows the next step up did not
(``first_not_passing_users``): the true capacity lies between them. That bracket is the interval of every
figure computed from the capacity: headroom = capacity ÷ peak − 1 is computed at both ends, and a drop of
capacity between two releases is a regression only when even the least drop the two brackets allow is
beyond the tolerance.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loadgate.gate.plan_settings import Peak


def capacity_figure(capacity: Mapping[str, Any], kind: str) -> tuple[float | None, float | None]:
    """(capacity, the upper end of its bracket) in users (``kind`` users) or req/s (``kind`` rate).

    For a rate, the throughput of the highest passing step and of the first step that did not pass
    (the larger of the two: an overloaded step may carry less). The upper end is None when no step above
    the capacity failed (a search that stopped at ``--max-users``: "at least"). A search over arrival rate
    (``quantity`` rate) gives its rates: the highest passing and the first not passing; no user count.
    """
    if capacity.get("quantity") == "rate":  # a search over arrival rate: the rate it found, in iterations/s
        if kind == "users":
            return None, None
        lo, hi = capacity.get("max_rate"), capacity.get("first_not_passing_rate")
        return (None if lo is None else float(lo)), (None if hi is None else float(hi))
    lo = capacity.get("max_users")
    hi = capacity.get("first_not_passing_users")
    if kind == "users":
        return (None if lo is None else float(lo)), (None if hi is None else float(hi))
    steps = {s.get("users"): s for s in capacity.get("steps") or () if isinstance(s, Mapping)}
    at_lo = capacity.get("throughput_at_max")
    at_hi = (steps.get(hi) or {}).get("throughput") if hi is not None else None
    if at_lo is None:
        return None, None
    return float(at_lo), (None if at_hi is None else max(float(at_lo), float(at_hi)))


def ratio_over(value: float, base: float) -> float:
    """``value ÷ base − 1`` computed as (value − base) ÷ base: exact for whole numbers, so a capacity of
    120 over a peak of 100 is 0.2 exactly (120 / 100 − 1 is 0.19999999999999996, below a level of 20%)."""
    return (value - base) / base


def headroom(capacity: Mapping[str, Any], peak: Peak) -> tuple[float | None, tuple[float, float] | None]:
    """(headroom at the claimed capacity, its interval from the bracketing steps or None)."""
    lo, hi = capacity_figure(capacity, peak.kind)
    if lo is None:
        return None, None
    value = ratio_over(lo, peak.value)
    return value, (None if hi is None else (value, ratio_over(hi, peak.value)))


def drop_interval(base: Mapping[str, Any], now: Mapping[str, Any]) -> tuple[float, float] | None:
    """The relative drop of ``max_users`` from ``base`` to ``now`` at the ends of both brackets:
    (least drop, most drop); None when either end is unknown. Least: the base at its lowest (its passing
    step), this run at its highest (its first failing step); most: the other way round."""
    b_lo, b_hi = capacity_figure(base, "users")
    n_lo, n_hi = capacity_figure(now, "users")
    if b_lo is None or n_lo is None or n_hi is None or not b_lo:
        return None
    least = (b_lo - n_hi) / b_lo
    most = least if b_hi is None else (b_hi - n_lo) / b_hi
    return least, max(least, most)
