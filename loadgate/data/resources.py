"""``resources.parquet``: the resource series of the system under test (schema ``loadgate.resources/1``).

One row per scraped point: ``timestamp`` (Unix s), ``source`` (``local`` or ``prometheus``), ``metric``
(cpu, memory, disk, promql), ``query`` (the PromQL, or what loadgate sampled), ``series`` (the series'
labels as text) and ``value``. Locally sampled rows are written while the run goes; Prometheus rows are
added when the run is gated, so a re-gate replaces them and keeps the local ones.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

FILE = "resources.parquet"
SCHEMA_NAME = "loadgate.resources/1"
SCHEMA = pa.schema(
    [
        ("timestamp", pa.float64()),
        ("source", pa.string()),
        ("metric", pa.string()),
        ("query", pa.string()),
        ("series", pa.string()),
        ("value", pa.float64()),
    ],
    metadata={b"loadgate.schema": SCHEMA_NAME.encode()},
)
Row = tuple[float, str, str, str, str, float]


def path_of(run_dir: str) -> str:
    return os.path.join(run_dir, FILE)


def read_rows(run_dir: str) -> list[Row]:
    """Every row of the run's ``resources.parquet``; none when there is no such file."""
    path = path_of(run_dir)
    if not os.path.exists(path):
        return []
    table = pq.read_table(path)
    cols = [table.column(name).to_pylist() for name in SCHEMA.names]
    return list(zip(*cols))


def write_rows(run_dir: str, rows: Iterable[Row], *, replace_source: str | None = None) -> int:
    """Write ``rows`` into the run's ``resources.parquet``, keeping the rows already there except those
    of ``replace_source``; atomically (a temp file renamed), so a crash never leaves half a file."""
    kept = [r for r in read_rows(run_dir) if replace_source is None or r[1] != replace_source]
    every: Sequence[Row] = kept + list(rows)
    columns: Sequence[Sequence[Any]] = list(zip(*every)) if every else [[] for _ in SCHEMA.names]
    table = pa.table([pa.array(list(c), type=f.type) for c, f in zip(columns, SCHEMA)], schema=SCHEMA)
    path = path_of(run_dir)
    tmp = path + ".tmp"
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
    return len(every)
