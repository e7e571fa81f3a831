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

from loadgate.gate.status import Status
from loadgate.gate.thresholds import ThresholdFile
from loadgate.gate.verdict import ThresholdResult, Verdict, format_value
from loadgate.outputs.shown import JUNIT_CASES, MD_ROWS, RANK, listed, more_line

# XML 1.0 forbids these code points outright, even escaped
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
# C0/C1 controls (ESC starts terminal escape sequences) and DEL
CONTROL_CHARS = re.compile("[\x00-\x1f\x7f-\x9f]")
_ANSI = {"pass": "32", "warn": "33", "fail": "31;1", "inconclusive": "35", "skipped": "2"}


def atomic_write(path: str | os.PathLike[str], text: str) -> None:
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
    atomic_write(path, text)


def commit_texts(texts: Mapping[str, str]) -> None:
    """Write several rendered outputs (path -> text) all or none: each to a temp file, then every one
    renamed into place (a rename needs no room), so a full disk never leaves one without the others."""
    temps: dict[str, str] = {}
    try:
        for path, text in texts.items():
            temps[path] = _temp_of(path)
            try:
                atomic_write(temps[path], text)
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
    atomic_write(path, render_verdict_json(verdict))


def scope_text(r: ThresholdResult) -> str:
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


def write_junit(
    verdict: Verdict,
    path: str | os.PathLike[str],
    *,
    files: Mapping[str, ThresholdFile] | None = None,
    timestamp: datetime | float | None = None,
    hostname: str | None = None,
) -> None:
    """Write ``junit.xml``: one testsuite per requirement, one testcase per threshold (Jenkins junit-10 XSD).

    A requirement with more than ``JUNIT_CASES`` thresholds lists that many (fail, warn, inconclusive first)
    and one testcase per status for the rest, which verdict.json lists one by one."""
    atomic_write(path, render_junit(verdict, files=files, timestamp=timestamp, hostname=hostname))


# Over the size/complexity limit (noqa): one suite per requirement, one case per threshold.
def render_junit(  # noqa: C901
    verdict: Verdict,
    *,
    files: Mapping[str, ThresholdFile] | None = None,
    timestamp: datetime | float | None = None,
    hostname: str | None = None,
) -> str:
    """The text of ``junit.xml`` (see :func:`write_junit`)."""
    when = (
        timestamp
        if isinstance(timestamp, datetime)
        else (datetime.fromtimestamp(timestamp, timezone.utc) if timestamp is not None else datetime.now(timezone.utc))
    )
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
        for name, value in (
            ("verdict", verdict.verdict),
            ("strict", str(verdict.strict).lower()),
            ("title", tf.title if tf else None),
            ("thresholds_file", tf.path if tf else None),
            ("thresholds_sha256", tf.sha256 if tf else None),
        ):
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


def _grouped_cases(
    suite: ET.Element, requirement: str, rest: list[ThresholdResult], strict: bool, counts: dict[str, int]
) -> None:
    """One testcase per status for the thresholds past the suite's cap."""
    if not rest:
        return
    properties = suite.find("properties")
    assert properties is not None  # every suite's first child
    ET.SubElement(properties, "property", name="thresholds_listed_in", value="verdict.json")
    for status in sorted({r.status for r in rest}, key=RANK.__getitem__):
        group = [r for r in rest if r.status == status]
        case = ET.SubElement(
            suite, "testcase", classname=_x(requirement), time="0", name=f"{len(group):,} more {status} thresholds"
        )
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


def _plain(text: Any) -> str:
    """Printable on a terminal: control characters (escape sequences) shown as '?'."""
    return CONTROL_CHARS.sub("?", str(text))


def format_table(verdict: Verdict, *, color: bool = False) -> str:
    """A compact table of thresholds and the verdict line, for the terminal."""
    header = ["requirement", "metric", "scope", "value", "target", "alert", "status"]
    shown, rest = listed(verdict.thresholds, MD_ROWS)
    rows = [
        [
            _plain(c)
            for c in (
                r.requirement,
                r.metric,
                scope_text(r),
                format_value(r.value, r.unit, signed=r.regression is not None),
                r.target or "-",
                r.alert or (f"regr {r.regression}" if r.regression else "-"),
                r.status,
            )
        ]
        for r in shown
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    widths[2] = min(widths[2], 40)
    out = []
    for i, row in enumerate([header, *rows]):
        cells = [
            (c if len(c) <= widths[j] else c[: widths[j] - 1] + "~").ljust(widths[j]) if j != 3 else c.rjust(widths[j])
            for j, c in enumerate(row)
        ]
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
