"""Stalls of the target seen by unpaced users: no schedule, so each user's own cadence is the yardstick.

An unpaced user (``between``, ``constant``, a custom wait) sends its next request only after the last
one came back. When the target stalls, every user is stuck in one request and the raw samples simply
have a hole where the slow part of the distribution should be. A request *blocks* its user when it
was outstanding for more than :data:`FACTOR` times the median response time of its request (so an
endpoint that is always slow blocks nobody), and at least :data:`MIN_SECONDS`. A *stall* is a stretch of at least :data:`MIN_SECONDS` during which
at least half of the window's active unpaced users were blocked at once — a slow request of one user
is not a stall, a target that stops answering everyone is. The requests the blocked users would have
sent at their usual cadence (the blocked time over the median gap, less the one request that was
sent) are the stall's ``hidden_requests``; the gate makes a percentile threshold inconclusive when
they could hide more than the tail it looks at.
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pyarrow as pa

from loadgate.analysis.scopes import scope_counts
from loadgate.analysis.window import Window
from loadgate.data.arrowbuf import numpy_of

FACTOR = 3.0          # blocked: outstanding for more than this many of the user's usual gaps ...
MIN_SECONDS = 0.5     # ... and at least this long; a stall lasts at least this long too
MIN_SHARE = 0.5       # a stall: at least this share of the active unpaced users blocked at once


def find_stalls(table: pa.Table, window: Window, unpaced: np.ndarray, summary: dict
                ) -> tuple[list[dict], Counter]:
    """The stalls in ``window`` seen by the ``unpaced`` rows, and the requests they hide per scope.

    ``summary`` is the raw summary of the same window: its per-request p50 is each request's yardstick.
    """
    if "user" not in table.column_names or table.num_rows == 0:
        return [], Counter()
    ts = _numbers(table, "timestamp", np.nan)  # chunked as the table's timestamp column, as every array here
    rt = _numbers(table, "response_time_ms", np.nan) / 1000.0
    user = _numbers(table, "user", -1).astype(np.int64)
    worker = _worker_codes(table)
    usable = unpaced & (user >= 0) & ~np.isnan(ts)
    rows = np.flatnonzero(usable)
    if rows.size < 2:
        return [], Counter()
    who = worker[rows] * (1 << 32) + user[rows]
    order = rows[np.lexsort((ts[rows], who))]
    who = worker[order] * (1 << 32) + user[order]
    t = ts[order]
    same = who[1:] == who[:-1]
    gap = np.where(same, np.diff(t), np.nan)  # from each request's start to its user's next one
    typical = _median_gap(who, gap)
    usual = _usual_response(table, summary)[order]
    held = rt[order]
    blocked = (held > FACTOR * usual) & (held >= MIN_SECONDS) & ~np.isnan(held)
    starts, ends = t[blocked], t[blocked] + held[blocked]
    clip = (ends >= window.start) & (starts <= window.end)
    starts, ends = np.maximum(starts[clip], window.start), np.minimum(ends[clip], window.end)
    blocked_rows = order[blocked][clip]
    blocked_users = who[blocked][clip]
    in_window = (t >= window.start) & (t <= window.end)
    active = int(np.unique(who[in_window]).size)
    if active == 0 or starts.size == 0:
        return [], Counter()
    need = max(1, math.ceil(MIN_SHARE * active))
    hidden_each = np.maximum(0.0, (ends - starts) / typical[blocked][clip] - 1.0)
    stalls, hidden = [], np.zeros(table.num_rows)
    for s, e in _crowded(starts, ends, need):
        if e - s < MIN_SECONDS:
            continue
        hit = (starts < e) & (ends > s)
        stalls.append({"start": float(s), "end": float(e), "seconds": float(e - s),
                       "users": int(np.unique(blocked_users[hit]).size), "active_users": active,
                       "hidden_requests": int(round(float(hidden_each[hit].sum())))})
        np.add.at(hidden, blocked_rows[hit], hidden_each[hit])
    if not stalls:
        return [], Counter()
    return stalls, scope_counts(table, hidden > 0, hidden)


def _numbers(table: pa.Table, name: str, fill) -> np.ndarray:
    parts = [numpy_of(chunk, fill) for chunk in table.column(name).chunks]
    return np.concatenate(parts) if parts else np.zeros(0)


def _worker_codes(table: pa.Table) -> np.ndarray:
    """A small integer per distinct worker name."""
    if "worker" not in table.column_names:
        return np.zeros(table.num_rows, np.int64)
    column = table.column("worker")
    if pa.types.is_dictionary(column.type):
        column = column.cast(pa.string())
    encoded = column.combine_chunks().dictionary_encode()
    return numpy_of(encoded.indices, 0).astype(np.int64)


def _usual_response(table: pa.Table, summary: dict) -> np.ndarray:
    """Each row's request's median response time in the window (s), from the summary; NaN if unknown."""
    p50: dict[tuple[str, str], float] = {}
    for e in summary.get("requests") or ():
        value = (e.get("response_time_ms") or {}).get("p50")
        if value is not None:
            key = (e["request_type"], e["name"])
            p50[key] = max(p50.get(key, 0.0), value / 1000.0)
    parts = []
    for chunk_rt, chunk_nm in zip(_dictionary_chunks(table, "request_type"), _dictionary_chunks(table, "name")):
        types, names = chunk_rt.dictionary.to_pylist(), chunk_nm.dictionary.to_pylist()
        lookup = np.array([[p50.get((t or "", n or ""), np.nan) for n in names] + [np.nan] for t in types]
                          + [[np.nan] * (len(names) + 1)]).reshape(len(types) + 1, len(names) + 1)
        i = numpy_of(chunk_rt.indices, len(types)).astype(np.int64)
        j = numpy_of(chunk_nm.indices, len(names)).astype(np.int64)
        parts.append(lookup[i, j])
    return np.concatenate(parts) if parts else np.zeros(0)


def _dictionary_chunks(table: pa.Table, name: str) -> list[pa.DictionaryArray]:
    """A string column's chunks as dictionary arrays, chunked like the table's timestamp column."""
    column = table.column(name)
    if not pa.types.is_dictionary(column.type):
        column = pa.chunked_array([c.dictionary_encode() for c in column.chunks], pa.dictionary(pa.int32(), pa.string()))
    sizes = [len(c) for c in table.column("timestamp").chunks]
    if [len(c) for c in column.chunks] == sizes:
        return list(column.chunks)
    whole = column.unify_dictionaries().combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if not pa.types.is_dictionary(whole.type):
        whole = whole.dictionary_encode()
    out, at = [], 0
    for n in sizes:
        out.append(whole.slice(at, n))
        at += n
    return out


def _median_gap(who: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """For each row (sorted by user, then time), its user's median gap between request starts."""
    valid = ~np.isnan(gap)
    users, first = np.unique(who, return_index=True)
    med = np.full(users.size, np.nan)
    g_who, g_gap = who[:-1][valid], gap[valid]
    if g_gap.size:
        order = np.lexsort((g_gap, g_who))
        g_who, g_gap = g_who[order], g_gap[order]
        u, start, count = np.unique(g_who, return_index=True, return_counts=True)
        med[np.searchsorted(users, u)] = g_gap[start + (count - 1) // 2]
    return med[np.searchsorted(users, who)]


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
