"""live: the sliding-window monitor gives what a plain filter over the recent samples gives.

Windows end at the newest sample that has arrived (requests of the last second are still in
flight), not at the clock. The monitor reduces each batch once (arrays and per-rule masks) so that its per-second evaluation
is cheap on the load generator's loop; :class:`Reference` is the direct way (filter the recent rows,
match the scope, compute the metric), and both must agree on every snapshot and abort.
"""

from __future__ import annotations

import collections
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from loadgate.data.samples import SCHEMA
from loadgate.plugin.live import (
    _OPS,
    PROGRESS_WINDOW_S,
    LiveMonitor,
    Rule,
    metric_value,
    shown_value,
)

T0 = 1_764_000_000.0
REQS = ["REQ-A-1", "REQ-B-2", "REQ-A-1,REQ-B-2", "REQ-AA-1"]
NAMES = [("GET", "/x"), ("POST", "/x"), ("GET", "/y?q=[term]")]


class Reference:
    """The monitor's contract, written the direct way: filter the window's rows, then compute."""

    def __init__(self, rules):
        self.rules = [Rule(**r) for r in rules]
        self.rows = collections.deque()

    def add(self, batch):
        self.rows.append(pa.Table.from_batches([batch]))

    def _window(self, now, seconds):
        table = pa.concat_tables(self.rows) if self.rows else None
        if table is None:
            return None
        return table.filter(pc.greater_equal(table.column("timestamp"), now - seconds))

    def evaluate(self, now, *, started, ramped):
        snap = {"t": now, "crossed": []}
        if self.rows:  # windows end at the newest sample that arrived, not at the clock
            now = min(now, max(pc.max(t.column("timestamp")).as_py() for t in self.rows))
        table = self._window(now, PROGRESS_WINDOW_S)
        span = min(PROGRESS_WINDOW_S, max(now - started, 1e-9))
        if table is not None and table.num_rows:
            rt = np.array(table.column("response_time_ms").to_pylist(), float)
            ok = np.array(table.column("success").to_pylist(), bool)
            snap.update(rps=rt.size / span, p95_ms=float(np.percentile(rt, 95)), error_rate=float(1 - ok.mean()))
        else:
            snap.update(rps=0.0, p95_ms=None, error_rate=None)
        abort = None
        for rule in self.rules:
            win = self._window(now, rule.window)
            if win is None or not win.num_rows and not any(b.num_rows for b in self.rows):
                continue
            rows = [
                r
                for r in win.to_pylist()
                if rule.requirement in (r["requirement"] or "").split(",")
                and (not rule.request or rule.request in (f"{r['request_type']} {r['name']}", r["name"]))
            ]
            rt = np.array([r["response_time_ms"] for r in rows], float)
            ok = np.array([r["success"] for r in rows], bool)
            if rt.size < rule.min_requests:
                continue
            value = metric_value(rule.metric, rt, ok, min(rule.window, max(now - started, 1e-9)))
            if value is None or not _OPS[rule.op](value, rule.value):
                continue
            shown = shown_value(rule.metric, value)
            snap["crossed"].append(f"{rule.label} ({shown})")
            if (
                rule.abort_on_fail
                and abort is None
                and now - started >= rule.abort_after
                and now - started >= rule.window
                and (ramped or rule.metric != "throughput")
            ):
                abort = (
                    f"aborted after {now - started:.0f}s: {rule.label} held over the last {rule.window:g}s ({shown})"
                )
        return snap, abort


def batch(rng, start, n):
    ts = np.sort(start + rng.random(n))
    which = rng.integers(0, len(NAMES), n)
    ok = rng.random(n) > 0.2
    cols = {
        "timestamp": ts,
        "request_type": [NAMES[i][0] for i in which],
        "name": [NAMES[i][1] for i in which],
        "response_time_ms": rng.lognormal(3, 1, n),
        "response_length": np.zeros(n, np.int64),
        "status_code": np.where(ok, 200, 500).astype(np.int32),
        "success": ok,
        "exception": [None if o else "HTTPError('500')" for o in ok],
        "requirement": rng.choice(REQS, n).tolist(),
        "worker": ["local"] * n,
        "users": np.full(n, 5, np.int32),
        "user": np.arange(n, dtype=np.int32) % 5,
        "intended_ms": [None] * n,
        "omitted": [None] * n,
        "period_ms": [None] * n,
    }
    return pa.RecordBatch.from_arrays([pa.array(cols[f.name], f.type) for f in SCHEMA], schema=SCHEMA)


def recorded(b):
    """``b`` as the recorder's stream has it: string columns dictionary-encoded over its code tables, which
    also hold labels no row of this batch uses."""
    arrays = []
    for f in SCHEMA:
        column = b.column(f.name)
        if pa.types.is_string(f.type):
            values = column.to_pylist()
            labels = ["UNUSED,REQ-A-1"] + sorted({v for v in values if v is not None}) + ["REQ-UNUSED"]
            codes = pa.array([None if v is None else labels.index(v) for v in values], pa.int32())
            column = pa.DictionaryArray.from_arrays(codes, pa.array(labels, pa.string()))
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, names=SCHEMA.names)


RULES = [
    {
        "requirement": "REQ-A-1",
        "metric": "p95",
        "request": None,
        "op": ">",
        "value": 40.0,
        "text": ">40ms",
        "abort_on_fail": True,
        "abort_after": 5.0,
        "window": 10.0,
    },
    {
        "requirement": "REQ-B-2",
        "metric": "error_rate",
        "request": "GET /x",
        "op": ">",
        "value": 0.1,
        "text": ">10%",
        "window": 4.0,
        "min_requests": 5,
    },
    {
        "requirement": "REQ-A-1",
        "metric": "throughput",
        "request": "/y?q=[term]",
        "op": "<",
        "value": 1e6,
        "text": "<1000000/s",
        "abort_on_fail": True,
        "window": 20.0,
    },
    {"requirement": "REQ-AA-1", "metric": "mean", "request": None, "op": ">=", "value": 0.0, "text": ">=0ms"},
    {"requirement": "REQ-B-2", "metric": "max", "request": "POST /x", "op": "<", "value": 1.0, "text": "<1ms"},
]


@pytest.mark.parametrize("as_recorded", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_monitor_agrees_with_filtering_the_recent_rows(seed, as_recorded):
    rng = np.random.default_rng(seed)
    fast, ref = LiveMonitor(RULES), Reference(RULES)
    for second in range(40):
        if rng.random() > 0.15:  # some seconds bring no batch
            b = batch(rng, T0 + second, int(rng.integers(1, 300)))
            fast.add(recorded(b) if as_recorded else b)
            ref.add(b)
        now = T0 + second + 1
        got, want = fast.evaluate(now, started=T0, ramped=second > 3), ref.evaluate(now, started=T0, ramped=second > 3)
        assert got == want, second


@pytest.mark.parametrize("as_recorded", [False, True])
@pytest.mark.parametrize("label", ["REQ-A-1", "REQ-A-1,REQ-B-2"])
def test_rules_sharing_the_whole_window_agree_with_the_reference(label, as_recorded):
    # One requirement label in every batch: rules in scope of all of it share the window's arrays and
    # values with the progress line (the usual single-requirement run); the others see no row at all.
    rng = np.random.default_rng(11)
    rules = [
        *RULES,
        {**RULES[0], "metric": "p95", "abort_on_fail": False},
        {**RULES[0], "metric": "error_rate", "op": ">", "value": 0.0, "text": ">0%"},
    ]
    fast, ref = LiveMonitor(rules), Reference(rules)
    for second in range(25):
        b = batch(rng, T0 + second, int(rng.integers(50, 300)))
        b = b.set_column(
            SCHEMA.get_field_index("requirement"), SCHEMA.field("requirement"), pa.array([label] * b.num_rows)
        )
        fast.add(recorded(b) if as_recorded else b)
        ref.add(b)
        now = T0 + second + 1
        got = fast.evaluate(now, started=T0, ramped=True, offload=lambda fn, *args: fn(*args))
        assert got == ref.evaluate(now, started=T0, ramped=True), second


def test_requests_without_a_response_time_count_but_not_in_latencies():
    rng = np.random.default_rng(5)
    b = batch(rng, T0, 200)
    rt = b.column("response_time_ms").to_numpy().copy()
    rt[::10] = np.nan
    b = b.set_column(
        SCHEMA.get_field_index("response_time_ms"),
        SCHEMA.field("response_time_ms"),
        pa.array(rt, pa.float64(), from_pandas=True),
    )  # NaN -> null, as the recorder writes it
    mon = LiveMonitor([{**RULES[0], "request": None}])
    mon.add(b)
    snap, _ = mon.evaluate(T0 + 1, started=T0 - 10, ramped=True)
    assert snap["p95_ms"] == float(np.percentile(rt[~np.isnan(rt)], 95))
    assert snap["rps"] == 200 / 10
    only_nulls = b.set_column(
        SCHEMA.get_field_index("response_time_ms"), SCHEMA.field("response_time_ms"), pa.nulls(200, pa.float64())
    )
    mon = LiveMonitor([])
    mon.add(only_nulls)
    assert mon.evaluate(T0 + 1, started=T0 - 10, ramped=True)[0]["p95_ms"] is None


def test_empty_monitor_and_empty_batches():
    m = LiveMonitor(RULES)
    m.add(batch(np.random.default_rng(1), T0, 1).slice(0, 0))
    assert m.evaluate(T0 + 1, started=T0, ramped=True) == (
        {"t": T0 + 1, "crossed": [], "rps": 0.0, "p95_ms": None, "error_rate": None},
        None,
    )


def test_throughput_is_not_undercounted_by_the_samples_still_in_flight():
    # 100 requests/s for 30 s; the clock is 1.5 s past the newest sample that has arrived
    # (the last second sits in the recorder's buffer): the rate is still 100/s, not 85/s.
    rng = np.random.default_rng(7)
    rule = {
        "requirement": "REQ-A-1",
        "metric": "throughput",
        "request": None,
        "op": "<",
        "value": 95.0,
        "text": "<95/s",
        "abort_on_fail": True,
        "abort_after": 0.0,
        "window": 10.0,
    }
    mon = LiveMonitor([rule])
    for s in range(30):
        b = batch(rng, T0 + s, 100)
        b = b.set_column(
            SCHEMA.get_field_index("requirement"), SCHEMA.field("requirement"), pa.array(["REQ-A-1"] * 100)
        )
        mon.add(b)
    newest = max(x.last for x in mon.batches)
    snap, abort = mon.evaluate(newest + 1.5, started=T0, ramped=True)
    assert 95 <= snap["rps"] <= 105
    assert snap["crossed"] == [] and abort is None


def test_omitted_slots_are_counted_and_the_progress_line_shows_them_only_above_zero():
    from loadgate.run.progress import Progress

    rng = np.random.default_rng(3)
    monitor = LiveMonitor([])
    b = batch(rng, T0, 50)
    monitor.add(b)
    assert monitor.omitted == 0
    omitted = pa.array([3, None, 0, 2] + [None] * 46, pa.int32())
    monitor.add(b.set_column(SCHEMA.get_field_index("omitted"), SCHEMA.field("omitted"), omitted))
    assert monitor.omitted == 5

    class Opts:
        ramp_up_s, duration, warmup, users = 1.0, 10.0, 0.0, 5

    progress = Progress("/nonexistent", Opts(), print, stream=open(os.devnull, "w"))
    snap = {
        "t": T0,
        "elapsed": 3.0,
        "ramp_up_done": T0 - 2,
        "users": 5,
        "rps": 10.0,
        "p95_ms": 20.0,
        "error_rate": 0.0,
        "cpu": 5.0,
    }
    assert "omitted" not in progress.line({**snap, "omitted": 0})
    assert progress.line({**snap, "omitted": 5}).endswith("| cpu 5% | omitted 5")
