"""Blocks of the recorder's report that every role carries: each process keeps its own, a worker ships it with
each batch (and with its last message), the master merges the workers', and ``recorder.json`` holds it.

A module with something to add (this process's CPU, the paced users' schedule: :class:`Series`) gives
the recorder a :class:`Part` with :meth:`~loadgate.plugin.recorder.Recorder.add_part`, at init. Its
``key`` is its key in ``recorder.json`` and in the worker's batch message; the CLI reads it from
``recorder.json`` (``loadgate.run.runner.collect``).
"""

from __future__ import annotations

from typing import Any


class Part:
    """A block of the report. Each method is called by one role, on the Locust event loop."""

    key = ""

    def pending(self) -> Any:
        """Worker: what the next batch message carries (sent as is; keep it until :meth:`sent`)."""
        return None

    def sent(self) -> None:
        """Worker: :meth:`pending`'s value went to the master; start again."""

    def merge(self, worker: str, data: Any) -> None:
        """Master: ``worker`` sent ``data`` (its :meth:`pending`; None from a worker that has no such part)."""

    def report(self, collected: bool) -> Any:
        """The value in ``recorder.json``: this process's own (local), or the workers' merged (``collected``:
        the master)."""
        return None

    def reset(self) -> None:
        """A new test of a web UI session starts: forget the last one's."""


class Series(Part):
    """Rows ``[t, ...]`` of this process, one a second at most; in the report per process: ``{"local": rows}``,
    or on the master each worker's, by worker id."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.own: list[list[float]] = []
        self.workers: dict[str, list] = {}

    def add(self, row: list[float]) -> None:
        self.own.append(row)

    def last(self) -> list[float] | None:
        return self.own[-1] if self.own else None

    def pending(self) -> list[list[float]]:
        return self.own

    def sent(self) -> None:
        self.own = []

    def merge(self, worker: str, data: Any) -> None:
        self.workers.setdefault(worker, []).extend(data or [])

    def report(self, collected: bool) -> dict[str, list]:
        return dict(self.workers) if collected else {"local": self.own}

    def reset(self) -> None:
        self.own = []
