"""The recorder of a worker: ships each batch to the master, writes nothing.

Each flush sends the batch as Arrow IPC bytes over Locust's message channel (``MSG_SAMPLES``), with
each :class:`~loadgate.plugin.recorder_parts.Part`'s block; a batch the channel refused is kept and sent
with the next. When its test stops, the worker sends its last batch, its request stats and then
``MSG_DONE`` with how many rows it sent, which the master counts against what arrived.
"""

from __future__ import annotations

import logging
from typing import Any

import pyarrow as pa
from locust.exception import RPCError, RPCSendError

from loadgate.data.samples import STREAM_SCHEMA
from loadgate.plugin.compat import send_worker_stats
from loadgate.plugin.recorder import IPC_OPTIONS, MSG_DONE, MSG_SAMPLES, Recorder

log = logging.getLogger("loadgate.plugin.recorder")


class WorkerRecorder(Recorder):
    """Batches to the master; the requirements come from the master's spawn message."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.worker_id = getattr(self.runner, "client_id", None)
        self.seq = 0
        self._unsent: list[pa.RecordBatch] = []  # batches the master has not taken yet

    def _prepare(self, raw: tuple | None) -> tuple[pa.RecordBatch | None, int, bytes | None]:
        """(inline or thread) The new batch, its most users, and the IPC bytes of the unsent batches and it."""
        batch, users, _ = super()._prepare(raw)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, STREAM_SCHEMA, options=IPC_OPTIONS) as w:
            for b in [*self._unsent, *([batch] if batch is not None else [])]:
                w.write_batch(b)
        return batch, users, sink.getvalue().to_pybytes()

    def _has_unsent(self) -> bool:
        return bool(self._unsent)

    def _blocks(self) -> dict[str, Any]:
        return {part.key: part.pending() for part in self.parts}

    def _blocks_sent(self) -> None:
        for part in self.parts:
            part.sent()

    def _deliver(self, batch: pa.RecordBatch | None, shipped: bytes | None) -> None:
        pending = self._unsent + ([batch] if batch is not None else [])
        rows = sum(b.num_rows for b in pending)
        try:
            self.runner.send_message(
                MSG_SAMPLES,
                {"worker": self.worker_id, "seq": self.seq + 1, **self._blocks(), "rows": rows, "ipc": shipped},
            )
        except (RPCError, RPCSendError) as e:  # keep the rows: the next flush sends them again
            log.warning("loadgate: could not send %d samples to the master (%s); retrying", rows, e)
            self._unsent = pending
            return
        self._unsent = []
        self.seq += 1
        self._blocks_sent()
        self.sent += rows

    def on_test_start(self, environment, **kw) -> None:
        forwarded = getattr(environment.parsed_options, "loadgate_requirements", None)
        if forwarded:  # a remote worker learns the run's requirements from the master
            self.requirements = [r for r in forwarded.split(",") if r]
            self.all_reqs = ",".join(self.requirements)
        super().on_test_start(environment, **kw)

    def on_test_stop(self, environment, **_kw) -> None:
        self.flush()
        # Locust reports worker stats every 3 s; send the last ones now, before our confirmation,
        # so the master's request count is complete when it checks it against the samples.
        send_worker_stats(self.runner)
        blocks = self._blocks()
        self._blocks_sent()
        self.runner.send_message(MSG_DONE, {"worker": self.worker_id, "sent": self.sent, **blocks})
