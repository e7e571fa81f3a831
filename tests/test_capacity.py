"""Capacity search without Locust: the search order, the plan, the knee, one step's judgement, the live
stream reader; all with hand-computed answers."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

from loadgate.analysis.steps import knee, step_summary
from loadgate.data.samples import SCHEMA, read_stream
from loadgate.gate.capacity import judge_step, step_files
from loadgate.gate.thresholds import load_threshold_file
from loadgate.run.capacity_search import Search, worst_case_steps


def run_search(start: int, most: int, resolution: float, capacity: int) -> tuple[list[int], Search]:
    """Drive the search against a system that carries exactly ``capacity`` users."""
    s = Search(start, most, resolution)
    seen = []
    while (users := s.next_users()) is not None:
        seen.append(users)
        s.record(users, "pass" if users <= capacity else "fail")
        assert len(seen) < 50
    return seen, s


def test_doubles_then_bisects_to_the_resolution():
    seen, s = run_search(10, 1000, 0.10, capacity=100)
    # 10 20 40 80 pass, 160 fails; bisect [80,160]: 120 f, 100 p, 110 f -> 110-100 <= 10% of 100
    assert seen == [10, 20, 40, 80, 160, 120, 100, 110]
    assert (s.lo, s.hi) == (100, 110)
    assert s.why_done() == "bracketed within 10%: 100 users pass, 110 do not"


def test_stops_at_max_users_with_at_least():
    seen, s = run_search(10, 50, 0.10, capacity=10_000)
    assert seen == [10, 20, 40, 50]  # the last doubling is capped at --max-users
    assert s.lo == 50 and s.hi is None
    assert s.why_done() == "--max-users 50 passed: capacity is at least 50 users"


def test_first_step_failing_ends_the_search():
    seen, s = run_search(10, 1000, 0.10, capacity=5)
    assert seen == [10] and s.lo is None
    assert "lower --start-users" in s.why_done()


def test_unresolved_counts_as_not_passing():
    s = Search(10, 100, 0.5)
    s.record(10, "pass")
    s.record(20, "unresolved")
    assert (s.lo, s.hi) == (10, 20)
    assert s.next_users() == 15


def test_worst_case_steps_covers_every_answer():
    for start, most, res in [(10, 1000, 0.10), (25, 400, 0.2), (1, 7, 0.05), (50, 50, 0.1)]:
        worst = worst_case_steps(start, most, res)
        longest = max(len(run_search(start, most, res, c)[0]) for c in range(0, most + 2))
        assert longest <= worst <= longest + 1, (start, most, res, longest, worst)  # the plan line is honest
    # 10..640, 1000: 8 doubling steps; the worst bracket, [10, 20] at 1 user resolution, needs 4 halvings
    assert worst_case_steps(10, 1000, 0.10) == 8 + 4


def test_knee_of_a_throughput_curve_that_flattens():
    users = [25, 50, 100, 150, 200]
    throughput = [25, 50, 100, 100, 100]  # 1 req/s per user up to 100 users, flat beyond
    k = knee(users, throughput)
    assert k is not None
    assert k.users == 100 and k.throughput == pytest.approx(100)
    assert k.slope_before == pytest.approx(1.0) and k.slope_after == pytest.approx(0.0, abs=1e-9)


def test_no_knee_while_throughput_still_grows_or_too_few_steps():
    assert knee([10, 20, 40, 80], [10, 20, 40, 80]) is None
    assert knee([10, 20, 40], [10, 20, 20]) is None


def _file(tmp_path: Path, items: str):
    path = tmp_path / "REQ-CAP-9.yaml"
    path.write_text(
        "requirement: REQ-CAP-9\nthresholds:\n" + textwrap.indent(textwrap.dedent(items).strip(), "  ") + "\n"
    )
    tf = load_threshold_file(str(path))
    return {tf.requirement: tf}


def _table(times_ms: list[float], start: float = 1000.0) -> pa.Table:
    n = len(times_ms)
    return pa.table(
        {
            "timestamp": [start + i * (10.0 / n) for i in range(n)],
            "request_type": ["GET"] * n,
            "name": ["/x"] * n,
            "response_time_ms": times_ms,
            "response_length": [1] * n,
            "status_code": [200] * n,
            "success": [True] * n,
            "exception": [None] * n,
            "requirement": ["REQ-CAP-9"] * n,
            "worker": ["local"] * n,
            "users": [10] * n,
            "user": [0] * n,
            "intended_ms": [None] * n,
            "omitted": [None] * n,
            "period_ms": [None] * n,
        },
        schema=SCHEMA,
    )


def test_a_step_is_gated_from_its_own_window_with_the_run_rules(tmp_path):
    files = step_files(
        _file(
            tmp_path,
            """
        - {metric: p95, alert: ">100ms"}
        - {metric: throughput, alert: "<100000/s"}
    """,
        )
    )
    assert [t.metric for t in files["REQ-CAP-9"].thresholds] == ["p95"]  # the throughput floor is left out
    # 1000 requests at 1..1000 ms over 10 s; the step window [1000, 1005) holds the first half (1..500 ms)
    table = _table([float(i) for i in range(1, 1001)])
    fast = step_summary(table, 1000.0, 1000.0 + 0.5, requirements=["REQ-CAP-9"])
    assert fast["overall"]["requests"] == 51  # 0 .. 0.5 s inclusive, a request every 10 ms
    assert judge_step(files, fast, requirements=["REQ-CAP-9"]).status == "pass"
    slow = step_summary(table, 1000.0, 1009.99, requirements=["REQ-CAP-9"])
    judged = judge_step(files, slow, requirements=["REQ-CAP-9"])
    assert judged.status == "fail"
    assert judged.limit == {
        "requirement": "REQ-CAP-9",
        "metric": "p95",
        "request": None,
        "value": pytest.approx(950.05),
        "alert": ">100ms",
        "unit": "ms",
    }
    assert judged.straddles == ()


def test_a_step_whose_interval_straddles_the_alert_is_flagged(tmp_path):
    files = step_files(_file(tmp_path, '- {metric: p95, alert: ">95ms"}'))
    table = _table([float(i) for i in range(1, 101)])  # p95 = 95.05 ms; its 95% CI spans several ranks
    judged = judge_step(
        files, step_summary(table, 1000.0, 1010.0, requirements=["REQ-CAP-9"]), requirements=["REQ-CAP-9"]
    )
    assert judged.status == "fail" and judged.straddles == ("REQ-CAP-9 p95 >95ms",)


def test_a_run_problem_makes_a_failing_step_inconclusive(tmp_path):
    files = step_files(_file(tmp_path, '- {metric: p95, alert: ">1ms"}'))
    summary = step_summary(_table([50.0] * 100), 1000.0, 1010.0, requirements=["REQ-CAP-9"])
    judged = judge_step(files, summary, requirements=["REQ-CAP-9"], problems=["load generator saturated: x"])
    assert judged.status == "inconclusive"


def test_read_stream_keeps_the_complete_batches_of_a_stream_being_written(tmp_path):
    path = tmp_path / "samples.arrows"
    with pa.OSFile(str(path), "wb") as sink:
        writer = pa.ipc.new_stream(sink, SCHEMA)
        writer.write_batch(_table([1.0, 2.0, 3.0]).to_batches()[0])
        writer.write_batch(_table([4.0, 5.0]).to_batches()[0])
    data = path.read_bytes()
    path.write_bytes(data[:-40])  # the recorder is mid-way through the second batch
    table = read_stream(path, ["timestamp", "response_time_ms", "name"], dictionary=True)
    assert table.column("response_time_ms").to_pylist() == [1.0, 2.0, 3.0]
    assert pa.types.is_dictionary(table.column("name").type)


CAPACITY_ITEMS = """
    - {metric: max_users, target: ">=150", alert: "<100"}
    - {metric: max_throughput, alert: "<50/s"}
    - {metric: max_users, regression: ">10%"}
"""


def _statuses(tmp_path, doc, baseline=None):
    from loadgate.gate.capacity import capacity_results

    files = _file(tmp_path, CAPACITY_ITEMS)
    return [
        (r.metric, r.status, r.value)
        for r in capacity_results(files, doc, requirements=["REQ-CAP-9"], baseline=baseline)
    ]


def test_max_users_and_max_throughput_are_gated_from_the_search(tmp_path):
    found = {"max_users": 120, "max_throughput": 118.0, "inconclusive": False, "at_least": False}
    assert _statuses(tmp_path, found) == [
        ("max_users", "warn", 120),
        ("max_throughput", "pass", 118.0),
        ("max_users", "skipped", None),
    ]  # no baseline yet
    low = {**found, "max_users": 80, "max_throughput": 40.0}
    assert [s for _, s, _ in _statuses(tmp_path, low)][:2] == ["fail", "fail"]
    nothing = {"max_users": None, "max_throughput": None, "inconclusive": False, "at_least": False}
    assert _statuses(tmp_path, nothing)[0] == ("max_users", "fail", 0)  # not even --start-users passed


def test_a_lower_bound_decides_only_when_it_already_meets_the_level(tmp_path):
    at_least = {"max_users": 80, "max_throughput": 80.0, "inconclusive": False, "at_least": True}
    assert _statuses(tmp_path, at_least)[0] == ("max_users", "inconclusive", 80)  # 80 or more: below 100?
    plenty = {**at_least, "max_users": 400}
    assert _statuses(tmp_path, plenty)[0] == ("max_users", "pass", 400)


def test_regression_on_max_users_fails_a_drop_beyond_the_tolerance(tmp_path):
    doc = {"max_users": 85, "max_throughput": 85.0, "inconclusive": False, "at_least": False}
    (_, status, change) = _statuses(tmp_path, doc, baseline={"max_users": 100})[2]
    assert status == "fail" and change == pytest.approx(-0.15)
    (_, status, change) = _statuses(tmp_path, {**doc, "max_users": 95}, baseline={"max_users": 100})[2]
    assert status == "pass" and change == pytest.approx(-0.05)


def test_run_skips_capacity_thresholds(tmp_path):
    from loadgate.gate.verdict import evaluate

    files = _file(tmp_path, CAPACITY_ITEMS + '    - {metric: p95, alert: ">100ms"}\n')
    summary = step_summary(_table([10.0] * 50), 1000.0, 1010.0, requirements=["REQ-CAP-9"])
    verdict = evaluate(files, summary, requirements=["REQ-CAP-9"])
    assert [r.status for r in verdict.thresholds] == ["skipped", "skipped", "skipped", "pass"]
    assert verdict.verdict == "pass"
    assert "REQ-CAP-9 max_users: gated by 'loadgate capacity' only" in verdict.reasons[0]


def test_the_baseline_capacity_is_the_newest_earlier_passing_one(tmp_path):
    import json

    from loadgate.history.baseline import last_capacity

    def make(name, users, verdict, reqs=("REQ-A-1",)):
        d = tmp_path / name
        d.mkdir()
        (d / "capacity.json").write_text(json.dumps({"requirements": list(reqs), "max_users": users}))
        (d / "verdict.json").write_text(json.dumps({"verdict": verdict}))
        return d

    make("20260101T000000Z-REQ-A-1", 100, "pass")
    make("20260102T000000Z-REQ-A-1", 90, "fail")
    make("20260103T000000Z-REQ-A-1", 70, "pass", reqs=("REQ-B-1",))
    me = make("20260104T000000Z-REQ-A-1", 60, "fail")
    make("20260105T000000Z-REQ-A-1", 200, "pass")  # later than this run: not a baseline
    assert last_capacity(str(me), {"requirements": ["REQ-A-1"]})["max_users"] == 100
