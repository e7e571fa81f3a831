"""``loadgate analyze`` against the plain pandas way, whole process against whole process.

    python bench/analyze_speed.py [--samples 10M] [--reps 3] [--dir /tmp/loadgate-bench]
    python bench/analyze_speed.py --scale [--sizes 1M,10M,100M] [--reps 3]

Default mode: on a generated samples file (``bench/gen_samples.py``: 7 request names, a latency mixture
with a slow tail, ~1% errors), runs alternately

- ``python -m loadgate analyze FILE --json`` (exact percentiles, CIs, per-second series; output to a file)
- the plain pandas way, a script of its own (:data:`PANDAS_PLAIN`): ``pd.read_parquet`` +
  ``groupby(["request_type", "name"]).quantile([.5, .9, .95, .99, .999])`` + error rates + a per-second
  p95 series, output to a file
- the same plain script with ``NUMPY_MADVISE_HUGEPAGE=0``: on a kernel whose transparent huge pages
  are in 'madvise' mode, numpy asks for huge pages, and the plain way then often spends seconds in
  the kernel compacting memory (its wall time here: 3-4 s without, 5-8 s with). ``loadgate analyze``
  turns that advice off for itself, so this is the fair comparison; the ratio against it is printed too
- the same script reading only the columns it needs, also without huge pages (``--no-tuned`` leaves
  it out): pandas as a careful user would write it, for the record; the target is against the plain way

and prints the median wall time, CPU time and peak RSS (``wait4`` rusage of each child alone) of each,
and the ratios loadgate/pandas. It then checks loadgate's per-request percentiles: identical to
``numpy.percentile`` on the same rows, and within 1e-9 of pandas' (whose interpolation formula differs
from numpy's in the last bits).

``--scale``: ``loadgate analyze`` alone on 1M, 10M and 100M samples (100M needs ~1 GB in ``--dir``
and a few minutes to generate once): wall time, CPU time, peak RSS, time per sample, a least-squares
fit ``t = a + b·N`` (fixed start-up cost a, cost per sample b) and whether the peak stays within 16 GiB.
A child whose RSS passes ``--rss-limit`` (default 20 GiB) is killed: the machine is shared.

Also prints the cost of importing pandas alone, which ``loadgate analyze`` does not pay.
Timings are of a shared 2-core machine: run it on a quiet one, and read the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import gen_samples  # noqa: E402

GiB = 1 << 30
PANDAS_PLAIN = """
import json, sys
import pandas as pd

df = pd.read_parquet(sys.argv[1]{columns})
g = df.groupby(["request_type", "name"])
pct = g["response_time_ms"].quantile([.5, .9, .95, .99, .999])
errors = 1 - g["success"].mean()                      # error rate per request
second = (df["timestamp"] - df["timestamp"].min()) // 1
p95 = df.groupby(second)["response_time_ms"].quantile(.95)  # per-second p95 series
json.dump({{"pct": {{f"{{t}} {{n}}": {{str(q): v for q, v in s.items()}} for (t, n), s in pct.groupby(level=[0, 1])
                   for s in [s.droplevel([0, 1])]}},
           "error_rate": {{f"{{t}} {{n}}": v for (t, n), v in errors.items()}},
           "p95_series": p95.tolist()}}, sys.stdout)
"""
COLUMNS = '["timestamp", "request_type", "name", "response_time_ms", "success"]'


def run_child(cmd: list[str], out_path: str, rss_limit: int, env: dict[str, str] | None = None) -> dict:
    """Run ``cmd`` with stdout to ``out_path``; wall time, CPU time and peak RSS of that child alone."""
    with open(out_path, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.PIPE, cwd=ROOT, env=None if env is None else {**os.environ, **env}
        )
        killed = []

        def watch() -> None:  # the machine is shared: never let a child take all of it
            try:
                p = psutil.Process(proc.pid)
                while proc.returncode is None:
                    if p.memory_info().rss > rss_limit:
                        killed.append(p.memory_info().rss)
                        proc.kill()
                        return
                    time.sleep(0.2)
            except psutil.Error:
                return

        threading.Thread(target=watch, daemon=True).start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
    if killed:
        raise SystemExit(f"killed {cmd[:4]}…: RSS {killed[0] / GiB:.1f} GiB passed --rss-limit")
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:6])}… exited {proc.returncode}:\n{err[-2000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss * 1024}


NO_THP = {"NUMPY_MADVISE_HUGEPAGE": "0"}


def contenders(path: str, tuned: bool) -> dict[str, tuple[list[str], dict[str, str] | None]]:
    plain = [sys.executable, "-c", PANDAS_PLAIN.format(columns=""), path]
    out = {
        "loadgate": ([sys.executable, "-m", "loadgate", "analyze", path, "--json"], None),
        "pandas": (plain, None),
        "pandas (no THP)": (plain, NO_THP),
    }
    if tuned:
        out["pandas (columns=)"] = (
            [sys.executable, "-c", PANDAS_PLAIN.format(columns=f", columns={COLUMNS}"), path],
            NO_THP,
        )
    return out


def warm(path: str) -> None:
    """Read the file once so every contender finds it in the page cache."""
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def median_of(results: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in results) for k in ("wall", "cpu", "rss")}


def fmt(r: dict) -> str:
    return f"wall {r['wall']:6.2f} s  cpu {r['cpu']:6.2f} s  peak RSS {r['rss'] / 2**20:7.0f} MiB"


def import_cost(reps: int) -> dict[str, float]:
    """Median wall time of a bare interpreter importing what each side needs."""
    cases = {
        "python -c pass": "pass",
        "import pyarrow.parquet, numpy": "import pyarrow.parquet, numpy",
        "import pandas": "import pandas",
    }
    out = {}
    for label, code in cases.items():
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            times.append(time.perf_counter() - t)
        out[label] = statistics.median(times)
    return out


def verify_numpy(loadgate_out: str, path: str) -> str:
    """loadgate's per-request and overall percentiles against numpy.percentile on the same rows, bit for bit."""
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    with open(loadgate_out) as f:
        ours = json.load(f)
    table = pq.read_table(path, columns=["request_type", "name", "response_time_ms"])
    qs = [50, 90, 95, 99, 99.9]
    values = table.column("response_time_ms").to_numpy()
    key = pc.binary_join_element_wise(table.column("request_type"), table.column("name"), " ")
    codes = key.dictionary_encode().combine_chunks()
    labels, idx = codes.dictionary.to_pylist(), codes.indices.to_numpy()
    expected = {labels[i]: np.percentile(values[idx == i], qs) for i in range(len(labels))}
    expected["overall"] = np.percentile(values, qs)
    bad = compared = 0
    for e in ours["requests"] + [{"request_type": "", "name": "", "overall": True, **ours["overall"]}]:
        ref = expected["overall" if e.get("overall") else f"{e['request_type']} {e['name']}"]
        got = [e["response_time_ms"][f"p{q:g}"] for q in qs]
        bad += sum(a != b for a, b in zip(got, ref.tolist()))
        compared += len(qs)
    return f"{compared} percentiles (per request, overall) vs numpy.percentile: " + (
        "identical" if bad == 0 else f"{bad} DIFFERENT"
    )


def verify(loadgate_out: str, pandas_out: str) -> str:
    """loadgate's per-request percentiles and error rates against pandas' (pandas interpolates its own way)."""
    with open(loadgate_out) as f:
        ours = json.load(f)
    with open(pandas_out) as f:
        theirs = json.load(f)
    keys = {"0.5": "p50", "0.9": "p90", "0.95": "p95", "0.99": "p99", "0.999": "p99.9"}
    worst, compared = 0.0, 0
    for e in ours["requests"]:
        ref = theirs["pct"][f"{e['request_type']} {e['name']}"]
        for q, k in keys.items():
            a, b = e["response_time_ms"][k], ref[q]
            worst = max(worst, abs(a - b) / abs(b))
            compared += 1
        worst = max(worst, abs(e["error_rate"] - theirs["error_rate"][f"{e['request_type']} {e['name']}"]))
    verdict = "agree" if worst <= 1e-9 else "DIFFERENT"
    return f"{compared} per-request percentiles vs pandas: {verdict} (largest relative difference {worst:.1e})"


def compare(args) -> int:
    n = gen_samples.parse_count(args.samples)
    path = gen_samples.ensure(n, directory=args.dir)
    size = os.path.getsize(path)
    print(f"samples: {path}: {n:,} rows, {size / n:.2f} bytes/sample; {args.reps} alternated runs each, medians")
    warm(path)
    cmds = contenders(path, args.tuned)
    names = list(cmds)
    results: dict[str, list[dict]] = {k: [] for k in names}
    tmp = tempfile.mkdtemp(prefix="analyze-speed-")
    for rep in range(args.reps):
        for name in names if rep % 2 == 0 else names[::-1]:
            out = os.path.join(tmp, name.split()[0] + ".json")
            results[name].append(run_child(*cmds[name][:1], out, args.rss_limit, cmds[name][1]))
            print(f"  run {rep + 1} {name:18s} {fmt(results[name][-1])}", flush=True)
    med = {k: median_of(v) for k, v in results.items()}
    print()
    for name in names:
        print(f"{name:18s} {fmt(med[name])}")
    base = med["pandas"]
    lg = med["loadgate"]
    print()
    pair = {
        k: statistics.median(a[k] / b[k] for a, b in zip(results["loadgate"], results["pandas"]))
        for k in ("wall", "cpu", "rss")
    }  # each run with the pandas run next to it: robust to drift
    print("ratios loadgate/pandas    of medians   median of the alternated pairs")
    print(f"  time (wall)                {lg['wall'] / base['wall']:.3f}        {pair['wall']:.3f}   (target <= 0.333)")
    print(f"  time (cpu)                 {lg['cpu'] / base['cpu']:.3f}        {pair['cpu']:.3f}")
    print(f"  peak RSS                   {lg['rss'] / base['rss']:.3f}        {pair['rss']:.3f}   (target <= 1)")
    for name, what in [
        ("pandas (no THP)", "pandas without transparent huge pages"),
        ("pandas (columns=)", "pandas reading only 5 columns, without huge pages"),
    ]:
        if name in med:
            t = med[name]
            paired = statistics.median(a["wall"] / b["wall"] for a, b in zip(results["loadgate"], results[name]))
            print(
                f"vs {what}: time {lg['wall'] / t['wall']:.3f} (median of pairs {paired:.3f}), "
                f"peak RSS {lg['rss'] / t['rss']:.3f}"
            )
    print(verify(os.path.join(tmp, "loadgate.json"), os.path.join(tmp, "pandas.json")))
    print(verify_numpy(os.path.join(tmp, "loadgate.json"), path))
    costs = import_cost(3)
    print("import cost, whole interpreter (median of 3): " + ", ".join(f"{k} {v:.2f} s" for k, v in costs.items()))
    return 0


def scale(args) -> int:
    sizes = [gen_samples.parse_count(s) for s in args.sizes.split(",")]
    tmp = tempfile.mkdtemp(prefix="analyze-scale-")
    rows = []
    for n in sizes:
        path = gen_samples.ensure(n, directory=args.dir)
        warm(path)
        runs = []
        for _ in range(args.reps):
            runs.append(
                run_child(
                    [sys.executable, "-m", "loadgate", "analyze", path, "--json"],
                    os.path.join(tmp, "out.json"),
                    args.rss_limit,
                )
            )
        med = median_of(runs)
        rows.append((n, med, os.path.getsize(path)))
        print(
            f"{gen_samples.label(n):>5s}: {fmt(med)}  {med['wall'] / n * 1e9:6.0f} ns/sample  "
            f"{med['rss'] / n:6.1f} B RSS/sample  file {os.path.getsize(path) / n:.2f} B/sample",
            flush=True,
        )
    if len(rows) >= 2:
        ns = [r[0] for r in rows]
        ts = [r[1]["wall"] for r in rows]
        mean_n, mean_t = statistics.fmean(ns), statistics.fmean(ts)
        b = sum((x - mean_n) * (y - mean_t) for x, y in zip(ns, ts)) / sum((x - mean_n) ** 2 for x in ns)
        a = mean_t - b * mean_n
        resid = max(abs(a + b * x - y) / y for x, y in zip(ns, ts))
        print(
            f"fit t = a + b·N: a = {a:.2f} s (start-up), b = {b * 1e9:.0f} ns/sample; "
            f"largest relative residual {resid:.1%}"
        )
        big, small = rows[-1], rows[-2]
        growth = (big[1]["wall"] - a) / (small[1]["wall"] - a) / (big[0] / small[0])
        print(
            f"time beyond start-up, {gen_samples.label(small[0])} -> {gen_samples.label(big[0])}: "
            f"x{(big[1]['wall'] - a) / (small[1]['wall'] - a):.1f} for x{big[0] / small[0]:.0f} the samples "
            f"(1.00 = linear: {growth:.2f})"
        )
    peak = max(r[1]["rss"] for r in rows)
    print(f"largest peak RSS {peak / GiB:.2f} GiB: {'within' if peak <= 16 * GiB else 'OVER'} 16 GiB")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", default="10M", help="samples in the compared file (default 10M)")
    p.add_argument("--reps", type=int, default=3, help="runs of each contender (default 3)")
    p.add_argument("--dir", default=gen_samples.DEFAULT_DIR, help="where generated files go")
    p.add_argument("--no-tuned", dest="tuned", action="store_false", help="leave out pandas with columns=")
    p.add_argument("--scale", action="store_true", help="loadgate alone at --sizes: linearity and memory")
    p.add_argument("--sizes", default="1M,10M,100M")
    p.add_argument("--rss-limit", type=float, default=20.0, help="GiB; a child past it is killed (default 20)")
    args = p.parse_args(argv)
    args.rss_limit = int(args.rss_limit * GiB)
    return scale(args) if args.scale else compare(args)


if __name__ == "__main__":
    raise SystemExit(main())
