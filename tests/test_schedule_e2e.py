"""Latency from the schedule, end to end: real Locust against a real target process that is frozen
(SIGSTOP) for 4 s in the middle of the analysis window, then thawed (SIGCONT).

A closed-loop generator stops sending while the target is frozen; the raw samples alone then read as
a healthy run. Paced users must fail the gate on the latency from the schedule, unpaced users must make
the percentile thresholds inconclusive, naming the stall.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from conftest import ROOT, load, run_cli
from loadgate.analysis.schedule import bunched_above

SCHED = ROOT / "tests" / "e2e" / "schedule"
FREEZE_S = 4.0


@pytest.fixture
def target():
    """The demo target as its own process (so that the test can freeze it); yields (url, pid)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadgate", "target", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    line = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not line.endswith(b"\n"):
        if select.select([proc.stdout], [], [], 0.5)[0]:
            line += os.read(proc.stdout.fileno(), 4096)
    url = line.decode().strip().split(" on ", 1)[1]
    assert url.startswith("http://127.0.0.1:")
    yield url, proc.pid
    os.kill(proc.pid, signal.SIGCONT)
    proc.terminate()
    proc.wait(10)


def _freeze_later(pid: int, out: Path, after_s: float) -> threading.Thread:
    """SIGSTOP the target ``after_s`` seconds after the run starts recording, SIGCONT 4 s later."""

    def go():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list(out.glob("*/samples.arrows")):
            time.sleep(0.1)
        time.sleep(after_s)
        os.kill(pid, signal.SIGSTOP)
        time.sleep(FREEZE_S)
        os.kill(pid, signal.SIGCONT)

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return thread


def _run(tmp_path: Path, requirement: str, host: str, freeze_pid: int | None, *extra: str):
    out = tmp_path / "reports"
    thread = _freeze_later(freeze_pid, out, 5.0) if freeze_pid else None
    res = run_cli(
        "run",
        "--requirement",
        requirement,
        "--scenarios",
        str(SCHED / "scenarios.py"),
        "--thresholds",
        str(SCHED / "thresholds"),
        "--out",
        str(out),
        "--host",
        host,
        *extra,
    )
    if thread:
        thread.join(30)
    run_dir = sorted(p for p in out.iterdir() if p.is_dir())[-1]
    return res, run_dir, {t["metric"]: t for t in load(run_dir, "verdict.json")["thresholds"]}


def test_a_frozen_target_fails_paced_users_on_the_latency_from_the_schedule(tmp_path, target):
    url, pid = target
    res, run_dir, rows = _run(tmp_path, "REQ-CO-PACED", url, pid)
    assert res.code == 1, res.stdout + res.stderr
    summary = load(run_dir, "summary.json")
    overall = summary["overall"]
    raw, intended = overall["response_time_ms"], overall["intended_response_time_ms"]
    # What the raw samples say: a healthy 2 ms endpoint (what the gate used to pass on) ...
    assert raw["p95"] < 300
    # ... and what the schedule says: the slots that waited behind the frozen target
    assert intended["p95"] > 1000 and intended["p99"] > 2000
    for metric in ("p95", "p99"):
        assert rows[metric]["status"] == "fail" and rows[metric]["latency"] == "intended", rows[metric]
        assert rows[metric]["value"] == intended[metric]
    assert rows["p50"]["latency"] == "service" and rows["p50"]["status"] == "pass"
    # omitted ~ the missed schedule: 10 users x 10/s x 4 s, less the slot each user was in when it froze
    expected = 10 * 10 * FREEZE_S
    assert 0.7 * expected <= overall["omitted"] <= 1.1 * expected, overall["omitted"]
    assert overall["schedule_attainment"] < 0.9 and overall["paced_requests"] == overall["requests"]
    # raw rows untouched, nothing synthetic written
    run = load(run_dir, "run.json")
    table = pq.read_table(run_dir / "samples.parquet")
    assert table.num_rows == run["locust_requests"]
    assert table.column("intended_ms").null_count == 0
    assert run["paced"] == {"Paced": pytest.approx(0.1)}
    assert summary["stalls"] == []  # paced users: the schedule tells, no guess needed


def test_a_frozen_target_makes_unpaced_percentiles_inconclusive_naming_the_stall(tmp_path, target):
    url, pid = target
    res, run_dir, rows = _run(tmp_path, "REQ-CO-UNPACED", url, pid)
    assert res.code == 3, res.stdout + res.stderr
    summary = load(run_dir, "summary.json")
    [stall] = summary["stalls"]
    assert FREEZE_S - 1 <= stall["seconds"] <= FREEZE_S + 0.5 and stall["users"] == 10
    assert summary["overall"]["stall_hidden"] > 0.05 * summary["overall"]["requests"]
    assert summary["overall"]["intended_response_time_ms"] is None  # no schedule: nothing intended
    for metric in ("p95", "p99"):
        assert rows[metric]["status"] == "inconclusive", rows[metric]
        assert "the target stalled at" in rows[metric]["reason"] and "10 of 10 users blocked" in rows[metric]["reason"]
        assert rows[metric]["latency"] == "service"
    assert "the target stalled at" in res.stdout


def test_a_pacing_period_shorter_than_every_iteration_says_the_schedule_was_never_met(tmp_path, target):
    url, _pid = target
    res, run_dir, rows = _run(tmp_path, "REQ-CO-OVERPACED", url, None)
    assert res.code == 3, res.stdout + res.stderr
    for metric in ("p95", "p99"):
        assert rows[metric]["status"] == "inconclusive"
        assert "the schedule was never met" in rows[metric]["reason"], rows[metric]["reason"]
        assert rows[metric]["value"] is None
    overall = load(run_dir, "summary.json")["overall"]
    assert overall["on_time"] < 0.1 and overall["schedule_attainment"] < 0.5
    assert rows["p50"]["status"] == "pass"  # the service latency itself is fine (60 ms)


def test_a_healthy_run_flags_no_stall_and_passes(tmp_path, target):
    url, _pid = target
    res, run_dir, rows = _run(tmp_path, "REQ-CO-UNPACED", url, None)
    assert res.code == 0, res.stdout + res.stderr
    assert load(run_dir, "summary.json")["stalls"] == []
    assert {r["status"] for r in rows.values()} == {"pass"}


def test_two_workers_merge_the_schedule_exactly(tmp_path, target):
    url, pid = target
    res, run_dir, rows = _run(tmp_path, "REQ-CO-PACED", url, pid, "--workers", "2")
    assert res.code == 1, res.stdout + res.stderr
    assert rows["p95"]["status"] == "fail" and rows["p95"]["latency"] == "intended"
    table = pq.read_table(run_dir / "samples.parquet").to_pandas()
    run = load(run_dir, "run.json")
    assert len(table) == run["locust_requests"] and table["worker"].nunique() == 2
    # users are numbered within their worker; together they are the 10 users of the run
    assert table.groupby("worker")["user"].nunique().sum() == 10
    assert set(run["schedule"]) == set(table["worker"])
    overall = load(run_dir, "summary.json")["overall"]
    window = load(run_dir, "summary.json")["window"]
    first = table[table["omitted"].notna()]
    # the summary's omitted count is exactly what the rows of both workers say (slots inside the window)
    lateness = (first["intended_ms"] - first["response_time_ms"]) / 1000
    slots = [
        s - lat + j * p / 1000
        for s, lat, m, p in zip(first["timestamp"], lateness, first["omitted"], first["period_ms"])
        for j in range(1, int(m) + 1)
    ]
    assert overall["omitted"] == sum(window["start"] <= s <= window["end"] for s in slots) > 250


def test_latency_intended_for_unpaced_users_is_refused_before_anything_runs(tmp_path):
    thresholds = tmp_path / "thresholds"
    thresholds.mkdir()
    path = thresholds / "REQ-CO-UNPACED.yaml"
    path.write_text(
        "requirement: REQ-CO-UNPACED\ntitle: t\nthresholds:\n  - metric: p95\n"
        '    latency: intended\n    alert: ">300ms"\n'
    )
    res = run_cli(
        "run",
        "--requirement",
        "REQ-CO-UNPACED",
        "--scenarios",
        str(SCHED / "scenarios.py"),
        "--thresholds",
        str(thresholds),
        "--out",
        str(tmp_path / "out"),
    )
    assert res.code == 2
    assert res.error_lines == [
        f"loadgate run: error: {path}:4: latency: intended, but no User class that runs REQ-CO-UNPACED is paced "
        "(Unpaced); expected a paced wait_time (constant_throughput or constant_pacing) or latency: service"
    ]
    assert not (tmp_path / "out").exists()
    check = run_cli("check", "--scenarios", str(SCHED / "scenarios.py"), "--thresholds", str(thresholds))
    assert check.code == 2 and f"error: {path}:4: latency: intended, but no User class" in check.stdout


def test_arrivals_spread_until_a_stall_releases_every_user_at_once(tmp_path, target):
    """Locust spawns the 40 users in one batch; their random phases spread them over the period. A
    4 s freeze then holds every user's request; the thaw answers them together, each user re-bases its
    schedule there (as Locust's constant_pacing does), and from then on they fire in lockstep."""
    url, pid = target
    res, run_dir, _rows = _run(tmp_path, "REQ-CO-CROWD", url, pid)
    assert res.code == 1, res.stdout + res.stderr
    scope = load(run_dir, "summary.json")["requirements"]["REQ-CO-CROWD"]
    assert scope["arrivals_bunched"] is True and scope["arrivals_busiest_tenth"] > 0.4, scope
    assert "REQ-CO-CROWD: arrivals were bunched." in (run_dir / "report.html").read_text()
    # The starts themselves: spread over the period before the freeze, piled up after it.
    table = pq.read_table(run_dir / "samples.parquet", columns=["timestamp", "omitted"]).to_pandas()
    starts = table[table["omitted"].notna()]["timestamp"].to_numpy()
    starts = np.sort(starts)
    gap = int(np.argmax(np.diff(starts)))
    assert starts[gap + 1] - starts[gap] > FREEZE_S - 1
    before, after = starts[: gap + 1], starts[gap + 1 :]
    for part, bunched in ((before[before > before[0] + 2], False), (after[after > after[0] + 0.6], True)):
        counts = np.bincount((np.mod(part, 0.5) / 0.5 * 20).astype(int) % 20, minlength=20)
        share = (counts + np.roll(counts, -1)).max() / counts.sum()
        assert bool(share > bunched_above(40)) == bunched, (bunched, share, counts)
