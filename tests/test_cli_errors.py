"""Bad input, tried on purpose: each gets its exit code and one clear line on stderr, no traceback."""

from __future__ import annotations

import json
import socket

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import E2E, run_cli

SCEN = str(E2E / "scenarios")
THR = str(E2E / "thresholds")


def one_error(res, code: int) -> str:
    assert res.code == code, (res.code, res.stderr)
    assert "Traceback" not in res.stderr
    assert len(res.error_lines) == 1, res.stderr
    return res.error_lines[0]


def run_args(tmp_path, *extra):
    return ("run", "--scenarios", SCEN, "--thresholds", THR, "--out", str(tmp_path / "out"), *extra)


@pytest.mark.parametrize(
    "extra, expected",
    [
        (
            ("--requirement", "REQ-T-NOPE"),
            'loadgate run: error: --requirement REQ-T-NOPE: no task in {scen} is tagged @tag("REQ-T-NOPE") '
            "(known: REQ-T-DOWN, REQ-T-FAIL, REQ-T-INCONCLUSIVE, REQ-T-PASS, REQ-T-WARN); tag a task or pick a known requirement",
        ),
        (
            ("--requirement", "perf-1"),
            "loadgate run: error: --requirement perf-1: not a requirement ID; expected the form REQ-PERF-001 "
            "(capitals, digits, dash-separated)",
        ),
        (
            ("--requirement", "REQ-T-PASS", "--users", "0"),
            "loadgate run: error: argument --users: expected a whole number > 0, got '0'; see 'loadgate run --help'",
        ),
        (
            ("--requirement", "REQ-T-PASS", "--users", "-5"),
            "loadgate run: error: argument --users: expected a whole number > 0, got '-5'; see 'loadgate run --help'",
        ),
        (
            ("--requirement", "REQ-T-PASS", "--duration", "soon"),
            "loadgate run: error: argument --duration: expected a duration like 30s, 5m or 1h30m, got 'soon'; "
            "see 'loadgate run --help'",
        ),
        (
            ("--requirement", "REQ-T-PASS", "--warmup", "10s", "--duration", "5s"),
            "loadgate run: error: --warmup 10s: must be shorter than --duration 5s, or nothing is left to analyse",
        ),
        (
            ("--requirement", "REQ-T-PASS", "--host", "127.0.0.1:8080"),
            "loadgate run: error: --host 127.0.0.1:8080: expected a URL like http://127.0.0.1:8080",
        ),
    ],
)
def test_run_usage_errors(tmp_path, extra, expected):
    res = run_cli(*run_args(tmp_path, *extra))
    assert one_error(res, 2) == expected.format(scen=SCEN)
    assert not (tmp_path / "out").exists()  # nothing was run


def test_a_malformed_offload_rows_variable_stops_the_run_before_it_starts(tmp_path):
    res = run_cli(*run_args(tmp_path, "--requirement", "REQ-T-PASS"), env={"LOADGATE_OFFLOAD_ROWS": "20k"})
    assert one_error(res, 2) == (
        "loadgate run: error: environment variable LOADGATE_OFFLOAD_ROWS='20k': expected a "
        "whole number of rows, like 20000 (the default when it is not set)"
    )
    assert not (tmp_path / "out").exists()


def test_unwritable_out_is_a_config_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = run_cli(
        "run", "--scenarios", SCEN, "--thresholds", THR, "--out", str(blocker / "sub"), "--requirement", "REQ-T-PASS"
    )
    line = one_error(res, 2)
    assert line.startswith(f"loadgate run: error: --out {blocker / 'sub'}: cannot create the run directory (")
    assert line.endswith("choose a writable folder with --out DIR")


def test_malformed_threshold_file_names_file_line_and_key(tmp_path):
    thr = tmp_path / "thr"
    thr.mkdir()
    (thr / "REQ-T-PASS.yaml").write_text(
        'requirement: REQ-T-PASS\nthresholds:\n  - metric: p95\n    alert: ">500mss"\n'
    )
    res = run_cli(
        "run",
        "--scenarios",
        SCEN,
        "--thresholds",
        str(thr),
        "--out",
        str(tmp_path / "o"),
        "--requirement",
        "REQ-T-PASS",
    )
    line = one_error(res, 2)
    assert line.startswith(f"loadgate run: error: {thr / 'REQ-T-PASS.yaml'}:4: thresholds[0].alert: ")
    assert "mss" in line and "expected" in line


def test_requirement_without_threshold_file(tmp_path):
    thr = tmp_path / "thr"
    thr.mkdir()
    (thr / "x.yaml").write_text('requirement: REQ-T-WARN\nthresholds:\n  - metric: p95\n    alert: ">500ms"\n')
    res = run_cli(
        "run",
        "--scenarios",
        SCEN,
        "--thresholds",
        str(thr),
        "--out",
        str(tmp_path / "o"),
        "--requirement",
        "REQ-T-PASS",
    )
    assert one_error(res, 2) == (
        f"loadgate run: error: --requirement REQ-T-PASS: no threshold file in {thr} says "
        f"'requirement: REQ-T-PASS'; add {thr / 'REQ-T-PASS'}.yaml"
    )


def test_analyze_bad_files(tmp_path):
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    assert "empty" in one_error(run_cli("analyze", str(empty)), 2)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01garbage" * 100)
    assert "expected a samples file" in one_error(run_cli("analyze", str(junk)), 2)
    wrong = tmp_path / "wrong.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), wrong)
    assert "timestamp" in one_error(run_cli("analyze", str(wrong)), 2)
    good = tmp_path / "good.parquet"
    pq.write_table(
        pa.table(
            {
                "timestamp": [1.0, 2.0],
                "request_type": ["GET"] * 2,
                "name": ["/"] * 2,
                "response_time_ms": [1.0, 3.0],
                "success": [True, False],
            }
        ),
        good,
    )
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(good.read_bytes()[:-20])
    assert "truncated.parquet" in one_error(run_cli("analyze", str(truncated)), 2)
    assert one_error(run_cli("analyze", str(tmp_path / "missing.parquet")), 2) == (
        f"loadgate analyze: error: {tmp_path / 'missing.parquet'}: no such file; expected a samples file written "
        "by 'loadgate run' or Locust's csv_request_logger"
    )
    res = run_cli("analyze", str(good), "--json")
    assert res.code == 0 and json.loads(res.stdout)["overall"]["requests"] == 2
    assert "--window" in one_error(run_cli("analyze", str(good), "--window", "5:1"), 2)


def test_gate_and_report_on_incomplete_run_dirs(tmp_path):
    assert "no such run directory" in one_error(run_cli("gate", str(tmp_path / "nope")), 2)
    (tmp_path / "half").mkdir()
    line = one_error(run_cli("gate", str(tmp_path / "half"), "--thresholds", THR), 2)
    assert line == (
        f"loadgate gate: error: {tmp_path / 'half' / 'run.json'}: missing; {tmp_path / 'half'} is not a "
        "complete run directory (re-run 'loadgate run', or point at a folder that has it)"
    )
    assert "verdict.json: missing" in one_error(run_cli("report", str(tmp_path / "half")), 2)


def test_demo_target_port_already_taken():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = run_cli("target", "--port", str(port), timeout=30)
    line = one_error(res, 2)
    assert line.startswith(f"loadgate target: error: --port {port}: cannot listen on 127.0.0.1:{port} (")
    assert line.endswith("choose another port or 0 for a free one")


def test_demo_target_refuses_non_loopback():
    line = one_error(run_cli("target", "--host", "0.0.0.0", timeout=30), 2)
    assert line == (
        "loadgate target: error: --host 0.0.0.0: the demo target listens on loopback only; "
        "use 127.0.0.1, localhost or ::1"
    )


def test_check_traceability_ok_and_broken(tmp_path):
    res = run_cli("check", "--scenarios", SCEN, "--thresholds", THR)
    assert res.code == 0, res.stdout + res.stderr
    assert "REQ-T-PASS: Everything comfortably within limits" in res.stdout
    thr = tmp_path / "thr"
    thr.mkdir()
    (thr / "orphan.yaml").write_text('requirement: REQ-T-ORPHAN\nthresholds:\n  - metric: p95\n    alert: ">1s"\n')
    res = run_cli("check", "--scenarios", SCEN, "--thresholds", str(thr))
    assert res.code == 2
    assert any("REQ-T-ORPHAN has thresholds but no task" in l for l in res.stdout.splitlines())
    assert any("tag REQ-T-PASS has no threshold file" in l for l in res.stdout.splitlines())
    assert any(f"add {thr / 'REQ-T-PASS.yaml'} with 'requirement: REQ-T-PASS'" in l for l in res.stdout.splitlines())
    # one file given: a new requirement's file goes beside it, not under the file's name
    res = run_cli("check", "--scenarios", SCEN, "--thresholds", str(thr / "orphan.yaml"))
    assert any(f"add {thr / 'REQ-T-PASS.yaml'} with 'requirement: REQ-T-PASS'" in l for l in res.stdout.splitlines())


def test_repo_examples_are_consistent():
    res = run_cli("check")
    assert res.code == 0, res.stdout + res.stderr
    assert "REQ-PERF-001: System must support 1000 concurrent users" in res.stdout
