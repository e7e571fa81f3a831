"""Chart data for report.html, computed from ``samples.parquet``: small, per-second, JSON-ready.

Everything the report draws comes from here, sized by seconds and groups, never by requests, so that a
10-million-sample run still gives a report of a few hundred kilobytes:

- ``series``: the whole run second by second (ramp-up, warmup and stop included, so the report can
  shade what the analysis left out): users, requests, failures, throughput, p50/p95/p99.
- ``curves``: response time by percentile (min, p10 … p99.999, max) over the analysis window, for all
  requests, each requirement and the busiest requests: the same exact numbers as ``summary.json``.
- ``errors``: failed requests grouped by request and message, with counts and first/last seen.

Percentiles come from :func:`loadgate.analysis.summarize` (exact, numpy ``linear``); errors are grouped
by Arrow's hash aggregation. No Locust import, no per-request Python loop. The samples are read as a
:class:`~loadgate.data.sample_source.SampleSource`, never loaded whole: their summaries are streamed
and their errors grouped one row group at a time, so a soak run's report costs memory by seconds and groups.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loadgate.analysis.arrival import per_second
from loadgate.analysis.schedule import SCHEDULE_COLUMNS, with_schedule
from loadgate.analysis.summary import summarize
from loadgate.analysis.summary_doc import SummaryDoc
from loadgate.analysis.window import Window
from loadgate.data.open_samples import open_samples, time_range, total_rows
from loadgate.data.run_doc import RunDoc
from loadgate.data.sample_source import SampleSource
from loadgate.errors import ConfigError
from loadgate.gate.thresholds import parse_condition
from loadgate.gate.verdict_doc import VerdictDoc

COLUMNS = (
    "timestamp",
    "request_type",
    "name",
    "response_time_ms",
    "success",
    "exception",
    "requirement",
    "users",
    *SCHEDULE_COLUMNS,
)
MAX_POINTS = 4000  # per-second series longer than this are merged into buckets of several seconds
MAX_CURVES = 12  # busiest requests drawn in the distribution chart
MAX_ERROR_GROUPS = 200
MAX_MESSAGE = 600  # characters of an error message kept in the report
LEVELS = (10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 97.5, 99.0, 99.5, 99.8, 99.9, 99.95, 99.98, 99.99, 99.995, 99.999)
_UNIT_KIND = {"ms": "time", "ratio": "ratio", "req/s": "req/s", "%": "percent"}
RESOURCE_CHART = ("cpu", "memory", "disk")  # drawn together in %; a promql series has its own unit


def load_samples(path: str) -> tuple[str | None, str | None]:
    """The samples file's path, checked (each consumer streams it), or None and a sentence saying why
    there is nothing to draw."""
    if not os.path.exists(path):
        return None, f"{os.path.basename(path)} is missing from the run directory: no charts and no error table"
    try:
        rows = total_rows(open_samples(path, COLUMNS))
    except ConfigError as e:
        return None, f"{e}: no charts and no error table"
    if rows == 0:
        return None, f"{os.path.basename(path)} holds no samples: no charts and no error table"
    return path, None


Samples = SampleSource | pa.Table | str  # what open_samples opens


def chart_data(samples: Samples, run: RunDoc, summary: SummaryDoc, verdict: VerdictDoc) -> dict:
    """Everything the report's charts and error table show, as JSON-ready plain data."""
    table = open_samples(samples, COLUMNS)
    first, last = time_range(table) or (0.0, 0.0)
    t0 = float(run.get("start") or first)
    t0 = min(t0, first)
    end = max(float(run.get("end") or last), last)
    win = summary.get("window") or {}
    window = Window(float(win.get("start", first)), float(win.get("end", last)))
    ramp_done = run.get("ramp_up_done")
    stalls = [
        {"kind": "stall", "from": round(s["start"] - t0, 3), "to": round(s["end"] - t0, 3)}
        for s in summary.get("stalls") or ()
    ]
    return {
        "t0": t0,
        "phases": _phases(t0, end, ramp_done, window) + stalls,
        "series": series(table, Window(t0, end), t0),
        "curves": curves(table, window, summary),
        "levels": threshold_levels(_drawn(verdict.get("thresholds") or ())),
        "cpu": cpu_series(run.get("cpu") or {}, t0),
        "arrival": arrival_series(run.get("arrival") or {}, t0),
    }


def cpu_series(cpu: Mapping[str, Sequence], t0: float) -> list[dict]:
    """Each load-generating process's CPU (% of one core) per second, peaks kept past MAX_POINTS."""
    out = []
    for proc, points in sorted(cpu.items()):
        if not points:
            continue
        arr = np.asarray(points, dtype=np.float64)
        t, pct = arr[:, 0] - t0, arr[:, 1]
        k = max(1, math.ceil(len(t) / MAX_POINTS))
        if k > 1:
            pad = (-len(t)) % k
            t = np.pad(t, (0, pad), mode="edge").reshape(-1, k)[:, 0]
            pct = np.pad(pct, (0, pad), mode="edge").reshape(-1, k).max(axis=1)
        out.append({"label": proc, "t": _rounded(t, 3), "cpu": _rounded(pct, 1)})
    return out


def arrival_series(blocks: Mapping[str, Any], t0: float) -> list[dict]:
    """Per requirement with an arrival shape (run.json's per-second counts): starts offered (scheduled) and
    achieved (started) per second, dropped per second and the pool's busy users; past MAX_POINTS seconds,
    buckets of k seconds (rates averaged, dropped summed, busy users at their peak)."""
    out = []
    for req, block in sorted(blocks.items()) if isinstance(blocks, Mapping) else ():
        per = per_second(block) if isinstance(block, Mapping) else None
        if not per or not per["t"]:
            continue
        t, counts = np.asarray(per["t"], np.float64) - t0, {k: np.asarray(per[k], np.float64) for k in per if k != "t"}
        k = max(1, math.ceil(len(t) / MAX_POINTS))
        if k > 1:
            pad = (-len(t)) % k
            t = np.pad(t, (0, pad), mode="edge").reshape(-1, k)[:, 0]
            counts = {n: np.pad(v, (0, pad)).reshape(-1, k) for n, v in counts.items()}
            counts = {
                n: v.max(axis=1) if n == "busy" else v.sum(axis=1) / (1 if n == "dropped" else k)
                for n, v in counts.items()
            }
        out.append(
            {
                "requirement": str(req),
                "bucket_s": k,
                "t": _rounded(t, 3),
                "offered": _rounded(counts["scheduled"]),
                "achieved": _rounded(counts["started"]),
                "dropped": _rounded(counts["dropped"]),
                "busy": _rounded(counts["busy"]),
                "max_users": block.get("max_users") if isinstance(block.get("max_users"), int) else None,
            }
        )
    return out


def resource_series(rows: Sequence[tuple], t0: float) -> list[dict]:
    """cpu, memory and disk of ``resources.parquet`` (rows as read by loadgate.data.resources) on the run's
    time axis, one line per source and series; past MAX_POINTS points, peaks of buckets are kept."""
    by_line: dict[str, list[tuple[float, float]]] = {}
    for t, source, metric, _query, labels, value in rows:
        if metric in RESOURCE_CHART:
            name = f"{metric} ({source})" + ("" if labels in ("{}", "") else f" {labels}")
            by_line.setdefault(name, []).append((float(t), float(value)))
    out = []
    order = {m: i for i, m in enumerate(RESOURCE_CHART)}
    for name in sorted(by_line, key=lambda n: (order[n.split(" ", 1)[0]], n)):
        arr = np.asarray(sorted(by_line[name]), dtype=np.float64)
        t, v = arr[:, 0] - t0, arr[:, 1]
        k = max(1, math.ceil(len(t) / MAX_POINTS))
        if k > 1:
            pad = (-len(t)) % k
            t = np.pad(t, (0, pad), mode="edge").reshape(-1, k)[:, 0]
            v = np.pad(v, (0, pad), mode="edge").reshape(-1, k).max(axis=1)
        out.append({"label": name, "metric": name.split(" ", 1)[0], "t": _rounded(t, 3), "v": _rounded(v, 2)})
    return out


def _phases(t0: float, end: float, ramp_done: float | None, window: Window) -> list[dict]:
    """Time spans (seconds from t0) that the analysis left out, for shading."""
    spans = []
    ramp_end = min(float(ramp_done), window.start) if ramp_done else window.start
    if ramp_end > t0:
        spans.append({"kind": "ramp-up", "from": 0.0, "to": ramp_end - t0})
    if window.start > ramp_end:
        spans.append({"kind": "warmup", "from": ramp_end - t0, "to": window.start - t0})
    if end > window.end:
        spans.append({"kind": "stopping", "from": window.end - t0, "to": end - t0})
    return [{**s, "from": round(s["from"], 3), "to": round(s["to"], 3)} for s in spans]


def series(samples: Samples, full: Window, t0: float) -> dict:
    """Per-second series of the whole run (merged into k-second buckets past MAX_POINTS seconds: a day's
    86,400 seconds are drawn as 4,000 points; the exact per-second values stay in summary.json)."""
    table = open_samples(samples, COLUMNS)
    s = summarize(table, full, requirements=(), percentiles=(50.0,), series=True)
    s = with_schedule(s, table, full, requirements=(), series=True)["series"]
    n = len(s["t"])
    k = max(1, math.ceil(n / MAX_POINTS))
    users = np.array([-1 if u is None else u for u in s["users"]], np.int64)
    requests = np.array(s["requests"], np.int64)
    failures = np.array(s["failures"], np.int64)
    pct = {
        q: np.array([np.nan if v is None else v for v in s[q]], np.float64)
        for q in ("p50", "p95", "p99", "intended_p95", "intended_p99")
        if q in s
    }
    if k > 1:  # sums for counts, peaks for users and percentiles: a spike stays visible
        pad = (-n) % k
        users = np.pad(users, (0, pad), constant_values=-1).reshape(-1, k).max(axis=1)
        requests = np.pad(requests, (0, pad)).reshape(-1, k).sum(axis=1)
        failures = np.pad(failures, (0, pad)).reshape(-1, k).sum(axis=1)
        pct = {q: _nanmax(np.pad(v, (0, pad), constant_values=np.nan).reshape(-1, k)) for q, v in pct.items()}
    starts = np.arange(requests.size) * k + (full.start - t0)
    width = np.clip(full.end - (full.start + np.arange(requests.size) * k), 0.0, k)
    throughput = np.divide(requests, width, out=np.zeros(requests.size), where=width > 0)
    return {
        "bucket_s": k,
        "t": _rounded(starts, 3),
        "users": [None if u < 0 else int(u) for u in users.tolist()],
        "requests": requests.tolist(),
        "failures": failures.tolist(),
        "throughput": _rounded(throughput),
        **{q: _rounded(v) for q, v in pct.items()},
    }


def _nanmax(blocks: np.ndarray) -> np.ndarray:
    """Row-wise max ignoring NaN; NaN where a row has no value (no warning)."""
    filled = np.where(np.isnan(blocks), -np.inf, blocks).max(axis=1)
    return np.where(np.isneginf(filled), np.nan, filled)


def curves(samples: Samples, window: Window, summary: Mapping) -> dict:
    """Response time at each percentile level in the window: all requests, requirements, busiest requests."""
    levels = sorted(set(LEVELS))
    s = summarize(
        samples, window, requirements=sorted(summary.get("requirements") or ()), percentiles=levels, series=False
    )
    groups = [("All requests", "all", s["overall"])]
    if len(s["requirements"]) > 1:
        groups += [(f"All requests of {rid}", "requirement", st) for rid, st in s["requirements"].items()]
    several = len({e["requirement"] for e in s["requests"]}) > 1
    busiest = sorted(s["requests"], key=lambda e: -e["requests"])[:MAX_CURVES]
    groups += [
        (f"{e['request_type']} {e['name']}" + (f" [{e['requirement']}]" if several else ""), "request", e)
        for e in busiest
    ]
    out = []
    for label, kind, st in groups:
        n, rt = st["requests"], st["response_time_ms"]
        if not n or rt.get("max") is None:
            continue
        top = math.log10(n) if n > 1 else 0.0  # the max is the 1 - 1/n quantile, as far as this sample size sees
        xs, ys = [0.0], [rt["min"]]
        for q in levels:
            x = -math.log10(1.0 - q / 100.0)
            if x < top and rt.get(f"p{q:g}") is not None:
                xs.append(x)
                ys.append(rt[f"p{q:g}"])
        xs.append(max(top, xs[-1]))
        ys.append(rt["max"])
        out.append({"label": label, "kind": kind, "requests": n, "x": _rounded(xs, 4), "y": _rounded(ys)})
    return {"groups": out, "more_requests": max(0, len(s["requests"]) - MAX_CURVES)}


_KEYS = ["request_type", "name", "exception"]
_PARTS = [("timestamp_count", "sum"), ("timestamp_min", "min"), ("timestamp_max", "max"), ("inside_sum", "sum")]


def errors(samples: Samples | None, window: Mapping | None, limit: int = MAX_ERROR_GROUPS) -> dict:
    """Failed requests grouped by request and message: count, count in the window, first and last seen.

    A Parquet file's path: grouped a row group at a time, the groups of the groups merged as they come
    (memory by distinct errors, not by failed requests).
    """
    if samples is None:
        return {"groups": [], "total": 0, "more": 0}
    lo, hi = (float(window["start"]), float(window["end"])) if window else (-math.inf, math.inf)
    groups, grouped = open_samples(samples, COLUMNS), None
    for i in range(groups.count):
        part = _error_groups(groups.read(i, ["timestamp", "success", *_KEYS]), lo, hi)
        if part is not None and grouped is None:
            grouped = part
        elif part is not None:
            merged = pa.concat_tables([grouped, part]).group_by(_KEYS, use_threads=False).aggregate(_PARTS)
            grouped = _ordered(
                {
                    **{k: merged.column(k) for k in _KEYS},
                    **{name: merged.column(f"{name}_{how}") for name, how in _PARTS},
                }
            )
    if grouped is None or grouped.num_rows == 0:
        return {"groups": [], "total": 0, "more": 0}
    order = pc.sort_indices(grouped, [("timestamp_count", "descending"), ("timestamp_min", "ascending")])
    top = grouped.take(order[:limit]).to_pylist()
    rows = [
        {
            "request_type": r["request_type"] or "",
            "name": r["name"] or "",
            "message": _clip(r["exception"]),
            "count": r["timestamp_count"],
            "in_window": r["inside_sum"],
            "first": r["timestamp_min"],
            "last": r["timestamp_max"],
        }
        for r in top
    ]
    total = int(pc.sum(grouped.column("timestamp_count")).as_py())
    return {"groups": rows, "total": total, "more": max(0, grouped.num_rows - limit)}


def _error_groups(table: pa.Table, lo: float, hi: float) -> pa.Table | None:
    """The failed rows of a table grouped by request and message (columns ``_KEYS`` + ``_PARTS``'), or None."""
    failed_mask = pc.invert(pc.fill_null(table.column("success"), False))  # null success counts as failed
    failed = table.select(["timestamp", *_KEYS]).filter(failed_mask)
    if failed.num_rows == 0:
        return None
    ts = failed.column("timestamp")
    inside = pc.and_(pc.greater_equal(ts, lo), pc.less_equal(ts, hi))
    keys = {name: pc.cast(failed.column(name), pa.string()) for name in _KEYS}
    grouped = (
        pa.table({**keys, "timestamp": ts, "inside": pc.cast(inside, pa.int64())})
        .group_by(_KEYS, use_threads=False)
        .aggregate([("timestamp", "count"), ("timestamp", "min"), ("timestamp", "max"), ("inside", "sum")])
    )
    return _ordered({name: grouped.column(name) for name in [*_KEYS, *(p[0] for p in _PARTS)]})


def _ordered(columns: dict) -> pa.Table:
    """Error groups in one column order and types, so that partial groups concatenate."""
    return pa.table(
        {name: pc.cast(columns[name], pa.string()) for name in _KEYS}
        | {
            "timestamp_count": pc.cast(columns["timestamp_count"], pa.int64()),
            "timestamp_min": columns["timestamp_min"],
            "timestamp_max": columns["timestamp_max"],
            "inside_sum": pc.cast(columns["inside_sum"], pa.int64()),
        }
    )


def _clip(message: str | None) -> str:
    if message is None:
        return "(no message)"
    return message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE] + f"… ({len(message)} characters)"


DRAWN_REQUEST_LEVELS = 20  # thresholds of single requests whose levels the charts draw; more would be a hatching


def _drawn(thresholds: Sequence[Mapping]) -> list[Mapping]:
    """The thresholds whose levels the charts draw: every requirement-wide one; single requests' only when
    there are few (the tables list them all)."""
    own = [t for t in thresholds if t.get("request")]
    return list(thresholds) if len(own) <= DRAWN_REQUEST_LEVELS else [t for t in thresholds if not t.get("request")]


def threshold_levels(thresholds: Sequence[Mapping]) -> list[dict]:
    """Target and alert levels of each threshold as numbers in its unit, for lines on the charts."""
    out = []
    for t in thresholds:
        kind = _UNIT_KIND.get(str(t.get("unit")))
        if kind is None:
            continue
        for level in ("target", "alert"):
            text = t.get(level)
            if not text:
                continue
            try:
                cond = parse_condition(text, kind, str(t.get("metric")))
            except ValueError:
                continue  # a level this version cannot read is still shown in the tables
            out.append(
                {
                    "requirement": t.get("requirement"),
                    "metric": t.get("metric"),
                    "request": t.get("request"),
                    "level": level,
                    "value": cond.value,
                    "text": str(text),
                    "status": t.get("status"),
                }
            )
    return out


def _rounded(values: Any, digits: int | None = None) -> list[float | None]:
    """Floats for JSON: 4 significant digits (or ``digits`` decimals); None for NaN/inf/None."""
    out: list[float | None] = []
    for v in np.asarray(values, dtype=np.float64).tolist():
        if not math.isfinite(v):
            out.append(None)
        elif digits is not None:
            out.append(round(v, digits))
        else:
            out.append(float(f"{v:.4g}"))
    return out
