"""The live view's cost per batch and per tick, in this process, against a monitor with one rule.

    python bench/live_tick.py [--counts 1,5000,100000] [--names 50,5000] [--rate 1000] [--seconds 20]

A monitor with N rules (a requirement-wide p95 and N - 1 p95 rules of their own request ``GET /item/i``) is
fed ``--seconds`` one-second batches of ``--rate`` samples spread over ``--names`` request names, dictionary-
encoded as the recorder writes them, and evaluated after each, as the recorder's loop does. Printed: CPU time
(``time.thread_time``) to build the monitor, to scan a batch and to evaluate a tick, and each against the
one-rule monitor of the same names. ``bench/live_cost.py`` measures the same parts inside real runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import pyarrow as pa

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from loadgate.data.samples import SCHEMA  # noqa: E402
from loadgate.plugin.live import LiveMonitor  # noqa: E402

T0 = 1_764_000_000.0
REQ = "REQ-LIVE-001"


def rules(n: int) -> list[dict]:
    out = [{"requirement": REQ, "metric": "p95", "request": None, "op": ">", "value": 200.0, "text": ">200ms"}]
    return out + [
        {"requirement": REQ, "metric": "p95", "request": f"GET /item/{i}", "op": ">", "value": 1000.0, "text": ">1s"}
        for i in range(n - 1)
    ]


def _coded(values: list[str]) -> pa.DictionaryArray:
    labels = sorted(set(values))
    index = {v: i for i, v in enumerate(labels)}
    return pa.DictionaryArray.from_arrays(pa.array([index[v] for v in values], pa.int32()), pa.array(labels))


def batch(rng: np.random.Generator, start: float, n: int, names: int) -> pa.RecordBatch:
    ok = rng.random(n) > 0.01
    cols = {
        "timestamp": pa.array(np.sort(start + rng.random(n))),
        "request_type": _coded(["GET"] * n),
        "name": _coded([f"/item/{i}" for i in rng.integers(0, names, n)]),
        "response_time_ms": pa.array(rng.lognormal(1, 0.5, n)),
        "response_length": pa.array(np.zeros(n, np.int64)),
        "status_code": pa.array(np.where(ok, 200, 500).astype(np.int32)),
        "success": pa.array(ok),
        "exception": _coded(["" if o else "HTTPError('500')" for o in ok]),
        "requirement": _coded([REQ] * n),
        "worker": _coded(["local"] * n),
        "users": pa.array(np.full(n, 10, np.int32)),
        "user": pa.array((np.arange(n) % 10).astype(np.int32)),
        "intended_ms": pa.nulls(n, pa.float64()),
        "omitted": pa.nulls(n, pa.int32()),
        "period_ms": pa.nulls(n, pa.float64()),
    }
    return pa.RecordBatch.from_arrays([cols[f.name] for f in SCHEMA], names=SCHEMA.names)


def measure(n: int, names: int, args) -> dict[str, float]:
    rng = np.random.default_rng(1)
    batches = [batch(rng, T0 + s, args.rate, names) for s in range(args.seconds)]
    t = time.thread_time()
    mon = LiveMonitor(rules(n))
    out = {"build": time.thread_time() - t, "scan": 0.0, "tick": 0.0}
    for s, b in enumerate(batches):
        t = time.thread_time()
        mon.add(b)
        out["scan"] += time.thread_time() - t
        t = time.thread_time()
        mon.evaluate(T0 + s + 1, started=T0, ramped=True)
        out["tick"] += time.thread_time() - t
    out["scan"] /= args.seconds
    out["tick"] /= args.seconds
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--counts", default="1,5000,100000")
    p.add_argument("--names", default="50,5000", help="request names the samples are spread over, comma-separated")
    p.add_argument("--rate", type=int, default=1000, help="samples a second")
    p.add_argument("--seconds", type=int, default=20)
    args = p.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    print(f"{args.seconds} one-second batches of {args.rate} samples; CPU time, and its ratio to one rule's")
    print(f"{'rules':>7} {'names':>6} {'build ms':>9} {'scan ms':>8} {'ratio':>6} {'tick ms':>8} {'ratio':>6}")
    for names in (int(x) for x in args.names.split(",")):
        base = measure(1, names, args)
        for n in counts:
            r = base if n == 1 else measure(n, names, args)
            print(
                f"{n:>7} {names:>6} {r['build'] * 1e3:9.1f} {r['scan'] * 1e3:8.2f} {r['scan'] / base['scan']:6.1f} "
                f"{r['tick'] * 1e3:8.2f} {r['tick'] / base['tick']:6.1f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
