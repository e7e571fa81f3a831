"""The columns an importer yields: the samples schema plus the tool's ``group`` and ``scenario`` tags."""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from loadgate.data.samples import SCHEMA

TAG_COLUMNS = ("group", "scenario")  # kept in samples.parquet beside SCHEMA's columns (analyze, notebooks)
IMPORT_SCHEMA = pa.schema([*SCHEMA, *(pa.field(c, pa.string()) for c in TAG_COLUMNS)], metadata=SCHEMA.metadata)


def import_batch(columns: Mapping[str, pa.Array], rows: int) -> pa.RecordBatch:
    """A batch of IMPORT_SCHEMA from ``columns`` (cast to its types); absent ones null, requirement and
    worker ``""`` as in a Locust run's samples."""
    arrays = []
    for f in IMPORT_SCHEMA:
        value = columns.get(f.name)
        if value is None:
            fill = "" if f.name in ("requirement", "worker") else None
            value = pa.repeat(pa.scalar(fill, f.type), rows)
        arrays.append(value.cast(f.type) if value.type != f.type else value)
    return pa.RecordBatch.from_arrays(arrays, schema=IMPORT_SCHEMA)
