"""Samples already in memory (a pyarrow Table) as a :class:`~loadgate.data.sample_source.SampleSource`."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa

from loadgate.data.sample_source import BATCH_ROWS, ranges_by_reading
from loadgate.data.samples import conform, require


class TableSource:
    """Samples in memory, as row groups of ``group_rows`` rows (slices: no copy of the table; default: one
    row group), handed out in batches of at most ``batch_rows`` rows that keep the table's own chunks."""

    in_memory = True

    def __init__(
        self, table: pa.Table, group_rows: int | None = None, label: str = "samples", *, batch_rows: int = BATCH_ROWS
    ) -> None:
        require(Path(label), table.column_names)
        self.table, self.label = table, Path(label)
        self.names = list(table.column_names)
        self.group_rows = max(1, table.num_rows if group_rows is None else group_rows)
        self.batch_rows = max(1, batch_rows)
        self.count = math.ceil(table.num_rows / self.group_rows)

    def rows(self, i: int) -> int:
        total: int = self.table.num_rows
        return min(self.group_rows, total - i * self.group_rows)

    def read(self, i: int, columns: Sequence[str]) -> pa.Table:
        part = self.table.slice(i * self.group_rows, self.group_rows)
        return conform(self.label, part.select([c for c in columns if c in self.names]), list(columns), True)

    def batches(self, i: int, columns: Sequence[str], rows: int | None = None) -> Iterator[pa.RecordBatch]:
        yield from self.read(i, columns).to_batches(self.batch_rows if rows is None else rows)

    def ranges(self, column: str, *, read: bool = False) -> list[tuple[float, float] | None]:
        return ranges_by_reading(self, column)  # in memory: no statistics to trust, and reading is cheap

    def has_values(self, column: str) -> bool:
        return column in self.names and self.table.column(column).null_count < self.table.num_rows
