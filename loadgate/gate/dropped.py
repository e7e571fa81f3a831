"""Dropped iterations of an open-model run: the ``dropped_iterations`` metric and the rule that a requirement
whose load was not offered has no trustworthy latency.

An arrival shape hands each scheduled start to a free user of its pool; a start that finds none is
dropped (never queued). The summary's ``arrival`` section counts them over the analysis window
(:mod:`loadgate.analysis.arrival`). ``dropped_iterations`` gates them as a count (``target: <1``) or as a
share of the scheduled starts (``alert: >1%``). When the share is above ``load.arrival.max_dropped``
(default 1%), every latency threshold of the requirement is inconclusive: the target was measured under a
lighter load than the one asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loadgate.gate.arrival import DEFAULT_MAX_DROPPED, ArrivalShape
from loadgate.gate.conditions import DROPPED, Condition
from loadgate.gate.yaml_lines import FileErrors, LineMap

NO_SHAPE = (
    "the run had no arrival shape, so no iteration was scheduled or dropped; give the threshold file "
    "load.arrival (like {rate: 200/s, max_users: 2000}) or run with --arrival-rate to gate it"
)


def check_item(
    f: FileErrors,
    item: LineMap,
    where: str,
    metric: str,
    levels: tuple[Condition | None, Condition | None, Condition | None],
) -> None:
    """A ``dropped_iterations`` item (``levels``: target, alert, regression): one schedule per requirement,
    judged after the run, as a count or a share. Items of other metrics pass."""
    if metric != DROPPED:
        return
    target, alert, regression = levels
    lines = item.key_lines
    if "request" in item:
        raise f.error(
            lines["request"],
            f"{where}.request",
            "dropped_iterations counts the requirement's whole schedule, not one request's",
            "no request key on a dropped_iterations item",
        )
    if regression is not None:
        raise f.error(
            lines["regression"],
            f"{where}.regression",
            "does not apply to dropped_iterations (a baseline's count is often 0, so a relative change says nothing)",
            'a level like alert: ">1%" instead',
        )
    if item.get("abort_on_fail"):
        raise f.error(
            lines["abort_on_fail"],
            f"{where}.abort_on_fail",
            "the live view does not see dropped iterations; they are judged after the run",
            "remove abort_on_fail from this item",
        )
    if target is not None and alert is not None and target.unit != alert.unit:
        forms = {"iterations": "a count", "ratio": "a share"}
        raise f.error(
            lines["alert"],
            f"{where}.alert",
            f"{alert.text!r} is {forms[alert.unit]} but target {target.text!r} is {forms[target.unit]}",
            'both counts (target: "<1", alert: ">100") or both shares (target: "<0.5%", alert: ">1%")',
        )


def _section(summary: Mapping[str, Any], requirement: str) -> Mapping[str, Any] | None:
    section = (summary.get("arrival") or {}).get(requirement)
    return section if isinstance(section, Mapping) else None


def value_of(
    requirement: str, unit: str, min_starts: int, summary: Mapping[str, Any]
) -> tuple[float | None, int, str | None, str]:
    """(value, scheduled starts in the window, why it cannot be judged or None, the label with the counts).

    ``unit`` is ``iterations`` (the count) or ``ratio`` (the share of the scheduled starts)."""
    label = f"{requirement} dropped_iterations"
    section = _section(summary, requirement)
    if section is None:
        return None, 0, f"{label}: {NO_SHAPE}", label
    if section.get("reason"):
        return None, 0, f"{label}: {section['reason']}", label
    scheduled, dropped = int(section.get("scheduled") or 0), int(section.get("dropped") or 0)
    shown = f"{label} ({dropped:,} of {scheduled:,} scheduled starts)"
    if scheduled == 0 or scheduled < min_starts:
        return (
            None,
            scheduled,
            (f"{label}: {scheduled} iterations scheduled in the window, fewer than min_requests {max(min_starts, 1)}"),
            shown,
        )
    return (dropped / scheduled if unit == "ratio" else float(dropped)), scheduled, None, shown


def not_offered(requirement: str, shape: ArrivalShape | None, summary: Mapping[str, Any]) -> str | None:
    """Why the requirement's latency cannot be judged because too many of its starts were dropped, or None."""
    section = _section(summary, requirement)
    if section is not None and section.get("reason"):  # no counts: a pass could hide a load never offered
        return f"whether the load asked for was offered cannot be told: {section['reason']}"
    share = section.get("dropped_share") if section is not None else None
    limit = shape.max_dropped if shape is not None else DEFAULT_MAX_DROPPED
    if section is None or not isinstance(share, (int, float)) or share <= limit:
        return None
    pool = f"max_users {section['max_users']}" if section.get("max_users") else "max_users"
    return (
        f"the load asked for was not offered: {int(section['dropped']):,} of {int(section['scheduled']):,} "
        f"iterations ({_pct(share)}) were dropped because no user of the pool ({pool}) was free, above "
        f"load.arrival.max_dropped {_pct(limit)}; raise max_users or lower the rate"
    )


def _pct(share: float) -> str:
    return f"{share * 100:.3g}%"
