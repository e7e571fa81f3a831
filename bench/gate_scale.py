"""How the gate's time grows with the number of thresholds: each stage per threshold, against the smallest count.

    python bench/gate_scale.py [--counts 100,5000,100000] [--names 5000]

A threshold file of N p95 thresholds, each of its own request (``GET /item/i``), and a summary of ``--names``
requests (``/item/0`` ... : the first thresholds find their request, the rest are inconclusive, as when a
threshold names a request the run never sent). Timed in this process, per count: parsing the file
(``load_threshold_file``), the gate (``evaluate``), and writing verdict.json, junit.xml, summary.md; then the
time per threshold and its ratio to the smallest count's: 1.0 is linear, N/smallest is quadratic.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from loadgate.gate.thresholds import load_threshold_file  # noqa: E402
from loadgate.gate.verdict import evaluate  # noqa: E402
from loadgate.outputs.summary_md import render_summary_md  # noqa: E402
from loadgate.outputs.writers import write_junit, write_verdict_json  # noqa: E402

REQ = "REQ-GATE-001"


def stats(requests: int) -> dict:
    rt = {"min": 1.0, "mean": 3.0, "p50": 2.0, "p90": 4.0, "p95": 5.0, "p99": 8.0, "max": 20.0}
    return {
        "requests": requests,
        "failures": 0,
        "error_rate": 0.0,
        "throughput": requests / 10.0,
        "response_time_ms": rt,
    }


def one(tmp: str, n: int, names: int) -> dict[str, float]:
    path = os.path.join(tmp, f"{n}.yaml")
    with open(path, "w") as f:
        f.write(f"requirement: {REQ}\nthresholds:\n")
        f.writelines(f'  - metric: p95\n    request: "GET /item/{i}"\n    alert: ">1s"\n' for i in range(n))
    summary = {
        "window": {"start": 0.0, "end": 10.0, "seconds": 10.0},
        "requirements": {REQ: stats(10 * names)},
        "requests": [
            {"request_type": "GET", "name": f"/item/{i}", "requirement": REQ, **stats(10)} for i in range(names)
        ],
    }
    times = {}
    t = time.perf_counter()
    tf = load_threshold_file(path)
    times["parse"] = time.perf_counter() - t
    t = time.perf_counter()
    verdict = evaluate({REQ: tf}, summary)
    times["gate"] = time.perf_counter() - t
    t = time.perf_counter()
    write_verdict_json(verdict, os.path.join(tmp, "verdict.json"))
    write_junit(verdict, os.path.join(tmp, "junit.xml"), files={REQ: tf})
    render_summary_md(verdict, summary, files={REQ: tf})
    times["outputs"] = time.perf_counter() - t
    return times


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--counts", default="100,5000,100000")
    p.add_argument("--names", type=int, default=5000, help="requests in the summary")
    args = p.parse_args()
    counts = sorted(int(c) for c in args.counts.split(","))
    tmp = tempfile.mkdtemp(prefix="loadgate-gatescale-")
    try:
        print(
            f"{'thresholds':>10} {'parse s':>8} {'gate s':>8} {'outputs s':>9}   per threshold (us): parse, gate, "
            f"outputs; ratio to {counts[0]}'s"
        )
        base = None
        for n in counts:
            times = one(tmp, n, args.names)
            per = {k: v / n for k, v in times.items()}
            base = base or per
            print(
                f"{n:>10} {times['parse']:8.2f} {times['gate']:8.2f} {times['outputs']:9.2f}   "
                + ", ".join(f"{per[k] * 1e6:.0f} (x{per[k] / base[k]:.1f})" for k in ("parse", "gate", "outputs")),
                flush=True,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
