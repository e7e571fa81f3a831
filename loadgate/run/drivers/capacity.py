"""``loadgate capacity``: the user count follows a search this process steers, step by step.

Each step: write the users to ``capacity.control.json`` (the shape in the Locust process holds
them), wait until they run, let the previous step's queues drain (the settle part), measure for
``step_duration``, then summarise and gate that window from its own raw samples with the same code
as ``run`` (:mod:`loadgate.analysis.steps`, :mod:`loadgate.gate.capacity`). A step whose interval
straddles an alert level is measured once more over a longer window, then called ``unresolved``.

Over arrival rate (``--arrival-rate``), the users are one pool spawned by the first step and each step
is a rate the control file gives the open model's dispatchers inside Locust; the step is judged with
the schedule's counts of its window too (:mod:`loadgate.run.capacity_rate`), so a step whose load was
not offered (too many starts dropped) never passes.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
from dataclasses import replace
from typing import Callable, Mapping

from loadgate.analysis.schedule import SCHEDULE_COLUMNS
from loadgate.analysis.steps import step_summary
from loadgate.analysis.summary import COLUMNS
from loadgate.data import rundir
from loadgate.data.samples import read_stream
from loadgate.gate.capacity import judge_step
from loadgate.gate.thresholds import ThresholdFile, required_percentiles
from loadgate.run import capacity_rate
from loadgate.run.arrival import Shapes
from loadgate.run.capacity_search import CapacityPlan, Search, lag, mmss
from loadgate.run.drivers.arrival import child_shapes
from loadgate.run.drivers.base import Driver, Running
from loadgate.run.options import RunOptions
from loadgate.run.problems import lateness_problems, saturation_problems
from loadgate.run.processes import CAPACITY_SHAPE, stop_process
from loadgate.run.record import RunRecord
from loadgate.shared.child import ChildConfig
from loadgate.sources.collect import is_loopback

CONTROL, STATE = rundir.CAPACITY_CONTROL, rundir.CAPACITY_STATE
APPLY_TIMEOUT_S = 30.0  # the shape has this long (plus the spawn time) to reach a step's users


class Capacity(Driver):
    """The capacity shape sets the users (no -u); the CLI ends the run when the search is over. Each step
    checks its users, saturation and lateness itself, so the run as a whole adds no such problems."""

    name = "capacity"

    def __init__(self, plan: CapacityPlan, files: Mapping[str, ThresholdFile], shapes: Shapes = ()) -> None:
        self.plan, self.files = plan, files  # files: the thresholds each step is judged by
        self.shapes = shapes  # over arrival rate: the open model's shapes (the first rate, the pool)
        self.by_rate = plan.start_rate is not None
        self.steps: list[dict] = []
        self.stopped_because = ""
        self.inconclusive = False
        self.search: Search | None = None
        self.sampled = False  # this machine's CPU and memory sampled (the target on it): the scaling estimate's
        self.seq = 0

    def locust_files(self) -> list[str]:
        return [CAPACITY_SHAPE]

    def locust_args(self, opts: RunOptions, host: str) -> list[str]:
        return ["--headless", "--host", host, "--only-summary", "--stop-timeout", "2"]

    def child_config(self, common: ChildConfig, opts: RunOptions, run_dir: str) -> ChildConfig:
        config = replace(common, dir=run_dir, duration=None)  # no planned time: the CLI ends the run
        return replace(config, arrival=child_shapes(self.shapes)) if self.by_rate else config

    def samples_locally(self, host: str, thresholds: Mapping[str, ThresholdFile]) -> bool:
        """Whenever the target is on this machine: the scaling estimate's resource use per user."""
        return is_loopback(host)

    def banner(self, session: Running) -> str | None:
        head = _ROW.format("rate/s" if self.by_rate else "users", "req/s", "p50", "p95", "p99", "errors", "status")
        return head + ("  dropped" if self.by_rate else "")  # the steps' table

    def drive(self, session: Running) -> None:
        self.main, self.intr, self.opts, self.run_dir = session.procs[0], session.intr, session.opts, session.run_dir
        self.say = session.say
        self.sampled = is_loopback(session.host)
        self.search = self.plan.search()
        try:
            self._search(time.monotonic())
        finally:
            rundir.write_json(os.path.join(self.run_dir, CONTROL), {"seq": self.seq + 1, "stop": True})
            self._await_exit(session.rec)

    def _search(self, started: float) -> None:
        settle = self.plan.settle
        while (users := self._next_users(started)) is not None:
            if self.by_rate and self.steps and self.steps[-1]["status"] != "pass":
                if not self._pause(settle):
                    return
                settle = self.plan.settle
            self.seq += 1
            step = self._step(self.seq, users, settle)
            if step is None:
                return
            self.steps.append(step)
            self.say(capacity_rate.row(step, _row(step, f"{users:g}")) if self.by_rate else _row(step))
            # a load not offered (too many starts dropped) is an upper bound like a fail; a run problem ends the search
            if step["status"] == "inconclusive" and (step.get("offered", True) or step["verdict"].problems):
                self.stopped_because = (
                    f"the step of {self.plan.quantity.text(users)} is inconclusive: {step['reasons'][0]}"
                )
                self.inconclusive = True
                return
            self.search.record(users, step["status"])
            settle = _settle(self.plan, step)

    def _next_users(self, started: float) -> float | None:
        """The next step's users; None, with the reason noted, when the search is over or out of budget."""
        search = self.search
        users = search.next_users()
        if users is None:
            self.stopped_because = search.why_done()
            return None
        if time.monotonic() - started + self.plan.step_worst_s(self.opts.flush_interval) > self.plan.budget:
            self.stopped_because = (
                f"--budget {mmss(self.plan.budget)} would run out during the next "
                f"step ({self.plan.quantity.text(users)})"
            )
            self.inconclusive = search.hi is None or search.lo is None
            return None
        return users

    def _pause(self, drain: float) -> bool:
        """Over rate, after a step that did not pass: no starts for ``drain`` seconds, so the requests its
        overload queued are answered before the next rate (an open model's backlog drains at the capacity
        minus the rate offered: at a rate just below the capacity, that would take most of the next step)."""
        self.seq += 1
        seq, users = self.seq, self.plan.max_users
        rundir.write_json(
            os.path.join(self.run_dir, CONTROL), {"seq": seq, "users": users, "spawn_rate": float(users), "rate": 0.0}
        )
        applied = self._until(lambda: _applied(self._state(), seq, users, True), time.time() + APPLY_TIMEOUT_S)
        return applied and self._until(lambda: False, time.time() + drain, timeout_ok=True)

    # --- one step -------------------------------------------------------------------------------
    def _step(self, seq: int, value: float, settle: float) -> dict | None:
        if self.by_rate:  # one pool, spawned at once by the first step; the step's rate to the dispatchers
            users = self.plan.max_users
            control = {"seq": seq, "users": users, "spawn_rate": float(users), "rate": value}
        else:
            users = int(value)
            running = self.steps[-1]["users"] if self.steps else 0
            rate = float(max(1, abs(users - running)))  # every step change spawns within about a second
            control = {"seq": seq, "users": users, "spawn_rate": rate}
        rundir.write_json(os.path.join(self.run_dir, CONTROL), control)
        if not self._until(
            lambda: _applied(self._state(), seq, users, self.by_rate), time.time() + APPLY_TIMEOUT_S + 2
        ):
            if not self.stopped_because:
                self.stopped_because = f"the load generators did not reach {users} users within {APPLY_TIMEOUT_S:g}s"
                self.inconclusive = True
            return None
        begun = time.time()
        m_start = begun + settle
        m_end = m_start + self.plan.step_duration
        step = self._measure(value, begun, m_start, m_end)
        if step is None:
            return None
        if step["straddles"] and step["status"] in ("pass", "fail"):  # measure once more, over a longer window
            longer = self._measure(value, begun, m_start, m_end + self.plan.step_duration)
            if longer is None:
                return None
            step = longer
            step["extended"] = True
            if step["straddles"] and step["status"] in ("pass", "fail"):
                step["reasons"].append(
                    f"unresolved: the 95% interval of {', '.join(step['straddles'])} still "
                    f"straddles the alert level after one extension (measured {step['status']})"
                )
                step["status"] = "unresolved"
        return step

    def _measure(self, value: float, begun: float, m_start: float, m_end: float) -> dict | None:
        if not self._until(lambda: False, m_end + lag(self.opts.flush_interval), timeout_ok=True):
            return None
        if self.by_rate and not self._until(
            lambda: capacity_rate.counted(self._state(), m_end),
            time.time() + capacity_rate.COUNTS_WAIT_S,
            timeout_ok=True,
        ):
            return None
        reqs = list(self.opts.requirements)
        table = read_stream(os.path.join(self.run_dir, rundir.STREAM), [*COLUMNS, *SCHEDULE_COLUMNS], dictionary=True)
        summary = step_summary(table, m_start, m_end, requirements=reqs, percentiles=required_percentiles(self.files))
        state = self._state() or {}
        if self.by_rate:
            summary["arrival"] = capacity_rate.window_counts(state, reqs, m_start, m_end)
        problems = [
            *saturation_problems(state.get("cpu") or {}, m_start, m_end),
            *lateness_problems(state.get("schedule") or {}, m_start, m_end),
        ]
        judged = judge_step(self.files, summary, requirements=reqs, problems=problems)
        if self.by_rate:
            return capacity_rate.step_record(
                value,
                self.files,
                summary,
                judged,
                _step_record(self.plan.max_users, begun, m_start, m_end, summary, judged),
            )
        return _step_record(int(value), begun, m_start, m_end, summary, judged)

    # --- waiting ----------------------------------------------------------------------------------
    def _until(self, done: Callable[[], bool], deadline: float, timeout_ok: bool = False) -> bool:
        """Wait until ``done()`` (True) or ``deadline`` (``timeout_ok``); False, with the reason noted, if
        the run ends first."""
        while time.time() < deadline:
            if self.intr.reason:
                self.stopped_because, self.inconclusive = self.intr.reason, True
                return False
            if self.main.poll() is not None:
                self.stopped_because = (
                    f"Locust exited (code {self.main.returncode}) during the search; see {rundir.LOCUST_LOG}"
                )
                self.inconclusive = True
                return False
            if done():
                return True
            time.sleep(0.1)
        return timeout_ok or done()

    def _state(self) -> dict | None:
        try:
            with open(os.path.join(self.run_dir, STATE)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def _await_exit(self, rec: RunRecord) -> None:
        if self.intr.reason:
            rec.interrupted = self.intr.reason
        try:
            self.main.wait(20)
        except subprocess.TimeoutExpired:
            rec.problems.append("Locust did not stop within 20s of the end of the search; it was stopped")
            stop_process(self.main, timeout=8)
        rec.meta["locust_exit_code"] = self.main.returncode


def _applied(state: dict | None, seq: int, users: int, by_rate: bool = False) -> bool:
    done = bool(state) and state.get("seq") == seq and state.get("users") == users and not state.get("spawning")
    return done and (
        not by_rate or (state or {}).get("rated") == seq
    )  # over rate: the dispatchers have the step's rate


def _settle(plan: CapacityPlan, previous: dict) -> float:
    """The next settle part: long enough for the previous step's queues to drain. In a closed loop a
    user has at most one request outstanding, so the backlog is gone once the slowest of them is
    answered: twice the previous step's p99 (capped at one measured part) covers it."""
    p99 = previous.get("p99")
    drain = 2 * p99 / 1000.0 if p99 is not None and math.isfinite(p99) else 0.0
    return max(plan.settle, min(plan.step_duration, drain))


def _step_record(users: int, begun: float, m_start: float, m_end: float, summary: dict, judged) -> dict:
    overall = summary["overall"]
    # the percentiles the gate judged: from the schedule for paced users, unless it fell back to the service
    # latency (an overloaded step, see loadgate.gate.capacity)
    used = next((r.latency for r in judged.verdict.thresholds if r.latency), None)
    paced = used == "intended" or (used is None and bool(overall.get("paced_requests")))
    times = (overall.get("intended_response_time_ms") if paced else None) or overall["response_time_ms"]
    return {
        "users": users,
        "throughput": overall["throughput"],
        "requests": overall["requests"],
        "p50": times.get("p50"),
        "p95": times.get("p95"),
        "p99": times.get("p99"),
        "latency": "intended" if paced else "service",
        "error_rate": overall["error_rate"],
        "status": judged.status,
        "start": m_start,
        "end": m_end,
        "settle_start": begun,
        "extended": False,
        "straddles": list(judged.straddles),
        "limit": judged.limit,
        "reasons": list(judged.verdict.reasons),
        "verdict": judged.verdict,
    }


_ROW = "{:>7}  {:>9}  {:>9}  {:>9}  {:>9}  {:>7}  {}"


def _row(step: dict, first: str | None = None) -> str:
    def ms(v):
        return "-" if v is None else f"{v:.1f}ms"

    return _ROW.format(
        step["users"] if first is None else first,
        f"{step['throughput']:.1f}",
        ms(step["p50"]),
        ms(step["p95"]),
        ms(step["p99"]),
        f"{step['error_rate'] * 100:.2f}%",
        step["status"] + (" (extended)" if step["extended"] else ""),
    )
