"""The recorder: a Locust plugin that keeps every request as a raw sample.

Loaded into the Locust process (``locust -f scenario.py,loadgate/locust_plugin.py``), never into
the loadgate CLI. On the hot path it appends one tuple per request to a list; a greenlet turns the
list into an Arrow record batch every ``--loadgate-flush`` seconds. A local or master process
appends batches to an Arrow IPC stream (``samples.arrows``), which survives a crash up to the last
batch; the CLI turns it into ``samples.parquet`` after the run. A worker ships each batch as IPC
bytes to the master over Locust's message channel; only the master writes.

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
from typing import Any

import gevent
import pyarrow as pa
import pyarrow.compute as pc
from greenlet import getcurrent
from locust import events
from locust.exception import RPCError, RPCSendError
from locust.runners import MasterRunner, Runner, WorkerRunner
from locust.user.task import TaskSet

import psutil

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
_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="zstd")
_EXCEPTION_CACHE_MAX = 20_000  # distinct names / exception texts remembered (redacted once each)

# greenlet -> requirement string of the task it is running (absent: outside any task)
_current: dict[Any, str] = {}


def _with_requirement(fn, req: str):
    """Wrap a task (or on_start/on_stop of a tagged TaskSet) so its requests carry ``req``."""
    if getattr(fn, "_loadgate_req", None) == req:
        return fn

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        g = getcurrent()
        prev = _current.get(g)
        _current[g] = req
        try:
            return fn(*args, **kwargs)
        finally:
            if prev is None:
                _current.pop(g, None)
            else:
                _current[g] = prev

    wrapper._loadgate_req = req  # type: ignore[attr-defined]
    return wrapper


def attribute_tasks(holder, run_reqs: list[str], inherited: frozenset = frozenset(), seen=None) -> None:
    """Wrap every task under ``holder`` (a User or TaskSet class) with its requirement IDs.

    A task's requirements are its own requirement tags plus those of the TaskSets around it,
    restricted to the requirements of this run.
    """
    seen = set() if seen is None else seen
    if holder in seen:
        return
    seen.add(holder)
    new_tasks = []
    for task in holder.tasks:
        tags = inherited | frozenset(getattr(task, "locust_tag_set", ()))
        reqs = ",".join(r for r in run_reqs if r in tags)
        if isinstance(task, type) and issubclass(task, TaskSet):
            attribute_tasks(task, run_reqs, tags, seen)
            if reqs:
                for hook in ("on_start", "on_stop"):
                    setattr(task, hook, _with_requirement(getattr(task, hook), reqs))
            new_tasks.append(task)
        elif reqs:
            new_tasks.append(_with_requirement(task, reqs))
        else:
            new_tasks.append(task)
    holder.tasks = new_tasks


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
        self.rows: list[tuple] = []
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
        self.redact_name = NameRedactor()
        self._names: dict[str, str] = {}  # name -> redacted name, read directly on the hot path
        self._exceptions: dict[str, str] = {}
        self._users = _UserCount.of(self.runner)
        self.process = psutil.Process()
        self.process.cpu_percent(None)  # the first call only starts the measurement
        self.cpu: list[list[float]] = []            # this process: [t, % of one core] each second
        self.worker_cpu: dict[str, list] = {}       # master: the same, per worker
        self.known_workers: dict[str, float] = {}   # master: worker id -> first seen
        self.lost_workers: dict[str, dict] = {}     # master: worker id -> when lost, what it delivered

    # --- hot path ---------------------------------------------------------------------------
    def on_request(self, request_type, name, response_time, response_length, response=None,
                   context=None, exception=None, start_time=None, **_kw) -> None:
        # Inlined on purpose (bench/recorder_overhead.py): a cached name is one dict lookup, the user count
        # one len() of the runner's set of user greenlets, an exception text is redacted once per distinct text.
        code = getattr(response, "status_code", 0)
        self.rows.append((
            start_time if start_time is not None else time.time() - (response_time or 0) / 1000.0,
            request_type, self._names.get(name) or self._name(name), response_time, response_length or 0,
            int(code) if code else 0, exception is None,
            None if exception is None else self._exception_text(repr(exception)),
            _current.get(getcurrent(), self.all_reqs), len(self._users),
        ))

    def _name(self, name: str) -> str:
        out = self.redact_name(name)
        if len(self._names) >= _EXCEPTION_CACHE_MAX:  # random URLs as names must not grow it
            self._names.clear()
        self._names[name] = out
        return out

    def _exception_text(self, text: str) -> str:
        out = self._exceptions.get(text)
        if out is None:
            out = redact(text)
            if len(self._exceptions) >= _EXCEPTION_CACHE_MAX:  # texts with ids in them must not grow it
                self._exceptions.clear()
            self._exceptions[text] = out
        return out

    # --- batches ----------------------------------------------------------------------------
    def _batch(self, rows: list[tuple], worker: str) -> pa.RecordBatch:
        cols = list(zip(*rows))
        n = len(rows)
        arrays = [
            pa.array(cols[0], pa.float64()), pa.array(cols[1], pa.string()),
            pa.array(cols[2], pa.string()), pa.array(cols[3], pa.float64()),
            pa.array(cols[4], pa.int64()), pa.array(cols[5], pa.int32()),
            pa.array(cols[6], pa.bool_()), pa.array(cols[7], pa.string()),
            pa.array(cols[8], pa.string()), pa.repeat(pa.scalar(worker, pa.string()), n),
            pa.array(cols[9], pa.int32()),
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=SCHEMA)

    def _open_stream(self) -> None:
        path = os.path.join(self.out_dir, STREAM_NAME)
        self.sink = open(path, "wb")
        self.writer = pa.ipc.new_stream(self.sink, SCHEMA, options=_IPC_OPTIONS)
        self.sink.flush()

    def _write(self, batch: pa.RecordBatch) -> None:
        if self.write_error is not None:
            self.dropped += batch.num_rows
            return
        try:
            if self.writer is None:
                self._open_stream()
            self.writer.write_batch(batch)
            self.sink.flush()
        except OSError as e:  # a full or failing disk: keep what is written, stop the run, say so
            self.write_error = f"cannot write {STREAM_NAME}: {e.strerror or e}"
            self.dropped += batch.num_rows
            log.error("loadgate: %s; stopping the run", self.write_error)
            gevent.spawn(self.finish, f"stopped: {self.write_error}")
            return
        self.monitor.add(batch)

    def flush(self) -> None:
        """Move buffered rows out: to the stream file (local/master) or to the master (worker)."""
        rows, self.rows = self.rows, []
        if not rows:
            return
        batch = self._batch(rows, self.worker_id or "worker")
        users = pc.max(batch.column(10)).as_py() or 0
        self.meta["users_reached"] = max(self.meta["users_reached"], users)
        if self.is_worker:
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, SCHEMA, options=_IPC_OPTIONS) as w:
                w.write_batch(batch)
            cpu = self.cpu
            try:
                self.runner.send_message(MSG_SAMPLES, {"worker": self.worker_id, "seq": self.seq + 1, "cpu": cpu,
                                                       "rows": len(rows), "ipc": sink.getvalue().to_pybytes()})
            except (RPCError, RPCSendError) as e:  # keep the rows: the next flush sends them again
                log.warning("loadgate: could not send %d samples to the master (%s); retrying", len(rows), e)
                self.rows[:0] = rows
                return
            self.seq += 1
            self.cpu = []
        else:
            self._write(batch)
        self.sent += len(rows)

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
                                                ramped=self.meta["ramp_up_done"] is not None)
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
        for batch in reader:
            self._write(batch)
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
        for user_class in environment.runner.user_classes:
            attribute_tasks(user_class, self.requirements)

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
        if self.writer is not None:
            try:
                self.writer.close()
                self.sink.close()
            except OSError as e:
                self.write_error = self.write_error or f"cannot write {STREAM_NAME}: {e.strerror or e}"
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
    # Arrow's conversion of Python lists imports pandas the first time (~0.3 s): pay it now, before any
    # user starts, not in the first flush, where it would stall every user for that long.
    rec._batch([(0.0, "", "", 0.0, 0, 0, True, None, "", 0)], "")
    # The recorder's imports (pyarrow, numpy, pandas: ~40k objects) would make every full garbage
    # collection of the run longer than plain Locust's; what exists now lives as long as the process.
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
