"""``loadgate capacity``: the user count follows a search this process steers, step by step.

Each step: write the users to ``capacity.control.json`` (the shape in the Locust process holds
them), wait until they run, let the previous step's queues drain (the settle part), measure for
``step_duration``, then summarise and gate that window from its own raw samples with the same code
as ``run`` (:mod:`loadgate.analysis.steps`, :mod:`loadgate.gate.capacity`). A step whose interval
straddles an alert level is measured once more over a longer window, then called ``unresolved``.
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
from loadgate.run.capacity_search import CapacityPlan, Search, lag, mmss
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

    def __init__(self, plan: CapacityPlan, files: Mapping[str, ThresholdFile]) -> None:
        self.plan, self.files = plan, files  # files: the thresholds each step is judged by
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
        return replace(common, dir=run_dir, duration=None)  # no planned time: the CLI ends the run

    def samples_locally(self, host: str, thresholds: Mapping[str, ThresholdFile]) -> bool:
        """Whenever the target is on this machine: the scaling estimate's resource use per user."""
        return is_loopback(host)

    def banner(self, session: Running) -> str | None:
        return _ROW.format("users", "req/s", "p50", "p95", "p99", "errors", "status")  # the steps' table

    def drive(self, session: Running) -> None:
        self.main, self.intr, self.opts, self.run_dir = session.procs[0], session.intr, session.opts, session.run_dir
        self.say = session.say
        self.sampled = is_loopback(session.host)
        self.search = Search(self.plan.start_users, self.plan.max_users, self.plan.resolution)
        try:
            self._search(time.monotonic())
        finally:
            rundir.write_json(os.path.join(self.run_dir, CONTROL), {"seq": self.seq + 1, "stop": True})
            self._await_exit(session.rec)

    def _search(self, started: float) -> None:
        settle = self.plan.settle
        while (users := self._next_users(started)) is not None:
            self.seq += 1
            step = self._step(self.seq, users, settle)
            if step is None:
                return
            self.steps.append(step)
            self.say(_row(step))
            if step["status"] == "inconclusive":
                self.stopped_because = f"the step of {users} users is inconclusive: {step['reasons'][0]}"
                self.inconclusive = True
                return
            self.search.record(users, step["status"])
            settle = _settle(self.plan, step)

    def _next_users(self, started: float) -> int | None:
        """The next step's users; None, with the reason noted, when the search is over or out of budget."""
        search = self.search
        users = search.next_users()
        if users is None:
            self.stopped_because = search.why_done()
            return None
        if time.monotonic() - started + self.plan.step_worst_s(self.opts.flush_interval) > self.plan.budget:
            self.stopped_because = (f"--budget {mmss(self.plan.budget)} would run out during the next "
                                    f"step ({users} users)")
            self.inconclusive = search.hi is None or search.lo is None
            return None
        return users

    # --- one step -------------------------------------------------------------------------------
    def _step(self, seq: int, users: int, settle: float) -> dict | None:
        running = self.steps[-1]["users"] if self.steps else 0
        rate = float(max(1, abs(users - running)))  # every step change spawns within about a second
        rundir.write_json(os.path.join(self.run_dir, CONTROL), {"seq": seq, "users": users, "spawn_rate": rate})
        if not self._until(lambda: _applied(self._state(), seq, users), time.time() + APPLY_TIMEOUT_S + 2):
            if not self.stopped_because:
                self.stopped_because = f"the load generators did not reach {users} users within {APPLY_TIMEOUT_S:g}s"
                self.inconclusive = True
            return None
        begun = time.time()
        m_start = begun + settle
        m_end = m_start + self.plan.step_duration
        step = self._measure(users, begun, m_start, m_end)
        if step is None:
            return None
        if step["straddles"] and step["status"] in ("pass", "fail"):  # measure once more, over a longer window
            longer = self._measure(users, begun, m_start, m_end + self.plan.step_duration)
            if longer is None:
                return None
            step = longer
            step["extended"] = True
            if step["straddles"] and step["status"] in ("pass", "fail"):
                step["reasons"].append(f"unresolved: the 95% interval of {', '.join(step['straddles'])} still "
                                       f"straddles the alert level after one extension (measured {step['status']})")
                step["status"] = "unresolved"
        return step

    def _measure(self, users: int, begun: float, m_start: float, m_end: float) -> dict | None:
        if not self._until(lambda: False, m_end + lag(self.opts.flush_interval), timeout_ok=True):
            return None
        reqs = list(self.opts.requirements)
        table = read_stream(os.path.join(self.run_dir, rundir.STREAM), [*COLUMNS, *SCHEDULE_COLUMNS], dictionary=True)
        summary = step_summary(table, m_start, m_end, requirements=reqs,
                               percentiles=required_percentiles(self.files))
        state = self._state() or {}
        problems = [*saturation_problems(state.get("cpu") or {}, m_start, m_end),
                    *lateness_problems(state.get("schedule") or {}, m_start, m_end)]
        judged = judge_step(self.files, summary, requirements=reqs, problems=problems)
        return _step_record(users, begun, m_start, m_end, summary, judged)

    # --- waiting ----------------------------------------------------------------------------------
    def _until(self, done: Callable[[], bool], deadline: float, timeout_ok: bool = False) -> bool:
        """Wait until ``done()`` (True) or ``deadline`` (``timeout_ok``); False, with the reason noted, if
        the run ends first."""
        while time.time() < deadline:
            if self.intr.reason:
                self.stopped_because, self.inconclusive = self.intr.reason, True
                return False
            if self.main.poll() is not None:
                self.stopped_because = f"Locust exited (code {self.main.returncode}) during the search; see {rundir.LOCUST_LOG}"
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


def _applied(state: dict | None, seq: int, users: int) -> bool:
    return bool(state) and state.get("seq") == seq and state.get("users") == users and not state.get("spawning")


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
    return {"users": users, "throughput": overall["throughput"], "requests": overall["requests"],
            "p50": times.get("p50"), "p95": times.get("p95"), "p99": times.get("p99"),
            "latency": "intended" if paced else "service", "error_rate": overall["error_rate"],
            "status": judged.status, "start": m_start, "end": m_end, "settle_start": begun,
            "extended": False, "straddles": list(judged.straddles), "limit": judged.limit,
            "reasons": list(judged.verdict.reasons), "verdict": judged.verdict}


_ROW = "{:>7}  {:>9}  {:>9}  {:>9}  {:>9}  {:>7}  {}"


def _row(step: dict) -> str:
    def ms(v):
        return "-" if v is None else f"{v:.1f}ms"
    return _ROW.format(step["users"], f"{step['throughput']:.1f}", ms(step["p50"]), ms(step["p95"]),
                       ms(step["p99"]), f"{step['error_rate'] * 100:.2f}%",
                       step["status"] + (" (extended)" if step["extended"] else ""))
