"""CURVE on the master/worker channel: what authentication and encryption cost the master's ingest.

    python bench/curve_channel.py [--workers 2] [--users-per-worker 2] [--rate 150000] [--duration 10]

Runs ``bench/master_ingest.py``'s recorder run twice, in this process, with the same settings: first on
Locust's plain channel (the baseline), then with a worker key, so that master and workers talk ZeroMQ
CURVE. Prints for each the samples/s the master wrote, whether every fired sample arrived, the master's
and workers' CPU, and the batch delay; then the ratios CURVE / plain. Only 127.0.0.1 carries traffic and
every run is bounded in time (``master_ingest`` stops it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import master_ingest as mi  # noqa: E402

from loadgate.shared.child import child_env  # noqa: E402

KEY = "bench-only-key-" + "0" * 49  # a fixed key: only the cost of CURVE is measured here


def run(args, key: str | None) -> dict:
    workdir = tempfile.mkdtemp(prefix="loadgate-curve-")
    mi.child_env = lambda: child_env(key)  # master_ingest starts its children with this environment
    try:
        return mi.run_once(args, recorder=True, workdir=workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def line(name: str, r: dict) -> str:
    complete = r["rows"] == r["fired"] == r["recorder_sent"] == r["recorder_received"]
    lag = r.get("lag_ms") or {}
    return (
        f"  {name:6s} master wrote {r['rows']:,} rows = {mi._fmt(r['ingested_per_s'])} samples/s "
        f"({'every fired sample' if complete else 'MISMATCH: ' + str((r['fired'], r['rows']))}); "
        f"master CPU {mi._fmt(r.get('master_cpu_avg'), '.1f', '%')} avg, {mi._fmt(r.get('master_cpu_peak'), '.0f', '%')} "
        f"peak; workers {', '.join(mi._fmt(c, '.0f', '%') for c in r.get('worker_cpu_avg', []))}; "
        f"batch delay median {lag.get('median', float('nan')):.1f} ms, p99 {lag.get('p99', float('nan')):.1f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--users-per-worker", type=int, default=2)
    p.add_argument("--rate", type=float, default=150_000, help="events/s in all; 0: flat out (default 150000)")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--flush", type=float, default=1.0)
    args = p.parse_args(argv)
    args.no_rules = False
    plain = run(args, None)
    curve = run(args, KEY)
    print(
        f"CURVE channel bench: {args.workers} workers x {args.users_per_worker} users, target "
        f"{mi._fmt(args.rate) if args.rate else 'flat out'} events/s, {args.duration:g}s, recorder on, on 127.0.0.1"
    )
    print(line("plain", plain))
    print(line("CURVE", curve))

    def ratio(key: str) -> str:
        a, b = plain.get(key), curve.get(key)
        return f"{b / a:.3f}" if a and b else "-"

    for r in (plain, curve):  # the workers may fire at different rates on a shared machine: compare per sample
        r["master_cpu_per_100k"] = (r.get("master_cpu_avg") or 0) / (r.get("ingested_per_s") or 1) * 1e5
        r["worker_cpu_per_100k"] = sum(r.get("worker_cpu_avg") or [0]) / (r.get("ingested_per_s") or 1) * 1e5
    print(
        f"  ratios CURVE / plain: samples/s {ratio('ingested_per_s')}; CPU per sample: master "
        f"{ratio('master_cpu_per_100k')}, workers {ratio('worker_cpu_per_100k')} "
        f"(plain: master {plain['master_cpu_per_100k']:.1f}%, workers {plain['worker_cpu_per_100k']:.1f}% of a core "
        "per 100,000 samples/s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
