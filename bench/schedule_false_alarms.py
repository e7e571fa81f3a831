"""Latency from the schedule: false alarms over healthy runs, and the frozen-target example, as measured.

    python bench/schedule_false_alarms.py --runs 20     # healthy runs: stalls flagged, verdict changes
    python bench/schedule_false_alarms.py --freeze      # one paced and one unpaced run, target frozen 4 s

Each run is a real ``loadgate run`` (10 users, 12 s at full load) of tests/e2e/schedule/scenarios.py
against the demo target in its own process on 127.0.0.1. Healthy runs alternate paced and unpaced
users; a false alarm is a stall flagged in summary.json, or a verdict other than pass.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCHED = ROOT / "tests" / "e2e" / "schedule"


def start_target() -> tuple[subprocess.Popen, str]:
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
    return proc, line.decode().strip().split(" on ", 1)[1]


def run(requirement: str, url: str, out: Path, freeze_pid: int | None = None) -> tuple[int, dict, dict]:
    if freeze_pid:

        def freeze():
            while not list(out.glob("*/samples.arrows")):
                time.sleep(0.1)
            time.sleep(5.0)
            os.kill(freeze_pid, signal.SIGSTOP)
            time.sleep(4.0)
            os.kill(freeze_pid, signal.SIGCONT)

        threading.Thread(target=freeze, daemon=True).start()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadgate",
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
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    run_dir = sorted(p for p in out.iterdir() if p.is_dir())[-1]
    summary = json.loads((run_dir / "summary.json").read_text())
    verdict = json.loads((run_dir / "verdict.json").read_text())
    return proc.returncode, summary, verdict


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--freeze", action="store_true", help="the frozen-target example instead of healthy runs")
    args = ap.parse_args()
    target, url = start_target()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if args.freeze:
                for req in ("REQ-CO-PACED", "REQ-CO-UNPACED"):
                    code, s, v = run(req, url, Path(tmp) / req, target.pid)
                    o = s["overall"]
                    intended = o.get("intended_response_time_ms") or {}
                    print(
                        f"{req}: exit {code}, verdict {v['verdict']}; raw p95 {o['response_time_ms']['p95']:.1f} ms, "
                        f"p99 {o['response_time_ms']['p99']:.1f} ms; intended p95 {intended.get('p95') or float('nan'):.1f} ms, "
                        f"p99 {intended.get('p99') or float('nan'):.1f} ms; requests {o['requests']}, omitted {o['omitted']}, "
                        f"attainment {o['schedule_attainment']}; stalls {[(round(x['seconds'], 2), x['users'], x['hidden_requests']) for x in s['stalls']]}"
                    )
                    for r in v["reasons"]:
                        print("   ", r)
                return 0
            flagged = changed = 0
            for i in range(args.runs):
                req = ("REQ-CO-PACED", "REQ-CO-UNPACED")[i % 2]
                code, s, v = run(req, url, Path(tmp) / f"r{i}")
                flagged += bool(s["stalls"])
                changed += v["verdict"] != "pass"
                o = s["overall"]
                print(
                    f"run {i + 1:2d} {req:15s} exit {code} {v['verdict']:12s} stalls {len(s['stalls'])} "
                    f"omitted {o['omitted']} raw p99 {o['response_time_ms']['p99']:.1f} ms",
                    flush=True,
                )
                for r in v["reasons"]:
                    print("    ", r, flush=True)
            print(f"healthy runs: {args.runs}; stalls flagged in {flagged}; verdict not pass in {changed}")
    finally:
        target.terminate()
        target.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
