"""A realistic ``samples.parquet`` of N samples, written the way ``loadgate run`` writes one.

    python bench/gen_samples.py N [--rate 3000] [--users 300] [--dir /tmp/loadgate-bench] [--seed 1] [--force]

N may be written 10M, 100M, 1_000_000. Prints the file's path, rows and bytes per sample. The other
benches import :func:`ensure`, which reuses a file of the same N, rate and seed. Data goes to ``--dir``
(outside the repository); never commit it.

What it looks like, and why it matters for the benches:

- the recorder's write path: record batches of about one second of completed requests (the
  recorder flushes every second, rows in completion order) in a zstd Arrow IPC stream, then
  :func:`loadgate.data.samples.finalize_stream` — the code that writes every real run's Parquet file;
- arrivals at ``--rate`` requests/s once ``--users`` users have ramped up at 10 users/s (the rate
  grows with the users during ramp-up), with Poisson inter-arrival times;
- 7 request names with their own weights, response sizes and latency: a log-normal body per
  request whose median drifts ±15% over the run, a slow tail (1.5% of requests 3-30x slower, Pareto),
  and response times computed the way Locust computes them (``perf_counter`` differences, in
  nanoseconds turned into float milliseconds): their noisy low bits are what Parquet cannot compress;
- ~1% errors: HTTP 500/503 with a short body, connection resets, and read timeouts at ~10 s,
  each with the exception text Locust reports;
- requirements as a tagged scenario gives them: one requirement per task, both for requests made
  in on_start (outside any task).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from loadgate.data.samples import STREAM_SCHEMA, finalize_stream  # noqa: E402

DEFAULT_DIR = os.path.join(tempfile.gettempdir(), "loadgate-bench")
T0 = 1_764_000_000.0
SPAWN_RATE = 10.0
UPTIME_S = 3 * 86400.0  # the load generator's perf_counter() when the run starts
_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")  # as loadgate.plugin.recorder writes its stream
_CHUNK = 1 << 20  # arrivals generated at once

# request_type, name, weight, median ms, sigma, response bytes (mean, spread), requirement
REQUESTS = [
    ("GET", "/api/products", 30, 28.0, 0.35, (4823, 0), "REQ-PERF-001"),
    ("GET", "/api/products/[id]", 25, 12.0, 0.40, (1100, 250), "REQ-PERF-001"),
    ("GET", "/api/search?q=[term]", 18, 55.0, 0.60, (2600, 1800), "REQ-PERF-001"),
    ("GET", "/api/cart", 12, 9.0, 0.35, (640, 200), "REQ-PERF-002"),
    ("POST", "/api/cart/items", 8, 22.0, 0.45, (212, 0), "REQ-PERF-002"),
    ("POST", "/api/checkout", 4, 140.0, 0.50, (389, 0), "REQ-PERF-002"),
    ("POST", "/api/login", 3, 75.0, 0.30, (154, 0), "REQ-PERF-001,REQ-PERF-002"),  # on_start: both
]
ERROR_RATE = 0.01
TAIL_RATE = 0.015
# exception text, status code, share of the errors
ERRORS = [
    ("CatchResponseError('500 Server Error: Internal Server Error for url: {name}')", 500, 0.55),
    ("CatchResponseError('503 Server Error: Service Unavailable for url: {name}')", 503, 0.25),
    ("ConnectionResetError(104, 'Connection reset by peer')", 0, 0.12),
    ("timeout('read timed out after 10.0 s')", 0, 0.08),
]


def parse_count(text: str) -> int:
    """``10M``, ``100M``, ``250k``, ``1_000_000`` -> int."""
    t = text.strip().replace("_", "").upper()
    scale = {"K": 1_000, "M": 1_000_000, "G": 1_000_000_000}.get(t[-1:], 1)
    return int(float(t[:-1] if scale > 1 else t) * scale)


def label(n: int) -> str:
    for unit, size in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def path_for(n: int, rate: float, seed: int, directory: str = DEFAULT_DIR) -> str:
    return os.path.join(directory, f"samples-{label(n)}-r{rate:g}-s{seed}.parquet")


def ensure(
    n: int,
    *,
    rate: float = 3000.0,
    users: int = 300,
    seed: int = 1,
    directory: str = DEFAULT_DIR,
    force: bool = False,
    say=print,
) -> str:
    """Path of a generated samples file of ``n`` rows, written now unless one exists already."""
    path = path_for(n, rate, seed, directory)
    if os.path.exists(path) and not force:
        return path
    os.makedirs(directory, exist_ok=True)
    stream = path + ".arrows"
    started = time.perf_counter()
    try:
        write_stream(stream, n, rate=rate, users=users, seed=seed)
        rows = finalize_stream(stream, path)
    finally:
        if os.path.exists(stream):
            os.unlink(stream)
    assert rows == n, (rows, n)
    say(
        f"gen_samples: wrote {path}: {n:,} samples, {os.path.getsize(path) / n:.2f} bytes/sample "
        f"({time.perf_counter() - started:.0f} s)"
    )
    return path


# Over the size/complexity limit (noqa): one straight-line generator of every stream column.
def write_stream(path: str, n: int, *, rate: float, users: int, seed: int) -> None:  # noqa: PLR0915
    """The recorder's Arrow IPC stream for ``n`` requests: one batch per second of completions."""
    rng = np.random.default_rng(seed)
    ramp = users / SPAWN_RATE
    weights = np.array([r[2] for r in REQUESTS], float)
    weights /= weights.sum()
    err_p = np.array([e[2] for e in ERRORS])
    err_p /= err_p.sum()
    dicts = {
        "request_type": pa.array([r[0] for r in REQUESTS]),
        "name": pa.array([r[1] for r in REQUESTS]),
        "requirement": pa.array([r[6] for r in REQUESTS]),
        "exception": pa.array([e[0].format(name=r[1]) for e in ERRORS for r in REQUESTS]),
    }
    medians = np.array([r[3] for r in REQUESTS])
    sigmas = np.array([r[4] for r in REQUESTS])
    size_mean = np.array([r[5][0] for r in REQUESTS])
    size_spread = np.array([r[5][1] for r in REQUESTS])
    status_ok = np.array([201 if r[0] == "POST" else 200 for r in REQUESTS], np.int32)
    err_status = np.array([e[1] for e in ERRORS], np.int32)
    worker = pa.array(["local"])
    done, clock = 0, 0.0  # seconds since the first user started
    pending: list[pa.RecordBatch] = []  # completions not yet flushed (they end after this chunk's last start)
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_stream(sink, STREAM_SCHEMA, options=_IPC_OPTIONS) as writer:
        while done < n:
            m = min(_CHUNK, n - done)
            # Arrivals: the rate grows with the users during ramp-up (users(t) = 10 t), then stays flat.
            gaps = rng.exponential(1.0, m)
            t = np.empty(m)
            for i in range(0, m, 4096):  # inverse of the cumulative rate, piecewise: exact enough per step
                g = gaps[i : i + 4096]
                if clock >= ramp:
                    t[i : i + g.size] = clock + np.cumsum(g) / rate
                else:  # cumulative rate R t^2 / (2 ramp): solve for t
                    area = clock * clock * rate / (2 * ramp) + np.cumsum(g)
                    tt = np.sqrt(2 * ramp * area / rate)
                    over = tt > ramp
                    tt[over] = ramp + (area[over] - rate * ramp / 2) / rate
                    t[i : i + g.size] = tt
                clock = float(t[i + g.size - 1])
            u = np.minimum(users, np.floor(t * SPAWN_RATE) + 1).astype(np.int32)
            user = (rng.random(m) * u).astype(np.int32)  # one of the users running then
            req = rng.choice(len(REQUESTS), m, p=weights)
            drift = 1.0 + 0.15 * np.sin(2 * math.pi * t / 1800.0)  # a slow 30-minute swell
            rt = medians[req] * drift * np.exp(sigmas[req] * rng.standard_normal(m))
            tail = rng.random(m) < TAIL_RATE
            rt[tail] *= np.minimum(3.0 * (1.0 + rng.pareto(1.8, int(tail.sum()))), 30.0)
            failed = rng.random(m) < ERROR_RATE
            kind = np.where(failed, rng.choice(len(ERRORS), m, p=err_p), -1)
            timeout = kind == 3
            rt[timeout] = 10_000.0 + rng.exponential(3.0, int(timeout.sum()))
            reset = kind == 2
            rt[reset] *= rng.random(int(reset.sum()))
            rt = _as_locust_measures(t, rt)
            size = np.maximum(0, size_mean[req] + size_spread[req] * rng.standard_normal(m)).astype(np.int64)
            size[failed] = np.where(kind[failed] <= 1, 53, 0)
            status = np.where(failed, err_status[np.maximum(kind, 0)], status_ok[req]).astype(np.int32)
            exc = np.where(failed, np.maximum(kind, 0) * len(REQUESTS) + req, -1)
            ts = T0 + t

            end = ts + rt / 1000.0
            order = np.argsort(end, kind="stable")  # the recorder sees requests as they complete
            cols = [
                pa.array(ts[order]),
                _strings(dicts["request_type"], req[order]),
                _strings(dicts["name"], req[order]),
                pa.array(rt[order]),
                pa.array(size[order]),
                pa.array(status[order]),
                pa.array(~failed[order]),
                _strings(dicts["exception"], exc[order]),
                _strings(dicts["requirement"], req[order]),
                _strings(worker, np.zeros(m, np.int64)),
                pa.array(u[order]),
                pa.array(user[order]),  # the sending user (unpaced: no schedule columns)
                pa.nulls(m, pa.float64()),
                pa.nulls(m, pa.int32()),
                pa.nulls(m, pa.float64()),
            ]
            chunk = pa.RecordBatch.from_arrays(cols, schema=STREAM_SCHEMA)
            # Flush once per second of completion time, as the recorder's flush greenlet does; requests
            # still running at the chunk's last arrival wait for the next chunk.
            end_sorted = end[order]
            last_start = ts[-1]
            ready = int(np.searchsorted(end_sorted, last_start, side="right")) if done + m < n else m
            pending.append(chunk.slice(0, ready))
            carry = chunk.slice(ready)
            merged = pa.Table.from_batches(pending).combine_chunks()
            merged_end = merged.column("timestamp").to_numpy() + merged.column("response_time_ms").to_numpy() / 1000.0
            order2 = np.argsort(merged_end, kind="stable")
            merged = merged.take(pa.array(order2))
            merged_end = merged_end[order2]
            secs = np.floor(merged_end)
            cuts = np.flatnonzero(np.diff(secs)) + 1
            for a, b in zip(np.concatenate(([0], cuts)), np.concatenate((cuts, [merged.num_rows]))):
                for batch in merged.slice(int(a), int(b - a)).to_batches():
                    writer.write_batch(batch)
            pending = [carry] if carry.num_rows else []
            done += m


def _as_locust_measures(t: np.ndarray, rt_ms: np.ndarray) -> np.ndarray:
    """Response times as Locust computes them: ``(perf_counter() - start) * 1000``.

    ``perf_counter`` is CLOCK_MONOTONIC's nanoseconds divided by 1e9 as a double (here: a machine up for
    three days), so a response time is a nanosecond count turned back into milliseconds through two
    roundings: floats with noisy low bits, not round numbers.
    """
    start_ns = (UPTIME_S + t) * 1e9
    start_ns = np.floor(start_ns).astype(np.int64)
    end_ns = start_ns + np.maximum(1, np.round(rt_ms * 1e6)).astype(np.int64)
    return (end_ns.astype(np.float64) / 1e9 - start_ns.astype(np.float64) / 1e9) * 1000


def _strings(dictionary: pa.Array, codes: np.ndarray) -> pa.Array:
    """A string column as the recorder's stream has it: dictionary codes; a negative code is null."""
    indices = pa.array(codes.astype(np.int32), mask=codes < 0)
    return pa.DictionaryArray.from_arrays(indices, dictionary)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("n", type=parse_count, help="samples, e.g. 10M")
    p.add_argument("--rate", type=float, default=3000.0, help="requests/s at full load (default 3000)")
    p.add_argument("--users", type=int, default=300, help="users at full load, ramped at 10/s (default 300)")
    p.add_argument("--dir", default=DEFAULT_DIR, help=f"output folder (default {DEFAULT_DIR})")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--force", action="store_true", help="write again even if the file exists")
    args = p.parse_args(argv)
    path = ensure(args.n, rate=args.rate, users=args.users, seed=args.seed, directory=args.dir, force=args.force)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
