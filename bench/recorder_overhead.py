"""Throughput of ``loadgate run`` against plain Locust on the same scenario, and the recorder's memory.

    python bench/recorder_overhead.py [--pairs 5] [--seconds 20] [--users 20]
    python bench/recorder_overhead.py --minutes 10 [--users 20] [--keep]

Installs nothing: Debian's nginx-light must be there (``apt-get install -y nginx-light``). The bench
starts it on a free 127.0.0.1 port with a config of its own (one worker process, no access log, a
~600-byte static file, ``stub_status``), then runs alternated pairs of

- plain Locust: ``locust -f bench/nginx_locustfile.py --headless -u 20 -r 20 -t 20s --host URL``
- loadgate: ``python -m loadgate run --requirement REQ-BENCH-001 --scenarios bench/nginx_locustfile.py
  --thresholds TMP --users 20 --spawn-rate 20 --duration 20s --host URL --out TMP`` (the recorder
  writes every request; the live view evaluates the threshold file's three alert rules every second)

(FastHttpUser, no wait). Throughput is counted by nginx itself (``stub_status``, polled four times a
second by this process; its own polls are subtracted) over the same stretch of each run: from 3 s after
the first request reached nginx, for ``--seconds`` − 6 s, i.e. at full load, before Locust stops. Locust's
own count is printed beside it (plain: its ``--csv-full-history`` cumulative counts over that stretch;
loadgate: the samples in ``samples.parquet`` over it), and requests per CPU-second of the load generator's
processes over the same stretch (Locust; for loadgate also its CLI parent), which other guests of a
shared machine (steal) cannot skew. Prints each pair, the median ratios of the pairs (target ≥ 0.98) and
the bytes per sample of each loadgate run's ``samples.parquet``.

``--minutes N``: one ``loadgate run`` of N minutes against the same nginx; the Locust process's resident
memory (psutil) every 30 s, and its growth between minute 1 and minute N.

Everything listens on 127.0.0.1 only and every run is bounded in time. On a 2-core machine nginx,
Locust and the bench share the cores: read the ratios, not the requests/s.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LOCUSTFILE = os.path.join(HERE, "nginx_locustfile.py")
REQUIREMENT = "REQ-BENCH-001"
THRESHOLDS = f"""requirement: {REQUIREMENT}
title: Static file from nginx on loopback, as fast as 20 users can fetch it
thresholds:
  - metric: p95
    target: "<50ms"
    alert: ">1s"
  - metric: error_rate
    target: "<0.1%"
    alert: ">1%"
  - metric: throughput
    target: ">1000/s"
    alert: "<10/s"
"""
NGINX_CONF = """worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 75s;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {tmp}/www;
        location = /nginx_status {{ stub_status; }}
        location / {{ }}
    }}
}}
"""
PAGE = (
    "<!doctype html><html><head><title>loadgate bench</title></head><body>"
    + "<p>static page</p>" * 30
    + "</body></html>\n"
)
POLL_S = 0.25
SETTLE_S = 3.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """nginx-light on 127.0.0.1 with a config of its own; a context manager."""

    def __init__(self) -> None:
        if shutil.which("nginx") is None:
            raise SystemExit("nginx not found: apt-get install -y nginx-light")
        self.tmp = tempfile.mkdtemp(prefix="loadgate-nginx-")
        os.chmod(self.tmp, 0o755)  # nginx's worker runs as an unprivileged user: it must read the page
        self.port = free_port()
        os.makedirs(os.path.join(self.tmp, "www"), mode=0o755)
        with open(os.path.join(self.tmp, "www", "index.html"), "w") as f:
            f.write(PAGE)
        self.conf = os.path.join(self.tmp, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(NGINX_CONF.format(tmp=self.tmp, port=self.port))
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Nginx":
        self.proc = subprocess.Popen(["nginx", "-c", self.conf, "-p", self.tmp], stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                self.requests()
                return self
            except OSError:
                time.sleep(0.1)
        self.__exit__()
        raise SystemExit(f"nginx did not answer on {self.url} within 10 s; see {self.tmp}/error.log")

    def requests(self) -> int:
        """nginx's count of requests handled so far (stub_status)."""
        with urllib.request.urlopen(self.url + "/nginx_status", timeout=2) as r:
            return int(r.read().decode().splitlines()[2].split()[2])

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: the master stops its worker
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


class Foreign:
    """CPU time used by processes other than this bench's own (and nginx) while a run goes, in cores,
    and CPU time the hypervisor gave to other machines (steal).

    The machine may be shared: a pair during which someone else's work took more than MAX_FOREIGN of a
    core is not comparing loadgate with Locust, so it is run again (up to as many extra pairs)."""

    def __init__(self, nginx: Nginx) -> None:
        self.mine = [psutil.Process(), psutil.Process(nginx.proc.pid)]

    def _ours(self) -> float:
        total = 0.0
        for root in self.mine:
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for p in procs:
                try:
                    t = p.cpu_times()
                    total += t.user + t.system + (t.children_user + t.children_system if p is root else 0.0)
                except psutil.Error:
                    pass
        return total

    def __enter__(self) -> "Foreign":
        self.t0, self.busy0, self.ours0 = time.time(), _busy(), self._ours()
        return self

    def __exit__(self, *exc) -> None:
        busy = _busy() - self.busy0
        self.cores = max(0.0, busy - (self._ours() - self.ours0)) / max(time.time() - self.t0, 1e-9)


def _busy() -> float:
    """CPU seconds the machine was busy, including what the hypervisor gave to other guests (steal)."""
    c = psutil.cpu_times()
    return c.user + c.system + c.nice + getattr(c, "steal", 0.0)


def wait_quiet(seconds: float = 60.0) -> None:
    """Wait (bounded) until the machine is nearly idle before a run."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and psutil.cpu_percent(interval=1.0) > 10.0:
        pass


MAX_FOREIGN = 0.10


class Counter:
    """Polls nginx's request count in a thread: [(time, count)], our own polls subtracted."""

    def __init__(self, nginx: Nginx) -> None:
        self.nginx, self.points, self.stop = nginx, [], threading.Event()
        self.cpu: list[tuple[float, float]] = []  # (time, CPU seconds of the load generator's processes)
        self.root: psutil.Process | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def track(self, pid: int) -> None:
        """Also sample the CPU time of ``pid`` and its children (the load generator: Locust, loadgate)."""
        self.root = psutil.Process(pid)

    def _tree_cpu(self) -> float | None:
        try:
            procs = [self.root, *self.root.children(recursive=True)]
            return sum(t.user + t.system for t in (p.cpu_times() for p in procs))
        except psutil.Error:
            return None

    def _run(self) -> None:
        polls = 0
        while not self.stop.is_set():
            try:
                count = self.nginx.requests()
                polls += 1
                now = time.time()
                self.points.append((now, count - polls))  # the poll itself is counted
                cpu = self._tree_cpu() if self.root is not None else None
                if cpu is not None:
                    self.cpu.append((now, cpu))
            except OSError:
                pass
            self.stop.wait(POLL_S)

    def __enter__(self) -> "Counter":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(5)

    def rate(self, seconds: float) -> tuple[float, float, float]:
        """(requests/s, start, end) over ``seconds`` from SETTLE_S after the first request of the run."""
        base = self.points[0][1]
        first = next(t for t, c in self.points if c > base + 20)
        start, end = first + SETTLE_S, first + SETTLE_S + seconds
        at = lambda t: _interpolate(self.points, t)  # noqa: E731
        self.per_cpu = (at(end) - at(start)) / (_interpolate(self.cpu, end) - _interpolate(self.cpu, start))
        return (at(end) - at(start)) / seconds, start, end


def _interpolate(points: list[tuple[float, int]], t: float) -> float:
    for (t0, c0), (t1, c1) in zip(points, points[1:]):
        if t0 <= t <= t1:
            return c0 + (c1 - c0) * (t - t0) / (t1 - t0) if t1 > t0 else c1
    raise SystemExit(f"no nginx count around {t:.1f}: the run ended before the measured stretch")


def _pinned(args) -> list[str]:
    """``taskset -c CORE`` for a generator under ``--pin`` (its children inherit it), else nothing."""
    return ["taskset", "-c", str(args.gen_core)] if args.pin else []


def run_plain(nginx: Nginx, args, tmp: str) -> dict:
    prefix = os.path.join(tmp, "plain")
    cmd = [
        *_pinned(args),
        sys.executable,
        "-m",
        "locust",
        "-f",
        LOCUSTFILE,
        "--headless",
        "-u",
        str(args.users),
        "-r",
        str(args.users),
        "-t",
        f"{args.seconds}s",
        "--host",
        nginx.url,
        "--csv",
        prefix,
        "--csv-full-history",
    ]
    with Counter(nginx) as counter, open(os.path.join(tmp, "plain.log"), "wb") as log:
        # A session of its own, as loadgate's Locust process has: with autogroup scheduling (Linux's
        # default) a process that shares the bench's session shares its CPU share with nginx's worker.
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        counter.track(proc.pid)
        proc.wait(args.seconds + 60)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"plain Locust exited {proc.returncode}; see {tmp}/plain.log")
    rate, start, end = counter.rate(args.seconds - 2 * SETTLE_S)
    with open(prefix + "_stats.csv") as f:
        errors = sum(int(r["Failure Count"]) for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    return {
        "nginx": rate,
        "locust": _history_rate(prefix + "_stats_history.csv", start, end),
        "errors": errors,
        "per_cpu": counter.per_cpu,
    }


def _history_rate(path: str, start: float, end: float) -> float:
    """Requests/s from Locust's cumulative per-second counts (the Aggregated rows) over [start, end]."""
    points = []
    with open(path) as f:
        for row in csv.DictReader(f):
            if row["Name"] == "Aggregated":
                points.append((float(row["Timestamp"]), int(row["Total Request Count"])))
    return (_interpolate(points, end) - _interpolate(points, start)) / (end - start)


def run_loadgate(nginx: Nginx, args, tmp: str, seconds: float, label: str = "loadgate") -> dict:
    out = os.path.join(tmp, label)
    cmd = [
        *_pinned(args),
        sys.executable,
        "-m",
        "loadgate",
        "run",
        "--requirement",
        REQUIREMENT,
        "--scenarios",
        LOCUSTFILE,
        "--thresholds",
        os.path.join(tmp, "thresholds"),
        "--users",
        str(args.users),
        "--spawn-rate",
        str(args.users),
        "--duration",
        f"{seconds:g}s",
        "--host",
        nginx.url,
        "--out",
        out,
    ]
    with Counter(nginx) as counter, open(os.path.join(tmp, f"{label}.log"), "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        counter.track(proc.pid)
        proc.wait(seconds + 120)
    if proc.returncode not in (0, 1, 3):  # 3: a saturated generator is inconclusive, still measured
        raise SystemExit(f"loadgate run exited {proc.returncode}; see {tmp}/{label}.log")
    rate, start, end = counter.rate(args.seconds - 2 * SETTLE_S)
    run_dir = sorted(glob.glob(os.path.join(out, "*", "samples.parquet")))[-1]
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(run_dir, columns=["timestamp", "success"])
    ts = table.column("timestamp")
    errors = table.num_rows - pc.sum(table.column("success").cast("int64")).as_py()
    inside = pc.sum(pc.and_(pc.greater_equal(ts, start), pc.less(ts, end)).cast("int64")).as_py()
    size = os.path.getsize(run_dir)
    shutil.rmtree(out, ignore_errors=True)
    return {
        "nginx": rate,
        "locust": inside / (end - start),
        "samples": len(ts),
        "bytes_per_sample": size / len(ts),
        "errors": errors,
        "per_cpu": counter.per_cpu,
    }


def _pin_away(nginx: Nginx, args) -> None:
    """Move nginx (master and worker) and this process to the core the generators do not use."""
    for proc in [psutil.Process(nginx.proc.pid), *psutil.Process(nginx.proc.pid).children()]:
        proc.cpu_affinity([args.other_core])
    psutil.Process().cpu_affinity([args.other_core])


def pairs(args) -> int:
    tmp = tempfile.mkdtemp(prefix="loadgate-recorder-")
    os.makedirs(os.path.join(tmp, "thresholds"))
    with open(os.path.join(tmp, "thresholds", f"{REQUIREMENT}.yaml"), "w") as f:
        f.write(THRESHOLDS)
    rows = []
    with Nginx() as nginx:
        if args.pin:  # nginx and this bench on one core, each generator alone on the other
            _pin_away(nginx, args)
            print(
                f"--pin: each generator alone on core {args.gen_core} (taskset), nginx and this bench on "
                f"core {args.other_core}"
            )
        print(
            f"nginx-light on {nginx.url}; {args.pairs} alternated pairs of {args.seconds} s runs, "
            f"{args.users} FastHttpUsers, no wait; requests/s over the {args.seconds - 2 * SETTLE_S:g} s "
            "at full load"
        )
        print(
            f"{'pair':>4} {'plain nginx':>12} {'loadgate nginx':>15} {'ratio':>6}   {'plain locust':>12} "
            f"{'loadgate samples':>16} {'ratio':>6}   {'plain/cpu':>9} {'lg/cpu':>9} {'ratio':>6}  bytes/sample"
        )
        attempts = 0
        while len(rows) < args.pairs and attempts < 2 * args.pairs:
            attempts += 1
            order = ["plain", "loadgate"] if len(rows) % 2 == 0 else ["loadgate", "plain"]
            got, foreign = {}, 0.0
            for side in order:
                wait_quiet()
                with Foreign(nginx) as other:
                    got[side] = (
                        run_plain(nginx, args, tmp) if side == "plain" else run_loadgate(nginx, args, tmp, args.seconds)
                    )
                foreign = max(foreign, other.cores)
            if foreign > MAX_FOREIGN:
                print(f"   - other processes took {foreign:.2f} of a core during this pair: run again", flush=True)
                continue
            i = len(rows)
            p, lg = got["plain"], got["loadgate"]
            for side, r in got.items():
                if r.get("errors"):
                    raise SystemExit(f"{side}: {r['errors']} failed requests; the bench needs a healthy target")
            rows.append(
                (
                    lg["nginx"] / p["nginx"],
                    lg["locust"] / p["locust"],
                    lg["bytes_per_sample"],
                    lg["samples"],
                    lg["per_cpu"] / p["per_cpu"],
                )
            )
            print(
                f"{i + 1:>4} {p['nginx']:12.0f} {lg['nginx']:15.0f} {rows[-1][0]:6.3f}   {p['locust']:12.0f} "
                f"{lg['locust']:16.0f} {rows[-1][1]:6.3f}   {p['per_cpu']:9.0f} {lg['per_cpu']:9.0f} {rows[-1][4]:6.3f}"
                f"  {lg['bytes_per_sample']:.2f} ({lg['samples']:,} samples)",
                flush=True,
            )
    shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(
        f"loadgate run / plain Locust throughput, median of {len(rows)} pairs: "
        f"{statistics.median(r[0] for r in rows):.3f} by nginx's count (target >= 0.98), "
        f"{statistics.median(r[1] for r in rows):.3f} by Locust's own"
    )
    print(
        f"requests per CPU-second of the load generator (Locust; with loadgate also its CLI process), "
        f"loadgate/plain, median: {statistics.median(r[4] for r in rows):.3f} (what the throughput ratio is "
        "when the generator is CPU-bound and has its core to itself)"
    )
    print(f"samples.parquet: {statistics.median(r[2] for r in rows):.2f} bytes/sample (median; target <= 10)")
    return 0


def same_core(args) -> int:
    """Both generators at once, on one core: the host's drift (this VM's speed varies ±10% from second to
    second and more between runs) hits both alike, and the kernel shares the core between them evenly,
    so their throughputs compare what one request costs each, recorder included (its thread too)."""
    tmp = tempfile.mkdtemp(prefix="loadgate-samecore-")
    os.makedirs(os.path.join(tmp, "thresholds"))
    with open(os.path.join(tmp, "thresholds", f"{REQUIREMENT}.yaml"), "w") as f:
        f.write(THRESHOLDS)
    gen_core, other = sorted(os.sched_getaffinity(0))[:2]
    ratios, per_cpu = [], []
    args.gen_core, args.other_core = gen_core, other
    with Nginx() as ng_plain, Nginx() as ng_lg:
        for ng in (ng_plain, ng_lg):  # nginx (and this bench) on the other core, each side its own nginx to count
            _pin_away(ng, args)
        print(
            f"plain Locust and loadgate run at the same time, both on core {gen_core} (taskset), each against its "
            f"own nginx-light on core {other}; {args.pairs} pairs of {args.seconds} s runs, {args.users} users each, "
            "the side started first alternating; requests/s by nginx's count over the stretch where both are "
            "at full load"
        )
        print(
            f"{'pair':>4} {'plain':>8} {'loadgate':>9} {'ratio':>6}   {'cores of the core: plain':>24} "
            f"{'loadgate':>8} {'requests per CPU-second, ratio':>30}"
        )
        for i in range(args.pairs):
            wait_quiet()
            out = os.path.join(tmp, f"lg{i}")
            plain = [
                "taskset",
                "-c",
                str(gen_core),
                sys.executable,
                "-m",
                "locust",
                "-f",
                LOCUSTFILE,
                "--headless",
                "-u",
                str(args.users),
                "-r",
                str(args.users),
                "-t",
                f"{args.seconds}s",
                "--host",
                ng_plain.url,
                "--only-summary",
            ]
            lg = [
                "taskset",
                "-c",
                str(gen_core),
                sys.executable,
                "-m",
                "loadgate",
                "run",
                "--requirement",
                REQUIREMENT,
                "--scenarios",
                LOCUSTFILE,
                "--thresholds",
                os.path.join(tmp, "thresholds"),
                "--users",
                str(args.users),
                "--spawn-rate",
                str(args.users),
                "--duration",
                f"{args.seconds}s",
                "--host",
                ng_lg.url,
                "--out",
                out,
            ]
            sides = [("plain", plain, ng_plain), ("loadgate", lg, ng_lg)]
            if i % 2:
                sides.reverse()
            counters, procs = {}, {}
            with open(os.path.join(tmp, "samecore.log"), "ab") as log:
                for name, _cmd, ng in sides:
                    counters[name] = Counter(ng).__enter__()
                for name, cmd, _ng in sides:
                    # A session each: with autogroup scheduling (Linux's default) the kernel shares a core
                    # between sessions, and a session whose other processes load the other core (this
                    # bench's, with nginx) would get less of this one.
                    procs[name] = subprocess.Popen(
                        cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
                    )
                    counters[name].track(procs[name].pid)
                for name, _cmd, _ng in sides:
                    procs[name].wait(args.seconds + 120)
            for c in counters.values():
                c.__exit__()
            if procs["plain"].returncode not in (0, 1) or procs["loadgate"].returncode not in (0, 1, 3):
                raise SystemExit(f"a run failed; see {tmp}/samecore.log")
            # Both at full load: from SETTLE_S after the later first request to 1 s before the earlier end.
            first = max(next(t for t, n in c.points if n > c.points[0][1] + 20) for c in counters.values())
            last = min(max(t for t, n in c.points if n < c.points[-1][1] - 20) for c in counters.values())
            start, end = first + SETTLE_S, last - 1.0
            if end - start < 5:
                raise SystemExit(f"the two runs overlapped at full load for only {end - start:.1f} s")
            rate = {
                name: (_interpolate(c.points, end) - _interpolate(c.points, start)) / (end - start)
                for name, c in counters.items()
            }
            cpu = {
                name: (_interpolate(c.cpu, end) - _interpolate(c.cpu, start)) / (end - start)
                for name, c in counters.items()
            }
            ratios.append(rate["loadgate"] / rate["plain"])
            per_cpu.append((rate["loadgate"] / cpu["loadgate"]) / (rate["plain"] / cpu["plain"]))
            shutil.rmtree(out, ignore_errors=True)
            print(
                f"{i + 1:>4} {rate['plain']:8.0f} {rate['loadgate']:9.0f} {ratios[-1]:6.3f}   "
                f"{cpu['plain']:6.3f} {cpu['loadgate']:6.3f} {per_cpu[-1]:6.3f}",
                flush=True,
            )
    shutil.rmtree(tmp, ignore_errors=True)
    q = statistics.quantiles(ratios, n=4) if len(ratios) >= 2 else [ratios[0]] * 3
    print()
    print(
        f"loadgate run / plain Locust throughput on one shared core, median of {len(ratios)} pairs: "
        f"{statistics.median(ratios):.3f} (quartiles {q[0]:.3f}-{q[2]:.3f}; target >= 0.98)"
    )
    print(
        f"requests per CPU-second of each side's processes, loadgate/plain, median: {statistics.median(per_cpu):.3f} "
        "(what a request costs each, whatever share of the core the kernel gave it)"
    )
    return 0


def memory(args) -> int:
    tmp = tempfile.mkdtemp(prefix="loadgate-memory-")
    os.makedirs(os.path.join(tmp, "thresholds"))
    with open(os.path.join(tmp, "thresholds", f"{REQUIREMENT}.yaml"), "w") as f:
        f.write(THRESHOLDS)
    seconds = args.minutes * 60
    out = os.path.join(tmp, "run")
    cmd = [
        sys.executable,
        "-m",
        "loadgate",
        "run",
        "--requirement",
        REQUIREMENT,
        "--scenarios",
        LOCUSTFILE,
        "--thresholds",
        os.path.join(tmp, "thresholds"),
        "--users",
        str(args.users),
        "--spawn-rate",
        str(args.users),
        "--duration",
        f"{seconds}s",
        "--out",
        out,
    ]
    with Nginx() as nginx:
        cmd += ["--host", nginx.url]
        print(
            f"loadgate run for {args.minutes} min against nginx-light on {nginx.url}, {args.users} FastHttpUsers, "
            "no wait; RSS of the Locust process (the recorder's) every 30 s"
        )
        with open(os.path.join(tmp, "run.log"), "wb") as log:
            parent = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
            started, locust, samples = time.time(), None, []
            try:
                with Counter(nginx) as counter:
                    while parent.poll() is None and time.time() - started < seconds + 120:
                        if locust is None or not locust.is_running():  # (a short-lived check comes first)
                            locust = _recorder_process(parent.pid)
                        else:
                            elapsed = time.time() - started
                            if not samples or elapsed - samples[-1][0] >= 30:
                                rss = locust.memory_info().rss
                                served = counter.points[-1][1] - counter.points[0][1] if counter.points else 0
                                samples.append((elapsed, rss, served))
                                print(
                                    f"  {elapsed / 60:5.1f} min  RSS {rss / 2**20:7.1f} MiB  "
                                    f"requests so far {served:,}",
                                    flush=True,
                                )
                        time.sleep(0.2)
                finished = time.time()
            finally:
                if parent.poll() is None:
                    parent.send_signal(signal.SIGINT)
                    parent.wait(60)
    one = min(samples, key=lambda s: abs(s[0] - 60))
    last = samples[-1]
    print()
    print(
        f"Locust process RSS: {one[1] / 2**20:.1f} MiB after {one[0] / 60:.1f} min ({one[2]:,} requests), "
        f"{last[1] / 2**20:.1f} MiB after {last[0] / 60:.1f} min ({last[2]:,} requests): "
        f"{(last[1] - one[1]) / 2**20:+.1f} MiB for {last[2] - one[2]:,} more requests "
        f"({(last[1] - one[1]) / max(1, last[2] - one[2]):.2f} bytes/request)"
    )
    parquet = glob.glob(os.path.join(out, "*", "samples.parquet"))
    if parquet:
        import pyarrow.parquet as pq

        n = pq.ParquetFile(parquet[0]).metadata.num_rows
        print(f"samples.parquet: {n:,} samples, {os.path.getsize(parquet[0]) / n:.2f} bytes/sample")
        with open(os.path.join(os.path.dirname(parquet[0]), "run.json")) as f:
            run = json.load(f)
        # The run's tail: from the end of the load (run.json) to the CLI's exit, i.e. stream -> Parquet,
        # analysis, gate, history, report.
        tail, length = finished - run["end"], run["end"] - run["start"]
        print(
            f"end-of-run work: {tail:.1f} s after the load stopped = {100 * tail / length:.1f}% of the run's "
            f"{length:.0f} s (target <= 5%)"
        )
    if args.keep:
        print(f"kept: {tmp} (run log: run.log; run directory under run/)")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _recorder_process(pid: int) -> psutil.Process | None:
    """The Locust process of a ``loadgate run`` (the one with the recorder's run directory), if it is up."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return None
    for c in children:
        try:
            if any("locust_plugin.py" in a for a in c.cmdline()):
                return c
        except psutil.Error:
            pass
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=5, help="alternated pairs (default 5)")
    p.add_argument("--seconds", type=int, default=20, help="run length of each side (default 20)")
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--minutes", type=float, help="memory mode: one loadgate run of this many minutes")
    p.add_argument("--keep", action="store_true", help="memory mode: keep the run directory and its log")
    p.add_argument(
        "--same-core",
        action="store_true",
        help="run each pair at the same time on one core instead of one after the other",
    )
    p.add_argument(
        "--pin",
        action="store_true",
        help="alternated pairs with each generator alone on one core and nginx and the bench on the "
        "other (taskset), so that the kernel's placement does not vary between runs",
    )
    args = p.parse_args(argv)
    if (args.pin or args.same_core) and (len(os.sched_getaffinity(0)) < 2 or shutil.which("taskset") is None):
        p.error("--pin and --same-core need 2 cores and taskset (util-linux)")
    args.gen_core, args.other_core = (sorted(os.sched_getaffinity(0)) + [0, 0])[:2]
    if args.seconds <= 2 * SETTLE_S + 2:
        p.error(f"--seconds must exceed {2 * SETTLE_S + 2:g}")
    return memory(args) if args.minutes else same_core(args) if args.same_core else pairs(args)


if __name__ == "__main__":
    raise SystemExit(main())
