"""Samples as row groups: the one interface the analysis reads, whatever holds the samples.

A :class:`SampleSource` is a sequence of row groups, each read alone (so memory grows with a row
group, never with the samples), typed as :func:`loadgate.data.samples.read_samples` types a file
(strings dictionary-encoded, absent columns filled), with each row group's (min, max) of a float
column known without reading it where the storage keeps statistics. Three kinds:

- :class:`loadgate.data.row_groups.ParquetSource`: ``samples.parquet`` (the statistics from its footer);
- :class:`loadgate.data.stream_source.ArrowStreamSource`: the recorder's ``samples.arrows``, as a run
  leaves it before finalising (or after a full disk kept it from being finalised);
- :class:`loadgate.data.table_source.TableSource`: rows already in memory (a pyarrow Table, a pandas
  DataFrame, Locust's CSV log).

:func:`loadgate.data.open_samples.open_samples` is the one place that tells them apart.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np
import pyarrow as pa

from loadgate.data.arrowbuf import numpy_of

BATCH_ROWS = 1 << 17  # rows of a batch handed to the analysis: bounds its temporary arrays


class SampleSource(Protocol):
    """Row groups of samples. ``names``: the columns held (others read as filled); ``count``: row groups."""

    names: list[str]
    count: int
    in_memory: bool  # the rows are held already (no scratch files beside them)

    def rows(self, i: int) -> int:
        """Rows in row group ``i``."""

    def read(self, i: int, columns: Sequence[str]) -> pa.Table:
        """Row group ``i``'s ``columns`` in SCHEMA types, strings dictionary-encoded, absent ones filled."""

    def batches(self, i: int, columns: Sequence[str], rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        """Row group ``i`` as batches of at most ``rows`` rows, typed as :meth:`read` types them."""

    def ranges(self, column: str, *, read: bool = False) -> list[tuple[float, float] | None]:
        """Per row group, (min, max) of a float column, NaN and nulls left out; None where it has none
        (``read``: from the data, not from statistics)."""

    def has_values(self, column: str) -> bool:
        """Whether any row has a non-null ``column`` (from statistics where kept)."""


def values_by_reading(source: SampleSource, column: str) -> bool:
    """:meth:`SampleSource.has_values` of any source, by reading the column of each row group."""
    return any(source.read(i, [column]).column(0).null_count < source.rows(i) for i in range(source.count))


def ranges_by_reading(source: SampleSource, column: str) -> list[tuple[float, float] | None]:
    """:meth:`SampleSource.ranges` of any source, by reading the column of each row group."""
    out: list[tuple[float, float] | None] = []
    for i in range(source.count):
        values = numpy_of(source.read(i, [column]).column(0).combine_chunks(), np.nan)
        lo = float(np.fmin.reduce(values)) if values.size else math.nan
        out.append(None if math.isnan(lo) else signed_zeros(lo, float(np.fmax.reduce(values))))
    return out


def signed_zeros(lo: float, hi: float) -> tuple[float, float]:
    """(lo, hi) with a zero end widened to the zero of its side: min/max do not tell -0.0 from 0.0, and
    the analysis orders -0.0 before 0.0 (a range must hold both if the data may)."""
    return (-0.0 if lo == 0 else lo), (0.0 if hi == 0 else hi)
