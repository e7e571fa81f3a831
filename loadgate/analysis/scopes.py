"""Counts per scope — overall, per requirement, per request and requirement — as the summary groups rows."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa

from loadgate.analysis.labels import split_ids


def scope_counts(table: pa.Table, mask: np.ndarray, weights: np.ndarray | None = None) -> Counter[Any]:
    """Rows of ``mask`` (or the sum of their ``weights``) per scope key: ``("overall",)``,
    ``("requirement", id)``, ``("request", type, name, id or None)``; a row names every requirement of
    its comma-joined label, as in :func:`loadgate.analysis.summary.summarize`."""
    out: Counter[Any] = Counter()
    if not mask.any():
        return out
    picked = _picked(table, mask)
    if weights is None:
        groups = picked.group_by(["request_type", "name", "requirement"]).aggregate([([], "count_all")])
        total = "count_all"
    else:
        picked = picked.append_column("w", pa.array(np.asarray(weights, np.float64)[mask]))
        groups = picked.group_by(["request_type", "name", "requirement"]).aggregate([("w", "sum")])
        total = "w_sum"
    for rt, nm, label, n in zip(
        *(groups.column(c).to_pylist() for c in ("request_type", "name", "requirement", total))
    ):
        for key in _keys(rt, nm, label):
            out[key] += n
    return out


def _picked(table: pa.Table, mask: np.ndarray) -> pa.Table:
    """The rows of ``mask``, their request type, name and requirement label. Dictionary columns stay
    dictionaries (no string copies), unified for grouping."""
    keep = pa.array(mask)
    return pa.table(
        {name: _labels(table, name).filter(keep) for name in ("request_type", "name", "requirement")}
    ).unify_dictionaries()


def _keys(request_type: str | None, name: str | None, label: str | None) -> list[tuple[Any, ...]]:
    """The scope keys a row counts in: overall, each requirement of its label, and its request per
    requirement (or with None when it has none)."""
    ids = split_ids(label)
    return [
        ("overall",),
        *(("requirement", rid) for rid in ids),
        *(("request", request_type or "", name or "", rid) for rid in ids or (None,)),
    ]


def _labels(table: pa.Table, name: str) -> pa.ChunkedArray:
    """A string column as it is (dictionary or plain); "" for a column the table lacks."""
    if name not in table.column_names:
        return pa.chunked_array([pa.array([""] * table.num_rows, pa.string())])
    return table.column(name)


def scope_histograms(
    table: pa.Table, mask: np.ndarray, bins: np.ndarray, size: int
) -> dict[tuple[Any, ...], np.ndarray]:
    """Per scope key (as :func:`scope_counts`), how many rows of ``mask`` fall in each of ``size`` bins
    (``bins``: each row's bin, 0..size-1)."""
    out: dict[tuple[Any, ...], np.ndarray] = {}
    if not mask.any():
        return out
    picked = _picked(table, mask).append_column("bin", pa.array(np.asarray(bins, np.int64)[mask]))
    groups = picked.group_by(["request_type", "name", "requirement", "bin"]).aggregate([([], "count_all")])
    for rt, nm, label, b, n in zip(
        *(groups.column(c).to_pylist() for c in ("request_type", "name", "requirement", "bin", "count_all"))
    ):
        for key in _keys(rt, nm, label):
            out.setdefault(key, np.zeros(size, np.int64))[b] += n
    return out
