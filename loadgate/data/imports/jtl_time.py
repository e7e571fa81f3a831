"""JMeter's timestamps as Unix seconds: epoch milliseconds (its default) or a formatted date, vectorised.

A formatted timestamp is split by a regular expression with named groups (from the file's
``timestamp_format``, else an ISO-like guess), rebuilt as RFC 3339 and cast by Arrow. A timestamp
without a zone is read at ``utc_offset``; a file whose timestamps mix zoned and zoneless ones is refused.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from loadgate.data.imports.jtl_format import AUTO_REGEX, format_regex

_TIME = pa.timestamp("ns", tz="UTC")
NULL = pa.scalar(None, pa.string())


class TimeFault(ValueError):
    """A timestamp that cannot be read: ``row`` is its index in the batch."""

    def __init__(self, row: int, what: str) -> None:
        super().__init__(what)
        self.row = row


def is_epoch_ms(values: pa.Array) -> bool:
    return bool(pc.all(pc.match_substring_regex(values, r"^\s*\d+\s*$")).as_py())


def to_seconds(values: pa.Array, pattern: str | None, utc_offset: str) -> pa.Array:
    """Unix seconds (float64) of a batch's timestamps; ``pattern``: JMeter's timestamp_format (None: ms or
    ISO-like, by the values). TimeFault on the first that cannot be read."""
    if pattern in (None, "ms") and is_epoch_ms(values):
        return pc.divide(pc.cast(pc.cast(pc.utf8_trim_whitespace(values), pa.int64()), pa.float64()), 1000.0)
    if pattern == "ms":
        raise TimeFault(
            _first(pc.invert(pc.match_substring_regex(values, r"^\s*\d+\s*$"))),
            "timeStamp is not in epoch milliseconds (timestamp_format=ms)",
        )
    regex = AUTO_REGEX if pattern is None else format_regex(pattern)
    parts = pc.extract_regex(values, regex)
    bad = pc.is_null(parts)
    if pc.any(bad).as_py():
        row = _first(bad)
        shown = values[row].as_py()
        raise TimeFault(
            row,
            f"timeStamp {shown!r} does not match "
            + (
                f"timestamp_format {pattern!r}"
                if pattern
                else "epoch milliseconds or yyyy/MM/dd HH:mm:ss[.SSS][ zone] "
                "(give jmeter.save.saveservice.timestamp_format=PATTERN with --jtl-setting)"
            ),
        )
    return _from_parts(parts, pattern is None, utc_offset)


def _field(parts: pa.Array, name: str) -> pa.Array | None:
    return pc.struct_field(parts, name) if name in parts.type.names else None


def _pad(values: pa.Array, width: int) -> pa.Array:
    return pc.utf8_lpad(values, width=width, padding="0")


def _from_parts(parts: pa.Array, fraction: bool, utc_offset: str) -> pa.Array:
    year = _field(parts, "year")
    if year is None:
        year2 = _field(parts, "year2")
        year = pc.binary_join_element_wise("20", year2, "") if year2 is not None else None
    hour = _field(parts, "hour")
    if hour is None:
        hour = _hour12(parts)
    if year is None or _field(parts, "month") is None or _field(parts, "day") is None or hour is None:
        raise TimeFault(0, "the timestamp format lacks a year, month, day or hour")
    n = len(parts)
    zero = pa.repeat(pa.scalar("00"), n)
    minute, second = _field(parts, "minute") or zero, _field(parts, "second") or zero
    frac = _field(parts, "milli")
    frac = pa.repeat(pa.scalar("0"), n) if frac is None else frac if fraction else _pad(frac, 3)
    frac = pc.fill_null(pc.if_else(pc.equal(frac, ""), NULL, frac), "0")
    iso = pc.binary_join_element_wise(
        year,
        "-",
        _pad(_field(parts, "month"), 2),
        "-",
        _pad(_field(parts, "day"), 2),
        "T",
        _pad(hour, 2),
        ":",
        _pad(minute, 2),
        ":",
        _pad(second, 2),
        ".",
        frac,
        _zones(_field(parts, "zone"), utc_offset, n),
        "",
    )
    stamp = pc.cast(iso, _TIME)
    return pc.divide(pc.cast(pc.cast(stamp, pa.int64()), pa.float64(), safe=False), 1e9)


def _hour12(parts: pa.Array) -> pa.Array | None:
    h12, ampm = _field(parts, "hour12"), _field(parts, "ampm")
    if h12 is None:
        return None
    hour = pc.cast(h12, pa.int32())
    hour = pc.if_else(pc.equal(hour, 12), 0, hour)  # 12 AM is hour 0, 12 PM hour 12
    if ampm is not None:
        hour = pc.add(hour, pc.if_else(pc.equal(pc.utf8_upper(ampm), "PM"), 12, 0))
    return pc.cast(hour, pa.string())


def _zones(zone: pa.Array | None, utc_offset: str, n: int) -> pa.Array:
    """Each row's offset as ``+HH:MM``; rows without one get ``utc_offset`` unless others have one."""
    if zone is None:
        return pa.repeat(pa.scalar(utc_offset), n)
    given = pc.and_(pc.is_valid(zone), pc.not_equal(pc.fill_null(zone, ""), ""))
    if pc.any(given).as_py() and not pc.all(given).as_py():
        row = _first(pc.invert(given))
        raise TimeFault(
            row,
            "mixed time zones: this timeStamp has no zone while others in the file have one; "
            "write all with a zone (timestamp_format with Z or XXX) or all without (and give --utc-offset)",
        )
    z = pc.replace_substring_regex(zone, r"^(UTC|GMT|Z)$", "+00:00")
    z = pc.replace_substring_regex(z, r"^([+-]\d{2})(\d{2})$", r"\1:\2")
    z = pc.replace_substring_regex(z, r"^([+-]\d{2})$", r"\1:00")
    return pc.fill_null(pc.if_else(given, z, NULL), utc_offset)


def _first(mask: pa.Array) -> int:
    return int(pc.index(pc.fill_null(mask, False), True).as_py())
