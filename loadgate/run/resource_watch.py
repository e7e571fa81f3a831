"""abort_on_fail for resource alerts: the alert checked over a sliding window while load runs.

As for latency (:mod:`loadgate.plugin.live`): once ``abort_after`` has passed and a whole ``abort_window``
has been seen, an alert that holds for the window's aggregate stops the run, and the verdict fails with
the reason. Local values come from the sampler's rows; Prometheus ones from a range query over the
window. A window with scrape gaps or an unreachable server never aborts (no evidence, no abort).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Iterable

from loadgate.analysis.window import Window
from loadgate.data.rundir import PROGRESS
from loadgate.gate.thresholds import Threshold, ThresholdFile
from loadgate.gate.verdict import format_value
from loadgate.run.local_resources import LocalSampler
from loadgate.sources.collect import evaluate_query

PERIOD_S = 1.0


class ResourceWatch:
    """Context manager: a daemon thread that sets ``reason`` when a resource alert with abort_on_fail holds."""

    def __init__(
        self,
        run_dir: str,
        files: Iterable[ThresholdFile],
        sampler: LocalSampler | None,
        prometheus: str | None,
        period: float = PERIOD_S,
    ) -> None:
        self.run_dir = run_dir
        self.rules: list[Threshold] = [
            t
            for tf in files
            for t in tf.thresholds
            if t.resource is not None and t.abort_on_fail and t.alert is not None
        ]
        if prometheus:
            self.rules = [
                dataclasses.replace(t, resource=dataclasses.replace(t.resource, prometheus=prometheus))
                if t.resource.source == "prometheus"
                else t
                for t in self.rules
            ]
        self.sampler = sampler
        self.period = period
        self.reason: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="loadgate-resource-watch", daemon=True)

    def __enter__(self) -> "ResourceWatch":
        self.started: float | None = None  # when the test started: the recorder's first progress.json
        if self.rules:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(15)

    def _loop(self) -> None:
        while self.reason is None and not self._stop.wait(self.period):
            if self.started is None and os.path.exists(os.path.join(self.run_dir, PROGRESS)):
                self.started = time.time()  # windows count from the load, not from Locust's start-up
            if self.started is not None:
                self.reason = self.check(time.time())

    def check(self, now: float) -> str | None:
        """The abort reason at ``now``, or None."""
        rows = list(self.sampler.rows) if self.sampler is not None else []
        for t in self.rules:
            q = t.resource
            elapsed = now - (self.started if self.started is not None else now)
            if elapsed < t.abort_after or elapsed < t.abort_window:
                continue
            value, _ = evaluate_query(q, Window(now - t.abort_window, now), rows)
            if value.value is not None and t.alert.holds(value.value):
                return (
                    f"aborted after {elapsed:.0f}s: {t.requirement} {t.metric} {t.alert.text} held over the last "
                    f"{t.abort_window:g}s ({q.aggregate} {format_value(value.value, t.unit)}, {q.source}) "
                    f"({t.source})"
                )
        return None
