"""verdict.json, junit.xml, summary.md and the terminal table: content, counts and escaping of hostile names."""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

import pytest

from loadgate.gate.verdict import ThresholdResult, Verdict
from loadgate.outputs.summary_md import md_escape, render_summary_md, write_summary_md
from loadgate.outputs.writers import format_table, write_junit, write_verdict_json
from loadgate.gate.thresholds import LoadDefaults, ThresholdFile

HOSTILE = "GET /a|b\"c'<script>&amp;\x00\x1b[31m\nnext]]>"


def result(
    status: str,
    *,
    requirement: str = "REQ-A-1",
    metric: str = "p95",
    request: str | None = None,
    value: float | None = 100.0,
    unit: str = "ms",
    target: str | None = "<200ms",
    alert: str | None = ">500ms",
    requests: int = 1000,
    reason: str | None = None,
    regression: str | None = None,
) -> ThresholdResult:
    return ThresholdResult(
        requirement,
        metric,
        request,
        target,
        alert,
        value,
        unit,
        requests,
        status,
        reason,
        f"thresholds/{requirement}.yaml:9",
        regression=regression,
    )


FAIL = result("fail", value=612.3, reason="REQ-A-1 p95 = 612.3 ms crossed alert >500ms (thresholds/REQ-A-1.yaml:9)")
WARN = result(
    "warn",
    metric="error_rate",
    value=0.002,
    unit="ratio",
    target="<0.1%",
    alert=">1%",
    reason="REQ-A-1 error_rate = 0.200% missed target <0.1% (thresholds/REQ-A-1.yaml:9)",
)
INCONCLUSIVE = result(
    "inconclusive",
    metric="p99",
    request="GET /api/users/[id]",
    value=None,
    requests=0,
    target=None,
    alert=">800ms",
    reason="REQ-A-1 p99 [GET /api/users/[id]]: no requests (x:9)",
)
PASS_B = result(
    "pass", requirement="REQ-B-1", metric="throughput", value=1234.56, unit="req/s", target=">1000/s", alert="<500/s"
)
SKIPPED_B = result(
    "skipped",
    requirement="REQ-B-1",
    value=None,
    unit="ratio",
    target=None,
    alert=None,
    regression=">10%",
    reason="no baseline run yet for REQ-B-1: regression threshold skipped",
)


def verdict(
    *results: ThresholdResult,
    verdict: str = "fail",
    code: int = 1,
    strict: bool = False,
    problems: tuple[str, ...] = (),
) -> Verdict:
    reasons = problems + tuple(r.reason for r in results if r.reason)
    return Verdict(verdict, code, reasons, results, strict, problems)


MIXED = verdict(FAIL, WARN, INCONCLUSIVE, PASS_B, SKIPPED_B)


def tf(requirement: str, title: str) -> ThresholdFile:
    return ThresholdFile(f"thresholds/{requirement}.yaml", requirement, title, LoadDefaults(), (), "ab" * 32)


# --- verdict.json ----------------------------------------------------------------------------


def test_verdict_json_round_trips_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "verdict.json"
    write_verdict_json(MIXED, path)
    assert json.loads(path.read_text(encoding="utf-8")) == MIXED.to_dict()
    assert os.listdir(tmp_path) == ["verdict.json"]
    d = json.loads(path.read_text())
    assert (d["schema"], d["verdict"], d["exit_code"]) == ("loadgate.verdict/1", "fail", 1)
    assert [t["status"] for t in d["thresholds"]] == ["fail", "warn", "inconclusive", "pass", "skipped"]


# --- junit.xml -------------------------------------------------------------------------------


def junit(v: Verdict, tmp_path, **kw) -> ET.Element:
    path = tmp_path / "junit.xml"
    write_junit(v, path, timestamp=kw.pop("timestamp", 1_700_000_000.0), hostname=kw.pop("hostname", "ci-1"), **kw)
    text = path.read_text(encoding="utf-8")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    return ET.fromstring(text.encode("utf-8"))


def counts(el: ET.Element) -> tuple:
    return tuple(el.get(k) for k in ("tests", "failures", "errors", "skipped"))


def test_junit_one_suite_per_requirement_with_right_counts(tmp_path):
    root = junit(MIXED, tmp_path, files={"REQ-A-1": tf("REQ-A-1", "Fast & <safe>")})
    assert root.tag == "testsuites"
    a, b = root.findall("testsuite")
    assert (a.get("name"), counts(a)) == ("REQ-A-1", ("3", "1", "0", "1"))
    assert (b.get("name"), counts(b)) == ("REQ-B-1", ("2", "0", "0", "1"))
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("5", "1", "0")
    assert a.get("timestamp") == "2023-11-14T22:13:20" and a.get("hostname") == "ci-1"
    assert [(c.get("classname"), c.get("name")) for c in a.findall("testcase")] == [
        ("REQ-A-1", "p95"),
        ("REQ-A-1", "error_rate"),
        ("REQ-A-1", "p99 [GET /api/users/[id]]"),
    ]
    assert [c.get("name") for c in b.findall("testcase")] == ["throughput", "p95 regression"]
    props = {p.get("name"): p.get("value") for p in a.find("properties")}
    assert props["title"] == "Fast & <safe>" and props["thresholds_file"] == "thresholds/REQ-A-1.yaml"
    assert props["verdict"] == "fail" and props["strict"] == "false"


def test_junit_failure_skipped_and_warning_texts(tmp_path):
    a = junit(MIXED, tmp_path).find("testsuite")
    fail, warn, inconclusive = a.findall("testcase")
    f = fail.find("failure")
    assert (f.get("message"), f.get("type")) == ("p95 = 612.3 ms crossed alert >500ms", "threshold")
    assert f.text == FAIL.reason
    assert warn.find("failure") is None and warn.find("skipped") is None
    assert warn.find("system-out").text.startswith("WARNING: REQ-A-1 error_rate = 0.200% missed target <0.1%")
    assert "0.200%" in warn.find("system-out").text
    assert inconclusive.find("skipped").get("message") == INCONCLUSIVE.reason
    assert fail.find("system-out").text == (
        "FAIL: p95 = 612.3 ms; target <200ms, alert >500ms; 1000 requests; thresholds/REQ-A-1.yaml:9"
    )


def test_junit_strict_warn_is_a_failure(tmp_path):
    a = junit(verdict(WARN, strict=True), tmp_path).find("testsuite")
    assert counts(a) == ("1", "1", "0", "0")
    assert a.find("testcase/failure").get("message") == "error_rate = 0.200% missed target <0.1%"


def test_junit_run_problems_are_errors_in_their_own_suite(tmp_path):
    v = verdict(PASS_B, verdict="inconclusive", code=3, problems=("interrupted by SIGTERM",))
    root = junit(v, tmp_path)
    run = root.findall("testsuite")[-1]
    assert (run.get("name"), counts(run)) == ("loadgate.run", ("1", "0", "1", "0"))
    assert run.find("testcase/error").get("message") == "interrupted by SIGTERM"
    assert (root.get("tests"), root.get("errors")) == ("2", "1")


def test_junit_with_zero_thresholds_still_says_why(tmp_path):
    v = Verdict("inconclusive", 3, ("no thresholds to evaluate",), (), False, ())
    root = junit(v, tmp_path)
    (run,) = root.findall("testsuite")
    assert counts(run) == ("1", "0", "1", "0")


def test_junit_uses_only_attributes_of_the_jenkins_junit_10_schema(tmp_path):
    root = junit(verdict(FAIL, PASS_B, problems=("x",)), tmp_path)
    assert set(root.attrib) <= {"name", "time", "tests", "failures", "errors"}
    for suite in root.iter("testsuite"):
        assert {"name", "tests", "failures", "errors"} <= set(suite.attrib)
        assert set(suite.attrib) <= {"name", "tests", "failures", "errors", "time", "skipped", "timestamp", "hostname"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", suite.get("timestamp"))
        assert re.fullmatch(r"[0-9]*(\.[0-9]*)?", suite.get("time"))
        for case in suite.iter("testcase"):
            assert set(case.attrib) <= {"name", "time", "classname", "group"}
            assert {c.tag for c in case} <= {"skipped", "error", "failure", "system-out", "system-err"}


def test_junit_escapes_hostile_names(tmp_path):
    hostile = result("fail", request=HOSTILE, value=612.3, reason=f"REQ-A-1 p95 [{HOSTILE}] crossed")
    root = junit(verdict(hostile, problems=(HOSTILE,)), tmp_path, hostname='h"<&\x01')
    case = root.find("testsuite/testcase")
    clean = HOSTILE.replace("\x00", "").replace("\x1b", "")
    assert case.get("name") == f"p95 [{clean}]"
    assert clean in case.find("failure").text
    assert root.find("testsuite").get("hostname") == 'h"<&'
    raw = (tmp_path / "junit.xml").read_text(encoding="utf-8")
    assert "<script>" not in raw and "\x00" not in raw and "\x1b" not in raw


def test_junit_timestamp_from_datetime_in_utc(tmp_path):
    from datetime import timedelta

    when = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    assert junit(MIXED, tmp_path, timestamp=when).find("testsuite").get("timestamp") == "2024-05-01T10:00:00"


# --- summary.md ------------------------------------------------------------------------------


def request_entry(name: str, p95: float, requirement: str = "REQ-A-1") -> dict:
    return {
        "request_type": "GET",
        "name": name,
        "requirement": requirement,
        "requests": 10,
        "failures": 1,
        "error_rate": 0.1,
        "throughput": 1.0,
        "response_time_ms": {"p50": p95 / 2, "p95": p95, "p99": p95 * 2},
    }


SUMMARY = {
    "window": {"seconds": 60.0},
    "requests": [request_entry(f"/r{i}", float(i)) for i in range(1, 8)] + [request_entry(HOSTILE, 3.5)],
}


def table_rows(md: str, header: str) -> list[str]:
    lines = md.splitlines()
    start = lines.index(header)
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def cells(row: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]]


THRESHOLD_HEADER = "| Requirement | Metric | Scope | Value | Target | Alert | Requests | Status |"
SLOW_HEADER = "| Request | Requirement | Requests | Errors | p50 | p95 | p99 |"


def test_summary_md_verdict_reasons_and_thresholds():
    md = render_summary_md(
        MIXED,
        SUMMARY,
        run={
            "users": 20,
            "spawn_rate": 10.0,
            "duration": 120.0,
            "warmup": 15,
            "host": "http://127.0.0.1:1",
            "workers": None,
        },
        files={"REQ-A-1": tf("REQ-A-1", "Demo")},
    )
    assert md.splitlines()[0] == "## loadgate: FAIL (REQ-A-1, REQ-B-1)"
    assert "Verdict **FAIL**, exit code 1." in md
    assert "- REQ-A-1: Demo" in md
    assert "Run: users 20, spawn rate 10/s, duration 2m, warmup 15s, host http\\://127.0.0.1\\:1." in md
    assert "- REQ-A-1 p95 = 612.3 ms crossed alert \\>500ms \\(thresholds/REQ-A-1.yaml\\:9\\)" in md
    rows = [cells(r) for r in table_rows(md, THRESHOLD_HEADER)]
    assert rows == [
        ["REQ-A-1", "p95", "all requests", "612.3 ms", "\\<200ms", "\\>500ms", "1000", "FAIL"],
        ["REQ-A-1", "error\\_rate", "all requests", "0.200%", "\\<0.1%", "\\>1%", "1000", "WARN"],
        ["REQ-A-1", "p99", "GET /api/users/\\[id\\]", "-", "-", "\\>800ms", "0", "INCONCLUSIVE"],
        ["REQ-B-1", "throughput", "all requests", "1234.6 req/s", "\\>1000/s", "\\<500/s", "1000", "PASS"],
        ["REQ-B-1", "p95", "all requests", "-", "-", "regression \\>10%", "1000", "SKIPPED"],
    ]


def test_summary_md_five_slowest_requests_with_hostile_name_escaped():
    md = render_summary_md(MIXED, SUMMARY)
    rows = [cells(r) for r in table_rows(md, SLOW_HEADER)]
    assert [r[0] for r in rows] == ["GET /r7", "GET /r6", "GET /r5", "GET /r4", md_escape("GET " + HOSTILE)]
    assert all(len(r) == 7 for r in rows)
    assert rows[0][3:] == ["10.0%", "3.5 ms", "7.0 ms", "14.0 ms"]
    assert "<script>" not in md and "\x1b" not in md and "\x00" not in md


@pytest.mark.parametrize(
    "text, escaped",
    [
        ("a|b", "a\\|b"),
        ("line\nbreak\r\nend", "line break end"),
        ("<b>x</b>", "\\<b\\>x\\</b\\>"),
        ("*_`[x](http://e)", "\\*\\_\\`\\[x\\]\\(http\\://e\\)"),
        ("a & b", "a \\& b"),
        ("\x1b[31mred", "\\[31mred"),
        ("plain /api/v1", "plain /api/v1"),
    ],
)
def test_md_escape(text, escaped):
    assert md_escape(text) == escaped


def test_summary_md_for_zero_thresholds_and_strict():
    md = render_summary_md(Verdict("inconclusive", 3, ("no thresholds to evaluate",), (), True, ()), {})
    assert md.splitlines()[0] == "## loadgate: INCONCLUSIVE"
    assert "Verdict **INCONCLUSIVE**, exit code 3 (strict: warnings fail)." in md
    assert "No thresholds were evaluated." in md and SLOW_HEADER not in md


def test_write_summary_md_appends_to_github_step_summary(tmp_path, monkeypatch):
    step = tmp_path / "step.md"
    step.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    write_summary_md(MIXED, SUMMARY, tmp_path / "summary.md")
    write_summary_md(MIXED, SUMMARY, tmp_path / "summary2.md")
    own = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert own == render_summary_md(MIXED, SUMMARY)
    assert step.read_text(encoding="utf-8") == "earlier step\n" + own + "\n" + own + "\n"
    monkeypatch.delenv("GITHUB_STEP_SUMMARY")
    write_summary_md(MIXED, SUMMARY, tmp_path / "summary3.md")
    assert step.read_text(encoding="utf-8").count("## loadgate") == 2


# --- terminal table --------------------------------------------------------------------------


def test_format_table_plain():
    out = format_table(verdict(FAIL, PASS_B, SKIPPED_B)).splitlines()
    assert out[0].split() == ["requirement", "metric", "scope", "value", "target", "alert", "status"]
    assert out[1].split() == ["REQ-A-1", "p95", "all", "requests", "612.3", "ms", "<200ms", ">500ms", "fail"]
    assert out[2].split() == [
        "REQ-B-1",
        "throughput",
        "all",
        "requests",
        "1234.6",
        "req/s",
        ">1000/s",
        "<500/s",
        "pass",
    ]
    assert out[3].split()[-3:] == ["regr", ">10%", "skipped"]
    assert out[4] == "verdict: FAIL (exit 1)"
    assert out[5] == "  - " + FAIL.reason
    assert len({line.index("status") if "status" in line else None for line in out[:1]}) == 1
    assert "\x1b" not in "\n".join(out)


def test_format_table_color_and_hostile_names():
    hostile = result("warn", request="GET /\x1b[2J\x07x", reason="r\x1b]0;title\x07")
    out = format_table(verdict(hostile, verdict="warn", code=0, strict=False), color=True)
    assert "\x1b[33mwarn\x1b[0m" in out and "verdict: \x1b[33mWARN\x1b[0m (exit 0)" in out
    stripped = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert "\x1b" not in stripped and "\x07" not in stripped
    assert "GET /?[2J?x" in stripped and "  - r?]0;title?" in stripped


def test_format_table_truncates_long_scopes():
    long = result("pass", request="GET /" + "x" * 100)
    line = format_table(verdict(long, verdict="pass", code=0)).splitlines()[1]
    assert "GET /" + "x" * 34 + "~" in line and "x" * 36 not in line
