"""``verdict.json`` (schema ``loadgate.verdict/1``): its shape, and its one reader.

Its one writer is ``loadgate.outputs.writers.render_verdict_json`` (the text, committed together with
junit.xml); the document comes from ``Verdict.to_dict``. Statuses are written as their text
(:class:`loadgate.gate.status.Status` is a ``str``); read back, they are plain strings.
"""
from __future__ import annotations

from typing import Any, TypedDict, cast

from loadgate.data import rundir

SCHEMA = "loadgate.verdict/1"


class _ThresholdKeys(TypedDict):
    requirement: str
    metric: str
    request: str | None
    target: str | None
    alert: str | None
    value: float | None            # in ``unit``; a regression threshold's: the relative change (ratio)
    unit: str
    requests: int
    status: str                    # a Status: pass, warn, fail, inconclusive or skipped
    reason: str | None
    source: str                    # the threshold file (and line) it came from


class ThresholdDoc(_ThresholdKeys, total=False):
    """One threshold's result in ``verdict.json``; the keys below are written only when they apply."""

    regression: str                # regression thresholds, with their baseline's value
    baseline: float | None
    ci95: list[float | None]       # with a confidence interval, and whether a level lies inside it
    borderline: bool
    latency: str                   # response-time metrics: "intended" (from the schedule) or "service"
    aggregate: str | None          # resource thresholds
    resource_source: str | None


class _VerdictKeys(TypedDict):
    schema: str
    verdict: str                   # a Status other than skipped
    exit_code: int
    reasons: list[str]
    thresholds: list[ThresholdDoc]
    strict: bool


class VerdictDoc(_VerdictKeys, total=False):
    """The whole ``verdict.json``."""

    changes_since_baseline: dict[str, Any]  # with a baseline: the commits since it (loadgate.trace.regression)


def read_verdict(run_dir: str) -> VerdictDoc:
    """``run_dir``'s verdict.json; ConfigError (naming the file and the fix) when missing or not JSON."""
    return cast(VerdictDoc, rundir.read_json(run_dir, rundir.VERDICT))
