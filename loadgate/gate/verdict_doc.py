"""The gate's result: :class:`Verdict` and its :class:`ThresholdResult` objects, and the ``verdict.json``
document they make (schema ``loadgate.verdict/1``): its shape, and its one reader.

Its one writer is ``loadgate.outputs.writers.render_verdict_json`` (the text, committed together with
junit.xml); the document comes from ``Verdict.to_dict``. Statuses are written as their text
(:class:`loadgate.gate.status.Status` is a ``str``); read back, they are plain strings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict, cast

from loadgate.data import rundir
from loadgate.gate.status import Status, exit_code

SCHEMA = "loadgate.verdict/1"


class _ThresholdKeys(TypedDict):
    requirement: str
    metric: str
    request: str | None
    target: str | None
    alert: str | None
    value: float | None  # in ``unit``; a regression threshold's: the relative change (ratio)
    unit: str
    requests: int
    status: str  # a Status: pass, warn, fail, inconclusive or skipped
    reason: str | None
    source: str  # the threshold file (and line) it came from


class ThresholdDoc(_ThresholdKeys, total=False):
    """One threshold's result in ``verdict.json``; the keys below are written only when they apply."""

    regression: str  # regression thresholds, with their baseline's value
    baseline: float | None
    ci95: list[float | None]  # with a confidence interval, and whether a level lies inside it
    borderline: bool
    latency: str  # response-time metrics: "intended" (from the schedule) or "service"
    aggregate: str | None  # resource thresholds
    resource_source: str | None


class _VerdictKeys(TypedDict):
    schema: str
    verdict: str  # a Status other than skipped
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


@dataclass(frozen=True)
class ThresholdResult:
    """The outcome of one threshold; ``value`` is in ``unit`` (ms, ratio or req/s)."""

    requirement: str
    metric: str
    request: str | None
    target: str | None
    alert: str | None
    value: float | None
    unit: str
    requests: int
    status: Status
    reason: str | None
    source: str
    regression: str | None = None
    baseline: float | None = None
    ci95: tuple[float, float] | None = None
    borderline: bool = False
    latency: str | None = None  # response-time metrics: "intended" (from the schedule) or "service"
    aggregate: str | None = None  # resource thresholds: how the window's points were aggregated
    resource_source: str | None = None  # resource thresholds: prometheus or local

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))  # a status given as its text becomes a Status

    def to_dict(self) -> ThresholdDoc:
        """The §8 threshold object, plus the additive keys reason, source (and regression, ci95 when set)."""
        out: ThresholdDoc = {
            "requirement": self.requirement,
            "metric": self.metric,
            "request": self.request,
            "target": self.target,
            "alert": self.alert,
            "value": _finite(self.value),
            "unit": self.unit,
            "requests": self.requests,
            "status": self.status,
            "reason": self.reason,
            "source": self.source,
        }
        if self.regression is not None:
            out["regression"] = self.regression
            out["baseline"] = _finite(self.baseline)
        if self.ci95 is not None:
            out["ci95"] = [_finite(self.ci95[0]), _finite(self.ci95[1])]
            out["borderline"] = self.borderline
        if self.latency is not None:
            out["latency"] = self.latency
        if self.resource_source is not None:
            out["aggregate"] = self.aggregate
            out["resource_source"] = self.resource_source
        return out


@dataclass(frozen=True)
class Verdict:
    """The gate's result: overall verdict, its exit code, the reasons and every threshold result."""

    verdict: Status
    exit_code: int
    reasons: tuple[str, ...]
    thresholds: tuple[ThresholdResult, ...]
    strict: bool = False
    problems: tuple[str, ...] = field(default=())
    changes: Mapping[str, Any] | None = None  # with a baseline: the commits since it (loadgate.trace.regression)

    def __post_init__(self) -> None:
        object.__setattr__(self, "verdict", Status(self.verdict))
        if self.exit_code != exit_code(self.verdict):  # the level decides it: gate.status is its one place
            raise ValueError(f"a {self.verdict} verdict exits {exit_code(self.verdict)}, not {self.exit_code}")

    @classmethod
    def of(
        cls,
        level: str,
        reasons: Sequence[str],
        thresholds: Sequence[ThresholdResult],
        strict: bool = False,
        problems: Sequence[str] = (),
    ) -> Verdict:
        """A verdict at ``level``, with the exit code that level has."""
        return cls(Status(level), exit_code(level), tuple(reasons), tuple(thresholds), strict, tuple(problems))

    def to_dict(self) -> VerdictDoc:
        """The ``loadgate.verdict/1`` document (``strict`` and ``changes_since_baseline`` are additive keys)."""
        out: VerdictDoc = {
            "schema": SCHEMA,
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "reasons": list(self.reasons),
            "thresholds": [t.to_dict() for t in self.thresholds],
            "strict": self.strict,
        }
        if self.changes is not None:
            out["changes_since_baseline"] = dict(self.changes)
        return out


def _finite(x: float | None) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None
