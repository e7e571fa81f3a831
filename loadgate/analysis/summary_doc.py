"""The ``summary.json`` document (schema ``loadgate.summary/1``): its shape (:class:`SummaryDoc`), its one
reader and its one writer, and how it is made from per-group arrays: its layout, its reported groups, and
the statistics of each (STATS)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, TypedDict, cast

import numpy as np

from loadgate.analysis.select import pkey, time_keys
from loadgate.analysis.window import Window
from loadgate.data import rundir

SUMMARY_SCHEMA_ID = "loadgate.summary/1"


class WindowDoc(TypedDict):
    start: float
    end: float
    seconds: float


class _StatsKeys(TypedDict):
    requests: int
    failures: int
    error_rate: float
    throughput: float
    response_time_ms: dict[str, float | None]  # min, mean, p50 ... (the percentiles computed), max
    response_time_ci95_ms: dict[str, list[float] | None]  # each percentile's 95% confidence interval


class Stats(_StatsKeys, total=False):
    """STATS of one scope (the whole run, a requirement, a request); the keys below come from the
    schedule analysis (:mod:`loadgate.analysis.schedule`), which every run directory's summary has."""

    arrivals_busiest_tenth: float | None
    arrivals_bunched: bool | None
    paced_requests: int
    omitted: int
    schedule_attainment: float | None
    on_time: float | None
    intended_response_time_ms: dict[str, float | None] | None
    intended_response_time_ci95_ms: dict[str, list[float] | None] | None
    stall_hidden: int


class RequestStats(Stats):
    """A request's STATS, named: what ``summary.json``'s ``requests`` lists."""

    request_type: str
    name: str
    requirement: str | None


class _SummaryKeys(TypedDict):
    schema: str
    percentile_method: str
    window: WindowDoc
    overall: Stats
    requirements: dict[str, Stats]
    requests: list[RequestStats]


class SummaryDoc(_SummaryKeys, total=False):
    """The whole ``summary.json``. ``series*`` are absent from a summary made without series (a baseline's
    recomputed one); ``resources`` only with resource thresholds; ``arrival`` only for a run with an
    arrival shape."""

    series_percentile_method: str
    series: dict[str, Any]  # per second of the window: t, requests, failures, percentiles...
    series_by_requirement: dict[str, dict[str, Any]]
    stalls: list[dict[str, Any]]
    stuck_users: list[dict[str, Any]]
    resources: dict[str, Any]  # loadgate.sources.collect
    arrival: dict[str, Any]  # per requirement: the arrival schedule over the window


def read_summary(run_dir: str) -> SummaryDoc:
    """``run_dir``'s summary.json; ConfigError (naming the file and the fix) when missing or not JSON."""
    return cast(SummaryDoc, rundir.read_json(run_dir, rundir.SUMMARY))


def write_summary(run_dir: str, summary: SummaryDoc) -> None:
    """Write ``run_dir``'s summary.json (atomically)."""
    rundir.write_json(os.path.join(run_dir, rundir.SUMMARY), summary)


DEFAULT_PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)


def checked_percentiles(percentiles: Iterable[float]) -> tuple[float, ...]:
    """The distinct percentiles as floats; ValueError for one outside 0..100 or with over 6 significant digits."""
    qs = tuple(dict.fromkeys(float(q) for q in percentiles))
    if any(not 0.0 <= q <= 100.0 or float(pkey(q)[1:]) != q for q in qs):
        raise ValueError(f"percentiles must be within 0..100 with at most 6 significant digits, got {qs}")
    return qs


def output_keys(
    request_type: str | None, name: str | None, ids: tuple[str, ...], slot_of: dict[str, int]
) -> list[tuple[Any, ...]]:
    """The reported groups a base group (request type, name, requirement label) belongs to."""
    keys = [("request", request_type or "", name or "", rid) for rid in ids or (None,)]
    return keys + [("requirement", rid) for rid in ids if rid in slot_of] + [("overall",)]


def summary_doc(
    window: Window,
    outs: dict[tuple[Any, ...], int],
    stats: list[dict[str, Any]],
    section: list[str],
    qs: tuple[float, ...],
) -> dict[str, Any]:
    """The summary without its series: output group ``outs[key]`` has ``stats[outs[key]]``."""
    return {
        "schema": SUMMARY_SCHEMA_ID,
        "percentile_method": "linear",
        "window": {"start": window.start, "end": window.end, "seconds": window.seconds},
        "overall": stats[outs[("overall",)]] if ("overall",) in outs else _zero_stats(qs),
        "requirements": {
            rid: stats[outs[("requirement", rid)]] if ("requirement", rid) in outs else _zero_stats(qs)
            for rid in section
        },
        "requests": sorted(
            (
                {"request_type": k[1], "name": k[2], "requirement": k[3], **stats[i]}
                for k, i in outs.items()
                if k[0] == "request"
            ),
            key=lambda e: (e["request_type"], e["name"], e["requirement"] or ""),
        ),
    }


def stats_of(g: dict[str, np.ndarray], n_out: int, qs: tuple[float, ...], seconds: float) -> list[dict[str, Any]]:
    """STATS of each output group from its arrays (the engine's, per output group)."""
    n, fails, nlat, values, pct = g["n"], g["fails"], g["nlat"], g["values"], g["pct"]
    k = len(qs)
    out = []
    for o in range(n_out):
        stats = {
            "requests": int(n[o]),
            "failures": int(fails[o]),
            "error_rate": float(fails[o] / n[o]) if n[o] else 0.0,
            "throughput": float(n[o] / seconds) if seconds > 0 else 0.0,
            "response_time_ms": dict.fromkeys(time_keys(qs))
            if nlat[o] == 0
            else {
                "min": float(values[o, 0]),
                "mean": float(g["mean"][o]),
                **{pkey(q): float(pct[o, j]) for j, q in enumerate(qs)},
                "max": float(values[o, 1]),
            },
        }
        lo, hi = values[o, 2 + 2 * k : 2 + 3 * k], values[o, 2 + 3 * k :]
        stats["response_time_ci95_ms"] = {
            pkey(q): None if np.isnan(lo[j]) or np.isnan(hi[j]) else [float(lo[j]), float(hi[j])]
            for j, q in enumerate(qs)
        }
        out.append(stats)
    return out


def _zero_stats(qs: tuple[float, ...]) -> dict[str, Any]:
    """STATS of a scope without requests."""
    return {
        "requests": 0,
        "failures": 0,
        "error_rate": 0.0,
        "throughput": 0.0,
        "response_time_ms": dict.fromkeys(time_keys(qs)),
        "response_time_ci95_ms": dict.fromkeys(pkey(q) for q in qs),
    }
