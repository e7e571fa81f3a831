"""The open model end to end: real Locust offering a set rate to a real counting server on 127.0.0.1.

The server notes when each request arrives (tests/arrival_target.py); the tests hold the run's own
counts (run.json's ``arrival`` block) against what the server saw.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from arrival_target import CountingTarget
from conftest import E2E, load, run_cli

ARR = E2E / "arrival"


def _run(tmp_path: Path, requirement: str, host: str, *extra: str):
    out = tmp_path / "reports"
    res = run_cli(
        "run",
        "--requirement",
        requirement,
        "--scenarios",
        str(ARR / "scenarios.py"),
        "--thresholds",
        str(ARR / "thresholds"),
        "--out",
        str(out),
        "--host",
        host,
        *extra,
        timeout=120,
    )
    dirs = sorted(p for p in out.iterdir() if p.is_dir()) if out.exists() else []
    assert dirs, res.stderr
    return res, dirs[-1]


def _steady(block: dict, run: dict) -> list[int]:
    """The whole seconds of the schedule after the warmup (the pool's first connections) and before the stop."""
    start = block["t0"] + run["warmup"]
    return [s for s in block["per_second"]["t"] if s >= start and s + 1 <= run["end"]]


def test_a_set_rate_reaches_the_server_at_that_rate_each_second(tmp_path):
    with CountingTarget() as target:
        res, run_dir = _run(tmp_path, "REQ-ARR-FAST", target.url)
        served = target.times("/fast")
    assert res.code in (0, 3), res.stderr  # 3: a generator on a busy machine may be late, which is said
    run = load(run_dir, "run.json")
    block = run["arrival"]["REQ-ARR-FAST"]
    assert (run["options"]["arrival_rate"], run["options"]["max_users"], block["max_users"]) == (200.0, 40, 40)
    assert run["paced"] and block["distribution"] == "constant" and block["stages"] == []
    assert block["scheduled"] == block["started"] + block["dropped"] == sum(block["per_second"]["scheduled"])
    assert block["started"] == len(served) == run["locust_requests"]
    per_second = Counter(int(t) for t in served)
    steady = _steady(block, run)
    assert len(steady) >= 3
    for sec in steady:
        assert abs(per_second[sec] - 200) <= 0.02 * 200, (sec, per_second[sec], sorted(per_second.items()))
    in_steady = sum(per_second[s] for s in steady)
    assert abs(in_steady - 200 * len(steady)) <= 0.02 * 200 * len(steady)
    span = block["per_second"]["t"]
    assert abs(len(served) - 200 * (run["end"] - block["t0"])) <= 0.02 * len(served), (len(served), span)
    assert abs(block["t0"] - run["ramp_up_done"]) < 1.0  # the pool spawned, the schedule starts
    table = pq.read_table(run_dir / "samples.parquet", columns=["intended_ms", "response_time_ms", "omitted"])
    intended, rt = table.column("intended_ms").to_pylist(), table.column("response_time_ms").to_pylist()
    assert all(i is not None and i >= r for i, r in zip(intended, rt))  # latency from the schedule, every row
    assert set(table.column("omitted").to_pylist()) == {0}  # each iteration one request, none omitted: dropped


def test_too_small_a_pool_drops_exactly_what_the_server_never_saw(tmp_path):
    with CountingTarget() as target:
        res, run_dir = _run(tmp_path, "REQ-ARR-SLOW", target.url)
        served = len(target.times("/slow/"))
    run = load(run_dir, "run.json")
    block = run["arrival"]["REQ-ARR-SLOW"]
    assert block["dropped"] > 0.3 * block["scheduled"], block  # 4 users x 5/s each cannot start 50/s
    assert block["dropped"] == block["scheduled"] - served, (block, served)
    assert block["started"] == served
    assert max(block["per_second"]["busy"]) == 4 and all(b <= 4 for b in block["per_second"]["busy"])
    assert all(block["per_second"]["scheduled"][block["per_second"]["t"].index(s)] == 50 for s in _steady(block, run))
    # the gate: the load asked for was not offered, so the latency threshold says nothing either way
    assert res.code == 3, res.stdout + res.stderr
    verdict = load(run_dir, "verdict.json")
    (p95,) = [t for t in verdict["thresholds"] if t["metric"] == "p95"]
    assert p95["status"] == "inconclusive", p95
    assert "the load asked for was not offered" in p95["reason"] and "max_users 4" in p95["reason"], p95
    arrival = load(run_dir, "summary.json")["arrival"]["REQ-ARR-SLOW"]
    assert arrival["dropped"] > 0 and arrival["scheduled"] >= arrival["dropped"], arrival


def test_each_requirement_runs_on_its_own_pool(tmp_path):
    """Two requirements in one run: the slow one's pool of 4 is its own, as each k6 scenario has its own VUs.
    The 44 users are spawned together, but the slow endpoint never borrows the fast one's idle users (it
    needs ~10 for 50/s at 200 ms): it drops what its 4 cannot start, and the fast one drops nothing."""
    with CountingTarget() as target:
        res, run_dir = _run(tmp_path, "REQ-ARR-FAST", target.url, "--requirement", "REQ-ARR-SLOW")
        served_slow = len(target.times("/slow/"))
    blocks = load(run_dir, "run.json")["arrival"]
    fast, slow = blocks["REQ-ARR-FAST"], blocks["REQ-ARR-SLOW"]
    assert max(slow["per_second"]["busy"]) == 4, slow["per_second"]["busy"]
    assert slow["dropped"] > 0.3 * slow["scheduled"] and slow["started"] == served_slow, slow
    # the fast endpoint's 40 users are enough (a busy CI host may still slow a start or two)
    assert fast["dropped"] <= 0.01 * fast["scheduled"] and fast["scheduled"] > 0, fast
    assert res.code == 3, res.stdout + res.stderr  # the slow requirement's load was not offered


def test_two_workers_offer_the_total_rate_and_their_drops_add_up_exactly(tmp_path):
    with CountingTarget() as target:
        res, run_dir = _run(tmp_path, "REQ-ARR-SLOW", target.url, "--workers", "2", "--max-users", "6")
        served = len(target.times("/slow/"))
    run = load(run_dir, "run.json")
    block = run["arrival"]["REQ-ARR-SLOW"]
    seconds = block["per_second"]
    for sec in _steady(block, run):
        assert seconds["scheduled"][seconds["t"].index(sec)] == 50, seconds  # 25/s each, interleaved
    assert block["dropped"] > 0 and block["dropped"] == block["scheduled"] - served, (block, served)
    log = (run_dir / "locust.log").read_text()
    workers = re.findall(r"open model REQ-ARR-SLOW: this process scheduled (\d+), started (\d+), dropped (\d+)", log)
    assert len(workers) == 2, log[-3000:]
    assert [sum(int(w[i]) for w in workers) for i in range(3)] == [
        block["scheduled"],
        block["started"],
        block["dropped"],
    ]
    assert max(seconds["busy"]) <= 6 and run["users_reached"] == 6


@pytest.mark.parametrize(
    "extra, words",
    [
        (("--arrival-rate", "fast"), ["argument --arrival-rate: 'fast' is not a rate", "like 200/s"]),
        (("--arrival-rate", "0/s"), ["argument --arrival-rate: '0/s' is not a rate", "like 200/s"]),
        (("--max-users", "0"), ["argument --max-users: '0' is not a pool of users", "like 2000"]),
        (("--arrival-rate", "100/s", "--users", "5"), ["--users 5 with --arrival-rate 100/s", "drop --users"]),
    ],
)
def test_bad_open_model_flags_exit_2_saying_what_where_and_the_fix(tmp_path, extra, words):
    res, _ = _no_run(tmp_path, *extra)
    assert res.code == 2, res.stderr
    assert "Traceback" not in res.stderr and all(w in res.stderr for w in words), res.stderr


def test_a_pool_of_zero_in_the_threshold_file_names_its_line(tmp_path):
    bad = tmp_path / "thresholds"
    bad.mkdir()
    (bad / "REQ-ARR-FAST.yaml").write_text(
        "requirement: REQ-ARR-FAST\nload:\n  arrival:\n    rate: 10/s\n"
        "    max_users: 0\nthresholds:\n  - metric: p95\n    alert: '>1s'\n"
    )
    res = run_cli(
        "run",
        "--requirement",
        "REQ-ARR-FAST",
        "--scenarios",
        str(ARR / "scenarios.py"),
        "--thresholds",
        str(bad),
        "--out",
        str(tmp_path / "out"),
    )
    assert res.code == 2 and "REQ-ARR-FAST.yaml:5" in res.stderr and "load.arrival.max_users" in res.stderr, res.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def _no_run(tmp_path: Path, *extra: str):
    res = run_cli(
        "run",
        "--requirement",
        "REQ-ARR-FAST",
        "--scenarios",
        str(ARR / "scenarios.py"),
        "--thresholds",
        str(ARR / "thresholds"),
        "--out",
        str(tmp_path / "out"),
        "--host",
        "http://127.0.0.1:9",
        *extra,
    )
    return res, None
