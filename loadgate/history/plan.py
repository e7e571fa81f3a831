"""The capacity plan of a ``loadgate capacity`` run: where it stands against the declared peak, where the
trend of its earlier releases leads, and what the peak would need — every figure naming the run it is from.

Assembled from the run's capacity.json and verdict, the threshold files' ``capacity:`` block (peak, growth,
limits) and the capacity runs recorded before it in ``history.sqlite`` ("as of this run": re-rendering an
old run later gives the same plan). The arithmetic is :mod:`loadgate.analysis.plan`'s.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from loadgate.analysis import plan as calc
from loadgate.data.run_doc import read_run
from loadgate.errors import ConfigError
from loadgate.gate.headroom import capacity_figure
from loadgate.gate.plan_settings import CapacitySettings
from loadgate.gate.thresholds import ThresholdFile
from loadgate.history import capacity_store, store
from loadgate.history.plan_scaling import scaling

# The commits between two releases: (older commit, newer commit) -> [{"commit", "subject", ...}] or None.
# Nothing here reads git; a commit lister registered with set_commit_lister fills the list, and without one
# the plan names the range (``git log OLD..NEW`` lists it).
HISTORY_LIMIT = 20  # capacity runs in the plan's history, this one included
CommitLister = Callable[[str, str], Sequence[Mapping] | None]
_commit_lister: CommitLister | None = None


def set_commit_lister(lister: CommitLister | None) -> None:
    """Register how to list the commits between two commits (None: name the range only)."""
    global _commit_lister
    _commit_lister = lister


def commits_between(old: str | None, new: str | None) -> list[dict] | None:
    """The commits from ``old`` (excluded) to ``new``, from the registered lister; None when unknown."""
    if not old or not new or _commit_lister is None:
        return None
    got = _commit_lister(old, new)
    return None if got is None else [dict(c) for c in got]


def settings_of(files: Mapping[str, ThresholdFile], requirements: Sequence[str]) -> tuple[str | None, CapacitySettings]:
    """The first of ``requirements`` whose threshold file has a ``capacity:`` block, and that block."""
    for req in requirements:
        tf = files.get(req)
        if tf is not None and tf.capacity is not None:
            return req, tf.capacity
    return None, CapacitySettings()


def build_plan(
    run_dir: str, run: Mapping, capacity: Mapping, files: Mapping[str, ThresholdFile], verdict: Mapping
) -> dict:
    """The plan (JSON-ready) of the capacity run in ``run_dir``; see docs/capacity-planning.md."""
    reqs = list(run.get("requirements") or [])
    req, settings = settings_of(files, reqs)
    run_id = os.path.basename(os.path.abspath(run_dir))
    label, dated = capacity_store.release_of(capacity, run)
    by_rate = capacity.get("quantity") == "rate"  # a search over arrival rate found iterations/s
    kind = settings.peak.kind if settings.peak else ("rate" if by_rate else "users")
    unit = "users" if kind == "users" else "iterations/s" if by_rate else "req/s"
    value, upper = capacity_figure(capacity, kind)
    this = {
        "run_id": run_id,
        "release": label,
        "dated": dated,
        "capacity": value,
        "upper": upper,
        "at_least": bool(capacity.get("at_least")),
        "commit": (run.get("git") or {}).get("commit"),
        "verdict": verdict.get("verdict"),
        "peak": settings.peak.value if settings.peak else None,
        "current": True,
    }
    runs = [*_earlier(run_dir, reqs, run_id, dated, kind, by_rate), this]
    fit_runs = [r for r in runs if r["capacity"] is not None and not r["at_least"] and r["dated"] is not None]
    trend = calc.fit_trend([r["dated"] for r in fit_runs], [r["capacity"] for r in fit_runs])
    growth = settings.growth
    doc = {
        "run_id": run_id,
        "release": label,
        "dated": dated,
        "requirement": req,
        "unit": unit,
        "capacity": {
            "value": value,
            "upper": upper,
            "at_least": this["at_least"],
            "run": run_id,
            "knee": capacity.get("knee"),
            "throughput_at_max": capacity.get("throughput_at_max"),
            "max_users": capacity.get("max_users"),
            **({"broke_first": capacity["broke_first"]} if capacity.get("broke_first") else {}),
        },
        "peak": None
        if settings.peak is None
        else {
            "kind": kind,
            "value": settings.peak.value,
            "unit": unit,
            "text": settings.peak.text,
            "source": settings.source,
        },
        "headroom": _headroom(verdict, req, run_id),
        "history": runs,
        "trend": _trend(trend, fit_runs),
        "growth": {
            "monthly": growth,
            "text": settings.growth_text,
            "source": f"declared in {settings.source}" if growth is not None else None,
        },
        "regression": _regression(verdict, run_dir, run, reqs, run_id),
        "scaling": scaling(run_dir, capacity, settings, files[req].load.resources if req else None, kind, run_id),
    }
    doc["runway"] = _runway(doc, trend, growth)
    return doc


def _earlier(
    run_dir: str, reqs: Sequence[str], run_id: str, dated: float | None, kind: str, by_rate: bool
) -> list[dict]:
    """The capacity runs of the same requirements recorded before this one (release date up to this one's),
    in this one's unit: a search over arrival rate is compared with the rates earlier such searches found
    (iterations/s), a search over users with user counts or the throughput at capacity (req/s)."""
    try:
        rows = capacity_store.capacity_runs(store.db_of_run(run_dir), reqs)
    except (ConfigError, OSError, sqlite3.Error):  # unreadable history: the plan stands on this run alone
        return []
    out = []
    for r in rows:
        if r["run_id"] == run_id or r["dated"] is None or (dated is not None and r["dated"] > dated):
            continue
        if (r["quantity"] == "rate") != by_rate:  # iterations/s and users (or req/s) do not share a trend
            continue
        fig, upper = _figure_of(r, kind)
        out.append(
            {
                "run_id": r["run_id"],
                "release": r["release"],
                "dated": r["dated"],
                "capacity": None if fig is None or r["inconclusive"] else float(fig),
                "upper": upper,
                "at_least": r["at_least"],
                "commit": r["git_commit"],
                "verdict": r["verdict"],
                "peak": r["peak"],
                "current": False,
            }
        )
    return out[-(HISTORY_LIMIT - 1) :]


def _figure_of(r: Mapping[str, Any], kind: str) -> tuple[Any, Any]:
    """(capacity, upper end of its bracket) of a history row, in the plan's unit."""
    if r["quantity"] == "rate":  # a search over arrival rate found iterations/s and no user count
        return (None, None) if kind == "users" else (r["max_rate"], r["first_not_passing_rate"])
    if kind == "users":
        return r["max_users"], r["first_not_passing_users"]
    return r["throughput_at_max"], None


def _headroom(verdict: Mapping, req: str | None, run_id: str) -> dict | None:
    for t in verdict.get("thresholds") or ():
        if t.get("metric") == "headroom" and t.get("requirement") == req:
            alert = t.get("alert") or ""
            return {
                "value": t.get("value"),
                "interval": t.get("ci95"),
                "target": t.get("target"),
                "alert": t.get("alert"),
                "status": t.get("status"),
                "run": run_id,
                "source": t.get("source"),
                "alert_level": _level(alert),
            }
    return None


def _level(text: str) -> float | None:
    """The headroom an alert like ``<20%`` leaves: 0.2."""
    from loadgate.gate.conditions import parse_condition

    try:
        return parse_condition(text, "ratio", "headroom").value if text else None
    except ValueError:
        return None


def _trend(trend: calc.Trend | None, fit_runs: Sequence[Mapping]) -> dict:
    base = {
        "method": "least squares of ln(capacity) on the release date",
        "min_runs": calc.MIN_FIT_RUNS,
        "runs": [r["run_id"] for r in fit_runs],
    }
    if trend is None:
        return {
            **base,
            "n": len(fit_runs),
            "monthly": None,
            "reason": f"{len(fit_runs)} run(s) with a bracketed capacity; a trend needs {calc.MIN_FIT_RUNS} "
            "on at least two dates",
        }
    return {
        **base,
        "n": trend.n,
        "monthly": trend.monthly,
        "slope_per_day": trend.slope_per_day,
        "intercept": trend.intercept,
        "t0": trend.t0,
        "r2": trend.r2,
        "fitted": [{"run_id": r["run_id"], "dated": r["dated"], "value": trend.at(r["dated"])} for r in fit_runs],
    }


def _runway(doc: Mapping, trend: calc.Trend | None, growth: float | None) -> dict | None:
    peak, cap = doc["peak"], doc["capacity"]["value"]
    if peak is None or cap is None or doc["dated"] is None:
        return None
    g, c = growth or 0.0, trend.monthly if trend else 0.0
    level = (doc["headroom"] or {}).get("alert_level")

    def one(lv: float) -> dict:
        w = calc.runway(cap, peak["value"], g, c, doc["dated"], lv)
        return {"date": w.date, "months": w.months, "already": w.already, "never": w.never, "level": lv}

    return {
        "growth": g,
        "trend": c,
        "from": doc["run_id"],
        "capacity": one(0.0),
        "alert": None if level is None else one(level),
    }


def _regression(verdict: Mapping, run_dir: str, run: Mapping, reqs: Sequence[str], run_id: str) -> dict | None:
    from loadgate.history.baseline import last_capacity

    rows = [t for t in verdict.get("thresholds") or () if t.get("metric") == "max_users" and t.get("regression")]
    if not rows:
        return None
    t = rows[0]
    base = last_capacity(run_dir, run) if t.get("status") != "skipped" else None
    base_id = os.path.basename(base["run_dir"]) if base else None
    base_commit = None
    if base:
        try:
            base_commit = (read_run(base["run_dir"]).get("git") or {}).get("commit")
        except (ConfigError, OSError):
            pass
    commit = (run.get("git") or {}).get("commit")
    return {
        "status": t.get("status"),
        "tolerance": t.get("regression"),
        "change": t.get("value"),
        "interval": t.get("ci95"),
        "baseline_run": base_id,
        "baseline_users": (base or {}).get("max_users"),
        "baseline_commit": base_commit,
        "commit": commit,
        "run": run_id,
        "reason": t.get("reason"),
        "commit_range": f"{base_commit[:12]}..{commit[:12]}" if base_commit and commit else None,
        "commits": commits_between(base_commit, commit),
    }
