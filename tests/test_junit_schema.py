"""junit.xml validates against the JUnit schema Jenkins' xUnit plugin reads (junit-10.xsd), hostile names included."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from conftest import ROOT
from loadgate.gate.verdict import ThresholdResult, Verdict
from loadgate.outputs.writers import write_junit
from test_report import HOSTILE_STRINGS, hostile_run, pass_run

SCHEMA = etree.XMLSchema(etree.parse(str(ROOT / "tests" / "data" / "junit-10.xsd")))


def validated(path: Path) -> etree._ElementTree:
    doc = etree.parse(str(path))
    if not SCHEMA.validate(doc):
        pytest.fail(f"{path} is not valid junit-10.xsd:\n{SCHEMA.error_log}")
    return doc


def test_junit_of_a_real_passing_run_is_valid(tmp_path_factory):
    run_dir = pass_run(tmp_path_factory)
    doc = validated(run_dir / "junit.xml")
    mode = (run_dir / "run.json").stat().st_mode & 0o777
    for name in ("junit.xml", "summary.md", "verdict.json", "report.html"):  # CI publishers read them all
        assert (run_dir / name).stat().st_mode & 0o777 == mode, name
    suite = doc.find("testsuite")
    assert suite.get("name") == "REQ-T-PASS"
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "0", "0")
    for case in suite.iter("testcase"):
        assert case.find("system-out").text.startswith("PASS: ")
        assert "target" in case.find("system-out").text or "alert" in case.find("system-out").text


def test_junit_of_a_real_hostile_run_is_valid_and_keeps_each_status_visible(tmp_path_factory):
    path = hostile_run(tmp_path_factory) / "junit.xml"
    doc = validated(path)
    suite = doc.find("testsuite")
    assert suite.get("name") == "REQ-HOSTILE-001"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "1", "1")
    failure = cases["error_rate"].find("failure")
    assert failure is not None and "crossed alert >5%" in failure.get("message")
    assert "error_rate = " in failure.get("message")  # the value, in the message CI shows
    assert cases["p95"].find("system-out").text.startswith("WARNING: ")  # a warning is visible, not a failure
    assert cases["p95"].find("failure") is None and cases["p95"].find("skipped") is None
    skipped = cases["p99 [GET </script><!--]"].find("skipped")  # the hostile name, intact once parsed
    assert skipped is not None and "fewer than min_requests" in skipped.get("message")
    assert cases["p50 [GET /api/products?<script>alert(1)</script>]"].find("system-out").text.startswith("PASS")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["title"].startswith("Hostile strings stay inert: <script>")
    raw = path.read_text(encoding="utf-8")
    for s in HOSTILE_STRINGS:
        assert s not in raw  # escaped in the file itself


def test_junit_with_hostile_names_control_characters_and_run_problems_is_valid(tmp_path):
    evil = "GET </script><!-- \"'><img src=x onerror=alert(1)> ]]> &amp; \x00\x1b[31m \ud800 \ufffe"

    def result(status: str, metric: str, value: float | None) -> ThresholdResult:
        return ThresholdResult(
            "REQ-A-1",
            metric,
            evil,
            "<200ms",
            ">500ms",
            value,
            "ms",
            10,
            status,
            None if status == "pass" else f"{evil} {status}",
            f"{evil}.yaml:3",
        )

    results = (
        result("fail", "p95", 612.0),
        result("warn", "p90", 300.0),
        result("inconclusive", "p99", None),
        result("pass", "p50", 20.0),
    )
    verdict = Verdict("fail", 1, (evil, *(r.reason for r in results if r.reason)), results, False, (evil,))
    path = tmp_path / "junit.xml"
    write_junit(verdict, path, timestamp=1_700_000_000.0, hostname=evil)
    doc = validated(path)
    suites = {s.get("name"): s for s in doc.iter("testsuite")}
    assert set(suites) == {"REQ-A-1", "loadgate.run"}
    assert suites["loadgate.run"].find("testcase/error") is not None  # the run problem, as an error
    names = [c.get("name") for c in suites["REQ-A-1"].iter("testcase")]
    assert all("</script><!--" in n and "\x00" not in n for n in names)
