"""report: the charts and error table of a Parquet file, streamed, equal those of the table in memory.

A soak run's report must not load its hundreds of millions of samples: ``load_samples`` hands a
Parquet file on as its path, and ``series``, ``curves`` and ``errors`` stream it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from loadgate.analysis.window import Window
from loadgate.data.samples import SCHEMA
from loadgate.outputs import charts

T0 = 1_764_000_000.0


def samples(n: int, seed: int = 3) -> pa.Table:
    rng = np.random.default_rng(seed)
    failed = rng.random(n) < 0.1
    names = rng.choice(["/a", "/b", "/c?<script>"], n)
    messages = np.where(rng.random(n) < 0.5, "boom", "timeout(<b>)")
    return pa.table(
        {
            "timestamp": pa.array(T0 + np.sort(rng.random(n)) * 40),
            "request_type": pa.array(["GET"] * n),
            "name": pa.array(names),
            "response_time_ms": pa.array(rng.lognormal(3, 1, n)),
            "response_length": pa.array([10] * n, pa.int64()),
            "status_code": pa.array([200] * n, pa.int32()),
            "success": pa.array(
                [None if f and m == "boom" and i % 7 == 0 else not f for i, (f, m) in enumerate(zip(failed, messages))],
                pa.bool_(),
            ),
            "exception": pa.array([m if f else None for f, m in zip(failed, messages)], pa.string()),
            "requirement": pa.array(rng.choice(["REQ-A-1", "REQ-B-2", "REQ-A-1,REQ-B-2"], n)),
            "worker": pa.array(["local"] * n),
            "users": pa.array(rng.integers(1, 9, n), pa.int32()),
            "user": pa.array(rng.integers(0, 8, n), pa.int32()),
            "intended_ms": pa.nulls(n, pa.float64()),
            "omitted": pa.nulls(n, pa.int32()),
            "period_ms": pa.nulls(n, pa.float64()),
        },
        schema=SCHEMA,
    )


def test_streamed_charts_and_errors_equal_the_in_memory_ones(tmp_path, monkeypatch):
    table = samples(5000)
    path = tmp_path / "samples.parquet"
    pq.write_table(table, path, row_group_size=333)
    loaded, note = charts.load_samples(str(path))
    assert note is None and loaded == str(path)  # not read: streamed by each consumer
    in_memory = table.select(list(charts.COLUMNS)).combine_chunks()
    run = {"start": T0 - 1, "end": T0 + 41, "ramp_up_done": T0 + 2}
    summary = {"window": {"start": T0 + 5, "end": T0 + 35}, "requirements": {"REQ-A-1": {}, "REQ-B-2": {}}}
    verdict = {"thresholds": []}
    for limit in (200, 2):
        assert charts.errors(loaded, summary["window"], limit) == charts.errors(in_memory, summary["window"], limit)
    assert charts.chart_data(loaded, run, summary, verdict) == charts.chart_data(in_memory, run, summary, verdict)
    monkeypatch.setattr(charts, "MAX_POINTS", 7)  # a soak's day of seconds, drawn in buckets
    streamed = charts.series(loaded, Window(T0, T0 + 40), T0)
    assert streamed == charts.series(in_memory, Window(T0, T0 + 40), T0) and streamed["bucket_s"] == 6


def test_a_parquet_file_without_rows_or_unreadable_is_a_note(tmp_path):
    path = tmp_path / "samples.parquet"
    pq.write_table(SCHEMA.empty_table(), path)
    assert charts.load_samples(str(path)) == (None, "samples.parquet holds no samples: no charts and no error table")
    path.write_bytes(b"PAR1 this is not parquet")
    table, note = charts.load_samples(str(path))
    assert table is None and "corrupt" in note
