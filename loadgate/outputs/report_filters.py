"""The report's Jinja2 filters: times, numbers, rates, durations and changes as the report prints them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping


def utc(t: float | None, with_date: bool = True) -> str:
    if t is None:
        return "-"
    return dt.datetime.fromtimestamp(float(t), dt.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S UTC" if with_date else "%H:%M:%S"
    )


def num(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def pct(v: float | None) -> str:
    if v is None:
        return "-"
    if v == 0:
        return "0%"
    return f"{v * 100:.3g}%" if abs(v * 100) >= 0.001 else ("-" if v < 0 else "") + "<0.001%"


def dur(seconds: float | None) -> str:
    """``15.0 s``, ``2 min 05 s``, ``1 h 02 min``."""
    if seconds is None:
        return "-"
    s = float(seconds)
    if s < 120:
        return f"{s:.1f} s"
    m, sec = divmod(int(round(s)), 60)
    return f"{m} min {sec:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def clock(seconds: float) -> str:
    """Elapsed time as ``m:ss`` or ``h:mm:ss``, as on the charts' time axis."""
    t = int(round(max(0.0, float(seconds))))
    h, rest = divmod(t, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def value(t: Mapping) -> str:
    """A threshold's measured value in its unit."""
    v = t.get("value")
    if v is None:
        return "-"
    if t.get("unit") == "ratio":
        return ("+" if t.get("regression") and v > 0 else "") + pct(v)
    if t.get("unit") == "%":
        return f"{v:,.1f}%"
    if t.get("unit") == "iterations":  # dropped_iterations: a whole count
        return f"{v:,.0f} iterations"
    return f"{v:,.1f} {t.get('unit')}".rstrip()


def change(r: Mapping, x: float | None = None) -> str:
    """A comparison row's change: ``+12.3%`` (relative, percentiles) or ``+0.40pp`` (absolute, error rate)."""
    x = r.get("change") if x is None else x
    if not isinstance(x, (int, float)) or x != x or x in (float("inf"), float("-inf")):
        return "-"
    absolute = r.get("change_kind") == "absolute"
    shown = round(x * 100, 2 if absolute else 1) + 0.0  # + 0.0: a change that rounds to zero is +0.0, not -0.0
    return f"{shown:+.2f}pp" if absolute else f"{shown:+.1f}%"


def cmp_value(r: Mapping, key: str) -> str:
    v = r.get(key)
    if not isinstance(v, (int, float)):
        return "-"
    return f"{v * 100:.2f}%" if r.get("metric") == "error_rate" else f"{v:,.1f} ms"


def p_text(v: float | None) -> str:
    return "-" if not isinstance(v, (int, float)) else "<0.001" if v < 0.001 else f"{v:.3f}"


FILTERS = {
    "utc": utc,
    "num": num,
    "pct": pct,
    "value": value,
    "dur": dur,
    "clock": clock,
    "change": change,
    "cmp_value": cmp_value,
    "p": p_text,
}
