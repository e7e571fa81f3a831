"""Conditions such as ``<200ms`` or ``>1000/s``: parsed into a normalised unit (ms, a fraction, req/s), and checked."""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from loadgate.gate.yaml_lines import FileErrors, is_number, quote

_CONDITION_RE = re.compile(
    r"^\s*(?P<op>[<>=!]*)\s*(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)?\s*(?P<unit>.*?)\s*$"
)
_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_OPS = tuple(_COMPARE)
# unit as written (lower-cased, no spaces) -> decimal factor to the normalised unit, per kind of quantity
_UNITS = {
    "time": {"": "1", "ms": "1", "s": "1000"},
    "ratio": {"": "1", "%": "0.01"},
    "req/s": {"": "1", "/s": "1", "rps": "1", "req/s": "1", "req/sec": "1"},
    "percent": {"%": "1", "": "100"},  # cpu, memory, disk: percent; a bare number is a fraction, as for rates
    "number": {"": "1"},  # promql: the query's own unit (given as free text beside it)
    "users": {"": "1", "users": "1"},
    "iterations": {"": "1", "%": "0.01"},  # dropped_iterations: a count, or a share of the scheduled starts
}
# Gated by ``loadgate capacity`` only (from capacity.json): ``run`` skips them, a capacity step ignores them.
CAPACITY_METRICS = ("max_users", "max_throughput", "headroom")
EXPECTED = {
    "time": 'a time like "<200ms" or "<0.5s"',
    "ratio": 'a rate like "<1%" or "<0.01"',
    "req/s": 'a throughput like ">1000/s" or ">50 req/s"',
    "percent": 'a share like "<70%" (or a fraction like "<0.7")',
    "number": 'a number like ">5" (in the query\'s own unit)',
    "regression": 'a tolerated increase like ">10%" (relative to the baseline)',
    "users": 'a number of users like "<1000"',
    "iterations": 'a count like "<1" or a share of the scheduled starts like "<0.5%"',
}
DROPPED = "dropped_iterations"  # the open model's starts that found no free user (counted by the schedule)


@dataclass(frozen=True)
class Condition:
    """One comparison such as ``<200ms``; ``value`` is normalised (ms, a fraction, or req/s)."""

    op: str
    value: float
    unit: str
    text: str

    def holds(self, x: float) -> bool:
        """Whether ``x`` (in the normalised unit) satisfies the comparison."""
        held: bool = _COMPARE[self.op](x, self.value)
        return held


def metric_kind(metric: str) -> str:
    return {
        "error_rate": "ratio",
        "throughput": "req/s",
        "cpu": "percent",
        "memory": "percent",
        "disk": "percent",
        "promql": "number",
        "max_throughput": "req/s",
        "max_users": "users",
        "headroom": "ratio",
        DROPPED: "iterations",
    }.get(metric, "time")


def parse_condition(raw: Any, kind: str, metric: str = "this metric") -> Condition:
    """Parse ``"<200ms"`` for a ``kind`` (time, ratio, req/s, regression); ValueError(what) if bad."""
    if raw is None:
        raise ValueError("no condition given")
    if not isinstance(raw, str):
        if is_number(raw):
            raise ValueError(f"missing comparison operator before {raw!r} (quote it with one of < <= > >=)")
        raise ValueError(f"{quote(raw)} is not a condition")
    m = _CONDITION_RE.match(raw)
    if not m or m.group("num") is None:
        raise ValueError(f"no number in {quote(raw)}")
    op, unit = m.group("op"), m.group("unit").lower().replace(" ", "")
    if not op:
        raise ValueError(f"missing comparison operator in {quote(raw)}")
    if op not in _OPS:
        raise ValueError(f"unknown operator {op!r} in {quote(raw)} (use < <= > >=)")
    units = _UNITS["ratio" if kind == "regression" else kind]
    if unit not in units:
        known = any(unit in table for table in _UNITS.values())
        raise ValueError(
            f"unit {m.group('unit')!r} in {quote(raw)} does not fit {metric}"
            if known
            else f"unknown unit {m.group('unit')!r} in {quote(raw)}"
        )
    # scale in decimal so "0.7%" is the float nearest 0.007 (float 0.7 / 100 is 0.006999...)
    value = float(Decimal(m.group("num")) * Decimal(units[unit]))
    _check_value(raw, op, value, kind, unit)
    unit_name = {"regression": "ratio", "time": "ms", "percent": "%", "number": ""}.get(kind, kind)
    if kind == "iterations" and unit == "%":
        unit_name = "ratio"  # a share of the scheduled starts, shown and compared as a fraction
    return Condition(op, value, unit_name, raw)


def _check_value(raw: str, op: str, value: float, kind: str, unit: str) -> None:
    """ValueError(what) for a level no value can meet or that is out of its kind's range."""
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{quote(raw)} is not a non-negative finite number")
    share = kind == "ratio" or (kind == "iterations" and unit == "%")
    if share and value > 1:
        hint = " (a bare number is a fraction: 0.01 = 1%)" if unit == "" else ""
        raise ValueError(f"{quote(raw)} is above 100%{hint}")
    if kind == "regression" and op not in (">", ">="):
        raise ValueError(f"{quote(raw)} must say how much worse is a regression, with > or >=")
    if (op == "<" and value == 0) or (share and op == ">" and value == 1):
        raise ValueError(f"{quote(raw)} can never hold")


def overlap(target: Condition, alert: Condition) -> bool:
    """True when some value would meet the target and cross the alert at once."""
    if target.op in ("<", "<="):
        return alert.value < target.value or (alert.value == target.value and target.op == "<=" and alert.op == ">=")
    return alert.value > target.value or (alert.value == target.value and target.op == ">=" and alert.op == "<=")


def check_levels(f: FileErrors, line: int, where: str, target: Condition, alert: Condition) -> None:
    """A threshold item's target and alert: opposite directions, and no value that meets one and crosses the other."""
    t_lower = target.op in ("<", "<=")
    level = target.text.strip().lstrip("<>=").strip()
    suggestion = (">" if t_lower else "<") + level
    if t_lower == (alert.op in ("<", "<=")):
        raise f.error(
            line,
            f"{where}.alert",
            f"{quote(alert.text)} points the same way as target {quote(target.text)}, "
            "so runs that meet the target would fail",
            f"the opposite comparison, like {suggestion!r}",
        )
    if overlap(target, alert):
        raise f.error(
            line,
            f"{where}.alert",
            f"{quote(alert.text)} is stricter than target {quote(target.text)} "
            "(a value can meet the target and still fail)",
            f"an alert level at or beyond the target, like {suggestion!r}",
        )
