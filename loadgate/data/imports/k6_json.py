"""k6's newline-delimited JSON output (``k6 run --out json=FILE``) as loadgate samples, a block at a time.

One sample per ``Point`` of ``http_req_duration``: its value is the response time; its tags give the
request name (``name``: the URL unless the script named the request), ``method``, ``status``,
``expected_response`` (success: k6's own ``http_req_failed`` is its negation), ``error`` and
``error_code``, ``group`` and ``scenario``, and the requirement (a tag, or the requirement map).
k6 stamps a request's points with the time it ended: the sample's start is that time less the
response time. ``vus`` points give the users running, carried forward to the requests after them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from loadgate.data.imports.columns import import_batch
from loadgate.data.imports.lines import Block, blocks, first_bad_line, head_line, json_fault
from loadgate.data.imports.requirement_map import RequirementMap
from loadgate.errors import ConfigError

DURATION = "http_req_duration"
USERS = "vus"
TAGS = ("name", "method", "status", "expected_response", "error", "error_code", "group", "scenario")
_WRITE_IT = "write it with 'k6 run --out json=FILE script.js'"
_TIME = pa.timestamp("ns", tz="UTC")


class K6Reader:
    """Batches of samples from a k6 JSON file; ``requirements`` picks each request's requirement."""

    tool = "k6"

    def __init__(self, path: str, requirements: RequirementMap) -> None:
        self.path = path
        self.requirements = requirements
        self.lines = 0
        self.points = 0
        self._users: float | None = None
        check_k6(path)
        tags = list(dict.fromkeys([*TAGS, *([requirements.tag] if requirements.tag else [])]))
        data = pa.struct(
            [
                pa.field("time", pa.string()),
                pa.field("value", pa.float64()),
                pa.field("tags", pa.struct([pa.field(t, pa.string()) for t in tags])),
            ]
        )
        self._schema = pa.schema(
            [pa.field("type", pa.string()), pa.field("metric", pa.string()), pa.field("data", data)]
        )

    def batches(self) -> Iterator[pa.RecordBatch]:
        for block in blocks(self.path):
            table = self._parse(block)
            self.lines = block.first_line + (0 if block.last else block.newlines - 1)
            batch = self._samples(block, table)
            if batch is not None and batch.num_rows:
                yield batch

    def _parse(self, block: Block) -> pa.Table:
        try:
            return pj.read_json(
                pa.BufferReader(block.data),
                read_options=pj.ReadOptions(block_size=1 << 20),
                parse_options=pj.ParseOptions(explicit_schema=self._schema, unexpected_field_behavior="ignore"),
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            line, fault = first_bad_line(block, _k6_fault)
            if block.last and line >= block.first_line + block.data.rstrip(b"\n").count(b"\n"):
                raise ConfigError(
                    f"{self.path}:{line}: the last line is cut short ({fault}): k6 was stopped while "
                    f"writing it; delete that line to import the {line - 1} lines before it "
                    "(e.g. sed -i '$ d' FILE)"
                ) from None
            raise ConfigError(
                f"{self.path}:{line}: {fault if fault else str(exc).splitlines()[0]}; "
                f"expected one k6 JSON object per line ({_WRITE_IT})"
            ) from None

    def _samples(self, block: Block, table: pa.Table) -> pa.RecordBatch | None:
        kinds = table.column("type")
        if kinds.null_count or not pc.all(pc.is_in(kinds, pa.array(["Point", "Metric"]))).as_py():
            line, fault = first_bad_line(block, _k6_fault)
            raise ConfigError(f"{self.path}:{line}: {fault or 'not a k6 line'}; {_WRITE_IT}")
        metric = table.column("metric")
        points = pc.equal(kinds, "Point")
        data = table.column("data")
        values = pc.struct_field(data, "value")
        users = self._users_column(pc.and_(points, pc.equal(metric, USERS)), values)
        keep = pc.fill_null(pc.and_(points, pc.equal(metric, DURATION)), False)
        rows = table.filter(keep)
        if not rows.num_rows:
            return None
        self.points += rows.num_rows
        return self._batch(block, rows, users.filter(keep))

    def _users_column(self, is_users: pa.ChunkedArray, values: pa.ChunkedArray) -> pa.ChunkedArray:
        """The latest ``vus`` value at each line (carried on from the blocks before)."""
        seen = pc.if_else(pc.fill_null(is_users, False), values, pa.scalar(None, pa.float64()))
        filled = pc.fill_null_forward(seen)
        if self._users is not None:
            filled = pc.fill_null(filled, self._users)
        if len(filled):
            last = filled[len(filled) - 1].as_py()
            self._users = last if last is not None else self._users
        return filled

    def _batch(self, block: Block, rows: pa.Table, users: pa.ChunkedArray) -> pa.RecordBatch:
        data = rows.column("data").combine_chunks()
        tags = pc.struct_field(data, "tags")
        tag = {t: pc.struct_field(tags, t) for t in tags.type.names}
        value = pc.struct_field(data, "value")
        ended = self._times(block, pc.struct_field(data, "time"))
        start = pc.subtract(
            pc.divide(pc.cast(pc.cast(ended, pa.int64()), pa.float64(), safe=False), 1e9), pc.divide(value, 1000.0)
        )
        status = _status(self.path, block, tag["status"])
        expected = tag["expected_response"]
        in_range = pc.and_(pc.greater_equal(status, 200), pc.less(status, 400))
        success = pc.fill_null(pc.if_else(pc.is_null(expected), in_range, pc.equal(expected, "true")), False)
        columns = {
            "timestamp": start,
            "request_type": tag["method"],
            "name": tag["name"],
            "response_time_ms": value,
            "status_code": status,
            "success": success,
            "exception": _exception(success, tag["error"], tag["error_code"], status),
            "users": pc.cast(users.combine_chunks(), pa.int32()),
            "group": tag["group"],
            "scenario": tag["scenario"],
        }
        columns["requirement"] = self.requirements.apply(
            {"name": pc.fill_null(tag["name"], ""), "group": tag["group"], "scenario": tag["scenario"]},
            tag.get(self.requirements.tag) if self.requirements.tag else None,
        )
        return import_batch(columns, rows.num_rows)

    def _times(self, block: Block, times: pa.Array) -> pa.Array:
        try:
            return pc.cast(times, _TIME)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            line, fault = first_bad_line(block, _time_fault)
            raise ConfigError(
                f"{self.path}:{line}: {fault or str(exc).splitlines()[0]}; k6 writes RFC 3339 times "
                "with their zone offset (2026-01-15T12:00:00.123+01:00)"
            ) from None


def check_k6(path: str) -> None:
    """ConfigError unless the file's first line is a k6 JSON output line."""
    number, line = head_line(path)
    if not number:
        raise ConfigError(f"{path}: empty file; {_WRITE_IT}")
    fault = _k6_fault(line)
    if fault:
        raise ConfigError(f"{path}:{number}: not k6 JSON output ({fault}); {_WRITE_IT}")


def _k6_fault(text: bytes) -> str | None:
    """Why a line is not a line of k6's JSON output, or None."""
    fault = json_fault(text)
    if fault:
        return fault
    doc = json.loads(text)
    if doc.get("type") not in ("Point", "Metric") or not isinstance(doc.get("metric"), str):
        keys = ", ".join(list(doc)[:5])
        return f'an object with keys {keys or "none"}, not a k6 Metric or Point line ({{"type":"Point","metric":…}})'
    if doc["type"] == "Point" and not isinstance(doc.get("data"), dict):
        return "a Point without its data"
    return None


def _time_fault(text: bytes) -> str | None:
    doc = json.loads(text)
    if doc.get("type") != "Point" or doc.get("metric") != DURATION:
        return None
    t = (doc.get("data") or {}).get("time")
    try:
        pc.cast(pa.array([t], pa.string()), _TIME)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        if isinstance(t, str) and t[-1:] != "Z" and "+" not in t[10:] and "-" not in t[10:]:
            return f"time {t!r} has no zone offset while others have one (mixed time zones)"
        return f"time {t!r} is not an RFC 3339 time"
    return None


def _status(path: str, block: Block, status: pa.Array) -> pa.Array:
    try:
        return pc.cast(pc.if_else(pc.equal(status, ""), pa.scalar(None, pa.string()), status), pa.int32())
    except pa.ArrowInvalid:
        line, fault = first_bad_line(block, _status_fault)
        raise ConfigError(f"{path}:{line}: {fault or 'a status tag that is not a number'}") from None


def _status_fault(text: bytes) -> str | None:
    doc = json.loads(text)
    status = ((doc.get("data") or {}).get("tags") or {}).get("status")
    if doc.get("metric") == DURATION and status not in (None, "") and not str(status).isdigit():
        return f"status tag {status!r} is not an HTTP status code"
    return None


def _exception(success: pa.Array, error: pa.Array, code: pa.Array, status: pa.Array) -> pa.Array:
    """Null on success; else k6's error tag, the HTTP status, or k6's error code."""
    null = pa.scalar(None, pa.string())
    named = pc.if_else(pc.equal(pc.fill_null(error, ""), ""), null, error)
    answered = pc.fill_null(pc.greater(status, 0), False)
    by_status = pc.if_else(answered, pc.binary_join_element_wise("HTTP ", pc.cast(status, pa.string()), ""), null)
    by_code = pc.if_else(
        pc.equal(pc.fill_null(code, ""), ""), null, pc.binary_join_element_wise("k6 error_code ", code, "")
    )
    text = pc.coalesce(named, by_status, by_code, pa.scalar("failed"))
    return pc.if_else(success, pa.scalar(None, pa.string()), text)
