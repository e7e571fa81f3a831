"""``loadgate analyze`` on soak-sized samples files: time per sample and peak memory, against DuckDB.

    python bench/soak_scale.py [--sizes 10M,200M] [--duckdb-sizes 10M] [--rate 10000] [--dir /tmp/loadgate-bench]
    python bench/soak_scale.py --sizes 10M,1G --duckdb-sizes 10M      # the 1B run: ~9.5 GB of disk, late
    python bench/soak_scale.py --finalize 5M,20M                       # the end-of-run stream -> Parquet
    python bench/soak_scale.py --paced --sizes 10M,200M --duckdb-sizes ''   # paced users: + latency from the schedule
    python bench/soak_scale.py --stall --sizes 10M,200M --duckdb-sizes ''   # a stall for the stall search to find
    python bench/soak_scale.py --compare --sizes 10M,200M --duckdb-sizes ''  # loadgate compare of two such runs

For each size it writes (once, in bounded memory: one row group of 1M rows at a time) a synthetic
``samples.parquet`` the way ``loadgate run`` lays one out — row groups of 1M rows in time order, the
same Parquet options — with the 7 requests, latency mixture, slow tail and ~1% errors of
``bench/gen_samples.py``, at ``--rate`` requests/s (10k/s: 1B samples are a 28-hour soak, 100k seconds).
It is simpler than gen_samples (arrivals in order, no completion reordering) so that 1B rows take
minutes, not hours, to write.

Then, whole process against whole process (``wait4`` rusage of each child alone), it runs
``python -m loadgate analyze FILE --json`` (exact percentiles and CIs per request, per requirement and
overall, and the per-second series, overall and per requirement) and, for ``--duckdb-sizes``, DuckDB's
``quantile_cont`` (numpy's linear method) over the same file for the same summary without the CIs:
per request, per requirement (comma-joined IDs split) and overall count, failures, min, mean,
p50/p90/p95/p99/p99.9, max, and the per-second count, failures, p50/p95/p99 and peak users. It prints
wall and CPU time, peak RSS, ns per sample, and for every size the time against the smallest size's
linear extrapolation (the target: ≤ 1.5x) and RSS against 4 GiB; it checks that loadgate's overall
percentiles equal DuckDB's. Files are deleted afterwards unless ``--keep`` (disk: ~9.5 bytes a sample).

``--compare``: also a second file of each size (another seed), and ``python -m loadgate compare A B
--json`` of two run directories holding them (samples only: the whole file is the window): wall time,
CPU, peak RSS and ns per sample of both runs.

DuckDB is a bench-only dependency (``pip install -e '.[bench]'``), never a runtime one.
Timings are of a shared 2-core machine: read the ratios measured in the same run, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import analyze_speed  # noqa: E402
import gen_samples  # noqa: E402

from loadgate.data.samples import _PARQUET_OPTIONS, DICTIONARY_TYPE, ROW_GROUP_ROWS, SCHEMA, STRING_COLUMNS  # noqa: E402

GiB = 1 << 30
DUCKDB_SUMMARY = """
import json, math, sys
import duckdb

path = sys.argv[1]
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
lo, hi = con.execute("SELECT min(timestamp), max(timestamp) FROM read_parquet(?)", [path]).fetchone()
n_sec = max(1, math.ceil(hi - lo))  # as loadgate counts the seconds of its window
rows = f"SELECT * FROM read_parquet('{path}') WHERE timestamp BETWEEN {lo!r} AND {hi!r}"
stats = ("count(*) AS n, count(*) FILTER (WHERE NOT success) AS failures, min(response_time_ms) AS min, "
         "avg(response_time_ms) AS mean, quantile_cont(response_time_ms, [0.5, 0.9, 0.95, 0.99, 0.999]) AS pct, "
         "max(response_time_ms) AS max")
out = {
    "requests": con.execute(f"SELECT request_type, name, requirement, {stats} FROM ({rows}) GROUP BY ALL").fetchall(),
    "requirements": con.execute(f"SELECT trim(r) AS rid, {stats} FROM ({rows}), "
                                "unnest(string_split(requirement, ',')) AS t(r) GROUP BY rid").fetchall(),
    "overall": con.execute(f"SELECT {stats} FROM ({rows})").fetchall(),
    "series": con.execute(f"SELECT least(floor(timestamp - {lo!r}), {n_sec - 1}) AS s, count(*), "
                          "count(*) FILTER (WHERE NOT success), quantile_cont(response_time_ms, [0.5, 0.95, 0.99]), "
                          f"max(users) FROM ({rows}) GROUP BY s ORDER BY s").fetchall(),
    "series_by_requirement": con.execute(
        f"SELECT trim(r) AS rid, least(floor(timestamp - {lo!r}), {n_sec - 1}) AS s, count(*), "
        "count(*) FILTER (WHERE NOT success), quantile_cont(response_time_ms, [0.5, 0.95, 0.99]), max(users) "
        f"FROM ({rows}), unnest(string_split(requirement, ',')) AS t(r) GROUP BY ALL ORDER BY rid, s").fetchall(),
}
json.dump({"overall": out["overall"][0], "seconds": len(out["series"])}, sys.stdout, default=str)
"""


PACED_USERS = 300
STALL_SECONDS = 4.0
STALL_RATE = 0.002  # paced: the share of iterations that start late, by an exponential 300 ms on average


def write_samples(path: str, n: int, rate: float, seed: int = 1, paced: bool = False, stall: bool = False) -> float:
    """A synthetic samples.parquet of ``n`` rows, one row group of 1M rows in memory at a time; seconds taken.

    ``paced``: the rows come from 300 users paced at 300/rate s, one request an iteration, with the
    schedule columns ``loadgate run`` records (``user``, ``intended_ms``, ``omitted``, ``period_ms``): a
    share of iterations start late and skip the slots that passed, so the intended latency has omitted
    slots to count.

    ``stall``: the target stalls for 4 s halfway through: every request sent in those seconds returns
    when they end, so every user is blocked at once (a stall the analysis finds and then reads the
    blocked users' request times around)."""
    started = time.perf_counter()
    reqs, errors = gen_samples.REQUESTS, gen_samples.ERRORS
    rng = np.random.default_rng(seed)
    weights = np.array([r[2] for r in reqs], float)
    cum_weights = np.cumsum(weights / weights.sum())[:-1]
    err_p = np.array([e[2] for e in errors])
    err_p /= err_p.sum()
    medians, sigmas = np.array([r[3] for r in reqs]), np.array([r[4] for r in reqs])
    size_mean, size_spread = np.array([r[5][0] for r in reqs]), np.array([r[5][1] for r in reqs])
    status_ok = np.array([201 if r[0] == "POST" else 200 for r in reqs], np.int32)
    err_status = np.array([e[1] for e in errors], np.int32)
    dicts = {
        "request_type": pa.array([r[0] for r in reqs]),
        "name": pa.array([r[1] for r in reqs]),
        "requirement": pa.array([r[6] for r in reqs]),
        "exception": pa.array([e[0].format(name=r[1]) for e in errors for r in reqs]),
    }
    dicts["worker"] = pa.array(["local"])
    # Strings as Arrow dictionaries: the Parquet pages are the same dictionary pages loadgate's writer
    # makes (only the stored Arrow schema says dictionary), without a cast to plain strings and back.
    schema = pa.schema(
        [pa.field(f.name, DICTIONARY_TYPE) if f.name in STRING_COLUMNS else f for f in SCHEMA], metadata=SCHEMA.metadata
    )
    clock, done = 0.0, 0
    tmp = path + ".tmp"
    # A row group is compressed and written on a thread while the next one is drawn.
    with pq.ParquetWriter(tmp, schema, **_PARQUET_OPTIONS) as writer, ThreadPoolExecutor(1) as pool:
        pending = None
        while done < n:
            m = min(ROW_GROUP_ROWS, n - done)
            t = clock + np.cumsum(rng.exponential(1.0 / rate, m))
            clock = float(t[-1])
            users = np.minimum(300, np.floor(t * gen_samples.SPAWN_RATE) + 1).astype(np.int32)
            req = np.searchsorted(cum_weights, rng.random(m), side="right")  # rng.choice(p=...): 3x slower
            drift = 1.0 + 0.15 * np.sin(2 * math.pi * t / 1800.0)
            rt = medians[req] * drift * np.exp(sigmas[req] * rng.standard_normal(m))
            tail = rng.random(m) < gen_samples.TAIL_RATE
            rt[tail] *= np.minimum(3.0 * (1.0 + rng.pareto(1.8, int(tail.sum()))), 30.0)
            failed = rng.random(m) < gen_samples.ERROR_RATE
            kind = np.full(m, -1)
            kind[failed] = rng.choice(len(errors), int(failed.sum()), p=err_p)
            rt[kind == 3] = 10_000.0 + rng.exponential(3.0, int((kind == 3).sum()))
            if stall:
                start = n / rate / 2
                held = (t >= start) & (t < start + STALL_SECONDS)
                rt[held] = np.maximum(rt[held], (start + STALL_SECONDS - t[held]) * 1000.0)
            rt = gen_samples._as_locust_measures(t, rt)
            size = np.maximum(0, size_mean[req] + size_spread[req] * rng.standard_normal(m)).astype(np.int64)
            status = np.where(failed, err_status[np.maximum(kind, 0)], status_ok[req]).astype(np.int32)
            exc = np.where(failed, np.maximum(kind, 0) * len(reqs) + req, -1)
            codes = lambda name, c: pa.DictionaryArray.from_arrays(  # noqa: E731
                pa.array(c.astype(np.int32), mask=c < 0), dicts[name]
            )
            arrays = [
                pa.array(gen_samples.T0 + t),
                codes("request_type", req),
                codes("name", req),
                pa.array(rt),
                pa.array(size),
                pa.array(status),
                pa.array(~failed),
                codes("exception", exc),
                codes("requirement", req),
                codes("worker", np.zeros(m, np.int32)),
                pa.array(users),
            ]
            arrays.append(pa.array(((done + np.arange(m)) % PACED_USERS).astype(np.int32)))  # user, as recorded
            if paced:
                period = PACED_USERS / rate * 1000.0
                late = np.where(rng.random(m) < STALL_RATE, rng.exponential(300.0, m), 0.0)
                arrays += [
                    pa.array(rt + late),
                    pa.array((late // period).astype(np.int32)),
                    pa.array(np.full(m, period)),
                ]
            else:
                arrays += [pa.nulls(m, f.type) for f in list(SCHEMA)[len(arrays) :]]
            table = pa.table(arrays, schema=schema)
            if pending is not None:
                pending.result()
            pending = pool.submit(writer.write_table, table, row_group_size=ROW_GROUP_ROWS)
            done += m
        if pending is not None:
            pending.result()
    os.replace(tmp, path)
    return time.perf_counter() - started


def finalize(args: argparse.Namespace) -> int:
    """``finalize_stream`` (the recorder's LZ4 Arrow stream -> samples.parquet) on streams of each size."""
    os.makedirs(args.dir, exist_ok=True)
    for n in [gen_samples.parse_count(s) for s in args.finalize.split(",")]:
        stream = os.path.join(args.dir, f"finalize-{gen_samples.label(n)}.arrows")
        out = os.path.join(args.dir, f"finalize-{gen_samples.label(n)}.parquet")
        try:
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import sys; sys.path.insert(0, sys.argv[1]); import gen_samples; "
                    "gen_samples.write_stream(sys.argv[2], int(sys.argv[3]), rate=10000.0, users=300, seed=1)",
                    HERE,
                    stream,
                    str(n),
                ],
                check=True,
            )
            code = (
                "import sys; from loadgate.data.samples import finalize_stream; "
                "print(finalize_stream(sys.argv[1], sys.argv[2]))"
            )
            r = analyze_speed.run_child(
                [sys.executable, "-c", code, stream, out], os.devnull, int(args.rss_limit * GiB)
            )
            print(
                f"{gen_samples.label(n):>5} finalize_stream: {analyze_speed.fmt(r)}  {r['wall'] / n * 1e9:6.1f} ns/sample  "
                f"stream {os.path.getsize(stream) / n:.1f} B/sample -> Parquet {os.path.getsize(out) / n:.2f} B/sample",
                flush=True,
            )
        finally:
            for path in (stream, out):
                if os.path.exists(path):
                    os.unlink(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10M,200M", help="samples per file, smallest first (default 10M,200M)")
    p.add_argument("--duckdb-sizes", default="10M", help="sizes DuckDB runs on too (default 10M; '' for none)")
    p.add_argument("--rate", type=float, default=10_000.0, help="requests/s of the synthetic soak (default 10000)")
    p.add_argument("--dir", default=gen_samples.DEFAULT_DIR)
    p.add_argument("--keep", action="store_true", help="keep the generated files")
    p.add_argument("--rss-limit", type=float, default=12.0, help="GiB; a child past it is killed (default 12)")
    p.add_argument(
        "--finalize",
        metavar="SIZES",
        help="instead: time the end-of-run conversion of a recorder "
        "stream of each size (e.g. 5M,20M) to samples.parquet, in a child: wall, CPU, peak RSS",
    )
    p.add_argument(
        "--paced",
        action="store_true",
        help="the samples of paced users, with their schedule "
        "columns and omitted slots: analyze also computes the latency from the schedule",
    )
    p.add_argument(
        "--stall",
        action="store_true",
        help="a 4 s stall of the target halfway through each file: "
        "the stall search finds it and reads the blocked users' request times around it",
    )
    p.add_argument("--compare", action="store_true", help="also time 'loadgate compare' of two runs of each size")
    p.add_argument("--write", nargs=3, metavar=("PATH", "N", "RATE"), help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.write:
        write_samples(
            args.write[0], int(args.write[1]), float(args.write[2]), seed=args.seed, paced=args.paced, stall=args.stall
        )
        return 0
    if args.finalize:
        return finalize(args)
    sizes = [gen_samples.parse_count(s) for s in args.sizes.split(",")]
    duck = {gen_samples.parse_count(s) for s in args.duckdb_sizes.split(",") if s}
    os.makedirs(args.dir, exist_ok=True)
    limit = int(args.rss_limit * GiB)
    base = None
    for n in sizes:
        kind = ("-paced" if args.paced else "") + ("-stall" if args.stall else "")
        path = os.path.join(args.dir, f"soak-{gen_samples.label(n)}-r{args.rate:g}{kind}.parquet")
        second = path.replace(".parquet", "-seed2.parquet")
        for file, seed in [(path, 1), *([(second, 2)] if args.compare else [])]:
            if not os.path.exists(file):
                _write(file, n, args, seed)
        try:
            if args.compare:
                compare(path, second, n, args, limit)
            if n <= 100_000_000:
                analyze_speed.warm(path)
            out = os.path.join(args.dir, f"soak-{gen_samples.label(n)}.loadgate.json")
            r = analyze_speed.run_child([sys.executable, "-m", "loadgate", "analyze", path, "--json"], out, limit)
            ns = r["wall"] / n * 1e9
            base = base or (n, r["wall"])
            linear = base[1] * n / base[0]
            print(
                f"{gen_samples.label(n):>5} loadgate analyze: {analyze_speed.fmt(r)}  {ns:6.1f} ns/sample  "
                f"time/linear-from-{gen_samples.label(base[0])} {r['wall'] / linear:4.2f} (target <= 1.5)  "
                f"RSS {'<=' if r['rss'] <= 4 * GiB else '>'} 4 GiB",
                flush=True,
            )
            mine = json.load(open(out))
            if n in duck:
                dout = os.path.join(args.dir, f"soak-{gen_samples.label(n)}.duckdb.json")
                d = analyze_speed.run_child([sys.executable, "-c", DUCKDB_SUMMARY, path], dout, limit)
                print(
                    f"{gen_samples.label(n):>5} duckdb          : {analyze_speed.fmt(d)}  {d['wall'] / n * 1e9:6.1f} "
                    f"ns/sample  loadgate/duckdb: time {r['wall'] / d['wall']:.2f}, cpu {r['cpu'] / d['cpu']:.2f}, "
                    f"RSS {r['rss'] / d['rss']:.2f}",
                    flush=True,
                )
                theirs = json.load(open(dout))["overall"]
                t = mine["overall"]["response_time_ms"]
                ours = [t["p50"], t["p90"], t["p95"], t["p99"], t["p99.9"]]
                close = all(math.isclose(a, b, rel_tol=1e-12) for a, b in zip(ours, theirs[4]))
                same = (mine["overall"]["requests"], mine["overall"]["failures"]) == (theirs[0], theirs[1])
                print(
                    f"{gen_samples.label(n):>5} overall counts equal: {same}; percentiles equal to 1e-12: {close}",
                    flush=True,
                )
        finally:
            if not args.keep:
                for file in (path, second):
                    if os.path.exists(file):
                        os.unlink(file)
    return 0


def _write(path: str, n: int, args: argparse.Namespace, seed: int) -> None:
    # In a child: a parent grown by writing would count in its later children's peak RSS (fork
    # copies its page tables; wait4's maxrss sees the child before it execs).
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            __file__,
            "--write",
            path,
            str(n),
            str(args.rate),
            "--seed",
            str(seed),
            *(["--paced"] if args.paced else []),
            *(["--stall"] if args.stall else []),
        ],
        check=True,
    )
    took = time.perf_counter() - started
    print(
        f"soak_scale: wrote {path}: {n:,} samples, {os.path.getsize(path) / n:.2f} bytes/sample ({took:.0f} s)",
        flush=True,
    )


def compare(first: str, second: str, n: int, args: argparse.Namespace, limit: int) -> None:
    """``loadgate compare`` of two run directories that hold ``first`` and ``second`` as their samples."""
    dirs = []
    for name, file in (("a", first), ("b", second)):
        d = os.path.join(args.dir, f"compare-{gen_samples.label(n)}-{name}")
        os.makedirs(d, exist_ok=True)
        link = os.path.join(d, "samples.parquet")
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(os.path.abspath(file), link)
        dirs.append(d)
    out = os.path.join(args.dir, f"compare-{gen_samples.label(n)}.json")
    try:
        r = analyze_speed.run_child([sys.executable, "-m", "loadgate", "compare", *dirs, "--json"], out, limit)
        doc = json.load(open(out))
        print(
            f"{gen_samples.label(n):>5} loadgate compare (2 x {gen_samples.label(n)}): {analyze_speed.fmt(r)}  "
            f"{r['wall'] / (2 * n) * 1e9:6.1f} ns/sample  RSS {'<=' if r['rss'] <= 4 * GiB else '>'} 4 GiB; "
            f"{len(doc['requests'])} rows, verdict {doc['verdict']}",
            flush=True,
        )
    finally:
        for d in dirs:
            os.unlink(os.path.join(d, "samples.parquet"))
            os.rmdir(d)


if __name__ == "__main__":
    sys.exit(main())
