"""``loadgate capacity --arrival-rate`` without Locust: the rate search's steps, a step whose load was not
offered, capacity.json's figures as a rate, and the flags and files refused before anything runs (exit 2)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

from conftest import E2E, run_cli
from loadgate.analysis.steps import step_summary
from loadgate.data.samples import SCHEMA
from loadgate.errors import ConfigError
from loadgate.gate.capacity import capacity_results, judge_step, step_files
from loadgate.gate.headroom import capacity_figure
from loadgate.gate.thresholds import load_threshold_file
from loadgate.run import capacity_rate
from loadgate.run.capacity_search import RATE, CapacityPlan, Search, worst_case_steps

CAP = E2E / "capacity"
REQ = "REQ-RATE-9"


def run_search(start: float, most: float, resolution: float, capacity: float) -> tuple[list[float], Search]:
    """Drive the rate search against a system that carries exactly ``capacity`` iterations/s."""
    s = Search(start, most, resolution, quantity=RATE)
    seen = []
    while (rate := s.next_users()) is not None:
        seen.append(rate)
        s.record(rate, "pass" if rate <= capacity else "inconclusive")  # not offered: an upper bound, never a pass
        assert len(seen) < 50
    return seen, s


def test_rates_double_then_bisect_in_halves_of_any_size():
    seen, s = run_search(50, 3200, 0.10, capacity=130)
    # 50 100 pass, 200 not; [100, 200]: 150 not, 125 pass, 137.5 not -> 12.5 <= 10% of 125
    assert seen == [50, 100, 200, 150, 125, 137.5]
    assert (s.lo, s.hi) == (125, 137.5)
    assert s.why_done() == "bracketed within 10%: 125/s pass, 137.5/s do not"


def test_a_rate_search_stops_at_max_rate_or_at_a_failing_first_rate():
    seen, s = run_search(50, 300, 0.10, capacity=10_000)
    assert seen == [50, 100, 200, 300] and s.hi is None
    assert s.why_done() == "--max-rate 300 passed: capacity is at least 300/s"
    seen, s = run_search(50, 300, 0.10, capacity=20)
    assert seen == [50] and s.why_done() == "the first step (50/s) did not pass; lower --arrival-rate"


def test_the_plan_of_a_rate_search_is_honest():
    for start, most, res in [(50, 3200, 0.10), (0.5, 8, 0.25), (6, 24, 1.0)]:
        worst = worst_case_steps(start, most, res, RATE)
        longest = max(len(run_search(start, most, res, c / 4)[0]) for c in range(0, int(most * 4) + 8))
        assert longest <= worst <= longest + 1, (start, most, res, longest, worst)
    plan = CapacityPlan(40, 40, 3.0, 0.34, 180.0, start_rate=10.0, max_rate=40.0)
    assert plan.describe(1.0).startswith(
        "loadgate capacity: plan: arrival rate from 10/s doubling up to 40/s with "
        "a pool of 40 users, then bisecting to within 34%; at most 5 steps"
    )


def _files(tmp_path: Path, body: str):
    path = tmp_path / f"{REQ}.yaml"
    path.write_text(f"requirement: {REQ}\n" + textwrap.dedent(body).strip() + "\n")
    tf = load_threshold_file(str(path))
    return {tf.requirement: tf}


def _summary(n: int = 100):
    t = [1000.0 + i * 0.04 for i in range(n)]  # 25 requests a second over 4 s, 50 ms each
    table = pa.table(
        {
            "timestamp": t,
            "request_type": ["GET"] * n,
            "name": ["/x"] * n,
            "response_time_ms": [50.0] * n,
            "response_length": [1] * n,
            "status_code": [200] * n,
            "success": [True] * n,
            "exception": [None] * n,
            "requirement": [REQ] * n,
            "worker": ["local"] * n,
            "users": [10] * n,
            "user": [0] * n,
            "intended_ms": [None] * n,
            "omitted": [None] * n,
            "period_ms": [None] * n,
        },
        schema=SCHEMA,
    )
    return step_summary(table, 1000.0, 1004.0, requirements=[REQ])


def _state(dropped: list[int]) -> dict:
    """The capacity shape's state: 30 starts scheduled in each of the seconds 1000..1004, some dropped."""
    secs = list(range(1000, 1000 + len(dropped)))
    return {
        "t": 1010.0,
        "arrival": {
            REQ: {
                "rate": 30.0,
                "max_users": 4,
                "distribution": "constant",
                "per_second": {
                    "t": secs,
                    "scheduled": [30] * len(secs),
                    "started": [30 - d for d in dropped],
                    "dropped": dropped,
                    "busy": [4] * len(secs),
                },
            }
        },
    }


def _step(tmp_path: Path, dropped: list[int], body: str = 'thresholds:\n  - {metric: p95, alert: ">500ms"}'):
    files = step_files(_files(tmp_path, body), by_rate=True)
    summary = _summary()
    summary["arrival"] = capacity_rate.window_counts(_state(dropped), [REQ], 999.6, 1004.2)
    judged = judge_step(files, summary, requirements=[REQ])
    return capacity_rate.step_record(
        30.0, files, summary, judged, {"users": 4, "status": judged.status, "limit": judged.limit}
    ), judged


def test_a_step_whose_load_was_offered_passes_with_its_counts(tmp_path):
    step, judged = _step(tmp_path, [0, 0, 0, 0, 30])
    # the whole seconds inside [999.6, 1004.2]: 1000..1003 (1004 runs past the window's end)
    assert (step["scheduled"], step["dropped"], step["offered_rate"], step["achieved_rate"]) == (120, 0, 30.0, 30.0)
    assert judged.status == "pass" and step["offered"] is True and step["rate"] == 30.0


def test_a_step_whose_load_was_not_offered_never_passes(tmp_path):
    step, judged = _step(tmp_path, [0, 3, 3, 0])  # 6 of 120 dropped: 5%, above the default 1%
    assert judged.status == "inconclusive" and step["offered"] is False
    assert "the load asked for was not offered: 6 of 120 iterations (5%) were dropped" in judged.verdict.reasons[0]
    assert step["limit"] == {
        "requirement": REQ,
        "metric": "dropped_iterations",
        "request": None,
        "value": pytest.approx(5.0),
        "alert": ">1%",
        "unit": "%",
        "max_users": 4,
    }
    assert capacity_rate.broke_first(step["limit"]) == (
        "dropped iterations: the pool of 4 users was exhausted, so the load asked for was not offered"
    )
    # within the file's own max_dropped, the same step passes
    step, judged = _step(
        tmp_path,
        [0, 3, 3, 0],
        'load: {arrival: {rate: 30/s, max_dropped: 10%}}\nthresholds:\n  - {metric: p95, alert: ">500ms"}',
    )
    assert judged.status == "pass" and step["offered"] is True


def test_a_step_without_counts_cannot_pass(tmp_path):
    files = step_files(_files(tmp_path, 'thresholds:\n  - {metric: p95, alert: ">500ms"}'), by_rate=True)
    summary = _summary()
    summary["arrival"] = capacity_rate.window_counts({"t": 1010.0}, [REQ], 999.6, 1004.2)
    assert judge_step(files, summary, requirements=[REQ]).status == "inconclusive"


def test_dropped_iterations_are_judged_in_a_rate_step_only(tmp_path):
    body = 'thresholds:\n  - {metric: p95, alert: ">500ms"}\n  - {metric: dropped_iterations, alert: ">0.5%"}'
    assert [t.metric for t in step_files(_files(tmp_path, body))[REQ].thresholds] == ["p95"]
    assert [t.metric for t in step_files(_files(tmp_path, body), by_rate=True)[REQ].thresholds] == [
        "p95",
        "dropped_iterations",
    ]


def test_what_broke_first_in_words():
    assert capacity_rate.broke_first({"metric": "p95"}) == "latency"
    assert capacity_rate.broke_first({"metric": "mean"}) == "latency"
    assert capacity_rate.broke_first({"metric": "error_rate"}) == "errors"
    assert capacity_rate.broke_first(None) is None


def test_capacity_json_states_a_rate_that_max_throughput_and_headroom_read(tmp_path):
    steps = [
        {"rate": 50.0, "throughput": 49.8, "status": "pass", "limit": None},
        {"rate": 100.0, "throughput": 99.1, "status": "pass", "limit": None},
        {
            "rate": 200.0,
            "throughput": 150.0,
            "status": "fail",
            "limit": {"requirement": REQ, "metric": "p95", "value": 900.0},
        },
        {
            "rate": 150.0,
            "throughput": 140.0,
            "status": "inconclusive",
            "limit": {"requirement": REQ, "metric": "dropped_iterations", "value": 12.0, "max_users": 40},
        },
    ]
    doc = capacity_rate.rate_doc(steps, 100.0, 150.0)
    assert (doc["quantity"], doc["max_rate"], doc["first_not_passing_rate"], doc["first_failing_rate"]) == (
        "rate",
        100.0,
        150.0,
        200.0,
    )
    assert doc["max_throughput"] == 100.0 and doc["throughput_at_max"] == 99.1 and doc["max_users"] is None
    assert doc["limit"]["metric"] == "dropped_iterations" and doc["broke_first"].startswith("dropped iterations")
    assert capacity_figure(doc, "rate") == (100.0, 150.0) and capacity_figure(doc, "users") == (None, None)
    files = _files(
        tmp_path,
        "capacity: {peak: {rate: 80/s}}\nthresholds:\n  - {metric: max_throughput, alert: "
        '"<120/s"}\n  - {metric: headroom, alert: "<20%"}',
    )
    results = capacity_results(files, {**doc, "inconclusive": False}, requirements=[REQ])
    assert [(r.metric, r.status, r.value) for r in results] == [
        ("max_throughput", "fail", 100.0),
        ("headroom", "pass", 0.25),
    ]


def test_thresholds_a_rate_search_cannot_answer_are_refused_with_their_line(tmp_path):
    files = _files(tmp_path, 'thresholds:\n  - {metric: p95, alert: ">500ms"}\n  - {metric: max_users, alert: "<10"}')
    with pytest.raises(
        ConfigError,
        match=rf"{REQ}.yaml:4: metric: max_users with a search over arrival rate.*"
        "use metric: max_throughput",
    ):
        capacity_rate.check_files(files, 40)
    files = _files(tmp_path, 'capacity: {peak: {users: 100}}\nthresholds:\n  - {metric: p95, alert: ">500ms"}')
    with pytest.raises(ConfigError, match=r"capacity.peak: 100 users .* declare the peak as a rate"):
        capacity_rate.check_files(files, 40)


def _capacity(tmp_path: Path, *args: str):
    return run_cli(
        "capacity",
        "--scenarios",
        str(CAP / "scenarios"),
        "--thresholds",
        str(CAP / "thresholds"),
        "--out",
        str(tmp_path / "out"),
        *args,
    )


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ("--requirement", "REQ-CAP-005", "--arrival-rate", "50/s", "--start-users", "10"),
            "--start-users 10 with --arrival-rate 50/s: a search over arrival rate holds one pool of --max-users users "
            "and steps the rate; drop --start-users, or drop --arrival-rate to search over users",
        ),
        (
            ("--requirement", "REQ-CAP-005", "--arrival-rate", "50/s", "--max-rate", "20/s"),
            "--max-rate 20/s: must be at least the first rate 50/s",
        ),
        (
            ("--requirement", "REQ-CAP-005", "--max-rate", "20/s"),
            "--max-rate 20/s: the bound of a search over arrival rate; give its first rate too (--arrival-rate 50/s, or "
            "load.arrival in the threshold file), or drop --max-rate to search over users",
        ),
        (
            ("--requirement", "REQ-CAP-002", "--arrival-rate", "50/s"),
            f"{CAP / 'thresholds' / 'REQ-CAP-002.yaml'}:10: metric: max_users with a search over arrival rate, which holds "
            "one pool of 800 users and finds no user count; use metric: max_throughput (the most iterations/s within the "
            "alerts), or search over users without --arrival-rate",
        ),
        (
            ("--requirement", "REQ-CAP-005", "--arrival-rate", "fast"),
            "argument --arrival-rate: 'fast' is not a rate of iterations > 0; give one like 200/s, 12000/m or 3600/h; "
            "see 'loadgate capacity --help'",
        ),
    ],
)
def test_contradicting_flags_are_usage_errors_before_anything_runs(tmp_path, args, error):
    res = _capacity(tmp_path, *args)
    assert res.code == 2, res.stdout + res.stderr
    assert res.error_lines == [f"loadgate capacity: error: {error}"]
    assert not (tmp_path / "out").exists()
