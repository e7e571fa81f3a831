"""JMeter's CSV results (JTL) as loadgate samples, read a block at a time by Arrow's CSV reader.

Columns are found by name (the header's, or those the ``jmeter.save.saveservice.*`` settings give a
file written without one), so a custom subset reads as well as JMeter's default; ``timeStamp``,
``elapsed`` and ``label`` are needed, the rest optional. One sample per line: the timestamp is the
sample's start (JMeter's ``sampleresult.timestamp.start=true``, its default since 2.1), the response
time ``elapsed``, the name the ``label``; ``success``, ``responseCode``, ``failureMessage`` (else the
``responseMessage`` of a failure), ``bytes``, ``allThreads`` (users) and ``Hostname`` (worker) when
present. The thread group (``threadName`` less its ``N-M`` suffix) becomes the ``scenario`` column.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from loadgate.data.imports.columns import import_batch
from loadgate.data.imports.jtl_format import columns_from_settings, delimiter, looks_like_header
from loadgate.data.imports.jtl_time import NULL, TimeFault, to_seconds
from loadgate.data.imports.jtl_xml import JtlXmlReader
from loadgate.data.imports.lines import head_line, open_input
from loadgate.data.imports.requirement_map import RequirementMap
from loadgate.errors import ConfigError

NEEDED = ("timeStamp", "elapsed", "label")
WANTED = (
    *NEEDED,
    "responseCode",
    "responseMessage",
    "threadName",
    "success",
    "failureMessage",
    "bytes",
    "allThreads",
    "Hostname",
)
REQUEST_TYPE = "JMeter"  # a JTL does not record the HTTP method: every sample's request type
_HOW = (
    "JMeter writes it unless jmeter.save.saveservice.{key}=false: set it true (user.properties) and run the test again"
)


def jtl_reader(
    path: str, requirements: RequirementMap, settings: Mapping[str, str] | None = None, utc_offset: str = "+00:00"
) -> JtlReader | JtlXmlReader:
    """The reader of a JTL: XML by its first character (``<``), else CSV."""
    _number, first = head_line(path)
    if first.lstrip().startswith(b"<"):
        return JtlXmlReader(path, requirements)
    return JtlReader(path, requirements, settings, utc_offset)


class JtlReader:
    """Batches of samples from a JTL CSV file."""

    tool = "JMeter"

    def __init__(
        self,
        path: str,
        requirements: RequirementMap,
        settings: Mapping[str, str] | None = None,
        utc_offset: str = "+00:00",
    ) -> None:
        self.path, self.requirements, self.utc_offset = path, requirements, utc_offset
        if not re.fullmatch(r"[+-]\d{2}:\d{2}", utc_offset):
            raise ConfigError(f"--utc-offset {utc_offset}: expected ±HH:MM, e.g. +01:00 or -05:00")
        self.settings = dict(settings or {})
        self.delimiter = delimiter(self.settings)
        self.pattern = self.settings.get("timestamp_format")
        self.lines = 0
        number, first = head_line(path)
        if not number:
            raise ConfigError(f"{path}: empty file; expected a JMeter CSV result file (JTL)")
        fields = next(csv.reader([first.decode("utf-8", "replace")], delimiter=self.delimiter))
        printed = self.settings.get("print_field_names", "").lower()
        self.header = printed == "true" or (printed != "false" and looks_like_header(fields))
        self.columns = [f.strip() for f in fields] if self.header else columns_from_settings(self.settings)
        if not self.header and len(self.columns) != len(fields):
            raise ConfigError(
                f"{path}:{number}: the first line has {len(fields)} fields, but the JMeter save settings "
                f"given ({'defaults' if not self.settings else 'with --jtl-setting/--jtl-properties'}) "
                f"write {len(self.columns)} ({', '.join(self.columns)}); give the settings the test ran "
                "with, or run it with jmeter.save.saveservice.print_field_names=true"
            )
        missing = [c for c in NEEDED if c not in self.columns]
        if missing:
            key = {"timeStamp": "timestamp", "elapsed": "time", "label": "label"}[missing[0]]
            raise ConfigError(
                f"{path}:{number if self.header else 1}: no {missing[0]!r} column "
                f"({'header' if self.header else 'columns from the settings'}: "
                f"{', '.join(self.columns)}); {_HOW.format(key=key)}"
            )

    def batches(self) -> Iterator[pa.RecordBatch]:
        present = [c for c in WANTED if c in self.columns]
        rows = 0
        with open_input(self.path) as stream:
            try:
                reader = pacsv.open_csv(
                    stream,
                    read_options=pacsv.ReadOptions(
                        column_names=self.columns, skip_rows=1 if self.header else 0, block_size=8 << 20
                    ),
                    parse_options=pacsv.ParseOptions(delimiter=self.delimiter, newlines_in_values=True),
                    convert_options=pacsv.ConvertOptions(
                        column_types={c: pa.string() for c in self.columns},
                        include_columns=present,
                        strings_can_be_null=False,
                    ),
                )
                for batch in reader:
                    yield self._batch(batch, rows)
                    rows += batch.num_rows
            except (pa.ArrowInvalid, OSError) as exc:
                raise self._where(rows, None, str(exc).splitlines()[0]) from None
        self.lines = rows

    def _batch(self, batch: pa.RecordBatch, offset: int) -> pa.RecordBatch:
        col = {name: batch.column(name) for name in batch.schema.names}
        try:
            start = to_seconds(col["timeStamp"], self.pattern, self.utc_offset)
        except TimeFault as e:
            raise self._where(offset, e.row, str(e)) from None
        except pa.ArrowInvalid as e:
            raise self._where(offset, None, f"a timeStamp that is not a date ({str(e).splitlines()[0]})") from None
        elapsed = self._numbers(col["elapsed"], "elapsed", offset, pa.float64())
        status = _status(col.get("responseCode"))
        success = _success(col.get("success"), status)
        name = col["label"]
        columns = {
            "timestamp": start,
            "request_type": pa.repeat(pa.scalar(REQUEST_TYPE), batch.num_rows),
            "name": name,
            "response_time_ms": elapsed,
            "status_code": status,
            "success": success,
            "exception": _exception(success, col.get("failureMessage"), col.get("responseMessage"), status),
            "scenario": _thread_group(col.get("threadName")),
            "worker": col.get("Hostname"),
        }
        if "bytes" in col:
            columns["response_length"] = self._numbers(col["bytes"], "bytes", offset, pa.int64(), empty_ok=True)
        if "allThreads" in col:
            columns["users"] = self._numbers(col["allThreads"], "allThreads", offset, pa.int32(), empty_ok=True)
        empty = pa.repeat(pa.scalar("", pa.string()), batch.num_rows)
        scenario = columns["scenario"]
        columns["requirement"] = self.requirements.apply(
            {"name": name, "group": empty, "scenario": empty if scenario is None else pc.fill_null(scenario, "")}, None
        )
        return import_batch(columns, batch.num_rows)

    def _numbers(
        self, values: pa.Array, column: str, offset: int, kind: pa.DataType, empty_ok: bool = False
    ) -> pa.Array:
        trimmed = pc.utf8_trim_whitespace(values)
        ok = pc.match_substring_regex(trimmed, r"^-?\d+(\.\d+)?$")
        if empty_ok:
            ok = pc.or_(ok, pc.equal(trimmed, ""))
            trimmed = pc.if_else(pc.equal(trimmed, ""), NULL, trimmed)
        if not pc.all(ok).as_py():
            row = int(pc.index(ok, False).as_py())
            raise self._where(offset, row, f"{column} {values[row].as_py()!r} is not a number")
        return pc.cast(pc.cast(trimmed, pa.float64()), kind)

    def _where(self, offset: int, row: int | None, what: str) -> ConfigError:
        """The error for record ``offset + row`` (None: the first the Python reader finds wrong), with its line."""
        line, fault, last = self._locate(None if row is None else offset + row)
        if last and fault and "fields" in fault:
            return ConfigError(
                f"{self.path}:{line}: the last line is cut short ({fault}): JMeter was stopped while "
                f"writing it; delete that line to import the lines before it (e.g. sed -i '$ d' FILE)"
            )
        where = f"{self.path}:{line}" if line else f"{self.path} (line not found by Python's csv reader)"
        return ConfigError(f"{where}: {fault or what}; expected a JMeter CSV result file (JTL)")

    def _locate(self, record: int | None) -> tuple[int, str | None, bool]:
        """(line, fault, is the last record) of record number ``record``, else of the first record whose field
        count differs from the columns'; read again with Python's csv module (errors only)."""
        with open_input(self.path) as stream:
            text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="")
            reader = csv.reader(text, delimiter=self.delimiter)
            if self.header:
                next(reader, None)
            found: tuple[int, str | None] | None = None
            for index, fields in enumerate(reader):
                if found is not None:
                    return found[0], found[1], False
                start = reader.line_num
                if record is not None and index == record:
                    found = (start, None)
                elif record is None and len(fields) != len(self.columns):
                    found = (start, f"{len(fields)} fields where the columns are {len(self.columns)}")
            if found is not None:
                return found[0], found[1], True
        return 0, None, False


def _status(codes: pa.Array | None) -> pa.Array | None:
    """responseCode as a number; null where it is not one (JMeter's 'Non HTTP response code: …')."""
    if codes is None:
        return None
    numeric = pc.match_substring_regex(codes, r"^\d{1,3}$")
    return pc.cast(pc.if_else(numeric, codes, NULL), pa.int32())


def _success(flags: pa.Array | None, status: pa.Array | None) -> pa.Array:
    if flags is not None:
        return pc.equal(pc.utf8_lower(pc.utf8_trim_whitespace(flags)), "true")
    if status is not None:
        return pc.fill_null(pc.and_(pc.greater_equal(status, 200), pc.less(status, 400)), False)
    raise ConfigError("a JTL without 'success' needs 'responseCode' to tell failures")


def _exception(
    success: pa.Array, failure: pa.Array | None, message: pa.Array | None, status: pa.Array | None
) -> pa.Array:
    """Null on success; else failureMessage, the responseMessage, or the response code."""
    candidates = [pc.if_else(pc.equal(c, ""), NULL, c) for c in (failure, message) if c is not None]
    if status is not None:
        candidates.append(pc.binary_join_element_wise("HTTP ", pc.cast(status, pa.string()), ""))
    text = pc.coalesce(*candidates, pa.scalar("failed")) if candidates else pa.repeat(pa.scalar("failed"), len(success))
    return pc.if_else(success, NULL, text)


def _thread_group(threads: pa.Array | None) -> pa.Array | None:
    """``Thread Group 1-3`` -> ``Thread Group``: the thread group a sample's thread belongs to."""
    if threads is None:
        return None
    return pc.replace_substring_regex(threads, r"\s+\d+-\d+$", "")
