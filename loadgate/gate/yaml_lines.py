"""YAML with line numbers: a safe loader whose mappings and sequences remember their source lines,
and the one-line error form every threshold-file problem takes."""

from __future__ import annotations

import difflib
import math
from typing import Any

import yaml

from loadgate.errors import ConfigError
from loadgate.gate.bulk import collector_paused


class LineMap(dict[Any, Any]):
    """A YAML mapping that remembers its own line, each key's line and any repeated keys."""

    line: int = 1
    key_lines: dict[Any, Any]
    repeats: list[Any]


class LineSeq(list[Any]):
    """A YAML sequence that remembers its own line and each item's line."""

    line: int = 1
    item_lines: list[Any]


class LineLoader(yaml.SafeLoader):
    """SafeLoader whose mappings and sequences carry 1-based source lines."""


def _construct_map(loader: LineLoader, node: yaml.MappingNode) -> LineMap:
    loader.flatten_mapping(node)
    out = LineMap()
    out.line, out.key_lines, out.repeats = node.start_mark.line + 1, {}, []
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, (list, dict)):
            key = str(key)
        line = key_node.start_mark.line + 1
        if key in out:
            out.repeats.append((key, line))
            continue
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = line
    return out


def _construct_seq(loader: LineLoader, node: yaml.SequenceNode) -> LineSeq:
    out = LineSeq(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)

if getattr(yaml, "__with_libyaml__", False):

    class FastLineLoader(yaml.CSafeLoader):
        """The same, parsed by libyaml (ten times faster on large files); a file it rejects is read again
        by :class:`LineLoader`, whose messages the errors quote."""

    FastLineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
    FastLineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
else:  # PyYAML built without libyaml
    FastLineLoader = LineLoader  # type: ignore[misc, assignment]  # the one loader there is, under the same name


def parse_fast(text: str) -> tuple[Any, bool]:
    """(the document, True) as :class:`FastLineLoader` reads it, or (None, False) when it cannot."""
    loader = FastLineLoader(text)
    try:
        with collector_paused():
            return loader.get_single_data(), True
    except yaml.YAMLError:
        return None, False
    finally:
        loader.dispose()


def quote(value: Any) -> str:
    """A user value quoted for a one-line message (repr escapes newlines; long values cut)."""
    if value is None or isinstance(value, bool):
        return str(value).lower().replace("none", "null")
    if is_number(value):
        return str(value)
    text = str(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return repr(text)


class FileErrors:
    """Error factory bound to one file path."""

    def __init__(self, path: str) -> None:
        self.path = path

    def error(self, line: int, key: str, what: str, expected: str) -> ConfigError:
        return ConfigError(f"{self.path}:{line}: {key}: {what}; expected {expected}")

    def check_keys(self, mapping: LineMap, where: str, allowed: tuple[str, ...]) -> None:
        for key, line in mapping.repeats:
            raise self.error(
                line, join_key(where, key), f"given twice (first on line {mapping.key_lines[key]})", "each key once"
            )
        for key in mapping:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise self.error(
                    mapping.key_lines[key], join_key(where, key), f"unknown key{hint}", "one of " + ", ".join(allowed)
                )


def join_key(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)
