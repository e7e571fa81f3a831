"""Report size and render time for a large run: a synthetic samples.parquet, then analyse, gate, report.

    python bench/report_size.py [--samples 10000000] [--seconds 3600] [--dir /tmp/loadgate-bench]

Prints the Parquet size, the time to analyse and gate the run (the baseline, same process, same file),
the time to render report.html from the run directory alone (as ``loadgate report`` does) and the
report's size. The data file is written outside the repository and never committed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from loadgate.data import rundir  # noqa: E402
from loadgate.data.samples import _PARQUET_OPTIONS, ROW_GROUP_ROWS, SCHEMA  # noqa: E402

REQ = "REQ-BENCH-001"
# (request_type, name, median ms, sigma, error probability)
REQUESTS = [
    ("GET", "/api/users/[id]", 20, 0.45, 0.001),
    ("GET", "/api/products", 35, 0.45, 0.001),
    ("GET", "/api/search?q=[term]", 50, 0.6, 0.002),
    ("POST", "/api/orders", 45, 0.5, 0.004),
    ("GET", "/api/cart", 25, 0.4, 0.001),
    ("PUT", "/api/cart/[id]", 30, 0.5, 0.002),
    ("GET", "/api/recommendations", 80, 0.7, 0.003),
    ("GET", "/health", 2, 0.3, 0.0),
]
WEIGHTS = np.array([5, 3, 2, 1, 2, 1, 1, 0.2])
ERRORS = [
    "HTTPError('500 Server Error: Internal Server Error for url: /api/orders')",
    "ConnectionResetError(104, 'Connection reset by peer')",
    "HTTPError('503 Server Error: Service Unavailable')",
    "RemoteDisconnected('Remote end closed connection without response')",
]
THRESHOLDS = f"""requirement: {REQ}
title: Synthetic 10-million-sample run for the report bench
thresholds:
  - metric: p95
    target: "<150ms"
    alert: ">400ms"
  - metric: p99
    target: "<300ms"
    alert: ">1s"
  - metric: error_rate
    target: "<0.5%"
    alert: ">2%"
  - metric: throughput
    target: ">2000/s"
  - metric: p99
    request: "GET /api/search?q=[term]"
    alert: ">800ms"
"""


def synthesize(path: str, n: int, seconds: float, start: float, ramp: float, users: int, seed: int = 1) -> None:
    """Write ``n`` samples over ``seconds``: linear ramp-up, a slow spell and an error burst mid-run."""
    rng = np.random.default_rng(seed)
    area = seconds - ramp / 2  # request rate grows with the users during ramp-up, then stays flat
    with pq.ParquetWriter(path, SCHEMA, **_PARQUET_OPTIONS) as writer:
        done = 0
        while done < n:
            m = min(ROW_GROUP_ROWS, n - done)
            u = np.sort(rng.random(m)) * (min(done + m, n) - done) / n + done / n
            a = u * area
            t = np.where(a < ramp / 2, np.sqrt(2 * ramp * a), a + ramp / 2)
            kind = rng.choice(len(REQUESTS), m, p=WEIGHTS / WEIGHTS.sum())
            med = np.array([r[2] for r in REQUESTS])[kind]
            sig = np.array([r[3] for r in REQUESTS])[kind]
            slow = 1 + 1.5 * np.exp(-((((t / seconds) - 0.6) / 0.03) ** 2))  # a slow spell at 60 %
            rt = rng.lognormal(np.log(med), sig) * slow
            burst = np.abs(t / seconds - 0.3) < 0.01  # an error burst at 30 %
            p_err = np.array([r[4] for r in REQUESTS])[kind] + np.where(burst, 0.08, 0.0)
            failed = rng.random(m) < p_err
            err = rng.choice(len(ERRORS), m, p=[0.55, 0.2, 0.2, 0.05])
            exception = pa.DictionaryArray.from_arrays(
                pa.array(np.where(failed, err, -1), mask=~failed).cast(pa.int32()), pa.array(ERRORS)
            )
            status = np.where(failed, np.where(err == 1, 0, 500), 200).astype(np.int32)
            table = pa.table(
                {
                    "timestamp": start + t,
                    "request_type": pa.DictionaryArray.from_arrays(
                        pa.array(kind.astype(np.int32)), pa.array([r[0] for r in REQUESTS])
                    ),
                    "name": pa.DictionaryArray.from_arrays(
                        pa.array(kind.astype(np.int32)), pa.array([r[1] for r in REQUESTS])
                    ),
                    "response_time_ms": rt,
                    "response_length": rng.integers(200, 4000, m),
                    "status_code": status,
                    "success": ~failed,
                    "exception": exception,
                    "requirement": pa.DictionaryArray.from_arrays(pa.array(np.zeros(m, np.int32)), pa.array([REQ])),
                    "worker": pa.DictionaryArray.from_arrays(pa.array(np.zeros(m, np.int32)), pa.array(["local"])),
                    "users": np.minimum(users, np.floor(t / ramp * users) + 1).astype(np.int32),
                    "user": rng.integers(0, users, m).astype(np.int32),
                    "intended_ms": pa.nulls(m, pa.float64()),
                    "omitted": pa.nulls(m, pa.int32()),
                    "period_ms": pa.nulls(m, pa.float64()),
                }
            )
            writer.write_table(table.cast(SCHEMA), row_group_size=ROW_GROUP_ROWS)
            done += m


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=10_000_000)
    p.add_argument("--seconds", type=float, default=3600.0, help="run length including ramp-up")
    p.add_argument("--dir", default="/tmp/loadgate-bench")
    args = p.parse_args()

    from loadgate.evaluate import gate_run
    from loadgate.outputs.report import write_run_report
    from loadgate.gate.thresholds import load_thresholds

    run_dir = os.path.join(args.dir, f"run-{args.samples}")
    os.makedirs(run_dir, exist_ok=True)
    thr = os.path.join(args.dir, f"{REQ}.yaml")
    with open(thr, "w") as f:
        f.write(THRESHOLDS)
    start, ramp, users = 1_760_000_000.0, 60.0, 1000
    samples = os.path.join(run_dir, rundir.SAMPLES)
    t0 = time.perf_counter()
    synthesize(samples, args.samples, args.seconds, start, ramp, users)
    made = time.perf_counter() - t0
    run = {
        "schema": "loadgate.run/1",
        "requirements": [REQ],
        "users": users,
        "spawn_rate": users / ramp,
        "duration": args.seconds - ramp,
        "warmup": 30.0,
        "host": "http://127.0.0.1:8080",
        "workers": 4,
        "start": start,
        "ramp_up_done": start + ramp,
        "end": start + args.seconds,
        "versions": rundir.versions(),
        "git": rundir.git_commit(),
        "command_line": ["bench/report_size.py"],
        "scenario_files": {},
        "threshold_files": {thr: rundir.sha256_file(thr)},
        "titles": {REQ: "Synthetic 10-million-sample run for the report bench"},
        "tasks": {REQ: ["(synthetic samples: no scenario)"]},
        "problems": [],
    }
    rundir.write_json(os.path.join(run_dir, rundir.RUN), run)

    t0 = time.perf_counter()
    gate_run(run_dir, load_thresholds(thr), strict=False)  # analysis, gate and every output, report included
    gated = time.perf_counter() - t0
    out = os.path.join(run_dir, "report-again.html")
    t0 = time.perf_counter()
    write_run_report(run_dir, out)
    rendered = time.perf_counter() - t0
    size = os.path.getsize(out)
    print(
        json.dumps(
            {
                "samples": args.samples,
                "seconds": args.seconds,
                "parquet_mb": round(os.path.getsize(samples) / 1e6, 1),
                "synthesize_s": round(made, 2),
                "gate_run_s": round(gated, 2),
                "report_render_s": round(rendered, 2),
                "render_vs_gate_run": round(rendered / gated, 2),
                "report_mb": round(size / 1e6, 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
