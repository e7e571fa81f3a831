"""Requirement IDs in commit messages: where the pattern matches in the message, and the values of a
``Requirement:`` trailer (``Requirement: REQ-PERF-001, OR-SCALE-001``), which name IDs explicitly: any
word of it in the form of an ID (capitals, digits, dash-separated) counts, whatever the pattern."""

from __future__ import annotations

import re

from loadgate.errors import ConfigError
from loadgate.gate.thresholds import REQUIREMENT_RE

DEFAULT_PATTERN = r"(?<![\w-])(?:REQ|OR)-[A-Z0-9]+(?:-[A-Z0-9]+)*(?![\w-])"
_TRAILER = re.compile(r"^[ \t]*requirements?[ \t]*:[ \t]*(?P<values>.+)$", re.I | re.M)
_SPLIT = re.compile(r"[\s,;]+")


def compile_pattern(text: str | None, flag: str = "--pattern") -> re.Pattern[str]:
    """A user's regular expression, or the default; a bad one is a ConfigError naming the flag."""
    try:
        return re.compile(DEFAULT_PATTERN if text is None else text)
    except re.error as e:
        raise ConfigError(
            f"{flag} {text!r}: not a regular expression ({e}); e.g. {flag} '\\bREQ-[A-Z0-9-]+\\b'"
        ) from None


def _match_id(m: re.Match[str]) -> str:
    """The ID a match names: its group named ``id``, else its only group, else the whole match."""
    if "id" in m.re.groupindex:
        return m.group("id") or ""
    if m.re.groups == 1:
        return m.group(1) or ""
    return m.group(0)


def requirement_ids(message: str, pattern: re.Pattern[str]) -> list[str]:
    """The IDs a commit message references, in order of first mention, each once."""
    found = [_match_id(m) for m in pattern.finditer(message)]
    for trailer in _TRAILER.finditer(message):
        found += [v for v in _SPLIT.split(trailer["values"].strip()) if REQUIREMENT_RE.match(v)]
    return list(dict.fromkeys(i for i in found if i))
