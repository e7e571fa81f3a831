"""The recorder of the process that writes the run directory (one process; the master is one too).

Batches go to the Arrow IPC stream (``samples.arrows``) and to the live view; each two seconds the live
view's figures go to the progress file, each second when an alert rule may abort the run. The run's clock
is here: ramp-up done when spawning completes, the end ``--loadgate-duration`` seconds later. At the end
(or at the end of each test of a web UI session) the stream is closed and ``recorder.json`` written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Any

import gevent
import pyarrow as pa

from loadgate.data.rundir import PROGRESS as PROGRESS_NAME
from loadgate.data.rundir import RECORDER_META as META_NAME
from loadgate.data.rundir import STREAM as STREAM_NAME
from loadgate.data.recorder_report import write_recorder_report
from loadgate.data.rundir import release_space, reserve_space, write_json
from loadgate.data.samples import STREAM_SCHEMA
from loadgate.plugin.recorder import IPC_OPTIONS, Recorder, new_meta
from loadgate.shared.redact import redact

log = logging.getLogger("loadgate.plugin.recorder")


class LocalRecorder(Recorder):
    """Writes the samples to the stream file, runs the live view and the clock, writes ``recorder.json``."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.dropped = 0  # rows that could not be written (disk full)
        self.write_error: str | None = None
        self.writer = None
        self.sink = None
        self.stream_closed = False

    # --- the stream file ----------------------------------------------------------------------
    def _open_stream(self) -> None:
        reserve_space(self.out_dir)  # room for recorder.json, should the stream fill the disk
        self.sink = open(os.path.join(self.out_dir, STREAM_NAME), "wb")
        self.writer = pa.ipc.new_stream(self.sink, STREAM_SCHEMA, options=IPC_OPTIONS)
        self.sink.flush()

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
        """Write ``batch`` to the stream and show it to the live view (flush lock held)."""
        piece, error = self._offload(self._write_and_scan, batch)
        if error is not None:
            self.dropped += batch.num_rows
            if self.write_error is None:
                self.write_error = error
                log.error("loadgate: %s; stopping the run", error)
                gevent.spawn(self.finish, f"stopped: {error}")
            return
        self.monitor.append(piece)

    def _deliver(self, batch: pa.RecordBatch | None, shipped: bytes | None) -> None:
        self._store(batch)
        self.sent += batch.num_rows

    def _close_stream(self) -> None:
        """Close the stream file (flush lock held): no batch half-written by a pool thread; later ones are
        counted as dropped."""
        writer, self.writer = self.writer, None
        if writer is None:
            return
        try:
            writer.close()
            self.sink.close()
        except OSError as e:
            self.write_error = self.write_error or f"cannot write {STREAM_NAME}: {e.strerror or e}"
        self.stream_closed = True
        release_space(self.out_dir)  # the room kept for recorder.json and the CLI's run.json

    def begin_test(self, run_dir: str, now: float) -> None:
        """A web UI session's test starting now records from zero into its own run directory."""
        self.out_dir, self.sent, self.dropped, self.write_error, self.stream_closed = run_dir, 0, 0, None, False
        for part in self.parts:
            part.reset()
        self.meta = new_meta(self.requirements, now)
        self.monitor.batches.clear()  # the live view and abort rules see this test's samples only
        self._open_stream()

    # --- each second: the live view -----------------------------------------------------------
    def _tick(self, now: float, ticks: int) -> bool:
        """The live view: abort rules each second, the progress file every 2 s; True if a rule aborted the run."""
        if self.meta["start"] is None or self.meta["end"] is not None or ticks % 2 and not self.monitor.aborts:
            return False
        snap, abort = self.monitor.evaluate(
            now, started=self.meta["start"], ramped=self.meta["ramp_up_done"] is not None, offload=self._offload
        )
        if abort:
            log.warning("loadgate: %s", abort)
            self.meta["aborted"] = abort
            self.finish(abort)
            return True
        if ticks % 2 == 0 and self.out_dir:
            self._write_progress(now, snap)
        return False

    def _write_progress(self, now: float, snap: dict) -> None:
        snap.update(
            elapsed=now - self.meta["start"],
            users=self.runner.user_count,
            ramp_up_done=self.meta["ramp_up_done"],
            cpu=self.cpu.last()[1],
            omitted=self.monitor.omitted,
            dropped=self.dropped_iterations,
            workers=self._worker_count(),
        )
        with contextlib.suppress(OSError):  # a full disk: the stream's write error stops the run, says so
            write_json(os.path.join(self.out_dir, PROGRESS_NAME), snap, allow_nan=True)

    def _worker_count(self) -> int | None:
        return None

    # --- the clock ----------------------------------------------------------------------------
    def start(self) -> None:
        if self.out_dir:
            self._open_stream()
        super().start()

    def on_spawning_complete(self, user_count, **_kw) -> None:
        if self.meta["ramp_up_done"] is not None:
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
        self._stop_workers()
        if self.ui:  # the session goes on: only this test ends (its run directory is sealed at test_stop)
            self.runner.stop()
            return
        self.runner.quit()

    def _stop_workers(self) -> None:
        """Before this process stops: its workers' last batches (the master's)."""

    def on_test_stop(self, environment, **_kw) -> None:
        if self.meta["end"] is None:
            self.meta["end"] = time.time()
            self.meta["stop_reason"] = self.meta["stop_reason"] or "stopped"
        self.flush()

    # --- the end ------------------------------------------------------------------------------
    def _before_last_flush(self) -> None:
        if self.meta["end"] is None and not self.ui:
            # Interrupted: quitting comes before Locust stops the users; stop them first (every request counted is flushed)
            self.meta["end"], self.meta["stop_reason"] = time.time(), "interrupted"
            self.runner.stop()

    def _after_last_flush(self, environment) -> None:
        if self.ui and (self.out_dir is None or self.stream_closed):
            return  # a UI session between tests: every test was sealed when it stopped
        if self.meta["end"] is None:
            self.meta["end"] = time.time()
            self.meta["stop_reason"] = "interrupted"
            self._collect_interrupted()
        self.seal(environment)

    def _collect_interrupted(self) -> None:
        """Interrupted at quitting: what can still be collected before sealing (the master's workers)."""

    def seal(self, environment) -> None:
        """Close the stream and write recorder.json: the end of the run, or of one test of a UI session."""
        with self._flush_lock:
            self._close_stream()
        self.meta.update(self.report(environment))
        if self.out_dir:
            try:
                write_recorder_report(self.out_dir, self.meta)
            except OSError as e:
                log.error("loadgate: cannot write %s: %s", META_NAME, e.strerror or e)

    def report(self, environment) -> dict[str, Any]:
        """What the end adds to ``recorder.json`` (the keys ``loadgate.run.collect.collect`` reads)."""
        stats = environment.runner.stats.total
        return {
            "samples_recorded": self._recorded() - self.dropped,
            "samples_dropped": self.dropped,
            "write_error": self.write_error,
            "locust_requests": stats.num_requests,
            "locust_failures": stats.num_failures,
            "workers": self._worker_counts(),
            **{part.key: part.report(self.collects) for part in self.parts},
            "paced": self.paced,
            "unhandled_exceptions": len(environment.runner.exceptions),
            "exceptions": [redact(v.get("msg", "")) for v in list(environment.runner.exceptions.values())[:5]],
        }

    def _recorded(self) -> int:
        """Rows that reached this process's stream, written or dropped."""
        return self.sent

    def _worker_counts(self) -> dict[str, dict]:
        return {"local": {"sent": self.sent, "received": self.sent, "lost": None}}
