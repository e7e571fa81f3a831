"""Run directories of open-model runs, for the gate, report and check tests: real samples written by
loadgate's own writer (the recorder's Arrow stream, finalised into samples.parquet) and a run.json with the
schedule's ``arrival`` block, as a run with an arrival shape leaves them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from loadgate.data import rundir
from loadgate.data.samples import SCHEMA

T0 = 1_764_000_000  # a whole second: the schedule's first start


def samples(started: list[int], rate: float, requirement: str, rt_ms: float, fail_every: int = 0) -> pa.RecordBatch:
    """One request per started iteration, spread evenly over its second; latency from the schedule set."""
    ts = np.concatenate([T0 + s + np.arange(n) / max(n, 1) for s, n in enumerate(started)])
    n = ts.size
    i = np.arange(n)
    rt = rt_ms + (i % 10)  # rt_ms .. rt_ms + 9 ms
    ok = (i % fail_every != fail_every - 1) if fail_every else np.ones(n, bool)
    return pa.record_batch(
        [
            pa.array(ts),
            pa.array(["GET"] * n),
            pa.array(["/api/x"] * n),
            pa.array(rt.astype(np.float64)),
            pa.array(np.full(n, 100), pa.int64()),
            pa.array(np.where(ok, 200, 500), pa.int32()),
            pa.array(ok),
            pa.array([None if g else "HTTPError('500')" for g in ok], pa.string()),
            pa.array([requirement] * n),
            pa.array(["local"] * n),
            pa.array(np.full(n, 10), pa.int32()),
            pa.array(i % 10, pa.int32()),
            pa.array(rt.astype(np.float64)),
            pa.array(np.zeros(n), pa.int32()),
            pa.array(np.full(n, 1000.0 / rate)),
        ],
        schema=SCHEMA,
    )


def arrival_block(scheduled: list[int], dropped: list[int], rate: float, max_users: int | None) -> dict:
    started = [s - d for s, d in zip(scheduled, dropped)]
    return {
        "rate": rate,
        "stages": [],
        "max_users": max_users,
        "distribution": "constant",
        "t0": float(T0),
        "scheduled": sum(scheduled),
        "started": sum(started),
        "dropped": sum(dropped),
        "per_second": {
            "t": [T0 + s for s in range(len(scheduled))],
            "scheduled": scheduled,
            "started": started,
            "dropped": dropped,
            "busy": [min(max_users or 10**9, 3 + d) for d in dropped],
        },
    }


def make_run(
    out: Path,
    name: str,
    *,
    rate: int = 100,
    seconds: int = 20,
    dropped: dict[int, int] | None = None,
    requirement: str = "REQ-OPEN-1",
    max_users: int | None = 10,
    warmup: float = 2.0,
    rt_ms: float = 20.0,
    arrival: bool = True,
    fail_every: int = 0,
) -> Path:
    """A finished run of ``seconds`` at ``rate`` iterations/s; ``dropped``: second -> starts dropped in it.

    The analysis window is [T0 + warmup, T0 + seconds]: the first ``warmup`` seconds' drops are outside it."""
    run_dir = out / name
    run_dir.mkdir(parents=True)
    scheduled = [rate] * seconds
    drops = [(dropped or {}).get(s, 0) for s in range(seconds)]
    started = [n - d for n, d in zip(scheduled, drops)]
    with pa.OSFile(str(run_dir / rundir.STREAM), "wb") as sink, pa.ipc.new_stream(sink, SCHEMA) as writer:
        writer.write_batch(samples(started, rate, requirement, rt_ms, fail_every))
    rundir.finalize_samples(str(run_dir))  # loadgate's own writer: the stream -> samples.parquet
    run = {
        "run_id": name,
        "requirements": [requirement],
        "start": float(T0),
        "ramp_up_done": float(T0),
        "warmup": warmup,
        "end": float(T0 + seconds),
        "users": None,
        "host": "http://127.0.0.1:1",
        "samples": sum(started),
        "paced": arrival,
        "problems": [],
    }
    if arrival:
        run["arrival"] = {requirement: arrival_block(scheduled, drops, float(rate), max_users)}
    (run_dir / rundir.RUN).write_text(json.dumps(run))
    return run_dir
