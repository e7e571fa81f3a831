"""Verdict outputs: ``verdict.json``, ``junit.xml``, ``summary.md`` and the terminal table.

Request names and exception texts come from the system under test: every one is escaped for the
format it lands in (XML, Markdown, a terminal).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import socket
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from loadgate.analysis.summary_doc import RequestStats, SummaryDoc
from loadgate.data.run_doc import RunDoc
from loadgate.gate.status import Status
from loadgate.gate.thresholds import ThresholdFile
from loadgate.gate.verdict import ThresholdResult, Verdict, format_value
from loadgate.outputs.arrival_md import arrival_md
from loadgate.outputs.shown import JUNIT_CASES, MD_ROWS, RANK, listed, more_line
from loadgate.units import format_duration

# XML 1.0 forbids these code points outright, even escaped
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
# C0/C1 controls (ESC starts terminal escape sequences) and DEL
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~&:@$])")
_ANSI = {"pass": "32", "warn": "33", "fail": "31;1", "inconclusive": "35", "skipped": "2"}


def _atomic_write(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` so readers never see half a file."""
    target = os.fspath(path)
    tmp = _temp_of(target)
    # not mkstemp: its 0600 would hide junit.xml and summary.md from other users, unlike the run's other files
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except OSError as e:
        os.unlink(tmp)
        raise OSError(e.errno, e.strerror, target) from None  # the file meant, not its temp name
    except BaseException:
        os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write a rendered output (UTF-8, ``\n`` line ends: its bytes are ``text.encode()``) atomically."""
    _atomic_write(path, text)


def commit_texts(texts: Mapping[str, str]) -> None:
    """Write several rendered outputs (path -> text) all or none: each to a temp file, then every one
    renamed into place (a rename needs no room), so a full disk never leaves one without the others."""
    temps: dict[str, str] = {}
    try:
        for path, text in texts.items():
            temps[path] = _temp_of(path)
            try:
                _atomic_write(temps[path], text)
            except OSError as e:
                raise OSError(e.errno, e.strerror, path) from None
        for path, tmp in temps.items():
            os.replace(tmp, path)
    finally:
        for tmp in temps.values():
            if os.path.exists(tmp):
                os.unlink(tmp)


def _temp_of(path: str) -> str:
    return os.path.join(os.path.dirname(path) or ".", f".tmp-{secrets.token_hex(6)}-{os.path.basename(path)}")


def render_verdict_json(verdict: Verdict) -> str:
    """The text of ``verdict.json`` (schema ``loadgate.verdict/1``): indented, each threshold's object on one
    line (smaller than indenting each, for runs with thousands of thresholds)."""
    doc = verdict.to_dict()
    rows, doc["thresholds"] = doc["thresholds"], []
    text = json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False)
    if rows:  # reasons come before the thresholds key, and quotes inside them are escaped: this is the key
        body = ",\n".join("    " + json.dumps(t, ensure_ascii=False, allow_nan=False) for t in rows)
        text = text.replace('"thresholds": []', '"thresholds": [\n' + body + "\n  ]", 1)
    return text + "\n"


def write_verdict_json(verdict: Verdict, path: str | os.PathLike[str]) -> None:
    """Write ``verdict.json`` (schema ``loadgate.verdict/1``)."""
    _atomic_write(path, render_verdict_json(verdict))


def _scope(r: ThresholdResult) -> str:
    if r.resource_source:
        return f"{r.aggregate} ({r.resource_source})"
    return r.request if r.request else "the schedule's starts" if r.metric == "dropped_iterations" else "all requests"


def _levels(r: ThresholdResult) -> str:
    parts = [f"{k} {v}" for k, v in (("target", r.target), ("alert", r.alert), ("regression", r.regression)) if v]
    return ", ".join(parts)


def _headline(r: ThresholdResult) -> str:
    """``p95 = 612.3 ms`` (a regression: the relative change)."""
    return f"{r.metric} = {format_value(r.value, r.unit, signed=r.regression is not None)}"


# --- junit.xml -------------------------------------------------------------------------------

def _x(text: Any) -> str:
    """A string safe to put in XML 1.0 (ElementTree escapes <, &, quotes but not illegal characters)."""
    return _XML_ILLEGAL.sub("", str(text))


def _case_message(r: ThresholdResult) -> str:
    if r.status == "fail":
        crossed = f"regression {r.regression}" if r.regression else f"alert {r.alert}"
        return f"{_headline(r)} crossed {crossed}"
    if r.status == "warn":
        return f"{_headline(r)} missed target {r.target}"
    if r.reason:
        return r.reason
    return f"{_headline(r)} ({_levels(r)})"


def write_junit(verdict: Verdict, path: str | os.PathLike[str], *, files: Mapping[str, ThresholdFile] | None = None,
                timestamp: datetime | float | None = None, hostname: str | None = None) -> None:
    """Write ``junit.xml``: one testsuite per requirement, one testcase per threshold (Jenkins junit-10 XSD).

    A requirement with more than ``JUNIT_CASES`` thresholds lists that many (fail, warn, inconclusive first)
    and one testcase per status for the rest, which verdict.json lists one by one."""
    _atomic_write(path, render_junit(verdict, files=files, timestamp=timestamp, hostname=hostname))


# Over the size/complexity limit (noqa): one suite per requirement, one case per threshold.
def render_junit(verdict: Verdict, *, files: Mapping[str, ThresholdFile] | None = None,  # noqa: C901
                 timestamp: datetime | float | None = None, hostname: str | None = None) -> str:
    """The text of ``junit.xml`` (see :func:`write_junit`)."""
    when = timestamp if isinstance(timestamp, datetime) else (
        datetime.fromtimestamp(timestamp, timezone.utc) if timestamp is not None else datetime.now(timezone.utc))
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S")  # no zone suffix: the Ant schema's pattern has none; it is UTC
    host = _x(hostname or socket.gethostname() or "localhost")
    root = ET.Element("testsuites", name="loadgate")
    groups: dict[str, list[ThresholdResult]] = {}
    for r in verdict.thresholds:
        groups.setdefault(r.requirement, []).append(r)
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for requirement, results in groups.items():
        results, rest = listed(results, JUNIT_CASES)
        counts = {"tests": len(results), "failures": 0, "errors": 0, "skipped": 0}
        suite = ET.SubElement(root, "testsuite", name=_x(requirement))
        tf = (files or {}).get(requirement)
        props = ET.SubElement(suite, "properties")
        for name, value in (("verdict", verdict.verdict), ("strict", str(verdict.strict).lower()),
                            ("title", tf.title if tf else None), ("thresholds_file", tf.path if tf else None),
                            ("thresholds_sha256", tf.sha256 if tf else None)):
            if value is not None:
                ET.SubElement(props, "property", name=name, value=_x(value))
        for r in results:
            case = ET.SubElement(suite, "testcase", classname=_x(r.requirement), name=_x(_case_name(r)), time="0")
            message = _x(_case_message(r))
            if r.status == "fail" or (r.status == "warn" and verdict.strict):
                ET.SubElement(case, "failure", message=message, type="threshold").text = _x(r.reason or message)
                counts["failures"] += 1
            elif r.status in ("inconclusive", "skipped"):
                ET.SubElement(case, "skipped", message=message).text = _x(r.reason or message)
                counts["skipped"] += 1
            out = f"{r.status.upper()}: {_headline(r)}; {_levels(r)}; {r.requests} requests; {r.source}"
            if r.status == "warn":
                out = f"WARNING: {r.reason}\n{out}"
            ET.SubElement(case, "system-out").text = _x(out)
        _grouped_cases(suite, requirement, rest, verdict.strict, counts)
        _set_counts(suite, counts, stamp, host)
        for k in totals:
            totals[k] += counts[k]
    if verdict.problems or not verdict.thresholds:
        # run problems are no threshold's fault: an error case in a suite of their own
        problems = verdict.problems or tuple(r for r in verdict.reasons)
        suite = ET.SubElement(root, "testsuite", name="loadgate.run")
        for problem in problems:
            case = ET.SubElement(suite, "testcase", classname="loadgate.run", name=_x(problem)[:120], time="0")
            ET.SubElement(case, "error", message=_x(problem), type="run").text = _x(problem)
        counts = {"tests": len(problems), "failures": 0, "errors": len(problems), "skipped": 0}
        _set_counts(suite, counts, stamp, host)
        for k in totals:
            totals[k] += counts[k]
    for k, v in totals.items():
        root.set(k, str(v))
    root.set("time", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _grouped_cases(suite: ET.Element, requirement: str, rest: list[ThresholdResult], strict: bool,
                   counts: dict[str, int]) -> None:
    """One testcase per status for the thresholds past the suite's cap."""
    if not rest:
        return
    properties = suite.find("properties")
    assert properties is not None  # every suite's first child
    ET.SubElement(properties, "property", name="thresholds_listed_in", value="verdict.json")
    for status in sorted({r.status for r in rest}, key=RANK.__getitem__):
        group = [r for r in rest if r.status == status]
        case = ET.SubElement(suite, "testcase", classname=_x(requirement), time="0",
                             name=f"{len(group):,} more {status} thresholds")
        text = more_line(group, "verdict.json lists each with its value and reason")
        if status == Status.FAIL or (status == Status.WARN and strict):
            ET.SubElement(case, "failure", message=_x(text), type="threshold").text = _x(text)
            counts["failures"] += 1
        elif status in (Status.INCONCLUSIVE, Status.SKIPPED):
            ET.SubElement(case, "skipped", message=_x(text)).text = _x(text)
            counts["skipped"] += 1
        ET.SubElement(case, "system-out").text = _x(text)
        counts["tests"] += 1


def _case_name(r: ThresholdResult) -> str:
    name = r.metric + (f" [{r.request}]" if r.request else "")
    return name + " regression" if r.regression else name


def _set_counts(suite: ET.Element, counts: Mapping[str, int], stamp: str, host: str) -> None:
    for k in ("tests", "failures", "errors", "skipped"):
        suite.set(k, str(counts[k]))
    suite.set("time", "0")
    suite.set("timestamp", stamp)
    suite.set("hostname", host)


# --- summary.md ------------------------------------------------------------------------------

def md_escape(text: Any) -> str:
    """One Markdown table cell from untrusted text: no line breaks, no markup, no HTML."""
    flat = " ".join(_CONTROL.sub(" ", str(text)).split())
    return _MD_SPECIAL.sub(r"\\\1", flat)


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(md_escape(c) for c in cells) + " |"


def _run_lines(run: RunDoc) -> list[str]:
    """The run's settings, and an imported run's source (where its samples came from)."""
    lines = []
    facts = [f"{k.replace('_', ' ')} {md_escape(_run_fact(k, run[k]))}"
             for k in ("users", "spawn_rate", "duration", "warmup", "host", "workers") if run.get(k) is not None]
    if facts:
        lines += ["", "Run: " + ", ".join(facts) + "."]
    source = run.get("source")
    if isinstance(source, Mapping):
        lines += ["", "Samples imported from " + md_escape(
            f"{source.get('tool')} {source.get('version') or '(version not recorded)'}: "
            f"{os.path.basename(str(source.get('file')))}, sha256 {source.get('sha256')}") + "."]
    return lines


def render_summary_md(verdict: Verdict, summary: SummaryDoc | None, *, run: RunDoc | None = None,
                      files: Mapping[str, ThresholdFile] | None = None) -> str:
    """The Markdown summary: verdict, reasons, thresholds table, the 5 slowest requests by p95."""
    requirements = list(dict.fromkeys(r.requirement for r in verdict.thresholds))
    lines = [f"## loadgate: {verdict.verdict.upper()}" + (f" ({md_escape(', '.join(requirements))})" if requirements
                                                          else ""), ""]
    lines.append(f"Verdict **{verdict.verdict.upper()}**, exit code {verdict.exit_code}"
                 + (" (strict: warnings fail)" if verdict.strict else "") + ".")
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
        lines += ["| Requirement | Metric | Scope | Value | Target | Alert | Requests | Status |",
                  "|---|---|---|---:|---|---|---:|---|"]
        shown, rest = listed(verdict.thresholds, MD_ROWS)
        for r in shown:
            value = format_value(r.value, r.unit, signed=r.regression is not None)
            alert = r.alert or (f"regression {r.regression}" if r.regression else "-")
            lines.append(_row([r.requirement, r.metric, _scope(r), value, r.target or "-", alert, r.requests,
                               r.status.upper()]))
        if rest:
            lines += ["", md_escape(more_line(rest))]
    else:
        lines.append("No thresholds were evaluated.")
    lines += _changes_md(verdict.changes) + arrival_md(summary, run, _row, md_escape)
    worst = _slowest(summary)
    if worst:
        lines += ["", "### Slowest requests (by p95)", "",
                  "| Request | Requirement | Requests | Errors | p50 | p95 | p99 |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for e in worst:
            times = e.get("response_time_ms") or {}
            lines.append(_row([f"{e.get('request_type', '')} {e.get('name', '')}".strip(), e.get("requirement", ""),
                               e.get("requests", 0), format_value(_float(e.get("error_rate")), "ratio"),
                               *(format_value(_float(times.get(k)), "ms") for k in ("p50", "p95", "p99"))]))
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
        lines += [""] * (lines[-1] != "") + [f"**{md_escape(req)} regressed**: {mine} of {len(entries)} commit(s) "
                                             "since the baseline reference it (listed first).", ""]
        if entries:
            lines += [f"| Commit | Subject | Author | Date | References {md_escape(req)} |", "|---|---|---|---|---|"]
            lines += [_row([str(e.get("commit"))[:7], e.get("subject"), e.get("author"), str(e.get("date"))[:10],
                            "yes" if e.get("references") else "no"]) for e in entries]
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


def write_summary_md(verdict: Verdict, summary: SummaryDoc | None, path: str | os.PathLike[str], *,
                     run: RunDoc | None = None,
                     files: Mapping[str, ThresholdFile] | None = None, step_summary: bool = True) -> str:
    """Write ``summary.md``, and (``step_summary``) append it to ``$GITHUB_STEP_SUMMARY`` when that is set.
    Returns its text."""
    text = render_summary_md(verdict, summary, run=run, files=files)
    _atomic_write(path, text)
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

def _plain(text: Any) -> str:
    """Printable on a terminal: control characters (escape sequences) shown as '?'."""
    return _CONTROL.sub("?", str(text))


def format_table(verdict: Verdict, *, color: bool = False) -> str:
    """A compact table of thresholds and the verdict line, for the terminal."""
    header = ["requirement", "metric", "scope", "value", "target", "alert", "status"]
    shown, rest = listed(verdict.thresholds, MD_ROWS)
    rows = [[_plain(c) for c in (r.requirement, r.metric, _scope(r),
                                 format_value(r.value, r.unit, signed=r.regression is not None), r.target or "-",
                                 r.alert or (f"regr {r.regression}" if r.regression else "-"), r.status)]
            for r in shown]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    widths[2] = min(widths[2], 40)
    out = []
    for i, row in enumerate([header, *rows]):
        cells = [(c if len(c) <= widths[j] else c[: widths[j] - 1] + "~").ljust(widths[j])
                 if j != 3 else c.rjust(widths[j]) for j, c in enumerate(row)]
        if color and i > 0:  # the last column: no padding inside the colour
            cells[-1] = f"\x1b[{_ANSI.get(row[-1], '0')}m{row[-1]}\x1b[0m"
        out.append("  ".join(cells).rstrip())
    if rest:
        out.append(more_line(rest))
    word = verdict.verdict.upper()
    if color:
        word = f"\x1b[{_ANSI.get(verdict.verdict, '0')}m{word}\x1b[0m"
    out.append(f"verdict: {word} (exit {verdict.exit_code})" + (" [strict]" if verdict.strict else ""))
    out += [f"  - {_plain(reason)}" for reason in verdict.reasons]
    return "\n".join(out)
