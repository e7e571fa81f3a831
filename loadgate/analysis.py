"""Samples -> ``summary.json`` (schema ``loadgate.summary/1``): exact percentiles, error rates, throughput.

Percentiles are numpy's default ``linear`` method, bit for bit, without sorting every group. Response
times become order-preserving uint64 keys; a histogram per (group, key bucket) finds the bucket that
holds each wanted rank; only the samples in those buckets are sorted (``_select``). Every reported
group (a request, a requirement, all requests, one second) is a union of finest groups, whose
histograms it sums: a sample named by several requirements is never copied. Rows are handled in
chunks of zero-copy Arrow views, so memory stays a few bytes per sample beyond the table itself.
"""
from __future__ import annotations

import ctypes
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache

import numpy as np
import pyarrow as pa

from loadgate.arrowbuf import numpy_of
from loadgate.units import parse_duration

SUMMARY_SCHEMA_ID = "loadgate.summary/1"
DEFAULT_PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)
SERIES_PERCENTILES = (50.0, 95.0, 99.0)
# What summarize reads: pass to read_samples(path, COLUMNS, dictionary=True) for the fast path.
COLUMNS = ("timestamp", "request_type", "name", "response_time_ms", "success", "requirement", "users")
_BIN_BUDGET = 1 << 20  # histogram cells per selection (groups x buckets) ...
_ROWS_PER_BUDGET_BITS = 22  # ... times one per 4M samples (finer buckets, fewer candidates, for long runs)
_BUDGET_SCALE_MAX = 32  # ... up to 32M cells
_PAIR_BLOCK = 1 << 22  # (group, base group) pairs x buckets expanded at once
_MAX_RUNS = 1 << 12  # runs of pairs summed one slice at a time
_KEEP_CODES_BELOW = 1 << 12  # fewer (request_type, name, requirement) combinations: codes are group ids
_FINE_BITS = 12  # at most 4096 buckets over the key range
_CHUNK_ROWS = 1 << 20  # rows handled at once: bounds the temporary arrays
_WINDOW_FORM = ("START:END, each side an offset from the first sample (30s, 2m, 90) or a Unix time, "
                "either side may be empty (e.g. 30s:, :5m, 1764000000:1764000300)")


@dataclass(frozen=True)
class Window:
    """An analysis window in Unix seconds; both ends inclusive."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        """Length of the window in seconds."""
        return self.end - self.start


def parse_window(text: str, first: float, last: float) -> Window:
    """Window from ``"START:END"``; offsets count from ``first``; an empty side means first or last."""
    parts = text.split(":")
    if len(parts) != 2:
        raise ValueError(f"expected a window as {_WINDOW_FORM}; got {text!r}")

    def side(part: str, default: float) -> float:
        part = part.strip()
        if not part:
            return default
        try:
            if math.isfinite(float(part)) and float(part) > 1e9:  # a Unix time, not an offset
                return float(part)
        except ValueError:
            pass
        try:
            return first + parse_duration(part)
        except ValueError:
            raise ValueError(f"expected a window as {_WINDOW_FORM}; got {text!r}") from None

    start, end = side(parts[0], first), side(parts[1], last)
    if end < start:
        raise ValueError(f"window {text!r} ends before it starts ({end:.3f} < {start:.3f}); expected {_WINDOW_FORM}")
    return Window(float(start), float(end))


def summarize(table: pa.Table, window: Window | None = None, *, requirements: Sequence[str] | None = None,
              percentiles: Iterable[float] = DEFAULT_PERCENTILES, series: bool = True) -> dict:
    """The CONTRACT section 7 summary of the samples in ``window`` (default: first to last timestamp).

    ``requirements`` limits the requirements section to those IDs, each present even without samples.
    Rows with a null/NaN response time count as requests but not in the response-time statistics;
    a null ``success`` counts as a failure.
    """
    with _memory_tuned():
        return _summarize(table, window, requirements, percentiles, series)


@contextmanager
def _memory_tuned() -> Iterator[None]:
    """Allocate without numpy's transparent-huge-page advice, and keep freed memory for reuse, while inside.

    The analysis allocates and frees a few hundred arrays of 1-30 MB. With the kernel's THP 'madvise'
    mode, each advised 2 MB fault may stall on memory compaction: at 10M samples that made a fresh
    process's analysis 10-40% slower and erratic (bench/analyze_speed.py); 4 KB pages are steady. And
    glibc returns such blocks to the kernel on free, so the next one faults in fresh zeroed pages
    (~160k faults at 10M samples); with the mmap threshold at its maximum and the heap left untrimmed
    while inside, freed blocks are reused: ~15% less time in the analysis, ~40 MB more peak memory.
    """
    toggle = getattr(getattr(getattr(np, "_core", None), "multiarray", None), "_set_madvise_hugepage", None)
    previous = toggle(False) if toggle is not None else None
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    try:
        yield
    finally:
        if libc is not None:
            libc.mallopt(_M_TRIM_THRESHOLD, 128 << 10)  # glibc's default: freed memory goes back again
            libc.malloc_trim(0)
        if toggle is not None:
            toggle(previous)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # <malloc.h>


@lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (it has mallopt and malloc_trim), else None."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018  (AttributeError outside glibc, e.g. musl or macOS)
        libc.mallopt.argtypes, libc.malloc_trim.argtypes = [ctypes.c_int, ctypes.c_int], [ctypes.c_size_t]
        return libc
    except (AttributeError, OSError):
        return None


def _summarize(table: pa.Table, window: Window | None, requirements: Sequence[str] | None,
               percentiles: Iterable[float], series: bool) -> dict:
    qs = tuple(dict.fromkeys(float(q) for q in percentiles))
    if any(not 0.0 <= q <= 100.0 or float(_key(q)[1:]) != q for q in qs):
        raise ValueError(f"percentiles must be within 0..100 with at most 6 significant digits, got {qs}")
    table = _conformed(table)
    batches = table.to_batches(_CHUNK_ROWS)
    labels = tuple(_Labels(table, name) for name in ("request_type", "name", "requirement"))
    del table
    with ThreadPoolExecutor(2) as pool:  # numpy releases the GIL for most of the work: both cores help
        return _summarize_batches(pool, batches, labels, window, requirements, qs, series)


def _summarize_batches(pool: ThreadPoolExecutor, batches: list[pa.RecordBatch], labels: tuple[_Labels, ...],
                       window: Window | None, requirements: Sequence[str] | None, qs: tuple[float, ...],
                       series: bool) -> dict:
    if window is None:
        ends = [e for e in pool.map(_time_range, batches) if e is not None]
        window = Window(min(e[0] for e in ends), max(e[1] for e in ends)) if ends else Window(0.0, 0.0)
    n_sec = max(1, math.ceil(window.seconds))
    (rt_labels, nm_labels, rq_labels), dims = (lab.labels for lab in labels), [len(lab.labels) for lab in labels]
    chunks = list(pool.map(lambda batch: _chunk(batch, window, labels, n_sec), batches))
    del batches
    ids_of = [_split_ids(label) for label in rq_labels]
    # Finest groups: (request_type, name, requirement label); every reported group is a union of them.
    bases = [c.combo for c in chunks]
    size = math.prod(dims)
    seen = sum(pool.map(lambda b: np.bincount(b, minlength=size), bases)) > 0 if bases and size <= 1 << 16 else None
    combos, ids, n_base = _compact(bases, size, seen)
    found = sorted({i for q in set((combos % dims[2]).tolist()) for i in ids_of[q]})
    section = sorted(set(requirements)) if requirements is not None else found
    slot_of = {rid: j for j, rid in enumerate(section)}
    lat = _Latency([c.values for c in chunks], pool.map)

    outs: dict[tuple, int] = {}
    pairs: list[tuple[int, int]] = []
    for b, combo in zip(ids.tolist(), combos.tolist()):
        r, m, q = combo // (dims[1] * dims[2]), combo // dims[2] % dims[1], combo % dims[2]
        keys = [("request", rt_labels[r] or "", nm_labels[m] or "", rid) for rid in ids_of[q] or (None,)]
        keys += [("requirement", rid) for rid in ids_of[q] if rid in slot_of] + [("overall",)]
        pairs += [(outs.setdefault(key, len(outs)), b) for key in keys]
    po, pb = (np.array([p[i] for p in pairs], np.int64) for i in (0, 1))
    series_of = pool.submit(_series, lat, chunks, ids_of, slot_of, window, n_sec) if series else None
    stats = _group_stats(lat, bases, n_base, [c.failed for c in chunks], po, pb, len(outs), qs, window.seconds)
    del bases
    summary = {
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
    if series:
        summary["series_percentile_method"] = "linear"
        summary["series"], by_req = series_of.result()
        summary["series_by_requirement"] = dict(zip(section, by_req))
    return summary


def _time_range(batch: pa.RecordBatch) -> tuple[float, float] | None:
    """First and last timestamp of a batch, NaN and nulls left out; None if it has none."""
    ts = numpy_of(batch.column("timestamp"), np.nan)
    first = float(np.fmin.reduce(ts)) if ts.size else math.nan
    return None if math.isnan(first) else (first, float(np.fmax.reduce(ts)))


@dataclass(frozen=True)
class _Chunk:
    """One slice of the samples in the window (zero-copy views where the window keeps every row)."""

    combo: np.ndarray  # (request_type, name, requirement label) codes as one int64, compacted later
    slot: np.ndarray  # (requirement label, second of the window) as one integer
    failed: np.ndarray  # positions of failed requests
    users: np.ndarray  # int32, -1 where unknown
    values: np.ndarray  # response_time_ms, NaN where unknown


def _chunk(batch: pa.RecordBatch, window: Window, labels: tuple[_Labels, ...], n_sec: int) -> _Chunk:
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
    return _Chunk(combo, slot, np.flatnonzero(~pick(ok)),
                  pick(numpy_of(users, -1)), pick(numpy_of(batch.column("response_time_ms"), np.nan)))


def _index_type(size: int) -> type:
    """The narrowest of int32/int64 that holds codes below ``size``."""
    return np.int32 if size < 1 << 31 else np.int64


class _Latency:
    """Response times per chunk as order-preserving uint64 keys, and their buckets at the finest level.

    Rows without a response time (NaN) are left out; ``take`` drops the same rows from other arrays.
    """

    def __init__(self, parts: list[np.ndarray], mapper: Callable = map) -> None:
        """``mapper``: ``map``, or a thread pool's, to handle the parts side by side."""
        self.rows = list(mapper(lambda v: None if not np.isnan(v.min(initial=0.0)) else np.flatnonzero(~np.isnan(v)),
                                parts))
        self.values = self.take(parts)
        self.signed = any(mapper(lambda v: bool(np.signbit(v).any()), self.values))
        self.keys = list(mapper(self._key, self.values))
        ends = [(int(k.min()), int(k.max())) for k in self.keys if k.size]
        self.lo, self.hi = min((e[0] for e in ends), default=0), max((e[1] for e in ends), default=0)
        self.fine_shift = max(0, (self.hi - self.lo).bit_length() - _FINE_BITS)

        def fine(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            bucket = ((key - np.uint64(self.lo)) >> np.uint64(self.fine_shift)).astype(np.uint16)
            return bucket, np.bincount(bucket, minlength=1 << _FINE_BITS)

        done = list(mapper(fine, self.keys))
        self.buckets = [d[0] for d in done]
        self.fine_hist = sum((d[1] for d in done), np.zeros(1 << _FINE_BITS, np.int64))

    def _key(self, values: np.ndarray) -> np.ndarray:
        key = values.view(np.uint64)
        if self.signed:  # flip negatives (all bits) and positives (sign bit): unsigned order = float order
            key = key ^ (np.uint64(0) - (key >> np.uint64(63)) | np.uint64(1 << 63))
        return key

    def take(self, parts: list[np.ndarray]) -> list[np.ndarray]:
        """Per-row arrays without the rows lacking a response time."""
        return [p if r is None else p[r] for p, r in zip(parts, self.rows)]

    def to_values(self, key: np.ndarray) -> np.ndarray:
        """Floats back from keys."""
        if self.signed:
            key = key ^ (np.uint64(0) - (np.uint64(1) - (key >> np.uint64(63))) | np.uint64(1 << 63))
        return key.view(np.float64)


def _group_stats(lat: _Latency, bases: list[np.ndarray], n_base: int, failed: list[np.ndarray], po: np.ndarray,
                 pb: np.ndarray, n_out: int, qs: tuple[float, ...], seconds: float) -> list[dict]:
    """STATS of each output group, the union of the base groups paired with it (po[i] owns pb[i])."""
    g = _group_arrays(lat, bases, n_base, failed, po, pb, n_out, qs, detail=True)
    n, fails, nlat, values, pct = g["n"], g["fails"], g["nlat"], g["values"], g["pct"]
    k = len(qs)
    out = []
    for o in range(n_out):
        stats = {"requests": int(n[o]), "failures": int(fails[o]),
                 "error_rate": float(fails[o] / n[o]) if n[o] else 0.0,
                 "throughput": float(n[o] / seconds) if seconds > 0 else 0.0,
                 "response_time_ms": dict.fromkeys(_time_keys(qs)) if nlat[o] == 0 else {
                     "min": float(values[o, 0]), "mean": float(g["mean"][o]),
                     **{_key(q): float(pct[o, j]) for j, q in enumerate(qs)}, "max": float(values[o, 1])}}
        lo, hi = values[o, 2 + 2 * k:2 + 3 * k], values[o, 2 + 3 * k:]
        stats["response_time_ci95_ms"] = {_key(q): None if np.isnan(lo[j]) or np.isnan(hi[j])
                                          else [float(lo[j]), float(hi[j])] for j, q in enumerate(qs)}
        out.append(stats)
    return out


def _group_arrays(lat: _Latency, bases: list[np.ndarray], n_base: int, failed: list[np.ndarray], po: np.ndarray,
                  pb: np.ndarray, n_out: int, qs: tuple[float, ...], detail: bool) -> dict[str, np.ndarray]:
    """Per output group: requests ``n``, ``fails``, ``nlat`` (with a response time), ``values`` (with
    ``detail`` min and max, the percentiles' neighbour ranks, with ``detail`` the CI bounds), ``pct`` and,
    with ``detail``, ``mean``.
    """
    def per_out(parts: list[np.ndarray], weights: list[np.ndarray] | None = None) -> np.ndarray:
        per_base = sum((np.bincount(p, None if weights is None else weights[i], minlength=n_base)
                        for i, p in enumerate(parts)), np.zeros(n_base))
        return np.bincount(po, per_base[pb], minlength=n_out)

    lbases = lat.take(bases)
    n, fails = (per_out(p).astype(np.int64) for p in (bases, [b[f] for b, f in zip(bases, failed)]))
    nlat = n if all(r is None for r in lat.rows) else per_out(lbases).astype(np.int64)
    prev, nxt, gamma = _linear_plan(nlat, qs)
    want = [prev, nxt]
    if detail:  # min and max, and the CI bounds: not wanted for the series
        want[:0] = [np.zeros((n_out, 1), np.int64), (nlat - 1)[:, None]]
        bounds = np.array([[_ci_ranks(int(m), q) for q in qs] for m in nlat], np.int64).reshape(n_out, len(qs), 2)
        want += [bounds[..., 0], bounds[..., 1]]
    ranks = np.hstack(want)
    has = (nlat > 0)[:, None] & (ranks >= 0)
    values = np.full(ranks.shape, np.nan)
    group = np.broadcast_to(np.arange(n_out)[:, None], ranks.shape)
    values[has] = lat.to_values(_select(lat, lbases, n_base, po, pb, n_out, group[has], ranks[has]))
    k, at = len(qs), 2 if detail else 0
    out = {"n": n, "fails": fails, "nlat": nlat, "values": values,
           "pct": _lerp(values[:, at:at + k], values[:, at + k:at + 2 * k], gamma)}
    if detail:
        out["mean"] = per_out(lbases, lat.values) / np.maximum(nlat, 1)
    return out


def _select(lat: _Latency, bases: list[np.ndarray], n_base: int, po: np.ndarray, pb: np.ndarray, n_out: int,
            group: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Keys at 0-based ``rank`` within output ``group`` (a union of base groups), without a full sort.

    A histogram per (group, bucket) cell locates each rank's cell; only the samples in wanted cells
    are sorted, packed with their cell into one uint64 so that one plain sort orders both. Buckets
    hold about equal shares of all samples (runs of fine buckets, merged by their global counts), so
    that a wanted cell holds few samples even when there are many small groups (the per-second series).
    """
    if rank.size == 0:
        return np.zeros(0, np.uint64)
    rows = int(lat.fine_hist.sum())
    budget = _BIN_BUDGET * min(_BUDGET_SCALE_MAX, max(1, rows >> _ROWS_PER_BUDGET_BITS))
    target = max(16, min(1 << _FINE_BITS, budget // max(n_base, n_out, 1)))
    before = np.cumsum(lat.fine_hist) - lat.fine_hist
    lut = (before * target // max(rows, 1)).astype(np.intp)  # fine bucket -> bucket, non-decreasing
    nb = int(lut[-1]) + 1
    first_fine = np.searchsorted(lut, np.arange(nb + 1))  # bucket b = fine buckets first_fine[b] .. [b+1]-1
    fine_shift = np.uint64(lat.fine_shift)

    cell_dtype = np.int32 if n_base * nb < 1 << 31 else np.int64
    lut = lut.astype(cell_dtype)
    flats = []  # (base group, bucket) cell of each sample: 4 bytes a sample while the selection runs
    hist_base = np.zeros(n_base * nb, np.int64)
    pending, pending_rows = [], 0
    for i in range(len(bases)):
        flat = np.multiply(bases[i], nb, dtype=cell_dtype)
        flat += np.take(lut, lat.buckets[i])  # take: half the time of lut[...] with uint16 indices
        flats.append(flat)
        del flat
        pending.append(flats[-1])
        pending_rows += flats[-1].size
        # One histogram per at least as many samples as cells: a histogram per chunk would cost
        # chunks x cells, which grows with the square of the samples (the budget grows with them).
        if pending_rows >= n_base * nb or i == len(bases) - 1:
            hist_base += np.bincount(np.concatenate(pending) if len(pending) > 1 else pending[0],
                                     minlength=n_base * nb)
            pending, pending_rows = [], 0
    hist_base = hist_base.reshape(n_base, nb)
    hist = _sum_rows(hist_base, po, pb, n_out).ravel()  # row o: the sum of its base groups' rows
    del hist_base
    cum = np.cumsum(hist)
    pos = np.concatenate(([0], cum[nb - 1::nb][:-1]))[group] + rank
    cell = np.searchsorted(cum, pos, side="right")  # the (group, bucket) cell holding each rank
    within = pos - (cum[cell] - hist[cell])
    del cum, hist
    wanted = np.zeros(n_out * nb, bool)
    wanted[cell] = True
    # A sample is a candidate when any group it belongs to wants its bucket.
    wanted_base = _sum_rows(wanted.reshape(n_out, nb), pb, po, n_base).ravel() > 0
    base_key = np.uint64(lat.lo) + (first_fine[:-1].astype(np.uint64) << fine_shift)  # lowest key of each bucket
    cflat, clow = [np.zeros(0, np.int64)], [np.zeros(0, np.uint64)]
    for i in range(len(bases)):
        flat, flats[i] = flats[i], None
        picked = np.flatnonzero(wanted_base[flat])
        cflat.append(flat[picked])
        clow.append(lat.keys[i][picked] - base_key[flat[picked] % nb])
    cflat, clow = np.concatenate(cflat), np.concatenate(clow)
    # Copy each candidate to its output groups (pairs sorted by base); keep those whose cell is wanted.
    by_base = np.argsort(pb, kind="stable")
    cb = cflat // nb
    reps = np.bincount(pb, minlength=n_base)[cb]
    src = np.repeat(np.arange(cb.size), reps)
    offs = np.arange(src.size) - np.repeat(np.cumsum(reps) - reps, reps)
    first = np.searchsorted(pb[by_base], np.arange(n_base))
    ocell = po[by_base][first[cb][src] + offs] * nb + cflat[src] % nb
    keep = wanted[ocell]
    ocell, clow = ocell[keep], clow[src[keep]]
    cells_wanted = np.flatnonzero(wanted)
    tid_of = np.cumsum(wanted) - 1  # wanted cell -> its index among the wanted cells
    tid = tid_of[ocell]
    span = np.diff(first_fine)[cells_wanted % nb].max(initial=1)  # widest wanted bucket, in fine buckets
    bits = lat.fine_shift + int(span).bit_length()  # every clow < 2**bits
    return base_key[cell % nb] + _pick(tid, clow, bits, tid_of[cell], within, cells_wanted.size, budget)


def _sum_rows(rows: np.ndarray, into: np.ndarray, of: np.ndarray, n: int) -> np.ndarray:
    """``out[j] = sum of rows[of[i]] for every pair i with into[i] == j``, for j < n (a sparse 0/1 product).

    Pairs come in runs (``of`` and ``into`` both counting up, as the per-second series' do): one slice
    addition per run, without a pairs-by-columns copy. Else one cumulative sum over the gathered rows.
    """
    out = np.zeros((n, rows.shape[1]), np.int64)
    if into.size == 0:
        return out
    order = np.lexsort((into, of - into))
    into, of = into[order], of[order]
    breaks = np.flatnonzero((np.diff(into) != 1) | (np.diff(of) != 1)) + 1
    if breaks.size < _MAX_RUNS:
        for a, b in zip([0, *breaks.tolist()], [*breaks.tolist(), into.size]):
            out[into[a]:into[a] + b - a] += rows[of[a]:of[a] + b - a]
        return out
    order = np.argsort(into, kind="stable")
    into, of = into[order], of[order]
    ends = np.flatnonzero(np.concatenate((into[1:] != into[:-1], [True])))  # last pair of each target
    totals = np.cumsum(rows[of], axis=0, dtype=np.int64)[ends]
    out[into[ends]] = np.diff(totals, axis=0, prepend=np.zeros((1, rows.shape[1]), np.int64))
    return out


def _pick(tid: np.ndarray, low: np.ndarray, bits: int, want: np.ndarray, within: np.ndarray, n_tid: int,
          budget: int) -> np.ndarray:
    """For each query j, the value at 0-based rank ``within[j]`` among the ``low`` of candidates ``tid == want[j]``.

    One sort of (tid, low) packed into a uint64 when both fit; else a radix pass first: a histogram of
    each tid's candidates by the top bits of ``low`` keeps only those in the wanted sub-bucket, which
    leaves fewer bits to sort (exact: the order of the kept candidates is unchanged).
    """
    offset = np.zeros(want.size, np.uint64)
    while True:
        tid_bits = max(1, int(n_tid - 1).bit_length())
        if tid_bits + bits <= 64:
            packed = np.sort((tid.astype(np.uint64) << np.uint64(bits)) | low)
            seg = np.searchsorted(packed >> np.uint64(bits), want.astype(np.uint64))
            return offset + (packed[seg + within] & np.uint64((1 << bits) - 1))
        k = max(1, min(bits, tid_bits + bits - 64, max(budget // max(n_tid, 1), 2).bit_length() - 1))
        rest = bits - k
        cell = tid * (1 << k) + (low >> np.uint64(rest)).astype(np.int64)
        hist = np.bincount(cell, minlength=n_tid << k)
        cum = np.cumsum(hist)
        pos = np.concatenate(([0], cum[(1 << k) - 1::1 << k][:-1]))[want] + within
        sub = np.searchsorted(cum, pos, side="right")
        within = pos - (cum[sub] - hist[sub])
        offset += (sub & ((1 << k) - 1)).astype(np.uint64) << np.uint64(rest)
        wanted = np.zeros(n_tid << k, bool)
        wanted[sub] = True
        keep = wanted[cell]
        kept_of = np.cumsum(wanted) - 1
        tid = kept_of[cell[keep]]
        low = low[keep] & np.uint64((1 << rest) - 1)
        want, n_tid, bits = kept_of[sub], int(kept_of[-1]) + 1, rest


def _linear_plan(n: np.ndarray, qs: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """numpy's linear-method neighbour ranks and weights, per group size and percentile."""
    virtual = (n[:, None] - 1) * np.true_divide(np.array(qs, np.float64), 100)[None, :]
    prev = np.floor(virtual)
    above = virtual >= (n[:, None] - 1)
    gamma = virtual - np.where(above, -1.0, prev)  # numpy subtracts index -1 (= last) above the top
    prev_rank = np.where(above, n[:, None] - 1, prev.astype(np.int64))
    return prev_rank, np.where(above, n[:, None] - 1, prev_rank + 1), gamma


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """numpy's ``_lerp``: ``a + (b-a)*t``, or ``b - (b-a)*(1-t)`` where t >= 0.5."""
    diff = b - a
    return np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)


@lru_cache(maxsize=4096)
def _ci_ranks(n: int, q: float) -> tuple[int, int]:
    """0-based ranks of a distribution-free 95% interval for percentile q of n values; (-1, -1) if none.

    With B ~ binomial(n, q), P(x[l] <= true percentile < x[u]) >= 95% for l = ppf(2.5%) - 1, u = ppf(97.5%).
    """
    p = q / 100
    if n < 1 or not 0 < p < 1:
        return -1, -1
    lo, hi = _binom_ppf(0.025, n, p) - 1, _binom_ppf(0.975, n, p)
    return (lo, hi) if lo >= 0 and hi <= n - 1 else (-1, -1)


def _binom_ppf(level: float, n: int, p: float) -> int:
    """Smallest k with P(binomial(n, p) <= k) >= level (pmf summed over +-12 sd around the mean)."""
    sd = math.sqrt(n * p * (1 - p))
    lo, hi = max(0, int(n * p - 12 * sd) - 12), min(n, int(n * p + 12 * sd) + 12)
    k = np.arange(lo, hi)
    log_first = (math.lgamma(n + 1) - math.lgamma(lo + 1) - math.lgamma(n - lo + 1)
                 + lo * math.log(p) + (n - lo) * math.log1p(-p))
    steps = np.log(n - k) - np.log(k + 1) + math.log(p) - math.log1p(-p)  # log pmf(k+1)/pmf(k)
    cdf = np.cumsum(np.exp(log_first + np.concatenate(([0.0], np.cumsum(steps)))))
    return int(lo + min(np.searchsorted(cdf, level), hi - lo))


def _series(lat: _Latency, chunks: list[_Chunk], ids_of: list[tuple[str, ...]], slot_of: dict[str, int],
            window: Window, n_sec: int) -> tuple[dict, list[dict]]:
    """Per-second series over the window: overall, and per requirement of the section."""
    n_base, bases, cols = len(ids_of) * n_sec, [c.slot for c in chunks], np.arange(n_sec)
    pairs = [(slot * n_sec + cols, label * n_sec + cols) for label, ids in enumerate(ids_of)
             for slot in [0] + [1 + slot_of[i] for i in ids if i in slot_of]]
    po, pb = (np.concatenate([p[i] for p in pairs]) for i in (0, 1))
    n_out = (1 + len(slot_of)) * n_sec
    g = _group_arrays(lat, bases, n_base, [c.failed for c in chunks], po, pb, n_out, SERIES_PERCENTILES,
                      detail=False)
    has_rt = g["nlat"] > 0
    peak, peak_out = np.full(n_base, -1, np.int32), np.full(n_out, -1, np.int32)
    for base, c in zip(bases, chunks):
        _peak_into(peak, base, c.users)
    np.maximum.at(peak_out, po, peak[pb])
    t = [window.start + i for i in range(n_sec)]
    width = [min(1.0, window.end - s) for s in t]  # the last second may be cut short by the window

    def one(slot: int) -> dict:
        part = slice(slot * n_sec, (slot + 1) * n_sec)
        requests, has = g["n"][part].tolist(), has_rt[part].tolist()
        return {"t": t, "requests": requests, "failures": g["fails"][part].tolist(),
                "throughput": [r / w if w > 0 else 0.0 for r, w in zip(requests, width)],
                **{_key(q): [v if h else None for v, h in zip(g["pct"][part, j].tolist(), has)]
                   for j, q in enumerate(SERIES_PERCENTILES)},
                "users": [u if u >= 0 else None for u in peak_out[part].tolist()]}

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


def _compact(parts: list[np.ndarray], size: int, seen: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """The distinct values (< size) of integer chunks, in order, their group ids, and the number of ids.

    Few possible values: each value is its own id (no rewrite). Else the chunks are rewritten in place
    as dense ids 0..k-1. ``seen``: which values occur, if known.
    """
    if size <= 1 << 22:
        if seen is None:
            seen = np.zeros(size, bool)
            for part in parts:
                seen[part] = True
        distinct = np.flatnonzero(seen)
        if size <= _KEEP_CODES_BELOW:  # empty groups cost only histogram cells: cheaper than a rewrite
            return distinct, distinct, size
        remap = np.zeros(size, parts[0].dtype if parts else np.int64)
        remap[distinct] = np.arange(distinct.size)
        for part in parts:
            part[:] = remap[part]
        return distinct, np.arange(distinct.size), distinct.size
    distinct = np.unique(np.concatenate([np.unique(part) for part in parts] + [np.zeros(0, np.int64)]))
    for part in parts:
        part[:] = np.searchsorted(distinct, part)
    return distinct, np.arange(distinct.size), distinct.size


def _conformed(table: pa.Table) -> pa.Table:
    """The columns analysis reads, in fixed types; strings dictionary-encoded (per chunk)."""
    def typed(name: str, to: pa.DataType) -> pa.ChunkedArray:
        column = table.column(name)
        return column if column.type == to else column.cast(to)  # cast imports pyarrow.compute: only if needed

    columns = {"timestamp": typed("timestamp", pa.float64()), "response_time_ms": typed("response_time_ms", pa.float64()),
               "success": typed("success", pa.bool_())}
    if "users" in table.column_names:
        columns["users"] = typed("users", pa.int32())
    for name in ("request_type", "name", "requirement"):
        if name in table.column_names:
            column = table.column(name)
            if not pa.types.is_dictionary(column.type):
                import pyarrow.compute as pc

                column = pc.dictionary_encode(column)
            columns[name] = column
    return pa.table(columns)


_SMALL_DICTIONARY = 1 << 16  # strings matched in Python below this (no pyarrow.compute import: 40 ms)


class _Labels:
    """The distinct strings of a dictionary column over all chunks; a trailing None labels nulls.

    Each chunk may have its own dictionary (one per Parquet row group): ``codes`` translates.
    An absent column (Locust's CSV has no requirement) has the single label "".
    """

    def __init__(self, table: pa.Table, name: str) -> None:
        self.name, self.present, self.labels = name, name in table.column_names, [""]
        self.index: dict[str, int] | None = None  # label -> code, when the dictionaries are small
        self.values: pa.Array | None = None  # else the labels as an array, for pyarrow.compute
        if self.present:
            dictionaries = [c.dictionary for c in table.column(name).chunks] or [pa.array([], pa.string())]
            if sum(len(d) for d in dictionaries) <= _SMALL_DICTIONARY:
                distinct = dict.fromkeys(v for d in dictionaries for v in d.to_pylist() if v is not None)
                self.index = {v: i for i, v in enumerate(distinct)}
                self.labels = [*distinct, None]
            else:
                import pyarrow.compute as pc

                self.values = pc.unique(pa.chunked_array(dictionaries, dictionaries[0].type)).drop_null()
                self.labels = self.values.to_pylist() + [None]

    def codes(self, batch: pa.RecordBatch) -> np.ndarray:
        """Label codes of a batch's rows (its dictionary indices themselves when they agree)."""
        if not self.present:
            return np.zeros(batch.num_rows, np.int32)
        column = batch.column(self.name)
        null = len(self.labels) - 1
        if self.index is not None:  # a batch's dictionary is one of the table's: small too
            table = np.array([self.index.get(v, null) for v in column.dictionary.to_pylist()], np.int64)
        else:
            import pyarrow.compute as pc

            table = numpy_of(pc.index_in(column.dictionary, value_set=self.values), null)
        indices = numpy_of(column.indices, len(column.dictionary))
        if np.array_equal(table, np.arange(len(table))) and not column.null_count:
            return indices
        # A null index points just past the dictionary. take: a third of the time of [...] with int32 indices.
        return np.take(np.append(table, null).astype(indices.dtype), indices)


def _split_ids(label: str | None) -> tuple[str, ...]:
    """Requirement IDs of a comma-joined label, each once."""
    return tuple(dict.fromkeys(p.strip() for p in (label or "").split(",") if p.strip()))


def _key(q: float) -> str:
    """Summary key of a percentile: 99.9 -> 'p99.9', 50.0 -> 'p50'."""
    return f"p{q:g}"


def _time_keys(qs: tuple[float, ...]) -> list[str]:
    """Response-time keys in contract order."""
    return ["min", "mean", *(_key(q) for q in qs), "max"]


def _zero_stats(qs: tuple[float, ...]) -> dict:
    """STATS of a scope without requests."""
    return {"requests": 0, "failures": 0, "error_rate": 0.0, "throughput": 0.0,
            "response_time_ms": dict.fromkeys(_time_keys(qs)),
            "response_time_ci95_ms": dict.fromkeys(_key(q) for q in qs)}


def format_summary_table(summary: dict) -> str:
    """The aligned text table ``loadgate analyze`` prints: per request, per requirement, overall."""
    def row(kind: str, name: str, req: str, s: dict) -> list[str]:
        t = s["response_time_ms"]
        return [kind, name, req, str(s["requests"]), str(s["failures"]), f"{100 * s['error_rate']:.2f}%",
                f"{s['throughput']:.2f}", *("-" if t.get(k) is None else f"{t[k]:.1f}" for k in ("p50", "p95", "p99", "max"))]

    rows = [["Type", "Name", "Requirement", "Requests", "Fails", "Err%", "Req/s", "p50", "p95", "p99", "Max"]]
    rows += [row(e["request_type"], e["name"], e["requirement"] or "-", e) for e in summary["requests"]]
    rows += [row("", "(requirement)", rid, s) for rid, s in summary["requirements"].items()]
    rows.append(row("", "Aggregated", "", summary["overall"]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
             for r in rows]
    rule = "-" * len(lines[0])
    lines[1:1] = [rule]
    lines.insert(len(lines) - 1 - len(summary["requirements"]), rule)
    w = summary["window"]
    when = " → ".join(datetime.fromtimestamp(x, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
                      for x in (w["start"], w["end"]))
    return "\n".join([f"Window: {when} UTC ({w['seconds']:.1f} s), response times in ms", *lines])
