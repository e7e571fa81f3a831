"""``loadgate capacity`` end to end: real Locust against the real demo target, with known answers.

``/api/limited/10/100`` serves at most 10 requests at once for 100 ms each: 100 req/s. Users paced
at one request a second therefore fit up to about 100 of them; beyond, the queue (and p95) grows
without bound. The search must land within ±25% of 100.
"""
from __future__ import annotations

import json
import time

import pytest

from conftest import E2E, load, run_cli, run_dir_of

CAP = E2E / "capacity"


def _capacity(out, *args: str, timeout: float = 300):
    started = time.monotonic()
    res = run_cli("capacity", "--scenarios", str(CAP / "scenarios"), "--thresholds", str(CAP / "thresholds"),
                  "--out", str(out), *args, timeout=timeout)
    return res, time.monotonic() - started


def test_finds_the_known_capacity_of_a_server_with_ten_slots(tmp_path):
    args = ("--requirement", "REQ-CAP-001", "--start-users", "50", "--max-users", "400",
            "--step-duration", "4s", "--resolution", "25%", "--budget", "4m")
    res, wall = _capacity(tmp_path / "out", *args)
    run_dir = run_dir_of(tmp_path / "out")
    doc = load(run_dir, "capacity.json")
    note = (f"found {doc['max_users']} users vs expected ~100; steps "
            f"{[(s['users'], s['status'], round(s['p95'] or 0)) for s in doc['steps']]}; wall {wall:.0f}s; "
            f"command: loadgate capacity {' '.join(args)}")
    print(note)
    assert res.code == 0, res.stdout + res.stderr
    assert res.stderr.splitlines()[0].startswith("loadgate capacity: plan: from 50 users doubling up to 400")
    assert doc["schema"] == "loadgate.capacity/1"
    assert 75 <= doc["max_users"] <= 125, note
    assert doc["first_failing_users"] > doc["max_users"]
    assert doc["limit"]["metric"] == "p95" and doc["limit"]["value"] > 500
    assert doc["throughput_at_max"] == pytest.approx(doc["max_users"], rel=0.15)  # one request a second each
    assert all(s["status"] in ("pass", "fail", "unresolved") for s in doc["steps"])
    assert [s["users"] for s in doc["steps"]][:3] == [50, 100, 200] or doc["steps"][1]["status"] != "pass"
    for s in doc["steps"]:  # every step is measured on its own window, after its settle part
        assert s["settle_start"] < s["start"] < s["end"]
    # the usual run directory, gated: verdict, summary and the report are there
    verdict = load(run_dir, "verdict.json")
    assert verdict["verdict"] == "pass" and verdict["reasons"][0].startswith(f"capacity: {doc['max_users']} users")
    assert (run_dir / "samples.parquet").exists() and (run_dir / "report.html").exists()
    assert not (run_dir / "capacity.control.json").exists() and not (run_dir / "capacity.state.json").exists()


def test_a_target_that_never_saturates_reports_at_least_max_users_with_two_workers(tmp_path):
    res, _ = _capacity(tmp_path / "out", "--requirement", "REQ-CAP-002", "--start-users", "10",
                       "--max-users", "40", "--step-duration", "3s", "--budget", "2m", "--workers", "2")
    doc = load(run_dir_of(tmp_path / "out"), "capacity.json")
    assert res.code == 0, res.stdout + res.stderr
    assert [s["users"] for s in doc["steps"]] == [10, 20, 40]
    assert doc["max_users"] == 40 and doc["at_least"] is True and doc["first_failing_users"] is None
    assert "capacity: at least 40 users" in res.stdout
    assert "--max-users 40 passed" in doc["stopped_because"]
    run_dir = run_dir_of(tmp_path / "out")
    gated = [(t["metric"], t.get("regression"), t["status"]) for t in load(run_dir, "verdict.json")["thresholds"]]
    assert gated[:2] == [("max_users", None, "pass"), ("max_users", ">10%", "skipped")]
    run = load(run_dir, "run.json")  # the search ends like a timed run: every worker confirms what it sent
    assert len(run["worker_counts"]) == 2 and run["problems"] == []
    assert all(w["sent"] == w["received"] > 0 for w in run["worker_counts"].values())
    assert run["samples"] == run["locust_requests"]


def test_a_saturated_generator_ends_the_search_inconclusive(tmp_path):
    res, _ = _capacity(tmp_path / "out", "--requirement", "REQ-CAP-003", "--start-users", "4",
                       "--max-users", "8", "--step-duration", "5s", "--budget", "1m")
    doc = load(run_dir_of(tmp_path / "out"), "capacity.json")
    assert res.code == 3, res.stdout + res.stderr
    assert doc["inconclusive"] is True and doc["max_users"] is None
    # on a busy shared machine the generator may not reach 90% of a core: then its late iterations say it
    assert "the step of 4 users is inconclusive: load generator" in doc["stopped_because"]
    assert "add --workers" in doc["stopped_because"]
    assert json.loads((run_dir_of(tmp_path / "out") / "verdict.json").read_text())["verdict"] == "inconclusive"


def test_max_users_below_start_users_is_a_usage_error(tmp_path):
    res, _ = _capacity(tmp_path / "out", "--requirement", "REQ-CAP-001", "--start-users", "50", "--max-users", "10")
    assert res.code == 2
    assert res.error_lines == ["loadgate capacity: error: --max-users 10: must be at least --start-users 50"]
    assert not (tmp_path / "out").exists()
