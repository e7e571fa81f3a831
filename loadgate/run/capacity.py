"""``loadgate capacity``: one Locust run whose user count a search in this process steers.

:func:`prepare` checks the flags and loads what the run needs; :func:`search_capacity` runs a session with
the capacity driver (:mod:`loadgate.run.drivers.capacity`: the steps, how each is measured and judged) and
writes capacity.json from the steps it measured.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Callable, Mapping

import psutil

from loadgate.analysis.steps import knee
from loadgate.data import rundir
from loadgate.errors import ConfigError
from loadgate.gate.capacity import step_files
from loadgate.gate.thresholds import ThresholdFile, load_thresholds
from loadgate.run import capacity_rate
from loadgate.run.capacity_search import CapacityPlan
from loadgate.run.drivers.capacity import CONTROL, STATE, Capacity
from loadgate.run.options import RunOptions, resolve_options
from loadgate.run.record import RunRecord
from loadgate.run.session import Session
from loadgate.scenarios.catalog import Catalog, check_latency, check_requirements, load_catalog

CAPACITY = rundir.CAPACITY
SCHEMA = "loadgate.capacity/1"
DEFAULT_START_USERS, DEFAULT_MAX_USERS = 10, 1000


@dataclass(frozen=True)
class CapacityResult:
    run_dir: str
    record: RunRecord
    doc: dict  # capacity.json
    best_verdict: object  # the Verdict of the highest passing step, or of the first step
    inconclusive: bool


def prepare(flags: Mapping, command_line: list[str]) -> tuple[RunOptions, CapacityPlan, Catalog, dict]:
    """Check the flags of ``loadgate capacity`` (exit 2 before anything runs) and load what the run needs."""
    reqs = list(dict.fromkeys(flags["requirement"]))
    start, most = flags.get("start_users") or DEFAULT_START_USERS, flags.get("max_users") or DEFAULT_MAX_USERS
    if flags.get("arrival_rate") is None and most < start:
        raise ConfigError(f"--max-users {most}: must be at least --start-users {start}")
    files = load_thresholds(flags["thresholds"])
    catalog = load_catalog(flags["scenarios"])
    check_requirements(catalog, reqs, flags["scenarios"])
    missing = [r for r in reqs if r not in files]
    if missing:
        raise ConfigError(
            f"--requirement {missing[0]}: no threshold file in {flags['thresholds']} says "
            f"'requirement: {missing[0]}'; add {os.path.join(flags['thresholds'], missing[0])}.yaml"
        )
    rates = capacity_rate.rates(flags, files, reqs)  # over arrival rate: (first, bound, pool flag); else None
    run_flags = {
        "requirements": reqs,
        "users": most,
        "spawn_rate": float(most),
        "duration": flags["budget"],
        "warmup": 0.0,
        "host": flags.get("host"),
        "scenarios": flags["scenarios"],
        "thresholds": flags["thresholds"],
        "out": flags["out"],
        "workers": flags.get("workers"),
        "latency_scale": flags.get("target_latency_scale"),
    }
    if rates is not None:  # the open model's options: a pool spawned at once, the first rate for every requirement
        run_flags.update(users=None, spawn_rate=None, arrival_rate=rates[0], max_users=rates[2])
    opts = resolve_options(run_flags, files, command_line)
    used = {r: files[r] for r in reqs}
    check_latency(catalog, used.values())
    if rates is not None:
        capacity_rate.check_files(used, opts.users)
        start = most = opts.users
    plan = CapacityPlan(
        start,
        most,
        flags["step_duration"],
        flags["resolution"],
        flags["budget"],
        flags.get("release"),
        flags.get("release_date"),
        *((rates[0], rates[1]) if rates is not None else ()),
    )
    return opts, plan, catalog, used


def search_capacity(
    opts: RunOptions,
    plan: CapacityPlan,
    catalog: Catalog,
    files: Mapping[str, ThresholdFile],
    say: Callable[[str], None],
) -> CapacityResult:
    """Run the search; leaves samples.parquet, run.json and capacity.json in a new run directory."""
    say(plan.describe(opts.flush_interval))
    by_rate = plan.start_rate is not None
    driver = Capacity(plan, step_files(files, by_rate=by_rate), opts.arrival_shapes)
    rec = Session(opts, catalog, files, say, driver).run()
    for name in (CONTROL, STATE):  # the conversation with the shape is over; capacity.json keeps the result
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(rec.run_dir, name))
    steps = driver.steps
    lo = driver.search.lo if driver.search else None
    hi = driver.search.hi if driver.search else None
    doc = _rate_doc(plan, opts, driver, lo, hi) if by_rate else _users_doc(plan, opts, driver, lo, hi)
    rundir.write_json(os.path.join(rec.run_dir, CAPACITY), doc)
    verdict = (_best(doc, steps) or (steps[0] if steps else {})).get("verdict")
    return CapacityResult(rec.run_dir, rec, doc, verdict, driver.inconclusive)


def _best(doc: dict, steps: list[dict]) -> dict | None:
    """The highest passing step (whose thresholds the verdict shows)."""
    key, found = ("rate", doc["max_rate"]) if doc.get("quantity") == "rate" else ("users", doc["max_users"])
    return next((s for s in steps if s[key] == found and s["status"] == "pass"), None)


def _rate_doc(plan: CapacityPlan, opts: RunOptions, driver: Capacity, lo: float | None, hi: float | None) -> dict:
    """capacity.json of a search over arrival rate: the capacity as iterations/s, with the pool it was found with."""
    steps = driver.steps
    return {
        "schema": SCHEMA,
        "requirements": list(opts.requirements),
        **capacity_rate.rate_doc(steps, lo, hi),
        "pool": plan.max_users,
        "stopped_because": driver.stopped_because,
        "inconclusive": driver.inconclusive,
        "plan": {
            "start_rate": plan.start_rate,
            "max_rate": plan.max_rate,
            "pool": plan.max_users,
            "step_duration": plan.step_duration,
            "settle": plan.settle,
            "resolution": plan.resolution,
            "budget": plan.budget,
        },
        "steps": [{k2: v for k2, v in s.items() if k2 != "verdict"} for s in steps],
        "release": {"label": plan.release, "date": plan.release_date},
        "machine": (
            {"cpu_cores": psutil.cpu_count(), "memory_bytes": psutil.virtual_memory().total, "source": "local"}
            if driver.sampled
            else None
        ),
    }


def _users_doc(plan: CapacityPlan, opts: RunOptions, driver: Capacity, lo: float | None, hi: float | None) -> dict:
    """capacity.json of a search over users."""
    steps = driver.steps
    best = next((s for s in steps if s["users"] == lo and s["status"] == "pass"), None)
    first_bad = next((s for s in steps if s["users"] == hi), None)
    failing = min((s for s in steps if s["status"] == "fail"), key=lambda s: s["users"], default=None)
    k = knee([s["users"] for s in steps], [s["throughput"] for s in steps])
    return {
        "schema": SCHEMA,
        "requirements": list(opts.requirements),
        "max_users": lo,
        "first_failing_users": failing["users"] if failing else None,
        "first_not_passing_users": hi,
        "at_least": bool(lo is not None and hi is None),
        "limit": (failing or first_bad or {}).get("limit"),
        "throughput_at_max": best["throughput"] if best else None,
        "max_throughput": max((s["throughput"] for s in steps if s["status"] == "pass"), default=None),
        "stopped_because": driver.stopped_because,
        "inconclusive": driver.inconclusive,
        "knee": None
        if k is None
        else {
            "users": k.users,
            "throughput": k.throughput,
            "slope_before": k.slope_before,
            "slope_after": k.slope_after,
        },
        "plan": {
            "start_users": plan.start_users,
            "max_users": plan.max_users,
            "step_duration": plan.step_duration,
            "settle": plan.settle,
            "resolution": plan.resolution,
            "budget": plan.budget,
        },
        "steps": [{k2: v for k2, v in s.items() if k2 != "verdict"} for s in steps],
        "release": {"label": plan.release, "date": plan.release_date},
        "machine": (
            {"cpu_cores": psutil.cpu_count(), "memory_bytes": psutil.virtual_memory().total, "source": "local"}
            if driver.sampled
            else None
        ),
    }
