"""``loadgate capacity``: one Locust run whose user count a search in this process steers.

Each step: write the users to ``capacity.control.json`` (the shape in the Locust process holds
them), wait until they run, let the previous step's queues drain (the settle part), measure for
``step_duration``, then summarise and gate that window from its own raw samples with the same code
as ``run`` (:mod:`loadgate.analysis.steps`, :mod:`loadgate.gate.capacity`). A step whose interval
straddles an alert level is measured once more over a longer window, then called ``unresolved``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import psutil

from loadgate.analysis.schedule import SCHEDULE_COLUMNS
from loadgate.analysis.steps import knee, step_summary
from loadgate.analysis.summary import COLUMNS
from loadgate.data import rundir
from loadgate.data.samples import read_stream
from loadgate.gate.capacity import judge_step, step_files
from loadgate.errors import ConfigError
from loadgate.gate.thresholds import ThresholdFile, load_thresholds, required_percentiles
from loadgate.run.capacity_search import Search, worst_case_steps
from loadgate.run.local_resources import LocalSampler
from loadgate.run.options import RunOptions, resolve_options
from loadgate.run.problems import lateness_problems, saturation_problems
from loadgate.run.processes import stop_process
from loadgate.run.runner import RunRecord, execute
from loadgate.sources.collect import is_loopback
from loadgate.scenarios.catalog import Catalog, check_latency, check_requirements, load_catalog

CONTROL, STATE, CAPACITY = rundir.CAPACITY_CONTROL, rundir.CAPACITY_STATE, rundir.CAPACITY
SCHEMA = "loadgate.capacity/1"
SETTLE_SHARE = 0.25     # settle part: at least this share of the measured part ...
SETTLE_MIN_S = 2.0      # ... and at least this long; longer after slow steps (see _settle)
APPLY_TIMEOUT_S = 30.0  # the shape has this long (plus the spawn time) to reach a step's users


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
        return 1 + (self.settle + self.step_duration) + 2 * self.step_duration + _lag(flush)

    def describe(self, flush: float) -> str:
        worst = min(self.budget, self.worst_steps * self.step_worst_s(flush))
        return (f"loadgate capacity: plan: from {self.start_users} users doubling up to {self.max_users}, then "
                f"bisecting to within {self.resolution * 100:g}%; at most {self.worst_steps} steps of "
                f"{self.settle:g}s settle + {self.step_duration:g}s measured (once more when unresolved); "
                f"worst case {_mmss(worst)} (budget {_mmss(self.budget)})")


@dataclass
class _Driver:
    """Steers the run through the search; called by :func:`execute` in place of the plain wait."""

    plan: CapacityPlan
    files: Mapping[str, ThresholdFile]
    say: Callable[[str], None]
    steps: list[dict] = field(default_factory=list)
    stopped_because: str = ""
    inconclusive: bool = False
    search: Search | None = None
    all_files: Mapping[str, ThresholdFile] = field(default_factory=dict)  # as the runner saw them
    sampler: LocalSampler | None = None
    sampled: bool = False

    def __call__(self, procs: list[subprocess.Popen], opts: RunOptions, intr, rec: RunRecord, progress) -> None:
        self.main, self.intr, self.opts, self.run_dir = procs[0], intr, opts, rec.run_dir
        started = time.monotonic()
        self.search = search = Search(self.plan.start_users, self.plan.max_users, self.plan.resolution)
        self.say(_ROW.format("users", "req/s", "p50", "p95", "p99", "errors", "status"))
        seq, settle = 0, self.plan.settle
        try:
            self.sampled = self._sample(rec)
            while True:
                users = search.next_users()
                if users is None:
                    self.stopped_because = search.why_done()
                    break
                if time.monotonic() - started + self.plan.step_worst_s(opts.flush_interval) > self.plan.budget:
                    self.stopped_because = (f"--budget {_mmss(self.plan.budget)} would run out during the next "
                                            f"step ({users} users)")
                    self.inconclusive = search.hi is None or search.lo is None
                    break
                seq += 1
                step = self._step(seq, users, settle)
                if step is None:
                    break
                self.steps.append(step)
                self.say(_row(step))
                if step["status"] == "inconclusive":
                    self.stopped_because = f"the step of {users} users is inconclusive: {step['reasons'][0]}"
                    self.inconclusive = True
                    break
                search.record(users, step["status"])
                settle = _settle(self.plan, step)
        finally:
            if self.sampler is not None:
                self.sampler.__exit__(None, None, None)
            rundir.write_json(os.path.join(self.run_dir, CONTROL), {"seq": seq + 1, "stop": True})
            self._await_exit(rec)

    def _sample(self, rec: RunRecord) -> bool:
        """Sample this machine's CPU and memory once a second (the scaling estimate's resource use per user)
        when the target is on it; the runner already does when a threshold asks for local resources."""
        if not is_loopback(rec.meta.get("host")):
            return False
        if not any(t.resource is not None and t.resource.source == "local"
                   for tf in self.all_files.values() for t in tf.thresholds):
            self.sampler = LocalSampler(self.run_dir).__enter__()
        return True

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
        if not self._until(lambda: False, m_end + _lag(self.opts.flush_interval), timeout_ok=True):
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


def _lag(flush: float) -> float:
    """After a window ends: the recorder's next two flushes, so its last requests are in the stream."""
    return 2 * flush + 0.5


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


def _mmss(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


@dataclass(frozen=True)
class CapacityResult:
    run_dir: str
    record: RunRecord
    doc: dict                 # capacity.json
    best_verdict: object      # the Verdict of the highest passing step, or of the first step
    inconclusive: bool


def prepare(flags: Mapping, command_line: list[str]) -> tuple[RunOptions, CapacityPlan, Catalog, dict]:
    """Check the flags of ``loadgate capacity`` (exit 2 before anything runs) and load what the run needs."""
    reqs = list(dict.fromkeys(flags["requirement"]))
    start, most = flags["start_users"], flags["max_users"]
    if most < start:
        raise ConfigError(f"--max-users {most}: must be at least --start-users {start}")
    files = load_thresholds(flags["thresholds"])
    catalog = load_catalog(flags["scenarios"])
    check_requirements(catalog, reqs, flags["scenarios"])
    missing = [r for r in reqs if r not in files]
    if missing:
        raise ConfigError(f"--requirement {missing[0]}: no threshold file in {flags['thresholds']} says "
                          f"'requirement: {missing[0]}'; add {os.path.join(flags['thresholds'], missing[0])}.yaml")
    run_flags = {"requirements": reqs, "users": most, "spawn_rate": float(most), "duration": flags["budget"],
                 "warmup": 0.0, "host": flags.get("host"), "scenarios": flags["scenarios"],
                 "thresholds": flags["thresholds"], "out": flags["out"], "workers": flags.get("workers"),
                 "latency_scale": flags.get("target_latency_scale")}
    opts = dataclasses.replace(resolve_options(run_flags, files, command_line), capacity=True)
    used = {r: files[r] for r in reqs}
    check_latency(catalog, used.values())
    plan = CapacityPlan(start, most, flags["step_duration"], flags["resolution"], flags["budget"],
                        flags.get("release"), flags.get("release_date"))
    return opts, plan, catalog, used


def search_capacity(opts: RunOptions, plan: CapacityPlan, catalog: Catalog,
                    files: Mapping[str, ThresholdFile], say: Callable[[str], None]) -> CapacityResult:
    """Run the search; leaves samples.parquet, run.json and capacity.json in a new run directory."""
    judged = step_files(files)
    say(plan.describe(opts.flush_interval))
    driver = _Driver(plan, judged, say, all_files=files)
    rec = execute(opts, catalog, files, say, drive=driver)
    for name in (CONTROL, STATE):  # the conversation with the shape is over; capacity.json keeps the result
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(rec.run_dir, name))
    steps = driver.steps
    lo = driver.search.lo if driver.search else None
    hi = driver.search.hi if driver.search else None
    best = next((s for s in steps if s["users"] == lo and s["status"] == "pass"), None)
    first_bad = next((s for s in steps if s["users"] == hi), None)
    failing = min((s for s in steps if s["status"] == "fail"), key=lambda s: s["users"], default=None)
    k = knee([s["users"] for s in steps], [s["throughput"] for s in steps])
    doc = {
        "schema": SCHEMA, "requirements": list(opts.requirements),
        "max_users": lo, "first_failing_users": failing["users"] if failing else None,
        "first_not_passing_users": hi,
        "at_least": bool(lo is not None and hi is None),
        "limit": (failing or first_bad or {}).get("limit"),
        "throughput_at_max": best["throughput"] if best else None,
        "max_throughput": max((s["throughput"] for s in steps if s["status"] == "pass"), default=None),
        "stopped_because": driver.stopped_because, "inconclusive": driver.inconclusive,
        "knee": None if k is None else {"users": k.users, "throughput": k.throughput,
                                        "slope_before": k.slope_before, "slope_after": k.slope_after},
        "plan": {"start_users": plan.start_users, "max_users": plan.max_users, "step_duration": plan.step_duration,
                 "settle": plan.settle, "resolution": plan.resolution, "budget": plan.budget},
        "steps": [{k2: v for k2, v in s.items() if k2 != "verdict"} for s in steps],
        "release": {"label": plan.release, "date": plan.release_date},
        "machine": ({"cpu_cores": psutil.cpu_count(), "memory_bytes": psutil.virtual_memory().total,
                     "source": "local"} if driver.sampled else None),
    }
    rundir.write_json(os.path.join(rec.run_dir, CAPACITY), doc)
    verdict = (best or (steps[0] if steps else {})).get("verdict")
    return CapacityResult(rec.run_dir, rec, doc, verdict, driver.inconclusive)
