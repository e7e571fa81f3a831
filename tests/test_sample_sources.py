"""data: every SampleSource holds the same samples and gives the same summary.

The same rows as a Parquet file (row groups of a few rows, in time order or shuffled), as the recorder's
Arrow stream (batches of a few rows, grouped into row groups of another size), as a pyarrow Table and as a
pandas DataFrame: each source reads back the rows, says the same time range, and the one engine gives the
same summary from each (its means to the last few bits: a float sum in another order), every percentile
and per-second bucket numpy's on the same rows.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadgate.analysis.schedule import SCHEDULE_COLUMNS, with_schedule
from loadgate.analysis.summary import COLUMNS, DEFAULT_PERCENTILES, summarize
from loadgate.analysis.window import Window
from loadgate.data.open_samples import open_samples, time_range, total_rows
from loadgate.data.row_groups import ParquetSource
from loadgate.data.samples import SCHEMA, STREAM_SCHEMA, conform
from loadgate.data.stream_source import ArrowStreamSource
from loadgate.data.table_source import TableSource
from loadgate.errors import ConfigError

sys.path.insert(0, str(Path(__file__).parent))
from test_analysis import REQ_LABELS, T0, check_series, make_table  # noqa: E402
from test_analysis_stream import assert_same_as_numpy, draw, stream_kind, write  # noqa: E402


def full_table(table: pa.Table) -> pa.Table:
    """``table`` with every SCHEMA column (absent ones filled), as the recorder's stream holds them."""
    return conform(Path("t"), table, list(SCHEMA.names), False).replace_schema_metadata(SCHEMA.metadata)


def write_stream(path: Path, table: pa.Table, rows_per_batch: int) -> None:
    """``table`` as a recorder's Arrow stream (STREAM_SCHEMA: dictionary strings) in batches of that many rows."""
    coded = conform(Path("t"), table, list(SCHEMA.names), True).replace_schema_metadata(SCHEMA.metadata)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, STREAM_SCHEMA) as writer:
        for batch in coded.to_batches(max(1, rows_per_batch)):
            writer.write_batch(batch.cast(STREAM_SCHEMA) if batch.schema != STREAM_SCHEMA else batch)


def rows_of(source) -> pa.Table:
    """Every row of a source (analysis columns, strings decoded) in its row groups' order."""
    parts = [source.read(i, list(COLUMNS)) for i in range(source.count)]
    table = pa.concat_tables(parts) if parts else conform(Path("t"), SCHEMA.empty_table(), list(COLUMNS), True)
    return pa.table({name: table.column(name).cast(SCHEMA.field(name).type) for name in COLUMNS})


_TIMES = ("response_time_ms", "intended_response_time_ms")


def summaries_agree(a: dict, b: dict) -> None:
    """Equal but for the means' last bits (a float sum in another order)."""
    assert _no_means(a) == _no_means(b)
    assert len(_means(a)) == len(_means(b))
    for x, y in zip(_means(a), _means(b)):
        assert x == y or math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-300) or not np.isfinite(x)


def _scopes(summary: dict) -> list[dict]:
    return [summary["overall"], *summary["requirements"].values(), *summary["requests"]]


def _no_means(summary: dict) -> dict:
    out = dict(summary)
    strip = lambda stats: {
        k: ({m: v for m, v in stats[k].items() if m != "mean"} if k in _TIMES and stats[k] else stats[k]) for k in stats
    }  # noqa: E731
    out["overall"] = strip(summary["overall"])
    out["requirements"] = {k: strip(v) for k, v in summary["requirements"].items()}
    out["requests"] = [strip(v) for v in summary["requests"]]
    return out


def _means(summary: dict) -> list:
    return [s[k]["mean"] for s in _scopes(summary) for k in _TIMES if s.get(k) and s[k]["mean"] is not None]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(0, 800),
    seed=st.integers(0, 2**32 - 1),
    kind=stream_kind,
    rows_per_group=st.sampled_from([1, 7, 300, 1 << 20]),
    rows_per_batch=st.sampled_from([1, 5, 256]),
    group_rows=st.sampled_from([1, 9, 1 << 20]),
    order=st.sampled_from(["time", "shuffled"]),
    cut=st.sampled_from(["none", "inside"]),
)
def test_every_source_holds_the_same_rows_and_gives_the_same_summary(
    tmp_path, n, seed, kind, rows_per_group, rows_per_batch, group_rows, order, cut
):
    rng = np.random.default_rng(seed)
    ts = T0 + np.sort(np.round(rng.random(n) * 30, 3))
    rt, name = rng.choice(["GET", "POST"], n).tolist(), rng.choice(["/a", "/b", "/c"], n).tolist()
    req = rng.choice(REQ_LABELS, n).tolist()
    value, ok, users = draw(kind, n, rng), rng.random(n) > 0.2, rng.integers(0, 40, n)
    table = full_table(make_table(ts, rt, name, value, ok, req, users=users))
    parquet, stream = tmp_path / f"s{seed}.parquet", tmp_path / f"s{seed}.arrows"
    write(parquet, table, rows_per_group, order)
    write_stream(stream, table, rows_per_batch)
    sources = {
        "parquet": open_samples(parquet),
        "stream": ArrowStreamSource(stream, group_rows),
        "table": TableSource(table, group_rows),
        "opened stream": open_samples(stream),
    }
    assert isinstance(sources["parquet"], ParquetSource) and isinstance(sources["opened stream"], ArrowStreamSource)

    expected_rows = rows_of(TableSource(table))
    for label, source in sources.items():
        assert total_rows(source) == n, label
        got = rows_of(source)
        if label == "parquet" and order == "shuffled":  # the same rows, in another order
            key = [(column, "ascending") for column in COLUMNS]
            got, want = got.sort_by(key), expected_rows.sort_by(key)
        else:
            want = expected_rows
        assert got.equals(want), label
        assert time_range(source) == (None if n == 0 else (float(ts.min()), float(ts.max()))), label

    window = None
    if cut == "inside" and n:
        lo, hi = float(ts.min()), float(ts.max())
        window = Window(lo + (hi - lo) / 4, hi - (hi - lo) / 3)
    base = summarize(table, window)
    if n:
        assert_same_as_numpy(
            base,
            ts,
            rt,
            name,
            value,
            ok,
            req,
            window or Window(float(ts.min()), float(ts.max())),
            DEFAULT_PERCENTILES,
            users,
        )
    for _label, source in [*sources.items(), ("pandas", table.to_pandas())]:
        summaries_agree(summarize(source, window), base)


def test_the_schedule_and_stalls_are_the_same_from_every_source(tmp_path):
    """Paced rows (intended latencies, omitted slots) through with_schedule: the file's scratch-file path
    and the in-memory path agree, from Parquet, the Arrow stream and the table."""
    rng = np.random.default_rng(3)
    n = 600
    ts = T0 + np.sort(rng.random(n) * 20)
    value = rng.lognormal(3, 0.5, n)
    table = make_table(
        ts,
        ["GET"] * n,
        rng.choice(["/a", "/b"], n).tolist(),
        value,
        rng.random(n) > 0.1,
        rng.choice(REQ_LABELS, n).tolist(),
        users=np.full(n, 4),
    )
    extra = {
        "user": pa.array(rng.integers(0, 4, n), pa.int32()),
        "worker": pa.array(["local"] * n),
        "period_ms": pa.array(np.full(n, 500.0)),
        "intended_ms": pa.array(value + rng.random(n) * 50),
        "omitted": pa.array(np.where(rng.random(n) < 0.3, rng.integers(0, 3, n), -1), pa.int32()),
    }
    for key, column in extra.items():
        if key == "omitted":
            column = pa.array([None if v < 0 else int(v) for v in column.to_pylist()], pa.int32())
        table = table.append_column(key, column)
    table = full_table(table)
    parquet, stream = tmp_path / "s.parquet", tmp_path / "s.arrows"
    write(parquet, table, 97, "time")
    write_stream(stream, table, 50)
    window = Window(T0 + 2, T0 + 18)
    got = {}
    for label, samples in {"parquet": str(parquet), "stream": stream, "table": table}.items():
        source = open_samples(samples, [*COLUMNS, *SCHEDULE_COLUMNS])
        got[label] = with_schedule(summarize(source, window), source, window)
    assert got["table"]["overall"]["paced_requests"] > 0
    assert got["table"]["overall"]["intended_response_time_ms"]["p99"] is not None
    for label in ("parquet", "stream"):
        summaries_agree(got[label], got["table"])
        assert got[label]["series"] == got["table"]["series"]
        assert got[label]["stalls"] == got["table"]["stalls"]
    assert not list(tmp_path.glob(".loadgate-intended-*"))  # the scratch file is removed


def test_a_row_group_that_goes_back_in_time_after_an_ordered_batch_keeps_its_series_exact():
    """The first batch of a row group in time order, the next one going back before a second already done:
    every second is computed again by reading (the rows of the earlier second are not lost)."""
    ts = np.array([T0 + 5.5, T0 + 0.5, T0 + 3.2, T0 + 0.7])
    value, ok, req = np.array([4.0, 1.0, 3.0, 2.0]), np.ones(4, bool), ["REQ-A-1"] * 4
    table = make_table(ts, ["GET"] * 4, ["/"] * 4, value, ok, req, users=[1, 2, 3, 4], batches=2)
    summary = summarize(table)
    check_series(summary, ts, value, ok, req, Window(float(ts.min()), float(ts.max())), [1, 2, 3, 4])


def test_open_samples_says_what_is_wrong_with_a_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        open_samples(tmp_path / "nope.parquet")
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\x00\x01garbage")
    with pytest.raises(ConfigError, match="not a Parquet or Locust CSV file"):
        open_samples(bad)
    empty_stream = tmp_path / "empty.arrows"
    with pa.OSFile(str(empty_stream), "wb") as sink, pa.ipc.new_stream(sink, STREAM_SCHEMA):
        pass
    source = open_samples(empty_stream)
    assert source.count == 0 and time_range(source) is None
    assert summarize(source)["overall"]["requests"] == 0
