"""The ``capacity:`` block of a threshold file: the declared peak, the load's growth and one replica's limits.

    capacity:
      peak: {users: 1000}            # or {rate: 1200/s}: the load the requirement must carry
      growth: 8%/month               # how fast that peak grows (per day, week, month or year, compounding)
      limits: {cpu: 500m, memory: 512Mi}   # one replica's Kubernetes resource limits (scaling estimate)

``metric: headroom`` (capacity ÷ peak − 1) needs ``peak``. Every mistake names file:line and key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from loadgate.analysis.plan import DAYS_PER_MONTH
from loadgate.gate.conditions import parse_condition
from loadgate.gate.yaml_lines import FileErrors, LineMap, is_number, quote

KEYS = ("peak", "growth", "limits")
_PERIOD_DAYS = {"day": 1.0, "week": 7.0, "month": DAYS_PER_MONTH, "year": 365.2425}
_GROWTH_RE = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*%\s*/\s*(day|week|month|year)\s*$")
_MEMORY = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}
_QUANTITY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


@dataclass(frozen=True)
class Peak:
    """The declared peak load: ``users`` (concurrent users) or ``rate`` (requests per second)."""

    kind: str  # users | rate
    value: float
    text: str  # as written, e.g. "1000 users" or "1200/s"

    @property
    def unit(self) -> str:
        return "users" if self.kind == "users" else "req/s"


@dataclass(frozen=True)
class CapacitySettings:
    peak: Peak | None = None
    growth: float | None = None  # the peak's growth per month (0.08 = 8%), compounding
    growth_text: str | None = None
    cpu_limit: float | None = None  # cores per replica
    memory_limit: float | None = None  # bytes per replica
    limits_text: str | None = None
    source: str = ""  # file:line of the block


def parse(f: FileErrors, raw: Any, line: int) -> CapacitySettings | None:
    """The ``capacity:`` block (None when absent)."""
    if raw is None:
        return None
    if not isinstance(raw, LineMap):
        raise f.error(line, "capacity", f"{quote(raw)} is not a mapping", "keys " + ", ".join(KEYS))
    f.check_keys(raw, "capacity", KEYS)
    lines = raw.key_lines
    peak = _peak(f, raw["peak"], lines["peak"]) if "peak" in raw else None
    growth = _growth(f, raw["growth"], lines["growth"]) if "growth" in raw else None
    cpu, memory, limits_text = _limits(f, raw["limits"], lines["limits"]) if "limits" in raw else (None, None, None)
    return CapacitySettings(
        peak,
        growth,
        str(raw["growth"]).strip() if growth is not None else None,
        cpu,
        memory,
        limits_text,
        f"{f.path}:{line}",
    )


def _peak(f: FileErrors, raw: Any, line: int) -> Peak:
    expected = "one of {users: 1000} or {rate: 1200/s}"
    if not isinstance(raw, LineMap) or len(raw) != 1 or next(iter(raw)) not in ("users", "rate"):
        raise f.error(line, "capacity.peak", f"{quote(raw)} is not a peak", expected)
    kind, value = next(iter(raw.items()))
    if kind == "users":
        if not is_number(value) or value <= 0 or int(value) != value:
            raise f.error(line, "capacity.peak.users", f"{quote(value)} is not a positive whole number", expected)
        return Peak("users", float(value), f"{int(value)} users")
    try:
        rate = parse_condition(f">{value}" if is_number(value) else f">{str(value).strip()}", "req/s", "rate")
    except ValueError as e:
        raise f.error(line, "capacity.peak.rate", str(e).replace("'>", "'"), "a rate like 1200/s") from None
    if rate.value <= 0:
        raise f.error(line, "capacity.peak.rate", f"{quote(value)} is not above zero", "a rate like 1200/s")
    return Peak("rate", rate.value, f"{rate.value:g}/s")


def _growth(f: FileErrors, raw: Any, line: int) -> float:
    m = _GROWTH_RE.match(str(raw)) if isinstance(raw, str) else None
    if not m or float(m.group(1)) <= -100:
        raise f.error(
            line,
            "capacity.growth",
            f"{quote(raw)} is not a growth rate",
            'a percentage per day, week, month or year, like "8%/month"',
        )
    per_period = float(m.group(1)) / 100
    monthly: float = (1 + per_period) ** (DAYS_PER_MONTH / _PERIOD_DAYS[m.group(2)]) - 1
    return monthly


def _limits(f: FileErrors, raw: Any, line: int) -> tuple[float | None, float | None, str]:
    expected = "a mapping like {cpu: 500m, memory: 512Mi} (one replica's Kubernetes limits)"
    if not isinstance(raw, LineMap) or not raw:
        raise f.error(line, "capacity.limits", f"{quote(raw)} is not a mapping of limits", expected)
    f.check_keys(raw, "capacity.limits", ("cpu", "memory"))
    cpu = memory = None
    if "cpu" in raw:
        cpu = cpu_cores(raw["cpu"])
        if cpu is None:
            raise f.error(
                raw.key_lines["cpu"],
                "capacity.limits.cpu",
                f"{quote(raw['cpu'])} is not a CPU quantity",
                'cores like 2 or 0.5, or millicores like "500m"',
            )
    if "memory" in raw:
        memory = memory_bytes(raw["memory"])
        if memory is None:
            raise f.error(
                raw.key_lines["memory"],
                "capacity.limits.memory",
                f"{quote(raw['memory'])} is not a memory quantity",
                'bytes like "512Mi", "1Gi" or "2G"',
            )
    text = ", ".join(f"{k} {raw[k]}" for k in ("cpu", "memory") if k in raw)
    return cpu, memory, text


def cpu_cores(raw: Any) -> float | None:
    """Kubernetes CPU quantity -> cores: ``500m`` -> 0.5, ``2`` -> 2.0; None if not one (or not above 0)."""
    m = _QUANTITY_RE.match(str(raw)) if isinstance(raw, (str, int, float)) and not isinstance(raw, bool) else None
    if not m or m.group(2) not in ("", "m"):
        return None
    value = float(Decimal(m.group(1)) / (1000 if m.group(2) == "m" else 1))
    return value if value > 0 else None


def memory_bytes(raw: Any) -> float | None:
    """Kubernetes memory quantity -> bytes: ``512Mi`` -> 536870912; None if not one (or not above 0)."""
    m = _QUANTITY_RE.match(str(raw)) if isinstance(raw, (str, int, float)) and not isinstance(raw, bool) else None
    if not m or m.group(2).lower() not in _MEMORY:
        return None
    try:
        value = float(Decimal(m.group(1)) * _MEMORY[m.group(2).lower()])
    except InvalidOperation:
        return None
    return value if value > 0 else None


def check_headroom(f: FileErrors, settings: CapacitySettings | None, items: Any, thresholds: Any) -> None:
    """``metric: headroom`` needs ``capacity.peak`` in the same file (the threshold's line in the error)."""
    if settings is not None and settings.peak is not None:
        return
    for t, line in zip(thresholds, items.item_lines):
        if t.metric == "headroom":
            raise f.error(
                line,
                "thresholds",
                "metric headroom (capacity ÷ peak − 1) has no peak to divide by",
                "a capacity: block with peak: {users: N} or peak: {rate: N/s} in this file",
            )
