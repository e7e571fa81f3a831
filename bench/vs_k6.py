"""The open model against k6's constant-arrival-rate: the same schedule, the same target frozen mid-run.

    python bench/vs_k6.py                                  # 100/s for 20 s, pool 500, frozen 4 s
    python bench/vs_k6.py --rate 200 --duration 30 --freeze 5 --pool 1500

Both tools start iterations at ``--rate`` per second for ``--duration`` seconds with a pool of ``--pool``
users (k6: preAllocatedVUs = maxVUs), one GET of ``/fast`` each, against the same target on 127.0.0.1
(this script's own server in its own process, so that it can be frozen). Once each tool's schedule has
run for a while the target gets SIGSTOP for ``--freeze`` seconds, then SIGCONT. Printed side by side:
p50/p90/p95/p99 (k6's http_req_duration from ``--summary-export``; loadgate's latency from the schedule,
``intended_response_time_ms`` of summary.json), requests, dropped iterations, and the ratio to k6.

Theory, with a pool large enough that nothing is dropped: a fraction f = F/W of a W-second window is
frozen for F seconds; the requests sent then wait uniformly between 0 and F, the others about nothing,
so for q > 1 - f the q-quantile of the latency is F·(q - (1 - f))/f (below it: the service time).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QS = (0.50, 0.90, 0.95, 0.99)
REQ = "REQ-BENCH-OPEN"

SCENARIO = f'''from locust import FastHttpUser, constant, tag, task


class Open(FastHttpUser):
    wait_time = constant(1)  # replaced by the open model's pool

    @tag("{REQ}")
    @task
    def fast(self):
        self.client.get("/fast", name="/fast")
'''

K6_SCRIPT = """import http from "k6/http";
export const options = {
  discardResponseBodies: true,
  summaryTrendStats: ["p(50)", "p(90)", "p(95)", "p(99)", "count"],
  scenarios: {open: {executor: "constant-arrival-rate", rate: Number(__ENV.RATE), timeUnit: "1s",
                     duration: __ENV.DURATION + "s", preAllocatedVUs: Number(__ENV.POOL),
                     maxVUs: Number(__ENV.POOL)}},
};
export default function () { http.get(__ENV.TARGET + "/fast"); }
"""


def serve() -> None:
    """The target: answers ``GET /fast`` at once; a deep accept queue, so connections opened while it is
    frozen wait in the kernel instead of being refused."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 4096
        daemon_threads = True

    server = Server(("127.0.0.1", 0), Handler)
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    threading.Timer(900, server.shutdown).start()  # bounded: a target left behind stops by itself
    server.serve_forever()


class Target:
    def __enter__(self) -> "Target":
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
        )
        self.url = self.proc.stdout.readline().strip()  # type: ignore[union-attr]
        assert self.url.startswith("http://127.0.0.1:"), self.url
        return self

    def freeze_later(self, ready, after_s: float, freeze_s: float) -> tuple[threading.Thread, list[float]]:
        """SIGSTOP ``after_s`` seconds after ``ready()`` turns true, SIGCONT ``freeze_s`` later; the measured
        frozen seconds go into the returned list."""
        frozen: list[float] = []

        def go() -> None:
            deadline = time.monotonic() + 120
            while not ready() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(after_s)
            t = time.monotonic()
            os.kill(self.proc.pid, signal.SIGSTOP)
            try:
                time.sleep(freeze_s)
            finally:
                os.kill(self.proc.pid, signal.SIGCONT)
                frozen.append(time.monotonic() - t)

        thread = threading.Thread(target=go, daemon=True)
        thread.start()
        return thread, frozen

    def __exit__(self, *_exc) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)
        self.proc.terminate()
        self.proc.wait(10)


def theory(q: float, freeze: float, window: float) -> float | None:
    """The q-quantile (ms) of the latency when ``freeze`` of ``window`` seconds was frozen; None below 1 - f."""
    f = freeze / window
    return freeze * (q - (1 - f)) / f * 1000.0 if q > 1 - f else None


def run_k6(args, target: Target, work: Path) -> dict:
    k6 = shutil.which("k6") or str(Path(sys.executable).parent / "k6")
    script, export = work / "open.js", work / "k6-summary.json"
    script.write_text(K6_SCRIPT)
    env = dict(
        os.environ,
        RATE=str(args.rate),
        DURATION=str(args.duration),
        POOL=str(args.pool),
        TARGET=target.url,
        K6_NO_USAGE_REPORT="true",
    )
    started = time.monotonic()
    thread, frozen = target.freeze_later(lambda: time.monotonic() - started > 1.0, args.after - 1.0, args.freeze)
    subprocess.run(
        [k6, "run", "--quiet", "--no-color", "--address", "127.0.0.1:0", "--summary-export", str(export), str(script)],
        env=env,
        check=True,
        timeout=args.duration + 120,
        stdout=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    thread.join(30)
    metrics = json.loads(export.read_text())["metrics"]
    duration = metrics["http_req_duration"]
    return {
        "p": {q: duration[f"p({q * 100:g})"] for q in QS},
        "requests": int(metrics["http_reqs"]["count"]),
        "dropped": int((metrics.get("dropped_iterations") or {}).get("count", 0)),
        "window": float(args.duration),
        "frozen": frozen[0] if frozen else None,
    }


def run_loadgate(args, target: Target, work: Path) -> dict:
    (work / "scenarios.py").write_text(SCENARIO)
    (work / "thresholds").mkdir(exist_ok=True)
    (work / "thresholds" / f"{REQ}.yaml").write_text(
        f"requirement: {REQ}\nthresholds:\n  - metric: p99\n    alert: '>60s'\n"
    )
    out = work / "reports"

    def scheduling() -> bool:  # the pool is spawned and the schedule runs: the progress file says ramp-up done
        for p in out.glob("*/progress.json"):
            try:
                return bool(json.loads(p.read_text()).get("ramp_up_done"))
            except ValueError:
                return False
        return False

    thread, frozen = target.freeze_later(scheduling, args.after - 2.0, args.freeze)
    cmd = [
        sys.executable,
        "-m",
        "loadgate",
        "run",
        "--requirement",
        REQ,
        "--scenarios",
        str(work / "scenarios.py"),
        "--thresholds",
        str(work / "thresholds"),
        "--out",
        str(out),
        "--host",
        target.url,
        "--arrival-rate",
        f"{args.rate}/s",
        "--max-users",
        str(args.pool),
        "--duration",
        f"{args.duration}s",
        "--warmup",
        "0s",
    ]
    proc = subprocess.run(
        cmd,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=args.duration + 180,
        stdin=subprocess.DEVNULL,
    )
    thread.join(30)
    run_dir = sorted(p for p in out.iterdir() if p.is_dir())[-1]
    summary = json.loads((run_dir / "summary.json").read_text())
    run = json.loads((run_dir / "run.json").read_text())
    scope = summary["requirements"][REQ]
    intended = scope["intended_response_time_ms"] or {}
    block = run["arrival"][REQ]
    return {
        "p": {q: intended.get(f"p{q * 100:g}") for q in QS},
        "requests": scope["requests"],
        "dropped": block["dropped"],
        "scheduled": block["scheduled"],
        "exit": proc.returncode,
        "window": summary["window"]["end"] - summary["window"]["start"],
        "frozen": frozen[0] if frozen else None,
        "problems": run["problems"],
        "run_dir": str(run_dir),
    }


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:8.1f}"


def table(k6: dict, lg: dict) -> str:
    rows = [
        "| | theory (loadgate's window) | loadgate intended | k6 http_req_duration | loadgate / k6 | "
        "loadgate / theory |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for q in QS:
        th = theory(q, lg["frozen"], lg["window"])
        a, b = lg["p"][q], k6["p"][q]
        rows.append(
            f"| p{q * 100:g} (ms) | {_ms(th)} | {_ms(a)} | {_ms(b)} | "
            f"{'-' if not (a and b) else f'{a / b:.3f}'} | {'-' if not (a and th) else f'{a / th:.3f}'} |"
        )
    ratio = lg["requests"] / k6["requests"]
    rows.append(f"| requests | | {lg['requests']} (window) | {k6['requests']} | {ratio:.3f} | |")
    rows.append(f"| dropped iterations | | {lg['dropped']} of {lg['scheduled']} | {k6['dropped']} | | |")
    rows.append(
        f"| frozen s / window s | | {lg['frozen']:.2f} / {lg['window']:.2f} | {k6['frozen']:.2f} / "
        f"{k6['window']:.2f} | | |"
    )
    k6_th = [theory(q, k6["frozen"], k6["window"]) for q in QS]
    rows.append("| theory for k6's window (ms) | | | " + " / ".join(_ms(t).strip() for t in k6_th) + " | | |")
    return "\n".join(rows)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=int, default=100, help="iterations per second (default 100)")
    p.add_argument("--duration", type=int, default=20, help="seconds of schedule (default 20)")
    p.add_argument("--freeze", type=float, default=4.0, help="seconds the target is frozen (default 4)")
    p.add_argument("--after", type=float, default=8.0, help="seconds into the schedule the freeze starts (default 8)")
    p.add_argument("--pool", type=int, default=500, help="users / VUs (default 500: rate x freeze, and more)")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        serve()
        return 0
    if args.after + args.freeze + 2 > args.duration:
        p.error("--after + --freeze must end 2 s before --duration")
    with tempfile.TemporaryDirectory(prefix="vs_k6-") as tmp, Target() as target:
        k6 = run_k6(args, target, Path(tmp))
        lg = run_loadgate(args, target, Path(tmp))
    print(
        f"same schedule: {args.rate}/s for {args.duration} s, pool {args.pool}, target frozen "
        f"{args.freeze:g} s from {args.after:g} s; GET /fast on 127.0.0.1\n"
    )
    print(table(k6, lg))
    print(f"\nloadgate exit code {lg['exit']}, problems: {lg['problems'] or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
