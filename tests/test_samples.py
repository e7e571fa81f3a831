"""samples: the recorder stream -> Parquet (truncated tails, row groups, metadata), reading Parquet and
Locust's per-request CSV, and the exact error lines for bad files."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from unittest import mock

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loadgate.analysis.summary import summarize
from loadgate.data import samples
from loadgate.data.samples import SCHEMA, SCHEMA_ID, STREAM_SCHEMA, STRING_COLUMNS, finalize_stream, read_samples
from loadgate.errors import ConfigError, RunError

T0 = 1_764_000_000.0
EXPECTED = "expected a samples file written by 'loadgate run' or Locust's csv_request_logger"
# locust/contrib/csv_request_logger.py: CSV_COLUMNS, written with csv.writer, one row per request
LOCUST_CSV_COLUMNS = (
    "timestamp",
    "request_type",
    "name",
    "response_time_ms",
    "response_length",
    "status_code",
    "exception",
)


def batch(start: int, n: int, rng: np.random.Generator | None = None) -> pa.RecordBatch:
    """A recorder batch of n samples, rows numbered from ``start`` (timestamps slightly out of order)."""
    rng = rng or np.random.default_rng(start)
    i = np.arange(start, start + n)
    ok = i % 10 != 3
    return pa.record_batch(
        [
            pa.array(T0 + i / 100 + rng.random(n) / 1000),
            pa.array(np.where(i % 3, "GET", "POST")),
            pa.array([f"/api/{k % 4}" for k in i]),
            pa.array(rng.lognormal(3, 1, n)),
            pa.array(1000 + i % 7, pa.int64()),
            pa.array(np.where(ok, 200, 500), pa.int32()),
            pa.array(ok),
            pa.array([None if g else "HTTPError('500 Server Error')" for g in ok], pa.string()),
            pa.array(np.where(i % 5, "REQ-PERF-001", "REQ-PERF-001,REQ-PERF-002")),
            pa.array(["vm-1"] * n),
            pa.array(np.minimum(i, 100), pa.int32()),
            pa.array(i % 10, pa.int32()),
            pa.nulls(n, pa.float64()),
            pa.nulls(n, pa.int32()),
            pa.nulls(n, pa.float64()),
        ],
        schema=SCHEMA,
    )


def as_recorded(b: pa.RecordBatch, k: int) -> pa.RecordBatch:
    """``b`` as the recorder writes it (STREAM_SCHEMA): string columns coded over tables that change from
    batch to batch (``k``), with labels no row uses: the stream carries a replacement dictionary each time."""
    arrays = []
    for f in SCHEMA:
        column = b.column(f.name)
        if f.name in STRING_COLUMNS:
            values = column.to_pylist()
            labels = sorted({v for v in values if v is not None})
            labels = [f"unused-{k}", *labels[k % max(len(labels), 1) :], *labels[: k % max(len(labels), 1)]]
            if f.name == "exception" and k == 2:  # a null in a table: sorting batches together cannot unify it
                labels.append(None)
            column = pa.DictionaryArray.from_arrays(
                pa.array([None if v is None else labels.index(v) for v in values], pa.int32()), pa.array(labels)
            )
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=STREAM_SCHEMA)


def write_stream(path: Path, batches: list[pa.RecordBatch], close: bool = True, recorded: bool = False) -> list[int]:
    """Write an IPC stream as the recorder does (``recorded``: its dictionary-encoded batches, else those of
    an older recorder); return the file size after each batch."""
    sink = pa.OSFile(str(path), "wb")
    schema = STREAM_SCHEMA if recorded else SCHEMA
    writer = pa.ipc.new_stream(sink, schema, options=pa.ipc.IpcWriteOptions(compression="zstd"))
    sizes = [0]
    for k, b in enumerate(batches):
        writer.write_batch(as_recorded(b, k) if recorded else b)
        sizes.append(sink.tell())
    if close:
        writer.close()
    sink.close()
    return sizes


def sorted_rows(table: pa.Table) -> pa.Table:
    return table.sort_by([("timestamp", "ascending")])


def test_schema_is_the_contract():
    assert SCHEMA_ID == "loadgate.samples/2"
    assert [(f.name, str(f.type)) for f in SCHEMA] == [
        ("timestamp", "double"),
        ("request_type", "string"),
        ("name", "string"),
        ("response_time_ms", "double"),
        ("response_length", "int64"),
        ("status_code", "int32"),
        ("success", "bool"),
        ("exception", "string"),
        ("requirement", "string"),
        ("worker", "string"),
        ("users", "int32"),
        ("user", "int32"),
        ("intended_ms", "double"),
        ("omitted", "int32"),
        ("period_ms", "double"),
    ]


@pytest.mark.parametrize("recorded", [True, False])
def test_finalize_writes_all_rows_zstd_dictionary_metadata_and_large_row_groups(tmp_path, recorded):
    batches = [batch(k * 500, 500) for k in range(7)]
    write_stream(tmp_path / "s.arrows", batches, recorded=recorded)
    out = tmp_path / "samples.parquet"
    assert finalize_stream(tmp_path / "s.arrows", out) == 3500
    file = pq.ParquetFile(out)
    assert file.schema_arrow.metadata[b"loadgate.schema"] == b"loadgate.samples/2"
    assert file.metadata.num_row_groups == 1  # small batches are concatenated, not one row group each
    group = file.metadata.row_group(0)
    for i in range(group.num_columns):
        column = group.column(i)
        assert column.compression == "ZSTD"
        if column.path_in_schema in samples.STRING_COLUMNS:
            assert "RLE_DICTIONARY" in column.encodings or "PLAIN_DICTIONARY" in column.encodings
    table = read_samples(out)
    assert table.schema == SCHEMA.remove_metadata()
    assert sorted_rows(table).equals(sorted_rows(pa.Table.from_batches(batches)).cast(table.schema))
    assert table.column("timestamp").to_pylist() == sorted(table.column("timestamp").to_pylist())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.arrows", "samples.parquet"]


def test_finalize_streams_in_row_groups_of_fixed_size(tmp_path):
    write_stream(tmp_path / "s.arrows", [batch(k * 30, 30) for k in range(11)])
    with mock.patch.object(samples, "ROW_GROUP_ROWS", 100):
        assert finalize_stream(tmp_path / "s.arrows", tmp_path / "out.parquet") == 330
    meta = pq.ParquetFile(tmp_path / "out.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [100, 100, 100, 30]


@pytest.mark.parametrize("recorded", [True, False])
def test_finalize_keeps_complete_batches_of_a_stream_cut_anywhere(tmp_path, recorded):
    batches = [batch(k * 200, 200) for k in range(4)]
    stream = tmp_path / "full.arrows"
    sizes = write_stream(stream, batches, close=False, recorded=recorded)  # killed: no end-of-stream marker
    data = stream.read_bytes()
    last, before = sizes[-1], sizes[-2]
    cuts = sorted(
        {
            before,
            before + 1,
            before + 4,
            before + 8,
            (before + last) // 2,
            last - 1,
            last,
            sizes[1] - 1,
            sizes[1] + 3,
            100,
            5,
            0,
        }
    )
    for cut in cuts:
        (tmp_path / "cut.arrows").write_bytes(data[:cut])
        complete = sum(1 for s in sizes[1:] if s <= cut)
        rows = finalize_stream(tmp_path / "cut.arrows", tmp_path / "cut.parquet")
        assert rows == 200 * complete, cut
        table = pq.read_table(tmp_path / "cut.parquet")
        assert table.num_rows == rows and table.schema.remove_metadata() == SCHEMA.remove_metadata()
        if complete:
            expected = pa.Table.from_batches(batches[:complete])
            assert sorted_rows(table.cast(expected.schema)).equals(sorted_rows(expected))


def test_finalize_empty_and_header_only_streams_give_valid_zero_row_files(tmp_path):
    (tmp_path / "empty.arrows").write_bytes(b"")
    write_stream(tmp_path / "header.arrows", [])
    for name in ("empty.arrows", "header.arrows"):
        out = tmp_path / f"{name}.parquet"
        assert finalize_stream(tmp_path / name, out) == 0
        table = read_samples(out)
        assert table.num_rows == 0 and table.column_names == SCHEMA.names
        assert pq.ParquetFile(out).schema_arrow.metadata[b"loadgate.schema"] == SCHEMA_ID.encode()


def test_finalize_replaces_an_existing_file_and_missing_stream_is_a_run_error(tmp_path):
    out = tmp_path / "samples.parquet"
    out.write_bytes(b"old")
    write_stream(tmp_path / "s.arrows", [batch(0, 10)])
    assert finalize_stream(tmp_path / "s.arrows", out) == 10
    assert read_samples(out).num_rows == 10
    with pytest.raises(RunError, match="samples stream not found"):
        finalize_stream(tmp_path / "nope.arrows", out)
    assert read_samples(out).num_rows == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.arrows", "samples.parquet"]  # no temp left


def test_finalize_rejects_a_stream_of_another_schema(tmp_path):
    other = pa.schema([("timestamp", pa.float64())])
    with pa.OSFile(str(tmp_path / "s.arrows"), "wb") as sink, pa.ipc.new_stream(sink, other) as w:
        w.write_batch(pa.record_batch([pa.array([1.0])], schema=other))
    with pytest.raises(RunError, match="expected loadgate.samples/2"):
        finalize_stream(tmp_path / "s.arrows", tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


def test_realistic_samples_are_compact(tmp_path):
    """Bytes per sample on disk for a recorder-like stream (the 1M-sample figure is in the report)."""
    rng = np.random.default_rng(1)
    n = 100_000
    start = T0 + np.cumsum(rng.exponential(1e-4, n))
    names = np.array(["/api/users", "/api/users/[id]", "/api/orders", "/", "/login"], dtype=object)
    pick = rng.integers(0, 5, n)
    lat = rng.lognormal(np.log(0.02), 0.5, n)
    pc_start = 4321.0 + (start - T0)
    ok = rng.random(n) > 0.01
    table = pa.table(
        {
            "timestamp": start,
            "request_type": np.where(pick == 2, "POST", "GET"),
            "name": names[pick],
            "response_time_ms": ((pc_start + lat) - pc_start) * 1000,
            "response_length": np.where(ok, 1000 + pick * 17 + rng.integers(0, 40, n), 0),
            "status_code": np.where(ok, 200, 500).astype(np.int32),
            "success": ok,
            "exception": pa.array(np.where(ok, None, "HTTPError('500')"), pa.string()),
            "requirement": ["REQ-PERF-001"] * n,
            "worker": ["vm-1"] * n,
            "users": np.minimum(1000, np.arange(n) // 10).astype(np.int32),
            "user": (np.arange(n) % 1000).astype(np.int32),
            "intended_ms": pa.nulls(n, pa.float64()),
            "omitted": pa.nulls(n, pa.int32()),
            "period_ms": pa.nulls(n, pa.float64()),
        }
    ).cast(SCHEMA)
    order = np.argsort(start + lat, kind="stable")  # recorded when the response arrives
    write_stream(tmp_path / "s.arrows", table.take(order).to_batches(max_chunksize=10_000))
    finalize_stream(tmp_path / "s.arrows", tmp_path / "out.parquet")
    print(os.path.getsize(tmp_path / "out.parquet") / n)
    assert os.path.getsize(tmp_path / "out.parquet") / n < 11.0


# ---- reading ----------------------------------------------------------------------------------------


def test_read_columns_subset_order_and_dictionary(tmp_path):
    write_stream(tmp_path / "s.arrows", [batch(0, 50)])
    finalize_stream(tmp_path / "s.arrows", tmp_path / "s.parquet")
    table = read_samples(tmp_path / "s.parquet", ["success", "timestamp", "name"])
    assert table.column_names == ["success", "timestamp", "name"]
    encoded = read_samples(tmp_path / "s.parquet", dictionary=True)
    assert encoded.schema.field("name").type == pa.dictionary(pa.int32(), pa.string())
    assert encoded.column("name").cast(pa.string()).equals(read_samples(tmp_path / "s.parquet").column("name"))
    with pytest.raises(ValueError, match="unknown samples column"):
        read_samples(tmp_path / "s.parquet", ["nope"])


def test_parquet_without_metadata_but_right_columns_is_accepted_and_missing_columns_filled(tmp_path):
    path = tmp_path / "other.parquet"
    pq.write_table(
        pa.table(
            {
                "timestamp": [T0, T0 + 1],
                "request_type": ["GET", "GET"],
                "name": ["/", "/"],
                "response_time_ms": [1, 2],
                "success": [True, False],
            }
        ),
        path,
    )
    table = read_samples(path)
    assert table.schema == SCHEMA.remove_metadata()
    assert table.column("response_time_ms").to_pylist() == [1.0, 2.0]
    assert table.column("requirement").to_pylist() == ["", ""] and table.column("worker").to_pylist() == ["", ""]
    assert table.column("users").null_count == 2


def test_wrong_schema_version_is_a_config_error(tmp_path):
    path = tmp_path / "samples.parquet"
    table = pa.Table.from_batches([batch(0, 3)]).replace_schema_metadata({"loadgate.schema": "loadgate.samples/3"})
    pq.write_table(table, path)
    with pytest.raises(ConfigError) as err:
        read_samples(path)
    assert str(err.value) == (
        f"{path}: samples schema 'loadgate.samples/3' is not supported (this loadgate reads "
        "'loadgate.samples/1' and 'loadgate.samples/2'); use the loadgate version that wrote it"
    )


def test_a_schema_1_file_still_reads_with_the_new_columns_null(tmp_path):
    path = tmp_path / "samples.parquet"
    old = pa.Table.from_batches([batch(0, 3)]).select(SCHEMA.names[:11])
    pq.write_table(old.replace_schema_metadata({"loadgate.schema": "loadgate.samples/1"}), path)
    table = read_samples(path)
    assert table.num_rows == 3 and table.schema.names == SCHEMA.names
    for name in ("user", "intended_ms", "omitted", "period_ms"):
        assert table.column(name).null_count == 3


def test_missing_required_columns_are_named(tmp_path):
    path = tmp_path / "samples.parquet"
    pq.write_table(pa.table({"timestamp": [T0], "name": ["/"], "response_time_ms": [1.0]}), path)
    with pytest.raises(ConfigError) as err:
        read_samples(path)
    assert str(err.value) == (
        f"{path}: missing required column(s) request_type, success; a samples file needs "
        "timestamp, request_type, name, response_time_ms, success"
    )


def test_column_of_wrong_type_is_a_config_error(tmp_path):
    path = tmp_path / "samples.parquet"
    pq.write_table(
        pa.table(
            {
                "timestamp": ["yesterday"],
                "request_type": ["GET"],
                "name": ["/"],
                "response_time_ms": [1.0],
                "success": [True],
            }
        ),
        path,
    )
    with pytest.raises(ConfigError, match=r"column 'timestamp' has type string, expected double"):
        read_samples(path)


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"\x00\x01\x02garbage", "binary content starting b'\\x00\\x01\\x02garba'"),
        (b"Type,Name,Request Count,Failure Count\n", "first line 'Type,Name,Request Count,Failure Count'"),
        (b"hello world", "first line 'hello world'"),
    ],
)
def test_not_a_samples_file(tmp_path, content, reason):
    path = tmp_path / "samples.parquet"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        read_samples(path)
    assert str(err.value) == f"{path}: not a Parquet or Locust CSV file ({reason}); {EXPECTED}"


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(ConfigError) as err:
        read_samples(tmp_path / "nope.parquet")
    assert str(err.value) == f"{tmp_path / 'nope.parquet'}: no such file; {EXPECTED}"
    (tmp_path / "empty.parquet").write_bytes(b"")
    with pytest.raises(ConfigError) as err:
        read_samples(tmp_path / "empty.parquet")
    assert str(err.value) == f"{tmp_path / 'empty.parquet'}: empty file; {EXPECTED}"


def test_truncated_and_corrupt_parquet(tmp_path):
    write_stream(tmp_path / "s.arrows", [batch(0, 2000)])
    finalize_stream(tmp_path / "s.arrows", tmp_path / "s.parquet")
    data = (tmp_path / "s.parquet").read_bytes()
    path = tmp_path / "cut.parquet"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError) as err:
        read_samples(path)
    assert str(err.value) == (
        f"{path}: truncated or corrupt Parquet file (Parquet magic bytes not found in footer. Either the file is "
        "corrupted or this is not a parquet file.); it cannot be analysed — record the run again with "
        "'loadgate run'"
    )
    damaged = bytearray(data)
    damaged[100:400] = bytes(300)  # inside the first data page: caught by the page checksum
    path.write_bytes(bytes(damaged))
    with pytest.raises(ConfigError, match=r"truncated or corrupt Parquet file \(.*CRC checksum"):
        read_samples(path)


# ---- Locust's per-request CSV -----------------------------------------------------------------------


def write_locust_csv(path: Path, requests: list[dict]) -> None:
    """Exactly what CsvRequestLogger._on_request writes (without importing locust and its gevent patching)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(LOCUST_CSV_COLUMNS)
        for r in requests:
            exc = r.get("exception")
            rt = r["response_time"]
            writer.writerow(
                [
                    round(r["start_time"], 6),
                    r["request_type"],
                    r["name"],
                    round(rt, 2) if rt is not None else "",
                    r["response_length"],
                    r.get("status_code", 0 if exc is not None else 200),
                    str(exc) if exc is not None else "",
                ]
            )


LOCUST_REQUESTS = [
    {
        "start_time": T0 + 0.1234567,
        "request_type": "GET",
        "name": "/api/users",
        "response_time": 12.3456,
        "response_length": 512,
    },
    {
        "start_time": T0 + 1.5,
        "request_type": "POST",
        "name": '/api/orders, bulk "x"',
        "response_time": 40.0,
        "response_length": 0,
        "status_code": 500,
        "exception": RuntimeError("500 Server Error: boom, really"),
    },
    {
        "start_time": T0 + 2.0,
        "request_type": "GET",
        "name": "/api/users",
        "response_time": None,
        "response_length": 0,
        "exception": ConnectionRefusedError(111, "Connection refused"),
    },
    {"start_time": T0 + 3.0, "request_type": "GET", "name": "/api/users", "response_time": 7.0, "response_length": 512},
]


def test_read_locust_csv_maps_columns(tmp_path):
    path = tmp_path / "requests.csv"
    write_locust_csv(path, LOCUST_REQUESTS)
    table = read_samples(path)
    assert table.schema == SCHEMA.remove_metadata()
    assert table.column("timestamp").to_pylist() == [T0 + 0.123457, T0 + 1.5, T0 + 2.0, T0 + 3.0]
    assert table.column("name").to_pylist() == ["/api/users", '/api/orders, bulk "x"', "/api/users", "/api/users"]
    assert table.column("response_time_ms").to_pylist() == [12.35, 40.0, None, 7.0]
    assert table.column("success").to_pylist() == [True, False, False, True]
    assert table.column("exception").to_pylist() == [
        None,
        "500 Server Error: boom, really",
        "[Errno 111] Connection refused",
        None,
    ]
    assert table.column("status_code").to_pylist() == [200, 500, 0, 200]
    assert table.column("requirement").to_pylist() == [""] * 4 and table.column("worker").to_pylist() == [""] * 4
    assert table.column("users").null_count == 4
    encoded = read_samples(path, ["name", "exception", "success"], dictionary=True)
    assert encoded.column("exception").cast(pa.string()).to_pylist() == table.column("exception").to_pylist()
    assert encoded.column("success").to_pylist() == [True, False, False, True]


def test_locust_csv_with_a_line_cut_short_keeps_the_complete_ones(tmp_path):
    path = tmp_path / "requests.csv"
    write_locust_csv(path, LOCUST_REQUESTS)
    path.write_bytes(path.read_bytes() + b"1764000004.5,GET,/api/us")
    assert read_samples(path).num_rows == 4
    header_only = tmp_path / "header.csv"
    write_locust_csv(header_only, [])
    assert read_samples(header_only).num_rows == 0


def test_locust_csv_without_success_or_exception_names_the_missing_column(tmp_path):
    path = tmp_path / "requests.csv"
    path.write_text("timestamp,request_type,name,response_time_ms\n1764000000.0,GET,/,1.0\n")
    with pytest.raises(ConfigError) as err:
        read_samples(path)
    assert str(err.value) == (
        f"{path}: missing required column(s) success; a samples file needs "
        "timestamp, request_type, name, response_time_ms, success"
    )


def test_locust_csv_with_a_bad_row_is_a_config_error(tmp_path):
    path = tmp_path / "requests.csv"
    write_locust_csv(path, LOCUST_REQUESTS)
    path.write_bytes(path.read_bytes() + b"x,GET\n")
    with pytest.raises(ConfigError, match=r"^.*requests.csv: not a valid Locust CSV log \(.*\); expected a samples"):
        read_samples(path)


def test_analyze_a_locust_csv(tmp_path):
    path = tmp_path / "requests.csv"
    write_locust_csv(path, LOCUST_REQUESTS)
    s = summarize(read_samples(path, dictionary=True))
    assert s["requirements"] == {}
    assert [(e["request_type"], e["name"], e["requirement"], e["requests"]) for e in s["requests"]] == [
        ("GET", "/api/users", None, 3),
        ("POST", '/api/orders, bulk "x"', None, 1),
    ]
    assert (s["overall"]["requests"], s["overall"]["failures"]) == (4, 2)
    assert s["overall"]["response_time_ms"]["p50"] == np.percentile([12.35, 40.0, 7.0], 50)


def test_analysis_of_a_finalized_file_matches_numpy(tmp_path):
    batches = [batch(k * 1000, 1000) for k in range(5)]
    write_stream(tmp_path / "s.arrows", batches)
    with mock.patch.object(samples, "ROW_GROUP_ROWS", 1500):  # several row groups, each its own dictionary
        finalize_stream(tmp_path / "s.arrows", tmp_path / "s.parquet")
    s = summarize(read_samples(tmp_path / "s.parquet", dictionary=True))
    raw = pa.Table.from_batches(batches)
    x = raw.column("response_time_ms").to_numpy()
    req = np.array(raw.column("requirement").to_pylist())
    assert s["overall"]["response_time_ms"]["p99"] == np.percentile(x, 99)
    assert s["requirements"]["REQ-PERF-002"]["response_time_ms"]["p95"] == np.percentile(
        x[req == "REQ-PERF-001,REQ-PERF-002"], 95
    )
    assert s["requirements"]["REQ-PERF-001"]["requests"] == 5000
    assert s["series"]["users"][-1] == 100
