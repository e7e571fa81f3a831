"""Paced users carry their schedule: which iteration each request belongs to, and how late it started.

A *paced* user's wait time follows a schedule of one iteration every ``period`` seconds: Locust's
``constant_pacing`` / ``constant_throughput`` and this module's drop-ins of the same names, which a
scenario may import instead (``from loadgate.pacing import constant_throughput``). When a run
starts, the recorder swaps Locust's own for these (:func:`adopt`), so plain Locust scenarios are
measured the same way. They pace exactly as Locust does — an iteration that overran its slot is
followed at once by the next one, and the schedule re-bases there, never catching up — but they
record, per user: the scheduled start of each iteration, how late it started because the previous
response came back after the slot (``late``), and the schedule slots skipped on the way
(``omitted``). The recorder turns that into each request's ``intended_ms`` (its response time plus
its iteration's lateness: the latency from the schedule, as wrt2 and YCSB's ``intended`` measure it),
and marks the first request of each iteration with the number of slots omitted just before it.

Lateness of the load generator itself (an iteration that starts after its slot although the previous
response was back in time: a busy event loop) is not the target's fault: it is counted apart, never
added to the intended latency.

Each user also starts at a random phase of its period (:func:`adopt` wraps ``on_start``): Locust
spawns users in batches once a second, and without a phase they would fire in lockstep for the
whole run.
"""

from __future__ import annotations

import functools
import math
import random
import time
from typing import Any, Callable

import gevent
from greenlet import getcurrent

from loadgate.plugin.compat import locust_pacing_period

GENERATOR_LATE_MIN_S = 0.010  # an iteration that starts more than this after its wake-up, and ...
GENERATOR_LATE_SHARE = 0.10  # ... more than this share of its period: the generator fell behind


class UserState:
    """One user greenlet: its number within this process and, if paced, where it is in its schedule."""

    __slots__ = ("number", "period", "period_ms", "anchor", "late_ms", "omitted", "first", "wake", "tolerance")

    def __init__(self, number: int, period: float | None) -> None:
        self.number = number
        self.period: float | None = None  # seconds, None: unpaced
        self.period_ms = math.nan
        self.tolerance = 0.0
        self.anchor: float | None = None  # the slot the next iteration is scheduled after (Unix s)
        self.late_ms = 0.0  # lateness of the running iteration caused by the last response
        self.omitted = 0  # slots skipped just before the running iteration
        self.first = False  # True until the running iteration's first request is recorded
        self.wake = 0.0  # when the running iteration was due to start (Unix s)
        if period is not None:
            self.pace(period)

    def pace(self, period: float) -> None:
        """Follow a schedule of one iteration every ``period`` seconds."""
        self.period, self.period_ms = period, period * 1000.0
        self.tolerance = max(GENERATOR_LATE_MIN_S, GENERATOR_LATE_SHARE * period)

    def begin(self, now: float) -> None:
        """The first iteration starts now, on its slot."""
        self.anchor, self.wake, self.late_ms, self.omitted, self.first = now, now, 0.0, 0, True

    def next_wait(self, now: float) -> float:
        """At the end of an iteration: the wait before the next one, and its place in the schedule."""
        period = self.period
        if self.anchor is None:  # no phase set by adopt(): the schedule starts with the iteration just ended
            self.anchor = now - period
        due = self.anchor + period
        omitted = self.omitted if self.first else 0  # an iteration without requests keeps its count
        if now <= due:
            self.anchor = self.wake = due
            self.late_ms = 0.0
            wait = due - now
        else:  # overran its slot: the next iteration starts now, late; slots strictly in between are lost
            late = now - due
            omitted += max(0, math.ceil(late / period) - 1)
            self.anchor = self.wake = now  # re-base, as Locust's constant_pacing does
            self.late_ms = late * 1000.0
            wait = 0.0
        self.omitted, self.first = omitted, True
        return wait

    def unanswered(self, since: float, now: float, before_window: bool) -> None:
        """The running iteration's request had no answer by ``now`` (the run stopped), and its row is recorded
        from ``since``: make that row carry every slot the iteration missed until ``now``.

        The row's latency from the schedule is V = (now - since) + its lateness; slot j after its own slot
        waited at least V - j*P = now - slot_j, the slots before ``now`` counted as omitted on it. A request
        sent ``before_window`` is recorded from the window's start as if due then (lateness 0): its
        slots are the window's, every P from its start. The row becomes its iteration's first, so a stuck
        second request of an iteration counts one iteration start more than there were.
        """
        if self.period is None:
            return
        if before_window:
            self.late_ms = 0.0
        held_ms = (now - since) * 1000.0 + self.late_ms
        missed = max(0, math.ceil(held_ms / self.period_ms) - 1)
        self.omitted = missed if before_window or not self.first else max(self.omitted, missed)
        self.first, self.wake = True, since  # (not a start the generator was late for)


USERS: dict[Any, UserState] = {}  # user greenlet -> its state (read on every request by the recorder)
NOBODY = UserState(-1, None)  # requests from greenlets that are not users
COUNTS = [0, 0]  # paced iterations recorded, of which the generator started late
_numbers = iter(range(1 << 31))


def state_of(greenlet, user=None) -> UserState:
    """The state of a user greenlet, registered on first sight (numbered in order of first request or wait)."""
    state = USERS.get(greenlet)
    if state is None or (state is NOBODY and user is not None):
        if user is None:
            args = getattr(greenlet, "args", None)  # Locust spawns each user as group.spawn(run_user, user)
            user = args[0] if args else None
        from locust import User  # noqa: PLC0415 - only here: this module is also imported by scenarios

        if isinstance(user, User):
            state = UserState(next(_numbers), period_of(type(user).wait_time))
        else:
            state = NOBODY
        USERS[greenlet] = state
    return state


def sweep() -> None:
    """Forget users whose greenlet has ended (run between flushes, off the hot path)."""
    for g in [g for g in USERS if getattr(g, "dead", False)]:
        USERS.pop(g, None)


def constant_pacing(period: float) -> Callable[[Any], float]:
    """A wait time that starts one iteration every ``period`` seconds, as Locust's, recording the schedule."""
    if not isinstance(period, (int, float)) or not math.isfinite(period) or period <= 0:
        raise ValueError(f"constant_pacing() needs a period in seconds > 0, got {period!r}")
    period = float(period)

    def wait_time_func(self) -> float:
        state = state_of(getcurrent(), getattr(self, "user", self))
        if state.period is None:  # registered before its class was paced (or by a TaskSet's own pacing)
            state.pace(period)
        return state.next_wait(time.time())

    wait_time_func.loadgate_period = period  # type: ignore[attr-defined]
    return wait_time_func


def constant_throughput(task_runs_per_second: float) -> Callable[[Any], float]:
    """``constant_pacing(1 / task_runs_per_second)``, as Locust's."""
    if not isinstance(task_runs_per_second, (int, float)) or not task_runs_per_second > 0:
        raise ValueError(f"constant_throughput() needs a rate > 0, got {task_runs_per_second!r}")
    return constant_pacing(1.0 / task_runs_per_second)


def period_of(wait_time: Any) -> float | None:
    """The period of a pacing wait time (ours, or Locust's constant_pacing/constant_throughput); None otherwise.

    Any other callable (``between``, ``constant``, a custom function) is unpaced: it has no schedule.
    """
    period = getattr(wait_time, "loadgate_period", None)
    if period is not None:
        return float(period)
    return locust_pacing_period(wait_time)


def adopt(user_classes) -> dict[str, float]:
    """Pace the paced User classes with this module's schedule: {class name: period} of those found.

    Locust's constant_pacing/constant_throughput are replaced by the drop-ins here (same period, same
    pacing); ``on_start`` is wrapped so each user begins its schedule at a random phase of its period.
    """
    paced = {}
    for cls in user_classes:
        period = period_of(cls.__dict__.get("wait_time", getattr(cls, "wait_time", None)))
        if period is None:
            continue
        paced[cls.__name__] = period
        if getattr(cls.wait_time, "loadgate_period", None) is None:
            cls.wait_time = constant_pacing(period)
        if not getattr(cls.on_start, "_loadgate_phase", False):
            cls.on_start = _phased(cls.on_start, period)
    return paced


def _phased(on_start, period: float):
    @functools.wraps(on_start)
    def wrapper(self, *args, **kwargs):
        result = on_start(self, *args, **kwargs)
        gevent.sleep(random.random() * period)  # a random phase: no lockstep of users spawned together
        state = state_of(getcurrent(), self)
        if state.period is None:
            state.pace(period)
        state.begin(time.time())
        return result

    wrapper._loadgate_phase = True  # type: ignore[attr-defined]
    return wrapper
