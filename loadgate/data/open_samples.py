"""Any samples -> their :class:`~loadgate.data.sample_source.SampleSource`: the one place that tells a
Parquet file, a recorder's Arrow stream, Locust's CSV log and rows in memory apart."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from loadgate.data.row_groups import ParquetSource
from loadgate.data.sample_source import BATCH_ROWS, SampleSource
from loadgate.data.samples import read_samples
from loadgate.data.stream_source import STREAM_MAGIC, ArrowStreamSource
from loadgate.data.table_source import TableSource


def open_samples(samples: Any, columns: Sequence[str] | None = None, *, batch_rows: int = BATCH_ROWS) -> SampleSource:
    """The source of ``samples``: a SampleSource as it is; a pyarrow Table or pandas DataFrame in memory
    (one row group, in batches of ``batch_rows`` rows that keep the table's chunks, as the summaries of
    tables always summed them); a path to ``samples.parquet``, to a recorder's Arrow stream, or to
    Locust's CSV log (read whole, as ``columns`` with absent ones filled: it has no row groups).
    A missing or malformed file: ConfigError."""
    if isinstance(samples, (ParquetSource, TableSource, ArrowStreamSource)):
        return samples
    if isinstance(samples, pa.Table):
        return TableSource(samples, batch_rows=batch_rows)
    if type(samples).__name__ == "DataFrame" and hasattr(samples, "columns"):  # pandas, not imported for it
        return TableSource(pa.Table.from_pandas(samples, preserve_index=False), batch_rows=batch_rows)
    head = _head(samples)
    if head.startswith(b"PAR1"):
        return ParquetSource(samples)
    if head.startswith(STREAM_MAGIC):
        return ArrowStreamSource(samples)
    return TableSource(read_samples(samples, columns, dictionary=True), label=str(samples), batch_rows=batch_rows)


def _head(path: str | os.PathLike[str]) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(4)
    except OSError:
        return b""  # read_samples says what is wrong with it


def time_range(samples: SampleSource | Any) -> tuple[float, float] | None:
    """First and last timestamp of samples (NaN and nulls left out), or None without any."""
    ends = [r for r in open_samples(samples).ranges("timestamp") if r is not None]
    return (min(r[0] for r in ends), max(r[1] for r in ends)) if ends else None


def total_rows(source: SampleSource) -> int:
    return sum(source.rows(i) for i in range(source.count))
