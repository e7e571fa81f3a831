"""Stalls of the target seen by unpaced users: no schedule, so each user's own cadence is the yardstick.

An unpaced user (``between``, ``constant``, a custom wait) sends its next request only after the last
one came back. When the target stalls, every user is stuck in one request and the raw samples simply
have a hole where the slow part of the distribution should be. A request *blocks* its user when it
was outstanding for more than :data:`FACTOR` times the median response time of its request (so an
endpoint that is always slow blocks nobody), and at least :data:`MIN_SECONDS`. A *stall* is a stretch
of at least :data:`MIN_SECONDS` during which at least half of the window's active unpaced users were
blocked at once — a slow request of one user is not a stall, a target that stops answering everyone
is. The requests the blocked users would have sent at their usual cadence (the blocked time over the
user's median time between requests within :data:`NEAR_SECONDS` of the stall, less the one request
that was sent) are the stall's
``hidden_requests``; the gate makes a percentile threshold inconclusive when they could hide more
than the tail it looks at.

A user blocked alone (outside any such stretch) by one request for :data:`STUCK_SHARE` of the window or
more is *stuck*: a target that never answers a few connections stalls no crowd, yet those users send
nothing for most of the window. Each is reported (``stuck_users`` in the summary), and the run's
analysis names it as a problem of the run: the samples miss what it would have sent.

Memory stays bounded by the users and the long requests, not by the samples: one streaming pass keeps
only the requests held :data:`MIN_SECONDS` or more (28 bytes each) and the set of active users; only
when those requests crowd into a stretch does a second pass read the blocked users' request times,
and only those within :data:`NEAR_SECONDS` of a stretch (a soak run's hours are not read in).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from loadgate.analysis.labels import split_ids
from loadgate.analysis.window import Window
from loadgate.data.arrowbuf import int32_array, numpy_of
from loadgate.data.sample_source import SampleSource

FACTOR = 3.0  # blocked: outstanding for more than this many of its request's median times ...
MIN_SECONDS = 0.5  # ... and at least this long; a stall lasts at least this long too
MIN_SHARE = 0.5  # a stall: at least this share of the active unpaced users blocked at once
NEAR_SECONDS = 300.0  # a blocked user's usual cadence: its requests within this of the stall
STUCK_SHARE = 0.25  # a user blocked alone by one request for this share of the window: stuck
COLUMNS = ("timestamp", "response_time_ms", "user", "worker", "period_ms", "request_type", "name", "requirement")

Batches = Callable[[], Iterable[pa.RecordBatch]]  # a fresh pass over the samples each call


# Over the size/complexity limit (noqa): one pass over the batches; split would re-read them.
def find_stalls(  # noqa: C901
    batches: Batches,
    window: Window,
    summary: dict[str, Any],
) -> tuple[list[dict[str, Any]], Counter[Any], list[dict[str, Any]]]:
    """The stalls in ``window`` seen by unpaced requests, the requests they hide per scope, and the users
    stuck alone (:func:`_stuck`).

    ``batches()`` yields record batches with (some of) :data:`COLUMNS`; ``summary`` is the raw summary
    of the same window, whose per-request p50 is each request's yardstick.
    """
    usual = _usual_response(summary)
    workers: dict[str, int] = {}
    active: set[int] = set()
    labels: dict[tuple[str, str, str], int] = {}  # (request type, name, requirement label) -> code
    long_parts: list[tuple[np.ndarray, ...]] = []  # the long requests as arrays: 28 bytes each, not a tuple
    for batch in batches():
        b = _Batch(batch, workers)
        if b.who is None:
            continue
        unpaced = b.unpaced & (b.user >= 0) & ~np.isnan(b.ts)
        inside = unpaced & (b.ts >= window.start) & (b.ts <= window.end)
        for w in np.flatnonzero(np.bincount(b.wid)).tolist():  # small numbers per worker: count, don't sort
            mine = b.user[inside & (b.wid == w)]
            if mine.size:
                active.update((w * (1 << 32) + np.flatnonzero(np.bincount(mine))).tolist())
        long = np.flatnonzero(
            unpaced & (b.held >= MIN_SECONDS) & (b.ts <= window.end) & (b.ts + b.held >= window.start)
        )
        if long.size:
            code = np.array([labels.setdefault(lab, len(labels)) for lab in b.labels(long)], np.int32)
            long_parts.append((b.ts[long], b.held[long], b.who[long], code))
    need = max(1, math.ceil(MIN_SHARE * len(active)))
    if not active or not long_parts:
        return [], Counter(), []
    ts, held, who, code = (np.concatenate(parts) for parts in zip(*long_parts))
    names = list(labels)
    yardstick = np.array([FACTOR * usual.get((rtype, name), math.inf) for rtype, name, _ in names])
    blocked = np.flatnonzero(held > yardstick[code])
    ts, held, who, code = ts[blocked], held[blocked], who[blocked], code[blocked]
    starts = np.maximum(ts, window.start)
    ends = np.minimum(ts + held, window.end)
    stretches = (
        [(s, e) for s, e in _crowded(starts, ends, need) if e - s >= MIN_SECONDS] if blocked.size >= need else []
    )
    stretches = [(s, e) for s, e in stretches if np.unique(who[(starts < e) & (ends > s)]).size >= need]
    counted = np.zeros(who.size, bool)
    for s, e in stretches:
        counted |= (starts < e) & (ends > s)
    stuck = _stuck(starts, ends, who, code, ~counted, names, workers, window)
    if not stretches:
        return [], Counter(), stuck
    gap = _median_gaps(batches, workers, set(who.tolist()), stretches)
    each = np.maximum(0.0, (ends - starts) / np.array([gap.get(w, math.nan) for w in who.tolist()]) - 1.0)
    each = np.nan_to_num(each)
    stalls: list[dict[str, Any]] = []
    hidden: Counter[Any] = Counter()
    rid: str | None
    for s, e in stretches:
        hit = (starts < e) & (ends > s)
        stalls.append(
            {
                "start": float(s),
                "end": float(e),
                "seconds": float(e - s),
                "users": int(np.unique(who[hit]).size),
                "active_users": len(active),
                "hidden_requests": int(round(float(each[hit].sum()))),
            }
        )
    for i in np.flatnonzero(counted).tolist():
        rtype, name, label = names[code[i]]
        ids = split_ids(label)
        hidden[("overall",)] += each[i]
        for rid in ids:
            hidden[("requirement", rid)] += each[i]
        for rid in ids or (None,):
            hidden[("request", rtype, name, rid)] += each[i]
    return stalls, hidden, stuck


def _stuck(
    starts: np.ndarray,
    ends: np.ndarray,
    who: np.ndarray,
    code: np.ndarray,
    alone: np.ndarray,
    names: list[tuple[str, str, str]],
    workers: dict[str, int],
    window: Window,
) -> list[dict[str, Any]]:
    """The users that one blocked request held, outside any stall of many users, for :data:`STUCK_SHARE` of
    the window or more: each with how long, from when, and the request it waited on (longest first)."""
    held = ends - starts
    rows = np.flatnonzero(alone & (held >= max(MIN_SECONDS, STUCK_SHARE * window.seconds)))
    if not rows.size:
        return []
    worker_names = {v: k for k, v in workers.items()}
    longest: dict[int, int] = {}
    for i in rows.tolist():
        if who[i] not in longest or held[i] > held[longest[who[i]]]:
            longest[int(who[i])] = i
    out = []
    for key, i in longest.items():
        rtype, name, label = names[code[i]]
        out.append(
            {
                "worker": worker_names.get(key >> 32, ""),
                "user": key & 0xFFFFFFFF,
                "start": float(starts[i]),
                "seconds": float(held[i]),
                "share": float(held[i] / window.seconds) if window.seconds > 0 else 1.0,
                "request": f"{rtype} {name}",
                "requirement": label,
            }
        )
    return sorted(out, key=lambda u: (-u["seconds"], u["worker"], u["user"]))


def stuck_problem(stuck: list[dict[str, Any]], shown: int = 5) -> str | None:
    """One line naming the stuck users (the longest ``shown`` of them) and how long each sent nothing."""
    if not stuck:
        return None
    named = "; ".join(
        f"user {u['user']}"
        + (f" of {u['worker']}" if u["worker"] else "")
        + f" for {u['seconds']:.1f} s ({u['share']:.0%} of the window) from "
        + dt.datetime.fromtimestamp(u["start"], dt.timezone.utc).strftime("%H:%M:%S UTC")
        + f", waiting on {u['request']}"
        for u in stuck[:shown]
    )
    more = f"; and {len(stuck) - shown} more" if len(stuck) > shown else ""
    n = len(stuck)
    return (
        f"{n} user{'s' if n != 1 else ''} sent nothing while one request went unanswered: {named}{more}; the "
        "requests they would have sent are missing from the samples; pace the users (constant_throughput) "
        "to count them from the schedule"
    )


class _Batch:
    """One record batch as the arrays the stall search needs (who: one key per (worker, user))."""

    def __init__(self, batch: pa.RecordBatch, workers: dict[str, int]) -> None:
        names = batch.schema.names
        self.batch = batch
        self.who = None
        if "user" not in names or batch.num_rows == 0:
            return
        self.ts = numpy_of(batch.column("timestamp"), np.nan)
        self.held = numpy_of(batch.column("response_time_ms"), np.nan) / 1000.0
        self.user = numpy_of(batch.column("user"), -1).astype(np.int64)
        period = batch.column("period_ms") if "period_ms" in names else None
        self.unpaced = (
            np.ones(batch.num_rows, bool)
            if period is None or period.null_count == len(period)
            else np.isnan(numpy_of(period, np.nan))
        )
        self.wid = _worker_ids(batch, workers)
        self.who = self.wid * (1 << 32) + self.user

    def labels(self, rows: np.ndarray) -> list[tuple[str, str, str]]:
        """(request_type, name, requirement label) of the given rows (taken first, decoded after)."""
        picked = int32_array(rows.astype(np.int32).tobytes())  # (pa.array of numpy would import pandas)
        cols = [_strings(self.batch, n, picked) for n in ("request_type", "name", "requirement")]
        return [(a or "", b or "", c or "") for a, b, c in zip(*cols)]


def _strings(batch: pa.RecordBatch, name: str, rows: pa.Array) -> list[str | None]:
    if name not in batch.schema.names:
        return [""] * len(rows)
    column = batch.column(name).take(rows)
    plain = column.dictionary_decode() if pa.types.is_dictionary(column.type) else column
    values: list[str | None] = plain.to_pylist()
    return values


def _worker_ids(batch: pa.RecordBatch, workers: dict[str, int]) -> np.ndarray:
    """A stable small integer per worker name, across batches."""
    if "worker" not in batch.schema.names:
        return np.zeros(batch.num_rows, np.int64)
    column = batch.column("worker")
    if not pa.types.is_dictionary(column.type):
        column = column.dictionary_encode()
    ids = np.array([workers.setdefault(w or "", len(workers)) for w in column.dictionary.to_pylist()] + [0], np.int64)
    return ids[numpy_of(column.indices, len(ids) - 1).astype(np.int64)]


def _usual_response(summary: dict[str, Any]) -> dict[tuple[str, str], float]:
    """Each request's median response time in the window (s), from the summary."""
    p50: dict[tuple[str, str], float] = {}
    for e in summary.get("requests") or ():
        value = (e.get("response_time_ms") or {}).get("p50")
        if value is not None:
            key = (e["request_type"] or "", e["name"] or "")
            p50[key] = max(p50.get(key, 0.0), value / 1000.0)
    return p50


def _median_gaps(
    batches: Batches, workers: dict[str, int], users: set[int], stretches: list[tuple[float, float]]
) -> dict[int, float]:
    """The median time between request starts of each of ``users`` within :data:`NEAR_SECONDS` of a
    stretch (a second pass, those users' rows there only: memory by the minutes around the stalls,
    not by the length of the run)."""
    wanted = np.array(sorted(users), np.int64)
    spans: list[list[float]] = []  # the stretches widened by NEAR_SECONDS, merged where they overlap
    for s, e in stretches:  # (in time order, disjoint)
        if spans and s - NEAR_SECONDS <= spans[-1][1]:
            spans[-1][1] = e + NEAR_SECONDS
        else:
            spans.append([s - NEAR_SECONDS, e + NEAR_SECONDS])
    near = np.array(spans).ravel()
    keys, times = [], []
    for batch in batches():
        b = _Batch(batch, workers)
        if b.who is None:
            continue
        mine = np.isin(b.who, wanted) & b.unpaced & ~np.isnan(b.ts)
        mine &= np.searchsorted(near, b.ts, side="right") % 2 == 1  # inside one of the spans
        keys.append(b.who[mine])
        times.append(b.ts[mine])
    if not keys:
        return {}
    who, ts = np.concatenate(keys), np.concatenate(times)
    order = np.lexsort((ts, who))
    who, ts = who[order], ts[order]
    same = who[1:] == who[:-1]
    g_who, g_gap = who[:-1][same], np.diff(ts)[same]
    order = np.lexsort((g_gap, g_who))
    g_who, g_gap = g_who[order], g_gap[order]
    u, start, count = np.unique(g_who, return_index=True, return_counts=True)
    return dict(zip(u.tolist(), g_gap[start + (count - 1) // 2].tolist()))


def _crowded(starts: np.ndarray, ends: np.ndarray, need: int) -> list[tuple[float, float]]:
    """Maximal stretches where at least ``need`` of the intervals [starts, ends) overlap."""
    times = np.concatenate((starts, ends))
    steps = np.concatenate((np.ones(starts.size, np.int64), -np.ones(ends.size, np.int64)))
    order = np.lexsort((steps, times))  # at equal times, ends (-1) before starts (+1)
    level = np.cumsum(steps[order])
    times = times[order]
    out, begin = [], None
    for when, n in zip(times.tolist(), level.tolist()):
        if begin is None and n >= need:
            begin = when
        elif begin is not None and n < need:
            out.append((begin, when))
            begin = None
    return out


def source_batches(source: SampleSource) -> Batches:
    """Passes over a sample source, one row group at a time (only the columns it holds of those needed)."""
    columns = [c for c in COLUMNS if c in source.names]

    def passes() -> Iterator[pa.RecordBatch]:
        for i in range(source.count):
            yield from source.read(i, columns).to_batches(1 << 20)

    return passes
