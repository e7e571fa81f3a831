"""Master ingest: can a Locust master with the recorder take 100,000 samples/s from its workers?

    python bench/master_ingest.py [--workers 2] [--rate 150000] [--duration 10] [--flush 1]
                                  [--users-per-worker 2] [--no-rules] [--profile] [--json]

Starts a real Locust master and K workers on 127.0.0.1 with the same command lines ``loadgate run``
uses (``loadgate.run.launch.locust_cmd`` with the headless driver), loading ``bench/ingest_locustfile.py``: users that fire
synthetic request events at ``--rate`` events/s in all (0: as fast as they can), no HTTP. Two runs:

1. baseline: the same master, workers and rate without the recorder plugin (plain Locust): the
   raw events/s the workers generate, and what a bare master costs;
2. recorder: the full path (hot-path append, batch, IPC+LZ4, Locust's message channel, the
   master's handler and stream write, the live view over the last seconds with the alert rules of
   thresholds/REQ-PERF-001.yaml).

Prints the samples/s the master wrote (rows / time the workers fired), that the rows equal what
the workers fired and what recorder.json says was sent and received, the master's CPU (average and
peak %, of one core), the delay from each batch handed to Locust's channel on a worker to the
master's handler starting on it (its growth over the run says whether the master falls behind), and
the ratio against the baseline. ``--profile`` samples the master with py-spy and prints where its
time goes. Nothing but the master port on 127.0.0.1 carries traffic; every run is bounded in time.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import psutil
import pyarrow.parquet as pq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from loadgate.data import rundir  # noqa: E402
from loadgate.shared.live_rules import rules_from_thresholds  # noqa: E402
from loadgate.run.processes import PLUGIN, free_port, stop_process  # noqa: E402
from loadgate.shared.child import child_env  # noqa: E402
from loadgate.run.options import RunOptions  # noqa: E402
from loadgate.run.drivers.headless import Headless  # noqa: E402
from loadgate.run.launch import child_config, locust_cmd  # noqa: E402
from loadgate.data.samples import finalize_stream  # noqa: E402
from loadgate.gate.thresholds import load_thresholds  # noqa: E402

LOCUSTFILE = os.path.join(ROOT, "bench", "ingest_locustfile.py")
REQUIREMENT = "REQ-PERF-001"
THRESHOLDS = os.path.join(ROOT, "thresholds", f"{REQUIREMENT}.yaml")
USER_CLASS = "Firehose"
TARGET = "http://127.0.0.1:9"  # never contacted: the bench users do no HTTP
GOAL = 100_000  # samples/s the master must ingest
WORKER_EXIT_GRACE_S = 5.0  # workers still running this long after the master are stopped
MACHINE = "_machine"  # CpuSampler key: every process on the machine


def _without_recorder(cmd: list[str], run_time: float) -> list[str]:
    """The same Locust command line with the recorder plugin (and any --loadgate-* option) taken out."""
    out, skip = [], False
    for i, arg in enumerate(cmd):
        if skip:
            skip = False
            continue
        if arg.startswith("--loadgate-"):
            skip = True
            continue
        if i > 0 and cmd[i - 1] == "-f":
            arg = ",".join(f for f in arg.split(",") if f != PLUGIN)
        if i > 0 and cmd[i - 1] == "--run-time":
            arg = f"{run_time:.0f}s"
        out.append(arg)
    return out


class CpuSampler(threading.Thread):
    """Samples user+system CPU seconds of some processes every 0.25 s until stopped."""

    def __init__(self, pids: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.series: dict[str, list[tuple[float, float]]] = {name: [] for name in pids}
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            now = time.time()
            m = psutil.cpu_times()
            self.series.setdefault(MACHINE, []).append((now, m.user + m.nice + m.system + m.irq + m.softirq + m.steal))
            for name, p in self.procs.items():
                try:
                    t = p.cpu_times()
                except psutil.Error:
                    continue
                self.series[name].append((now, t.user + t.system))
            self.halt.wait(0.25)

    def percent(self, name: str, start: float, end: float) -> tuple[float | None, float | None]:
        """(average, peak over any 1 s) % of one core between start and end."""
        pts = [(t, c) for t, c in self.series[name] if start <= t <= end]
        if len(pts) < 2:
            return None, None
        avg = (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0]) * 100
        peak, j = 0.0, 0
        for i in range(len(pts)):
            while pts[i][0] - pts[j][0] > 1.0:
                j += 1
            if pts[i][0] - pts[j][0] >= 0.75:
                peak = max(peak, (pts[i][1] - pts[j][1]) / (pts[i][0] - pts[j][0]) * 100)
        return avg, peak


def run_once(args, recorder: bool, workdir: str, profile: bool = False) -> dict:
    """One master + K workers; returns what was measured."""
    run_dir = os.path.join(workdir, "profiled" if profile else "recorder" if recorder else "baseline")
    os.makedirs(run_dir)
    users = args.workers * args.users_per_worker
    opts = RunOptions(
        requirements=(REQUIREMENT,),
        users=users,
        spawn_rate=float(users),
        duration=args.duration,
        warmup=0.0,
        host=TARGET,
        scenarios=LOCUSTFILE,
        thresholds=THRESHOLDS,
        out=workdir,
        workers=args.workers,
        flush_interval=args.flush,
    )
    rules = [] if args.no_rules else rules_from_thresholds(load_thresholds(THRESHOLDS).values())
    config = child_config(opts, Headless(), run_dir, rules).write(os.path.join(run_dir, rundir.CHILD))
    port = free_port()
    cmds = [locust_cmd(opts, Headless(), [LOCUSTFILE], [USER_CLASS], TARGET, "master", port)]
    cmds += [locust_cmd(opts, Headless(), [LOCUSTFILE], [USER_CLASS], TARGET, "worker", port)] * args.workers
    if not recorder:
        cmds = [_without_recorder(c, args.duration + 2) for c in cmds]
    env = child_env(config=config)
    env.update(
        LOADGATE_BENCH_OUT=run_dir,
        LOADGATE_BENCH_REQUIREMENT=REQUIREMENT,
        LOADGATE_BENCH_RATE_PER_USER=str(args.rate / users if args.rate else 0),
    )
    log = open(os.path.join(run_dir, "locust.log"), "wb")
    procs: list[subprocess.Popen] = []
    spy = None
    try:
        for cmd in cmds:
            procs.append(
                subprocess.Popen(
                    cmd,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    start_new_session=True,
                    cwd=run_dir,
                )
            )
        sampler = CpuSampler({"master": procs[0].pid, **{f"worker{i}": p.pid for i, p in enumerate(procs[1:])}})
        sampler.start()
        if profile:
            spy_out = os.path.join(run_dir, "master.pyspy.txt")
            spy = subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "--nonblocking",
                    "-r",
                    "100",
                    "-f",
                    "raw",
                    "-o",
                    spy_out,
                    "-p",
                    str(procs[0].pid),
                    "-d",
                    str(int(args.duration + 8)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + args.duration + 90
        while procs[0].poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        master_done = time.time()
        worker_exit_s = []  # how long each worker took to exit after the master did (None: it didn't)
        for p in procs[1:]:
            try:
                p.wait(max(0.1, master_done + WORKER_EXIT_GRACE_S - time.time()))
                worker_exit_s.append(round(time.time() - master_done, 2))
            except subprocess.TimeoutExpired:
                worker_exit_s.append(None)
        sampler.halt.set()
        sampler.join()
    finally:
        for p in procs:
            stop_process(p, timeout=5)
        if spy is not None:
            try:
                spy.wait(15)
            except subprocess.TimeoutExpired:
                spy.kill()
        log.close()
    out = _measure(run_dir, recorder, sampler, procs[0].returncode, args)
    out["worker_exit_after_master_s"] = worker_exit_s
    return out


def _measure(run_dir: str, recorder: bool, sampler: CpuSampler, master_rc, args) -> dict:
    dumps = [_read_json(p) for p in sorted(glob.glob(os.path.join(run_dir, "bench-*.json")))]
    workers = [d for d in dumps if d["role"] == "worker"]
    master = next((d for d in dumps if d["role"] == "master"), None)
    fired = sum(d["fired"] for d in workers)
    first = min((d["first"] for d in workers if d["first"]), default=None)
    last = max((d["last"] for d in workers if d["last"]), default=None)
    span = (last - first) if first and last else None
    out = {
        "run": "recorder" if recorder else "baseline",
        "master_exit_code": master_rc,
        "workers_reporting": len(workers),
        "fired": fired,
        "fire_span_s": span,
        "generated_per_s": fired / span if span else None,
    }
    if first and last:
        window = (first + 1.0, last)  # skip the first second: start-up, spawning
        out["master_cpu_avg"], out["master_cpu_peak"] = sampler.percent("master", *window)
        out["worker_cpu_avg"] = [sampler.percent(n, *window)[0] for n in sampler.series if n.startswith("worker")]
        ours = sum(sampler.percent(n, *window)[0] or 0 for n in sampler.series if n != MACHINE)
        out["other_cpu_avg"] = max(0.0, (sampler.percent(MACHINE, *window)[0] or 0) - ours)
    if not recorder:
        return out
    stream = os.path.join(run_dir, rundir.STREAM)
    parquet = os.path.join(run_dir, rundir.SAMPLES)
    rows = finalize_stream(stream, parquet) if os.path.exists(stream) else 0
    out["rows"] = pq.ParquetFile(parquet).metadata.num_rows if rows else 0
    out["ingested_per_s"] = out["rows"] / span if span else None
    meta_path = os.path.join(run_dir, rundir.RECORDER_META)
    meta = _read_json(meta_path) if os.path.exists(meta_path) else {}
    counts = meta.get("workers") or {}
    out["recorder_sent"] = sum((w or {}).get("sent") or 0 for w in counts.values())
    out["recorder_received"] = sum((w or {}).get("received") or 0 for w in counts.values())
    out["locust_requests"] = meta.get("locust_requests")
    sends = {(w, s): (n, t, size) for d in workers for w, s, n, t, size in d["sends"]}
    arrivals = {(w, s): (n, t, h) for w, s, n, t, h in (master or {}).get("arrivals", [])}
    out["batches_sent"], out["batches_arrived"] = len(sends), len(arrivals)
    out["batches_never_arrived"] = sorted(f"{w}#{s}" for w, s in set(sends) - set(arrivals))[:5]
    lags = sorted((sends[k][1], arrivals[k][1] - sends[k][1]) for k in sends if k in arrivals)
    if lags:
        values = sorted(lag for _, lag in lags)
        third = max(1, len(lags) // 3)
        out["lag_ms"] = {
            "median": _pct(values, 50) * 1e3,
            "p99": _pct(values, 99) * 1e3,
            "max": values[-1] * 1e3,
            "first_third_median": _pct(sorted(v for _, v in lags[:third]), 50) * 1e3,
            "last_third_median": _pct(sorted(v for _, v in lags[-third:]), 50) * 1e3,
            "last_batch": lags[-1][1] * 1e3,
            "growth_ms_per_s": _slope(lags) * 1e3,
        }
        handled = sum(h for _, _, h in arrivals.values())
        out["handler_s"] = handled
        out["handler_capacity_per_s"] = sum(n for n, _, _ in arrivals.values()) / handled if handled else None
        out["batch_rows_median"] = _pct(sorted(n for n, _, _ in sends.values()), 50)
        out["batch_kib_median"] = _pct(sorted(size for _, _, size in sends.values()), 50) / 1024
    evals = [e for _, e in (master or {}).get("evaluations", [])]
    if evals and span:
        out["live_view_share"] = sum(evals) / span
        out["live_view_max_ms"] = max(evals) * 1e3
    flushes = [f for d in workers for f in d["flushes"]]
    if flushes and span:
        out["worker_flush_share"] = sum(flushes) / (span * len(workers))
        out["worker_flush_max_ms"] = max(flushes) * 1e3
    spy = os.path.join(run_dir, "master.pyspy.txt")
    if os.path.exists(spy):
        out["profile"] = _profile(spy)
    return out


def _read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x: how fast the delay grows (s per s of run)."""
    if len(points) < 3:
        return 0.0
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0


def _pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(round(q / 100 * (len(sorted_values) - 1))))]


def _profile(path: str, top: int = 14) -> list[tuple[str, float]]:
    """Inclusive share of the master's busy samples per function, from py-spy's collapsed stacks."""
    inclusive: collections.Counter = collections.Counter()
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            if "_find_and_load" in stack or "_get_module_details" in stack:
                continue  # start-up imports, not ingest
            total += n
            seen = set()
            for frame in stack.split(";"):
                name = frame.split(" (")[0]
                where = frame.split(" (")[1].rstrip(")") if " (" in frame else ""
                key = f"{name} ({os.path.basename(where.split(':')[0])})"
                if key.endswith("(ingest_locustfile.py)"):
                    continue  # the bench's own timing wrappers
                if key not in seen:
                    seen.add(key)
                    inclusive[key] += n
    skip = ("<module>", "main", "run", "_run", "spawn", "wait", "start")
    rows = [(k, v / total) for k, v in inclusive.most_common() if k.split(" (")[0] not in (*skip, "")]
    return [("(busy samples)", float(total))] + rows[:top]


def _fmt(v, spec=",.0f", unit="") -> str:
    return "n/a" if v is None else f"{v:{spec}}{unit}"


def report(base: dict, rec: dict, args) -> str:
    lines = [
        f"master ingest bench: {args.workers} workers x {args.users_per_worker} users, "
        f"target {_fmt(args.rate) if args.rate else 'flat out'} events/s, {args.duration:g}s at full load, "
        f"flush every {args.flush:g}s, live-view rules: {'none' if args.no_rules else 'REQ-PERF-001'}"
    ]
    lines.append(
        f"  other processes on this {psutil.cpu_count()}-core machine used {_fmt(base.get('other_cpu_avg'), '.0f', '%')} "
        f"(baseline) and {_fmt(rec.get('other_cpu_avg'), '.0f', '%')} (recorder) of a core meanwhile"
    )
    lines.append(
        f"  baseline (no recorder): workers generated {_fmt(base['generated_per_s'])} events/s "
        f"({base['fired']:,} in {_fmt(base['fire_span_s'], '.1f', 's')}); "
        f"master CPU {_fmt(base.get('master_cpu_avg'), '.1f', '%')} of a core; worker CPU "
        + ", ".join(_fmt(c, ".0f", "%") for c in base.get("worker_cpu_avg", []))
    )
    lines.append(
        f"  recorder: workers fired {_fmt(rec['generated_per_s'])} events/s ({rec['fired']:,}); "
        f"master wrote {rec['rows']:,} rows = {_fmt(rec['ingested_per_s'])} samples/s; worker CPU "
        + ", ".join(_fmt(c, ".0f", "%") for c in rec.get("worker_cpu_avg", []))
    )
    ok_counts = rec["rows"] == rec["fired"] == rec["recorder_sent"] == rec["recorder_received"]
    lines.append(
        f"  counts: fired {rec['fired']:,} | recorder.json sent {rec['recorder_sent']:,} received "
        f"{rec['recorder_received']:,} | rows {rec['rows']:,} | Locust counted {_fmt(rec['locust_requests'])} "
        f"-> {'all equal, no sample lost' if ok_counts else 'MISMATCH'}"
    )
    lines.append(
        f"  master CPU: {_fmt(rec.get('master_cpu_avg'), '.1f', '%')} of one core on average, peak "
        f"{_fmt(rec.get('master_cpu_peak'), '.0f', '%')} (baseline master "
        f"{_fmt(base.get('master_cpu_avg'), '.1f', '%')}); its samples handler was busy "
        f"{_fmt(rec.get('handler_s'), '.2f', 's')}, i.e. it alone could take "
        f"{_fmt(rec.get('handler_capacity_per_s'))} samples/s"
    )
    lag = rec.get("lag_ms")
    behind = True
    if lag:
        # A master that can't keep up queues batches: the delay grows through the run. Falling behind:
        # over the run it would grow by more than one flush interval, or the last batch waits that long.
        behind = lag["growth_ms_per_s"] * args.duration > args.flush * 1e3 or lag["last_batch"] > args.flush * 1e3
        lines.append(
            f"  batch delay, worker send -> master handler: median {lag['median']:.1f} ms, p99 {lag['p99']:.1f} ms, "
            f"max {lag['max']:.1f} ms; median first third {lag['first_third_median']:.1f} ms, last third "
            f"{lag['last_third_median']:.1f} ms; trend {lag['growth_ms_per_s']:+.1f} ms per s; "
            f"last batch {lag['last_batch']:.1f} ms -> "
            f"{'FALLING BEHIND' if behind else 'keeping up'}"
        )
    lines.append(
        f"  batches: {rec['batches_sent']} sent, {rec['batches_arrived']} arrived"
        + (f", never arrived: {rec['batches_never_arrived']}" if rec["batches_never_arrived"] else "")
        + f"; median batch {_fmt(rec.get('batch_rows_median'))} rows, {_fmt(rec.get('batch_kib_median'), '.0f')} KiB; "
        f"a worker's flush took {_fmt((rec.get('worker_flush_share') or 0) * 100, '.1f', '%')} of the time, "
        f"longest {_fmt(rec.get('worker_flush_max_ms'), '.0f', ' ms')} (wall time; the users go on meanwhile: "
        "only the buffer copy runs on their loop, the batch is built on a native thread)"
    )
    late = [s for s in rec.get("worker_exit_after_master_s", []) if s is None]
    if late:
        lines.append(
            f"  {len(late)} worker(s) still running {WORKER_EXIT_GRACE_S:g}s after the master exited "
            "(no quit message reached them); stopped by the bench"
        )
    ratio = (
        rec["ingested_per_s"] / base["generated_per_s"] if base["generated_per_s"] and rec["ingested_per_s"] else None
    )
    if rec.get("live_view_share") is not None:
        lines.append(
            f"  master live view (window metrics + alert rules, each second): "
            f"{rec['live_view_share'] * 100:.1f}% of the run, longest {rec['live_view_max_ms']:.0f} ms "
            "(the master's event loop, samples handler included, waits meanwhile)"
        )
    kept_up = ok_counts and not behind
    if not kept_up:
        goal = "NOT MET: the master lost samples or fell behind"
    elif (rec["ingested_per_s"] or 0) >= GOAL:
        goal = "MET"
    else:
        goal = (
            f"NOT REACHED: the workers generated only {_fmt(rec['generated_per_s'])}/s and the master kept up "
            "with all of it; rerun on a quieter machine, with more --workers, or --rate 0"
        )
    lines.append(
        f"  ratio ingested / baseline generated: {_fmt(ratio, '.3f')}; master kept up: "
        f"{'yes' if kept_up else 'NO'}; goal {GOAL:,} samples/s: {goal}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--users-per-worker", type=int, default=2)
    p.add_argument("--rate", type=float, default=150_000, help="events/s in all; 0: flat out (default 150000)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds at full load (default 10)")
    p.add_argument("--flush", type=float, default=1.0, help="recorder flush interval, s (default 1)")
    p.add_argument("--no-rules", action="store_true", help="live view without alert rules")
    p.add_argument("--profile", action="store_true", help="sample the master with py-spy")
    p.add_argument("--json", action="store_true", help="print the measurements as JSON too")
    p.add_argument("--keep", action="store_true", help="keep the run directories (printed)")
    args = p.parse_args(argv)
    if args.profile and shutil.which("py-spy") is None:
        p.error("--profile needs py-spy: pip install py-spy")
    workdir = tempfile.mkdtemp(prefix="loadgate-ingest-")
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        base = run_once(args, recorder=False, workdir=workdir)
        rec = run_once(args, recorder=True, workdir=workdir)
        prof = run_once(args, recorder=True, workdir=workdir, profile=True) if args.profile else None
        print(report(base, rec, args))
        if prof and prof.get("profile"):
            total = prof["profile"][0][1]
            print(
                f"  master profile (a third run under py-spy, which perturbs it: {total:.0f} busy samples at 100 Hz, "
                "inclusive share of busy time):"
            )
            print("\n".join(f"    {share * 100:5.1f}%  {name}" for name, share in prof["profile"][1:]))
        if args.json:
            print(json.dumps({"baseline": base, "recorder": rec, "profiled": prof}, indent=1))
    finally:
        signal.signal(signal.SIGINT, old)
        if args.keep:
            print(f"run directories kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
