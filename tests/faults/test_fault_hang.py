"""Targets that never answer: real ``loadgate run`` against a socket server on 127.0.0.1 that reads every
request and answers none on some of its keep-alive connections (a partial hang) or on all (a full hang).

What such a run must show: every request still waiting when the run stopped is a failed sample (the
target's own count of what it read and answered says how many), paced users' missed slots count in the
latency from the schedule, unpaced users stuck alone are named, and the gate fails on its usual levels.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pyarrow.parquet as pq

from conftest import ROOT, load, run_cli

HANG = ROOT / "tests" / "e2e" / "faults_hang"
MESSAGE = "no response before the run stopped"
REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class HangTarget:
    """An HTTP/1.1 keep-alive server that answers every request at once, except on the connections
    whose accept order is in ``hang`` (None: all of them), where it reads requests and never writes."""

    def __init__(self, hang: set[int] | None) -> None:
        self.hang = hang
        self.read = self.answered = 0
        self.lock = threading.Lock()
        self.conns: list[socket.socket] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.open = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        k = 0
        while self.open:
            try:
                conn, _ = self.server.accept()
            except (socket.timeout, OSError):
                continue
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn, self.hang is None or k in self.hang), daemon=True).start()
            k += 1

    def _serve(self, conn: socket.socket, hang: bool) -> None:
        buf = b""
        while self.open:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b"\r\n\r\n" in buf:  # (GET requests: no body)
                _head, buf = buf.split(b"\r\n\r\n", 1)
                with self.lock:
                    self.read += 1
                if not hang:
                    conn.sendall(REPLY)
                    with self.lock:
                        self.answered += 1

    def close(self) -> None:
        self.open = False
        self.thread.join(5)
        for c in [self.server, *self.conns]:
            c.close()


def _run(tmp_path: Path, requirement: str, hang: set[int] | None, *extra: str):
    target = HangTarget(hang)
    try:
        out = tmp_path / "reports"
        res = run_cli(
            "run",
            "--requirement",
            requirement,
            "--scenarios",
            str(HANG / "scenarios.py"),
            "--thresholds",
            str(HANG / "thresholds"),
            "--out",
            str(out),
            "--host",
            target.url,
            *extra,
            timeout=120,
        )
    finally:
        target.close()
    run_dir = sorted(p for p in out.iterdir() if p.is_dir())[-1]
    rows = {t["metric"]: t for t in load(run_dir, "verdict.json")["thresholds"]}
    return res, run_dir, rows, target


def _samples(run_dir: Path, target: HangTarget):
    """The samples, after checking them against Locust's count and the target's: every request Locust
    counted is a sample, the answered ones are exactly those the target answered, the rest unanswered."""
    run = load(run_dir, "run.json")
    table = pq.read_table(run_dir / "samples.parquet").to_pandas()
    unanswered = table[table["exception"] == MESSAGE]
    assert len(table) == run["samples"] == run["locust_requests"]
    assert len(table) - len(unanswered) == target.answered
    assert (~table["success"]).sum() == len(unanswered)  # nothing else failed
    counted = run["unanswered"]
    assert counted["requests"] + counted["sent_while_stopping"] == len(unanswered)
    return run, table, unanswered


def test_a_target_that_never_answers_3_of_10_connections_fails_paced_users(tmp_path):
    res, run_dir, rows, target = _run(tmp_path, "REQ-HANG-PACED", {2, 5, 8})
    assert res.code == 1, res.stdout + res.stderr
    assert target.read - target.answered == 3  # one request read on each hung connection, never answered
    run, table, unanswered = _samples(run_dir, target)
    assert run["unanswered"]["requests"] == 3 and run["unanswered"]["by_request"] == {"GET /item": 3}
    assert "3 requests had no response when the run stopped (GET /item x3)" in res.stdout
    # the error rate and the latency from the schedule both fail, each on its own alert
    assert rows["error_rate"]["status"] == "fail" and rows["error_rate"]["value"] > 0.001
    assert rows["p95"]["status"] == "fail" and rows["p95"]["latency"] == "intended", rows["p95"]
    assert "error_rate = " in res.stdout and "p95 (intended) = " in res.stdout
    summary = load(run_dir, "summary.json")
    overall, window = summary["overall"], summary["window"]
    assert overall["failures"] == 3
    # the 3 stuck users sent one request each, before the window: recorded from its start, every 100 ms
    # slot of the window after it omitted (3 users x 10 slots a second), each waiting until the stop
    stuck = unanswered[(unanswered["timestamp"] - window["start"]).abs() < 0.05]
    assert stuck["user"].nunique() == 3 and len(stuck) == 3
    assert (stuck["intended_ms"] == stuck["response_time_ms"]).all()
    slots = 3 * window["seconds"] * 10
    assert slots - 6 <= overall["omitted"] <= slots + 3, (overall["omitted"], slots)
    assert overall["schedule_attainment"] < 0.8


def test_a_target_that_answers_nothing_fails_on_every_request_in_flight(tmp_path):
    res, run_dir, rows, target = _run(tmp_path, "REQ-HANG-PACED", None)
    assert res.code == 1, res.stdout + res.stderr
    assert target.answered == 0 and target.read == 10
    run, table, unanswered = _samples(run_dir, target)
    assert len(table) == 10 and table["user"].nunique() == 10
    assert rows["error_rate"]["status"] == "fail" and rows["error_rate"]["value"] == 1.0
    assert rows["p95"]["status"] == "fail" and rows["p95"]["latency"] == "intended"
    assert "0 requests in the window" not in res.stdout
    overall = load(run_dir, "summary.json")["overall"]
    assert overall["requests"] == 10 and overall["schedule_attainment"] < 0.05  # the schedule was not met


def test_unpaced_users_stuck_on_a_hung_connection_are_named(tmp_path):
    res, run_dir, rows, target = _run(tmp_path, "REQ-HANG-UNPACED", {2, 5, 8})
    assert res.code == 1, res.stdout + res.stderr
    run, table, unanswered = _samples(run_dir, target)
    assert run["unanswered"]["requests"] == 3
    assert rows["error_rate"]["status"] == "fail"
    summary = load(run_dir, "summary.json")
    assert summary["stalls"] == []  # 3 of 10 users: no crowd stall ...
    stuck = summary["stuck_users"]  # ... but each stuck user is named, with how long
    in_window = unanswered[unanswered["timestamp"] <= summary["window"]["end"]]
    assert sorted(u["user"] for u in stuck) == sorted(in_window["user"].tolist()) and len(stuck) == 3
    assert all(u["share"] > 0.9 and u["request"] == "GET /item" for u in stuck)
    assert "3 users sent nothing while one request went unanswered: user " in res.stdout
    verdict = load(run_dir, "verdict.json")
    assert any(r.startswith("3 users sent nothing") for r in verdict["reasons"])


def test_two_workers_ship_their_requests_in_flight_before_the_master_writes(tmp_path):
    res, run_dir, rows, target = _run(tmp_path, "REQ-HANG-PACED", {2, 5, 8}, "--workers", "2")
    assert res.code == 1, res.stdout + res.stderr
    assert target.read - target.answered == 3
    run, table, unanswered = _samples(run_dir, target)
    assert run["unanswered"]["requests"] == 3
    assert table["worker"].nunique() == 2
    for wid, w in run["worker_counts"].items():  # each worker's last batch (its rows in flight) arrived
        assert w["sent"] == w["received"], (wid, w)
    assert rows["error_rate"]["status"] == "fail" and rows["p95"]["status"] == "fail"


def test_httpuser_requests_in_flight_are_recorded_too(tmp_path):
    res, run_dir, rows, target = _run(tmp_path, "REQ-HANG-HTTP", {2, 5, 8})
    assert res.code == 1, res.stdout + res.stderr
    run, table, unanswered = _samples(run_dir, target)
    assert run["unanswered"] == {
        "requests": 3,
        "by_request": {"GET /item?id=5": 3},
        "sent_while_stopping": run["unanswered"]["sent_while_stopping"],
    }
    assert rows["error_rate"]["status"] == "fail" and rows["p95"]["status"] == "fail"
