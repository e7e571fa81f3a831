"""Where the recorder's share of the load generator's CPU goes, measured inside a real run.

    python bench/recorder_split.py [--runs 3] [--seconds 20] [--users 20]

``bench/recorder_overhead.py`` measures what the recorder costs in throughput, against plain Locust. This
bench splits that cost by part, in the Locust process of a real run (the same scenario: FastHttpUsers with
no wait, fetching one small static file from nginx-light on 127.0.0.1):

- the request listener (C): a copy of ``loadgate/plugin/_rowpack.c`` is built into a temporary directory with
  ``-DLOADGATE_TIMING``, which times each call with ``clock_gettime(CLOCK_MONOTONIC)`` (cold caches and
  all, as it runs between Locust's own work); the installed build has no such code;
- the once-a-second work: each flush (batch building, the stream file, the live view's scan), the live
  view's evaluation, the progress file, the CPU sample and the sweep of ended users, each timed with
  ``time.thread_time()`` by a plugin that wraps those functions (gevent: one thread, and none of them
  yields at this rate, below ``--loadgate-offload-rows``).

Each part is printed as a share of the Locust process's CPU time over the stretch at full load (from 5 s
after the first request to 2 s before the end); the median over ``--runs`` runs. What no timer sees is
the cache misses the recorder causes in Locust's own code afterwards: the throughput bench's figure minus
the sum printed here is an estimate of it.

Installs nothing: nginx-light, a C compiler and Python's headers must be there. 127.0.0.1 only; every
run is bounded by ``--seconds``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

from recorder_overhead import LOCUSTFILE, REQUIREMENT, THRESHOLDS, Nginx, wait_quiet

SETTLE_S = 5.0
PARTS = ("listener", "flush", "evaluate", "progress", "cpu_sample", "sweep")
BUILD = """from setuptools import Extension, setup
setup(ext_modules=[Extension("loadgate.plugin._rowpack", ["loadgate/plugin/_rowpack.c"], extra_compile_args=["-O2"],
                             define_macros=[("LOADGATE_TIMING", None)])])
"""
PLUGIN = '''"""Loaded after loadgate's plugin: times the recorder's periodic work, and snapshots it each second."""
import json, os, time

import gevent
import psutil
from locust import events

from loadgate.plugin import _rowpack, live, recorder, recorder_local

T = dict(flush=0.0, evaluate=0.0, progress=0.0, cpu_sample=0.0, sweep=0.0)


def timed(part, fn):
    def wrapper(*args, **kwargs):
        start = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            T[part] += time.thread_time() - start
    return wrapper


recorder.Recorder.flush = timed("flush", recorder.Recorder.flush)
live.LiveMonitor.evaluate = timed("evaluate", live.LiveMonitor.evaluate)
recorder_local.write_json = timed("progress", recorder_local.write_json)
recorder.sweep = timed("sweep", recorder.sweep)
psutil.Process.cpu_percent = timed("cpu_sample", psutil.Process.cpu_percent)


def snapshots(path):
    with open(path, "a") as f:
        while True:
            ns, calls = _rowpack.timing()
            f.write(json.dumps(dict(T, t=time.monotonic(), cpu=time.process_time(), listener=ns / 1e9,
                                    calls=calls)) + "\\n")
            f.flush()
            gevent.sleep(1.0)


@events.init.add_listener
def _start(environment, **_kw):
    gevent.spawn(snapshots, os.environ["LOADGATE_SPLIT_OUT"])
'''


def build(tmp: str) -> str:
    """A copy of the package with the timing build of the listener; returns its root."""
    src = os.path.join(tmp, "src")
    shutil.copytree(
        os.path.join(ROOT, "loadgate"),
        os.path.join(src, "loadgate"),
        ignore=shutil.ignore_patterns("__pycache__", "*.so"),
    )
    done = subprocess.run(
        [sys.executable, "-c", BUILD, "build_ext", "--inplace", "-q"], cwd=src, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(
            f"building the timing listener failed (a C compiler and Python's headers are needed):\n{done.stderr}"
        )
    return src


def one_run(tmp: str, src: str, nginx: Nginx, args, i: int) -> dict[str, float]:
    out = os.path.join(tmp, f"split{i}.jsonl")
    run_dir = os.path.join(tmp, f"run{i}")
    os.makedirs(run_dir)
    from loadgate.data import rundir
    from loadgate.gate.thresholds import load_threshold_file
    from loadgate.shared.live_rules import rules_from_thresholds
    from loadgate.run.options import RunOptions
    from loadgate.run.drivers.headless import Headless
    from loadgate.run.launch import child_config, locust_cmd
    from loadgate.shared.child import CONFIG_ENV

    rules = rules_from_thresholds([load_threshold_file(os.path.join(tmp, "thresholds", f"{REQUIREMENT}.yaml"))])
    # The Locust command loadgate run starts for a local run (launch.locust_cmd, headless), plus the timing plugin;
    # PYTHONPATH makes its plugin import the copy with the timed listener.
    opts = RunOptions(
        requirements=(REQUIREMENT,),
        users=args.users,
        spawn_rate=args.users,
        duration=args.seconds,
        warmup=0.0,
        host=nginx.url,
        scenarios=LOCUSTFILE,
        thresholds=os.path.join(tmp, "thresholds"),
        out=tmp,
    )
    cmd = locust_cmd(opts, Headless(), [LOCUSTFILE], [], nginx.url, "local", None)
    config = child_config(opts, Headless(), run_dir, rules).write(os.path.join(run_dir, rundir.CHILD))
    cmd[cmd.index("-f") + 1] += "," + os.path.join(tmp, "timing_plugin.py")
    env = dict(os.environ, PYTHONPATH=src, LOADGATE_SPLIT_OUT=out, **{CONFIG_ENV: config})
    with open(os.path.join(tmp, "locust.log"), "ab") as log:
        done = subprocess.run(cmd, cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=args.seconds + 120)
    if done.returncode not in (0, 1):
        raise SystemExit(f"the run failed (exit {done.returncode}); see {tmp}/locust.log")
    with open(out) as f:
        snaps = [json.loads(line) for line in f]
    first = next(s["t"] for s in snaps if s["calls"] > 0)
    window = [s for s in snaps if s["t"] >= first + SETTLE_S]
    full = [s for s in window if s["t"] <= first + args.seconds - 2]
    if len(full) < 3:
        raise SystemExit(f"too short a stretch at full load ({len(full)} snapshots); use a longer --seconds")
    a, b = full[0], full[-1]
    cpu = b["cpu"] - a["cpu"]
    shares = {part: (b[part] - a[part]) / cpu for part in PARTS}
    shares["rate"] = (b["calls"] - a["calls"]) / (b["t"] - a["t"])
    shares["cores"] = cpu / (b["t"] - a["t"])
    shares["ns_per_call"] = (b["listener"] - a["listener"]) * 1e9 / max(b["calls"] - a["calls"], 1)
    return shares


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seconds", type=int, default=20)
    p.add_argument("--users", type=int, default=20)
    args = p.parse_args()
    if args.seconds < 10:
        p.error("--seconds must be at least 10 (5 s to settle, a stretch to measure, 2 s before the end)")
    tmp = tempfile.mkdtemp(prefix="loadgate-split-")
    try:
        os.makedirs(os.path.join(tmp, "thresholds"))
        with open(os.path.join(tmp, "thresholds", f"{REQUIREMENT}.yaml"), "w") as f:
            f.write(THRESHOLDS)
        with open(os.path.join(tmp, "timing_plugin.py"), "w") as f:
            f.write(PLUGIN)
        src = build(tmp)
        print(
            f"{args.runs} loadgate runs of {args.seconds} s, {args.users} users, against nginx-light on 127.0.0.1; "
            "each part as a share of the Locust process's CPU time at full load"
        )
        header = "".join(f"{part:>11}" for part in PARTS)
        print(f"{'run':>3} {'requests/s':>10} {'cores':>6} {'ns/call':>8}{header} {'sum':>7}")
        runs = []
        with Nginx() as nginx:
            for i in range(args.runs):
                wait_quiet()
                r = one_run(tmp, src, nginx, args, i)
                runs.append(r)
                cells = "".join(f"{r[part] * 100:10.3f}%" for part in PARTS)
                print(
                    f"{i + 1:>3} {r['rate']:10.0f} {r['cores']:6.2f} {r['ns_per_call']:8.0f}{cells} "
                    f"{sum(r[part] for part in PARTS) * 100:6.3f}%",
                    flush=True,
                )
                time.sleep(1.0)
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print()
        print(
            f"median of {len(runs)} runs: listener {med['ns_per_call']:.0f} ns a request, "
            + ", ".join(f"{part} {med[part] * 100:.3f}%" for part in PARTS)
            + f"; together {statistics.median(sum(r[part] for part in PARTS) for r in runs) * 100:.2f}% "
            "of the generator's CPU"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
