"""The capacity search itself, without Locust: which user count (or arrival rate) to measure next, and the plan.

Double from ``start`` until a step does not pass, then bisect between the highest passing and the
lowest non-passing step until they are within ``resolution`` (relative to the passing one). A step
that is ``unresolved`` (its interval straddles an alert level after one extension) or ``fail`` is an
upper bound alike: capacity is only ever claimed from steps that passed.

The quantity searched is users (whole numbers: a bracket of one user is as narrow as it gets) or, with
``--arrival-rate``, iterations per second (:data:`RATE`: halves of any size, a bracket of 0.001/s at the
narrowest).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Quantity:
    """What a search steps over, and how its messages name it."""

    name: str  # users | rate
    start_flag: str  # the flag that sets the first step
    max_flag: str  # the flag that bounds the doubling
    whole: bool  # steps are whole numbers (users)

    def num(self, value: float) -> str:
        return str(int(value)) if self.whole else f"{value:g}"

    def text(self, value: float) -> str:
        return f"{self.num(value)} users" if self.whole else f"{self.num(value)}/s"

    def mid(self, lo: float, hi: float) -> float:
        return (int(lo) + int(hi)) // 2 if self.whole else round((lo + hi) / 2, 3)

    def narrowest(self, lo: float, hi: float) -> bool:
        return hi - lo <= (1 if self.whole else 0.001)


USERS = Quantity("users", "--start-users", "--max-users", True)
RATE = Quantity("rate", "--arrival-rate", "--max-rate", False)


@dataclass
class Search:
    start: float
    max_users: float  # the bound of the doubling: users, or the rate with RATE
    resolution: float  # 0.1 = within 10%
    passed: list[float] = field(default_factory=list)
    not_passed: list[float] = field(default_factory=list)
    quantity: Quantity = USERS

    def record(self, users: float, status: str) -> None:
        (self.passed if status == "pass" else self.not_passed).append(users)

    @property
    def lo(self) -> float | None:
        return max(self.passed) if self.passed else None

    @property
    def hi(self) -> float | None:
        return min(self.not_passed) if self.not_passed else None

    def next_users(self) -> float | None:
        """The next step's users (or rate), or None when the search is over (see :meth:`why_done`)."""
        lo, hi = self.lo, self.hi
        if hi is None:
            if lo is None:
                return self.start
            return None if lo >= self.max_users else min(lo * 2, self.max_users)
        if lo is None or self._bracketed():
            return None
        return self.quantity.mid(lo, hi)

    def _bracketed(self) -> bool:
        lo, hi = self.lo, self.hi
        return (
            lo is not None and hi is not None and (hi - lo <= self.resolution * lo or self.quantity.narrowest(lo, hi))
        )

    def why_done(self) -> str:
        q = self.quantity
        if self.lo is None:
            return f"the first step ({q.text(self.start)}) did not pass; lower {q.start_flag}"
        if self.hi is None:
            return f"{q.max_flag} {q.num(self.max_users)} passed: capacity is at least {q.text(self.lo)}"
        return (
            f"bracketed within {self.resolution * 100:g}%: {q.text(self.lo)} pass, "
            f"{q.num(self.hi) if q.whole else q.text(self.hi)} do not"
        )


def worst_case_steps(start: float, max_users: float, resolution: float, quantity: Quantity = USERS) -> int:
    """Steps of the longest search: doubling up to ``max_users``, then bisecting the worst bracket."""

    def halvings(a: float, b: float) -> int:  # either half may be the one the answer lies in
        if b - a <= resolution * a or quantity.narrowest(a, b):
            return 0
        mid = quantity.mid(a, b)
        return 1 + max(halvings(a, mid), halvings(mid, b))

    doubling, worst, lo = 1, 0, start
    while lo < max_users:
        hi = min(2 * lo, max_users)
        worst = max(worst, halvings(lo, hi))
        doubling, lo = doubling + 1, hi
    return doubling + worst


SETTLE_SHARE = 0.25  # settle part: at least this share of the measured part ...
SETTLE_MIN_S = 2.0  # ... and at least this long; longer after slow steps (see drivers.capacity)


@dataclass(frozen=True)
class CapacityPlan:
    start_users: int
    max_users: int
    step_duration: float  # the measured part of a step (s)
    resolution: float  # 0.1: stop when the passing and failing steps are within 10%
    budget: float  # seconds for the whole search
    release: str | None = None  # --release: the label of the build measured (default: its commit)
    release_date: float | None = None  # --release-date: its date for the capacity trend (default: the run's start)
    # a search over arrival rate (--arrival-rate): its first rate and bound; start_users = max_users = the pool
    start_rate: float | None = None
    max_rate: float | None = None

    @property
    def quantity(self) -> Quantity:
        return USERS if self.start_rate is None else RATE

    @property
    def first(self) -> float:
        """The first step: users, or a rate."""
        return self.start_users if self.start_rate is None else self.start_rate

    @property
    def bound(self) -> float:
        """The most the doubling goes to: users, or a rate."""
        return self.max_users if self.max_rate is None else self.max_rate

    def search(self) -> Search:
        return Search(self.first, self.bound, self.resolution, quantity=self.quantity)

    @property
    def settle(self) -> float:
        return max(SETTLE_MIN_S, SETTLE_SHARE * self.step_duration)

    @property
    def worst_steps(self) -> int:
        return worst_case_steps(self.first, self.bound, self.resolution, self.quantity)

    def step_worst_s(self, flush: float) -> float:
        """A step at its longest: spawn + the longest settle + measured part twice (one extension) + lag."""
        return 1 + (self.settle + self.step_duration) + 2 * self.step_duration + lag(flush)

    def describe(self, flush: float) -> str:
        worst = min(self.budget, self.worst_steps * self.step_worst_s(flush))
        start = (
            f"from {self.start_users} users doubling up to {self.max_users}"
            if self.start_rate is None
            else f"arrival rate from {self.quantity.text(self.first)} doubling up to {self.quantity.text(self.bound)} "
            f"with a pool of {self.max_users} users"
        )
        return (
            f"loadgate capacity: plan: {start}, then "
            f"bisecting to within {self.resolution * 100:g}%; at most {self.worst_steps} steps of "
            f"{self.settle:g}s settle + {self.step_duration:g}s measured (once more when unresolved); "
            f"worst case {mmss(worst)} (budget {mmss(self.budget)})"
        )


def lag(flush: float) -> float:
    """After a window ends: the recorder's next two flushes, so its last requests are in the stream."""
    return 2 * flush + 0.5


def mmss(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"
