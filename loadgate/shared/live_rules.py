"""The live view's alert rules, written by the CLI (``rules.json`` in the run directory) and read by the
Locust process that evaluates them (:mod:`loadgate.plugin.live`): one definition for both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

from loadgate.gate.conditions import CAPACITY_METRICS, DROPPED

RULES_PER_TICK = 200  # rules evaluated at most per tick: ~45-65 us each, ~9-13 ms a tick (docs/live-view-cost.md)


@dataclass(frozen=True)
class Rule:
    """One threshold's alert, as the live monitor needs it (JSON-serialisable for the child)."""

    requirement: str
    metric: str
    request: str | None
    op: str
    value: float
    text: str
    abort_on_fail: bool = False
    abort_after: float = 0.0
    window: float = 10.0
    min_requests: int = 1

    @property
    def label(self) -> str:
        return f"{self.requirement} {self.metric}{' [' + self.request + ']' if self.request else ''} {self.text}"


def rules_from_thresholds(files) -> list[dict]:
    """Rules (as dicts) for every threshold with an alert level, from parsed threshold files."""
    out = []
    for tf in files:
        for t in tf.thresholds:
            if (
                t.alert is None or t.resource is not None or t.metric in CAPACITY_METRICS
            ):  # resources: not in the samples; capacity: known only once a search ends
                continue
            if t.metric == DROPPED:  # counted by the arrival schedule, not in the samples the live view sees
                continue
            out.append(
                Rule(
                    t.requirement,
                    t.metric,
                    t.request,
                    t.alert.op,
                    t.alert.value,
                    t.alert.text,
                    t.abort_on_fail,
                    t.abort_after,
                    t.abort_window,
                    t.min_requests,
                ).__dict__
            )
    return out
