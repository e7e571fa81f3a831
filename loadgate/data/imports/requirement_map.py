"""Which requirement a request serves: a tag the tool recorded, or a map of name patterns to requirement IDs.

A map file (YAML)::

    requirements:
      - requirement: REQ-CHECKOUT
        name: "*/checkout*"          # glob on the request name (k6's name tag, JMeter's label)
      - requirement: REQ-BROWSE
        group: "::browse"            # k6's group tag, exactly (a glob too)
      - requirement: REQ-API
        scenario: api                # k6's scenario tag
        name: "re:^GET /api/"        # "re:" starts a regular expression (searched, not anchored)
    default: REQ-OTHER               # requests no entry matches (omit: they serve no requirement)

An entry matches when all the keys it gives match; the first matching entry wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from loadgate.errors import ConfigError

KEYS = ("name", "group", "scenario")
_EXAMPLE = 'e.g.\n  requirements:\n    - requirement: REQ-CHECKOUT\n      name: "*/checkout*"'


@dataclass(frozen=True)
class Rule:
    requirement: str
    patterns: dict[str, str]  # column -> regular expression (searched)
    line: int


@dataclass(frozen=True)
class RequirementMap:
    rules: tuple[Rule, ...] = ()
    default: str = ""
    path: str | None = None
    tag: str | None = None  # the tag that names the requirement, when no map is given
    fallback: str = ""  # requirement of requests neither the tag nor the map gives one (--requirement)

    def apply(self, batch: dict[str, pa.Array], tagged: pa.Array | None) -> pa.Array:
        """The requirement of each row: the map's first matching rule (else its default), or the tag's value;
        rows left without one get ``fallback``."""
        n = len(batch["name"])
        if not self.rules and self.path is None:
            out = tagged if tagged is not None else pa.nulls(n, pa.string())
        else:
            out = pa.nulls(n, pa.string())
            for rule in reversed(self.rules):  # the first rule is applied last: it wins
                mask = _matches(rule, batch, n)
                out = pc.if_else(mask, pa.scalar(rule.requirement), out)
            if self.default:
                out = pc.fill_null(out, self.default)
        filled = pc.if_else(pc.equal(pc.fill_null(out, ""), ""), pa.scalar(self.fallback), out)
        return pc.fill_null(filled, self.fallback)

    def describe(self) -> str:
        if self.path is not None:
            return f"map {self.path} ({len(self.rules)} entries" + (
                f", default {self.default})" if self.default else ")"
            )
        return f"tag {self.tag!r}" + (f", else {self.fallback}" if self.fallback else "")


def _matches(rule: Rule, batch: dict[str, pa.Array], n: int) -> pa.Array:
    mask = pa.repeat(pa.scalar(True), n)
    for column, regex in rule.patterns.items():
        values = pc.fill_null(batch[column], "")
        mask = pc.and_(mask, pc.match_substring_regex(values, regex))
    return mask


def pattern_regex(text: str) -> str:
    """A map pattern as a regular expression: ``re:…`` as written, a glob matched whole."""
    if text.startswith("re:"):
        return text[3:]
    return (
        "^" + "".join(".*" if c == "*" else "." if c == "?" else "\\" + c if c in _SPECIAL else c for c in text) + "$"
    )


_SPECIAL = set("\\.^$|+()[]{}")  # escaped with a backslash, which RE2 (Arrow's engine) and re both read


def by_tag(tag: str, fallback: str = "") -> RequirementMap:
    return RequirementMap(tag=tag, fallback=fallback)


def load_map(path: str, fallback: str = "") -> RequirementMap:
    """Parse a requirement map file; ConfigError naming the file, line and key of what is wrong."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(
            f"--map {path}: cannot read ({e.strerror}); give a YAML file of name patterns to "
            f"requirement IDs, {_EXAMPLE}"
        ) from None
    try:
        node = yaml.compose(text)
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        raise ConfigError(f"{where}: not valid YAML ({getattr(e, 'problem', e)}); {_EXAMPLE}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("requirements"), list):
        raise ConfigError(f"{path}:1: a requirement map needs a list 'requirements:'; {_EXAMPLE}")
    lines = _item_lines(node)
    rules = tuple(_rule(path, item, lines[i] if i < len(lines) else 1) for i, item in enumerate(doc["requirements"]))
    default = doc.get("default") or ""
    if not isinstance(default, str):
        raise ConfigError(f"{path}: default: expected one requirement ID, got {default!r}")
    unknown = sorted(set(doc) - {"requirements", "default"})
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}; a map has 'requirements:' and 'default:'")
    return RequirementMap(rules=rules, default=default, path=path, fallback=fallback)


def _item_lines(node: Any) -> list[int]:
    """The 1-based line of each entry of the document's ``requirements`` list."""
    if not isinstance(node, yaml.MappingNode):
        return []
    for key, value in node.value:
        if key.value == "requirements" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def _rule(path: str, item: Any, line: int) -> Rule:
    where = f"{path}:{line}"
    if not isinstance(item, dict) or not isinstance(item.get("requirement"), str) or not item["requirement"]:
        raise ConfigError(
            f"{where}: each entry needs 'requirement: REQ-…' and at least one of {', '.join(KEYS)}; {_EXAMPLE}"
        )
    unknown = sorted(set(item) - {"requirement", *KEYS})
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(map(str, unknown))}; an entry has requirement and {', '.join(KEYS)}"
        )
    patterns: dict[str, str] = {}
    for key in KEYS:
        if key in item:
            if not isinstance(item[key], str):
                raise ConfigError(f"{where}: {key}: expected a glob or 're:REGEX', got {item[key]!r}")
            regex = pattern_regex(item[key])
            try:
                re.compile(regex)
            except re.error as e:
                raise ConfigError(f"{where}: {key}: {item[key]!r} is not a valid regular expression ({e})") from None
            patterns[key] = regex
    if not patterns:
        raise ConfigError(f"{where}: entry for {item['requirement']} matches nothing: give name, group or scenario")
    return Rule(item["requirement"], patterns, line)
