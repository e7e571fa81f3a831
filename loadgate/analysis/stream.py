"""A samples file -> its summary in bounded memory: the row groups streamed, the percentiles still exact.

The same summary as :func:`loadgate.analysis.summary.summarize` over the whole table, bit for bit in its
percentiles, without holding the table: memory grows with the distinct requests and the seconds of the
window, not with the samples (CONTRACT section 16: a soak run of hundreds of millions of requests is
analysed on the machine that ran it).

- Counts, failures, sums and a histogram of response-time keys per base group (request type, name,
  requirement label) come from one pass over the row groups; the ranks each percentile needs are then
  found exactly by :class:`loadgate.analysis.ranks.RankSearch`, usually in one more pass that gathers
  only the rows in the few histogram cells holding a wanted rank.
- The per-second series is computed a block of seconds at a time during the first pass: row groups are
  read in the order of their first timestamp (their statistics say it without reading them), so once
  the next one starts after a second, that second is complete. A file whose row groups overlap in time
  so much that the waiting rows pass ``_SERIES_ROWS`` (not one ``loadgate run`` writes) is still exact:
  its remaining seconds are computed by reading again, block by block, the row groups of each block.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from loadgate.analysis.ci import ci_ranks
from loadgate.analysis.labels import split_ids
from loadgate.analysis.latency import Latency
from loadgate.analysis.memory import memory_tuned
from loadgate.analysis.ranks import RankSearch, from_keys, to_keys
from loadgate.analysis.select import lerp, linear_plan
from loadgate.analysis.series import empty_series, joined, series as per_second
from loadgate.analysis.summary import DEFAULT_PERCENTILES, checked_percentiles, output_keys, stats_of, summary_doc
from loadgate.analysis.window import Window
from loadgate.data.arrowbuf import numpy_of
from loadgate.data.row_groups import RowGroups

_SERIES_ROWS = 1 << 23  # rows waiting for their seconds to complete, at most (~25 bytes each)
_LOCAL_COMBOS = 1 << 22  # a batch's (type, name, requirement) dictionary combinations counted densely below this


def summarize_file(path: str | os.PathLike[str], window: Window | None = None, *,
                   requirements: Sequence[str] | None = None, percentiles: Iterable[float] = DEFAULT_PERCENTILES,
                   series: bool = True) -> dict:
    """:func:`loadgate.analysis.summary.summarize` of a Parquet samples file, one row group at a time."""
    qs = checked_percentiles(percentiles)
    groups = RowGroups(path)
    # Two threads beside the main one: the next row group is read (decompressed) while this one is
    # counted, and a finished block of seconds gets its series meanwhile; numpy and Arrow release the GIL.
    with memory_tuned(), ThreadPoolExecutor(2) as pool:
        try:
            return _Streamed(groups, pool, window, requirements, qs, series).summary()
        except _StatisticsWrong:  # a writer's min/max did not hold: the ranges from the data themselves
            return _Streamed(groups, pool, window, requirements, qs, series, read=True).summary()


class _StatisticsWrong(Exception):
    """A row group holds a response time outside the range its statistics gave."""


def time_range(path: str | os.PathLike[str]) -> tuple[float, float] | None:
    """First and last timestamp of a Parquet samples file (NaN and nulls left out), or None without any."""
    ends = [r for r in RowGroups(path).ranges("timestamp") if r is not None]
    return (min(r[0] for r in ends), max(r[1] for r in ends)) if ends else None


class _Labels:
    """Global codes of one string column's values over all row groups; null is ""."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {"": 0}
        self.labels: list[str] = [""]

    def table(self, column: pa.DictionaryArray) -> np.ndarray:
        """Global code of each dictionary entry of a batch, then of null (at index len(dictionary))."""
        codes = []
        for value in column.dictionary.to_pylist():
            code = self.index.get(value or "")
            if code is None:
                code = self.index[value] = len(self.labels)
                self.labels.append(value)
            codes.append(code)
        return np.array(codes + [0], np.int32)


@dataclass(frozen=True)
class _Rows:
    """One batch's rows in the window: base group, response time, and what the first pass also needs."""

    base: np.ndarray  # int32 base group
    values: np.ndarray  # response_time_ms, NaN where unknown
    failed: np.ndarray | None = None  # bool
    label: np.ndarray | None = None  # int32 requirement label code
    slot: np.ndarray | None = None  # int32 second of the window
    users: np.ndarray | None = None  # int32, -1 where unknown
    groups: np.ndarray | None = None  # the base groups present (first pass) ...
    counts: np.ndarray | None = None  # ... and their rows
    in_order: bool = False  # slots never decrease (a row group written in time order)


class _Streamed:
    def __init__(self, groups: RowGroups, pool: ThreadPoolExecutor, window: Window | None,
                 requirements: Sequence[str] | None, qs: tuple[float, ...], series: bool, read: bool = False) -> None:
        self.groups, self.pool, self.qs, self.want_series, self.read = groups, pool, qs, series, read
        self.requirements = None if requirements is None else sorted(set(requirements))
        ts_ranges = groups.ranges("timestamp")
        if window is None:
            ends = [r for r in ts_ranges if r is not None]
            window = Window(min(r[0] for r in ends), max(r[1] for r in ends)) if ends else Window(0.0, 0.0)
        self.window, self.n_sec = window, max(1, math.ceil(window.seconds))
        # Row groups that may hold rows of the window, in the order of their first timestamp.
        self.ts_ranges = ts_ranges
        self.order = sorted((i for i, r in enumerate(ts_ranges) if r is not None and r[1] >= window.start
                             and r[0] <= window.end), key=lambda i: ts_ranges[i][0])
        self.labels = tuple(_Labels() for _ in range(3))  # request_type, name, requirement
        self.base_of: dict[tuple[int, int, int], int] = {}
        self.combos: list[tuple[int, int, int]] = []
        self.ids_of: list[tuple[str, ...]] = [()]  # requirement label code -> its IDs
        self.seen_ids: dict[str, None] = {}

    # -- reading ---------------------------------------------------------------------------------
    def _batches(self, indices: list[int], columns: Sequence[str]) -> Iterator[tuple[int, pa.RecordBatch | None]]:
        """(k, batch) for the batches of row group ``indices[k]``, then (k, None) at its end; each batch is
        read (decompressed) on the pool while the one before is worked on."""
        def parts() -> Iterator[tuple[int, pa.RecordBatch | None]]:
            for k, i in enumerate(indices):
                for batch in self.groups.batches(i, columns):
                    yield k, batch
                yield k, None

        it = parts()
        pending = self.pool.submit(next, it, None)
        while True:
            got = pending.result()
            if got is None:
                return
            pending = self.pool.submit(next, it, None)
            yield got

    def _rows(self, batch: pa.RecordBatch, full: bool, among: np.ndarray | None = None,
              in_order: bool = False) -> _Rows | None:
        """A batch's rows in the window (``full``: with the first pass's columns too), or only those of them
        at the positions ``among``; None if none. ``in_order``: the batch's timestamps never decrease."""
        ts = numpy_of(batch.column("timestamp"), np.nan)
        if among is None:
            inside = (ts >= self.window.start) & (ts <= self.window.end)
            keep = None if inside.all() else np.flatnonzero(inside)
        else:
            at = ts[among]
            keep = among[(at >= self.window.start) & (at <= self.window.end)]
        if keep is not None and keep.size == 0:
            return None
        pick = (lambda a: a) if keep is None else (lambda a: a[keep])
        cols = [batch.column(name) for name in ("request_type", "name", "requirement")]
        tables = [lab.table(c) for lab, c in zip(self.labels, cols)]
        local = [pick(numpy_of(c.indices, len(c.dictionary))) for c in cols]  # a null points past the dictionary
        sizes = [len(t) for t in tables]
        wide = np.int32 if math.prod(sizes) < 1 << 31 else np.int64  # int32 when it fits: half the memory traffic
        combo = np.multiply(local[0], sizes[1], dtype=wide)
        combo += local[1]
        combo *= sizes[2]
        combo += local[2]
        if math.prod(sizes) <= _LOCAL_COMBOS:
            counts = np.bincount(combo, minlength=math.prod(sizes))
            present = np.flatnonzero(counts)
            counts = counts[present]
            lookup = np.zeros(math.prod(sizes), np.int32)
            groups = lookup[present] = self._base_ids(present, sizes, tables)
            base = np.take(lookup, combo)
        else:
            present, inverse, counts = np.unique(combo, return_inverse=True, return_counts=True)
            groups = self._base_ids(present, sizes, tables)
            base = groups[inverse.ravel()]
        values = pick(numpy_of(batch.column("response_time_ms"), np.nan))
        if not full:
            return _Rows(base, values)
        slot = (pick(ts) - self.window.start).astype(np.int32)  # truncation is floor: all >= 0 here
        np.minimum(slot, self.n_sec - 1, out=slot)
        failed = ~pick(numpy_of(batch.column("success"), False))
        return _Rows(base, values, failed, np.take(tables[2], local[2]), slot,
                     pick(numpy_of(batch.column("users"), -1)), groups, counts, in_order)

    def _base_ids(self, present: np.ndarray, sizes: list[int], tables: list[np.ndarray]) -> np.ndarray:
        """Base group ids of a batch's local (type, name, requirement) combinations, new ones numbered on."""
        rt, rest = np.divmod(present, sizes[1] * sizes[2])
        nm, rq = np.divmod(rest, sizes[2])
        out = np.empty(present.size, np.int32)
        for i, combo in enumerate(zip(tables[0][rt].tolist(), tables[1][nm].tolist(), tables[2][rq].tolist())):
            base = self.base_of.get(combo)
            if base is None:
                base = self.base_of[combo] = len(self.combos)
                self.combos.append(combo)
            out[i] = base
        return out

    # -- the summary -----------------------------------------------------------------------------
    def summary(self) -> dict:
        used = set(self.order)
        rt_range = [r for i, r in enumerate(self.groups.ranges("response_time_ms", read=self.read)) if i in used and r]
        self.search, self.lo, self.hi = None, 0, -1
        if rt_range:
            self.lo, self.hi = (int(k) for k in to_keys(np.array([min(r[0] for r in rt_range),
                                                                  max(r[1] for r in rt_range)])))
            self.search = RankSearch(self.lo, self.hi)
        self.n = self.fails = self.nlat = np.zeros(0, np.int64)
        self.total = np.zeros(0)
        self.blocks: list = []  # (first second, seconds, overall, by id), or a future of one
        self.running = None  # the block whose series is being computed
        self.buffer: list[_Rows] = []
        self.buffered, self.done, self.deferred = 0, 0, False
        columns = ["timestamp", "request_type", "name", "requirement", "response_time_ms", "success", "users"]
        in_order, last = True, -math.inf  # the row group's rows so far in time order, and the last time read
        for k, batch in self._batches(self.order, columns):
            if batch is None:  # the end of a row group: its seconds before the next one's first are complete
                in_order, last = True, -math.inf
                if self.want_series and not self.deferred:
                    self._flush_series(self._complete(k, math.inf))
                continue
            # loadgate writes each row group in time order: then the seconds before the last time read are
            # complete too, and the series goes a batch at a time (a block of 128k rows, not 1M).
            ts = numpy_of(batch.column("timestamp"), np.nan)
            if batch.num_rows:
                in_order = in_order and ts[0] >= last and bool((ts[1:] >= ts[:-1]).all())
                last = ts[-1]
            rows = self._rows(batch, True, None, in_order)
            if rows is not None:
                self._first_pass(rows)
            if self.want_series and not self.deferred and batch.num_rows and in_order:
                self._flush_series(self._complete(k, float(last)))
        if self.want_series and self.deferred:
            self._series_by_rereading()
        self.blocks = [b if isinstance(b, tuple) else b.result() for b in self.blocks]
        return self._finish()

    def _first_pass(self, rows: _Rows) -> None:
        n_base = len(self.combos)
        if self.n.size < n_base:
            self.n, self.fails, self.nlat, self.total = (_grown(a, 2 * n_base) for a in (self.n, self.fails,
                                                                                         self.nlat, self.total))
        self.n[rows.groups] += rows.counts  # distinct groups: a plain add
        failed = rows.base[rows.failed]
        self.fails[:n_base] += np.bincount(failed, minlength=n_base)
        has = ~np.isnan(rows.values)
        if has.all():
            base, values = rows.base, rows.values
            self.nlat[rows.groups] += rows.counts
        else:
            base, values = rows.base[has], rows.values[has]
            self.nlat[:n_base] += np.bincount(base, minlength=n_base)
        self.total[:n_base] += np.bincount(base, values, minlength=n_base)
        if values.size:
            keys = to_keys(values)
            if int(keys.min()) < self.lo or int(keys.max()) > self.hi:
                raise _StatisticsWrong
            self.search.add(base, keys, n_base)
        labels = self.labels[2].labels
        self.ids_of += [split_ids(label) for label in labels[len(self.ids_of):]]
        if self.want_series and not self.deferred:
            self.buffer.append(rows)
            self.buffered += rows.slot.size
            if self.buffered > _SERIES_ROWS:  # row groups overlap in time too much: compute by reading again
                self.buffer, self.buffered, self.deferred = [], 0, True

    def _complete(self, k: int, read_up_to: float) -> int:
        """The seconds before this are complete when row group ``order[k]`` was read up to ``read_up_to``
        and the ones after it start at their first timestamp."""
        nxt = self.order[k + 1] if k + 1 < len(self.order) else None
        if nxt is None and read_up_to == math.inf:
            return self.n_sec
        until = min(read_up_to, math.inf if nxt is None else self.ts_ranges[nxt][0])
        # The last second also takes every later row (clipped): complete only at the end.
        return min(self.n_sec - 1, max(0, math.floor(until - self.window.start)))

    def _flush_series(self, upto: int) -> None:
        """The series of the seconds before ``upto``, whose rows have all been read."""
        if upto <= self.done:
            return
        ready, waiting = [], []
        for part in self.buffer:  # whole parts, or slices of those in time order: no copies
            if part.slot.size == 0 or part.slot.max() < upto:
                ready.append(part)
            elif part.slot.min() >= upto:
                waiting.append(part)
            elif part.in_order:
                cut = int(np.searchsorted(part.slot, upto))
                ready.append(_Rows(*(getattr(part, f)[:cut] for f in _FIELDS)))
                waiting.append(_Rows(*(getattr(part, f)[cut:] for f in _FIELDS), in_order=True))
            else:
                now = part.slot < upto
                ready.append(_Rows(*(getattr(part, f)[now] for f in _FIELDS)))
                waiting.append(_Rows(*(getattr(part, f)[~now] for f in _FIELDS)))
        self.buffer, self.buffered = waiting, sum(p.slot.size for p in waiting)
        self._block(_concat(ready), self.done, upto)
        self.done = upto

    def _block(self, rows: _Rows | None, first: int, end: int) -> None:
        """The series of seconds ``first .. end - 1``, from all of their rows, on the pool (one block at a
        time, so that at most one block's rows wait beside the buffer)."""
        count = end - first
        if rows is None or rows.slot.size == 0:
            self.blocks.append((first, count, empty_series(self.window, first, count), {}))
            return
        if self.running is not None:
            self.running.result()
        self.running = self.pool.submit(_block_series, rows, first, count, list(self.ids_of), self._section_now(),
                                        self.window)
        self.blocks.append(self.running)

    def _section_now(self) -> list[str]:
        """The requirement IDs the series covers, as far as the rows read so far tell."""
        if self.requirements is not None:
            return self.requirements
        return sorted({rid for ids in self.ids_of for rid in ids})

    def _series_by_rereading(self) -> None:
        """The series of the seconds not done yet, a block of at most ``_SERIES_ROWS`` rows at a time."""
        first = self.done
        per_second = np.zeros(self.n_sec, np.int64)  # rows of each second: one more read, of the timestamps alone
        for _, batch in self._batches(self.order, ["timestamp"]):
            if batch is not None:
                ts = numpy_of(batch.column("timestamp"), np.nan)
                ts = ts[(ts >= self.window.start) & (ts <= self.window.end)]
                per_second += np.bincount(np.minimum((ts - self.window.start).astype(np.int64), self.n_sec - 1),
                                          minlength=self.n_sec)
        columns = ["timestamp", "request_type", "name", "requirement", "response_time_ms", "success", "users"]
        while first < self.n_sec:
            end, rows = first + 1, int(per_second[first])
            while end < self.n_sec and rows + per_second[end] <= _SERIES_ROWS:
                rows += int(per_second[end])
                end += 1
            lo, hi = self.window.start + first, self.window.start + end
            last = end == self.n_sec
            wanted = [i for i in self.order if self.ts_ranges[i][1] >= lo and (self.ts_ranges[i][0] < hi or last)]
            parts = []
            for _, batch in self._batches(wanted, columns):
                if batch is not None:
                    got = self._rows(batch, full=True)
                    if got is not None:
                        at = np.flatnonzero((got.slot >= first) & (got.slot < end))
                        parts.append(_Rows(*(getattr(got, f)[at] for f in _FIELDS)))
            self._block(_concat(parts), first, end)
            first = end

    def _finish(self) -> dict:
        n_base = len(self.combos)
        n, fails, nlat, total = (_grown(a, n_base)[:n_base] for a in (self.n, self.fails, self.nlat, self.total))
        found = sorted({rid for c in self.combos for rid in self.ids_of[c[2]]})
        section = self.requirements if self.requirements is not None else found
        slot_of = {rid: j for j, rid in enumerate(section)}
        rt, nm, rq = (lab.labels for lab in self.labels)
        outs: dict[tuple, int] = {}
        pairs: list[tuple[int, int]] = []
        for b, (r, m, q) in enumerate(self.combos):
            pairs += [(outs.setdefault(key, len(outs)), b) for key in output_keys(rt[r], nm[m], self.ids_of[q], slot_of)]
        po, pb = (np.array([p[i] for p in pairs], np.int64).reshape(-1) for i in (0, 1))
        n_out = len(outs)
        per_out = lambda a: np.bincount(po, a[pb], minlength=n_out)  # noqa: E731
        g = {"n": per_out(n).astype(np.int64), "fails": per_out(fails).astype(np.int64)}
        g["nlat"] = per_out(nlat).astype(np.int64)
        g["mean"] = per_out(total) / np.maximum(g["nlat"], 1)
        g["values"], g["pct"] = self._percentiles(po, pb, g["nlat"])
        summary = summary_doc(self.window, outs, stats_of(g, n_out, self.qs, self.window.seconds), section, self.qs)
        if self.want_series:
            self._series_into(summary, section)
        return summary

    def _percentiles(self, po: np.ndarray, pb: np.ndarray, nlat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per output group: min, max, neighbour ranks and CI bounds (as ``group_arrays`` lays them out), and
        the percentiles."""
        qs, n_out = self.qs, nlat.size
        prev, nxt, gamma = linear_plan(nlat, qs)
        bounds = np.array([[ci_ranks(int(m), q) for q in qs] for m in nlat], np.int64).reshape(n_out, len(qs), 2)
        ranks = np.hstack([np.zeros((n_out, 1), np.int64), (nlat - 1)[:, None], prev, nxt, bounds[..., 0], bounds[..., 1]])
        has = (nlat > 0)[:, None] & (ranks >= 0)
        values = np.full(ranks.shape, np.nan)
        if has.any():
            group = np.broadcast_to(np.arange(n_out)[:, None], ranks.shape)
            search = self.search
            search.ask(po, pb, group[has], ranks[has])
            columns = ["timestamp", "request_type", "name", "requirement", "response_time_ms"]
            while search.passes_left:
                for _, batch in self._batches(self.order, columns):
                    # Group codes and the window only for the rows in a wanted cell: a few in a thousand.
                    among = None if batch is None else search.maybe(to_keys(numpy_of(batch.column("response_time_ms"),
                                                                                     np.nan)))
                    rows = None if among is None or among.size == 0 else self._rows(batch, False, among)
                    if rows is not None:
                        search.add(rows.base, to_keys(rows.values), len(self.combos))
                search.advance()
            values[has] = from_keys(search.keys)
        k = len(qs)
        return values, lerp(values[:, 2:2 + k], values[:, 2 + k:2 + 2 * k], gamma)

    def _series_into(self, summary: dict, section: list[str]) -> None:
        blocks = self.blocks or [(0, self.n_sec, empty_series(self.window, 0, self.n_sec), {})]
        if blocks[-1][0] + blocks[-1][1] < self.n_sec:  # seconds after the last row group
            first = blocks[-1][0] + blocks[-1][1]
            blocks.append((first, self.n_sec - first, empty_series(self.window, first, self.n_sec - first), {}))
        summary["series_percentile_method"] = "linear"
        summary["series"] = joined([b[2] for b in blocks])
        summary["series_by_requirement"] = {
            rid: joined([b[3].get(rid) or empty_series(self.window, b[0], b[1]) for b in blocks]) for rid in section}


_FIELDS = ("base", "values", "failed", "label", "slot", "users")


def _block_series(rows: _Rows, first: int, count: int, ids_of: list[tuple[str, ...]], ids: list[str],
                  window: Window) -> tuple[int, int, dict, dict[str, dict]]:
    """The series of seconds ``first .. first + count - 1`` of the window, overall and per ID of ``ids``."""
    bases = rows.label.astype(np.int64) * count + (rows.slot - first)
    overall, by_req = per_second(Latency([rows.values]), [bases], [np.flatnonzero(rows.failed)], [rows.users],
                                 ids_of, {rid: j for j, rid in enumerate(ids)}, window, count, first)
    return first, count, overall, dict(zip(ids, by_req))


def _concat(parts: list[_Rows]) -> _Rows | None:
    """One _Rows of several (first-pass rows), or None for none."""
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return _Rows(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))


def _grown(acc: np.ndarray, n: int) -> np.ndarray:
    """``acc`` with zeros after it up to ``n`` entries (itself if it has as many)."""
    if acc.size >= n:
        return acc
    out = np.zeros(n, acc.dtype)
    out[:acc.size] = acc
    return out
