"""The recorder's Arrow stream (``samples.arrows``) as a :class:`~loadgate.data.sample_source.SampleSource`:
what a run holds before it is finalised, or after a full disk kept ``samples.parquet`` from being written."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from loadgate.data.arrowbuf import numpy_of
from loadgate.data.sample_source import BATCH_ROWS, ranges_by_reading, signed_zeros, values_by_reading
from loadgate.data.samples import ROW_GROUP_ROWS, SCHEMA, complete_batches, conform

STREAM_MAGIC = b"\xff\xff\xff\xff"  # an Arrow IPC stream's first message starts with this continuation marker


class ArrowStreamSource:
    """The recorder's Arrow stream: its complete batches, grouped into row groups of about
    ``group_rows`` rows. A first pass notes each group's batches and ranges; a later read of the next
    group goes on from where the last one stopped (passes over every group in order read the stream
    once each), any other group re-reads the stream from its start."""

    in_memory = False

    def __init__(self, path: str | os.PathLike[str], group_rows: int = ROW_GROUP_ROWS) -> None:
        self.path = Path(path)
        self.names = list(SCHEMA.names)
        self.group_rows = max(1, group_rows)
        self._sizes: list[list[int]] = []  # per group, its batches' rows
        self._ranges: dict[str, list[tuple[float, float] | None]] = {"timestamp": [], "response_time_ms": []}
        lows: dict[str, float] = {}
        highs: dict[str, float] = {}
        for batch in complete_batches(self.path, warn=False):
            if not self._sizes or sum(self._sizes[-1]) >= self.group_rows:
                self._close_group(lows, highs)
                self._sizes.append([])
            self._sizes[-1].append(batch.num_rows)
            for name in self._ranges:
                values = numpy_of(batch.column(name), np.nan)
                if values.size:
                    lows[name] = float(np.fmin(lows.get(name, math.nan), np.fmin.reduce(values)))
                    highs[name] = float(np.fmax(highs.get(name, math.nan), np.fmax.reduce(values)))
        self._close_group(lows, highs)
        self.count = len(self._sizes)
        self._cursor: tuple[int, Iterator[pa.RecordBatch]] | None = None

    def _close_group(self, lows: dict[str, float], highs: dict[str, float]) -> None:
        if not self._sizes:
            return
        for name, out in self._ranges.items():
            lo = lows.pop(name, math.nan)
            hi = highs.pop(name, math.nan)
            out.append(None if math.isnan(lo) else signed_zeros(lo, hi))

    def rows(self, i: int) -> int:
        return sum(self._sizes[i])

    def _group_batches(self, i: int) -> list[pa.RecordBatch]:
        if self._cursor is None or self._cursor[0] > i:
            self._cursor = (0, complete_batches(self.path, warn=False))
        at, it = self._cursor
        for skipped in range(at, i):
            for _ in self._sizes[skipped]:
                next(it)
        got = [next(it) for _ in self._sizes[i]]
        self._cursor = (i + 1, it)
        return got

    def read(self, i: int, columns: Sequence[str]) -> pa.Table:
        table = pa.Table.from_batches(self._group_batches(i))
        return conform(self.path, table.select(list(dict.fromkeys(columns))), list(columns), True)

    def batches(self, i: int, columns: Sequence[str], rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        yield from self.read(i, columns).to_batches(rows)

    def ranges(self, column: str, *, read: bool = False) -> list[tuple[float, float] | None]:
        if column in self._ranges:
            return list(self._ranges[column])  # from the data: the first pass read them
        return ranges_by_reading(self, column)

    def has_values(self, column: str) -> bool:
        return values_by_reading(self, column)
