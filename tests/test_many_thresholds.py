"""Thousands of thresholds: the gate finds each scope by look-up and lists a bounded number of reasons, a
generator that fell behind cannot fail a latency, outputs stay proportionate, and check warns."""

from __future__ import annotations

import dataclasses
import json

import pytest

from loadgate.gate.scope import HINTS
from loadgate.gate.verdict import REASONS_LISTED, ThresholdResult, Verdict, evaluate
from loadgate.outputs.shown import JUNIT_CASES, MD_ROWS, listed, more_line
from loadgate.outputs.summary_md import render_summary_md
from loadgate.outputs.writers import format_table, write_junit, write_verdict_json
from loadgate.scenarios.check import MANY_ALERTS, count_warnings
from loadgate.run.problems import saturation_problems
from test_gate import entry, files, req, stats, summary
from test_junit_schema import validated


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def many(n: int, *, sent: int = 50, alert: str = ">1s", first: str = '- {metric: p95, alert: ">200ms"}') -> str:
    """A requirement-wide p95 and ``n`` p95 thresholds of their own requests (GET /item/N)."""
    return req(
        "\n".join([first, *(f'- {{metric: p95, request: "GET /item/{i}", alert: "{alert}"}}' for i in range(n))])
    )


def sent(n: int = 50, **kw) -> dict:
    return summary({"REQ-A-1": stats(**kw)}, [entry("GET", f"/item/{i}", **kw) for i in range(n)])


def test_each_of_thousands_of_thresholds_gets_its_own_scope_and_few_hints():
    v = evaluate(files(many(3000)), sent(50, p95=5.0))
    assert len(v.thresholds) == 3001
    assert [r.status for r in v.thresholds[:51]] == ["pass"] * 51
    missing = v.thresholds[51:]
    assert {r.status for r in missing} == {"inconclusive"}
    assert all("no request 'GET /item/" in r.reason for r in missing)
    assert sum("did you mean" in r.reason for r in missing) == HINTS
    assert v.verdict == "inconclusive"


def test_reasons_are_capped_with_the_failing_ones_first_and_the_rest_counted():
    doc = many(300, alert=">1ms")
    v = evaluate(files(doc), sent(100, p95=5.0))  # 100 sent fail, 200 missing are inconclusive
    assert v.verdict == "fail" and len(v.reasons) == REASONS_LISTED + 1
    assert all("crossed alert" in r for r in v.reasons[:REASONS_LISTED])
    assert v.reasons[-1] == (
        f"and {300 - REASONS_LISTED:,} more thresholds with a reason "
        f"({100 - REASONS_LISTED} fail, 200 inconclusive): each one's is in verdict.json"
    )
    assert sum(r.reason is not None for r in v.thresholds) == 300  # every result keeps its own


@pytest.mark.parametrize(
    "problem",
    [
        "load generator saturated: local was above 90% CPU in 9 of 10 seconds",
        "load generator behind schedule: local started 90 of 900 paced iterations late",
    ],
)
def test_a_generator_that_fell_behind_cannot_fail_a_latency_or_a_throughput(problem):
    doc = req(
        '- {metric: p95, alert: ">200ms"}\n- {metric: throughput, target: ">50/s"}\n'
        '- {metric: error_rate, alert: ">1%"}'
    )
    v = evaluate(files(doc), summary({"REQ-A-1": stats(p95=5000.0, throughput=10.0, failures=100)}), problems=[problem])
    p95, throughput, errors = v.thresholds
    assert (p95.status, throughput.status) == ("inconclusive", "inconclusive")
    assert "crossed alert >200ms" in p95.reason and "not trusted: the load generator fell behind" in p95.reason
    assert errors.status == "fail"  # the errors are the target's
    assert v.verdict == "fail"
    v = evaluate(
        files(req('- {metric: p95, alert: ">200ms"}')), summary({"REQ-A-1": stats(p95=5000.0)}), problems=[problem]
    )
    assert (v.verdict, v.exit_code) == ("inconclusive", 3)
    v = evaluate(
        files(req('- {metric: p95, alert: ">200ms"}')),
        summary({"REQ-A-1": stats(p95=5000.0)}),
        problems=["users reached 5 < users requested 10"],
    )
    assert v.verdict == "fail"  # any other run problem leaves a fail a fail


def test_a_blocked_event_loop_counts_as_saturated_seconds():
    start = 1000.0
    steady = [[start - 1 + i, 30.0] for i in range(12)]
    assert saturation_problems({"local": steady}, start, start + 10) == []
    blocked = [[start - 1, 30.0], [start + 9.5, 40.0], [start + 10, 30.0]]  # one sample after a 10.5 s gap
    (problem,) = saturation_problems({"local": blocked}, start, start + 10)
    assert problem.startswith("load generator saturated: local was above 90% CPU in 10 of 12 seconds")
    assert "(its event loop was blocked for 10 s)" in problem
    lost = [[start - 1 + i, 30.0] for i in range(5)]  # a worker that stopped reporting: no gap after its last
    assert saturation_problems({"w1": lost}, start, start + 10) == []


def big_verdict(n: int) -> Verdict:
    results = tuple(
        ThresholdResult(
            "REQ-A-1",
            "p95",
            f"GET /item/{i}",
            None,
            ">1s",
            5.0 if i % 7 else None,
            "ms",
            10 if i % 7 else 0,
            "pass" if i % 7 else "inconclusive",
            None if i % 7 else f"no request 'GET /item/{i}' (t.yaml:{i})",
            f"t.yaml:{i}",
        )
        for i in range(n)
    )
    return Verdict("inconclusive", 3, tuple(r.reason for r in results if r.reason), results)


def test_verdict_json_keeps_every_threshold_one_line_each(tmp_path):
    v = big_verdict(700)
    path = tmp_path / "verdict.json"
    write_verdict_json(v, path)
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == v.to_dict()
    lines = text.splitlines()
    rows = [line for line in lines if line.startswith('    {"requirement"')]
    assert len(rows) == 700 and len(lines) < 700 + 120 + 20  # the thresholds plus the reasons and a few keys


def test_junit_lists_the_pressing_thresholds_and_one_case_per_status_for_the_rest(tmp_path):
    v = big_verdict(1000)
    write_junit(v, tmp_path / "junit.xml")
    doc = validated(tmp_path / "junit.xml")
    suite = doc.find("testsuite")
    cases = list(suite.iter("testcase"))
    inconclusive = 1000 // 7 + 1
    assert len(cases) == JUNIT_CASES + 1 and suite.get("tests") == str(JUNIT_CASES + 1)
    assert all(c.find("skipped") is not None for c in cases[:inconclusive])  # the inconclusive ones first
    group = cases[-1]
    assert group.get("name") == f"{1000 - JUNIT_CASES:,} more pass thresholds"
    assert suite.get("skipped") == str(inconclusive)
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["thresholds_listed_in"] == "verdict.json"


def test_summary_md_and_the_terminal_list_a_bounded_table():
    v = dataclasses.replace(big_verdict(1000), reasons=("a reason",))
    md = render_summary_md(v, {})
    rows = [line for line in md.splitlines() if line.startswith("| REQ-A-1 |")]
    assert len(rows) == MD_ROWS
    assert md.rstrip().endswith(r"and 900 more thresholds \(43 inconclusive, 857 pass\)\: verdict.json has every one")
    table = format_table(v)
    assert "and 900 more thresholds (43 inconclusive, 857 pass): verdict.json has every one" in table
    assert len(table.splitlines()) == 1 + MD_ROWS + 1 + 2  # header, rows, the count, the verdict and its reason


def test_listed_keeps_order_below_the_cap_and_ranks_above_it():
    items = [{"status": s} for s in ("pass", "fail", "pass", "inconclusive", "warn")]
    assert listed(items, 5) == (items, [])
    shown, rest = listed(items, 3)
    assert [i["status"] for i in shown] == ["fail", "warn", "inconclusive"]
    assert more_line(rest) == "and 2 more thresholds (2 pass): verdict.json has every one"


def test_check_warns_above_the_alert_count_it_states():
    assert count_warnings(files(many(MANY_ALERTS - 1))) == []  # with the requirement-wide one: exactly the count
    (warning,) = count_warnings(files(many(MANY_ALERTS)))
    assert warning.startswith(f"warning: {MANY_ALERTS + 1:,} thresholds have an alert level, more than {MANY_ALERTS:,}")
    quiet = req("\n".join(f'- {{metric: p95, request: "GET /item/{i}", target: "<1s"}}' for i in range(2000)))
    assert count_warnings(files(quiet)) == []  # targets only: nothing for the live view to evaluate
