"""The open-model load shape of a threshold file's ``load:`` block: iterations started at a set rate.

    load:
      arrival:
        rate: 200/s              # iterations started per second (constant), or
        stages:                  # a ramp: the rate moves linearly to each target over its duration
          - {duration: 30s, target: 200/s}
          - {duration: 2m, target: 200/s}
        max_users: 2000          # the pool of users that run them; none free at a start: dropped
        distribution: constant   # constant (evenly spaced) or poisson (random gaps, same mean)
        max_dropped: 1%          # above this share of dropped starts, the latency thresholds are inconclusive

Each start is handed to a free user of the pool; when none is free the iteration is dropped and
counted, never queued. ``ArrivalShape`` is read by the gate, ``check`` and the Locust process
(which computes the start times from it); every mistake names file:line and key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from loadgate.gate.yaml_lines import FileErrors, LineMap, is_int, quote
from loadgate.units import parse_duration, parse_rate

KEYS = ("rate", "stages", "max_users", "distribution", "max_dropped")
DISTRIBUTIONS = ("constant", "poisson")
DEFAULT_MAX_DROPPED = 0.01  # a share of the scheduled starts: more dropped, and the load asked for was not offered


@dataclass(frozen=True)
class Stage:
    duration: float  # seconds
    target: float  # iterations per second at the end of the stage


@dataclass(frozen=True)
class ArrivalShape:
    """Iterations per second over time; ``rate`` alone is constant, ``stages`` ramp linearly from 0 (or ``rate``)."""

    rate: float | None = None
    stages: tuple[Stage, ...] = ()
    max_users: int | None = None
    distribution: str = "constant"
    max_dropped: float = DEFAULT_MAX_DROPPED  # a fraction of the scheduled starts in the analysis window
    # where the shape is written ("file:line" of load.arrival, and of its max_users): for check's messages
    source: str = field(default="", compare=False)
    max_users_source: str = field(default="", compare=False)

    @property
    def peak(self) -> float:
        return max([self.rate or 0.0, *(s.target for s in self.stages)])

    @property
    def stages_duration(self) -> float:
        return sum(s.duration for s in self.stages)

    def rate_at(self, t: float) -> float:
        """Iterations per second ``t`` seconds after the start (the last stage's target holds after the ramp)."""
        if not self.stages:
            return self.rate or 0.0
        start = self.rate or 0.0
        for s in self.stages:
            if t < s.duration:
                return start + (s.target - start) * (t / s.duration if s.duration else 1.0)
            t -= s.duration
            start = s.target
        return start

    def expected(self, t0: float, t1: float) -> float:
        """Iterations the schedule starts in ``[t0, t1)`` seconds after the start (the integral of the rate)."""
        return _integral(self, t1) - _integral(self, t0)


def _integral(shape: ArrivalShape, t: float) -> float:
    if t <= 0:
        return 0.0
    if not shape.stages:
        return (shape.rate or 0.0) * t
    total, start = 0.0, shape.rate or 0.0
    for s in shape.stages:
        step = min(t, s.duration)
        end = start + (s.target - start) * (step / s.duration if s.duration else 1.0)
        total += (start + end) / 2 * step
        t -= step
        if t <= 0:
            return total
        start = s.target
    return total + start * t


def parse(f: FileErrors, raw: Any, line: int) -> ArrivalShape:
    """The ``load.arrival`` mapping of a threshold file."""
    expected = "a mapping like {rate: 200/s, max_users: 2000}"
    if not isinstance(raw, LineMap):
        raise f.error(line, "load.arrival", f"{quote(raw)} is not a mapping", expected)
    f.check_keys(raw, "load.arrival", KEYS)
    at = raw.key_lines
    rate = _rate(f, raw["rate"], at["rate"], "load.arrival.rate") if "rate" in raw else None
    stages = _stages(f, raw["stages"], at["stages"]) if "stages" in raw else ()
    if rate is None and not stages:
        raise f.error(line, "load.arrival", "has neither rate nor stages", "rate: 200/s, or stages: [...]")
    max_users = raw.get("max_users")
    if max_users is not None and (not is_int(max_users) or max_users < 1):
        raise f.error(
            at["max_users"],
            "load.arrival.max_users",
            f"{quote(max_users)} is not a positive whole number",
            "the pool of users, like 2000",
        )
    distribution = raw.get("distribution", "constant")
    if distribution not in DISTRIBUTIONS:
        raise f.error(
            at["distribution"],
            "load.arrival.distribution",
            f"{quote(distribution)} is not a distribution",
            "constant (evenly spaced starts) or poisson (random gaps with the same mean)",
        )
    max_dropped = _share(f, raw["max_dropped"], at["max_dropped"]) if "max_dropped" in raw else DEFAULT_MAX_DROPPED
    shape = ArrivalShape(
        rate,
        stages,
        max_users,
        distribution,
        max_dropped,
        f"{f.path}:{line}",
        f"{f.path}:{at['max_users']}" if max_users is not None else "",
    )
    if shape.peak <= 0:
        raise f.error(line, "load.arrival", "never starts an iteration (every rate is 0)", "a rate above 0, like 200/s")
    return shape


def _rate(f: FileErrors, raw: Any, line: int, where: str) -> float:
    try:
        value = parse_rate(raw) if raw is not None and not isinstance(raw, (list, dict)) else None
    except ValueError:
        value = None
    if value is None or not math.isfinite(value):
        raise f.error(line, where, f"{quote(raw)} is not a rate", "iterations per second like 200/s, or 12000/m")
    return value


def _share(f: FileErrors, raw: Any, line: int) -> float:
    """``max_dropped``: a share of the scheduled starts, ``1%`` or a fraction like 0.01, from 0 to 100%."""
    text = str(raw).strip() if isinstance(raw, (str, int, float)) and not isinstance(raw, bool) else ""
    try:
        value = Decimal(text[:-1].strip()) / 100 if text.endswith("%") else Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or not 0 <= value <= 1:
        hint = (
            " (a bare number is a fraction: 0.01 = 1%)" if text and not text.endswith("%") and value.is_finite() else ""
        )
        raise f.error(
            line,
            "load.arrival.max_dropped",
            f"{quote(raw)} is not a share from 0 to 100%{hint}",
            "a share of the scheduled starts like 1% or 0.5%",
        )
    return float(value)


def _stages(f: FileErrors, raw: Any, line: int) -> tuple[Stage, ...]:
    if not isinstance(raw, list) or not raw:
        raise f.error(
            line,
            "load.arrival.stages",
            f"{quote(raw)} is not a list of stages",
            "a list like [{duration: 30s, target: 200/s}, {duration: 2m, target: 200/s}]",
        )
    stages = []
    for i, item in enumerate(raw):
        where = f"load.arrival.stages[{i}]"
        at = getattr(item, "line", line)
        if not isinstance(item, LineMap) or set(item) != {"duration", "target"}:
            raise f.error(at, where, f"{quote(item)} is not a stage", "a mapping {duration: 30s, target: 200/s}")
        try:
            duration = parse_duration(item["duration"])
        except ValueError:
            raise f.error(
                item.key_lines["duration"],
                f"{where}.duration",
                f"{quote(item['duration'])} is not a duration",
                "a duration like 30s or 2m",
            ) from None
        stages.append(Stage(duration, _rate(f, item["target"], item.key_lines["target"], f"{where}.target")))
    return tuple(stages)
