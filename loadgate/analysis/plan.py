"""The arithmetic of a capacity plan: the capacity's trend over releases, the runway, the cost per user.

- **Trend**: least squares of ln(capacity) against the release date in days (an exponential trend, so
  a change reads as a percentage per month, like the load's growth). Fitted only from
  :data:`MIN_FIT_RUNS` runs on at least two dates; with fewer, there is no trend and capacity is held
  at its last measured value.
- **Runway**: the date at which the peak, growing by ``growth`` a month, meets the capacity, itself moving
  along its trend: peak·(1+g)^m·(1+level) = capacity·(1+c)^m, solved for m months (``level`` 0 for the
  capacity itself, the headroom alert level for the alert date).
- **Cost per user**: a straight line (least squares) of a resource against users over the passing steps,
  i.e. a fixed part plus a linear cost per user below the knee — an assumption, stated with the estimate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DAYS_PER_MONTH = 365.2425 / 12
DAY_S = 86400.0
MIN_FIT_RUNS = 3


@dataclass(frozen=True)
class Trend:
    """ln(capacity) = intercept + slope·(days since ``t0``), from ``n`` runs."""

    n: int
    slope_per_day: float
    intercept: float
    t0: float  # Unix time the intercept refers to (the newest run's date)
    r2: float | None  # None when every point lies on the line exactly... or there is no spread to explain

    @property
    def monthly(self) -> float:
        """The trend as a change per month: 0.05 = +5%/month."""
        return math.exp(self.slope_per_day * DAYS_PER_MONTH) - 1

    def at(self, t: float) -> float:
        """The fitted capacity at Unix time ``t``."""
        return math.exp(self.intercept + self.slope_per_day * (t - self.t0) / DAY_S)


def fit_trend(dates: Sequence[float], values: Sequence[float]) -> Trend | None:
    """The exponential trend of ``values`` (capacities, > 0) over ``dates`` (Unix s); None with fewer than
    :data:`MIN_FIT_RUNS` positive values or fewer than two distinct dates."""
    pairs = [(float(d), float(v)) for d, v in zip(dates, values) if v is not None and v > 0 and d is not None]
    if len(pairs) < MIN_FIT_RUNS or len({d for d, _ in pairs}) < 2:
        return None
    t0 = max(d for d, _ in pairs)
    x = np.array([(d - t0) / DAY_S for d, _ in pairs])
    y = np.log([v for _, v in pairs])
    slope, intercept = np.polyfit(x, y, 1)
    residual = float(np.sum((y - (intercept + slope * x)) ** 2))
    spread = float(np.sum((y - y.mean()) ** 2))
    return Trend(len(pairs), float(slope), float(intercept), t0, None if spread == 0 else 1 - residual / spread)


@dataclass(frozen=True)
class Runway:
    """When the grown peak meets a level of capacity: ``date`` (Unix s), or already (``now``), or never."""

    date: float | None
    months: float | None
    already: bool = False

    @property
    def never(self) -> bool:
        return self.date is None and not self.already


def runway(capacity: float, peak: float, growth: float, trend: float, now: float, level: float = 0.0) -> Runway:
    """The date at which ``peak``·(1+``growth``)^m·(1+``level``) reaches ``capacity``·(1+``trend``)^m.

    ``growth`` and ``trend`` are per month (0.08 = 8%); ``level`` the headroom that must remain (0.2 for an
    alert of 20%). Already met: ``already``; the peak never catching up at these rates: ``never``.
    """
    need = peak * (1 + level)
    if capacity <= need:
        return Runway(now, 0.0, already=True)
    closing = math.log1p(growth) - math.log1p(trend)  # how fast the gap closes, per month, in log terms
    if closing <= 0:
        return Runway(None, None)
    months = math.log(capacity / need) / closing
    return Runway(now + months * DAYS_PER_MONTH * DAY_S, months)


@dataclass(frozen=True)
class Cost:
    """A resource as fixed + per_unit·x over the passing steps (x: users, or req/s for a rate peak)."""

    fixed: float
    per_unit: float
    points: int

    def at(self, x: float) -> float:
        return self.fixed + self.per_unit * x


def linear_cost(xs: Sequence[float], ys: Sequence[float]) -> Cost | None:
    """Least squares line through (x, resource) of the passing steps. With one step (or one x), or when
    the fitted line does not rise (noise larger than the cost, as on a busy shared machine), the line
    through the origin and the highest step: its whole use counted per user, an upper bound
    (``fixed`` 0). None without a step."""
    pts = [(float(x), float(y)) for x, y in zip(xs, ys) if x is not None and y is not None and x > 0]
    if not pts:
        return None
    if len({x for x, _ in pts}) >= 2:
        slope, intercept = np.polyfit([x for x, _ in pts], [y for _, y in pts], 1)
        if slope > 0 and intercept >= 0:
            return Cost(float(intercept), float(slope), len(pts))
    x, y = max(pts)
    return Cost(0.0, y / x, 1)


def replicas(
    cpu: float | None, memory: float | None, cpu_limit: float | None, memory_limit: float | None
) -> tuple[int | None, str | None]:
    """Replicas of the given limits that hold ``cpu`` cores and ``memory`` bytes, and which resource decides."""
    need = {}
    if cpu is not None and cpu_limit:
        need["cpu"] = math.ceil(max(cpu, 0.0) / cpu_limit - 1e-9)
    if memory is not None and memory_limit:
        need["memory"] = math.ceil(max(memory, 0.0) / memory_limit - 1e-9)
    if not need:
        return None, None
    which = max(need, key=lambda k: need[k])
    return max(1, need[which]), which
