"""Open-model load inside Locust: iterations started at a set rate by a pool of users, whatever the target does.

A run with arrival shapes (``--loadgate-arrival``: the CLI's child.json, forwarded by a master to its workers
as every ``--loadgate-*`` option) spawns its whole pool up front. Each user of the pool waits in its
``wait_time`` (and once before its first iteration) until a requirement's dispatcher hands it a start:
one greenlet per requirement sleeps until each due time of the schedule
(:mod:`loadgate.plugin.arrival_schedule`) and gives the start to the user that has waited longest; that
user then runs one task of the requirement, chosen as Locust chooses (``random.choice`` over the class's
task list, which holds each task as often as its weight, after Locust's ``--tags`` filter). When no user
is free at a due time, or the requirement already runs its ``max_users`` iterations (each requirement's pool
is its own), the iteration is *dropped* and counted: never queued to run later.

The start's due time becomes the iteration's schedule in :mod:`loadgate.pacing`, as for a paced user:
its requests carry ``intended_ms`` (the response time plus the start's delay when it exceeds the generator's
tolerance) and the recorder counts a start the generator handed out late (its event loop was busy) as a
late paced iteration, the run problem it is for paced users, not a drop.

Counts per requirement and epoch second (scheduled, started, dropped, most users busy) go, on a worker,
to the master every second and at the stop (:data:`MSG_COUNTS`, before the recorder's "done"), which
adds them up exactly; the process that writes the run directory keeps the merged block in the
recorder's report (``recorder.json`` -> ``run.json["arrival"]``).
"""

from __future__ import annotations

import functools
import json
import logging
import random
import time
from collections import deque
from dataclasses import replace
from typing import Any

import gevent
from gevent.event import AsyncResult
from greenlet import getcurrent
from locust import events
from locust.runners import MasterRunner, WorkerRunner
from locust.user.task import TaskSet

from loadgate.gate.arrival import ArrivalShape, Stage
from loadgate.pacing import GENERATOR_LATE_MIN_S, state_of
from loadgate.plugin.arrival_schedule import start_times
from loadgate.plugin.compat import schedule_next, worker_clients
from loadgate.shared.child import read_child_config

log = logging.getLogger("loadgate.plugin.arrival")

MSG_COUNTS = "loadgate_arrival"  # worker -> master: counts since the last message
MSG_START = "loadgate_arrival_start"  # master -> workers: when the schedule starts, and the workers' order
START_LEAD_S = 0.5  # master: the schedule starts this long after it tells its workers
REPORT_EVERY_S = 1.0


def shape_of(raw: dict) -> ArrivalShape:
    """An :class:`ArrivalShape` from its child.json form."""
    return ArrivalShape(
        raw.get("rate"),
        tuple(Stage(float(d), float(t)) for d, t in raw.get("stages") or ()),
        raw.get("max_users"),
        raw.get("distribution") or "constant",
    )


class _Waiting:
    __slots__ = ("user", "result", "alive")

    def __init__(self, user) -> None:
        self.user, self.result, self.alive = user, AsyncResult(), True


class Counts:
    """Per requirement and epoch second: [scheduled, started, dropped], and the most users busy per process."""

    def __init__(self) -> None:
        self.sums: dict[str, dict[int, list[int]]] = {}
        self.busy: dict[str, dict[str, dict[int, int]]] = {}  # req -> process -> second -> most busy

    def add(self, proc: str, counts: dict[str, dict[str, list[int]]]) -> None:
        """Add one process's counts ({req: {second: [scheduled, started, dropped, busy]}}; JSON keys)."""
        for req, seconds in counts.items():
            sums, busy = self.sums.setdefault(req, {}), self.busy.setdefault(req, {}).setdefault(proc, {})
            for sec_text, (scheduled, started, dropped, most) in seconds.items():
                sec = int(sec_text)
                row = sums.setdefault(sec, [0, 0, 0])
                row[0] += scheduled
                row[1] += started
                row[2] += dropped
                busy[sec] = max(busy.get(sec, 0), most)

    def dropped(self) -> int:
        return sum(row[2] for seconds in self.sums.values() for row in seconds.values())

    def block(self, req: str, shape: ArrivalShape, t0: float | None) -> dict[str, Any]:
        """The requirement's ``arrival`` entry of run.json."""
        sums = self.sums.get(req, {})
        secs = sorted(sums)
        busy = self.busy.get(req, {})
        column = {name: [sums[s][i] for s in secs] for i, name in enumerate(("scheduled", "started", "dropped"))}
        return {
            "rate": shape.rate,
            "stages": [[s.duration, s.target] for s in shape.stages],
            "max_users": shape.max_users,
            "distribution": shape.distribution,
            "t0": t0,
            **{name: sum(values) for name, values in column.items()},
            "per_second": {"t": secs, **column, "busy": [sum(b.get(s, 0) for b in busy.values()) for s in secs]},
        }


class Arrival:
    """The pool, the dispatchers and the counts of one Locust process."""

    def __init__(self, environment) -> None:
        self.env = environment
        self.runner = environment.runner
        self.shapes: dict[str, ArrivalShape] = {}
        self.free: deque[_Waiting] = deque()
        self.busy: dict[str, int] = {}  # users running an iteration, per requirement
        self.caps: dict[str, int] = {}  # per requirement: this process's share of its max_users (its own pool)
        self.pending: dict[str, dict[int, list[int]]] = {}  # counts not yet reported
        self.counts = Counts()  # merged (local or master)
        self.t0: float | None = None
        self.greenlets: list = []  # the dispatchers (one per requirement)
        self.reporter = None  # the greenlet that reports the counts every second
        self.place = (0, 1)  # this process's index among the schedule's processes, and their count
        self.retargeted = False  # the rate was set by retarget (capacity over rate): workers are told
        self.totals: dict[str, list[int]] = {}  # this process's own [scheduled, started, dropped] (for its log)
        self.tasks: dict[tuple[type, str], list] = {}
        self.proc = "local"
        self.stopped = False
        self.period = 1.0  # a pool user's mean time between starts

    def configure(self, shapes: dict[str, ArrivalShape]) -> None:
        """The run's shapes (a worker learns them from the master's options at each test start)."""
        self.shapes = shapes
        self.busy = dict.fromkeys(shapes, 0)
        self._set_period()
        self._set_caps()

    def _set_caps(self) -> None:
        """Each requirement's pool is its own (as each k6 scenario has its own VUs): the users are spawned
        together, but a requirement runs at most its ``max_users`` at once, split over the processes as
        Locust splits users, so a slow requirement cannot borrow the users another one counts on."""
        index, count = self.place
        self.caps = {
            r: s.max_users // count + (1 if index < s.max_users % count else 0)
            for r, s in self.shapes.items()
            if s.max_users
        }

    def _set_period(self) -> None:
        peak = sum(s.peak for s in self.shapes.values())
        pool = sum(s.max_users or 0 for s in self.shapes.values())
        self.period = pool / peak if peak > 0 and pool else 1.0

    # --- the pool's users -------------------------------------------------------------------------------
    def adopt(self, user_classes) -> None:
        """Make every User class a pool class: it waits for starts instead of its own wait time."""
        wait = self._wait_function()
        for cls in user_classes:
            cls.wait_time = wait
            if not getattr(cls.on_start, "_loadgate_phase", False):
                cls.on_start = self._first_wait(cls.on_start)

    def _wait_function(self):
        arrival = self

        def wait_time(user) -> float:
            return arrival.take(user)

        wait_time.loadgate_period = self.period  # type: ignore[attr-defined]  # pacing: a paced user
        return wait_time

    @staticmethod
    def _first_wait(on_start):
        """Before its first iteration a pool user waits for a start too (Locust runs a first task unasked)."""

        def idle(_user) -> None:
            return None

        @functools.wraps(on_start)
        def wrapper(self, *args, **kwargs):
            result = on_start(self, *args, **kwargs)
            schedule_next(self, idle)  # a task that does nothing: then Locust's wait, which waits for a start
            return result

        wrapper._loadgate_phase = True  # type: ignore[attr-defined]  # pacing.adopt: no random phase
        return wrapper

    def take(self, user) -> float:
        """A pool user's wait: until a dispatcher hands it a start; its schedule noted, its task queued."""
        req = getattr(user, "_loadgate_arrival_req", None)
        if req is not None:
            self.busy[req] -= 1
            user._loadgate_arrival_req = None
        waiting = _Waiting(user)
        self.free.append(waiting)
        try:
            req, due, task = waiting.result.get()
        finally:
            waiting.alive = False
        user._loadgate_arrival_req = req
        state = state_of(getcurrent(), user)
        if self.retargeted and state.period != self.period:  # a new rate: the pool's users start that much more often
            state.pace(self.period)
        delay = time.time() - due
        state.tolerance = GENERATOR_LATE_MIN_S
        state.wake, state.first, state.omitted = due, True, 0
        state.late_ms = delay * 1000.0 if delay > state.tolerance else 0.0
        schedule_next(user, task)
        return 0.0

    def _tasks(self, cls: type, req: str) -> list:
        """The class's tasks of ``req`` as its task list holds them (each as often as its weight)."""
        key = (cls, req)
        tasks = self.tasks.get(key)
        if tasks is None:
            tasks = self.tasks[key] = [
                t
                for t in cls.tasks  # type: ignore[attr-defined]
                if req in getattr(t, "locust_tag_set", ()) and not (isinstance(t, type) and issubclass(t, TaskSet))
            ]
            if not tasks:
                log.warning(
                    "loadgate: %s has no task tagged %s (a TaskSet is not an iteration): its users never "
                    "run %s's starts",
                    cls.__name__,
                    req,
                    req,
                )
        return tasks

    def _hand_out(self, req: str, due: float) -> bool:
        """Give the start due at ``due`` to the user free longest that can run it; False: none is free."""
        skipped = []
        found = None
        while self.free:
            waiting = self.free.popleft()
            if not waiting.alive:
                continue
            tasks = self._tasks(type(waiting.user), req)
            if tasks:
                found = (waiting, tasks)
                break
            skipped.append(waiting)
        self.free.extendleft(reversed(skipped))
        if found is None:
            return False
        waiting, tasks = found
        waiting.result.set((req, due, random.choice(tasks)))
        return True

    # --- the schedule ---------------------------------------------------------------------------------
    def start(self, t0: float, index: int = 0, count: int = 1) -> None:
        """Start every requirement's dispatcher: process ``index`` of ``count`` takes its share from ``t0``.
        Dispatchers already running are replaced (a new rate): the new schedule starts at ``t0``."""
        if self.stopped:
            return
        for g in self.greenlets:
            g.kill(block=False)
        self.t0, self.place = t0, (index, count)
        self._set_caps()
        log.info("loadgate: open-model schedule starts at %.3f (process %d of %d)", t0, index + 1, count)
        self.greenlets = [
            gevent.spawn(self._dispatch, req, start_times(shape, index, count, req))
            for req, shape in self.shapes.items()
            if shape.peak > 0
        ]  # a rate of 0: paused
        if self.reporter is None:
            self.reporter = gevent.spawn(self._report_loop)

    def retarget(self, rate: float) -> None:
        """Every requirement's schedule switches to a constant ``rate`` now (``loadgate capacity`` over arrival
        rate; 0 pauses it). Each process keeps its place in the split (its phase); a master tells its workers,
        which switch at the same moment. Before the schedule started, the rate is the one it will start with."""
        self.shapes = {r: replace(s, rate=float(rate), stages=()) for r, s in self.shapes.items()}
        self.retargeted = True
        self._set_period()
        if isinstance(self.runner, MasterRunner):
            if self.t0 is not None:
                self._announce()
        elif not isinstance(self.runner, WorkerRunner) and self.t0 is not None:  # started (perhaps paused)
            self.start(time.time(), *self.place)

    def _announce(self) -> None:
        """Master: the schedule (re)starts at a moment just ahead, in the workers' order; with the rate, once set."""
        t0 = time.time() + START_LEAD_S
        order = sorted(str(c.id) for c in worker_clients(self.runner))
        self.t0 = t0
        rates = {r: s.rate for r, s in self.shapes.items()} if self.retargeted else None
        self.runner.send_message(MSG_START, {"t0": t0, "workers": order, **({"rates": rates} if rates else {})})
        self._publish()

    def _dispatch(self, req: str, times) -> None:
        t0 = self.t0 or time.time()
        busy, pending = self.busy, self.pending.setdefault(req, {})
        cap = self.caps.get(req)
        for offset in times:
            due = t0 + offset
            wait = due - time.time()
            if wait > 0:
                gevent.sleep(wait)
            started = (cap is None or busy[req] < cap) and self._hand_out(req, due)
            row = pending.get(int(due))
            if row is None:
                row = pending[int(due)] = [0, 0, 0, 0]
            row[0] += 1
            if started:
                busy[req] += 1
                row[1] += 1
                row[3] = max(row[3], busy[req])
            else:
                row[2] += 1

    def _take_pending(self) -> dict[str, dict[str, list[int]]]:
        out = {req: {str(s): row for s, row in seconds.items()} for req, seconds in self.pending.items() if seconds}
        for req, seconds in self.pending.items():
            self.totals[req] = [
                a + sum(row[i] for row in seconds.values()) for i, a in enumerate(self.totals.get(req, [0, 0, 0]))
            ]
        for seconds in self.pending.values():
            seconds.clear()
        return out

    def report(self) -> None:
        """Counts since the last report: to the master (worker), or into the merged counts."""
        counts = self._take_pending()
        if isinstance(self.runner, WorkerRunner):
            if counts:
                self.runner.send_message(MSG_COUNTS, {"worker": self.runner.client_id, "counts": counts})
            return
        self.counts.add(self.proc, counts)
        self._publish()

    def _report_loop(self) -> None:
        while True:
            gevent.sleep(REPORT_EVERY_S)
            self.report()

    def _publish(self) -> None:
        """The merged block into the recorder's report, and the dropped count for the progress line."""
        rec = getattr(self.env, "loadgate_recorder", None)
        if rec is None:
            return
        rec.meta["arrival"] = {req: self.counts.block(req, shape, self.t0) for req, shape in self.shapes.items()}
        rec.dropped_iterations = self.counts.dropped()

    def stop(self) -> None:
        """No more starts; the last counts reported (a worker's before the recorder's "done")."""
        if self.stopped:
            return
        self.stopped = True
        for g in [*self.greenlets, *([self.reporter] if self.reporter is not None else [])]:
            g.kill(block=False)
        self.report()
        for req, (scheduled, started, dropped) in sorted(self.totals.items()):
            log.info(
                "loadgate: open model %s: this process scheduled %d, started %d, dropped %d",
                req,
                scheduled,
                started,
                dropped,
            )

    # --- Locust's events and messages -------------------------------------------------------------------
    def on_test_start(self, environment, **_kw) -> None:
        self.adopt(environment.runner.user_classes)

    def on_spawning_complete(self, **_kw) -> None:
        if isinstance(self.runner, MasterRunner):
            self._announce()
        elif not isinstance(self.runner, WorkerRunner) and self.t0 is None:
            self.start(time.time())

    def on_start_message(self, environment, msg, **_kw) -> None:
        order = list(msg.data["workers"])
        me = str(self.runner.client_id)
        if me not in order:
            log.error("loadgate: this worker (%s) is not among the master's %s: it runs no schedule", me, order)
            return
        rates = msg.data.get("rates")
        if rates:  # a new rate (capacity over rate): the same shapes at a constant rate
            self.shapes = {
                r: replace(s, rate=float(rates.get(r, s.rate or 0.0)), stages=()) for r, s in self.shapes.items()
            }
            self.retargeted = True
            self._set_period()
        self.start(float(msg.data["t0"]), order.index(me), len(order))

    def on_counts(self, environment, msg, **_kw) -> None:
        self.counts.add(str(msg.data["worker"]), msg.data["counts"])
        self._publish()


def _add_argument(parser) -> None:
    cfg = read_child_config()
    parser.add_argument_group("loadgate open model").add_argument(
        "--loadgate-arrival",
        default=json.dumps(cfg.arrival) if cfg.arrival else "",
        help="JSON {requirement: {rate, stages, max_users, distribution}}: start iterations at a set rate with a "
        "pool of users (the run's -u), dropping those no user is free for",
    )


def _on_init(environment, **_kw) -> None:
    opts = environment.parsed_options
    if environment.runner is None or opts is None:
        return
    arrival = Arrival(environment)
    environment.loadgate_arrival = arrival

    def on_test_start(environment, **kw) -> None:  # a worker learns the shapes from the master's options
        raw = getattr(environment.parsed_options, "loadgate_arrival", "") or ""
        arrival.configure({r: shape_of(s) for r, s in json.loads(raw).items()} if raw else {})
        if arrival.shapes:
            arrival.on_test_start(environment, **kw)

    ev = environment.events
    ev.test_start.add_listener(on_test_start)
    ev.spawning_complete.add_listener(lambda **kw: arrival.shapes and arrival.on_spawning_complete(**kw))
    ev.test_stopping.add_listener(lambda **kw: arrival.shapes and arrival.stop())
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        runner.register_message(MSG_COUNTS, arrival.on_counts)
    if isinstance(runner, WorkerRunner):
        runner.register_message(MSG_START, arrival.on_start_message)


def install() -> None:
    """Register with Locust's hooks; before the recorder's (``locust_plugin.py``), so the pool's User classes
    are set up before the recorder reads their wait times."""
    events.init_command_line_parser.add_listener(_add_argument)
    events.init.add_listener(_on_init)
