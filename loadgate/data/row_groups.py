"""A Parquet samples file read one row group at a time: the :class:`~loadgate.data.sample_source.SampleSource`
of ``samples.parquet``.

The whole-table reader (:func:`loadgate.data.samples.read_samples`) holds every row at once; this one
holds one row group (1M rows as ``loadgate run`` writes them), so a soak run's hundreds of millions of
samples are read in a few MB each. The row groups' min/max statistics say where each one lies in time
and in response time without reading it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from loadgate.data.arrowbuf import numpy_of
from loadgate.data.sample_source import BATCH_ROWS, signed_zeros, values_by_reading
from loadgate.data.samples import READABLE_SCHEMA_IDS, SCHEMA_KEY, STRING_COLUMNS, conform, require
from loadgate.errors import ConfigError


def is_parquet(path: str | os.PathLike[str]) -> bool:
    """True for a file that starts like Parquet (the streamed path); False for anything else (CSV...)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PAR1"
    except OSError:
        return False


class ParquetSource:
    """The row groups of a Parquet samples file, checked like :func:`read_samples` checks the whole file."""

    in_memory = False

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        with self._errors():
            plain = pq.ParquetFile(self.path, pre_buffer=False)
            names = plain.schema_arrow.names
            self.file = pq.ParquetFile(
                self.path,
                read_dictionary=[c for c in STRING_COLUMNS if c in names],
                page_checksum_verification=True,
                pre_buffer=False,
            )
        version = (self.file.schema_arrow.metadata or {}).get(SCHEMA_KEY)
        if version is not None and version.decode(errors="replace") not in READABLE_SCHEMA_IDS:
            raise ConfigError(
                f"{self.path}: samples schema {version.decode(errors='replace')!r} is not supported "
                f"(this loadgate reads {' and '.join(map(repr, READABLE_SCHEMA_IDS))}); "
                "use the loadgate version that wrote it"
            )
        require(self.path, names)
        self.names = names
        self.count = self.file.metadata.num_row_groups

    def rows(self, i: int) -> int:
        """Rows in row group ``i``."""
        n: int = self.file.metadata.row_group(i).num_rows
        return n

    def read(self, i: int, columns: Sequence[str]) -> pa.Table:
        """Row group ``i``'s ``columns`` in SCHEMA types, strings dictionary-encoded, absent ones filled."""
        with self._errors():
            table = self.file.read_row_group(i, columns=[c for c in columns if c in self.names], use_threads=True)
        return conform(self.path, table, list(columns), True)

    def batches(self, i: int, columns: Sequence[str], rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        """Row group ``i`` as batches of ``rows`` rows, typed as :meth:`read` types them.

        Decoded a batch at a time: at 10M samples, reading every row group whole peaked at +110 MB of
        RSS, in batches of 128k rows at +75 MB, and was no slower.
        """
        present = [c for c in columns if c in self.names]
        with self._errors():
            for batch in self.file.iter_batches(batch_size=rows, row_groups=[i], columns=present, use_threads=True):
                yield conform(self.path, pa.Table.from_batches([batch]), list(columns), True).to_batches()[0]

    def ranges(self, column: str, *, read: bool = False) -> list[tuple[float, float] | None]:
        """Per row group, the (min, max) of a float column, NaN and nulls left out; None where it has none.

        From the statistics where the writer kept them (loadgate's writer does), else (or with ``read``) by
        reading the column.
        """
        index = self.names.index(column) if column in self.names else None
        out: list[tuple[float, float] | None] = []
        for i in range(self.count):
            stats = None if index is None or read else self.file.metadata.row_group(i).column(index).statistics
            if stats is not None and stats.has_min_max:
                lo, hi = float(stats.min), float(stats.max)
                if not (math.isnan(lo) or math.isnan(hi)):
                    out.append((lo, hi))
                    continue
            values = numpy_of(self.read(i, [column]).column(0).combine_chunks(), np.nan)
            lo = float(np.fmin.reduce(values)) if values.size else math.nan
            out.append(None if math.isnan(lo) else signed_zeros(lo, float(np.fmax.reduce(values))))
        return out

    def has_values(self, column: str) -> bool:
        """Whether any row has a non-null ``column``: from the null counts of the statistics where kept."""
        if column not in self.names:
            return False
        at = self.names.index(column)
        for i in range(self.count):
            group = self.file.metadata.row_group(i)
            stats = group.column(at).statistics
            if stats is None or not stats.has_null_count:  # no statistics: read the column
                return values_by_reading(self, column)
            if stats.null_count < group.num_rows:
                return True
        return False

    def _errors(self) -> _ParquetErrors:
        return _ParquetErrors(self.path)


RowGroups = ParquetSource  # the name callers knew it by


class _ParquetErrors:
    """Turn Arrow's errors on a damaged file into the one clear ConfigError ``read_samples`` gives."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Literal[False]:
        if exc is not None and isinstance(exc, (pa.ArrowException, OSError)):
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(
                f"{self.path}: truncated or corrupt Parquet file ({reason}); it cannot be analysed — "
                f"record the run again with 'loadgate run'"
            ) from None
        return False
