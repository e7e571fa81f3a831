"""The open model after the run: dropped_iterations as a threshold, the rule that a requirement whose load
was not offered has no trustworthy latency, the summary's arrival section, summary.md and report.html.

Run directories are made as a run with an arrival shape leaves them (tests/arrival_runs.py: real samples
through loadgate's own writer, run.json with the schedule's per-second counts) and gated by the real CLI."""

from __future__ import annotations

import json
import textwrap

import pytest

from arrival_runs import T0, make_run
from conftest import load, run_cli
from test_report import chart_json
from test_report_browser import chromium, open_and_shoot  # noqa: F401 - chromium is a fixture
from loadgate.analysis.arrival import in_window
from loadgate.analysis.window import Window
from loadgate.errors import ConfigError
from loadgate.gate.capacity import step_files
from loadgate.gate.thresholds import load_threshold_file
from loadgate.shared.live_rules import rules_from_thresholds

LATENCY = ("p50", "p95", "p99", "p99.9", "mean", "max")


def thresholds(tmp_path, items: str, *, arrival: str = "{rate: 100/s, max_users: 10}", name: str = "thr") -> str:
    folder = tmp_path / name
    folder.mkdir()
    load = f"load:\n  arrival: {arrival}\n" if arrival else ""
    (folder / "REQ-OPEN-1.yaml").write_text(
        "requirement: REQ-OPEN-1\ntitle: two hundred a second\n"
        + load
        + "thresholds:\n"
        + textwrap.indent(textwrap.dedent(items).strip(), "  ")
        + "\n"
    )
    return str(folder / "REQ-OPEN-1.yaml")


ALL_KINDS = """
    - metric: p50
      target: "<300ms"
    - metric: p95
      alert: ">300ms"
    - metric: p99
      target: "<300ms"
      latency: service
    - metric: p99.9
      target: "<300ms"
    - metric: mean
      target: "<300ms"
    - metric: max
      alert: ">1s"
    - metric: error_rate
      alert: ">1%"
    - metric: throughput
      target: ">120/s"
    """


def gate(run_dir, path: str):
    res = run_cli("gate", str(run_dir), "--thresholds", path)
    return res, load(run_dir, "verdict.json")


# --- threshold files -------------------------------------------------------------------------------


def test_a_count_and_a_share_of_the_scheduled_starts(tmp_path):
    tf = load_threshold_file(
        thresholds(
            tmp_path,
            """
        - metric: dropped_iterations
          target: "<1"
          alert: ">100"
        """,
        )
    )
    [t] = tf.thresholds
    assert (t.unit, t.target.value, t.alert.value) == ("iterations", 1.0, 100.0)
    tf = load_threshold_file(
        thresholds(
            tmp_path,
            """
        - metric: dropped_iterations
          target: "<0.5%"
          alert: ">1%"
        """,
            name="share",
        )
    )
    [t] = tf.thresholds
    assert (t.unit, t.target.value, t.alert.value) == ("ratio", 0.005, 0.01)
    assert tf.load.arrival.max_dropped == 0.01  # the default


@pytest.mark.parametrize(
    "item, line, key, what, fix",
    [
        (
            '- metric: dropped_iterations\n  target: "<1"\n  alert: ">1%"',
            8,
            "thresholds[0].alert",
            "'>1%' is a share but target '<1' is a count",
            "both counts",
        ),
        (
            '- metric: dropped_iterations\n  request: GET /x\n  alert: ">1"',
            7,
            "thresholds[0].request",
            "counts the requirement's whole schedule",
            "no request key",
        ),
        (
            '- metric: dropped_iterations\n  regression: ">10%"',
            7,
            "thresholds[0].regression",
            "does not apply to dropped_iterations",
            'alert: ">1%"',
        ),
        (
            '- metric: dropped_iterations\n  alert: ">5"\n  abort_on_fail: true',
            8,
            "thresholds[0].abort_on_fail",
            "the live view does not see dropped iterations",
            "remove abort_on_fail",
        ),
        ('- metric: dropped_iterations\n  alert: ">150%"', 7, "thresholds[0].alert", "above 100%", "<0.5%"),
        (
            '- metric: dropped_iterations\n  alert: ">5ms"',
            7,
            "thresholds[0].alert",
            "does not fit dropped_iterations",
            "a count like",
        ),
    ],
)
def test_item_mistakes_name_line_key_and_fix(tmp_path, item, line, key, what, fix):
    path = thresholds(tmp_path, item)
    with pytest.raises(ConfigError) as e:
        load_threshold_file(path)
    assert str(e.value).startswith(f"{path}:{line}: {key}: ") and what in str(e.value) and fix in str(e.value)


@pytest.mark.parametrize("raw, value", [("2%", 0.02), ("0.5%", 0.005), ("0.03", 0.03), ("0", 0.0), ("100%", 1.0)])
def test_max_dropped_is_a_share(tmp_path, raw, value):
    path = thresholds(tmp_path, '- metric: p95\n  alert: ">1s"', arrival=f"{{rate: 5/s, max_dropped: '{raw}'}}")
    assert load_threshold_file(path).load.arrival.max_dropped == value


@pytest.mark.parametrize(
    "raw, hint", [("lots", ""), ("150%", ""), ("5", " (a bare number is a fraction: 0.01 = 1%)"), ("-1%", "")]
)
def test_max_dropped_mistakes_name_line_key_and_fix(tmp_path, raw, hint):
    path = thresholds(tmp_path, '- metric: p95\n  alert: ">1s"', arrival=f"\n    rate: 5/s\n    max_dropped: '{raw}'")
    with pytest.raises(ConfigError) as e:
        load_threshold_file(path)
    assert str(e.value) == (
        f"{path}:6: load.arrival.max_dropped: '{raw}' is not a share from 0 to 100%{hint}; "
        "expected a share of the scheduled starts like 1% or 0.5%"
    )


def test_the_live_view_and_a_capacity_step_leave_dropped_iterations_to_the_gate(tmp_path):
    tf = load_threshold_file(
        thresholds(tmp_path, '- metric: dropped_iterations\n  alert: ">1%"\n- metric: p95\n  alert: ">1s"')
    )
    assert [r["metric"] for r in rules_from_thresholds([tf])] == ["p95"]  # no schedule in the live samples
    assert [t.metric for t in step_files({"REQ-OPEN-1": tf})["REQ-OPEN-1"].thresholds] == ["p95"]


# --- the window's counts -----------------------------------------------------------------------------


def test_the_window_counts_the_seconds_whose_start_lies_in_it():
    block = {
        "rate": 10.0,
        "max_users": 3,
        "per_second": {
            "t": [T0, T0 + 1, T0 + 2, T0 + 3],
            "scheduled": [10, 10, 10, 10],
            "started": [4, 9, 10, 7],
            "dropped": [6, 1, 0, 3],
            "busy": [3, 3, 2, 3],
        },
    }
    s = in_window(block, Window(T0 + 0.5, T0 + 3))  # second T0 starts before it, T0 + 3 at its (open) end
    assert {k: s[k] for k in ("seconds", "scheduled", "started", "dropped", "busy_max")} == {
        "seconds": 2,
        "scheduled": 20,
        "started": 19,
        "dropped": 1,
        "busy_max": 3,
    }
    assert s["dropped_share"] == 0.05 and s["offered_rate"] == 10.0 and s["achieved_rate"] == 9.5
    assert in_window(block, Window(T0 + 10, T0 + 20))["dropped_share"] is None  # nothing scheduled in it
    broken = in_window({"rate": 10.0, "per_second": {"t": [T0], "scheduled": [1, 2]}}, Window(T0, T0 + 1))
    assert "no usable per-second counts" in broken["reason"] and "scheduled" not in broken


# --- the gate ---------------------------------------------------------------------------------------


def test_too_many_dropped_makes_every_latency_threshold_inconclusive_and_still_judges_the_rest(tmp_path):
    # 1,800 starts in the 18 s window (100/s); 40 dropped in it (2.2%), 90 more in the warmup (not counted)
    run_dir = make_run(tmp_path / "out", "r", dropped={0: 50, 1: 40, 5: 25, 6: 15})
    res, verdict = gate(run_dir, thresholds(tmp_path, ALL_KINDS))
    by_metric = {t["metric"]: t for t in verdict["thresholds"]}
    reason = (
        "the load asked for was not offered: 40 of 1,800 iterations (2.22%) were dropped because no user of "
        "the pool (max_users 10) was free, above load.arrival.max_dropped 1%; raise max_users or lower the rate"
    )
    for metric in LATENCY:
        assert by_metric[metric]["status"] == "inconclusive", metric
        assert reason in by_metric[metric]["reason"], by_metric[metric]["reason"]
    assert by_metric["p99"]["latency"] == "service" and by_metric["p95"]["latency"] == "intended"  # intended or not
    assert by_metric["error_rate"]["status"] == "pass"
    assert by_metric["throughput"]["status"] == "warn"  # 97.8 req/s achieved, below the 120/s target: judged
    assert res.code == 3 and verdict["verdict"] == "inconclusive"
    arrival = load(run_dir, "summary.json")["arrival"]["REQ-OPEN-1"]
    assert (arrival["scheduled"], arrival["started"], arrival["dropped"], arrival["seconds"]) == (1800, 1760, 40, 18)


def test_below_the_limit_the_latency_is_judged_and_max_dropped_moves_the_limit(tmp_path):
    run_dir = make_run(tmp_path / "out", "r", dropped={5: 9})  # 9 of 1,800: 0.5%
    res, verdict = gate(run_dir, thresholds(tmp_path, ALL_KINDS))
    assert {t["metric"]: t["status"] for t in verdict["thresholds"]} == {
        **dict.fromkeys(LATENCY, "pass"),
        "error_rate": "pass",
        "throughput": "warn",
    }
    assert res.code == 0
    strict = thresholds(tmp_path, ALL_KINDS, arrival="{rate: 100/s, max_users: 10, max_dropped: 0.25%}", name="strict")
    res, verdict = gate(run_dir, strict)
    statuses = {t["metric"]: t["status"] for t in verdict["thresholds"]}
    assert all(statuses[m] == "inconclusive" for m in LATENCY) and statuses["error_rate"] == "pass"
    assert "9 of 1,800 iterations (0.5%) were dropped" in verdict["thresholds"][0]["reason"]
    assert "above load.arrival.max_dropped 0.25%" in verdict["thresholds"][0]["reason"] and res.code == 3


@pytest.mark.parametrize(
    "levels, value, status, code",
    [
        ('target: "<1"\n  alert: ">100"', 40.0, "warn", 0),
        ('target: "<1"\n  alert: ">30"', 40.0, "fail", 1),
        ('target: "<50"', 40.0, "pass", 0),
        ('target: "<0.5%"\n  alert: ">1%"', 40 / 1800, "fail", 1),
        ('target: "<2.5%"', 40 / 1800, "pass", 0),
    ],
)
def test_dropped_iterations_as_a_count_or_a_share_of_the_window(tmp_path, levels, value, status, code):
    run_dir = make_run(tmp_path / "out", "r", dropped={0: 50, 5: 40})  # the 50 of the warmup are not counted
    path = thresholds(
        tmp_path, "- metric: dropped_iterations\n  " + levels, arrival="{rate: 100/s, max_users: 10, max_dropped: 5%}"
    )
    res, verdict = gate(run_dir, path)
    [t] = verdict["thresholds"]
    assert (t["value"], t["status"], t["requests"], res.code) == (pytest.approx(value), status, 1800, code)
    if status != "pass":
        assert t["reason"].startswith("REQ-OPEN-1 dropped_iterations (40 of 1,800 scheduled starts) = ")
    text = (run_dir / "summary.md").read_text()
    assert "| REQ-OPEN-1 | dropped\\_iterations | the schedule's starts |" in text


def test_a_run_without_an_arrival_shape_leaves_dropped_iterations_inconclusive_and_says_how_to_fix_it(tmp_path):
    run_dir = make_run(tmp_path / "out", "r", arrival=False)
    res, verdict = gate(
        run_dir,
        thresholds(tmp_path, '- metric: dropped_iterations\n  alert: ">1%"\n- metric: p95\n  alert: ">1s"', arrival=""),
    )
    dropped, p95 = verdict["thresholds"]
    assert dropped["status"] == "inconclusive" and dropped["value"] is None and res.code == 3
    assert dropped["reason"].startswith(
        "REQ-OPEN-1 dropped_iterations: the run had no arrival shape, so no iteration "
        "was scheduled or dropped; give the threshold file load.arrival"
    )
    assert "--arrival-rate" in dropped["reason"] and p95["status"] == "pass"
    assert "arrival" not in load(run_dir, "summary.json")  # a closed-model summary is as it always was
    assert "Arrival rate" not in (run_dir / "summary.md").read_text()
    assert 'id="arrival-table"' not in (run_dir / "report.html").read_text()


def test_per_second_counts_missing_from_run_json_are_inconclusive_not_zero(tmp_path):
    run_dir = make_run(tmp_path / "out", "r")
    run = load(run_dir, "run.json")
    del run["arrival"]["REQ-OPEN-1"]["per_second"]
    (run_dir / "run.json").write_text(json.dumps(run))
    res, verdict = gate(
        run_dir,
        thresholds(
            tmp_path,
            '- metric: dropped_iterations\n  alert: ">1%"\n'
            '- metric: p95\n  alert: ">1s"\n- metric: error_rate\n  alert: ">1%"',
        ),
    )
    dropped, p95, errors = verdict["thresholds"]
    assert dropped["status"] == "inconclusive" and "no usable per-second counts" in dropped["reason"] and res.code == 3
    assert p95["status"] == "inconclusive" and errors["status"] == "pass"  # a pass could hide a load never offered
    assert "whether the load asked for was offered cannot be told: run.json's arrival block" in p95["reason"]


# --- summary.md and report.html ----------------------------------------------------------------------


def test_summary_md_and_the_report_show_offered_achieved_dropped_and_busy_users(tmp_path):
    run_dir = make_run(tmp_path / "out", "r", dropped={5: 30, 6: 20}, seconds=12)
    gate(run_dir, thresholds(tmp_path, '- metric: dropped_iterations\n  alert: ">1%"'))
    md = (run_dir / "summary.md").read_text()
    assert "### Arrival rate (open model)" in md
    assert (
        "**REQ-OPEN-1**: 100.0/s asked, a pool of 10 users. In the analysis window: 1,000 starts scheduled "
        "(100.0/s offered), 950 started (95.0/s achieved), 50 dropped (5.00%), at most 10 users busy at once."
    ) in md
    assert "| 16\\:00\\:05 | 1 | 100.0/s | 70.0/s | 30 | 10 |" in md  # 12 seconds: a row each
    html = (run_dir / "report.html").read_text()
    [a] = chart_json(html)["arrival"]
    assert a["requirement"] == "REQ-OPEN-1" and a["t"][:2] == [0.0, 1.0] and a["max_users"] == 10
    assert a["offered"][5] == 100 and a["achieved"][5] == 70 and a["dropped"][5:7] == [30, 20] and a["busy"][5] == 10
    assert 'id="chart-arrival-0"' in html and 'id="arrival-table"' in html
    assert 'data-charts-expected="6"' in html  # the five charts of every run and this one


def test_names_from_run_json_stay_text_in_the_report(tmp_path):
    run_dir = make_run(tmp_path / "out", "r", dropped={5: 30})
    run = load(run_dir, "run.json")
    hostile = "<img src=x onerror=alert(1)></script>"
    run["arrival"][hostile] = run["arrival"]["REQ-OPEN-1"]
    (run_dir / "run.json").write_text(json.dumps(run))
    gate(run_dir, thresholds(tmp_path, '- metric: dropped_iterations\n  alert: ">1%"'))
    html = (run_dir / "report.html").read_text()
    assert hostile not in html and "&lt;img src=x onerror=alert(1)&gt;&lt;/script&gt;" in html
    assert hostile in [a["requirement"] for a in chart_json(html)["arrival"]]
    assert "\\<img src=x onerror=alert\\(1\\)\\>\\</script\\>" in (run_dir / "summary.md").read_text()


def test_the_arrival_chart_is_drawn_in_the_browser(chromium, tmp_path):  # noqa: F811 - the fixture
    run_dir = make_run(tmp_path / "out", "r", dropped={5: 30, 6: 20}, seconds=12)
    gate(run_dir, thresholds(tmp_path, '- metric: dropped_iterations\n  alert: ">1%"'))
    dom = open_and_shoot(chromium, run_dir, tmp_path, "report-arrival.png")  # drawn == expected == 6, no console line
    assert 'id="chart-arrival-0"' in dom and "achieved (started/s)" in dom
