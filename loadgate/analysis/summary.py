"""Samples -> ``summary.json`` (schema ``loadgate.summary/1``): exact percentiles, error rates, throughput.

Percentiles are numpy's default ``linear`` method, bit for bit, without sorting every group. Response
times become order-preserving uint64 keys; a histogram per (group, key bucket) finds the bucket that
holds each wanted rank; only the samples in those buckets are sorted (``select``). Every reported
group (a request, a requirement, all requests, one second) is a union of finest groups, whose
histograms it sums: a sample named by several requirements is never copied. Rows are handled in
chunks of zero-copy Arrow views, so memory stays a few bytes per sample beyond the table itself.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from loadgate.analysis.labels import Labels, compact, conformed, split_ids
from loadgate.analysis.latency import Latency
from loadgate.analysis.memory import memory_tuned
from loadgate.analysis.select import group_arrays, pkey, time_keys
from loadgate.analysis.series import series as per_second
from loadgate.analysis.window import Window
from loadgate.data.arrowbuf import numpy_of

SUMMARY_SCHEMA_ID = "loadgate.summary/1"
DEFAULT_PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)
# What summarize reads: pass to read_samples(path, COLUMNS, dictionary=True) for the fast path.
COLUMNS = ("timestamp", "request_type", "name", "response_time_ms", "success", "requirement", "users")
_CHUNK_ROWS = 1 << 20  # rows handled at once: bounds the temporary arrays


def summarize(table: pa.Table, window: Window | None = None, *, requirements: Sequence[str] | None = None,
              percentiles: Iterable[float] = DEFAULT_PERCENTILES, series: bool = True) -> dict:
    """The CONTRACT section 7 summary of the samples in ``window`` (default: first to last timestamp).

    ``requirements`` limits the requirements section to those IDs, each present even without samples.
    Rows with a null/NaN response time count as requests but not in the response-time statistics;
    a null ``success`` counts as a failure.
    """
    with memory_tuned():
        return _summarize(table, window, requirements, percentiles, series)


def _summarize(table: pa.Table, window: Window | None, requirements: Sequence[str] | None,
               percentiles: Iterable[float], series: bool) -> dict:
    qs = checked_percentiles(percentiles)
    table = conformed(table)
    batches = table.to_batches(_CHUNK_ROWS)
    labels = tuple(Labels(table, name) for name in ("request_type", "name", "requirement"))
    del table
    with ThreadPoolExecutor(2) as pool:  # numpy releases the GIL for most of the work: both cores help
        return _summarize_batches(pool, batches, labels, window, requirements, qs, series)


def checked_percentiles(percentiles: Iterable[float]) -> tuple[float, ...]:
    """The distinct percentiles as floats; ValueError for one outside 0..100 or with over 6 significant digits."""
    qs = tuple(dict.fromkeys(float(q) for q in percentiles))
    if any(not 0.0 <= q <= 100.0 or float(pkey(q)[1:]) != q for q in qs):
        raise ValueError(f"percentiles must be within 0..100 with at most 6 significant digits, got {qs}")
    return qs


def _summarize_batches(pool: ThreadPoolExecutor, batches: list[pa.RecordBatch], labels: tuple[Labels, ...],
                       window: Window | None, requirements: Sequence[str] | None, qs: tuple[float, ...],
                       series: bool) -> dict:
    if window is None:
        ends = [e for e in pool.map(_time_range, batches) if e is not None]
        window = Window(min(e[0] for e in ends), max(e[1] for e in ends)) if ends else Window(0.0, 0.0)
    n_sec = max(1, math.ceil(window.seconds))
    (rt_labels, nm_labels, rq_labels), dims = (lab.labels for lab in labels), [len(lab.labels) for lab in labels]
    chunks = list(pool.map(lambda batch: _chunk(batch, window, labels, n_sec), batches))
    del batches
    ids_of = [split_ids(label) for label in rq_labels]
    # Finest groups: (request_type, name, requirement label); every reported group is a union of them.
    bases = [c.combo for c in chunks]
    size = math.prod(dims)
    seen = sum(pool.map(lambda b: np.bincount(b, minlength=size), bases)) > 0 if bases and size <= 1 << 16 else None
    combos, ids, n_base = compact(bases, size, seen)
    found = sorted({i for q in set((combos % dims[2]).tolist()) for i in ids_of[q]})
    section = sorted(set(requirements)) if requirements is not None else found
    slot_of = {rid: j for j, rid in enumerate(section)}
    lat = Latency([c.values for c in chunks], pool.map)

    outs: dict[tuple, int] = {}
    pairs: list[tuple[int, int]] = []
    for b, combo in zip(ids.tolist(), combos.tolist()):
        r, m, q = combo // (dims[1] * dims[2]), combo // dims[2] % dims[1], combo % dims[2]
        pairs += [(outs.setdefault(key, len(outs)), b) for key in output_keys(rt_labels[r], nm_labels[m], ids_of[q], slot_of)]
    po, pb = (np.array([p[i] for p in pairs], np.int64) for i in (0, 1))
    series_of = (pool.submit(per_second, lat, [c.slot for c in chunks], [c.failed for c in chunks],
                             [c.users for c in chunks], ids_of, slot_of, window, n_sec) if series else None)
    stats = _group_stats(lat, bases, n_base, [c.failed for c in chunks], po, pb, len(outs), qs, window.seconds)
    del bases
    summary = summary_doc(window, outs, stats, section, qs)
    if series:
        summary["series_percentile_method"] = "linear"
        summary["series"], by_req = series_of.result()
        summary["series_by_requirement"] = dict(zip(section, by_req))
    return summary


def output_keys(request_type: str | None, name: str | None, ids: tuple[str, ...], slot_of: dict[str, int]) -> list[tuple]:
    """The reported groups a base group (request type, name, requirement label) belongs to."""
    keys = [("request", request_type or "", name or "", rid) for rid in ids or (None,)]
    return keys + [("requirement", rid) for rid in ids if rid in slot_of] + [("overall",)]


def summary_doc(window: Window, outs: dict[tuple, int], stats: list[dict], section: list[str],
                qs: tuple[float, ...]) -> dict:
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


def _time_range(batch: pa.RecordBatch) -> tuple[float, float] | None:
    """First and last timestamp of a batch, NaN and nulls left out; None if it has none."""
    ts = numpy_of(batch.column("timestamp"), np.nan)
    first = float(np.fmin.reduce(ts)) if ts.size else math.nan
    return None if math.isnan(first) else (first, float(np.fmax.reduce(ts)))


@dataclass(frozen=True)
class Chunk:
    """One slice of the samples in the window (zero-copy views where the window keeps every row)."""

    combo: np.ndarray  # (request_type, name, requirement label) codes as one int64, compacted later
    slot: np.ndarray  # (requirement label, second of the window) as one integer
    failed: np.ndarray  # positions of failed requests
    users: np.ndarray  # int32, -1 where unknown
    values: np.ndarray  # response_time_ms, NaN where unknown


def _chunk(batch: pa.RecordBatch, window: Window, labels: tuple[Labels, ...], n_sec: int) -> Chunk:
    """One record batch, restricted to the window, as group codes and values."""
    ts = numpy_of(batch.column("timestamp"), np.nan)
    inside = ts.size == 0 or (window.start <= ts.min() and ts.max() <= window.end)  # False if any NaN
    keep = None if inside else np.flatnonzero((ts >= window.start) & (ts <= window.end))
    pick = (lambda a: a) if keep is None else (lambda a: a[keep])
    rt, nm, rq = (pick(lab.codes(batch)) for lab in labels)
    n_rq = len(labels[2].labels)
    dtype = _index_type(len(labels[0].labels) * len(labels[1].labels) * n_rq)  # int32 when it fits: half the memory
    combo = np.multiply(rt, len(labels[1].labels) * n_rq, dtype=dtype)
    combo += np.multiply(nm, n_rq, dtype=dtype)
    combo += rq
    slot = (pick(ts) - window.start).astype(_index_type(n_sec * n_rq))  # truncation is floor: all >= 0 here
    np.minimum(slot, n_sec - 1, out=slot)
    slot += np.multiply(rq, n_sec, dtype=slot.dtype)
    ok = numpy_of(batch.column("success"), False)
    users = batch.column("users") if "users" in batch.schema.names else pa.nulls(batch.num_rows, pa.int32())
    return Chunk(combo, slot, np.flatnonzero(~pick(ok)),
                  pick(numpy_of(users, -1)), pick(numpy_of(batch.column("response_time_ms"), np.nan)))


def _index_type(size: int) -> type:
    """The narrowest of int32/int64 that holds codes below ``size``."""
    return np.int32 if size < 1 << 31 else np.int64


def _group_stats(lat: Latency, bases: list[np.ndarray], n_base: int, failed: list[np.ndarray], po: np.ndarray,
                 pb: np.ndarray, n_out: int, qs: tuple[float, ...], seconds: float) -> list[dict]:
    """STATS of each output group, the union of the base groups paired with it (po[i] owns pb[i])."""
    return stats_of(group_arrays(lat, bases, n_base, failed, po, pb, n_out, qs, detail=True), n_out, qs, seconds)


def stats_of(g: dict[str, np.ndarray], n_out: int, qs: tuple[float, ...], seconds: float) -> list[dict]:
    """STATS of each output group from its arrays (``group_arrays`` with ``detail``, or the streamed path's)."""
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


def _zero_stats(qs: tuple[float, ...]) -> dict:
    """STATS of a scope without requests."""
    return {"requests": 0, "failures": 0, "error_rate": 0.0, "throughput": 0.0,
            "response_time_ms": dict.fromkeys(time_keys(qs)),
            "response_time_ci95_ms": dict.fromkeys(pkey(q) for q in qs)}
