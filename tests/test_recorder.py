"""The recorder's capture of requests: column buffers and code tables, against a plain reference.

The hot path appends numbers to ``array.array`` buffers and turns strings into codes; a flush copies
the buffers out and builds the Arrow batch. Whatever a request event carries (odd types from custom
clients included) must come out as the row the reference below makes of it, never shifting a column.
"""

from __future__ import annotations

import math
import os
import time
from unittest import mock

import gevent.monkey
import pyarrow as pa
import pytest
from greenlet import getcurrent

# Importing Locust monkey-patches the whole pytest process with gevent (sockets, threads, os.waitpid),
# which breaks tests that use multiprocessing; these tests need no patched I/O. The variable is removed
# again at once: Locust processes that tests start must be patched as usual.
os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"
try:
    from locust import HttpUser, TaskSet, tag, task

    from loadgate import pacing
    from loadgate.plugin import attribution, columns
finally:
    del os.environ["LOCUST_SKIP_MONKEY_PATCH"]
from loadgate.data.samples import SCHEMA, STREAM_SCHEMA
from loadgate.shared.redact import NameRedactor, redact


def test_importing_the_recorder_here_patched_nothing():
    assert not gevent.monkey.is_anything_patched()
    assert "LOCUST_SKIP_MONKEY_PATCH" not in os.environ


class _Resp:
    def __init__(self, code):
        self.status_code = code


class _BadRepr(Exception):
    def __repr__(self):
        raise RuntimeError("no repr")


def _expected(req, all_reqs, users):
    """The row a request event should become (the reference: plain Python, no buffers, no codes)."""
    rt = req["response_time"]
    rt = float(rt) if isinstance(rt, (int, float)) and not isinstance(rt, bool) else None
    rt = None if rt is not None and math.isnan(rt) else rt
    code = req["response"].status_code if req["response"] is not None else 0
    try:
        code = int(code or 0)
    except (TypeError, ValueError):
        code = 0
    code = code if -(2**31) <= code < 2**31 else 0
    length = req["response_length"]
    try:
        length = int(length or 0)
    except (TypeError, ValueError, OverflowError):
        length = 0
    length = length if -(2**63) <= length < 2**63 else 0
    exc = req["exception"]
    if exc is None:
        text = None
    else:
        try:
            text = redact(repr(exc))
        except RuntimeError:
            text = f"<{type(exc).__name__} that cannot be shown>"
    return {
        "request_type": str(req["request_type"]),
        "name": redact(str(req["name"])),
        "response_time_ms": rt,
        "response_length": length,
        "status_code": code,
        "success": exc is None,
        "exception": text,
        "requirement": req.get("requirement") or all_reqs,
        "worker": "w1",
        "users": users,
        "user": None,
        "intended_ms": None,
        "omitted": None,
        "period_ms": None,
    }


REQUESTS = [
    {
        "request_type": "GET",
        "name": "/a",
        "response_time": 1.5,
        "response_length": 10,
        "response": _Resp(200),
        "exception": None,
    },
    {
        "request_type": "GET",
        "name": "/a",
        "response_time": 2.25,
        "response_length": None,
        "response": _Resp(500),
        "exception": ValueError("HTTP 500 at /a?token=abc"),
    },
    {
        "request_type": "POST",
        "name": "/login?password=hunter2",
        "response_time": None,
        "response_length": 0,
        "response": None,
        "exception": ConnectionError("refused"),
    },
    {
        "request_type": "GET",
        "name": "/b",
        "response_time": float("nan"),
        "response_length": 2**70,
        "response": _Resp("204"),
        "exception": None,
    },
    {
        "request_type": "GET",
        "name": "/b",
        "response_time": 7,
        "response_length": 5,
        "response": _Resp(2**40),
        "exception": _BadRepr(),
    },
    {
        "request_type": "WS",
        "name": 42,
        "response_time": 0.0,
        "response_length": 1.9,
        "response": _Resp(None),
        "exception": None,
        "start_time": None,
    },
    {
        "request_type": "GET",
        "name": "/a",
        "response_time": 3.0,
        "response_length": 3,
        "response": _Resp(True),
        "exception": None,
        "requirement": "REQ-B",
    },
]


def _fire(listener, req):
    g = getcurrent()
    if req.get("requirement"):
        attribution.current[g] = attribution.req_code(req["requirement"])
    try:
        listener(
            request_type=req["request_type"],
            name=req["name"],
            response_time=req["response_time"],
            response_length=req["response_length"],
            response=req["response"],
            context={},
            exception=req["exception"],
            start_time=req.get("start_time", 1_800_000_000.25),
            url="http://127.0.0.1/x",
        )
    finally:
        attribution.current.pop(g, None)


@pytest.mark.parametrize("paced, schedule", [(False, True), (False, False), (True, True)])
@pytest.mark.parametrize("attributed", [True, False])
def test_every_request_becomes_its_row_whatever_it_carries(attributed, paced, schedule):
    """``schedule``: the listener that records the schedule columns per request; without it (a run
    with no paced user) the rows must come out the same."""
    cols = columns.Columns(NameRedactor())
    users = {1, 2, 3}
    listener = cols.listener(users, attributed, schedule)
    before = time.time()
    g = getcurrent()
    state = pacing.UserState(7, 0.1) if paced else pacing.NOBODY
    if paced:  # an iteration that started 30 ms late, after skipping 2 slots
        state.begin(1_800_000_000.0)
        state.late_ms, state.omitted = 30.0, 2
    pacing.USERS[g] = state
    try:
        for req in REQUESTS * 3:
            _fire(listener, req)
    finally:
        pacing.USERS.pop(g, None)
    batch = columns.build_batch(cols.take(), "w1", "REQ-A,REQ-B")
    assert batch.schema.equals(STREAM_SCHEMA, check_metadata=True)
    assert batch.num_rows == len(REQUESTS) * 3 and len(cols) == 0 and cols.take() is None
    got = batch.to_pylist()
    for i, (row, req) in enumerate(zip(got, REQUESTS * 3)):
        want = _expected(req, "REQ-A,REQ-B", 3)
        if paced:
            rt = want["response_time_ms"]
            want.update(
                user=7, intended_ms=None if rt is None else rt + 30.0, omitted=2 if i == 0 else None, period_ms=100.0
            )
        if not attributed:
            want["requirement"] = "REQ-A,REQ-B"  # no lookup of the running task: the run's requirements
        ts = row.pop("timestamp")
        if req.get("start_time", 0) is None:  # when it ended minus its duration
            assert before - 1 <= ts <= time.time()
        else:
            assert ts == 1_800_000_000.25
        assert row == want


@pytest.mark.parametrize("schedule", [True, False])
def test_a_row_with_an_odd_value_is_recorded_whole(schedule):
    cols = columns.Columns(NameRedactor())
    listener = cols.listener(set(), False, schedule)
    _fire(listener, REQUESTS[0])
    _fire(listener, REQUESTS[3])  # response_length 2**70 does not pack: the careful path records the row
    _fire(listener, REQUESTS[0])
    assert len(cols) == 3
    rows = columns.build_batch(cols.take(), "w1", "R").to_pylist()
    assert [r["response_length"] for r in rows] == [10, 0, 10]
    assert [r["status_code"] for r in rows] == [200, 204, 200]
    assert [r["name"] for r in rows] == ["/a", "/b", "/a"]


def test_switching_listeners_within_a_flush_keeps_each_row_its_own_schedule():
    """A web-UI session's next test may add or drop paced users before the last rows were flushed."""
    cols = columns.Columns(NameRedactor())
    g = getcurrent()
    paced = pacing.UserState(4, 0.5)
    paced.begin(1_800_000_000.0)
    paced.late_ms = 11.0
    order = []
    for schedule in (False, True, False, True):
        listener = cols.listener(set(), False, schedule)
        pacing.USERS[g] = paced if schedule else pacing.UserState(9, None)
        try:
            for _ in range(2):
                _fire(listener, REQUESTS[0])
                order.append(schedule)
        finally:
            pacing.USERS.pop(g, None)
        paced.first = True
    rows = columns.build_batch(cols.take(), "w1", "R").to_pylist()
    assert len(rows) == len(order) == 8
    for row, schedule in zip(rows, order):
        assert row["user"] == (4 if schedule else 9)
        assert (row["period_ms"], row["intended_ms"]) == ((500.0, 12.5) if schedule else (None, None))
    assert [r["omitted"] for r in rows] == [None, None, 0, None, None, None, 0, None]


def test_code_tables_are_bounded_and_start_again_between_flushes():
    cols = columns.Columns(NameRedactor())
    listener = cols.listener(set(), False)
    with mock.patch.object(columns, "_EXCEPTION_CACHE_MAX", 10):
        batches = []
        for flush in range(3):
            for i in range(25):
                _fire(
                    listener,
                    {
                        "request_type": "GET",
                        "name": f"/item/{flush}/{i}",
                        "response_time": 1.0,
                        "response_length": 1,
                        "response": _Resp(200),
                        "exception": RuntimeError(f"id {i}"),
                    },
                )
            batches.append(columns.build_batch(cols.take(), "w1", "R"))
            assert len(cols.key_names) <= 10 and len(cols.exc_texts) <= 11
    rows = pa.Table.from_batches(batches).to_pylist()
    assert [r["name"] for r in rows] == [f"/item/{f}/{i}" for f in range(3) for i in range(25)]
    assert [r["exception"] for r in rows] == [f"RuntimeError('id {i}')" for _f in range(3) for i in range(25)]


class _Nested(TaskSet):
    @task
    def inner(self):
        pass


class _OneRequirement(HttpUser):
    host = "http://127.0.0.1"

    @tag("REQ-A")
    @task
    def a(self):
        pass


class _NestedUser(HttpUser):
    host = "http://127.0.0.1"
    tasks = [tag("REQ-A")(_Nested)]


class _TwoRequirements(HttpUser):
    host = "http://127.0.0.1"

    @tag("REQ-A")
    @task
    def a(self):
        pass

    @tag("REQ-B")
    @task
    def b(self):
        pass


def test_tasks_are_wrapped_only_when_requests_can_belong_to_fewer_requirements_than_the_run():
    assert not attribution.needs_attribution([_OneRequirement, _NestedUser], ["REQ-A"])
    assert attribution.needs_attribution([_NestedUser, _TwoRequirements], ["REQ-A", "REQ-B"])
    assert not attribution.needs_attribution([_TwoRequirements], ["REQ-A"])  # REQ-B's task is filtered out by --tags
    assert attribution.needs_attribution([_TwoRequirements], ["REQ-A", "REQ-B"])
    assert not attribution.needs_attribution([_OneRequirement, _TwoRequirements], [])


def test_wrapped_tasks_carry_their_requirements_while_they_run():
    seen = {}

    class Inner(TaskSet):
        def on_start(self):
            seen["inner.on_start"] = attribution.current.get(getcurrent())

        @task
        def inner(self):
            seen["inner"] = attribution.current.get(getcurrent())

    class User(HttpUser):
        host = "http://127.0.0.1"
        tasks = [tag("REQ-B")(Inner)]

        @tag("REQ-A")
        @task
        def a(self):
            seen["a"] = attribution.current.get(getcurrent())

        @tag("REQ-A", "REQ-B")
        @task
        def ab(self):
            seen["ab"] = attribution.current.get(getcurrent())

    attribution.attribute_tasks(User, ["REQ-A", "REQ-B"])
    attribution.attribute_tasks(User, ["REQ-A", "REQ-B"])  # twice (a worker's second test_start): wrapped once
    for t in User.tasks:
        if isinstance(t, type):
            t.on_start(None)
            for inner in t.tasks:
                inner(None)
        else:
            t(None)
    code = attribution.req_code
    # Locust's tag() on a TaskSet tags its tasks, not the class: its on_start is outside any requirement's
    # task, and its requests count for all requirements of the run (None here: code 0 on the hot path).
    assert seen == {"a": code("REQ-A"), "ab": code("REQ-A,REQ-B"), "inner": code("REQ-B"), "inner.on_start": None}
    assert getcurrent() not in attribution.current  # restored once each task returns


def test_a_batch_of_plain_strings_from_an_older_worker_is_taken_as_the_stream_has_it():
    cols = columns.Columns(NameRedactor())
    listener = cols.listener(set(), False)
    for i in range(6):
        _fire(
            listener,
            {
                "request_type": "GET",
                "name": f"/p/{i % 2}",
                "response_time": 1.0 + i,
                "response_length": 1,
                "response": _Resp(200 if i % 3 else 500),
                "exception": None if i % 3 else RuntimeError("500"),
            },
        )
    recorded = columns.build_batch(cols.take(), "w1", "R")
    assert columns.stream_batch(recorded) is recorded
    plain = pa.Table.from_batches([recorded]).cast(SCHEMA).to_batches()[0]  # what an older recorder sent
    taken = columns.stream_batch(plain)
    assert taken.schema.equals(STREAM_SCHEMA) and taken.to_pylist() == recorded.to_pylist() == plain.to_pylist()
