"""What notifications add to a gated run: analyse + gate + every output, without and with notifications.

    python bench/notify_cost.py [--samples 2000000] [--pairs 2] [--dir /tmp/loadgate-bench]

A synthetic samples.parquet (bench/gen_samples.py's: ~1% errors), gated by ``gate_run`` as ``loadgate gate``
does: the baseline without notifications, then with a Slack and a webhook notification posted to a real
HTTP server on 127.0.0.1 (the message lists the commonest errors: one more pass over the failed rows).
Pairs alternate the order; prints each pair's times, the ratio of the medians, and the notification step's
own time inside each notified gate (its share of the notified gate's median). Data stays in --dir.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from gen_samples import SPAWN_RATE, ensure  # noqa: E402
from loadgate.data import rundir  # noqa: E402

REQ = "REQ-PERF-001"
THRESHOLDS = f"""requirement: {REQ}
title: Synthetic run for the notification bench
thresholds:
  - metric: p95
    target: "<50ms"
    alert: ">400ms"
  - metric: error_rate
    target: "<0.5%"
    alert: ">2%"
"""


class _Ok(BaseHTTPRequestHandler):
    received = 0

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _Ok.received += 1
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=2_000_000)
    p.add_argument("--pairs", type=int, default=2)
    p.add_argument("--dir", default="/tmp/loadgate-bench")
    args = p.parse_args()

    from loadgate.evaluate import gate_run
    from loadgate.gate.thresholds import load_thresholds
    from loadgate.notify.send import hook

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    run_dir = os.path.join(args.dir, f"notify-{args.samples}", f"20260101T000000Z-{REQ}")
    os.makedirs(run_dir, exist_ok=True)
    thr = os.path.join(args.dir, f"{REQ}.yaml")
    with open(thr, "w") as f:
        f.write(THRESHOLDS)
    users = 300
    samples = os.path.join(run_dir, rundir.SAMPLES)
    if not os.path.exists(samples):
        os.link(ensure(args.samples, users=users, directory=args.dir), samples)
    ts = pq.read_table(samples, columns=["timestamp"]).column("timestamp")
    start, end = pc.min(ts).as_py(), pc.max(ts).as_py()
    run = {
        "schema": "loadgate.run/1",
        "requirements": [REQ],
        "users": users,
        "warmup": 0.0,
        "start": start,
        "ramp_up_done": start + users / SPAWN_RATE,
        "end": end,
        "command_line": ["bench/notify_cost.py"],
        "problems": [],
    }
    files = load_thresholds(thr)
    quiet = lambda line: None  # noqa: E731
    notify = hook(
        files,
        [REQ],
        [f"slack:{url}", f"webhook:{url}"],
        ("fail", "warn", "inconclusive", "pass"),
        None,
        None,
        quiet,
        "gate",
    )

    inside: list[float] = []  # the notification step's own time, inside each notified gate

    def measured(*a) -> None:
        t0 = time.perf_counter()
        notify(*a)
        inside.append(time.perf_counter() - t0)

    def timed(with_notify: bool) -> float:
        rundir.write_json(os.path.join(run_dir, rundir.RUN), run)  # a fresh run.json: no audit log growing
        t0 = time.perf_counter()
        gate_run(run_dir, files, strict=False, say=quiet, before_seal=measured if with_notify else None)
        return time.perf_counter() - t0

    timed(False)  # warm the page cache and imports once
    timed(True)
    inside.clear()
    base, notified = [], []
    for i in range(args.pairs):
        for with_notify in (False, True) if i % 2 == 0 else (True, False):
            (notified if with_notify else base).append(timed(with_notify))
    server.shutdown()
    b, n = statistics.median(base), statistics.median(notified)
    print(
        json.dumps(
            {
                "samples": args.samples,
                "baseline_s": [round(x, 3) for x in base],
                "notified_s": [round(x, 3) for x in notified],
                "messages_received": _Ok.received,
                "ratio": round(n / b, 3),
                "added_s": round(n - b, 3),
                "notify_step_s": [round(x, 3) for x in inside],
                "notify_step_share": round(statistics.median(inside) / n, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
