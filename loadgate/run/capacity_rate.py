"""``loadgate capacity --arrival-rate``: what a search over arrival rate adds to the capacity search.

The search, the driver and the steps are the user search's (:mod:`loadgate.run.capacity_search`,
:mod:`loadgate.run.drivers.capacity`). Here: each step's schedule counts over its window (from the
state the capacity shape writes), the step's record with them, whether its load was offered (a step
whose dropped share is above ``load.arrival.max_dropped`` has inconclusive latency, as in ``run``, and is
never a pass), what broke first, and capacity.json's figures as a rate (iterations/s).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from loadgate.analysis.arrival import step_counts
from loadgate.analysis.steps import knee
from loadgate.errors import ConfigError
from loadgate.gate import dropped
from loadgate.gate.arrival import DEFAULT_MAX_DROPPED
from loadgate.gate.conditions import DROPPED, metric_kind
from loadgate.gate.thresholds import ThresholdFile

COUNTS_WAIT_S = 5.0  # after a step's window and the samples' lag: this long, at most, for its last second's counts
COUNTED_AFTER_S = 2.0  # a second's counts reach the state within a report (1 s) and a shape tick (1 s)
DOUBLINGS = 16  # without --max-rate, the search doubles up to 16 times the first rate


def rates(
    flags: Mapping[str, Any], files: Mapping[str, ThresholdFile], reqs: Sequence[str]
) -> tuple[float, float, int | None] | None:
    """(first rate, --max-rate, the pool for every requirement or None for the files' max_users) of a search over
    arrival rate: ``--arrival-rate``, or the threshold files' ``load.arrival`` when no ``--start-users`` is given.
    None: a search over users. Raises ConfigError (exit 2) for flags that contradict each other."""
    rate, bound, start_users = flags.get("arrival_rate"), flags.get("max_rate"), flags.get("start_users")
    filed = [files[r].load.arrival for r in reqs if r in files and files[r].load.arrival is not None]
    if rate is None and (start_users is not None or not filed):
        if bound is not None:
            raise ConfigError(
                f"--max-rate {bound:g}/s: the bound of a search over arrival rate; give its first rate "
                "too (--arrival-rate 50/s, or load.arrival in the threshold file), or drop --max-rate "
                "to search over users"
            )
        return None
    if start_users is not None:
        raise ConfigError(
            f"--start-users {start_users} with --arrival-rate {rate:g}/s: a search over arrival rate "
            "holds one pool of --max-users users and steps the rate; drop --start-users, or drop "
            "--arrival-rate to search over users"
        )
    first = float(rate) if rate is not None else float(filed[0].rate or filed[0].peak)
    most = float(bound) if bound is not None else first * DOUBLINGS
    if most < first:
        raise ConfigError(f"--max-rate {most:g}/s: must be at least the first rate {first:g}/s")
    pool = flags.get("max_users")
    if pool is None and not all(files[r].load.arrival and files[r].load.arrival.max_users for r in reqs):
        pool = max(1, math.ceil(most))  # a second's worth of starts at the highest rate searched
    return first, most, pool


def check_files(files: Mapping[str, ThresholdFile], pool: int) -> None:
    """A search over rate finds no user count: ``max_users`` thresholds and a peak in users are refused."""
    for req, f in files.items():
        for t in f.thresholds:
            if t.metric == "max_users":
                raise ConfigError(
                    f"{t.source}: metric: max_users with a search over arrival rate, which holds one pool "
                    f"of {pool} users and finds no user count; use metric: max_throughput (the most "
                    "iterations/s within the alerts), or search over users without --arrival-rate"
                )
        peak = f.capacity.peak if f.capacity is not None else None
        if peak is not None and peak.kind == "users":
            where = f.capacity.source if f.capacity is not None and f.capacity.source else f.path
            raise ConfigError(
                f"{where}: capacity.peak: {peak.text} for {req}, but a search over arrival rate finds a "
                "rate; declare the peak as a rate (capacity: {peak: {rate: 200/s}}), or search over "
                "users without --arrival-rate"
            )


def counted(state: Mapping[str, Any] | None, m_end: float) -> bool:
    """Whether the state was written late enough to hold every whole second of a window ending at ``m_end``."""
    t = (state or {}).get("t")
    return isinstance(t, (int, float)) and t >= math.floor(m_end) + COUNTED_AFTER_S


def window_counts(state: Mapping[str, Any], reqs: Sequence[str], m_start: float, m_end: float) -> dict[str, Any]:
    """The summary's ``arrival`` section of one step: each requirement's counts of the whole seconds in its
    measured window (a requirement without counts gets the reason, which makes its latency inconclusive)."""
    return step_counts(state.get("arrival") or {}, reqs, m_start, m_end)


def _shortfall(files: Mapping[str, ThresholdFile], summary: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The first requirement whose load was not offered in the step: (its reason, the step's limit), or None."""
    for req in sorted(summary.get("arrival") or {}):
        shape = files[req].load.arrival if req in files else None
        why = dropped.not_offered(req, shape, summary)
        if why is None:
            continue
        section = summary["arrival"][req]
        share = section.get("dropped_share")
        limit = shape.max_dropped if shape is not None else DEFAULT_MAX_DROPPED
        return why, {
            "requirement": req,
            "metric": DROPPED,
            "request": None,
            "value": None if share is None else share * 100,
            "alert": f">{limit * 100:g}%",
            "unit": "%",
            "max_users": section.get("max_users"),
        }
    return None


def step_record(
    rate: float, files: Mapping[str, ThresholdFile], summary: Mapping[str, Any], judged: Any, base: dict[str, Any]
) -> dict[str, Any]:
    """The step's record over rate: the rate first, then the user search's record (``users`` is the pool)
    and the schedule's counts of the window. ``offered`` is False when too many starts were dropped."""
    counts = list((summary.get("arrival") or {}).values())

    def total(key: str) -> int:
        return sum(int(c.get(key) or 0) for c in counts)

    scheduled, started, lost = total("scheduled"), total("started"), total("dropped")
    seconds = max((int(c.get("seconds") or 0) for c in counts), default=0)
    short = _shortfall(files, summary)
    step = {
        "rate": rate,
        **base,
        "offered_rate": scheduled / seconds if seconds else None,
        "achieved_rate": started / seconds if seconds else None,
        "scheduled": scheduled,
        "dropped": lost,
        "dropped_share": lost / scheduled if scheduled else None,
        "busy_max": max((int(c.get("busy_max") or 0) for c in counts), default=0),
        "offered": short is None,
    }
    if short is not None and step["limit"] is None:
        step["limit"] = short[1]
    return step


def row(step: Mapping[str, Any], text: str) -> str:
    """A step's line of the table over rate: the user search's columns, and the dropped share."""
    share = step.get("dropped_share")
    return text + ("        -" if share is None else f"  {share * 100:6.2f}%")


def broke_first(limit: Mapping[str, Any] | None) -> str | None:
    """What broke first, in words: latency, errors, dropped iterations (the pool exhausted), or the metric."""
    if not limit:
        return None
    metric = limit.get("metric")
    if metric == DROPPED:
        pool = limit.get("max_users")
        return (
            "dropped iterations: the pool" + (f" of {pool} users" if pool else "") + " was exhausted, so the "
            "load asked for was not offered"
        )
    if metric == "error_rate":
        return "errors"
    return "latency" if metric_kind(str(metric)) == "time" else str(metric)


def rate_doc(steps: Sequence[dict[str, Any]], lo: float | None, hi: float | None) -> dict[str, Any]:
    """capacity.json's figures of a search over rate: the capacity as iterations/s, what broke first."""
    best = next((s for s in steps if s["rate"] == lo and s["status"] == "pass"), None)
    first_bad = min(
        (s for s in steps if s["status"] != "pass" and s.get("limit")), key=lambda s: s["rate"], default=None
    )
    failing = min((s for s in steps if s["status"] == "fail"), key=lambda s: s["rate"], default=None)
    limit = (first_bad or {}).get("limit")
    k = knee([s["rate"] for s in steps], [s["throughput"] for s in steps])
    return {
        "quantity": "rate",
        "max_rate": lo,
        "first_failing_rate": failing["rate"] if failing else None,
        "first_not_passing_rate": hi,
        "at_least": bool(lo is not None and hi is None),
        "max_users": None,
        "first_failing_users": None,
        "first_not_passing_users": None,
        "limit": limit,
        "broke_first": broke_first(limit),
        "throughput_at_max": best["throughput"] if best else None,
        "max_throughput": lo,
        "knee": None
        if k is None
        else {
            "rate": k.users,
            "throughput": k.throughput,
            "slope_before": k.slope_before,
            "slope_after": k.slope_after,
        },
    }
