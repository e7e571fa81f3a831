"""Reading a sample source's row groups for the streamed analysis: batches, group codes, rows in the window.

The base groups (request type, name, requirement label) get ids that stay the same over every pass,
so that a later pass's rows meet the first pass's histograms: each string column's values get global
codes as they appear, each batch's dictionary is translated once, and a batch's distinct combinations
(a few dozen) get their ids through a dictionary, never row by row.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from loadgate.analysis.labels import Labels
from loadgate.analysis.ranks import RankSearch, to_keys
from loadgate.analysis.window import Window
from loadgate.data.arrowbuf import numpy_of
from loadgate.data.sample_source import SampleSource

_LOCAL_COMBOS = 1 << 22  # a batch's (type, name, requirement) dictionary combinations counted densely below this


@dataclass(frozen=True)
class Rows:
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


class RowReader:
    """A sample source's batches and their rows in the window, with base group ids kept across passes."""

    def __init__(self, groups: SampleSource, pool: ThreadPoolExecutor, window: Window) -> None:
        self.groups, self.pool = groups, pool
        self.window, self.n_sec = window, max(1, math.ceil(window.seconds))
        self.labels = tuple(Labels() for _ in range(3))  # request_type, name, requirement
        self.base_of: dict[tuple[int, int, int], int] = {}
        self.combos: list[tuple[int, int, int]] = []

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

    def refine(self, search: RankSearch, order: list[int]) -> None:
        """``search``'s further passes over row groups ``order``, until each rank it was asked for is found."""
        columns = ["timestamp", "request_type", "name", "requirement", "response_time_ms"]
        while search.passes_left:
            for _, batch in self._batches(order, columns):
                # Group codes and the window only for the rows in a wanted cell: a few in a thousand.
                among = (
                    None if batch is None else search.maybe(to_keys(numpy_of(batch.column("response_time_ms"), np.nan)))
                )
                rows = None if among is None or among.size == 0 else self._rows(batch, False, among)
                if rows is not None:
                    search.add(rows.base, to_keys(rows.values), len(self.combos))
            search.advance()

    def _rows(
        self, batch: pa.RecordBatch, full: bool, among: np.ndarray | None = None, in_order: bool = False
    ) -> Rows | None:
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
        pick: Callable[[np.ndarray], np.ndarray] = (lambda a: a) if keep is None else (lambda a: a[keep])
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
            return Rows(base, values)
        slot = (pick(ts) - self.window.start).astype(np.int32)  # truncation is floor: all >= 0 here
        np.minimum(slot, self.n_sec - 1, out=slot)
        failed = ~pick(numpy_of(batch.column("success"), False))
        return Rows(
            base,
            values,
            failed,
            np.take(tables[2], local[2]),
            slot,
            pick(numpy_of(batch.column("users"), -1)),
            groups,
            counts,
            in_order,
        )

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


FIELDS = ("base", "values", "failed", "label", "slot", "users")


def concat(parts: list[Rows]) -> Rows | None:
    """One Rows of several (first-pass rows), or None for none."""
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    # FIELDS are Rows' first fields, in order
    return Rows(*(np.concatenate([getattr(p, f) for p in parts]) for f in FIELDS))  # type: ignore[arg-type]
