"""What a notification says, as plain facts (no markup): each format module escapes and lays them out.

Untrusted text (request names, server error messages in the reasons) stays as it came; only the
formatters may turn it into markup, each with its own escaping.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loadgate.data import rundir
from loadgate.data.run_doc import RunDoc
from loadgate.gate.status import Status
from loadgate.gate.verdict import format_value
from loadgate.gate.verdict_doc import ThresholdDoc, VerdictDoc
from loadgate.notify.select import requirement_of
from loadgate.units import format_duration

MAX_LINES = 20  # thresholds, deltas or reasons listed in one message; the rest are counted


@dataclass(frozen=True)
class Line:
    """One breached threshold: what, its value, the level it crossed, where that level is written."""

    requirement: str
    metric: str
    request: str | None
    value: str
    level: str
    status: str
    source: str


@dataclass(frozen=True)
class Message:
    verdict: str
    exit_code: int
    run_id: str
    requirements: tuple[tuple[str, str, str], ...]  # (id, title, outcome)
    because: tuple[str, ...]  # the on: words that made it send
    breached: tuple[Line, ...]
    more_breached: int
    reasons: tuple[str, ...]  # run-level reasons (interrupted, saturated, ...): untrusted
    delta: tuple[str, ...]  # the baseline comparison, one line per metric
    baseline: str | None
    duration: str
    users: str
    commit: str
    report: str  # a URL (--report-url) or the report's path
    report_is_url: bool
    errors: tuple[tuple[str, str, int], ...] = ()  # the commonest failures: (request, server's message, count)
    documents: dict[str, Any] = field(default_factory=dict, compare=False)  # verdict, comparison: for the webhook

    @property
    def headline(self) -> str:
        reqs = ", ".join(r for r, _t, _o in self.requirements)
        recovered = " (recovered)" if "recovered" in self.because and self.verdict in (Status.PASS, Status.WARN) else ""
        return f"{self.verdict.upper()}{recovered}: {reqs}"


def _line(t: ThresholdDoc) -> Line:
    status = t["status"]
    if t.get("regression"):
        level = f"regression {t.get('regression')} vs baseline {format_value(t.get('baseline'), t['unit'])}"
        value = format_value(t["value"], "ratio", signed=True) + " change"
    else:
        level = (
            f"alert {t['alert']}"
            if status == Status.FAIL and t["alert"]
            else f"target {t['target']}"
            if t["target"]
            else f"alert {t['alert']}"
        )
        value = format_value(t["value"], t["unit"] or "")
    if status == Status.INCONCLUSIVE:
        level = t["reason"] or "not enough data"
    return Line(", ".join(requirement_of(t)), t["metric"], t["request"], value, level, status, t["source"] or "")


def _signed(x: float | None, absolute: bool) -> str:
    """A change: relative (+12.3%), or for the error rate a difference in percentage points (+0.8 pp)."""
    return "-" if x is None else f"{x * 100:+.3g} pp" if absolute else format_value(x, "ratio", signed=True)


def _delta(comparison: Mapping[str, Any] | None, scope: Sequence[str]) -> tuple[str, ...]:
    if not comparison:
        return ()
    out = []
    rows = [r for r in comparison.get("requests") or () if set(requirement_of(r)) & set(scope)]
    for r in sorted(rows, key=lambda r: (r.get("request_type") is not None, r.get("status") != "regression")):
        if r.get("request_type") is not None and r.get("status") != "regression":
            continue  # per request: only the regressions; the requirement-wide rows always
        absolute = r.get("change_kind") == "absolute"
        ci = r.get("ci")
        shown = f" (95% CI {_signed(ci[0], absolute)}..{_signed(ci[1], absolute)})" if ci else ""
        change = _signed(r.get("change"), absolute)
        where = f"{r['request_type']} {r['name']}" if r.get("request_type") else r.get("requirement")
        unit = "ratio" if r.get("metric") == "error_rate" else "ms"
        out.append(
            f"{where} {r.get('metric')}: {format_value(r.get('baseline'), unit)} -> "
            f"{format_value(r.get('candidate'), unit)}, {change}{shown}: {r.get('status')}"
        )
    return tuple(out)


def top_errors(run_dir: str, run: RunDoc, limit: int = 3) -> tuple[tuple[str, str, int], ...]:
    """The commonest failed requests of the analysis window, by request and message (untrusted text)."""
    from loadgate.analysis.run_window import run_window
    from loadgate.outputs.charts import errors

    path = os.path.join(run_dir, rundir.SAMPLES)
    if not os.path.isfile(path):
        return ()
    w = run_window(run)
    groups = errors(path, {"start": w.start, "end": w.end}, limit=limit)["groups"]
    return tuple(
        (f"{g['request_type']} {g['name']}".strip(), str(g["message"]), int(g["in_window"] or g["count"]))
        for g in groups
    )


def report_location(run_dir: str, report_url: str | None) -> tuple[str, bool]:
    """``--report-url`` with ``{run_id}`` filled in, else the report's absolute path."""
    run_id = os.path.basename(os.path.normpath(run_dir))
    if report_url:
        return report_url.replace("{run_id}", run_id), True
    return os.path.abspath(os.path.join(run_dir, rundir.REPORT)), False


def build(
    run_dir: str,
    verdict: VerdictDoc,
    run: RunDoc,
    comparison: Mapping[str, Any] | None,
    titles: Mapping[str, str],
    outcomes: Mapping[str, str],
    scope: Sequence[str],
    because: Sequence[str],
    report_url: str | None,
    errors: tuple[tuple[str, str, int], ...] = (),
) -> Message:
    """The message for a target covering ``scope`` (a subset of the run's requirements)."""
    in_scope = [t for t in verdict["thresholds"] if set(requirement_of(t)) & set(scope)]
    bad = [t for t in in_scope if t["status"] in (Status.FAIL, Status.WARN, Status.INCONCLUSIVE)]
    bad.sort(key=lambda t: (Status.FAIL, Status.INCONCLUSIVE, Status.WARN).index(Status(t["status"])))
    own = {t["reason"] for t in verdict["thresholds"]}
    reasons = tuple(str(r) for r in verdict["reasons"] if r not in own)
    start, end, ramp = run.get("start"), run.get("end"), run.get("ramp_up_done")
    measured = f", {format_duration(round(end - ramp, 1))} at full load" if end and ramp else ""
    git = run.get("git") or {}
    commit = (
        (str(git["commit"])[:12] + (" (uncommitted changes)" if git.get("dirty") else "")) if git.get("commit") else "-"
    )
    users = run.get("users_reached") or run.get("users")
    report, is_url = report_location(run_dir, report_url)
    return Message(
        verdict=verdict["verdict"],
        exit_code=verdict["exit_code"],
        run_id=os.path.basename(os.path.normpath(run_dir)),
        requirements=tuple((r, titles.get(r, ""), outcomes.get(r, "")) for r in scope),
        because=tuple(because),
        breached=tuple(_line(t) for t in bad[:MAX_LINES]),
        more_breached=max(0, len(bad) - MAX_LINES),
        reasons=reasons[:MAX_LINES],
        delta=_delta(comparison, scope)[:MAX_LINES],
        baseline=(comparison or {}).get("baseline"),
        duration=(format_duration(round(end - start, 1)) + measured) if start and end else "-",
        users=str(users) if users is not None else "-",
        commit=commit,
        report=report,
        report_is_url=is_url,
        errors=errors if verdict["verdict"] != Status.PASS else (),
        documents={"verdict": dict(verdict), "comparison": comparison},
    )


def plain_lines(m: Message) -> list[str]:
    """The message as plain text lines (the email's text part; the Slack fallback's first line)."""
    out = [m.headline, ""]
    out += [f"{r}: {t} ({o})" if t else f"{r} ({o})" for r, t, o in m.requirements]
    out += [
        f"verdict: {m.verdict} (exit {m.exit_code}); sent because: {', '.join(m.because)}",
        f"run: {m.run_id}; duration {m.duration}; users {m.users}; commit {m.commit}",
    ]
    if m.breached:
        out += ["", "Thresholds not met:"]
        out += [
            f"- {b.requirement} {b.metric}"
            + (f" of {b.request}" if b.request else "")
            + f": {b.value}, {b.level} ({b.status}) at {b.source}"
            for b in m.breached
        ]
        out += [f"- and {m.more_breached} more"] if m.more_breached else []
    if m.delta:
        out += ["", f"Against baseline {m.baseline}:"] + [f"- {d}" for d in m.delta]
    if m.reasons:
        out += ["", "Reasons:"] + [f"- {r}" for r in m.reasons]
    if m.errors:
        out += ["", "Commonest errors:"] + [f"- {n}x {r}: {e}" for r, e, n in m.errors]
    out += ["", f"Report: {m.report}"]
    return out
