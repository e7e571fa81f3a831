"""The capacity search itself, without Locust: which user count to measure next, and the plan.

Double from ``start`` until a step does not pass, then bisect between the highest passing and the
lowest non-passing step until they are within ``resolution`` (relative to the passing one). A step
that is ``unresolved`` (its interval straddles an alert level after one extension) or ``fail`` is an
upper bound alike: capacity is only ever claimed from steps that passed.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Search:
    start: int
    max_users: int
    resolution: float                       # 0.1 = within 10%
    passed: list[int] = field(default_factory=list)
    not_passed: list[int] = field(default_factory=list)

    def record(self, users: int, status: str) -> None:
        (self.passed if status == "pass" else self.not_passed).append(users)

    @property
    def lo(self) -> int | None:
        return max(self.passed) if self.passed else None

    @property
    def hi(self) -> int | None:
        return min(self.not_passed) if self.not_passed else None

    def next_users(self) -> int | None:
        """The next step's users, or None when the search is over (see :meth:`why_done`)."""
        lo, hi = self.lo, self.hi
        if hi is None:
            if lo is None:
                return self.start
            return None if lo >= self.max_users else min(lo * 2, self.max_users)
        if lo is None or self._bracketed():
            return None
        return (lo + hi) // 2

    def _bracketed(self) -> bool:
        lo, hi = self.lo, self.hi
        return lo is not None and hi is not None and (hi - lo <= self.resolution * lo or hi - lo <= 1)

    def why_done(self) -> str:
        if self.lo is None:
            return f"the first step ({self.start} users) did not pass; lower --start-users"
        if self.hi is None:
            return f"--max-users {self.max_users} passed: capacity is at least {self.lo} users"
        return f"bracketed within {self.resolution * 100:g}%: {self.lo} users pass, {self.hi} do not"


def worst_case_steps(start: int, max_users: int, resolution: float) -> int:
    """Steps of the longest search: doubling up to ``max_users``, then bisecting the worst bracket."""
    def halvings(a: int, b: int) -> int:  # either half may be the one the answer lies in
        if b - a <= resolution * a or b - a <= 1:
            return 0
        mid = (a + b) // 2
        return 1 + max(halvings(a, mid), halvings(mid, b))

    doubling, worst, lo = 1, 0, start
    while lo < max_users:
        hi = min(2 * lo, max_users)
        worst = max(worst, halvings(lo, hi))
        doubling, lo = doubling + 1, hi
    return doubling + worst


SETTLE_SHARE = 0.25     # settle part: at least this share of the measured part ...
SETTLE_MIN_S = 2.0      # ... and at least this long; longer after slow steps (see drivers.capacity)


@dataclass(frozen=True)
class CapacityPlan:
    start_users: int
    max_users: int
    step_duration: float     # the measured part of a step (s)
    resolution: float        # 0.1: stop when the passing and failing steps are within 10%
    budget: float            # seconds for the whole search
    release: str | None = None          # --release: the label of the build measured (default: its commit)
    release_date: float | None = None   # --release-date: its date for the capacity trend (default: the run's start)

    @property
    def settle(self) -> float:
        return max(SETTLE_MIN_S, SETTLE_SHARE * self.step_duration)

    @property
    def worst_steps(self) -> int:
        return worst_case_steps(self.start_users, self.max_users, self.resolution)

    def step_worst_s(self, flush: float) -> float:
        """A step at its longest: spawn + the longest settle + measured part twice (one extension) + lag."""
        return 1 + (self.settle + self.step_duration) + 2 * self.step_duration + lag(flush)

    def describe(self, flush: float) -> str:
        worst = min(self.budget, self.worst_steps * self.step_worst_s(flush))
        return (f"loadgate capacity: plan: from {self.start_users} users doubling up to {self.max_users}, then "
                f"bisecting to within {self.resolution * 100:g}%; at most {self.worst_steps} steps of "
                f"{self.settle:g}s settle + {self.step_duration:g}s measured (once more when unresolved); "
                f"worst case {mmss(worst)} (budget {mmss(self.budget)})")


def lag(flush: float) -> float:
    """After a window ends: the recorder's next two flushes, so its last requests are in the stream."""
    return 2 * flush + 0.5


def mmss(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"
