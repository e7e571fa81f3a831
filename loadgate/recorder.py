"""The recorder: a Locust plugin that keeps every request as a raw sample.

Loaded into the Locust process (``locust -f scenario.py,loadgate/locust_plugin.py``), never into
the loadgate CLI. On the hot path each request appends its numbers to ``array.array`` column buffers
and its strings as small integer codes. Every ``--loadgate-flush`` seconds a greenlet copies the
buffers out and a native thread (Arrow releases the GIL) builds the Arrow record batch from them. A
local or master process appends batches to an Arrow IPC stream (``samples.arrows``), which survives a
crash up to the last batch; the CLI turns it into ``samples.parquet`` after the run. A worker ships
each batch as IPC bytes to the master over Locust's message channel; only the master writes. Nothing
here imports pandas (Arrow does, to convert Python objects: the code builds arrays from buffers).

The recorder also owns the run's clock: when spawning completes it notes ramp-up done and stops
the run ``--loadgate-duration`` seconds later, so that ``--duration`` is time at full load. What it
saw (times, users reached, counts sent and received per worker) goes to ``recorder.json``.
"""
from __future__ import annotations

import functools
import gc
import json
import logging
import os
import time
from array import array
from typing import Any

import gevent
import gevent.lock
import psutil
import pyarrow as pa
import pyarrow.compute as pc
from greenlet import getcurrent
from locust import events
from locust.exception import RPCError, RPCSendError
from locust.runners import MasterRunner, Runner, WorkerRunner
from locust.user.task import TaskSet

from loadgate.arrowbuf import int32_array, string_array
from loadgate.live import LiveMonitor
from loadgate.redact import NameRedactor, redact
from loadgate.rundir import PROGRESS as PROGRESS_NAME
from loadgate.rundir import RECORDER_META as META_NAME
from loadgate.rundir import STREAM as STREAM_NAME
from loadgate.samples import SCHEMA

log = logging.getLogger("loadgate.recorder")

MSG_SAMPLES = "loadgate_samples"
MSG_DONE = "loadgate_done"
WORKER_DONE_TIMEOUT_S = 30.0
INTERRUPT_DONE_TIMEOUT_S = 4.0
# LZ4, not zstd: compressing the stream is the largest part of a flush (zstd 0.26 µs a sample on
# this machine, LZ4 0.10); the stream only lives until samples.parquet is written (zstd, ~6-9 B/sample).
_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")
_EXCEPTION_CACHE_MAX = 20_000  # distinct names / exception texts remembered (redacted once each)

# greenlet -> code of the requirements of the task it is running (1 + index into _REQ_TEXTS); absent:
# outside any task, code 0: the run's requirements
_current: dict[Any, int] = {}
_REQ_CODES: dict[str, int] = {}
_REQ_TEXTS: list[str] = []


def _req_code(req: str) -> int:
    code = _REQ_CODES.get(req)
    if code is None:
        _REQ_TEXTS.append(req)
        code = _REQ_CODES[req] = len(_REQ_TEXTS)
    return code


def _with_requirement(fn, req: str):
    """Wrap a task (or on_start/on_stop of a tagged TaskSet) so its requests carry ``req``."""
    if getattr(fn, "_loadgate_req", None) == req:
        return fn
    code = _req_code(req)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        g = getcurrent()
        prev = _current.get(g)
        _current[g] = code
        try:
            return fn(*args, **kwargs)
        finally:
            if prev is None:
                _current.pop(g, None)
            else:
                _current[g] = prev

    wrapper._loadgate_req = req  # type: ignore[attr-defined]
    return wrapper


def _task_requirements(holder, run_reqs: list[str], inherited: frozenset = frozenset(), seen=None):
    """(owner, index in its task list, task or TaskSet, its requirement IDs of this run as one string,
    is a TaskSet) for every task under ``holder`` (a User or TaskSet class).

    A task's requirements are its own requirement tags plus those of the TaskSets around it,
    restricted to the requirements of this run.
    """
    seen = set() if seen is None else seen
    if holder in seen:
        return
    seen.add(holder)
    for i, task in enumerate(holder.tasks):
        tags = inherited | frozenset(getattr(task, "locust_tag_set", ()))
        reqs = ",".join(r for r in run_reqs if r in tags)
        nested = isinstance(task, type) and issubclass(task, TaskSet)
        yield holder, i, task, reqs, nested
        if nested:
            yield from _task_requirements(task, run_reqs, tags, seen)


def needs_attribution(user_classes, run_reqs: list[str]) -> bool:
    """Whether some task's requests belong to fewer requirements than the whole run's.

    When every task left after Locust's ``--tags`` filter carries all of the run's requirements (one
    requirement per run, the usual case), every request belongs to all of them: no task needs wrapping
    and the recorder needs no per-request lookup of the running task.
    """
    everything = ",".join(run_reqs)
    return any(reqs not in ("", everything)
               for user_class in user_classes for *_where, reqs, _nested in _task_requirements(user_class, run_reqs))


def attribute_tasks(holder, run_reqs: list[str]) -> None:
    """Wrap every task under ``holder`` (and a tagged TaskSet's on_start/on_stop) with its requirement IDs."""
    replaced: dict[Any, list] = {}
    for owner, i, task, reqs, nested in list(_task_requirements(holder, run_reqs)):
        if not reqs:
            continue
        if nested:
            for hook in ("on_start", "on_stop"):
                setattr(task, hook, _with_requirement(getattr(task, hook), reqs))
        else:
            replaced.setdefault(owner, list(owner.tasks))[i] = _with_requirement(task, reqs)
    for owner, tasks in replaced.items():  # a new list: a subclass may share its parent's
        owner.tasks = tasks


class _UserCount:
    """``len()`` is the runner's user count. For local and worker runners that is the size of the set of
    user greenlets (what ``Runner.user_count`` computes, minus two Python calls); else the property."""

    def __init__(self, runner) -> None:
        self.runner = runner

    def __len__(self) -> int:
        return self.runner.user_count

    @classmethod
    def of(cls, runner):
        greenlets = getattr(getattr(runner, "user_greenlets", None), "greenlets", None)
        if type(runner).user_count is Runner.user_count and isinstance(greenlets, set):
            return greenlets
        return cls(runner)


class _Columns:
    """The samples of one flush interval, column by column, as they are recorded.

    Numbers go straight into ``array.array`` buffers and strings become small integer codes, so the
    hot path keeps no Python object alive (a tuple per request kept ~4 objects per request alive for a
    second; the flush then walked them cache-cold) and a flush is a few memcpys, not a conversion of
    Python objects (bench/recorder_overhead.py).
    """

    _NUMERIC = (("ts", "d", pa.float64()), ("rt", "d", pa.float64()), ("length", "q", pa.int64()),
                ("code", "i", pa.int32()), ("users", "i", pa.int32()), ("key", "i", pa.int32()),
                ("exc", "i", pa.int32()), ("req", "i", pa.int32()))

    def __init__(self, redact_name) -> None:
        for attr, typecode, _type in self._NUMERIC:
            setattr(self, attr, array(typecode))
        self.redact_name = redact_name
        self.keys: dict[str, dict[str, int]] = {}  # request_type -> name -> key code
        self.key_types: list[str] = []
        self.key_names: list[str] = []  # redacted
        self.exc_codes: dict[str, int] = {}   # exception text -> code (0: no exception)
        self.exc_texts: list[str | None] = [None]

    def __len__(self) -> int:
        return len(self.req)  # the last column a row is appended to

    def new_key(self, request_type, name) -> int:
        request_type, name = str(request_type), str(name)
        names = self.keys.setdefault(request_type, {})
        code = names.get(name)
        if code is None:
            code = names[name] = len(self.key_names)
            self.key_types.append(request_type)
            self.key_names.append(self.redact_name(name))
        return code

    def exception_code(self, exception) -> int:
        try:
            text = repr(exception)
        except Exception:  # noqa: BLE001 - a broken __repr__ must not lose the sample
            text = f"<{type(exception).__name__} that cannot be shown>"
        code = self.exc_codes.get(text)
        if code is None:
            code = self.exc_codes[text] = len(self.exc_texts)
            self.exc_texts.append(redact(text))
        return code

    def listener(self, users, attributed: bool):
        """The ``request`` event listener; ``attributed``: look up the requirement of the running task."""
        keys, new_key, exception_code = self.keys, self.new_key, self.exception_code
        ts, rt, length, code_, users_, key_, exc_, req_ = (getattr(self, a).append for a, _t, _y in self._NUMERIC)
        current, slow = _current.get, self.append_checked

        def on_request(request_type, name, response_time, response_length, response=None, context=None,
                       exception=None, start_time=None, url=None, **_kw) -> None:
            try:
                key = keys[request_type][name]
            except (KeyError, TypeError):
                key = new_key(request_type, name)
            code = getattr(response, "status_code", 0)
            try:
                ts(start_time)
                rt(response_time)
                length(response_length or 0)
                code_(code or 0)
                users_(len(users))
                key_(key)
                exc_(0 if exception is None else exception_code(exception))
                req_(current(getcurrent(), 0) if attributed else 0)
            except (TypeError, OverflowError):  # an odd value from a custom client: the careful path
                slow(start_time, response_time, response_length, code, len(users), key,
                     0 if exception is None else exception_code(exception),
                     current(getcurrent(), 0) if attributed else 0)

        return on_request

    def append_checked(self, start_time, response_time, response_length, code, users, key, exc, req) -> None:
        """Append one row whatever the types (None or junk become NaN / 0), after undoing a partial one."""
        n = len(self)
        for attr, _t, _y in self._NUMERIC:
            del getattr(self, attr)[n:]
        self.rt.append(_as_float(response_time))
        self.ts.append(_as_float(start_time, None))
        if self.ts[-1] != self.ts[-1]:  # no start time given: when it ended, minus its duration
            self.ts[-1] = time.time() - (0.0 if self.rt[-1] != self.rt[-1] else self.rt[-1] / 1000.0)
        self.length.append(_as_int(response_length, 2**63))
        self.code.append(_as_int(code, 2**31))
        self.users.append(users)
        self.key.append(key)
        self.exc.append(exc)
        self.req.append(req)

    def take(self) -> tuple | None:
        """The rows so far, copied out of the buffers (which start again empty); None if there are none.

        Cheap (a memcpy per column): it runs on the load generator's loop. :func:`build_batch` makes
        the record batch from it, anywhere.
        """
        n = len(self)
        if not n:
            return None
        data = {}
        for attr, _typecode, _type in self._NUMERIC:
            col = getattr(self, attr)
            data[attr] = col.tobytes()
            del col[:]
        raw = (n, data, list(self.key_types), list(self.key_names), list(self.exc_texts), list(_REQ_TEXTS))
        # Bounded: request names or exception texts with ids in them must not grow the code tables.
        if len(self.key_names) > _EXCEPTION_CACHE_MAX:
            for names in self.keys.values():
                names.clear()
            del self.key_types[:], self.key_names[:]
        if len(self.exc_texts) > _EXCEPTION_CACHE_MAX:
            self.exc_codes.clear()
            del self.exc_texts[1:]
        return raw


def build_batch(raw: tuple, worker: str, all_reqs: str) -> pa.RecordBatch:
    """A record batch of :data:`SCHEMA` from :meth:`_Columns.take`'s copy. Touches no shared state, and
    Arrow's kernels release the GIL: the recorder runs it on a native thread, beside the users."""
    n, data, key_types, key_names, exc_texts, req_texts = raw
    cols = {attr: pa.Array.from_buffers(arrow_type, n, [None, pa.py_buffer(data[attr])])
            for attr, _typecode, arrow_type in _Columns._NUMERIC}
    rt = cols["rt"]
    if pc.any(pc.is_nan(rt)).as_py():
        rt = pc.if_else(pc.is_nan(rt), pa.nulls(n, pa.float64()), rt)
    key, exc = cols["key"], cols["exc"]
    zeros = int32_array(bytes(4 * n))
    # (No Python scalars in Arrow calls: converting one imports pandas into the load generator.)
    return pa.RecordBatch.from_arrays([
        cols["ts"], string_array(key_types).take(key), string_array(key_names).take(key), rt, cols["length"], cols["code"],
        pc.equal(exc, zeros), string_array(exc_texts).take(exc), string_array([all_reqs, *req_texts]).take(cols["req"]),
        string_array([worker]).take(zeros), cols["users"],
    ], schema=SCHEMA)


def _as_float(value, default: float = float("nan")) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default if default is not None else float("nan")


def _as_int(value, bound: int) -> int:
    """``value`` as an int within ±``bound``; 0 for anything else."""
    try:
        v = int(value or 0)
    except (TypeError, ValueError, OverflowError):
        return 0
    return v if -bound <= v < bound else 0


class Recorder:
    """Columnar buffer of samples, flushed in batches to a stream file or to the master."""

    def __init__(self, environment, out_dir: str | None, requirements: list[str],
                 flush_interval: float, duration: float | None, monitor: LiveMonitor | None = None) -> None:
        self.env = environment
        self.runner = environment.runner
        self.out_dir = out_dir
        self.requirements = requirements
        self.all_reqs = ",".join(requirements)
        self.flush_interval = flush_interval
        self.duration = duration
        self.is_worker = isinstance(self.runner, WorkerRunner)
        self.is_master = isinstance(self.runner, MasterRunner)
        self.worker_id = getattr(self.runner, "client_id", None) if self.is_worker else "local"
        self.sent = 0          # rows shipped or written by this process
        self.dropped = 0       # rows that could not be written (disk full)
        self.write_error: str | None = None
        self.received: dict[str, int] = {}    # master: rows arrived per worker
        self.worker_sent: dict[str, int] = {}  # master: rows each worker says it sent
        self.seq = 0
        self.writer = None
        self.sink = None
        self.meta: dict[str, Any] = {"requirements": requirements, "ramp_up_done": None,
                                     "start": None, "end": None, "stop_reason": None,
                                     "users_reached": 0, "samples_recorded": 0}
        self.closed = False
        self._flusher = None
        self._monitor_greenlet = None
        self.monitor = monitor or LiveMonitor([])
        self.columns = _Columns(NameRedactor())
        self._users = _UserCount.of(self.runner)
        self.attributed = True  # until test_start knows the tasks: look up each request's task
        self.on_request = self.columns.listener(self._users, self.attributed)
        self._unsent: list[pa.RecordBatch] = []  # worker: batches the master has not taken yet
        self._flush_lock = gevent.lock.Semaphore()
        self.stream_closed = False
        self._pool = gevent.get_hub().threadpool
        self.process = psutil.Process()
        self.process.cpu_percent(None)  # the first call only starts the measurement
        self.cpu: list[list[float]] = []            # this process: [t, % of one core] each second
        self.worker_cpu: dict[str, list] = {}       # master: the same, per worker
        self.known_workers: dict[str, float] = {}   # master: worker id -> first seen
        self.lost_workers: dict[str, dict] = {}     # master: worker id -> when lost, what it delivered

    def _open_stream(self) -> None:
        path = os.path.join(self.out_dir, STREAM_NAME)
        self.sink = open(path, "wb")
        self.writer = pa.ipc.new_stream(self.sink, SCHEMA, options=_IPC_OPTIONS)
        self.sink.flush()

    def _offload(self, fn, *args):
        """``fn(*args)`` on a native thread, this greenlet waiting (Arrow releases the GIL: the work runs
        on another core while the users go on); inline where there is no hub to wait on."""
        return self._pool.apply(fn, args) if self._pool is not None else fn(*args)

    def _write_and_scan(self, batch: pa.RecordBatch):
        """(thread) Append ``batch`` to the stream; (live-view slice, error text or None)."""
        if self.write_error is not None:
            return None, self.write_error
        if self.stream_closed:
            return None, f"{STREAM_NAME} was already closed"
        try:
            if self.writer is None:
                self._open_stream()
            self.writer.write_batch(batch)
            self.sink.flush()
        except OSError as e:  # a full or failing disk: keep what is written, stop the run, say so
            return None, f"cannot write {STREAM_NAME}: {e.strerror or e}"
        return self.monitor.scan(batch), None

    def _store(self, batch: pa.RecordBatch) -> None:
        """Write ``batch`` to the stream and show it to the live view (local or master; flush lock held)."""
        piece, error = self._offload(self._write_and_scan, batch)
        if error is not None:
            self.dropped += batch.num_rows
            if self.write_error is None:
                self.write_error = error
                log.error("loadgate: %s; stopping the run", error)
                gevent.spawn(self.finish, f"stopped: {error}")
            return
        self.monitor.append(piece)

    def _build(self, raw: tuple | None, pending: list[pa.RecordBatch]):
        """(thread) (new batch or None, its most users, IPC bytes of pending + it if this is a worker)."""
        batch = build_batch(raw, self.worker_id or "worker", self.all_reqs) if raw is not None else None
        users = (pc.max(batch.column("users")).as_py() or 0) if batch is not None else 0
        if not self.is_worker:
            return batch, users, None
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, SCHEMA, options=_IPC_OPTIONS) as w:
            for b in [*pending, *([batch] if batch is not None else [])]:
                w.write_batch(b)
        return batch, users, sink.getvalue().to_pybytes()

    def flush(self) -> None:
        """Move buffered rows out: to the stream file (local/master) or to the master (worker)."""
        with self._flush_lock:  # one flush at a time, whichever greenlet asks: batches stay in order
            raw = self.columns.take()
            if raw is None and not self._unsent:
                return
            batch, users, ipc = self._offload(self._build, raw, self._unsent)
            self.meta["users_reached"] = max(self.meta["users_reached"], users)
            if not self.is_worker:
                self._store(batch)
                self.sent += batch.num_rows
                return
            pending = self._unsent + ([batch] if batch is not None else [])
            rows = sum(b.num_rows for b in pending)
            try:
                self.runner.send_message(MSG_SAMPLES, {"worker": self.worker_id, "seq": self.seq + 1, "cpu": self.cpu,
                                                       "rows": rows, "ipc": ipc})
            except (RPCError, RPCSendError) as e:  # keep the rows: the next flush sends them again
                log.warning("loadgate: could not send %d samples to the master (%s); retrying", rows, e)
                self._unsent = pending
                return
            self._unsent = []
            self.seq += 1
            self.cpu = []
            self.sent += rows

    def _flush_loop(self) -> None:
        while True:
            gevent.sleep(self.flush_interval)
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - the recorder must outlive one bad batch; it is logged
                log.exception("loadgate: flushing samples failed")

    def _monitor_loop(self) -> None:
        """Each second: this process's CPU; on local/master also the live view and abort-on-fail."""
        ticks = 0
        while True:
            gevent.sleep(1.0)
            now = time.time()
            self.cpu.append([now, self.process.cpu_percent(None)])
            ticks += 1
            if self.is_master and self.meta["end"] is None:
                self._check_workers(now)
            if self.is_worker or self.meta["start"] is None or self.meta["end"] is not None:
                continue
            snap, abort = self.monitor.evaluate(now, started=self.meta["start"],
                                                ramped=self.meta["ramp_up_done"] is not None, offload=self._offload)
            if abort:
                log.warning("loadgate: %s", abort)
                self.meta["aborted"] = abort
                self.finish(abort)
                return
            if ticks % 2 == 0 and self.out_dir:
                snap.update(elapsed=now - self.meta["start"], users=self.runner.user_count,
                            ramp_up_done=self.meta["ramp_up_done"], cpu=self.cpu[-1][1],
                            workers=len(getattr(self.runner, "clients", {}) or {}) or None)
                _write_json(os.path.join(self.out_dir, PROGRESS_NAME), snap)

    # --- master side ------------------------------------------------------------------------
    def on_samples(self, environment, msg, **_kw) -> None:
        data = msg.data
        reader = pa.ipc.open_stream(pa.py_buffer(data["ipc"]))
        n = 0
        with self._flush_lock:
            for batch in reader:
                self._store(batch)
                n += batch.num_rows
        self.received[data["worker"]] = self.received.get(data["worker"], 0) + n
        self.worker_cpu.setdefault(data["worker"], []).extend(data.get("cpu") or [])

    def _check_workers(self, now: float) -> None:
        """Note workers that went missing or quit before confirming their last batch."""
        current = {c.id: c.state for c in self.runner.clients.all}
        for wid in current:
            self.known_workers.setdefault(wid, now)
        for wid in self.known_workers:
            if wid in self.lost_workers or wid in self.worker_sent:
                continue
            if current.get(wid, "missing") == "missing":
                started = self.meta["start"] or now
                self.lost_workers[wid] = {"at": now, "after_s": round(now - started, 1),
                                          "delivered": self.received.get(wid, 0)}
                log.warning("loadgate: worker %s lost %.0fs into the run after delivering %d samples",
                            wid, now - started, self.received.get(wid, 0))

    def _await_workers(self, timeout: float) -> None:
        """Master: wait until every live worker confirmed its last batch (bounded)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            self._check_workers(time.time())
            pending = [w for w in self.known_workers if w not in self.worker_sent and w not in self.lost_workers]
            if not pending:
                return
            gevent.sleep(0.1)
        log.warning("loadgate: workers %s did not confirm their last batch within %.0fs", pending, timeout)

    def on_done(self, environment, msg, **_kw) -> None:
        self.worker_sent[msg.data["worker"]] = msg.data["sent"]
        self.worker_cpu.setdefault(msg.data["worker"], []).extend(msg.data.get("cpu") or [])

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        if self.out_dir and not self.is_worker:
            self._open_stream()
        self._flusher = gevent.spawn(self._flush_loop)
        self._monitor_greenlet = gevent.spawn(self._monitor_loop)

    def on_test_start(self, environment, **_kw) -> None:
        self.meta["start"] = self.meta["start"] or time.time()
        forwarded = getattr(environment.parsed_options, "loadgate_requirements", None)
        if self.is_worker and forwarded:  # a remote worker learns the run's requirements from the master
            self.requirements = [r for r in forwarded.split(",") if r]
            self.all_reqs = ",".join(self.requirements)
        user_classes = environment.runner.user_classes
        attributed = needs_attribution(user_classes, self.requirements)
        if attributed:
            for user_class in user_classes:
                attribute_tasks(user_class, self.requirements)
        if attributed != self.attributed:  # before any user starts: swap in the listener that fits
            listener = self.columns.listener(self._users, attributed)
            handlers = environment.events.request._handlers
            if self.on_request in handlers:
                handlers[handlers.index(self.on_request)] = listener
            self.on_request, self.attributed = listener, attributed

    def on_spawning_complete(self, user_count, **_kw) -> None:
        if self.meta["ramp_up_done"] is not None or self.is_worker:
            return
        self.meta["ramp_up_done"] = time.time()
        self.meta["users_reached"] = max(self.meta["users_reached"], user_count)
        if self.duration is not None:
            gevent.spawn_later(self.duration, self.finish, "duration reached")

    def finish(self, reason: str) -> None:
        """Stop the run: end of the analysis window is now."""
        if self.meta["end"] is None:
            self.meta["end"] = time.time()
            self.meta["stop_reason"] = reason
        log.info("loadgate: %s, stopping", reason)
        if self.is_master:
            self.runner.stop()          # workers stop their users, flush, and confirm
            self._await_workers(WORKER_DONE_TIMEOUT_S)
            self._quit_workers()
        self.runner.quit()

    def _quit_workers(self) -> None:
        """Tell every worker to quit: Locust forgets a worker once it reports it stopped, so its own
        quit() would leave workers that stopped first running until their heartbeat times out."""
        from locust.rpc import Message

        for wid in self.known_workers:
            if wid not in self.lost_workers:
                self.runner.server.send_to_client(Message("quit", None, wid))

    def on_test_stop(self, environment, **_kw) -> None:
        if self.meta["end"] is None and not self.is_worker:
            self.meta["end"] = time.time()
            self.meta["stop_reason"] = self.meta["stop_reason"] or "stopped"
        self.flush()
        if self.is_worker:
            # Locust reports worker stats every 3 s; send the last ones now, before our confirmation,
            # so the master's request count is complete when it checks it against the samples.
            send_stats = getattr(self.runner, "_send_stats", None)
            if send_stats is not None:
                send_stats()
            cpu, self.cpu = self.cpu, []
            self.runner.send_message(MSG_DONE, {"worker": self.worker_id, "sent": self.sent, "cpu": cpu})

    def close(self, environment, **_kw) -> None:
        """At quitting: last flush, close the stream, write recorder.json."""
        if self.closed:
            return
        self.closed = True
        with self._flush_lock:  # not in the middle of a flush: its thread would still be writing
            for g in (self._flusher, self._monitor_greenlet):
                if g is not None:
                    g.kill(block=False)
        self.flush()
        if self.is_worker:
            return
        if self.meta["end"] is None:
            self.meta["end"] = time.time()
            self.meta["stop_reason"] = "interrupted"
            if self.is_master and self.known_workers:  # interrupted: still collect the workers' last batches
                self.runner.stop()
                self._await_workers(INTERRUPT_DONE_TIMEOUT_S)
                self._quit_workers()
        with self._flush_lock:  # no batch half-written by a pool thread; later ones are counted as dropped
            writer, self.writer = self.writer, None
            if writer is not None:
                try:
                    writer.close()
                    self.sink.close()
                except OSError as e:
                    self.write_error = self.write_error or f"cannot write {STREAM_NAME}: {e.strerror or e}"
                self.stream_closed = True
        stats = environment.runner.stats.total
        self.meta.update({
            "samples_recorded": (self.sent if not self.is_master else sum(self.received.values())) - self.dropped,
            "samples_dropped": self.dropped,
            "write_error": self.write_error,
            "locust_requests": stats.num_requests,
            "locust_failures": stats.num_failures,
            "workers": ({w: {"sent": self.worker_sent.get(w), "received": self.received.get(w, 0),
                             "lost": self.lost_workers.get(w)}
                         for w in sorted(set(self.known_workers) | set(self.received))} if self.is_master
                        else {"local": {"sent": self.sent, "received": self.sent, "lost": None}}),
            "cpu": ({w: c for w, c in self.worker_cpu.items()} if self.is_master else {"local": self.cpu}),
            "unhandled_exceptions": len(environment.runner.exceptions),
            "exceptions": [redact(v.get("msg", "")) for v in list(environment.runner.exceptions.values())[:5]],
        })
        if self.out_dir:
            try:
                _write_json(os.path.join(self.out_dir, META_NAME), self.meta)
            except OSError as e:
                log.error("loadgate: cannot write %s: %s", META_NAME, e.strerror or e)


def _write_json(path: str, data: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def _add_arguments(parser) -> None:
    g = parser.add_argument_group("loadgate recorder")
    g.add_argument("--loadgate-dir", default=os.environ.get("LOADGATE_DIR"),
                   help="run directory the recorder writes into (master/local)")
    g.add_argument("--loadgate-requirements", default="",
                   help="comma-separated requirement IDs of this run")
    g.add_argument("--loadgate-duration", type=float, default=None,
                   help="seconds at full user count after spawning completes")
    g.add_argument("--loadgate-flush", type=float, default=1.0, help="seconds between batches")
    g.add_argument("--loadgate-rules", default=None, help="JSON file of alert rules for the live view")


def _on_init(environment, **_kw) -> None:
    opts = environment.parsed_options
    if environment.runner is None or opts is None:
        return
    reqs = [r for r in (opts.loadgate_requirements or "").split(",") if r]
    rec = Recorder(environment, opts.loadgate_dir, reqs, opts.loadgate_flush, opts.loadgate_duration,
                   LiveMonitor.from_file(opts.loadgate_rules))
    # The first use of Arrow's compute functions initialises them: pay it now, before any user
    # starts, not in the first flush, where it would stall every user.
    rec.columns.append_checked(0.0, 0.0, 0, 0, 0, rec.columns.new_key("", ""), 0, 0)
    rec.monitor.scan(build_batch(rec.columns.take(), "", ""))
    rec.columns.keys.clear()
    del rec.columns.key_types[:], rec.columns.key_names[:]
    # The recorder's imports (pyarrow, numpy: ~25k objects; not pandas, which nothing here may import)
    # would make every full garbage collection of the run longer than plain Locust's; what exists now
    # lives as long as the process.
    gc.collect()
    gc.freeze()
    environment.loadgate_recorder = rec
    ev = environment.events
    ev.request.add_listener(rec.on_request)
    ev.test_start.add_listener(rec.on_test_start)
    ev.spawning_complete.add_listener(rec.on_spawning_complete)
    ev.test_stop.add_listener(rec.on_test_stop)
    ev.quitting.add_listener(rec.close)
    if rec.is_master:
        environment.runner.register_message(MSG_SAMPLES, rec.on_samples)
        environment.runner.register_message(MSG_DONE, rec.on_done)
    rec.start()


def install() -> None:
    """Register the recorder with Locust's global event hooks (called by the plugin file)."""
    events.init_command_line_parser.add_listener(_add_arguments)
    events.init.add_listener(_on_init)
