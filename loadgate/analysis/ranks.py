"""Exact order statistics of many groups over rows that are streamed, never held: histograms refined pass by pass.

Response times are order-preserving uint64 keys. The first pass counts each base group's keys in 2**bits
equal key ranges between the smallest and largest key; the cell that holds each wanted rank follows
from the counts. A later pass either counts again inside only the wanted cells, at a finer width, or,
once the rows in the wanted cells fit the gather budget, collects those rows' keys and picks each rank
exactly among them. A cell one key wide needs no pass at all: its key is its value (all-equal data,
spikes). Memory: base groups x cells of the histogram, plus the gathered rows; never the whole input.

Every output group is a union of base groups (``po[i]`` owns ``pb[i]``), like the in-memory selection's.
"""

from __future__ import annotations

import numpy as np

_CELLS = 1 << 23  # histogram cells (base groups x cells) per pass: 64 MiB of counts
_FIRST_BITS = 16  # cells per base group in the first pass at most: counts stay in the cache, and over the
# ~14 binades of a web service's response times a cell is ~1/4700 of one: at 10M samples the cells that hold
# the ~240 wanted ranks of bench/gen_samples.py's file hold 31k rows (2^20 cells: 2k, 2^14: 100k)
_GATHER = 1 << 24  # rows whose keys a gather pass keeps: 16M x 12 bytes
_U64 = np.uint64


def to_keys(values: np.ndarray) -> np.ndarray:
    """Order-preserving uint64 keys of float64 values (no NaN): negatives flipped, positives' sign bit set."""
    key = values.view(_U64)
    keys: np.ndarray = key ^ ((_U64(0) - (key >> _U64(63))) | _U64(1 << 63))
    return keys


def from_keys(key: np.ndarray) -> np.ndarray:
    """The float64 values of keys made by :func:`to_keys`."""
    key = np.asarray(key, _U64)
    values: np.ndarray = (key ^ ((_U64(0) - (_U64(1) - (key >> _U64(63)))) | _U64(1 << 63))).view(np.float64)
    return values


class _Level:
    """Disjoint key intervals [starts[j], ends[j]), each cut in 2**bits cells of width 2**shifts[j].

    Below the first level, interval j is cell ``parent_cells[j]`` of the ``parent`` level: a key's
    interval comes from its parent cell through a lookup table, not from a search among the intervals.
    """

    def __init__(
        self,
        starts: list[int],
        ends: list[int],
        bits: int,
        parent: _Level | None = None,
        parent_cells: np.ndarray | None = None,
    ) -> None:
        self.starts_py, self.ends_py, self.bits, self.parent = starts, ends, bits, parent
        if parent is not None:
            self.of_parent = np.full(parent.n_cells, -1, np.int64)
            self.of_parent[parent_cells] = np.arange(len(starts))
        self.shifts_py = [max(0, (e - s - 1).bit_length() - bits) for s, e in zip(starts, ends)]
        self.starts = np.array(starts, _U64)
        self.widths = np.array([e - s for s, e in zip(starts, ends)], _U64)
        self.shifts = np.array(self.shifts_py, _U64)

    @property
    def n_cells(self) -> int:
        return len(self.starts_py) << self.bits

    def cells(self, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the keys inside an interval, and their cells (interval j's cells come j-th)."""
        if self.parent is None:
            d = key - self.starts[0]  # wraps around below the start: then too large, outside
            inside = np.flatnonzero(d < self.widths[0])
            return inside, (d[inside] >> self.shifts[0]).astype(np.int64)
        inside, cell = self.parent.cells(key)
        j = self.of_parent[cell]
        ok = np.flatnonzero(j >= 0)
        inside, j = inside[ok], j[ok]
        if self.bits == 0:
            return inside, j
        return inside, (j << self.bits) | ((key[inside] - self.starts[j]) >> self.shifts[j]).astype(np.int64)


class RankSearch:
    """Keys at given 0-based ranks of output groups, from rows streamed once per pass.

    ``add`` every chunk of (base group, key) rows; after the first pass, ``ask`` for the ranks; while
    ``passes_left``, stream every row again through ``add`` and call ``advance``; then ``keys``.
    """

    def __init__(self, lo: int, hi: int, *, cells: int | None = None, gather: int | None = None) -> None:
        """``lo``, ``hi``: the smallest and largest key any row will have; ``cells``, ``gather``: the budgets
        (default :data:`_CELLS`, :data:`_GATHER`, read when called: tests shrink them to force many passes)."""
        self.cells_budget = _CELLS if cells is None else cells
        self.gather_budget = _GATHER if gather is None else gather
        self.level = _Level([lo], [hi + 1], min(_FIRST_BITS, max(1, (hi - lo).bit_length())))
        self.n_base = 0
        self.hist = np.zeros((0, self.level.n_cells), np.int64)
        self.pending: list[np.ndarray] = []
        self.pending_rows = 0
        self.gathering = False
        self.gathered: list[tuple[np.ndarray, np.ndarray]] = []
        self.passes_left = False
        self.keys = np.zeros(0, _U64)
        self.asked = False

    # -- streaming -------------------------------------------------------------------------------
    def add(self, base: np.ndarray, key: np.ndarray, n_base: int) -> None:
        """One chunk of rows: their base groups (< ``n_base``, the groups seen so far) and keys."""
        if n_base > self.n_base:
            self._grow(n_base)
        inside, cell = self.level.cells(key)
        if self.gathering:
            base = base[inside]
            keep = np.flatnonzero(self.wanted[base, cell >> self.level.bits])
            self.gathered.append((base[keep], key[inside[keep]]))
            return
        flat = base[inside].astype(np.int64) * self.level.n_cells + cell
        self.pending.append(flat)
        self.pending_rows += flat.size
        # One bincount per at least as many rows as cells: one per chunk would cost chunks x cells.
        if self.pending_rows >= self.hist.size:
            self._flush()

    def _grow(self, n_base: int) -> None:
        self._flush()
        while n_base * self.level.n_cells > self.cells_budget and self.level.bits > 1 and not self.asked:
            # First pass only: half the cells. They nest, so the counts fold exactly: pairs of cells merge
            # when the width doubles; when cells are one key wide already, the upper half is empty.
            lv = self.level
            self.level = _Level(lv.starts_py, lv.ends_py, lv.bits - 1)  # the first level: no parent
            if self.n_base == 0:
                self.hist = np.zeros((0, self.level.n_cells), np.int64)
            elif self.level.shifts_py[0] == lv.shifts_py[0] + 1:
                self.hist = self.hist.reshape(self.n_base, -1, 2).sum(axis=2)
            else:
                self.hist = np.ascontiguousarray(self.hist[:, : self.level.n_cells])
        grown = np.zeros((n_base, self.level.n_cells), np.int64)
        grown[: self.n_base] = self.hist
        self.hist, self.n_base = grown, n_base

    def _flush(self) -> None:
        if self.pending_rows:
            flat = np.concatenate(self.pending) if len(self.pending) > 1 else self.pending[0]
            self.hist += np.bincount(flat, minlength=self.hist.size).reshape(self.hist.shape)
        self.pending, self.pending_rows = [], 0

    def maybe(self, key: np.ndarray) -> np.ndarray:
        """Positions of the keys that this pass may count or gather (in a wanted first-level cell), or
        every one before ``ask``: a cheap filter before working out the rows' groups."""
        if not self.asked:
            return np.arange(key.size)
        inside, cell = self.root.cells(key)
        wanted: np.ndarray = inside[self.root_wanted[cell]]
        return wanted

    # -- between passes --------------------------------------------------------------------------
    def ask(self, po: np.ndarray, pb: np.ndarray, group: np.ndarray, rank: np.ndarray) -> None:
        """The ranks wanted: query i is rank ``rank[i]`` of output ``group[i]`` (every rank must exist)."""
        self._flush()
        self.asked = True
        self.po, self.pb = po, pb
        self.group, self.rank = np.asarray(group, np.int64), np.asarray(rank, np.int64)
        self.keys = np.zeros(self.group.size, _U64)
        self.open = np.arange(self.group.size)  # queries not answered yet
        self.interval = np.zeros(self.group.size, np.int64)  # each open query's interval at this level
        self.within = self.rank.copy()  # its rank among its group's keys in that interval
        self._settle()

    def advance(self) -> None:
        """After a further pass over every row."""
        if self.gathering:
            self._pick()
        else:
            self._flush()
            self._settle()

    def _bases_of(self, o: int) -> np.ndarray:
        bases: np.ndarray = self.pb[self.po == o]
        return bases

    def _settle(self) -> None:
        """Locate each open query's cell in the histogram just counted; plan the next pass."""
        lv, bits = self.level, self.level.bits
        width = 1 << bits
        new_start = np.zeros(self.open.size, dtype=object)
        new_end = np.zeros(self.open.size, dtype=object)
        old_cell = np.zeros(self.open.size, np.int64)
        queries = self.open
        for o in np.unique(self.group[queries]).tolist():
            mine = np.flatnonzero(self.group[queries] == o)
            counts = self.hist[self._bases_of(o)].sum(axis=0)
            for j in np.unique(self.interval[queries[mine]]).tolist():
                at = mine[self.interval[queries[mine]] == j]
                seg = counts[j * width : (j + 1) * width]
                cum = np.cumsum(seg)
                t = np.searchsorted(cum, self.within[queries[at]], side="right")
                self.within[queries[at]] -= cum[t] - seg[t]
                for i, ti in zip(at.tolist(), t.tolist()):
                    start = lv.starts_py[j] + (ti << lv.shifts_py[j])
                    new_start[i], new_end[i] = start, min(lv.ends_py[j], start + (1 << lv.shifts_py[j]))
                    old_cell[i] = j * width + ti
        one = np.array([e - s == 1 for s, e in zip(new_start, new_end)], bool)
        for i in np.flatnonzero(one).tolist():
            self.keys[queries[i]] = new_start[i]  # a cell one key wide: its key is the answer
        still = np.flatnonzero(~one)
        self.open = queries[still]
        if self.open.size == 0:
            self.passes_left, self.hist = False, np.zeros((0, 0), np.int64)
            return
        starts = sorted(set(new_start[still].tolist()))
        ends = {s: e for s, e in zip(new_start[still].tolist(), new_end[still].tolist())}
        index = {s: j for j, s in enumerate(starts)}
        self.interval[self.open] = [index[s] for s in new_start[still].tolist()]
        # Rows the next pass would gather: per (base group, wanted interval) pair, its count now.
        wanted = np.zeros((self.n_base, len(starts)), bool)
        cell_of = np.zeros(len(starts), np.int64)
        for i in still.tolist():
            j = index[new_start[i]]
            wanted[self._bases_of(int(self.group[queries[i]])), j] = True
            cell_of[j] = old_cell[i]
        rows = int((self.hist[:, cell_of] * wanted).sum())
        ends_list = [ends[s] for s in starts]
        self.passes_left = True
        if self.level.parent is None:
            self.root = self.level
        self.root_wanted = np.zeros(self.root.n_cells, bool)
        self.root_wanted[self.root.cells(np.array(starts, _U64))[1]] = True  # each interval lies in one root cell
        if rows <= self.gather_budget:
            self.gathering, self.wanted = True, wanted
            self.level = _Level(starts, ends_list, 0, self.level, cell_of)
            self.hist = np.zeros((0, 0), np.int64)
            self.gathered = []
            return
        room = self.cells_budget // max(1, self.n_base * len(starts))
        bits = max(1, min(16, room.bit_length() - 1))
        self.level = _Level(starts, ends_list, bits, self.level, cell_of)
        self.hist = np.zeros((self.n_base, self.level.n_cells), np.int64)

    def _pick(self) -> None:
        """Each open query's key among the gathered rows of its interval and group."""
        base = np.concatenate([g[0] for g in self.gathered] + [np.zeros(0, np.int64)])
        key = np.concatenate([g[1] for g in self.gathered] + [np.zeros(0, _U64)])
        self.gathered = []
        order = np.argsort(key, kind="stable")  # intervals are disjoint key ranges: key order is interval order
        base, key = base[order], key[order]
        bounds = np.searchsorted(key, self.level.starts)
        ends = np.append(bounds[1:], key.size)
        mine = np.zeros(self.n_base, bool)
        for o in np.unique(self.group[self.open]).tolist():
            mine[:] = False
            mine[self._bases_of(o)] = True
            for q in self.open[self.group[self.open] == o].tolist():
                j = int(self.interval[q])
                seg = slice(int(bounds[j]), int(ends[j]))
                self.keys[q] = key[seg][mine[base[seg]]][int(self.within[q])]
        self.open = np.zeros(0, np.int64)
        self.gathering, self.passes_left = False, False
