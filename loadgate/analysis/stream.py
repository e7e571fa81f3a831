"""The analysis engine: a source's row groups -> their summary in bounded memory, the percentiles exact.

Every summary (:func:`loadgate.analysis.summary.summarize`) is made here, from a
:class:`~loadgate.data.sample_source.SampleSource`, bit for bit numpy's linear percentiles, without
holding the samples: memory grows with the distinct requests and the seconds of the window, not with
the samples (a soak run of hundreds of millions of requests is analysed on the machine that ran it).

- Counts, failures, sums and a histogram of response-time keys per base group (request type, name,
  requirement label) come from one pass over the row groups; the ranks each percentile needs are then
  found exactly by :class:`loadgate.analysis.ranks.RankSearch`, usually in one more pass that gathers
  only the rows in the few histogram cells holding a wanted rank.
- The per-second series is computed a block of seconds at a time during the first pass: row groups are
  read in the order of their first timestamp (their statistics say it without reading them), so once
  the next one starts after a second, that second is complete; within a row group written in time
  order (as ``loadgate run`` writes them) a second is complete once a later time is read. A file whose row groups overlap in time
  so much that the waiting rows pass ``_SERIES_ROWS`` (not one ``loadgate run`` writes) is still exact:
  its remaining seconds are computed by reading again, block by block, the row groups of each block.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from loadgate.analysis.ci import ci_ranks
from loadgate.analysis.labels import split_ids
from loadgate.analysis.latency import Latency
from loadgate.analysis.memory import memory_tuned
from loadgate.analysis.ranks import RankSearch, from_keys, to_keys
from loadgate.analysis.select import lerp, linear_plan
from loadgate.analysis.series import empty_series, joined, series as per_second
from loadgate.analysis.stream_rows import FIELDS, RowReader, Rows, concat
from loadgate.analysis.summary_doc import DEFAULT_PERCENTILES, checked_percentiles, output_keys, stats_of, summary_doc
from loadgate.analysis.window import Window
from loadgate.data.arrowbuf import numpy_of
from loadgate.data.sample_source import SampleSource

_SERIES_ROWS = 1 << 23  # rows waiting for their seconds to complete, at most (~25 bytes each)


def summarize_source(
    groups: SampleSource,
    window: Window | None = None,
    *,
    requirements: Sequence[str] | None = None,
    percentiles: Iterable[float] = DEFAULT_PERCENTILES,
    series: bool = True,
) -> dict[str, Any]:
    """The summary of a source's samples in ``window``, one row group at a time."""
    qs = checked_percentiles(percentiles)
    # Two threads beside the main one: the next row group is read (decompressed) while this one is
    # counted, and a finished block of seconds gets its series meanwhile; numpy and Arrow release the GIL.
    with memory_tuned(), ThreadPoolExecutor(2) as pool:
        try:
            return _Streamed(groups, pool, window, requirements, qs, series).summary()
        except _StatisticsWrong:  # a writer's min/max did not hold: the ranges from the data themselves
            return _Streamed(groups, pool, window, requirements, qs, series, read=True).summary()


class _StatisticsWrong(Exception):
    """A row group holds a response time outside the range its statistics gave."""


_Block = tuple[int, int, dict[str, Any], dict[str, dict[str, Any]]]  # first second, seconds, overall, by ID


class _Streamed(RowReader):
    """One file's summary: the first pass with the series, the rank search's passes, the summary."""

    def __init__(
        self,
        groups: SampleSource,
        pool: ThreadPoolExecutor,
        window: Window | None,
        requirements: Sequence[str] | None,
        qs: tuple[float, ...],
        series: bool,
        read: bool = False,
    ) -> None:
        self.qs, self.want_series, self.read = qs, series, read
        self.requirements = None if requirements is None else sorted(set(requirements))
        ts_ranges = groups.ranges("timestamp")
        if window is None:
            ends = [r for r in ts_ranges if r is not None]
            window = Window(min(r[0] for r in ends), max(r[1] for r in ends)) if ends else Window(0.0, 0.0)
        super().__init__(groups, pool, window)
        # Row groups that may hold rows of the window, in the order of their first timestamp.
        self.ts_ranges = ts_ranges
        self.order = sorted(
            (i for i, r in enumerate(ts_ranges) if r is not None and r[1] >= window.start and r[0] <= window.end),
            key=lambda i: ts_ranges[i][0],
        )
        self.ids_of: list[tuple[str, ...]] = [()]  # requirement label code -> its IDs

    # -- the summary -----------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        used = set(self.order)
        rt_range = [r for i, r in enumerate(self.groups.ranges("response_time_ms", read=self.read)) if i in used and r]
        self.search, self.lo, self.hi = None, 0, -1
        if rt_range:
            self.lo, self.hi = (
                int(k) for k in to_keys(np.array([min(r[0] for r in rt_range), max(r[1] for r in rt_range)]))
            )
            self.search = RankSearch(self.lo, self.hi)
        self.n = self.fails = self.nlat = np.zeros(0, np.int64)
        self.total = np.zeros(0)
        self.blocks: list[Any] = []  # (first second, seconds, overall, by id), or a future of one
        self.running: Future[_Block] | None = None  # the block whose series is being computed
        self.buffer: list[Rows] = []
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

    def _first_pass(self, rows: Rows) -> None:
        n_base = len(self.combos)
        if self.n.size < n_base:
            self.n, self.fails, self.nlat, self.total = (
                _grown(a, 2 * n_base) for a in (self.n, self.fails, self.nlat, self.total)
            )
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
        self.ids_of += [split_ids(label) for label in labels[len(self.ids_of) :]]
        if self.want_series and not self.deferred:
            if rows.slot.size and int(rows.slot.min()) < self.done:
                # A row group whose first batches were in time order and a later one went back before a
                # second already done: every second is computed by reading again.
                self._defer(restart=True)
                return
            self.buffer.append(rows)
            self.buffered += rows.slot.size
            if self.buffered > _SERIES_ROWS:  # row groups overlap in time too much: compute by reading again
                self._defer(restart=False)

    def _defer(self, restart: bool) -> None:
        """The seconds not done yet (``restart``: every second) computed by reading again at the end."""
        self.buffer, self.buffered, self.deferred = [], 0, True
        if restart:
            if self.running is not None:
                self.running.result()
            self.running, self.blocks, self.done = None, [], 0

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
                ready.append(Rows(*(getattr(part, f)[:cut] for f in FIELDS)))
                # FIELDS stop before in_order
                waiting.append(Rows(*(getattr(part, f)[cut:] for f in FIELDS), in_order=True))  # type: ignore[misc]
            else:
                now = part.slot < upto
                ready.append(Rows(*(getattr(part, f)[now] for f in FIELDS)))
                waiting.append(Rows(*(getattr(part, f)[~now] for f in FIELDS)))
        # (first-pass rows always have their slots)
        self.buffer, self.buffered = waiting, sum(p.slot.size for p in waiting)  # type: ignore[misc]
        self._block(concat(ready), self.done, upto)
        self.done = upto

    def _block(self, rows: Rows | None, first: int, end: int) -> None:
        """The series of seconds ``first .. end - 1``, from all of their rows, on the pool (one block at a
        time, so that at most one block's rows wait beside the buffer)."""
        count = end - first
        if rows is None or rows.slot.size == 0:
            self.blocks.append((first, count, empty_series(self.window, first, count), {}))
            return
        if self.running is not None:
            self.running.result()
        self.running = self.pool.submit(
            _block_series, rows, first, count, list(self.ids_of), self._section_now(), self.window
        )
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
                per_second += np.bincount(
                    np.minimum((ts - self.window.start).astype(np.int64), self.n_sec - 1), minlength=self.n_sec
                )
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
                        parts.append(Rows(*(getattr(got, f)[at] for f in FIELDS)))
            self._block(concat(parts), first, end)
            first = end

    def _finish(self) -> dict[str, Any]:
        n_base = len(self.combos)
        n, fails, nlat, total = (_grown(a, n_base)[:n_base] for a in (self.n, self.fails, self.nlat, self.total))
        found = sorted({rid for c in self.combos for rid in self.ids_of[c[2]]})
        section = self.requirements if self.requirements is not None else found
        slot_of = {rid: j for j, rid in enumerate(section)}
        rt, nm, rq = (lab.labels for lab in self.labels)
        outs: dict[tuple[Any, ...], int] = {}
        pairs: list[tuple[int, int]] = []
        for b, (r, m, q) in enumerate(self.combos):
            pairs += [
                (outs.setdefault(key, len(outs)), b) for key in output_keys(rt[r], nm[m], self.ids_of[q], slot_of)
            ]
        po, pb = (np.array([p[i] for p in pairs], np.int64).reshape(-1) for i in (0, 1))
        n_out = len(outs)
        per_out: Callable[[np.ndarray], np.ndarray] = lambda a: np.bincount(po, a[pb], minlength=n_out)  # noqa: E731
        g: dict[str, np.ndarray] = {"n": per_out(n).astype(np.int64), "fails": per_out(fails).astype(np.int64)}
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
        ranks = np.hstack(
            [np.zeros((n_out, 1), np.int64), (nlat - 1)[:, None], prev, nxt, bounds[..., 0], bounds[..., 1]]
        )
        has = (nlat > 0)[:, None] & (ranks >= 0)
        values = np.full(ranks.shape, np.nan)
        if has.any():
            group = np.broadcast_to(np.arange(n_out)[:, None], ranks.shape)
            self.search.ask(po, pb, group[has], ranks[has])
            self.refine(self.search, self.order)
            values[has] = from_keys(self.search.keys)
        k = len(qs)
        return values, lerp(values[:, 2 : 2 + k], values[:, 2 + k : 2 + 2 * k], gamma)

    def _series_into(self, summary: dict[str, Any], section: list[str]) -> None:
        blocks = self.blocks or [(0, self.n_sec, empty_series(self.window, 0, self.n_sec), {})]
        if blocks[-1][0] + blocks[-1][1] < self.n_sec:  # seconds after the last row group
            first = blocks[-1][0] + blocks[-1][1]
            blocks.append((first, self.n_sec - first, empty_series(self.window, first, self.n_sec - first), {}))
        summary["series_percentile_method"] = "linear"
        summary["series"] = joined([b[2] for b in blocks])
        summary["series_by_requirement"] = {
            rid: joined([b[3].get(rid) or empty_series(self.window, b[0], b[1]) for b in blocks]) for rid in section
        }


def _block_series(
    rows: Rows, first: int, count: int, ids_of: list[tuple[str, ...]], ids: list[str], window: Window
) -> _Block:
    """The series of seconds ``first .. first + count - 1`` of the window, overall and per ID of ``ids``."""
    bases = rows.label.astype(np.int64) * count + (rows.slot - first)
    overall, by_req = per_second(
        Latency([rows.values]),
        [bases],
        [np.flatnonzero(rows.failed)],
        [rows.users],
        ids_of,
        {rid: j for j, rid in enumerate(ids)},
        window,
        count,
        first,
    )
    return first, count, overall, dict(zip(ids, by_req))


def _grown(acc: np.ndarray, n: int) -> np.ndarray:
    """``acc`` with zeros after it up to ``n`` entries (itself if it has as many)."""
    if acc.size >= n:
        return acc
    out = np.zeros(n, acc.dtype)
    out[: acc.size] = acc
    return out
