"""The trend of report.html: each requirement's gated metrics over its last runs, from ``history.sqlite``.

The history (:func:`loadgate.history.store.trend`) holds the runs recorded so far; the run being rendered is
recorded only after its outputs are written, so its values come from its own ``verdict.json``, and any
record of it already in the history (a re-rendered or re-gated run) is left out so it never counts twice.
The trend is "as of this run": the runs that started up to this one, so re-rendering an old run later
gives the same picture rather than one where later runs crowd it out.

One series per absolute threshold (metric and scope) of the run, in its unit: milliseconds on one chart,
the error rate and the throughput each on their own. A regression threshold's value is a change against
whatever baseline each run had, which does not make a series; the comparison table has it.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from loadgate.data.run_doc import RunDoc
from loadgate.errors import ConfigError
from loadgate.gate.verdict_doc import VerdictDoc
from loadgate.history import store as history
from loadgate.outputs.charts import threshold_levels

LIMIT = 20  # runs per trend, this one included
MAX_SERIES = 20  # lines per trend chart: the requirement-wide thresholds first, then single requests' in order
UNITS = ("ms", "ratio", "req/s", "%")  # one chart per unit, in this order (%: cpu, memory, disk)
PROBE_TIMEOUT = 1.0  # seconds to wait for a history held by an exclusive lock before reporting without it
_MAX_LOOKBACK = 5000  # history records read to find the runs before an old run being re-rendered


def _key(t: Mapping) -> tuple:
    return (t.get("metric"), t.get("request"), t.get("unit"))


def _numbered(thresholds: Sequence[Mapping]) -> list[tuple[tuple, Mapping]]:
    """((metric, request, unit, n), threshold): n tells apart thresholds sharing the first three.

    The history keeps no ``regression`` flag per threshold; an error-rate regression threshold has the
    same metric, scope and unit as an absolute one. The threshold file's order tells them apart.
    """
    seen: dict[tuple, int] = {}
    out = []
    for t in thresholds:
        k = _key(t)
        seen[k] = seen.get(k, 0) + 1
        out.append(((*k, seen[k]), t))
    return out


def _label(t: Mapping) -> str:
    return f"{t.get('metric')} ({t.get('request') or 'all requests'})"


def requirement_trend(
    requirement: str, records: Sequence[Mapping], current: Mapping, thresholds: Sequence[Mapping], limit: int = LIMIT
) -> dict:
    """The trend of one requirement: its runs (oldest first, this one last) and one chart per unit.

    ``records`` are :func:`loadgate.history.store.trend` items; ``current`` is this run (run_id, started,
    verdict); ``thresholds`` are this run's threshold results of ``requirement`` (verdict.json).
    """
    earlier = [
        r
        for r in records
        if r.get("run_id") != current["run_id"]
        and r.get("started") is not None
        and (current.get("started") is None or r["started"] <= current["started"])
    ]
    earlier.sort(key=lambda r: (r["started"], r.get("seq") or 0))
    points: list[Mapping] = list(earlier)
    if current.get("started") is not None:
        points.append({**current, "thresholds": list(thresholds)})
    points = points[-limit:]
    runs = [
        {
            "run_id": str(p["run_id"]),
            "started": float(p["started"]),
            "verdict": p.get("verdict"),
            "current": p is points[-1] and current.get("started") is not None,
        }
        for p in points
    ]
    mine = _numbered(thresholds)
    # headroom and a dropped_iterations share are ratios but no error rate (the capacity plan's chart follows headroom)
    gated = {
        k: t
        for k, t in mine
        if not t.get("regression")
        and t.get("unit") in UNITS
        and t.get("metric") not in ("headroom", "dropped_iterations")
    }
    by_run = [dict(_numbered(p.get("thresholds") or ())) for p in points]
    charts = []
    for unit in UNITS:
        series, keys = [], set()
        drawn = [(k, t) for k, t in gated.items() if k[2] == unit]
        drawn.sort(key=lambda kt: kt[1].get("request") is not None)  # requirement-wide first (stable)
        for k, t in drawn:
            if k[:3] in keys:
                continue
            if len(keys) == MAX_SERIES:
                break
            keys.add(k[:3])
            found = [got.get(k) for got in by_run]
            series.append(
                {
                    "key": k[:3],
                    "label": _label(t),
                    "metric": t.get("metric"),
                    "request": t.get("request"),
                    "values": [None if f is None else f.get("value") for f in found],
                    "status": [None if f is None else f.get("status") for f in found],
                }
            )
        if series:
            levels = threshold_levels([t for t in thresholds if _key(t) in keys and not t.get("regression")])
            for s in series:
                del s["key"]
            charts.append(
                {
                    "unit": unit,
                    "series": series,
                    "more": len({k[:3] for k, _t in drawn}) - len(keys),
                    "levels": [{k: l[k] for k in ("metric", "request", "level", "value", "text")} for l in levels],
                }
            )
    return {
        "requirement": requirement,
        "runs": runs,
        "charts": charts,
        "regression_thresholds": sum(1 for t in thresholds if t.get("regression")),
    }


def _probe(path: str) -> None:
    """Raise sqlite3.Error quickly if the database is held by an exclusive lock (the history waits 10 s)."""
    conn = sqlite3.connect(path, timeout=PROBE_TIMEOUT)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    finally:
        conn.close()


def _records(db: str, requirement: str, started: float | None, run_id: str, limit: int) -> list[dict]:
    """History records of ``requirement``: at least ``limit - 1`` from before this run when there are."""
    n = limit + 1
    while True:
        got = history.trend(db, requirement, limit=n)
        before = [
            r
            for r in got
            if r["run_id"] != run_id and r.get("started") is not None and (started is None or r["started"] <= started)
        ]
        if len(before) >= limit - 1 or len(got) < n or n >= _MAX_LOOKBACK:
            return got
        n = min(n * 4, _MAX_LOOKBACK)


def load_trend(run_dir: str, run: RunDoc, verdict: VerdictDoc, limit: int = LIMIT) -> tuple[list[dict], str | None]:
    """Each requirement's trend for the run in ``run_dir``, and a sentence when the history cannot be used.

    Never raises for a missing, locked, corrupt or newer history: the trend is then this run alone.
    """
    run_id = os.path.basename(os.path.abspath(run_dir))
    thresholds = verdict.get("thresholds") or []
    reqs = list(dict.fromkeys([*(run.get("requirements") or []), *(t.get("requirement") for t in thresholds)]))
    current = {"run_id": run_id, "started": run.get("start"), "verdict": verdict.get("verdict")}
    db = history.db_of_run(run_dir)
    note = None
    records: dict[str, list[dict]] = {r: [] for r in reqs}
    if not os.path.isfile(db):
        note = (
            f"{db} does not exist: no earlier runs to show. Every 'loadgate run --out "
            f"{os.path.dirname(db)}' is recorded there."
        )
    else:
        try:
            _probe(db)
            for req in reqs:
                records[req] = _records(db, req, run.get("start"), run_id, limit)
        except (sqlite3.Error, OSError, ConfigError) as e:
            records = {r: [] for r in reqs}
            note = f"{db} cannot be read ({e}): the trend shows this run only."
    out = [
        requirement_trend(req, records[req], current, [t for t in thresholds if t.get("requirement") == req], limit)
        for req in reqs
    ]
    return out, note


def chart_count(trend: Sequence[Mapping[str, Any]]) -> int:
    """How many trend charts the page draws: each unit's chart of each requirement with 2 runs or more."""
    return sum(len(t["charts"]) for t in trend if len(t["runs"]) >= 2)
