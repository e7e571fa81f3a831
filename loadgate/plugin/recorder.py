"""The recorder: a Locust plugin that keeps every request as a raw sample.

Loaded into the Locust process (``locust -f scenario.py,loadgate/locust_plugin.py``), never into
the loadgate CLI. On the hot path each request packs its numbers, and its strings as small integer
codes, into one binary row (a C listener where it was built, else Python: ``columns.py``). Every
``--loadgate-flush`` seconds a greenlet takes the rows and builds the Arrow record batch of them: on the
loop itself, or on a native thread once they are large (``--loadgate-offload-rows``). Nothing here
imports pandas (Arrow does, to convert Python objects: the code builds arrays from buffers).

Where a batch goes depends on the process's role, chosen once at init (:func:`loadgate.plugin.hooks`):

- :class:`~loadgate.plugin.recorder_local.LocalRecorder`, one process: appends batches to an Arrow IPC
  stream (``samples.arrows``, which survives a crash up to the last batch; the CLI turns it into
  ``samples.parquet`` after the run), runs the live view, owns the run's clock (when spawning completes
  it notes ramp-up done and stops the run ``--loadgate-duration`` seconds later, so that ``--duration`` is
  time at full load) and writes what it saw to ``recorder.json``;
- :class:`~loadgate.plugin.recorder_worker.WorkerRecorder` ships each batch as IPC bytes to the master over
  Locust's message channel, and confirms what it sent when its test stops;
- :class:`~loadgate.plugin.recorder_master.MasterRecorder` is a local sink that also collects the workers'
  batches (only it writes), and counts what each worker says it sent against what arrived.

This module holds what the three share: the row buffer and its listener, the flush, the once-a-second
samples of this process, and the lifecycle's skeleton. A module that adds a block to ``recorder.json`` and
to a worker's batches (merged on the master) does it with a :class:`~loadgate.plugin.recorder_parts.Part`
given to :meth:`Recorder.add_part`: this process's CPU and the paced users' schedule are two.
"""

from __future__ import annotations

import logging
import time

import gevent
import gevent.lock
import psutil
import pyarrow as pa
import pyarrow.compute as pc

from loadgate.data.recorder_report import RecorderReport
from loadgate.pacing import COUNTS, adopt, sweep
from loadgate.plugin.attribution import attribute_tasks, needs_attribution
from loadgate.plugin.columns import Columns, UserCount, build_batch
from loadgate.plugin.compat import replace_listener
from loadgate.plugin.live import LiveMonitor
from loadgate.plugin.recorder_parts import Part, Series
from loadgate.shared.redact import NameRedactor

log = logging.getLogger("loadgate.plugin.recorder")

MSG_SAMPLES = "loadgate_samples"
MSG_DONE = "loadgate_done"
OFFLOAD_ROWS = 20_000  # default of --loadgate-offload-rows (why: its help, hooks.py)
# LZ4, not zstd: compressing the stream is the largest part of a flush (zstd 0.26 µs a sample on
# this machine, LZ4 0.10); the stream only lives until samples.parquet is written (zstd, ~6-9 B/sample).
# Compressed by the calling thread: Arrow's pool threads would share the generator's core, and handing
# a 5,000-row batch's columns to them cost 0.48 ms of the process's CPU where inline costs 0.28 ms.
IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4", use_threads=False)


def new_meta(requirements: list[str], start: float | None = None) -> RecorderReport:
    """What ``recorder.json`` starts as, for a run (or one test of a UI session) starting at ``start``."""
    return {
        "requirements": requirements,
        "ramp_up_done": None,
        "start": start,
        "end": None,
        "stop_reason": None,
        "users_reached": 0,
        "samples_recorded": 0,
    }


class Recorder:
    """Columnar buffer of samples, flushed in batches; where they go is the role's (a subclass's) business."""

    collects = False  # the master: the report's per-process blocks are the workers'

    def __init__(
        self,
        environment,
        out_dir: str | None,
        requirements: list[str],
        flush_interval: float,
        duration: float | None,
        monitor: LiveMonitor | None = None,
    ) -> None:
        self.env = environment
        self.runner = environment.runner
        self.out_dir = out_dir
        self.requirements = requirements
        self.all_reqs = ",".join(requirements)
        self.flush_interval = flush_interval
        self.duration = duration
        self.worker_id: str | None = "local"  # the worker column of this process's rows
        self.sent = 0  # rows shipped or written by this process
        self.meta: RecorderReport = new_meta(requirements)
        self.dropped_iterations = 0  # open model: starts no user was free for (plugin.arrival sets it)
        self.ui = False  # a web UI session (loadgate.plugin.ui_session): a stop ends one test, not the process
        self.closed = False
        self._flusher = None
        self._monitor_greenlet = None
        self.monitor = monitor or LiveMonitor([])
        self.columns = Columns(NameRedactor())
        self._users = UserCount.of(self.runner)
        self.attributed = True  # until test_start knows the tasks: look up each request's task
        self.on_request = self.columns.listener(self._users, self.attributed)
        self._flush_lock = gevent.lock.Semaphore()
        self._pool = gevent.get_hub().threadpool
        self.offload_rows = OFFLOAD_ROWS
        self._heavy = False  # the last batch handled had offload_rows rows or more: build and scan on self._pool
        self.process = psutil.Process()
        self.process.cpu_percent(None)  # the first call only starts the measurement
        self.cpu = Series("cpu")  # this process: [t, % of one core] each second
        # paced iterations started in each second, and how many the generator started late: [t, started, late]
        self.schedule = Series("schedule")
        self.parts: list[Part] = [self.cpu, self.schedule]
        self._counted = (0, 0)
        self.paced: dict[str, float] = {}  # paced User classes and their periods (s)

    def add_part(self, part: Part) -> None:
        """Add a block to ``recorder.json`` (local, master) and to each batch a worker ships (see :class:`Part`)."""
        self.parts.append(part)

    # --- the flush ----------------------------------------------------------------------------
    def _offload(self, fn, *args):
        """``fn(*args)``: inline, or (large batches) on a native thread, this greenlet waiting."""
        return self._pool.apply(fn, args) if self._heavy and self._pool is not None else fn(*args)

    def _prepare(self, raw: tuple | None) -> tuple[pa.RecordBatch | None, int, bytes | None]:
        """(inline or thread) (new batch or None, its most users, what a worker ships: None here)."""
        batch = build_batch(raw, self.worker_id or "worker", self.all_reqs) if raw is not None else None
        users = (pc.max(batch.column("users")).as_py() or 0) if batch is not None else 0
        return batch, users, None

    def _has_unsent(self) -> bool:
        """Batches taken earlier that have not gone anywhere yet (a worker's, when the master was unreachable)."""
        return False

    def _deliver(self, batch: pa.RecordBatch | None, shipped: bytes | None) -> None:
        """Where a flush's batch goes (flush lock held)."""
        raise NotImplementedError

    def flush(self) -> None:
        """Move buffered rows out: to the stream file (local/master) or to the master (worker)."""
        with self._flush_lock:  # one flush at a time, whichever greenlet asks: batches stay in order
            raw = self.columns.take()
            if raw is None and not self._has_unsent():
                return
            self._heavy = (raw[0] if raw is not None else 0) >= self.offload_rows
            batch, users, shipped = self._offload(self._prepare, raw)
            self.meta["users_reached"] = max(self.meta["users_reached"], users)
            self._deliver(batch, shipped)

    def _flush_loop(self) -> None:
        while True:
            gevent.sleep(self.flush_interval)
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - the recorder must outlive one bad batch; it is logged
                log.exception("loadgate: flushing samples failed")
            sweep()  # users that ended

    # --- each second --------------------------------------------------------------------------
    def _monitor_loop(self) -> None:
        """Each second: this process's CPU and schedule counts, then the role's :meth:`_tick`."""
        ticks = 0
        while True:
            gevent.sleep(1.0)
            now = time.time()
            self._sample(now)
            ticks += 1
            if self._tick(now, ticks):
                return

    def _sample(self, now: float) -> None:
        self.cpu.add([now, self.process.cpu_percent(None)])
        counted = (COUNTS[0], COUNTS[1])
        if counted != self._counted:
            self.schedule.add([now, counted[0] - self._counted[0], counted[1] - self._counted[1]])
            self._counted = counted

    def _tick(self, now: float, ticks: int) -> bool:
        """The role's once-a-second work after the samples; True ends the loop (the run was aborted)."""
        return False

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._flusher = gevent.spawn(self._flush_loop)
        self._monitor_greenlet = gevent.spawn(self._monitor_loop)

    def register(self, environment) -> None:
        """The role's own message handlers on the runner (the master's); none here."""

    def on_test_start(self, environment, **_kw) -> None:
        self.meta["start"] = self.meta["start"] or time.time()
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
        """Spawning is done (the clock's business: local, master)."""

    def on_test_stop(self, environment, **_kw) -> None:
        self.flush()

    def close(self, environment, **_kw) -> None:
        """At quitting: last flush, then the role's end (the stream closed, recorder.json written)."""
        if self.closed:
            return
        self.closed = True
        self._before_last_flush()
        with self._flush_lock:  # not in the middle of a flush: its thread would still be writing
            for g in (self._flusher, self._monitor_greenlet):
                if g is not None:
                    g.kill(block=False)
        self.flush()
        self._after_last_flush(environment)

    def _before_last_flush(self) -> None:
        """At quitting, before the last flush."""

    def _after_last_flush(self, environment) -> None:
        """At quitting, after the last flush."""
