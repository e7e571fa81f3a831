"""Counts per scope — overall, per requirement, per request and requirement — as the summary groups rows."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa

from loadgate.analysis.labels import split_ids


def scope_counts(table: pa.Table, mask: np.ndarray, weights: np.ndarray | None = None) -> Counter:
    """Rows of ``mask`` (or the sum of their ``weights``) per scope key: ``("overall",)``,
    ``("requirement", id)``, ``("request", type, name, id or None)``; a row names every requirement of
    its comma-joined label, as in :func:`loadgate.analysis.summary.summarize`."""
    out: Counter = Counter()
    if not mask.any():
        return out
    keep = pa.array(mask)  # dictionary columns stay dictionaries (no string copies), unified for grouping
    picked = pa.table({name: _labels(table, name).filter(keep) for name in
                       ("request_type", "name", "requirement")}).unify_dictionaries()
    if weights is None:
        groups = picked.group_by(["request_type", "name", "requirement"]).aggregate([([], "count_all")])
        total = "count_all"
    else:
        picked = picked.append_column("w", pa.array(np.asarray(weights, np.float64)[mask]))
        groups = picked.group_by(["request_type", "name", "requirement"]).aggregate([("w", "sum")])
        total = "w_sum"
    for rt, nm, label, n in zip(*(groups.column(c).to_pylist() for c in
                                  ("request_type", "name", "requirement", total))):
        ids = split_ids(label)
        out[("overall",)] += n
        for rid in ids:
            out[("requirement", rid)] += n
        for rid in ids or (None,):
            out[("request", rt or "", nm or "", rid)] += n
    return out


def _labels(table: pa.Table, name: str) -> pa.ChunkedArray:
    """A string column as it is (dictionary or plain); "" for a column the table lacks."""
    if name not in table.column_names:
        return pa.chunked_array([pa.array([""] * table.num_rows, pa.string())])
    return table.column(name)


def scope_histograms(table: pa.Table, mask: np.ndarray, bins: np.ndarray, size: int) -> dict[tuple, np.ndarray]:
    """Per scope key (as :func:`scope_counts`), how many rows of ``mask`` fall in each of ``size`` bins
    (``bins``: each row's bin, 0..size-1)."""
    out: dict[tuple, np.ndarray] = {}
    if not mask.any():
        return out
    keep = pa.array(mask)
    picked = pa.table({name: _labels(table, name).filter(keep) for name in
                       ("request_type", "name", "requirement")}).unify_dictionaries()
    picked = picked.append_column("bin", pa.array(np.asarray(bins, np.int64)[mask]))
    groups = picked.group_by(["request_type", "name", "requirement", "bin"]).aggregate([([], "count_all")])
    for rt, nm, label, b, n in zip(*(groups.column(c).to_pylist() for c in
                                     ("request_type", "name", "requirement", "bin", "count_all"))):
        ids = split_ids(label)
        keys = [("overall",), *(("requirement", rid) for rid in ids),
                *(("request", rt or "", nm or "", rid) for rid in ids or (None,))]
        for key in keys:
            out.setdefault(key, np.zeros(size, np.int64))[b] += n
    return out
