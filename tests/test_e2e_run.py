"""End to end: real Locust against the real embedded target on 127.0.0.1, through every gate path."""

from __future__ import annotations

import socket

import numpy as np
import pyarrow.parquet as pq

from conftest import load

RUN_FILES = {"samples.parquet", "run.json", "summary.json", "verdict.json", "junit.xml", "summary.md", "report.html"}


def _statuses(run_dir):
    return [t["status"] for t in load(run_dir, "verdict.json")["thresholds"]]


def test_pass_path_records_every_request_and_computes_exact_percentiles(e2e_run):
    res, run_dir = e2e_run("--requirement", "REQ-T-PASS")
    assert res.code == 0, res.stderr
    assert "started the embedded demo target at http://127.0.0.1:" in res.stderr
    assert RUN_FILES <= {p.name for p in run_dir.iterdir()}
    verdict = load(run_dir, "verdict.json")
    assert verdict["verdict"] == "pass" and verdict["exit_code"] == 0
    assert _statuses(run_dir) == ["pass", "pass", "pass"]

    run = load(run_dir, "run.json")
    table = pq.read_table(run_dir / "samples.parquet")
    assert pq.read_metadata(run_dir / "samples.parquet").metadata[b"loadgate.schema"] == b"loadgate.samples/2"
    # every request Locust counted is a sample, and nothing else
    assert table.num_rows == run["locust_requests"] == run["samples"] > 0
    df = table.to_pandas()
    assert set(df["worker"]) == {"local"}
    # on_start's /health belongs to all requirements of the run; task requests to their tag
    assert set(df["requirement"]) == {"REQ-T-PASS"}
    assert (df["name"] == "/health").sum() == 5

    summary = load(run_dir, "summary.json")
    start = run["ramp_up_done"] + run["warmup"]
    in_window = df[(df.timestamp >= start) & (df.timestamp <= run["end"])]
    assert summary["overall"]["requests"] == len(in_window)
    rt = in_window["response_time_ms"].to_numpy()
    for key, q in [("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99), ("p99.9", 99.9)]:
        assert summary["overall"]["response_time_ms"][key] == np.percentile(rt, q)
    users = in_window[in_window.name == "/api/users/[id]"]["response_time_ms"].to_numpy()
    entry = next(r for r in summary["requests"] if r["name"] == "/api/users/[id]")
    assert entry["response_time_ms"]["p99"] == np.percentile(users, 99)
    assert summary["window"]["seconds"] == run["end"] - start


def test_warn_passes_but_strict_fails(e2e_run):
    res, run_dir = e2e_run("--requirement", "REQ-T-WARN")
    assert res.code == 0, res.stderr
    assert load(run_dir, "verdict.json")["verdict"] == "warn"
    res, run_dir = e2e_run("--requirement", "REQ-T-WARN", "--strict")
    assert res.code == 1, res.stderr
    assert _statuses(run_dir) == ["warn"]


def test_fail_path_exit_1(e2e_run):
    res, run_dir = e2e_run("--requirement", "REQ-T-FAIL")
    assert res.code == 1, res.stderr
    verdict = load(run_dir, "verdict.json")
    assert verdict["verdict"] == "fail"
    er = verdict["thresholds"][0]
    assert er["metric"] == "error_rate" and er["status"] == "fail" and 0.3 < er["value"] < 0.7
    assert any("error_rate" in r for r in verdict["reasons"])


def test_inconclusive_path_exit_3(e2e_run):
    res, run_dir = e2e_run("--requirement", "REQ-T-INCONCLUSIVE")
    assert res.code == 3, res.stderr
    assert load(run_dir, "verdict.json")["verdict"] == "inconclusive"


def test_target_refusing_connections_is_a_failed_gate_not_a_crash(e2e_run):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connections are refused
        res, run_dir = e2e_run("--requirement", "REQ-T-DOWN", "--host", f"http://127.0.0.1:{port}")
    assert res.code == 1, res.stderr
    verdict = load(run_dir, "verdict.json")
    assert verdict["thresholds"][0]["value"] == 1.0
    df = pq.read_table(run_dir / "samples.parquet").to_pandas()
    assert (df["status_code"] == 0).all() and df["exception"].notna().all()


def test_gate_reevaluates_an_existing_run(e2e_run, tmp_path):
    from conftest import run_cli

    res, run_dir = e2e_run("--requirement", "REQ-T-PASS")
    assert res.code == 0
    strict_file = tmp_path / "strict.yaml"
    strict_file.write_text('requirement: REQ-T-PASS\ntitle: t\nthresholds:\n  - metric: p50\n    alert: ">0.001ms"\n')
    res = run_cli("gate", str(run_dir), "--thresholds", str(strict_file))
    assert res.code == 1, res.stderr
    assert load(run_dir, "verdict.json")["verdict"] == "fail"
    res = run_cli("gate", str(run_dir))  # back to the thresholds the run used
    assert res.code == 0, res.stderr
