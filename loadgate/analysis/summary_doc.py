"""The ``summary.json`` document (schema ``loadgate.summary/1``) from per-group arrays: its layout, its
reported groups, and the statistics of each (STATS)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from loadgate.analysis.select import pkey, time_keys
from loadgate.analysis.window import Window

SUMMARY_SCHEMA_ID = "loadgate.summary/1"
DEFAULT_PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)


def checked_percentiles(percentiles: Iterable[float]) -> tuple[float, ...]:
    """The distinct percentiles as floats; ValueError for one outside 0..100 or with over 6 significant digits."""
    qs = tuple(dict.fromkeys(float(q) for q in percentiles))
    if any(not 0.0 <= q <= 100.0 or float(pkey(q)[1:]) != q for q in qs):
        raise ValueError(f"percentiles must be within 0..100 with at most 6 significant digits, got {qs}")
    return qs


def output_keys(request_type: str | None, name: str | None, ids: tuple[str, ...],
                slot_of: dict[str, int]) -> list[tuple[Any, ...]]:
    """The reported groups a base group (request type, name, requirement label) belongs to."""
    keys = [("request", request_type or "", name or "", rid) for rid in ids or (None,)]
    return keys + [("requirement", rid) for rid in ids if rid in slot_of] + [("overall",)]


def summary_doc(window: Window, outs: dict[tuple[Any, ...], int], stats: list[dict[str, Any]], section: list[str],
                qs: tuple[float, ...]) -> dict[str, Any]:
    """The summary without its series: output group ``outs[key]`` has ``stats[outs[key]]``."""
    return {
        "schema": SUMMARY_SCHEMA_ID,
        "percentile_method": "linear",
        "window": {"start": window.start, "end": window.end, "seconds": window.seconds},
        "overall": stats[outs[("overall",)]] if ("overall",) in outs else _zero_stats(qs),
        "requirements": {rid: stats[outs[("requirement", rid)]] if ("requirement", rid) in outs
                         else _zero_stats(qs) for rid in section},
        "requests": sorted(({"request_type": k[1], "name": k[2], "requirement": k[3], **stats[i]}
                            for k, i in outs.items() if k[0] == "request"),
                           key=lambda e: (e["request_type"], e["name"], e["requirement"] or "")),
    }


def stats_of(g: dict[str, np.ndarray], n_out: int, qs: tuple[float, ...], seconds: float) -> list[dict[str, Any]]:
    """STATS of each output group from its arrays (the engine's, per output group)."""
    n, fails, nlat, values, pct = g["n"], g["fails"], g["nlat"], g["values"], g["pct"]
    k = len(qs)
    out = []
    for o in range(n_out):
        stats = {"requests": int(n[o]), "failures": int(fails[o]),
                 "error_rate": float(fails[o] / n[o]) if n[o] else 0.0,
                 "throughput": float(n[o] / seconds) if seconds > 0 else 0.0,
                 "response_time_ms": dict.fromkeys(time_keys(qs)) if nlat[o] == 0 else {
                     "min": float(values[o, 0]), "mean": float(g["mean"][o]),
                     **{pkey(q): float(pct[o, j]) for j, q in enumerate(qs)}, "max": float(values[o, 1])}}
        lo, hi = values[o, 2 + 2 * k:2 + 3 * k], values[o, 2 + 3 * k:]
        stats["response_time_ci95_ms"] = {pkey(q): None if np.isnan(lo[j]) or np.isnan(hi[j])
                                          else [float(lo[j]), float(hi[j])] for j, q in enumerate(qs)}
        out.append(stats)
    return out


def _zero_stats(qs: tuple[float, ...]) -> dict[str, Any]:
    """STATS of a scope without requests."""
    return {"requests": 0, "failures": 0, "error_rate": 0.0, "throughput": 0.0,
            "response_time_ms": dict.fromkeys(time_keys(qs)),
            "response_time_ci95_ms": dict.fromkeys(pkey(q) for q in qs)}
