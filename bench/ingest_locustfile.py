"""Locustfile for ``bench/master_ingest.py``: users that fire synthetic request events, no HTTP.

Each user fires ``request`` events in chunks of CHUNK at LOADGATE_BENCH_RATE_PER_USER events/s
(0: as fast as it can), so the recorder's real path (hot-path append, batch, IPC+LZ4, Locust's
message channel, the master's write) runs at a controlled rate with no server in the way.

Instrumentation, written at exit to LOADGATE_BENCH_OUT/bench-<role>-<pid>.json:
- every process: events fired and the span they were fired in;
- a worker: each ``loadgate_samples`` message handed to Locust's channel (seq, rows, time) and the
  time each recorder flush took;
- the master: each such message as its handler starts (arrival), how long the handler took, and
  how long each evaluation of the live view (sliding-window metrics, alert rules) took.
The recorder itself is untouched: this file only wraps ``send_message``, the master's registered
handler and the recorder's ``flush``, from the outside.
"""

from __future__ import annotations

import atexit
import json
import os
import time

import gevent
from locust import User, constant, events, tag, task
from locust.runners import MasterRunner, WorkerRunner

RATE = float(os.environ.get("LOADGATE_BENCH_RATE_PER_USER", "0"))
REQUIREMENT = os.environ.get("LOADGATE_BENCH_REQUIREMENT", "REQ-PERF-001")
OUT = os.environ.get("LOADGATE_BENCH_OUT")
CHUNK = 250  # events between two yields to the gevent loop
NAMES = [f"/api/x{i}" for i in range(7)]
ERROR = ConnectionResetError(104, "synthetic: connection reset by peer")
ERROR_EVERY = 200  # 0.5% failed requests, as a real run has a few
MSG_SAMPLES = "loadgate_samples"  # the recorder's message type

_state: dict = {
    "role": "local",
    "fired": 0,
    "first": None,
    "last": None,
    "sends": [],
    "arrivals": [],
    "flushes": [],
    "evaluations": [],
}


class Firehose(User):
    """Fires request events in a tight loop; no network."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self._t0 = time.time()
        self._n = 0

    @tag(REQUIREMENT)
    @task
    def fire_chunk(self) -> None:
        fire = self.environment.events.request.fire
        start = self._n
        # No gevent switch inside this loop, so a stop (greenlet kill) never cuts a chunk in half.
        for i in range(start, start + CHUNK):
            fire(
                request_type="GET",
                name=NAMES[i % 7],
                response_time=5.0 + (i % 89),
                response_length=512,
                response=None,
                context={},
                exception=ERROR if i % ERROR_EVERY == 0 else None,
                start_time=time.time(),
            )
        now = time.time()
        self._n += CHUNK
        _state["fired"] += CHUNK
        _state["first"] = _state["first"] or self._t0
        _state["last"] = now
        if RATE > 0:
            ahead = self._t0 + self._n / RATE - now
            if ahead > 0:
                gevent.sleep(ahead)


def _wrap_worker(runner, environment) -> None:
    send = runner.send_message

    def timed_send(msg_type, data=None, client_id=None):
        t = time.time()
        send(msg_type, data, client_id)
        if msg_type == MSG_SAMPLES:
            _state["sends"].append([data["worker"], data["seq"], data["rows"], t, len(data["ipc"])])

    runner.send_message = timed_send
    rec = getattr(environment, "loadgate_recorder", None)
    if rec is not None:
        flush = rec.flush

        def timed_flush():
            t = time.perf_counter()
            flush()
            _state["flushes"].append(time.perf_counter() - t)

        rec.flush = timed_flush


def _wrap_master(runner) -> None:
    entry = runner.custom_messages.get(MSG_SAMPLES)
    if entry is None or getattr(entry[0], "_bench", False):
        return
    handler, concurrent = entry

    def timed_handler(environment, msg, **kw):
        t = time.time()
        c = time.perf_counter()
        handler(environment=environment, msg=msg, **kw)
        _state["arrivals"].append([msg.data["worker"], msg.data["seq"], msg.data["rows"], t, time.perf_counter() - c])

    timed_handler._bench = True  # type: ignore[attr-defined]
    runner.custom_messages[MSG_SAMPLES] = (timed_handler, concurrent)


def _wrap_monitor(environment) -> None:
    """Time the master's live view (sliding-window metrics and alert rules, once a second)."""
    rec = getattr(environment, "loadgate_recorder", None)
    if rec is None or getattr(rec.monitor.evaluate, "_bench", False):
        return
    evaluate = rec.monitor.evaluate

    def timed_evaluate(*args, **kwargs):
        t = time.perf_counter()
        try:
            return evaluate(*args, **kwargs)
        finally:
            _state["evaluations"].append([time.time(), time.perf_counter() - t])

    timed_evaluate._bench = True  # type: ignore[attr-defined]
    rec.monitor.evaluate = timed_evaluate


@events.test_start.add_listener
def _instrument(environment, **_kw) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        _state["role"] = "worker"
        if not getattr(runner, "_bench_wrapped", False):
            runner._bench_wrapped = True
            _wrap_worker(runner, environment)
    elif isinstance(runner, MasterRunner):
        _state["role"] = "master"
        _wrap_master(runner)
        _wrap_monitor(environment)


@atexit.register
def _dump() -> None:
    if OUT:
        path = os.path.join(OUT, f"bench-{_state['role']}-{os.getpid()}.json")
        with open(path, "w") as f:
            json.dump(_state, f)
