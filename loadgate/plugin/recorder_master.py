"""The recorder of a master: a local sink that also collects its workers' batches.

Each batch a worker ships (``MSG_SAMPLES``) is written to the stream and shown to the live view, and its
blocks (:class:`~loadgate.plugin.recorder_parts.Part`) merged; ``MSG_DONE`` says how many rows the
worker sent. At the end the master stops its workers, waits (bounded) for each to confirm its last
batch, tells them to quit, and reports per worker what it said it sent, what arrived and whether it was
lost (:mod:`loadgate.plugin.worker_watch`).
"""

from __future__ import annotations

import logging
import time

import gevent
import pyarrow as pa

from loadgate.plugin import worker_auth
from loadgate.plugin.columns import stream_batch
from loadgate.plugin.recorder import MSG_DONE, MSG_SAMPLES
from loadgate.plugin.recorder_local import LocalRecorder
from loadgate.plugin.worker_watch import check_workers, heard_from

log = logging.getLogger("loadgate.plugin.recorder")

WORKER_DONE_TIMEOUT_S = 30.0
INTERRUPT_DONE_TIMEOUT_S = 4.0


class MasterRecorder(LocalRecorder):
    """Writes what the workers ship; watches them; the report's per-process blocks are theirs."""

    collects = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.received: dict[str, int] = {}  # rows arrived per worker
        self.worker_sent: dict[str, int] = {}  # rows each worker says it sent
        self.known_workers: dict[str, float] = {}  # worker id -> first seen
        self.lost_workers: dict[str, dict] = {}  # worker id -> when last heard, what it delivered
        self.heard: dict[str, tuple] = {}  # worker id -> (heartbeat countdown, last heard)

    def register(self, environment) -> None:
        self.meta["refused_workers"] = worker_auth.REFUSED  # filled by the socket monitor; in recorder.json at the end
        environment.runner.register_message(MSG_SAMPLES, self.on_samples)
        environment.runner.register_message(MSG_DONE, self.on_done)

    # --- the workers' messages ----------------------------------------------------------------
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
        self._merge(data)

    def on_done(self, environment, msg, **_kw) -> None:
        self.worker_sent[msg.data["worker"]] = msg.data["sent"]
        self._merge(msg.data)

    def _merge(self, data: dict) -> None:
        for part in self.parts:
            part.merge(data["worker"], data.get(part.key))

    # --- watching them ------------------------------------------------------------------------
    def _tick(self, now: float, ticks: int) -> bool:
        if self.meta["end"] is None:
            self._check_workers(now)
        return super()._tick(now, ticks)

    def _worker_count(self) -> int | None:
        return len(getattr(self.runner, "clients", {}) or {}) or None

    def _check_workers(self, now: float) -> None:
        """Note workers that went missing or quit before confirming their last batch (:mod:`worker_watch`)."""
        check_workers(self, now)

    def _await_workers(self, timeout: float) -> None:
        """Wait until every live worker confirmed its last batch (bounded)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            self._check_workers(time.time())
            pending = [w for w in self.known_workers if w not in self.worker_sent and w not in self.lost_workers]
            if not pending:
                return
            gevent.sleep(0.1)
        log.warning("loadgate: workers %s did not confirm their last batch within %.0fs", pending, timeout)

    def _quit_workers(self) -> None:
        """Tell every worker to quit: Locust forgets a worker once it reports it stopped, so its own
        quit() would leave workers that stopped first running until their heartbeat times out."""
        from locust.rpc import Message

        for wid in self.known_workers:
            if wid not in self.lost_workers:
                self.runner.server.send_to_client(Message("quit", None, wid))

    # --- the end ------------------------------------------------------------------------------
    def _stop_workers(self) -> None:
        self.runner.stop()  # workers stop their users, flush, and confirm
        self._await_workers(WORKER_DONE_TIMEOUT_S)
        self._quit_workers()

    def _before_last_flush(self) -> None:
        """(Interrupted: the workers are stopped after the last flush, in :meth:`_collect_interrupted`.)"""

    def _collect_interrupted(self) -> None:
        if self.known_workers:  # interrupted: still collect the workers' last batches
            self.runner.stop()
            self._await_workers(INTERRUPT_DONE_TIMEOUT_S)
            self._quit_workers()

    def _recorded(self) -> int:
        return sum(self.received.values())

    def _worker_counts(self) -> dict[str, dict]:
        return {
            w: {"sent": self.worker_sent.get(w), "received": self.received.get(w, 0), "lost": self.lost_workers.get(w)}
            for w in sorted(set(self.known_workers) | set(self.received))
        }
