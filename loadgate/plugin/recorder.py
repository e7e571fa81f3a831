"""The recorder: a Locust plugin that keeps every request as a raw sample.

Loaded into the Locust process (``locust -f scenario.py,loadgate/locust_plugin.py``), never into
the loadgate CLI. On the hot path each request packs its numbers, and its strings as small integer
codes, into one binary row (a C listener where it was built, else Python: ``columns.py``). Every
``--loadgate-flush`` seconds a greenlet takes the rows and builds the Arrow record batch of them: on the
loop itself, or on a native thread once they are large (``--loadgate-offload-rows``). A
local or master process appends batches to an Arrow IPC stream (``samples.arrows``), which survives a
crash up to the last batch; the CLI turns it into ``samples.parquet`` after the run. A worker ships
each batch as IPC bytes to the master over Locust's message channel; only the master writes. Nothing
here imports pandas (Arrow does, to convert Python objects: the code builds arrays from buffers).

The recorder also owns the run's clock: when spawning completes it notes ramp-up done and stops
the run ``--loadgate-duration`` seconds later, so that ``--duration`` is time at full load. What it
saw (times, users reached, counts sent and received per worker) goes to ``recorder.json``.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time

import gevent
import gevent.lock
import psutil
import pyarrow as pa
import pyarrow.compute as pc
from locust.exception import RPCError, RPCSendError
from locust.runners import MasterRunner, WorkerRunner

from loadgate.data.rundir import PROGRESS as PROGRESS_NAME
from loadgate.data.rundir import RECORDER_META as META_NAME
from loadgate.data.rundir import STREAM as STREAM_NAME
from loadgate.data.recorder_report import RecorderReport, write_recorder_report
from loadgate.data.rundir import release_space, reserve_space, write_json
from loadgate.data.samples import STREAM_SCHEMA
from loadgate.plugin.attribution import attribute_tasks, needs_attribution
from loadgate.plugin.columns import Columns, UserCount, build_batch, stream_batch
from loadgate.plugin.compat import replace_listener, send_worker_stats
from loadgate.plugin.live import LiveMonitor
from loadgate.pacing import COUNTS, adopt, sweep
from loadgate.shared.redact import NameRedactor, redact
from loadgate.plugin.worker_watch import check_workers, heard_from

log = logging.getLogger("loadgate.plugin.recorder")

MSG_SAMPLES = "loadgate_samples"
MSG_DONE = "loadgate_done"
WORKER_DONE_TIMEOUT_S = 30.0
INTERRUPT_DONE_TIMEOUT_S = 4.0
OFFLOAD_ROWS = 20_000  # default of --loadgate-offload-rows (why: its help, hooks.py)
# LZ4, not zstd: compressing the stream is the largest part of a flush (zstd 0.26 µs a sample on
# this machine, LZ4 0.10); the stream only lives until samples.parquet is written (zstd, ~6-9 B/sample).
# Compressed by the calling thread: Arrow's pool threads would share the generator's core, and handing
# a 5,000-row batch's columns to them cost 0.48 ms of the process's CPU where inline costs 0.28 ms.
_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4", use_threads=False)

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
        self.meta: RecorderReport = {"requirements": requirements, "ramp_up_done": None,
                                     "start": None, "end": None, "stop_reason": None,
                                     "users_reached": 0, "samples_recorded": 0}
        self.ui = False  # a web UI session (loadgate.plugin.ui_session): a stop ends one test, not the process
        self.closed = False
        self._flusher = None
        self._monitor_greenlet = None
        self.monitor = monitor or LiveMonitor([])
        self.columns = Columns(NameRedactor())
        self._users = UserCount.of(self.runner)
        self.attributed = True  # until test_start knows the tasks: look up each request's task
        self.on_request = self.columns.listener(self._users, self.attributed)
        self._unsent: list[pa.RecordBatch] = []  # worker: batches the master has not taken yet
        self._flush_lock = gevent.lock.Semaphore()
        self.stream_closed = False
        self._pool = gevent.get_hub().threadpool
        self.offload_rows = OFFLOAD_ROWS
        self._heavy = False  # the last batch handled had offload_rows rows or more: build and scan on self._pool
        self.process = psutil.Process()
        self.process.cpu_percent(None)  # the first call only starts the measurement
        self.cpu: list[list[float]] = []            # this process: [t, % of one core] each second
        self.worker_cpu: dict[str, list] = {}       # master: the same, per worker
        # paced iterations started in each second, and how many the generator started late: [t, started, late]
        self.schedule: list[list[float]] = []
        self.worker_schedule: dict[str, list] = {}  # master: the same, per worker
        self._counted = (0, 0)
        self.paced: dict[str, float] = {}           # paced User classes and their periods (s)
        self.known_workers: dict[str, float] = {}   # master: worker id -> first seen
        self.lost_workers: dict[str, dict] = {}     # master: worker id -> when last heard, what it delivered
        self.heard: dict[str, tuple] = {}           # master: worker id -> (heartbeat countdown, last heard)
        self.dropped_iterations = 0                 # open model: starts no user was free for (plugin.arrival)

    def _open_stream(self) -> None:
        reserve_space(self.out_dir)  # room for recorder.json, should the stream fill the disk
        self.sink = open(os.path.join(self.out_dir, STREAM_NAME), "wb")
        self.writer = pa.ipc.new_stream(self.sink, STREAM_SCHEMA, options=_IPC_OPTIONS)
        self.sink.flush()

    def _offload(self, fn, *args):
        """``fn(*args)``: inline, or (large batches) on a native thread, this greenlet waiting."""
        return self._pool.apply(fn, args) if self._heavy and self._pool is not None else fn(*args)

    def _write_and_scan(self, batch: pa.RecordBatch):
        """(inline or thread) Append ``batch`` to the stream; (live-view slice, error text or None)."""
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
        """(inline or thread) (new batch or None, its most users, IPC bytes of pending + it if this is a worker)."""
        batch = build_batch(raw, self.worker_id or "worker", self.all_reqs) if raw is not None else None
        users = (pc.max(batch.column("users")).as_py() or 0) if batch is not None else 0
        if not self.is_worker:
            return batch, users, None
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, STREAM_SCHEMA, options=_IPC_OPTIONS) as w:
            for b in [*pending, *([batch] if batch is not None else [])]:
                w.write_batch(b)
        return batch, users, sink.getvalue().to_pybytes()

    def flush(self) -> None:
        """Move buffered rows out: to the stream file (local/master) or to the master (worker)."""
        with self._flush_lock:  # one flush at a time, whichever greenlet asks: batches stay in order
            raw = self.columns.take()
            if raw is None and not self._unsent:
                return
            self._heavy = (raw[0] if raw is not None else 0) >= self.offload_rows
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
                                                       "schedule": self.schedule,
                                                       "rows": rows, "ipc": ipc})
            except (RPCError, RPCSendError) as e:  # keep the rows: the next flush sends them again
                log.warning("loadgate: could not send %d samples to the master (%s); retrying", rows, e)
                self._unsent = pending
                return
            self._unsent = []
            self.seq += 1
            self.cpu, self.schedule = [], []
            self.sent += rows

    def _flush_loop(self) -> None:
        while True:
            gevent.sleep(self.flush_interval)
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - the recorder must outlive one bad batch; it is logged
                log.exception("loadgate: flushing samples failed")
            sweep()  # users that ended

    def _monitor_loop(self) -> None:
        """Each second: this process's CPU; on local/master also the live view and abort-on-fail."""
        ticks = 0
        while True:
            gevent.sleep(1.0)
            now = time.time()
            self.cpu.append([now, self.process.cpu_percent(None)])
            counted = (COUNTS[0], COUNTS[1])
            if counted != self._counted:
                self.schedule.append([now, counted[0] - self._counted[0], counted[1] - self._counted[1]])
                self._counted = counted
            ticks += 1
            if self.is_master and self.meta["end"] is None:
                self._check_workers(now)
            if (self.is_worker or self.meta["start"] is None or self.meta["end"] is not None
                    or ticks % 2 and not self.monitor.aborts):  # the progress file: every 2 s; aborts: each second
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
                            ramp_up_done=self.meta["ramp_up_done"], cpu=self.cpu[-1][1], omitted=self.monitor.omitted,
                            dropped=self.dropped_iterations,
                            workers=len(getattr(self.runner, "clients", {}) or {}) or None)
                with contextlib.suppress(OSError):  # a full disk: the stream's write error stops the run, says so
                    write_json(os.path.join(self.out_dir, PROGRESS_NAME), snap, allow_nan=True)

    # --- master side ------------------------------------------------------------------------
    def on_samples(self, environment, msg, **_kw) -> None:
        data = msg.data
        reader = pa.ipc.open_stream(pa.py_buffer(data["ipc"]))
        n, self._heavy = 0, data.get("rows", 0) >= self.offload_rows  # a worker's flush: as large as its rate
        with self._flush_lock:
            for batch in reader:
                self._store(stream_batch(batch))
                n += batch.num_rows
        self.received[data["worker"]] = self.received.get(data["worker"], 0) + n
        heard_from(self, data["worker"], time.time())
        self.worker_cpu.setdefault(data["worker"], []).extend(data.get("cpu") or [])
        self.worker_schedule.setdefault(data["worker"], []).extend(data.get("schedule") or [])

    def _check_workers(self, now: float) -> None:
        """Note workers that went missing or quit before confirming their last batch (:mod:`worker_watch`)."""
        check_workers(self, now)

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
        self.worker_schedule.setdefault(msg.data["worker"], []).extend(msg.data.get("schedule") or [])

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
        journeys = getattr(environment.parsed_options, "loadgate_select", None) == "journeys"
        user_classes = environment.runner.user_classes
        self.paced = adopt(user_classes)  # before any user starts: paced users record their schedule
        attributed = needs_attribution(user_classes, self.requirements, journeys)
        if attributed:
            for user_class in user_classes:
                attribute_tasks(user_class, self.requirements, journeys)
        if (attributed, bool(self.paced)) != (self.attributed, self.columns.schedule):
            listener = self.columns.listener(self._users, attributed, bool(self.paced))  # swap in what fits
            replace_listener(environment.events.request, self.on_request, listener)
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
        if self.ui:  # the session goes on: only this test ends (its run directory is sealed at test_stop)
            self.runner.stop()
            return
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
            send_worker_stats(self.runner)
            cpu, schedule, self.cpu, self.schedule = self.cpu, self.schedule, [], []
            self.runner.send_message(MSG_DONE, {"worker": self.worker_id, "sent": self.sent, "cpu": cpu,
                                                "schedule": schedule})

    def close(self, environment, **_kw) -> None:
        """At quitting: last flush, close the stream, write recorder.json."""
        if self.closed:
            return
        self.closed = True
        if self.meta["end"] is None and not (self.is_worker or self.is_master or self.ui):
            # Interrupted: quitting comes before Locust stops the users; stop them first (every request counted is flushed)
            self.meta["end"], self.meta["stop_reason"] = time.time(), "interrupted"
            self.runner.stop()
        with self._flush_lock:  # not in the middle of a flush: its thread would still be writing
            for g in (self._flusher, self._monitor_greenlet):
                if g is not None:
                    g.kill(block=False)
        self.flush()
        if self.is_worker or (self.ui and (self.out_dir is None or self.stream_closed)):
            return  # a UI session between tests: every test was sealed when it stopped
        if self.meta["end"] is None:
            self.meta["end"] = time.time()
            self.meta["stop_reason"] = "interrupted"
            if self.is_master and self.known_workers:  # interrupted: still collect the workers' last batches
                self.runner.stop()
                self._await_workers(INTERRUPT_DONE_TIMEOUT_S)
                self._quit_workers()
        self.seal(environment)

    def seal(self, environment) -> None:
        """Close the stream and write recorder.json: the end of the run, or of one test of a UI session."""
        with self._flush_lock:  # no batch half-written by a pool thread; later ones are counted as dropped
            writer, self.writer = self.writer, None
            if writer is not None:
                try:
                    writer.close()
                    self.sink.close()
                except OSError as e:
                    self.write_error = self.write_error or f"cannot write {STREAM_NAME}: {e.strerror or e}"
                self.stream_closed = True
                release_space(self.out_dir)  # the room kept for recorder.json and the CLI's run.json
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
            "schedule": (dict(self.worker_schedule) if self.is_master else {"local": self.schedule}),
            "paced": self.paced,
            "unhandled_exceptions": len(environment.runner.exceptions),
            "exceptions": [redact(v.get("msg", "")) for v in list(environment.runner.exceptions.values())[:5]],
        })
        if self.out_dir:
            try:
                write_recorder_report(self.out_dir, self.meta)
            except OSError as e:
                log.error("loadgate: cannot write %s: %s", META_NAME, e.strerror or e)
