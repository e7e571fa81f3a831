"""Latency from the schedule: what paced users' samples say when the target stalls (coordinated omission).

A closed-loop generator stops sending while the target stalls, so its raw samples miss exactly the
requests that would have waited longest. Paced users know their schedule (``loadgate.pacing``):
each request carries ``intended_ms`` (its latency counted from its iteration's scheduled start) and
the first request of each iteration the number of schedule slots ``omitted`` just before it.

:func:`with_schedule` adds to a summary, per scope: ``paced_requests``, ``omitted``,
``schedule_attainment`` (iterations started / iterations scheduled), ``on_time`` (the share of
started iterations that began on their slot), ``arrivals_busiest_tenth`` (the share of iteration
starts in the busiest tenth of the period: 0.1 when users are spread over their period, 1 when they
all fire at once; see :data:`BUNCHED`) and ``intended_response_time_ms`` — the same exact
percentiles over the intended latencies, where an omitted slot counts as the schedule says it would
have waited: slot j after a late iteration whose first request's intended latency is V waited
V - j·P (P the user's known period; HdrHistogram's expected-interval correction, never with a
guessed interval). Unpaced requests of a scope count with their raw response time. The raw rows are
never altered; the omitted slots exist only inside this computation.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from loadgate.analysis.scopes import scope_counts, scope_histograms
from loadgate.analysis.stalls import Batches, find_stalls, source_batches
from loadgate.analysis.summary import COLUMNS, summarize
from loadgate.analysis.window import Window
from loadgate.data.arrowbuf import numpy_of
from loadgate.data.open_samples import open_samples
from loadgate.data.sample_source import SampleSource

# What with_schedule reads beyond summarize's columns.
SCHEDULE_COLUMNS = ("intended_ms", "omitted", "period_ms", "user", "worker")
_KEYS = ("timestamp", "request_type", "name", "response_time_ms", "success", "requirement", "users")
_SERIES_KEYS = ("p50", "p95", "p99")
_PHASE_BINS = 20  # a period in twentieths: the busiest tenth is the busiest two neighbouring bins
BUNCHED_MIN_STARTS = 40  # fewer iteration starts in a scope: too few to say how they spread
BUNCHED_FLOOR = 0.2  # bunched: the busiest tenth holds more than this (twice an even spread) and more
BUNCHED_ODDS = 0.001  # than this share of draws of as many users at random phases ever put there


def with_schedule(
    summary: dict[str, Any],
    samples: SampleSource | Any,
    window: Window | None,
    *,
    requirements: Sequence[str] | None = None,
    percentiles: Iterable[float] = (),
    series: bool = True,
) -> dict[str, Any]:
    """``summary`` (of ``samples`` over ``window``) with the schedule keys and the stalls added, in place.

    ``samples``: anything :func:`~loadgate.data.sample_source.open_samples` opens. Bounded memory for a
    source on disk: the stalls are searched one row group at a time, and when some rows came from paced
    users their intended latencies (omitted slots included) go one row group at a time into a scratch
    Parquet file beside the samples, summarised like any samples and removed afterwards (samples in
    memory: the intended rows stay in memory too)."""
    source = open_samples(samples, [*COLUMNS, *SCHEDULE_COLUMNS])
    window, qs = _window_and_percentiles(summary, window, percentiles)
    counts, intended = _no_counts(), None
    if "period_ms" in source.names and source.has_values("period_ms"):  # else nothing is read here
        if source.in_memory:
            counts, intended = _intended_in_memory(source, window, requirements, qs, series)
        else:
            try:
                counts, intended = _intended_of_file(source, window, requirements, qs, series)
            except OSError as e:  # no room for the scratch file (a full disk): the intended rows in memory
                print(
                    f"loadgate: warning: no room for the scratch file of the latency from the schedule ({e}); "
                    "computing it with the intended latencies in memory instead",
                    file=sys.stderr,
                )
                counts, intended = _intended_in_memory(source, window, requirements, qs, series)
    return _completed(summary, intended, counts, source_batches(source), window, series)


def _window_and_percentiles(
    summary: dict[str, Any], window: Window | None, percentiles: Iterable[float]
) -> tuple[Window, list[float]]:
    """The summary's window when none is given, and the percentiles it holds plus those asked for."""
    window = Window(summary["window"]["start"], summary["window"]["end"]) if window is None else window
    qs = sorted(
        {float(k[1:]) for k in summary["overall"]["response_time_ms"] if k.startswith("p")}
        | {float(q) for q in percentiles}
    )
    return window, qs


def _no_counts() -> dict[str, Any]:
    return {"paced": Counter(), "started": Counter(), "late": Counter(), "phases": {}, "users": Counter()}


def _columns(table: pa.Table) -> dict[str, np.ndarray]:
    return {
        name: _column(table, name, -1 if name == "omitted" else np.nan)
        for name in ("timestamp", "response_time_ms", "intended_ms", "omitted", "period_ms")
    }


def _counts(table: pa.Table, cols: dict[str, np.ndarray], window: Window) -> dict[str, Any]:
    """Per scope: paced requests, iterations started, started late, their phases, users on schedule."""
    ts = cols["timestamp"]
    inside = (ts >= window.start) & (ts <= window.end)
    paced = inside & ~np.isnan(cols["period_ms"])
    first = inside & (cols["omitted"] >= 0)
    late = first & (cols["intended_ms"] > cols["response_time_ms"])
    counts: dict[str, Any] = {
        name: scope_counts(table, mask) for name, mask in (("paced", paced), ("started", first), ("late", late))
    }
    counts["phases"] = _phases(table, first, ts, cols["period_ms"], window.start)
    # each start stands for period/window of a user: the users that kept the scope's schedule
    counts["users"] = scope_counts(table, first, np.nan_to_num(cols["period_ms"]) / 1000.0 / max(window.seconds, 1e-9))
    return counts


def _merged(into: dict[str, Any], part: dict[str, Any]) -> None:
    """Add one row group's :func:`_counts` to the file's."""
    for name in ("paced", "started", "late", "users"):
        into[name].update(part[name])  # (Counter.update adds, floats too)
    for key, histogram in part["phases"].items():
        into["phases"][key] = into["phases"].get(key, 0) + histogram


def _intended_parts(source: SampleSource, window: Window, counts: dict[str, Any]) -> Iterator[pa.Table]:
    """Per row group of ``source``, its intended-latency rows (time-sorted); ``counts`` are added to."""
    for i in range(source.count):
        table = source.read(i, [*COLUMNS, *SCHEDULE_COLUMNS])
        cols = _columns(table)
        _merged(counts, _counts(table, cols, window))
        yield _intended_table(table, cols).sort_by("timestamp")  # slots go back in time: re-sorted
        del table, cols


def _intended_in_memory(
    source: SampleSource, window: Window, requirements: Sequence[str] | None, qs: Sequence[float], series: bool
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The counts and the intended summary, the intended rows held in memory."""
    counts = _no_counts()
    parts = list(_intended_parts(source, window, counts))
    if not counts["paced"]:
        return counts, None
    return counts, summarize(pa.concat_tables(parts), window, requirements=requirements, percentiles=qs, series=series)


def _intended_of_file(
    source: SampleSource, window: Window, requirements: Sequence[str] | None, qs: Sequence[float], series: bool
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The counts and the intended summary of a source on disk, one row group in memory at a time."""
    counts = _no_counts()
    folder = os.path.dirname(os.path.abspath(source.path))  # type: ignore[attr-defined]  # not in memory: a file
    fd, scratch = tempfile.mkstemp(
        prefix=".loadgate-intended-", suffix=".parquet", dir=folder if os.access(folder, os.W_OK) else None
    )  # (a read-only run: tmp)
    os.close(fd)
    try:
        writer = None
        try:
            for derived in _intended_parts(source, window, counts):
                writer = writer or pq.ParquetWriter(scratch, derived.schema, compression="lz4")
                writer.write_table(derived, row_group_size=max(1, derived.num_rows))
                del derived
        finally:
            if writer is not None:
                writer.close()
        intended = (
            summarize(scratch, window, requirements=requirements, percentiles=qs, series=series)
            if counts["paced"]
            else None
        )
    finally:
        os.remove(scratch)
    return counts, intended


def _completed(
    summary: dict[str, Any],
    intended: dict[str, Any] | None,
    counts: dict[str, Any],
    batches: Batches,
    window: Window,
    series: bool,
) -> dict[str, Any]:
    """``summary`` with every scope's schedule keys, the intended series and the stalls."""
    for key, stats, istats in _scopes(summary, intended):
        _add(stats, istats, key, counts)
    if intended is not None and series:
        _add_series(summary["series"], intended["series"])
        for rid, s in summary.get("series_by_requirement", {}).items():
            _add_series(s, intended["series_by_requirement"][rid])
    stalls, hidden, stuck = find_stalls(batches, window, summary)
    summary["stalls"] = stalls
    summary["stuck_users"] = stuck
    for key, stats, _ in _scopes(summary, None):
        stats["stall_hidden"] = round(hidden[key])
    return summary


def _column(table: pa.Table, name: str, fill: float) -> np.ndarray:
    """A numeric column as one numpy array, nulls (and a column the file lacks) as ``fill``."""
    dtype = np.float64 if isinstance(fill, float) else np.int64
    if name not in table.column_names or table.column(name).null_count == table.num_rows:
        return np.full(table.num_rows, fill, dtype)  # unpaced runs: all null, no per-chunk work
    parts = [numpy_of(chunk, fill) for chunk in table.column(name).chunks]
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)


def _intended_table(table: pa.Table, cols: dict[str, np.ndarray]) -> pa.Table:
    """Every row with its intended latency (its raw one when unpaced), plus one row per omitted slot."""
    rt, intended, omitted, period, ts = (
        cols[c] for c in ("response_time_ms", "intended_ms", "omitted", "period_ms", "timestamp")
    )
    base = table.select([k for k in _KEYS if k in table.column_names])
    real = base.set_column(
        base.column_names.index("response_time_ms"),
        "response_time_ms",
        pa.array(np.where(np.isnan(intended), rt, intended)),
    )
    lost = np.flatnonzero(omitted > 0)
    if lost.size == 0:
        return real
    m = omitted[lost].astype(np.int64)
    src = np.repeat(lost, m)
    j = np.arange(src.size) - np.repeat(np.cumsum(m) - m, m) + 1  # 1..m within each late iteration
    step = period[src] * j
    value = intended[src] - step  # V - j*P, all > the service time
    when = ts[src] - (intended[src] - rt[src]) / 1000.0 + step / 1000.0  # the slot's own time
    synthetic = base.take(pa.array(src))
    synthetic = synthetic.set_column(
        synthetic.column_names.index("response_time_ms"), "response_time_ms", pa.array(value)
    )
    synthetic = synthetic.set_column(synthetic.column_names.index("timestamp"), "timestamp", pa.array(when))
    synthetic = synthetic.set_column(
        synthetic.column_names.index("success"), "success", pa.array(np.ones(src.size, bool))
    )
    return pa.concat_tables([real, synthetic.cast(real.schema)])


def _scopes(
    summary: dict[str, Any], intended: dict[str, Any] | None
) -> Iterator[tuple[tuple[Any, ...], dict[str, Any], dict[str, Any] | None]]:
    """(scope key, its STATS in ``summary``, its STATS in ``intended`` or None) for every scope."""
    yield ("overall",), summary["overall"], intended["overall"] if intended else None
    for rid, stats in summary["requirements"].items():
        yield ("requirement", rid), stats, intended["requirements"].get(rid) if intended else None
    by_key = {(e["request_type"], e["name"], e["requirement"]): e for e in (intended or {}).get("requests", ())}
    for e in summary["requests"]:
        key = (e["request_type"], e["name"], e["requirement"])
        yield ("request", *key), e, by_key.get(key)


def _phases(
    table: pa.Table, first: np.ndarray, ts: np.ndarray, period_ms: np.ndarray, start: float
) -> dict[tuple[Any, ...], np.ndarray]:
    """Per scope, the iteration starts in each twentieth of their period (each user's own period,
    counted from the window's start): even when users are spread over their period, piled up in one
    place when they fire in lockstep (Locust spawns users in batches once a second, and a stall that
    ends releases every waiting user at once; each then re-bases its schedule there)."""
    first = first & (period_ms > 0)
    phase = np.zeros(len(ts), np.int64)
    p = period_ms[first] / 1000.0
    phase[first] = np.minimum((np.mod(ts[first] - start, p) / p * _PHASE_BINS).astype(np.int64), _PHASE_BINS - 1)
    return scope_histograms(table, first, phase, _PHASE_BINS)


def busiest_tenth(histogram: np.ndarray | None) -> float | None:
    """The share of a phase histogram in its busiest two neighbouring twentieths (the period wraps)."""
    if histogram is None or histogram.sum() < BUNCHED_MIN_STARTS:
        return None
    return float((histogram + np.roll(histogram, -1)).max() / histogram.sum())


@functools.lru_cache(maxsize=256)
def bunched_above(users: int) -> float:
    """The busiest tenth's share that ``users`` at independent random phases exceed with odds of only
    :data:`BUNCHED_ODDS` (a fixed-seed simulation, so the same run always reads the same): with few users
    even a random spread piles up somewhere (10 users: ~0.5), with many it cannot (1,000: ~0.12)."""
    users = min(max(users, 2), 400)  # from ~300 users on the floor decides: no need to draw more
    draws = np.random.default_rng(users).integers(0, _PHASE_BINS, size=(4000, users))
    counts = np.zeros((4000, _PHASE_BINS), np.int64)
    np.add.at(counts, (np.repeat(np.arange(4000), users), draws.ravel()), 1)
    shares = (counts + np.roll(counts, -1, axis=1)).max(axis=1) / users
    return max(BUNCHED_FLOOR, float(np.quantile(shares, 1 - BUNCHED_ODDS)))


def _add(stats: dict[str, Any], istats: dict[str, Any] | None, key: tuple[Any, ...], counts: dict[str, Any]) -> None:
    paced, started, late = (counts[c][key] for c in ("paced", "started", "late"))
    share = busiest_tenth(counts["phases"].get(key))
    stats["arrivals_busiest_tenth"] = share
    stats["arrivals_bunched"] = None if share is None else share > bunched_above(max(2, round(counts["users"][key])))
    omitted = (istats["requests"] - stats["requests"]) if istats is not None else 0
    stats["paced_requests"] = paced
    stats["omitted"] = omitted
    stats["schedule_attainment"] = started / (started + omitted) if started + omitted else None
    stats["on_time"] = (started - late) / started if started else None
    has = paced > 0 and istats is not None
    stats["intended_response_time_ms"] = istats["response_time_ms"] if has and istats is not None else None
    stats["intended_response_time_ci95_ms"] = istats["response_time_ci95_ms"] if has and istats is not None else None


def _add_series(raw: dict[str, Any], intended: dict[str, Any]) -> None:
    """Per second: the intended percentiles beside the raw ones, and the omitted slots."""
    for k in _SERIES_KEYS:
        raw[f"intended_{k}"] = intended[k]
    raw["omitted"] = [b - a for a, b in zip(raw["requests"], intended["requests"])]
