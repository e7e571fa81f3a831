"""Group codes: the string columns as integer labels, and their combinations compacted to dense ids."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from loadgate.data.arrowbuf import numpy_of

_KEEP_CODES_BELOW = 1 << 12  # fewer (request_type, name, requirement) combinations: codes are group ids


def compact(parts: list[np.ndarray], size: int, seen: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """The distinct values (< size) of integer chunks, in order, their group ids, and the number of ids.

    Few possible values: each value is its own id (no rewrite). Else the chunks are rewritten in place
    as dense ids 0..k-1. ``seen``: which values occur, if known.
    """
    if size <= 1 << 22:
        if seen is None:
            seen = np.zeros(size, bool)
            for part in parts:
                seen[part] = True
        distinct = np.flatnonzero(seen)
        if size <= _KEEP_CODES_BELOW:  # empty groups cost only histogram cells: cheaper than a rewrite
            return distinct, distinct, size
        remap = np.zeros(size, parts[0].dtype if parts else np.int64)
        remap[distinct] = np.arange(distinct.size)
        for part in parts:
            part[:] = remap[part]
        return distinct, np.arange(distinct.size), distinct.size
    distinct = np.unique(np.concatenate([np.unique(part) for part in parts] + [np.zeros(0, np.int64)]))
    for part in parts:
        part[:] = np.searchsorted(distinct, part)
    return distinct, np.arange(distinct.size), distinct.size


def conformed(table: pa.Table) -> pa.Table:
    """The columns analysis reads, in fixed types; strings dictionary-encoded (per chunk)."""
    def typed(name: str, to: pa.DataType) -> pa.ChunkedArray:
        column = table.column(name)
        return column if column.type == to else column.cast(to)  # cast imports pyarrow.compute: only if needed

    columns = {"timestamp": typed("timestamp", pa.float64()), "response_time_ms": typed("response_time_ms", pa.float64()),
               "success": typed("success", pa.bool_())}
    if "users" in table.column_names:
        columns["users"] = typed("users", pa.int32())
    for name in ("request_type", "name", "requirement"):
        if name in table.column_names:
            column = table.column(name)
            if not pa.types.is_dictionary(column.type):
                import pyarrow.compute as pc

                column = pc.dictionary_encode(column)
            columns[name] = column
    return pa.table(columns)


_SMALL_DICTIONARY = 1 << 16  # strings matched in Python below this (no pyarrow.compute import: 40 ms)


class Labels:
    """The distinct strings of a dictionary column over all chunks; a trailing None labels nulls.

    Each chunk may have its own dictionary (one per Parquet row group): ``codes`` translates.
    An absent column (Locust's CSV has no requirement) has the single label "".
    """

    def __init__(self, table: pa.Table, name: str) -> None:
        self.name, self.present, self.labels = name, name in table.column_names, [""]
        self.index: dict[str, int] | None = None  # label -> code, when the dictionaries are small
        self.values: pa.Array | None = None  # else the labels as an array, for pyarrow.compute
        if self.present:
            dictionaries = [c.dictionary for c in table.column(name).chunks] or [pa.array([], pa.string())]
            if sum(len(d) for d in dictionaries) <= _SMALL_DICTIONARY:
                distinct = dict.fromkeys(v for d in dictionaries for v in d.to_pylist() if v is not None)
                self.index = {v: i for i, v in enumerate(distinct)}
                self.labels = [*distinct, None]
            else:
                import pyarrow.compute as pc

                self.values = pc.unique(pa.chunked_array(dictionaries, dictionaries[0].type)).drop_null()
                self.labels = self.values.to_pylist() + [None]

    def codes(self, batch: pa.RecordBatch) -> np.ndarray:
        """Label codes of a batch's rows (its dictionary indices themselves when they agree)."""
        if not self.present:
            return np.zeros(batch.num_rows, np.int32)
        column = batch.column(self.name)
        null = len(self.labels) - 1
        if self.index is not None:  # a batch's dictionary is one of the table's: small too
            table = np.array([self.index.get(v, null) for v in column.dictionary.to_pylist()], np.int64)
        else:
            import pyarrow.compute as pc

            table = numpy_of(pc.index_in(column.dictionary, value_set=self.values), null)
        indices = numpy_of(column.indices, len(column.dictionary))
        if np.array_equal(table, np.arange(len(table))) and not column.null_count:
            return indices
        # A null index points just past the dictionary. take: a third of the time of [...] with int32 indices.
        return np.take(np.append(table, null).astype(indices.dtype), indices)


def split_ids(label: str | None) -> tuple[str, ...]:
    """Requirement IDs of a comma-joined label, each once."""
    return tuple(dict.fromkeys(p.strip() for p in (label or "").split(",") if p.strip()))
