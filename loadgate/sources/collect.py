"""Resource thresholds' values: their series over the analysis window, from Prometheus or local samples.

Evidence rules: fewer than half of the expected points (scrape gaps), an unreachable
Prometheus or a query without series make a value missing, with the reason; several series without
``aggregate_series`` is a ConfigError naming the threshold's file:line.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
from urllib.parse import urlsplit
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from loadgate.analysis.window import Window
from loadgate.data import resources as store
from loadgate.errors import ConfigError, RunError
from loadgate.sources import prometheus
from loadgate.sources.prometheus import Series

SCHEMA = "loadgate.resources/1"
LOCAL_STEP_S = 1.0  # the local sampler's period
RESOURCE_METRICS = ("cpu", "memory", "disk", "promql")


@dataclass(frozen=True)
class ResourceQuery:
    """What one resource threshold measures, and where from; ``key`` is the threshold's file:line."""

    key: str
    requirement: str
    metric: str  # cpu, memory, disk or promql
    source: str  # local or prometheus
    aggregate: str = "mean"  # mean, max or pNN over the window's points
    aggregate_series: str | None = None  # max, sum or mean across series, per point
    query: str | None = None  # PromQL of a promql metric
    selector: str | None = None  # label matchers for the built-in queries
    mountpoint: str | None = None  # disk: one filesystem instead of the fullest
    prometheus: str | None = None  # base URL of the server
    step: float | None = None  # query_range step (s); default: the server's scrape interval
    unit: str = "%"


@dataclass(frozen=True)
class ResourceValue:
    """The aggregated value of one query over the window, or None and why."""

    query: ResourceQuery
    promql: str | None
    value: float | None
    points: int
    expected: int
    step: float
    reason: str | None
    skipped: bool = False  # local samples of a target elsewhere: not evidence either way

    def to_dict(self) -> dict:
        q = self.query
        return {
            "key": q.key,
            "requirement": q.requirement,
            "metric": q.metric,
            "source": q.source,
            "query": self.promql,
            "aggregate": q.aggregate,
            "aggregate_series": q.aggregate_series,
            "value": self.value,
            "unit": q.unit,
            "points": self.points,
            "expected_points": self.expected,
            "step": self.step,
            "reason": self.reason,
            **({"skipped": True} if self.skipped else {}),
        }


def aggregate(values: Sequence[float] | np.ndarray, how: str) -> float:
    """``mean``, ``max`` or ``pNN`` (numpy's linear percentile) of the values."""
    arr = np.asarray(values, dtype=float)
    if how == "mean":
        return float(arr.mean())
    if how == "max":
        return float(arr.max())
    return float(np.percentile(arr, float(how[1:])))


def _combine(series: Sequence[Series], how: str) -> tuple[np.ndarray, np.ndarray]:
    """Per timestamp, the max/sum/mean across the series that have a point there."""
    by_time: dict[float, list[float]] = {}
    for s in series:
        for t, v in zip(s.timestamps, s.values):
            by_time.setdefault(t, []).append(v)
    stamps = np.array(sorted(by_time), dtype=float)
    fn = {"max": max, "sum": sum, "mean": lambda xs: sum(xs) / len(xs)}[how]
    return stamps, np.array([fn(by_time[t]) for t in stamps], dtype=float)


def _local_series(rows: Sequence[store.Row], metric: str, mountpoint: str | None) -> list[Series]:
    picked: dict[str, tuple[list[float], list[float]]] = {}
    for t, source, m, _query, labels, v in rows:
        if source != "local" or m != metric:
            continue
        if mountpoint is not None and labels != f'{{mountpoint="{mountpoint}"}}':
            continue
        ts, vs = picked.setdefault(labels, ([], []))
        ts.append(t)
        vs.append(v)
    return [Series(k, tuple(ts), tuple(vs)) for k, (ts, vs) in sorted(picked.items())]


def _fetch(q: ResourceQuery, window: Window, rows: Sequence[store.Row]) -> tuple[list[Series], str, float]:
    """(series, the query as run, step); RunError when the source cannot answer."""
    if q.source == "local":
        series = _local_series(rows, q.metric, q.mountpoint)
        if q.metric == "disk" and q.mountpoint is None and len(series) > 1:  # the fullest filesystem
            stamps, values = _combine(series, "max")
            series = [Series("{fullest}", tuple(stamps), tuple(values))]
        return series, f"local {q.metric}" + (f" {q.mountpoint}" if q.mountpoint else ""), LOCAL_STEP_S
    if not q.prometheus:
        raise RunError("no Prometheus URL: set load.resources.prometheus or pass --prometheus URL")
    step = q.step or prometheus.scrape_interval(q.prometheus)
    promql = q.query or prometheus.builtin_query(q.metric, q.selector, q.mountpoint, rate_window_s=4 * step)
    try:
        series = prometheus.query_range(q.prometheus, promql, window.start, window.end, step)
    except ConfigError as exc:
        raise ConfigError(
            f"{q.key}: query: Prometheus rejected {promql!r} ({exc}); expected valid PromQL "
            f"(try it in {q.prometheus}/graph)"
        ) from None
    return series, promql, step


def evaluate_query(
    q: ResourceQuery, window: Window, rows: Sequence[store.Row]
) -> tuple[ResourceValue, list[store.Row] | None]:
    """The value of ``q`` over ``window`` and the rows it read (for resources.parquet); None for the rows
    when the source could not be asked."""
    expected = 0
    step = LOCAL_STEP_S if q.source == "local" else (q.step or 0.0)
    where = f"{q.requirement} {q.metric}"
    try:
        series, promql, step = _fetch(q, window, rows)
    except RunError as exc:
        return ResourceValue(q, q.query, None, 0, 0, step, f"{where}: {exc}"), None
    expected = int(math.floor(max(0.0, window.seconds) / step)) + 1 if step > 0 else 0
    inside = [Series(s.labels, *_within(s, window)) for s in series]
    inside = [s for s in inside if s.values]
    out_rows = (
        []
        if q.source == "local"
        else [(t, "prometheus", q.metric, promql, s.labels, v) for s in series for t, v in zip(s.timestamps, s.values)]
    )
    if not inside:
        what = "the query returned no series" if q.source == "prometheus" else "no local samples were recorded"
        return ResourceValue(
            q, promql, None, 0, expected, step, f"{where}: {what} in the analysis window ({promql})"
        ), out_rows
    if len(inside) > 1 and q.aggregate_series is None:
        names = ", ".join(s.labels for s in inside[:3]) + (", ..." if len(inside) > 3 else "")
        raise ConfigError(
            f"{q.key}: query: {promql!r} returned {len(inside)} series ({names}); expected one "
            "series, or aggregate_series: max|sum|mean to combine them (or a narrower selector)"
        )
    if len(inside) > 1:
        _stamps, values = _combine(inside, q.aggregate_series or "max")
    else:
        values = np.asarray(inside[0].values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size * 2 < expected:
        return ResourceValue(
            q,
            promql,
            None,
            int(values.size),
            expected,
            step,
            f"{where}: scrape gaps: {values.size} of {expected} expected points in the analysis "
            f"window (step {step:g}s), fewer than half",
        ), out_rows
    return ResourceValue(q, promql, aggregate(values, q.aggregate), int(values.size), expected, step, None), out_rows


def _within(s: Series, window: Window) -> tuple[tuple[float, ...], tuple[float, ...]]:
    keep = [(t, v) for t, v in zip(s.timestamps, s.values) if window.start - 1e-6 <= t <= window.end + 1e-6]
    return tuple(t for t, _ in keep), tuple(v for _, v in keep)


def is_loopback(url: str | None) -> bool:
    """Whether ``url``'s host is this machine (127.0.0.0/8, ::1, localhost)."""
    host = urlsplit(url or "").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def collect(
    run_dir: str,
    queries: Sequence[ResourceQuery],
    window: Window,
    *,
    prometheus_url: str | None = None,
    target: str | None = None,
) -> dict:
    """The summary's ``resources`` block for ``queries`` over ``window``; Prometheus' series are written
    to the run's resources.parquet (its local rows kept). ``prometheus_url`` overrides every query's.

    Local samples describe this machine: with a ``target`` URL elsewhere they are no evidence about it,
    and those thresholds are skipped with the reason (not failed, not inconclusive: they never applied)."""
    if prometheus_url:
        queries = [
            dataclasses.replace(q, prometheus=prometheus_url) if q.source == "prometheus" else q for q in queries
        ]
    rows = store.read_rows(run_dir)
    values: list[ResourceValue] = []
    fetched: list[store.Row] = []
    seen: set[tuple] = set()
    answered = True
    for q in queries:
        if q.source == "local" and target and not is_loopback(target):
            values.append(
                ResourceValue(
                    q,
                    None,
                    None,
                    0,
                    0,
                    LOCAL_STEP_S,
                    (
                        f"{q.requirement} {q.metric}: source: local measures this machine, but the target {target} is "
                        "elsewhere; set load.resources.source: prometheus to gate its resources"
                    ),
                    skipped=True,
                )
            )
            continue
        value, got = evaluate_query(q, window, rows)
        values.append(value)
        answered = answered and (got is not None or q.source == "local")
        for r in got or ():  # two thresholds on the same query keep one copy of its points
            if (r[0], r[3], r[4]) not in seen:
                seen.add((r[0], r[3], r[4]))
                fetched.append(r)
    if answered and any(q.source == "prometheus" for q in queries):  # an unreachable server keeps the last copy
        store.write_rows(run_dir, fetched, replace_source="prometheus")
    return {
        "schema": SCHEMA,
        "window": {"start": window.start, "end": window.end, "seconds": window.seconds},
        "thresholds": [v.to_dict() for v in values],
    }


def by_key(summary: Mapping) -> dict[str, Mapping]:
    """The summary's resource values keyed by their threshold's file:line."""
    return {str(v.get("key")): v for v in ((summary.get("resources") or {}).get("thresholds") or ())}
