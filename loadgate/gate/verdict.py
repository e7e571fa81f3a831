"""The gate: thresholds x ``summary.json`` -> a Verdict (statuses, reasons, exit code).

A failed threshold is a result, never an exception; only a gate that cannot be set up (a requirement
without a threshold file) raises ConfigError.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from loadgate.analysis.summary_doc import Stats, SummaryDoc
from loadgate.errors import ConfigError
from loadgate.gate import dropped
from loadgate.gate.bulk import collector_paused
from loadgate.gate.conditions import CAPACITY_METRICS, DROPPED, Condition, metric_kind
from loadgate.gate.scope import Requests, scope_of
from loadgate.gate.status import ATTENTION, Status, worse
from loadgate.gate.thresholds import Threshold, ThresholdFile
from loadgate.gate.verdict_doc import SCHEMA, ThresholdResult, Verdict
from loadgate.sources.collect import by_key as resource_values

__all__ = ["SCHEMA", "Status", "ThresholdResult", "Verdict", "evaluate", "format_value"]
# Run problems that say the load generator measured its own delay: no response time or throughput it
# measured can fail (or warn) a threshold, only make it inconclusive (loadgate/run/problems.py words them).
GENERATOR_SATURATED, GENERATOR_BEHIND = "load generator saturated", "load generator behind schedule"
REASONS_LISTED = 50  # threshold reasons a verdict lists; the rest are counted in one line
GENERATOR_BOUND = ("time", "req/s")  # the metric kinds a late generator distorts (errors stay the target's)
# (threshold, its scope's STATS in the summary) -> 95% CI of a regression threshold's relative change
Significance = Callable[[Threshold, Stats], tuple[float, float] | None]


def format_value(value: float | None, unit: str, *, signed: bool = False) -> str:
    """``612.3 ms``, ``1.23%``, ``412.5 req/s``; ``-`` for no value."""
    if value is None or not math.isfinite(value):
        return "-"
    if unit == "ratio":
        pct = abs(value) * 100
        if pct == 0:
            text = "0%"
        elif pct < 0.001:
            text = "<0.001%"
        else:
            digits = f"{pct:#.3g}".rstrip(".")  # 3 significant digits, trailing zeros kept: 0.200%
            text = (f"{pct:.0f}" if "e" in digits else digits) + "%"
        sign = "-" if value < 0 else "+" if signed and value > 0 else ""
        return sign + text
    if unit == "%":
        return f"{value:.1f}%"
    if unit == "iterations":
        return f"{value:,.0f} iterations"
    return f"{value:.1f} {unit}".rstrip()


# --- scope and metric lookup -----------------------------------------------------------------


def _metric(metric: str, stats: Stats, latency: str | None = None) -> tuple[float | None, str | None]:
    """The metric's value in ``stats`` (a response time from the ``latency`` asked for), or None and why not."""
    value: float | None
    if metric == "error_rate":
        value = stats["error_rate"]
    elif metric == "throughput":
        value = stats["throughput"]
    else:
        times = _times(stats, latency) or {}
        if metric not in times:
            return None, f"the summary has no {metric} for this scope (analysis did not compute it)"
        value = times[metric]
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None, f"the summary has no usable {metric} value for this scope"
    return float(value), None


def _times(stats: Stats, latency: str | None) -> dict[str, float | None] | None:
    """The response times of the ``latency`` asked for (service by default)."""
    return stats.get("intended_response_time_ms") if latency == "intended" else stats["response_time_ms"]


def _cis(stats: Stats, latency: str | None) -> dict[str, list[float] | None] | None:
    """The response times' 95% confidence intervals of the ``latency`` asked for."""
    if latency == "intended":
        return stats.get("intended_response_time_ci95_ms")
    return stats.get("response_time_ci95_ms")  # absent from a summary written before they were computed


ON_TIME_MIN = 0.5  # fewer paced iterations than this share starting on their slot: the schedule was never met


def _latency(t: Threshold, stats: Stats, label: str) -> tuple[str | None, str | None]:
    """Which latency a threshold gates in this scope, and why it cannot be trusted (None: it can).

    Response-time thresholds of a scope with paced requests gate the latency from the schedule unless
    they say ``latency: service``; other metrics and regression thresholds have no choice to make.
    """
    if t.unit != "ms" or t.regression is not None:
        return None, None
    paced = int(stats.get("paced_requests") or 0)
    kind = t.latency or ("intended" if paced else "service")
    if kind != "intended":
        return kind, None
    if not paced or not stats.get("intended_response_time_ms"):
        return kind, (
            f"{label}: latency: intended, but no request in this scope came from a paced user "
            "(constant_throughput or constant_pacing); pace the users or gate latency: service"
        )
    on_time, attainment = stats.get("on_time"), stats.get("schedule_attainment")
    if on_time is not None and on_time < ON_TIME_MIN:
        return kind, (
            f"{label}: the schedule was never met: {on_time:.0%} of the paced iterations started on "
            f"their slot (schedule attainment {attainment:.0%}); the pacing period is shorter than an "
            "iteration takes, so the latency from the schedule measures the pacing, not the target"
        )
    return kind, None


def _stall(t: Threshold, stats: Stats, summary: SummaryDoc, label: str) -> str | None:
    """Why a stall makes a percentile (or max) threshold inconclusive: it hid more than the gated tail."""
    q = 100.0 if t.metric == "max" else t.percentile
    hidden = int(stats.get("stall_hidden") or 0)
    if q is None or t.regression is not None or hidden == 0:
        return None
    seen = stats["requests"]
    if hidden <= (1 - q / 100) * (seen + hidden):
        return None
    stalls = sorted(summary.get("stalls") or (), key=lambda s: -s.get("seconds", 0))
    where = ""
    if stalls:
        s = stalls[0]
        when = dt.datetime.fromtimestamp(s["start"], dt.timezone.utc).strftime("%H:%M:%S UTC")
        where = (
            f" at {when} for {s['seconds']:.1f} s ({s['users']} of {s['active_users']} users blocked"
            + (f"; {len(stalls)} stalls in all" if len(stalls) > 1 else "")
            + ")"
        )
    return (
        f"{label}: the target stalled{where}: about {hidden} requests the unpaced users would have sent "
        f"are missing, more than the {100 - q:g}% tail {t.metric} looks at; pace the users "
        "(constant_throughput) to measure latency from the schedule"
    )


# --- one threshold ---------------------------------------------------------------------------


def _result(
    t: Threshold, status: Status, value: float | None, requests: int, why: str | None, **extra: Any
) -> ThresholdResult:
    """A result for ``t``; a regression threshold's value is a relative change (unit ratio)."""
    return ThresholdResult(
        t.requirement,
        t.metric,
        t.request,
        t.target.text if t.target else None,
        t.alert.text if t.alert else None,
        value,
        "ratio" if t.regression else t.unit,
        requests,
        status,
        None if why is None else f"{why} ({t.source})",
        t.source,
        regression=t.regression.text if t.regression else None,
        **extra,
    )


def _levels(t: Threshold, value: float, requests: int, label: str, **extra: Any) -> ThresholdResult:
    shown = f"{label} = {format_value(value, t.unit)}"
    if t.alert is not None and t.alert.holds(value):
        return _result(t, Status.FAIL, value, requests, f"{shown} crossed alert {t.alert.text}", **extra)
    if t.target is not None and not t.target.holds(value):
        return _result(t, Status.WARN, value, requests, f"{shown} missed target {t.target.text}", **extra)
    return _result(t, Status.PASS, value, requests, None, **extra)


def _resource_one(t: Threshold, summary: SummaryDoc) -> ThresholdResult:
    """A resource threshold: its value from the summary's ``resources`` block (``requests`` = points)."""
    assert t.resource is not None
    label = f"{t.requirement} {t.metric} ({t.resource.aggregate}, {t.resource.source})"
    extra = {"aggregate": t.resource.aggregate, "resource_source": t.resource.source}
    entry = resource_values(summary).get(t.source)
    if entry is None:
        return _result(
            t,
            Status.INCONCLUSIVE,
            None,
            0,
            f"{label}: no resource values in the summary (re-run 'loadgate gate' to collect them)",
            **extra,
        )
    points, value = int(entry.get("points") or 0), entry.get("value")
    if entry.get("skipped"):
        return _result(t, Status.SKIPPED, None, 0, entry.get("reason") or f"{label}: skipped", **extra)
    if entry.get("reason") or not isinstance(value, (int, float)) or not math.isfinite(value):
        return _result(t, Status.INCONCLUSIVE, None, points, entry.get("reason") or f"{label}: no value", **extra)
    return _levels(t, float(value), points, label, **extra)


def _evaluate_one(
    t: Threshold,
    summary: SummaryDoc,
    baseline: SummaryDoc | None,
    significance: Significance | None = None,
    index: Requests | None = None,
    base_index: Requests | None = None,
    not_offered: str | None = None,
) -> ThresholdResult:
    """``not_offered``: why the requirement's latency cannot be judged (its arrival shape dropped too many starts)."""
    if t.resource is not None:
        return _resource_one(t, summary)
    if t.metric == DROPPED:  # from the summary's arrival section; ``requests`` = the scheduled starts
        value, starts, why, label = dropped.value_of(t.requirement, t.unit, t.min_requests, summary)
        return _result(t, Status.INCONCLUSIVE, None, starts, why) if why else _levels(t, value or 0.0, starts, label)
    label = f"{t.requirement} {t.metric}" + (f" [{t.request}]" if t.request else "")
    if t.metric in CAPACITY_METRICS:  # a property of a capacity search, not of one run's window
        return _result(t, Status.SKIPPED, None, 0, f"{label}: gated by 'loadgate capacity' only")
    stats, why = scope_of(t, index or Requests(summary))
    requests = stats["requests"] if stats else 0
    if stats is None:
        return _result(t, Status.INCONCLUSIVE, None, 0, f"{label}: {why}")
    latency, untrusted = _latency(t, stats, label)
    if latency == "intended":
        label += " (intended)"
    value, why = _metric(t.metric, stats, latency) if requests else (None, None)
    if not_offered is not None and t.unit == "ms":  # every latency of the requirement, intended or not
        return _result(
            t,
            Status.INCONCLUSIVE,
            None if t.regression else value,
            requests,
            f"{label}: {not_offered}",
            latency=latency,
        )
    if requests == 0 or requests < t.min_requests:
        return _result(
            t,
            Status.INCONCLUSIVE,
            None if t.regression else value,
            requests,
            f"{label}: {requests} requests in the window, fewer than min_requests {t.min_requests}",
        )
    if untrusted is None:
        untrusted = _stall(t, stats, summary, label)
    if untrusted is not None:
        return _result(
            t, Status.INCONCLUSIVE, None if latency == "intended" else value, requests, untrusted, latency=latency
        )
    if value is None:
        return _result(t, Status.INCONCLUSIVE, None, requests, f"{label}: {why}", latency=latency)
    if t.regression is not None:
        interval = (lambda: significance(t, stats)) if significance is not None else None  # noqa: E731
        return _regression(
            t,
            t.regression,
            label,
            value,
            requests,
            baseline,
            interval,
            base_index or (Requests(baseline) if baseline is not None else None),
        )
    ci = _ci95(t, stats, latency)
    borderline = ci is not None and any(c.holds(ci[0]) != c.holds(ci[1]) for c in (t.alert, t.target) if c)
    extra = {"ci95": ci, "borderline": borderline} if ci is not None else {}
    extra["latency"] = latency
    return _levels(t, value, requests, label, **extra)


def _ci95(t: Threshold, stats: Stats, latency: str | None = None) -> tuple[float, float] | None:
    pair = (_cis(stats, latency) or {}).get(t.metric) if t.unit == "ms" else None
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        return None
    try:
        lo, hi = float(pair[0]), float(pair[1])
    except (TypeError, ValueError):
        return None
    return (lo, hi) if math.isfinite(lo) and math.isfinite(hi) else None


def _regression(
    t: Threshold,
    cond: Condition,
    label: str,
    value: float,
    requests: int,
    baseline: SummaryDoc | None,
    interval: Callable[[], tuple[float, float] | None] | None = None,
    base_index: Requests | None = None,
) -> ThresholdResult:
    """Relative change versus the baseline, in the direction that is worse (throughput: a drop).

    With ``interval`` (the change's 95% CI from the raw samples) it fails only when the whole interval
    is beyond the limit: run-to-run noise does not fail a build, and a crossing inside it is borderline.
    """
    if baseline is None:
        return _result(
            t,
            Status.SKIPPED,
            None,
            requests,
            f"no baseline run yet for {t.requirement}: regression "
            f"threshold skipped ({t.metric}{' [' + t.request + ']' if t.request else ''} {cond.text})",
        )
    base_stats, why = scope_of(t, base_index or Requests(baseline))
    base, why = _metric(t.metric, base_stats) if base_stats else (None, why)
    if base is None:
        return _result(
            t, Status.SKIPPED, None, requests, f"{label}: baseline has no value ({why}); regression threshold skipped"
        )
    if base == 0:
        return _result(
            t,
            Status.SKIPPED,
            None,
            requests,
            f"{label}: baseline value is 0, so a relative change is undefined; regression threshold skipped",
            baseline=base,
        )
    change = (base - value) / base if t.metric == "throughput" else (value - base) / base
    shown = (
        f"{label} = {format_value(value, t.unit)} vs baseline {format_value(base, t.unit)} "
        f"({format_value(change, 'ratio', signed=True)} worse)"
    )
    ci = interval() if interval is not None else None
    extra = {"ci95": ci, "borderline": cond.holds(ci[0]) != cond.holds(ci[1])} if ci is not None else {}
    if cond.holds(change) and (ci is None or cond.holds(ci[0])):
        shown += (
            f", 95% CI {format_value(ci[0], 'ratio', signed=True)}..{format_value(ci[1], 'ratio', signed=True)}"
            if ci is not None
            else ""
        )
        return _result(
            t, Status.FAIL, change, requests, f"{shown} crossed regression {cond.text}", baseline=base, **extra
        )
    return _result(t, Status.PASS, change, requests, None, baseline=base, **extra)


# --- the verdict -----------------------------------------------------------------------------


def evaluate(
    files: Mapping[str, ThresholdFile],
    summary: SummaryDoc,
    *,
    requirements: Sequence[str] | None = None,
    strict: bool = False,
    problems: Sequence[str] = (),
    baseline: SummaryDoc | None = None,
    aborted: str | None = None,
    interrupted: str | None = None,
    significance: Significance | None = None,
) -> Verdict:
    """Evaluate every threshold of the chosen requirements against ``summary`` (a summary.json dict).

    ``requirements`` defaults to every file whose requirement appears in the summary. ``problems`` are
    run-level problems (crashed, saturated): each becomes a reason and makes the verdict at least
    inconclusive. Under ``strict`` a warn counts as fail for the verdict and exit code. ``aborted``
    (abort_on_fail stopped the run) makes it fail; ``interrupted`` (SIGINT/SIGTERM) makes it
    inconclusive whatever the partial data says, since nobody can tell what the rest would have shown.
    ``significance`` gives a regression threshold the 95% CI of its change (see ``_regression``).
    """
    in_summary = summary["requirements"]
    if requirements is None:
        chosen = [r for r in files if r in in_summary]
    else:
        chosen = list(dict.fromkeys(requirements))
        missing = [r for r in chosen if r not in files]
        if missing:
            known = ", ".join(sorted(files)) or "none"
            raise ConfigError(f"{missing[0]}: no threshold file defines this requirement; expected one of {known}")
    run_problems = [str(p) for p in problems]
    if interrupted:
        run_problems.insert(0, interrupted)
    for req in chosen:  # a requirement-wide shortfall is a run problem: no threshold of it is trustworthy
        minimum, total = files[req].load.min_requests, in_summary[req]["requests"] if req in in_summary else 0
        if minimum is not None and total < minimum:
            run_problems.append(
                f"{req}: {total} requests in the window, fewer than load.min_requests {minimum} ({files[req].path})"
            )
    reasons = ([aborted] if aborted else []) + list(run_problems)
    results: list[ThresholdResult] = []
    level = Status.FAIL if aborted else Status.INCONCLUSIVE if run_problems else Status.PASS
    index, base_index = Requests(summary), Requests(baseline) if baseline is not None else None
    behind = any(p.startswith((GENERATOR_SATURATED, GENERATOR_BEHIND)) for p in run_problems)
    with collector_paused():  # thousands of results: no collector passes over them as they are made
        for req in chosen:
            shortfall = dropped.not_offered(req, files[req].load.arrival, summary)
            for t in files[req].thresholds:
                r = _evaluate_one(t, summary, baseline, significance, index, base_index, shortfall)
                if (
                    behind
                    and r.status in (Status.FAIL, Status.WARN)
                    and t.resource is None
                    and metric_kind(t.metric) in GENERATOR_BOUND
                ):
                    r = dataclasses.replace(
                        r,
                        status=Status.INCONCLUSIVE,
                        reason=f"{r.reason}; not trusted: the load "
                        "generator fell behind (see above), so this measures its delay as much "
                        "as the target's",
                    )
                results.append(r)
                if r.status != Status.SKIPPED:
                    level = worse(level, Status.FAIL if strict and r.status == Status.WARN else r.status)
    reasons += _threshold_reasons(results)
    if not results:
        seen = ", ".join(sorted(in_summary)) or "none"
        reasons.append(f"no thresholds to evaluate: no threshold file matches the requirements in the summary ({seen})")
        level = worse(level, Status.INCONCLUSIVE)
    if interrupted:
        level = Status.INCONCLUSIVE
    return Verdict.of(level, reasons, results, strict, run_problems)


def _threshold_reasons(results: Sequence[ThresholdResult]) -> list[str]:
    """The thresholds' reasons, in order; past ``REASONS_LISTED``, the most pressing (fail, warn, then
    inconclusive and skipped) and one line counting the rest (each result keeps its own reason)."""
    with_reason = [r for r in results if r.reason]
    if len(with_reason) <= REASONS_LISTED:
        return [r.reason for r in with_reason if r.reason]
    ranked = sorted(with_reason, key=lambda r: ATTENTION[r.status])  # stable: in order within a status
    rest = ranked[REASONS_LISTED:]
    counts = {s: sum(1 for r in rest if r.status == s) for s in ATTENTION}
    parts = ", ".join(f"{n:,} {s}" for s, n in counts.items() if n)
    return [r.reason for r in ranked[:REASONS_LISTED] if r.reason] + [
        f"and {len(rest):,} more thresholds with a reason ({parts}): each one's is in verdict.json"
    ]
