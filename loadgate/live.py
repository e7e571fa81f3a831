"""Live view of a running test: sliding-window metrics for the progress line and abort-on-fail.

Runs inside the process that writes samples (local Locust or the master), fed with the recorder's
record batches; pure numpy/pyarrow. Values are exact over the window (numpy linear percentiles),
but the window is the last N seconds, not the analysis window: only the gate decides the verdict.
"""
from __future__ import annotations

import collections
import json
import operator
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PROGRESS_WINDOW_S = 10.0
_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


@dataclass(frozen=True)
class Rule:
    """One threshold's alert, as the live monitor needs it (JSON-serialisable for the child)."""

    requirement: str
    metric: str
    request: str | None
    op: str
    value: float
    text: str
    abort_on_fail: bool = False
    abort_after: float = 0.0
    window: float = 10.0
    min_requests: int = 1

    @property
    def label(self) -> str:
        return f"{self.requirement} {self.metric}{' [' + self.request + ']' if self.request else ''} {self.text}"


def rules_from_thresholds(files) -> list[dict]:
    """Rules (as dicts) for every threshold with an alert level, from parsed threshold files."""
    out = []
    for tf in files:
        for t in tf.thresholds:
            if t.alert is None:
                continue
            out.append(Rule(t.requirement, t.metric, t.request, t.alert.op, t.alert.value, t.alert.text,
                            t.abort_on_fail, t.abort_after, t.abort_window, t.min_requests).__dict__)
    return out


def metric_value(metric: str, rt: np.ndarray, ok: np.ndarray, seconds: float) -> float | None:
    """The metric over one window's samples (ms, fraction or req/s); None without samples."""
    if rt.size == 0:
        return 0.0 if metric == "throughput" else None
    if metric == "error_rate":
        return float(1.0 - ok.mean())
    if metric == "throughput":
        return rt.size / seconds
    if metric == "mean":
        return float(rt.mean())
    if metric == "min":
        return float(rt.min())
    if metric == "max":
        return float(rt.max())
    return float(np.percentile(rt, float(metric[1:])))


class LiveMonitor:
    """Keeps the last few seconds of samples and evaluates rules over a sliding window."""

    def __init__(self, rules: Iterable[dict]) -> None:
        self.rules = [Rule(**r) for r in rules]
        self.horizon = max([PROGRESS_WINDOW_S, *(r.window for r in self.rules)])
        self.batches: collections.deque[tuple[float, pa.RecordBatch]] = collections.deque()

    @classmethod
    def from_file(cls, path: str | None) -> "LiveMonitor":
        if not path:
            return cls([])
        with open(path) as f:
            return cls(json.load(f))

    def add(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            self.batches.append((pc.max(batch.column("timestamp")).as_py(), batch))

    def _recent(self, now: float, seconds: float) -> pa.Table | None:
        while self.batches and self.batches[0][0] < now - self.horizon:
            self.batches.popleft()
        batches = [b for t, b in self.batches if t >= now - seconds]
        if not batches:
            return None
        table = pa.Table.from_batches(batches)
        return table.filter(pc.greater_equal(table.column("timestamp"), now - seconds))

    def _scope(self, table: pa.Table, rule: Rule) -> tuple[np.ndarray, np.ndarray]:
        req = table.column("requirement")
        mask = pc.match_substring_regex(req, f"(^|,){rule.requirement}(,|$)")
        if rule.request:
            key = pc.binary_join_element_wise(table.column("request_type"), table.column("name"), " ")
            mask = pc.and_(mask, pc.or_(pc.equal(key, rule.request), pc.equal(table.column("name"), rule.request)))
        sel = table.filter(mask)
        return (sel.column("response_time_ms").to_numpy(zero_copy_only=False),
                sel.column("success").to_numpy(zero_copy_only=False))

    def evaluate(self, now: float, *, started: float, ramped: bool) -> tuple[dict, str | None]:
        """(progress snapshot, abort reason or None) at time ``now``."""
        snap: dict = {"t": now, "crossed": []}
        table = self._recent(now, PROGRESS_WINDOW_S)
        span = min(PROGRESS_WINDOW_S, max(now - started, 1e-9))
        if table is not None and table.num_rows:
            rt = table.column("response_time_ms").to_numpy(zero_copy_only=False)
            ok = table.column("success").to_numpy(zero_copy_only=False)
            snap.update(rps=rt.size / span, p95_ms=float(np.percentile(rt, 95)), error_rate=float(1 - ok.mean()))
        else:
            snap.update(rps=0.0, p95_ms=None, error_rate=None)
        abort = None
        for rule in self.rules:
            win = self._recent(now, rule.window)
            if win is None:
                continue
            rt, ok = self._scope(win, rule)
            if rt.size < rule.min_requests:
                continue
            value = metric_value(rule.metric, rt, ok, min(rule.window, max(now - started, 1e-9)))
            if value is None or not _OPS[rule.op](value, rule.value):
                continue
            shown = f"{value * 100:.2f}%" if rule.metric == "error_rate" else (
                f"{value:.1f}/s" if rule.metric == "throughput" else f"{value:.1f} ms")
            snap["crossed"].append(f"{rule.label} ({shown})")
            full_window = now - started >= rule.window
            if (rule.abort_on_fail and abort is None and now - started >= rule.abort_after and full_window
                    and (ramped or rule.metric != "throughput")):
                abort = (f"aborted after {now - started:.0f}s: {rule.label} held over the last "
                         f"{rule.window:g}s ({shown})")
        return snap, abort
