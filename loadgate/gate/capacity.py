"""The gate of one capacity step: the same :func:`evaluate` as ``run``, read as pass, fail or unresolved.

A step fails when any alert of the requirement holds, exactly as a run would. Thresholds that bound
throughput from below (``metric: throughput``) and regression thresholds say nothing about a ceiling
of users, so a step leaves them out (a step of 10 users is not expected to carry 1000 req/s).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from loadgate.analysis.summary_doc import SummaryDoc
from loadgate.gate.conditions import CAPACITY_METRICS, DROPPED
from loadgate.gate.headroom import drop_interval, headroom
from loadgate.gate.plan_settings import Peak
from loadgate.gate.status import Status
from loadgate.gate.thresholds import Threshold, ThresholdFile
from loadgate.gate.verdict import ThresholdResult, Verdict, evaluate


@dataclass(frozen=True)
class StepJudgement:
    """A step's status (pass, fail, unresolved-candidate via ``straddles``, inconclusive) and why."""

    status: str  # pass | fail | inconclusive (the verdict's, warn read as pass)
    verdict: Verdict
    straddles: tuple[str, ...]  # thresholds whose 95% CI straddles their alert level
    limit: dict[str, Any] | None  # the most-crossed failing threshold: requirement, metric, request, value, alert


def step_files(files: Mapping[str, ThresholdFile], *, by_rate: bool = False) -> dict[str, ThresholdFile]:
    """The threshold files as a capacity step judges them: without throughput floors and regressions, and
    without dropped iterations unless the search is over arrival rate (``by_rate``: each step has a schedule)."""
    return {
        r: dataclasses.replace(f, thresholds=tuple(t for t in f.thresholds if _judged(t, by_rate)))
        for r, f in files.items()
    }


def _service(files: Mapping[str, ThresholdFile]) -> dict[str, ThresholdFile]:
    return {
        r: dataclasses.replace(
            f,
            thresholds=tuple(
                dataclasses.replace(t, latency="service")
                if t.percentile is not None or t.metric in ("mean", "min", "max")
                else t
                for t in f.thresholds
            ),
        )
        for r, f in files.items()
    }


def _judged(t: Threshold, by_rate: bool = False) -> bool:
    # dropped_iterations: a step of users has no arrival schedule to drop from; a step of a rate has
    return (
        t.metric != "throughput"
        and (by_rate or t.metric != DROPPED)
        and t.regression is None
        and t.metric not in CAPACITY_METRICS
    )


def capacity_results(
    files: Mapping[str, ThresholdFile],
    capacity: Mapping[str, Any],
    *,
    requirements: Sequence[str],
    baseline: Mapping[str, Any] | None = None,
) -> list[ThresholdResult]:
    """``max_users`` / ``max_throughput`` thresholds against a capacity.json document.

    A search that bracketed the limit gives the value; one that stopped at ``--max-users`` or ran out
    of budget gives a lower bound, which decides only when it already meets the level. ``regression:``
    compares ``max_users`` with ``baseline`` (an earlier capacity.json): a drop beyond the tolerance fails.
    """
    out = []
    exact = not capacity.get("inconclusive") and not capacity.get("at_least")
    for req in requirements:
        for t in files[req].thresholds:
            if t.metric not in CAPACITY_METRICS:
                continue
            value, ci = capacity.get(t.metric), None
            label = f"{req} {t.metric}"
            if t.metric == "headroom":
                # the threshold file's parser makes sure there is one
                peak: Peak = files[req].capacity.peak  # type: ignore[union-attr, assignment]
                value, ci = headroom(capacity, peak)
                label += f" (capacity over the peak of {peak.text})"
            elif t.metric == "max_users" and value is None and not capacity.get("inconclusive"):
                value = 0  # not even --start-users passed (the lowest step tried) — still a user count below any level
            elif t.metric == "max_users" and t.regression is not None and baseline:
                ci = drop_interval(baseline, capacity)
            out.append(_capacity_result(t, label, value, exact, baseline, ci))
    return out


def _capacity_result(
    t: Threshold,
    label: str,
    value: float | None,
    exact: bool,
    baseline: Mapping[str, Any] | None,
    ci: tuple[float, float] | None = None,
) -> ThresholdResult:
    """``ci``: for headroom, its values at the bracketing steps; for a regression, the least and the most
    drop the two runs' brackets allow (a fail needs the least drop beyond the tolerance)."""

    def result(
        status: Status,
        shown: float | None,
        why: str | None,
        unit: str = t.unit,
        interval: tuple[float, float] | None = None,
    ) -> ThresholdResult:
        return ThresholdResult(
            t.requirement,
            t.metric,
            t.request,
            t.target.text if t.target else None,
            t.alert.text if t.alert else None,
            shown,
            unit,
            0,
            status,
            None if why is None else f"{why} ({t.source})",
            t.source,
            regression=t.regression.text if t.regression else None,
            baseline=(baseline or {}).get(t.metric) if t.regression else None,
            ci95=interval,
        )

    if value is None:
        return result(Status.INCONCLUSIVE, None, f"{label}: the search found no passing step it could trust")
    if t.regression is not None:
        base = (baseline or {}).get(t.metric)
        if not base:
            return result(
                Status.SKIPPED,
                None,
                f"{label}: no earlier passing capacity run in this --out folder to compare with",
                unit="ratio",
            )
        drop = (base - value) / base  # lower capacity is worse
        least = drop if ci is None else ci[0]
        status = Status.FAIL if t.regression.holds(least) else Status.PASS
        why = (
            f"{label} = {value:g} vs baseline {base:g} ({-drop:+.1%}), a drop beyond {t.regression.text}"
            + ("" if ci is None else f" even at the ends of both runs' brackets (at least {least:.1%})")
            if status == Status.FAIL
            else None
        )
        return result(status, -drop, why, unit="ratio", interval=None if ci is None else (-ci[1], -ci[0]))
    shown = f"{value:.1%}" if t.metric == "headroom" else f"{value:g}"
    within = (
        ""
        if ci is None or t.metric != "headroom"
        else (f" (between {ci[0]:.1%} and {ci[1]:.1%} by the steps that bracket the capacity)")
    )
    return _levels(
        t,
        value,
        shown,
        exact,
        f"{label} = {shown}{within}",
        label,
        lambda status, why: result(status, value, why, interval=ci if t.metric == "headroom" else None),
    )


def _levels(
    t: Threshold,
    value: float,
    shown: str,
    exact: bool,
    named: str,
    label: str,
    result: Callable[[Status, str | None], ThresholdResult],
) -> ThresholdResult:
    """Alert, then target; a lower bound (``exact`` False) decides only when it already meets the level."""
    if t.alert is not None and t.alert.holds(value):
        if exact:
            return result(Status.FAIL, f"{named} crossed alert {t.alert.text}")
        return result(
            Status.INCONCLUSIVE,
            f"{label}: at least {shown}, which does not tell whether it "
            f"crosses alert {t.alert.text}; raise --max-users or --budget",
        )
    if t.target is not None and not t.target.holds(value):
        if exact:
            return result(Status.WARN, f"{named} missed target {t.target.text}")
        return result(
            Status.INCONCLUSIVE,
            f"{label}: at least {shown}, which does not tell whether it "
            f"meets target {t.target.text}; raise --max-users or --budget",
        )
    return result(Status.PASS, None)


def judge_step(
    files: Mapping[str, ThresholdFile],
    summary: SummaryDoc,
    *,
    requirements: Sequence[str],
    problems: Sequence[str] = (),
) -> StepJudgement:
    """Gate one step's summary (``files`` as :func:`step_files` returns them)."""
    verdict = evaluate(files, summary, requirements=requirements, problems=problems)
    if verdict.verdict == Status.INCONCLUSIVE and not verdict.problems:
        # An overloaded step makes iterations outlast their pacing period, and the latency from the
        # schedule is then inconclusive. The service latency is a lower bound of it (a request cannot
        # be answered before it is sent), so an alert crossed by the service latency is a certain fail.
        lower = evaluate(_service(files), summary, requirements=requirements, problems=problems)
        if lower.verdict == Status.FAIL:
            verdict = lower
    by_source = {(t.requirement, t.source, t.metric, t.request): t for f in files.values() for t in f.thresholds}
    straddles, failing = [], []
    for r in verdict.thresholds:
        t = by_source.get((r.requirement, r.source, r.metric, r.request))
        if t is None or t.alert is None or r.status in (Status.INCONCLUSIVE, Status.SKIPPED):
            continue
        if r.ci95 is not None and t.alert.holds(r.ci95[0]) != t.alert.holds(r.ci95[1]):
            straddles.append(_name(r))
        if r.status == Status.FAIL:
            failing.append((_overshoot(r, t), r))
    # A run problem (saturated or late generator) outranks a fail here: the step measured the generator
    status = "inconclusive" if verdict.problems else {"warn": "pass"}.get(verdict.verdict, verdict.verdict)
    limit = None
    if failing:
        r = max(failing, key=lambda pair: pair[0])[1]
        limit = {
            "requirement": r.requirement,
            "metric": r.metric,
            "request": r.request,
            "value": r.value,
            "alert": r.alert,
            "unit": r.unit,
        }
    return StepJudgement(status, verdict, tuple(straddles), limit)


def _name(r: ThresholdResult) -> str:
    return f"{r.requirement} {r.metric}" + (f" of {r.request}" if r.request else "") + f" {r.alert}"


def _overshoot(r: ThresholdResult, t: Threshold) -> float:
    """How far beyond its alert level a failing value is, as a ratio (what broke most)."""
    assert t.alert is not None
    if r.value is None or t.alert.value == 0:
        return float("inf")
    ratio = r.value / t.alert.value
    return ratio if t.alert.op in (">", ">=") else (1 / ratio if ratio else float("inf"))


def best_step(capacity: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The step whose thresholds a capacity run's verdict shows: the highest passing one, else the first."""
    steps = [s for s in capacity.get("steps") or () if isinstance(s, Mapping)]
    key = "rate" if capacity.get("quantity") == "rate" else "users"  # a search over arrival rate, or users
    best = next((s for s in steps if s.get(key) == capacity.get(f"max_{key}") and s.get("status") == "pass"), None)
    return best or (steps[0] if steps else None)


def rejudge_step(
    samples: str, files: Mapping[str, ThresholdFile], capacity: Mapping[str, Any], *, requirements: Sequence[str]
) -> Verdict | None:
    """The verdict of :func:`best_step` judged again from the run's samples file over the window it was
    measured on, as the search judged it (``loadgate gate`` of a capacity run directory). Over arrival rate,
    with the schedule's counts of that window from the run.json beside the samples."""
    from loadgate.analysis.arrival import step_counts
    from loadgate.analysis.steps import step_summary
    from loadgate.data.run_doc import read_run
    from loadgate.gate.thresholds import required_percentiles

    step = best_step(capacity)
    if step is None or step.get("start") is None:
        return None
    by_rate = capacity.get("quantity") == "rate"
    judged = step_files(files, by_rate=by_rate)
    summary = step_summary(
        samples, step["start"], step["end"], requirements=requirements, percentiles=required_percentiles(judged)
    )
    if by_rate:
        blocks = read_run(os.path.dirname(os.path.abspath(samples))).get("arrival") or {}
        summary["arrival"] = step_counts(blocks, requirements, step["start"], step["end"])
    return judge_step(judged, summary, requirements=requirements).verdict
