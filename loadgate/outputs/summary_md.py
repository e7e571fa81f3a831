"""``summary.md``: the verdict as Markdown for a pull request or a CI job summary (``$GITHUB_STEP_SUMMARY``).

Request names and exception texts come from the system under test: every one is Markdown-escaped.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from loadgate.analysis.summary_doc import RequestStats, SummaryDoc
from loadgate.data.run_doc import RunDoc
from loadgate.gate.thresholds import ThresholdFile
from loadgate.gate.verdict import Verdict, format_value
from loadgate.outputs.arrival_md import arrival_md
from loadgate.outputs.shown import MD_ROWS, listed, more_line
from loadgate.outputs.writers import CONTROL_CHARS, atomic_write, scope_text
from loadgate.units import format_duration

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~&:@$])")


def md_escape(text: Any) -> str:
    """One Markdown table cell from untrusted text: no line breaks, no markup, no HTML."""
    flat = " ".join(CONTROL_CHARS.sub(" ", str(text)).split())
    return _MD_SPECIAL.sub(r"\\\1", flat)


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(md_escape(c) for c in cells) + " |"


def _run_lines(run: RunDoc) -> list[str]:
    """The run's settings, and an imported run's source (where its samples came from)."""
    lines = []
    facts = [
        f"{k.replace('_', ' ')} {md_escape(_run_fact(k, run[k]))}"
        for k in ("users", "spawn_rate", "duration", "warmup", "host", "workers")
        if run.get(k) is not None
    ]
    if facts:
        lines += ["", "Run: " + ", ".join(facts) + "."]
    source = run.get("source")
    if isinstance(source, Mapping):
        lines += [
            "",
            "Samples imported from "
            + md_escape(
                f"{source.get('tool')} {source.get('version') or '(version not recorded)'}: "
                f"{os.path.basename(str(source.get('file')))}, sha256 {source.get('sha256')}"
            )
            + ".",
        ]
    return lines


def render_summary_md(
    verdict: Verdict,
    summary: SummaryDoc | None,
    *,
    run: RunDoc | None = None,
    files: Mapping[str, ThresholdFile] | None = None,
) -> str:
    """The Markdown summary: verdict, reasons, thresholds table, the 5 slowest requests by p95."""
    requirements = list(dict.fromkeys(r.requirement for r in verdict.thresholds))
    lines = [
        f"## loadgate: {verdict.verdict.upper()}"
        + (f" ({md_escape(', '.join(requirements))})" if requirements else ""),
        "",
    ]
    lines.append(
        f"Verdict **{verdict.verdict.upper()}**, exit code {verdict.exit_code}"
        + (" (strict: warnings fail)" if verdict.strict else "")
        + "."
    )
    for req in requirements:
        tf = (files or {}).get(req)
        if tf is not None and tf.title:
            lines.append(f"- {md_escape(req)}: {md_escape(tf.title)}")
    if run:
        lines += _run_lines(run)
    seconds = summary["window"]["seconds"] if summary else None
    if seconds:
        lines += ["", f"Analysis window: {float(seconds):.1f} s."]
    if verdict.reasons:
        lines += ["", "### Reasons", ""] + [f"- {md_escape(reason)}" for reason in verdict.reasons]
    lines += ["", "### Thresholds", ""]
    if verdict.thresholds:
        lines += [
            "| Requirement | Metric | Scope | Value | Target | Alert | Requests | Status |",
            "|---|---|---|---:|---|---|---:|---|",
        ]
        shown, rest = listed(verdict.thresholds, MD_ROWS)
        for r in shown:
            value = format_value(r.value, r.unit, signed=r.regression is not None)
            alert = r.alert or (f"regression {r.regression}" if r.regression else "-")
            lines.append(
                _row(
                    [
                        r.requirement,
                        r.metric,
                        scope_text(r),
                        value,
                        r.target or "-",
                        alert,
                        r.requests,
                        r.status.upper(),
                    ]
                )
            )
        if rest:
            lines += ["", md_escape(more_line(rest))]
    else:
        lines.append("No thresholds were evaluated.")
    lines += _changes_md(verdict.changes) + arrival_md(summary, run, _row, md_escape)
    worst = _slowest(summary)
    if worst:
        lines += [
            "",
            "### Slowest requests (by p95)",
            "",
            "| Request | Requirement | Requests | Errors | p50 | p95 | p99 |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for e in worst:
            times = e.get("response_time_ms") or {}
            lines.append(
                _row(
                    [
                        f"{e.get('request_type', '')} {e.get('name', '')}".strip(),
                        e.get("requirement", ""),
                        e.get("requests", 0),
                        format_value(_float(e.get("error_rate")), "ratio"),
                        *(format_value(_float(times.get(k)), "ms") for k in ("p50", "p95", "p99")),
                    ]
                )
            )
    return "\n".join(lines) + "\n"


def _changes_md(changes: Mapping[str, Any] | None) -> list[str]:
    """The commits since the baseline, for each regressed requirement those referencing it first."""
    if changes is None:
        return []
    span = f"({str(changes.get('from') or '?')[:7]} → {str(changes.get('to') or '?')[:7]})"
    lines = ["", f"### Changes since the baseline {md_escape(changes.get('baseline'))} {md_escape(span)}", ""]
    commits, regressions = changes.get("commits") or [], changes.get("regressions") or {}
    if changes.get("reason"):
        lines.append(f"No commit listed: {md_escape(changes['reason'])}.")
    if changes.get("note"):
        lines.append(f"Note: {md_escape(changes['note'])}.")
    if not regressions:
        lines.append(f"No regression against the baseline; {len(commits)} commit(s) since it.")
    for req, entries in regressions.items():
        mine = sum(1 for e in entries if e.get("references"))
        lines += [""] * (lines[-1] != "") + [
            f"**{md_escape(req)} regressed**: {mine} of {len(entries)} commit(s) "
            "since the baseline reference it (listed first).",
            "",
        ]
        if entries:
            lines += [f"| Commit | Subject | Author | Date | References {md_escape(req)} |", "|---|---|---|---|---|"]
            lines += [
                _row(
                    [
                        str(e.get("commit"))[:7],
                        e.get("subject"),
                        e.get("author"),
                        str(e.get("date"))[:10],
                        "yes" if e.get("references") else "no",
                    ]
                )
                for e in entries
            ]
    return lines


def _run_fact(key: str, value: Any) -> str:
    """``10/s`` for a spawn rate, ``2m`` for durations, the value otherwise."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if key == "spawn_rate":
            return f"{value:g}/s"
        if key in ("duration", "warmup"):
            return format_duration(value)
    return str(value)


def _float(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _slowest(summary: SummaryDoc | None, n: int = 5) -> list[RequestStats]:
    entries = [e for e in (summary["requests"] if summary else ()) if isinstance(e, Mapping)]
    timed = [e for e in entries if _float((e.get("response_time_ms") or {}).get("p95")) is not None]
    return sorted(timed, key=lambda e: -(_float(e["response_time_ms"]["p95"]) or 0.0))[:n]  # each has a p95


def write_summary_md(
    verdict: Verdict,
    summary: SummaryDoc | None,
    path: str | os.PathLike[str],
    *,
    run: RunDoc | None = None,
    files: Mapping[str, ThresholdFile] | None = None,
    step_summary: bool = True,
) -> str:
    """Write ``summary.md``, and (``step_summary``) append it to ``$GITHUB_STEP_SUMMARY`` when that is set.
    Returns its text."""
    text = render_summary_md(verdict, summary, run=run, files=files)
    atomic_write(path, text)
    if step_summary:
        append_step_summary(text)
    return text


def append_step_summary(text: str) -> None:
    """Append ``text`` to ``$GITHUB_STEP_SUMMARY`` when that is set (GitHub Actions' job summary)."""
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as fh:
            fh.write(text + "\n")


# --- terminal --------------------------------------------------------------------------------
