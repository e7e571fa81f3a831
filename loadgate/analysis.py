"""Samples -> ``summary.json`` (schema ``loadgate.summary/1``): exact percentiles, error rates, throughput.

Percentiles are numpy's default ``linear`` method, bit for bit, without sorting every group. Response
times become order-preserving uint64 keys; a histogram per (group, key bucket) finds the bucket that
holds each wanted rank; only the samples in those buckets are sorted (``_select``). Every reported
group (a request, a requirement, all requests, one second) is a union of finest groups, whose
histograms it sums: a sample named by several requirements is never copied. Rows are handled in
chunks of zero-copy Arrow views, so memory stays a few bytes per sample beyond the table itself.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loadgate.units import parse_duration

SUMMARY_SCHEMA_ID = "loadgate.summary/1"
DEFAULT_PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)
SERIES_PERCENTILES = (50.0, 95.0, 99.0)
# What summarize reads: pass to read_samples(path, COLUMNS, dictionary=True) for the fast path.
COLUMNS = ("timestamp", "request_type", "name", "response_time_ms", "success", "requirement", "users")
_BIN_BUDGET = 1 << 20  # histogram cells per selection (groups x buckets)
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
    qs = tuple(dict.fromkeys(float(q) for q in percentiles))
    if any(not 0.0 <= q <= 100.0 or float(_key(q)[1:]) != q for q in qs):
        raise ValueError(f"percentiles must be within 0..100 with at most 6 significant digits, got {qs}")
    table = _conformed(table)
    if window is None:
        first, last = pc.min_max(table.column("timestamp")).values()
        window = Window(float(first.as_py()), float(last.as_py())) if first.is_valid else Window(0.0, 0.0)
    n_sec = max(1, math.ceil(window.seconds))
    labels = tuple(_Labels(table, name) for name in ("request_type", "name", "requirement"))
    (rt_labels, nm_labels, rq_labels), dims = (lab.labels for lab in labels), [len(lab.labels) for lab in labels]
    chunks = [_chunk(batch, window, labels, n_sec) for batch in table.to_batches(_CHUNK_ROWS)]
    del table
    ids_of = [_split_ids(label) for label in rq_labels]
    present = sum((c.present for c in chunks), np.zeros(dims[2], np.int64)) > 0
    found = sorted({i for ids, used in zip(ids_of, present) if used for i in ids})
    section = sorted(set(requirements)) if requirements is not None else found
    slot_of = {rid: j for j, rid in enumerate(section)}
    lat = _Latency([c.values for c in chunks])

    # Finest groups: (request_type, name, requirement label); every reported group is a union of them.
    bases = [c.combo for c in chunks]
    combos = _compact(bases, math.prod(dims))
    outs: dict[tuple, int] = {}
    pairs: list[tuple[int, int]] = []
    for b, combo in enumerate(combos.tolist()):
        r, m, q = combo // (dims[1] * dims[2]), combo // dims[2] % dims[1], combo % dims[2]
        keys = [("request", rt_labels[r] or "", nm_labels[m] or "", rid) for rid in ids_of[q] or (None,)]
        keys += [("requirement", rid) for rid in ids_of[q] if rid in slot_of] + [("overall",)]
        pairs += [(outs.setdefault(key, len(outs)), b) for key in keys]
    po, pb = (np.array([p[i] for p in pairs], np.int64) for i in (0, 1))
    stats = _group_stats(lat, bases, len(combos), [c.failed for c in chunks], po, pb, len(outs), qs,
                         window.seconds, detail=True)
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
        summary["series"], by_req = _series(lat, chunks, ids_of, slot_of, window, n_sec)
        summary["series_by_requirement"] = dict(zip(section, by_req))
    return summary


@dataclass(frozen=True)
class _Chunk:
    """One slice of the samples in the window (zero-copy views where the window keeps every row)."""

    combo: np.ndarray  # (request_type, name, requirement label) codes as one int64, compacted later
    present: np.ndarray  # rows per requirement label
    slot: np.ndarray  # (requirement label, second of the window) as one integer
    failed: np.ndarray  # positions of failed requests
    users: np.ndarray  # int32, -1 where unknown
    values: np.ndarray  # response_time_ms, NaN where unknown


def _chunk(batch: pa.RecordBatch, window: Window, labels: tuple[_Labels, ...], n_sec: int) -> _Chunk:
    """One record batch, restricted to the window, as group codes and values."""
    ts = batch.column("timestamp").to_numpy(zero_copy_only=False)
    inside = ts.size == 0 or (window.start <= ts.min() and ts.max() <= window.end)  # False if any NaN
    keep = None if inside else np.flatnonzero((ts >= window.start) & (ts <= window.end))
    pick = (lambda a: a) if keep is None else (lambda a: a[keep])
    rt, nm, rq = (pick(lab.codes(batch)) for lab in labels)
    combo = np.multiply(rt, len(labels[1].labels) * len(labels[2].labels), dtype=np.int64)
    combo += np.multiply(nm, len(labels[2].labels), dtype=np.int64)
    combo += rq
    slot = (pick(ts) - window.start).astype(np.int64)  # truncation is floor: all >= 0 here
    np.minimum(slot, n_sec - 1, out=slot)
    slot += np.multiply(rq, n_sec, dtype=np.int64)
    ok = _filled(batch.column("success"), False).to_numpy(zero_copy_only=False)
    users = batch.column("users") if "users" in batch.schema.names else pa.nulls(batch.num_rows, pa.int32())
    return _Chunk(combo, np.bincount(rq, minlength=len(labels[2].labels)), slot, np.flatnonzero(~pick(ok)),
                  pick(_filled(users, -1).to_numpy(zero_copy_only=False)),
                  pick(batch.column("response_time_ms").to_numpy(zero_copy_only=False)))


class _Latency:
    """Response times per chunk as order-preserving uint64 keys, and their buckets at the finest level.

    Rows without a response time (NaN) are left out; ``take`` drops the same rows from other arrays.
    """

    def __init__(self, parts: list[np.ndarray]) -> None:
        self.rows = [None if not np.isnan(v.min(initial=0.0)) else np.flatnonzero(~np.isnan(v)) for v in parts]
        self.values = self.take(parts)
        self.signed = any(bool(np.signbit(v).any()) for v in self.values)
        self.keys = [self._key(v) for v in self.values]
        self.lo = min((int(k.min()) for k in self.keys if k.size), default=0)
        self.hi = max((int(k.max()) for k in self.keys if k.size), default=0)
        self.fine_shift = max(0, (self.hi - self.lo).bit_length() - _FINE_BITS)
        self.buckets = [((k - np.uint64(self.lo)) >> np.uint64(self.fine_shift)).astype(np.uint16)
                        for k in self.keys]

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
                 pb: np.ndarray, n_out: int, qs: tuple[float, ...], seconds: float, detail: bool) -> list[dict]:
    """STATS of each output group, the union of the base groups paired with it (po[i] owns pb[i]).

    ``detail`` adds the mean and the confidence intervals (the series do without).
    """
    def per_out(parts: list[np.ndarray], weights: list[np.ndarray] | None = None) -> np.ndarray:
        per_base = sum((np.bincount(p, None if weights is None else weights[i], minlength=n_base)
                        for i, p in enumerate(parts)), np.zeros(n_base))
        return np.bincount(po, per_base[pb], minlength=n_out)

    lbases = lat.take(bases)
    n, fails = (per_out(p).astype(np.int64) for p in (bases, [b[f] for b, f in zip(bases, failed)]))
    nlat = n if all(r is None for r in lat.rows) else per_out(lbases).astype(np.int64)
    prev, nxt, gamma = _linear_plan(nlat, qs)
    want = [np.zeros((n_out, 1), np.int64), (nlat - 1)[:, None], prev, nxt]
    if detail:
        bounds = np.array([[_ci_ranks(int(m), q) for q in qs] for m in nlat], np.int64).reshape(n_out, len(qs), 2)
        want += [bounds[..., 0], bounds[..., 1]]
    ranks = np.hstack(want)
    has = (nlat > 0)[:, None] & (ranks >= 0)
    values = np.full(ranks.shape, np.nan)
    group = np.broadcast_to(np.arange(n_out)[:, None], ranks.shape)
    values[has] = lat.to_values(_select(lat, lbases, n_base, po, pb, n_out, group[has], ranks[has]))
    k = len(qs)
    pct = _lerp(values[:, 2:2 + k], values[:, 2 + k:2 + 2 * k], gamma)
    mean = per_out(lbases, lat.values) / np.maximum(nlat, 1) if detail else np.full(n_out, np.nan)
    out = []
    for o in range(n_out):
        stats = {"requests": int(n[o]), "failures": int(fails[o]),
                 "error_rate": float(fails[o] / n[o]) if n[o] else 0.0,
                 "throughput": float(n[o] / seconds) if seconds > 0 else 0.0,
                 "response_time_ms": dict.fromkeys(_time_keys(qs)) if nlat[o] == 0 else {
                     "min": float(values[o, 0]), "mean": float(mean[o]) if detail else None,
                     **{_key(q): float(pct[o, j]) for j, q in enumerate(qs)}, "max": float(values[o, 1])}}
        if detail:
            lo, hi = values[o, 2 + 2 * k:2 + 3 * k], values[o, 2 + 3 * k:]
            stats["response_time_ci95_ms"] = {_key(q): None if np.isnan(lo[j]) or np.isnan(hi[j])
                                              else [float(lo[j]), float(hi[j])] for j, q in enumerate(qs)}
        out.append(stats)
    return out


def _select(lat: _Latency, bases: list[np.ndarray], n_base: int, po: np.ndarray, pb: np.ndarray, n_out: int,
            group: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Keys at 0-based ``rank`` within output ``group`` (a union of base groups), without a full sort.

    A histogram per (group, bucket) cell locates each rank's cell; only the samples in wanted cells
    are sorted, packed with their cell into one uint64 so that one plain sort orders both.
    """
    if rank.size == 0:
        return np.zeros(0, np.uint64)
    target = max(16, min(1 << _FINE_BITS, _BIN_BUDGET // max(n_base, n_out, 1)))
    shift = max(lat.fine_shift, (lat.hi - lat.lo).bit_length() - target.bit_length() + 1)
    extra, nb = np.uint16(shift - lat.fine_shift), ((lat.hi - lat.lo) >> shift) + 1
    low_mask, cells = np.uint64((1 << shift) - 1), np.arange(nb)

    def cells_of(i: int) -> np.ndarray:  # recomputed, not kept: two cheap passes beat a full-size copy
        flat = np.multiply(bases[i], nb, dtype=np.int64)
        flat += lat.buckets[i] >> extra if extra else lat.buckets[i]
        return flat

    hist_base = sum((np.bincount(cells_of(i), minlength=n_base * nb) for i in range(len(bases))),
                    np.zeros(n_base * nb, np.int64))
    hist = np.bincount((po[:, None] * nb + cells).ravel(), hist_base.reshape(n_base, nb)[pb].ravel(),
                       minlength=n_out * nb).astype(np.int64)
    cum = np.cumsum(hist)
    pos = np.concatenate(([0], cum[nb - 1::nb][:-1]))[group] + rank
    cell = np.searchsorted(cum, pos, side="right")  # the (group, bucket) cell holding each rank
    within = pos - (cum[cell] - hist[cell])
    wanted = np.zeros(n_out * nb, bool)
    wanted[cell] = True
    # A sample is a candidate when any group it belongs to wants its bucket.
    wanted_base = np.bincount((pb[:, None] * nb + cells).ravel(), wanted.reshape(n_out, nb)[po].ravel(),
                              minlength=n_base * nb) > 0
    cflat, clow = [np.zeros(0, np.int64)], [np.zeros(0, np.uint64)]
    for i in range(len(bases)):
        flat = cells_of(i)
        picked = np.flatnonzero(wanted_base[flat])
        cflat.append(flat[picked])
        clow.append(lat.keys[i][picked])
    cflat, clow = np.concatenate(cflat), np.concatenate(clow) - np.uint64(lat.lo) & low_mask
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
    tid = np.searchsorted(cells_wanted, ocell)
    if int(cells_wanted.size).bit_length() + shift <= 64:
        packed = np.sort((tid.astype(np.uint64) << np.uint64(shift)) | clow)
        sorted_tid, sorted_low = packed >> np.uint64(shift), packed & low_mask
    else:
        order = np.lexsort((clow, tid))
        sorted_tid, sorted_low = tid[order].astype(np.uint64), clow[order]
    seg = np.searchsorted(sorted_tid, np.searchsorted(cells_wanted, cell).astype(np.uint64))
    return np.uint64(lat.lo) + ((cell % nb).astype(np.uint64) << np.uint64(shift)) + sorted_low[seg + within]


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
    used = sum((np.bincount(b, minlength=n_base) for b in bases), np.zeros(n_base, np.int64))[pb] > 0
    po, pb = po[used], pb[used]  # only non-empty base groups: keeps the selection histograms small
    n_out = (1 + len(slot_of)) * n_sec
    stats = _group_stats(lat, bases, n_base, [c.failed for c in chunks], po, pb, n_out, SERIES_PERCENTILES,
                         window.seconds, detail=False)
    peak, peak_out = np.full(n_base, -1, np.int32), np.full(n_out, -1, np.int32)
    for base, c in zip(bases, chunks):
        np.maximum.at(peak, base, c.users)
    np.maximum.at(peak_out, po, peak[pb])
    t = [window.start + i for i in range(n_sec)]
    width = [min(1.0, window.end - s) for s in t]  # the last second may be cut short by the window

    def one(slot: int) -> dict:
        part, peaks = stats[slot * n_sec:(slot + 1) * n_sec], peak_out[slot * n_sec:(slot + 1) * n_sec]
        return {"t": t, "requests": [s["requests"] for s in part], "failures": [s["failures"] for s in part],
                "throughput": [s["requests"] / w if w > 0 else 0.0 for s, w in zip(part, width)],
                **{_key(q): [s["response_time_ms"][_key(q)] for s in part] for q in SERIES_PERCENTILES},
                "users": [int(u) if u >= 0 else None for u in peaks]}

    return one(0), [one(1 + j) for j in range(len(slot_of))]


def _compact(parts: list[np.ndarray], size: int) -> np.ndarray:
    """The distinct values (< size) of int64 chunks, in order; each chunk rewritten as dense codes 0..k-1."""
    if size <= 1 << 22:
        seen = np.zeros(size, bool)
        for part in parts:
            seen[part] = True
        distinct = np.flatnonzero(seen)
        remap = np.zeros(size, np.int64)
        remap[distinct] = np.arange(distinct.size)
        for part in parts:
            part[:] = remap[part]
        return distinct
    distinct = np.unique(np.concatenate([np.unique(part) for part in parts] + [np.zeros(0, np.int64)]))
    for part in parts:
        part[:] = np.searchsorted(distinct, part)
    return distinct


def _conformed(table: pa.Table) -> pa.Table:
    """The columns analysis reads, in fixed types; strings dictionary-encoded (per chunk)."""
    columns = {"timestamp": table.column("timestamp").cast(pa.float64()),
               "response_time_ms": table.column("response_time_ms").cast(pa.float64()),
               "success": table.column("success").cast(pa.bool_())}
    if "users" in table.column_names:
        columns["users"] = table.column("users").cast(pa.int32())
    for name in ("request_type", "name", "requirement"):
        if name in table.column_names:
            column = table.column(name)
            columns[name] = column if pa.types.is_dictionary(column.type) else pc.dictionary_encode(column)
    return pa.table(columns)


class _Labels:
    """The distinct strings of a dictionary column over all chunks; a trailing None labels nulls.

    Each chunk may have its own dictionary (one per Parquet row group): ``codes`` translates.
    An absent column (Locust's CSV has no requirement) has the single label "".
    """

    def __init__(self, table: pa.Table, name: str) -> None:
        self.name, self.values, self.labels = name, None, [""]
        if name in table.column_names:
            dictionaries = [c.dictionary for c in table.column(name).chunks] or [pa.array([], pa.string())]
            self.values = pc.unique(pa.chunked_array(dictionaries, dictionaries[0].type)).drop_null()
            self.labels = self.values.to_pylist() + [None]

    def codes(self, batch: pa.RecordBatch) -> np.ndarray:
        """Label codes of a batch's rows (its dictionary indices themselves when they agree)."""
        if self.values is None:
            return np.zeros(batch.num_rows, np.int32)
        column = batch.column(self.name)
        null = len(self.labels) - 1
        table = pc.index_in(column.dictionary, value_set=self.values).fill_null(null).to_numpy()
        indices = _filled(column.indices, len(column.dictionary)).to_numpy(zero_copy_only=False)
        if np.array_equal(table, np.arange(len(table))) and not column.null_count:
            return indices
        return np.append(table, null)[indices]  # a null index points just past the dictionary


def _filled(column: pa.Array, value: object) -> pa.Array:
    """``column`` with nulls replaced by ``value`` (no copy when there are none)."""
    return column.fill_null(value) if column.null_count else column


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
