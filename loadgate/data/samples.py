"""The samples file (schema ``loadgate.samples/2``): its schema, finalizing the recorder's stream, reading.

Schema 2 adds, per request, the user that sent it and, for paced users, its latency from the schedule
(``intended_ms``), the slots its iteration skipped (``omitted``, on an iteration's first request) and
the user's pacing ``period_ms``. Files of schema 1 are still read: the added columns are null there.

The recorder appends record batches of :data:`STREAM_SCHEMA` to an Arrow IPC stream while the run goes;
:func:`finalize_stream` turns that stream into ``samples.parquet``; :func:`read_samples` reads it back
(or Locust's per-request CSV log from ``locust.contrib.csv_request_logger``) for analysis.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from loadgate.errors import ConfigError, RunError

log = logging.getLogger(__name__)

SCHEMA_ID = "loadgate.samples/2"
READABLE_SCHEMA_IDS = ("loadgate.samples/1", SCHEMA_ID)
SCHEMA_KEY = b"loadgate.schema"

# All fields nullable: a stray null from the recorder must not make the whole run unwritable
# (Parquet refuses nulls in a non-nullable field at finalize time). Only `exception` is null in practice.
SCHEMA = pa.schema(
    [
        pa.field("timestamp", pa.float64()),
        pa.field("request_type", pa.string()),
        pa.field("name", pa.string()),
        pa.field("response_time_ms", pa.float64()),
        pa.field("response_length", pa.int64()),
        pa.field("status_code", pa.int32()),
        pa.field("success", pa.bool_()),
        pa.field("exception", pa.string()),
        pa.field("requirement", pa.string()),
        pa.field("worker", pa.string()),
        pa.field("users", pa.int32()),
        pa.field("user", pa.int32()),  # the user's number within its worker; null: not from a user
        pa.field("intended_ms", pa.float64()),  # paced users: latency from the iteration's scheduled start
        pa.field("omitted", pa.int32()),  # an iteration's first request: schedule slots skipped before it
        pa.field("period_ms", pa.float64()),  # paced users: the pacing period; null: unpaced
    ],
    metadata={SCHEMA_KEY: SCHEMA_ID.encode()},
)
REQUIRED_COLUMNS = ("timestamp", "request_type", "name", "response_time_ms", "success")
STRING_COLUMNS = ("request_type", "name", "exception", "requirement", "worker")
DICTIONARY_TYPE = pa.dictionary(pa.int32(), pa.string())
# The recorder's stream: SCHEMA with its string columns dictionary-encoded. A batch's strings are the
# recorder's code tables (a handful of names), its rows their codes, as packed per request: nothing to
# gather per row on the generator's loop, and ~16 bytes a row less to compress and write. A stream
# of SCHEMA (an older recorder's) reads the same; samples.parquet has SCHEMA.
STREAM_SCHEMA = pa.schema(
    [pa.field(f.name, DICTIONARY_TYPE) if f.name in STRING_COLUMNS else f for f in SCHEMA], metadata=SCHEMA.metadata
)
# Columns absent from a file (e.g. Locust's CSV) are filled: IDs with "" (= none), the rest with null.
_FILL_EMPTY = ("requirement", "worker")

ROW_GROUP_ROWS = 1 << 20
_EXPECTED = "expected a samples file written by 'loadgate run' or Locust's csv_request_logger"
_LOCUST_CSV_MARKERS = ("timestamp", "request_type", "name", "response_time_ms")


def finalize_stream(stream_path: str | os.PathLike[str], parquet_path: str | os.PathLike[str]) -> int:
    """Write every complete batch of the recorder's IPC stream to Parquet, atomically; return the row count.

    A stream cut short (Locust killed mid-batch, no end-of-stream marker) keeps the batches before the cut.
    Rows are sorted by timestamp within each row group (values untouched): near-sorted timestamps
    compress better and make a row group's timestamp statistics useful.
    """
    stream_path, parquet_path = Path(stream_path), Path(parquet_path)
    tmp = parquet_path.with_name(f".{parquet_path.name}.{os.getpid()}.tmp")
    rows = 0
    try:
        with pq.ParquetWriter(tmp, SCHEMA, **_PARQUET_OPTIONS) as writer:
            pending: list[pa.RecordBatch] = []
            pending_rows = 0
            for batch in complete_batches(stream_path):
                pending.append(batch)
                pending_rows += batch.num_rows
                while pending_rows >= ROW_GROUP_ROWS:
                    table = pa.Table.from_batches(pending)
                    rows += _write_row_group(writer, table.slice(0, ROW_GROUP_ROWS))
                    rest = table.slice(ROW_GROUP_ROWS)
                    pending, pending_rows = rest.to_batches(), rest.num_rows
            if pending_rows:
                rows += _write_row_group(writer, pa.Table.from_batches(pending))
        os.replace(tmp, parquet_path)
    finally:
        tmp.unlink(missing_ok=True)
    return rows


# On a recorder-like 1M-sample stream: plain zstd 12.5 bytes/sample; rows in timestamp order 11.2;
# byte-stream-split floats 10.6; dictionary pages for the few-valued integers too 9.9. Higher zstd
# levels gained nothing measurable. The response time (~6 bytes of mantissa noise) dominates.
_PARQUET_OPTIONS = dict(
    compression="zstd",
    use_dictionary=[*STRING_COLUMNS, "response_length", "status_code", "users", "user", "omitted", "period_ms"],
    use_byte_stream_split=["timestamp", "response_time_ms", "intended_ms"],
    write_statistics=True,
    write_page_checksum=True,  # a damaged file must fail loudly, not yield shifted timestamps
)


def _write_row_group(writer: pq.ParquetWriter, table: pa.Table) -> int:
    """Write one row group, rows in timestamp order."""
    import pyarrow.compute as pc

    order = pc.sort_indices(table, [("timestamp", "ascending")])
    try:  # a stream's string columns move as codes, then are decoded: one gather of the strings, not two
        table = table.take(order).cast(SCHEMA)
    except pa.ArrowInvalid:  # dictionaries Arrow cannot unify (a null among the strings of a coded column)
        table = table.cast(SCHEMA).take(order)
    writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
    written: int = table.num_rows
    return written


def complete_batches(path: Path, warn: bool = True) -> Iterator[pa.RecordBatch]:
    """Yield the stream's complete batches; stop at a truncated or garbled tail (``warn``: saying so)."""
    try:
        source = pa.OSFile(str(path), "rb")
    except FileNotFoundError:
        raise RunError(
            f"{path}: samples stream not found; the recorder did not start — check the Locust output above"
        ) from None
    with source:
        try:
            reader = pa.ipc.open_stream(source)
        except (pa.ArrowException, OSError):
            return  # empty file or a header cut short: no samples were recorded
        if reader.schema.names != SCHEMA.names or reader.schema.types not in (SCHEMA.types, STREAM_SCHEMA.types):
            raise RunError(
                f"{path}: samples stream has schema {reader.schema.names} with types "
                f"{[str(t) for t in reader.schema.types]}; expected {SCHEMA_ID} ({SCHEMA.names})"
            )
        read = 0
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (pa.ArrowException, OSError) as exc:
                if warn:
                    log.warning("%s: stream ends mid-batch (%s); keeping the %d rows before it", path, exc, read)
                return
            read += batch.num_rows
            yield batch


def stream_rows(path: str | os.PathLike[str]) -> int:
    """The rows in the complete batches of a recorder stream: what a finalize would keep (and has said)."""
    return sum(batch.num_rows for batch in complete_batches(Path(path), warn=False))


def read_stream(path: str | os.PathLike[str], columns: Sequence[str], *, dictionary: bool = False) -> pa.Table:
    """The complete batches of a recorder stream that is still being written, as :func:`read_samples` reads
    a file (``loadgate capacity`` evaluates each step from it while the run goes on)."""
    path = Path(path)
    batches = list(complete_batches(path))
    table = pa.Table.from_batches(batches) if batches else SCHEMA.empty_table()
    return conform(path, table.select(list(dict.fromkeys(columns))), list(dict.fromkeys(columns)), dictionary)


def read_samples(
    path: str | os.PathLike[str], columns: Sequence[str] | None = None, *, dictionary: bool = False
) -> pa.Table:
    """Read a samples file (our Parquet or Locust's per-request CSV) as a table of SCHEMA types.

    ``columns`` picks and orders the columns (default: all of SCHEMA); columns the file lacks are filled
    ("" for requirement and worker, null otherwise), except the required ones, whose absence is an error.
    ``dictionary=True`` returns the string columns dictionary-encoded (cheap grouping for analysis).
    """
    path = Path(path)
    columns = list(SCHEMA.names if columns is None else columns)
    unknown = [c for c in columns if c not in SCHEMA.names]
    if unknown:
        raise ValueError(f"unknown samples column(s) {unknown}; known: {SCHEMA.names}")
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(4096)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; {_EXPECTED}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a file; {_EXPECTED}") from None
    if size == 0:
        raise ConfigError(f"{path}: empty file; {_EXPECTED}")
    if head.startswith(b"PAR1"):
        table = _read_parquet(path, columns, dictionary)
    else:
        header = _csv_header(head)
        if header is None or not all(c in header for c in _LOCUST_CSV_MARKERS):
            raise ConfigError(f"{path}: not a Parquet or Locust CSV file ({_describe_head(head)}); {_EXPECTED}")
        table = _read_csv(path, header, columns, dictionary)
    table = conform(path, table, columns, dictionary)
    pa.default_memory_pool().release_unused()  # decompression buffers: give them back before analysis
    return table


def _read_parquet(path: Path, columns: list[str], dictionary: bool) -> pa.Table:
    """Read the wanted columns of a Parquet samples file, checking its schema version."""
    try:
        file = pq.ParquetFile(path, page_checksum_verification=True, pre_buffer=False)  # pre-buffering: +15% peak
        if dictionary:  # only the string columns the file has: pyarrow raises KeyError for a missing one
            wanted = [c for c in STRING_COLUMNS if c in file.schema_arrow.names]
            file = pq.ParquetFile(path, read_dictionary=wanted, page_checksum_verification=True, pre_buffer=False)
        meta = file.schema_arrow.metadata or {}
        version = meta.get(SCHEMA_KEY)
        if version is not None and version.decode(errors="replace") not in READABLE_SCHEMA_IDS:
            raise ConfigError(
                f"{path}: samples schema {version.decode(errors='replace')!r} is not supported "
                f"(this loadgate reads {' and '.join(map(repr, READABLE_SCHEMA_IDS))}); "
                "use the loadgate version that wrote it"
            )
        require(path, file.schema_arrow.names)
        present = [c for c in columns if c in file.schema_arrow.names]
        return file.read(columns=present)
    except (pa.ArrowException, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"{path}: truncated or corrupt Parquet file ({reason}); it cannot be analysed — "
            f"record the run again with 'loadgate run'"
        ) from None


def _csv_header(head: bytes) -> list[str] | None:
    """The header fields of a CSV file, or None if the first line is not a plain text CSV header."""
    if b"\0" in head:
        return None
    line = head.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    return [f.strip().strip('"') for f in text.split(",")]


def _describe_head(head: bytes) -> str:
    """A short description of what a file starts with, for the error message."""
    header = _csv_header(head)
    if header is None:
        return f"binary content starting {head[:8]!r}"
    first = ",".join(header)
    return f"first line {first[:60] + '…' if len(first) > 60 else first!r}"


def _read_csv(path: Path, header: list[str], columns: list[str], dictionary: bool) -> pa.Table:
    """Read Locust's per-request CSV log, dropping a last line cut short by a killed process."""
    import pyarrow.compute as pc  # here, not at the top: 40 ms that reading our Parquet files does without
    import pyarrow.csv as pacsv

    string_type = DICTIONARY_TYPE if dictionary else pa.string()
    types = {
        name: (string_type if name in STRING_COLUMNS else SCHEMA.field(name).type)
        for name in header
        if name in SCHEMA.names
    }
    if "success" not in header:
        require(path, header + ["success"] if "exception" in header else header)
    else:
        require(path, header)
    with pa.memory_map(str(path)) as source:
        data = source.read_buffer()
        end = data.size
        if data[end - 1] != ord("\n"):
            cut = _last_newline(path, end)
            end = cut + 1 if cut > 0 else end  # no newline at all: a lone header, keep it
        read_columns = [name for name in header if name in columns or name in ("exception", "success")]
        try:
            table = pacsv.read_csv(
                pa.BufferReader(data.slice(0, end)),
                convert_options=pacsv.ConvertOptions(
                    column_types=types,
                    include_columns=read_columns,
                    strings_can_be_null=False,
                    null_values=[""],
                    quoted_strings_can_be_null=False,
                ),
            )
        except (pa.ArrowException, OSError) as exc:
            reason = str(exc).splitlines()[0]
            raise ConfigError(f"{path}: not a valid Locust CSV log ({reason}); {_EXPECTED}") from None
    if "success" not in table.column_names:
        exception = table.column("exception")
        success = pc.equal(pc.cast(exception, pa.string()) if dictionary else exception, "")
        table = table.append_column("success", success)
    if "exception" in table.column_names:
        exception = table.column("exception")  # Locust writes "" on success; our schema has null
        empty = pc.equal(pc.cast(exception, pa.string()) if dictionary else exception, "")
        nulled = pc.if_else(empty, pa.scalar(None, pa.string()), pc.cast(exception, pa.string()))
        table = table.set_column(
            table.column_names.index("exception"), "exception", nulled.cast(string_type) if dictionary else nulled
        )
    return table


def _last_newline(path: Path, size: int) -> int:
    """Offset of the last newline in a large file, reading backwards from its end."""
    with open(path, "rb") as f:
        pos = size
        while pos > 0:
            start = max(0, pos - 65536)
            f.seek(start)
            found = f.read(pos - start).rfind(b"\n")
            if found >= 0:
                return start + found
            pos = start
    return -1


def require(path: Path, names: Sequence[str]) -> None:
    """Raise ConfigError naming the required columns missing from ``names``."""
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise ConfigError(
            f"{path}: missing required column(s) {', '.join(missing)}; a samples file needs "
            f"{', '.join(REQUIRED_COLUMNS)}"
        )


def conform(path: Path, table: pa.Table, columns: list[str], dictionary: bool) -> pa.Table:
    """Cast to SCHEMA types (dictionary strings if asked), fill absent columns, order as asked."""
    arrays = []
    for name in columns:
        target = DICTIONARY_TYPE if dictionary and name in STRING_COLUMNS else SCHEMA.field(name).type
        if name in table.column_names:
            column = table.column(name)
            if column.type != target:
                try:
                    column = column.cast(target)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise ConfigError(
                        f"{path}: column {name!r} has type {column.type}, expected "
                        f"{SCHEMA.field(name).type} ({str(exc).splitlines()[0]})"
                    ) from None
        else:
            fill = pa.scalar("" if name in _FILL_EMPTY else None, SCHEMA.field(name).type)
            column = pa.chunked_array([pa.repeat(fill, table.num_rows)]).cast(target)
        arrays.append(column)
    return pa.table(arrays, schema=pa.schema([pa.field(n, a.type) for n, a in zip(columns, arrays)]))
