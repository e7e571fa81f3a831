"""The per-second series over the window: overall and per requirement."""

from __future__ import annotations

from typing import Any

import numpy as np

from loadgate.analysis.latency import Latency
from loadgate.analysis.select import group_arrays, pkey
from loadgate.analysis.window import Window

SERIES_PERCENTILES = (50.0, 95.0, 99.0)


def series(
    lat: Latency,
    bases: list[np.ndarray],
    failed: list[np.ndarray],
    users: list[np.ndarray],
    ids_of: list[tuple[str, ...]],
    slot_of: dict[str, int],
    window: Window,
    n_sec: int,
    first: int = 0,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Per-second series over the window: overall, and per requirement of the section.

    Per chunk of rows: ``bases`` their (requirement label, second) slot, ``failed`` the positions of
    failed requests, ``users`` the user count when each was recorded. ``first``, ``n_sec``: the seconds
    of the window these rows cover (the streamed path computes the series a block of seconds at a time).
    """
    n_base, cols = len(ids_of) * n_sec, np.arange(n_sec)
    pairs = [
        (slot * n_sec + cols, label * n_sec + cols)
        for label, ids in enumerate(ids_of)
        for slot in [0] + [1 + slot_of[i] for i in ids if i in slot_of]
    ]
    po, pb = (np.concatenate([p[i] for p in pairs]) for i in (0, 1))
    n_out = (1 + len(slot_of)) * n_sec
    g = group_arrays(lat, bases, n_base, failed, po, pb, n_out, SERIES_PERCENTILES, detail=False)
    has_rt = g["nlat"] > 0
    peak, peak_out = np.full(n_base, -1, np.int32), np.full(n_out, -1, np.int32)
    for base, u in zip(bases, users):
        _peak_into(peak, base, u)
    np.maximum.at(peak_out, po, peak[pb])
    t = [window.start + i for i in range(first, first + n_sec)]
    width = [min(1.0, window.end - s) for s in t]  # the last second may be cut short by the window

    def one(slot: int) -> dict[str, Any]:
        part = slice(slot * n_sec, (slot + 1) * n_sec)
        requests, has = g["n"][part].tolist(), has_rt[part].tolist()
        return {
            "t": t,
            "requests": requests,
            "failures": g["fails"][part].tolist(),
            "throughput": [r / w if w > 0 else 0.0 for r, w in zip(requests, width)],
            **{
                pkey(q): [v if h else None for v, h in zip(g["pct"][part, j].tolist(), has)]
                for j, q in enumerate(SERIES_PERCENTILES)
            },
            "users": [u if u >= 0 else None for u in peak_out[part].tolist()],
        }

    return one(0), [one(1 + j) for j in range(len(slot_of))]


def _peak_into(peak: np.ndarray, slot: np.ndarray, users: np.ndarray) -> None:
    """``peak[s] = max(peak[s], users of the rows in slot s)``.

    Rows come mostly in time order with a user count that changes seldom: only the first row of each
    run of equal (slot, users) goes through the slow ``maximum.at``.
    """
    if slot.size == 0:
        return
    starts = np.flatnonzero((slot[1:] != slot[:-1]) | (users[1:] != users[:-1])) + 1
    if starts.size > slot.size // 4:  # no runs to speak of
        np.maximum.at(peak, slot, users)
        return
    starts = np.concatenate(([0], starts))
    np.maximum.at(peak, slot[starts], users[starts])


def empty_series(window: Window, first: int, n_sec: int) -> dict[str, Any]:
    """The series of seconds ``first .. first + n_sec - 1`` of the window without a request in them."""
    t = [window.start + i for i in range(first, first + n_sec)]
    nothing = [None] * n_sec
    return {
        "t": t,
        "requests": [0] * n_sec,
        "failures": [0] * n_sec,
        "throughput": [0.0] * n_sec,
        **{pkey(q): nothing for q in SERIES_PERCENTILES},
        "users": nothing,
    }


def joined(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One series of consecutive blocks of seconds."""
    return {k: [v for p in parts for v in p[k]] for k in parts[0]}
