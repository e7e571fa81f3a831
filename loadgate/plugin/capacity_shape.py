"""Locustfile of ``loadgate capacity``: a ``LoadTestShape`` that holds the user count the CLI asks for.

Loaded next to the recorder (``locust -f scenario.py,locust_plugin.py,capacity_shape.py``) on the
master or the single local process. The search runs in the CLI process, which evaluates each step
from the samples with the same analysis and gate as ``run`` (pandas-free here, and never on the
Locust event loop, where it would stall every user). The two talk through two small files in the
run directory: ``capacity.control.json`` (written by the CLI: the users to hold, or stop) and
``capacity.state.json`` (written here each tick: users running, and the generators' CPU and
schedule lateness from the recorder, so the CLI can tell a saturated generator per step).

A search over arrival rate holds one pool of users and gives each step's ``rate`` to the open model's
dispatchers (:meth:`loadgate.plugin.arrival.Arrival.retarget`) when its step begins; the state then
carries the schedule's per-second counts (scheduled, started, dropped), from which each step is judged.
"""

from __future__ import annotations

import json
import os
import time

import gevent
from locust import LoadTestShape

from loadgate.data.rundir import CAPACITY_CONTROL as CONTROL
from loadgate.data.rundir import CAPACITY_STATE as STATE

_KEEP_S = 600.0  # seconds of CPU history handed to the CLI: longer than any step


class CapacityShape(LoadTestShape):
    """Holds ``users`` at ``spawn_rate`` until the control file says otherwise; stops on ``stop``."""

    def __init__(self) -> None:
        super().__init__()
        self._last: tuple[int, float] | None = None
        self._seq = -1
        self._rated = -1  # the last step whose rate went to the dispatchers
        self._stopping = False

    def _dir(self) -> str | None:
        opts = self.runner.environment.parsed_options if self.runner is not None else None
        return getattr(opts, "loadgate_dir", None)

    def tick(self) -> tuple[int, float] | None:
        run_dir = self._dir()
        if run_dir is None:
            return None
        try:
            with open(os.path.join(run_dir, CONTROL)) as f:
                control = json.load(f)
        except (OSError, ValueError):  # not there yet or being replaced: keep what we hold
            control = None
        if control is not None:
            if control.get("stop"):
                return self._stop()
            self._last = (int(control["users"]), float(control["spawn_rate"]))
            self._seq = int(control.get("seq", 0))
            if control.get("rate") is not None and self._rated != self._seq:
                self._retarget(float(control["rate"]))
        self._write_state(run_dir)
        return self._last

    def _stop(self) -> tuple[int, float] | None:
        """End the run the way a timed run ends (the recorder's finish: workers stop, flush and confirm
        every sample before they quit), holding the users until then."""
        rec = getattr(self.runner.environment, "loadgate_recorder", None)
        if rec is None:
            return None
        if not self._stopping:
            self._stopping = True
            gevent.spawn(rec.finish, "capacity search done")
        return self._last

    def _retarget(self, rate: float) -> None:
        arrival = getattr(self.runner.environment, "loadgate_arrival", None)
        if arrival is not None and arrival.shapes:
            arrival.retarget(rate)
            self._rated = self._seq

    def _arrival(self) -> dict:
        """The schedule's merged counts per requirement (run.json's ``arrival`` form), for a search over rate."""
        arrival = getattr(self.runner.environment, "loadgate_arrival", None)
        if arrival is None or not arrival.shapes:
            return {}
        return {req: arrival.counts.block(req, shape, arrival.t0) for req, shape in arrival.shapes.items()}

    def _write_state(self, run_dir: str) -> None:
        rec = getattr(self.runner.environment, "loadgate_recorder", None)
        now = time.time()
        cpu: dict = {}
        schedule: dict = {}
        if rec is not None:
            # per process: this one's (local), or each worker's (master), as in recorder.json
            cpu = {w: [c for c in s if c[0] > now - _KEEP_S] for w, s in rec.cpu.report(rec.collects).items()}
            schedule = {w: [c for c in s if c[0] > now - _KEEP_S] for w, s in rec.schedule.report(rec.collects).items()}
        state = {
            "t": now,
            "seq": self._seq,
            "users": self.runner.user_count,
            "spawning": self.runner.state == "spawning",
            "cpu": cpu,
            "schedule": schedule,
        }
        arrival = self._arrival()
        if arrival:
            state.update(arrival=arrival, rated=self._rated)
        tmp = os.path.join(run_dir, STATE + ".tmp")
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, os.path.join(run_dir, STATE))
