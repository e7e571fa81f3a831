"""Capacity runs in ``history.sqlite``: what a ``loadgate capacity`` run found, per record, and reading it back.

The ``capacity`` table (schema versions 3 and 4, see :mod:`loadgate.history.store`) holds one row per record of a
capacity run (the run itself, and each ``loadgate gate`` re-evaluation of it): the capacity found and its
bracket, the knee, the throughput at capacity, the resources per user at the passing steps, the peak
declared then, and the release it measured (a label and a date; the date is what the capacity trend
is fitted against). A search over arrival rate (``quantity`` rate) finds a rate in iterations/s
(``max_rate``, ``first_not_passing_rate``; its ``search_from`` and ``search_to`` are rates) and no user count. The commit and loadgate's version are the run's (``runs.git_commit``,
``runs.loadgate_version``).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from typing import Any

from loadgate.history import store

COLUMNS = (
    "release",
    "dated",
    "max_users",
    "first_not_passing_users",
    "at_least",
    "inconclusive",
    "knee_users",
    "throughput_at_max",
    "max_throughput",
    "cpu_per_user",
    "memory_per_user",
    "peak",
    "peak_unit",
    "search_from",
    "search_to",
    "quantity",
    "max_rate",
    "first_not_passing_rate",
)
_RUN = (
    "seq",
    "run_id",
    "run_dir",
    "kind",
    "requirements",
    "started",
    "verdict",
    "exit_code",
    "git_commit",
    "loadgate_version",
)


def release_of(capacity: Mapping, run: Mapping) -> tuple[str, float | None]:
    """The release a capacity run measured: its label (``--release``, else the commit's first 12 characters,
    else the run's start) and date (``--release-date``, else the run's start)."""
    given = capacity.get("release") or {}
    commit = (run.get("git") or {}).get("commit")
    label = given.get("label") or (commit[:12] if commit else None) or _day(run.get("start"))
    return str(label), given.get("date") if given.get("date") is not None else run.get("start")


def _day(t: float | None) -> str:
    return "-" if t is None else dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


def row(capacity: Mapping, run: Mapping, plan: Mapping | None = None) -> dict:
    """The ``capacity`` row of a run: capacity.json (``capacity``), run.json and the plan's per-user costs."""
    label, dated = release_of(capacity, run)
    plan = plan or {}
    scaling = plan.get("scaling") or {}
    peak = plan.get("peak") or {}
    search = capacity.get("plan") or {}
    knee = capacity.get("knee") or {}
    by_rate = capacity.get("quantity") == "rate"
    values = {
        "release": label,
        "dated": dated,
        "max_users": capacity.get("max_users"),
        "first_not_passing_users": capacity.get("first_not_passing_users"),
        "at_least": int(bool(capacity.get("at_least"))),
        "inconclusive": int(bool(capacity.get("inconclusive"))),
        "knee_users": knee.get("users"),
        "throughput_at_max": capacity.get("throughput_at_max"),
        "max_throughput": capacity.get("max_throughput"),
        "cpu_per_user": (scaling.get("cpu") or {}).get("per_user"),
        "memory_per_user": (scaling.get("memory") or {}).get("per_user"),
        "peak": peak.get("value"),
        "peak_unit": peak.get("unit"),
        "search_from": search.get("start_rate" if by_rate else "start_users"),
        "search_to": search.get("max_rate" if by_rate else "max_users"),
        "quantity": "rate" if by_rate else "users",
        "max_rate": capacity.get("max_rate"),
        "first_not_passing_rate": capacity.get("first_not_passing_rate"),
    }
    assert tuple(values) == COLUMNS
    return values


def capacity_runs(path: str, requirements: Sequence[str] | None = None, *, limit: int | None = None) -> list[dict]:
    """Capacity runs (each at its latest record), oldest release first; only those that covered exactly
    ``requirements`` when given. Empty when the database does not exist."""
    if not os.path.isfile(path):
        return []
    cols = ", ".join([*(f"r.{c}" for c in _RUN), *(f"c.{c}" for c in COLUMNS)])
    sql = (
        f"SELECT {cols} FROM runs r JOIN capacity c ON c.seq = r.seq "
        "WHERE r.seq = (SELECT MAX(x.seq) FROM runs x WHERE x.run_id = r.run_id)"
    )
    args: list[Any] = []
    if requirements is not None:
        sql += " AND r.requirements = ?"
        args.append(",".join(requirements))
    conn = store.open_existing(path)
    try:
        rows = [
            dict(zip([*_RUN, *COLUMNS], r)) for r in conn.execute(sql + " ORDER BY c.dated, r.started, r.seq", args)
        ]
    finally:
        conn.close()
    for r in rows:
        r["requirements"] = [x for x in str(r["requirements"]).split(",") if x]
        r["at_least"], r["inconclusive"] = bool(r["at_least"]), bool(r["inconclusive"])
    return rows[-limit:] if limit else rows


def format_capacity_runs(rows: Sequence[Mapping]) -> str:
    """``loadgate history --capacity``: one line per capacity run, oldest release first."""

    def n(v: Any, digits: int = 0) -> str:
        return "-" if v is None else f"{v:,.{digits}f}"

    header = [
        "run",
        "release",
        "dated (UTC)",
        "requirements",
        "searched",
        "capacity",
        "first not passing",
        "knee",
        "req/s at capacity",
        "peak",
        "cpu/user",
        "memory/user",
        "commit",
        "loadgate",
        "verdict",
    ]
    lines = []
    for r in rows:
        by_rate = r["quantity"] == "rate"
        found, first_not = (
            (r["max_rate"], r["first_not_passing_rate"]) if by_rate else (r["max_users"], r["first_not_passing_users"])
        )
        lines.append(
            [
                r["run_id"],
                str(r["release"]),
                _day(r["dated"]),
                ",".join(r["requirements"]),
                _searched(r["search_from"], r["search_to"], by_rate),
                _capacity_cell(found, r["at_least"], r["inconclusive"], by_rate),
                _figure(first_not, by_rate),
                n(r["knee_users"]),
                n(r["throughput_at_max"], 1),
                "-" if r["peak"] is None else f"{r['peak']:g} {r['peak_unit']}",
                "-" if r["cpu_per_user"] is None else f"{r['cpu_per_user'] * 1000:.2f}m",
                "-" if r["memory_per_user"] is None else f"{r['memory_per_user'] / 2**20:.2f}Mi",
                (r["git_commit"] or "-")[:12],
                r["loadgate_version"] or "-",
                r["verdict"],
            ]
        )
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *lines])


def _figure(v: Any, by_rate: bool) -> str:
    """A user count, or a rate in iterations/s (a search over arrival rate)."""
    if v is None:
        return "-"
    return f"{v:,.4g}/s" if by_rate else f"{v:,.0f}"


def _searched(start: Any, bound: Any, by_rate: bool) -> str:
    return f"{_figure(start, by_rate)}-{_figure(bound, by_rate)}"


def _capacity_cell(found: Any, at_least: bool, inconclusive: bool, by_rate: bool) -> str:
    if found is None:
        return "inconclusive" if inconclusive else "none"
    return ("at least " if at_least else "") + _figure(found, by_rate)
