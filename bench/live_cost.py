"""What many thresholds cost the load generator: the live view's share of its CPU, in real runs.

    python bench/live_cost.py [--counts 0,1,5000,100000] [--seconds 10] [--users 10] [--rate 10]

Each count is one real ``loadgate run`` against the embedded demo target on 127.0.0.1: ``--users`` paced users
(``constant_throughput(--rate)``) fetch ``/api/delay/2`` (answered in about 2 ms) under ``--names`` request names
(``/item/0``, ``/item/1``, ...). The threshold file has one requirement-wide p95 (target <50ms, alert >200ms: the
canary a starved generator fails) and count - 1 p95 thresholds of their own ``request: GET /item/N`` (alert >1s);
count 0 is the baseline: one target-only p95, which gives the live view no rule to evaluate. The baseline is
measured in the same invocation, and each row prints its ratio to it.

A ``sitecustomize`` on PYTHONPATH wraps the live view (``LiveMonitor.scan``, ``LiveMonitor.evaluate``) in the
Locust process with ``time.thread_time()`` (gevent: one thread, nothing offloaded at this rate), and writes
the totals with the process's CPU time each time the view is evaluated. Printed per count:

- live: the live view's share of the generator's CPU time (scan and evaluation), its ratio to the baseline's
  share (whose live view computes the progress line only), and the generator's CPU seconds in all;
- samples recorded of those the schedule expected (users x rate x seconds) and of Locust's count;
- the verdict (and its first reason when it is not pass), the sizes of verdict.json, junit.xml, summary.md,
  report.html, and the wall time from Locust's end to the CLI's exit (analysis, gate, outputs).

A run that does not end within --seconds + --timeout is killed and shown as such. 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
REQUIREMENT = "REQ-LIVE-001"

SCENARIO = '''"""Paced users fetching a 2 ms endpoint under {names} request names."""
import itertools

from locust import FastHttpUser, constant_throughput, tag, task

_next = itertools.count()


class Paced(FastHttpUser):
    wait_time = constant_throughput({rate})

    @tag("{req}")
    @task
    def quick(self):
        self.client.get("/api/delay/2", name=f"/item/{{next(_next) % {names}}}")
'''

SITE = '''"""Times the live view inside the Locust process (bench/live_cost.py)."""
import importlib.abc, importlib.machinery, json, os, sys, time

OUT = os.environ.get("LOADGATE_LIVE_COST_OUT")
T = dict(scan=0.0, evaluate=0.0, evaluations=0)


def _timed(part, fn):
    def wrapper(*args, **kwargs):
        start = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            T[part] += time.thread_time() - start
            T["evaluations"] += part == "evaluate"
            with open(OUT, "w") as f:
                json.dump(dict(T, cpu=time.process_time()), f)
    return wrapper


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "loadgate.plugin.live" or "locust" not in sys.modules:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            module.LiveMonitor.scan = _timed("scan", module.LiveMonitor.scan)
            module.LiveMonitor.evaluate = _timed("evaluate", module.LiveMonitor.evaluate)
        spec.loader.exec_module = exec_module
        return spec


if OUT:
    sys.meta_path.insert(0, _Finder())
'''


def thresholds(count: int) -> str:
    lines = [
        f"requirement: {REQUIREMENT}",
        "title: live view cost",
        "thresholds:",
        "  - metric: p95",
        '    target: "<50ms"',
    ]
    if count >= 1:
        lines.append('    alert: ">200ms"')
    for i in range(max(count - 1, 0)):
        lines += ["  - metric: p95", f'    request: "GET /item/{i}"', '    alert: ">1s"']
    return "\n".join(lines) + "\n"


def one_run(tmp: str, count: int, args) -> dict:
    work = os.path.join(tmp, f"n{count}")
    os.makedirs(os.path.join(work, "thresholds"))
    with open(os.path.join(work, "thresholds", f"{REQUIREMENT}.yaml"), "w") as f:
        f.write(thresholds(count))
    timing = os.path.join(work, "live.json")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(tmp, "site"), ROOT]), LOADGATE_LIVE_COST_OUT=timing)
    env.pop("GITHUB_STEP_SUMMARY", None)
    cmd = [
        sys.executable,
        "-m",
        "loadgate",
        "run",
        "--requirement",
        REQUIREMENT,
        "--scenarios",
        os.path.join(tmp, "scenario.py"),
        "--thresholds",
        os.path.join(work, "thresholds"),
        "--out",
        os.path.join(work, "out"),
        "--users",
        str(args.users),
        "--spawn-rate",
        str(args.users),
        "--duration",
        f"{args.seconds}s",
        "--warmup",
        "0s",
    ]
    started = time.monotonic()
    with open(os.path.join(work, "cli.log"), "w") as log:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            code = proc.wait(timeout=args.seconds + args.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()  # its Locust and demo target stop with it (they watch their parent)
            proc.wait()
            code = None
    wall = time.monotonic() - started
    out = os.path.join(work, "out")
    runs = (
        [os.path.join(out, d) for d in sorted(os.listdir(out)) if os.path.isdir(os.path.join(out, d))]
        if os.path.isdir(out)
        else []
    )
    run_dir = runs[-1] if runs else None
    r: dict = {"count": count, "code": code, "wall": wall}
    if os.path.exists(timing):
        with open(timing) as f:
            t = json.load(f)
        r["live_s"], r["cpu_s"], r["evaluations"] = t["scan"] + t["evaluate"], t["cpu"], t["evaluations"]
    if run_dir:
        sizes = {}
        for name in ("verdict.json", "junit.xml", "summary.md", "report.html"):
            p = os.path.join(run_dir, name)
            sizes[name] = os.path.getsize(p) if os.path.exists(p) else None
        r["sizes"] = sizes
        run = _read(run_dir, "run.json")
        verdict = _read(run_dir, "verdict.json")
        r["samples"], r["locust"] = run.get("samples"), run.get("locust_requests")
        r["verdict"] = verdict.get("verdict")
        reasons = verdict.get("reasons") or []
        r["reason"] = reasons[0] if reasons and verdict.get("verdict") != "pass" else ""
        if run.get("end"):  # Locust's end (the recorder's) to the CLI's exit: analysis, gate and outputs
            r["after"] = os.path.getmtime(os.path.join(run_dir, "run.json")) - run["end"]
    return r


def _read(run_dir: str, name: str) -> dict:
    try:
        with open(os.path.join(run_dir, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _kb(n) -> str:
    return "-" if n is None else f"{n / 1024:.0f}K" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f}M"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--counts", default="0,1,5000,100000", help="threshold counts, comma-separated (0: the baseline)")
    p.add_argument("--seconds", type=int, default=10, help="time at full load of each run")
    p.add_argument("--users", type=int, default=10)
    p.add_argument("--rate", type=float, default=10.0, help="iterations a second per user")
    p.add_argument("--names", type=int, default=50, help="distinct request names the users send")
    p.add_argument("--timeout", type=int, default=180, help="seconds past --seconds before a run is killed")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory and print its path")
    args = p.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    if 0 not in counts:
        counts.insert(0, 0)
    tmp = tempfile.mkdtemp(prefix="loadgate-livecost-")
    try:
        os.makedirs(os.path.join(tmp, "site"))
        with open(os.path.join(tmp, "site", "sitecustomize.py"), "w") as f:
            f.write(SITE)
        with open(os.path.join(tmp, "scenario.py"), "w") as f:
            f.write(SCENARIO.format(rate=args.rate, names=args.names, req=REQUIREMENT))
        expected = round(args.users * args.rate * args.seconds)
        print(
            f"loadgate runs of {args.seconds} s, {args.users} paced users at {args.rate:g}/s ({expected} samples "
            f"expected), {args.names} request names, embedded demo target (/api/delay/2) on 127.0.0.1"
        )
        print(
            f"{'thresholds':>10} {'live %cpu':>9} {'vs base':>7} {'cpu s':>6} {'samples':>13} "
            f"{'locust':>6} {'after s':>7} {'verdict.json':>12} {'junit.xml':>9} {'summary.md':>10} "
            f"{'report':>7}  verdict"
        )
        base = None
        for count in counts:
            r = one_run(tmp, count, args)
            share = r["live_s"] / r["cpu_s"] if r.get("cpu_s") else None
            if count == 0:
                base = share
            ratio = f"{share / base:7.1f}" if share and base else "      -"
            sizes = r.get("sizes") or {}
            verdict = (
                "killed after " + f"{r['wall']:.0f}s"
                if r["code"] is None
                else f"{r.get('verdict')} (exit {r['code']})" + (f": {r['reason'][:110]}" if r.get("reason") else "")
            )
            print(
                f"{count:>10} {'-' if share is None else f'{share * 100:8.2f}%'} "
                f"{ratio} {'-' if not r.get('cpu_s') else format(r['cpu_s'], '6.1f')} "
                f"{str(r.get('samples', '-')) + '/' + str(expected):>13} {str(r.get('locust', '-')):>6} "
                f"{'-' if r.get('after') is None else format(r['after'], '7.1f')} "
                f"{_kb(sizes.get('verdict.json')):>12} {_kb(sizes.get('junit.xml')):>9} "
                f"{_kb(sizes.get('summary.md')):>10} {_kb(sizes.get('report.html')):>7}  {verdict}",
                flush=True,
            )
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
