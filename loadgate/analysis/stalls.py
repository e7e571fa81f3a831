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


def find_stalls(table: pa.Table, window: Window, cols: dict[str, np.ndarray], unpaced: np.ndarray, summary: dict
                ) -> tuple[list[dict], Counter]:
    """The stalls in ``window`` seen by the ``unpaced`` rows, and the requests they hide per scope.

    ``cols``: the table's ``timestamp``, ``response_time_ms`` and ``user`` as numpy arrays (NaN, -1 for
    nulls). ``summary`` is the raw summary of the same window: its per-request p50 is each request's
    yardstick.
    Cheap when there is no stall: only requests held at least :data:`MIN_SECONDS` are looked at, and the
    users' cadences are computed only for the users blocked in a crowded stretch.
    """
    if "user" not in table.column_names or table.num_rows == 0:
        return [], Counter()
    ts, user = cols["timestamp"], cols["user"]  # every array here: one value per row of the table
    held = cols["response_time_ms"] / 1000.0
    long = np.flatnonzero(unpaced & (user >= 0) & (held >= MIN_SECONDS) & (ts <= window.end)
                          & (ts + held >= window.start))
    if long.size == 0:
        return [], Counter()
    blocked = long[held[long] > FACTOR * _usual_response(table, summary)[long]]
    in_window = np.flatnonzero(unpaced & (user >= 0) & (ts >= window.start) & (ts <= window.end))
    worker = _worker_codes(table)
    who = worker * (int(user.max()) + 1) + user  # one dense key per (worker, user)
    active = _distinct(who[in_window])
    need = max(1, math.ceil(MIN_SHARE * active))
    if blocked.size < need:
        return [], Counter()
    starts = np.maximum(ts[blocked], window.start)
    ends = np.minimum(ts[blocked] + held[blocked], window.end)
    stretches = [(s, e) for s, e in _crowded(starts, ends, need) if e - s >= MIN_SECONDS]
    if not stretches:
        return [], Counter()
    involved = np.isin(who, np.unique(who[blocked]))
    gap = _median_gap(who, ts, np.flatnonzero(unpaced & involved & ~np.isnan(ts)))
    hidden_each = np.maximum(0.0, (ends - starts) / gap(who[blocked]) - 1.0)
    stalls, hidden = [], np.zeros(table.num_rows)
    for s, e in stretches:
        hit = (starts < e) & (ends > s)
        users = _distinct(who[blocked][hit])
        if users < need:  # crowded by requests, not by users (one user's overlapping requests)
            continue
        stalls.append({"start": float(s), "end": float(e), "seconds": float(e - s), "users": users,
                       "active_users": active, "hidden_requests": int(round(float(np.nansum(hidden_each[hit]))))})
        np.add.at(hidden, blocked[hit], np.nan_to_num(hidden_each[hit]))
    if not stalls:
        return [], Counter()
    return stalls, scope_counts(table, hidden > 0, hidden)


def _distinct(values: np.ndarray) -> int:
    """How many distinct non-negative integers (a counting pass when they are dense, else a sort)."""
    if values.size == 0:
        return 0
    if int(values.max()) < 1 << 24:
        return int(np.count_nonzero(np.bincount(values)))
    return int(np.unique(values).size)


def _worker_codes(table: pa.Table) -> np.ndarray:
    """A small integer per distinct worker name (the column's unified dictionary indices)."""
    if "worker" not in table.column_names:
        return np.zeros(table.num_rows, np.int64)
    column = table.column("worker")
    if not pa.types.is_dictionary(column.type):
        column = pa.chunked_array([c.dictionary_encode() for c in column.chunks],
                                  pa.dictionary(pa.int32(), pa.string()))
    parts = [numpy_of(c.indices, 0) for c in column.unify_dictionaries().chunks]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


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


def _median_gap(who: np.ndarray, ts: np.ndarray, rows: np.ndarray):
    """A function from user keys to each user's median time between request starts, over ``rows``."""
    order = rows[np.lexsort((ts[rows], who[rows]))]
    w, t = who[order], ts[order]
    same = w[1:] == w[:-1]
    g_who, g_gap = w[:-1][same], np.diff(t)[same]
    order = np.lexsort((g_gap, g_who))
    g_who, g_gap = g_who[order], g_gap[order]
    users, start, count = np.unique(g_who, return_index=True, return_counts=True)
    med = g_gap[start + (count - 1) // 2] if users.size else np.zeros(0)

    def of(keys: np.ndarray) -> np.ndarray:
        at = np.searchsorted(users, keys)
        found = (at < users.size) & (users[np.minimum(at, max(users.size - 1, 0))] == keys) if users.size else \
            np.zeros(keys.size, bool)
        return np.where(found, med[np.minimum(at, max(users.size - 1, 0))] if users.size else np.nan, np.nan)

    return of


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
