"""JMeter's CSV result format (JTL): which columns a file has, and how its timestamps are written.

With its header on (``jmeter.save.saveservice.print_field_names=true``, JMeter's default) a JTL names
its columns in the first line; with it off, the columns follow from the ``jmeter.save.saveservice.*``
settings the test ran with, in the order JMeter's CSVSaveService writes them, which ``import`` is
given (``--jtl-setting KEY=VALUE``, or ``--jtl-properties FILE``: a user.properties / jmeter.properties).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from loadgate.errors import ConfigError

PREFIX = "jmeter.save.saveservice."
# (setting, its default in JMeter 5.x's jmeter.properties, the columns it adds), in CSVSaveService's order.
COLUMNS: tuple[tuple[str, bool, tuple[str, ...]], ...] = (
    ("timestamp", True, ("timeStamp",)),
    ("time", True, ("elapsed",)),
    ("label", True, ("label",)),
    ("response_code", True, ("responseCode",)),
    ("response_message", True, ("responseMessage",)),
    ("thread_name", True, ("threadName",)),
    ("data_type", True, ("dataType",)),
    ("successful", True, ("success",)),
    ("assertion_results_failure_message", True, ("failureMessage",)),
    ("bytes", True, ("bytes",)),
    ("sent_bytes", True, ("sentBytes",)),
    ("thread_counts", True, ("grpThreads", "allThreads")),
    ("url", True, ("URL",)),
    ("filename", False, ("Filename",)),
    ("latency", True, ("Latency",)),
    ("encoding", False, ("Encoding",)),
    ("sample_count", False, ("SampleCount", "ErrorCount")),
    ("hostname", False, ("Hostname",)),
    ("idle_time", True, ("IdleTime",)),
    ("connect_time", True, ("Connect",)),
)
DEFAULT_HEADER = tuple(c for _key, on, cols in COLUMNS if on for c in cols)
KNOWN = {c for _key, _on, cols in COLUMNS for c in cols}
OTHER_KEYS = {"print_field_names", "default_delimiter", "timestamp_format", "output_format"}


def parse_settings(pairs: Sequence[str], properties: str | None = None) -> dict[str, str]:
    """``KEY=VALUE`` pairs (KEY with or without the ``jmeter.save.saveservice.`` prefix), after those of a
    properties file's ``jmeter.save.saveservice.*`` lines."""
    out: dict[str, str] = {}
    if properties is not None:
        try:
            with open(properties, encoding="latin-1") as f:
                lines = f.read().splitlines()
        except OSError as e:
            raise ConfigError(f"--jtl-properties {properties}: cannot read ({e.strerror})") from None
        for number, line in enumerate(lines, start=1):
            text = line.strip()
            if text.startswith(PREFIX):
                found = re.match(r"([^=:\s]+)\s*[=:\s]\s*(.*)$", text)
                key, value = (found.group(1), found.group(2)) if found else (text, "")
                out[_key(key, f"{properties}:{number}")] = value.strip()
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(
                f"--jtl-setting {pair!r}: expected KEY=VALUE, e.g. jmeter.save.saveservice.print_field_names=false"
            )
        out[_key(key.strip(), f"--jtl-setting {pair!r}")] = value.strip()
    return out


def _key(key: str, where: str) -> str:
    short = key[len(PREFIX) :] if key.startswith(PREFIX) else key
    if short not in {k for k, _on, _cols in COLUMNS} | OTHER_KEYS:
        raise ConfigError(
            f"{where}: unknown JMeter save setting {key!r}; known: "
            f"{', '.join(sorted({k for k, _on, _c in COLUMNS} | OTHER_KEYS))}"
        )
    return short


def _on(value: str) -> bool:
    return value.strip().lower() == "true"


def columns_from_settings(settings: Mapping[str, str]) -> list[str]:
    """The columns of a JTL written without its header, under ``settings``."""
    out: list[str] = []
    for key, default, cols in COLUMNS:
        on = _on(settings[key]) if key in settings else default
        if key == "timestamp" and settings.get("timestamp_format", "ms").strip().lower() == "none":
            on = False
        if on:
            out.extend(cols)
    return out


def delimiter(settings: Mapping[str, str]) -> str:
    value = settings.get("default_delimiter", ",")
    value = "\t" if value in ("\\t", "\t") else value
    if len(value) != 1:
        raise ConfigError(f"jmeter.save.saveservice.default_delimiter={value!r}: expected one character")
    return value


def looks_like_header(fields: Sequence[str]) -> bool:
    """Whether a JTL's first line names its columns (at least two of JMeter's column names)."""
    return sum(f.strip() in KNOWN for f in fields) >= 2


# SimpleDateFormat letters -> (named group, regex). Text between quotes is literal.
_LETTERS = {
    "yyyy": ("year", r"\d{4}"),
    "yy": ("year2", r"\d{2}"),
    "MM": ("month", r"\d{2}"),
    "M": ("month", r"\d{1,2}"),
    "dd": ("day", r"\d{2}"),
    "d": ("day", r"\d{1,2}"),
    "HH": ("hour", r"\d{2}"),
    "H": ("hour", r"\d{1,2}"),
    "hh": ("hour12", r"\d{2}"),
    "h": ("hour12", r"\d{1,2}"),
    "a": ("ampm", r"[AaPp][Mm]"),
    "mm": ("minute", r"\d{2}"),
    "m": ("minute", r"\d{1,2}"),
    "ss": ("second", r"\d{2}"),
    "s": ("second", r"\d{1,2}"),
    "SSS": ("milli", r"\d{3}"),
    "S": ("milli", r"\d{1,3}"),
    "Z": ("zone", r"[+-]\d{4}"),
    "XXX": ("zone", r"Z|[+-]\d{2}:\d{2}"),
    "XX": ("zone", r"Z|[+-]\d{4}"),
    "X": ("zone", r"Z|[+-]\d{2}"),
    "z": ("zone", r"UTC|GMT|Z|[+-]\d{2}:?\d{2}"),
}
# A timestamp written without a configured format: ISO-like, separators - or /, zone optional.
AUTO_REGEX = (
    r"^\s*(?P<year>\d{4})[-/](?P<month>\d{1,2})[-/](?P<day>\d{1,2})[ T](?P<hour>\d{1,2}):(?P<minute>\d{2})"
    r":(?P<second>\d{2})(?:[.,](?P<milli>\d{1,9}))?\s*(?P<zone>Z|UTC|GMT|[+-]\d{2}:?\d{2})?\s*$"
)


def format_regex(pattern: str) -> str:
    """A SimpleDateFormat pattern (``yyyy/MM/dd HH:mm:ss.SSS``) as a regex with named groups."""
    out, i, seen = ["^\\s*"], 0, set()
    while i < len(pattern):
        c = pattern[i]
        if c == "'":
            end = pattern.find("'", i + 1)
            if end < 0:
                raise ConfigError(f"timestamp_format {pattern!r}: a quote is not closed")
            out.append(literal(pattern[i + 1 : end]) if end > i + 1 else "'")
            i = end + 1
            continue
        if c.isalpha():
            run = len(pattern) - i - len(pattern[i:].lstrip(c))
            token = next((t for t in sorted(_LETTERS, key=len, reverse=True) if t[0] == c and len(t) <= run), None)
            if token is None:
                raise ConfigError(
                    f"timestamp_format {pattern!r}: the letter {c!r} is not supported (supported: "
                    "y M d H h a m s S Z X z)"
                )
            name, regex = _LETTERS[token]
            if name in seen:
                raise ConfigError(f"timestamp_format {pattern!r}: {token} given twice")
            seen.add(name)
            out.append(f"(?P<{name}>{regex})")
            i += run
            continue
        out.append(literal(c))
        i += 1
    return "".join(out) + "\\s*$"


def literal(text: str) -> str:
    """``text`` matched literally by RE2 (Arrow's engine) and by re: only regex syntax escaped."""
    return "".join("\\" + c if c in "\\.^$|?*+()[]{}" else c for c in text)
